import { describe, expect, it } from "vitest";
import type { FeatureMap } from "../spec/resolved.js";
import {
  decayPerHead,
  featureMap,
  featureMapBackward,
  iota,
  kvHeadOf,
  linearAttentionBackward,
  linearAttentionForward,
  rmsNorm,
  rmsNormBackward,
  softmaxAttentionBackward,
  softmaxAttentionForward,
} from "./oracle.js";
import {
  type Tensor,
  clone,
  concatHeads,
  dot,
  maxRelErr,
  randn,
  sliceHeads,
  tensor,
  zeros,
} from "./tensor.js";

function close(actual: Tensor, expected: Tensor, tol: number): void {
  expect(actual.shape).toEqual(expected.shape);
  expect(maxRelErr(actual, expected)).toBeLessThan(tol);
}

/**
 * Central finite differences of loss(inputs) = sum(dout * f(inputs)) with respect to every element of every
 * input, in float64 (h = 1e-6 gives ~1e-9 relative accuracy on these smooth functions).
 */
function numericGrads(f: (inputs: Tensor[]) => Tensor, inputs: Tensor[], dout: Tensor): Tensor[] {
  const h = 1e-6;
  return inputs.map((x, xi) => {
    const g = zeros(x.shape);
    for (let e = 0; e < x.data.length; e++) {
      const shifted = (delta: number): number => {
        const copy = inputs.map((t) => clone(t));
        const target = copy[xi] as Tensor;
        target.data[e] = (target.data[e] ?? 0) + delta;
        return dot(dout, f(copy));
      };
      g.data[e] = (shifted(h) - shifted(-h)) / (2 * h);
    }
    return g;
  });
}

const FD_TOL = 1e-6;

describe("linear attention oracle", () => {
  it("equals the recurrence S_i = lam S_{i-1} + k_i^T v_i, o_i = q_i S_i (causal, per-head decay)", () => {
    const [N, H, dk, dv] = [9, 3, 4, 3];
    const lam = [1, 0.8, 0.3];
    const q = randn([N, H, dk], 1);
    const k = randn([N, H, dk], 2);
    const v = randn([N, H, dv], 3);
    const expected = zeros([N, H, dv]);
    for (let h = 0; h < H; h++) {
      const S = new Float64Array(dk * dv);
      for (let i = 0; i < N; i++) {
        for (let a = 0; a < dk; a++)
          for (let b = 0; b < dv; b++)
            S[a * dv + b] =
              (lam[h] ?? 1) * (S[a * dv + b] ?? 0) +
              (k.data[(i * H + h) * dk + a] ?? 0) * (v.data[(i * H + h) * dv + b] ?? 0);
        for (let b = 0; b < dv; b++) {
          let s = 0;
          for (let a = 0; a < dk; a++) s += (q.data[(i * H + h) * dk + a] ?? 0) * (S[a * dv + b] ?? 0);
          expected.data[(i * H + h) * dv + b] = s;
        }
      }
    }
    close(linearAttentionForward(q, k, v, lam, true), expected, 1e-13);
  });

  it("bidirectional is q_i times the sum of all k_j^T v_j, and rejects a decay", () => {
    const q = randn([6, 2, 3], 4);
    const k = randn([6, 2, 3], 5);
    const v = randn([6, 2, 2], 6);
    const o = linearAttentionForward(q, k, v, 1, false);
    // permuting the keys must not change a bidirectional output
    const perm = [5, 3, 1, 0, 2, 4];
    const kp = zeros(k.shape);
    const vp = zeros(v.shape);
    perm.forEach((p, i) => {
      kp.data.set(k.data.subarray(p * 6, (p + 1) * 6), i * 6);
      vp.data.set(v.data.subarray(p * 4, (p + 1) * 4), i * 4);
    });
    close(linearAttentionForward(q, kp, vp, 1, false), o, 1e-13);
    // while a causal one does
    expect(
      maxRelErr(linearAttentionForward(q, kp, vp, 1, true), linearAttentionForward(q, k, v, 1, true)),
    ).toBeGreaterThan(1e-3);
    expect(() => linearAttentionForward(q, k, v, 0.9, false)).toThrow(/decay 1/);
  });

  for (const [name, lam, causal] of [
    ["causal, no decay", 1, true],
    ["causal, per-head decay", [0.9, 0.5], true],
    ["bidirectional", 1, false],
  ] as const) {
    it(`analytic gradients match finite differences (${name})`, () => {
      const [N, H, dk, dv] = [5, 2, 3, 2];
      const inputs = [randn([N, H, dk], 7), randn([N, H, dk], 8), randn([N, H, dv], 9)];
      const dout = randn([N, H, dv], 10);
      const f = ([q, k, v]: Tensor[]): Tensor =>
        linearAttentionForward(q as Tensor, k as Tensor, v as Tensor, lam, causal);
      const [q, k, v] = inputs as [Tensor, Tensor, Tensor];
      const g = linearAttentionBackward(q, k, v, dout, lam, causal);
      const [nq, nk, nv] = numericGrads(f, inputs, dout) as [Tensor, Tensor, Tensor];
      close(g.dq, nq, FD_TOL);
      close(g.dk, nk, FD_TOL);
      close(g.dv, nv, FD_TOL);
    });
  }

  it("validates decay values", () => {
    expect(decayPerHead(0.5, 3)).toEqual([0.5, 0.5, 0.5]);
    expect(() => decayPerHead(1.5, 2)).toThrow(/outside/);
    expect(() => decayPerHead([0.5, 0], 2)).toThrow(/outside/);
    expect(() => decayPerHead([0.5], 2)).toThrow(/1 values for 2 heads/);
  });
});

