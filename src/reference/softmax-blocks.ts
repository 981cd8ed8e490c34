// The per-rank pieces of softmax attention under sequence parallelism: LASP-2H (attend the rank's queries to
// the AllGather-ed keys), ring attention (attend to one K/V block per step, merge the partials by
// log-sum-exp) and their backward passes. Shapes as in oracle.ts: q [Nq, H, dk], k [Nk, Hkv, dk],
// v [Nk, Hkv, dv], o [Nq, H, dv], lse [Nq, H]; positions are GLOBAL token positions, so the causal mask is
// right for any layout (zigzag included) and any subset of keys. `causal` may also be any mask over global
// positions, such as documents.ts's documentMask for packed documents.
//
// attendBlock walks the keys in tiles with an online softmax (running max and rescaled sums), the way a
// flash kernel does, rather than the oracle's one-shot normalisation: agreeing with the oracle then tests
// the rescaling, and mergeLse is the same rule one level up.

import {
  type AttentionGrads,
  type AttentionOut,
  type Visibility,
  causalMask,
  kvHeadOf,
  softmaxDims,
} from "./oracle.js";
import { type Tensor, assertSameShape, dims2, dims3, zeros } from "./tensor.js";

export interface AttendOptions {
  /** Keys per tile of the online softmax; any positive integer (default 64, a flash kernel's block). */
  tile?: number;
  /** Score scale; default 1 / sqrt(dk). */
  scale?: number;
}

function dotAt(a: Float64Array, ia: number, b: Float64Array, ib: number, n: number): number {
  let s = 0;
  for (let e = 0; e < n; e++) s += (a[ia + e] ?? 0) * (b[ib + e] ?? 0);
  return s;
}

function axpyAt(y: Float64Array, iy: number, w: number, x: Float64Array, ix: number, n: number): void {
  for (let e = 0; e < n; e++) y[iy + e] = (y[iy + e] ?? 0) + w * (x[ix + e] ?? 0);
}

/**
 * Softmax attention of a query piece against ONE key/value block: o normalised over this block's visible
 * keys only, and its lse. A row with no visible key in the block gets o = 0 and lse = -Infinity, which is
 * exactly the neutral element of mergeLse.
 */
export function attendBlock(
  q: Tensor,
  qPos: ArrayLike<number>,
  k: Tensor,
  kPos: ArrayLike<number>,
  v: Tensor,
  causal: boolean | Visibility,
  options: AttendOptions = {},
): AttentionOut {
  const { Nq, Nk, H, Hkv, dk, dv } = softmaxDims(q, qPos, k, kPos, v, "attendBlock");
  const mask = typeof causal === "boolean" ? causalMask(causal) : causal;
  const tile = options.tile ?? 64;
  if (!Number.isInteger(tile) || tile < 1)
    throw new Error(`attendBlock: tile ${tile} must be a positive integer`);
  const sc = options.scale ?? 1 / Math.sqrt(dk);
  const o = zeros([Nq, H, dv]);
  const lse = zeros([Nq, H]);
  const s = new Float64Array(tile);
  const acc = new Float64Array(dv);
  for (let i = 0; i < Nq; i++) {
    const pi = qPos[i] ?? 0;
    for (let h = 0; h < H; h++) {
      const g = kvHeadOf(h, H, Hkv);
      const qi = (i * H + h) * dk;
      let m = -Infinity; // running max of the scores seen so far
      let l = 0; // running sum of exp(s - m)
      acc.fill(0); // running sum of exp(s - m) v
      for (let t0 = 0; t0 < Nk; t0 += tile) {
        const t1 = Math.min(t0 + tile, Nk);
        let tm = -Infinity;
        for (let j = t0; j < t1; j++) {
          const visible = mask(pi, kPos[j] ?? 0);
          const sj = visible ? sc * dotAt(q.data, qi, k.data, (j * Hkv + g) * dk, dk) : -Infinity;
          s[j - t0] = sj;
          if (sj > tm) tm = sj;
        }
        if (tm === -Infinity) continue; // nothing visible in this tile; exp(-inf - -inf) would be NaN
        const mNew = Math.max(m, tm);
        const corr = Math.exp(m - mNew); // 0 on the first visible tile
        l *= corr;
        for (let e = 0; e < dv; e++) acc[e] = (acc[e] ?? 0) * corr;
        for (let j = t0; j < t1; j++) {
          const sj = s[j - t0] ?? -Infinity;
          if (sj === -Infinity) continue;
          const p = Math.exp(sj - mNew);
          l += p;
          axpyAt(acc, 0, p, v.data, (j * Hkv + g) * dv, dv);
        }
        m = mNew;
      }
      if (m === -Infinity) {
        lse.data[i * H + h] = -Infinity;
        continue;
      }
      lse.data[i * H + h] = m + Math.log(l);
      for (let e = 0; e < dv; e++) o.data[(i * H + h) * dv + e] = (acc[e] ?? 0) / l;
    }
  }
  return { o, lse };
}

