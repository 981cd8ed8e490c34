// FLOPs and bytes of the linear-attention steps, per rank, for one piece of C tokens (all batch and
// heads). A matrix product of m x k by k x n is 2mkn FLOPs. Shared by every linear strategy.
import { rowBytes, stateBytes, type LowerContext, type SizesContext } from "./context.js";

export interface Cost {
  flops: number;
  bytes: number;
}

function bh(ctx: SizesContext): number {
  return ctx.sizes.batch * ctx.sizes.heads;
}

/** M = K^T V: C x d x d per head; reads K, V, writes one state. */
export function stateCost(ctx: SizesContext, C: number): Cost {
  const d = ctx.sizes.headDim;
  return { flops: bh(ctx) * 2 * C * d * d, bytes: 2 * rowBytes(ctx, C) + stateBytes(ctx) };
}

/** The chunk algorithm inside a piece: per block QK^T, (.)V, Q S, and the block state K^T V. */
export function intraCost(ctx: SizesContext, C: number): Cost {
  const d = ctx.sizes.headDim;
  const b = Math.min(ctx.sizes.block, C);
  const blocks = C / b;
  return { flops: bh(ctx) * blocks * (4 * b * b * d + 4 * b * d * d), bytes: 4 * rowBytes(ctx, C) };
}

/** Backward of the chunk algorithm: about twice the forward products (dQ, dK, dV). */
export function intraBackwardCost(ctx: SizesContext, C: number): Cost {
  const forward = intraCost(ctx, C);
  return { flops: 2 * forward.flops, bytes: 7 * rowBytes(ctx, C) };
}

/** q P (or do P^T, or v G^T and k G): C x d x d per head. */
export function interCost(ctx: SizesContext, C: number, products = 1): Cost {
  const d = ctx.sizes.headDim;
  return {
    flops: products * bh(ctx) * 2 * C * d * d,
    bytes: (2 * products + 1) * rowBytes(ctx, C) + stateBytes(ctx),
  };
}

/** The fused walk: the intra-piece product with the prefix term added inside (no second pass over q, o). */
export function forwardFusedCost(ctx: SizesContext, C: number, prefix: boolean): Cost {
  const intra = intraCost(ctx, C);
  const d = ctx.sizes.headDim;
  return {
    flops: intra.flops + (prefix ? bh(ctx) * 2 * C * d * d : 0),
    bytes: intra.bytes + stateBytes(ctx),
  };
}

/** The fused backward: the intra-piece gradients with the P and G terms added inside. */
export function backwardFusedCost(ctx: SizesContext, C: number, prefix: boolean, suffix: boolean): Cost {
  const intra = intraBackwardCost(ctx, C);
  const d = ctx.sizes.headDim;
  const products = (prefix ? 1 : 0) + (suffix ? 2 : 0);
  return {
    flops: intra.flops + products * bh(ctx) * 2 * C * d * d,
    bytes: intra.bytes + 2 * stateBytes(ctx),
  };
}

/**
 * A projection of the layer that a `host` step stands for: rows x hidden by hidden x (heads x headDim),
 * reading both and writing the product.
 */
export function projectionCost(ctx: LowerContext): Cost {
  const { batch, heads, headDim, hidden, elementBytes } = ctx.sizes;
  const rows = batch * ctx.plan.byRank[0]!.reduce((s, p) => s + p.length, 0);
  const width = heads * headDim;
  return {
    flops: 2 * rows * hidden * width,
    bytes: (rows * hidden + hidden * width + rows * width) * elementBytes,
  };
}

/** A weighted sum of `terms` states. */
export function prefixCost(ctx: SizesContext, terms: number): Cost {
  const d = ctx.sizes.headDim;
  return { flops: bh(ctx) * 2 * terms * d * d, bytes: (terms + 1) * stateBytes(ctx) };
}

/** Whole-sequence linear attention on `heads` heads (Ulysses), forward. */
export function fullCost(ctx: SizesContext, tokens: number, heads: number): Cost {
  const d = ctx.sizes.headDim;
  const b = Math.min(ctx.sizes.block, tokens);
  const per = (tokens / b) * (4 * b * b * d + 4 * b * d * d);
  const bytes = (4 * rowBytes(ctx, tokens, heads)) / 1;
  return { flops: ctx.sizes.batch * heads * per, bytes };
}
