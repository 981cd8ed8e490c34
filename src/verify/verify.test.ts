import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { lowerSpec } from "../schedule/lower.js";
import { linearKind, softmaxKind, tinySpec } from "../schedule/test-specs.js";
import type { Layout } from "../spec/resolved.js";
import { executePass } from "./execute.js";
import { verifyProgram, verifySpec } from "./verify.js";

const RANKS = [1, 2, 3, 4, 8];
const LAYOUTS: Layout[] = ["contiguous", "zigzag"];
const EXACT = 1e-12;

describe("every linear strategy is exact against the dense oracle", () => {
  const decays = { none: 1, fixed: 0.9, list: [0.8, 0.9, 0.95, 1, 0.7, 0.85, 0.99, 0.6] };
  for (const W of RANKS) {
    for (const layout of LAYOUTS) {
      for (const variant of ["lasp2", "lasp2 split", "lasp1", "allscan", "ulysses"] as const) {
        const [linear, arrangement] =
          variant === "lasp2 split" ? (["lasp2", "split"] as const) : [variant, undefined];
        const options = { block: 8, headDim: 4, lasp2: arrangement };
        for (const [name, decay] of Object.entries(decays)) {
          it(`${variant} W=${W} ${layout} causal decay ${name}`, () => {
            const heads = linear === "ulysses" ? Math.max(W, 2) : 4;
            const lam = Array.isArray(decay)
              ? decay.slice(0, heads).concat(Array(Math.max(0, heads - 8)).fill(0.9))
              : decay;
            const spec = tinySpec({
              ranks: W,
              layout,
              seqLen: (layout === "zigzag" ? 2 : 1) * W * 16,
              heads,
              linear,
              layers: [linearKind("L", heads, lam)],
            });
            expect(verifySpec(spec, options).maxError).toBeLessThan(EXACT);
          });
        }
        if (linear !== "lasp1" && linear !== "allscan") {
          it(`${variant} W=${W} ${layout} bidirectional`, () => {
            const heads = linear === "ulysses" ? Math.max(W, 2) : 4;
            const spec = tinySpec({
              ranks: W,
              layout,
              seqLen: (layout === "zigzag" ? 2 : 1) * W * 16,
              heads,
              linear,
              layers: [linearKind("L", heads, 1, false)],
            });
            expect(verifySpec(spec, options).maxError).toBeLessThan(EXACT);
          });
        }
      }
    }
  }
});

describe("every softmax strategy is exact against the dense oracle", () => {
  for (const W of RANKS) {
    for (const layout of LAYOUTS) {
      for (const softmax of ["allgather", "ring", "ulysses"] as const) {
        for (const causal of [true, false]) {
          for (const gqa of [false, true]) {
            it(`${softmax} W=${W} ${layout} ${causal ? "causal" : "bidirectional"}${gqa ? " GQA" : ""}`, () => {
              const heads = softmax === "ulysses" ? 2 * W : 4;
              const kvHeads = gqa ? heads / 2 : heads;
              const spec = tinySpec({
                ranks: W,
                layout,
                seqLen: (layout === "zigzag" ? 2 : 1) * W * 16,
                heads,
                softmax,
                layers: [softmaxKind("S", kvHeads, causal)],
              });
              const report = verifySpec(spec, { block: 8, headDim: 4, heads });
              expect(
                report.spec.model.kinds[0]!.type === "softmax_attention" &&
                  report.spec.model.kinds[0]!.kvHeads,
              ).toBe(kvHeads);
              expect(report.maxError).toBeLessThan(EXACT);
            });
          }
        }
      }
    }
  }
});

