// Shared by the softmax strategies: buffers, which key blocks a rank's queries can see (the causal mask
// from global positions), and the cost of one flash-attention block.
import type { SoftmaxAttentionKind } from "../spec/resolved.js";
import {
  activation,
  causalPairs,
  localTokensOf,
  piecesOf,
  rowBytes,
  STATE_BYTES,
  type LowerContext,
} from "./context.js";
import type { RankBuilder } from "./builder.js";
import type { BufferDecl } from "./ir.js";
import type { Cost } from "./linear-costs.js";

/** (query, key) pairs rank `queries` computes against the keys of rank `keys`. */
export function visiblePairs(
  ctx: LowerContext,
  layer: SoftmaxAttentionKind,
  queries: number,
  keys: number,
): number {
  const qs = piecesOf(ctx, queries);
  const ks = piecesOf(ctx, keys);
  let pairs = 0;
  for (const q of qs) for (const k of ks) pairs += layer.causal ? causalPairs(q, k) : q.length * k.length;
  return pairs;
}

/**
 * The pairs a block's kernel computes: visiblePairs less those across documents (the kernels mask them and
 * skip what no query sees), counted on the table the schedule was lowered with. Costs only: which blocks a
 * schedule has never depends on it, since the program's documents change with every step.
 */
export function workPairs(
  ctx: LowerContext,
  layer: SoftmaxAttentionKind,
  queries: number,
  keys: number,
): number {
  if (ctx.documents === undefined) return visiblePairs(ctx, layer, queries, keys);
  const documents = documentSpans(ctx.documents.boundaries, ctx.sizes.seqLen);
  let pairs = 0;
  for (const q of piecesOf(ctx, queries))
    for (const k of piecesOf(ctx, keys))
      for (const doc of documents) {
        const qd = intersect(q, doc);
        const kd = intersect(k, doc);
        if (qd.length === 0 || kd.length === 0) continue;
        pairs += layer.causal ? causalPairs(qd, kd) : qd.length * kd.length;
      }
  return pairs;
}

/** The documents' token runs: [0, b0], [b0 + 1, b1], ..., up to the sequence's end. */
function documentSpans(boundaries: readonly number[], seqLen: number): { start: number; length: number }[] {
  const starts = [0, ...boundaries.map((b) => b + 1)];
  return starts
    .map((start, i) => ({ start, length: (i < boundaries.length ? boundaries[i]! + 1 : seqLen) - start }))
    .filter((d) => d.length > 0);
}

function intersect(
  a: { start: number; length: number },
  b: { start: number; length: number },
): { start: number; length: number } {
  const start = Math.max(a.start, b.start);
  return { start, length: Math.max(0, Math.min(a.start + a.length, b.start + b.length) - start) };
}

/** Flash attention over `pairs` (query, key) pairs: QK^T and PV, 4d FLOPs per pair per head. */
export function blockCost(
  ctx: LowerContext,
  pairs: number,
  tokens: number,
  kvTokens: number,
  layer: SoftmaxAttentionKind,
): Cost {
  const { batch, heads, headDim } = ctx.sizes;
  return {
    flops: batch * heads * pairs * 4 * headDim,
    bytes: 2 * rowBytes(ctx, tokens) + 2 * rowBytes(ctx, kvTokens, layer.kvHeads),
  };
}

/** Backward: five products instead of two, 2.5 times the forward FLOPs. */
export function blockBackwardCost(
  ctx: LowerContext,
  pairs: number,
  tokens: number,
  kvTokens: number,
  layer: SoftmaxAttentionKind,
): Cost {
  const forward = blockCost(ctx, pairs, tokens, kvTokens, layer);
  return { flops: 2.5 * forward.flops, bytes: 2 * forward.bytes };
}

export function kvActivation(
  ctx: LowerContext,
  layer: SoftmaxAttentionKind,
  name: string,
  doc: string,
  input = false,
): BufferDecl {
  return activation(ctx, name, doc, layer.kvHeads, input);
}

/** Log-sum-exp statistics [count, B, L, H] in fp32. */
export function lseBuffer(
  ctx: LowerContext,
  name: string,
  count: number,
  doc: string,
  input = false,
): BufferDecl {
  const [batch, tokens, heads] = activation(ctx, "x", "").shape;
  const decl: BufferDecl = {
    name,
    shape: [count, batch!, tokens!, heads!],
    slots: count,
    dtype: "fp32",
    doc,
  };
  if (input) decl.input = true;
  return decl;
}

/** fp32 partial outputs [count, B, L, H, d]. */
export function partials(ctx: LowerContext, name: string, count: number, doc: string): BufferDecl {
  return { name, shape: [count, ...activation(ctx, "x", "").shape], slots: count, dtype: "fp32", doc };
}

/** fp32 accumulators for gradients of gathered keys/values [count, B, L, Hkv, d]. */
export function kvGradients(
  ctx: LowerContext,
  layer: SoftmaxAttentionKind,
  name: string,
  count: number,
  doc: string,
): BufferDecl {
  return {
    name,
    shape: [count, ...kvActivation(ctx, layer, "x", "").shape],
    slots: count,
    dtype: "fp32",
    doc,
  };
}

/** fp32 accumulator of dQ over the key blocks [B, L, H, d]; cast to the activation type once at the end. */
export function dqAccumulator(ctx: LowerContext): BufferDecl {
  return { ...activation(ctx, "dq_acc", "fp32 sum of dQ over the key blocks"), dtype: "fp32" };
}

/** fp32 [B, L, Hkv, d]: a rank's own summed key or value gradient before the cast. */
export function kvSum(ctx: LowerContext, layer: SoftmaxAttentionKind, name: string, doc: string): BufferDecl {
  return { ...kvActivation(ctx, layer, name, doc), dtype: "fp32" };
}

/** The step that turns the summed fp32 dQ into the layer's dQ, after every block's backward. */
export function castDq(
  ctx: LowerContext,
  b: RankBuilder,
  dqAcc: string,
  dq: string,
  after: number[],
): number {
  const L = localTokensOf(ctx);
  return b.compute(
    "copy",
    "dQ to the activation type",
    { src: [dqAcc], dst: [dq] },
    { flops: 0, bytes: 3 * rowBytes(ctx, L) },
    {},
    after,
  );
}

export function mergeCost(ctx: LowerContext, count: number): Cost {
  const [batch, tokens, heads, d] = activation(ctx, "x", "").shape as [number, number, number, number];
  return {
    flops: 4 * count * batch * tokens * heads * d,
    bytes: (count + 1) * batch * tokens * heads * (d + 1) * STATE_BYTES,
  };
}
