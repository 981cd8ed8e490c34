// Ring attention, the softmax baseline (ALGORITHMS.md): K/V blocks pass rank to rank in W steps, each step's
// send/recv overlapping flash attention on the block in hand; partial results are merged with the
// log-sum-exp rule in fp32. Backward passes K, V and the travelling dK, dV accumulators the same way, with
// one last hop that brings each accumulator home. Blocks the causal mask hides entirely are passed on but
// not computed.
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
  lseBuffer,
  mergeCost,
  partials,
  visiblePairs,
  workPairs,
} from "./softmax-common.js";

export function lowerRing(ctx: LowerContext, layer: SoftmaxAttentionKind) {
  return perRank(ctx, layer, forward, backward);
}

/** Rank whose block rank `rank` holds at ring step s. */
const sourceAt = (W: number, rank: number, s: number): number => (rank - s + W) % W;

function forward(ctx: LowerContext, layer: SoftmaxAttentionKind, rank: number): RankProgram {
  const b = new RankBuilder(rank);
  const W = ctx.group.length;
  const L = localTokensOf(ctx);
  const kvShape = kvActivation(ctx, layer, "x", "").shape;
  const q = b.buffer(activation(ctx, "q", "queries (RoPE applied)", undefined, true));
  const k = b.buffer(kvActivation(ctx, layer, "k", "keys (RoPE applied)", true));
  const v = b.buffer(kvActivation(ctx, layer, "v", "values", true));
  const kRing = b.buffer({
    name: "k_ring",
    shape: [2, ...kvShape],
    slots: 2,
    dtype: ctx.sizes.dtype,
    doc: "double buffer of the key block in hand and the one arriving",
  });
  const vRing = b.buffer({
    name: "v_ring",
    shape: [2, ...kvShape],
    slots: 2,
    dtype: ctx.sizes.dtype,
    doc: "double buffer of the value block in hand and the one arriving",
  });
  const o = b.buffer(activation(ctx, "o", "attention output"));
  const lse = b.buffer(
    lseBuffer(ctx, "lse", 1, "log-sum-exp per query and head, kept for the backward pass"),
  );
  const parts = b.buffer(partials(ctx, "o_part", W, "normalised partial output per source block"));
  const partLse = b.buffer(lseBuffer(ctx, "lse_part", W, "log-sum-exp of each partial"));
  const next = (rank + 1) % W;
  const previous = (rank - 1 + W) % W;

  let arrived = [
    b.compute(
      "copy",
      "K, V of this rank into ring slot 0",
      { src: [k, v], dst: [kRing, vRing] },
      { flops: 0, bytes: 4 * rowBytes(ctx, L, layer.kvHeads) },
      { to: 0 },
    ),
  ];
  let lastReader: number | undefined; // the compute step that last read the slot about to be overwritten
  const computed: number[] = [];
  const sources: number[] = [];
  for (let s = 0; s < W; s++) {
    const slot = s % 2;
    let incoming: number[] = [];
    if (s < W - 1) {
      const tag = `fwd.kv.${s}`;
      b.p2p(
        "send",
        `send the K, V block of rank ${sourceAt(W, rank, s)} to rank ${next}`,
        next,
        `${tag}.${next}`,
        [
          { buffer: kRing, slot },
          { buffer: vRing, slot },
        ],
        arrived,
      );
      const wait = lastReader === undefined ? [] : [lastReader];
      incoming = [
        b.p2p(
          "recv",
          `recv the K, V block of rank ${sourceAt(W, rank, s + 1)} from rank ${previous}`,
          previous,
          `${tag}.${rank}`,
          [
            { buffer: kRing, slot: 1 - slot },
            { buffer: vRing, slot: 1 - slot },
          ],
          wait,
        ),
      ];
    }
    const source = sourceAt(W, rank, s);
    const pairs = visiblePairs(ctx, layer, rank, source);
    if (pairs > 0) {
      const step = b.compute(
        "softmax.block",
        `attend to rank ${source}'s keys (ring step ${s})`,
        { q, k: kRing, v: vRing, ...documentEnds(b, ctx), o: parts, lse: partLse },
        blockCost(ctx, workPairs(ctx, layer, rank, source), L, L, layer),
        { source, slot, causal: layer.causal },
        ctx.overlap ? arrived : [...arrived, ...incoming],
      );
      computed.push(step);
      sources.push(source);
      lastReader = step;
    }
    arrived = incoming;
  }
  b.compute(
    "softmax.merge",
    `merge ${sources.length} partial results (log-sum-exp)`,
    { parts, partLse, o, lse },
    mergeCost(ctx, sources.length),
    { sources },
    computed,
  );
  return b.build();
}

