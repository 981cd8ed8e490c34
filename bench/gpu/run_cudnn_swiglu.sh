#!/usr/bin/env bash
# On the GPU machine (issue 17): find cuDNN, build bench/gpu/cudnn_swiglu_bench.cu against it and cuBLAS, and run
# it: can cuDNN's runtime-fusion engines compute the MLP's h = silu(X Wgate^T) * U as one matmul + pointwise graph
# on this GPU, does it agree with cuBLAS + swiglu.cuh's kernel, and how fast are both (the 1B and the 8B MLP
# shapes). Logs go to $OUT (or /tmp/cudnn-swiglu); the summary (attempts, checks, the table) is printed last.
#   bash bench/gpu/run_cudnn_swiglu.sh                  (from the repository root; extra arguments go to the
#                                                         bench, e.g. --runs 20, --checks-only, --max-plans 4,
#                                                         --only swish_mul,mm, --shape 16384 8192 2048, --json)
#   CUDNN_LOG=0 bash bench/gpu/run_cudnn_swiglu.sh      (no cuDNN error log; by default level 1, errors only, goes
#                                                         to $OUT/cudnn_api.log: why an engine refused a graph)
#   CUDNN=dir bash bench/gpu/run_cudnn_swiglu.sh        (a cuDNN with include/ and lib/ of your choice)
#   CUDNN=wheel bash bench/gpu/run_cudnn_swiglu.sh      (PyTorch's own cuDNN, nvidia.cudnn)
#   BENCH_TIMEOUT=300 bash bench/gpu/run_cudnn_swiglu.sh  (the bench's limit in seconds, default 105: the build
#                                                         and the run stay under 2 minutes; runtime-fusion plans
#                                                         compile with NVRTC, --max-plans bounds how many)
# cuDNN is taken from the system (/usr/include[/x86_64-linux-gnu] + /usr/lib/x86_64-linux-gnu) if it is there,
# else from PyTorch's wheel, as bench/gpu/run_cudnn.sh does; cuBLAS from the CUDA toolkit beside nvcc.
# Exit status: the bench's (0 also when cuDNN supports no variant: its log says NOT SUPPORTED), 3 no cuDNN or
# the build failed, 124 the bench ran past BENCH_TIMEOUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/cudnn-swiglu}
mkdir -p "$OUT"
BIN=/tmp/cudnn_swiglu_bench
ENV_TXT="$OUT/env.txt"

{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw,power.limit \
  --format=csv; nvcc --version | tail -2; } | tee "$ENV_TXT"

echo "== cuDNN"
# shellcheck source=bench/gpu/find-cudnn.sh
source bench/gpu/find-cudnn.sh
find_cudnn "$ENV_TXT" || exit 3
RUN_LD=$CUDNN_LD

echo "== build"
FLAGS=(-std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Itemplates/runtime -I"$INC")
LINKS=(-L"$LIB" "$LINK" -lcublas -Xlinker -rpath -Xlinker "$LIB")
nvcc "${FLAGS[@]}" -o "$BIN" bench/gpu/cudnn_swiglu_bench.cu "${LINKS[@]}" >"$OUT/build.log" 2>&1 ||
  { cat "$OUT/build.log"; exit 3; }
echo "nvcc ${FLAGS[*]} -o $BIN bench/gpu/cudnn_swiglu_bench.cu ${LINKS[*]}" | tee -a "$ENV_TXT"

echo "== checks and timings"
rm -f /tmp/cudnn_swiglu_api.log
if [ "${CUDNN_LOG:-1}" != 0 ]; then
  export CUDNN_LOGLEVEL_DBG=${CUDNN_LOG:-1} CUDNN_LOGDEST_DBG=/tmp/cudnn_swiglu_api.log
fi
LD_LIBRARY_PATH="$RUN_LD" timeout "${BENCH_TIMEOUT:-105}" "$BIN" "$@" 2>&1 | tee "$OUT/swiglu.log"
rc=${PIPESTATUS[0]}
unset CUDNN_LOGLEVEL_DBG CUDNN_LOGDEST_DBG
[ -f /tmp/cudnn_swiglu_api.log ] && head -c 4000000 /tmp/cudnn_swiglu_api.log >"$OUT/cudnn_api.log"
[ "$rc" = 124 ] && echo "the bench ran past BENCH_TIMEOUT=${BENCH_TIMEOUT:-105} s (its log so far is above)"

echo "== summary"
grep -E '^(device|ATTEMPT|PLAN|CHECK|NOT SUPPORTED|ALL CHECKS|SOME CHECKS|\| |====)' "$OUT/swiglu.log" |
  tee "$OUT/summary.md"
exit "$rc"
