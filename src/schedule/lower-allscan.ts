// All-Scan (ZeCO 2025; docs/ALLSCAN.md): LASP-1's prefix chain with every state split into K blocks of rows,
// so the chain pipelines: rank t combines block k (P_next = lam^C P + M, elementwise, so exact block by
// block) and sends it on while block k+1 is still on its way in. The chain runs on the communication stream
// beside the intra-piece work on the compute stream; the backward suffix chain of G is its mirror. Causal
// layers only (the checker refuses bidirectional ones: each of their tokens needs the whole sum, which
// LASP-2's AllReduce gives in one step).
import type { LinearAttentionKind } from "../spec/resolved.js";
import type { LowerContext } from "./context.js";
import type { RowBlock } from "./ir.js";
import { lowerChain } from "./lower-lasp1.js";

export function lowerAllScan(ctx: LowerContext, layer: LinearAttentionKind) {
  const blocks = scanBlocks(ctx.sizes.headDim, ctx.scanBlocks);
  // One block is the whole state: the steps say so without `rows`, as LASP-1's do (and compile as theirs).
  return lowerChain(ctx, layer, blocks.length === 1 ? [undefined] : blocks, true);
}

/** The K blocks of a state's dk rows, in order; K must divide dk (the checker's rule E0518). */
export function scanBlocks(headDim: number, K: number): RowBlock[] {
  if (!Number.isInteger(K) || K < 1 || headDim % K !== 0)
    throw new Error(`All-Scan: ${K} blocks do not divide the head dim ${headDim}`);
  const count = headDim / K;
  return Array.from({ length: K }, (_, n) => ({ start: n * count, count }));
}
