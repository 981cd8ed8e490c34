#!/usr/bin/env bash
# LASP-2H's gathered attention (issue 18) on one GPU: builds bench/gpu/gathered_check.cu against
# templates/runtime/ (with cuDNN where it is found, as templates/build.sh.hbs finds it, else PyTorch's wheel),
# runs its checks, then its bench, and prints the bench's table last. Logs under $OUT (or /tmp/lasp-gathered):
# gpu.txt, build.log, checks.log, bench.log, summary.txt. From anywhere:
#   bash bench/gpu/run-gathered.sh [extra arguments for the checks, e.g. --quick, --filter W8/zigzag]
#                                  (--quick also shortens the bench: 16K tokens, W 2 and 8, 3 runs)
#   BUILD_ONLY=1 bash bench/gpu/run-gathered.sh   (compile only; nvcc, no GPU needed: then carry the binary)
#   PREBUILT=path/to/gathered_check bash ...      (a binary built elsewhere for sm_90a: no compile here; it needs
#                                                  the cuDNN it was built against on its rpath or LD_LIBRARY_PATH)
#   SKIP_BENCH=1 / SKIP_CHECKS=1                  (one half only)
#   RUNS=N                                        (the bench's medians over N runs, default 5)
#   BENCH_ARGS="--tokens 16384 --worlds 8"        (more arguments for the bench; also --backend cudnn|lasp: time
#                                                  one backend only, --kv-heads N: of the 16 query heads, default 8)
#   LASP_CUDNN=0                                  (build without cuDNN: lasp's kernels only)
#   CUDNN_HOME=dir                                (a cuDNN with include/ and lib/ or lib64/; CUDNN=wheel: PyTorch's)
#   SYNC_CHECK=1                                  (build with -DLASP_SYNC_CHECK: a kernel's fault is pinned to its
#                                                  launch; slows the bench)
# Exit status: the checks' (0 all passed, 1 a check failed, 2 usage, 3 a CUDA error or a build failure), else the
# bench's.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/lasp-gathered}
BUILD=${BUILD:-/tmp/lasp-gathered-build}
ARCH=${ARCH:-90a}
mkdir -p "$OUT" "$BUILD"

if [ "${BUILD_ONLY:-0}" != 1 ]; then
  { date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw \
    --format=csv 2>&1; } | tee "$OUT/gpu.txt"
fi
nvcc --version | tail -2 | tee -a "$OUT/gpu.txt"

# cuDNN: CUDNN_HOME, then the system's (templates/build.sh.hbs's order), then PyTorch's wheel (nvidia.cudnn).
INC="" LIB="" LINK=""
if [ "${LASP_CUDNN:-1}" != 0 ]; then
  wheel_dir() { python3 -c "import nvidia.cudnn as m; print(list(m.__path__)[0])" 2>/dev/null; }
  if [ "${CUDNN:-}" = wheel ]; then
    W=$(wheel_dir) && [ -n "$W" ] && [ -f "$W/include/cudnn.h" ] && INC=$W/include LIB=$W/lib
  else
    for inc in "${CUDNN_HOME:-/nonexistent}/include" /usr/include /usr/include/x86_64-linux-gnu; do
      [ -f "$inc/cudnn.h" ] || continue
      for lib in "${CUDNN_HOME:-/nonexistent}/lib" "${CUDNN_HOME:-/nonexistent}/lib64" /usr/lib/x86_64-linux-gnu; do
        if [ -e "$lib/libcudnn.so" ] || [ -e "$lib/libcudnn.so.9" ]; then INC=$inc LIB=$lib; break 2; fi
      done
    done
    if [ -z "$INC" ]; then
      W=$(wheel_dir) && [ -n "$W" ] && [ -f "$W/include/cudnn.h" ] && INC=$W/include LIB=$W/lib
    fi
  fi
