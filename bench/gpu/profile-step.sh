#!/usr/bin/env bash
# Where a whole-model step's time goes, kernel by kernel (Nsight Systems is not on the GPU machines; Nsight
# Compute times every kernel alone, at the clocks it finds: --clock-control none).
#   here:  bash bench/gpu/make-suite.sh all 1 && bash bench/gpu/make-train-data.sh && bash bench/gpu/prebuild.sh
#   there: bash bench/gpu/profile-step.sh [PROGRAM [MODE]]    (default m-linear-1b-w1 bench)
# Runs PROGRAM once without the profiler (its step time, for reference), then one step under ncu
# (warm-up 1: the second step's kernels are summed, the first's dropped), and writes $OUT/PROGRAM-kernels.csv
# (every kernel of the step) and a table per kernel name, largest first, with the step's sum of kernel times.
set -uo pipefail
cd "$(dirname "$0")/../.."
export NCCL_NVLS_ENABLE=0
prog=${1:-m-linear-1b-w1}
mode=${2:-bench}
OUT=${OUT:-/tmp/lasp-profile}
mkdir -p "$OUT"
suite=.gpu-suite
[ -x $suite/$prog/prog ] || (cd $suite && SUITE_FILTER=none OUT=$OUT/build bash run-prebuilt.sh > "$OUT/build.log" 2>&1)
args() { # run folder (train mode's checkpoints): one per run
  echo --rank 0 --world 1 --device 0 --nccl-id-file "/tmp/$prog.id" --mode "$mode"
  [ "$mode" = train ] && echo --run-dir "/tmp/$prog-$1"
}
(cd $suite && timeout 300 "$prog/prog" $(args plain) > "$OUT/$prog-plain.jsonl" 2> "$OUT/$prog-plain.err")
echo "$prog plain run: exit $?"
grep -h -E '"event": ?"(summary|trained)"' "$OUT/$prog-plain.jsonl" | tail -1
# Steps under the profiler (one warm-up): kernels are timed one by one, so the wall clock means nothing.
(cd $suite && timeout 540 ncu --clock-control none --metrics gpu__time_duration.sum --csv \
  --log-file "$OUT/$prog-ncu.csv" "$prog/prog" $(args ncu) --steps 2 --warmup 1 > "$OUT/$prog-ncu.jsonl" 2> "$OUT/$prog-ncu.err")
echo "$prog under ncu: exit $?"
python3 bench/gpu/profile_table.py "$OUT/$prog-ncu.csv" "$OUT/$prog-kernels.csv" | tee "$OUT/$prog-table.md"
