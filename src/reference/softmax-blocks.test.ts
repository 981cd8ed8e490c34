import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type AttentionGrads,
  type AttentionOut,
  type Visibility,
  iota,
  softmaxAttentionBackward,
  softmaxAttentionForward,
} from "./oracle.js";
import { attendBlock, attendBlockBackward, mergeLse } from "./softmax-blocks.js";
import {
  blockNeeded,
  documentMask,
  softmaxAttentionBackwardDocs,
  softmaxAttentionForwardDocs,
} from "./documents.js";
import {
  type Piece,
  type Tensor,
  addInto,
  concatRows,
  contiguousPieces,
  gatherRows,
  maxRelErr,
  pieceIndices,
  randn,
  scatterAddRows,
  scatterRows,
  sliceRows,
  tensor,
  zeros,
  zigzagPieces,
} from "./tensor.js";

const TOL = 1e-12;

function close(actual: Tensor, expected: Tensor, tol = TOL): void {
  expect(actual.shape).toEqual(expected.shape);
  expect(maxRelErr(actual, expected)).toBeLessThan(tol);
}

/** lse compared where finite; -Infinity must match exactly. */
function closeLse(actual: Tensor, expected: Tensor): void {
  expect(actual.shape).toEqual(expected.shape);
  expected.data.forEach((e, i) => {
    const a = actual.data[i] ?? NaN;
    if (e === -Infinity) expect(a).toBe(-Infinity);
    else expect(Math.abs(a - e)).toBeLessThan(TOL * Math.max(1, Math.abs(e)));
  });
}

interface Data {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  dout: Tensor;
}

function data(N: number, H: number, Hkv: number, dk: number, dv: number, seed: number): Data {
  return {
    q: randn([N, H, dk], seed),
    k: randn([N, Hkv, dk], seed + 1),
    v: randn([N, Hkv, dv], seed + 2),
    dout: randn([N, H, dv], seed + 3),
  };
}

interface Result {
  out: AttentionOut;
  grads: AttentionGrads;
}

function oracle(d: Data, causal: boolean): Result {
  const pos = iota(d.q.shape[0] ?? 0);
  return {
    out: softmaxAttentionForward(d.q, pos, d.k, pos, d.v, causal),
    grads: softmaxAttentionBackward(d.q, pos, d.k, pos, d.v, d.dout, causal),
  };
}

function expectSame(actual: Result, expected: Result): void {
  close(actual.out.o, expected.out.o);
  closeLse(actual.out.lse, expected.out.lse);
  close(actual.grads.dq, expected.grads.dq);
  close(actual.grads.dk, expected.grads.dk);
  close(actual.grads.dv, expected.grads.dv);
}

interface Rank {
  rows: number[];
  q: Tensor;
  k: Tensor;
  v: Tensor;
  dout: Tensor;
}

function shard(d: Data, layout: Piece[][]): Rank[] {
  return layout.map((pieces) => {
    const rows = pieceIndices(pieces);
    return {
      rows,
      q: gatherRows(d.q, rows),
      k: gatherRows(d.k, rows),
      v: gatherRows(d.v, rows),
      dout: gatherRows(d.dout, rows),
    };
  });
}

/** Scatters per-rank results back into global tensors shaped like the data. */
function assemble(d: Data, ranks: Rank[], per: Result[]): Result {
  const N = d.q.shape[0] ?? 0;
  const H = d.q.shape[1] ?? 0;
  const o = zeros(d.dout.shape);
  const lse = zeros([N, H]);
  const dq = zeros(d.q.shape);
  const dk = zeros(d.k.shape);
  const dv = zeros(d.v.shape);
  ranks.forEach((rank, r) => {
    const res = per[r] as Result;
    scatterRows(o, rank.rows, res.out.o);
    scatterRows(lse, rank.rows, res.out.lse);
    scatterRows(dq, rank.rows, res.grads.dq);
    scatterRows(dk, rank.rows, res.grads.dk);
    scatterRows(dv, rank.rows, res.grads.dv);
  });
  return { out: { o, lse }, grads: { dq, dk, dv } };
}

/**
 * LASP-2H: AllGather K, V (and their positions), attend locally with global positions, and ReduceScatter the
 * dK, dV produced for every gathered position back to their owners.
 */
