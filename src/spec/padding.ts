// Any sequence length (issue 19, docs/DOCUMENTS.md "Padding"): a `seq_len` that does not split into equal
// pieces of whole kernel blocks is padded up to the next length that does. The padding is one more document
// at the sequence's end, so no real token attends to it and no loss counts it; every pass computes on the
// padded length. One place decides the unit, so the checker and the verifier pad alike.
import { KERNEL_BLOCK, type Layout } from "./resolved.js";

/** Pieces the sequence splits into: one per sequence-parallel rank, two with zigzag. */
export function pieceCount(layout: Layout, sequence: number): number {
  return layout === "zigzag" ? 2 * sequence : sequence;
}

/** The padded length: the smallest multiple of `pieces` whole `block`-token blocks that holds `seqLen`. */
export function paddedLength(seqLen: number, pieces: number, block: number = KERNEL_BLOCK): number {
  const unit = pieces * block;
  return Math.ceil(seqLen / unit) * unit;
}
