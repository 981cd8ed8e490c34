// The communication comparison `lasp inspect` prints: for each layer kind the stack uses, every strategy and
// layout the spec could select, lowered for real and measured from the IR (bytes each rank sends, the
// collectives, the dependent communication steps), so a user sees why LASP-2 beats LASP-1 at their sizes.
import { makeContext } from "../schedule/context.js";
import { PassGraph } from "../schedule/graph.js";
import type { LayerSchedule, Pass, ScheduleProgram } from "../schedule/ir.js";
import { planLayout } from "../schedule/layout.js";
import { lowerKind } from "../schedule/lower.js";
import type { LayerKind, Layout, ResolvedSpec } from "../spec/resolved.js";

export interface PassSummary {
  /** e.g. "1 AllGather", "3 send/recv". */
  collectives: string;
  /** Largest number of bytes any rank sends in this pass. */
  bytesPerRank: number;
  dependentSteps: number;
  /**
   * A sequence-parallel group of one rank: the calls the schedule still makes, each a copy on the GPU (NCCL's
   * with a communicator of one rank; on one GPU the program's stand-in for it, templates/runtime/
   * nccl_one_rank.cuh), and the bytes they pass. Nothing is communicated, so the fields above say none;
   * absent with more ranks or without such calls.
   */
  oneRankCopies?: { calls: string; bytes: number };
}

/** What `collectives` says where the sequence group is one rank: nobody to talk to. */
export function noneOnOneRank(gpus: number): string {
  return gpus === 1 ? "none: one GPU" : "none: one sequence rank";
}

export interface StrategyRow {
  kind: string;
  strategy: string;
  layout: Layout;
  chosen: boolean;
  forward: PassSummary;
  backward: PassSummary;
}

const NAMES: Record<string, string> = {
  allgather: "AllGather",
  allreduce: "AllReduce",
  reducescatter: "ReduceScatter",
  alltoall: "AllToAll",
};

export function summarisePass(schedule: LayerSchedule, pass: Pass, gpus = 1): PassSummary {
  const programs = schedule.passes[pass];
  const counts = new Map<string, number>();
  const rank0 = programs[0]!;
  for (const step of rank0.steps) {
    const name =
      step.kind === "collective" ? NAMES[step.collective]! : step.kind === "recv" ? "send/recv" : undefined;
    if (name !== undefined) counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  // Ring-like schedules differ by rank at the ends: report the busiest rank's transfers.
  let p2pMax = 0;
  for (const rp of programs) p2pMax = Math.max(p2pMax, rp.steps.filter((s) => s.kind === "recv").length);
  if (p2pMax > 0) counts.set("send/recv", p2pMax);
  const collectives = [...counts].map(([name, n]) => `${n} ${name}`).join(", ") || "none";
  const bytesPerRank = Math.max(
    ...programs.map((rp) =>
      rp.steps.reduce((sum, s) => sum + (s.kind === "collective" || s.kind === "send" ? s.bytes : 0), 0),
    ),
  );
  // One rank: the IR keeps its collectives (the generated program calls them), but each is a local copy.
  if (programs.length === 1)
    return {
      collectives: noneOnOneRank(gpus),
      bytesPerRank: 0,
      dependentSteps: 0,
      ...(collectives === "none" ? {} : { oneRankCopies: { calls: collectives, bytes: bytesPerRank } }),
    };
  return { collectives, bytesPerRank, dependentSteps: new PassGraph(programs).dependentCommSteps() };
}

/** Strategies a layer kind could use under this spec (the checker's rules for Ulysses included). */
export function candidateStrategies(spec: ResolvedSpec, kind: LayerKind): string[] {
  const W = spec.parallel.sequence;
  const ulysses = spec.model.heads % W === 0 && (kind.type === "linear_attention" || kind.kvHeads % W === 0);
  if (kind.type === "linear_attention")
    return ["lasp2", ...(kind.causal ? ["lasp1", "allscan"] : []), ...(ulysses ? ["ulysses"] : [])];
  return ["allgather", "ring", ...(ulysses ? ["ulysses"] : [])];
}

export function compareStrategies(spec: ResolvedSpec, program: ScheduleProgram): StrategyRow[] {
  const rows: StrategyRow[] = [];
  const W = spec.parallel.sequence;
  for (const schedule of program.schedules) {
    const kind = schedule.layer;
    for (const layout of ["contiguous", "zigzag"] as const) {
      const pieces = layout === "zigzag" ? 2 * W : W;
      if (spec.run.seqLen % pieces !== 0) continue;
      const ctx = makeContext(
        planLayout(layout, W, spec.run.seqLen),
        program.sizes,
        spec.parallel.overlap,
        undefined,
        undefined,
        spec.parallel.scanBlocks,
      );
      for (const strategy of candidateStrategies(spec, kind)) {
        const lowered = lowerKind(ctx, kind, strategy);
        rows.push({
          kind: kind.name,
          strategy,
          layout,
          chosen: strategy === schedule.strategy && layout === spec.parallel.layout,
          forward: summarisePass(lowered, "forward", spec.parallel.gpus),
          backward: summarisePass(lowered, "backward", spec.parallel.gpus),
        });
      }
    }
  }
  return rows;
}
