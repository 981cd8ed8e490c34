// Any sequence length (issue 19, docs/DOCUMENTS.md "Padding"): a seq_len that does not split into pieces of
// whole blocks runs padded, the padding a document of its own after the last real token. Every schedule, run
// by the CPU executor on the padded length, gives the real tokens the outputs and gradients of the oracle
// on the real tokens alone (1e-9), for every strategy, layout and W, with and without packed documents; and
// the padding's boundary is what makes it so.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { checkProgram } from "../schedule/invariants.js";
import type { ScheduleProgram } from "../schedule/ir.js";
import { lowerSpec } from "../schedule/lower.js";
import { linearKind, softmaxKind, tinySpec, type TinyOptions } from "../schedule/test-specs.js";
import type { Layout, ResolvedSpec } from "../spec/resolved.js";
import { verifyProgram, verifySpec } from "./verify.js";

const RANKS = [1, 2, 3, 4, 8];
const LAYOUTS: Layout[] = ["contiguous", "zigzag"];
const EXACT = 1e-9;
const BLOCK = 4;

/** Pieces of the layout, and the length of `blocks` whole blocks per piece. */
const piecesOf = (W: number, layout: Layout): number => (layout === "zigzag" ? 2 * W : W);
const seqLenOf = (W: number, layout: Layout, blocks = 2): number => piecesOf(W, layout) * blocks * BLOCK;

/** A tiny spec, with `documents eos` (lengths drawn from the seed) when `meanLength` is given. */
function spec(options: TinyOptions, meanLength?: number): ResolvedSpec {
  const s = tinySpec(options);
  return meanLength === undefined
    ? s
    : { ...s, run: { ...s.run, documents: { kind: "eos", eosToken: 0, meanLength } } };
}

/** The strategy pairs that together run every schedule (LASP-1 only causal: the checker refuses the rest). */
const PAIRS = [
  { linear: "lasp2", softmax: "allgather", lasp2: "fused" },
  { linear: "lasp2", softmax: "ring", lasp2: "split" },
  { linear: "lasp1", softmax: "ring", lasp2: undefined },
  { linear: "ulysses", softmax: "ulysses", lasp2: undefined },
] as const;

describe("every schedule on a padded length equals the oracle on the real tokens alone", () => {
  for (const W of RANKS) {
    for (const layout of LAYOUTS) {
      for (const pair of PAIRS) {
        for (const causal of pair.linear === "lasp1" ? [true] : [true, false]) {
          for (const documents of [undefined, 3]) {
            const name = `${pair.linear}${pair.lasp2 === "split" ? " split" : ""} + ${pair.softmax} W=${W} ${layout} ${causal ? "causal" : "bidirectional"}${documents === undefined ? "" : ", documents"}`;
            it(name, () => {
              const heads = 2 * W;
              const padded = seqLenOf(W, layout);
              // 1 to unit - 1 tokens of padding (the unit: a block per piece), so `padded` is the padded length.
              const unit = piecesOf(W, layout) * BLOCK;
              const padding = 1 + ((3 * W + (layout === "zigzag" ? 2 : 0) + (causal ? 0 : 1)) % (unit - 1));
              const s = spec(
                {
                  ranks: W,
                  layout,
                  seqLen: padded,
                  heads,
                  linear: pair.linear,
                  softmax: pair.softmax,
                  layers: [linearKind("L", heads, causal ? 0.9 : 1, causal), softmaxKind("S", W, causal)],
                },
                documents,
              );
              const report = verifySpec(s, {
                block: BLOCK,
                headDim: 3,
                heads,
                seqLen: padded - padding,
                ...(pair.lasp2 === undefined ? {} : { lasp2: pair.lasp2 }),
              });
              expect(report.spec.run).toMatchObject({ seqLen: padded, padding });
              expect(report.padding).toEqual({ realSeqLen: padded - padding, padding });
              if (documents !== undefined) {
                // The drawn boundaries lie among the real tokens; the padding's own is not one of them.
                expect(report.documents!.boundaries.length).toBeGreaterThan(0);
                expect(Math.max(...report.documents!.boundaries)).toBeLessThan(padded - padding - 1);
              } else expect(report.documents).toBeUndefined();
              expect(report.rows).toHaveLength(2);
              expect(report.maxError).toBeLessThan(EXACT);
            });
          }
        }
      }
    }
  }
});

