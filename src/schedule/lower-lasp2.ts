// LASP-2 for linear attention (ALGORITHMS.md): per pass, one collective of d x d states, started as soon as
// the piece states exist and overlapped with the intra-piece work. Causal layers AllGather the piece
// states and build a decayed prefix (forward) or suffix (backward) per piece; bidirectional layers need only
// the total, so they AllReduce one state. Zigzag ranks hold two pieces and treat each separately.
// A piece with no other piece to take a state from (the first piece of a causal forward, the last of a
// causal backward, every piece when there is one piece in all) gets no prefix or suffix step and no inter
// step: they would add zero. With one piece in all (one GPU, contiguous) no state is computed or exchanged,
// so the pass is the intra-piece work alone, as a single-GPU program would be.
import type { LinearAttentionKind } from "../spec/resolved.js";
import { RankBuilder } from "./builder.js";
import { piecesOf, stateBytes, states, perRank, type LowerContext } from "./context.js";
import type { RankProgram } from "./ir.js";
import { prefixCost } from "./linear-costs.js";
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
  return perRank(ctx, layer, forward, backward);
}

function forward(ctx: LowerContext, layer: LinearAttentionKind, rank: number): RankProgram {
  const b = new RankBuilder(rank);
  const pieces = piecesOf(ctx, rank);
  const total = ctx.plan.pieces.length;
  const P = pieces.length;
  const { q, k, v, o, m, p } = forwardBuffers(b, ctx, P);

  if (total === 1) {
    intraStep(b, ctx, pieces[0]!, 0, { q, k, v, o }, layer.causal);
    return b.build();
  }
  const stateIds = stateSteps(b, ctx, layer, k, v, m) as number[];
  let comm: number;
  if (layer.causal) {
    const all = b.buffer(states(ctx, "m_all", total, "every piece's state, gathered (rank-major order)"));
    comm = b.collective(
      "allgather",
      `AllGather piece states (${P} per rank)`,
      ctx.group,
      "fwd.states",
      [{ send: m, recv: all }],
      stateIds,
    );
  } else {
    const sum = b.buffer(states(ctx, "m_sum", 1, "sum of this rank's piece states"));
    const acc = b.compute(
      "accumulate",
      "sum this rank's piece states",
      { reads: [m], writes: [sum] },
      { flops: 0, bytes: (P + 1) * stateBytes(ctx) },
      {},
      stateIds,
    );
    const totalState = b.buffer(states(ctx, "m_total", 1, "sum of all pieces' states"));
    comm = b.collective(
      "allreduce",
      "AllReduce the state sum",
      ctx.group,
      "fwd.states",
      [{ send: sum, recv: totalState }],
      [acc],
    );
  }
  const gathered = layer.causal ? "m_all" : "m_total";
  const intraSteps = pieces.map((piece, j) =>
    intraStep(b, ctx, piece, j, { q, k, v, o }, layer.causal, ctx.overlap ? [] : [comm]),
  );
  pieces.forEach((piece, j) => {
    const terms = layer.causal ? piece.index : total - 1;
    if (terms === 0) return;
    const prefix = b.compute(
      "linear.prefix",
      layer.causal
        ? `P[${piece.index}] = decayed sum of the ${terms} earlier piece states`
        : `P[${piece.index}] = sum of the other pieces' states`,
      { reads: layer.causal ? [gathered] : [gathered, m], writes: [p] },
      prefixCost(ctx, terms),
      { piece: j, mode: layer.causal ? "prefix" : "others" },
      [comm],
    );
    interStep(b, ctx, piece, j, { q, p, o }, layer.causal, [prefix, intraSteps[j]!]);
  });
  return b.build();
}

function backward(ctx: LowerContext, layer: LinearAttentionKind, rank: number): RankProgram {
  const b = new RankBuilder(rank);
  const pieces = piecesOf(ctx, rank);
  const total = ctx.plan.pieces.length;
  const P = pieces.length;
  // The forward pass wrote a prefix for every piece that has earlier pieces (all of them if bidirectional).
  const hasPrefix = (index: number) => total > 1 && (!layer.causal || index > 0);
  const savedPrefix = pieces.some((piece) => hasPrefix(piece.index));
  const { q, k, v, dout, p, dq, dk, dv, dm, g } = backwardBuffers(b, ctx, P, savedPrefix);

  if (total === 1) {
    intraBackwardStep(b, ctx, pieces[0]!, 0, { q, k, v, dout, dq, dk, dv }, layer.causal);
    return b.build();
  }
  const gradSteps = gradStateSteps(b, ctx, layer, q, dout, dm) as number[];
  let comm: number;
  if (layer.causal) {
    const all = b.buffer(states(ctx, "dm_all", total, "every piece's dM, gathered (rank-major order)"));
    comm = b.collective(
      "allgather",
      `AllGather piece gradient states (${P} per rank)`,
      ctx.group,
      "bwd.states",
      [{ send: dm, recv: all }],
      gradSteps,
    );
  } else {
    const sum = b.buffer(states(ctx, "dm_sum", 1, "sum of this rank's dM"));
    const acc = b.compute(
      "accumulate",
      "sum this rank's gradient states",
      { reads: [dm], writes: [sum] },
      { flops: 0, bytes: (P + 1) * stateBytes(ctx) },
      {},
      gradSteps,
    );
    const totalState = b.buffer(states(ctx, "dm_total", 1, "sum of all pieces' dM"));
    comm = b.collective(
      "allreduce",
      "AllReduce the gradient state sum",
      ctx.group,
      "bwd.states",
      [{ send: sum, recv: totalState }],
      [acc],
    );
  }
  const gathered = layer.causal ? "dm_all" : "dm_total";
  pieces.forEach((piece, j) => {
    const io = { q, k, v, dout, dq, dk, dv };
    const intra = intraBackwardStep(b, ctx, piece, j, io, layer.causal, ctx.overlap ? [] : [comm]);
    // P of the first causal piece is empty: the forward pass wrote none, and dO P^T would add zero.
    if (hasPrefix(piece.index)) dqInterStep(b, ctx, piece, j, { dout, p, dq }, [intra]);
    const terms = layer.causal ? total - 1 - piece.index : total - 1;
    if (terms === 0) return;
    const suffix = b.compute(
      "linear.suffix",
      layer.causal
        ? `G[${piece.index}] = decayed sum of the ${terms} later pieces' dM`
        : `G[${piece.index}] = sum of the other pieces' dM`,
      { reads: layer.causal ? [gathered] : [gathered, dm], writes: [g] },
      prefixCost(ctx, terms),
      { piece: j, mode: layer.causal ? "suffix" : "others" },
      [comm],
    );
    dkdvInterStep(b, ctx, piece, j, { k, v, g, dk, dv }, [suffix, intra]);
  });
  return b.build();
}
