#!/usr/bin/env bash
# Issue 19's linear-layer goal in the whole program: the 64K hybrid's linear layers with packed documents
# (mean 2K) against `documents none`, the two programs alternating for ROUNDS rounds (default 3) on one GPU,
# because one run of each differed by up to 7% for the same layer (bench/results/2026-12-06-documents-
# allscan-h100.md). From the repository root on the GPU machine, with .gpu-suite from
# `make-suite.sh documents 1 && prebuild.sh` (it holds s-hyb-ag-zz-w1 and s-doc-hyb-ag-zz-w1):
#   bash bench/gpu/doc-layer-ab.sh        (OUT=dir for the logs; PAIR="none-program docs-program" to change;
#                                          SUITE=dir: another prebuilt folder holding the pair, e.g. .gpu-docbench)
# Prints per round each program's L (linear) and S (softmax) forward / backward / fwd+bwd as scheduled
# (overlapped) / fwd+bwd computation alone, ms (the `phase` events of bench.cuh's time_kind), and `traced`: the
# forward and backward passes as the program runs them, one each, first step's start to last step's end (the
# `trace` events, both streams, the projections beside included), then the medians over rounds and the ratio
# docs / none. On one GPU `overlapped` is ten passes back to back minus the projections timed alone, which
# reads more than the traced passes (bench/results/2026-12-06-documents-verify-h200.md).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/lasp-doc-layer-ab}
read -r none docs <<< "${PAIR:-s-hyb-ag-zz-w1 s-doc-hyb-ag-zz-w1}"
mkdir -p "$OUT"
for r in $(seq 1 "${ROUNDS:-3}"); do
  for p in "$none" "$docs"; do
    (cd "${SUITE:-.gpu-suite}" && SUITE_FILTER="$p" OUT="$OUT/r$r-$p" RANK_TIMEOUT=90 bash run-prebuilt.sh > "$OUT/r$r-$p.log" 2>&1)
    mkdir -p "$OUT/r$r-$p/logs" && tar xzf "$OUT/r$r-$p/logs.tgz" -C "$OUT/r$r-$p/logs" 2>/dev/null
  done
done
python3 - "$OUT" "$none" "$docs" "${ROUNDS:-3}" <<'PY'
import glob, json, statistics, sys
out, none, docs, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def phases(r, p):
    got, spans = {}, {}
    for f in glob.glob(f"{out}/r{r}-{p}/logs/{p}.r0.out"):
        for line in open(f):
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("event") == "trace" and e.get("kind") in ("L", "S") and e.get("streams") == "both":
                # A pass as the program runs it, step by step (trace_pass): first start to last end.
                k = f"{e['kind']}.traced_{e['pass']}"
                a, b = spans.get(k, (float("inf"), 0.0))
                spans[k] = (min(a, e["start_ms"]), max(b, e["end_ms"]))
                continue
            if e.get("event") != "phase":
                continue
            kind, _, what = e["name"].partition(".")
            if kind not in ("L", "S"):
                continue
            if what in ("forward", "backward"):
                got[e["name"]] = e["ms"]
            elif what == "comm":
                got[kind + ".compute_only"] = e["compute_only_ms"]
                got[kind + ".overlapped"] = e["overlapped_ms"]
    for kind in ("L", "S"):
        passes = [spans.get(f"{kind}.traced_{p}") for p in ("forward", "backward")]
        if all(passes):
            got[kind + ".traced"] = sum(b - a for a, b in passes)
    return got
keys = [k + "." + w for k in ("L", "S") for w in ("forward", "backward", "overlapped", "compute_only", "traced")]
table = {p: {k: [] for k in keys} for p in (none, docs)}
for r in range(1, rounds + 1):
    for p in (none, docs):
        ph = phases(r, p)
        print(f"round {r} {p:22s} " + "  ".join(f"{k} {ph[k]:.3f}" if k in ph else f"{k} -" for k in keys))
        for k in keys:
            if k in ph:
                table[p][k].append(ph[k])
print()
for k in keys:
    a, b = table[none][k], table[docs][k]
    if a and b:
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"{k:16s} none {ma:.3f} ms  docs {mb:.3f} ms  docs / none {mb / ma:.3f}  (rounds {len(a)}, {len(b)})")
PY
