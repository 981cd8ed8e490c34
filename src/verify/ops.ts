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
  blockNeeded,
  documentMask,
  linearAttentionBackwardDocs,
  linearAttentionForwardDocs,
  softmaxAttentionBackwardDocs,
  softmaxAttentionForwardDocs,
} from "../reference/documents.js";
import {
  bidirInterDocs,
  dkdvInterDocs,
  dqInterDocs,
  hasBoundary,
  interForwardDocs,
  intraBackwardDocs,
  intraForwardDocs,
  localBoundaries,
  pieceGradStateDocs,
  pieceHeadStateDocs,
  pieceStateDocs,
  pieceTailStateDocs,
  prefixForPieceDocs,
  ringStepDocs,
  suffixForPieceDocs,
} from "../reference/linear-documents.js";
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
  clone,
  concatHeads,
  gatherRows,
  scatterRows,
  sliceRows,
  writeRows as writeTensorRows,
  sliceHeads,
  sub,
  type Tensor,
  zeros,
} from "../reference/tensor.js";
import { handleOp, type ComputeStep, type LayoutPlan, type OpHandlers } from "../schedule/ir.js";
import type { HeadShard, RowBlock } from "../schedule/ops.js";
import { rankPositions } from "../schedule/layout.js";
import type { LayerKind } from "../spec/resolved.js";
import { pieceRows, slotShape, stateRows, writePieceRows, type RankStore } from "./store.js";

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

/** Every document boundary (global positions) from the step's `ends` operand: 1 where a document ends. */
function boundaries(ctx: OpContext, ends: string): number[] {
  const flags = ctx.store.one(ends).data;
  const out: number[] = [];
  for (let i = 0; i < flags.length; i++) if (flags[i] !== 0) out.push(i);
  return out;
}

/** The boundaries inside local piece j, as indices into the piece; undefined without documents. */
function localEnds(ctx: OpContext, ends: string | undefined, j: number): number[] | undefined {
  if (ends === undefined) return undefined;
  return localBoundaries(boundaries(ctx, ends), ctx.plan.byRank[ctx.rank]![j]!);
}

/** The one-element flag of a piece: 1 if a document ends inside it. */
function flagTensor(local: readonly number[]): Tensor {
  const t = zeros([1]);
  t.data[0] = hasBoundary(local) ? 1 : 0;
  return t;
}

/** A piece's prefix (P) or suffix (G) state from the exchanged states, as its mode says. */
function combine(ctx: OpContext, step: ComputeStep<"linear.prefix" | "linear.suffix">, out: string): void {
  const { store, plan, rank } = ctx;
  const j = step.params.piece;
  const { gathered, flags, total, own } = step.operands;
  const target = plan.byRank[rank]![j]!;
  if (step.params.mode === "zero") store.set(out, j, zeros(slotShape(store.decl(out))));
  else if (step.params.mode === "others") store.set(out, j, sub(store.one(total!), store.one(own!, j)));
  else {
    // Gathered states (and flags) arrive rank-major; put them in global piece order for the scans.
    const perRank = plan.byRank[0]!.length;
    const inOrder = <T>(all: T[]): T[] =>
      plan.pieces.map((p) => all[p.rank * perRank + plan.byRank[p.rank]!.indexOf(p)]!);
    const ordered = inOrder(store.get(gathered!));
    if (flags !== undefined) {
      const carriesZero = inOrder(store.get(flags)).map((f) => f.data[0] !== 0);
      const scan = step.op === "linear.prefix" ? prefixForPieceDocs : suffixForPieceDocs;
      store.set(out, j, scan(ordered, carriesZero, plan.pieces, target.index, decay(ctx)));
      return;
    }
    const fn = step.op === "linear.prefix" ? prefixForPiece : suffixForPiece;
    store.set(out, j, fn(ordered, plan.pieces, target.index, decay(ctx)));
  }
}

