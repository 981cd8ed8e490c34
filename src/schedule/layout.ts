// The token layout: which global positions each rank of the sequence-parallel group holds.
// Contiguous: rank r holds piece r of W. Zigzag: 2W pieces, rank r holds pieces r and 2W-1-r, which
// balances causal softmax work; every layer uses the same plan, linear layers included.
import type { Layout } from "../spec/resolved.js";
import type { LayoutPlan, Piece } from "./ir.js";

export function planLayout(layout: Layout, ranks: number, seqLen: number): LayoutPlan {
  const count = layout === "zigzag" ? 2 * ranks : ranks;
  if (seqLen % count !== 0) throw new Error(`seq_len ${seqLen} does not split into ${count} pieces`);
  const length = seqLen / count;
  const owner = (index: number): number =>
    layout === "zigzag" && index >= ranks ? 2 * ranks - 1 - index : index;
  const pieces: Piece[] = Array.from({ length: count }, (_, index) => ({
    index,
    rank: owner(index),
    start: index * length,
    length,
  }));
  const byRank = Array.from({ length: ranks }, (_, rank) => pieces.filter((p) => p.rank === rank));
  return { layout, ranks, pieces, byRank };
}

/** Tokens one rank holds (all its pieces). */
export function localTokens(plan: LayoutPlan): number {
  return plan.byRank[0]!.reduce((sum, p) => sum + p.length, 0);
}

/** Global positions of a rank's tokens, in local order. */
export function rankPositions(plan: LayoutPlan, rank: number): number[] {
  return plan.byRank[rank]!.flatMap((p) => Array.from({ length: p.length }, (_, i) => p.start + i));
}
