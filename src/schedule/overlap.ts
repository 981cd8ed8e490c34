// What overlaps what, the one analysis of it: two steps of a rank may run at the same time when neither
// happens before the other in the pass's happens-before graph over every rank (graph.ts: deps, stream order,
// sends before their recvs, collectives completing together). The placement pass (placement.ts) picks each
// collective's partner from it and `lasp inspect` lists, per communication step, the computation beside it.
import { PassGraph, type NodeRef } from "./graph.js";
import type { RankProgram } from "./ir.js";

/** Happens-before over one pass: `before(a, b)` when a must end before b starts (on any rank). */
export class Concurrency {
  private readonly index = new Map<string, number>();
  /** Per node (by index), the set of its ancestors as a bitset. */
  private readonly ancestors: Uint32Array[];

  constructor(readonly programs: RankProgram[]) {
    const graph = new PassGraph(programs);
    const nodes = programs.flatMap((p) => p.steps.map((s) => ({ rank: p.rank, step: s.id })));
    nodes.forEach((n, i) => this.index.set(key(n), i));
    const words = Math.ceil(nodes.length / 32);
    this.ancestors = nodes.map(() => new Uint32Array(words));
    const { order, stuck } = graph.order();
    for (const node of order) {
      const mine = this.ancestors[this.at(node)]!;
      for (const p of graph.predsOf(node)) {
        const i = this.at(p);
        mine[i >>> 5]! |= 1 << (i & 31);
        const theirs = this.ancestors[i]!;
        for (let w = 0; w < words; w++) mine[w]! |= theirs[w]!;
      }
    }
    // Steps on a cycle (a deadlock, which the invariants report): their ancestors by a plain search.
    for (const node of stuck) {
      const mine = this.ancestors[this.at(node)]!;
      const stack = [...graph.predsOf(node)];
      while (stack.length > 0) {
        const i = this.at(stack.pop()!);
        if ((mine[i >>> 5]! & (1 << (i & 31))) !== 0) continue;
        mine[i >>> 5]! |= 1 << (i & 31);
        stack.push(...graph.predsOf(nodeAt(nodes, i)));
      }
    }
  }

  before(a: NodeRef, b: NodeRef): boolean {
    const i = this.at(a);
    return (this.ancestors[this.at(b)]![i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  /** Neither step happens before the other. */
  concurrent(a: NodeRef, b: NodeRef): boolean {
    return !(a.rank === b.rank && a.step === b.step) && !this.before(a, b) && !this.before(b, a);
  }

  /** Steps of the same rank on the compute stream that may run at the same time as `node`, in program order. */
  computeBeside(node: NodeRef): number[] {
    const program = this.programs.find((p) => p.rank === node.rank)!;
    return program.steps
      .filter((s) => s.stream === "compute" && this.concurrent(node, { rank: node.rank, step: s.id }))
      .map((s) => s.id);
  }

  private at(node: NodeRef): number {
    const i = this.index.get(key(node));
    if (i === undefined) throw new Error(`no step ${node.step} on rank ${node.rank}`);
    return i;
  }
}

/**
 * For each collective of a rank, the first later computation beside it: the work it should overlap. Each
 * computation partners one collective at most (the earliest). Returns computation step -> collective step.
 */
export function overlapPartners(concurrency: Concurrency, program: RankProgram): Map<number, number> {
  const partners = new Map<number, number>();
  for (const step of program.steps) {
    if (step.kind !== "collective") continue;
    const node = { rank: program.rank, step: step.id };
    const partner = concurrency
      .computeBeside(node)
      .find((id) => id > step.id && program.steps[id]!.kind === "compute");
    if (partner !== undefined && !partners.has(partner)) partners.set(partner, step.id);
  }
  return partners;
}

const key = (n: NodeRef): string => `${n.rank}:${n.step}`;

function nodeAt(nodes: NodeRef[], i: number): NodeRef {
  return nodes[i]!;
}
