#!/usr/bin/env bash
# Same-machine A/B of two prebuilt suites (prebuild.sh output, e.g. before and after a compiler change):
# builds both, then runs the programs matching PATTERN from A and from B alternately, ROUNDS times, and
# prints every program's median step time per round and the median over rounds.
# Usage (on the GPU machine, from the repository root): ab-compare.sh A_DIR B_DIR PATTERN [ROUNDS]
set -uo pipefail
a=$1 b=$2 pattern=$3 rounds=${4:-2}
OUT=${OUT:-/tmp/lasp-ab}
mkdir -p "$OUT"
for s in "$a" "$b"; do (cd "$s" && SUITE_FILTER='-' OUT=/tmp/ab-build bash run-prebuilt.sh > /dev/null 2>&1) & done
wait
for ((i = 1; i <= rounds; i++)); do
  for s in "$a" "$b"; do
    (cd "$s" && SUITE_FILTER="$pattern" OUT="/tmp/ab/$(basename "$s")/$i" bash run-prebuilt.sh > /dev/null 2>&1)
  done
done
python3 - "$a" "$b" "$rounds" <<'PY' | tee "$OUT/ab.txt"
import json, sys, os, statistics
a, b, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = {}
for s in (a, b):
    for i in range(1, rounds + 1):
        path = f"/tmp/ab/{os.path.basename(s)}/{i}/table.json"
        if not os.path.exists(path): continue
        for r in json.load(open(path)):
            rows.setdefault(r["program"], {}).setdefault(s, []).append(r.get("step_ms"))
print(f"{'program':24s} {'A: ' + a:>30s} {'B: ' + b:>30s}  B/A")
for prog, by in sorted(rows.items()):
    ma = statistics.median(x for x in by.get(a, []) if x) if by.get(a) else float("nan")
    mb = statistics.median(x for x in by.get(b, []) if x) if by.get(b) else float("nan")
    fa = " ".join(f"{x:.2f}" for x in by.get(a, []) if x)
    fb = " ".join(f"{x:.2f}" for x in by.get(b, []) if x)
    print(f"{prog:24s} {fa + f' -> {ma:.2f}':>30s} {fb + f' -> {mb:.2f}':>30s}  {mb / ma:.3f}")
PY
