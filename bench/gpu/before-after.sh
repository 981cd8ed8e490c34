#!/usr/bin/env bash
# Same-GPU before/after of two revisions' generated programs on ONE GPU: verify of the new one, and step time
# and memory of both, alternating (compare-builds.sh). Two halves:
#   here (Node, nvcc):   bash bench/gpu/before-after.sh prepare BEFORE_REV [AFTER_REV]   (AFTER_REV: HEAD)
#                        -> .gpu-before/ and .gpu-after/ (prebuilt kernels.o, the 1-GPU suite's programs)
#   on the GPU machine:  bash bench/gpu/before-after.sh run [ROUNDS]   (carry .gpu-before and .gpu-after)
#                        -> $OUT/gpu.txt, verify.log, compare.txt, summaries.txt (each program's summary event)
# Programs: every 1-GPU verify program of make-suite.sh (after only), and b-lasp2-w1, b-hyb-ag-zz-w1, s-hyb-ag-zz-w1 (bench).
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
case "${1:-}" in
prepare)
  set -e
  for side in before after; do
    rev=$([ "$side" = before ] && echo "$2" || echo "${3:-HEAD}")
    wt=$(mktemp -d)/wt
    git worktree add -q --detach "$wt" "$rev"
    (cd "$wt" && ln -s "$root/node_modules" node_modules && npx tsc -p tsconfig.build.json &&
      bash bench/gpu/make-suite.sh all 1 > /dev/null &&
      find .gpu-suite -mindepth 1 -maxdepth 1 -type d ! -name 'v-*' ! -name b-lasp2-w1 ! -name b-hyb-ag-zz-w1 \
        ! -name s-hyb-ag-zz-w1 -exec rm -rf {} + &&
      { [ "$side" = after ] || rm -rf .gpu-suite/v-*; } &&
      bash bench/gpu/prebuild.sh > /dev/null)
    rm -rf ".gpu-$side" && cp -r "$wt/.gpu-suite" ".gpu-$side"
    git worktree remove --force "$wt"
    echo "$side: $(git rev-parse --short "$rev"), $(ls ".gpu-$side" | grep -c -- '-w1$') programs in .gpu-$side/"
  done
  ;;
run)
  export NCCL_NVLS_ENABLE=0
  OUT=${OUT:-/tmp/lasp-before-after}
  mkdir -p "$OUT"
  scratch=$(mktemp -d)
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
  (cd .gpu-after && OUT=$scratch/verify SUITE_FILTER='v-*' bash run-prebuilt.sh) > "$OUT/verify.log" 2>&1
  grep " exit " "$OUT/verify.log"
  rounds=${2:-3}
  OUT=$scratch/compare bash bench/gpu/compare-builds.sh '[bs]-*' "$rounds" .gpu-before .gpu-after > "$scratch/compare.log" 2>&1
  cp "$scratch/compare/compare.txt" "$OUT/compare.txt" 2> /dev/null || tail -40 "$scratch/compare.log" > "$OUT/compare.txt"
  for side in before after; do
    for ((i = 1; i <= rounds; i++)); do
      tar xzf "/tmp/compare/.gpu-$side/$i/logs.tgz" -O ./s-hyb-ag-zz-w1.r0.out ./b-hyb-ag-zz-w1.r0.out \
        ./b-lasp2-w1.r0.out 2> /dev/null | grep '"summary"' | sed "s/^/$side $i /"
    done
  done > "$OUT/summaries.txt"
  cat "$OUT/compare.txt"
  ;;
*)
  sed -n '2,9p' "$0"
  exit 2
  ;;
esac
