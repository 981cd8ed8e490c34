// The happens-before graph of one pass over all ranks: a step's deps, the previous step on its stream, a
// send before its recv, and every member of a collective before the collective completes anywhere.
// Used by the invariants (reads after writes, no deadlock) and by the analysis (dependent comm steps).
import type { P2PStep, RankProgram, Step } from "./ir.js";

export interface NodeRef {
  rank: number;
  step: number;
}

const key = (rank: number, step: number): string => `${rank}:${step}`;

export class PassGraph {
  /** Predecessors of each node. */
  readonly preds = new Map<string, NodeRef[]>();
  readonly problems: string[] = [];

  constructor(readonly programs: RankProgram[]) {
    const sends = new Map<string, NodeRef>();
    const collectives = new Map<string, NodeRef[]>();
    for (const program of programs) {
      const lastOnStream = new Map<string, number>();
      for (const step of program.steps) {
        const preds: NodeRef[] = [];
        for (const dep of step.deps) {
          if (dep >= step.id)
            this.problems.push(`rank ${program.rank} step ${step.id} depends on a later step ${dep}`);
          preds.push({ rank: program.rank, step: dep });
        }
        const previous = lastOnStream.get(step.stream);
        if (previous !== undefined) preds.push({ rank: program.rank, step: previous });
        lastOnStream.set(step.stream, step.id);
        this.preds.set(key(program.rank, step.id), preds);
        if (step.kind === "send")
          sends.set(`${program.rank}>${step.peer}:${step.tag}`, { rank: program.rank, step: step.id });
        if (step.kind === "collective") {
          const list = collectives.get(step.key) ?? [];
          list.push({ rank: program.rank, step: step.id });
          collectives.set(step.key, list);
        }
      }
    }
    // Each member's own predecessors, before the collectives add each other's: adding the grown lists would
    // repeat them once per member and rank (exponentially at 16 ranks).
    const own = new Map([...this.preds].map(([k, v]) => [k, [...v]]));
    for (const program of programs) {
      for (const step of program.steps) {
        if (step.kind === "recv") {
          const send = sends.get(`${step.peer}>${program.rank}:${step.tag}`);
          if (send) this.preds.get(key(program.rank, step.id))!.push(send);
        }
        if (step.kind === "collective") {
          // A collective completes on a rank only once every member has reached it.
          for (const member of collectives.get(step.key) ?? []) {
            if (member.rank !== program.rank)
              this.preds.get(key(program.rank, step.id))!.push(...own.get(key(member.rank, member.step))!);
          }
        }
      }
    }
  }

  predsOf(node: NodeRef): NodeRef[] {
    return this.preds.get(key(node.rank, node.step)) ?? [];
  }

  step(node: NodeRef): Step {
    return this.programs.find((p) => p.rank === node.rank)!.steps[node.step]!;
  }

  /** A topological order of all steps, or the steps left on a cycle (a deadlock). */
  order(): { order: NodeRef[]; stuck: NodeRef[] } {
    const indegree = new Map<string, number>();
    const succs = new Map<string, NodeRef[]>();
    const all: NodeRef[] = [];
    for (const program of this.programs) {
      for (const step of program.steps) {
        const node = { rank: program.rank, step: step.id };
        all.push(node);
        const preds = this.predsOf(node);
        indegree.set(key(node.rank, node.step), preds.length);
        for (const p of preds) {
          const list = succs.get(key(p.rank, p.step)) ?? [];
          list.push(node);
          succs.set(key(p.rank, p.step), list);
        }
      }
    }
    const ready = all.filter((n) => indegree.get(key(n.rank, n.step)) === 0);
    const order: NodeRef[] = [];
    while (ready.length > 0) {
      const node = ready.shift()!;
      order.push(node);
      for (const s of succs.get(key(node.rank, node.step)) ?? []) {
        const k = key(s.rank, s.step);
        const left = indegree.get(k)! - 1;
        indegree.set(k, left);
        if (left === 0) ready.push(s);
      }
    }
    const done = new Set(order.map((n) => key(n.rank, n.step)));
    return { order, stuck: all.filter((n) => !done.has(key(n.rank, n.step))) };
  }

  /**
   * The largest number of communication steps on one chain of the graph: 1 for LASP-2 (one collective),
   * W-1 for the LASP-1 ring. A send/recv pair counts once (at the recv), a collective once.
   */
  dependentCommSteps(): number {
    const { order } = this.order();
    const depth = new Map<string, number>();
    let best = 0;
    for (const node of order) {
      const step = this.step(node);
      const counts = step.kind === "recv" || step.kind === "collective" ? 1 : 0;
      let deepest = 0;
      for (const p of this.predsOf(node)) deepest = Math.max(deepest, depth.get(key(p.rank, p.step)) ?? 0);
      const value = deepest + counts;
      depth.set(key(node.rank, node.step), value);
      best = Math.max(best, value);
    }
    return best;
  }
}

export function isP2P(step: Step): step is P2PStep {
  return step.kind === "send" || step.kind === "recv";
}
