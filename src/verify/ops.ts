// What each compute op of the IR means, in float64 on the CPU: the reference executor's interpretation of
// the schedule, one handler per op, reading the step's named operands (schedule/ops.ts).
import {
  dkdvInter,
  dqInter,
  interForward,
  intraBackward,
  intraForward,
  pieceGradState,
  pieceState,
  prefixForPiece,
  ringStep,
  ringStepBackward,
  suffixForPiece,
} from "../reference/linear-chunks.js";
import {
  linearAttentionBackward,
  linearAttentionForward,
  softmaxAttentionBackward,
  softmaxAttentionForward,
} from "../reference/oracle.js";
import { attendBlock, attendBlockBackward, mergeLse } from "../reference/softmax-blocks.js";
import {
  add,
  addInto,
  concatHeads,
  gatherRows,
  scatterRows,
  sliceHeads,
  sub,
  type Tensor,
  zeros,
} from "../reference/tensor.js";
import { handleOp, type ComputeStep, type LayoutPlan, type OpHandlers } from "../schedule/ir.js";
import type { HeadShard } from "../schedule/ops.js";
import { rankPositions } from "../schedule/layout.js";
import type { LayerKind } from "../spec/resolved.js";
import { pieceRows, slotShape, writePieceRows, type RankStore } from "./store.js";

export interface OpContext {
  plan: LayoutPlan;
  layer: LayerKind;
  block: number;
  store: RankStore;
  rank: number;
}

function decay(ctx: OpContext, heads?: { start: number; count: number }): number[] {
  if (ctx.layer.type !== "linear_attention") return [];
  const all = ctx.layer.decay.perHead;
  return heads ? all.slice(heads.start, heads.start + heads.count) : all;
}

/** A block op's key or value input: its `slot` (ring) or the source rank's slot (gathered), if slotted. */
function blockInput(ctx: OpContext, name: string, params: { source: number; slot?: number }): Tensor {
  const decl = ctx.store.decl(name);
  if (decl.slots === undefined) return ctx.store.one(name);
  return ctx.store.one(name, params.slot ?? params.source);
}

/** Rows of piece j of an activation buffer. */
const rows = (ctx: OpContext, name: string, j: number): Tensor =>
  pieceRows(ctx.store.one(name), ctx.plan, ctx.rank, j);
const writeRows = (ctx: OpContext, name: string, j: number, value: Tensor): void =>
  writePieceRows(ctx.store.slots(name)[0]!, ctx.plan, ctx.rank, j, value);
const addRows = (ctx: OpContext, name: string, j: number, value: Tensor): void =>
  writeRows(ctx, name, j, add(rows(ctx, name, j), value));

/** A piece's prefix (P) or suffix (G) state from the exchanged states, as its mode says. */
function combine(ctx: OpContext, step: ComputeStep<"linear.prefix" | "linear.suffix">, out: string): void {
  const { store, plan, rank } = ctx;
  const j = step.params.piece;
  const { gathered, total, own } = step.operands;
  const target = plan.byRank[rank]![j]!;
  if (step.params.mode === "zero") store.set(out, j, zeros(slotShape(store.decl(out))));
  else if (step.params.mode === "others") store.set(out, j, sub(store.one(total!), store.one(own!, j)));
  else {
    // Gathered states arrive rank-major; put them in global piece order for the prefix/suffix sums.
    const states = store.get(gathered!);
    const perRank = plan.byRank[0]!.length;
    const ordered = plan.pieces.map((p) => states[p.rank * perRank + plan.byRank[p.rank]!.indexOf(p)]!);
    const fn = step.op === "linear.prefix" ? prefixForPiece : suffixForPiece;
    store.set(out, j, fn(ordered, plan.pieces, target.index, decay(ctx)));
  }
}

/** LASP-1's hand-on (forward) or hand-back (backward): out = lam^C state + own, in piece j's slots. */
function ring(
  ctx: OpContext,
  step: ComputeStep,
  [state, own, out]: [string, string, string],
  j: number,
): void {
  const length = ctx.plan.byRank[ctx.rank]![j]!.length;
  const fn = step.op === "linear.ring_forward" ? ringStep : ringStepBackward;
  ctx.store.set(out, j, fn(ctx.store.one(state, j), ctx.store.one(own, j), decay(ctx), length));
}

