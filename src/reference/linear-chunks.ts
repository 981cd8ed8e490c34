// The per-rank pieces of LASP-2 and LASP-1 (ALGORITHMS.md, "Linear attention"), for ONE piece: a contiguous
// run of C tokens of one rank, all heads at once. Activations are [C, H, d]; states (M, P, dM, G) are
// [H, dk, dv]. An executor composes these exactly as a rank would on the GPU; the tests prove the
// compositions equal the dense oracle.
//
// Why piece-local indices work (the derivation behind every exponent here). Let a piece u cover global
// positions [s_u, e_u), e_u = s_u + L_u, and let j be a local index of u, i a local index of a LATER piece t.
// The pair's weight lam^((s_t + i) - (s_u + j)) splits as
//     lam^(i+1) * lam^(s_t - e_u) * lam^(L_u - 1 - j)
// into a factor of the query alone, one of the two pieces' gap, and one of the key alone. Hence
//     M_u = sum_j lam^(L_u-1-j) k_j^T v_j                     (pieceState)
//     P_t = sum_{u before t} lam^(s_t - e_u) M_u              (prefixForPiece; contiguous: lam^(C(t-1-u)))
//     o_i = O_intra[i] + lam^(i+1) q_i P_t                     (intraForward + interForward)
// and, symmetrically for the backward,
//     dM_u = sum_i lam^(i+1) q_i^T do_i                        (pieceGradState)
//     G_t  = sum_{u after t} lam^(s_u - e_t) dM_u             (suffixForPiece; contiguous: lam^(C(u-1-t)))
//     dk_j += lam^(L_t-1-j) v_j G_t^T,  dv_j += lam^(L_t-1-j) k_j G_t,  dq_i += lam^(i+1) do_i P_t^T.
// Only non-negative exponents ever appear, so nothing overflows however small lam is.
//
// The walk inside a piece (blocks of B tokens, the decayed exclusive prefix of block states, as the kernels
// run it) is written once, in linear-documents.ts, with per-token resets at document boundaries; the
// functions here are it with no boundary. What stays here is the combination across pieces without
// documents: any layout, gaps allowed, by the closed-form weights above.
//
// Bidirectional (lam = 1, no mask): o_i = q_i sum_all M. Either use bidirForward / bidirBackward with the
// AllReduce-d sums, or intraForward(causal = false) + interForward(q, sumStates(states, self), 1).

import {
  dkdvInterDocs,
  dqInterDocs,
  interForwardDocs,
  intraBackwardDocs,
  intraForwardDocs,
  pieceGradStateDocs,
  pieceStateDocs,
  ringStepDocs,
} from "./linear-documents.js";
import { type Decay, type LinearGrads, decayPerHead } from "./oracle.js";
import { DEFAULT_BLOCK } from "./rows.js";
import { type Piece, type Tensor, assertSameShape, dims3, zeros } from "./tensor.js";

function stateDims(S: Tensor, what: string): [number, number, number] {
  return dims3(S, `${what} state`);
}

function checkState(S: Tensor, H: number, dk: number, dv: number, what: string): void {
  const [h, a, b] = stateDims(S, what);
  if (h !== H || a !== dk || b !== dv)
    throw new Error(`${what}: state is [${S.shape.join(", ")}], expected [${H}, ${dk}, ${dv}]`);
}

// ---------------------------------------------------------------------------------------------------------
// One piece: the document walk of linear-documents.ts with no boundary ([]), bit for bit the walk without
// documents (the resets never fire).

/** M = sum_j lam^(C-1-j) k_j^T v_j: the piece's state as seen from its last token. [H, dk, dv]. */
export function pieceState(k: Tensor, v: Tensor, lam: Decay): Tensor {
  return pieceStateDocs(k, v, lam, []);
}

/**
 * O_intra[i] = sum_{j <= i in the piece} lam^(i-j) (q_i . k_j) v_j (causal), or q_i sum_j k_j^T v_j
 * (bidirectional, lam must be 1), computed the way the kernels do: blocks of `blockSize` tokens, per block
 * O_b = ((Q_b K_b^T) * D) V_b + lam^(i-b0+1) Q_b S_b with S_b the decayed exclusive prefix of block states.
 * Any block size works; a short final block is allowed (the kernels use B | C).
 */
export function intraForward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  lam: Decay,
  causal: boolean,
  blockSize: number = DEFAULT_BLOCK,
): Tensor {
  return intraForwardDocs(q, k, v, lam, causal, [], blockSize);
}

