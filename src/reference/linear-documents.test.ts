import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Boundaries, linearAttentionBackwardDocs, linearAttentionForwardDocs } from "./documents.js";
import { pieceState } from "./linear-chunks.js";
import {
  bidirInterDocs,
  dkdvInterDocs,
  dqInterDocs,
  hasBoundary,
  interForwardDocs,
  intraBackwardDocs,
  intraForwardDocs,
  localBoundaries,
  pieceGradStateDocs,
  pieceHeadStateDocs,
  pieceStateDocs,
  pieceTailStateDocs,
  prefixForPieceDocs,
  ringStepBackwardDocs,
  ringStepDocs,
  suffixForPieceDocs,
} from "./linear-documents.js";
import { type Decay, type LinearGrads } from "./oracle.js";
import { headRange, headsToSeq, seqToHeads } from "./ulysses.js";
import {
  type Piece,
  type Tensor,
  add,
  contiguousPieces,
  globalPieceOrder,
  maxRelErr,
  randn,
  gatherRows,
  scatterRows,
  sliceRows,
  zeros,
  zigzagPieces,
  pieceIndices,
} from "./tensor.js";

const TOL = 1e-9;

function close(actual: Tensor, expected: Tensor): void {
  expect(actual.shape).toEqual(expected.shape);
  expect(maxRelErr(actual, expected)).toBeLessThan(TOL);
}

function closeGrads(g: LinearGrads, ref: LinearGrads): void {
  close(g.dq, ref.dq);
  close(g.dk, ref.dk);
  close(g.dv, ref.dv);
}

interface Data {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  dout: Tensor;
}

function data(N: number, H: number, dk: number, dv: number, seed: number): Data {
  return {
    q: randn([N, H, dk], seed),
    k: randn([N, H, dk], seed + 1),
    v: randn([N, H, dv], seed + 2),
    dout: randn([N, H, dv], seed + 3),
  };
}

function fromFlags(flags: readonly boolean[]): number[] {
  return flags.flatMap((f, i) => (f ? [i] : []));
}

/** The piece's rows of every tensor. */
function rowsOf(d: Data, p: Piece): Data {
  const s = (t: Tensor): Tensor => sliceRows(t, p.start, p.start + p.length);
  return { q: s(d.q), k: s(d.k), v: s(d.v), dout: s(d.dout) };
}

interface Result {
  o: Tensor;
  grads: LinearGrads;
}

/**
 * LASP-2 with documents over simulated ranks, from the per-piece functions only: each piece computes its
 * state and flag; the AllGather hands every piece the lists of states and flags; each piece rebuilds its
 * own prefix (and, backward, suffix) by the affine scan.
 */
function lasp2Docs(d: Data, lam: Decay, layout: Piece[][], boundaries: Boundaries, block: number): Result {
  const all = layout.flat(); // the AllGather order: rank by rank, pieces in local order
  const local = all.map((p) => localBoundaries(boundaries, p));
  const flags = local.map(hasBoundary);
  const rows = all.map((p) => rowsOf(d, p));
  const states = all.map((_, u) => pieceStateDocs(rows[u]!.k, rows[u]!.v, lam, local[u]!));
  const dStates = all.map((_, u) => pieceGradStateDocs(rows[u]!.q, rows[u]!.dout, lam, local[u]!));
  const o = zeros(d.v.shape);
  const dq = zeros(d.q.shape);
  const dk = zeros(d.k.shape);
  const dv = zeros(d.v.shape);
  all.forEach((p, u) => {
    const { q, k, v, dout } = rows[u]!;
    const b = local[u]!;
    const P = prefixForPieceDocs(states, flags, all, u, lam);
    const G = suffixForPieceDocs(dStates, flags, all, u, lam);
    const at = pieceIndices([p]);
    scatterRows(o, at, add(intraForwardDocs(q, k, v, lam, true, b, block), interForwardDocs(q, P, lam, b)));
    const intra = intraBackwardDocs(q, k, v, dout, lam, true, b, block);
    const inter = dkdvInterDocs(k, v, G, lam, b);
    scatterRows(dq, at, add(intra.dq, dqInterDocs(dout, P, lam, b)));
    scatterRows(dk, at, add(intra.dk, inter.dk));
    scatterRows(dv, at, add(intra.dv, inter.dv));
  });
  return { o, grads: { dq, dk, dv } };
}

