import fc from "fast-check";
import { intraBackward, intraForward } from "./linear-chunks.js";
import { describe, expect, it } from "vitest";
import {
  type Boundaries,
  blockNeeded,
  checkBoundaries,
  documentMask,
  documentOf,
  documentSpans,
  linearAttentionBackwardDocs,
  linearAttentionForwardDocs,
  softmaxAttentionBackwardDocs,
  softmaxAttentionForwardDocs,
} from "./documents.js";
import {
  type Decay,
  iota,
  linearAttentionBackward,
  linearAttentionForward,
  softmaxAttentionBackward,
  softmaxAttentionForward,
} from "./oracle.js";
import { type Tensor, concatRows, maxRelErr, randn, sliceRows } from "./tensor.js";

const TOL = 1e-12;

function close(actual: Tensor, expected: Tensor): void {
  expect(actual.shape).toEqual(expected.shape);
  expect(maxRelErr(actual, expected)).toBeLessThan(TOL);
}

/** Boundaries from one flag per token (a document ends after token i where flags[i]). */
function fromFlags(flags: readonly boolean[]): number[] {
  return flags.flatMap((f, i) => (f ? [i] : []));
}

/** Runs `f` on each document's rows alone and stacks the results back in sequence order. */
function perDocument(N: number, boundaries: Boundaries, f: (start: number, end: number) => Tensor): Tensor {
  return concatRows(documentSpans(N, boundaries).map((d) => f(d.start, d.start + d.length)));
}

describe("document boundaries", () => {
  it("splits the tokens into documents that end after each boundary", () => {
    expect(documentSpans(10, [2, 3, 9])).toEqual([
      { start: 0, length: 3 },
      { start: 3, length: 1 },
      { start: 4, length: 6 },
    ]);
    expect(documentSpans(4, [])).toEqual([{ start: 0, length: 4 }]);
    expect([0, 2, 3, 4, 9].map((p) => documentOf([2, 3, 9], p))).toEqual([0, 0, 1, 2, 2]);
  });

  it("rejects unsorted, repeated or out-of-range boundaries with a clear message", () => {
    expect(() => checkBoundaries([3, 1], 8, "t")).toThrow(/sorted and distinct/);
    expect(() => checkBoundaries([1, 1], 8, "t")).toThrow(/sorted and distinct/);
    expect(() => checkBoundaries([8], 8, "t")).toThrow(/outside the 8 tokens/);
    expect(() => checkBoundaries([1.5], 8, "t")).toThrow(/outside/);
  });

  it("masks exactly the pairs of one document (and causal order)", () => {
    const causal = documentMask(true, [1]);
    expect([causal(1, 0), causal(2, 1), causal(3, 2), causal(2, 3)]).toEqual([true, false, true, false]);
    const bidir = documentMask(false, [1]);
    expect([bidir(0, 1), bidir(2, 3), bidir(1, 2)]).toEqual([true, true, false]);
  });
});

const sizes = fc.record({
  flags: fc.array(fc.boolean(), { minLength: 1, maxLength: 14 }),
  H: fc.integer({ min: 1, max: 3 }),
  dk: fc.integer({ min: 1, max: 4 }),
  dv: fc.integer({ min: 1, max: 4 }),
  lams: fc.array(fc.double({ min: 0.3, max: 1, noNaN: true }), { minLength: 3, maxLength: 3 }),
  seed: fc.integer({ min: 0, max: 1 << 30 }),
});

describe("the linear document oracle equals each document run alone", () => {
  for (const causal of [true, false]) {
    it(`${causal ? "causal with per-head decay" : "bidirectional"}: forward and backward`, () => {
      fc.assert(
        fc.property(sizes, ({ flags, H, dk, dv, lams, seed }) => {
          const N = flags.length;
          const b = fromFlags(flags);
          const lam: Decay = causal ? lams.slice(0, H) : 1;
          const [q, k, v, dout] = [
            randn([N, H, dk], seed),
            randn([N, H, dk], seed + 1),
            randn([N, H, dv], seed + 2),
            randn([N, H, dv], seed + 3),
          ];
          const rows = (t: Tensor, s: number, e: number): Tensor => sliceRows(t, s, e);
          close(
            linearAttentionForwardDocs(q, k, v, lam, causal, b),
            perDocument(N, b, (s, e) =>
              linearAttentionForward(rows(q, s, e), rows(k, s, e), rows(v, s, e), lam, causal),
            ),
          );
          const g = linearAttentionBackwardDocs(q, k, v, dout, lam, causal, b);
          const alone = documentSpans(N, b).map((d) => {
            const [s, e] = [d.start, d.start + d.length];
            return linearAttentionBackward(
              rows(q, s, e),
              rows(k, s, e),
              rows(v, s, e),
              rows(dout, s, e),
              lam,
              causal,
            );
          });
          close(g.dq, concatRows(alone.map((x) => x.dq)));
          close(g.dk, concatRows(alone.map((x) => x.dk)));
          close(g.dv, concatRows(alone.map((x) => x.dv)));
        }),
        { numRuns: 40, seed: 20261205 },
      );
    });
  }

  it("one document (no boundary, or one after the last token) is the chunked walk's result", () => {
    // The dense oracle without documents is this one with a single segment, so the check is against the chunked
    // algorithm (linear-chunks.ts: blocks and a decayed prefix of block states), written independently.
    const [N, H] = [9, 2];
    const [q, k, v, dout] = [
      randn([N, H, 3], 1),
      randn([N, H, 3], 2),
      randn([N, H, 2], 3),
      randn([N, H, 2], 4),
    ];
    for (const b of [[], [N - 1]])
      for (const causal of [true, false]) {
        const lam = causal ? [0.9, 0.5] : 1;
        close(linearAttentionForwardDocs(q, k, v, lam, causal, b), intraForward(q, k, v, lam, causal, 4));
        const g = linearAttentionBackwardDocs(q, k, v, dout, lam, causal, b);
        const ref = intraBackward(q, k, v, dout, lam, causal, 4);
        close(g.dq, ref.dq);
        close(g.dk, ref.dk);
        close(g.dv, ref.dv);
      }
  });

  it("every token its own document: o_i = (q_i . k_i) v_i", () => {
    const [q, k, v] = [randn([5, 1, 2], 7), randn([5, 1, 2], 8), randn([5, 1, 3], 9)];
    const o = linearAttentionForwardDocs(q, k, v, 0.5, true, [0, 1, 2, 3]);
    for (let i = 0; i < 5; i++) {
      const s =
        (q.data[2 * i] ?? 0) * (k.data[2 * i] ?? 0) + (q.data[2 * i + 1] ?? 0) * (k.data[2 * i + 1] ?? 0);
      for (let e = 0; e < 3; e++) expect(o.data[3 * i + e]).toBeCloseTo(s * (v.data[3 * i + e] ?? 0), 12);
    }
  });
});

