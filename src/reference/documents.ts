// Packed documents (docs/DOCUMENTS.md): the dense document-aware oracles. A sequence of N tokens holds
// several documents back to back; a query attends to keys of its own document only. These are the masked
// formulas of oracle.ts with the document mask added, read as plainly as the oracles themselves, so that
// a schedule with documents is proven exact by agreeing with them (and they, in the tests, by agreeing with
// the plain oracle run on each document alone).
//
// Boundaries are the token positions b after which a document ends (as llm.c's `<|endoftext|>` tokens:
// token b is the last of its document), sorted and distinct, each in [0, N). A boundary at N - 1 changes
// nothing; no boundaries is one document, today's result.

import {
  type Decay,
  type LinearGrads,
  type Visibility,
  assertNoDecay,
  causalMask,
  decayPerHead,
  decayPowers,
  softmaxAttentionBackwardMasked,
  softmaxAttentionForwardMasked,
  type AttentionGrads,
  type AttentionOut,
} from "./oracle.js";
import { type Piece, type Tensor, assertSameShape, dims3, zeros } from "./tensor.js";

/** Sorted, distinct token positions after which a document ends. */
export type Boundaries = readonly number[];

/** Throws unless `boundaries` are sorted, distinct integers in [0, N). */
export function checkBoundaries(boundaries: Boundaries, N: number, what: string): void {
  let last = -1;
  for (const b of boundaries) {
    if (!Number.isInteger(b) || b < 0 || b >= N)
      throw new Error(`${what}: document boundary ${b} is outside the ${N} tokens`);
    if (b <= last)
      throw new Error(`${what}: document boundaries must be sorted and distinct (${last}, ${b})`);
    last = b;
  }
}

/** The document index of global position `pos`: how many boundaries lie strictly before it. */
export function documentOf(boundaries: Boundaries, pos: number): number {
  let lo = 0;
  let hi = boundaries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((boundaries[mid] ?? 0) < pos) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The documents as pieces [start, start + length) of the N tokens, in order (empty ones never occur). */
export function documentSpans(N: number, boundaries: Boundaries): Piece[] {
  checkBoundaries(boundaries, N, "documentSpans");
  const spans: Piece[] = [];
  let start = 0;
  for (const b of [...boundaries, N - 1]) {
    if (b + 1 > start) spans.push({ start, length: b + 1 - start });
    start = b + 1;
  }
  return spans;
}

/** The document mask: keys of the query's own document, and only earlier ones when causal. */
export function documentMask(causal: boolean, boundaries: Boundaries): Visibility {
  const inner = causalMask(causal);
  return (qp, kp) => inner(qp, kp) && documentOf(boundaries, qp) === documentOf(boundaries, kp);
}

// ---------------------------------------------------------------------------------------------------------
// Linear attention: o_i = sum_{j in mask(i), doc(j) = doc(i)} lam_h^(i-j) (q_i . k_j) v_j

function dotAt(a: Float64Array, ia: number, b: Float64Array, ib: number, n: number): number {
  let s = 0;
  for (let e = 0; e < n; e++) s += (a[ia + e] ?? 0) * (b[ib + e] ?? 0);
  return s;
}

function axpyAt(y: Float64Array, iy: number, w: number, x: Float64Array, ix: number, n: number): void {
  for (let e = 0; e < n; e++) y[iy + e] = (y[iy + e] ?? 0) + w * (x[ix + e] ?? 0);
}

interface DocDims {
  N: number;
  H: number;
  dk: number;
  dv: number;
  lams: number[];
  /** The first and last token of each token's document. */
  first: Int32Array;
  last: Int32Array;
}

function docDims(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  lam: Decay,
  causal: boolean,
  boundaries: Boundaries,
  what: string,
): DocDims {
  const [N, H, dk] = dims3(q, `${what} q`);
  assertSameShape(q, k, `${what} q/k`);
  const [Nv, Hv, dv] = dims3(v, `${what} v`);
  if (Nv !== N || Hv !== H)
    throw new Error(`${what}: v is [${v.shape.join(", ")}] for q [${q.shape.join(", ")}]`);
  const lams = decayPerHead(lam, H);
  if (!causal) assertNoDecay(lams, what);
  const first = new Int32Array(N);
  const last = new Int32Array(N);
  for (const span of documentSpans(N, boundaries))
    for (let i = span.start; i < span.start + span.length; i++) {
      first[i] = span.start;
      last[i] = span.start + span.length - 1;
    }
  return { N, H, dk, dv, lams, first, last };
}

export function linearAttentionForwardDocs(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  lam: Decay,
  causal: boolean,
  boundaries: Boundaries,
): Tensor {
  const { N, H, dk, dv, lams, first, last } = docDims(
    q,
    k,
    v,
    lam,
    causal,
    boundaries,
    "linearAttentionForwardDocs",
  );
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

/** Gradients of sum(dout * o), term by term over the visible pairs as in linearAttentionBackward. */
export function linearAttentionBackwardDocs(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  dout: Tensor,
  lam: Decay,
  causal: boolean,
  boundaries: Boundaries,
): LinearGrads {
  const { N, H, dk, dv, lams, first, last } = docDims(
    q,
    k,
    v,
    lam,
    causal,
    boundaries,
    "linearAttentionBackwardDocs",
  );
  assertSameShape(dout, v, "linearAttentionBackwardDocs dout/v");
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
// Softmax attention: the oracle's formula under the document mask. Positions are global, so the same call
// serves a whole sequence, a zigzag piece, or one gathered block of keys.

export function softmaxAttentionForwardDocs(
  q: Tensor,
  qPos: ArrayLike<number>,
  k: Tensor,
  kPos: ArrayLike<number>,
  v: Tensor,
  causal: boolean,
  boundaries: Boundaries,
  scale?: number,
): AttentionOut {
  return softmaxAttentionForwardMasked(q, qPos, k, kPos, v, documentMask(causal, boundaries), scale);
}

export function softmaxAttentionBackwardDocs(
  q: Tensor,
  qPos: ArrayLike<number>,
  k: Tensor,
  kPos: ArrayLike<number>,
  v: Tensor,
  dout: Tensor,
  causal: boolean,
  boundaries: Boundaries,
  scale?: number,
): AttentionGrads {
  return softmaxAttentionBackwardMasked(q, qPos, k, kPos, v, dout, documentMask(causal, boundaries), scale);
}

/**
 * Whether a block of queries (global positions qPos) must visit a block of keys (kPos) at all: some key
 * shares a document with some query (and, causal, is not after every query). A kernel skips the others, so
 * packed short documents cost less than one long sequence. Conservative by ranges, as a kernel decides:
 * the block's document range [doc(min), doc(max)] against the keys'.
 */
export function blockNeeded(
  qPos: ArrayLike<number>,
  kPos: ArrayLike<number>,
  causal: boolean,
  boundaries: Boundaries,
): boolean {
  if (qPos.length === 0 || kPos.length === 0) return false;
  const range = (pos: ArrayLike<number>): [number, number] => {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < pos.length; i++) {
      lo = Math.min(lo, pos[i] ?? 0);
      hi = Math.max(hi, pos[i] ?? 0);
    }
    return [lo, hi];
  };
  const [q0, q1] = range(qPos);
  const [k0, k1] = range(kPos);
  if (causal && k0 > q1) return false;
  return (
    documentOf(boundaries, k1) >= documentOf(boundaries, q0) &&
    documentOf(boundaries, k0) <= documentOf(boundaries, q1)
  );
}
