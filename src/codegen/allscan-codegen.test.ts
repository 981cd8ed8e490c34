// All-Scan in the generated program (docs/ALLSCAN.md): with one block it is LASP-1's chain and generates as
// that (its zero prefix and suffix on the communication stream); with several blocks the program has no
// kernels for a block of state rows yet, so the generator refuses it in words (E0701) before any step.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { lowerSpec } from "../schedule/lower.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { CodegenLimitation, generateProgram } from "./generate.js";
import { buildView } from "./view-model.js";

const baselines = (): ResolvedSpec => {
  const file = "examples/tiny-baselines.lasp";
  return checkSource(file, readFileSync(file, "utf8")).spec!;
};
const allScan = (scanBlocks: number): ResolvedSpec => {
  const spec = baselines();
  return { ...spec, parallel: { ...spec.parallel, linear: "allscan", scanBlocks } };
};

describe("All-Scan's generated program", () => {
  it("refuses several blocks of state rows, saying what is missing and what works", () => {
    expect(() => generateProgram(allScan(4))).toThrow(CodegenLimitation);
    expect(() => generateProgram(allScan(4))).toThrow(
      /no kernels to send and combine a block of state rows.*scan_blocks 1/,
    );
  });

  it("with one block emits LASP-1's calls, its zero prefix and suffix on the comm stream", () => {
    const steps = (spec: ResolvedSpec) =>
      buildView({ spec, program: lowerSpec(spec), compilerVersion: "test" })
        .kinds.find((k) => k.name === "L")!
        .passes.flatMap((p) => p.ranks.flatMap((r) => r.steps));
    const [scan, ring] = [steps(allScan(1)), steps(baselines())];
    // The same calls, step for step, once the stream they are issued on is left aside.
    const streamless = (step: (typeof scan)[number]) =>
      step.calls.map((c) => ({ ...c, args: c.args.filter((a) => a !== "c.compute" && a !== "c.comm") }));
    expect(scan.map(streamless)).toEqual(ring.map(streamless));
    const moved = scan.filter((s, i) => s.stream !== ring[i]!.stream);
    // Rank 0's zero prefix (forward) and rank 3's zero suffix (backward).
    expect(moved.map((s) => [s.comment, s.stream])).toEqual([
      [expect.stringMatching(/^P\[0\] = 0/), "comm"],
      [expect.stringMatching(/^G\[3\] = 0/), "comm"],
    ]);
    expect(generateProgram(allScan(1)).get("main.cu")).toContain("L_forward");
  });
});
