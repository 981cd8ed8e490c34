// The softmax steps' costs with packed documents (softmax-common.ts workPairs): the kernels compute only the
// pairs of one document, so a step's FLOPs count those pairs on the table the schedule was lowered with; which
// steps a schedule has never depends on the drawn documents (the program's change with every step).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { lowerSpec } from "./lower.js";

const spec = (softmax: string, documents: string): ResolvedSpec =>
  checkSource(
    "d.lasp",
    readFileSync("examples/tiny-baselines.lasp", "utf8")
      .replace(
        "linear lasp1  softmax ring",
        `linear ${softmax === "ulysses" ? "ulysses" : "lasp1"}  softmax ${softmax}`,
      )
      .replace("kv_heads 2", "kv_heads 4")
      .replace("mode verify  seed 1", `mode verify  seed 1  ${documents}`),
  ).spec!;

/** Every softmax compute step of a program: op, description and FLOPs, in order. */
const softmaxSteps = (s: ResolvedSpec) =>
  lowerSpec(s).schedules.flatMap((k) =>
    [...k.passes.forward, ...k.passes.backward].flatMap((rp) =>
      rp.steps.flatMap((step) =>
        step.kind === "compute" && step.op.startsWith("softmax.") && step.op !== "softmax.merge"
          ? [{ op: step.op, rank: rp.rank, flops: step.flops }]
          : [],
      ),
    ),
  );

describe("softmax costs with packed documents", () => {
  for (const strategy of ["allgather", "ring", "ulysses"])
    it(`${strategy}: the same steps, each with at most the FLOPs of one whole sequence, in sum about N D`, () => {
      const none = softmaxSteps(spec(strategy, ""));
      const docs = softmaxSteps(spec(strategy, "documents eos  eos_token 7  document_length 64"));
      expect(docs.map(({ op, rank }) => [op, rank])).toEqual(none.map(({ op, rank }) => [op, rank]));
      docs.forEach((s, i) => expect(s.flops).toBeLessThanOrEqual(none[i]!.flops));
      const total = (xs: { flops: number }[]) => xs.reduce((a, x) => a + x.flops, 0);
      // Causal pairs: N^2 / 2 without documents, about (2/3) N D with documents of mean D (lengths uniform in
      // [1, 2D - 1]): at N = 2K, D = 64 about 1/24 of the work.
      const ratio = total(docs) / total(none);
      expect(ratio).toBeGreaterThan(1 / 48);
      expect(ratio).toBeLessThan(1 / 12);
    });
});
