#!/usr/bin/env bash
# Why PyTorch's GEMMs run faster in its step than lasp's in lasp's (issue 17; bench/results/
# 2026-12-06-step-kernels-h100.md: 176.4 ms of cuBLAS kernels in PyTorch's Linear-Llama3-1B step by torch.profiler,
# about 185 ms in lasp's for the same FLOPs, from its parts minus its other kernels). Two suspects, one call:
# - the clocks: the SM clock and power sampled every 50 ms through lasp's bench steps and PyTorch's
#   forward+backward (power at the board's limit throttles the GEMMs; PyTorch has more memory-bound time
#   between them);
# - cuBLAS's workspace: lasp gives its handle none, PyTorch 32 MiB on Hopper (cublas-workspace.patch).
# And lasp's in-step GEMM time measured, not inferred: its kernels traced as they ran (kernel_trace.cpp).
#   here:  bash bench/gpu/make-suite.sh model 1 && bash bench/gpu/prebuild.sh
#          bash bench/gpu/experiments/gemm-clocks.sh prepare     # .exp/clocks-base, .exp/clocks-ws
#   there: bash bench/gpu/experiments/gemm-clocks.sh run          # carry .exp and .device/wheels (fla)
#          (ROUNDS, STEPS: lasp's A/B rounds and bench steps, default 3 and 20; TORCH_STEPS default 30)
set -uo pipefail
cd "$(dirname "$0")/../../.."
case "${1:-}" in
prepare)
  set -e
  rm -rf .exp/clocks-base .exp/clocks-ws && mkdir -p .exp/clocks-base .exp/clocks-ws
  for v in base ws; do
    cp -r .gpu-suite/m-linear-1b-w1 .gpu-suite/kernels.o bench/gpu/run-prebuilt.sh bench/gpu/summarize.py \
      bench/gpu/rank-device-swap.sh ".exp/clocks-$v/"
  done
  # The patch is against templates/runtime/state.cuh; the program holds a copy under lasp/.
  sed 's|templates/runtime/|m-linear-1b-w1/lasp/|g' bench/gpu/experiments/cublas-workspace.patch |
    patch -d .exp/clocks-ws -p1
  ;;
run)
  export NCCL_NVLS_ENABLE=0
  OUT=${OUT:-/tmp/lasp-gemm-clocks}
  mkdir -p "$OUT"
  python3 -m pip install -q --no-deps --no-index --target /tmp/fla .device/wheels/*.whl && export PYTHONPATH=/tmp/fla
  for v in base ws; do (cd ".exp/clocks-$v" && SUITE_FILTER='-' OUT=/tmp/build-$v bash run-prebuilt.sh > /dev/null 2>&1) & done
  wait
  sample() { nvidia-smi --query-gpu=clocks.sm,power.draw,power.limit --format=csv,noheader,nounits -lms 50 > "$OUT/$1.csv" & echo $!; }
  for r in $(seq 1 "${ROUNDS:-3}"); do
    for v in base ws; do
      p=$(sample "lasp-$v-$r")
      (cd ".exp/clocks-$v" && m-linear-1b-w1/prog --rank 0 --world 1 --device 0 --mode bench --steps "${STEPS:-20}" --warmup 3 \
        > "$OUT/lasp-$v-$r.jsonl" 2> /dev/null)
      kill "$p"
      echo "lasp $v round $r: $(grep -h '"summary"' "$OUT/lasp-$v-$r.jsonl" | grep -o '"median_ms":[0-9.]*')"
    done
  done
  # lasp's kernels as they ran in its step (CUPTI, kernel_trace.cpp): its GEMMs' in-step time, as torch.profiler
  # gives PyTorch's below.
  cupti="-I/usr/local/cuda/include -I/usr/local/cuda/extras/CUPTI/include -L/usr/local/cuda/lib64 -L/usr/local/cuda/extras/CUPTI/lib64"
  if g++ -std=c++17 -O2 -shared -fPIC $cupti bench/gpu/kernel_trace.cpp -lcupti -o /tmp/kernel_trace.so 2> "$OUT/trace-build.log"; then
    (cd .exp/clocks-base && LD_LIBRARY_PATH=/usr/local/cuda/extras/CUPTI/lib64:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-} \
      CUDA_INJECTION64_PATH=/tmp/kernel_trace.so KERNEL_TRACE_OUT="$OUT/lasp-trace.csv" \
      m-linear-1b-w1/prog --rank 0 --world 1 --device 0 --mode bench --steps 6 --warmup 3 > /dev/null 2> "$OUT/trace.err")
    python3 bench/gpu/profile_table.py --trace "$OUT/lasp-trace.csv" "$OUT/lasp-trace-step6.csv" 6 | tail -1
  else
    echo "kernel_trace.cpp did not build: $(tail -2 "$OUT/trace-build.log")"
  fi
  p=$(sample torch)
  timeout 300 python3 bench/gpu/torch_model.py --preset linear-llama3-1b --tokens 16384 --steps "${TORCH_STEPS:-30}" --warmup 3 \
    --no-optimizer --kernel-profile > "$OUT/torch.log" 2>&1
  kill "$p"
  grep -E "forward\+backward|GEMMs" "$OUT/torch.log"
  python3 - "$OUT" <<'PY'
import csv, glob, os, statistics, sys
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.csv"))):
    busy = [(float(r[0]), float(r[1]), float(r[2])) for r in csv.reader(open(f)) if len(r) >= 3 and float(r[1]) > 300]
    if busy:
        print(f"{os.path.basename(f):22s} {len(busy):4d} samples  SM clock median {statistics.median(b[0] for b in busy):5.0f} MHz"
              f"  power median {statistics.median(b[1] for b in busy):4.0f} W of {busy[0][2]:.0f}"
              f"  within 3% of the limit {100 * sum(b[1] >= 0.97 * b[2] for b in busy) / len(busy):3.0f}%")
PY
  ;;
*)
  echo "usage: gemm-clocks.sh prepare|run" >&2
  exit 2
  ;;
esac
