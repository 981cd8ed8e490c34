import { describe, expect, it } from "vitest";
import {
  type Decay,
  iota,
  linearAttentionBackward,
  linearAttentionForward,
  softmaxAttentionBackward,
  softmaxAttentionForward,
} from "./oracle.js";
import {
  type Tensor,
  concatHeads,
  contiguousPieces,
  gatherRows,
  maxRelErr,
  pieceIndices,
  randn,
  scatterRows,
  sliceHeads,
  zeros,
  zigzagPieces,
} from "./tensor.js";
import { allToAll, headRange, headsToSeq, seqToHeads } from "./ulysses.js";

const TOL = 1e-12;

function close(actual: Tensor, expected: Tensor, tol = TOL): void {
  expect(actual.shape).toEqual(expected.shape);
  expect(maxRelErr(actual, expected)).toBeLessThan(tol);
}

function ownershipOf(layout: "contiguous" | "zigzag", N: number, W: number): number[][] {
  return (layout === "zigzag" ? zigzagPieces(N, W) : contiguousPieces(N, W)).map(pieceIndices);
}

const shardRows = (t: Tensor, own: number[][]): Tensor[] => own.map((rows) => gatherRows(t, rows));

function unshardRows(parts: Tensor[], own: number[][], like: Tensor): Tensor {
  const out = zeros(like.shape);
  parts.forEach((p, r) => scatterRows(out, own[r] ?? [], p));
  return out;
}

describe("the all-to-all data movement", () => {
  it("allToAll transposes the send matrix", () => {
    const send = [
      ["00", "01", "02"],
      ["10", "11", "12"],
      ["20", "21", "22"],
    ];
    expect(allToAll(send)).toEqual([
      ["00", "10", "20"],
      ["01", "11", "21"],
      ["02", "12", "22"],
    ]);
    expect(() => allToAll([["a"], ["b", "c"]])).toThrow(/exactly 2 buffers/);
  });

  it("headRange splits heads evenly and refuses W not dividing H", () => {
    expect([0, 1, 2, 3].map((r) => headRange(8, 4, r))).toEqual([
      [0, 2],
      [2, 4],
      [4, 6],
      [6, 8],
    ]);
    expect(() => headRange(6, 4, 0)).toThrow(/divisible/);
  });

  for (const W of [1, 2, 3, 4, 8])
    for (const layout of ["contiguous", "zigzag"] as const)
      it(`W=${W} ${layout}: seqToHeads gives rank s all tokens of its heads; headsToSeq inverts it`, () => {
        const N = 2 * W * 3;
        const H = 2 * W;
        const x = randn([N, H, 5], 60 + W);
        const own = ownershipOf(layout, N, W);
        const heads = seqToHeads(shardRows(x, own), own);
        heads.forEach((t, s) => {
          const [h0, h1] = headRange(H, W, s);
          expect(t.data).toEqual(sliceHeads(x, h0, h1).data); // moved exactly, not computed
          expect(t.shape).toEqual([N, H / W, 5]);
        });
        const back = headsToSeq(heads, own);
        back.forEach((t, r) => expect(t.data).toEqual(gatherRows(x, own[r] ?? []).data));
      });

  it("rejects ownership that is not a partition of the tokens", () => {
    const x = randn([4, 2, 1], 1);
    expect(() =>
      seqToHeads(
        [gatherRows(x, [0, 1]), gatherRows(x, [1, 2])],
        [
          [0, 1],
          [1, 2],
        ],
      ),
    ).toThrow(/owned twice/);
    expect(() => seqToHeads([gatherRows(x, [0, 1]), gatherRows(x, [2, 3])], [[0, 1], [2]])).toThrow(
      /holds 2/,
    );
  });
});

