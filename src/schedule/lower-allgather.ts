// LASP-2H for softmax layers (ALGORITHMS.md): AllGather K and V (only the kv heads) over the sequence-parallel
// group while the Q projection runs, put them in global token order, and attend each rank's queries to them in
// one call with the causal mask from global positions (issue 18: one call lets the program run it on cuDNN's
// fused attention, bottom-right causal per query piece, where per-block calls needed lasp's kernels and a merge).
// Backward: dQ stays local; dK and dV of every gathered position, in fp32, go back to rank order and are
// ReduceScatter-ed (summed) to their owners while dWo is computed.
import type { SoftmaxAttentionKind } from "../spec/resolved.js";
import { RankBuilder } from "./builder.js";
import { activation, localTokensOf, piecesOf, rowBytes, perRank, type LowerContext } from "./context.js";
import { documentEnds } from "./document-operands.js";
import type { BufferDecl, RankProgram } from "./ir.js";
import { hostStep } from "./host-steps.js";
import {
  blockBackwardCost,
  blockCost,
  kvActivation,
  kvGradients,
  kvSum,
  lseBuffer,
  workPairs,
} from "./softmax-common.js";

export function lowerAllGather(ctx: LowerContext, layer: SoftmaxAttentionKind) {
  return ctx.group.length === 1
    ? perRank(ctx, layer, forwardAlone, backwardAlone)
    : perRank(ctx, layer, forward, backward);
}

/**
 * One rank holds the whole sequence (in global order, whatever the layout: its pieces are all of them):
 * plain flash attention with nothing to gather, no partial results to merge and no dK, dV to scatter, as
 * a single-GPU program would run it.
 */
function forwardAlone(ctx: LowerContext, layer: SoftmaxAttentionKind, rank: number): RankProgram {
  const b = new RankBuilder(rank);
  const L = localTokensOf(ctx);
  const q = b.buffer(activation(ctx, "q", "queries (RoPE applied)", undefined, true));
  const k = b.buffer(kvActivation(ctx, layer, "k", "keys (RoPE applied)", true));
  const v = b.buffer(kvActivation(ctx, layer, "v", "values", true));
  const o = b.buffer(activation(ctx, "o", "attention output"));
  const lse = b.buffer(
    lseBuffer(ctx, "lse", 1, "log-sum-exp per query and head, kept for the backward pass"),
  );
  b.compute(
    "softmax.full",
    "whole-sequence attention (this rank holds every position)",
    { q, k, v, ...documentEnds(b, ctx), o, lse },
    blockCost(ctx, workPairs(ctx, layer, rank, rank), L, L, layer),
    wholeSequence(ctx, layer),
  );
  return b.build();
}

function backwardAlone(ctx: LowerContext, layer: SoftmaxAttentionKind, rank: number): RankProgram {
  const b = new RankBuilder(rank);
  const L = localTokensOf(ctx);
  const q = b.buffer(activation(ctx, "q", "queries", undefined, true));
  const k = b.buffer(kvActivation(ctx, layer, "k", "keys saved by the forward pass", true));
  const v = b.buffer(kvActivation(ctx, layer, "v", "values saved by the forward pass", true));
  const o = b.buffer(activation(ctx, "o", "attention output saved by the forward pass", undefined, true));
  const lse = b.buffer(lseBuffer(ctx, "lse", 1, "log-sum-exp saved by the forward pass", true));
  const dout = b.buffer(activation(ctx, "do", "gradient of the output", undefined, true));
  const dq = b.buffer(activation(ctx, "dq", "gradient of q"));
  const dk = b.buffer(kvActivation(ctx, layer, "dk", "gradient of k"));
  const dv = b.buffer(kvActivation(ctx, layer, "dv", "gradient of v"));
  b.compute(
    "softmax.full_backward",
    "whole-sequence backward (this rank holds every position)",
    { q, k, v, o, lse, dout, ...documentEnds(b, ctx), dq, dk, dv },
    blockBackwardCost(ctx, workPairs(ctx, layer, rank, rank), L, L, layer),
    wholeSequence(ctx, layer),
  );
  return b.build();
}

/** The parameters of a whole-sequence step over every head (the ones Ulysses gives its head shard). */
function wholeSequence(ctx: LowerContext, layer: SoftmaxAttentionKind) {
  return {
    headStart: 0,
    heads: ctx.sizes.heads,
    kvHeadStart: 0,
    kvHeads: layer.kvHeads,
    causal: layer.causal,
  };
}