describe("property: any real length is exact", () => {
  it("random lengths, padding up to several pieces, every strategy, with and without documents", () => {
    fc.assert(
      fc.property(
        fc
          .record({
            W: fc.constantFrom(1, 2, 3, 4, 8),
            layout: fc.constantFrom<Layout>("contiguous", "zigzag"),
            pair: fc.constantFrom(...PAIRS),
            causal: fc.boolean(),
            lam: fc.double({ min: 0.3, max: 1, noNaN: true }),
            documents: fc.option(fc.integer({ min: 1, max: 9 }), { nil: undefined }),
          })
          .chain((c) =>
            fc.record({
              c: fc.constant(c),
              real: fc.integer({ min: 1, max: seqLenOf(c.W, c.layout, 3) }),
            }),
          ),
        ({ c, real }) => {
          const heads = 2 * c.W;
          const causal = c.causal || c.pair.linear === "lasp1";
          const s = spec(
            {
              ranks: c.W,
              layout: c.layout,
              seqLen: seqLenOf(c.W, c.layout),
              heads,
              linear: c.pair.linear,
              softmax: c.pair.softmax,
              layers: [linearKind("L", heads, causal ? c.lam : 1, causal), softmaxKind("S", c.W, c.causal)],
            },
            c.documents,
          );
          const report = verifySpec(s, {
            block: BLOCK,
            headDim: 3,
            heads,
            seqLen: real,
            ...(c.pair.lasp2 === undefined ? {} : { lasp2: c.pair.lasp2 }),
          });
          const unit = piecesOf(c.W, c.layout) * BLOCK;
          expect(report.spec.run.seqLen).toBe(Math.ceil(real / unit) * unit);
          expect(report.spec.run.seqLen - report.spec.run.padding).toBe(real);
          return report.maxError < EXACT;
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("the padding is a document of its own", () => {
  const W = 2;
  const tiny = tinySpec({
    ranks: W,
    layout: "zigzag",
    seqLen: seqLenOf(W, "zigzag"),
    padding: 5,
    heads: 4,
    headDim: 3,
    layers: [linearKind("L", 4, 0.9), linearKind("B", 4, 1, false), softmaxKind("S", 2)],
  });
  const real = tiny.run.seqLen - 5;
  const program = lowerSpec(tiny, { block: BLOCK });

  it("lowers with one boundary, at the last real token, and the padding in the table", () => {
    expect(program.documents).toMatchObject({ kind: "none", boundaries: [real - 1], padding: 5 });
    expect(checkProgram(program)).toEqual([]);
    expect(verifyProgram(tiny, program, BLOCK, 3).maxError).toBeLessThan(EXACT);
  });

  it("without its boundary the padding leaks into the real tokens' results, and verify catches it", () => {
    const leaky: ScheduleProgram = structuredClone(program);
    leaky.documents!.boundaries = [];
    expect(verifyProgram(tiny, leaky, BLOCK, 3).maxError).toBeGreaterThan(1e-3);
  });

  it("documents are drawn over the real tokens, then the padding's boundary follows", () => {
    const withDocs = spec({ ...tinyOptions(), seqLen: 64, padding: 10 }, 4);
    const lowered = lowerSpec(withDocs, { block: BLOCK });
    const boundaries = lowered.documents!.boundaries;
    expect(boundaries.at(-1)).toBe(53);
    expect(boundaries.length).toBeGreaterThan(3);
    expect(boundaries.slice(0, -1).every((b) => b < 53)).toBe(true);
    expect(lowered.documents!.padding).toBe(10);
  });

  it("a spec without padding lowers without a document table, as before", () => {
    expect(
      lowerSpec({ ...tiny, run: { ...tiny.run, padding: 0 } }, { block: BLOCK }).documents,
    ).toBeUndefined();
  });
});

function tinyOptions(): TinyOptions {
  return { ranks: 2, layout: "contiguous", seqLen: 64, heads: 4, layers: [linearKind("L", 4, 0.9)] };
}

describe("a padded spec, from the text", () => {
  const source = `model m {
  vocab 512  hidden 256  ffn 512  heads 4  head_dim 64
  layer L = linear_attention { decay 0.9 }
  layer S = softmax_attention { kv_heads 2 }
  stack [L, S]
}
parallel { gpus 2  layout zigzag }
run { seq_len 1000 }
`;
  const resolved = checkSource("padded.lasp", source).spec!;

  it("computes on the padded length and keeps the padding's count", () => {
    expect(resolved.run).toMatchObject({ seqLen: 1024, padding: 24 });
  });

  it("lasp verify pads at the reduced size too, and the real tokens are exact", () => {
    const report = verifySpec(resolved);
    expect(report.padding!.padding).toBeGreaterThan(0);
    expect(report.padding!.realSeqLen + report.padding!.padding).toBe(report.spec.run.seqLen);
    expect(report.maxError).toBeLessThan(EXACT);
  });
});
