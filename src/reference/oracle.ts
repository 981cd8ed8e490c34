// Dense oracles: every attention variant computed straight from its masked formula over the whole sequence,
// forward and analytic backward, in float64. They share no code with the chunked / blocked pieces in
// linear-chunks.ts and softmax-blocks.ts on purpose: an executed schedule is proven token-exact by agreeing
// with these, so they must be the plainest possible reading of ALGORITHMS.md.
//
// Shapes (one batch element): q, k [N, H, dk], v [N, H, dv] for linear attention; softmax keys and values
// have Hkv heads: k [Nk, Hkv, dk], v [Nk, Hkv, dv]. Cost is O(N^2 d) per head.
//
// The feature maps and the RMSNorm are here too, as separate local (per element / per row) functions, so a
// caller composes phi(q), phi(k) -> attention -> norm and chains the backward passes itself.

import type { FeatureMap } from "../spec/resolved.js";
import { type Piece, type Tensor, assertSameShape, dims3, zeros } from "./tensor.js";

// ---------------------------------------------------------------------------------------------------------
// Decay

/** Per-head decay: one number for all heads, or one per head. Every value must lie in (0, 1]. */
export type Decay = number | readonly number[];

/** Expands and validates a decay to exactly `heads` values. */
export function decayPerHead(lam: Decay, heads: number): number[] {
  const values = typeof lam === "number" ? new Array<number>(heads).fill(lam) : [...lam];
  if (values.length !== heads) throw new Error(`decay has ${values.length} values for ${heads} heads`);
  for (const x of values) if (!(x > 0 && x <= 1)) throw new Error(`decay ${x} is outside (0, 1]`);
  return values;
}

/**
 * Bidirectional linear attention has no decay: a symmetric lam^|i-j| would not factor into one state per
 * piece (o_i would need a different state for every i), so the contract is plain sum over all j, lam = 1.
 */
export function assertNoDecay(lams: readonly number[], what: string): void {
  if (lams.some((x) => x !== 1)) throw new Error(`${what}: bidirectional linear attention requires decay 1`);
}

