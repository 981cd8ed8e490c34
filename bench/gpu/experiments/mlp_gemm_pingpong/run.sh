#!/usr/bin/env bash
# Runs the prebuilt ping-pong GEMM harness on the H100; builds nothing (the build line is in NOTES.md and at
# the end of this comment). From the repository root:
#
#   bash bench/gpu/experiments/mlp_gemm_pingpong/run.sh                 # the default below
#   bash bench/gpu/experiments/mlp_gemm_pingpong/run.sh --shape 1b ...  # these arguments, split as below
#
# Default (and whenever the arguments say `--cluster both` or no `--cluster`, as bench/gpu/queue.sh's
# `--cluster both` does): two runs of the harness with the other arguments, each with its own cuBLAS baselines:
# `--cluster 1` (the brief's design: lone CTAs), then `--cluster 2` (CTA pairs sharing B through TMA multicast).
# A hang or a sticky CUDA error in the second (the watchdog exits 3) cannot take the first run's results with
# it. `--cluster 1` or `--cluster 2` given: one run. Each run checks the small shapes, 1b and 8b, then times
# 1b and 8b; its table is the last thing it prints, then its elapsed time (about 30-40 s a run expected; the
# queue's lot gives the whole script 120 s). Logs: $OUT/mlp_gemm_*.log when OUT is set (the device machine's
# output folder), else /tmp. Exit: the worst of the runs' exits (0 pass, 1 a check failed, 2 usage, 3 CUDA
# error or a hung kernel).
#
# Build (on a machine with nvcc 13 and the NVIDIA headers of bench/gpu/nvlibs.sh under /tmp/nvroot):
#   cd bench/gpu/experiments/mlp_gemm_pingpong && nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a \
#     -lineinfo -Xptxas -v -I/tmp/nvroot/include -I/work/main/templates/runtime mlp_gemm_bench.cu \
#     -L/tmp/nvroot/lib -lcublas -o mlp_gemm_bench
set -uo pipefail
DIR=$(cd "$(dirname "$0")" && pwd)
BIN=$DIR/mlp_gemm_bench
LOGDIR=${OUT:-/tmp}
mkdir -p "$LOGDIR"
if [ ! -x "$BIN" ]; then
  echo "run.sh: $BIN is missing: build it first (NOTES.md, or the comment at the top of this script)" >&2
  exit 2
fi

gpu_state() {
  nvidia-smi --query-gpu=name,pstate,clocks.sm,clocks.max.sm,clocks.mem,power.draw,power.limit,temperature.gpu,clocks_throttle_reasons.active \
    --format=csv 2>/dev/null || nvidia-smi 2>/dev/null | head -15 || true
}

echo "== GPU state before"
gpu_state
if command -v cuobjdump > /dev/null 2>&1; then
  echo "== SASS: HGMMA instructions in $BIN: $(cuobjdump -sass "$BIN" | grep -c HGMMA)"
  echo "== SASS: local-memory instructions (LDL/STL, expect 0): $(cuobjdump -sass "$BIN" | grep -cE '\b(LDL|STL)\b')"
else
  echo "== SASS: cuobjdump not on PATH; HGMMA count not checked here"
fi

worst=0
run() {
  local log=$1
  shift
  echo
  echo "== $BIN $*  (log: $log)"
  "$BIN" "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  echo "== exit $rc"
  [ "$rc" -gt "$worst" ] && worst=$rc
}

# The arguments without `--cluster X`; X (default both) decides one run or two.
rest=()
cluster=both
while [ $# -gt 0 ]; do
  if [ "$1" = --cluster ] && [ $# -ge 2 ]; then
    cluster=$2
    shift 2
  else
    rest+=("$1")
    shift
  fi
done
logs=()
if [ "$cluster" = both ]; then
  logs=("$LOGDIR/mlp_gemm_cluster1.log" "$LOGDIR/mlp_gemm_cluster2.log")
  run "${logs[0]}" ${rest[@]+"${rest[@]}"} --cluster 1
  run "${logs[1]}" ${rest[@]+"${rest[@]}"} --cluster 2
else
  logs=("$LOGDIR/mlp_gemm_cluster$cluster.log")
  run "${logs[0]}" ${rest[@]+"${rest[@]}"} --cluster "$cluster"
fi

echo
echo "== GPU state after"
gpu_state

# Summary last (the end of the output is what comes back): failed checks, hangs, then each run's table.
echo
echo "== summary"
for log in "${logs[@]}"; do
  echo "-- $log"
  grep -E '^\s*\[FAIL\]|first bad element|WATCHDOG|CUDA error|cuBLAS error|mlp_gemm:' "$log" || true
  if grep -q '^== results' "$log"; then
    sed -n '/^== results/,$p' "$log"
  else
    grep -E '^(elapsed|PASS: |FAIL: )' "$log" | tail -2
  fi
done
exit "$worst"
