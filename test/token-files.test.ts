// templates/runtime/token_files.cuh's host logic, compiled with g++ (no CUDA needed) into
// test/token-files-harness.cpp. The token files are written here from the formats' definitions (llm.c's
// dev/data/data_common.py write_datafile; Megatron-LM's megatron/core/datasets/indexed_dataset.py
// _IndexWriter), and the expected ids, targets and window order are computed here independently.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { megatron, type MegatronParts, type MegatronType } from "../src/data/test-megatron.js";
import { buildHarness, gxx } from "./host-harness.js";

const dir = mkdtempSync(join(tmpdir(), "lasp-token-files-"));
const harness = join(dir, "harness");

function run(...args: (string | number | bigint)[]): {
  status: number | null;
  stdout: string;
  stderr: string;
} {
  const r = spawnSync(
    harness,
    args.map((a) => String(a)),
    { encoding: "utf8" },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}

/** The numbers after `name` on the harness's line that starts with it. */
function line(stdout: string, name: string): number[] {
  const found = stdout.split("\n").find((l) => l.startsWith(name + " ") || l === name);
  if (found === undefined) throw new Error(`no line "${name}" in ${stdout}`);
  return found
    .split(" ")
    .slice(1)
    .map((v) => Number(v));
}

type LlmcKind = "gpt2" | "llama3";

/** llm.c's token file: 256 int32 (magic, version, count, zeros), then the tokens. */
function llmcFile(
  tokens: number[],
  kind: LlmcKind,
  header: { magic?: number; version?: number; count?: number } = {},
): Buffer {
  const head = Buffer.alloc(256 * 4);
  head.writeInt32LE(header.magic ?? (kind === "gpt2" ? 20240520 : 20240801), 0);
  head.writeInt32LE(header.version ?? (kind === "gpt2" ? 1 : 7), 4);
  head.writeInt32LE(header.count ?? tokens.length, 8);
  const data =
    kind === "gpt2"
      ? Buffer.from(new Uint16Array(tokens).buffer)
      : Buffer.from(new Uint32Array(tokens).buffer);
  return Buffer.concat([head, data]);
}

function writeMegatron(name: string, parts: MegatronParts): string {
  const prefix = join(dir, name);
  writeFileSync(prefix + ".bin", parts.bin);
  writeFileSync(prefix + ".idx", parts.idx);
  return prefix;
}

/** Tokens 0..n-1 mapped to distinct ids, some above 32767 and 65535 where the type holds them. */
const ids = (n: number, scale: number): number[] =>
  Array.from({ length: n }, (_, i) => (i * scale + 3) % 200000);

/** The same splitmix64 and Fisher-Yates shuffle as the header, written from their definitions with BigInt. */
function expectedOrder(windows: number, seed: bigint, epoch: bigint): number[] {
  const mask = (1n << 64n) - 1n;
  let state = (seed ^ ((epoch * 0xd1b54a32d192ed03n) & mask)) & mask;
  const next = (): bigint => {
    state = (state + 0x9e3779b97f4a7c15n) & mask;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask;
    return z ^ (z >> 31n);
  };
  const below = (bound: bigint): bigint => {
    const threshold = ((1n << 64n) - bound) % bound;
    for (;;) {
      const r = next();
      if (r >= threshold) return r % bound;
    }
  };
  const order = Array.from({ length: windows }, (_, i) => i);
  for (let i = windows; i > 1; i--) {
    const j = Number(below(BigInt(i)));
    [order[i - 1], order[j]] = [order[j]!, order[i - 1]!];
  }
  return order;
}

describe.skipIf(!gxx)("token_files.cuh (host side, compiled with g++)", () => {
  beforeAll(() => {
    const build = buildHarness("token-files-harness.cpp", harness);
    expect(build.stderr).toBe("");
    expect(build.status).toBe(0);
  }, 60_000);

  describe("llm.c token files", () => {
    it("reads GPT-2 files (magic 20240520, version 1) as uint16, ids above 32767 unchanged", () => {
      const tokens = ids(40, 1700).map((v) => v % 65536);
      const path = join(dir, "gpt2.bin");
      writeFileSync(path, llmcFile(tokens, "gpt2"));
      expect(run("info", path).stdout).toBe(`format=llm.c type=uint16 tokens=40 path=${path}\n`);
      expect(tokens.some((v) => v > 32767)).toBe(true);
      expect(line(run("read", path, 5, 20, 65536).stdout, "ids")).toEqual(tokens.slice(5, 25));
      expect(run("check", path, 65536).stdout).toBe("ok 40 tokens\n");
    });

    it("reads Llama 3 files (magic 20240801, version 7) as uint32", () => {
      const tokens = ids(30, 9001);
      const path = join(dir, "llama3.bin");
      writeFileSync(path, llmcFile(tokens, "llama3"));
      expect(run("info", path).stdout).toBe(`format=llm.c type=uint32 tokens=30 path=${path}\n`);
      expect(tokens.some((v) => v > 65535)).toBe(true);
      expect(line(run("read", path, 0, 30, 200000).stdout, "ids")).toEqual(tokens);
    });

    it("refuses a wrong magic, and says a .bin without .idx is no Megatron dataset either", () => {
      const path = join(dir, "magic.bin");
      writeFileSync(path, llmcFile([1, 2, 3], "gpt2", { magic: 20240522 }));
      expect(run("info", path)).toEqual({
        status: 1,
        stdout: "",
        stderr:
          `${path} is not an llm.c token file (nor a Megatron dataset: there is no ${join(dir, "magic")}.idx ` +
          `beside it): its magic number (int32 at byte 0) is 20240522, expected 20240520 (uint16 tokens) or ` +
          `20240801 (uint32 tokens)`,
      });
    });

    it("refuses a version llm.c does not write with that magic", () => {
      const path = join(dir, "version.tok");
      writeFileSync(path, llmcFile([1, 2, 3], "gpt2", { version: 2 }));
      expect(run("info", path).stderr).toBe(
        `${path} has llm.c's magic 20240520 but version 2 (int32 at byte 4); llm.c writes version 1 with this ` +
          `magic (uint16 tokens)`,
      );
    });

    it("says a truncated file is truncated, in the tokens or in the header", () => {
      const path = join(dir, "short.bin");
      const whole = llmcFile(ids(10, 7), "gpt2");
      writeFileSync(path, whole.subarray(0, whole.length - 3));
      expect(run("info", path).stderr).toBe(
        `${path} is truncated: the header announces 10 uint16 tokens (20 bytes after the 1024-byte header), ` +
          `the file holds 17 bytes after it`,
      );
      writeFileSync(path, whole.subarray(0, 600));
      expect(run("info", path).stderr).toBe(
        `${path} is not an llm.c token file (nor a Megatron dataset: there is no ${join(dir, "short")}.idx ` +
          `beside it): 600 bytes, too short for the 1024-byte header`,
      );
    });

    it("refuses bytes the header does not announce, and a count that is not positive", () => {
      const path = join(dir, "long.bin");
      writeFileSync(path, llmcFile(ids(10, 7), "llama3", { count: 8 }));
      expect(run("info", path).stderr).toBe(
        `${path} is longer than its header says: the header announces 8 uint32 tokens (32 bytes after the ` +
          `1024-byte header), the file holds 40 bytes after it`,
      );
      writeFileSync(path, llmcFile([], "gpt2"));
      expect(run("info", path).stderr).toBe(
        `${path}: its header (int32 at byte 8) announces 0 tokens, expected a positive count`,
      );
    });

    it("names the first token outside the vocabulary, by token and by byte", () => {
      const tokens = [5, 9, 300, 2, 301];
      const path = join(dir, "vocab.bin");
      writeFileSync(path, llmcFile(tokens, "gpt2"));
      const message = `${path}: token 2 (byte ${1024 + 2 * 2}) is 300, outside the vocabulary [0, 256)`;
      expect(run("check", path, 256)).toMatchObject({ status: 1, stderr: message });
      expect(run("read", path, 1, 3, 256).stderr).toBe(message);
      expect(line(run("read", path, 0, 2, 256).stdout, "ids")).toEqual([5, 9]);
      expect(run("read", path, 3, 4, 1000).stderr).toBe(`cannot read tokens [3, 7) of ${path}: it holds 5`);
    });

    it("gives every micro-batch, replica and row of a step its own window, the step's windows back to back", () => {
      for (const [a, d, b] of [
        [1, 1, 1],
        [2, 3, 4],
        [4, 2, 1],
      ] as const) {
        const first = 1000;
        const positions = line(run("positions", a, d, b, first).stdout, "positions");
        expect(positions).toHaveLength(a * d * b);
        expect([...positions].sort((x, y) => x - y)).toEqual(
          Array.from({ length: a * d * b }, (_, i) => first + i),
        );
      }
    });

    it("splits the vocabulary check over ranks: each part its own tokens, together all of them", () => {
      // 5 tokens over 3 parts: [0, 2), [2, 4), [4, 5); bad ids at 2 and 4.
      const path = join(dir, "vocab-parts.bin");
      writeFileSync(path, llmcFile([5, 9, 300, 2, 301], "gpt2"));
      const bad = (i: number, id: number) =>
        `${path}: token ${i} (byte ${1024 + 2 * i}) is ${id}, outside the vocabulary [0, 256)`;
      expect(run("check-part", path, 256, 0, 3).stdout).toBe("ok\n");
      expect(run("check-part", path, 256, 1, 3)).toMatchObject({ status: 1, stderr: bad(2, 300) });
      expect(run("check-part", path, 256, 2, 3)).toMatchObject({ status: 1, stderr: bad(4, 301) });
      // More parts than tokens: the extra parts are empty and pass.
      expect(run("check-part", path, 256, 6, 8).stdout).toBe("ok\n");
      expect(run("check-part", path, 256, 4, 8)).toMatchObject({ status: 1, stderr: bad(4, 301) });
    });
  });

  describe("Megatron indexed datasets", () => {
    const sequences = [ids(7, 13), ids(5, 17), ids(9, 19)].map((s) => s.map((v) => v % 60000));

    it("reads the sequences back to back as one stream, by prefix, PREFIX.bin or PREFIX.idx", () => {
      const prefix = writeMegatron("mega16", megatron(sequences, "uint16"));
      for (const path of [prefix, prefix + ".bin", prefix + ".idx"]) {
        expect(run("info", path).stdout).toBe(`format=Megatron type=uint16 tokens=21 path=${prefix}.bin\n`);
      }
      expect(line(run("read", prefix, 0, 21, 65536).stdout, "ids")).toEqual(sequences.flat());
      expect(line(run("read", prefix, 6, 3, 65536).stdout, "ids")).toEqual(sequences.flat().slice(6, 9));
    });

    it("converts every integer dtype Megatron writes to int32", () => {
      const values: Record<MegatronType, number[][]> = {
        uint8: [[0, 255, 7]],
        int8: [[1, 127], [3]],
        int16: [[32767, 0, 12]],
        int32: [[150000, 1], [2]],
        int64: [[128255, 4, 5]],
        uint16: [[65535, 40000]],
      };
      for (const [type, seqs] of Object.entries(values) as [MegatronType, number[][]][]) {
        const prefix = writeMegatron(`mega-${type}`, megatron(seqs, type));
        const flat = seqs.flat();
        expect(run("info", prefix).stdout).toBe(
          `format=Megatron type=${type} tokens=${flat.length} path=${prefix}.bin\n`,
        );
        expect(line(run("read", prefix, 0, flat.length, 200000).stdout, "ids")).toEqual(flat);
      }
    });

    it("finds where documents end: the eos token anywhere, the index's documents in a Megatron dataset", () => {
      const prefix = writeMegatron("mega-docs", megatron(sequences, "uint16"));
      const flat = sequences.flat();
      const eos = flat[9]!;
      const byToken = flat.slice(4, 4 + 12).map((t) => (t === eos ? 1 : 0));
      expect(byToken).toContain(1);
      expect(line(run("token-ends", prefix, 4, 12, eos).stdout, "ends")).toEqual(byToken);
      // One document per sequence: ends at tokens 6 and 11 (and 20, the stream's last).
      const oneEach = (first: number, n: number) =>
        Array.from({ length: n }, (_, i) => ([6, 11, 20].includes(first + i) ? 1 : 0));
      expect(line(run("index-ends", prefix, 0, 21).stdout, "ends")).toEqual(oneEach(0, 21));
      expect(line(run("index-ends", prefix, 7, 14).stdout, "ends")).toEqual(oneEach(7, 14));
      expect(line(run("index-ends", prefix, 12, 3).stdout, "ends")).toEqual([0, 0, 0]);
      // Documents of several sequences (Megatron's --split-sentences): [0, 2) and [2, 3): ends at 11 and 20.
      const grouped = writeMegatron("mega-grouped", megatron(sequences, "uint16", { documents: [0, 2, 3] }));
      const twoDocs = Array.from({ length: 21 }, (_, i) => ([11, 20].includes(i) ? 1 : 0));
      expect(line(run("index-ends", grouped, 0, 21).stdout, "ends")).toEqual(twoDocs);
      // A window as train mode reads it: 10 real tokens from 4, padded to 16 (the padding's end at 9).
      const padded = (kind: string) => line(run("window-ends", prefix, 4, 10, 16, kind, eos).stdout, "ends");
      const withPadding = (xs: number[]) => [...xs.slice(0, 9), 1, ...Array(6).fill(0)];
      expect(padded("eos")).toEqual(withPadding(flat.slice(4, 14).map((t) => (t === eos ? 1 : 0))));
      expect(padded("index")).toEqual(withPadding(oneEach(4, 10)));
      expect(padded("none")).toEqual(withPadding(Array(10).fill(0)));
      // Not padded (real = seq_len): the documents' ends only.
      expect(line(run("window-ends", prefix, 0, 21, 21, "index", 0).stdout, "ends")).toEqual(oneEach(0, 21));
      // An llm.c file has no index: no ends.
      const llmc = join(dir, "no-index.bin");
      writeFileSync(llmc, llmcFile(flat, "gpt2"));
      expect(line(run("index-ends", llmc, 0, 5).stdout, "ends")).toEqual([0, 0, 0, 0, 0]);
    });

    it("accepts the modes a multimodal index appends (one int8 per sequence)", () => {
      const parts = megatron(sequences, "int32");
      const prefix = writeMegatron("multimodal", {
        bin: parts.bin,
        idx: Buffer.concat([parts.idx, Buffer.alloc(3)]),
      });
      expect(run("info", prefix).stdout).toBe(`format=Megatron type=int32 tokens=21 path=${prefix}.bin\n`);
    });

    it("names a negative token of a signed dtype", () => {
      const prefix = writeMegatron(
        "negative",
        megatron(
          [
            [4, 5],
            [-3, 6],
          ],
          "int16",
        ),
      );
      expect(run("check", prefix, 100).stderr).toBe(
        `${prefix}.bin: token 2 (byte 4) is -3, outside the vocabulary [0, 100)`,
      );
    });

    it("says which part of a dataset is missing", () => {
      const parts = megatron(sequences, "uint16");
      const onlyBin = join(dir, "only-bin");
      writeFileSync(onlyBin + ".bin", parts.bin);
      expect(run("info", onlyBin).stderr).toBe(
        `the Megatron dataset ${onlyBin} has no index: ${onlyBin}.idx is missing beside ${onlyBin}.bin ` +
          `(an llm.c token file is named by its own path, ${onlyBin}.bin)`,
      );
      const onlyIdx = join(dir, "only-idx");
      writeFileSync(onlyIdx + ".idx", parts.idx);
      expect(run("info", onlyIdx + ".idx").stderr).toBe(
        `the Megatron dataset ${onlyIdx} has no data: ${onlyIdx}.bin is missing beside ${onlyIdx}.idx`,
      );
    });

    it("refuses a .bin that does not match its index", () => {
      const parts = megatron(sequences, "uint16");
      const prefix = writeMegatron("bin-short", { bin: parts.bin.subarray(0, 40), idx: parts.idx });
      expect(run("info", prefix).stderr).toBe(
        `${prefix}.bin is truncated: ${prefix}.idx describes 21 uint16 tokens (42 bytes), the file has 40`,
      );
      const longer = writeMegatron("bin-long", {
        bin: Buffer.concat([parts.bin, Buffer.alloc(2)]),
        idx: parts.idx,
      });
      expect(run("info", longer).stderr).toBe(
        `${longer}.bin is longer than its index says: ${longer}.idx describes 21 uint16 tokens (42 bytes), the file has 44`,
      );
    });

    it("refuses a wrong magic, version or dtype in the index", () => {
      const parts = megatron(sequences, "uint16");
      const badMagic = Buffer.from(parts.idx);
      badMagic.write("MMIDIDY", 0, "latin1");
      const a = writeMegatron("idx-magic", { bin: parts.bin, idx: badMagic });
      expect(run("info", a).stderr).toBe(
        `${a}.idx is not a Megatron index: it does not start with "MMIDIDX\\0\\0"`,
      );
      const b = writeMegatron("idx-version", megatron(sequences, "uint16", { version: 2n }));
      expect(run("info", b).stderr).toBe(
        `${b}.idx has version 2 (uint64 at byte 9), expected 1, the only version Megatron writes`,
      );
      const c = writeMegatron("idx-float", megatron(sequences, "int32", { code: 7 }));
      expect(run("info", c).stderr).toBe(
        `${c}.idx has dtype code 7 (byte 17: float32, not token ids), expected one of 1 uint8, 2 int8, 3 int16, ` +
          `4 int32, 5 int64, 8 uint16`,
      );
    });

    it("says a truncated index is truncated", () => {
      const parts = megatron(sequences, "uint16");
      const prefix = writeMegatron("idx-short", {
        bin: parts.bin,
        idx: parts.idx.subarray(0, parts.idx.length - 5),
      });
      expect(run("info", prefix).stderr).toBe(
        `${prefix}.idx is truncated: its header announces 3 sequences and 4 document indices (34-byte header, ` +
          `3 int32 lengths, 3 int64 pointers, 4 int64 document indices), the file has ${parts.idx.length - 5} bytes`,
      );
      const header = writeMegatron("idx-header", { bin: parts.bin, idx: parts.idx.subarray(0, 20) });
      expect(run("info", header).stderr).toBe(
        `${header}.idx is truncated: 20 bytes, too short for the 34-byte header`,
      );
    });

    it("refuses sequence pointers that are not back to back inside the .bin, and bad document indices", () => {
      const gap = writeMegatron("pointers", megatron(sequences, "uint16", { pointers: [0, 14, 26] }));
      expect(run("info", gap).stderr).toBe(
        `${gap}.idx: sequence 2 starts at byte 26 of ${gap}.bin (int64 at byte ${34 + 12 + 16}), expected 24: ` +
          `the sequences must lie back to back, as Megatron's builder writes them`,
      );
      const docs = writeMegatron("documents", megatron(sequences, "uint16", { documents: [0, 2] }));
      expect(run("info", docs).stderr).toBe(
        `${docs}.idx: document index 1 is 2 (int64 at byte ${34 + 36 + 8}), expected 3 (the sequence count)`,
      );
    });
  });

  describe("windows: a rank's pieces, ids and targets", () => {
    const tokens = ids(50, 37).map((v) => v % 1000);
    let path: string;
    beforeAll(() => {
      path = join(dir, "windows.bin");
      writeFileSync(path, llmcFile(tokens, "gpt2"));
    });

    /** What a rank must get: the ids at its positions and, for each, the token one position later. */
    function expected(start: number, positions: number[]): { ids: number[]; targets: number[] } {
      return {
        ids: positions.map((p) => tokens[start + p]!),
        targets: positions.map((p) => tokens[start + p + 1] ?? -1),
      };
    }
    const range = (from: number, length: number): number[] => Array.from({ length }, (_, i) => from + i);

    it("contiguous on 2 ranks: rank 0's last target is rank 1's first token", () => {
      for (const rank of [0, 1]) {
        const out = run("window", path, 16, 16, 2, rank, "contiguous", 1000);
        expect(out.status).toBe(0);
        expect(out.stdout).toContain(`pieces ${8 * rank}+8\n`);
        const want = expected(16, range(8 * rank, 8));
        expect(line(out.stdout, "ids")).toEqual(want.ids);
        expect(line(out.stdout, "targets")).toEqual(want.targets);
      }
      const r0 = run("window", path, 16, 16, 2, 0, "contiguous", 1000).stdout;
      const r1 = run("window", path, 16, 16, 2, 1, "contiguous", 1000).stdout;
      expect(line(r0, "targets").at(-1)).toBe(line(r1, "ids")[0]);
      expect(line(r1, "targets").at(-1)).toBe(tokens[32]);
    });

    it("a padded window: the real tokens from the file, then ids 0 without targets; the window's next token", () => {
      // seq_len 16 padded from 13 real tokens (a window of 13 file tokens), zigzag on 2 ranks: pieces of 4.
      const start = 20;
      for (const rank of [0, 1]) {
        const out = run("window", path, start, 16, 2, rank, "zigzag", 1000, 13);
        expect(out.status).toBe(0);
        const positions = [...range(4 * rank, 4), ...range(4 * (3 - rank), 4)];
        expect(line(out.stdout, "ids")).toEqual(positions.map((p) => (p < 13 ? tokens[start + p]! : 0)));
        // The last real token (12) predicts the file's token after the window (13 real tokens from 20).
        expect(line(out.stdout, "targets")).toEqual(
          positions.map((p) => (p < 13 ? tokens[start + p + 1]! : -1)),
        );
      }
      // Not padded (real = seq_len): exactly the plain window.
      const plain = run("window", path, start, 16, 2, 1, "zigzag", 1000).stdout;
      expect(run("window", path, start, 16, 2, 1, "zigzag", 1000, 16).stdout).toBe(plain);
    });

    it("zigzag on 2 ranks: pieces r and 3-r, each target across a piece's end the next piece's first token", () => {
      const out0 = run("window", path, 8, 16, 2, 0, "zigzag", 1000).stdout;
      const out1 = run("window", path, 8, 16, 2, 1, "zigzag", 1000).stdout;
      expect(out0).toContain("pieces 0+4 12+4\n");
      expect(out1).toContain("pieces 4+4 8+4\n");
      const want0 = expected(8, [...range(0, 4), ...range(12, 4)]);
      const want1 = expected(8, [...range(4, 4), ...range(8, 4)]);
      expect(line(out0, "ids")).toEqual(want0.ids);
      expect(line(out0, "targets")).toEqual(want0.targets);
      expect(line(out1, "ids")).toEqual(want1.ids);
      expect(line(out1, "targets")).toEqual(want1.targets);
      // Piece 0 (rank 0) ends where piece 1 (rank 1) starts; piece 2 (rank 1) ends where piece 3 (rank 0) starts.
      expect(line(out0, "targets")[3]).toBe(line(out1, "ids")[0]);
      expect(line(out1, "targets")[7]).toBe(line(out0, "ids")[4]);
      // The window's last position (rank 0's last row) has the token after the window as its target.
      expect(line(out0, "targets")[7]).toBe(tokens[8 + 16]);
    });

    it("gives -1 only where the file has no token after the position", () => {
      const out = run("window", path, 34, 16, 2, 0, "zigzag", 1000);
      expect(line(out.stdout, "targets")).toEqual(expected(34, [...range(0, 4), ...range(12, 4)]).targets);
      expect(line(out.stdout, "targets").at(-1)).toBe(-1);
      expect(line(out.stdout, "targets").filter((t) => t === -1)).toHaveLength(1);
    });

    it("checks the ids it reads against the vocabulary, the token after the window included", () => {
      const bad = [...range(1, 20), 999];
      const file = join(dir, "window-vocab.bin");
      writeFileSync(file, llmcFile(bad, "gpt2"));
      expect(run("window", file, 4, 16, 2, 1, "contiguous", 100).stderr).toBe(
        `${file}: token 20 (byte ${1024 + 40}) is 999, outside the vocabulary [0, 100)`,
      );
    });

    it("refuses a window past the end of the file and a seq_len that does not split", () => {
      expect(run("window", path, 40, 16, 2, 1, "contiguous", 1000).stderr).toBe(
        `cannot read tokens [48, 56) of ${path}: it holds 50`,
      );
      expect(run("window", path, 0, 18, 2, 0, "zigzag", 1000).stderr).toBe(
        "cannot split a window of 18 tokens into 4 equal pieces for rank 0 of 2",
      );
    });

    it("counts the windows a file gives (each needs the token after it) and refuses too few for a step", () => {
      expect(run("enough", path, 16, 3).stdout).toBe("ok 3 windows\n");
      expect(run("enough", path, 7, 7).stdout).toBe("ok 7 windows\n");
      expect(run("enough", path, 49, 1).stdout).toBe("ok 1 windows\n");
      expect(run("enough", path, 50, 1)).toMatchObject({
        status: 1,
        stderr:
          `${path} holds 50 tokens, fewer than one step needs: 1 window(s) of seq_len 50 and the target of the ` +
          `last position, 51 tokens`,
      });
      expect(run("enough", path, 16, 4).stderr).toBe(
        `${path} holds 50 tokens, fewer than one step needs: 4 window(s) of seq_len 16 and the target of the ` +
          `last position, 65 tokens`,
      );
    });
  });

  describe("the order of windows", () => {
    it("is a permutation, the same on every run, and the shuffle its definition gives", () => {
      for (const [windows, seed, epoch] of [
        [1, 0n, 0n],
        [2, 1n, 0n],
        [10, 42n, 0n],
        [97, 1234567890123n, 3n],
        [1000, 0xffffffffffffffffn, 1n],
      ] as const) {
        const first = run("order", windows, seed, epoch);
        expect(first.status).toBe(0);
        const order = line(first.stdout, "order");
        expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: windows }, (_, i) => i));
        expect(run("order", windows, seed, epoch).stdout).toBe(first.stdout);
        expect(order).toEqual(expectedOrder(windows, seed, epoch));
      }
    });

    it("changes with the seed and the epoch", () => {
      const base = line(run("order", 50, 7, 0).stdout, "order");
      expect(line(run("order", 50, 8, 0).stdout, "order")).not.toEqual(base);
      expect(line(run("order", 50, 7, 1).stdout, "order")).not.toEqual(base);
      expect(base).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
    });
  });
});
