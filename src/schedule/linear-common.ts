// What LASP-2 and LASP-1 share: the buffers of a linear-attention pass and the per-piece state steps that
// start each pass (M forward, dM backward). The strategies differ only in how the states travel.
import type { LinearAttentionKind } from "../spec/resolved.js";
import type { RankBuilder } from "./builder.js";
import { activation, piecesOf, states, type LowerContext } from "./context.js";
import { documentEnds } from "./document-operands.js";
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
 * `needed` accepts (the others' entries are undefined). With documents M covers the tokens after the piece's
 * last boundary, `flag` (when given) receives whether it has one and `head` the state of its first document.
 */
export function stateSteps(
  b: RankBuilder,
  ctx: LowerContext,
  layer: LinearAttentionKind,
  k: string,
  v: string,
  m: string,
  needed: (piece: Piece) => boolean = () => true,
  outs: { head?: string; flag?: string } = {},
): (number | undefined)[] {
  const docs = documentEnds(b, ctx);
  return piecesOf(ctx, b.rank).map((piece, j) =>
    needed(piece)
      ? b.compute(
          "linear.state",
          `M[${piece.index}] = K^T V over piece ${piece.index}${decayWords(layer)}${docs.ends ? " after its last boundary" : ""}${outs.head !== undefined ? " (and its head, up to its first)" : ""}`,
          { k, v, ...docs, m, ...outs },
          stateCost(ctx, piece.length),
          { piece: j },
        )
      : undefined,
  );
}

/**
 * One `linear.grad_state` step per piece that `needed` accepts: dM = sum_i lam^(i+1) q_i^T do_i (with
 * documents up to the piece's first boundary; `tail` receives its last document's part).
 */
export function gradStateSteps(
  b: RankBuilder,
  ctx: LowerContext,
  layer: LinearAttentionKind,
  q: string,
  dout: string,
  dm: string,
  needed: (piece: Piece) => boolean = () => true,
  outs: { tail?: string; flag?: string } = {},
): (number | undefined)[] {
  const docs = documentEnds(b, ctx);
  return piecesOf(ctx, b.rank).map((piece, j) =>
    needed(piece)
      ? b.compute(
          "linear.grad_state",
          `dM[${piece.index}] = ${layer.causal ? "lam^(i+1) " : ""}Q^T dO over piece ${piece.index}${docs.ends ? " up to its first boundary" : ""}${outs.tail !== undefined ? " (and its tail, after its last)" : ""}`,
          { q, dout, ...docs, dm, ...outs },
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
    { q: io.q, k: io.k, v: io.v, ...documentEnds(b, ctx), o: io.o },
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
    { q: io.q, k: io.k, v: io.v, dout: io.dout, ...documentEnds(b, ctx), dq: io.dq, dk: io.dk, dv: io.dv },
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
  io: { q: string; p: string; after?: string; o: string },
  causal: boolean,
  deps: number[],
): number {
  return b.compute(
    "linear.inter",
    `O[${piece.index}] += ${causal ? "lam^(i+1) " : ""}Q P`,
    { q: io.q, p: io.p, ...after(io.after), ...documentEnds(b, ctx), o: io.o },
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
  io: { dout: string; p: string; after?: string; dq: string },
  deps: number[],
): number {
  return b.compute(
    "linear.dq_inter",
    `dQ[${piece.index}] += dO P^T`,
    { dout: io.dout, p: io.p, ...after(io.after), ...documentEnds(b, ctx), dq: io.dq },
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
  io: { k: string; v: string; g: string; before?: string; dk: string; dv: string },
  deps: number[],
): number {
  return b.compute(
    "linear.dkdv_inter",
    `dK, dV[${piece.index}] += contributions of G`,
    {
      k: io.k,
      v: io.v,
      g: io.g,
      ...(io.before !== undefined ? { before: io.before } : {}),
      ...documentEnds(b, ctx),
      dk: io.dk,
      dv: io.dv,
    },
    interCost(ctx, piece.length, 2),
    { piece: j },
    deps,
  );
}

/** The optional `after` operand (bidirectional layers with documents), spread into a step's operands. */
function after(name: string | undefined): { after?: string } {
  return name !== undefined ? { after: name } : {};
}
