#!/usr/bin/env python3
"""Rewrites a one-rank checkpoint of a lasp training run as if W ranks had written it, replicated or ZeRO-1, so a
one-GPU machine can check that the program resumes from another layout exactly (run-train.sh reshard).

    python3 bench/gpu/reshard_checkpoint.py SRC DST --world 2 --layout zero1 --main-cu PROGRAM/main.cu

SRC: a checkpoint folder written by one rank (replicated state: master, exp_avg, exp_avg_sq over the whole
parameter allocation). DST: a new folder with the same model.safetensors, config.json and trainer_state.json
(world_size W) and W optimizer shards in the layout train_checkpoint.cuh writes:
  replicated: rank r holds elements [r E / W, (r + 1) E / W) of each array, named as SRC's;
  zero1:      rank r holds its 1/W of every gradient block (main.cu's kGradientBlocks, in that order), back to
              back, named zero1.master, zero1.exp_avg, zero1.exp_avg_sq.
Written here from the layout's description, not from the program's code, so a resume from it checks both.
"""
import argparse
import json
import os
import re
import shutil
import struct
import sys

import numpy as np

NAMES = ["master", "exp_avg", "exp_avg_sq"]


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", f"{path}: {name} is {t['dtype']}, expected F32"
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4")
    return out


def write_safetensors(path, tensors):
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, array in tensors:
        header[name] = {"dtype": "F32", "shape": [int(array.size)], "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, array in tensors:
            f.write(array.astype("<f4").tobytes())


def gradient_blocks(main_cu):
    text = open(main_cu).read()
    body = re.search(r"kGradientBlocks\[\]\s*=\s*\{(.*?)\};", text, re.S)
    if body is None:
        sys.exit(f"{main_cu}: no kGradientBlocks table")
    return [(int(a), int(b)) for a, b in re.findall(r"\{\s*(\d+)\s*,\s*(\d+)\s*\}", body.group(1))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--world", type=int, required=True)
    ap.add_argument("--layout", choices=["replicated", "zero1"], required=True)
    ap.add_argument("--main-cu", help="the program's main.cu (its kGradientBlocks), for --layout zero1")
    args = ap.parse_args()
    state = json.load(open(os.path.join(args.src, "trainer_state.json")))
    if state["world_size"] != 1:
        sys.exit(f"{args.src} was written by {state['world_size']} ranks; this script starts from one")
    shard = read_safetensors(os.path.join(args.src, "optimizer-rank-0-of-1.safetensors"))
    arrays = [shard[n] for n in NAMES]
    elements = arrays[0].size
    os.makedirs(args.dst)
    for name in ["model.safetensors", "config.json"]:
        shutil.copyfile(os.path.join(args.src, name), os.path.join(args.dst, name))
    world = args.world
    for rank in range(world):
        if args.layout == "replicated":
            first, last = elements * rank // world, elements * (rank + 1) // world
            tensors = [(n, a[first:last]) for n, a in zip(NAMES, arrays)]
        else:
            blocks = gradient_blocks(args.main_cu)
            parts = []
            for a in arrays:
                pieces = []
                for offset, count in blocks:
                    if count % (4 * world):
                        sys.exit(f"block of {count} elements from {offset} does not split into {world} slices")
                    size = count // world
                    pieces.append(a[offset + rank * size : offset + (rank + 1) * size])
                parts.append(np.concatenate(pieces))
            tensors = [("zero1." + n, p) for n, p in zip(NAMES, parts)]
        write_safetensors(os.path.join(args.dst, f"optimizer-rank-{rank}-of-{world}.safetensors"), tensors)
    state["world_size"] = world
    with open(os.path.join(args.dst, "trainer_state.json"), "w") as f:
        json.dump(state, f, indent=2)
        f.write("\n")
    print(f"wrote {args.dst}: {world} {args.layout} shards of {elements} elements")


if __name__ == "__main__":
    main()
