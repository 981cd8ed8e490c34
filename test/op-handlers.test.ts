// Every consumer of the IR keeps one handler per compute op, in a table typed by OpHandlers (ir.ts): a new op
// in the catalogue (schedule/ops.ts) without a handler in each table is a type error. `tsc` runs over this
// file (npm run typecheck), so the `@ts-expect-error` lines below fail the build if the error went away.
import { describe, expect, it } from "vitest";
import { CODEGEN_HANDLERS } from "../src/codegen/steps.js";
import type { OpHandlers } from "../src/schedule/ir.js";
import { COMPUTE_OPS, OPS, type ComputeOp, type OpEntry } from "../src/schedule/ops.js";
import { EXECUTOR_HANDLERS } from "../src/verify/ops.js";

/** The catalogue's ops plus one more: what a table keyed by ops must then cover. */
type WithDummy = ComputeOp | "dummy.op";
type TableFor<Ops extends string> = { [O in Ops]: unknown };

describe("the op handler tables", () => {
  it("cover every op of the catalogue, and no other", () => {
    for (const table of [CODEGEN_HANDLERS, EXECUTOR_HANDLERS])
      expect(Object.keys(table).sort()).toEqual([...COMPUTE_OPS].sort());
  });

  it("fail type-checking when the catalogue gains an op they have no handler for", () => {
    // @ts-expect-error: the code generator's table has no handler for "dummy.op".
    const codegen: TableFor<WithDummy> = CODEGEN_HANDLERS;
    // @ts-expect-error: nor has the CPU executor's.
    const executor: TableFor<WithDummy> = EXECUTOR_HANDLERS;
    // @ts-expect-error: nor has the catalogue itself an entry (a doc line, operands, io) for it.
    const catalogue: { [O in WithDummy]: OpEntry<ComputeOp> } = OPS;
    // The same tables without the dummy op type-check: the errors above are the missing op, nothing else.
    const fine: TableFor<ComputeOp>[] = [CODEGEN_HANDLERS, EXECUTOR_HANDLERS, OPS];
    expect(fine).toHaveLength(3);
    expect([codegen, executor, catalogue].every((t) => !("dummy.op" in t))).toBe(true);
  });

  it("type each handler's step by its op: a handler cannot read another op's operands", () => {
    const table: Partial<OpHandlers<[], string>> = {
      "linear.state": (step) => step.operands.m,
      // @ts-expect-error: linear.intra has no operand `m` (its output is `o`).
      "linear.intra": (step) => step.operands.m,
    };
    expect(Object.keys(table)).toHaveLength(2);
  });
});