/**
 * One handler per op of the catalogue (schedule/ops.ts). Placement (which collective a step overlaps, the
 * communicator, the SMs a GEMM leaves) is ignored: it changes when work runs, never what it computes.
 */
export const EXECUTOR_HANDLERS: OpHandlers<[OpContext], void> = {
  "linear.state": (step, ctx) => {
    const j = step.params.piece;
    const { k, v, m } = step.operands;
    ctx.store.set(m, j, pieceState(rows(ctx, k, j), rows(ctx, v, j), decay(ctx)));
  },
  "linear.intra": (step, ctx) => {
    const j = step.params.piece;
    const { q, k, v, o } = step.operands;
    const out = intraForward(
      rows(ctx, q, j),
      rows(ctx, k, j),
      rows(ctx, v, j),
      decay(ctx),
      step.params.causal,
      ctx.block,
    );
    writeRows(ctx, o, j, out);
  },
  "linear.prefix": (step, ctx) => combine(ctx, step, step.operands.p),
  "linear.suffix": (step, ctx) => combine(ctx, step, step.operands.g),
  "linear.inter": (step, ctx) => {
    const j = step.params.piece;
    const { q, p, o } = step.operands;
    addRows(ctx, o, j, interForward(rows(ctx, q, j), ctx.store.one(p, j), decay(ctx)));
  },
  "linear.ring_forward": (step, ctx) => {
    const { p, m, next } = step.operands;
    ring(ctx, step, [p, m, next], step.params.piece);
  },
  "linear.ring_backward": (step, ctx) => {
    const { g, dm, previous } = step.operands;
    ring(ctx, step, [g, dm, previous], step.params.piece);
  },
  "linear.grad_state": (step, ctx) => {
    const j = step.params.piece;
    const { q, dout, dm } = step.operands;
    ctx.store.set(dm, j, pieceGradState(rows(ctx, q, j), rows(ctx, dout, j), decay(ctx)));
  },
  "linear.intra_backward": (step, ctx) => {
    const j = step.params.piece;
    const { q, k, v, dout, dq, dk, dv } = step.operands;
    const g = intraBackward(
      rows(ctx, q, j),
      rows(ctx, k, j),
      rows(ctx, v, j),
      rows(ctx, dout, j),
      decay(ctx),
      step.params.causal,
      ctx.block,
    );
    writeRows(ctx, dq, j, g.dq);
    writeRows(ctx, dk, j, g.dk);
    writeRows(ctx, dv, j, g.dv);
  },
  "linear.dq_inter": (step, ctx) => {
    const j = step.params.piece;
    const { dout, p, dq } = step.operands;
    addRows(ctx, dq, j, dqInter(rows(ctx, dout, j), ctx.store.one(p, j), decay(ctx)));
  },
  "linear.dkdv_inter": (step, ctx) => {
    const j = step.params.piece;
    const { k, v, g, dk, dv } = step.operands;
    const t = dkdvInter(rows(ctx, k, j), rows(ctx, v, j), ctx.store.one(g, j), decay(ctx));
    addRows(ctx, dk, j, t.dk);
    addRows(ctx, dv, j, t.dv);
  },
  "linear.forward_fused": (step, ctx) => {
    // The fused walk equals the intra-piece product plus the inter term.
    const j = step.params.piece;
    const { q, k, v, p, o } = step.operands;
    const lam = decay(ctx);
    const intra = intraForward(
      rows(ctx, q, j),
      rows(ctx, k, j),
      rows(ctx, v, j),
      lam,
      step.params.causal,
      ctx.block,
    );
    const out = p === undefined ? intra : add(intra, interForward(rows(ctx, q, j), ctx.store.one(p, j), lam));
    writeRows(ctx, o, j, out);
  },
  "linear.backward_fused": (step, ctx) => {
    const j = step.params.piece;
    const { q, k, v, dout, p, g, dq, dk, dv } = step.operands;
    const lam = decay(ctx);
    const grads = intraBackward(
      rows(ctx, q, j),
      rows(ctx, k, j),
      rows(ctx, v, j),
      rows(ctx, dout, j),
      lam,
      step.params.causal,
      ctx.block,
    );
    let { dq: dQ, dk: dK, dv: dV } = grads;
    if (p !== undefined) dQ = add(dQ, dqInter(rows(ctx, dout, j), ctx.store.one(p, j), lam));
    if (g !== undefined) {
      const t = dkdvInter(rows(ctx, k, j), rows(ctx, v, j), ctx.store.one(g, j), lam);
      dK = add(dK, t.dk);
      dV = add(dV, t.dv);
    }
    writeRows(ctx, dq, j, dQ);
    writeRows(ctx, dk, j, dK);
    writeRows(ctx, dv, j, dV);
  },
  // The program's projection: the executor is given q (and needs no weight gradient) from the start.
  host: () => {},
  "linear.full": (step, ctx) => {
    const { q, k, v, o } = step.operands;
    const [Q, K, V] = [q, k, v].map((n) => ctx.store.one(n)) as [Tensor, Tensor, Tensor];
    const lam = decay(ctx, shardHeads(step.params));
    ctx.store.set(o, 0, linearAttentionForward(Q, K, V, lam, step.params.causal));
  },
  "linear.full_backward": (step, ctx) => {
    const { q, k, v, dout, dq, dk, dv } = step.operands;
    const [Q, K, V, dO] = [q, k, v, dout].map((n) => ctx.store.one(n)) as [Tensor, Tensor, Tensor, Tensor];
    const g = linearAttentionBackward(Q, K, V, dO, decay(ctx, shardHeads(step.params)), step.params.causal);
    ctx.store.set(dq, 0, g.dq);
    ctx.store.set(dk, 0, g.dk);
    ctx.store.set(dv, 0, g.dv);
  },
  "softmax.full": (step, ctx) => {
    const { q, k, v, o, lse } = step.operands;
    const [Q, K, V] = [q, k, v].map((n) => ctx.store.one(n)) as [Tensor, Tensor, Tensor];
    const positions = everyPosition(Q);
    const out = softmaxAttentionForward(Q, positions, K, positions, V, step.params.causal);
    ctx.store.set(o, 0, out.o);
    ctx.store.set(lse, 0, out.lse);
  },
  "softmax.full_backward": (step, ctx) => {
    const { q, k, v, dout, dq, dk, dv } = step.operands;
    const [Q, K, V, dO] = [q, k, v, dout].map((n) => ctx.store.one(n)) as [Tensor, Tensor, Tensor, Tensor];
    const positions = everyPosition(Q);
    const g = softmaxAttentionBackward(Q, positions, K, positions, V, dO, step.params.causal);
    ctx.store.set(dq, 0, g.dq);
    ctx.store.set(dk, 0, g.dk);
    ctx.store.set(dv, 0, g.dv);
  },
  "softmax.block": (step, ctx) => {
    const { store, plan, rank } = ctx;
    const { source, causal } = step.params;
    const { q, k, v, o, lse } = step.operands;
    const out = attendBlock(
      store.one(q),
      rankPositions(plan, rank),
      blockInput(ctx, k, step.params),
      rankPositions(plan, source),
      blockInput(ctx, v, step.params),
      causal,
    );
    store.set(o, source, out.o);
    store.set(lse, source, out.lse);
  },
  "softmax.merge": (step, ctx) => {
    const { store } = ctx;
    const { parts, partLse, o, lse } = step.operands;
    const merged = mergeLse(
      step.params.sources.map((s) => ({ o: store.one(parts, s), lse: store.one(partLse, s) })),
    );
    store.set(o, 0, merged.o);
    store.set(lse, 0, merged.lse);
  },
  "softmax.block_backward": (step, ctx) => {
    const { store, plan, rank } = ctx;
    const { source, causal } = step.params;
    const { q, k, v, o, lse, dout, dq, dk, dv } = step.operands;
    const g = attendBlockBackward(
      store.one(q),
      rankPositions(plan, rank),
      blockInput(ctx, k, step.params),
      rankPositions(plan, source),
      blockInput(ctx, v, step.params),
      store.one(o),
      store.one(lse),
      store.one(dout),
      causal,
    );
    // dK, dV go to the block's slot of a per-block buffer, or to a buffer of the rank's own block alone.
    const slot = step.params.slot ?? source;
    const into = (name: string): number => (store.decl(name).slots === undefined ? 0 : slot);
    addInto(store.slots(dq)[0]!, g.dq);
    addInto(store.slots(dk)[into(dk)]!, g.dk);
    addInto(store.slots(dv)[into(dv)]!, g.dv);
  },
  copy: (step, ctx) => {
    const { from, to } = step.params;
    step.operands.src.forEach((src, i) => {
      const value = from === undefined ? ctx.store.one(src) : ctx.store.one(src, from);
      ctx.store.set(step.operands.dst[i]!, to ?? 0, value);
    });
  },
  fill_zero: (step, ctx) => {
    for (const name of step.operands.dst) {
      const decl = ctx.store.decl(name);
      for (let s = 0; s < (decl.slots ?? 1); s++) ctx.store.set(name, s, zeros(slotShape(decl)));
    }
  },
  add: (step, ctx) => {
    for (const { a, b, out } of step.operands.sums) {
      const sum = zeros(slotShape(ctx.store.decl(out)));
      addInto(sum, ctx.store.one(a));
      addInto(sum, ctx.store.one(b));
      ctx.store.set(out, 0, sum);
    }
  },
  accumulate: (step, ctx) => {
    const all = ctx.store.get(step.operands.src);
    const sum = zeros(all[0]!.shape);
    for (const t of all) addInto(sum, t);
    ctx.store.set(step.operands.dst, 0, sum);
  },
  pack: (step, ctx) => runPack(ctx, step),
  unpack: (step, ctx) => runUnpack(ctx, step),
};

