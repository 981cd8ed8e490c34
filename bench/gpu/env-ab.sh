#!/usr/bin/env bash
# A/B of a runtime choice in one train program: the same program and steps under two environments (or of two
# programs built from specs that differ in one choice: PROG_B), alternating
# for ROUNDS rounds (so clocks and heat fall on both alike); per run the median step time of steps 6 on, and
# the losses of steps 1-3 (a choice that should not change the numbers shows the same losses). The runs write
# no checkpoint (--no-checkpoints: a 1B model's is 22 GB and half a minute); their run folders are made fresh
# under RUNS (default /tmp) and deleted after each run. From the repository root:
#   PROG=.gpu-ship/t-linear-1b-w1 A="LASP_MLP_GEMM=auto" B="LASP_MLP_GEMM=cublas" bash bench/gpu/env-ab.sh
#   PROG=.gpu-ship/t-linear-1b-w1 PROG_B=.gpu-ship/t-linear-1b-keep-w1 bash bench/gpu/env-ab.sh
# (A and B default to no environment; with PROG_B the table names the programs.)
# PROG's data paths are relative to its parent folder (as .gpu-suite's programs); STEPS (default 30), ROUNDS
# (default 2), OUT (default /tmp/lasp-env-ab): each run's events, stderr, and the table (ab.txt).
set -uo pipefail
cd "$(dirname "$0")/../.."
: "${PROG:?PROG=folder of a built train program}"
PROG_B=${PROG_B:-$PROG}
A=${A:-} B=${B:-}
[ "$PROG_B" != "$PROG" ] || [ -n "$A$B" ] || { echo "env-ab.sh: give A and B (environments) or PROG_B" >&2; exit 2; }
OUT=${OUT:-/tmp/lasp-env-ab}
parent=${RUNS:-/tmp}  # each run gets a folder of its own there
mkdir -p "$OUT"
for round in $(seq "${ROUNDS:-2}"); do
  for arm in A B; do
    env_words=${!arm}
    prog=$PROG
    [ "$arm" = A ] || prog=$PROG_B
    suite=$(dirname "$prog")
    name=$(basename "$prog")
    runs=$(mktemp -d "$parent/lasp-env-ab.XXXXXX")
    (cd "$suite" && env $env_words timeout 150 "./$name/prog" --rank 0 --world 1 --device 0 --mode train \
      --steps "${STEPS:-30}" --run-dir "$runs/run" --no-checkpoints > "$OUT/$arm.$round.jsonl" 2> "$OUT/$arm.$round.err")
    echo "$arm ($name $env_words) round $round exit $?"
    rm -rf "$runs"
  done
done
python3 - "$OUT" "$(basename "$PROG") $A" "$(basename "$PROG_B") $B" <<'PY' | tee "$OUT/ab.txt"
import glob, json, statistics, sys
out, names = sys.argv[1], {"A": sys.argv[2], "B": sys.argv[3]}
def steps(path):
    return [e for e in map(json.loads, (l for l in open(path) if l.startswith("{"))) if e["event"] == "step"]
med = {}
for arm in "AB":
    runs = sorted(glob.glob(f"{out}/{arm}.*.jsonl"))
    per_run = [statistics.median([e["ms"] for e in steps(p) if e["step"] >= 5] or [float("nan")]) for p in runs]
    med[arm] = statistics.median(per_run) if per_run else float("nan")
    first = [f"{e['loss']:.6f}" for e in steps(runs[0])[:3]] if runs else []
    print(f"{arm} {names[arm]:28} runs {' '.join(f'{v:.2f}' for v in per_run):24} median {med[arm]:8.2f} ms  losses 1-3 {' '.join(first)}")
print(f"A is {med['B'] / med['A']:.3f}x B's speed")
# Joules a step from the programs' `trained` events (every step of a run, the first's start-up included), where
# the programs read the energy counter.
def joules(path):
    t = [e for e in map(json.loads, (l for l in open(path) if l.startswith("{"))) if e["event"] == "trained"]
    return t[-1]["joules"] / t[-1]["steps"] if t and t[-1].get("joules") is not None and t[-1]["steps"] else None
energy = {arm: [j for j in map(joules, sorted(glob.glob(f"{out}/{arm}.*.jsonl"))) if j is not None] for arm in "AB"}
if energy["A"] and energy["B"]:
    ja, jb = statistics.median(energy["A"]), statistics.median(energy["B"])
    print(f"energy: A {ja:.2f} J a step, B {jb:.2f} J a step (medians of the runs): A spends {ja / jb:.4f}x B's")
# Every step's loss of A's and B's first runs, to the last bit (repr of the JSON double).
a, b = ([repr(e["loss"]) for e in steps(f"{out}/{arm}.1.jsonl")] for arm in "AB")
same = sum(x == y for x, y in zip(a, b))
# Two builds that add a sum in another order part at one step and never meet again: say where.
first = next((i + 1 for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
where = "" if first is None else f"; the first to differ: step {first}"
print(f"losses of round 1: {same} of {min(len(a), len(b))} steps the same bits{where}")
PY