/** lam^(i+1) q_i P for each local i: the inter-piece term, to be ADDED to O_intra by the caller. */
export function interForward(q: Tensor, P: Tensor, lam: Decay): Tensor {
  return interForwardDocs(q, P, lam, []);
}

/** dM = sum_i lam^(i+1) q_i^T do_i: what this piece sends to every earlier piece's state. [H, dk, dv]. */
export function pieceGradState(q: Tensor, dout: Tensor, lam: Decay): Tensor {
  return pieceGradStateDocs(q, dout, lam, []);
}

/**
 * Gradients of the piece's own (intra) term only, block-wise like the kernels: dq runs forward over blocks
 * with the exclusive prefix S_b of block states; dk and dv run backward with the exclusive suffix G_b of
 * block gradient-states. Cross-piece terms come from dqInter and dkdvInter.
 */
export function intraBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  dout: Tensor,
  lam: Decay,
  causal: boolean,
  blockSize: number = DEFAULT_BLOCK,
): LinearGrads {
  return intraBackwardDocs(q, k, v, dout, lam, causal, [], blockSize);
}

/** lam^(i+1) do_i P^T for each local i: the inter-piece part of dq (P cached from the forward). */
export function dqInter(dout: Tensor, P: Tensor, lam: Decay): Tensor {
  return dqInterDocs(dout, P, lam, []);
}

/** dk_j = lam^(C-1-j) v_j G^T and dv_j = lam^(C-1-j) k_j G: the inter-piece parts, to be ADDED. */
export function dkdvInter(k: Tensor, v: Tensor, G: Tensor, lam: Decay): { dk: Tensor; dv: Tensor } {
  return dkdvInterDocs(k, v, G, lam, []);
}

// ---------------------------------------------------------------------------------------------------------
// Combining gathered states

/** sum_u w[u][h] * S_u, per head. */
function weightedSum(
  states: readonly Tensor[],
  weights: readonly (readonly number[])[],
  what: string,
): Tensor {
  const first = states[0];
  if (first === undefined) throw new Error(`${what}: no states`);
  const [H, dk, dv] = stateDims(first, what);
  const out = zeros([H, dk, dv]);
  const n = dk * dv;
  states.forEach((S, u) => {
    checkState(S, H, dk, dv, what);
    for (let h = 0; h < H; h++) {
      const w = weights[u]?.[h] ?? 0;
      if (w === 0) continue;
      for (let e = h * n; e < (h + 1) * n; e++) out.data[e] = (out.data[e] ?? 0) + w * (S.data[e] ?? 0);
    }
  });
  return out;
}

function powPerHead(lams: readonly number[], exponent: number): number[] {
  return lams.map((l) => (l === 1 ? 1 : Math.pow(l, exponent)));
}

/** Contiguous layout: P_t = sum_{u < t} lam^(C(t-1-u)) M_u, with `states` the AllGather of every rank's M. */
export function prefixFromGathered(states: readonly Tensor[], lam: Decay, C: number, t: number): Tensor {
  if (!(t >= 0 && t < states.length)) throw new Error(`prefixFromGathered: piece ${t} of ${states.length}`);
  const lams = decayPerHead(lam, states[0]?.shape[0] ?? 0);
  const weights = states.map((_, u) => (u < t ? powPerHead(lams, C * (t - 1 - u)) : lams.map(() => 0)));
  return weightedSum(states, weights, "prefixFromGathered");
}

/** Contiguous layout: G_t = sum_{u > t} lam^(C(u-1-t)) dM_u, with `dStates` the AllGather of every dM. */
export function suffixFromGathered(dStates: readonly Tensor[], lam: Decay, C: number, t: number): Tensor {
  if (!(t >= 0 && t < dStates.length)) throw new Error(`suffixFromGathered: piece ${t} of ${dStates.length}`);
  const lams = decayPerHead(lam, dStates[0]?.shape[0] ?? 0);
  const weights = dStates.map((_, u) => (u > t ? powPerHead(lams, C * (u - 1 - t)) : lams.map(() => 0)));
  return weightedSum(dStates, weights, "suffixFromGathered");
}