export function runCompute(ctx: OpContext, step: ComputeStep): void {
  handleOp(EXECUTOR_HANDLERS, step, ctx);
}

const shardHeads = (shard: HeadShard): { start: number; count: number } => ({
  start: shard.headStart,
  count: shard.heads,
});

/** Positions 0 .. N-1 of a whole-sequence tensor (rows are tokens). */
const everyPosition = (t: Tensor): number[] => Array.from({ length: t.shape[0]! }, (_, i) => i);

/** Heads each write buffer takes per shard, from its declared shape. */
function headsOf(ctx: OpContext, name: string): number {
  const shape = slotShape(ctx.store.decl(name));
  return shape[1]!;
}

/** Ulysses data movement before an all-to-all: each destination's slot of the packed buffer. */
function runPack(ctx: OpContext, step: ComputeStep<"pack">): void {
  const { store, plan } = ctx;
  const W = plan.ranks;
  const { parts, packed } = step.operands;
  for (let r = 0; r < W; r++) {
    const shards =
      step.params.layout === "heads"
        ? // Destination r's head shard of every part, joined along the head axis.
          parts.map((name) => {
            const t = store.one(name);
            const h = t.shape[1]! / W;
            return sliceHeads(t, r * h, (r + 1) * h);
          })
        : // The rows at r's global positions, of every part, joined along heads.
          parts.map((name) => gatherRows(store.one(name), rankPositions(plan, r)));
    store.set(packed, r, concatHeads(shards));
  }
}

/** Ulysses data movement after an all-to-all. */
function runUnpack(ctx: OpContext, step: ComputeStep<"unpack">): void {
  const { store, plan } = ctx;
  const W = plan.ranks;
  const recv = store.get(step.operands.packed);
  let h0 = 0;
  for (const name of step.operands.parts) {
    if (step.params.layout === "sequence") {
      // recv[s] holds rank s's tokens for this rank's head shard: place them at their global positions.
      const h = headsOf(ctx, name);
      const full = store.slots(name)[0]!;
      for (let s = 0; s < W; s++) scatterRows(full, rankPositions(plan, s), sliceHeads(recv[s]!, h0, h0 + h));
      h0 += h;
    } else {
      // recv[s] holds head shard s of this rank's tokens: join the shards along the head axis.
      const h = headsOf(ctx, name) / W;
      store.set(name, 0, concatHeads(recv.map((t) => sliceHeads(t, h0, h0 + h))));
      h0 += h;
    }
  }
}
