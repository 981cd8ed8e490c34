// Ulysses (ALGORITHMS.md), for linear and softmax layers: an all-to-all turns sequence-sharded Q, K, V into
// head-sharded full sequences, each rank runs the whole-sequence attention on its H/W heads (and Hkv/W kv
// heads), and a second all-to-all turns the output back. The backward pass mirrors it. Needs H divisible by W,
// and Hkv divisible by W or (softmax, grouped-query attention) dividing W (the checker enforces it).
//
// Fewer kv heads than ranks (W = R Hkv, issue 18): rank r's query heads [r H/W, (r+1) H/W) all read one kv
// head, g(r) = floor(r / R) (query head h reads kv head h / (H / Hkv)), so each kv head is replicated on R
// ranks. Forward, the all-to-all sends destination d its query-head shard and kv head g(d) of k and v (each
// rank sends its k, v rows R times). Backward, rank r's dK, dV of kv head g(r) hold only its query heads'
// share: the all-to-all back hands the token owner R partials of each kv head, which `unpack` places in R
// slots (source s in slot s mod R) and `accumulate` sums in slot order, which is rank order.
import type { LinearAttentionKind, SoftmaxAttentionKind } from "../spec/resolved.js";
import { RankBuilder } from "./builder.js";
import { activation, localTokensOf, rowBytes, perRank, type LowerContext } from "./context.js";
import { documentEnds } from "./document-operands.js";
import type { BufferDecl, RankProgram } from "./ir.js";
import type { HeadShard } from "./ops.js";
import { fullCost } from "./linear-costs.js";
import { blockBackwardCost, blockCost, workPairs } from "./softmax-common.js";

type Layer = LinearAttentionKind | SoftmaxAttentionKind;

export function lowerUlysses(ctx: LowerContext, layer: Layer) {
  return perRank(ctx, layer, forward, backward);
}

interface Shard {
  heads: number;
  /** Kv heads of a rank's shard: Hkv/W, or 1 when replicated. */
  kvHeads: number;
  /** Ranks that share each kv head: 1 (split), or W / Hkv when Hkv < W. */
  replicas: number;
  /** Heads of q, k and v one rank sends to each other rank: H/W + 2 Hkv/W (2 when replicated). */
  perDestination: number;
}

function shard(ctx: LowerContext, layer: Layer): Shard {
  const W = ctx.group.length;
  const kv = layer.type === "softmax_attention" ? layer.kvHeads : ctx.sizes.heads;
  const replicas = kv < W ? W / kv : 1;
  const kvHeads = replicas > 1 ? 1 : kv / W;
  return { heads: ctx.sizes.heads / W, kvHeads, replicas, perDestination: ctx.sizes.heads / W + 2 * kvHeads };
}

/** `replicas` of a pack or unpack of q (or dq) with k, v (dk, dv): present only when kv heads are replicated. */
function replicasOf(sh: Shard): { replicas?: number[] } {
  return sh.replicas > 1 ? { replicas: [1, sh.replicas, sh.replicas] } : {};
}

function exchange(ctx: LowerContext, name: string, heads: number, doc: string): BufferDecl {
  return {
    name,
    shape: [ctx.group.length, ...activation(ctx, "x", "", heads).shape],
    slots: ctx.group.length,
    dtype: ctx.sizes.dtype,
    doc,
  };
}

function full(ctx: LowerContext, name: string, heads: number, doc: string, input = false): BufferDecl {
  const decl: BufferDecl = {
    name,
    shape: [ctx.sizes.batch, ctx.sizes.seqLen, heads, ctx.sizes.headDim],
    dtype: ctx.sizes.dtype,
    doc,
  };
  if (input) decl.input = true;
  return decl;
}

