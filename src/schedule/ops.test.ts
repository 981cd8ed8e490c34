// The op catalogue: every step the lowering passes build names its operands and params as its op's entry
// says, its reads and writes are the entry's, and src/schedule/README.md lists every op.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { ComputeStep, ScheduleProgram } from "./ir.js";
import { lowerSpec } from "./lower.js";
import { opsTable, OPS_README } from "./ops-doc.js";
import { COMPUTE_OPS, OPS, opIo } from "./ops.js";
import { linearKind, softmaxKind, tinySpec } from "./test-specs.js";

/** Every strategy, causal and not, contiguous and zigzag, on 1, 2 and 4 ranks, both LASP-2 arrangements. */
function programs(): ScheduleProgram[] {
  const out: ScheduleProgram[] = [];
  for (const ranks of [1, 2, 4])
    for (const layout of ["contiguous", "zigzag"] as const)
      for (const [linear, softmax] of [
        ["lasp2", "allgather"],
        ["lasp1", "ring"],
        ["allscan", "ring"],
        ["ulysses", "ulysses"],
      ] as const)
        for (const causal of [true, false]) {
          if ((linear === "lasp1" || linear === "allscan") && !causal) continue;
          const layers = [linearKind("L", 4, 0.9, causal), softmaxKind("S", 2, causal)];
          const spec = tinySpec({ ranks, layout, seqLen: 2 * ranks * 16, linear, softmax, layers });
          for (const lasp2 of ["fused", "split"] as const) out.push(lowerSpec(spec, { lasp2 }));
        }
  return out;
}

function computeSteps(program: ScheduleProgram): ComputeStep[] {
  return program.schedules.flatMap((s) =>
    [...s.passes.forward, ...s.passes.backward].flatMap((rp) =>
      rp.steps.filter((st): st is ComputeStep => st.kind === "compute"),
    ),
  );
}

describe("the op catalogue", () => {
  const steps = programs().flatMap(computeSteps);

  it("is what the lowering passes build: every op of it occurs", () => {
    expect(new Set(steps.map((s) => s.op))).toEqual(new Set(COMPUTE_OPS));
  });

  it("names every operand and param a step carries", () => {
    for (const step of steps) {
      const entry = OPS[step.op];
      expect(entry.operands, `${step.op} operands`).toEqual(
        expect.arrayContaining(Object.keys(step.operands)),
      );
      expect(entry.params, `${step.op} params`).toEqual(expect.arrayContaining(Object.keys(step.params)));
    }
  });

  it("derives every step's reads and writes from its operands, all of them declared buffers", () => {
    for (const program of programs())
      for (const schedule of program.schedules)
        for (const rp of [...schedule.passes.forward, ...schedule.passes.backward])
          for (const step of rp.steps) {
            if (step.kind !== "compute") continue;
            expect({ reads: step.reads, writes: step.writes }).toEqual(opIo(step.op, step.operands));
            const names = new Set(rp.buffers.map((b) => b.name));
            for (const name of [...step.reads, ...step.writes]) expect(names.has(name), name).toBe(true);
          }
  });

  it("keeps the merge's sources a list of slots, not a joined string", () => {
    const merges = steps.filter((s): s is ComputeStep<"softmax.merge"> => s.op === "softmax.merge");
    expect(merges.length).toBeGreaterThan(0);
    for (const m of merges) {
      expect(Array.isArray(m.params.sources)).toBe(true);
      expect(m.params.sources.every((s) => Number.isInteger(s))).toBe(true);
    }
  });

  it("is the op table of src/schedule/README.md (npm run docs writes it)", () => {
    const readme = readFileSync(OPS_README, "utf8");
    const region = readme.slice(readme.indexOf("<!-- ops:begin -->"), readme.indexOf("<!-- ops:end -->"));
    const rows = [...region.matchAll(/^\| `([\w.]+)` +\|/gm)].map((m) => m[1]);
    expect(rows).toEqual(COMPUTE_OPS);
    expect(opsTable().split("\n")).toHaveLength(COMPUTE_OPS.length + 2);
  });
});
