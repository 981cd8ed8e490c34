// Linear attention with packed documents, per piece (docs/DOCUMENTS.md): the chunk walk with a per-token
// reset, and LASP-2's / LASP-1's cross-piece combination as the affine scan with a carry factor per piece.
// Shapes as in linear-chunks.ts: activations [L, H, d] of one piece, states [H, dk, dv].
//
// A piece's document boundaries are LOCAL indices b in [0, L) after which a document ends (localBoundaries
// cuts them out of the sequence's). With f the first and l the last of them (none: the piece lies inside
// one document):
//   M  = sum_{j > l} lam^(L-1-j) k_j^T v_j       the state the piece hands on (tokens after its last boundary)
//   c  = 0 if the piece has a boundary, else lam^L   its carry factor (the one flag per piece it gathers)
//   P_t = c_{t-1} P_{t-1} + M_{t-1},  P_0 = 0      over pieces in global order (the affine scan)
//   o_i = O_intra[i] + [i <= f] lam^(i+1) q_i P_t  only queries before the first boundary see the prefix
// and the mirror image for the backward:
//   dM = sum_{i <= f} lam^(i+1) q_i^T do_i,  G_t = c_{t+1} G_{t+1} + dM_{t+1},  G_last = 0,
//   dk_j += [j > l] lam^(L-1-j) v_j G_t^T,  dv_j += [j > l] lam^(L-1-j) k_j G_t,  dq_i += [i <= f] lam^(i+1) do_i P_t^T.
// Inside a piece the chunk walk is the same recursion one level down, with blocks for pieces. With no
// boundary (local = []) every reset is inert: linear-chunks.ts's per-piece functions are these with [],
// bit for bit, and its LASP-1 step is ringStepDocs without a flag.

import { type Boundaries, checkBoundaries } from "./documents.js";
import { type Decay, type LinearGrads, assertNoDecay, decayPerHead, decayPowers } from "./oracle.js";
import {
  DEFAULT_BLOCK,
  axpyAt,
  checkBlock,
  dotAt,
  outerAdd,
  rowState,
  rowStateT,
  scaleRange,
} from "./rows.js";
import { type Piece, type Tensor, assertSameShape, dims3, zeros } from "./tensor.js";

/** The boundaries of `boundaries` (global) that fall inside `piece`, as local indices. */
export function localBoundaries(boundaries: Boundaries, piece: Piece): number[] {
  return boundaries
    .filter((b) => b >= piece.start && b < piece.start + piece.length)
    .map((b) => b - piece.start);
}

/** The flag a piece gathers beside its state: whether a document ends inside it (then its carry is 0). */
export function hasBoundary(local: Boundaries): boolean {
  return local.length > 0;
}

interface PieceDocs {
  L: number;
  H: number;
  dk: number;
  dv: number;
  lams: number[];
  /** First boundary (queries i <= first see what came before); L - 1 when there is none. */
  first: number;
  /** Last boundary (keys j > last are handed on); -1 when there is none. */
  last: number;
  /** Per token: where its document starts inside the piece (0 if before the piece). */
  docFirst: Int32Array;
  /** Per token: the boundary that ends its document, L if the document runs past the piece. */
  docLast: Int32Array;
}

