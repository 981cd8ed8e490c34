// LASP-2 for linear attention (ALGORITHMS.md): per pass, one collective of d x d states, started as soon as
// the piece states exist and overlapped with the intra-piece work. Causal layers AllGather the piece
// states and build a decayed prefix (forward) or suffix (backward) per piece; bidirectional layers need only
// the total, so they AllReduce one state. Zigzag ranks hold two pieces and treat each separately.
// A piece with no other piece to take a state from (the first piece of a causal forward, the last of a
// causal backward, every piece when there is one piece in all) gets no prefix or suffix step and no inter
// step: they would add zero. With one piece in all (one GPU, contiguous) no state is computed or exchanged,
// so the pass is the intra-piece work alone, as a single-GPU program would be.
//
// Two arrangements (LowerOptions.lasp2). `fused` (the default): the collective overlaps a projection of the
// layer (a `host` step: Q = X Wq forward, dWo backward, which the program runs where the step stands), and
// one walk per piece adds the prefix (and suffix) terms inside the intra-piece product, so q, k, v, o and
// their gradients are read once. `split`: the collective overlaps the intra-piece product, and separate
// inter steps add the prefix terms afterwards, re-reading q, o (dO, dQ, K, V, dK, dV).
//
// In `fused`, a piece that takes nothing from the collective (the first causal piece forward, the last one
// backward) still waits for it before its walk. Without the wait that rank's walk would follow the
// projection at once and hold every SM, so its share of the collective would run only after the walk,
// while every other rank's walk waits for that share (measured on 4 x H100: the forward AllGather ended
// 0.18 ms after the projection beside it on the first rank, the backward one 0.28 ms after dWo).
import type { LinearAttentionKind } from "../spec/resolved.js";
import { RankBuilder } from "./builder.js";
import { piecesOf, stateBytes, states, perRank, type LowerContext } from "./context.js";
import type { Piece, RankProgram } from "./ir.js";
import { backwardFusedCost, forwardFusedCost, prefixCost, projectionCost } from "./linear-costs.js";
import {
  backwardBuffers,
  dkdvInterStep,
  dqInterStep,
  forwardBuffers,
  gradStateSteps,
  interStep,
  intraBackwardStep,
  intraStep,
  stateSteps,
} from "./linear-common.js";

export function lowerLasp2(ctx: LowerContext, layer: LinearAttentionKind) {
  return ctx.lasp2 === "split"
    ? perRank(ctx, layer, forward, backward)
    : perRank(ctx, layer, forwardFused, backwardFused);
}

/**
 * The state collective of a pass: AllGather of the piece states (causal) or AllReduce of their sum
 * (bidirectional). Returns its step and the buffer the prefix (suffix) steps read.
 */
function exchange(
  b: RankBuilder,
  ctx: LowerContext,
  layer: LinearAttentionKind,
  pass: "fwd" | "bwd",
  own: string,
  after: number[],
): { comm: number; gathered: string } {
  const P = piecesOf(ctx, b.rank).length;
  const total = ctx.plan.pieces.length;
  const [what, noun] = pass === "fwd" ? ["piece states", "states"] : ["piece gradient states", "dM"];
  if (layer.causal) {
    const gathered = `${own}_all`;
    const all = b.buffer(states(ctx, gathered, total, `every piece's ${noun}, gathered (rank-major order)`));
    const comm = b.collective(
      "allgather",
      `AllGather ${what} (${P} per rank)`,
      ctx.group,
      `${pass}.states`,
      [{ send: own, recv: all }],
      after,
    );
    return { comm, gathered };
  }
  const sum = b.buffer(states(ctx, `${own}_sum`, 1, `sum of this rank's ${noun}`));
  const acc = b.compute(
    "accumulate",
    `sum this rank's ${what}`,
    { src: own, dst: sum },
    { flops: 0, bytes: (P + 1) * stateBytes(ctx) },
    {},
    after,
  );
  const gathered = `${own}_total`;
  const totalState = b.buffer(states(ctx, gathered, 1, `sum of all pieces' ${noun}`));
  const comm = b.collective(
    "allreduce",
    pass === "fwd" ? "AllReduce the state sum" : "AllReduce the gradient state sum",
    ctx.group,
    `${pass}.states`,
    [{ send: sum, recv: totalState }],
    [acc],
  );
  return { comm, gathered };
}

