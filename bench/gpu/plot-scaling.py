"""Scaling plot (SVG, no plotting library needed) from the suite's table.json files (summarize.py).

Usage: plot-scaling.py OUT.svg TABLE.json [TABLE.json ...]
Three panels over the GPU counts measured (1, 2, 4, and 8 when there): weak scaling of the 1B linear stack (b-lasp*: step time, 16K tokens per GPU), weak scaling of
the 1B hybrid stack (b-hyb-*: TFLOP/s per GPU, since softmax work per GPU grows with the global length), and
strong scaling at 64K global tokens (s-*: speedup over 1 GPU, with the ideal line).
"""
import json
import re
import sys

records = {}
for path in sys.argv[2:]:
    for r in json.load(open(path)):
        if r.get("step_ms"):
            records[r["program"]] = r

def series(prefix, field):
    points = []
    for name, r in records.items():
        m = re.fullmatch(re.escape(prefix) + r"-w(\d+)", name)
        if m:
            points.append((int(m.group(1)), r[field]))
    return sorted(points)

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
W, H, PAD, LEGEND = 330, 260, 48, 72

def panel(x0, title, ylabel, lines, ideal=None, ymin=None):
    ys = [y for _, pts in lines for _, y in pts] + ([y for _, y in ideal] if ideal else [])
    if not [y for _, pts in lines for _, y in pts]:
        return [f'<text x="{x0 + W / 2}" y="18" text-anchor="middle" font-size="13">{title}</text>',
                f'<text x="{x0 + W / 2}" y="{H / 2}" text-anchor="middle" font-size="11">not measured</text>']
    lo = min(ys) if ymin is None else ymin
    hi = max(ys) * 1.08
    gpus = sorted({g for _, pts in lines for g, _ in pts} | {g for g, _ in (ideal or [])})
    def px(g): return x0 + PAD + (gpus.index(g) if g in gpus else 0) * (W - PAD - 20) / (len(gpus) - 1)
    def py(y): return 30 + (H - 30 - PAD) * (1 - (y - lo) / (hi - lo))
    out = [f'<text x="{x0 + W / 2}" y="18" text-anchor="middle" font-size="13">{title}</text>',
           f'<line x1="{x0 + PAD}" y1="{H - PAD}" x2="{x0 + W - 10}" y2="{H - PAD}" stroke="#000"/>',
           f'<line x1="{x0 + PAD}" y1="30" x2="{x0 + PAD}" y2="{H - PAD}" stroke="#000"/>',
           f'<text x="{x0 + 12}" y="{(H - PAD + 30) / 2}" font-size="11" transform="rotate(-90 {x0 + 12} {(H - PAD + 30) / 2})" text-anchor="middle">{ylabel}</text>',
           f'<text x="{x0 + W / 2 + 10}" y="{H - 12}" text-anchor="middle" font-size="11">GPUs</text>']
    for g in gpus:
        out.append(f'<text x="{px(g)}" y="{H - PAD + 14}" text-anchor="middle" font-size="10">{g}</text>')
    for i in range(5):
        y = lo + (hi - lo) * i / 4
        out.append(f'<text x="{x0 + PAD - 4}" y="{py(y) + 3}" text-anchor="end" font-size="9">{y:.3g}</text>')
        out.append(f'<line x1="{x0 + PAD}" y1="{py(y)}" x2="{x0 + W - 10}" y2="{py(y)}" stroke="#ddd"/>')
    if ideal:
        out.append(f'<text x="{x0 + W - 10}" y="{H + 6}" text-anchor="end" font-size="10" fill="#888">dashed: ideal</text>')
        pts = " ".join(f"{px(g)},{py(y)}" for g, y in ideal)
        out.append(f'<polyline points="{pts}" fill="none" stroke="#888" stroke-dasharray="4 3"/>')
    for k, (label, points) in enumerate(lines):
        c = COLORS[k % len(COLORS)]
        pts = " ".join(f"{px(g)},{py(y)}" for g, y in points)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2"/>')
        out += [f'<circle cx="{px(g)}" cy="{py(y)}" r="3" fill="{c}"/>' for g, y in points]
        out.append(f'<text x="{x0 + PAD + 8}" y="{H + 6 + 13 * k}" font-size="10" fill="{c}">{label}</text>')
    return out

def counts(prefix):
    """The GPU counts measured for programs starting with `prefix` (1, 2, 4 and 8 when there)."""
    return sorted({int(n.rsplit("-w", 1)[1]) for n in records if n.startswith(prefix)})


def speedup(points):
    base = dict(points).get(1)
    return [(g, base / y) for g, y in points] if base else []

svg = []
svg += panel(0, "weak: 1B linear, 16K tokens/GPU", "step ms",
             [("LASP-2", series("b-lasp2", "step_ms")), ("LASP-1", series("b-lasp1", "step_ms"))], ymin=0)
svg += panel(W + 20, "weak: 1B hybrid, 16K tokens/GPU", "TFLOP/s per GPU",
             [("LASP-2H zigzag", series("b-hyb-ag-zz", "tflops")), ("LASP-2H contiguous", series("b-hyb-ag-ct", "tflops")),
              ("ring zigzag", series("b-hyb-ring-zz", "tflops")), ("Ulysses zigzag", series("b-hyb-uly-zz", "tflops"))], ymin=0)
svg += panel(2 * (W + 20), "strong: 64K tokens in all", "speedup over 1 GPU",
             [("LASP-2 (linear)", speedup(series("s-lasp2", "step_ms"))), ("LASP-1 (linear)", speedup(series("s-lasp1", "step_ms"))),
              ("LASP-2H (hybrid)", speedup(series("s-hyb-ag-zz", "step_ms"))), ("ring (hybrid)", speedup(series("s-hyb-ring-zz", "step_ms"))),
              ("Ulysses (hybrid)", speedup(series("s-hyb-uly-zz", "step_ms")))], ideal=[(g, g) for g in counts("s-")], ymin=0)
width = 3 * W + 40
open(sys.argv[1], "w").write(
    f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{H + LEGEND}" font-family="sans-serif">'
    f'<rect width="{width}" height="{H + LEGEND}" fill="#fff"/>' + "".join(svg) + "</svg>\n")
