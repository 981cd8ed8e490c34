#!/usr/bin/env bash
# On the H100 / H200 machine: runs the checking and timing harness of templates/runtime/mlp_gemm.cuh, built
# beside this script. It builds nothing; build it first on the machine without a GPU (NOTES.md, "Build"):
#   cd bench/gpu/mlp_gemm && nvcc -O3 -std=c++17 --use_fast_math -gencode=arch=compute_90a,code=sm_90a -lineinfo \
#     -Xptxas -v -I/tmp/nvroot/include -I../../../templates/runtime mlp_gemm_check.cu -L/tmp/nvroot/lib -lcublas \
#     -o mlp_gemm_check > build.txt 2>&1
# and carry bench/gpu/mlp_gemm/mlp_gemm_check (it is ignored by git).
# Default: the checks (all shapes) in one process, then the timings in another, so a check failure or a hung
# kernel in one still leaves the other's output; the checks' summary and the timing table print last.
#   bash bench/gpu/mlp_gemm/run.sh              checks, then timings, of 1b and 8b
#   bash bench/gpu/mlp_gemm/run.sh ARGS...      the harness with ARGS only, e.g.
#        --check-only --shape 1b  |  --bench-only --shape 8b  |  --bench-only --quick (no sustained figure)
# Logs go to $OUT (default /tmp/mlp_gemm): gpu.txt, sass.txt, checks.log, bench.log (run.log with ARGS).
# Exit: the harness's (0 all passed, 1 a check failed, 2 usage/setup, 3 CUDA error or a hung kernel); with
# no ARGS the worse of the two runs.
set -uo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/mlp_gemm}
mkdir -p "$OUT"
BIN=./mlp_gemm_check
[ -x "$BIN" ] || { echo "run.sh: no $PWD/mlp_gemm_check: build it first (NOTES.md, 'Build')"; exit 2; }

# libcublas.so.13 (and libcublasLt): the system's if the loader finds it, else the first copy on the machine.
if ldd "$BIN" | grep -q "not found"; then
  lib=$(find /usr/local /usr/lib /opt -name 'libcublas.so.13*' 2>/dev/null | head -1)
  if [ -n "$lib" ]; then
    export LD_LIBRARY_PATH="$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "run.sh: cuBLAS from $(dirname "$lib")"
  fi
  ldd "$BIN" | grep "not found" && { echo "run.sh: missing libraries (above)"; exit 2; }
fi

{
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu \
    --format=csv
  nvidia-smi -q -d PERFORMANCE 2>/dev/null | grep -iE "throttle|slowdown|active" | head -20
} | tee "$OUT/gpu.txt"

# The SASS: HGMMA per kernel (the wgmma path), local-memory traffic (spills) anywhere.
if command -v cuobjdump >/dev/null; then
  cuobjdump -sass "$BIN" >"$OUT/sass.txt" 2>/dev/null
  echo "== SASS (mlpg kernels): HGMMA / STSM / LDSM / LDL+STL per kernel"
  awk '/Function :/ {f = $3} f ~ /mlpg/ {
         if ($0 ~ /HGMMA/) h[f]++; if ($0 ~ /STSM/) s[f]++; if ($0 ~ /LDSM/) l[f]++; if ($0 ~ /LDL|STL/) x[f]++; k[f] = 1 }
       END { for (f in k) printf "  %4d HGMMA %4d STSM %4d LDSM %4d LDL/STL  %s\n", h[f], s[f], l[f], x[f], f }' \
    "$OUT/sass.txt"
else
  echo "== no cuobjdump on the PATH: SASS not inspected"
fi

if [ $# -gt 0 ]; then
  "$BIN" "$@" 2>&1 | tee "$OUT/run.log"
  exit "${PIPESTATUS[0]}"
fi

echo "== checks"
"$BIN" --check-only 2>&1 | tee "$OUT/checks.log"
crc=${PIPESTATUS[0]}
echo "== timings"
"$BIN" --bench-only 2>&1 | tee "$OUT/bench.log"
brc=${PIPESTATUS[0]}
nvidia-smi --query-gpu=clocks.sm,power.draw,temperature.gpu --format=csv,noheader | sed 's/^/after: /' | tee -a "$OUT/gpu.txt"

echo
echo "== SUMMARY (checks exit $crc, timings exit $brc; logs in $OUT)"
grep -E "^  (PASS|FAIL) |WATCHDOG|CUDA error" "$OUT/checks.log" | grep -vE "^  PASS" | head -20
grep -E "^== CHECKS|FAILED:" "$OUT/checks.log"
grep -E "WATCHDOG|CUDA error" "$OUT/bench.log"
sed -n '/^== RESULTS/,$p' "$OUT/bench.log"
[ "$crc" -ge "$brc" ] && exit "$crc" || exit "$brc"