/** P (prefix) or G (suffix) of one piece from the exchanged states; `terms` > 0 other pieces contribute. */
function combine(
  b: RankBuilder,
  ctx: LowerContext,
  layer: LinearAttentionKind,
  piece: Piece,
  j: number,
  io: { gathered: string; own: string; out: string },
  mode: "prefix" | "suffix",
  terms: number,
  comm: number,
): number {
  const [name, which, what] =
    mode === "prefix" ? ["P", "earlier", "piece states"] : ["G", "later", "pieces' dM"];
  const label = layer.causal
    ? `${name}[${piece.index}] = decayed sum of the ${terms} ${which} ${what}`
    : `${name}[${piece.index}] = sum of the other ${mode === "prefix" ? "pieces' states" : "pieces' dM"}`;
  const from = layer.causal ? { gathered: io.gathered } : { total: io.gathered, own: io.own };
  const others = layer.causal ? undefined : ("others" as const);
  return mode === "prefix"
    ? b.compute(
        "linear.prefix",
        label,
        { ...from, p: io.out },
        prefixCost(ctx, terms),
        { piece: j, mode: others ?? mode },
        [comm],
      )
    : b.compute(
        "linear.suffix",
        label,
        { ...from, g: io.out },
        prefixCost(ctx, terms),
        { piece: j, mode: others ?? mode },
        [comm],
      );
}

/** A step the program fills with the layer's own work (a projection), placed for a collective to overlap. */
function hostStep(
  b: RankBuilder,
  ctx: LowerContext,
  work: "q_projection" | "o_weight_grad",
  q: string,
  deps: number[],
) {
  return work === "q_projection"
    ? b.compute("host", "Q = X Wq (the layer's projection)", { q }, projectionCost(ctx), { work }, deps)
    : b.compute(
        "host",
        "dWo = attn^T dY (the layer's weight gradient)",
        {},
        projectionCost(ctx),
        { work },
        deps,
      );
}

/** What both backward arrangements start from: the rank's pieces and buffers, and which pieces have a P. */
function backwardStart(ctx: LowerContext, layer: LinearAttentionKind, rank: number) {
  const b = new RankBuilder(rank);
  const pieces = piecesOf(ctx, rank);
  const total = ctx.plan.pieces.length;
  // The forward pass wrote a prefix for every piece that has earlier pieces (all of them if bidirectional).
  const hasPrefix = (index: number) => total > 1 && (!layer.causal || index > 0);
  const savedPrefix = pieces.some((piece) => hasPrefix(piece.index));
  return { b, pieces, total, hasPrefix, ...backwardBuffers(b, ctx, pieces.length, savedPrefix) };
}

function forwardFused(ctx: LowerContext, layer: LinearAttentionKind, rank: number): RankProgram {
  const b = new RankBuilder(rank);
  const pieces = piecesOf(ctx, rank);
  const total = ctx.plan.pieces.length;
  const { q, k, v, o, m, p } = forwardBuffers(b, ctx, pieces.length);
  if (total === 1) {
    const host = hostStep(b, ctx, "q_projection", q, []);
    intraStep(b, ctx, pieces[0]!, 0, { q, k, v, o }, layer.causal, [host]);
    return b.build();
  }
  const stateIds = stateSteps(b, ctx, layer, k, v, m) as number[];
  const { comm, gathered } = exchange(b, ctx, layer, "fwd", m, stateIds);
  const host = hostStep(b, ctx, "q_projection", q, ctx.overlap ? [] : [comm]);
  pieces.forEach((piece, j) => {
    const terms = layer.causal ? piece.index : total - 1;
    if (terms === 0) {
      intraStep(b, ctx, piece, j, { q, k, v, o }, layer.causal, [host, comm]);
      return;
    }
    const prefix = combine(b, ctx, layer, piece, j, { gathered, own: m, out: p }, "prefix", terms, comm);
    b.compute(
      "linear.forward_fused",
      `O[${piece.index}] = intra-piece product + ${layer.causal ? "lam^(i+1) " : ""}Q P (one walk)`,
      { q, k, v, p, o },
      forwardFusedCost(ctx, piece.length, true),
      { piece: j, causal: layer.causal },
      [host, prefix],
    );
  });
  return b.build();
}

