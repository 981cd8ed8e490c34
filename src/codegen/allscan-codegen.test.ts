// All-Scan in the generated program (docs/ALLSCAN.md): with one block it is LASP-1's chain and generates as
// that (its zero prefix and suffix on the communication stream); with several blocks each block of every
// state's rows is sent and received in one NCCL group (one transfer per state: the rows are contiguous within
// a state) and handed on by linear_ring_step_rows.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { lowerSpec } from "../schedule/lower.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { generateProgram } from "./generate.js";
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
  it("sends, receives and hands on each block of rows of every state", () => {
    const spec = allScan(4);
    const view = buildView({ spec, program: lowerSpec(spec), compilerVersion: "test" });
    const { batch, heads, headDim } = lowerSpec(spec).sizes;
    const rows = headDim / 4;
    const steps = view.kinds
      .find((k) => k.name === "L")!
      .passes.flatMap((p) => p.ranks.flatMap((r) => r.steps));
    const recv = steps.find((s) => /^recv P\[\d+\] rows 16\.\.31/.test(s.comment))!;
    // One transfer per (batch, head) state: the block's rows, at row 16 of each d x d state.
    expect(recv.calls).toHaveLength(batch * heads);
    expect(recv.calls.map((c) => c.args[1])).toEqual(Array(batch * heads).fill(String(rows * headDim)));
    expect(recv.calls[1]!.args[0]).toMatch(new RegExp(`\\+ ${(headDim + 16) * headDim}$`));
    const hands = steps.filter((s) => s.calls.some((c) => c.fn === "lasp::linear_ring_step_rows"));
    expect(hands.length).toBeGreaterThan(0);
    expect(hands.map((s) => s.calls[0]!.args.slice(-3, -1))).toContainEqual(["16", String(rows)]);
    expect(generateProgram(spec).get("lasp/program.cuh")).toContain("linear_ring_step_rows");
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
