"""step-clocks.sh's table: the SM clock and power sampled through each run, and lasp's and PyTorch's steps
kernel by kernel as they ran (kernel_trace.cpp's CSV; torch_model.py --kernel-trace writes the same).

For each cuBLAS kernel name the launches of one step are grouped by duration (a new group where the next
longer launch is over 12% longer): one group is, in practice, one GEMM shape. A group found in both programs
with the same kernel name at a similar duration is the same product, timed in each program's own step.

Usage: python3 step_clocks_table.py SAMPLES_DIR LASP_TRACE.csv TORCH_TRACE.csv
"""

import csv
import glob
import os
import re
import statistics
import sys

from profile_table import GEMM, STEP_START, read_trace


def clocks(folder):
    print("| run | busy samples | SM clock median (MHz) | power median (W) | of limit (W) | samples within 3% of the limit |")
    print("| --- | --- | --- | --- | --- | --- |")
    for path in sorted(glob.glob(os.path.join(folder, "*.smi"))):
        busy = []
        for r in csv.reader(open(path)):
            try:
                clock, power, limit = (float(x) for x in r[:3])
            except ValueError:
                continue
            if power > 300:  # the GPU at work, not between runs
                busy.append((clock, power, limit))
        if not busy:
            continue
        near = 100 * sum(p >= 0.97 * lim for _, p, lim in busy) / len(busy)
        print(
            f"| {os.path.basename(path)[:-4]} | {len(busy)} | {statistics.median(b[0] for b in busy):.0f} |"
            f" {statistics.median(b[1] for b in busy):.0f} | {busy[0][2]:.0f} | {near:.0f}% |"
        )


def read(path):
    """(start ns, end ns, name) in start order, from profile_table's (start ns, name, us)."""
    return [(start, start + round(us * 1000), name) for start, name, us in read_trace(path)]


def steps_of(rows):
    """lasp's trace holds several steps, cut at the embedding's forward; PyTorch's one profiled step."""
    starts = [i for i, r in enumerate(rows) if STEP_START.search(r[2])]
    if len(starts) < 2:
        return [rows]
    # The first traced step is a warm-up (cuBLAS's first calls); the last may be cut short by the run's end.
    return [rows[a:b] for a, b in zip(starts[1:], starts[2:])]


def summary(label, steps):
    for s in steps:
        span = (s[-1][1] - s[0][0]) / 1e6
        busy = sum(e - b for b, e, _ in s) / 1e6
        gemm = sum(e - b for b, e, k in s if GEMM.search(k)) / 1e6
        yield label, span, busy, gemm


def groups(step):
    """{kernel name: [(launches, median us)]} for the cuBLAS kernels of one step, by duration group."""
    by = {}
    for b, e, k in step:
        if GEMM.search(k):
            by.setdefault(re.sub(r"\(.*$", "", k)[:70], []).append((e - b) / 1000)
    out = {}
    for name, us in by.items():
        us.sort()
        cut = [0] + [i for i in range(1, len(us)) if us[i] > 1.12 * us[i - 1]] + [len(us)]
        out[name] = [(b - a, statistics.median(us[a:b])) for a, b in zip(cut, cut[1:])]
    return out


def main():
    folder, lasp_path, torch_path = sys.argv[1:4]
    clocks(folder)
    traces = {}
    for label, path in (("lasp", lasp_path), ("PyTorch", torch_path)):
        if os.path.exists(path):
            traces[label] = steps_of(read(path))
    print("\n| program, step | span (ms) | kernel time (ms) | cuBLAS kernels (ms) |")
    print("| --- | --- | --- | --- |")
    for label, steps in traces.items():
        for i, (_, span, busy, gemm) in enumerate(summary(label, steps)):
            print(f"| {label} {i + 1} | {span:.2f} | {busy:.2f} | {gemm:.2f} |")
    if len(traces) < 2:
        return
    # One representative step of lasp's (the median by cuBLAS time) against PyTorch's profiled step.
    lasp_steps = sorted(traces["lasp"], key=lambda s: sum(e - b for b, e, k in s if GEMM.search(k)))
    mine, theirs = groups(lasp_steps[len(lasp_steps) // 2]), groups(traces["PyTorch"][0])
    print("\n| cuBLAS kernel | lasp: launches x median us | PyTorch: launches x median us |")
    print("| --- | --- | --- |")
    for name in sorted(set(mine) | set(theirs)):
        fmt = lambda gs: ", ".join(f"{n} x {us:.1f}" for n, us in gs) or "-"
        print(f"| {name} | {fmt(mine.get(name, []))} | {fmt(theirs.get(name, []))} |")


if __name__ == "__main__":
    main()