function lasp2h(d: Data, layout: Piece[][], causal: boolean | Visibility, tile: number): Result {
  const ranks = shard(d, layout);
  const K = concatRows(ranks.map((r) => r.k)); // AllGather, rank order
  const V = concatRows(ranks.map((r) => r.v));
  const kPos = ranks.flatMap((r) => r.rows);
  const fwd = ranks.map((r) => attendBlock(r.q, r.rows, K, kPos, V, causal, { tile }));
  const bwd = ranks.map((r, i) => {
    const f = fwd[i] as AttentionOut;
    return attendBlockBackward(r.q, r.rows, K, kPos, V, f.o, f.lse, r.dout, causal);
  });
  // ReduceScatter: sum the gathered-shaped dK, dV over ranks, then rank t keeps its own rows
  const dKsum = zeros(K.shape);
  const dVsum = zeros(V.shape);
  for (const g of bwd) {
    addInto(dKsum, g.dk);
    addInto(dVsum, g.dv);
  }
  let offset = 0;
  const per = ranks.map((r, i) => {
    const n = r.rows.length;
    const res: Result = {
      out: fwd[i] as AttentionOut,
      grads: {
        dq: (bwd[i] as AttentionGrads).dq,
        dk: sliceRows(dKsum, offset, offset + n),
        dv: sliceRows(dVsum, offset, offset + n),
      },
    };
    offset += n;
    return res;
  });
  return assemble(d, ranks, per);
}

/**
 * Ring attention: at step s rank r holds the K/V block of rank (r - s) mod W, attends to it and merges the
 * partials by log-sum-exp. Backward: the same ring, with the merged o and lse; each block's dK, dV
 * accumulate as they travel and end at the block's owner. `skip(qPos, kPos)` leaves a block out (as a
 * kernel skips blocks outside the queries' documents): its partial is the neutral o = 0, lse = -Infinity.
 */
function ring(
  d: Data,
  layout: Piece[][],
  causal: boolean | Visibility,
  tile: number,
  skip: (qPos: number[], kPos: number[]) => boolean = () => false,
): Result {
  const ranks = shard(d, layout);
  const W = ranks.length;
  const src = (r: number, s: number): Rank => ranks[(r - s + W) % W] as Rank;
  const neutral = (r: Rank): AttentionOut => {
    const lse = zeros([r.rows.length, r.q.shape[1] ?? 0]);
    lse.data.fill(-Infinity);
    return { o: zeros(r.dout.shape), lse };
  };
  const fwd = ranks.map((r, ri) =>
    mergeLse(
      Array.from({ length: W }, (_, s) =>
        skip(r.rows, src(ri, s).rows)
          ? neutral(r)
          : attendBlock(r.q, r.rows, src(ri, s).k, src(ri, s).rows, src(ri, s).v, causal, { tile }),
      ),
    ),
  );
  const dq = ranks.map((r) => zeros(r.q.shape));
  const dk = ranks.map((r) => zeros(r.k.shape));
  const dv = ranks.map((r) => zeros(r.v.shape));
  for (let s = 0; s < W; s++)
    ranks.forEach((r, ri) => {
      const owner = (ri - s + W) % W;
      const b = src(ri, s);
      if (skip(r.rows, b.rows)) return;
      const f = fwd[ri] as AttentionOut;
      const g = attendBlockBackward(r.q, r.rows, b.k, b.rows, b.v, f.o, f.lse, r.dout, causal);
      addInto(dq[ri] as Tensor, g.dq);
      addInto(dk[owner] as Tensor, g.dk);
      addInto(dv[owner] as Tensor, g.dv);
    });
  return assemble(
    d,
    ranks,
    ranks.map((_, r) => ({
      out: fwd[r] as AttentionOut,
      grads: { dq: dq[r] as Tensor, dk: dk[r] as Tensor, dv: dv[r] as Tensor },
    })),
  );
}

const WS = [1, 2, 3, 4, 8];
const HEADS: [number, number][] = [
  [4, 4],
  [4, 2],
  [4, 1],
];
const DIMS: [number, number][] = [
  [8, 8],
  [16, 8],
];
const PIECE = 6;

