// Which point-to-point steps are issued together. A send followed directly by a receive on the same stream
// (or a receive by a send) goes to NCCL in one group: in a ring every rank sends before it receives, and
// separate calls would wait for each other forever. The code generator emits the pair as one group and the
// cost model times it as one; this module is the one rule both use.
//
// Only independent steps may share a group: NCCL may run a group's operations in any order, so a receive
// whose data can only come after the group's own send has arrived somewhere (LASP-1's zigzag chain goes out
// to the last rank and back, so rank 0's receive of P[2W-1] waits on its own send of P[1]) would wait
// forever in one group with that send. That dependency runs through other ranks, so the rule looks at the
// whole pass.
import { PassGraph, type NodeRef } from "./graph.js";
import type { P2PStep, RankProgram, Step } from "./ir.js";

const isP2P = (step: Step): step is P2PStep => step.kind === "send" || step.kind === "recv";

/** No shared slots, and neither waits for the other on this rank. */
function locallyIndependent(first: P2PStep, second: P2PStep): boolean {
  if (second.deps.includes(first.id)) return false;
  const slots = new Set(first.transfers.map((t) => `${t.buffer}[${t.slot}]`));
  return second.transfers.every((t) => !slots.has(`${t.buffer}[${t.slot}]`));
}

/**
 * Whether `second` (the step right after `first` on the same rank and stream) depends on `first` through
 * other ranks' steps: a path back to `first` that does not start with the stream order between the two.
 */
function dependsThroughOtherRanks(graph: PassGraph, rank: number, first: number, second: number): boolean {
  const key = (n: NodeRef) => `${n.rank}:${n.step}`;
  const target = key({ rank, step: first });
  const stack = graph.predsOf({ rank, step: second }).filter((p) => key(p) !== target);
  const seen = new Set<string>();
  while (stack.length > 0) {
    const node = stack.pop()!;
    const k = key(node);
    if (k === target) return true;
    if (seen.has(k)) continue;
    seen.add(k);
    stack.push(...graph.predsOf(node));
  }
  return false;
}

/**
 * For each rank's program of a pass (in the order given), the ids of the steps issued in one NCCL group
 * with the step just before them. The pass's dependency graph is built once, and only when some rank has
 * an adjacent send and receive to look at.
 */
export function pairedWithPrevious(pass: RankProgram[]): Set<number>[] {
  let graph: PassGraph | undefined;
  return pass.map((program) => {
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
        locallyIndependent(previous, step) &&
        !dependsThroughOtherRanks((graph ??= new PassGraph(pass)), program.rank, previous.id, step.id)
      )
        paired.add(step.id);
    }
    return paired;
  });
}
