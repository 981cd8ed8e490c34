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
// Bidirectional (lam = 1, no mask): o_i = q_i sum_all M. Either use bidirForward / bidirBackward with the
// AllReduce-d sums, or intraForward(causal = false) + interForward(q, sumStates(states, self), 1).

import { type Decay, type LinearGrads, assertNoDecay, decayPerHead, decayPowers } from "./oracle.js";
import { type Piece, type Tensor, assertSameShape, dims3, zeros } from "./tensor.js";

/** Default token block of the chunk algorithm (the kernels' B). */
export const DEFAULT_BLOCK = 64;

// ---------------------------------------------------------------------------------------------------------
// Row x state kernels. Rows live at an offset inside a [C, H, d] buffer; a head's state at h * dk * dv.

/** out[io + e] += c * sum_a x[ix + a] S[so + a dv + e]   (x S, a 1 x dv row) */
export function rowState(
  out: Float64Array,
  io: number,
  c: number,
  x: Float64Array,
  ix: number,
  S: Float64Array,
  so: number,
  dk: number,
  dv: number,
): void {
  for (let a = 0; a < dk; a++) {
    const xa = c * (x[ix + a] ?? 0);
    if (xa === 0) continue;
    const row = so + a * dv;
    for (let e = 0; e < dv; e++) out[io + e] = (out[io + e] ?? 0) + xa * (S[row + e] ?? 0);
  }
}

/** out[io + a] += c * sum_e y[iy + e] S[so + a dv + e]   (y S^T, a 1 x dk row) */
export function rowStateT(
  out: Float64Array,
  io: number,
  c: number,
  y: Float64Array,
  iy: number,
  S: Float64Array,
  so: number,
  dk: number,
  dv: number,
): void {
  for (let a = 0; a < dk; a++) {
    const row = so + a * dv;
    let s = 0;
    for (let e = 0; e < dv; e++) s += (y[iy + e] ?? 0) * (S[row + e] ?? 0);
    out[io + a] = (out[io + a] ?? 0) + c * s;
  }
}

/** S[so + a dv + e] += c * x[ix + a] y[iy + e]   (S += c x^T y) */
export function outerAdd(
  S: Float64Array,
  so: number,
  c: number,
  x: Float64Array,
  ix: number,
  dk: number,
  y: Float64Array,
  iy: number,
  dv: number,
): void {
  for (let a = 0; a < dk; a++) {
    const xa = c * (x[ix + a] ?? 0);
    if (xa === 0) continue;
    const row = so + a * dv;
    for (let e = 0; e < dv; e++) S[row + e] = (S[row + e] ?? 0) + xa * (y[iy + e] ?? 0);
  }
}

function dotAt(a: Float64Array, ia: number, b: Float64Array, ib: number, n: number): number {
  let s = 0;
  for (let e = 0; e < n; e++) s += (a[ia + e] ?? 0) * (b[ib + e] ?? 0);
  return s;
}

function axpyAt(y: Float64Array, iy: number, w: number, x: Float64Array, ix: number, n: number): void {
  for (let e = 0; e < n; e++) y[iy + e] = (y[iy + e] ?? 0) + w * (x[ix + e] ?? 0);
}

export function scaleRange(S: Float64Array, from: number, n: number, c: number): void {
  if (c === 1) return;
  for (let e = from; e < from + n; e++) S[e] = (S[e] ?? 0) * c;
}

// ---------------------------------------------------------------------------------------------------------
// Shape checks

interface PieceDims {
  C: number;
  H: number;
  dk: number;
  dv: number;
}

function pieceDims(q: Tensor, v: Tensor, what: string): PieceDims {
  const [C, H, dk] = dims3(q, `${what} (q or k)`);
  const [Cv, Hv, dv] = dims3(v, `${what} (v or dout)`);
  if (Cv !== C || Hv !== H)
    throw new Error(
      `${what}: [${q.shape.join(", ")}] and [${v.shape.join(", ")}] disagree on tokens or heads`,
    );
  return { C, H, dk, dv };
}