/** LASP-1 with documents: the prefix travels piece to piece in global order, the suffix in reverse. */
function lasp1Docs(d: Data, lam: Decay, layout: Piece[][], boundaries: Boundaries, block: number): Result {
  const order = globalPieceOrder(layout);
  const [, H, dkDim] = d.q.shape as [number, number, number];
  const dvDim = d.v.shape[2] ?? 0;
  const o = zeros(d.v.shape);
  const dq = zeros(d.q.shape);
  const dk = zeros(d.k.shape);
  const dv = zeros(d.v.shape);
  const prefixes: Tensor[] = [];
  let carry = zeros([H, dkDim, dvDim]);
  for (const p of order) {
    const { q, k, v } = rowsOf(d, p);
    const b = localBoundaries(boundaries, p);
    prefixes.push(carry);
    scatterRows(
      o,
      pieceIndices([p]),
      add(intraForwardDocs(q, k, v, lam, true, b, block), interForwardDocs(q, carry, lam, b)),
    );
    carry = ringStepDocs(carry, pieceStateDocs(k, v, lam, b), lam, p, hasBoundary(b));
  }
  let gcarry = zeros([H, dkDim, dvDim]);
  for (let u = order.length - 1; u >= 0; u--) {
    const p = order[u]!;
    const { q, k, v, dout } = rowsOf(d, p);
    const b = localBoundaries(boundaries, p);
    const intra = intraBackwardDocs(q, k, v, dout, lam, true, b, block);
    const inter = dkdvInterDocs(k, v, gcarry, lam, b);
    const at = pieceIndices([p]);
    scatterRows(dq, at, add(intra.dq, dqInterDocs(dout, prefixes[u]!, lam, b)));
    scatterRows(dk, at, add(intra.dk, inter.dk));
    scatterRows(dv, at, add(intra.dv, inter.dv));
    gcarry = ringStepBackwardDocs(gcarry, pieceGradStateDocs(q, dout, lam, b), lam, p, hasBoundary(b));
  }
  return { o, grads: { dq, dk, dv } };
}

/**
 * Bidirectional LASP-2 with documents: every piece gathers its head and tail states (and its flag); each
 * piece adds the prefix scan of the tails before it and the suffix scan of the heads after it.
 */
function lasp2BidirDocs(d: Data, layout: Piece[][], boundaries: Boundaries): Result {
  const all = layout.flat();
  const local = all.map((p) => localBoundaries(boundaries, p));
  const flags = local.map(hasBoundary);
  const rows = all.map((p) => rowsOf(d, p));
  const heads = rows.map((r, u) => pieceHeadStateDocs(r.k, r.v, local[u]!));
  const tails = rows.map((r, u) => pieceTailStateDocs(r.k, r.v, local[u]!));
  const dHeads = rows.map((r, u) => pieceHeadStateDocs(r.q, r.dout, local[u]!));
  const dTails = rows.map((r, u) => pieceTailStateDocs(r.q, r.dout, local[u]!));
  const o = zeros(d.v.shape);
  const dq = zeros(d.q.shape);
  const dk = zeros(d.k.shape);
  const dv = zeros(d.v.shape);
  all.forEach((p, u) => {
    const { q, k, v, dout } = rows[u]!;
    const b = local[u]!;
    const [P, F] = [prefixForPieceDocs(tails, flags, all, u, 1), suffixForPieceDocs(heads, flags, all, u, 1)];
    const [Pd, Fd] = [
      prefixForPieceDocs(dTails, flags, all, u, 1),
      suffixForPieceDocs(dHeads, flags, all, u, 1),
    ];
    const at = pieceIndices([p]);
    scatterRows(o, at, add(intraForwardDocs(q, k, v, 1, false, b), bidirInterDocs(q, P, F, b, false)));
    const intra = intraBackwardDocs(q, k, v, dout, 1, false, b);
    scatterRows(dq, at, add(intra.dq, bidirInterDocs(dout, P, F, b, true)));
    scatterRows(dk, at, add(intra.dk, bidirInterDocs(v, Pd, Fd, b, true)));
    scatterRows(dv, at, add(intra.dv, bidirInterDocs(k, Pd, Fd, b, false)));
  });
  return { o, grads: { dq, dk, dv } };
}