/**
 * The keys, in global order, that any of the rank's queries can see: up to the end of its last piece when
 * causal (the gathered op and its backward never read past it), else all of them.
 */
export function keyRowsOf(ctx: LowerContext, layer: SoftmaxAttentionKind, rank: number): number {
  if (!layer.causal) return ctx.sizes.seqLen;
  return Math.max(...piecesOf(ctx, rank).map((p) => p.start + p.length));
}

/** The (query, key) pairs the rank's gathered attention computes (documents subtracted). */
function gatheredPairs(ctx: LowerContext, layer: SoftmaxAttentionKind, rank: number): number {
  return ctx.group.reduce((sum, s) => sum + workPairs(ctx, layer, rank, s), 0);
}

/** K or V of every position in global order [B, S, Hkv, d]: what the gathered attention reads. */
function sequenceKv(
  ctx: LowerContext,
  layer: SoftmaxAttentionKind,
  name: string,
  doc: string,
  input = false,
) {
  const decl = kvActivation(ctx, layer, name, doc, input);
  return { ...decl, shape: [ctx.sizes.batch, ctx.sizes.seqLen, ...decl.shape.slice(2)] };
}

/** The gathered slots [W, B, L, Hkv, d]: every rank's K or V as the AllGather leaves them. */
function gatheredKv(ctx: LowerContext, layer: SoftmaxAttentionKind, name: string, doc: string) {
  const W = ctx.group.length;
  return {
    name,
    shape: [W, ...kvActivation(ctx, layer, "x", "").shape],
    slots: W,
    dtype: ctx.sizes.dtype,
    doc,
  };
}

/**
 * AllGather K and V while the Q projection runs, put them in global order, and attend the rank's queries
 * to them in one call (cuDNN's fused attention or lasp's kernels, chosen by the program): no partial
 * outputs, no merge.
 */
function forward(ctx: LowerContext, layer: SoftmaxAttentionKind, rank: number): RankProgram {
  const b = new RankBuilder(rank);
  const L = localTokensOf(ctx);
  const keyRows = keyRowsOf(ctx, layer, rank);
  const q = b.buffer(activation(ctx, "q", "queries (RoPE applied)", undefined, true));
  const k = b.buffer(kvActivation(ctx, layer, "k", "keys (RoPE applied)", true));
  const v = b.buffer(kvActivation(ctx, layer, "v", "values", true));
  const kAll = b.buffer(gatheredKv(ctx, layer, "k_all", "every rank's keys, as gathered (rank order)"));
  const vAll = b.buffer(gatheredKv(ctx, layer, "v_all", "every rank's values, as gathered (rank order)"));
  const kSeq = b.buffer(
    sequenceKv(ctx, layer, "k_seq", "the gathered keys in global order; kept for the backward pass"),
  );
  const vSeq = b.buffer(
    sequenceKv(ctx, layer, "v_seq", "the gathered values in global order; kept for the backward pass"),
  );
  const o = b.buffer(activation(ctx, "o", "attention output"));
  const lse = b.buffer(
    lseBuffer(ctx, "lse", 1, "log-sum-exp per query and head, kept for the backward pass"),
  );

  const gather = b.collective(
    "allgather",
    `AllGather K and V (${layer.kvHeads} kv heads)`,
    ctx.group,
    "fwd.kv",
    [
      { send: k, recv: kAll },
      { send: v, recv: vAll },
    ],
    [],
  );
  const host = hostStep(b, ctx, "q_projection", q, ctx.overlap ? [] : [gather]);
  const order = b.compute(
    "order",
    `K, V in global order (positions 0..${keyRows - 1})`,
    { src: [kAll, vAll], dst: [kSeq, vSeq] },
    { flops: 0, bytes: 2 * 2 * rowBytes(ctx, keyRows, layer.kvHeads) },
    { to: "global", rows: keyRows },
    [gather],
  );
  b.compute(
    "softmax.gathered",
    `attend to the gathered keys 0..${keyRows - 1} (one call)`,
    { q, k: kSeq, v: vSeq, ...documentEnds(b, ctx), o, lse },
    blockCost(ctx, gatheredPairs(ctx, layer, rank), L, keyRows, layer),
    { causal: layer.causal, keyRows },
    [host, order],
  );
  return b.build();
}

