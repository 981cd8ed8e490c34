"""One step's kernels from an `ncu --csv --metrics gpu__time_duration.sum` log (bench/gpu/profile-step.sh), or
with --trace from kernel_trace.cpp's CSV (kernels as they ran in the program's stream of work).

The log holds every kernel of a run of several steps in launch order. Steps are cut where the embedding's
forward kernel starts one; the second step is kept (the first is a warm-up: cuBLAS picks algorithms, buffers
are touched for the first time). Writes that step's kernels (index, name, microseconds) to the CSV named second
and prints a table by kernel name, largest total first, with each name's share of the step's kernel time.

Usage: python3 profile_table.py [--trace] LOG.csv STEP_KERNELS.csv [STEP]   (STEP: which step, default 2)
"""

import csv
import io
import re
import sys
from collections import defaultdict

STEP_START = re.compile(r"embedding::forward_kernel|lasp::embedding::forward")
GEMM = re.compile(r"gemm|nvjet|cutlass|xmma", re.I)


def read_kernels(path):
    with open(path) as f:
        text = f.read()
    # ncu writes its own messages (==PROF==) before the CSV; the CSV starts at the header line.
    start = text.find('"ID"')
    if start < 0:
        sys.exit(f"{path}: no CSV header (did ncu profile anything?)")
    rows = []
    for r in csv.DictReader(io.StringIO(text[start:])):
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        value = float(r["Metric Value"].replace(",", ""))
        unit = r.get("Metric Unit", "ns")
        us = value / 1000 if unit in ("nsecond", "ns") else value * 1000 if unit in ("msecond", "ms") else value
        rows.append((int(r["ID"]), r["Kernel Name"], us))
    rows.sort()
    return rows


def read_trace(path):
    """kernel_trace.cpp's CSV: start_ns, end_ns, stream, name; in start order."""
    with open(path) as f:
        rows = [
            (int(r["start_ns"]), r["kernel"], (int(r["end_ns"]) - int(r["start_ns"])) / 1000) for r in csv.DictReader(f)
        ]
    rows.sort()
    return rows


def short(name):
    # Template arguments and parameter lists make names unreadable; keep the function's qualified name and,
    # for cuBLAS/CUTLASS kernels, the tile shape tokens.
    base = re.sub(r"\(.*$", "", name).removeprefix("void ")
    if GEMM.search(name) or "sm90" in name:
        tile = re.findall(r"\d+x\d+x\d+", name)
        base = re.sub(r"<.*$", "", base)
        return (base[:60] + (" " + tile[0] if tile else "")).strip()
    return re.sub(r"<.*$", "", base)[:80]


def main():
    args = sys.argv[1:]
    trace = "--trace" in args
    args = [a for a in args if a != "--trace"]
    log, out = args[0], args[1]
    which = int(args[2]) if len(args) > 2 else 2
    rows = read_trace(log) if trace else read_kernels(log)
    starts = [i for i, (_, name, _) in enumerate(rows) if STEP_START.search(name)]
    if len(starts) < which:
        sys.exit(f"{log}: {len(starts)} step starts (embedding forward kernels) found; need {which}")
    step = rows[starts[which - 1] : starts[which] if len(starts) > which else len(rows)]
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "kernel", "us"])
        for i, (_, name, us) in enumerate(step):
            w.writerow([i, name, f"{us:.2f}"])
    total = sum(us for _, _, us in step)
    by = defaultdict(lambda: [0, 0.0])
    for _, name, us in step:
        by[short(name)][0] += 1
        by[short(name)][1] += us
    print(f"steps found: {len(starts)}; step {which}: {len(step)} kernels, {total / 1000:.2f} ms of kernel time\n")
    print("| kernel | launches | ms | share |")
    print("| --- | --- | --- | --- |")
    for name, (n, us) in sorted(by.items(), key=lambda kv: -kv[1][1]):
        print(f"| {name} | {n} | {us / 1000:.3f} | {100 * us / total:.1f}% |")
    gemm = sum(us for _, name, us in step if GEMM.search(name))
    print(f"\nGEMMs (cuBLAS): {gemm / 1000:.2f} ms; everything else: {(total - gemm) / 1000:.2f} ms")


if __name__ == "__main__":
    main()