/**
 * LASP-1's hand-on (forward) or hand-back (backward): out = lam^C state + own, in piece j's slots; with
 * documents out = c state + own, c = 0 if a document ends inside the piece (the scan's step either way).
 */
function ring(
  ctx: OpContext,
  step: ComputeStep<"linear.ring_forward" | "linear.ring_backward">,
  [state, own, out]: [string, string, string],
  j: number,
): void {
  const piece = ctx.plan.byRank[ctx.rank]![j]!;
  const [S, M] = [ctx.store.one(state, j), ctx.store.one(own, j)];
  const local = localEnds(ctx, step.operands.ends, j);
  const fn = step.op === "linear.ring_forward" ? ringStep : ringStepBackward;
  const result =
    local !== undefined
      ? ringStepDocs(S, M, decay(ctx), piece, hasBoundary(local))
      : fn(S, M, decay(ctx), piece.length);
  // All-Scan: the step is elementwise, so the block's rows of the whole step are the block's step; the rows
  // of S not yet received do not reach them.
  const { rows } = step.params;
  if (rows === undefined) ctx.store.set(out, j, result);
  else ctx.store.setRows(out, j, rows, stateRows(result, rows));
}

/** The piece's own product (chunk walk), with a reset at each boundary when there are documents. */
function intra(
  ctx: OpContext,
  step: ComputeStep<"linear.intra" | "linear.forward_fused">,
  j: number,
): Tensor {
  const { q, k, v, ends } = step.operands;
  const [Q, K, V] = [rows(ctx, q, j), rows(ctx, k, j), rows(ctx, v, j)];
  const local = localEnds(ctx, ends, j);
  return local === undefined
    ? intraForward(Q, K, V, decay(ctx), step.params.causal, ctx.block)
    : intraForwardDocs(Q, K, V, decay(ctx), step.params.causal, local, ctx.block);
}

/** lam^(i+1) q_i P, for the rows before the piece's first boundary when there are documents. */
function inter(
  ctx: OpContext,
  { q, p, after, ends }: { q: string; p: string; after?: string; ends?: string },
  j: number,
): Tensor {
  const local = localEnds(ctx, ends, j);
  const [Q, P] = [rows(ctx, q, j), ctx.store.one(p, j)];
  if (after !== undefined)
    return bidirInterDocs(Q, P, ctx.store.one(after, j), documented(local, after), false);
  return local === undefined ? interForward(Q, P, decay(ctx)) : interForwardDocs(Q, P, decay(ctx), local);
}

/** The piece's boundaries where an operand only documents have (`after`, `before`) is given. */
function documented(local: number[] | undefined, operand: string): number[] {
  if (local === undefined) throw new Error(`operand ${operand} needs the document ends (operand ends)`);
  return local;
}

function intraGrads(
  ctx: OpContext,
  step: ComputeStep<"linear.intra_backward" | "linear.backward_fused">,
  j: number,
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const { q, k, v, dout, ends } = step.operands;
  const [Q, K, V, dO] = [rows(ctx, q, j), rows(ctx, k, j), rows(ctx, v, j), rows(ctx, dout, j)];
  const local = localEnds(ctx, ends, j);
  return local === undefined
    ? intraBackward(Q, K, V, dO, decay(ctx), step.params.causal, ctx.block)
    : intraBackwardDocs(Q, K, V, dO, decay(ctx), step.params.causal, local, ctx.block);
}

function dqTerm(
  ctx: OpContext,
  { dout, p, after, ends }: { dout: string; p: string; after?: string; ends?: string },
  j: number,
): Tensor {
  const local = localEnds(ctx, ends, j);
  const [dO, P] = [rows(ctx, dout, j), ctx.store.one(p, j)];
  if (after !== undefined)
    return bidirInterDocs(dO, P, ctx.store.one(after, j), documented(local, after), true);
  return local === undefined ? dqInter(dO, P, decay(ctx)) : dqInterDocs(dO, P, decay(ctx), local);
}