/** lam^0 .. lam^n, each by Math.pow rather than repeated products, so long exponents stay within an ulp. */
export function decayPowers(lam: number, n: number): Float64Array {
  const out = new Float64Array(n + 1);
  for (let e = 0; e <= n; e++) out[e] = lam === 1 ? 1 : Math.pow(lam, e);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Small row kernels shared by the oracles (rows are runs of `n` values inside a Float64Array)

function dotAt(a: Float64Array, ia: number, b: Float64Array, ib: number, n: number): number {
  let s = 0;
  for (let e = 0; e < n; e++) s += (a[ia + e] ?? 0) * (b[ib + e] ?? 0);
  return s;
}

/** y[iy..] += w * x[ix..] */
function axpyAt(y: Float64Array, iy: number, w: number, x: Float64Array, ix: number, n: number): void {
  for (let e = 0; e < n; e++) y[iy + e] = (y[iy + e] ?? 0) + w * (x[ix + e] ?? 0);
}

// ---------------------------------------------------------------------------------------------------------
// Linear attention: o_i = sum_{j in mask(i)} lam_h^(i-j) (q_i . k_j) v_j
//   causal:        mask(i) = { j <= i }, any lam in (0, 1]
//   bidirectional: mask(i) = all j, lam must be 1 (see assertNoDecay)
// and, for packed documents (documents.ts), mask(i) kept inside i's own segment: one formula for both.

/** The runs of tokens that never see each other: the whole sequence here, its documents in documents.ts. */
export type Segments = (N: number) => readonly Piece[];

const wholeSequence: Segments = (N) => [{ start: 0, length: N }];

interface LinearDims {
  N: number;
  H: number;
  dk: number;
  dv: number;
  lams: number[];
  /** The first and last token of each token's segment. */
  first: Int32Array;
  last: Int32Array;
}

function linearDims(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  lam: Decay,
  causal: boolean,
  segments: Segments,
  what: string,
): LinearDims {
  const [N, H, dk] = dims3(q, `${what} q`);
  assertSameShape(q, k, `${what} q/k`);
  const [Nv, Hv, dv] = dims3(v, `${what} v`);
  if (Nv !== N || Hv !== H)
    throw new Error(`${what}: v is [${v.shape.join(", ")}] for q [${q.shape.join(", ")}]`);
  const lams = decayPerHead(lam, H);
  if (!causal) assertNoDecay(lams, what);
  const first = new Int32Array(N);
  const last = new Int32Array(N);
  for (const span of segments(N))
    for (let i = span.start; i < span.start + span.length; i++) {
      first[i] = span.start;
      last[i] = span.start + span.length - 1;
    }
  return { N, H, dk, dv, lams, first, last };
}

export function linearAttentionForward(q: Tensor, k: Tensor, v: Tensor, lam: Decay, causal: boolean): Tensor {
  return linearAttentionForwardIn(q, k, v, lam, causal, wholeSequence, "linearAttentionForward");
}

/** linearAttentionForward with every query kept inside its own segment (`what` names the caller). */
export function linearAttentionForwardIn(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  lam: Decay,
  causal: boolean,
  segments: Segments,
  what: string,
): Tensor {
  const { N, H, dk, dv, lams, first, last } = linearDims(q, k, v, lam, causal, segments, what);
  const o = zeros([N, H, dv]);
  for (let h = 0; h < H; h++) {
    const pw = decayPowers(lams[h] ?? 1, N);
    for (let i = 0; i < N; i++) {
      const jEnd = causal ? i : (last[i] ?? 0);
      for (let j = first[i] ?? 0; j <= jEnd; j++) {
        const w =
          (causal ? (pw[i - j] ?? 0) : 1) * dotAt(q.data, (i * H + h) * dk, k.data, (j * H + h) * dk, dk);
        axpyAt(o.data, (i * H + h) * dv, w, v.data, (j * H + h) * dv, dv);
      }
    }
  }
  return o;
}

export interface LinearGrads {
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
}

/**
 * Gradients of sum(dout * o) by differentiating the masked sum term by term: for each visible pair (i, j)
 * with weight w = lam^(i-j), a = do_i . v_j, b = q_i . k_j:  dq_i += w a k_j,  dk_j += w a q_i,  dv_j += w b do_i.
 */
export function linearAttentionBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  dout: Tensor,
  lam: Decay,
  causal: boolean,
): LinearGrads {
  return linearAttentionBackwardIn(q, k, v, dout, lam, causal, wholeSequence, "linearAttentionBackward");
}

/** linearAttentionBackward with every query kept inside its own segment. */
export function linearAttentionBackwardIn(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  dout: Tensor,
  lam: Decay,
  causal: boolean,
  segments: Segments,
  what: string,
): LinearGrads {
  const { N, H, dk, dv, lams, first, last } = linearDims(q, k, v, lam, causal, segments, what);
  if (dout.shape.join() !== v.shape.join()) throw new Error(`${what}: dout must be shaped like v`);
  const dq = zeros(q.shape);
  const dkT = zeros(k.shape);
  const dvT = zeros(v.shape);
  for (let h = 0; h < H; h++) {
    const pw = decayPowers(lams[h] ?? 1, N);
    for (let i = 0; i < N; i++) {
      const jEnd = causal ? i : (last[i] ?? 0);
      const qi = (i * H + h) * dk;
      const oi = (i * H + h) * dv;
      for (let j = first[i] ?? 0; j <= jEnd; j++) {
        const kj = (j * H + h) * dk;
        const vj = (j * H + h) * dv;
        const w = causal ? (pw[i - j] ?? 0) : 1;
        const a = w * dotAt(dout.data, oi, v.data, vj, dv);
        const b = w * dotAt(q.data, qi, k.data, kj, dk);
        axpyAt(dq.data, qi, a, k.data, kj, dk);
        axpyAt(dkT.data, kj, a, q.data, qi, dk);
        axpyAt(dvT.data, vj, b, dout.data, oi, dv);
      }
    }
  }
  return { dq, dk: dkT, dv: dvT };
}