describe("Ulysses attention on W simulated ranks equals the oracle", () => {
  const cases: [number, number, number][] = [
    // W, H, Hkv
    [1, 4, 4],
    [2, 4, 2],
    [2, 4, 4],
    [3, 6, 3],
    [4, 4, 4],
    [4, 8, 4],
    [8, 8, 8],
  ];
  for (const [W, H, Hkv] of cases)
    for (const layout of ["contiguous", "zigzag"] as const)
      for (const causal of [true, false]) {
        it(`softmax W=${W} H=${H} Hkv=${Hkv} ${layout} causal=${causal}`, () => {
          const N = 2 * W * 4;
          const [dk, dv] = [16, 8];
          const q = randn([N, H, dk], 1 + W);
          const k = randn([N, Hkv, dk], 2 + W);
          const v = randn([N, Hkv, dv], 3 + W);
          const dout = randn([N, H, dv], 4 + W);
          const own = ownershipOf(layout, N, W);
          const pos = iota(N);
          // all-to-all in: every rank gets all tokens (global order) of its heads
          const [qh, kh, vh, doh] = [q, k, v, dout].map((t) => seqToHeads(shardRows(t, own), own)) as [
            Tensor[],
            Tensor[],
            Tensor[],
            Tensor[],
          ];
          const outs = qh.map(
            (qs, r) => softmaxAttentionForward(qs, pos, kh[r] as Tensor, pos, vh[r] as Tensor, causal).o,
          );
          const grads = qh.map((qs, r) =>
            softmaxAttentionBackward(
              qs,
              pos,
              kh[r] as Tensor,
              pos,
              vh[r] as Tensor,
              doh[r] as Tensor,
              causal,
            ),
          );
          // all-to-all out
          const o = unshardRows(headsToSeq(outs, own), own, dout);
          const dq = unshardRows(
            headsToSeq(
              grads.map((g) => g.dq),
              own,
            ),
            own,
            q,
          );
          const dkk = unshardRows(
            headsToSeq(
              grads.map((g) => g.dk),
              own,
            ),
            own,
            k,
          );
          const dvv = unshardRows(
            headsToSeq(
              grads.map((g) => g.dv),
              own,
            ),
            own,
            v,
          );
          close(o, softmaxAttentionForward(q, pos, k, pos, v, causal).o);
          const g = softmaxAttentionBackward(q, pos, k, pos, v, dout, causal);
          close(dq, g.dq);
          close(dkk, g.dk);
          close(dvv, g.dv);
        });
      }

  for (const W of [1, 2, 4])
    for (const layout of ["contiguous", "zigzag"] as const)
      for (const [causal, lam] of [
        [true, [0.99, 0.9, 0.75, 0.5]],
        [true, 1],
        [false, 1],
      ] as [boolean, Decay][])
        it(`linear W=${W} ${layout} causal=${causal} decay=${JSON.stringify(lam)}`, () => {
          const [N, H, dk, dv] = [2 * W * 5, 4, 8, 8];
          const q = randn([N, H, dk], 10 + W);
          const k = randn([N, H, dk], 11 + W);
          const v = randn([N, H, dv], 12 + W);
          const dout = randn([N, H, dv], 13 + W);
          const own = ownershipOf(layout, N, W);
          const [qh, kh, vh, doh] = [q, k, v, dout].map((t) => seqToHeads(shardRows(t, own), own)) as [
            Tensor[],
            Tensor[],
            Tensor[],
            Tensor[],
          ];
          // each rank applies the decays of ITS heads
          const lamOf = (r: number): Decay =>
            typeof lam === "number" ? lam : lam.slice(...headRange(H, W, r));
          const outs = qh.map((qs, r) =>
            linearAttentionForward(qs, kh[r] as Tensor, vh[r] as Tensor, lamOf(r), causal),
          );
          const grads = qh.map((qs, r) =>
            linearAttentionBackward(qs, kh[r] as Tensor, vh[r] as Tensor, doh[r] as Tensor, lamOf(r), causal),
          );
          close(unshardRows(headsToSeq(outs, own), own, dout), linearAttentionForward(q, k, v, lam, causal));
          const g = linearAttentionBackward(q, k, v, dout, lam, causal);
          close(
            unshardRows(
              headsToSeq(
                grads.map((x) => x.dq),
                own,
              ),
              own,
              q,
            ),
            g.dq,
          );
          close(
            unshardRows(
              headsToSeq(
                grads.map((x) => x.dk),
                own,
              ),
              own,
              k,
            ),
            g.dk,
          );
          close(
            unshardRows(
              headsToSeq(
                grads.map((x) => x.dv),
                own,
              ),
              own,
              v,
            ),
            g.dv,
          );
        });

  it("mixing up the head order on the way back is caught", () => {
    const [N, H, W] = [8, 4, 2];
    const x = randn([N, H, 3], 77);
    const own = ownershipOf("zigzag", N, W);
    const heads = seqToHeads(shardRows(x, own), own);
    const swapped = headsToSeq([heads[1] as Tensor, heads[0] as Tensor], own);
    const expected = gatherRows(x, own[0] ?? []);
    expect(maxRelErr(swapped[0] as Tensor, expected)).toBeGreaterThan(0.1);
    expect(concatHeads([sliceHeads(expected, 0, 2), sliceHeads(expected, 2, 4)]).data).toEqual(expected.data);
  });
});