function dkdvTerm(
  ctx: OpContext,
  { k, v, g, before, ends }: { k: string; v: string; g: string; before?: string; ends?: string },
  j: number,
): { dk: Tensor; dv: Tensor } {
  const local = localEnds(ctx, ends, j);
  const [K, V, G] = [rows(ctx, k, j), rows(ctx, v, j), ctx.store.one(g, j)];
  if (before !== undefined) {
    // Bidirectional: keys of the first document take the earlier pieces' tails, of the last the later heads.
    const [B, docs] = [ctx.store.one(before, j), documented(local, before)];
    return { dk: bidirInterDocs(V, B, G, docs, true), dv: bidirInterDocs(K, B, G, docs, false) };
  }
  return local === undefined ? dkdvInter(K, V, G, decay(ctx)) : dkdvInterDocs(K, V, G, decay(ctx), local);
}

/** Whole-sequence boundaries of a step's `ends`, or undefined without documents. */
const wholeEnds = (ctx: OpContext, ends: string | undefined): number[] | undefined =>
  ends === undefined ? undefined : boundaries(ctx, ends);

/**
 * One handler per op of the catalogue (schedule/ops.ts). Placement (which collective a step overlaps, the
 * communicator, the SMs a GEMM leaves) is ignored: it changes when work runs, never what it computes.
 */
