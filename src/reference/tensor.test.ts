import { describe, expect, it } from "vitest";
import {
  concatHeads,
  concatRows,
  contiguousPieces,
  fromFunction,
  gatherRows,
  globalPieceOrder,
  maxRelErr,
  mulberry32,
  normRelErr,
  pieceIndices,
  randn,
  scatterAddRows,
  scatterRows,
  sliceHeads,
  sliceRows,
  tensor,
  writeRows,
  zeros,
  zigzagPieces,
} from "./tensor.js";

describe("random data", () => {
  it("mulberry32 is deterministic, seed-dependent and in [0, 1)", () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const c = mulberry32(43);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(Array.from({ length: 1000 }, () => c())).not.toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it("randn has mean ~0 and variance ~std^2, and the same seed gives the same tensor", () => {
    const t = randn([20001], 7, 2);
    const n = t.data.length;
    const mean = t.data.reduce((s, x) => s + x, 0) / n;
    const variance = t.data.reduce((s, x) => s + (x - mean) ** 2, 0) / n;
    expect(Math.abs(mean)).toBeLessThan(0.05);
    expect(Math.abs(variance - 4)).toBeLessThan(0.15);
    const again = randn([20001], 7, 2);
    expect(again.data.every((x, i) => x === t.data[i])).toBe(true);
    expect(Number.isFinite(t.data[n - 1] ?? NaN)).toBe(true); // odd length: the last sample is filled
  });
});

describe("construction and rows", () => {
  it("fromFunction fills in row-major order", () => {
    const t = fromFunction([2, 3, 2], (i, h, e) => 100 * (i ?? 0) + 10 * (h ?? 0) + (e ?? 0));
    expect([...t.data]).toEqual([0, 1, 10, 11, 20, 21, 100, 101, 110, 111, 120, 121]);
    expect(() => tensor([2, 2], [1, 2, 3])).toThrow(/needs 4 values/);
  });

  it("slice, write, gather, scatter and concat rows round-trip", () => {
    const t = randn([7, 2, 3], 1);
    const parts = [sliceRows(t, 0, 2), sliceRows(t, 2, 2), sliceRows(t, 2, 7)];
    expect(parts[1]?.shape).toEqual([0, 2, 3]);
    expect(concatRows(parts).data).toEqual(t.data);
    const perm = [6, 0, 5, 1, 4, 2, 3];
    const g = gatherRows(t, perm);
    const back = zeros(t.shape);
    scatterRows(back, perm, g);
    expect(back.data).toEqual(t.data);
    const w = zeros(t.shape);
    writeRows(w, 2, sliceRows(t, 2, 7));
    expect(w.data.slice(0, 12).every((x) => x === 0)).toBe(true);
    expect(w.data.slice(12)).toEqual(t.data.slice(12));
    const acc = zeros([2, 2, 3]);
    scatterAddRows(acc, [1, 1], sliceRows(t, 0, 2));
    expect(acc.data[6]).toBeCloseTo((t.data[0] ?? 0) + (t.data[6] ?? 0), 15);
    expect(() => sliceRows(t, 3, 9)).toThrow(/out of range/);
    expect(() => gatherRows(t, [7])).toThrow(/out of range/);
  });

  it("slice and concat heads round-trip", () => {
    const t = randn([3, 5, 2], 2);
    const joined = concatHeads([sliceHeads(t, 0, 2), sliceHeads(t, 2, 2), sliceHeads(t, 2, 5)]);
    expect(joined.data).toEqual(t.data);
    expect(sliceHeads(t, 1, 2).data).toEqual(
      Float64Array.of(...[0, 1, 2].flatMap((i) => [t.data[i * 10 + 2] ?? 0, t.data[i * 10 + 3] ?? 0])),
    );
  });
});

describe("errors", () => {
  it("maxRelErr and normRelErr on known values", () => {
    const a = tensor([3], [1, 2, 3]);
    const b = tensor([3], [1, 4, 3]);
    expect(maxRelErr(a, b)).toBe(0.5);
    expect(normRelErr(a, b)).toBeCloseTo(2 / Math.sqrt(26), 15);
    expect(maxRelErr(zeros([2]), zeros([2]))).toBe(0);
    expect(maxRelErr(tensor([1], [1e-200]), zeros([1]))).toBeGreaterThan(1e50);
    expect(maxRelErr(tensor([1], [NaN]), tensor([1], [1]))).toBeNaN();
    expect(() => maxRelErr(zeros([2]), zeros([3]))).toThrow(/shapes differ/);
  });
});

describe("token layouts", () => {
  it("zigzag gives rank r pieces r and 2W-1-r; both layouts partition the sequence", () => {
    const z = zigzagPieces(16, 4);
    expect(z[0]).toEqual([
      { start: 0, length: 2 },
      { start: 14, length: 2 },
    ]);
    expect(z[3]).toEqual([
      { start: 6, length: 2 },
      { start: 8, length: 2 },
    ]);
    for (const layout of [z, contiguousPieces(16, 4)]) {
      const all = layout.flatMap(pieceIndices).sort((x, y) => x - y);
      expect(all).toEqual(Array.from({ length: 16 }, (_, i) => i));
      const order = globalPieceOrder(layout);
      order.forEach((p, u) =>
        expect(p.start).toBe(u === 0 ? 0 : (order[u - 1]?.start ?? 0) + (order[u - 1]?.length ?? 0)),
      );
    }
    expect(() => zigzagPieces(12, 4)).toThrow(/2W \| N/);
    expect(() => contiguousPieces(10, 4)).toThrow(/W \| N/);
  });
});
