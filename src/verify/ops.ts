// What each compute op of the IR means, in float64 on the CPU: the reference executor's interpretation of
// the schedule. Reads and writes are positional (the order the lowering passes list them in), so the
// executor never depends on buffer names.
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
import type { ComputeStep, LayoutPlan } from "../schedule/ir.js";
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

const num = (step: ComputeStep, key: string): number => {
  const value = step.params[key];
  if (typeof value !== "number") throw new Error(`${step.op} (step ${step.id}) needs a numeric param ${key}`);
  return value;
};

function decay(ctx: OpContext, heads?: { start: number; count: number }): number[] {
  if (ctx.layer.type !== "linear_attention") return [];
  const all = ctx.layer.decay.perHead;
  return heads ? all.slice(heads.start, heads.start + heads.count) : all;
}

function causal(ctx: OpContext): boolean {
  return ctx.layer.causal;
}

/** The slot of a slotted read buffer a block op uses: its `slot` param (ring) or the source rank (gathered). */
function blockInput(ctx: OpContext, name: string, step: ComputeStep): Tensor {
  const decl = ctx.store.decl(name);
  if (decl.slots === undefined) return ctx.store.one(name);
  const slot = typeof step.params["slot"] === "number" ? step.params["slot"] : num(step, "source");
  return ctx.store.one(name, slot);
}