/**
 * Merges partial results over disjoint key sets (ring steps, or any split of the keys):
 * lse = log sum_p exp(lse_p), o = sum_p exp(lse_p - lse) o_p, computed against the max lse m so nothing
 * overflows. Rows where every partial is -Infinity stay o = 0, lse = -Infinity.
 */
export function mergeLse(partials: readonly AttentionOut[]): AttentionOut {
  const first = partials[0];
  if (first === undefined) throw new Error("mergeLse needs at least one partial");
  const [Nq, H, dv] = dims3(first.o, "mergeLse o");
  for (const p of partials) {
    assertSameShape(p.o, first.o, "mergeLse o");
    const [n, hh] = dims2(p.lse, "mergeLse lse");
    if (n !== Nq || hh !== H) throw new Error("mergeLse: lse must be [Nq, H]");
  }
  const o = zeros([Nq, H, dv]);
  const lse = zeros([Nq, H]);
  for (let r = 0; r < Nq * H; r++) {
    let m = -Infinity;
    for (const p of partials) m = Math.max(m, p.lse.data[r] ?? -Infinity);
    if (m === -Infinity) {
      lse.data[r] = -Infinity;
      continue;
    }
    // weights relative to the max, divided once at the end: exp(lse_p - lse) would lose digits to the
    // rounding of a large lse, exp(lse_p - m) is exact where lse_p = m
    let sum = 0;
    for (const p of partials) {
      const w = Math.exp((p.lse.data[r] ?? -Infinity) - m);
      sum += w;
      if (w !== 0) axpyAt(o.data, r * dv, w, p.o.data, r * dv, dv);
    }
    for (let e = r * dv; e < (r + 1) * dv; e++) o.data[e] = (o.data[e] ?? 0) / sum;
    lse.data[r] = m + Math.log(sum);
  }
  return { o, lse };
}

/**
 * The backward of one query piece against one key/value block, given the FINAL o and lse (merged over all
 * blocks), as flash and ring backward do: P_ij = exp(scale q_i.k_j - lse_i) is then the true global
 * probability, delta_i = rowsum(dout_i * o_i), dS = P (dout_i . v_j - delta_i). dq is this block's share
 * (sum it over blocks); dk, dv [Nk, Hkv, d] are the block's keys' share from these queries (sum them over
 * query pieces, i.e. the ReduceScatter / the dK, dV that travel the ring back to the owner).
 */
export function attendBlockBackward(
  q: Tensor,
  qPos: ArrayLike<number>,
  k: Tensor,
  kPos: ArrayLike<number>,
  v: Tensor,
  o: Tensor,
  lse: Tensor,
  dout: Tensor,
  causal: boolean | Visibility,
  scale?: number,
): AttentionGrads {
  const { Nq, Nk, H, Hkv, dk, dv } = softmaxDims(q, qPos, k, kPos, v, "attendBlockBackward");
  const mask = typeof causal === "boolean" ? causalMask(causal) : causal;
  const [No, Ho, dvo] = dims3(o, "attendBlockBackward o");
  if (No !== Nq || Ho !== H || dvo !== dv) throw new Error("attendBlockBackward: o must be [Nq, H, dv]");
  assertSameShape(dout, o, "attendBlockBackward dout/o");
  const [Nl, Hl] = dims2(lse, "attendBlockBackward lse");
  if (Nl !== Nq || Hl !== H) throw new Error("attendBlockBackward: lse must be [Nq, H]");
  const sc = scale ?? 1 / Math.sqrt(dk);
  const dq = zeros(q.shape);
  const dkT = zeros(k.shape);
  const dvT = zeros(v.shape);
  for (let i = 0; i < Nq; i++) {
    const pi = qPos[i] ?? 0;
    for (let h = 0; h < H; h++) {
      const l = lse.data[i * H + h] ?? -Infinity;
      if (l === -Infinity) continue; // no visible key anywhere: o = 0 is constant, no gradient
      const g = kvHeadOf(h, H, Hkv);
      const qi = (i * H + h) * dk;
      const oi = (i * H + h) * dv;
      const delta = dotAt(dout.data, oi, o.data, oi, dv);
      for (let j = 0; j < Nk; j++) {
        if (!mask(pi, kPos[j] ?? 0)) continue;
        const kj = (j * Hkv + g) * dk;
        const vj = (j * Hkv + g) * dv;
        const p = Math.exp(sc * dotAt(q.data, qi, k.data, kj, dk) - l);
        const ds = sc * p * (dotAt(dout.data, oi, v.data, vj, dv) - delta);
        axpyAt(dq.data, qi, ds, k.data, kj, dk);
        axpyAt(dkT.data, kj, ds, q.data, qi, dk);
        axpyAt(dvT.data, vj, p, dout.data, oi, dv);
      }
    }
  }
  return { dq, dk: dkT, dv: dvT };
}
