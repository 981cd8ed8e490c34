"""The suite's table: one line per program from its ranks' JSON events (src/toolchain/PROTOCOL.md).

Usage: summarize.py DIR  -- DIR holds exits.txt ("<name> exit <code>" lines) and <name>.r<rank>.out files;
writes DIR/table.txt and DIR/table.json and prints the table.
"""
import glob
import json
import sys

out = sys.argv[1]
exits = dict(line.split(" exit ") for line in open(f"{out}/exits.txt").read().split("\n") if " exit " in line)
rows, records = [], []
for name in sorted(exits):
    events = []
    for f in sorted(glob.glob(f"{out}/{name}.r*.out")):
        for line in open(f):
            try:
                events.append(json.loads(line))
            except ValueError:
                pass
    record = {"program": name, "exit": int(exits[name].strip())}
    if name.startswith("v-"):
        errs = {}
        for e in events:
            if e.get("event") == "verify":
                errs[e["quantity"]] = max(errs.get(e["quantity"], 0), e["max_rel_err"])
        record["errors"] = errs
        line = " ".join(f"{q}={errs[q]:.1e}" for q in ("o", "dq", "dk", "dv") if q in errs)
    else:
        s = [e for e in events if e.get("event") == "summary"]
        if s:
            ms = sorted(x["median_ms"] for x in s)
            record.update(step_ms=ms[len(ms) // 2], rank_min_ms=ms[0], rank_max_ms=ms[-1], tflops=s[0]["tflops"],
                          tokens_per_s=s[0].get("tokens_per_s"), hidden=s[0]["hidden_comm_fraction"], kinds={})
            line = (f"step {ms[len(ms) // 2]:.2f} ms (ranks {ms[0]:.2f}-{ms[-1]:.2f}) tflops {s[0]['tflops']:.1f} "
                    f"hidden {s[0]['hidden_comm_fraction']:.2f}")
            # Per layer kind: attention with overlap on rank 0, and the spread of computation alone over ranks.
            kinds = sorted({e["name"][:-5] for e in events if e.get("event") == "phase" and e["name"].endswith(".comm")})
            for k in kinds:
                ph = sorted((e for e in events if e.get("event") == "phase" and e["name"] == f"{k}.comm"),
                            key=lambda e: e["rank"])
                comp = [e["compute_only_ms"] for e in ph]
                spread = (max(comp) / min(comp) - 1) * 100 if min(comp) > 0 else 0
                record["kinds"][k] = {"overlapped_ms": ph[0]["overlapped_ms"], "compute_only_ms": ph[0]["compute_only_ms"],
                                      "comm_ms": ph[0]["ms"], "rank_spread_pct": spread}
                line += (f" | {k}: attn {ph[0]['overlapped_ms']:.3f} ms (compute {ph[0]['compute_only_ms']:.3f}, "
                         f"comm {ph[0]['ms']:.3f}, rank spread {spread:.1f}%)")
        else:
            line = "no summary"
    rows.append((name, exits[name].strip(), line))
    records.append(record)
with open(f"{out}/table.txt", "w") as t:
    for r in rows:
        line = f"{r[0]:28s} exit {r[1]:>3s}  {r[2]}"
        print(line)
        t.write(line + "\n")
with open(f"{out}/table.json", "w") as j:
    json.dump(records, j, indent=1)
