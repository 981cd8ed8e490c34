#!/usr/bin/env bash
# On the GPU machine: find cuDNN, build bench/gpu/cudnn_attention_test.cu against it, run its checks and
# timings (the cuDNN backend of templates/runtime/cudnn_attention.cuh and our kernels), then PyTorch's SDPA
# (cuDNN and flash backends) in the same call, and print a short table last. Logs go to $OUT (or
# /tmp/lasp-cudnn).
#   bash bench/gpu/run_cudnn.sh                  (from the repository root; extra arguments go to the harness,
#                                                 e.g. --runs 20, --checks-only, --pingpong 0 --dq-vec4 0)
#   SKIP_SDPA=1 bash bench/gpu/run_cudnn.sh      (no PyTorch comparison)
#   OURS_OBJ=path bash bench/gpu/run_cudnn.sh    (link our kernels from an object built elsewhere with
#                                                 -DLASP_CUDNN_TEST_PART=1 -c and the same nvcc flags: saves the
#                                                 minute their compilation takes here)
#   CUDNN_LOG=1 bash bench/gpu/run_cudnn.sh      (cuDNN's own error log, level 1, into $OUT/cudnn_api.log)
#   CUDNN=dir bash bench/gpu/run_cudnn.sh        (a cuDNN with include/ and lib/ of your choice)
#   CUDNN=wheel bash bench/gpu/run_cudnn.sh      (PyTorch's own cuDNN, the one its SDPA uses)
# cuDNN is taken from the system (/usr/include[/x86_64-linux-gnu] + /usr/lib/x86_64-linux-gnu) if it is there,
# else from PyTorch's wheel (nvidia.cudnn: include/ and lib/, the library possibly only as libcudnn.so.9). On the
# lent H100 (2026-11-26) the system has cuDNN 9.14.0 and PyTorch's wheel 9.19.0. The harness alone gets cuDNN's
# directory on LD_LIBRARY_PATH: PyTorch refuses to start when it finds another cuDNN version there.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/lasp-cudnn}
mkdir -p "$OUT"
BIN=/tmp/cudnn_attention_test
ENV_TXT="$OUT/env.txt"

{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw \
  --format=csv; nvcc --version | tail -2; } | tee "$ENV_TXT"

echo "== cuDNN"
# shellcheck source=bench/gpu/find-cudnn.sh
source bench/gpu/find-cudnn.sh
find_cudnn "$ENV_TXT" || exit 3
HARNESS_LD=$CUDNN_LD
{
  echo "SDPA in the headers (a dedicated operation exists from 9.13 on, forward only): $(grep -c SDPA "$INC"/cudnn_graph.h)"
  grep -n "SDPA" "$INC"/cudnn_graph.h | head -40
} | tee -a "$ENV_TXT"

echo "== build"
FLAGS=(-std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -DLASP_WITH_CUDNN -Itemplates/runtime -I"$INC")
LINKS=(-L"$LIB" "$LINK" -Xlinker -rpath -Xlinker "$LIB")
if [ -n "${OURS_OBJ:-}" ]; then
  echo "our kernels from $OURS_OBJ"
  nvcc "${FLAGS[@]}" -DLASP_CUDNN_TEST_PART=2 -o "$BIN" bench/gpu/cudnn_attention_test.cu "$OURS_OBJ" "${LINKS[@]}" \
    >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 3; }
else
  nvcc "${FLAGS[@]}" -o "$BIN" bench/gpu/cudnn_attention_test.cu "${LINKS[@]}" >"$OUT/build.log" 2>&1 ||
    { cat "$OUT/build.log"; exit 3; }
fi
echo "nvcc ${FLAGS[*]} -o $BIN bench/gpu/cudnn_attention_test.cu ${LINKS[*]}" | tee -a "$ENV_TXT"

echo "== checks and timings"
if [ "${CUDNN_LOG:-0}" = 1 ]; then
  export CUDNN_LOGLEVEL_DBG=1 CUDNN_LOGDEST_DBG=/tmp/cudnn_api.log
fi
LD_LIBRARY_PATH="$HARNESS_LD" "$BIN" "$@" 2>&1 | tee "$OUT/cudnn_test.log"
rc=${PIPESTATUS[0]}
unset CUDNN_LOGLEVEL_DBG CUDNN_LOGDEST_DBG
[ -f /tmp/cudnn_api.log ] && head -c 4000000 /tmp/cudnn_api.log >"$OUT/cudnn_api.log"

echo "== sdpa"
if [ "${SKIP_SDPA:-0}" = 1 ]; then
  echo "skipped (SKIP_SDPA=1)" | tee "$OUT/sdpa.log"
else
  PYTHONUNBUFFERED=1 python3 bench/gpu/sdpa_compare.py --no-find --tokens ${SDPA_TOKENS:-16384 65536} 2>&1 |
    tee "$OUT/sdpa.log"
fi

echo "== summary"
python3 - "$OUT/cudnn_test.log" "$OUT/sdpa.log" <<'PY' | tee "$OUT/summary.md"
import sys
t, sdpa = {}, {}
for line in open(sys.argv[1]):
    f = line.split()
    if f and f[0] in ("CUDNN", "OURS") and len(f) == 7:
        t[(f[0], f[1], int(f[2]), int(f[3]), int(f[4]))] = (float(f[5]), float(f[6]))
    if f and (f[0] in ("CHECKS", "CUDNNERR", "device") or line.startswith("max errors")):
        print(line.strip())
for line in open(sys.argv[2]):
    f = line.split()
    if f and f[0] == "SDPA":
        sdpa[(f[1], int(f[2]))] = [float(x) for x in f[3:]]
    if f and (f[0] in ("SDPAERR", "torch")):
        print(line.strip())
nan = float("nan")
print()
print("| tokens | heads (kv) | pass | lasp cuDNN ms (TFLOP/s) | lasp kernel ms (TFLOP/s) | SDPA cuDNN ms | SDPA flash ms |"
      " lasp cuDNN / SDPA cuDNN speed | lasp kernel / SDPA cuDNN speed |")
print("|---|---|---|---|---|---|---|---|---|")
shapes = sorted({(n, h, hk) for (_, _, n, h, hk) in t}, key=lambda x: (x[1] != x[2], x[0]))
for (n, h, hk) in shapes:
    for pas, si in (("fwd", 0), ("bwd", None), ("fwdbwd", 2)):
        c = t.get(("CUDNN", pas, n, h, hk), (nan, nan))
        o = t.get(("OURS", pas, n, h, hk), (nan, nan))
        s = sdpa.get(("cudnn", n), [nan] * 4) if h == hk == 16 else [nan] * 4
        fl = sdpa.get(("flash", n), [nan] * 4) if h == hk == 16 else [nan] * 4
        sc = s[si] if si is not None else nan
        sf = fl[si] if si is not None else nan
        print(f"| {n} | {h} ({hk}) | {pas.replace('fwdbwd', 'fwd+bwd')} | {c[0]:.2f} ({c[1]:.0f}) | {o[0]:.2f} ({o[1]:.0f}) | "
              f"{sc:.2f} | {sf:.2f} | {sc / c[0]:.2f} | {sc / o[0]:.2f} |")
PY
exit "$rc"