function oracle(d: Data, lam: Decay, causal: boolean, boundaries: Boundaries): Result {
  return {
    o: linearAttentionForwardDocs(d.q, d.k, d.v, lam, causal, boundaries),
    grads: linearAttentionBackwardDocs(d.q, d.k, d.v, d.dout, lam, causal, boundaries),
  };
}

const perHead = (H: number): number[] =>
  Array.from({ length: H }, (_, h) => [0.99, 0.9, 0.75, 0.5][h % 4] ?? 1);

describe("the chunk walk with per-token resets equals the document oracle (one piece)", () => {
  for (const causal of [true, false]) {
    it(`${causal ? "causal, per-head decay" : "bidirectional"}: random boundaries and block sizes`, () => {
      fc.assert(
        fc.property(
          fc.array(fc.boolean(), { minLength: 1, maxLength: 20 }),
          fc.integer({ min: 1, max: 9 }),
          fc.integer({ min: 1, max: 3 }),
          fc.integer({ min: 0, max: 1 << 30 }),
          (flags, block, H, seed) => {
            const N = flags.length;
            const b = fromFlags(flags);
            const d = data(N, H, 3, 2, seed);
            const lam = causal ? perHead(H) : 1;
            const ref = oracle(d, lam, causal, b);
            close(intraForwardDocs(d.q, d.k, d.v, lam, causal, b, block), ref.o);
            closeGrads(intraBackwardDocs(d.q, d.k, d.v, d.dout, lam, causal, b, block), ref.grads);
          },
        ),
        { numRuns: 60, seed: 20261208 },
      );
    });
  }

  it("without boundaries it is the dense formula, and the piece states are the decayed sums of k v^T", () => {
    // linear-chunks.ts's walk delegates here with no boundaries: its check is against independent code, the
    // dense oracle (oracle.ts) and the states' definition written out below.
    const d = data(13, 2, 3, 2, 5);
    for (const causal of [true, false]) {
      const lam = causal ? [0.9, 0.6] : 1;
      close(
        intraForwardDocs(d.q, d.k, d.v, lam, causal, [], 4),
        linearAttentionForwardDocs(d.q, d.k, d.v, lam, causal, []),
      );
      closeGrads(
        intraBackwardDocs(d.q, d.k, d.v, d.dout, lam, causal, [], 4),
        linearAttentionBackwardDocs(d.q, d.k, d.v, d.dout, lam, causal, []),
      );
    }
    // As linear-chunks.ts's header defines them: M = sum_j lam^(L-1-j) k_j^T v_j, dM = sum_i lam^(i+1) q_i^T do_i.
    const [L, H, dk, dv] = [13, 2, 3, 2];
    const lam = [0.9, 0.6];
    const M = pieceStateDocs(d.k, d.v, lam, []).data;
    const G = pieceGradStateDocs(d.q, d.dout, lam, []).data;
    for (let h = 0; h < H; h++)
      for (let a = 0; a < dk; a++)
        for (let b = 0; b < dv; b++) {
          let m = 0;
          let g = 0;
          for (let j = 0; j < L; j++) {
            m += lam[h]! ** (L - 1 - j) * d.k.data[(j * H + h) * dk + a]! * d.v.data[(j * H + h) * dv + b]!;
            g += lam[h]! ** (j + 1) * d.q.data[(j * H + h) * dk + a]! * d.dout.data[(j * H + h) * dv + b]!;
          }
          expect(M[(h * dk + a) * dv + b]).toBeCloseTo(m, 12);
          expect(G[(h * dk + a) * dv + b]).toBeCloseTo(g, 12);
        }
  });
});