describe("attendBlock and mergeLse against the oracle", () => {
  const d = data(23, 4, 2, 5, 3, 7);
  const pos = [...iota(23)].reverse(); // rows in reverse position order: the mask must follow positions
  for (const causal of [true, false]) {
    it(`attendBlock over all keys equals the oracle for every tile size (causal=${causal})`, () => {
      const expected = softmaxAttentionForward(d.q, pos, d.k, pos, d.v, causal);
      for (const tile of [1, 2, 5, 23, 64]) {
        const got = attendBlock(d.q, pos, d.k, pos, d.v, causal, { tile });
        close(got.o, expected.o);
        closeLse(got.lse, expected.lse);
      }
    });
    it(`attendBlock on a key subset equals the oracle on that subset (causal=${causal})`, () => {
      const keys = [4, 9, 10, 17];
      const [k, v] = [gatherRows(d.k, keys), gatherRows(d.v, keys)];
      const kPos = keys.map((j) => pos[j] ?? 0);
      const expected = softmaxAttentionForward(d.q, pos, k, kPos, v, causal);
      const got = attendBlock(d.q, pos, k, kPos, v, causal, { tile: 3 });
      close(got.o, expected.o);
      closeLse(got.lse, expected.lse);
      if (causal) expect([...got.lse.data].some((x) => x === -Infinity)).toBe(true); // some rows see nothing
    });
    it(`mergeLse over any split of the keys equals the oracle, in any order (causal=${causal})`, () => {
      const expected = softmaxAttentionForward(d.q, pos, d.k, pos, d.v, causal);
      const splits = [
        [0, 5, 6, 13, 23],
        [0, 1, 23],
        [0, 11, 12, 22, 23],
      ];
      for (const cuts of splits) {
        const partials = cuts.slice(1).map((end, i) => {
          const start = cuts[i] ?? 0;
          return attendBlock(
            d.q,
            pos,
            sliceRows(d.k, start, end),
            pos.slice(start, end),
            sliceRows(d.v, start, end),
            causal,
          );
        });
        for (const parts of [partials, [...partials].reverse()]) {
          const got = mergeLse(parts);
          close(got.o, expected.o);
          closeLse(got.lse, expected.lse);
        }
      }
    });
    it(`attendBlockBackward summed over key blocks with the merged o, lse equals the oracle (causal=${causal})`, () => {
      const expected = softmaxAttentionBackward(d.q, pos, d.k, pos, d.v, d.dout, causal);
      const { o, lse } = softmaxAttentionForward(d.q, pos, d.k, pos, d.v, causal);
      const cuts = [0, 7, 8, 16, 23];
      const dq = zeros(d.q.shape);
      const dk = zeros(d.k.shape);
      const dv = zeros(d.v.shape);
      cuts.slice(1).forEach((end, i) => {
        const start = cuts[i] ?? 0;
        const rows = iota(end - start).map((x) => x + start);
        const g = attendBlockBackward(
          d.q,
          pos,
          sliceRows(d.k, start, end),
          pos.slice(start, end),
          sliceRows(d.v, start, end),
          o,
          lse,
          d.dout,
          causal,
        );
        addInto(dq, g.dq);
        scatterAddRows(dk, rows, g.dk);
        scatterAddRows(dv, rows, g.dv);
      });
      close(dq, expected.dq);
      close(dk, expected.dk);
      close(dv, expected.dv);
    });
  }

  it("the per-block (unmerged) o and lse would give the wrong backward: the final ones are required", () => {
    const expected = softmaxAttentionBackward(d.q, pos, d.k, pos, d.v, d.dout, false);
    const half = attendBlock(d.q, pos, sliceRows(d.k, 0, 10), pos.slice(0, 10), sliceRows(d.v, 0, 10), false);
    const g = attendBlockBackward(
      d.q,
      pos,
      sliceRows(d.k, 0, 10),
      pos.slice(0, 10),
      sliceRows(d.v, 0, 10),
      half.o,
      half.lse,
      d.dout,
      false,
    );
    const rest = attendBlockBackward(
      d.q,
      pos,
      sliceRows(d.k, 10, 23),
      pos.slice(10, 23),
      sliceRows(d.v, 10, 23),
      half.o,
      half.lse,
      d.dout,
      false,
    );
    addInto(g.dq, rest.dq);
    expect(maxRelErr(g.dq, expected.dq)).toBeGreaterThan(1e-3);
  });

  it("mergeLse: all-empty rows stay empty; an empty partial is neutral; large lse does not overflow", () => {
    const a: AttentionOut = { o: zeros([1, 1, 2]), lse: tensor([1, 1], [-Infinity]) };
    const empty = mergeLse([a, a]);
    expect(empty.lse.data[0]).toBe(-Infinity);
    expect([...empty.o.data]).toEqual([0, 0]);
    const b: AttentionOut = { o: tensor([1, 1, 2], [3, -1]), lse: tensor([1, 1], [1000]) };
    const c: AttentionOut = { o: tensor([1, 1, 2], [1, 1]), lse: tensor([1, 1], [1000]) };
    const m = mergeLse([b, a, c]);
    expect(m.lse.data[0]).toBeCloseTo(1000 + Math.log(2), 12);
    expect(m.o.data[0]).toBeCloseTo(2, 14);
    expect(m.o.data[1]).toBeCloseTo(0, 14);
  });
});