function backward(ctx: LowerContext, layer: SoftmaxAttentionKind, rank: number): RankProgram {
  const b = new RankBuilder(rank);
  const W = ctx.group.length;
  const L = localTokensOf(ctx);
  const kvShape = kvActivation(ctx, layer, "x", "").shape;
  const q = b.buffer(activation(ctx, "q", "queries", undefined, true));
  const k = b.buffer(kvActivation(ctx, layer, "k", "keys", true));
  const v = b.buffer(kvActivation(ctx, layer, "v", "values", true));
  const o = b.buffer(activation(ctx, "o", "attention output saved by the forward pass", undefined, true));
  const lse = b.buffer(lseBuffer(ctx, "lse", 1, "log-sum-exp saved by the forward pass", true));
  const dout = b.buffer(activation(ctx, "do", "gradient of the output", undefined, true));
  const dq = b.buffer(activation(ctx, "dq", "gradient of q"));
  const dqAcc = b.buffer(dqAccumulator(ctx));
  const kRing = b.buffer({
    name: "k_ring",
    shape: [2, ...kvShape],
    slots: 2,
    dtype: ctx.sizes.dtype,
    doc: "key blocks travelling round the ring",
  });
  const vRing = b.buffer({
    name: "v_ring",
    shape: [2, ...kvShape],
    slots: 2,
    dtype: ctx.sizes.dtype,
    doc: "value blocks travelling round the ring",
  });
  const dkRing = b.buffer(
    kvGradients(ctx, layer, "dk_ring", 2, "dK accumulators travelling with their key blocks"),
  );
  const dvRing = b.buffer(
    kvGradients(ctx, layer, "dv_ring", 2, "dV accumulators travelling with their value blocks"),
  );
  const dk = b.buffer(kvActivation(ctx, layer, "dk", "gradient of this rank's keys"));
  const dv = b.buffer(kvActivation(ctx, layer, "dv", "gradient of this rank's values"));
  const next = (rank + 1) % W;
  const previous = (rank - 1 + W) % W;

  const start = b.compute(
    "copy",
    "K, V of this rank into ring slot 0",
    { src: [k, v], dst: [kRing, vRing] },
    { flops: 0, bytes: 4 * rowBytes(ctx, L, layer.kvHeads) },
    { to: 0 },
  );
  const clear = b.compute(
    "fill_zero",
    "clear dQ and the dK, dV accumulators",
    { dst: [dqAcc, dkRing, dvRing] },
    { flops: 0, bytes: 2 * rowBytes(ctx, L) + 4 * 2 * rowBytes(ctx, L, layer.kvHeads) },
    {},
  );
  let arrived = [start, clear];
  const blocks: number[] = [];
  // Nothing may arrive in the accumulators before they are cleared.
  let lastUse: number | undefined = clear;
  for (let s = 0; s < W; s++) {
    const slot = s % 2;
    const source = sourceAt(W, rank, s);
    const pairs = visiblePairs(ctx, layer, rank, source);
    let done = arrived;
    if (pairs > 0) {
      const step = b.compute(
        "softmax.block_backward",
        `dQ, and dK, dV of rank ${source}'s block (ring step ${s})`,
        { q, k: kRing, v: vRing, o, lse, dout, ...documentEnds(b, ctx), dq: dqAcc, dk: dkRing, dv: dvRing },
        blockBackwardCost(ctx, workPairs(ctx, layer, rank, source), L, L, layer),
        { source, slot, causal: layer.causal },
        arrived,
      );
      done = [step];
      blocks.push(step);
    }
    const tag = `bwd.${s}`;
    const wait = lastUse === undefined ? [] : [lastUse];
    if (s < W - 1) {
      const all = [kRing, vRing, dkRing, dvRing];
      b.p2p(
        "send",
        `send K, V, dK, dV of rank ${source}'s block to rank ${next}`,
        next,
        `${tag}.${next}`,
        all.map((buffer) => ({ buffer, slot })),
        done,
      );
      arrived = [
        b.p2p(
          "recv",
          `recv K, V, dK, dV of rank ${sourceAt(W, rank, s + 1)}'s block from rank ${previous}`,
          previous,
          `${tag}.${rank}`,
          all.map((buffer) => ({ buffer, slot: 1 - slot })),
          wait,
        ),
      ];
      lastUse = done[0];
    } else if (W > 1) {
      // The accumulators in hand belong to rank `next`: one more hop takes every dK, dV home.
      b.p2p(
        "send",
        `send the finished dK, dV of rank ${next} home`,
        next,
        `bwd.home.${next}`,
        [
          { buffer: dkRing, slot },
          { buffer: dvRing, slot },
        ],
        done,
      );
      const home = b.p2p(
        "recv",
        `recv this rank's finished dK, dV from rank ${previous}`,
        previous,
        `bwd.home.${rank}`,
        [
          { buffer: dkRing, slot: 1 - slot },
          { buffer: dvRing, slot: 1 - slot },
        ],
        wait,
      );
      b.compute(
        "copy",
        "dK, dV of this rank from the ring",
        { src: [dkRing, dvRing], dst: [dk, dv] },
        { flops: 0, bytes: 4 * rowBytes(ctx, L, layer.kvHeads) },
        { from: 1 - slot },
        [home],
      );
    } else {
      b.compute(
        "copy",
        "dK, dV of this rank",
        { src: [dkRing, dvRing], dst: [dk, dv] },
        { flops: 0, bytes: 4 * rowBytes(ctx, L, layer.kvHeads) },
        { from: slot },
        done,
      );
    }
  }
  castDq(ctx, b, dqAcc, dq, blocks.length > 0 ? blocks.slice(-1) : [clear]);
  return b.build();
}
