// templates/runtime/safetensors.cuh's host logic, compiled with g++ (no CUDA needed) into
// test/safetensors-harness.cpp. What it writes is parsed here independently, following the format's
// specification (8-byte little-endian length, JSON header padded with spaces to 8 bytes, data back to
// back), and files written here are read by it, so the format is checked against the spec, not itself.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { buildHarness, gxx } from "./host-harness.js";

const dir = mkdtempSync(join(tmpdir(), "lasp-safetensors-"));
const harness = join(dir, "harness");

/** The tensors the harness writes: bf16 as their 16 bits, f32 as numbers. */
const EMBED = Array.from({ length: 12 }, (_, i) => 0x3f80 + i);
const UP = Array.from({ length: 10 }, (_, i) => 0x4000 + 3 * i);
const NORM = [1.5, -2.25, 0.125];

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(harness, args, { encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}

/** The harness's `read-bf16 ... masters` of a tensor: each value's (high, low) 16-bit halves as numbers. */
function masterHalves(path: string, name: string): [number, number][] {
  const r = run("read-bf16", path, name, "masters");
  expect(r.status).toBe(0);
  return r.stdout
    .trim()
    .split(" ")
    .map((p) => p.split(":").map((h) => parseInt(h, 16)) as [number, number]);
}

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** A safetensors file from parts, written here (not by the header): header text as given, then data. */
function safetensorsFile(header: string, data: Buffer): Buffer {
  const padded = header + " ".repeat((8 - (header.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(padded.length));
  return Buffer.concat([length, Buffer.from(padded, "utf8"), data]);
}

const u16 = (values: number[]): Buffer => Buffer.from(new Uint16Array(values).buffer);
const f32 = (values: number[]): Buffer => Buffer.from(new Float32Array(values).buffer);

describe.skipIf(!gxx)("safetensors.cuh (host side, compiled with g++)", () => {
  let file: string;

  beforeAll(() => {
    const build = buildHarness("safetensors-harness.cpp", harness);
    expect(build.stderr).toBe("");
    expect(build.status).toBe(0);
    file = join(dir, "model.safetensors");
    expect(run("write", file)).toMatchObject({ status: 0, stdout: "wrote 3 tensors\n" });
  }, 60_000);

  it("writes the format the specification describes, parsed here independently", () => {
    const bytes = readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const text = bytes.subarray(8, 8 + n).toString("utf8");
    expect(text.startsWith("{")).toBe(true);
    expect(text.trimEnd().endsWith("}")).toBe(true);
    expect(text.length - text.trimEnd().length).toBeLessThan(8);
    const header = JSON.parse(text) as Record<string, Entry | Record<string, string>>;
    expect(header["__metadata__"]).toEqual({ format: "pt" });
    expect(header["model.embed_tokens.weight"]).toEqual({
      dtype: "BF16",
      shape: [4, 3],
      data_offsets: [0, 24],
    });
    expect(header["model.layers.0.mlp.up_proj.weight"]).toEqual({
      dtype: "BF16",
      shape: [2, 5],
      data_offsets: [24, 44],
    });
    expect(header["model.norm.weight"]).toEqual({ dtype: "F32", shape: [3], data_offsets: [44, 56] });
    const data = bytes.subarray(8 + n);
    expect(data.length).toBe(56);
    const bf16 = (from: number, count: number) =>
      Array.from({ length: count }, (_, i) => data.readUInt16LE(from + 2 * i));
    expect(bf16(0, 12)).toEqual(EMBED);
    expect(bf16(24, 10)).toEqual(UP);
    expect([0, 1, 2].map((i) => data.readFloatLE(44 + 4 * i))).toEqual(NORM);
  });

  it("writes token ids as I32, little-endian, read back whole (what --save-grads adds)", () => {
    const path = join(mkdtempSync(join(tmpdir(), "lasp-ids-")), "ids.safetensors");
    expect(run("write-ids", path)).toMatchObject({ status: 0, stdout: "wrote 2 tensors\n" });
    const bytes = readFileSync(path);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Record<string, Entry>;
    expect(header["input_ids"]).toEqual({ dtype: "I32", shape: [2, 3], data_offsets: [0, 24] });
    expect(header["labels"]).toEqual({ dtype: "I32", shape: [2, 3], data_offsets: [24, 48] });
    const data = bytes.subarray(8 + n);
    expect([0, 1, 2, 3, 4, 5].map((i) => data.readInt32LE(24 + 4 * i))).toEqual([7, 128255, 3, 3, 1, -1]);
  });

  it("writes tensors pulled from sources in pieces (a checkpoint straight from the GPU) byte for byte the same", () => {
    const path = join(mkdtempSync(join(tmpdir(), "lasp-sourced-")), "model.safetensors");
    const r = run("write-sourced", path);
    expect(r.status).toBe(0);
    // 24 bytes of bf16 in pieces of 5 (elements split across pieces), then 12 bytes of f32.
    expect(r.stdout).toBe("0+5 5+5 10+5 15+5 20+4 0+5 5+5 10+2 \nwrote 3 tensors\n");
    expect(readFileSync(path).equals(readFileSync(file))).toBe(true);
  });

  it("keeps the old file when a source fails, and names the tensor", () => {
    const folder = mkdtempSync(join(tmpdir(), "lasp-sourced-"));
    const path = join(folder, "model.safetensors");
    writeFileSync(path, "old");
    const r = run("write-sourced", path, "fail");
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `cannot write ${path}: cannot read tensor \`model.norm.weight\` to write it (the old file, if any, is kept)`,
    );
    expect(readFileSync(path, "utf8")).toBe("old");
    expect(readdirSync(folder)).toEqual(["model.safetensors"]);
  });

  it("reads back what it wrote, and leaves no temporary file beside it", () => {
    expect(run("read", file)).toMatchObject({ status: 0, stdout: "ok 3 tensors format=pt\n" });
    expect(readdirSync(dir).sort()).toEqual(["harness", "model.safetensors"]);
  });

  it("reads a part of a tensor without the rest, and refuses a part past its end", () => {
    expect(run("read-part", file, "model.norm.weight", "1", "2")).toMatchObject({
      status: 0,
      stdout: "-2.25 0.125\n",
    });
    // up_proj's bf16 values are 0x4000 + 3 i: elements 4 to 7.
    expect(run("read-part", file, "model.layers.0.mlp.up_proj.weight", "4", "3").stdout).toBe(
      "400c 400f 4012\n",
    );
    expect(run("read-part", file, "lm_head.weight", "0", "1")).toMatchObject({
      status: 1,
      stderr: `${file} has no tensor \`lm_head.weight\` to read a part of`,
    });
    expect(run("read-part", file, "model.norm.weight", "2", "2")).toMatchObject({
      status: 1,
      stderr: `cannot read elements 2 to 4 of \`model.norm.weight\` in ${file}: it has 3`,
    });
  });

  it("replaces an existing file whole", () => {
    const path = join(dir, "replaced.safetensors");
    writeFileSync(path, "an old file, longer than nothing");
    expect(run("write", path).status).toBe(0);
    expect(readFileSync(path)).toEqual(readFileSync(file));
  });

  it("reads a file written elsewhere: keys in another order, spaces, other metadata", () => {
    const header = `{ "model.norm.weight" : { "shape": [3], "data_offsets": [44, 56], "dtype": "F32" },
      "model.embed_tokens.weight": {"data_offsets":[0,24],"dtype":"BF16","shape":[4,3]},
      "__metadata__": {"format": "pt", "note": "a \\"quoted\\" \\u0041"},
      "model.layers.0.mlp.up_proj.weight": {"dtype":"BF16","shape":[2,5],"data_offsets":[24,44]} }`;
    const path = join(dir, "other.safetensors");
    writeFileSync(path, safetensorsFile(header, Buffer.concat([u16(EMBED), u16(UP), f32(NORM)])));
    expect(run("read", path)).toMatchObject({
      status: 0,
      stdout: 'ok 3 tensors format=pt note=a "quoted" A\n',
    });
  });

  it("says a truncated file is truncated, in the data or in the header", () => {
    const bytes = readFileSync(file);
    const short = join(dir, "short.safetensors");
    writeFileSync(short, bytes.subarray(0, bytes.length - 2));
    const n = Number(bytes.readBigUInt64LE(0));
    expect(run("read", short)).toEqual({
      status: 1,
      stdout: "",
      stderr: `${short} is truncated: its header places 56 bytes of tensor data, the file holds 54 after the header`,
    });
    writeFileSync(short, bytes.subarray(0, 20));
    expect(run("read", short).stderr).toBe(
      `${short} is truncated or not a safetensors file: its header length is ${n} bytes, the file has 20 in all`,
    );
    writeFileSync(short, bytes.subarray(0, 5));
    expect(run("read", short).stderr).toBe(
      `${short} is not a safetensors file: 5 bytes, too short for the 8-byte header length`,
    );
  });

  it("takes F32 where BF16 is expected and F32 is allowed (--load-weights), rounding to nearest even", () => {
    // The harness's own file: BF16 tensors as they are, the F32 norm gains rounded (exact in bf16 here).
    expect(run("read-bf16", file, "model.layers.0.mlp.up_proj.weight").stdout).toBe(
      `${UP.map((v) => v.toString(16)).join(" ")}\n`,
    );
    expect(run("read-bf16", file, "model.norm.weight").stdout).toBe("3fc0 c010 3e00\n");
    // An fp32 save: up_proj as F32, read in pieces of 3. Ties of an even and an odd bf16, just above a tie, a
    // negative tie, the largest fp32 (rounds to infinity, as PyTorch's cast does), a NaN (stays one), the
    // smallest subnormal, 1, -pi, and a carry into the exponent.
    const bits = [
      0x3f808000, 0x3f818000, 0x3f808001, 0xbf808000, 0x7f7fffff, 0x7fc00001, 0x00000001, 0x3f800000,
      0xc0490fdb, 0x477fffff,
    ];
    const header = JSON.stringify({
      "model.embed_tokens.weight": { dtype: "BF16", shape: [4, 3], data_offsets: [0, 24] },
      "model.layers.0.mlp.up_proj.weight": { dtype: "F32", shape: [2, 5], data_offsets: [24, 64] },
      "model.norm.weight": { dtype: "F32", shape: [3], data_offsets: [64, 76] },
    });
    const path = join(dir, "f32.safetensors");
    writeFileSync(
      path,
      safetensorsFile(
        header,
        Buffer.concat([u16(EMBED), Buffer.from(new Uint32Array(bits).buffer), f32(NORM)]),
      ),
    );
    expect(run("read-bf16", path, "model.layers.0.mlp.up_proj.weight")).toMatchObject({
      status: 0,
      stdout: "3f80 3f82 3f81 bf80 7f80 7fc0 0000 3f80 c049 4780\n",
    });
    // Train mode keeps an F32 value whole (the masters' two halves, master_weights.cuh): the high half rounded to
    // nearest with ties away from zero, and (hi << 16) + the signed low half is the value's bits; a BF16 tensor's
    // low halves are 0.
    const pairs = masterHalves(path, "model.layers.0.mlp.up_proj.weight");
    expect(pairs.map(([hi]) => hi.toString(16).padStart(4, "0")).join(" ")).toBe(
      "3f81 3f82 3f81 bf81 7f80 7fc0 0000 3f80 c049 4780",
    );
    pairs.forEach(([hi, lo], i) => expect(((hi << 16) + ((lo << 16) >> 16)) >>> 0).toBe(bits[i]));
    expect(run("read-bf16", path, "model.embed_tokens.weight", "masters").stdout).toBe(
      `${EMBED.map((v) => `${v.toString(16)}:0000`).join(" ")}\n`,
    );
    // Without the allowance the same file is refused, naming the dtype found.
    expect(run("read", path).stderr).toBe(
      `${path}: tensor \`model.layers.0.mlp.up_proj.weight\` is F32 [2, 5], the model expects BF16 [2, 5]`,
    );
    // A dtype that is none of the three is refused with the allowance too, naming what would do.
    const f64 = join(dir, "f64-for-bf16.safetensors");
    const f64Header = JSON.stringify({
      "model.embed_tokens.weight": { dtype: "F64", shape: [4, 3], data_offsets: [0, 96] },
      "model.layers.0.mlp.up_proj.weight": { dtype: "BF16", shape: [2, 5], data_offsets: [96, 116] },
      "model.norm.weight": { dtype: "F32", shape: [3], data_offsets: [116, 128] },
    });
    writeFileSync(f64, safetensorsFile(f64Header, Buffer.concat([Buffer.alloc(96), u16(UP), f32(NORM)])));
    expect(run("read-bf16", f64, "model.norm.weight")).toMatchObject({
      status: 1,
      stderr: `${f64}: tensor \`model.embed_tokens.weight\` is F64 [4, 3], the model expects BF16, F32 or F16 [4, 3]`,
    });
  });

  it("takes F16 where BF16 is expected and wider values are allowed: widened to F32 exactly, then as F32", () => {
    // 1, 1 + 2^-10 (below a bf16 tie), 1 + 2^-8 (a tie to the even 3f80), 1 + 3 * 2^-8 (a tie to the even 3f82),
    // the smallest subnormal half, the largest subnormal, the largest half (rounds up to 65536), -infinity, a
    // NaN, -0; read in pieces of 3 (the harness's scratch), each widened in place.
    const halves = [0x3c00, 0x3c01, 0x3c04, 0x3c0c, 0x0001, 0x03ff, 0x7bff, 0xfc00, 0x7e00, 0x8000];
    const widened = [
      0x3f800000, 0x3f802000, 0x3f808000, 0x3f818000, 0x33800000, 0x387fc000, 0x477fe000, 0xff800000,
      0x7fc00000, 0x80000000,
    ];
    const path = join(dir, "f16.safetensors");
    const header = JSON.stringify({
      "model.embed_tokens.weight": { dtype: "BF16", shape: [4, 3], data_offsets: [0, 24] },
      "model.layers.0.mlp.up_proj.weight": { dtype: "F16", shape: [2, 5], data_offsets: [24, 44] },
      "model.norm.weight": { dtype: "F32", shape: [3], data_offsets: [44, 56] },
    });
    writeFileSync(path, safetensorsFile(header, Buffer.concat([u16(EMBED), u16(halves), f32(NORM)])));
    expect(run("read-bf16", path, "model.layers.0.mlp.up_proj.weight")).toMatchObject({
      status: 0,
      stdout: "3f80 3f80 3f80 3f82 3380 3880 4780 ff80 7fc0 8000\n",
    });
    // Train mode keeps each whole: (hi << 16) + the signed low half is the half's value as an fp32.
    const pairs = masterHalves(path, "model.layers.0.mlp.up_proj.weight");
    expect(pairs).toHaveLength(halves.length);
    pairs.forEach(([hi, lo], i) => expect(((hi << 16) + ((lo << 16) >> 16)) >>> 0).toBe(widened[i]));
    // Without the allowance F16 is refused as before.
    expect(run("read", path).stderr).toBe(
      `${path}: tensor \`model.layers.0.mlp.up_proj.weight\` is F16 [2, 5], the model expects BF16 [2, 5]`,
    );
  });

  it("names the tensor, the expected and the found dtype", () => {
    expect(run("read", file, "dtype")).toMatchObject({
      status: 1,
      stderr: `${file}: tensor \`model.norm.weight\` is F32 [3], the model expects BF16 [3]`,
    });
    const header = JSON.stringify({
      "model.embed_tokens.weight": { dtype: "BF16", shape: [4, 3], data_offsets: [0, 24] },
      "model.layers.0.mlp.up_proj.weight": { dtype: "BF16", shape: [2, 5], data_offsets: [24, 44] },
      "model.norm.weight": { dtype: "F16", shape: [3], data_offsets: [44, 50] },
    });
    const path = join(dir, "f16.safetensors");
    writeFileSync(path, safetensorsFile(header, Buffer.concat([u16(EMBED), u16(UP), u16([1, 2, 3])])));
    expect(run("read", path).stderr).toBe(
      `${path}: tensor \`model.norm.weight\` is F16 [3], the model expects F32 [3]`,
    );
  });

  it("names the tensor, the expected and the found shape", () => {
    expect(run("read", file, "shape")).toMatchObject({
      status: 1,
      stderr: `${file}: tensor \`model.embed_tokens.weight\` is BF16 [4, 3], the model expects BF16 [3, 4]`,
    });
  });

  it("refuses a missing tensor and one the model does not have", () => {
    expect(run("read", file, "missing").stderr).toBe(
      `${file} has no tensor \`lm_head.weight\` (the model expects BF16 [4, 3])`,
    );
    expect(run("read", file, "fewer").stderr).toBe(
      `${file} has a tensor \`model.norm.weight\` (F32 [3]) that the model does not have`,
    );
  });

  it("refuses offsets that do not match the shape, and headers that are not JSON", () => {
    const data = Buffer.concat([u16(EMBED), u16(UP), f32(NORM)]);
    const path = join(dir, "bad.safetensors");
    const entries = {
      "model.embed_tokens.weight": { dtype: "BF16", shape: [4, 3], data_offsets: [0, 22] },
      "model.layers.0.mlp.up_proj.weight": { dtype: "BF16", shape: [2, 5], data_offsets: [22, 44] },
      "model.norm.weight": { dtype: "F32", shape: [3], data_offsets: [44, 56] },
    };
    writeFileSync(path, safetensorsFile(JSON.stringify(entries), data));
    expect(run("read", path).stderr).toBe(
      `${path}: tensor \`model.embed_tokens.weight\` has data_offsets [0, 22], which do not hold BF16 [4, 3] (24 bytes)`,
    );
    writeFileSync(path, safetensorsFile('{"model.norm.weight": {"dtype": "F32", "shape": [3}', data));
    expect(run("read", path).stderr).toMatch(
      new RegExp(
        `^${path.replace(/[.]/g, "\\.")} has an unreadable safetensors header: expected '\\]' at byte \\d+`,
      ),
    );
  });

  it("says why it cannot write, and leaves nothing behind", () => {
    const path = join(dir, "no-such-folder", "model.safetensors");
    const r = run("write", path);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `cannot write ${path}: cannot create ${path}.tmp.${r.stderr.match(/tmp\.(\d+)/)?.[1]} (No such file or directory)`,
    );
  });

  describe("safetensors_shards.cuh: Hugging Face's sharded checkpoints (--load-weights PATH)", () => {
    const SHARD1 = "model-00001-of-00002.safetensors";
    const SHARD2 = "model-00002-of-00002.safetensors";
    const INDEX = "model.safetensors.index.json";
    /** A folder as save_pretrained writes a sharded model: the embedding in one file, the rest in another. */
    const sharded = (name: string, map: Record<string, string> | undefined = undefined): string => {
      const folder = join(dir, name);
      mkdirSync(folder, { recursive: true });
      const embed = { "model.embed_tokens.weight": { dtype: "BF16", shape: [4, 3], data_offsets: [0, 24] } };
      writeFileSync(join(folder, SHARD1), safetensorsFile(JSON.stringify(embed), u16(EMBED)));
      const rest = {
        "model.layers.0.mlp.up_proj.weight": { dtype: "BF16", shape: [2, 5], data_offsets: [0, 20] },
        "model.norm.weight": { dtype: "F32", shape: [3], data_offsets: [20, 32] },
      };
      writeFileSync(
        join(folder, SHARD2),
        safetensorsFile(JSON.stringify(rest), Buffer.concat([u16(UP), f32(NORM)])),
      );
      const weightMap = map ?? {
        "model.norm.weight": SHARD2,
        "model.embed_tokens.weight": SHARD1,
        "model.layers.0.mlp.up_proj.weight": SHARD2,
      };
      writeFileSync(
        join(folder, INDEX),
        JSON.stringify(
          { metadata: { total_size: 56, format: { nested: [1, 2] } }, weight_map: weightMap },
          null,
          2,
        ),
      );
      return folder;
    };

    it("reads each tensor from the shard the index names, given the index or its folder", () => {
      const folder = sharded("sharded");
      const index = join(folder, INDEX);
      expect(run("read-shards", folder)).toMatchObject({
        status: 0,
        stdout: `ok 3 tensors from 2 files of ${index}\n`,
      });
      expect(run("read-shards", index)).toMatchObject({
        status: 0,
        stdout: `ok 3 tensors from 2 files of ${index}\n`,
      });
    });

    it("takes one file, or a folder holding model.safetensors, and says what a folder lacks", () => {
      expect(run("read-shards", file)).toMatchObject({ status: 0, stdout: "ok 3 tensors from 1 files\n" });
      const single = join(dir, "single");
      mkdirSync(single, { recursive: true });
      copyFileSync(file, join(single, "model.safetensors"));
      expect(run("read-shards", single)).toMatchObject({ status: 0, stdout: "ok 3 tensors from 1 files\n" });
      const empty = join(dir, "empty");
      mkdirSync(empty, { recursive: true });
      expect(run("read-shards", empty)).toMatchObject({
        status: 1,
        stderr:
          `${empty} is a folder with neither model.safetensors nor model.safetensors.index.json ` +
          "(the names Hugging Face's save_pretrained writes): name the weights file",
      });
    });

    it("checks the shards together against the model, naming the file of each tensor", () => {
      const folder = sharded("checked");
      const index = join(folder, INDEX);
      expect(run("read-shards", folder, "missing").stderr).toBe(
        `${index} has no tensor \`lm_head.weight\` (the model expects BF16 [4, 3])`,
      );
      expect(run("read-shards", folder, "fewer").stderr).toBe(
        `${join(folder, SHARD2)} has a tensor \`model.norm.weight\` (F32 [3]) that the model does not have`,
      );
      expect(run("read-shards", folder, "shape").stderr).toBe(
        `${join(folder, SHARD1)}: tensor \`model.embed_tokens.weight\` is BF16 [4, 3], the model expects BF16 [3, 4]`,
      );
    });

    it("refuses an index that disagrees with its shards, or is not an index", () => {
      const wrong = sharded("wrong", {
        "model.embed_tokens.weight": SHARD2,
        "model.layers.0.mlp.up_proj.weight": SHARD2,
        "model.norm.weight": SHARD2,
      });
      expect(run("read-shards", wrong).stderr).toBe(
        `${join(wrong, INDEX)} places the tensor \`model.embed_tokens.weight\` in ${join(wrong, SHARD2)}, which has no such tensor`,
      );
      const unplaced = sharded("unplaced", {
        "model.embed_tokens.weight": SHARD1,
        "model.layers.0.mlp.up_proj.weight": SHARD2,
      });
      expect(run("read-shards", unplaced).stderr).toBe(
        `${join(unplaced, SHARD2)} has a tensor \`model.norm.weight\` that ${join(unplaced, INDEX)} does not place there`,
      );
      const lost = sharded("lost", {
        "model.embed_tokens.weight": SHARD1,
        "model.layers.0.mlp.up_proj.weight": "model-00003-of-00003.safetensors",
      });
      expect(run("read-shards", lost).stderr).toBe(
        `cannot read ${join(lost, "model-00003-of-00003.safetensors")}: No such file or directory`,
      );
      const folder = sharded("not-index");
      const index = join(folder, INDEX);
      writeFileSync(index, JSON.stringify({ metadata: { total_size: 56 } }));
      expect(run("read-shards", index).stderr).toBe(
        `${index} has no "weight_map" (a Hugging Face index names each tensor's file there)`,
      );
      writeFileSync(
        index,
        `{"weight_map": {"model.norm.weight": "${SHARD2}", "model.norm.weight": "${SHARD1}"}}`,
      );
      expect(run("read-shards", index).stderr).toBe(
        `${index} names the tensor \`model.norm.weight\` twice in its weight_map`,
      );
      writeFileSync(index, '{"weight_map": {"model.norm.weight": 3}}');
      expect(run("read-shards", index).stderr).toMatch(
        new RegExp(
          `^${index.replace(/[.]/g, "\\.")} is not a Hugging Face weights index: expected '"' at byte \\d+ of `,
        ),
      );
    });
  });
});