describe("LASP-2H (AllGather K, V; ReduceScatter dK, dV) on W simulated ranks equals the oracle", () => {
  for (const W of WS)
    for (const layout of ["contiguous", "zigzag"] as const)
      for (const causal of [true, false])
        for (const [H, Hkv] of HEADS)
          for (const [dk, dv] of DIMS)
            it(`W=${W} ${layout} causal=${causal} H=${H} Hkv=${Hkv} dk=${dk} dv=${dv}`, () => {
              const N = (layout === "zigzag" ? 2 * W : W) * PIECE;
              const d = data(N, H, Hkv, dk, dv, 500 + W * 13 + Hkv + dk);
              const pieces = layout === "zigzag" ? zigzagPieces(N, W) : contiguousPieces(N, W);
              expectSame(lasp2h(d, pieces, causal, 4), oracle(d, causal));
            });
});

describe("ring attention (LSE merge over W blocks) on W simulated ranks equals the oracle", () => {
  for (const W of WS)
    for (const layout of ["contiguous", "zigzag"] as const)
      for (const causal of [true, false])
        for (const [H, Hkv] of HEADS)
          for (const [dk, dv] of DIMS)
            it(`W=${W} ${layout} causal=${causal} H=${H} Hkv=${Hkv} dk=${dk} dv=${dv}`, () => {
              const N = (layout === "zigzag" ? 2 * W : W) * PIECE;
              const d = data(N, H, Hkv, dk, dv, 900 + W * 13 + Hkv + dk);
              const pieces = layout === "zigzag" ? zigzagPieces(N, W) : contiguousPieces(N, W);
              expectSame(ring(d, pieces, causal, 4), oracle(d, causal));
            });
});

describe("property: random small shapes", () => {
  it("LASP-2H and ring compositions equal the oracle, forward and backward", () => {
    fc.assert(
      fc.property(
        fc.record({
          W: fc.integer({ min: 1, max: 4 }),
          zigzag: fc.boolean(),
          L: fc.integer({ min: 1, max: 5 }),
          Hkv: fc.integer({ min: 1, max: 3 }),
          group: fc.integer({ min: 1, max: 3 }),
          dk: fc.integer({ min: 1, max: 5 }),
          dv: fc.integer({ min: 1, max: 5 }),
          causal: fc.boolean(),
          tile: fc.integer({ min: 1, max: 7 }),
          seed: fc.integer({ min: 0, max: 1 << 30 }),
        }),
        ({ W, zigzag, L, Hkv, group, dk, dv, causal, tile, seed }) => {
          const N = (zigzag ? 2 * W : W) * L;
          const d = data(N, Hkv * group, Hkv, dk, dv, seed);
          const pieces = zigzag ? zigzagPieces(N, W) : contiguousPieces(N, W);
          const expected = oracle(d, causal);
          expectSame(lasp2h(d, pieces, causal, tile), expected);
          expectSame(ring(d, pieces, causal, tile), expected);
        },
      ),
      { numRuns: 25, seed: 20240602 },
    );
  });
});

describe("packed documents: LASP-2H and ring attention under the document mask equal the document oracle", () => {
  it("random boundaries (at piece edges, shorter than a tile), W, layout, GQA; ring skips unneeded blocks", () => {
    fc.assert(
      fc.property(
        fc.record({
          W: fc.constantFrom(...WS),
          zigzag: fc.boolean(),
          L: fc.integer({ min: 1, max: 4 }),
          Hkv: fc.integer({ min: 1, max: 2 }),
          group: fc.integer({ min: 1, max: 2 }),
          causal: fc.boolean(),
          tile: fc.integer({ min: 1, max: 5 }),
          flags: fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }),
          seed: fc.integer({ min: 0, max: 1 << 30 }),
        }),
        ({ W, zigzag, L, Hkv, group, causal, tile, flags, seed }) => {
          const N = (zigzag ? 2 * W : W) * L;
          const bounds = flags.slice(0, N).flatMap((f, i) => (f ? [i] : []));
          const d = data(N, Hkv * group, Hkv, 3, 2, seed);
          const pieces = zigzag ? zigzagPieces(N, W) : contiguousPieces(N, W);
          const pos = iota(N);
          const expected: Result = {
            out: softmaxAttentionForwardDocs(d.q, pos, d.k, pos, d.v, causal, bounds),
            grads: softmaxAttentionBackwardDocs(d.q, pos, d.k, pos, d.v, d.dout, causal, bounds),
          };
          const mask = documentMask(causal, bounds);
          expectSame(lasp2h(d, pieces, mask, tile), expected);
          const skip = (qPos: number[], kPos: number[]): boolean => !blockNeeded(qPos, kPos, causal, bounds);
          expectSame(ring(d, pieces, mask, tile, skip), expected);
        },
      ),
      { numRuns: 40, seed: 20261211 },
    );
  });
});