describe("the piece state and flag", () => {
  it("hands on only the tokens after the last boundary; none when the piece's last token ends a document", () => {
    const d = data(6, 1, 2, 2, 11);
    const lam = 0.8;
    const after = pieceStateDocs(d.k, d.v, lam, [1, 3]);
    const tail = pieceState(sliceRows(d.k, 4, 6), sliceRows(d.v, 4, 6), lam);
    close(after, tail);
    expect(Array.from(pieceStateDocs(d.k, d.v, lam, [5]).data)).toEqual([0, 0, 0, 0]);
    expect(localBoundaries([2, 7, 9, 14], { start: 7, length: 4 })).toEqual([0, 2]);
    expect([hasBoundary([]), hasBoundary([0])]).toEqual([false, true]);
  });

  it("refuses pieces that do not tile the sequence", () => {
    const s = [zeros([1, 1, 1]), zeros([1, 1, 1])];
    const gap = [
      { start: 0, length: 2 },
      { start: 3, length: 2 },
    ];
    expect(() => prefixForPieceDocs(s, [false, false], gap, 1, 1)).toThrow(/do not tile/);
    const tiled = [gap[0]!, { start: 2, length: 2 }];
    expect(() => suffixForPieceDocs(s, [false], tiled, 0, 1)).toThrow(/1 flags for 2 states/);
  });
});

const LAYOUTS = ["contiguous", "zigzag"] as const;
const WS = [1, 2, 3, 4, 8];

function layoutOf(layout: (typeof LAYOUTS)[number], N: number, W: number): Piece[][] {
  return layout === "zigzag" ? zigzagPieces(N, W) : contiguousPieces(N, W);
}

