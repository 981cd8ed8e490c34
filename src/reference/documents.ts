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
  causalMask,
  linearAttentionBackwardIn,
  linearAttentionForwardIn,
  softmaxAttentionBackwardMasked,
  softmaxAttentionForwardMasked,
  type AttentionGrads,
  type AttentionOut,
} from "./oracle.js";
import { type Piece, type Tensor } from "./tensor.js";

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
// Linear attention: o_i = sum_{j in mask(i), doc(j) = doc(i)} lam_h^(i-j) (q_i . k_j) v_j, the oracle's
// formula with the documents as its segments.

export function linearAttentionForwardDocs(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  lam: Decay,
  causal: boolean,
  boundaries: Boundaries,
): Tensor {
  const docs = (N: number): Piece[] => documentSpans(N, boundaries);
  return linearAttentionForwardIn(q, k, v, lam, causal, docs, "linearAttentionForwardDocs");
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
  const docs = (N: number): Piece[] => documentSpans(N, boundaries);
  return linearAttentionBackwardIn(q, k, v, dout, lam, causal, docs, "linearAttentionBackwardDocs");
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