// ---------------------------------------------------------------------------------------------------------
// Softmax attention with grouped-query heads and explicit global positions.
//   o_i = sum_{j visible} softmax_j(scale * q_i . k_j) v_j,  visible = !causal || kPos[j] <= qPos[i]
// Positions are explicit so the same oracle serves zigzag layouts and partial key sets (a block of keys).
// A query that sees no key gets o = 0 and lse = -Infinity (and zero gradients).

export interface SoftmaxDims {
  Nq: number;
  Nk: number;
  H: number;
  Hkv: number;
  dk: number;
  dv: number;
}

/** Checks q [Nq, H, dk], k [Nk, Hkv, dk], v [Nk, Hkv, dv], the positions, and Hkv | H. */
export function softmaxDims(
  q: Tensor,
  qPos: ArrayLike<number>,
  k: Tensor,
  kPos: ArrayLike<number>,
  v: Tensor,
  what: string,
): SoftmaxDims {
  const [Nq, H, dk] = dims3(q, `${what} q`);
  const [Nk, Hkv, dkk] = dims3(k, `${what} k`);
  const [Nv, Hv, dv] = dims3(v, `${what} v`);
  if (dkk !== dk) throw new Error(`${what}: q has head dim ${dk}, k has ${dkk}`);
  if (Nv !== Nk || Hv !== Hkv)
    throw new Error(`${what}: k is [${k.shape.join(", ")}], v is [${v.shape.join(", ")}]`);
  if (Hkv < 1 || H % Hkv !== 0)
    throw new Error(`${what}: ${H} query heads do not split into ${Hkv} kv groups`);
  if (qPos.length !== Nq) throw new Error(`${what}: ${qPos.length} query positions for ${Nq} queries`);
  if (kPos.length !== Nk) throw new Error(`${what}: ${kPos.length} key positions for ${Nk} keys`);
  return { Nq, Nk, H, Hkv, dk, dv };
}

/** The kv head that query head h reads under GQA: floor(h / (H / Hkv)). */
export function kvHeadOf(h: number, H: number, Hkv: number): number {
  return Math.floor(h / (H / Hkv));
}

export interface AttentionOut {
  /** [Nq, H, dv] */
  o: Tensor;
  /** [Nq, H]: log sum_j exp(scale * q_i . k_j) over visible j; -Infinity where none is visible. */
  lse: Tensor;
}

/** Which keys a query sees, by global positions: the mask of the masked formula. */
export type Visibility = (qPos: number, kPos: number) => boolean;

/** The plain mask: everything (bidirectional) or keys at or before the query (causal). */
export function causalMask(causal: boolean): Visibility {
  return causal ? (qp, kp) => kp <= qp : () => true;
}

export function softmaxAttentionForward(
  q: Tensor,
  qPos: ArrayLike<number>,
  k: Tensor,
  kPos: ArrayLike<number>,
  v: Tensor,
  causal: boolean,
  scale?: number,
): AttentionOut {
  return softmaxAttentionForwardMasked(q, qPos, k, kPos, v, causalMask(causal), scale);
}

/** softmaxAttentionForward under any mask (packed documents: documents.ts). */
export function softmaxAttentionForwardMasked(
  q: Tensor,
  qPos: ArrayLike<number>,
  k: Tensor,
  kPos: ArrayLike<number>,
  v: Tensor,
  mask: Visibility,
  scale?: number,
): AttentionOut {
  const { Nq, Nk, H, Hkv, dk, dv } = softmaxDims(q, qPos, k, kPos, v, "softmaxAttentionForward");
  const sc = scale ?? 1 / Math.sqrt(dk);
  const o = zeros([Nq, H, dv]);
  const lse = zeros([Nq, H]);
  const s = new Float64Array(Nk);
  for (let i = 0; i < Nq; i++) {
    for (let h = 0; h < H; h++) {
      const g = kvHeadOf(h, H, Hkv);
      let m = -Infinity;
      for (let j = 0; j < Nk; j++) {
        const visible = mask(qPos[i] ?? 0, kPos[j] ?? 0);
        s[j] = visible ? sc * dotAt(q.data, (i * H + h) * dk, k.data, (j * Hkv + g) * dk, dk) : -Infinity;
        m = Math.max(m, s[j] ?? -Infinity);
      }
      if (m === -Infinity) {
        lse.data[i * H + h] = -Infinity;
        continue;
      }
      let sum = 0;
      for (let j = 0; j < Nk; j++) sum += Math.exp((s[j] ?? -Infinity) - m);
      const l = m + Math.log(sum);
      lse.data[i * H + h] = l;
      for (let j = 0; j < Nk; j++) {
        const sj = s[j] ?? -Infinity;
        if (sj === -Infinity) continue;
        axpyAt(o.data, (i * H + h) * dv, Math.exp(sj - l), v.data, (j * Hkv + g) * dv, dv);
      }
    }
  }
  return { o, lse };
}

