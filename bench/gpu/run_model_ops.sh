#!/usr/bin/env bash
# On the GPU machine: build bench/gpu/model_ops_test.cu (embedding, norms, SwiGLU, classifier + loss), run its
# checks and its timings at the Linear-Llama3-1B shapes, and print the table last. Logs go to $OUT (or
# /tmp/lasp-model-ops). Extra arguments go to the harness (--seed N, --checks-only, --bench-only, --runs N).
#   bash bench/gpu/run_model_ops.sh        (from the repository root; about a minute on an H100)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/lasp-model-ops}
mkdir -p "$OUT"
BIN=/tmp/model_ops

{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw \
  --format=csv; nvcc --version | tail -2; } | tee "$OUT/gpu.txt"

echo "== build"
nvcc -std=c++17 -O3 -lineinfo -gencode=arch=compute_90a,code=sm_90a --resource-usage -Itemplates/runtime -Ibench/gpu/harness \
  bench/gpu/model_ops_test.cu -lcublas -o "$BIN" >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 3; }
grep -E "spill|stack" "$OUT/build.log" | grep -v " 0 bytes spill stores, 0 bytes spill loads" | head -5

echo "== checks and timings"
"$BIN" "$@" 2>&1 | tee "$OUT/model_ops.log"
exit "${PIPESTATUS[0]}"
