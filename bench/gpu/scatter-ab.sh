#!/usr/bin/env bash
# Issue 18's dK/dV ReduceScatter: NCCL's kernel (LASP_COLLECTIVES=auto, the default) against the copy engines
# (LASP_COLLECTIVES=copy_engines: an AlltoAll and a sum in rank order, templates/runtime/reduce_scatter.cuh) on
# 2+ GPUs of one host. First the verify programs with the copy engines (the path's correctness), then the
# LASP-2H programs' bench, the two arms alternating for ROUNDS rounds (default 3). From the repository root on
# the GPU machine, with SUITE (default .gpu-suite) from `make-suite.sh softmax 4 && prebuild.sh` (its
# v-sm-ag-zz-gqa-d128-w2/w4 and b-hyb-ag-zz-w2/w4; those of more GPUs than the machine has are skipped):
#   bash bench/gpu/scatter-ab.sh        (OUT=dir for the logs; VERIFY="..." and BENCH="..." name the programs)
# Prints each verify program's line, per round and arm the S kind's backward and communication phases (the
# `phase` events) and the `collectives` event's `scatters` (which path ran), then the medians and the ratio
# copy_engines / auto.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/lasp-scatter-ab}
SUITE=${SUITE:-.gpu-suite}
mkdir -p "$OUT"
for p in ${VERIFY:-v-sm-ag-zz-gqa-d128-w2 v-sm-ag-zz-gqa-d128-w4}; do
  (cd "$SUITE" && LASP_COLLECTIVES=copy_engines SUITE_FILTER="$p" OUT="$OUT/verify-$p" RANK_TIMEOUT=90 \
    bash run-prebuilt.sh > "$OUT/verify-$p.log" 2>&1)
  grep -h "^$p exit" "$OUT/verify-$p.log" || echo "$p: no result (see $OUT/verify-$p.log)"
done
for r in $(seq 1 "${ROUNDS:-3}"); do
  for p in ${BENCH:-b-hyb-ag-zz-w2 b-hyb-ag-zz-w4}; do
    for arm in auto copy_engines; do
      dir="$OUT/r$r-$p-$arm"
      (cd "$SUITE" && LASP_COLLECTIVES=$arm SUITE_FILTER="$p" OUT="$dir" RANK_TIMEOUT=120 bash run-prebuilt.sh \
        > "$dir.log" 2>&1)
      mkdir -p "$dir/logs" && tar xzf "$dir/logs.tgz" -C "$dir/logs" 2>/dev/null
    done
  done
done
python3 - "$OUT" "${ROUNDS:-3}" ${BENCH:-b-hyb-ag-zz-w2 b-hyb-ag-zz-w4} <<'PY'
import glob, json, statistics, sys
out, rounds, programs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def events(r, p, arm):
    got = {}
    for f in glob.glob(f"{out}/r{r}-{p}-{arm}/logs/{p}.r0.out"):
        for line in open(f):
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("event") == "collectives":
                got["scatters"] = e.get("scatters")
            elif e.get("event") == "phase" and e["name"] in ("S.backward", "S.comm"):
                got[e["name"]] = e["ms"]
            elif e.get("event") == "summary":
                got["step"] = e["median_ms"]
    return got
for p in programs:
    table = {arm: {k: [] for k in ("S.backward", "S.comm", "step")} for arm in ("auto", "copy_engines")}
    for r in range(1, rounds + 1):
        for arm in ("auto", "copy_engines"):
            ev = events(r, p, arm)
            print(f"round {r} {p} {arm:12s} scatters on {ev.get('scatters', '-'):12s} " +
                  "  ".join(f"{k} {ev[k]:.3f}" if k in ev else f"{k} -" for k in table[arm]))
            for k in table[arm]:
                if k in ev:
                    table[arm][k].append(ev[k])
    for k in ("S.backward", "S.comm", "step"):
        a, b = table["auto"][k], table["copy_engines"][k]
        if a and b:
            ma, mb = statistics.median(a), statistics.median(b)
            print(f"{p} {k:10s} auto {ma:.3f} ms  copy_engines {mb:.3f} ms  copy_engines / auto {mb / ma:.3f}")
PY