function stateDims(S: Tensor, what: string): [number, number, number] {
  return dims3(S, `${what} state`);
}

function checkState(S: Tensor, H: number, dk: number, dv: number, what: string): void {
  const [h, a, b] = stateDims(S, what);
  if (h !== H || a !== dk || b !== dv)
    throw new Error(`${what}: state is [${S.shape.join(", ")}], expected [${H}, ${dk}, ${dv}]`);
}

function checkBlock(blockSize: number): void {
  if (!Number.isInteger(blockSize) || blockSize < 1)
    throw new Error(`block size ${blockSize} must be a positive integer`);
}

// ---------------------------------------------------------------------------------------------------------
// Forward

/** M = sum_j lam^(C-1-j) k_j^T v_j: the piece's state as seen from its last token. [H, dk, dv]. */
export function pieceState(k: Tensor, v: Tensor, lam: Decay): Tensor {
  const { C, H, dk, dv } = pieceDims(k, v, "pieceState");
  const lams = decayPerHead(lam, H);
  const M = zeros([H, dk, dv]);
  for (let h = 0; h < H; h++) {
    const pw = decayPowers(lams[h] ?? 1, C);
    for (let j = 0; j < C; j++)
      outerAdd(
        M.data,
        h * dk * dv,
        pw[C - 1 - j] ?? 0,
        k.data,
        (j * H + h) * dk,
        dk,
        v.data,
        (j * H + h) * dv,
        dv,
      );
  }
  return M;
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
  const { C, H, dk, dv } = pieceDims(q, v, "intraForward");
  assertSameShape(q, k, "intraForward q/k");
  checkBlock(blockSize);
  const lams = decayPerHead(lam, H);
  if (!causal) assertNoDecay(lams, "intraForward");
  const o = zeros([C, H, dv]);
  const S = new Float64Array(dk * dv);
  for (let h = 0; h < H; h++) {
    const pw = decayPowers(lams[h] ?? 1, Math.min(blockSize, C));
    S.fill(0);
    if (!causal) {
      for (let j = 0; j < C; j++)
        outerAdd(S, 0, 1, k.data, (j * H + h) * dk, dk, v.data, (j * H + h) * dv, dv);
      for (let i = 0; i < C; i++)
        rowState(o.data, (i * H + h) * dv, 1, q.data, (i * H + h) * dk, S, 0, dk, dv);
      continue;
    }
    for (let b0 = 0; b0 < C; b0 += blockSize) {
      const b1 = Math.min(b0 + blockSize, C);
      for (let i = b0; i < b1; i++) {
        const qi = (i * H + h) * dk;
        const oi = (i * H + h) * dv;
        for (let j = b0; j <= i; j++) {
          const w = (pw[i - j] ?? 0) * dotAt(q.data, qi, k.data, (j * H + h) * dk, dk);
          axpyAt(o.data, oi, w, v.data, (j * H + h) * dv, dv);
        }
        rowState(o.data, oi, pw[i - b0 + 1] ?? 0, q.data, qi, S, 0, dk, dv);
      }
      // S_{b+1} = lam^L S_b + h_b, with h_b the block's own state seen from its last token
      scaleRange(S, 0, dk * dv, pw[b1 - b0] ?? 0);
      for (let j = b0; j < b1; j++)
        outerAdd(S, 0, pw[b1 - 1 - j] ?? 0, k.data, (j * H + h) * dk, dk, v.data, (j * H + h) * dv, dv);
    }
  }
  return o;
}