describe("the softmax document oracle equals each document run alone", () => {
  for (const causal of [true, false]) {
    it(`${causal ? "causal" : "bidirectional"}, grouped-query heads: o, lse and gradients`, () => {
      fc.assert(
        fc.property(sizes, fc.integer({ min: 1, max: 2 }), ({ flags, H, dk, dv, seed }, groups) => {
          const N = flags.length;
          const b = fromFlags(flags);
          const Hq = H * groups;
          const [q, k, v, dout] = [
            randn([N, Hq, dk], seed),
            randn([N, H, dk], seed + 1),
            randn([N, H, dv], seed + 2),
            randn([N, Hq, dv], seed + 3),
          ];
          const pos = iota(N);
          const out = softmaxAttentionForwardDocs(q, pos, k, pos, v, causal, b);
          const alone = documentSpans(N, b).map((d) => {
            const [s, e] = [d.start, d.start + d.length];
            const local = iota(e - s);
            const [qs, ks, vs, ds] = [
              sliceRows(q, s, e),
              sliceRows(k, s, e),
              sliceRows(v, s, e),
              sliceRows(dout, s, e),
            ];
            return {
              fwd: softmaxAttentionForward(qs, local, ks, local, vs, causal),
              bwd: softmaxAttentionBackward(qs, local, ks, local, vs, ds, causal),
            };
          });
          close(out.o, concatRows(alone.map((x) => x.fwd.o)));
          close(out.lse, concatRows(alone.map((x) => x.fwd.lse)));
          const g = softmaxAttentionBackwardDocs(q, pos, k, pos, v, dout, causal, b);
          close(g.dq, concatRows(alone.map((x) => x.bwd.dq)));
          close(g.dk, concatRows(alone.map((x) => x.bwd.dk)));
          close(g.dv, concatRows(alone.map((x) => x.bwd.dv)));
        }),
        { numRuns: 40, seed: 20261206 },
      );
    });
  }

  it("one document is today's result bit for bit", () => {
    const N = 7;
    const [q, k, v, dout] = [
      randn([N, 4, 3], 1),
      randn([N, 2, 3], 2),
      randn([N, 2, 2], 3),
      randn([N, 4, 2], 4),
    ];
    const pos = iota(N);
    for (const causal of [true, false]) {
      const a = softmaxAttentionForwardDocs(q, pos, k, pos, v, causal, []);
      const ref = softmaxAttentionForward(q, pos, k, pos, v, causal);
      expect([a.o.data, a.lse.data]).toEqual([ref.o.data, ref.lse.data]);
      const g = softmaxAttentionBackwardDocs(q, pos, k, pos, v, dout, causal, [N - 1]);
      const gr = softmaxAttentionBackward(q, pos, k, pos, v, dout, causal);
      expect([g.dq.data, g.dk.data, g.dv.data]).toEqual([gr.dq.data, gr.dk.data, gr.dv.data]);
    }
  });
});

describe("block skipping", () => {
  it("skips a block exactly when no query of the block sees any of its keys (contiguous blocks)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.boolean(), { minLength: 2, maxLength: 24 }),
        fc.nat(),
        fc.nat(),
        fc.nat(),
        fc.nat(),
        fc.boolean(),
        (flags, a, b, c, d, causal) => {
          const N = flags.length;
          const bounds = fromFlags(flags);
          const [q0, q1] = [a % N, (a % N) + (b % (N - (a % N)))];
          const [k0, k1] = [c % N, (c % N) + (d % (N - (c % N)))];
          const range = (lo: number, hi: number): number[] => iota(hi - lo + 1).map((x) => x + lo);
          const mask = documentMask(causal, bounds);
          const anyVisible = range(q0, q1).some((qp) => range(k0, k1).some((kp) => mask(qp, kp)));
          expect(blockNeeded(range(q0, q1), range(k0, k1), causal, bounds)).toBe(anyVisible);
        },
      ),
      { numRuns: 300, seed: 20261207 },
    );
  });

  it("skips most blocks of many short documents", () => {
    const N = 64;
    const bounds = iota(N / 4).map((i) => 4 * i + 3); // documents of 4 tokens
    const blocks = iota(N / 8).map((i) => iota(8).map((x) => x + 8 * i));
    let visited = 0;
    for (const qb of blocks) for (const kb of blocks) if (blockNeeded(qb, kb, true, bounds)) visited++;
    expect(visited).toBe(N / 8); // only the diagonal blocks, against 36 of 64 for one causal document
  });
});
