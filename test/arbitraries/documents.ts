// fast-check arbitraries of packed-document boundaries (docs/DOCUMENTS.md): sorted, distinct positions in
// [0, N - 1) after which a document ends, mixing random ones with the cases a schedule gets wrong first: a
// boundary at a piece's first or last token, and runs of documents shorter than a block.
import fc from "fast-check";

/** Boundaries of `N` tokens split into pieces of `pieceLength` tokens. */
export function boundariesArb(N: number, pieceLength: number): fc.Arbitrary<number[]> {
  const pieces = N / pieceLength;
  const edges = (offset: number): number[] =>
    Array.from({ length: pieces }, (_, t) => t * pieceLength + offset).filter((b) => b >= 0 && b < N - 1);
  const random = fc.uniqueArray(fc.integer({ min: 0, max: Math.max(0, N - 2) }), { maxLength: N });
  const some = (all: number[]): fc.Arbitrary<number[]> =>
    fc.subarray(all, { minLength: Math.min(1, all.length) });
  return fc
    .tuple(
      random,
      fc.oneof(some(edges(0)), some(edges(pieceLength - 1)), fc.constant([] as number[])),
      // A run of short documents (length 1 to 3) somewhere in the sequence.
      fc.record({
        at: fc.integer({ min: 0, max: N - 1 }),
        lengths: fc.array(fc.integer({ min: 1, max: 3 })),
      }),
    )
    .map(([r, e, run]) => {
      const short: number[] = [];
      let end = run.at - 1;
      for (const length of run.lengths) short.push((end += length));
      return [...new Set([...r, ...e, ...short])].filter((b) => b >= 0 && b < N - 1).sort((a, b) => a - b);
    });
}