function backwardFused(ctx: LowerContext, layer: LinearAttentionKind, rank: number): RankProgram {
  const { b, pieces, total, hasPrefix, q, k, v, dout, p, dq, dk, dv, dm, g } = backwardStart(
    ctx,
    layer,
    rank,
  );
  const io = { q, k, v, dout, dq, dk, dv };
  if (total === 1) {
    const host = hostStep(b, ctx, "o_weight_grad", q, []);
    intraBackwardStep(b, ctx, pieces[0]!, 0, io, layer.causal, [host]);
    return b.build();
  }
  const gradSteps = gradStateSteps(b, ctx, layer, q, dout, dm) as number[];
  const { comm, gathered } = exchange(b, ctx, layer, "bwd", dm, gradSteps);
  const host = hostStep(b, ctx, "o_weight_grad", q, ctx.overlap ? [] : [comm]);
  pieces.forEach((piece, j) => {
    const prefix = hasPrefix(piece.index);
    const terms = layer.causal ? total - 1 - piece.index : total - 1;
    const suffix =
      terms > 0
        ? combine(b, ctx, layer, piece, j, { gathered, own: dm, out: g }, "suffix", terms, comm)
        : undefined;
    if (!prefix && suffix === undefined) {
      intraBackwardStep(b, ctx, piece, j, io, layer.causal, [host, comm]);
      return;
    }
    const terms_ = [prefix ? "dO P^T" : "", suffix !== undefined ? "G" : ""]
      .filter((t) => t !== "")
      .join(", ");
    b.compute(
      "linear.backward_fused",
      `dQ, dK, dV[${piece.index}] inside the piece + the ${terms_} terms (one walk)`,
      { q, k, v, dout, ...(prefix ? { p } : {}), ...(suffix !== undefined ? { g } : {}), dq, dk, dv },
      backwardFusedCost(ctx, piece.length, prefix, suffix !== undefined),
      { piece: j, causal: layer.causal },
      suffix !== undefined ? [host, suffix] : [host, comm],
    );
  });
  return b.build();
}

function forward(ctx: LowerContext, layer: LinearAttentionKind, rank: number): RankProgram {
  const b = new RankBuilder(rank);
  const pieces = piecesOf(ctx, rank);
  const total = ctx.plan.pieces.length;
  const { q, k, v, o, m, p } = forwardBuffers(b, ctx, pieces.length);
  if (total === 1) {
    intraStep(b, ctx, pieces[0]!, 0, { q, k, v, o }, layer.causal);
    return b.build();
  }
  const stateIds = stateSteps(b, ctx, layer, k, v, m) as number[];
  const { comm, gathered } = exchange(b, ctx, layer, "fwd", m, stateIds);
  const intraSteps = pieces.map((piece, j) =>
    intraStep(b, ctx, piece, j, { q, k, v, o }, layer.causal, ctx.overlap ? [] : [comm]),
  );
  pieces.forEach((piece, j) => {
    const terms = layer.causal ? piece.index : total - 1;
    if (terms === 0) return;
    const prefix = combine(b, ctx, layer, piece, j, { gathered, own: m, out: p }, "prefix", terms, comm);
    interStep(b, ctx, piece, j, { q, p, o }, layer.causal, [prefix, intraSteps[j]!]);
  });
  return b.build();
}

function backward(ctx: LowerContext, layer: LinearAttentionKind, rank: number): RankProgram {
  const { b, pieces, total, hasPrefix, q, k, v, dout, p, dq, dk, dv, dm, g } = backwardStart(
    ctx,
    layer,
    rank,
  );
  const io = { q, k, v, dout, dq, dk, dv };
  if (total === 1) {
    intraBackwardStep(b, ctx, pieces[0]!, 0, io, layer.causal);
    return b.build();
  }
  const gradSteps = gradStateSteps(b, ctx, layer, q, dout, dm) as number[];
  const { comm, gathered } = exchange(b, ctx, layer, "bwd", dm, gradSteps);
  pieces.forEach((piece, j) => {
    const intra = intraBackwardStep(b, ctx, piece, j, io, layer.causal, ctx.overlap ? [] : [comm]);
    // P of the first causal piece is empty: the forward pass wrote none, and dO P^T would add zero.
    if (hasPrefix(piece.index)) dqInterStep(b, ctx, piece, j, { dout, p, dq }, [intra]);
    const terms = layer.causal ? total - 1 - piece.index : total - 1;
    if (terms === 0) return;
    const suffix = combine(b, ctx, layer, piece, j, { gathered, own: dm, out: g }, "suffix", terms, comm);
    dkdvInterStep(b, ctx, piece, j, { k, v, g, dk, dv }, [suffix, intra]);
  });
  return b.build();
}
