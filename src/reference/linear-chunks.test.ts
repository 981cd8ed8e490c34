import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  bidirBackward,
  bidirForward,
  dkdvInter,
  dqInter,
  interForward,
  intraBackward,
  intraForward,
  pieceGradState,
  pieceState,
  prefixForPiece,
  prefixFromGathered,
  ringStep,
  ringStepBackward,
  suffixForPiece,
  suffixFromGathered,
  sumStates,
} from "./linear-chunks.js";
import { type Decay, type LinearGrads, linearAttentionBackward, linearAttentionForward } from "./oracle.js";
import {
  type Piece,
  type Tensor,
  add,
  concatRows,
  contiguousPieces,
  gatherRows,
  globalPieceOrder,
  maxRelErr,
  pieceIndices,
  randn,
  scatterRows,
  sliceRows,
  zeros,
  zigzagPieces,
} from "./tensor.js";

const TOL = 1e-12;

function close(actual: Tensor, expected: Tensor, tol = TOL): void {
  expect(actual.shape).toEqual(expected.shape);
  expect(maxRelErr(actual, expected)).toBeLessThan(tol);
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

type Layout = "contiguous" | "zigzag";

function layoutOf(layout: Layout, N: number, W: number): Piece[][] {
  return layout === "zigzag" ? zigzagPieces(N, W) : contiguousPieces(N, W);
}

function decayFor(kind: string, H: number): Decay {
  if (kind === "none") return 1;
  if (kind === "fixed") return 0.9;
  // a per-head list spanning slow to fast decay, like the retention / lightning schedules
  return Array.from({ length: H }, (_, h) => [0.99, 0.9, 0.75, 0.5][h % 4] ?? 1);
}

interface Result {
  o: Tensor;
  grads: LinearGrads;
}

/**
 * A full LASP-2 forward and backward over W simulated ranks, built only from the per-piece functions. Each
 * rank holds its rows (pieces in order); the collectives are plain array operations: AllGather = every rank
 * sees the list of all piece states, AllReduce = sumStates.
 */
function lasp2(
  d: Data,
  lam: Decay,
  causal: boolean,
  layout: Piece[][],
  block: number,
  options: { contiguousFormula?: boolean; bidirViaIntra?: boolean } = {},
): Result {
  const all = layout.flat(); // piece index = position in this list (the AllGather order)
  type Local = { piece: Piece; index: number; q: Tensor; k: Tensor; v: Tensor; dout: Tensor };
  const ranks = layout.map((pieces, r) => {
    const rows = pieceIndices(pieces);
    const rq = gatherRows(d.q, rows);
    const rk = gatherRows(d.k, rows);
    const rv = gatherRows(d.v, rows);
    const rdo = gatherRows(d.dout, rows);
    let offset = 0;
    const locals: Local[] = pieces.map((piece) => {
      const s = offset;
      offset += piece.length;
      return {
        piece,
        index: all.indexOf(piece),
        q: sliceRows(rq, s, offset),
        k: sliceRows(rk, s, offset),
        v: sliceRows(rv, s, offset),
        dout: sliceRows(rdo, s, offset),
      };
    });
    return { r, rows, locals };
  });

  // forward: local states, AllGather, per-piece prefix
  const states: Tensor[] = [];
  for (const rank of ranks) for (const p of rank.locals) states[p.index] = pieceState(p.k, p.v, lam);
  const prefixOf = (p: Local): Tensor => {
    if (!causal) return sumStates(states, p.index);
    if (options.contiguousFormula) return prefixFromGathered(states, lam, p.piece.length, p.index);
    return prefixForPiece(states, all, p.index, lam);
  };
  const Mall = sumStates(states);
  const bwdLam = causal ? lam : 1;
  const dStates: Tensor[] = [];
  for (const rank of ranks)
    for (const p of rank.locals) dStates[p.index] = pieceGradState(p.q, p.dout, bwdLam);
  const dMall = sumStates(dStates);

  const o = zeros(d.v.shape);
  const dq = zeros(d.q.shape);
  const dk = zeros(d.k.shape);
  const dv = zeros(d.v.shape);
  for (const rank of ranks) {
    const outs: Tensor[] = [];
    const dqs: Tensor[] = [];
    const dks: Tensor[] = [];
    const dvs: Tensor[] = [];
    for (const p of rank.locals) {
      if (!causal && !options.bidirViaIntra) {
        outs.push(bidirForward(p.q, Mall));
        const g = bidirBackward(p.q, p.k, p.v, p.dout, Mall, dMall);
        dqs.push(g.dq);
        dks.push(g.dk);
        dvs.push(g.dv);
        continue;
      }
      const P = prefixOf(p);
      outs.push(add(intraForward(p.q, p.k, p.v, lam, causal, block), interForward(p.q, P, bwdLam)));
      const G = !causal
        ? sumStates(dStates, p.index)
        : options.contiguousFormula
          ? suffixFromGathered(dStates, lam, p.piece.length, p.index)
          : suffixForPiece(dStates, all, p.index, lam);
      const intra = intraBackward(p.q, p.k, p.v, p.dout, lam, causal, block);
      const inter = dkdvInter(p.k, p.v, G, bwdLam);
      dqs.push(add(intra.dq, dqInter(p.dout, P, bwdLam)));
      dks.push(add(intra.dk, inter.dk));
      dvs.push(add(intra.dv, inter.dv));
    }
    scatterRows(o, rank.rows, concatRows(outs));
    scatterRows(dq, rank.rows, concatRows(dqs));
    scatterRows(dk, rank.rows, concatRows(dks));
    scatterRows(dv, rank.rows, concatRows(dvs));
  }
  return { o, grads: { dq, dk, dv } };
}

/** LASP-1: the prefix travels piece to piece in global order (forward), the suffix in reverse (backward). */
function lasp1(d: Data, lam: Decay, layout: Piece[][], block: number): Result & { prefixes: Tensor[] } {
  const [, heads, dkDim] = d.q.shape as [number, number, number];
  const dvDim = d.v.shape[2] ?? 0;
  const order = globalPieceOrder(layout);
  const slice = (t: Tensor, p: Piece): Tensor => sliceRows(t, p.start, p.start + p.length);
  const o = zeros(d.v.shape);
  const dq = zeros(d.q.shape);
  const dk = zeros(d.k.shape);
  const dv = zeros(d.v.shape);
  const prefixes: Tensor[] = [];
  let carry = zeros([heads, dkDim, dvDim]);
  for (const p of order) {
    prefixes.push(carry);
    const [q, k, v] = [slice(d.q, p), slice(d.k, p), slice(d.v, p)];
    const out = add(intraForward(q, k, v, lam, true, block), interForward(q, carry, lam));
    scatterRows(o, pieceIndices([p]), out);
    carry = ringStep(carry, pieceState(k, v, lam), lam, p.length);
  }
  let gcarry = zeros([heads, dkDim, dvDim]);
  for (let u = order.length - 1; u >= 0; u--) {
    const p = order[u] as Piece;
    const [q, k, v, dout] = [slice(d.q, p), slice(d.k, p), slice(d.v, p), slice(d.dout, p)];
    const intra = intraBackward(q, k, v, dout, lam, true, block);
    const inter = dkdvInter(k, v, gcarry, lam);
    const rows = pieceIndices([p]);
    scatterRows(dq, rows, add(intra.dq, dqInter(dout, prefixes[u] as Tensor, lam)));
    scatterRows(dk, rows, add(intra.dk, inter.dk));
    scatterRows(dv, rows, add(intra.dv, inter.dv));
    gcarry = ringStepBackward(gcarry, pieceGradState(q, dout, lam), lam, p.length);
  }
  return { o, grads: { dq, dk, dv }, prefixes };
}

function oracle(d: Data, lam: Decay, causal: boolean): Result {
  return {
    o: linearAttentionForward(d.q, d.k, d.v, lam, causal),
    grads: linearAttentionBackward(d.q, d.k, d.v, d.dout, lam, causal),
  };
}

function expectSame(actual: Result, expected: Result, tol = TOL): void {
  close(actual.o, expected.o, tol);
  close(actual.grads.dq, expected.grads.dq, tol);
  close(actual.grads.dk, expected.grads.dk, tol);
  close(actual.grads.dv, expected.grads.dv, tol);
}

const WS = [1, 2, 3, 4, 8];
const LAYOUTS: Layout[] = ["contiguous", "zigzag"];
const DECAYS = ["none", "fixed", "list"];
const DIMS: [number, number][] = [
  [8, 8],
  [16, 8],
];
const H = 4;
const PIECE = 12; // tokens per piece; block 4 gives 3 blocks per piece

describe("pieces against the oracle on one piece", () => {
  const d = data(20, H, 6, 5, 11);
  for (const decay of DECAYS) {
    const lam = decayFor(decay, H);
    it(`intraForward equals the oracle of the piece alone, every block size (decay ${decay})`, () => {
      const expected = linearAttentionForward(d.q, d.k, d.v, lam, true);
      for (const B of [1, 3, 4, 5, 20, 64]) close(intraForward(d.q, d.k, d.v, lam, true, B), expected);
    });
    it(`intraBackward equals the oracle backward of the piece alone, every block size (decay ${decay})`, () => {
      const g = linearAttentionBackward(d.q, d.k, d.v, d.dout, lam, true);
      for (const B of [1, 3, 4, 5, 20, 64]) {
        const b = intraBackward(d.q, d.k, d.v, d.dout, lam, true, B);
        close(b.dq, g.dq);
        close(b.dk, g.dk);
        close(b.dv, g.dv);
      }
    });
    it(`pieceState is what a following token reads: its output is lam q M (decay ${decay})`, () => {
      // append one probe token with k = 0: o_probe = sum_j lam^(C-j) (x . k_j) v_j = lam x M
      const probeQ = randn([1, H, 6], 99);
      const q = concatRows([d.q, probeQ]);
      const k = concatRows([d.k, zeros([1, H, 6])]);
      const v = concatRows([d.v, zeros([1, H, 5])]);
      const oracleOut = sliceRows(linearAttentionForward(q, k, v, lam, true), 20, 21);
      const viaState = interForward(probeQ, pieceState(d.k, d.v, lam), lam); // lam^(0+1) x M
      close(viaState, oracleOut);
    });
    it(`pieceGradState is what the token just before the piece reads: dv_probe = k_probe dM (decay ${decay})`, () => {
      // prepend one probe token with q = 0 and do = 0: dv_probe = sum_i lam^(i+1) (q_i . k_p) do_i = k_p dM
      const probeK = randn([1, H, 6], 98);
      const q = concatRows([zeros([1, H, 6]), d.q]);
      const k = concatRows([probeK, d.k]);
      const v = concatRows([zeros([1, H, 5]), d.v]);
      const dout = concatRows([zeros([1, H, 5]), d.dout]);
      const g = linearAttentionBackward(q, k, v, dout, lam, true);
      const viaState = dkdvInter(probeK, zeros([1, H, 5]), pieceGradState(d.q, d.dout, lam), lam);
      close(viaState.dv, sliceRows(g.dv, 0, 1));
    });
  }
  it("bidirectional intra pieces equal the oracle of the piece alone", () => {
    close(intraForward(d.q, d.k, d.v, 1, false, 4), linearAttentionForward(d.q, d.k, d.v, 1, false));
    const g = linearAttentionBackward(d.q, d.k, d.v, d.dout, 1, false);
    const b = intraBackward(d.q, d.k, d.v, d.dout, 1, false, 4);
    close(b.dq, g.dq);
    close(b.dk, g.dk);
    close(b.dv, g.dv);
  });
  it("rejects decay with bidirectional attention and decay outside (0, 1]", () => {
    expect(() => intraForward(d.q, d.k, d.v, 0.9, false)).toThrow(/decay 1/);
    expect(() => intraBackward(d.q, d.k, d.v, d.dout, 0.9, false)).toThrow(/decay 1/);
    expect(() => pieceState(d.k, d.v, 0)).toThrow(/outside/);
    expect(() => pieceState(d.k, d.v, [1, 1])).toThrow(/4 heads/);
    expect(() => intraForward(d.q, d.k, d.v, 1, true, 0)).toThrow(/block size/);
  });
  it("intraForward's inter-block term matters: a wrong block size would not be silently ignored", () => {
    // sanity of the test itself: dropping the cross-block state changes the answer
    const lam = 0.9;
    const blocks = [0, 4, 8, 12, 16].map((s) =>
      intraForward(
        sliceRows(d.q, s, s + 4),
        sliceRows(d.k, s, s + 4),
        sliceRows(d.v, s, s + 4),
        lam,
        true,
        4,
      ),
    );
    expect(maxRelErr(concatRows(blocks), linearAttentionForward(d.q, d.k, d.v, lam, true))).toBeGreaterThan(
      1e-3,
    );
  });
});

describe("prefix and suffix combinations", () => {
  it("prefixFromGathered equals prefixForPiece on a contiguous layout, and its recurrence", () => {
    const C = 5;
    const states = [0, 1, 2, 3].map((u) => randn([H, 3, 2], 40 + u));
    const pieces = contiguousPieces(4 * C, 4).flat();
    const lam = decayFor("list", H);
    let P = zeros([H, 3, 2]);
    for (let t = 0; t < 4; t++) {
      close(prefixFromGathered(states, lam, C, t), prefixForPiece(states, pieces, t, lam));
      close(prefixFromGathered(states, lam, C, t), P); // the LASP-1 recurrence P_t = lam^C P_{t-1} + M_{t-1}
      P = ringStep(P, states[t] as Tensor, lam, C);
      close(suffixFromGathered(states, lam, C, t), suffixForPiece(states, pieces, t, lam));
    }
    expect(maxAbs0(prefixFromGathered(states, lam, C, 0))).toBe(0);
    expect(maxAbs0(suffixFromGathered(states, lam, C, 3))).toBe(0);
  });
  it("zigzag prefix weights are lam^(start_target - end_u), pieces listed in any order", () => {
    // hand check: W = 2, L = 2, pieces [0,2) r0, [6,8) r0, [2,4) r1, [4,6) r1; target [6,8)
    const lam = 0.5;
    const pieces = zigzagPieces(8, 2).flat();
    const states = pieces.map((_, u) => randn([1, 2, 2], 70 + u));
    const P = prefixForPiece(states, pieces, 1, lam);
    // earlier pieces: [0,2) gap 4, [2,4) gap 2, [4,6) gap 0
    const expected = zeros([1, 2, 2]);
    for (const [u, gap] of [
      [0, 4],
      [2, 2],
      [3, 0],
    ] as const)
      for (let e = 0; e < 4; e++)
        expected.data[e] = (expected.data[e] ?? 0) + lam ** gap * ((states[u] as Tensor).data[e] ?? 0);
    close(P, expected);
    const G = suffixForPiece(states, pieces, 0, lam); // later than [0,2): [2,4) gap 0, [4,6) gap 2, [6,8) gap 4
    const expectedG = zeros([1, 2, 2]);
    for (const [u, gap] of [
      [2, 0],
      [3, 2],
      [1, 4],
    ] as const)
      for (let e = 0; e < 4; e++)
        expectedG.data[e] = (expectedG.data[e] ?? 0) + lam ** gap * ((states[u] as Tensor).data[e] ?? 0);
    close(G, expectedG);
  });
  it("rejects overlapping pieces and mismatched counts", () => {
    const states = [randn([1, 2, 2], 1), randn([1, 2, 2], 2)];
    expect(() =>
      prefixForPiece(
        states,
        [
          { start: 0, length: 4 },
          { start: 2, length: 4 },
        ],
        1,
        1,
      ),
    ).toThrow(/overlap/);
    expect(() => prefixForPiece(states, [{ start: 0, length: 4 }], 0, 1)).toThrow(/pieces for 2 states/);
  });
  it("sumStates with and without an excluded piece", () => {
    const states = [1, 2, 3].map((s) => randn([2, 2, 2], s));
    const total = sumStates(states);
    const rest = sumStates(states, 1);
    close(add(rest, states[1] as Tensor), total);
  });
});

function maxAbs0(t: Tensor): number {
  return t.data.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
}

describe("LASP-2 on W simulated ranks equals the dense oracle", () => {
  for (const W of WS)
    for (const layout of LAYOUTS)
      for (const [dk, dv] of DIMS) {
        const N = (layout === "zigzag" ? 2 * W : W) * PIECE;
        const d = data(N, H, dk, dv, 1000 + 7 * W + dk);
        for (const decay of DECAYS) {
          it(`causal W=${W} ${layout} decay=${decay} dk=${dk} dv=${dv}`, () => {
            const lam = decayFor(decay, H);
            const expected = oracle(d, lam, true);
            expectSame(lasp2(d, lam, true, layoutOf(layout, N, W), 4), expected);
            if (layout === "contiguous")
              expectSame(
                lasp2(d, lam, true, layoutOf(layout, N, W), 4, { contiguousFormula: true }),
                expected,
              );
          });
        }
        it(`bidirectional W=${W} ${layout} dk=${dk} dv=${dv}, AllReduce form and intra + others form`, () => {
          const expected = oracle(d, 1, false);
          expectSame(lasp2(d, 1, false, layoutOf(layout, N, W), 4), expected);
          expectSame(lasp2(d, 1, false, layoutOf(layout, N, W), 4, { bidirViaIntra: true }), expected);
        });
      }

  it("the schedule's bug the contract warns about is caught: a contiguous prefix on zigzag data", () => {
    // prefix by rank order instead of global order, what the public reference code does
    const W = 2;
    const N = 4 * PIECE;
    const d = data(N, H, 8, 8, 5);
    const wrongLayout = zigzagPieces(N, W);
    const all = wrongLayout.flat();
    const lam = 0.9;
    const o = zeros(d.v.shape);
    const states = all.map((p) =>
      pieceState(
        sliceRows(d.k, p.start, p.start + p.length),
        sliceRows(d.v, p.start, p.start + p.length),
        lam,
      ),
    );
    all.forEach((p, u) => {
      const [q, k, v] = [d.q, d.k, d.v].map((t) => sliceRows(t, p.start, p.start + p.length)) as [
        Tensor,
        Tensor,
        Tensor,
      ];
      const P = prefixFromGathered(states, lam, PIECE, u); // treats rank-major list order as sequence order
      scatterRows(o, pieceIndices([p]), add(intraForward(q, k, v, lam, true, 4), interForward(q, P, lam)));
    });
    expect(maxRelErr(o, linearAttentionForward(d.q, d.k, d.v, lam, true))).toBeGreaterThan(1e-3);
  });

  it("realistic size: N=512, H=4, d=32, default block 64, lightning-like decay, W=4 both layouts", () => {
    const N = 512;
    const d = data(N, 4, 32, 32, 4242);
    const lam = [0, 1, 2, 3].map((h) => Math.exp(-(2 ** ((-8 * (h + 1)) / 4))));
    const expected = oracle(d, lam, true);
    for (const layout of LAYOUTS) expectSame(lasp2(d, lam, true, layoutOf(layout, N, 4), 64), expected);
  });
});

describe("LASP-1 ring chain", () => {
  for (const W of WS)
    for (const layout of LAYOUTS)
      for (const decay of DECAYS) {
        it(`W=${W} ${layout} decay=${decay}: the chain equals the AllGather prefix and the oracle`, () => {
          const N = (layout === "zigzag" ? 2 * W : W) * PIECE;
          const d = data(N, H, 8, 8, 300 + W);
          const lam = decayFor(decay, H);
          const pieces = layoutOf(layout, N, W);
          const result = lasp1(d, lam, pieces, 4);
          expectSame(result, oracle(d, lam, true));
          // the carried prefix of each piece is exactly the gathered prefix
          const order = globalPieceOrder(pieces);
          const states = order.map((p) =>
            pieceState(
              sliceRows(d.k, p.start, p.start + p.length),
              sliceRows(d.v, p.start, p.start + p.length),
              lam,
            ),
          );
          order.forEach((_, u) => close(result.prefixes[u] as Tensor, prefixForPiece(states, order, u, lam)));
        });
      }
});

describe("property: random small shapes", () => {
  it("LASP-2 and LASP-1 compositions equal the oracle, forward and backward", () => {
    fc.assert(
      fc.property(
        fc.record({
          W: fc.integer({ min: 1, max: 4 }),
          zigzag: fc.boolean(),
          L: fc.integer({ min: 1, max: 7 }),
          block: fc.integer({ min: 1, max: 8 }),
          H: fc.integer({ min: 1, max: 3 }),
          dk: fc.integer({ min: 1, max: 5 }),
          dv: fc.integer({ min: 1, max: 5 }),
          causal: fc.boolean(),
          lams: fc.array(fc.double({ min: 0.3, max: 1, noNaN: true }), { minLength: 3, maxLength: 3 }),
          seed: fc.integer({ min: 0, max: 1 << 30 }),
        }),
        ({ W, zigzag, L, block, H: h, dk, dv, causal, lams, seed }) => {
          const N = (zigzag ? 2 * W : W) * L;
          const layout = zigzag ? zigzagPieces(N, W) : contiguousPieces(N, W);
          const d = data(N, h, dk, dv, seed);
          const lam = causal ? lams.slice(0, h) : 1;
          const expected = oracle(d, lam, causal);
          expectSame(lasp2(d, lam, causal, layout, block), expected);
          if (causal) expectSame(lasp1(d, lam, layout, block), expected);
        },
      ),
      { numRuns: 25, seed: 20240601 },
    );
  });
});
