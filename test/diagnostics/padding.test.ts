// Any sequence length (issue 19): a seq_len that does not split into equal pieces of whole kernel blocks is
// padded up to the next length that does (W0612 says by how much and what it costs), unless the padding would
// fill a whole piece (E0502); the generated program takes it (the padding a document of its own, out of the
// loss). The goldens show the text; these assert the decisions.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkSource } from "../../src/check/front-end.js";
import { withGeneratorNotes } from "../../src/cli/check-command.js";
import { memoryReport, memoryShape } from "../../src/cost/memory.js";
import { inspectText } from "../../src/inspect/text.js";
import { checkProgram } from "../../src/schedule/invariants.js";
import { lowerSpec } from "../../src/schedule/lower.js";
import { KERNEL_BLOCK } from "../../src/spec/resolved.js";

const source = (seqLen: number, sequence: number, layout: string) => `model m {
  vocab 512  hidden 256  ffn 512  heads 8  head_dim 64
  layer L = linear_attention { decay 0.9 }
  stack L x 2
}
parallel { sequence ${sequence}  layout ${layout} }
run { seq_len ${seqLen} }
`;

describe("padding an uneven seq_len", () => {
  it("pads to the smallest length of equal pieces of whole blocks, and errs only when a piece would hold no real token", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 64, max: 20000 }), // the schema's least seq_len is 64
        fc.constantFrom(1, 2, 3, 4, 8),
        fc.constantFrom("contiguous", "zigzag"),
        (seqLen, sequence, layout) => {
          const result = checkSource("s.lasp", source(seqLen, sequence, layout));
          const codes = result.diagnostics.map((d) => d.code);
          const pieces = layout === "zigzag" ? 2 * sequence : sequence;
          const unit = pieces * KERNEL_BLOCK;
          const padded = Math.ceil(seqLen / unit) * unit;
          const padding = padded - seqLen;
          if (padding >= padded / pieces) {
            expect(codes).toEqual(["E0502"]);
            expect(result.spec).toBeUndefined();
            return;
          }
          expect(codes).toEqual(padding === 0 ? [] : ["W0612"]);
          expect(result.spec!.run).toMatchObject({ seqLen: padded, padding });
          if (padding > 0) {
            const message = result.diagnostics[0]!.message;
            expect(message).toContain(`padded to ${padded}`);
            expect(message).toContain(`its ${padding} padding tokens`);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("names the padding's share of the compute", () => {
    const [note] = checkSource("s.lasp", source(1000, 2, "contiguous")).diagnostics;
    expect(note!.severity).toBe("warning");
    expect(note!.message).toContain("cost 2.3% of every layer's compute");
    const [tiny] = checkSource("s.lasp", source(262143, 2, "contiguous")).diagnostics;
    expect(tiny!.message).toContain("its 1 padding tokens cost under 0.1%");
  });

  it("lasp check notes it (W0612) and that its kernels have not run across ranks (W0613); compile takes it", () => {
    const checked = checkSource("s.lasp", source(1000, 2, "contiguous"));
    const notes = withGeneratorNotes(checked, { refuse: true }).diagnostics;
    expect(notes.map((d) => d.code)).toEqual(["W0612", "W0613"]);
    expect(notes[1]!.message).toMatch(
      /^a padded `seq_len` \(the padding is a document\) over 2 sequence ranks is generated, but its program has not run on more than one GPU/,
    );
    // An even length is compiled as before.
    expect(
      withGeneratorNotes(checkSource("s.lasp", source(1024, 2, "contiguous")), { refuse: true }).diagnostics,
    ).toEqual([]);
  });

  it("takes it in a bidirectional linear model too (its kernels keep the padding apart as a document)", () => {
    const encoder = source(1000, 2, "contiguous").replace("decay 0.9", "causal false  feature_map identity");
    const notes = withGeneratorNotes(checkSource("s.lasp", encoder), { refuse: true }).diagnostics;
    expect(notes.map((d) => d.code)).toEqual(["W0612", "W0613"]);
  });
});

describe("a padded spec in the passes after the checker", () => {
  const padded = checkSource("s.lasp", source(1000, 2, "zigzag")).spec!;
  const even = checkSource("s.lasp", source(1024, 2, "zigzag")).spec!;

  it("lowers to the padded length, with the padding a document of its own", () => {
    const program = lowerSpec(padded);
    expect(program.sizes.seqLen).toBe(1024);
    expect(program.layout.pieces.map((p) => p.length)).toEqual([256, 256, 256, 256]);
    expect(program.documents).toMatchObject({ kind: "none", padding: 24, boundaries: [999] });
    expect(checkProgram(program)).toEqual([]);
    expect(lowerSpec(even).documents).toBeUndefined();
  });

  it("inspect says how much of seq_len is padding; memory counts the padded length", () => {
    const text = inspectText(padded, lowerSpec(padded), { rank: 0 });
    expect(text).toContain("seq_len 1024 (1000 real tokens and 24 of padding, a document of its own)");
    const memory = memoryReport(memoryShape(padded), padded.run.seqLen);
    expect(memory.seqLen).toBe(1024);
    // The same activations as the even length, plus only the document flags: within 1%.
    const evenMemory = memoryReport(memoryShape(even), even.run.seqLen);
    expect(Math.abs(memory.totalBytes - evenMemory.totalBytes) / evenMemory.totalBytes).toBeLessThan(0.01);
  });
});
