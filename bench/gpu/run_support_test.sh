#!/usr/bin/env bash
# On the GPU machine: build and run the checks of softmax_oracle.cuh and softmax_support.cuh
# (bench/gpu/softmax_support_test.cu), twice: as the test builds by default and with --use_fast_math, the
# flag the generated programs use. Logs go to $OUT (or /tmp/lasp-support).
#   bash bench/gpu/run_support_test.sh [--seed N]      (from anywhere; extra arguments go to the test)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/lasp-support}
mkdir -p "$OUT"
ARCH=${ARCH:-90a}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$OUT/gpu.txt"
nvcc --version | tail -2 | tee -a "$OUT/gpu.txt"

rc=0
for variant in plain fast_math; do
  flags=()
  [ "$variant" = fast_math ] && flags=(--use_fast_math)
  bin=/tmp/softmax_support_test_$variant
  echo "== build ($variant)" | tee -a "$OUT/summary.txt"
  if ! nvcc -O2 -std=c++17 -gencode=arch=compute_${ARCH},code=sm_${ARCH} -Xptxas -v "${flags[@]}" \
      -o "$bin" bench/gpu/softmax_support_test.cu >"$OUT/build_$variant.log" 2>&1; then
    cat "$OUT/build_$variant.log"
    exit 3
  fi
  grep -E "spill" "$OUT/build_$variant.log" | grep -v " 0 bytes spill stores, 0 bytes spill loads" | head -5
  echo "== run ($variant)" | tee -a "$OUT/summary.txt"
  "$bin" "$@" 2>&1 | tee "$OUT/test_$variant.log"
  r=${PIPESTATUS[0]}
  grep -E "FAIL|^PASS" "$OUT/test_$variant.log" | tail -20 >>"$OUT/summary.txt"
  [ "$r" -ne 0 ] && rc=$r
done
echo "== exit $rc" | tee -a "$OUT/summary.txt"
exit "$rc"
