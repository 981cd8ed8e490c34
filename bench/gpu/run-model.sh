#!/usr/bin/env bash
# The whole model on ONE GPU (issue 16), in one call on the GPU machine, from the repository root:
#   here:     bash bench/gpu/make-suite.sh all 1 && bash bench/gpu/prebuild.sh     (carry .gpu-suite)
#   there:    bash bench/gpu/run-model.sh verify|bench|all      (all: verify, then bench without PyTorch)
# verify: every 1-GPU verify program (each layer kind against its dense oracle, then the whole model's step),
#         then the whole model against PyTorch: REFERENCE programs write their weights and gradients
#         (--save-weights, --save-grads) and bench/gpu/torch_reference.py rebuilds the model from them alone.
# bench:  the whole model's step, lasp (m-linear-1b-w1, m-hybrid-1b-w1: Linear-Llama3-1B and its hybrid at 16K
#         tokens; SUITE_FILTER picks others) and PyTorch (bench/gpu/torch_model.py on the same models; PRESETS).
# longest: lasp at the longest seq_len `lasp inspect` predicts fits 80 GB (m-*-long-w1), and PyTorch's longest
#         found by trying (torch_model.py --max-seq, with and without AdamW's state, capped at an H100's memory).
# gemm:   cublasGemmEx as the program calls it against cuBLASLt's fastest algorithm, at every product shape of
#         Linear-Llama3-1B's step (bench/gpu/gemm_algos.cu): what choosing the GEMM algorithm by timing would save.
# roundtrip: ROUNDTRIP programs in verify mode, saving their weights and gradients, then again loading those
#         weights (--load-weights): the gradients must be the same bytes.
# Results under $OUT: logs, each tool's JSON, a table last.
set -uo pipefail
cd "$(dirname "$0")/../.."
export NCCL_NVLS_ENABLE=0
OUT=${OUT:-/tmp/lasp-model}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
REFERENCE=${REFERENCE:-"v-lasp2-decay-zz-d64-w1 v-lasp2-bidir-d64-w1 v-lasp1-zz-d64-w1 v-sm-ag-zz-gqa-d128-w1 v-sm-ag-bidir-d64-w1 v-hyb-1b-w1 v-tied-d64-w1 v-encoder-ln-d64-w1"}
mode=${1:-}
[ "$mode" = all ] && { bash "$0" verify; OUT=$OUT PRESETS=${PRESETS:-none} bash "$0" bench; exit; }
case "$mode" in
verify)
  (cd .gpu-suite && OUT=$OUT/verify SUITE_FILTER='v-*' bash run-prebuilt.sh) > "$OUT/verify.log" 2>&1
  grep -E " exit |build failed" "$OUT/verify.log"
  scratch=$(mktemp -d)
  for p in $REFERENCE; do
    [ -x ".gpu-suite/$p/prog" ] || { echo "$p: not built"; continue; }
    mkdir -p "$scratch/$p" "$OUT/reference/$p"
    timeout 300 ".gpu-suite/$p/prog" --rank 0 --world 1 --device 0 --nccl-id-file "$scratch/$p/id" --mode verify \
      --save-weights "$scratch/$p/model.safetensors" --save-grads "$scratch/$p/grads.safetensors" \
      > "$OUT/reference/$p/program.out" 2> "$OUT/reference/$p/program.err"
    echo "$p program exit $?"
    timeout 300 python3 bench/gpu/torch_reference.py "$scratch/$p/model.safetensors" "$scratch/$p/grads.safetensors" \
      --device cuda --json "$OUT/reference/$p/reference.json" > "$OUT/reference/$p/reference.txt" 2>&1
    echo "$p reference exit $?"
    cp "$scratch/$p/config.json" "$OUT/reference/$p/" 2> /dev/null
    head -8 "$OUT/reference/$p/reference.txt"
  done
  rm -rf "$scratch"
  ;;
bench)
  # lasp first (each program builds in the background of nothing: run-prebuilt.sh compiles them all), then PyTorch
  # (torch.compile and fla's autotuning take minutes on a fresh machine); PRESETS picks PyTorch's models.
  (cd .gpu-suite && RANK_TIMEOUT=300 OUT=$OUT/lasp SUITE_FILTER="${SUITE_FILTER:-m-*}" bash run-prebuilt.sh) > "$OUT/lasp.log" 2>&1
  grep -E " exit |build failed" "$OUT/lasp.log"
  for preset in ${PRESETS:-linear-llama3-1b hybrid}; do
    [ "$preset" = none ] && continue
    timeout "${TORCH_TIMEOUT:-420}" python3 bench/gpu/torch_model.py --preset "$preset" --tokens 16384 --steps 10 \
      --warmup 3 --json "$OUT/torch-$preset.json" > "$OUT/torch-$preset.log" 2>&1
    echo "torch $preset exit $?"
    tail -n 6 "$OUT/torch-$preset.log"
  done
  ;;
longest)
  (cd .gpu-suite && RANK_TIMEOUT=300 OUT=$OUT/longest SUITE_FILTER='m-*long*' bash run-prebuilt.sh) > "$OUT/longest.log" 2>&1
  grep -E " exit |build failed" "$OUT/longest.log"
  grep -h "program_mem\|memory" "$OUT/longest.log" | head -4
  for opt in "" --no-optimizer; do
    timeout "${TORCH_TIMEOUT:-300}" python3 bench/gpu/torch_model.py --preset linear-llama3-1b --tokens 16384 --steps 2 \
      --warmup 1 --max-seq --memory-gib 79.2 $opt --json "$OUT/torch-max-seq$opt.json" > "$OUT/torch-max-seq$opt.log" 2>&1
    echo "torch max-seq $opt exit $?"
    grep -E "longest|peak" "$OUT/torch-max-seq$opt.log"
  done
  ;;
gemm)
  nvcc -O3 -std=c++17 "-gencode=arch=compute_${ARCH:-90a},code=sm_${ARCH:-90a}" bench/gpu/gemm_algos.cu -lcublas -lcublasLt \
    -o /tmp/gemm_algos && /tmp/gemm_algos --json "$OUT/gemm-algos.json" | tee "$OUT/gemm-algos.txt"
  ;;
roundtrip)
  scratch=$(mktemp -d)
  for p in ${ROUNDTRIP:-v-tied-d64-w1 v-encoder-ln-d64-w1 v-hyb-1b-w1}; do
    [ -x ".gpu-suite/$p/prog" ] || { echo "$p: not built"; continue; }
    run() { timeout 300 ".gpu-suite/$p/prog" --rank 0 --world 1 --device 0 --nccl-id-file "$scratch/$p.id" --mode verify "$@"; }
    run --save-weights "$scratch/$p.a.safetensors" --save-grads "$scratch/$p.ga.safetensors" > "$OUT/$p.a.out" 2> "$OUT/$p.a.err"
    a=$?
    run --load-weights "$scratch/$p.a.safetensors" --save-grads "$scratch/$p.gb.safetensors" > "$OUT/$p.b.out" 2> "$OUT/$p.b.err"
    b=$?
    same=$(cmp -s "$scratch/$p.ga.safetensors" "$scratch/$p.gb.safetensors" && echo "same bytes" || echo "DIFFERENT")
    echo "$p roundtrip: save exit $a, load exit $b, gradients $same; loss $(cat "$OUT/$p.a."* | grep -o 'loss [0-9.e+-]*' | head -1) / $(cat "$OUT/$p.b."* | grep -o 'loss [0-9.e+-]*' | head -1)"
  done
  rm -rf "$scratch"
  ;;
*)
  sed -n '2,14p' "$0"
  exit 2
  ;;
esac