/** lam^(i+1) q_i P for each local i: the inter-piece term, to be ADDED to O_intra by the caller. */
export function interForward(q: Tensor, P: Tensor, lam: Decay): Tensor {
  const [C, H, dk] = dims3(q, "interForward q");
  const dv = P.shape[2] ?? 0;
  checkState(P, H, dk, dv, "interForward");
  const lams = decayPerHead(lam, H);
  const out = zeros([C, H, dv]);
  for (let h = 0; h < H; h++) {
    const pw = decayPowers(lams[h] ?? 1, C);
    for (let i = 0; i < C; i++)
      rowState(
        out.data,
        (i * H + h) * dv,
        pw[i + 1] ?? 0,
        q.data,
        (i * H + h) * dk,
        P.data,
        h * dk * dv,
        dk,
        dv,
      );
  }
  return out;
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
  const lams = decayPerHead(lam, Pin.shape[0] ?? 0);
  return weightedSum([Pin, M], [powPerHead(lams, C), lams.map(() => 1)], "ringStep");
}

/**
 * Gout = lam^C Gin + dM: the reverse chain. A piece of C tokens with gradient state dM, given the suffix Gin
 * it received from the next piece (zeros for the last), sends Gout to the piece before it.
 */
export function ringStepBackward(Gin: Tensor, dM: Tensor, lam: Decay, C: number): Tensor {
  const lams = decayPerHead(lam, Gin.shape[0] ?? 0);
  return weightedSum([Gin, dM], [powPerHead(lams, C), lams.map(() => 1)], "ringStepBackward");
}

// ---------------------------------------------------------------------------------------------------------
// Backward

/** dM = sum_i lam^(i+1) q_i^T do_i: what this piece sends to every earlier piece's state. [H, dk, dv]. */
export function pieceGradState(q: Tensor, dout: Tensor, lam: Decay): Tensor {
  const { C, H, dk, dv } = pieceDims(q, dout, "pieceGradState");
  const lams = decayPerHead(lam, H);
  const dM = zeros([H, dk, dv]);
  for (let h = 0; h < H; h++) {
    const pw = decayPowers(lams[h] ?? 1, C);
    for (let i = 0; i < C; i++)
      outerAdd(
        dM.data,
        h * dk * dv,
        pw[i + 1] ?? 0,
        q.data,
        (i * H + h) * dk,
        dk,
        dout.data,
        (i * H + h) * dv,
        dv,
      );
  }
  return dM;
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
  const { C, H, dk, dv } = pieceDims(q, v, "intraBackward");
  assertSameShape(q, k, "intraBackward q/k");
  assertSameShape(v, dout, "intraBackward v/dout");
  checkBlock(blockSize);
  const lams = decayPerHead(lam, H);
  if (!causal) assertNoDecay(lams, "intraBackward");
  const dq = zeros(q.shape);
  const dkT = zeros(k.shape);
  const dvT = zeros(v.shape);
  const S = new Float64Array(dk * dv);
  const G = new Float64Array(dk * dv);
  for (let h = 0; h < H; h++) {
    const pw = decayPowers(lams[h] ?? 1, Math.min(blockSize, C));
    const at = (i: number, d: number): number => (i * H + h) * d;
    S.fill(0);
    G.fill(0);
    if (!causal) {
      for (let j = 0; j < C; j++) outerAdd(S, 0, 1, k.data, at(j, dk), dk, v.data, at(j, dv), dv);
      for (let i = 0; i < C; i++) outerAdd(G, 0, 1, q.data, at(i, dk), dk, dout.data, at(i, dv), dv);
      for (let i = 0; i < C; i++) {
        rowStateT(dq.data, at(i, dk), 1, dout.data, at(i, dv), S, 0, dk, dv);
        rowStateT(dkT.data, at(i, dk), 1, v.data, at(i, dv), G, 0, dk, dv);
        rowState(dvT.data, at(i, dv), 1, k.data, at(i, dk), G, 0, dk, dv);
      }
      continue;
    }
    // dq: forward over blocks
    for (let b0 = 0; b0 < C; b0 += blockSize) {
      const b1 = Math.min(b0 + blockSize, C);
      for (let i = b0; i < b1; i++) {
        for (let j = b0; j <= i; j++) {
          const a = (pw[i - j] ?? 0) * dotAt(dout.data, at(i, dv), v.data, at(j, dv), dv);
          axpyAt(dq.data, at(i, dk), a, k.data, at(j, dk), dk);
        }
        rowStateT(dq.data, at(i, dk), pw[i - b0 + 1] ?? 0, dout.data, at(i, dv), S, 0, dk, dv);
      }
      scaleRange(S, 0, dk * dv, pw[b1 - b0] ?? 0);
      for (let j = b0; j < b1; j++)
        outerAdd(S, 0, pw[b1 - 1 - j] ?? 0, k.data, at(j, dk), dk, v.data, at(j, dv), dv);
    }
    // dk, dv: backward over blocks
    const lastStart = Math.floor((C - 1) / blockSize) * blockSize;
    for (let b0 = lastStart; b0 >= 0 && C > 0; b0 -= blockSize) {
      const b1 = Math.min(b0 + blockSize, C);
      for (let j = b0; j < b1; j++) {
        for (let i = j; i < b1; i++) {
          const w = pw[i - j] ?? 0;
          const a = w * dotAt(dout.data, at(i, dv), v.data, at(j, dv), dv);
          const b = w * dotAt(q.data, at(i, dk), k.data, at(j, dk), dk);
          axpyAt(dkT.data, at(j, dk), a, q.data, at(i, dk), dk);
          axpyAt(dvT.data, at(j, dv), b, dout.data, at(i, dv), dv);
        }
        const c = pw[b1 - 1 - j] ?? 0;
        rowStateT(dkT.data, at(j, dk), c, v.data, at(j, dv), G, 0, dk, dv);
        rowState(dvT.data, at(j, dv), c, k.data, at(j, dk), G, 0, dk, dv);
      }
      // G_{b-1} = lam^L G_b + dM_b, dM_b the block's gradient state seen from its first token
      scaleRange(G, 0, dk * dv, pw[b1 - b0] ?? 0);
      for (let i = b0; i < b1; i++)
        outerAdd(G, 0, pw[i - b0 + 1] ?? 0, q.data, at(i, dk), dk, dout.data, at(i, dv), dv);
    }
  }
  return { dq, dk: dkT, dv: dvT };
}

