// Packed documents (docs/DOCUMENTS.md, issue 19): every schedule, lowered with document boundaries and run
// by the CPU executor, equals the document oracle (each document attended to alone) to 1e-9, for every
// strategy, layout and W; the boundaries may fall anywhere (property tests); and the pieces of the IR that
// documents add are the ones that make it exact (take one away and verify fails).
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { boundariesArb } from "../../test/arbitraries/documents.js";
import { checkSource } from "../check/front-end.js";
import { drawBoundaries } from "../schedule/documents.js";
import { checkProgram } from "../schedule/invariants.js";
import type { ComputeStep, ScheduleProgram } from "../schedule/ir.js";
import { lowerSpec } from "../schedule/lower.js";
import { linearKind, softmaxKind, tinySpec, type TinyOptions } from "../schedule/test-specs.js";
import type { Layout, ResolvedSpec } from "../spec/resolved.js";
import { reducedDocumentLength, verifyProgram, verifySpec } from "./verify.js";

const optionsLong = { ranks: 2, layout: "contiguous" as const, seqLen: 131072 };

const RANKS = [1, 2, 3, 4, 8];
const LAYOUTS: Layout[] = ["contiguous", "zigzag"];
const EXACT = 1e-9;
const BLOCK = 4;

/** A tiny spec with `documents eos` (synthetic data: lengths drawn from the seed). */
function withDocuments(options: TinyOptions, meanLength = 5): ResolvedSpec {
  const spec = tinySpec(options);
  return { ...spec, run: { ...spec.run, documents: { kind: "eos", eosToken: 0, meanLength } } };
}

const seqLenOf = (W: number, layout: Layout, blocks = 2): number =>
  (layout === "zigzag" ? 2 : 1) * W * blocks * BLOCK;

describe("every schedule with documents equals the document oracle", () => {
  const lam = [0.8, 0.9, 0.95, 1, 0.7, 0.85, 0.99, 0.6];
  for (const W of RANKS) {
    for (const layout of LAYOUTS) {
      for (const variant of ["lasp2", "lasp2 split", "lasp1", "allscan", "ulysses"] as const) {
        const [linear, arrangement] =
          variant === "lasp2 split" ? (["lasp2", "split"] as const) : [variant, undefined];
        const heads = linear === "ulysses" ? Math.max(W, 2) : 4;
        const chain = linear === "lasp1" || linear === "allscan"; // causal layers only
        for (const causal of chain ? [true] : [true, false]) {
          it(`${variant} W=${W} ${layout} ${causal ? "causal, decay per head" : "bidirectional"}`, () => {
            const decay = causal ? lam.slice(0, heads).concat(Array(Math.max(0, heads - 8)).fill(0.9)) : 1;
            const spec = withDocuments({
              ranks: W,
              layout,
              seqLen: seqLenOf(W, layout),
              heads,
              linear,
              layers: [linearKind("L", heads, decay, causal)],
            });
            expect(checkProgram(lowerSpec(spec, { block: BLOCK, lasp2: arrangement }))).toEqual([]);
            const report = verifySpec(spec, { block: BLOCK, headDim: 4, lasp2: arrangement });
            expect(report.documents!.boundaries.length).toBeGreaterThan(1);
            expect(report.maxError).toBeLessThan(EXACT);
          });
        }
      }
      for (const softmax of ["allgather", "ring", "ulysses"] as const) {
        for (const causal of [true, false]) {
          it(`${softmax} W=${W} ${layout} ${causal ? "causal" : "bidirectional"} GQA`, () => {
            const heads = softmax === "ulysses" ? 2 * W : 4;
            const spec = withDocuments({
              ranks: W,
              layout,
              seqLen: seqLenOf(W, layout),
              heads,
              softmax,
              layers: [softmaxKind("S", heads / 2, causal)],
            });
            expect(checkProgram(lowerSpec(spec, { block: BLOCK }))).toEqual([]);
            const report = verifySpec(spec, { block: BLOCK, headDim: 4, heads });
            expect(report.documents!.boundaries.length).toBeGreaterThan(1);
            expect(report.maxError).toBeLessThan(EXACT);
          });
        }
      }
    }
  }
});