export function runCompute(ctx: OpContext, step: ComputeStep): void {
  const { store, plan, rank } = ctx;
  const [r0, r1, r2, r3, r4, r5] = step.reads;
  const [w0, w1, w2] = step.writes;
  const piece = (): number => num(step, "piece");
  const rows = (name: string, j: number): Tensor => pieceRows(store.one(name), plan, rank, j);
  const writeRowsOf = (name: string, j: number, value: Tensor): void =>
    writePieceRows(store.slots(name)[0]!, plan, rank, j, value);
  const addRows = (name: string, j: number, value: Tensor): void =>
    writeRowsOf(name, j, add(rows(name, j), value));
  const lam = decay(ctx);
  switch (step.op) {
    case "linear.state":
      store.set(w0!, piece(), pieceState(rows(r0!, piece()), rows(r1!, piece()), lam));
      return;
    case "linear.intra":
      writeRowsOf(
        w0!,
        piece(),
        intraForward(rows(r0!, piece()), rows(r1!, piece()), rows(r2!, piece()), lam, causal(ctx), ctx.block),
      );
      return;
    case "linear.prefix":
    case "linear.suffix": {
      const j = piece();
      const mode = step.params["mode"];
      const target = plan.byRank[rank]![j]!;
      const shape = slotShape(store.decl(w0!));
      if (mode === "zero") store.set(w0!, j, zeros(shape));
      else if (mode === "others") store.set(w0!, j, sub(store.one(r0!), store.one(r1!, j)));
      else {
        // Gathered states arrive rank-major; put them in global piece order for the prefix/suffix sums.
        const gathered = store.get(r0!);
        const perRank = plan.byRank[0]!.length;
        const ordered = plan.pieces.map((p) => gathered[p.rank * perRank + plan.byRank[p.rank]!.indexOf(p)]!);
        const fn = step.op === "linear.prefix" ? prefixForPiece : suffixForPiece;
        store.set(w0!, j, fn(ordered, plan.pieces, target.index, lam));
      }
      return;
    }
    case "linear.inter":
      addRows(w0!, piece(), interForward(rows(r0!, piece()), store.one(r1!, piece()), lam));
      return;
    case "linear.ring_forward":
    case "linear.ring_backward": {
      const j = piece();
      const length = plan.byRank[rank]![j]!.length;
      const fn = step.op === "linear.ring_forward" ? ringStep : ringStepBackward;
      store.set(w0!, j, fn(store.one(r0!, j), store.one(r1!, j), lam, length));
      return;
    }
    case "linear.grad_state":
      store.set(w0!, piece(), pieceGradState(rows(r0!, piece()), rows(r1!, piece()), lam));
      return;
    case "linear.intra_backward": {
      const j = piece();
      const g = intraBackward(
        rows(r0!, j),
        rows(r1!, j),
        rows(r2!, j),
        rows(r3!, j),
        lam,
        causal(ctx),
        ctx.block,
      );
      writeRowsOf(w0!, j, g.dq);
      writeRowsOf(w1!, j, g.dk);
      writeRowsOf(w2!, j, g.dv);
      return;
    }
    case "linear.dq_inter":
      addRows(w0!, piece(), dqInter(rows(r0!, piece()), store.one(r1!, piece()), lam));
      return;
    case "linear.dkdv_inter": {
      const j = piece();
      const g = dkdvInter(rows(r0!, j), rows(r1!, j), store.one(r2!, j), lam);
      addRows(w0!, j, g.dk);
      addRows(w1!, j, g.dv);
      return;
    }
    case "linear.forward_fused": {
      // The fused walk equals the intra-piece product plus the inter term.
      const j = piece();
      const o = intraForward(rows(r0!, j), rows(r1!, j), rows(r2!, j), lam, causal(ctx), ctx.block);
      writeRowsOf(
        w0!,
        j,
        step.params["prefix"] === true ? add(o, interForward(rows(r0!, j), store.one(r3!, j), lam)) : o,
      );
      return;
    }
    case "linear.backward_fused": {
      const j = piece();
      const [q, k, v, dout, ...states] = step.reads;
      const g = intraBackward(
        rows(q!, j),
        rows(k!, j),
        rows(v!, j),
        rows(dout!, j),
        lam,
        causal(ctx),
        ctx.block,
      );
      let dq = g.dq;
      let dk = g.dk;
      let dv = g.dv;
      if (step.params["prefix"] === true)
        dq = add(dq, dqInter(rows(dout!, j), store.one(states.shift()!, j), lam));
      if (step.params["suffix"] === true) {
        const t = dkdvInter(rows(k!, j), rows(v!, j), store.one(states.shift()!, j), lam);
        dk = add(dk, t.dk);
        dv = add(dv, t.dv);
      }
      writeRowsOf(w0!, j, dq);
      writeRowsOf(w1!, j, dk);
      writeRowsOf(w2!, j, dv);
      return;
    }
    case "host":
      // The program's projection: the executor is given q (and needs no weight gradient) from the start.
      return;
    case "linear.full":
    case "linear.full_backward":
    case "softmax.full":
    case "softmax.full_backward":
      return runFull(ctx, step);
    case "softmax.block": {
      const source = num(step, "source");
      const positions = rankPositions(plan, rank);
      const out = attendBlock(
        store.one(r0!),
        positions,
        blockInput(ctx, r1!, step),
        rankPositions(plan, source),
        blockInput(ctx, r2!, step),
        causal(ctx),
      );
      store.set(w0!, source, out.o);
      store.set(w1!, source, out.lse);
      return;
    }
    case "softmax.merge": {
      const sources = String(step.params["sources"]).split(",").map(Number);
      const merged = mergeLse(sources.map((s) => ({ o: store.one(r0!, s), lse: store.one(r1!, s) })));
      store.set(w0!, 0, merged.o);
      store.set(w1!, 0, merged.lse);
      return;
    }
    case "softmax.block_backward": {
      const source = num(step, "source");
      const slot = typeof step.params["slot"] === "number" ? step.params["slot"] : source;
      const g = attendBlockBackward(
        store.one(r0!),
        rankPositions(plan, rank),
        blockInput(ctx, r1!, step),
        rankPositions(plan, source),
        blockInput(ctx, r2!, step),
        store.one(r3!),
        store.one(r4!),
        store.one(r5!),
        causal(ctx),
      );
      // dK, dV go to the block's slot of a per-block buffer, or to a buffer of the rank's own block alone.
      const into = (name: string): number => (store.decl(name).slots === undefined ? 0 : slot);
      addInto(store.slots(w0!)[0]!, g.dq);
      addInto(store.slots(w1!)[into(w1!)]!, g.dk);
      addInto(store.slots(w2!)[into(w2!)]!, g.dv);
      return;
    }
    case "copy": {
      const from = step.params["from"];
      const to = step.params["to"];
      step.reads.forEach((src, i) => {
        const value = typeof from === "number" ? store.one(src, from) : store.one(src);
        store.set(step.writes[i]!, typeof to === "number" ? to : 0, value);
      });
      return;
    }
    case "fill_zero":
      for (const name of step.writes) {
        const decl = store.decl(name);
        for (let s = 0; s < (decl.slots ?? 1); s++) store.set(name, s, zeros(slotShape(decl)));
      }
      return;
    case "add": {
      step.writes.forEach((name, i) => {
        const sum = zeros(slotShape(store.decl(name)));
        addInto(sum, store.one(step.reads[2 * i]!));
        addInto(sum, store.one(step.reads[2 * i + 1]!));
        store.set(name, 0, sum);
      });
      return;
    }
    case "accumulate": {
      const all = store.get(r0!);
      const sum = zeros(all[0]!.shape);
      for (const t of all) addInto(sum, t);
      store.set(w0!, 0, sum);
      return;
    }
    case "pack":
    case "unpack":
      return runMovement(ctx, step);
  }
}