function attentionCost(
  ctx: LowerContext,
  layer: Layer,
  sh: Shard,
  backward: boolean,
): { flops: number; bytes: number } {
  const N = ctx.sizes.seqLen;
  if (layer.type === "linear_attention") {
    const forward = fullCost(ctx, N, sh.heads);
    return backward ? { flops: 2 * forward.flops, bytes: 2 * forward.bytes } : forward;
  }
  // Whole sequence on a head shard: count the pairs computed over all rank pairs, scaled to the shard's heads.
  let pairs = 0;
  for (const qr of ctx.group) for (const kr of ctx.group) pairs += workPairs(ctx, layer, qr, kr);
  const cost = (backward ? blockBackwardCost : blockCost)(ctx, pairs, N, N, layer);
  return { flops: cost.flops / ctx.group.length, bytes: cost.bytes / ctx.group.length };
}

/** The head shard a rank computes over the whole sequence. */
function headShard(rank: number, sh: ReturnType<typeof shard>, layer: Layer): HeadShard {
  return {
    headStart: rank * sh.heads,
    heads: sh.heads,
    kvHeadStart: sh.replicas > 1 ? Math.floor(rank / sh.replicas) : rank * sh.kvHeads,
    kvHeads: sh.kvHeads,
    causal: layer.causal,
  };
}

function forward(ctx: LowerContext, layer: Layer, rank: number): RankProgram {
  const b = new RankBuilder(rank);
  const sh = shard(ctx, layer);
  const L = localTokensOf(ctx);
  const kvHeads = layer.type === "softmax_attention" ? layer.kvHeads : ctx.sizes.heads;
  const q = b.buffer(activation(ctx, "q", "queries", undefined, true));
  const k = b.buffer(activation(ctx, "k", "keys", kvHeads, true));
  const v = b.buffer(activation(ctx, "v", "values", kvHeads, true));
  const o = b.buffer(activation(ctx, "o", "attention output"));
  const send = b.buffer(
    exchange(ctx, "qkv_send", sh.perDestination, "q, k, v head shards, one per destination rank"),
  );
  const recv = b.buffer(
    exchange(ctx, "qkv_recv", sh.perDestination, "this rank's head shard of every rank's tokens"),
  );
  const qFull = b.buffer(
    full(ctx, "q_full", sh.heads, "this rank's query heads over the whole sequence (kept for backward)"),
  );
  const kFull = b.buffer(
    full(ctx, "k_full", sh.kvHeads, "this rank's key heads over the whole sequence (kept for backward)"),
  );
  const vFull = b.buffer(
    full(ctx, "v_full", sh.kvHeads, "this rank's value heads over the whole sequence (kept for backward)"),
  );
  const oFull = b.buffer(
    full(ctx, "o_full", sh.heads, "output of this rank's heads over the whole sequence"),
  );
  const oSend = b.buffer(exchange(ctx, "o_send", sh.heads, "output rows for each destination rank"));
  const oRecv = b.buffer(
    exchange(ctx, "o_recv", sh.heads, "every rank's head shard of this rank's output rows"),
  );
  const lseFull =
    layer.type === "softmax_attention"
      ? b.buffer({
          name: "lse_full",
          shape: [ctx.sizes.batch, ctx.sizes.seqLen, sh.heads],
          dtype: "fp32",
          doc: "log-sum-exp of this rank's heads (kept for backward)",
        })
      : undefined;
  const pack = b.compute(
    "pack",
    "split q, k, v by head shard for each destination",
    { parts: [q, k, v], packed: send },
    { flops: 0, bytes: 2 * rowBytes(ctx, L, sh.perDestination * ctx.group.length) },
    { layout: "heads", ...replicasOf(sh) },
  );
  const a2a = b.collective(
    "alltoall",
    "all-to-all: sequence shards to head shards",
    ctx.group,
    "fwd.qkv",
    [{ send: send, recv: recv }],
    [pack],
  );
  const unpack = b.compute(
    "unpack",
    "place every rank's tokens at their global positions",
    { packed: recv, parts: [qFull, kFull, vFull] },
    { flops: 0, bytes: 2 * rowBytes(ctx, L, sh.perDestination * ctx.group.length) },
    { layout: "sequence" },
    [a2a],
  );
  const label = `whole-sequence attention on heads ${rank * sh.heads}..${(rank + 1) * sh.heads - 1}`;
  const io = { q: qFull, k: kFull, v: vFull, ...documentEnds(b, ctx), o: oFull };
  const cost = attentionCost(ctx, layer, sh, false);
  const attend =
    lseFull === undefined
      ? b.compute("linear.full", label, io, cost, headShard(rank, sh, layer), [unpack])
      : b.compute("softmax.full", label, { ...io, lse: lseFull }, cost, headShard(rank, sh, layer), [unpack]);
  const packO = b.compute(
    "pack",
    "split the output rows by owner rank",
    { parts: [oFull], packed: oSend },
    { flops: 0, bytes: 2 * rowBytes(ctx, L, ctx.sizes.heads) },
    { layout: "tokens" },
    [attend],
  );
  const back = b.collective(
    "alltoall",
    "all-to-all: head shards back to sequence shards",
    ctx.group,
    "fwd.o",
    [{ send: oSend, recv: oRecv }],
    [packO],
  );
  b.compute(
    "unpack",
    "join the head shards of this rank's output",
    { packed: oRecv, parts: [o] },
    { flops: 0, bytes: 2 * rowBytes(ctx, L) },
    { layout: "heads" },
    [back],
  );
  return b.build();
}