function pieceDocs(x: Tensor, y: Tensor, lam: Decay, local: Boundaries, what: string): PieceDocs {
  const [L, H, dk] = dims3(x, `${what} (q or k)`);
  const [Ly, Hy, dv] = dims3(y, `${what} (v or dout)`);
  if (Ly !== L || Hy !== H)
    throw new Error(
      `${what}: [${x.shape.join(", ")}] and [${y.shape.join(", ")}] disagree on tokens or heads`,
    );
  checkBoundaries(local, L, what);
  const docFirst = new Int32Array(L);
  const docLast = new Int32Array(L);
  let start = 0;
  for (const b of [...local, L]) {
    for (let i = start; i <= Math.min(b, L - 1); i++) {
      docFirst[i] = start;
      docLast[i] = b;
    }
    start = b + 1;
  }
  return {
    L,
    H,
    dk,
    dv,
    lams: decayPerHead(lam, H),
    first: local[0] ?? L - 1,
    last: local[local.length - 1] ?? -1,
    docFirst,
    docLast,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Forward

/** M = sum_{j > last boundary} lam^(L-1-j) k_j^T v_j: the state this piece hands to the next. */
export function pieceStateDocs(k: Tensor, v: Tensor, lam: Decay, local: Boundaries): Tensor {
  const d = pieceDocs(k, v, lam, local, "pieceStateDocs");
  return rowsState(k, v, d, d.last + 1, d.L - 1, (j) => d.L - 1 - j);
}

/** sum_{i in [from, to]} lam^exponent(i) x_i^T y_i per head: a piece's state over a run of its tokens. */
function rowsState(
  x: Tensor,
  y: Tensor,
  { L, H, dk, dv, lams }: PieceDocs,
  from: number,
  to: number,
  exponent: (i: number) => number,
): Tensor {
  const S = zeros([H, dk, dv]);
  for (let h = 0; h < H; h++) {
    const pw = decayPowers(lams[h] ?? 1, L);
    for (let i = from; i <= to; i++)
      outerAdd(
        S.data,
        h * dk * dv,
        pw[exponent(i)] ?? 0,
        x.data,
        (i * H + h) * dk,
        dk,
        y.data,
        (i * H + h) * dv,
        dv,
      );
  }
  return S;
}

/**
 * O_intra with per-token resets, block-wise like the kernels: inside a block only pairs of one document;
 * the block prefix S reaches only the queries before the block's first boundary, and a block with a
 * boundary restarts S from its tokens after its last boundary (carry 0), else S = lam^B S + h_b.
 * Bidirectional (lam = 1): o_i = q_i times the sum of its document's states inside the piece.
 */
export function intraForwardDocs(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  lam: Decay,
  causal: boolean,
  local: Boundaries,
  blockSize: number = DEFAULT_BLOCK,
): Tensor {
  const { L, H, dk, dv, lams, docFirst, docLast } = pieceDocs(q, v, lam, local, "intraForwardDocs");
  assertSameShape(q, k, "intraForwardDocs q/k");
  checkBlock(blockSize);
  if (!causal) assertNoDecay(lams, "intraForwardDocs");
  const o = zeros([L, H, dv]);
  const S = new Float64Array(dk * dv);
  for (let h = 0; h < H; h++) {
    const at = (i: number, d: number): number => (i * H + h) * d;
    if (!causal) {
      for (let s = 0; s < L; s = (docLast[s] ?? 0) + 1) {
        const e = Math.min(docLast[s] ?? 0, L - 1);
        S.fill(0);
        for (let j = s; j <= e; j++) outerAdd(S, 0, 1, k.data, at(j, dk), dk, v.data, at(j, dv), dv);
        for (let i = s; i <= e; i++) rowState(o.data, at(i, dv), 1, q.data, at(i, dk), S, 0, dk, dv);
      }
      continue;
    }
    const pw = decayPowers(lams[h] ?? 1, Math.min(blockSize, L));
    S.fill(0);
    for (let b0 = 0; b0 < L; b0 += blockSize) {
      const b1 = Math.min(b0 + blockSize, L);
      for (let i = b0; i < b1; i++) {
        const qi = at(i, dk);
        const oi = at(i, dv);
        for (let j = Math.max(b0, docFirst[i] ?? 0); j <= i; j++) {
          const w = (pw[i - j] ?? 0) * dotAt(q.data, qi, k.data, at(j, dk), dk);
          axpyAt(o.data, oi, w, v.data, at(j, dv), dv);
        }
        if ((docFirst[i] ?? 0) <= b0) rowState(o.data, oi, pw[i - b0 + 1] ?? 0, q.data, qi, S, 0, dk, dv);
      }
      // the block's carry: 0 if a document ends inside it, else lam^B; then the tokens after its last boundary
      scaleRange(S, 0, dk * dv, (docLast[b0] ?? 0) < b1 ? 0 : (pw[b1 - b0] ?? 0));
      for (let j = b0; j < b1; j++)
        if ((docLast[j] ?? 0) >= b1)
          outerAdd(S, 0, pw[b1 - 1 - j] ?? 0, k.data, at(j, dk), dk, v.data, at(j, dv), dv);
    }
  }
  return o;
}

/** [i <= first boundary] lam^(i+1) q_i P: the inter-piece term, to be ADDED to O_intra. */
export function interForwardDocs(q: Tensor, P: Tensor, lam: Decay, local: Boundaries): Tensor {
  return prefixRows(q, P, lam, local, false, "interForwardDocs");
}

/**
 * [i <= first boundary] lam^(i+1) x_i P (or x_i P^T, `transpose`): the prefix's share of the rows before
 * the piece's first boundary, o from q in the forward and dq from dout in the backward.
 */
function prefixRows(
  x: Tensor,
  P: Tensor,
  lam: Decay,
  local: Boundaries,
  transpose: boolean,
  what: string,
): Tensor {
  const [L, H, dx] = dims3(x, `${what} rows`);
  const [HP, dk, dv] = dims3(P, `${what} state`);
  if (HP !== H || dx !== (transpose ? dv : dk))
    throw new Error(`${what}: state [${P.shape.join(", ")}] for rows [${x.shape.join(", ")}]`);
  checkBoundaries(local, L, what);
  const first = local[0] ?? L - 1;
  const lams = decayPerHead(lam, H);
  const dOut = transpose ? dk : dv;
  const out = zeros([L, H, dOut]);
  const apply = transpose ? rowStateT : rowState;
  for (let h = 0; h < H; h++) {
    const pw = decayPowers(lams[h] ?? 1, L);
    for (let i = 0; i <= first; i++)
      apply(
        out.data,
        (i * H + h) * dOut,
        pw[i + 1] ?? 0,
        x.data,
        (i * H + h) * dx,
        P.data,
        h * dk * dv,
        dk,
        dv,
      );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// The affine scan over gathered states and flags

function carryPerHead(lams: readonly number[], piece: Piece, flag: boolean): number[] {
  return lams.map((l) => (flag ? 0 : l === 1 ? 1 : Math.pow(l, piece.length)));
}

/** S = c S + X, per head (c per head). */
function affineStep(S: Tensor, c: readonly number[], X: Tensor): void {
  const [H, dk, dv] = dims3(S, "affine scan state");
  const [HX, dkX, dvX] = dims3(X, "affine scan state");
  if (HX !== H || dkX !== dk || dvX !== dv)
    throw new Error(`affine scan: states [${S.shape.join(", ")}] and [${X.shape.join(", ")}] differ`);
  const n = dk * dv;
  for (let h = 0; h < H; h++) {
    const ch = c[h] ?? 0;
    for (let e = h * n; e < (h + 1) * n; e++) S.data[e] = ch * (S.data[e] ?? 0) + (X.data[e] ?? 0);
  }
}

/** The pieces in global order, checked to tile a run of tokens without gaps or overlaps. */
function scanOrder(pieces: readonly Piece[], count: number, target: number, what: string): number[] {
  if (pieces.length !== count) throw new Error(`${what}: ${pieces.length} pieces for ${count} states`);
  if (pieces[target] === undefined) throw new Error(`${what}: no piece ${target}`);
  const order = pieces.map((_, u) => u).sort((a, b) => (pieces[a]?.start ?? 0) - (pieces[b]?.start ?? 0));
  for (let n = 1; n < order.length; n++) {
    const prev = pieces[order[n - 1] ?? 0] as Piece;
    if (prev.start + prev.length !== pieces[order[n] ?? 0]?.start)
      throw new Error(`${what}: the pieces do not tile the sequence`);
  }
  return order;
}

/**
 * P for `pieces[target]`: P = 0, then for every earlier piece u in global order P = c_u P + M_u, with
 * `states[u]` = pieceStateDocs of piece u and `flags[u]` = hasBoundary of its local boundaries (any order
 * of the lists: the AllGather's). What every rank rebuilds from the gathered states and flags.
 */
export function prefixForPieceDocs(
  states: readonly Tensor[],
  flags: readonly boolean[],
  pieces: readonly Piece[],
  target: number,
  lam: Decay,
): Tensor {
  return scanDocs(states, flags, pieces, target, lam, false, "prefixForPieceDocs");
}

/** G for `pieces[target]`: G = 0, then for every later piece u, last first, G = c_u G + dM_u. */
export function suffixForPieceDocs(
  dStates: readonly Tensor[],
  flags: readonly boolean[],
  pieces: readonly Piece[],
  target: number,
  lam: Decay,
): Tensor {
  return scanDocs(dStates, flags, pieces, target, lam, true, "suffixForPieceDocs");
}

/** The affine scan up to `target`: over the pieces before it in global order, or after it backwards. */
function scanDocs(
  states: readonly Tensor[],
  flags: readonly boolean[],
  pieces: readonly Piece[],
  target: number,
  lam: Decay,
  backwards: boolean,
  what: string,
): Tensor {
  const order = scanOrder(pieces, states.length, target, what);
  if (flags.length !== states.length)
    throw new Error(`${what}: ${flags.length} flags for ${states.length} states`);
  const first = states[0] as Tensor;
  const lams = decayPerHead(lam, first.shape[0] ?? 0);
  const S = zeros(first.shape);
  for (const u of backwards ? order.reverse() : order) {
    if (u === target) break;
    affineStep(S, carryPerHead(lams, pieces[u] as Piece, flags[u] ?? false), states[u] as Tensor);
  }
  return S;
}

/** LASP-1 with documents: what a piece sends on, Pout = c Pin + M (c = 0 if a document ends inside it). */
export function ringStepDocs(Pin: Tensor, M: Tensor, lam: Decay, piece: Piece, flag: boolean): Tensor {
  const out = zeros(Pin.shape);
  const lams = decayPerHead(lam, Pin.shape[0] ?? 0);
  affineStep(
    out,
    lams.map(() => 0),
    Pin,
  ); // out = Pin
  affineStep(out, carryPerHead(lams, piece, flag), M);
  return out;
}

/** The reverse chain: Gout = c Gin + dM. */
export function ringStepBackwardDocs(
  Gin: Tensor,
  dM: Tensor,
  lam: Decay,
  piece: Piece,
  flag: boolean,
): Tensor {
  return ringStepDocs(Gin, dM, lam, piece, flag);
}

// ---------------------------------------------------------------------------------------------------------
// Backward

/** dM = sum_{i <= first boundary} lam^(i+1) q_i^T do_i: what this piece sends to earlier pieces. */
export function pieceGradStateDocs(q: Tensor, dout: Tensor, lam: Decay, local: Boundaries): Tensor {
  const d = pieceDocs(q, dout, lam, local, "pieceGradStateDocs");
  return rowsState(q, dout, d, 0, d.first, (i) => i + 1);
}

/** [i <= first boundary] lam^(i+1) do_i P^T: the inter-piece part of dq. */
export function dqInterDocs(dout: Tensor, P: Tensor, lam: Decay, local: Boundaries): Tensor {
  return prefixRows(dout, P, lam, local, true, "dqInterDocs");
}

/** [j > last boundary] lam^(L-1-j) (v_j G^T, k_j G): the inter-piece parts of dk and dv. */
export function dkdvInterDocs(
  k: Tensor,
  v: Tensor,
  G: Tensor,
  lam: Decay,
  local: Boundaries,
): { dk: Tensor; dv: Tensor } {
  const { L, H, dk, dv, lams, last } = pieceDocs(k, v, lam, local, "dkdvInterDocs");
  const [HG, dkG, dvG] = dims3(G, "dkdvInterDocs G");
  if (HG !== H || dkG !== dk || dvG !== dv)
    throw new Error(`dkdvInterDocs: state is [${G.shape.join(", ")}]`);
  const dkT = zeros(k.shape);
  const dvT = zeros(v.shape);
  for (let h = 0; h < H; h++) {
    const pw = decayPowers(lams[h] ?? 1, L);
    for (let j = last + 1; j < L; j++) {
      const c = pw[L - 1 - j] ?? 0;
      rowStateT(dkT.data, (j * H + h) * dk, c, v.data, (j * H + h) * dv, G.data, h * dk * dv, dk, dv);
      rowState(dvT.data, (j * H + h) * dv, c, k.data, (j * H + h) * dk, G.data, h * dk * dv, dk, dv);
    }
  }
  return { dk: dkT, dv: dvT };
}

/**
 * The piece's own gradients with per-token resets, block-wise: dq forward over blocks as intraForwardDocs;
 * dk, dv backward over blocks with the block suffix G, which reaches only keys after the block's last
 * boundary, and restarts (carry 0) at a block with a boundary from its queries up to its first boundary.
 */
export function intraBackwardDocs(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  dout: Tensor,
  lam: Decay,
  causal: boolean,
  local: Boundaries,
  blockSize: number = DEFAULT_BLOCK,
): LinearGrads {
  const { L, H, dk, dv, lams, docFirst, docLast } = pieceDocs(q, v, lam, local, "intraBackwardDocs");
  assertSameShape(q, k, "intraBackwardDocs q/k");
  assertSameShape(v, dout, "intraBackwardDocs v/dout");
  checkBlock(blockSize);
  if (!causal) assertNoDecay(lams, "intraBackwardDocs");
  const dq = zeros(q.shape);
  const dkT = zeros(k.shape);
  const dvT = zeros(v.shape);
  const S = new Float64Array(dk * dv);
  const G = new Float64Array(dk * dv);
  for (let h = 0; h < H; h++) {
    const at = (i: number, d: number): number => (i * H + h) * d;
    if (!causal) {
      for (let s = 0; s < L; s = (docLast[s] ?? 0) + 1) {
        const e = Math.min(docLast[s] ?? 0, L - 1);
        S.fill(0);
        G.fill(0);
        for (let j = s; j <= e; j++) outerAdd(S, 0, 1, k.data, at(j, dk), dk, v.data, at(j, dv), dv);
        for (let i = s; i <= e; i++) outerAdd(G, 0, 1, q.data, at(i, dk), dk, dout.data, at(i, dv), dv);
        for (let i = s; i <= e; i++) {
          rowStateT(dq.data, at(i, dk), 1, dout.data, at(i, dv), S, 0, dk, dv);
          rowStateT(dkT.data, at(i, dk), 1, v.data, at(i, dv), G, 0, dk, dv);
          rowState(dvT.data, at(i, dv), 1, k.data, at(i, dk), G, 0, dk, dv);
        }
      }
      continue;
    }
    const pw = decayPowers(lams[h] ?? 1, Math.min(blockSize, L));
    // dq: forward over blocks
    S.fill(0);
    for (let b0 = 0; b0 < L; b0 += blockSize) {
      const b1 = Math.min(b0 + blockSize, L);
      for (let i = b0; i < b1; i++) {
        for (let j = Math.max(b0, docFirst[i] ?? 0); j <= i; j++) {
          const a = (pw[i - j] ?? 0) * dotAt(dout.data, at(i, dv), v.data, at(j, dv), dv);
          axpyAt(dq.data, at(i, dk), a, k.data, at(j, dk), dk);
        }
        if ((docFirst[i] ?? 0) <= b0)
          rowStateT(dq.data, at(i, dk), pw[i - b0 + 1] ?? 0, dout.data, at(i, dv), S, 0, dk, dv);
      }
      scaleRange(S, 0, dk * dv, (docLast[b0] ?? 0) < b1 ? 0 : (pw[b1 - b0] ?? 0));
      for (let j = b0; j < b1; j++)
        if ((docLast[j] ?? 0) >= b1)
          outerAdd(S, 0, pw[b1 - 1 - j] ?? 0, k.data, at(j, dk), dk, v.data, at(j, dv), dv);
    }
    // dk, dv: backward over blocks
    G.fill(0);
    const lastStart = Math.floor((L - 1) / blockSize) * blockSize;
    for (let b0 = lastStart; b0 >= 0 && L > 0; b0 -= blockSize) {
      const b1 = Math.min(b0 + blockSize, L);
      for (let j = b0; j < b1; j++) {
        const iEnd = Math.min(b1 - 1, docLast[j] ?? 0);
        for (let i = j; i <= iEnd; i++) {
          const w = pw[i - j] ?? 0;
          const a = w * dotAt(dout.data, at(i, dv), v.data, at(j, dv), dv);
          const b = w * dotAt(q.data, at(i, dk), k.data, at(j, dk), dk);
          axpyAt(dkT.data, at(j, dk), a, q.data, at(i, dk), dk);
          axpyAt(dvT.data, at(j, dv), b, dout.data, at(i, dv), dv);
        }
        if ((docLast[j] ?? 0) >= b1) {
          const c = pw[b1 - 1 - j] ?? 0;
          rowStateT(dkT.data, at(j, dk), c, v.data, at(j, dv), G, 0, dk, dv);
          rowState(dvT.data, at(j, dv), c, k.data, at(j, dk), G, 0, dk, dv);
        }
      }
      // the block's carry: 0 if a document ends inside it, else lam^B; then its queries up to its first boundary
      const stop = docLast[b0] ?? 0;
      scaleRange(G, 0, dk * dv, stop < b1 ? 0 : (pw[b1 - b0] ?? 0));
      for (let i = b0; i <= Math.min(b1 - 1, stop); i++)
        outerAdd(G, 0, pw[i - b0 + 1] ?? 0, q.data, at(i, dk), dk, dout.data, at(i, dv), dv);
    }
  }
  return { dq, dk: dkT, dv: dvT };
}

// ---------------------------------------------------------------------------------------------------------
// Bidirectional (lam = 1) across pieces. A query sees its whole document, which may run into earlier AND
// later pieces, so one state per piece no longer suffices: each piece gathers its head state (tokens up to
// its first boundary) and its tail state (tokens after its last boundary), equal when it has no boundary.
// Piece t's first document gets the prefix scan of the tails before it, its last document the suffix scan
// of the heads after it (a piece without a boundary: both). The backward is the same with x^T y = q^T do.

/** sum_{i <= first boundary} x_i^T y_i: the state of the piece's first document (lam = 1). */
export function pieceHeadStateDocs(x: Tensor, y: Tensor, local: Boundaries): Tensor {
  return pieceGradStateDocs(x, y, 1, local);
}

/** sum_{j > last boundary} x_j^T y_j: the state of the piece's last document (lam = 1). */
export function pieceTailStateDocs(x: Tensor, y: Tensor, local: Boundaries): Tensor {
  return pieceStateDocs(x, y, 1, local);
}

/**
 * Row i of x times (before if i is in the piece's first document) + (after if i is in its last one), or
 * the transposed state (`transpose`): o = bidirInterDocs(q, P, F, b, false) with P the prefix scan of the
 * tails and F the suffix scan of the heads; dq = (dout, P, F, true), dk = (v, Pd, Fd, true),
 * dv = (k, Pd, Fd, false) with the scans of the gradient heads and tails.
 */
export function bidirInterDocs(
  x: Tensor,
  before: Tensor,
  after: Tensor,
  local: Boundaries,
  transpose: boolean,
): Tensor {
  const [L, H, dx] = dims3(x, "bidirInterDocs x");
  const [HS, dk, dv] = dims3(before, "bidirInterDocs state");
  if (HS !== H || dx !== (transpose ? dv : dk) || after.shape.join() !== before.shape.join())
    throw new Error(`bidirInterDocs: states [${before.shape.join(", ")}] for rows [${x.shape.join(", ")}]`);
  checkBoundaries(local, L, "bidirInterDocs");
  const first = local[0] ?? L - 1;
  const last = local[local.length - 1] ?? -1;
  const dOut = transpose ? dk : dv;
  const out = zeros([L, H, dOut]);
  const apply = transpose ? rowStateT : rowState;
  for (let h = 0; h < H; h++)
    for (let i = 0; i < L; i++) {
      const [ix, io] = [(i * H + h) * dx, (i * H + h) * dOut];
      if (i <= first) apply(out.data, io, 1, x.data, ix, before.data, h * dk * dv, dk, dv);
      if (i > last) apply(out.data, io, 1, x.data, ix, after.data, h * dk * dv, dk, dv);
    }
  return out;
}