describe("softmax attention oracle", () => {
  it("a query that sees one key returns that value; one that sees none returns 0 and lse -Infinity", () => {
    const q = randn([2, 1, 4], 1);
    const k = randn([2, 1, 4], 2);
    const v = randn([2, 1, 3], 3);
    // query positions 0 and 5; keys at 0 and 7: query 0 sees key 0 only, the second query too
    const { o, lse } = softmaxAttentionForward(q, [0, 5], k, [0, 7], v, true);
    for (let e = 0; e < 3; e++) {
      expect(o.data[e]).toBeCloseTo(v.data[e] ?? NaN, 14);
      expect(o.data[3 + e]).toBeCloseTo(v.data[e] ?? NaN, 14);
    }
    let s = 0;
    for (let a = 0; a < 4; a++) s += (q.data[a] ?? 0) * (k.data[a] ?? 0);
    expect(lse.data[0]).toBeCloseTo(s / 2, 14);
    const none = softmaxAttentionForward(q, [0, 5], k, [6, 7], v, true);
    expect([...none.lse.data]).toEqual([-Infinity, -Infinity]);
    expect([...none.o.data].every((x) => x === 0)).toBe(true);
    const g = softmaxAttentionBackward(q, [0, 5], k, [6, 7], v, randn([2, 1, 3], 4), true);
    expect([...g.dq.data, ...g.dk.data, ...g.dv.data].every((x) => x === 0)).toBe(true);
  });

  it("rows are convex combinations: with all values equal to 1 every visible output is 1", () => {
    const q = randn([5, 2, 3], 11);
    const k = randn([5, 2, 3], 12);
    const ones = tensor([5, 2, 2], new Array<number>(20).fill(1));
    const { o } = softmaxAttentionForward(q, iota(5), k, iota(5), ones, true);
    close(o, ones, 1e-14);
  });

  it("GQA equals multi-head attention with each kv head repeated over its group; dk, dv sum over the group", () => {
    const [N, H, Hkv, dk, dv] = [6, 4, 2, 3, 2];
    const pos = [3, 0, 5, 1, 4, 2]; // any order: the mask follows positions, not rows
    const q = randn([N, H, dk], 13);
    const k = randn([N, Hkv, dk], 14);
    const v = randn([N, Hkv, dv], 15);
    const dout = randn([N, H, dv], 16);
    expect([0, 1, 2, 3].map((h) => kvHeadOf(h, H, Hkv))).toEqual([0, 0, 1, 1]);
    const rep = (t: Tensor): Tensor => concatHeads([0, 0, 1, 1].map((g) => sliceHeads(t, g, g + 1)));
    const gqa = softmaxAttentionForward(q, pos, k, pos, v, true);
    const mha = softmaxAttentionForward(q, pos, rep(k), pos, rep(v), true);
    close(gqa.o, mha.o, 1e-14);
    close(gqa.lse, mha.lse, 1e-14);
    const gg = softmaxAttentionBackward(q, pos, k, pos, v, dout, true);
    const gm = softmaxAttentionBackward(q, pos, rep(k), pos, rep(v), dout, true);
    close(gg.dq, gm.dq, 1e-13);
    const fold = (t: Tensor): Tensor => {
      const out = zeros([N, Hkv, t.shape[2] ?? 0]);
      for (let h = 0; h < H; h++) {
        const g = kvHeadOf(h, H, Hkv);
        const part = sliceHeads(t, h, h + 1);
        const d = t.shape[2] ?? 0;
        for (let i = 0; i < N; i++)
          for (let e = 0; e < d; e++)
            out.data[(i * Hkv + g) * d + e] =
              (out.data[(i * Hkv + g) * d + e] ?? 0) + (part.data[i * d + e] ?? 0);
      }
      return out;
    };
    close(gg.dk, fold(gm.dk), 1e-13);
    close(gg.dv, fold(gm.dv), 1e-13);
  });

  for (const [name, Hkv, causal, qPos, kPos] of [
    ["causal MHA", 4, true, iota(5), iota(5)],
    ["causal GQA Hkv=2, zigzag positions", 2, true, [0, 1, 8, 9, 4], [0, 1, 8, 9, 4]],
    ["causal GQA Hkv=1, partial keys with an empty row", 1, true, [2, 6, 9, 0, 7], [3, 5, 6, 8, 1]],
    ["bidirectional Hkv=1", 1, false, iota(5), iota(5)],
  ] as const) {
    it(`analytic gradients match finite differences (${name})`, () => {
      const [H, dk, dv] = [4, 3, 2];
      const inputs = [randn([5, H, dk], 21), randn([5, Hkv, dk], 22), randn([5, Hkv, dv], 23)];
      const dout = randn([5, H, dv], 24);
      const f = ([q, k, v]: Tensor[]): Tensor =>
        softmaxAttentionForward(q as Tensor, qPos, k as Tensor, kPos, v as Tensor, causal).o;
      const [q, k, v] = inputs as [Tensor, Tensor, Tensor];
      const g = softmaxAttentionBackward(q, qPos, k, kPos, v, dout, causal);
      const [nq, nk, nv] = numericGrads(f, inputs, dout) as [Tensor, Tensor, Tensor];
      close(g.dq, nq, FD_TOL);
      close(g.dk, nk, FD_TOL);
      close(g.dv, nv, FD_TOL);
    });
  }

  it("validates shapes and groups", () => {
    const q = randn([3, 3, 2], 1);
    const k = randn([3, 2, 2], 2);
    expect(() => softmaxAttentionForward(q, iota(3), k, iota(3), k, true)).toThrow(/kv groups/);
    expect(() =>
      softmaxAttentionForward(q, iota(2), randn([3, 1, 2], 3), iota(3), randn([3, 1, 2], 4), true),
    ).toThrow(/query positions/);
  });
});