fi
HARNESS_LD=${LD_LIBRARY_PATH:-}
CUDNN_FLAGS=()
if [ -n "$INC" ]; then
  if [ -e "$LIB/libcudnn.so" ]; then LINK=-lcudnn; else LINK=-l:libcudnn.so.9; fi
  CUDNN_FLAGS=(-DLASP_WITH_CUDNN "-I$INC" "-L$LIB" "$LINK" -Xlinker "-rpath=$LIB")
  # cuDNN loads its engine libraries, NVRTC and cuBLASLt at run time: for a wheel, the wheel directories beside it.
  case "$LIB" in */site-packages/nvidia/*)
    SITE=$(dirname "$(dirname "$LIB")")
    HARNESS_LD="$LIB:$(ls -d "$SITE"/*/lib 2>/dev/null | tr '\n' ':')$HARNESS_LD" ;;
  esac
  echo "cuDNN $(grep -hE '#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) ' "$INC"/cudnn_version.h | awk '{print $3}' | paste -sd.) from $INC, $LIB ($LINK)" | tee -a "$OUT/gpu.txt"
else
  echo "cuDNN: not used (LASP_CUDNN=0, or none found): lasp's kernels only" | tee -a "$OUT/gpu.txt"
fi

BIN=$BUILD/gathered_check
if [ -n "${PREBUILT:-}" ]; then
  # a prebuilt binary prints its usage (exit 2) before any CUDA call
  if LD_LIBRARY_PATH="$HARNESS_LD" "$PREBUILT" --usage >/dev/null 2>&1; [ $? -eq 2 ]; then
    cp "$PREBUILT" "$BIN"
    echo "prebuilt $PREBUILT" | tee "$OUT/build.log"
  else
    echo "PREBUILT=$PREBUILT does not start" | tee "$OUT/build.log"
    exit 3
  fi
else
  echo "== build"
  flags=(-std=c++17 -O3 --use_fast_math -lineinfo "-gencode=arch=compute_${ARCH},code=sm_${ARCH}" -Itemplates/runtime)
  [ "${SYNC_CHECK:-0}" = 1 ] && flags+=(-DLASP_SYNC_CHECK)
  start=$(date +%s)
  echo "nvcc ${flags[*]} ${CUDNN_FLAGS[*]} -o $BIN bench/gpu/gathered_check.cu" >"$OUT/build.log"
  if ! nvcc "${flags[@]}" "${CUDNN_FLAGS[@]}" -o "$BIN" bench/gpu/gathered_check.cu >>"$OUT/build.log" 2>&1; then
    cat "$OUT/build.log"
    echo "build failed" | tee "$OUT/summary.txt"
    exit 3
  fi
  echo "built $BIN in $(($(date +%s) - start)) s" | tee -a "$OUT/build.log"
fi
[ "${BUILD_ONLY:-0}" = 1 ] && exit 0

quick=""
for a in "$@"; do [ "$a" = --quick ] && quick=--quick; done
rc=0
: >"$OUT/summary.txt"
if [ "${SKIP_CHECKS:-0}" != 1 ]; then
  echo "== checks"
  LD_LIBRARY_PATH="$HARNESS_LD" "$BIN" "$@" 2>&1 | tee "$OUT/checks.log"
  rc=${PIPESTATUS[0]}
  {
    echo "checks exit $rc: $(grep -E '^CHECKS' "$OUT/checks.log")"
    grep -E '^(FAIL|SKIP)' "$OUT/checks.log" | head -40
  } | tee -a "$OUT/summary.txt"
fi
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  echo "== bench"
  # shellcheck disable=SC2086  # BENCH_ARGS is a list of words
  LD_LIBRARY_PATH="$HARNESS_LD" "$BIN" --bench $quick ${RUNS:+--runs "$RUNS"} ${BENCH_ARGS:-} 2>&1 | tee "$OUT/bench.log"
  brc=${PIPESTATUS[0]}
  { echo "bench exit $brc"; grep -E '^(GPU|WHOLE|bench:)' "$OUT/bench.log"; grep -E '^\|' "$OUT/bench.log"; } |
    tee -a "$OUT/summary.txt"
  [ "$rc" -eq 0 ] && [ "$brc" -ne 0 ] && rc=$brc
fi
exit "$rc"
