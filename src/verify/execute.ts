// The reference executor: runs one pass of a lowered schedule on W simulated ranks in float64. Each rank
// executes its steps in program order; a recv waits for its send, a collective for every member of its
// group. If no rank can move, the schedule deadlocks, which is reported as an error.
import { addInto, clone, type Tensor, zeros } from "../reference/tensor.js";
import type { CollectiveStep, LayerSchedule, LayoutPlan, Pass, RankProgram } from "../schedule/ir.js";
import { runCompute } from "./ops.js";
import { RankStore, stateRows, type Slots } from "./store.js";

export interface PassRun {
  stores: RankStore[];
}

/**
 * Runs `pass` of `schedule`. `inputs(rank, name)` supplies every buffer the programs mark as input (as
 * slots); it is called once per rank and input buffer.
 */
export function executePass(
  schedule: LayerSchedule,
  pass: Pass,
  plan: LayoutPlan,
  block: number,
  inputs: (rank: number, name: string) => Slots,
): PassRun {
  const programs = schedule.passes[pass];
  const stores = programs.map((rp) => {
    const store = new RankStore(rp.rank, new Map(rp.buffers.map((b) => [b.name, b])));
    for (const decl of rp.buffers) if (decl.input) store.setAll(decl.name, inputs(rp.rank, decl.name));
    return store;
  });
  const next = programs.map(() => 0);
  const mailbox = new Map<string, Tensor[]>();
  const arrived = new Map<string, Set<number>>(); // collective key -> ranks waiting at it

  const done = (): boolean => programs.every((rp, i) => next[i] === rp.steps.length);
  while (!done()) {
    let progressed = false;
    for (const [i, rp] of programs.entries()) {
      // Run this rank as far as it can go.
      for (;;) {
        const step = rp.steps[next[i]!];
        if (step === undefined) break;
        const store = stores[i]!;
        if (step.kind === "compute") {
          runCompute({ plan, layer: schedule.layer, block, store, rank: rp.rank }, step);
        } else if (step.kind === "send") {
          mailbox.set(
            `${rp.rank}>${step.peer}:${step.tag}`,
            step.transfers.map((t) => {
              const whole = store.one(t.buffer, t.slot);
              return t.rows === undefined ? clone(whole) : stateRows(whole, t.rows);
            }),
          );
        } else if (step.kind === "recv") {
          const k = `${step.peer}>${rp.rank}:${step.tag}`;
          const message = mailbox.get(k);
          if (message === undefined) break; // wait for the sender
          mailbox.delete(k);
          step.transfers.forEach((t, n) =>
            t.rows === undefined
              ? store.set(t.buffer, t.slot, message[n]!)
              : store.setRows(t.buffer, t.slot, t.rows, message[n]!),
          );
        } else {
          const waiting = arrived.get(step.key) ?? new Set<number>();
          waiting.add(rp.rank);
          arrived.set(step.key, waiting);
          if (waiting.size < step.group.length) break; // wait for the rest of the group
          runCollective(step, programs, stores);
          // Every member passes the collective now.
          for (const member of step.group) {
            const index = programs.findIndex((p) => p.rank === member);
            if (index !== i) next[index] = next[index]! + 1;
          }
          arrived.delete(step.key);
        }
        next[i] = next[i]! + 1;
        progressed = true;
      }
    }
    if (!progressed && !done()) {
      const where = programs.map(
        (rp, i) => `rank ${rp.rank} at step ${next[i]} (${rp.steps[next[i]!]?.label ?? "end"})`,
      );
      throw new Error(`the schedule deadlocks: ${where.join("; ")}`);
    }
  }
  return { stores };
}

/** Performs a collective for all members at once; they have all reached it. */
function runCollective(step: CollectiveStep, programs: RankProgram[], stores: RankStore[]): void {
  const members = step.group.map((rank) => stores[programs.findIndex((p) => p.rank === rank)]!);
  const W = members.length;
  for (const { send, recv } of step.transfers) {
    const contributions = members.map((s) => s.get(send));
    members.forEach((store, r) => {
      switch (step.collective) {
        case "allgather":
          store.setAll(recv, contributions.flat());
          return;
        case "allreduce":
          store.setAll(recv, sumEach(contributions));
          return;
        case "reducescatter": {
          // Each contribution has W * k slots; rank r receives the sum of slots [r k, (r+1) k).
          const per = contributions[0]!.length / W;
          const mine = contributions.map((c) => c.slice(r * per, (r + 1) * per));
          store.setAll(recv, sumEach(mine));
          return;
        }
        case "alltoall":
          store.setAll(
            recv,
            contributions.map((c) => c[r]!),
          );
          return;
      }
    });
  }
}

function sumEach(parts: Slots[]): Slots {
  return parts[0]!.map((_, slot) => {
    const sum = zeros(parts[0]![slot]!.shape);
    for (const p of parts) addInto(sum, p[slot]!);
    return sum;
  });
}