describe("property: boundaries anywhere are exact", () => {
  it("at a piece's first or last token, documents shorter than a block, random ones", () => {
    fc.assert(
      fc.property(
        fc
          .record({
            W: fc.constantFrom(1, 2, 3, 4),
            layout: fc.constantFrom<Layout>("contiguous", "zigzag"),
            blocks: fc.integer({ min: 1, max: 3 }),
            linear: fc.constantFrom("lasp2" as const, "lasp1" as const, "ulysses" as const),
            softmax: fc.constantFrom("allgather" as const, "ring" as const, "ulysses" as const),
            lasp2: fc.constantFrom("fused" as const, "split" as const),
            lam: fc.double({ min: 0.3, max: 1, noNaN: true }),
            causal: fc.boolean(),
          })
          .chain((c) => {
            const N = seqLenOf(c.W, c.layout, c.blocks);
            const pieceLength = N / (c.layout === "zigzag" ? 2 * c.W : c.W);
            return fc.record({ c: fc.constant(c), boundaries: boundariesArb(N, pieceLength) });
          }),
        ({ c, boundaries }) => {
          const heads = 2 * c.W;
          const causal = c.causal || c.linear === "lasp1";
          const spec = withDocuments({
            ranks: c.W,
            layout: c.layout,
            seqLen: seqLenOf(c.W, c.layout, c.blocks),
            heads,
            headDim: 3,
            linear: c.linear,
            softmax: c.softmax,
            layers: [linearKind("L", heads, causal ? c.lam : 1, causal), softmaxKind("S", c.W, c.causal)],
          });
          const program = lowerSpec(spec, { block: BLOCK, lasp2: c.lasp2, documents: { boundaries } });
          expect(program.documents!.boundaries).toEqual(boundaries);
          return verifyProgram(spec, program, BLOCK, 7).maxError < EXACT;
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("the edge cases, every strategy at once", () => {
  const W = 3;
  const cases: [string, (N: number, L: number) => number[]][] = [
    ["a boundary at every piece's first token", (N, L) => range(N / L).map((t) => t * L)],
    ["a boundary at every piece's last token", (N, L) => range(N / L - 1).map((t) => t * L + L - 1)],
    ["documents of one token (shorter than a block)", (N) => range(N - 1)],
    ["one document across every piece", () => []],
  ];
  for (const layout of LAYOUTS) {
    for (const [name, place] of cases) {
      for (const [linear, softmax] of [
        ["lasp2", "allgather"],
        ["lasp1", "ring"],
        ["ulysses", "ulysses"],
      ] as const) {
        it(`${name}: ${linear} and ${softmax}, ${layout}`, () => {
          const N = seqLenOf(W, layout);
          const pieceLength = N / (layout === "zigzag" ? 2 * W : W);
          const spec = withDocuments({
            ranks: W,
            layout,
            seqLen: N,
            heads: 2 * W,
            headDim: 3,
            linear,
            softmax,
            layers: [
              linearKind("L", 2 * W, 0.9),
              // LASP-1 has no bidirectional form (the checker refuses it).
              ...(linear === "lasp1" ? [] : [linearKind("B", 2 * W, 1, false)]),
              softmaxKind("S", W),
            ],
          });
          const boundaries = place(N, pieceLength);
          for (const lasp2 of ["fused", "split"] as const) {
            const program = lowerSpec(spec, { block: BLOCK, lasp2, documents: { boundaries } });
            expect(verifyProgram(spec, program, BLOCK, 5).maxError).toBeLessThan(EXACT);
          }
        });
      }
    }
  }
});

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** The program with `edit` applied to every compute step of every rank, both passes. */
function editSteps(program: ScheduleProgram, edit: (step: ComputeStep) => void): ScheduleProgram {
  const copy = structuredClone(program);
  for (const schedule of copy.schedules)
    for (const pass of [schedule.passes.forward, schedule.passes.backward])
      for (const rank of pass) for (const step of rank.steps) if (step.kind === "compute") edit(step);
  return copy;
}

describe("what documents add to the IR is what makes it exact", () => {
  const W = 4;
  const spec = withDocuments({
    ranks: W,
    layout: "zigzag",
    seqLen: seqLenOf(W, "zigzag"),
    heads: 4,
    headDim: 4,
    layers: [linearKind("L", 4, 0.9), softmaxKind("S", 2)],
  });
  const program = lowerSpec(spec, { block: BLOCK, documents: { meanLength: 5 } });

  it("runs exact as lowered", () => {
    expect(verifyProgram(spec, program, BLOCK, 3).maxError).toBeLessThan(EXACT);
  });

  it("a prefix without the gathered flags (a decayed sum across boundaries) is caught", () => {
    const broken = editSteps(program, (step) => {
      if (step.op === "linear.prefix" || step.op === "linear.suffix") delete step.operands.flags;
    });
    expect(verifyProgram(spec, broken, BLOCK, 3).maxError).toBeGreaterThan(1e-3);
  });

  it("softmax blocks without the document ends (attention across documents) are caught", () => {
    const broken = editSteps(program, (step) => {
      if (step.op.startsWith("softmax.") && "ends" in step.operands) delete step.operands.ends;
    });
    const report = verifyProgram(spec, broken, BLOCK, 3);
    expect(report.rows.find((r) => r.type === "softmax_attention")!.errors.o).toBeGreaterThan(1e-3);
    expect(report.rows.find((r) => r.type === "linear_attention")!.errors.o).toBeLessThan(EXACT);
  });

  it("the state AllGather carries one flag per piece in the same collective", () => {
    const rank = program.schedules[0]!.passes.forward[0]!;
    const gathers = rank.steps.filter((s) => s.kind === "collective");
    expect(gathers).toHaveLength(1);
    expect(gathers[0]!.kind === "collective" && gathers[0]!.transfers).toEqual([
      { send: "m", recv: "m_all" },
      { send: "m_flag", recv: "m_flag_all" },
    ]);
    expect(rank.buffers.find((b) => b.name === "m_flag_all")!.shape).toEqual([2 * W, 1, 1]);
  });

  it("bidirectional layers gather each piece's head and tail states instead of reducing one", () => {
    const bidir = withDocuments({
      ranks: W,
      layout: "contiguous",
      seqLen: seqLenOf(W, "contiguous"),
      heads: 4,
      layers: [linearKind("L", 4, 1, false)],
    });
    const lowered = lowerSpec(bidir, { block: BLOCK, documents: { meanLength: 5 } });
    expect(verifyProgram(bidir, lowered, BLOCK, 3).maxError).toBeLessThan(EXACT);
    // Without the later pieces' heads, a piece's last document misses its continuation.
    const noAfter = editSteps(lowered, (step) => {
      if (step.op === "linear.forward_fused") delete step.operands.after;
    });
    expect(verifyProgram(bidir, noAfter, BLOCK, 3).rows[0]!.errors.o).toBeGreaterThan(1e-3);
    const rank = lowered.schedules[0]!.passes.forward[1]!;
    const collectives = rank.steps.filter((s) => s.kind === "collective");
    expect(collectives.map((s) => s.kind === "collective" && s.collective)).toEqual(["allgather"]);
    expect(collectives[0]!.kind === "collective" && collectives[0]!.transfers.map((t) => t.send)).toEqual([
      "m",
      "m_head",
      "m_flag",
    ]);
  });
});

describe("documents none lowers to the IR of a spec without the setting", () => {
  const file = "examples/tiny-hybrid.lasp";
  const text = readFileSync(file, "utf8");
  const resolve = (source: string): ResolvedSpec => checkSource(file, source).spec!;
  const withSetting = (setting: string): string => text.replace(/seq_len 1K/, `seq_len 1K  ${setting}`);

  it("step for step, with no document operand, buffer or table anywhere", () => {
    const none = lowerSpec(resolve(withSetting("documents none")));
    expect(JSON.stringify(none)).toEqual(JSON.stringify(lowerSpec(resolve(text))));
    const json = JSON.stringify(none);
    for (const word of ["doc_ends", '"ends"', '"flags"', '"flag"', '"head"', '"tail"', '"after"', '"before"'])
      expect(json).not.toContain(word);
    expect(none.documents).toBeUndefined();
  });

  it("while the same spec with documents gives every attention op the document ends", () => {
    const docs = lowerSpec(resolve(withSetting("documents eos  eos_token 5  document_length 64")));
    expect(docs.documents!.meanLength).toBe(64);
    expect(docs.documents!.boundaries.length).toBeGreaterThan(4);
    const attention = docs.schedules.flatMap((s) =>
      [...s.passes.forward, ...s.passes.backward].flatMap((r) =>
        r.steps.filter(
          (step): step is ComputeStep =>
            step.kind === "compute" && (step.op.startsWith("linear.") || step.op.startsWith("softmax.")),
        ),
      ),
    );
    const takesEnds = (step: ComputeStep): boolean => "ends" in step.operands;
    const without = attention.filter((step) => !takesEnds(step)).map((step) => step.op);
    // The scans read the gathered flags instead (LASP-2H's gathered attention has no merge of partials).
    expect([...new Set(without)].sort()).toEqual(["linear.prefix", "linear.suffix"]);
    expect(attention.filter(takesEnds).every((step) => step.reads.includes("doc_ends"))).toBe(true);
  });
});

describe("the drawing of boundaries", () => {
  it("is deterministic, sorted, inside the sequence, with the mean asked for", () => {
    const a = drawBoundaries(100_000, 50, 1234);
    expect(drawBoundaries(100_000, 50, 1234)).toEqual(a);
    expect(drawBoundaries(100_000, 50, 1235)).not.toEqual(a);
    expect(a.every((b, i) => b >= 0 && b < 100_000 - 1 && (i === 0 || b > a[i - 1]!))).toBe(true);
    expect(100_000 / (a.length + 1)).toBeGreaterThan(48);
    expect(100_000 / (a.length + 1)).toBeLessThan(52);
  });

  it("mean 1 ends a document after every token; a mean past the sequence leaves one document", () => {
    expect(drawBoundaries(6, 1, 9)).toEqual([0, 1, 2, 3, 4]);
    expect(drawBoundaries(6, 1000, 9).length).toBeLessThanOrEqual(1);
  });

  it("verify keeps the spec's documents per sequence at its reduced size", () => {
    const spec = withDocuments({ ranks: 2, layout: "contiguous", seqLen: 131072, layers: [] }, 8192);
    expect(reducedDocumentLength(spec, 64)).toBe(4);
    expect(reducedDocumentLength(spec, 1024)).toBe(64);
    expect(reducedDocumentLength(withDocuments({ ...optionsLong, layers: [] }, 1), 64)).toBe(1);
    expect(reducedDocumentLength(withDocuments({ ...optionsLong, layers: [] }, 16), 64)).toBe(2);
  });

  it("refuses a mean below one token", () => {
    expect(() => drawBoundaries(6, 0, 9)).toThrow(/document length 0/);
  });
});
