#!/usr/bin/env bash
# On the GPU machine: build the linear-attention harness, run every check, time our kernels and fla's
# chunk_simple_gla on the same GPU, and print a short table last. Full logs go to $OUT (or /tmp/lasp-linear).
#   bash bench/gpu/run_linear.sh            (from the repository root; fla's source under .fla/)
#   SKIP_FLA=1 bash bench/gpu/run_linear.sh (ours only: fla's Triton autotuning takes minutes on a fresh machine)
#   FLA_ARGS="--variants g_gamma"           (fla's constant-decay path only: about half the autotuning time)
#   FLA_TIMEOUT=250                         (stop fla after that many seconds; the summary still prints)
#   PREBUILT=path/to/linear_kernels         (a harness binary built elsewhere for sm_90a; rebuilt here if it
#                                            does not start)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/lasp-linear}
mkdir -p "$OUT"
BIN=/tmp/linear_kernels
CASE=/tmp/lasp_case.bin

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw \
  --format=csv | tee "$OUT/gpu.txt"
nvcc --version | tail -2 | tee -a "$OUT/gpu.txt"

echo "== build"
# A prebuilt binary is used when it starts (its usage error, exit code 2, comes before any CUDA call).
if [ -n "${PREBUILT:-}" ] && { "$PREBUILT" --usage >/dev/null 2>&1; [ $? -eq 2 ]; }; then
  cp "$PREBUILT" "$BIN" && echo "prebuilt $PREBUILT" | tee "$OUT/build.log"
else
  nvcc -std=c++17 -O3 -lineinfo -gencode=arch=compute_90a,code=sm_90a --resource-usage \
    -o "$BIN" bench/gpu/linear_kernels.cu >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 3; }
  grep -E "spill|stack" "$OUT/build.log" | grep -v " 0 bytes spill stores, 0 bytes spill loads" | head -5
fi
if command -v cuobjdump >/dev/null; then
  cuobjdump -sass "$BIN" >/tmp/linear_kernels.sass 2>/dev/null
  echo "SASS: $(grep -c HMMA /tmp/linear_kernels.sass) HMMA, $(grep -cE 'LDL|STL' /tmp/linear_kernels.sass) LDL/STL" |
    tee -a "$OUT/gpu.txt"
fi

echo "== checks and our timings"
"$BIN" --dump "$CASE" "$@" 2>&1 | tee "$OUT/linear_kernels.log"
ours_rc=${PIPESTATUS[0]}

echo "== fla"
if [ "${SKIP_FLA:-0}" = 1 ]; then
  echo "skipped (SKIP_FLA=1)" | tee "$OUT/fla.log"
else
  # shellcheck disable=SC2086 # FLA_ARGS is a list of arguments
  PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/.fla${PYTHONPATH:+:$PYTHONPATH}" timeout "${FLA_TIMEOUT:-0}" \
    python3 bench/gpu/fla_compare.py --case "$CASE" ${FLA_ARGS:-} 2>&1 | tee "$OUT/fla.log"
fi

echo "== summary"
python3 - "$OUT/linear_kernels.log" "$OUT/fla.log" <<'PY' | tee "$OUT/summary.md"
import sys
ours, fla = [], {}
for line in open(sys.argv[1]):
    f = line.split()
    if f and f[0] == "OURS":
        ours.append((f[1], int(f[2]), *[float(x) for x in f[3:]]))
for line in open(sys.argv[2]):
    f = line.split()
    if f and f[0] == "FLA":
        fla[int(f[1])] = [float(x) for x in f[2:]]
    if f and f[0] in ("CEIL", "FLACHECK", "FLAERR"):
        print(line.rstrip() + "  ")
print()
print("| tokens | ours | ours ms | fla g_gamma ms | fla g ms | ours / fla g_gamma | ours / fla g | GFLOP | GB | floor ms (flop / bytes) | ours / floor |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
nan = float("nan")
for name, t, ms, gf, gb, ff, fbt in sorted(ours, key=lambda r: (r[1], r[0])):
    g, gg = (fla[t][0], fla[t][1]) if t in fla else (nan, nan)
    print(f"| {t} | {name} | {ms:.3f} | {gg:.3f} | {g:.3f} | {ms / gg:.2f} | {ms / g:.2f} | {gf:.0f} | {gb:.2f} | {ff:.3f} / {fbt:.3f} | {ms / max(ff, fbt):.2f} |")
PY
exit "$ours_rc"
