// What every lowering pass needs: the layout, the sizes and the sequence-parallel group; plus the buffer
// shapes and cost formulas they share, so the passes only describe their schedule.
import type { BufferDecl, DocumentTable, LayoutPlan, Piece, RankProgram, ScheduleSizes } from "./ir.js";
import { localTokens } from "./layout.js";

export interface LowerContext {
  plan: LayoutPlan;
  sizes: ScheduleSizes;
  /** Overlap communication with independent computation (the spec's `overlap`). */
  overlap: boolean;
  /** Ranks of the sequence-parallel group, 0 .. W-1. */
  group: number[];
  /** How LASP-2 arranges a pass (lower-lasp2.ts): fused walks beside a projection, or split inter steps. */
  lasp2: "fused" | "split";
  /** Packed documents: attention stops at their boundaries (absent with `documents none`). */
  documents?: DocumentTable;
  /** All-Scan's blocks K (lower-allscan.ts): a divisor of the head dim. */
  scanBlocks: number;
}

export function makeContext(
  plan: LayoutPlan,
  sizes: ScheduleSizes,
  overlap: boolean,
  lasp2: "fused" | "split" = "fused",
  documents?: DocumentTable,
  scanBlocks = 1,
): LowerContext {
  const ctx: LowerContext = {
    plan,
    sizes,
    overlap,
    group: Array.from({ length: plan.ranks }, (_, r) => r),
    lasp2,
    scanBlocks,
  };
  if (documents !== undefined) ctx.documents = documents;
  return ctx;
}

/** The per-piece flag buffers (1 if a document ends inside) gathered beside the states, with documents. */
export function flagBuffer(ctx: LowerContext, name: string, count: number, doc: string): BufferDecl {
  return { name, shape: [count, ctx.sizes.batch, 1], slots: count, dtype: "fp32", doc };
}

export const STATE_BYTES = 4; // states, statistics and partials are fp32

/** Activation buffer [B, L, heads, d] of one rank. */
export function activation(
  ctx: LowerContext,
  name: string,
  doc: string,
  heads = ctx.sizes.heads,
  input = false,
): BufferDecl {
  const decl: BufferDecl = {
    name,
    shape: [ctx.sizes.batch, localTokens(ctx.plan), heads, ctx.sizes.headDim],
    dtype: ctx.sizes.dtype,
    doc,
  };
  if (input) decl.input = true;
  return decl;
}

/** `count` fp32 states [count, B, H, dk, dv]. */
export function states(
  ctx: LowerContext,
  name: string,
  count: number,
  doc: string,
  input = false,
): BufferDecl {
  const { batch, heads, headDim } = ctx.sizes;
  const decl: BufferDecl = {
    name,
    shape: [count, batch, heads, headDim, headDim],
    slots: count,
    dtype: "fp32",
    doc,
  };
  if (input) decl.input = true;
  return decl;
}

/** Elements of a buffer, all slots together. */
export function elementsOf(decl: BufferDecl): number {
  return decl.shape.reduce((a, b) => a * b, 1);
}

export function bytesOf(decl: BufferDecl): number {
  return (
    elementsOf(decl) *
    (decl.dtype === "fp32" ? STATE_BYTES : decl.dtype === "bf16" || decl.dtype === "fp16" ? 2 : 4)
  );
}

/** One fp32 state of the whole batch and all heads: B * H * dk * dv * 4 bytes. */
/** What the byte and FLOP counts read of a context: its sizes alone (calibrate builds one without a layout). */
export type SizesContext = Pick<LowerContext, "sizes">;

export function stateBytes(ctx: SizesContext): number {
  const { batch, heads, headDim } = ctx.sizes;
  return batch * heads * headDim * headDim * STATE_BYTES;
}

/** Bytes of `tokens` rows of `heads` heads in the activation dtype. */
export function rowBytes(ctx: SizesContext, tokens: number, heads = ctx.sizes.heads): number {
  return ctx.sizes.batch * tokens * heads * ctx.sizes.headDim * ctx.sizes.elementBytes;
}

export function piecesOf(ctx: LowerContext, rank: number): Piece[] {
  return ctx.plan.byRank[rank]!;
}

/** Number of (query, key) pairs with key position <= query position between two position intervals. */
export function causalPairs(
  q: { start: number; length: number },
  k: { start: number; length: number },
): number {
  let pairs = 0;
  // Sum over queries of visible keys, in closed form per query run: min(max(qpos - kstart + 1, 0), klen).
  const qEnd = q.start + q.length;
  const kEnd = k.start + k.length;
  // Queries before the key run see nothing; after it, all keys.
  const full = Math.max(0, qEnd - Math.max(q.start, kEnd - 1));
  pairs += full * k.length;
  const rampStart = Math.max(q.start, k.start);
  const rampEnd = Math.min(qEnd, kEnd - 1); // exclusive: queries in [rampStart, rampEnd) see qpos - kstart + 1 keys
  const count = Math.max(0, rampEnd - rampStart);
  pairs += count * (rampStart - k.start + 1) + (count * (count - 1)) / 2;
  return pairs;
}

/** Tokens each rank holds (all ranks hold the same number). */
export function localTokensOf(ctx: LowerContext): number {
  return localTokens(ctx.plan);
}

/** A strategy's two passes: the per-rank builders run for every rank of the group. */
export function perRank<L>(
  ctx: LowerContext,
  layer: L,
  forward: (ctx: LowerContext, layer: L, rank: number) => RankProgram,
  backward: (ctx: LowerContext, layer: L, rank: number) => RankProgram,
): { forward: RankProgram[]; backward: RankProgram[] } {
  return {
    forward: ctx.group.map((rank) => forward(ctx, layer, rank)),
    backward: ctx.group.map((rank) => backward(ctx, layer, rank)),
  };
}
