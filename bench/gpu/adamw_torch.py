#!/usr/bin/env python3
"""torch.optim.AdamW against the program's AdamW kernel on the same numbers (issue 17: one optimizer step equal
within 1e-6 relative, fp32). Reads what bench/gpu/adamw_check.cu wrote: the initial weights, each step's
gradients, learning rate and clip factor, and the master weights the kernel left after each step; runs
torch.optim.AdamW (fp32, the single-tensor path) on the same inputs, with weight decay only on the rows the
table marks, and reports the largest difference per step relative to |w| + lr (see the comment at `rel`).

    python3 bench/gpu/adamw_torch.py OUT.bin [--tol 1e-6] [--device cuda]
"""

import argparse
import struct
import sys

import numpy as np
import torch


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    at = 0

    def take(fmt):
        nonlocal at
        values = struct.unpack_from("<" + fmt, data, at)
        at += struct.calcsize("<" + fmt)
        return values

    def floats(n):
        nonlocal at
        arr = np.frombuffer(data, dtype="<f4", count=n, offset=at).copy()
        at += 4 * n
        return arr

    n, steps, nrows = take("3q")
    beta1, beta2, eps, wd = take("4d")
    rows = [take("3q") for _ in range(nrows)]
    w0 = floats(n)
    per_step = []
    for _ in range(steps):
        lr, clip = take("2d")
        per_step.append((lr, clip, floats(n), floats(n)))
    if at != len(data):
        raise SystemExit(f"{path}: {len(data) - at} bytes left over: not adamw_check's output")
    return dict(n=n, beta1=beta1, beta2=beta2, eps=eps, wd=wd, rows=rows, w0=w0, steps=per_step)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file")
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    d = read(args.file)
    decayed = np.zeros(d["n"], dtype=bool)
    for offset, elements, decay in d["rows"]:
        decayed[offset : offset + elements] = bool(decay)
    idx = {True: torch.from_numpy(np.nonzero(decayed)[0]), False: torch.from_numpy(np.nonzero(~decayed)[0])}
    w0 = torch.from_numpy(d["w0"])
    params = {k: torch.nn.Parameter(w0[i].clone().to(args.device)) for k, i in idx.items()}
    opt = torch.optim.AdamW(
        [
            {"params": [params[True]], "weight_decay": d["wd"]},
            {"params": [params[False]], "weight_decay": 0.0},
        ],
        lr=d["steps"][0][0],
        betas=(d["beta1"], d["beta2"]),
        eps=d["eps"],
        foreach=False,
        fused=False,
    )
    worst_all = 0.0
    print(f"torch {torch.__version__} on {args.device}: {d['n']} parameters, {len(d['rows'])} rows, "
          f"{int(decayed.sum())} decayed; betas ({d['beta1']}, {d['beta2']}), eps {d['eps']}, weight decay {d['wd']}")
    for t, (lr, clip, grad, kernel_w) in enumerate(d["steps"], start=1):
        g = torch.from_numpy(grad) * torch.tensor(clip, dtype=torch.float32)  # the kernel scales g by the clip factor
        for k, i in idx.items():
            params[k].grad = g[i].to(args.device)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        got = torch.empty(d["n"], dtype=torch.float32)
        for k, i in idx.items():
            got[i] = params[k].detach().cpu()
        want = torch.from_numpy(kernel_w)
        # Relative to |w| + lr: an element's update is about lr at most, and the kernel's fmaf and torch's addcdiv
        # round it in a different order, so an element near 0 differs by a rounding of lr, not of w.
        rel = ((got.double() - want.double()).abs() / (got.double().abs() + lr)).max().item()
        worst_all = max(worst_all, rel)
        print(f"step {t}: lr {lr:g}, clip {clip:g}: largest relative difference kernel vs torch {rel:.2e}")
    ok = worst_all <= args.tol
    print(f"{'PASS' if ok else 'FAIL'}: {worst_all:.2e} {'<=' if ok else '>'} {args.tol:g}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