export interface AttentionGrads {
  /** [Nq, H, dk] */
  dq: Tensor;
  /** [Nk, Hkv, dk], summed over the query heads of each group */
  dk: Tensor;
  /** [Nk, Hkv, dv], summed over the query heads of each group */
  dv: Tensor;
}

/**
 * Gradients of sum(dout * o). Recomputes the probabilities P_ij = exp(s_ij - lse_i), then
 * dP_ij = do_i . v_j, D_i = sum_j P_ij dP_ij (computed from P, not from o, to stay independent of the
 * blocked backward), dS_ij = P_ij (dP_ij - D_i), dq_i += scale dS_ij k_j, dk_j += scale dS_ij q_i,
 * dv_j += P_ij do_i.
 */
export function softmaxAttentionBackward(
  q: Tensor,
  qPos: ArrayLike<number>,
  k: Tensor,
  kPos: ArrayLike<number>,
  v: Tensor,
  dout: Tensor,
  causal: boolean,
  scale?: number,
): AttentionGrads {
  return softmaxAttentionBackwardMasked(q, qPos, k, kPos, v, dout, causalMask(causal), scale);
}

/** softmaxAttentionBackward under any mask. */
export function softmaxAttentionBackwardMasked(
  q: Tensor,
  qPos: ArrayLike<number>,
  k: Tensor,
  kPos: ArrayLike<number>,
  v: Tensor,
  dout: Tensor,
  mask: Visibility,
  scale?: number,
): AttentionGrads {
  const { Nq, Nk, H, Hkv, dk, dv } = softmaxDims(q, qPos, k, kPos, v, "softmaxAttentionBackward");
  const [Nd, Hd, dvd] = dims3(dout, "softmaxAttentionBackward dout");
  if (Nd !== Nq || Hd !== H || dvd !== dv)
    throw new Error("softmaxAttentionBackward: dout must be [Nq, H, dv]");
  const sc = scale ?? 1 / Math.sqrt(dk);
  const { lse } = softmaxAttentionForwardMasked(q, qPos, k, kPos, v, mask, sc);
  const dq = zeros(q.shape);
  const dkT = zeros(k.shape);
  const dvT = zeros(v.shape);
  const p = new Float64Array(Nk);
  const dp = new Float64Array(Nk);
  for (let i = 0; i < Nq; i++) {
    for (let h = 0; h < H; h++) {
      const l = lse.data[i * H + h] ?? -Infinity;
      if (l === -Infinity) continue;
      const g = kvHeadOf(h, H, Hkv);
      const qi = (i * H + h) * dk;
      const oi = (i * H + h) * dv;
      let D = 0;
      for (let j = 0; j < Nk; j++) {
        const visible = mask(qPos[i] ?? 0, kPos[j] ?? 0);
        p[j] = visible ? Math.exp(sc * dotAt(q.data, qi, k.data, (j * Hkv + g) * dk, dk) - l) : 0;
        dp[j] = visible ? dotAt(dout.data, oi, v.data, (j * Hkv + g) * dv, dv) : 0;
        D += (p[j] ?? 0) * (dp[j] ?? 0);
      }
      for (let j = 0; j < Nk; j++) {
        const pj = p[j] ?? 0;
        if (pj === 0) continue;
        const ds = sc * pj * ((dp[j] ?? 0) - D);
        axpyAt(dq.data, qi, ds, k.data, (j * Hkv + g) * dk, dk);
        axpyAt(dkT.data, (j * Hkv + g) * dk, ds, q.data, qi, dk);
        axpyAt(dvT.data, (j * Hkv + g) * dv, pj, dout.data, oi, dv);
      }
    }
  }
  return { dq, dk: dkT, dv: dvT };
}