describe("verify catches wrong schedules", () => {
  it("a prefix that ignores the gathered states is reported", () => {
    const spec = tinySpec({
      ranks: 4,
      layout: "zigzag",
      seqLen: 128,
      headDim: 4,
      layers: [linearKind("L", 4, 0.9)],
    });
    const program = lowerSpec(spec, { block: 8 });
    for (const rp of program.schedules[0]!.passes.forward) {
      for (const step of rp.steps)
        if (step.kind === "compute" && step.op === "linear.prefix") step.params.mode = "zero";
    }
    const report = verifyProgram(spec, program, 8, 1);
    expect(report.rows[0]!.errors.o).toBeGreaterThan(1e-2);
  });

  it("the public reference's bug, a contiguous prefix over zigzag data, breaks causality", () => {
    const spec = tinySpec({
      ranks: 4,
      layout: "zigzag",
      seqLen: 128,
      headDim: 4,
      layers: [linearKind("L", 4, 1)],
    });
    const program = lowerSpec(spec, { block: 8 });
    expect(verifyProgram(spec, program, 8, 1).maxError).toBeLessThan(EXACT);
    // The executor believes the pieces are contiguous in rank-major order while the data is zigzag.
    const plan = program.layout;
    const rankMajor = plan.byRank.flat();
    const contiguous = rankMajor.map((p, i) => ({ ...p, index: i, start: i * p.length }));
    const wrong = {
      ...plan,
      pieces: contiguous,
      byRank: plan.byRank.map((_, r) => contiguous.filter((p) => p.rank === r)),
    };
    expect(verifyProgram(spec, program, 8, 1, wrong).rows[0]!.errors.o).toBeGreaterThan(1e-2);
  });

  it("a deadlocking schedule is an error, not a hang", () => {
    const spec = tinySpec({
      ranks: 2,
      layout: "contiguous",
      seqLen: 64,
      linear: "lasp1",
      layers: [linearKind("L", 4, 0.9)],
    });
    const program = lowerSpec(spec, { block: 8 });
    const rank1 = program.schedules[0]!.passes.forward[1]!;
    for (const step of rank1.steps) if (step.kind === "recv") step.tag = "never-sent";
    const inputs = (_rank: number, _name: string) => [{ shape: [32, 4, 8], data: new Float64Array(32 * 32) }];
    expect(() => executePass(program.schedules[0]!, "forward", program.layout, 8, inputs)).toThrow(
      /deadlocks/,
    );
  });
});

describe("property: random small shapes are exact", () => {
  it("any strategy, layout, W, heads and decay", () => {
    fc.assert(
      fc.property(
        fc.record({
          W: fc.integer({ min: 1, max: 4 }),
          layout: fc.constantFrom<Layout>("contiguous", "zigzag"),
          blocks: fc.integer({ min: 1, max: 3 }),
          block: fc.constantFrom(2, 4, 8),
          headDim: fc.integer({ min: 1, max: 6 }),
          linear: fc.constantFrom("lasp2" as const, "lasp1" as const, "ulysses" as const),
          softmax: fc.constantFrom("allgather" as const, "ring" as const, "ulysses" as const),
          lam: fc.double({ min: 0.05, max: 1, noNaN: true }),
          causal: fc.boolean(),
          group: fc.constantFrom(1, 2),
        }),
        (c) => {
          const pieces = c.layout === "zigzag" ? 2 * c.W : c.W;
          const heads = 2 * c.W;
          const causal = c.causal || c.linear === "lasp1" ? true : c.causal;
          const spec = tinySpec({
            ranks: c.W,
            layout: c.layout,
            seqLen: pieces * c.blocks * c.block,
            heads,
            linear: c.linear,
            softmax: c.softmax,
            layers: [
              linearKind("L", heads, causal ? c.lam : 1, causal),
              softmaxKind("S", heads / c.group, c.causal),
            ],
          });
          const report = verifySpec(spec, {
            block: c.block,
            headDim: c.headDim,
            heads,
            seqLen: pieces * c.blocks * c.block,
          });
          return report.maxError < 1e-10;
        },
      ),
      { numRuns: 30 },
    );
  });
});
