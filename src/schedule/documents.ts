// Packed documents in the schedule (docs/DOCUMENTS.md): where documents end, drawn deterministically from
// the seed as `documents eos` with synthetic data does, and the per-rank table of the boundaries each piece
// holds. The program will draw the same boundaries (the drawing is a few lines to port: mulberry32, then
// lengths uniform in [1, 2 mean - 1]); a token file or a Megatron index supplies real ones per step, and the
// table here then stands for one such step.
import { mulberry32 } from "../reference/tensor.js";
import type { Documents } from "../spec/resolved.js";
import type { DocumentTable, LayoutPlan } from "./ir.js";

/** `document_length`'s default (grammar/README.md), for documents whose lengths come from the data. */
export const DEFAULT_DOCUMENT_LENGTH = 2048;

/**
 * Boundaries (the last token of each document but the final one) of documents of random lengths, uniform
 * in [1, 2 mean - 1] (mean `mean`), packed into `seqLen` tokens: sorted, distinct, each in [0, seqLen - 1).
 */
export function drawBoundaries(seqLen: number, mean: number, seed: number): number[] {
  if (!Number.isInteger(mean) || mean < 1)
    throw new Error(`document length ${mean} must be a whole number >= 1`);
  const rand = mulberry32(seed);
  const boundaries: number[] = [];
  for (let end = -1; ;) {
    end += 1 + Math.floor(rand() * (2 * mean - 1));
    if (end >= seqLen - 1) return boundaries; // the sequence's end closes the last document anyway
    boundaries.push(end);
  }
}

/** The table of the IR: every boundary, and per rank and local piece the piece's own, as local indices. */
export function documentTable(
  kind: Documents["kind"],
  plan: LayoutPlan,
  meanLength: number,
  boundaries: readonly number[],
  padding = 0,
): DocumentTable {
  return {
    kind,
    meanLength,
    ...(padding > 0 ? { padding } : {}),
    boundaries: [...boundaries],
    byRank: plan.byRank.map((pieces) =>
      pieces.map((piece) =>
        boundaries
          .filter((b) => b >= piece.start && b < piece.start + piece.length)
          .map((b) => b - piece.start),
      ),
    ),
  };
}