/** Positions 0 .. n-1: the global positions of a whole sequence. */
export function iota(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

// ---------------------------------------------------------------------------------------------------------
// Feature maps phi, applied element-wise to q and k before linear attention.

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

function phi(kind: FeatureMap, x: number): number {
  switch (kind) {
    case "identity":
      return x;
    case "elu_plus_one":
      return x > 0 ? x + 1 : Math.exp(x); // elu(x) + 1 = exp(x) - 1 + 1 below zero, exactly exp(x)
    case "relu":
      return x > 0 ? x : 0;
    case "silu":
      return x * sigmoid(x);
  }
}

/** d phi / dx; relu's derivative at exactly 0 is taken as 0. */
function phiPrime(kind: FeatureMap, x: number): number {
  switch (kind) {
    case "identity":
      return 1;
    case "elu_plus_one":
      return x > 0 ? 1 : Math.exp(x);
    case "relu":
      return x > 0 ? 1 : 0;
    case "silu": {
      const s = sigmoid(x);
      return s * (1 + x * (1 - s));
    }
  }
}

export function featureMap(kind: FeatureMap, x: Tensor): Tensor {
  const y = zeros(x.shape);
  for (let i = 0; i < x.data.length; i++) y.data[i] = phi(kind, x.data[i] ?? 0);
  return y;
}

/** dx = phi'(x) * dy, given the INPUT x of the feature map. */
export function featureMapBackward(kind: FeatureMap, x: Tensor, dy: Tensor): Tensor {
  assertSameShape(x, dy, "featureMapBackward");
  const dx = zeros(x.shape);
  for (let i = 0; i < x.data.length; i++) dx.data[i] = phiPrime(kind, x.data[i] ?? 0) * (dy.data[i] ?? 0);
  return dx;
}

// ---------------------------------------------------------------------------------------------------------
// RMSNorm over the last axis (the head dim), no learned weight: y = x / sqrt(mean(x^2) + eps).

export function rmsNorm(x: Tensor, eps: number): Tensor {
  const d = x.shape[x.shape.length - 1] ?? 0;
  const y = zeros(x.shape);
  const rows = d > 0 ? x.data.length / d : 0;
  for (let r = 0; r < rows; r++) {
    const rstd = 1 / Math.sqrt(dotAt(x.data, r * d, x.data, r * d, d) / d + eps);
    for (let e = 0; e < d; e++) y.data[r * d + e] = (x.data[r * d + e] ?? 0) * rstd;
  }
  return y;
}

/** dx = rstd * (dy - y * mean(dy * y)), per row, from the norm's INPUT x (y and rstd are recomputed). */
export function rmsNormBackward(x: Tensor, dy: Tensor, eps: number): Tensor {
  assertSameShape(x, dy, "rmsNormBackward");
  const d = x.shape[x.shape.length - 1] ?? 0;
  const dx = zeros(x.shape);
  const rows = d > 0 ? x.data.length / d : 0;
  for (let r = 0; r < rows; r++) {
    const base = r * d;
    const rstd = 1 / Math.sqrt(dotAt(x.data, base, x.data, base, d) / d + eps);
    // mean(dy * y) = rstd * mean(dy * x)
    const c = (rstd * dotAt(dy.data, base, x.data, base, d)) / d;
    for (let e = 0; e < d; e++) {
      const y = (x.data[base + e] ?? 0) * rstd;
      dx.data[base + e] = rstd * ((dy.data[base + e] ?? 0) - y * c);
    }
  }
  return dx;
}