/** Heads each write buffer takes per shard, from its declared shape. */
function headsOf(ctx: OpContext, name: string): number {
  const shape = slotShape(ctx.store.decl(name));
  return shape[1]!;
}

/** Ulysses data movement between token shards and head shards. */
function runMovement(ctx: OpContext, step: ComputeStep): void {
  const { store, plan } = ctx;
  const W = plan.ranks;
  const layout = step.params["layout"];
  const dest = step.writes[0]!;
  if (step.op === "pack" && layout === "heads") {
    // For each destination r: its head shard of every read buffer, joined along the head axis.
    for (let r = 0; r < W; r++) {
      const parts = step.reads.map((name) => {
        const t = store.one(name);
        const h = t.shape[1]! / W;
        return sliceHeads(t, r * h, (r + 1) * h);
      });
      store.set(dest, r, concatHeads(parts));
    }
    return;
  }
  if (step.op === "pack" && layout === "tokens") {
    // For each destination r: the rows at r's global positions, of every read buffer, joined along heads.
    for (let r = 0; r < W; r++) {
      const positions = rankPositions(plan, r);
      store.set(dest, r, concatHeads(step.reads.map((name) => gatherRows(store.one(name), positions))));
    }
    return;
  }
  const recv = store.get(step.reads[0]!);
  if (step.op === "unpack" && layout === "sequence") {
    // recv[s] holds rank s's tokens for this rank's head shard: place them at their global positions.
    let h0 = 0;
    for (const name of step.writes) {
      const h = headsOf(ctx, name);
      const full = store.slots(name)[0]!;
      for (let s = 0; s < W; s++) scatterRows(full, rankPositions(plan, s), sliceHeads(recv[s]!, h0, h0 + h));
      h0 += h;
    }
    return;
  }
  if (step.op === "unpack" && layout === "heads") {
    // recv[s] holds head shard s of this rank's tokens: join the shards along the head axis.
    let h0 = 0;
    for (const name of step.writes) {
      const h = headsOf(ctx, name) / W;
      store.set(name, 0, concatHeads(recv.map((t) => sliceHeads(t, h0, h0 + h))));
      h0 += h;
    }
    return;
  }
  throw new Error(`${step.op} with layout ${String(layout)} is not defined`);
}

/** Whole-sequence attention on one rank's head shard (Ulysses). */
function runFull(ctx: OpContext, step: ComputeStep): void {
  const { store } = ctx;
  const heads = { start: num(step, "headStart"), count: num(step, "heads") };
  const [q, k, v] = step.reads.slice(0, 3).map((n) => store.one(n)) as [Tensor, Tensor, Tensor];
  const N = q.shape[0]!;
  const positions = Array.from({ length: N }, (_, i) => i);
  switch (step.op) {
    case "linear.full":
      store.set(step.writes[0]!, 0, linearAttentionForward(q, k, v, decay(ctx, heads), causal(ctx)));
      return;
    case "linear.full_backward": {
      const g = linearAttentionBackward(q, k, v, store.one(step.reads[3]!), decay(ctx, heads), causal(ctx));
      [g.dq, g.dk, g.dv].forEach((t, i) => store.set(step.writes[i]!, 0, t));
      return;
    }
    case "softmax.full": {
      const out = softmaxAttentionForward(q, positions, k, positions, v, causal(ctx));
      store.set(step.writes[0]!, 0, out.o);
      store.set(step.writes[1]!, 0, out.lse);
      return;
    }
    case "softmax.full_backward": {
      const g = softmaxAttentionBackward(
        q,
        positions,
        k,
        positions,
        v,
        store.one(step.reads[5]!),
        causal(ctx),
      );
      [g.dq, g.dk, g.dv].forEach((t, i) => store.set(step.writes[i]!, 0, t));
      return;
    }
  }
}
