#!/usr/bin/env bash
# On the GPU machine: build the softmax-attention harness, run every check, time our kernels and PyTorch's
# SDPA (cuDNN and flash backends) on the same GPU, and print a short table last. Logs go to $OUT (or
# /tmp/lasp-softmax).
#   bash bench/gpu/run_softmax.sh              (from the repository root)
#   SKIP_SDPA=1 bash bench/gpu/run_softmax.sh  (ours only)
#   PROFILE=1 bash bench/gpu/run_softmax.sh    (also ncu sections of the wgmma forward at 16K, into $OUT/ncu.txt)
#   SKIP_FIND=1 bash bench/gpu/run_softmax.sh  (sdpa_compare.py without its search for cudnn_frontend headers)
#   PREBUILT=path bash bench/gpu/run_softmax.sh  (run a harness binary built elsewhere with the same nvcc command)
#   extra arguments go to the harness, e.g. --checks-only, --runs 20, --tokens 16384
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/lasp-softmax}
mkdir -p "$OUT"
BIN=/tmp/softmax_kernels

{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw \
  --format=csv; nvcc --version | tail -2; } | tee "$OUT/gpu.txt"

echo "== build"
if [ -n "${PREBUILT:-}" ]; then
  # A binary built elsewhere with the same command (saves the ~1 minute build on the GPU machine); its ptxas
  # report, if any, beside it as PREBUILT.build.log.
  BIN=$PREBUILT
  cp "$PREBUILT.build.log" "$OUT/build.log" 2>/dev/null || : >"$OUT/build.log"
  echo "prebuilt: $BIN"
else
  nvcc -std=c++17 -O3 -lineinfo -gencode=arch=compute_90a,code=sm_90a -Xptxas -v \
    -o "$BIN" bench/gpu/softmax_kernels.cu >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 3; }
fi
grep -E "registers|spill" "$OUT/build.log" | paste - - | grep -E "fwd|bwd" >/dev/null
python3 - "$OUT/build.log" <<'PY' | tee -a "$OUT/gpu.txt"
import re, sys
name = None
for line in open(sys.argv[1]):
    m = re.search(r"Compiling entry function '(\S+)'", line)
    if m:
        name = m.group(1)
    m = re.search(r"(\d+) bytes spill stores", line)
    if m and name:
        spill = m.group(1)
    m = re.search(r"Used (\d+) registers", line)
    if m and name and re.search(r"(fwd|bwd)\w*_kernel", name):
        short = re.sub(r"_ZN4lasp3smx\d+", "", name)[:40]
        print(f"  {short}: {m.group(1)} regs, {spill} B spill stores")
PY
# ptxas reports wgmma serialization (C75xx: the MMAs then run one at a time) as info, not as a warning.
if grep -q "C75" "$OUT/build.log"; then
  echo "ptxas serialized wgmmas: $(grep -c C75 "$OUT/build.log") C75xx lines in build.log" | tee -a "$OUT/gpu.txt"
fi
if command -v cuobjdump >/dev/null; then
  cuobjdump -sass "$BIN" >/tmp/softmax_kernels.sass 2>/dev/null
  echo "SASS: $(grep -c HMMA /tmp/softmax_kernels.sass) HMMA, $(grep -cE 'LDL|STL' /tmp/softmax_kernels.sass) LDL/STL" |
    tee -a "$OUT/gpu.txt"
fi

echo "== checks and our timings"
"$BIN" "$@" 2>&1 | tee "$OUT/softmax_kernels.log"
ours_rc=${PIPESTATUS[0]}

if [ "${PROFILE:-0}" = 1 ] && command -v ncu >/dev/null; then
  echo "== ncu (one forward and one backward launch at 16K)"
  timeout 120 ncu --target-processes all -k regex:"${NCU_KERNELS:-fwd_ws|bwd_ws}" --launch-count 2 \
    --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
    --section WarpStateStats --section Occupancy \
    "$BIN" --bench-only --tokens 16384 --runs 1 >"$OUT/ncu.txt" 2>&1
  grep -E "fwd_ws|bwd_ws|fwd_wgmma|bwd_wgmma|Duration|Compute \(SM\) Throughput|Memory Throughput|L2 Cache Throughput|Executed Ipc A|Issue Slots Busy|Stall|Achieved Occupancy" \
    "$OUT/ncu.txt" | head -40
fi

echo "== sdpa"
if [ "${SKIP_SDPA:-0}" = 1 ]; then
  echo "skipped (SKIP_SDPA=1)" | tee "$OUT/sdpa.log"
else
  PYTHONUNBUFFERED=1 python3 bench/gpu/sdpa_compare.py ${SKIP_FIND:+--no-find} 2>&1 | tee "$OUT/sdpa.log"
fi

echo "== summary"
python3 - "$OUT/softmax_kernels.log" "$OUT/sdpa.log" <<'PY' | tee "$OUT/summary.md"
import sys
ours, sdpa = {}, {}
for line in open(sys.argv[1]):
    f = line.split()
    if f and f[0] == "OURS":
        ours[(f[1], int(f[2]))] = (float(f[3]), float(f[4]))
    if f and f[0] == "CHECKS":
        print(line.strip())
for line in open(sys.argv[2]):
    f = line.split()
    if f and f[0] == "SDPA":
        sdpa[(f[1], int(f[2]))] = [float(x) for x in f[3:]]
    if f and (f[0] in ("SDPAERR", "torch") or line.startswith("cudnn")):
        print(line.strip())
nan = float("nan")
print()
print("| tokens | pass | ours ms | ours TFLOP/s | cuDNN ms | cuDNN TFLOP/s | flash ms | flash TFLOP/s | ours / cuDNN speed | ours / flash speed |")
print("|---|---|---|---|---|---|---|---|---|---|")
for T in sorted({t for (_, t) in ours}):
    for pas, key, si in (("fwd", "fwd", 0), ("fwd+bwd", "fwdbwd", 2)):
        if (key, T) not in ours:
            continue
        ms, tf = ours[(key, T)]
        c = sdpa.get(("cudnn", T), [nan] * 4)
        fl = sdpa.get(("flash", T), [nan] * 4)
        print(f"| {T} | {pas} | {ms:.2f} | {tf:.0f} | {c[si]:.2f} | {c[si+1]:.0f} | {fl[si]:.2f} | {fl[si+1]:.0f} | "
              f"{c[si] / ms:.2f} | {fl[si] / ms:.2f} |")
for (k, T), (ms, tf) in sorted(ours.items(), key=lambda x: (x[0][1], x[0][0])):
    if k.endswith("_mode"):
        print(f"ours {k} {T}: {int(ms)} (0 = mma.sync, 1 = wgmma)")
    else:
        print(f"ours {k} {T}: {ms:.3f} ms, {tf:.0f} TFLOP/s")
PY
exit "$ours_rc"
