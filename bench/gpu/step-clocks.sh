#!/usr/bin/env bash
# The SM clock and power through lasp's Linear-Llama3-1B bench steps and PyTorch's forward+backward, and each
# step's kernels as they ran (lasp: kernel_trace.cpp; PyTorch: torch.profiler), compared kernel by kernel:
# the same cuBLAS kernel at the same shape takes how long in each program's step, and at what clocks (issue 17:
# PyTorch's GEMMs ran faster in its step than lasp's in lasp's, 2026-12-06-step-kernels-h100.md).
#   here:  bash bench/gpu/make-suite.sh model 1 && bash bench/gpu/prebuild.sh
#          bash bench/gpu/step-clocks.sh prepare          # .gpu-clocks: the program and run-prebuilt.sh's parts
#   there: bash bench/gpu/step-clocks.sh run              # carry .gpu-clocks and .device/wheels (fla)
#          (ROUNDS, STEPS: lasp's rounds and bench steps, default 2 and 20; TORCH_STEPS default 20)
# Writes to $OUT: clocks.txt (the table), lasp-trace.csv, torch-trace.csv, torch.log, samples.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/../.."
case "${1:-}" in
prepare)
  set -e
  rm -rf .gpu-clocks && mkdir -p .gpu-clocks
  cp -r .gpu-suite/m-linear-1b-w1 .gpu-suite/kernels.o bench/gpu/run-prebuilt.sh bench/gpu/summarize.py \
    bench/gpu/rank-device-swap.sh .gpu-clocks/
  ;;
run)
  export NCCL_NVLS_ENABLE=0
  OUT=${OUT:-/tmp/lasp-step-clocks}
  raw=/tmp/lasp-step-clocks-samples
  mkdir -p "$OUT" "$raw"
  python3 -m pip install -q --no-deps --no-index --target /tmp/fla .device/wheels/*.whl && export PYTHONPATH=/tmp/fla
  (cd .gpu-clocks && SUITE_FILTER='-' OUT=/tmp/build-clocks bash run-prebuilt.sh > /dev/null 2>&1)
  sample() { nvidia-smi --query-gpu=clocks.sm,power.draw,power.limit --format=csv,noheader,nounits -lms 50 > "$raw/$1.smi" & echo $!; }
  for r in $(seq 1 "${ROUNDS:-2}"); do
    p=$(sample "lasp-$r")
    (cd .gpu-clocks && m-linear-1b-w1/prog --rank 0 --world 1 --device 0 --mode bench --steps "${STEPS:-20}" --warmup 3 \
      > "$raw/lasp-$r.jsonl" 2> /dev/null)
    kill "$p"
    echo "lasp round $r: $(grep -h '"summary"' "$raw/lasp-$r.jsonl" | grep -o '"median_ms":[0-9.]*')"
  done
  cupti="-I/usr/local/cuda/include -I/usr/local/cuda/extras/CUPTI/include -L/usr/local/cuda/lib64 -L/usr/local/cuda/extras/CUPTI/lib64"
  if g++ -std=c++17 -O2 -shared -fPIC $cupti bench/gpu/kernel_trace.cpp -lcupti -o /tmp/kernel_trace.so 2> "$raw/trace-build.log"; then
    p=$(sample lasp-traced)
    (cd .gpu-clocks && LD_LIBRARY_PATH=/usr/local/cuda/extras/CUPTI/lib64:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-} \
      CUDA_INJECTION64_PATH=/tmp/kernel_trace.so KERNEL_TRACE_OUT="$OUT/lasp-trace.csv" \
      m-linear-1b-w1/prog --rank 0 --world 1 --device 0 --mode bench --steps 8 --warmup 3 > /dev/null 2> "$raw/trace.err")
    kill "$p"
  else
    echo "kernel_trace.cpp did not build: $(tail -2 "$raw/trace-build.log")"
  fi
  p=$(sample torch)
  timeout 300 python3 bench/gpu/torch_model.py --preset linear-llama3-1b --tokens 16384 --steps "${TORCH_STEPS:-20}" --warmup 3 \
    --no-optimizer --kernel-profile --kernel-trace "$OUT/torch-trace.csv" > "$OUT/torch.log" 2>&1
  kill "$p"
  grep -E "forward\+backward" "$OUT/torch.log"
  python3 bench/gpu/step_clocks_table.py "$raw" "$OUT/lasp-trace.csv" "$OUT/torch-trace.csv" | tee "$OUT/clocks.txt"
  tar czf "$OUT/samples.tar.gz" -C "$raw" .
  ;;
*)
  echo "usage: step-clocks.sh prepare|run" >&2
  exit 2
  ;;
esac
