#!/usr/bin/env bash
# Packed documents (issue 19) on one GPU: builds bench/gpu/documents_check.cu against the kernels as kernels.cu
# includes them (a copy of templates/runtime/ as lasp/ beside the generated kernels.h), runs every check, then
# the bench (64K tokens, 16 heads x 128: documents of mean 2048 vs none). Logs under $OUT (or
# /tmp/lasp-documents): gpu.txt, build.log, checks.log, bench.log, summary.txt. From anywhere:
#   bash bench/gpu/run-documents.sh [extra arguments for the checks, e.g. --quick, --filter softmax/]
#   BUILD_ONLY=1 bash bench/gpu/run-documents.sh   (compile only; nvcc, no GPU needed: then carry the binary)
#   PREBUILT=path/to/documents_check bash ...      (a binary built elsewhere for sm_90a: no compile here)
#   SKIP_BENCH=1 / SKIP_CHECKS=1                   (one half only)
#   SYNC_CHECK=1                                   (build with -DLASP_SYNC_CHECK: a kernel's fault is pinned to
#                                                   its launch; slows the bench)
#   PATCH=bench/gpu/experiments/X.patch            (an experiment: the build's copy of templates/runtime gets the
#                                                   patch first; give it its own BUILD and OUT to A/B it)
# Exit status: the checks' (0 all passed, 1 a check failed, 2 usage, 3 a CUDA error or a build failure).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/lasp-documents}
BUILD=${BUILD:-/tmp/lasp-documents-build}
ARCH=${ARCH:-90a}
mkdir -p "$OUT" "$BUILD"

if [ "${BUILD_ONLY:-0}" != 1 ]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw \
    --format=csv 2>&1 | tee "$OUT/gpu.txt"
fi
nvcc --version | tail -2 | tee -a "$OUT/gpu.txt"

BIN=$BUILD/documents_check
if [ -n "${PREBUILT:-}" ]; then
  # a prebuilt binary prints its usage (exit 2) before any CUDA call
  if "$PREBUILT" --usage >/dev/null 2>&1; [ $? -eq 2 ]; then
    cp "$PREBUILT" "$BIN"
    echo "prebuilt $PREBUILT" | tee "$OUT/build.log"
  else
    echo "PREBUILT=$PREBUILT does not start" | tee "$OUT/build.log"
    exit 3
  fi
else
  echo "== build"
  rm -rf "$BUILD/lasp"
  mkdir -p "$BUILD/lasp"
  cp templates/runtime/*.cuh "$BUILD/lasp/"
  sed '1d' templates/kernels.h.hbs >"$BUILD/lasp/kernels.h"  # kernels.h.hbs less its {{> header}} line
  if [ -n "${PATCH:-}" ]; then
    # the patch names templates/runtime/<file>: three leading parts (a/templates/runtime/) off
    patch -p3 -d "$BUILD/lasp" <"$PATCH" >"$OUT/patch.log" 2>&1 || { cat "$OUT/patch.log"; echo "PATCH=$PATCH does not apply" | tee "$OUT/summary.txt"; exit 3; }
    echo "with $PATCH" | tee -a "$OUT/gpu.txt"
  fi
  cp bench/gpu/documents_check.cu bench/gpu/bench_fill.cuh "$BUILD/"
  flags=(-std=c++17 -O3 --use_fast_math -lineinfo "-gencode=arch=compute_${ARCH},code=sm_${ARCH}" -Xptxas -warn-spills)
  [ "${SYNC_CHECK:-0}" = 1 ] && flags+=(-DLASP_SYNC_CHECK)
  start=$(date +%s)
  if ! nvcc "${flags[@]}" -I"$BUILD" -I"$BUILD/lasp" -o "$BIN" "$BUILD/documents_check.cu" >"$OUT/build.log" 2>&1; then
    cat "$OUT/build.log"
    echo "build failed" | tee "$OUT/summary.txt"
    exit 3
  fi
  grep -iE "warning|spill" "$OUT/build.log" | head -20
  echo "built $BIN in $(($(date +%s) - start)) s" | tee -a "$OUT/build.log"
fi
[ "${BUILD_ONLY:-0}" = 1 ] && exit 0

rc=0
if [ "${SKIP_CHECKS:-0}" != 1 ]; then
  echo "== checks"
  "$BIN" "$@" 2>&1 | tee "$OUT/checks.log"
  rc=${PIPESTATUS[0]}
  {
    echo "checks exit $rc: $(grep -c '^PASS' "$OUT/checks.log") passed, $(grep -c '^FAIL' "$OUT/checks.log") failed"
    grep '^FAIL' "$OUT/checks.log" | head -40
  } | tee "$OUT/summary.txt"
fi
if [ "${SKIP_CHECKS:-0}" != 1 ] && [ -z "${PREBUILT:-}" ]; then
  # The linear walks across segment plans: the SM count cuts a piece into segments, so several reserves.
  echo "== linear walk plans"
  seg=$BUILD/linear_documents_segments
  if nvcc -std=c++17 -O3 "-gencode=arch=compute_${ARCH},code=sm_${ARCH}" -I"$BUILD/lasp" -o "$seg" \
    bench/gpu/linear_documents_segments.cu >>"$OUT/build.log" 2>&1; then
    for d in 128 64; do
      for r in 0 100 124 128 131; do
        LASP_SM_RESERVE=$r "$seg" $d >"$OUT/segments-d$d-r$r.log" 2>&1
        src=$?
        echo "walk plans d$d reserve $r: exit $src ($(tail -1 "$OUT/segments-d$d-r$r.log"))" | tee -a "$OUT/summary.txt"
        [ "$src" -ne 0 ] && rc=1
      done
    done
  else
    echo "linear_documents_segments did not build (build.log)" | tee -a "$OUT/summary.txt"
    rc=3
  fi
fi
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  echo "== bench"
  "$BIN" --bench ${RUNS:+--runs "$RUNS"} 2>&1 | tee "$OUT/bench.log"
  brc=${PIPESTATUS[0]}
  { echo "bench exit $brc"; grep -E '^GPU|^bench|^\|' "$OUT/bench.log"; } | tee -a "$OUT/summary.txt"
  [ "$rc" -eq 0 ] && [ "$brc" -ne 0 ] && rc=$brc
fi
exit "$rc"
