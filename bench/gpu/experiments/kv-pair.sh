#!/usr/bin/env bash
# The A/B of kv-pair.patch (the K and V projections and their weight gradients as one strided-batched cuBLAS
# call each): the patched build's verify programs, then Linear-Llama3-1B's step, base and patched alternating.
#   here:  bash bench/gpu/make-suite.sh model 1 && bash bench/gpu/prebuild.sh   (.gpu-suite: kernels.o, m-linear-1b-w1)
#          bash bench/gpu/experiments/kv-pair.sh prepare     # .gpu-kv/base, .gpu-kv/new
#   there: bash bench/gpu/experiments/kv-pair.sh run         # carry .gpu-kv (or: bash bench/gpu/queue.sh kvab)
set -uo pipefail
cd "$(dirname "$0")/../../.."
verify=(v-hyb-1b-w1 v-lasp2-causal-d128-w1 v-lasp2-decay-zz-d64-w1 v-sm-ag-zz-gqa-d128-w1)
case "${1:-}" in
prepare)
  set -e
  rm -rf .gpu-kv && mkdir -p .gpu-kv/base
  cp -r .gpu-suite/kernels.o .gpu-suite/m-linear-1b-w1 bench/gpu/run-prebuilt.sh bench/gpu/summarize.py \
    bench/gpu/rank-device-swap.sh .gpu-kv/base/
  for v in "${verify[@]}"; do node bin/lasp.js compile "bench/gpu/specs/$v.lasp" -o ".gpu-kv/base/$v" > /dev/null; done
  cp -r .gpu-kv/base .gpu-kv/new
  # The patch is against templates/runtime/; each program holds a copy under lasp/.
  for d in .gpu-kv/new/*/; do
    n=$(basename "$d")
    sed "s|templates/runtime/|$n/lasp/|g" bench/gpu/experiments/kv-pair.patch | patch -s -d .gpu-kv/new -p1
  done
  du -sh .gpu-kv
  ;;
run)
  export NCCL_NVLS_ENABLE=0
  OUT=${OUT:-/tmp/lasp-kv-pair}
  mkdir -p "$OUT"
  (cd .gpu-kv/new && SUITE_FILTER='v-*' OUT="$OUT/verify" bash run-prebuilt.sh 2>&1 | grep " exit ")
  OUT="$OUT/ab" bash bench/gpu/ab-compare.sh .gpu-kv/base .gpu-kv/new 'm-linear-1b-w1' "${ROUNDS:-3}" | tail -2
  ;;
*)
  echo "usage: kv-pair.sh prepare|run" >&2
  exit 2
  ;;
esac
