// The runtime calls the view model holds for one rank's pass, for tests that assert the generator's
// decisions on its typed data (which function, which operand gets which buffer) rather than on C++ text.
import type { Call } from "./steps.js";
import type { ProgramView, StepView } from "./view-model.js";

/** A call that takes a struct of named operands: its fields as name -> value, and its arguments after it. */
export interface NamedCall {
  fn: string;
  type: string;
  fields: Record<string, string>;
  args: string[];
}

/** The steps of the rank pass function `fn` (e.g. `L_forward_rank1`), in order. */
export function stepsOf(view: ProgramView, fn: string): StepView[] {
  for (const kind of view.kinds)
    for (const pass of kind.passes)
      for (const rank of pass.ranks) if (rank.function === fn) return rank.steps;
  throw new Error(`no rank pass function ${fn} in the view`);
}

/** A call's struct of named operands, flattened to name -> value. */
export function named(call: Call): NamedCall {
  if (call.operands === undefined) throw new Error(`${call.fn} takes no struct of named operands`);
  const fields = Object.fromEntries(call.operands.lines.flat().map((f) => [f.name, f.value]));
  return { fn: call.fn, type: call.operands.type, fields, args: call.args };
}

/** The calls of `fn` to the runtime function `runtimeFn` (e.g. `lasp::linear_intra`), in step order. */
export function namedCallsOf(view: ProgramView, fn: string, runtimeFn: string): NamedCall[] {
  return stepsOf(view, fn)
    .flatMap((s) => s.calls)
    .filter((c) => c.fn === runtimeFn)
    .map(named);
}

/** The step of `fn` whose call to `runtimeFn` has the given fields (each one equal), or undefined. */
export function stepCalling(
  view: ProgramView,
  fn: string,
  runtimeFn: string,
  fields: Record<string, string>,
): StepView | undefined {
  return stepsOf(view, fn).find((s) =>
    s.calls.some(
      (c) =>
        c.fn === runtimeFn &&
        Object.entries(fields).every(([name, value]) => named(c).fields[name] === value),
    ),
  );
}