export const EXECUTOR_HANDLERS: OpHandlers<[OpContext], void> = {
  "linear.state": (step, ctx) => {
    const j = step.params.piece;
    const { k, v, ends, m, head, flag } = step.operands;
    const local = localEnds(ctx, ends, j);
    const [K, V] = [rows(ctx, k, j), rows(ctx, v, j)];
    ctx.store.set(
      m,
      j,
      local === undefined ? pieceState(K, V, decay(ctx)) : pieceStateDocs(K, V, decay(ctx), local),
    );
    if (head !== undefined) ctx.store.set(head, j, pieceHeadStateDocs(K, V, documented(local, head)));
    if (flag !== undefined) ctx.store.set(flag, j, flagTensor(local ?? []));
  },
  "linear.intra": (step, ctx) =>
    writeRows(ctx, step.operands.o, step.params.piece, intra(ctx, step, step.params.piece)),
  "linear.prefix": (step, ctx) => combine(ctx, step, step.operands.p),
  "linear.suffix": (step, ctx) => combine(ctx, step, step.operands.g),
  "linear.inter": (step, ctx) => {
    const j = step.params.piece;
    addRows(ctx, step.operands.o, j, inter(ctx, step.operands, j));
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
    const { q, dout, ends, dm, tail, flag } = step.operands;
    const local = localEnds(ctx, ends, j);
    const [Q, dO] = [rows(ctx, q, j), rows(ctx, dout, j)];
    const dM =
      local === undefined ? pieceGradState(Q, dO, decay(ctx)) : pieceGradStateDocs(Q, dO, decay(ctx), local);
    ctx.store.set(dm, j, dM);
    if (tail !== undefined) ctx.store.set(tail, j, pieceTailStateDocs(Q, dO, documented(local, tail)));
    if (flag !== undefined) ctx.store.set(flag, j, flagTensor(local ?? []));
  },
  "linear.intra_backward": (step, ctx) => {
    const j = step.params.piece;
    const { dq, dk, dv } = step.operands;
    const g = intraGrads(ctx, step, j);
    writeRows(ctx, dq, j, g.dq);
    writeRows(ctx, dk, j, g.dk);
    writeRows(ctx, dv, j, g.dv);
  },
  "linear.dq_inter": (step, ctx) => {
    const j = step.params.piece;
    addRows(ctx, step.operands.dq, j, dqTerm(ctx, step.operands, j));
  },
  "linear.dkdv_inter": (step, ctx) => {
    const j = step.params.piece;
    const { dk, dv } = step.operands;
    const t = dkdvTerm(ctx, step.operands, j);
    addRows(ctx, dk, j, t.dk);
    addRows(ctx, dv, j, t.dv);
  },
  "linear.forward_fused": (step, ctx) => {
    // The fused walk equals the intra-piece product plus the inter term.
    const j = step.params.piece;
    const { q, p, after, ends, o } = step.operands;
    const own = intra(ctx, step, j);
    const io = { q, ...(after !== undefined ? { after } : {}), ...(ends !== undefined ? { ends } : {}) };
    writeRows(ctx, o, j, p === undefined ? own : add(own, inter(ctx, { ...io, p }, j)));
  },
  "linear.backward_fused": (step, ctx) => {
    const j = step.params.piece;
    const { k, v, dout, p, after, g, before, ends, dq, dk, dv } = step.operands;
    const docs = ends !== undefined ? { ends } : {};
    let { dq: dQ, dk: dK, dv: dV } = intraGrads(ctx, step, j);
    if (p !== undefined)
      dQ = add(dQ, dqTerm(ctx, { dout, p, ...(after !== undefined ? { after } : {}), ...docs }, j));
    if (g !== undefined) {
      const t = dkdvTerm(ctx, { k, v, g, ...(before !== undefined ? { before } : {}), ...docs }, j);
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
    const { q, k, v, ends, o } = step.operands;
    const [Q, K, V] = [q, k, v].map((n) => ctx.store.one(n)) as [Tensor, Tensor, Tensor];
    const lam = decay(ctx, shardHeads(step.params));
    const docs = wholeEnds(ctx, ends);
    const out =
      docs === undefined
        ? linearAttentionForward(Q, K, V, lam, step.params.causal)
        : linearAttentionForwardDocs(Q, K, V, lam, step.params.causal, docs);
    ctx.store.set(o, 0, out);
  },
  "linear.full_backward": (step, ctx) => {
    const { q, k, v, dout, ends, dq, dk, dv } = step.operands;
    const [Q, K, V, dO] = [q, k, v, dout].map((n) => ctx.store.one(n)) as [Tensor, Tensor, Tensor, Tensor];
    const lam = decay(ctx, shardHeads(step.params));
    const docs = wholeEnds(ctx, ends);
    const g =
      docs === undefined
        ? linearAttentionBackward(Q, K, V, dO, lam, step.params.causal)
        : linearAttentionBackwardDocs(Q, K, V, dO, lam, step.params.causal, docs);
    ctx.store.set(dq, 0, g.dq);
    ctx.store.set(dk, 0, g.dk);
    ctx.store.set(dv, 0, g.dv);
  },
  "softmax.full": (step, ctx) => {
    const { q, k, v, ends, o, lse } = step.operands;
    const [Q, K, V] = [q, k, v].map((n) => ctx.store.one(n)) as [Tensor, Tensor, Tensor];
    const positions = everyPosition(Q);
    const docs = wholeEnds(ctx, ends);
    const out =
      docs === undefined
        ? softmaxAttentionForward(Q, positions, K, positions, V, step.params.causal)
        : softmaxAttentionForwardDocs(Q, positions, K, positions, V, step.params.causal, docs);
    ctx.store.set(o, 0, out.o);
    ctx.store.set(lse, 0, out.lse);
  },
  "softmax.full_backward": (step, ctx) => {
    const { q, k, v, dout, ends, dq, dk, dv } = step.operands;
    const [Q, K, V, dO] = [q, k, v, dout].map((n) => ctx.store.one(n)) as [Tensor, Tensor, Tensor, Tensor];
    const positions = everyPosition(Q);
    const docs = wholeEnds(ctx, ends);
    const g =
      docs === undefined
        ? softmaxAttentionBackward(Q, positions, K, positions, V, dO, step.params.causal)
        : softmaxAttentionBackwardDocs(Q, positions, K, positions, V, dO, step.params.causal, docs);
    ctx.store.set(dq, 0, g.dq);
    ctx.store.set(dk, 0, g.dk);
    ctx.store.set(dv, 0, g.dv);
  },
  "softmax.block": (step, ctx) => {
    const { store, plan, rank } = ctx;
    const { source, causal } = step.params;
    const { q, k, v, ends, o, lse } = step.operands;
    const [qPos, kPos] = [rankPositions(plan, rank), rankPositions(plan, source)];
    const docs = wholeEnds(ctx, ends);
    if (docs !== undefined && !blockNeeded(qPos, kPos, causal, docs)) {
      // No query's document reaches this block: the kernel skips it, leaving the merge's neutral element.
      const Q = store.one(q);
      const lseNone = zeros([Q.shape[0]!, Q.shape[1]!]);
      lseNone.data.fill(-Infinity);
      store.set(o, source, zeros(slotShape(store.decl(o))));
      store.set(lse, source, lseNone);
      return;
    }
    const out = attendBlock(
      store.one(q),
      qPos,
      blockInput(ctx, k, step.params),
      kPos,
      blockInput(ctx, v, step.params),
      docs === undefined ? causal : documentMask(causal, docs),
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
  "softmax.gathered": (step, ctx) => {
    const { o, lse } = step.operands;
    const { Q, qPos, K, kPos, V, mask } = gatheredInputs(ctx, step);
    const out = attendBlock(Q, qPos, K, kPos, V, mask);
    ctx.store.set(o, 0, out.o);
    ctx.store.set(lse, 0, out.lse);
  },
  "softmax.gathered_backward": (step, ctx) => {
    const { store } = ctx;
    const { o, lse, dout, dq, dk, dv } = step.operands;
    const { Q, qPos, K, kPos, V, mask } = gatheredInputs(ctx, step);
    const g = attendBlockBackward(Q, qPos, K, kPos, V, store.one(o), store.one(lse), store.one(dout), mask);
    store.set(dq, 0, g.dq);
    for (const [name, grad] of [
      [dk, g.dk],
      [dv, g.dv],
    ] as const) {
      const all = zeros(slotShape(store.decl(name)));
      writeTensorRows(all, 0, grad);
      store.set(name, 0, all);
    }
  },
  order: (step, ctx) => {
    const { store, plan } = ctx;
    const { to, rows } = step.params;
    step.operands.src.forEach((src, i) => {
      const dst = step.operands.dst[i]!;
      if (to === "global") {
        // Rows at positions >= rows stay as they were: nothing may read them.
        const out = clone(store.slots(dst)[0]!);
        for (let s = 0; s < plan.ranks; s++) {
          const positions = rankPositions(plan, s);
          const keep = positions.flatMap((p, local) => (p < rows ? [local] : []));
          scatterRows(
            out,
            keep.map((l) => positions[l]!),
            gatherRows(store.one(src, s), keep),
          );
        }
        store.set(dst, 0, out);
        return;
      }
      const global = store.one(src);
      for (let s = 0; s < plan.ranks; s++) {
        const positions = rankPositions(plan, s);
        const slot = zeros(slotShape(store.decl(dst)));
        const keep = positions.flatMap((p, local) => (p < rows ? [local] : []));
        scatterRows(
          slot,
          keep,
          gatherRows(
            global,
            keep.map((l) => positions[l]!),
          ),
        );
        store.set(dst, s, slot);
      }
    });
  },
  "softmax.block_backward": (step, ctx) => {
    const { store, plan, rank } = ctx;
    const { source, causal } = step.params;
    const { q, k, v, o, lse, dout, ends, dq, dk, dv } = step.operands;
    const [qPos, kPos] = [rankPositions(plan, rank), rankPositions(plan, source)];
    const docs = wholeEnds(ctx, ends);
    // A block no query's document reaches is skipped: it adds nothing to dQ, dK or dV.
    if (docs !== undefined && !blockNeeded(qPos, kPos, causal, docs)) return;
    const g = attendBlockBackward(
      store.one(q),
      qPos,
      blockInput(ctx, k, step.params),
      kPos,
      blockInput(ctx, v, step.params),
      store.one(o),
      store.one(lse),
      store.one(dout),
      docs === undefined ? causal : documentMask(causal, docs),
    );
    // dK, dV go to the block's slot of a per-block buffer, or to a buffer of the rank's own block alone.
    const slot = step.params.slot ?? source;
    const into = (name: string): number => (store.decl(name).slots === undefined ? 0 : slot);
    addInto(store.slots(dq)[0]!, g.dq);
    addInto(store.slots(dk)[into(dk)]!, g.dk);
    addInto(store.slots(dv)[into(dv)]!, g.dv);
  },
  copy: (step, ctx) => {
    const { from, to, rows } = step.params;
    step.operands.src.forEach((src, i) => {
      const value = from === undefined ? ctx.store.one(src) : ctx.store.one(src, from);
      const dst = step.operands.dst[i]!;
      ctx.store.set(
        dst,
        to ?? 0,
        rows === undefined ? value : withRows(ctx.store.one(dst, to ?? 0), value, rows),
      );
    });
  },
  fill_zero: (step, ctx) => {
    for (const name of step.operands.dst) {
      const decl = ctx.store.decl(name);
      for (let s = 0; s < (decl.slots ?? 1); s++) ctx.store.set(name, s, zeros(slotShape(decl)));
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
/**
 * What a gathered step attends with: the rank's queries at their positions, and only keys [0, keyRows) of the
 * global-order K, V (a keyRows short of what a query sees fails verify).
 */
function gatheredInputs(ctx: OpContext, step: ComputeStep<"softmax.gathered" | "softmax.gathered_backward">) {
  const { store, plan, rank } = ctx;
  const { causal, keyRows } = step.params;
  const { q, k, v, ends } = step.operands;
  const docs = wholeEnds(ctx, ends);
  return {
    Q: store.one(q),
    qPos: rankPositions(plan, rank),
    K: sliceRows(store.one(k), 0, keyRows),
    kPos: firstPositions(keyRows),
    V: sliceRows(store.one(v), 0, keyRows),
    mask: docs === undefined ? causal : documentMask(causal, docs),
  };
}

const everyPosition = (t: Tensor): number[] => firstPositions(t.shape[0]!);
const firstPositions = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

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
  const replicas = step.params.replicas;
  for (let r = 0; r < W; r++) {
    const shards =
      step.params.layout === "heads"
        ? // Destination r's head shard of every part, joined along the head axis; a part whose heads R
          // ranks share gives r its head floor(r / R).
          parts.map((name, i) => {
            const t = store.one(name);
            const R = replicas?.[i] ?? 1;
            if (R > 1) return sliceHeads(t, Math.floor(r / R), Math.floor(r / R) + 1);
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
  for (const [i, name] of step.operands.parts.entries()) {
    const R = step.params.replicas?.[i] ?? 1;
    if (R > 1 && step.params.layout === "heads") {
      // recv[s] holds source s's partial of its kv head floor(s / R) for this rank's tokens: slot s mod R.
      const kv = headsOf(ctx, name);
      for (let slot = 0; slot < R; slot++)
        store.set(
          name,
          slot,
          concatHeads(Array.from({ length: kv }, (_, g) => sliceHeads(recv[g * R + slot]!, h0, h0 + 1))),
        );
      h0 += 1;
    } else if (step.params.layout === "sequence") {
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

/**
 * `into` with rows `rows.start .. + count` of every d x d state (the last two dims) taken from `from`: All-Scan's
 * copy of one block at the zigzag turn. A new tensor; the other rows are `into`'s.
 */
function withRows(into: Tensor, from: Tensor, rows: RowBlock): Tensor {
  const shape = into.shape;
  const dk = shape[shape.length - 2]!;
  const dv = shape[shape.length - 1]!;
  const out = { shape: [...shape], data: Float64Array.from(into.data) } as Tensor;
  for (let s = 0; s < into.data.length / (dk * dv); s++)
    for (let r = rows.start; r < rows.start + rows.count; r++)
      for (let c = 0; c < dv; c++) {
        const at = (s * dk + r) * dv + c;
        out.data[at] = from.data[at]!;
      }
  return out;
}