/**
 * dQ and the fp32 dK, dV of every gathered position in one call, back to the ranks' order, and
 * ReduceScatter-ed to their owners while dWo and dQ's own GEMMs are computed.
 */
function backward(ctx: LowerContext, layer: SoftmaxAttentionKind, rank: number): RankProgram {
  const b = new RankBuilder(rank);
  const W = ctx.group.length;
  const L = localTokensOf(ctx);
  const keyRows = keyRowsOf(ctx, layer, rank);
  const q = b.buffer(activation(ctx, "q", "queries", undefined, true));
  const kSeq = b.buffer(
    sequenceKv(ctx, layer, "k_seq", "gathered keys in global order, saved by the forward pass", true),
  );
  const vSeq = b.buffer(
    sequenceKv(ctx, layer, "v_seq", "gathered values in global order, saved by the forward pass", true),
  );
  const o = b.buffer(activation(ctx, "o", "attention output saved by the forward pass", undefined, true));
  const lse = b.buffer(lseBuffer(ctx, "lse", 1, "log-sum-exp saved by the forward pass", true));
  const dout = b.buffer(activation(ctx, "do", "gradient of the output", undefined, true));
  const dq = b.buffer(activation(ctx, "dq", "gradient of q"));
  const fp32 = (decl: BufferDecl): BufferDecl => ({ ...decl, dtype: "fp32" });
  const dkSeq = b.buffer(
    fp32(sequenceKv(ctx, layer, "dk_seq", "gradient of every key position, global order")),
  );
  const dvSeq = b.buffer(
    fp32(sequenceKv(ctx, layer, "dv_seq", "gradient of every value position, global order")),
  );
  const dkAll = b.buffer(kvGradients(ctx, layer, "dk_all", W, "gradient of every key position, rank order"));
  const dvAll = b.buffer(
    kvGradients(ctx, layer, "dv_all", W, "gradient of every value position, rank order"),
  );
  const dkSum = b.buffer(kvSum(ctx, layer, "dk_sum", "this rank's keys' gradient, summed over the ranks"));
  const dvSum = b.buffer(kvSum(ctx, layer, "dv_sum", "this rank's values' gradient, summed over the ranks"));
  const dk = b.buffer(kvActivation(ctx, layer, "dk", "gradient of this rank's keys"));
  const dv = b.buffer(kvActivation(ctx, layer, "dv", "gradient of this rank's values"));

  const grads = b.compute(
    "softmax.gathered_backward",
    `dQ, and dK, dV of the gathered positions 0..${keyRows - 1} (one call)`,
    { q, k: kSeq, v: vSeq, o, lse, dout, ...documentEnds(b, ctx), dq, dk: dkSeq, dv: dvSeq },
    blockBackwardCost(ctx, gatheredPairs(ctx, layer, rank), L, keyRows, layer),
    { causal: layer.causal, keyRows },
    [],
  );
  const fp32Rows = (tokens: number) => 2 * rowBytes(ctx, tokens, layer.kvHeads);
  const order = b.compute(
    "order",
    "dK, dV back in rank order for the ReduceScatter",
    { src: [dkSeq, dvSeq], dst: [dkAll, dvAll] },
    { flops: 0, bytes: 2 * (fp32Rows(keyRows) + fp32Rows(ctx.sizes.seqLen)) },
    { to: "ranks", rows: keyRows },
    [grads],
  );
  const scatter = b.collective(
    "reducescatter",
    "ReduceScatter dK and dV to their owners",
    ctx.group,
    "bwd.dkv",
    // On the copy engines the W slices land in the global-order gradients, free once put in rank order.
    [
      { send: dkAll, recv: dkSum, slices: dkSeq },
      { send: dvAll, recv: dvSum, slices: dvSeq },
    ],
    [order],
  );
  // dWo, then dQ's GEMMs (dQ is final once the gathered backward ends), beside the ReduceScatter.
  hostStep(b, ctx, "o_weight_grad", q, ctx.overlap ? [] : [scatter]);
  hostStep(b, ctx, "q_grads", dq, ctx.overlap ? [grads] : [grads, scatter]);
  b.compute(
    "copy",
    "dK, dV of this rank to the activation type",
    { src: [dkSum, dvSum], dst: [dk, dv] },
    { flops: 0, bytes: 2 * 3 * rowBytes(ctx, L, layer.kvHeads) },
    {},
    [scatter],
  );
  return b.build();
}