/** lam^(i+1) do_i P^T for each local i: the inter-piece part of dq (P cached from the forward). */
export function dqInter(dout: Tensor, P: Tensor, lam: Decay): Tensor {
  const [C, H, dv] = dims3(dout, "dqInter dout");
  const dk = P.shape[1] ?? 0;
  checkState(P, H, dk, dv, "dqInter");
  const lams = decayPerHead(lam, H);
  const dq = zeros([C, H, dk]);
  for (let h = 0; h < H; h++) {
    const pw = decayPowers(lams[h] ?? 1, C);
    for (let i = 0; i < C; i++)
      rowStateT(
        dq.data,
        (i * H + h) * dk,
        pw[i + 1] ?? 0,
        dout.data,
        (i * H + h) * dv,
        P.data,
        h * dk * dv,
        dk,
        dv,
      );
  }
  return dq;
}

/** dk_j = lam^(C-1-j) v_j G^T and dv_j = lam^(C-1-j) k_j G: the inter-piece parts, to be ADDED. */
export function dkdvInter(k: Tensor, v: Tensor, G: Tensor, lam: Decay): { dk: Tensor; dv: Tensor } {
  const { C, H, dk, dv } = pieceDims(k, v, "dkdvInter");
  checkState(G, H, dk, dv, "dkdvInter");
  const lams = decayPerHead(lam, H);
  const dkT = zeros(k.shape);
  const dvT = zeros(v.shape);
  for (let h = 0; h < H; h++) {
    const pw = decayPowers(lams[h] ?? 1, C);
    for (let j = 0; j < C; j++) {
      const c = pw[C - 1 - j] ?? 0;
      rowStateT(dkT.data, (j * H + h) * dk, c, v.data, (j * H + h) * dv, G.data, h * dk * dv, dk, dv);
      rowState(dvT.data, (j * H + h) * dv, c, k.data, (j * H + h) * dk, G.data, h * dk * dv, dk, dv);
    }
  }
  return { dk: dkT, dv: dvT };
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
