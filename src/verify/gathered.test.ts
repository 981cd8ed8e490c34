// LASP-2H as one gathered call per rank and pass (issue 18): the IR's `order` and `softmax.gathered` steps are
// what make it exact. verify.test.ts proves every strategy equal to the oracle; here the parts are taken
// away one at a time and verify must notice.
import { describe, expect, it } from "vitest";
import type { ComputeStep, ScheduleProgram } from "../schedule/ir.js";
import { keyRowsOf } from "../schedule/lower-allgather.js";
import { lowerSpec } from "../schedule/lower.js";
import { softmaxKind, tinySpec } from "../schedule/test-specs.js";
import type { Layout } from "../spec/resolved.js";
import { runCompute } from "./ops.js";
import { RankStore } from "./store.js";
import { verifyProgram } from "./verify.js";

const BLOCK = 4;
const EXACT = 1e-9;

function editSteps(
  program: ScheduleProgram,
  edit: (step: ComputeStep, rank: number) => void,
): ScheduleProgram {
  const copy = structuredClone(program);
  for (const schedule of copy.schedules)
    for (const pass of [schedule.passes.forward, schedule.passes.backward])
      for (const rank of pass)
        for (const step of rank.steps) if (step.kind === "compute") edit(step, rank.rank);
  return copy;
}

function lowered(W: number, layout: Layout, causal = true) {
  const seqLen = (layout === "zigzag" ? 2 : 1) * W * 2 * BLOCK;
  const spec = tinySpec({
    ranks: W,
    layout,
    seqLen,
    softmax: "allgather",
    layers: [softmaxKind("S", 2, causal)],
  });
  return { spec, program: lowerSpec(spec, { block: BLOCK }) };
}

describe("LASP-2H's gathered call", () => {
  for (const layout of ["contiguous", "zigzag"] as const)
    it(`reads keys up to the end of the rank's last piece, no further (${layout})`, () => {
      const { spec, program } = lowered(4, layout);
      expect(verifyProgram(spec, program, BLOCK, 3).maxError).toBeLessThan(EXACT);
      const rows = program.schedules[0]!.passes.forward.map((r) =>
        r.steps.flatMap((s) =>
          s.kind === "compute" && s.op === "softmax.gathered" ? [s.params.keyRows] : [],
        ),
      );
      const ctx = { sizes: program.sizes, plan: program.layout } as Parameters<typeof keyRowsOf>[0];
      // Contiguous: rank r sees (r + 1) pieces of 16; zigzag: rank r's late half ends at (2W - r) halves of 8.
      expect(rows.flat()).toEqual(layout === "contiguous" ? [8, 16, 24, 32] : [64, 56, 48, 40]);
      expect(rows.flat()).toEqual([0, 1, 2, 3].map((r) => keyRowsOf(ctx, softmaxKind("S", 2), r)));
      // One key short: the rank's last query loses its own key.
      const short = editSteps(program, (step) => {
        if (step.op === "softmax.gathered" || step.op === "softmax.gathered_backward")
          step.params.keyRows -= 1;
      });
      expect(verifyProgram(spec, short, BLOCK, 3).maxError).toBeGreaterThan(1e-3);
    });

  it("puts each half of each slot at its global rows (zigzag), up to the rank's last key", () => {
    const { program } = lowered(2, "zigzag");
    const rank = program.schedules[0]!.passes.forward[1]!;
    const order = rank.steps.find((s) => s.kind === "compute" && s.op === "order") as ComputeStep<"order">;
    expect(order.params).toEqual({ to: "global", rows: 24 });
    const store = new RankStore(1, new Map(rank.buffers.map((b) => [b.name, b])));
    for (const src of order.operands.src)
      store.slots(src).forEach((slot, s) => slot.data.forEach((_, i) => (slot.data[i] = 1000 * s + i)));
    runCompute({ plan: program.layout, layer: softmaxKind("S", 2), block: 0, store, rank: 1 }, order);
    const global = store.one(order.operands.dst[0]!);
    const row = global.data.length / program.sizes.seqLen;
    const at = (p: number) => global.data[p * row]!;
    // Position 3: slot 0, row 3; 8: slot 1, row 0; 16: slot 1, row 8; 24 and on (slot 0's late half): untouched.
    expect([at(3), at(8), at(16), at(23), at(24)]).toEqual([
      3 * row,
      1000,
      1000 + 8 * row,
      1000 + 15 * row,
      0,
    ]);
  });

  it("sends home zeros for the positions past a rank's keys, whatever the global buffer holds there", () => {
    const { program } = lowered(2, "zigzag");
    const rank = program.schedules[0]!.passes.backward[1]!;
    const order = rank.steps.find((s) => s.kind === "compute" && s.op === "order") as ComputeStep<"order">;
    // Rank 1 (halves 1 and 2 of 4 halves of 8): its keys end at position 24.
    expect(order.params).toEqual({ to: "ranks", rows: 24 });
    const store = new RankStore(1, new Map(rank.buffers.map((b) => [b.name, b])));
    for (const src of order.operands.src)
      store.slots(src)[0]!.data.forEach((_, i, data) => (data[i] = 1 + i));
    const global = store.one(order.operands.src[0]!);
    runCompute({ plan: program.layout, layer: softmaxKind("S", 2), block: 0, store, rank: 1 }, order);
    const slots = store.get(order.operands.dst[0]!);
    const row = global.data.length / program.sizes.seqLen;
    // Slot 0 = halves 0 and 3: half 0 copied, half 3 (positions 24..31) cleared; slot 1 = halves 1, 2 copied.
    const rowOf = (slot: number, local: number) => [
      ...slots[slot]!.data.subarray(local * row, (local + 1) * row),
    ];
    const globalRow = (p: number) => [...global.data.subarray(p * row, (p + 1) * row)];
    expect(rowOf(0, 7)).toEqual(globalRow(7));
    expect(rowOf(0, 8)).toEqual(Array(row).fill(0));
    expect(rowOf(0, 15)).toEqual(Array(row).fill(0));
    expect(rowOf(1, 0)).toEqual(globalRow(8));
    expect(rowOf(1, 15)).toEqual(globalRow(23));
  });

  it("is the same computation without causality: every rank sees every key", () => {
    const { spec, program } = lowered(3, "zigzag", false);
    expect(verifyProgram(spec, program, BLOCK, 3).maxError).toBeLessThan(EXACT);
    const gathered = program.schedules[0]!.passes.forward.flatMap((r) =>
      r.steps.filter((s) => s.kind === "compute" && s.op === "softmax.gathered"),
    ) as ComputeStep<"softmax.gathered">[];
    expect(gathered.map((s) => s.params.keyRows)).toEqual([48, 48, 48]);
  });
});
