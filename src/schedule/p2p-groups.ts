// Which point-to-point steps are issued together. A send followed directly by a receive on the same stream
// (or a receive by a send) goes to NCCL in one group: in a ring every rank sends before it receives, and
// separate calls would wait for each other forever. The code generator emits the pair as one group and the
// cost model times it as one; this module is the one rule both use.
import type { P2PStep, RankProgram, Step } from "./ir.js";

const isP2P = (step: Step): step is P2PStep => step.kind === "send" || step.kind === "recv";

/** The two run concurrently in a group: the second must not wait for the first or touch its slots. */
function independent(first: P2PStep, second: P2PStep): boolean {
  if (second.deps.includes(first.id)) return false;
  const slots = new Set(first.transfers.map((t) => `${t.buffer}[${t.slot}]`));
  return second.transfers.every((t) => !slots.has(`${t.buffer}[${t.slot}]`));
}

/** Ids of the steps issued in one NCCL group with the step just before them. */
export function pairedWithPrevious(program: RankProgram): Set<number> {
  const paired = new Set<number>();
  for (let i = 1; i < program.steps.length; i++) {
    const previous = program.steps[i - 1]!;
    const step = program.steps[i]!;
    if (paired.has(previous.id)) continue; // pairs, never chains
    if (
      isP2P(previous) &&
      isP2P(step) &&
      step.kind !== previous.kind &&
      step.stream === previous.stream &&
      independent(previous, step)
    )
      paired.add(step.id);
  }
  return paired;
}