function backward(ctx: LowerContext, layer: Layer, rank: number): RankProgram {
  const b = new RankBuilder(rank);
  const sh = shard(ctx, layer);
  const L = localTokensOf(ctx);
  const kvHeads = layer.type === "softmax_attention" ? layer.kvHeads : ctx.sizes.heads;
  const dout = b.buffer(activation(ctx, "do", "gradient of the output", undefined, true));
  const qFull = b.buffer(full(ctx, "q_full", sh.heads, "saved by the forward pass", true));
  const kFull = b.buffer(full(ctx, "k_full", sh.kvHeads, "saved by the forward pass", true));
  const vFull = b.buffer(full(ctx, "v_full", sh.kvHeads, "saved by the forward pass", true));
  const saved =
    layer.type === "softmax_attention"
      ? {
          o: b.buffer(full(ctx, "o_full", sh.heads, "saved by the forward pass", true)),
          lse: b.buffer({
            name: "lse_full",
            shape: [ctx.sizes.batch, ctx.sizes.seqLen, sh.heads],
            dtype: "fp32",
            doc: "saved by the forward pass",
            input: true,
          }),
        }
      : undefined;
  const doSend = b.buffer(
    exchange(ctx, "do_send", sh.heads, "output-gradient head shards, one per destination rank"),
  );
  const doRecv = b.buffer(
    exchange(ctx, "do_recv", sh.heads, "this rank's head shard of every rank's output gradient"),
  );
  const doFull = b.buffer(
    full(ctx, "do_full", sh.heads, "output gradient of this rank's heads over the whole sequence"),
  );
  const dqFull = b.buffer(full(ctx, "dq_full", sh.heads, "dQ of this rank's heads"));
  const dkFull = b.buffer(full(ctx, "dk_full", sh.kvHeads, "dK of this rank's heads"));
  const dvFull = b.buffer(full(ctx, "dv_full", sh.kvHeads, "dV of this rank's heads"));
  const send = b.buffer(exchange(ctx, "dqkv_send", sh.perDestination, "dq, dk, dv rows for each owner rank"));
  const recv = b.buffer(
    exchange(ctx, "dqkv_recv", sh.perDestination, "every rank's head shard of this rank's gradients"),
  );
  const dq = b.buffer(activation(ctx, "dq", "gradient of q"));
  const dk = b.buffer(activation(ctx, "dk", "gradient of k", kvHeads));
  const dv = b.buffer(activation(ctx, "dv", "gradient of v", kvHeads));
  // Replicated kv heads: the R partials of each kv head's dK, dV, one slot per replica (source s: slot s mod R).
  const partials = (name: string, what: string): string =>
    b.buffer({
      name,
      shape: [sh.replicas, ...activation(ctx, name, "", kvHeads).shape],
      slots: sh.replicas,
      dtype: ctx.sizes.dtype,
      doc: `${what} partials of this rank's rows, one slot per replica of each kv head (summed into ${what === "dK" ? "dk" : "dv"})`,
    });
  const dkParts = sh.replicas > 1 ? partials("dk_parts", "dK") : undefined;
  const dvParts = sh.replicas > 1 ? partials("dv_parts", "dV") : undefined;

  const pack = b.compute(
    "pack",
    "split dO by head shard for each destination",
    { parts: [dout], packed: doSend },
    { flops: 0, bytes: 2 * rowBytes(ctx, L) },
    { layout: "heads" },
  );
  const a2a = b.collective(
    "alltoall",
    "all-to-all: dO sequence shards to head shards",
    ctx.group,
    "bwd.do",
    [{ send: doSend, recv: doRecv }],
    [pack],
  );
  const unpack = b.compute(
    "unpack",
    "place every rank's dO rows at their global positions",
    { packed: doRecv, parts: [doFull] },
    { flops: 0, bytes: 2 * rowBytes(ctx, L) },
    { layout: "sequence" },
    [a2a],
  );
  const label = `whole-sequence backward on heads ${rank * sh.heads}..${(rank + 1) * sh.heads - 1}`;
  const io = { q: qFull, k: kFull, v: vFull, dout: doFull, dq: dqFull, dk: dkFull, dv: dvFull };
  const docs = documentEnds(b, ctx);
  const cost = attentionCost(ctx, layer, sh, true);
  const grads =
    saved === undefined
      ? b.compute("linear.full_backward", label, { ...io, ...docs }, cost, headShard(rank, sh, layer), [
          unpack,
        ])
      : b.compute(
          "softmax.full_backward",
          label,
          { ...io, ...saved, ...docs },
          cost,
          headShard(rank, sh, layer),
          [unpack],
        );
  const packG = b.compute(
    "pack",
    "split dQ, dK, dV rows by owner rank",
    { parts: [dqFull, dkFull, dvFull], packed: send },
    { flops: 0, bytes: 2 * rowBytes(ctx, L, sh.perDestination * ctx.group.length) },
    { layout: "tokens" },
    [grads],
  );
  const back = b.collective(
    "alltoall",
    "all-to-all: gradient head shards back to sequence shards",
    ctx.group,
    "bwd.dqkv",
    [{ send: send, recv: recv }],
    [packG],
  );
  const join = b.compute(
    "unpack",
    dkParts === undefined
      ? "join the head shards of this rank's dQ, dK, dV"
      : "join dQ's head shards; each replica's dK, dV into its slot",
    { packed: recv, parts: [dq, dkParts ?? dk, dvParts ?? dv] },
    { flops: 0, bytes: 2 * rowBytes(ctx, L, sh.perDestination * ctx.group.length) },
    { layout: "heads", ...replicasOf(sh) },
    [back],
  );
  if (dkParts !== undefined && dvParts !== undefined) {
    // In slot order, which is rank order: every run gets the same bits.
    const sumBytes = (sh.replicas + 1) * rowBytes(ctx, L, kvHeads);
    const flops = (sh.replicas - 1) * ctx.sizes.batch * L * kvHeads * ctx.sizes.headDim;
    b.compute(
      "accumulate",
      `dK: sum the ${sh.replicas} replicas' partials of each kv head`,
      { src: dkParts, dst: dk },
      { flops, bytes: sumBytes },
      {},
      [join],
    );
    b.compute(
      "accumulate",
      `dV: sum the ${sh.replicas} replicas' partials of each kv head`,
      { src: dvParts, dst: dv },
      { flops, bytes: sumBytes },
      {},
      [join],
    );
  }
  return b.build();
}