function checkPieces(pieces: readonly Piece[], count: number, target: number, what: string): Piece {
  if (pieces.length !== count) throw new Error(`${what}: ${pieces.length} pieces for ${count} states`);
  const t = pieces[target];
  if (t === undefined) throw new Error(`${what}: no piece ${target}`);
  for (const p of pieces) {
    if (!(Number.isInteger(p.start) && Number.isInteger(p.length) && p.start >= 0 && p.length >= 0))
      throw new Error(`${what}: bad piece [${p.start}, +${p.length})`);
    if (p !== t && p.start < t.start + t.length && t.start < p.start + p.length)
      throw new Error(`${what}: pieces overlap`);
  }
  return t;
}

/**
 * Any layout (zigzag included): P for `pieces[target]` = sum over pieces u ENDING at or before its start of
 * lam^(start_target - end_u) M_u, where `states[u]` is pieceState of `pieces[u]` (same index, any order;
 * the gathered 2W piece-states for zigzag). Then o_i = O_intra[i] + lam^(i+1) q_i P for local index i.
 */
export function prefixForPiece(
  states: readonly Tensor[],
  pieces: readonly Piece[],
  target: number,
  lam: Decay,
): Tensor {
  const t = checkPieces(pieces, states.length, target, "prefixForPiece");
  const lams = decayPerHead(lam, states[0]?.shape[0] ?? 0);
  const weights = pieces.map((u) => {
    const gap = t.start - (u.start + u.length);
    return u !== t && gap >= 0 ? powPerHead(lams, gap) : lams.map(() => 0);
  });
  return weightedSum(states, weights, "prefixForPiece");
}

/**
 * Any layout: G for `pieces[target]` = sum over pieces u STARTING at or after its end of
 * lam^(start_u - end_target) dM_u, `dStates[u]` being pieceGradState of `pieces[u]`.
 */
export function suffixForPiece(
  dStates: readonly Tensor[],
  pieces: readonly Piece[],
  target: number,
  lam: Decay,
): Tensor {
  const t = checkPieces(pieces, dStates.length, target, "suffixForPiece");
  const lams = decayPerHead(lam, dStates[0]?.shape[0] ?? 0);
  const weights = pieces.map((u) => {
    const gap = u.start - (t.start + t.length);
    return u !== t && gap >= 0 ? powPerHead(lams, gap) : lams.map(() => 0);
  });
  return weightedSum(dStates, weights, "suffixForPiece");
}

/** Sum of all states (the AllReduce of bidirectional attention), optionally leaving out index `exclude`. */
export function sumStates(states: readonly Tensor[], exclude?: number): Tensor {
  const H = states[0]?.shape[0] ?? 0;
  return weightedSum(
    states,
    states.map((_, u) => new Array<number>(H).fill(u === exclude ? 0 : 1)),
    "sumStates",
  );
}

// ---------------------------------------------------------------------------------------------------------
// LASP-1: the same prefix carried point to point.

/**
 * Pout = lam^C Pin + M: what a rank sends on after a piece of C tokens with state M, given the prefix Pin it
 * received (zeros for the first piece). Chained over pieces in global order it reproduces the prefix of
 * the next piece; for zigzag pass each piece's own length.
 */
export function ringStep(Pin: Tensor, M: Tensor, lam: Decay, C: number): Tensor {
  return ringStepDocs(Pin, M, lam, { start: 0, length: C }, false);
}

/**
 * Gout = lam^C Gin + dM: the reverse chain. A piece of C tokens with gradient state dM, given the suffix Gin
 * it received from the next piece (zeros for the last), sends Gout to the piece before it.
 */
export function ringStepBackward(Gin: Tensor, dM: Tensor, lam: Decay, C: number): Tensor {
  return ringStepDocs(Gin, dM, lam, { start: 0, length: C }, false);
}

// ---------------------------------------------------------------------------------------------------------
// Bidirectional with the AllReduce: every rank holds Mall = sum of all pieces' M (lam = 1) and
// dMall = sum of all pieces' pieceGradState(q, dout, 1); then no intra term is needed at all.

/** o_i = q_i Mall. */
export function bidirForward(q: Tensor, Mall: Tensor): Tensor {
  return interForward(q, Mall, 1);
}

/** dq_i = do_i Mall^T, dk_j = v_j dMall^T, dv_j = k_j dMall. */
export function bidirBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  dout: Tensor,
  Mall: Tensor,
  dMall: Tensor,
): LinearGrads {
  assertSameShape(q, k, "bidirBackward q/k");
  const dq = dqInter(dout, Mall, 1);
  const { dk, dv } = dkdvInter(k, v, dMall, 1);
  return { dq, dk, dv };
}
