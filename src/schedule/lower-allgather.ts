// LASP-2H for softmax layers (ALGORITHMS.md): AllGather K and V (only the kv heads) over the sequence-parallel
// group; each rank attends its queries to every visible gathered block with the causal mask from global
// positions. The rank's own block needs no communication, so it runs while the gather is in flight.
// Backward: dQ stays local; dK and dV of every gathered position are ReduceScatter-ed (summed) to their owners.
import type { SoftmaxAttentionKind } from "../spec/resolved.js";
import { RankBuilder } from "./builder.js";
import { activation, localTokensOf, rowBytes, perRank, type LowerContext } from "./context.js";
import { documentEnds } from "./document-operands.js";
import type { RankProgram } from "./ir.js";
import {
  blockBackwardCost,
  blockCost,
  castDq,
  dqAccumulator,
  kvActivation,
  kvGradients,
  kvSum,
  lseBuffer,
  mergeCost,
  partials,
  visiblePairs,
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

/** Source ranks whose keys this rank's queries can see, its own first (it needs no communication). */
export function visibleSources(ctx: LowerContext, layer: SoftmaxAttentionKind, rank: number): number[] {
  const others = ctx.group.filter((s) => s !== rank && visiblePairs(ctx, layer, rank, s) > 0);
  return [rank, ...others];
}

function forward(ctx: LowerContext, layer: SoftmaxAttentionKind, rank: number): RankProgram {
  const b = new RankBuilder(rank);
  const W = ctx.group.length;
  const L = localTokensOf(ctx);
  const q = b.buffer(activation(ctx, "q", "queries (RoPE applied)", undefined, true));
  const k = b.buffer(kvActivation(ctx, layer, "k", "keys (RoPE applied)", true));
  const v = b.buffer(kvActivation(ctx, layer, "v", "values", true));
  const kAll = b.buffer({
    name: "k_all",
    shape: [W, ...kvActivation(ctx, layer, "x", "").shape],
    slots: W,
    dtype: ctx.sizes.dtype,
    doc: "every rank's keys, gathered; kept for the backward pass",
  });
  const vAll = b.buffer({
    name: "v_all",
    shape: [W, ...kvActivation(ctx, layer, "x", "").shape],
    slots: W,
    dtype: ctx.sizes.dtype,
    doc: "every rank's values, gathered; kept for the backward pass",
  });
  const o = b.buffer(activation(ctx, "o", "attention output"));
  const lse = b.buffer(
    lseBuffer(ctx, "lse", 1, "log-sum-exp per query and head, kept for the backward pass"),
  );
  const parts = b.buffer(partials(ctx, "o_part", W, "normalised partial output per source block"));
  const partLse = b.buffer(lseBuffer(ctx, "lse_part", W, "log-sum-exp of each partial"));

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
  const sources = visibleSources(ctx, layer, rank);
  const blocks = sources.map((s) => {
    const own = s === rank;
    return b.compute(
      "softmax.block",
      own ? "attend to this rank's own keys (no communication needed)" : `attend to rank ${s}'s keys`,
      { q, k: own ? k : kAll, v: own ? v : vAll, ...documentEnds(b, ctx), o: parts, lse: partLse },
      blockCost(ctx, workPairs(ctx, layer, rank, s), L, L, layer),
      { source: s, causal: layer.causal },
      own && ctx.overlap ? [] : [gather],
    );
  });
  b.compute(
    "softmax.merge",
    `merge ${sources.length} partial results (log-sum-exp)`,
    { parts, partLse, o, lse },
    mergeCost(ctx, sources.length),
    { sources },
    blocks,
  );
  return b.build();
}

function backward(ctx: LowerContext, layer: SoftmaxAttentionKind, rank: number): RankProgram {
  const b = new RankBuilder(rank);
  const W = ctx.group.length;
  const L = localTokensOf(ctx);
  const q = b.buffer(activation(ctx, "q", "queries", undefined, true));
  const kAll = b.buffer({
    name: "k_all",
    shape: [W, ...kvActivation(ctx, layer, "x", "").shape],
    slots: W,
    dtype: ctx.sizes.dtype,
    doc: "gathered keys saved by the forward pass",
    input: true,
  });
  const vAll = b.buffer({
    name: "v_all",
    shape: [W, ...kvActivation(ctx, layer, "x", "").shape],
    slots: W,
    dtype: ctx.sizes.dtype,
    doc: "gathered values saved by the forward pass",
    input: true,
  });
  const o = b.buffer(activation(ctx, "o", "attention output saved by the forward pass", undefined, true));
  const lse = b.buffer(lseBuffer(ctx, "lse", 1, "log-sum-exp saved by the forward pass", true));
  const dout = b.buffer(activation(ctx, "do", "gradient of the output", undefined, true));
  const dq = b.buffer(activation(ctx, "dq", "gradient of q"));
  const dqAcc = b.buffer(dqAccumulator(ctx));
  const dkAll = b.buffer(kvGradients(ctx, layer, "dk_all", W, "gradient of every gathered key position"));
  const dvAll = b.buffer(kvGradients(ctx, layer, "dv_all", W, "gradient of every gathered value position"));
  const dkSum = b.buffer(kvSum(ctx, layer, "dk_sum", "this rank's keys' gradient, summed over the ranks"));
  const dvSum = b.buffer(kvSum(ctx, layer, "dv_sum", "this rank's values' gradient, summed over the ranks"));
  const dkOwn = b.buffer(kvSum(ctx, layer, "dk_own", "this rank's keys' gradient from its own queries"));
  const dvOwn = b.buffer(kvSum(ctx, layer, "dv_own", "this rank's values' gradient from its own queries"));
  const dk = b.buffer(kvActivation(ctx, layer, "dk", "gradient of this rank's keys"));
  const dv = b.buffer(kvActivation(ctx, layer, "dv", "gradient of this rank's values"));

  const clear = b.compute(
    "fill_zero",
    "clear dQ and the dK, dV accumulators",
    { dst: [dqAcc, dkAll, dvAll, dkOwn, dvOwn] },
    { flops: 0, bytes: 2 * rowBytes(ctx, L) + 2 * (W + 1) * rowBytes(ctx, L, layer.kvHeads) * 2 },
    {},
  );
  const backwardOf = (s: number, own: boolean, after: number[] = []): number =>
    b.compute(
      "softmax.block_backward",
      own
        ? "dQ, and dK, dV of this rank's own positions (no communication needed)"
        : `dQ, and dK, dV of rank ${s}'s positions`,
      {
        q,
        k: kAll,
        v: vAll,
        o,
        lse,
        dout,
        ...documentEnds(b, ctx),
        dq: dqAcc,
        dk: own ? dkOwn : dkAll,
        dv: own ? dvOwn : dvAll,
      },
      blockBackwardCost(ctx, workPairs(ctx, layer, rank, s), L, L, layer),
      { source: s, causal: layer.causal },
      [clear, ...after],
    );
  // The other ranks' blocks first: their dK, dV travel in the ReduceScatter while this rank's own block,
  // whose gradients stay here, is computed.
  const remote = visibleSources(ctx, layer, rank)
    .filter((s) => s !== rank)
    .map((s) => backwardOf(s, false));
  const scatter = b.collective(
    "reducescatter",
    "ReduceScatter dK and dV to their owners",
    ctx.group,
    "bwd.dkv",
    [
      { send: dkAll, recv: dkSum },
      { send: dvAll, recv: dvSum },
    ],
    remote.length > 0 ? remote : [clear],
  );
  const own = backwardOf(rank, true, ctx.overlap ? [] : [scatter]);
  castDq(ctx, b, dqAcc, dq, [...remote, own]);
  b.compute(
    "add",
    "dK, dV of this rank: the other ranks' share plus its own",
    {
      sums: [
        { a: dkSum, b: dkOwn, out: dk },
        { a: dvSum, b: dvOwn, out: dv },
      ],
    },
    {
      flops: 2 * ctx.sizes.batch * L * layer.kvHeads * ctx.sizes.headDim,
      bytes: 5 * rowBytes(ctx, L, layer.kvHeads),
    },
    {},
    [scatter, own],
  );
  return b.build();
}
