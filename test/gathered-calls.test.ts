// The cuDNN calls of LASP-2H's gathered attention (templates/runtime/gathered_calls.cuh), run on the host by
// test/gathered-calls-harness.cpp (nvcc's host compiler: the header reads types.cuh, which includes cuda_bf16.h).
// Whatever calls a rank's pieces make, every query row must see exactly the keys up to its own global position
// (causal) or all key_rows keys; the calls are checked against that, computed here from the piece map alone.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { beforeAll, describe } from "vitest";
import { itWithNvcc, nvcc } from "./nvcc.js";

interface Piece {
  local: number;
  global: number;
  length: number;
}
interface Call {
  row0: number;
  rows: number;
  keys: number;
}

const dir = mkdtempSync(join(tmpdir(), "lasp-gathered-calls-"));

function calls(causal: boolean, qRows: number, keyRows: number, pieces: Piece[]): Call[] {
  const args = [
    causal ? 1 : 0,
    qRows,
    keyRows,
    pieces.length,
    ...pieces.flatMap((p) => [p.local, p.global, p.length]),
  ];
  const r = spawnSync(
    join(dir, "harness"),
    args.map((a) => String(a)),
    { encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`harness exit ${r.status}: ${r.stderr}`);
  return r.stdout
    .trim()
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      const [row0, rows, keys] = l.split(" ").map(Number) as [number, number, number];
      return { row0, rows, keys };
    });
}

/** The zigzag pieces of rank r of w over n tokens: chunks r and 2w - 1 - r of 2w. */
function zigzag(r: number, w: number, n: number): Piece[] {
  const c = n / (2 * w);
  return [
    { local: 0, global: r * c, length: c },
    { local: c, global: (2 * w - 1 - r) * c, length: c },
  ];
}

/** Each local row's visible keys through the calls (bottom-right causal: row i of a call sits at keys - rows + i). */
function visible(list: Call[], causal: boolean, qRows: number): (number | undefined)[] {
  const seen: (number | undefined)[] = new Array(qRows).fill(undefined);
  for (const c of list)
    for (let i = 0; i < c.rows; ++i) {
      if (seen[c.row0 + i] !== undefined) throw new Error(`row ${c.row0 + i} in two calls`);
      seen[c.row0 + i] = causal ? c.keys - c.rows + i + 1 : c.keys;
    }
  return seen;
}

/** What each row must see: keys up to its global position (causal), else all of them. */
function wanted(pieces: Piece[], causal: boolean, qRows: number, keyRows: number): number[] {
  const want: number[] = new Array(qRows).fill(-1);
  if (pieces.length === 0) for (let i = 0; i < qRows; ++i) want[i] = causal ? i + 1 : keyRows;
  for (const p of pieces)
    for (let i = 0; i < p.length; ++i) want[p.local + i] = causal ? p.global + i + 1 : keyRows;
  return want;
}

describe("LASP-2H's gathered cuDNN calls (gathered_calls.cuh)", () => {
  beforeAll(async () => {
    copyFileSync(resolve("test/gathered-calls-harness.cpp"), join(dir, "harness.cpp"));
  });

  itWithNvcc(
    "cover every query row once, each against exactly the keys it may see",
    async ({ expect }) => {
      const build = await nvcc(
        dir,
        ["-std=c++17", "-x", "c++", `-I${resolve("templates/runtime")}`, "harness.cpp", "-o", "harness"],
        { outputs: ["harness"] },
      );
      expect(build.stderr).not.toMatch(/error/);
      expect(build.status).toBe(0);

      const n = 32768;
      // W 2 zigzag: rank 0's pieces (chunks 0 and 3) are apart, two calls; rank 1's (chunks 1 and 2) meet: one
      // call of 16K queries against the keys up to 24K, instead of two of 8K.
      expect(calls(true, n / 2, n, zigzag(0, 2, n))).toEqual([
        { row0: 0, rows: 8192, keys: 8192 },
        { row0: 8192, rows: 8192, keys: 32768 },
      ]);
      expect(calls(true, n / 2, (3 * n) / 4, zigzag(1, 2, n))).toEqual([
        { row0: 0, rows: 16384, keys: 24576 },
      ]);
      // Contiguous (one piece), no piece map (rows are positions), non-causal, an empty piece.
      expect(calls(true, 8192, 16384, [{ local: 0, global: 8192, length: 8192 }])).toEqual([
        { row0: 0, rows: 8192, keys: 16384 },
      ]);
      expect(calls(true, 4096, 4096, [])).toEqual([{ row0: 0, rows: 4096, keys: 4096 }]);
      expect(calls(false, n / 2, n, zigzag(0, 2, n))).toEqual([{ row0: 0, rows: n / 2, keys: n }]);
      expect(
        calls(true, 4096, 8192, [
          { local: 0, global: 0, length: 0 },
          { local: 0, global: 4096, length: 4096 },
        ]),
      ).toEqual([{ row0: 0, rows: 4096, keys: 8192 }]);

      // Every rank of W 2, 4, 8 in both layouts, and pieces of unequal length: the calls see what the rows may.
      const cases: { causal: boolean; qRows: number; keyRows: number; pieces: Piece[] }[] = [];
      for (const w of [2, 4, 8])
        for (let r = 0; r < w; ++r) {
          const z = zigzag(r, w, n);
          const last = Math.max(...z.map((p) => p.global + p.length));
          for (const causal of [true, false]) {
            cases.push({ causal, qRows: n / w, keyRows: causal ? last : n, pieces: z });
            cases.push({
              causal,
              qRows: n / w,
              keyRows: causal ? (r + 1) * (n / w) : n,
              pieces: [{ local: 0, global: (r * n) / w, length: n / w }],
            });
          }
        }
      cases.push({
        causal: true,
        qRows: 3000,
        keyRows: 5000,
        pieces: [
          { local: 0, global: 1000, length: 1000 },
          { local: 1000, global: 2000, length: 2000 },
        ],
      });
      cases.push({
        causal: true,
        qRows: 3000,
        keyRows: 6000,
        pieces: [
          { local: 0, global: 1000, length: 1000 },
          { local: 1000, global: 4000, length: 2000 },
        ],
      });
      let merged = 0;
      for (const c of cases) {
        const list = calls(c.causal, c.qRows, c.keyRows, c.pieces);
        expect(visible(list, c.causal, c.qRows)).toEqual(wanted(c.pieces, c.causal, c.qRows, c.keyRows));
        for (const call of list) expect(call.keys).toBeLessThanOrEqual(c.keyRows);
        if (c.causal && c.pieces.length === 2 && list.length === 1) merged += 1;
      }
      // The middle rank of each W (pieces W - 1 and W meet) and the unequal pair that meets.
      expect(merged).toBe(4);
    },
    120_000,
  );
});
