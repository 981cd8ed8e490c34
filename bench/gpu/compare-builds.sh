#!/usr/bin/env bash
# Same-machine comparison of several prebuilt suites (prebuild.sh output: a baseline and variants of it):
# builds all of them at once, then runs the programs matching PATTERN from each suite in turn, ROUNDS times
# (round-robin, so drift of the machine spreads over every suite), and prints each program's median step
# time per round, the median over rounds, and its ratio to the first suite's.
# Usage (on the GPU machine, from the repository root): compare-builds.sh PATTERN ROUNDS SUITE [SUITE ...]
# where SUITE is DIR, or DIR@NAME=VALUE to run DIR's programs with that environment variable set (one build,
# two settings: `.gpu-suite .gpu-suite@LASP_COLLECTIVES=kernels`).
# Results: $OUT/compare.txt, $OUT/<label>.<round>.log, every run's table under /tmp/compare/<label>/<round>/,
# where <label> is the suite's directory name, with @NAME=VALUE for a variant.
set -uo pipefail
pattern=$1 rounds=$2
shift 2
OUT=${OUT:-/tmp/lasp-compare}
mkdir -p "$OUT"
dir_of() { echo "${1%%@*}"; }
label_of() { local d=${1%%@*}; echo "$(basename "$d")${1#"$d"}"; }
for s in $(for s in "$@"; do dir_of "$s"; done | sort -u); do
  (cd "$s" && SUITE_FILTER='-' OUT=/tmp/compare-build bash run-prebuilt.sh > /dev/null 2>&1) &
done
wait
for ((i = 1; i <= rounds; i++)); do
  for s in "$@"; do
    label=$(label_of "$s")
    setting=()
    [ "$s" != "$(dir_of "$s")" ] && setting=("${s#*@}")
    # Each run's own lines (a failed build's last lines among them) go to a log beside the results.
    (cd "$(dir_of "$s")" && env "${setting[@]}" SUITE_FILTER="$pattern" OUT="/tmp/compare/$label/$i" \
      bash run-prebuilt.sh > "$OUT/$label.$i.log" 2>&1)
    grep -h "build failed" -A3 "$OUT/$label.$i.log"
  done
done
labels=()
for s in "$@"; do labels+=("$(label_of "$s")"); done
python3 - "$rounds" "${labels[@]}" <<'PY' | tee "$OUT/compare.txt"
import json, os, statistics, sys
rounds, suites = int(sys.argv[1]), sys.argv[2:]
steps = {}  # program -> suite -> step times, one per round
for s in suites:
    for i in range(1, rounds + 1):
        path = f"/tmp/compare/{os.path.basename(s)}/{i}/table.json"
        if os.path.exists(path):
            for r in json.load(open(path)):
                if r.get("step_ms"):
                    steps.setdefault(r["program"], {}).setdefault(s, []).append(r["step_ms"])
print(f"{'program':22s} " + " ".join(f"{os.path.basename(s):>26s}" for s in suites))
for prog, by in sorted(steps.items()):
    base = statistics.median(by[suites[0]]) if by.get(suites[0]) else None
    cells = []
    for s in suites:
        if not by.get(s):
            cells.append(f"{'-':>26s}")
            continue
        m = statistics.median(by[s])
        ratio = f" ({m / base:.3f})" if base and s != suites[0] else ""
        cells.append(f"{' '.join(f'{x:.2f}' for x in by[s]) + f' -> {m:.2f}' + ratio:>26s}")
    print(f"{prog:22s} " + " ".join(cells))
PY
