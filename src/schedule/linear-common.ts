// What LASP-2 and LASP-1 share: the buffers of a linear-attention pass and the per-piece state steps that
// start each pass (M forward, dM backward). The strategies differ only in how the states travel.
import type { LinearAttentionKind } from "../spec/resolved.js";
import type { RankBuilder } from "./builder.js";
import { activation, piecesOf, states, type LowerContext } from "./context.js";
import type { Piece } from "./ir.js";
import { interCost, intraBackwardCost, intraCost, stateCost } from "./linear-costs.js";

export function decayWords(layer: LinearAttentionKind): string {
  return layer.decay.schedule === "none" ? "" : " (decayed)";
}

/** q, k, v in; o out; the piece states M and the prefixes P (kept for the backward pass). */
export function forwardBuffers(b: RankBuilder, ctx: LowerContext, P: number) {
  return {
    q: b.buffer(activation(ctx, "q", "queries (after the feature map)", undefined, true)),
    k: b.buffer(activation(ctx, "k", "keys (after the feature map)", undefined, true)),
    v: b.buffer(activation(ctx, "v", "values", undefined, true)),
    o: b.buffer(activation(ctx, "o", "attention output")),
    m: b.buffer(states(ctx, "m", P, "this rank's piece states M")),
    p: b.buffer(states(ctx, "p", P, "prefix state P of each piece, kept for the backward pass")),
  };
}

/**
 * q, k, v, dO and the saved prefixes in; dQ, dK, dV out; the gradient states dM and suffixes G. `savedPrefix`
 * false: the forward pass of this rank wrote no prefix (none of its pieces had one), so none is read back.
 */
export function backwardBuffers(b: RankBuilder, ctx: LowerContext, P: number, savedPrefix = true) {
  return {
    q: b.buffer(activation(ctx, "q", "queries", undefined, true)),
    k: b.buffer(activation(ctx, "k", "keys", undefined, true)),
    v: b.buffer(activation(ctx, "v", "values", undefined, true)),
    dout: b.buffer(activation(ctx, "do", "gradient of the output", undefined, true)),
    p: savedPrefix ? b.buffer(states(ctx, "p", P, "prefix states saved by the forward pass", true)) : "",
    dq: b.buffer(activation(ctx, "dq", "gradient of q")),
    dk: b.buffer(activation(ctx, "dk", "gradient of k")),
    dv: b.buffer(activation(ctx, "dv", "gradient of v")),
    dm: b.buffer(states(ctx, "dm", P, "this rank's piece gradient states dM")),
    g: b.buffer(states(ctx, "g", P, "suffix gradient state G of each piece")),
  };
}

/**
 * One `linear.state` step per piece of the rank: M = sum_j lam^(C-1-j) k_j^T v_j; only for the pieces
 * `needed` accepts (the others' entries are undefined).
 */
export function stateSteps(
  b: RankBuilder,
  ctx: LowerContext,
  layer: LinearAttentionKind,
  k: string,
  v: string,
  m: string,
  needed: (piece: Piece) => boolean = () => true,
): (number | undefined)[] {
  return piecesOf(ctx, b.rank).map((piece, j) =>
    needed(piece)
      ? b.compute(
          "linear.state",
          `M[${piece.index}] = K^T V over piece ${piece.index}${decayWords(layer)}`,
          { k, v, m },
          stateCost(ctx, piece.length),
          { piece: j },
        )
      : undefined,
  );
}

/** One `linear.grad_state` step per piece that `needed` accepts: dM = sum_i lam^(i+1) q_i^T do_i. */
export function gradStateSteps(
  b: RankBuilder,
  ctx: LowerContext,
  layer: LinearAttentionKind,
  q: string,
  dout: string,
  dm: string,
  needed: (piece: Piece) => boolean = () => true,
): (number | undefined)[] {
  return piecesOf(ctx, b.rank).map((piece, j) =>
    needed(piece)
      ? b.compute(
          "linear.grad_state",
          `dM[${piece.index}] = ${layer.causal ? "lam^(i+1) " : ""}Q^T dO over piece ${piece.index}`,
          { q, dout, dm },
          stateCost(ctx, piece.length),
          { piece: j },
        )
      : undefined,
  );
}

/** The steps every linear strategy issues per piece; the strategies differ in what they wait for. */
export function intraStep(
  b: RankBuilder,
  ctx: LowerContext,
  piece: Piece,
  j: number,
  io: { q: string; k: string; v: string; o: string },
  causal: boolean,
  deps: number[] = [],
): number {
  return b.compute(
    "linear.intra",
    `O[${piece.index}] = intra-piece product (chunk algorithm)`,
    { q: io.q, k: io.k, v: io.v, o: io.o },
    intraCost(ctx, piece.length),
    { piece: j, causal },
    deps,
  );
}

export function intraBackwardStep(
  b: RankBuilder,
  ctx: LowerContext,
  piece: Piece,
  j: number,
  io: { q: string; k: string; v: string; dout: string; dq: string; dk: string; dv: string },
  causal: boolean,
  deps: number[] = [],
): number {
  return b.compute(
    "linear.intra_backward",
    `dQ, dK, dV[${piece.index}] inside the piece`,
    { ...io },
    intraBackwardCost(ctx, piece.length),
    { piece: j, causal },
    deps,
  );
}

/** O += lam^(i+1) Q P (causal) or Q P (bidirectional), after the piece's intra step and its prefix. */
export function interStep(
  b: RankBuilder,
  ctx: LowerContext,
  piece: Piece,
  j: number,
  io: { q: string; p: string; o: string },
  causal: boolean,
  deps: number[],
): number {
  return b.compute(
    "linear.inter",
    `O[${piece.index}] += ${causal ? "lam^(i+1) " : ""}Q P`,
    { ...io },
    interCost(ctx, piece.length),
    { piece: j },
    deps,
  );
}

export function dqInterStep(
  b: RankBuilder,
  ctx: LowerContext,
  piece: Piece,
  j: number,
  io: { dout: string; p: string; dq: string },
  deps: number[],
): number {
  return b.compute(
    "linear.dq_inter",
    `dQ[${piece.index}] += dO P^T`,
    { ...io },
    interCost(ctx, piece.length),
    { piece: j },
    deps,
  );
}

export function dkdvInterStep(
  b: RankBuilder,
  ctx: LowerContext,
  piece: Piece,
  j: number,
  io: { k: string; v: string; g: string; dk: string; dv: string },
  deps: number[],
): number {
  return b.compute(
    "linear.dkdv_inter",
    `dK, dV[${piece.index}] += contributions of G`,
    { ...io },
    interCost(ctx, piece.length, 2),
    { piece: j },
    deps,
  );
}
