#!/usr/bin/env python3
"""Splits a safetensors file into Hugging Face's sharded layout, as `save_pretrained(max_shard_size=...)` writes
it: OUT/model-0000K-of-0000N.safetensors and OUT/model.safetensors.index.json ({"metadata": {"total_size"},
"weight_map": {tensor: file}}). Plain Python, no packages, so it runs on the GPU machine as it is.

    python3 bench/gpu/shard_weights.py model.safetensors OUT --shards 3

Used by `bench/gpu/queue.sh shardload` to check that `--load-weights OUT` (the folder) gives the same losses as
`--load-weights model.safetensors`. `--f32` widens every BF16 tensor to F32 (exactly: a model saved in fp32 whose
values are bf16's), for the same check of an fp32 checkpoint. `--f16` narrows every BF16 tensor to F16 (rounded
to nearest even: a model saved in float16), `--f16-as-bf16` writes those same F16 values back as BF16 (each
F16 value narrowed from a bf16 one is a bf16 value again): a program loading the first must train as from the
second, bit for bit.
"""
import argparse
import json
import os
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", None)
    return header, data, meta


def write(path, entries, meta):
    """entries: [(name, dtype, shape, bytes)] in order."""
    header, offset = {}, 0
    for name, dtype, shape, blob in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
    if meta:
        header["__metadata__"] = meta
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode())
        for *_, blob in entries:
            f.write(blob)


def widen(header, data):
    """The data with every BF16 tensor widened to F32 (a bf16 value's bits are the float's high 16), the header's
    dtypes and offsets changed to match."""
    if sys.byteorder != "little":
        sys.exit("shard_weights.py --f32 widens on little-endian machines only")
    out, offset = [], 0
    for name in sorted(header, key=lambda k: header[k]["data_offsets"][0]):
        begin, end = header[name]["data_offsets"]
        blob = data[begin:end]
        if header[name]["dtype"] == "BF16":
            halves = struct.unpack(f"<{len(blob) // 2}H", blob)
            blob = struct.pack(f"<{len(halves)}I", *(h << 16 for h in halves))
            header[name]["dtype"] = "F32"
        header[name]["data_offsets"] = [offset, offset + len(blob)]
        offset += len(blob)
        out.append(blob)
    return b"".join(out)


def narrow(header, data, back_to_bf16):
    """The data with every BF16 tensor rounded to F16 (Python's half packing: nearest even; past 65504 an error),
    as F16, or with back_to_bf16 as the BF16 of those F16 values; prints how many values the rounding changed."""
    if sys.byteorder != "little":
        sys.exit("shard_weights.py --f16 narrows on little-endian machines only")
    out, offset, changed, total = [], 0, 0, 0
    for name in sorted(header, key=lambda k: header[k]["data_offsets"][0]):
        begin, end = header[name]["data_offsets"]
        blob = data[begin:end]
        if header[name]["dtype"] == "BF16":
            n = len(blob) // 2
            values = struct.unpack(f"<{n}f", struct.pack(f"<{n}I", *(h << 16 for h in struct.unpack(f"<{n}H", blob))))
            halves = struct.pack(f"<{n}e", *values)
            narrowed = struct.unpack(f"<{n}e", halves)
            changed += sum(a != b for a, b in zip(values, narrowed))
            total += n
            if back_to_bf16:
                words = struct.unpack(f"<{n}I", struct.pack(f"<{n}f", *narrowed))
                if any(w & 0xFFFF for w in words):
                    sys.exit(f"shard_weights.py: an F16 value of `{name}` is not a bf16 value")
                blob = struct.pack(f"<{n}H", *(w >> 16 for w in words))
            else:
                blob = halves
                header[name]["dtype"] = "F16"
        header[name]["data_offsets"] = [offset, offset + len(blob)]
        offset += len(blob)
        out.append(blob)
    print(f"narrowed {total} values to F16: {changed} changed by the rounding")
    return b"".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("out")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--f32", action="store_true", help="widen BF16 tensors to F32")
    ap.add_argument("--f16", action="store_true", help="narrow BF16 tensors to F16 (nearest even)")
    ap.add_argument("--f16-as-bf16", action="store_true", help="the --f16 values, written as BF16")
    args = ap.parse_args()
    header, data, meta = read(args.file)
    if args.f32:
        data = widen(header, data)
    elif args.f16 or args.f16_as_bf16:
        data = narrow(header, data, args.f16_as_bf16)
    names = sorted(header, key=lambda k: header[k]["data_offsets"][0])
    total = sum(header[k]["data_offsets"][1] - header[k]["data_offsets"][0] for k in names)
    os.makedirs(args.out, exist_ok=True)
    # Consecutive tensors into shards of about total / shards bytes each (at least one tensor a shard).
    shards, current, size = [], [], 0
    for name in names:
        begin, end = header[name]["data_offsets"]
        current.append((name, header[name]["dtype"], header[name]["shape"], data[begin:end]))
        size += end - begin
        if size >= total / args.shards and len(shards) < args.shards - 1:
            shards.append(current)
            current, size = [], 0
    if current:
        shards.append(current)
    weight_map = {}
    for k, entries in enumerate(shards):
        file = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        write(os.path.join(args.out, file), entries, meta)
        weight_map.update({name: file for name, *_ in entries})
    with open(os.path.join(args.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
    print(f"wrote {len(names)} tensors into {len(shards)} shards in {args.out}")


if __name__ == "__main__":
    main()
