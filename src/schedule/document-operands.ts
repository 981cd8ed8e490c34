// The operand packed documents add to the ops that attend (docs/DOCUMENTS.md): the input `doc_ends`. One
// place declares it, so every lowering gives the same buffer, and none when the spec has no documents.
import type { RankBuilder } from "./builder.js";
import type { LowerContext } from "./context.js";

/** The input every op that attends reads with documents; the program keeps it outside the kinds' buffers. */
export const DOC_ENDS = "doc_ends";

/**
 * The `ends` operand of the ops that attend, spread into their operands: the input `doc_ends` (declared on
 * first use) with packed documents, nothing without, so `documents none` lowers to the steps it always did.
 */
export function documentEnds(b: RankBuilder, ctx: LowerContext): { ends?: string } {
  if (ctx.documents === undefined) return {};
  const ends = b.buffer({
    name: DOC_ENDS,
    shape: [ctx.sizes.batch, ctx.sizes.seqLen],
    dtype: "int32",
    doc: "1 at each token that ends a document, over the whole sequence (global positions)",
    input: true,
  });
  return { ends };
}