describe("feature maps and RMSNorm", () => {
  it("feature maps at known points", () => {
    const x = tensor([4], [-2, -0.5, 0.5, 3]);
    expect([...featureMap("identity", x).data]).toEqual([-2, -0.5, 0.5, 3]);
    expect([...featureMap("relu", x).data]).toEqual([0, 0, 0.5, 3]);
    const elu = [...featureMap("elu_plus_one", x).data];
    expect(elu[0]).toBeCloseTo(Math.exp(-2), 15);
    expect(elu[3]).toBe(4);
    const silu = [...featureMap("silu", x).data];
    expect(silu[3]).toBeCloseTo(3 / (1 + Math.exp(-3)), 15);
    expect(silu[0]).toBeCloseTo(-2 / (1 + Math.exp(2)), 15);
  });

  for (const kind of ["identity", "elu_plus_one", "relu", "silu"] as FeatureMap[]) {
    it(`${kind} derivative matches finite differences`, () => {
      const x = randn([4, 2, 3], 31);
      const dy = randn([4, 2, 3], 32);
      const [num] = numericGrads(([t]) => featureMap(kind, t as Tensor), [x], dy) as [Tensor];
      close(featureMapBackward(kind, x, dy), num, FD_TOL);
    });
  }

  it("RMSNorm rows have unit mean square (eps = 0) and scale back to x", () => {
    const x = randn([3, 2, 5], 41);
    const y = rmsNorm(x, 0);
    for (let r = 0; r < 6; r++) {
      let ms = 0;
      for (let e = 0; e < 5; e++) ms += (y.data[r * 5 + e] ?? 0) ** 2 / 5;
      expect(ms).toBeCloseTo(1, 14);
    }
    // eps matters: a tiny-norm row is not blown up to unit scale
    const small = tensor([1, 1, 2], [1e-4, -1e-4]);
    expect(Math.abs(rmsNorm(small, 1e-6).data[0] ?? 0)).toBeLessThan(0.2);
  });

  it("RMSNorm backward matches finite differences", () => {
    const x = randn([3, 2, 5], 42);
    const dy = randn([3, 2, 5], 43);
    const [num] = numericGrads(([t]) => rmsNorm(t as Tensor, 1e-5), [x], dy) as [Tensor];
    close(rmsNormBackward(x, dy, 1e-5), num, FD_TOL);
  });

  it("the composed layer phi(q), phi(k) -> causal decayed linear attention -> RMSNorm chains correctly", () => {
    const [N, H, dk, dv] = [5, 2, 3, 4];
    const lam = [0.95, 0.6];
    const eps = 1e-6;
    const kind: FeatureMap = "elu_plus_one";
    const layer = ([q, k, v]: Tensor[]): Tensor =>
      rmsNorm(
        linearAttentionForward(
          featureMap(kind, q as Tensor),
          featureMap(kind, k as Tensor),
          v as Tensor,
          lam,
          true,
        ),
        eps,
      );
    const inputs = [randn([N, H, dk], 51), randn([N, H, dk], 52), randn([N, H, dv], 53)];
    const [q, k, v] = inputs as [Tensor, Tensor, Tensor];
    const dout = randn([N, H, dv], 54);
    const pq = featureMap(kind, q);
    const pk = featureMap(kind, k);
    const attn = linearAttentionForward(pq, pk, v, lam, true);
    const dattn = rmsNormBackward(attn, dout, eps);
    const g = linearAttentionBackward(pq, pk, v, dattn, lam, true);
    const [nq, nk, nv] = numericGrads(layer, inputs, dout) as [Tensor, Tensor, Tensor];
    close(featureMapBackward(kind, q, g.dq), nq, FD_TOL);
    close(featureMapBackward(kind, k, g.dk), nk, FD_TOL);
    close(g.dv, nv, FD_TOL);
  });
});