describe("LASP-2 and LASP-1 with documents equal the document oracle (float64, 1e-9)", () => {
  for (const layout of LAYOUTS)
    for (const W of WS) {
      const L = 3; // tokens per piece
      const N = (layout === "zigzag" ? 2 * W : W) * L;
      const pieces = globalPieceOrder(layoutOf(layout, N, W));
      const cases: [string, number[]][] = [
        ["no boundary", []],
        ["a boundary at every piece's first token", pieces.map((p) => p.start)],
        ["a boundary at every piece's last token", pieces.map((p) => p.start + p.length - 1)],
        ["documents shorter than a block", Array.from({ length: N }, (_, i) => i).filter((i) => i % 2 === 1)],
        ["one document spanning every rank after a short one", [0]],
      ];
      for (const [name, b] of cases)
        it(`${layout}, W=${W}: ${name}`, () => {
          const d = data(N, 3, 3, 2, 100 + W);
          const lam = perHead(3);
          const ref = oracle(d, lam, true, b);
          for (const run of [lasp2Docs, lasp1Docs]) {
            const got = run(d, lam, layoutOf(layout, N, W), b, 2);
            close(got.o, ref.o);
            closeGrads(got.grads, ref.grads);
          }
        });
    }

  it("random boundaries, W, layout, piece length, block and decay", () => {
    fc.assert(
      fc.property(
        fc.record({
          W: fc.constantFrom(...WS),
          zigzag: fc.boolean(),
          L: fc.integer({ min: 1, max: 5 }),
          block: fc.integer({ min: 1, max: 6 }),
          H: fc.integer({ min: 1, max: 3 }),
          lams: fc.array(fc.double({ min: 0.3, max: 1, noNaN: true }), { minLength: 3, maxLength: 3 }),
          density: fc.double({ min: 0, max: 0.6, noNaN: true }),
          seed: fc.integer({ min: 0, max: 1 << 30 }),
        }),
        ({ W, zigzag, L, block, H, lams, density, seed }) => {
          const N = (zigzag ? 2 * W : W) * L;
          let s = seed;
          const b = Array.from({ length: N }, (_, i) => i).filter(() => {
            s = (s * 1103515245 + 12345) % 2147483648;
            return s / 2147483648 < density;
          });
          const d = data(N, H, 2, 3, seed);
          const lam = lams.slice(0, H);
          const layout = layoutOf(zigzag ? "zigzag" : "contiguous", N, W);
          const ref = oracle(d, lam, true, b);
          for (const run of [lasp2Docs, lasp1Docs]) {
            const got = run(d, lam, layout, b, block);
            close(got.o, ref.o);
            closeGrads(got.grads, ref.grads);
          }
        },
      ),
      { numRuns: 40, seed: 20261209 },
    );
  });

  it("bidirectional: head and tail states with the two scans, random boundaries, W and layout", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...WS),
        fc.boolean(),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }),
        fc.integer({ min: 0, max: 1 << 30 }),
        (W, zigzag, L, flags, seed) => {
          const N = (zigzag ? 2 * W : W) * L;
          const b = fromFlags(flags.slice(0, N));
          const d = data(N, 2, 2, 3, seed);
          const got = lasp2BidirDocs(d, layoutOf(zigzag ? "zigzag" : "contiguous", N, W), b);
          const ref = oracle(d, 1, false, b);
          close(got.o, ref.o);
          closeGrads(got.grads, ref.grads);
        },
      ),
      { numRuns: 40, seed: 20261210 },
    );
  });

  it("fails when a boundary is ignored (the test can tell)", () => {
    const N = 8;
    const d = data(N, 1, 2, 2, 3);
    const got = lasp2Docs(d, 0.9, contiguousPieces(N, 2), [], 2);
    const ref = oracle(d, 0.9, true, [5]);
    expect(maxRelErr(got.o, ref.o)).toBeGreaterThan(1e-3);
  });
});

describe("Ulysses with documents: the chunk walk with resets on the whole sequence of each rank's heads", () => {
  for (const W of WS)
    for (const layout of LAYOUTS)
      it(`W=${W} ${layout}`, () => {
        const [H, L] = [24, 3]; // 24 heads split over every W here
        const N = 2 * W * L;
        const b = [...new Set([0, L - 1, L, 2 * L + 1, N - 2])].filter((x) => x < N).sort((x, y) => x - y);
        const d = data(N, H, 2, 2, 40 + W);
        const lam = perHead(H);
        const own = layoutOf(layout, N, W).map(pieceIndices);
        const toHeads = (t: Tensor): Tensor[] =>
          seqToHeads(
            own.map((rows) => gatherRows(t, rows)),
            own,
          );
        const [qh, kh, vh, doh] = [d.q, d.k, d.v, d.dout].map(toHeads) as [
          Tensor[],
          Tensor[],
          Tensor[],
          Tensor[],
        ];
        const back = (parts: Tensor[], like: Tensor): Tensor => {
          const out = zeros(like.shape);
          headsToSeq(parts, own).forEach((p, r) => scatterRows(out, own[r]!, p));
          return out;
        };
        const lamOf = (r: number): number[] => lam.slice(...headRange(H, W, r));
        const o = back(
          qh.map((q, r) => intraForwardDocs(q, kh[r]!, vh[r]!, lamOf(r), true, b, 4)),
          d.v,
        );
        const g = qh.map((q, r) => intraBackwardDocs(q, kh[r]!, vh[r]!, doh[r]!, lamOf(r), true, b, 4));
        const ref = oracle(d, lam, true, b);
        close(o, ref.o);
        closeGrads(
          {
            dq: back(
              g.map((x) => x.dq),
              d.q,
            ),
            dk: back(
              g.map((x) => x.dk),
              d.k,
            ),
            dv: back(
              g.map((x) => x.dv),
              d.v,
            ),
          },
          ref.grads,
        );
      });
});
