// The schedule simulator: times one pass of a layer on every rank of the sequence-parallel group from the IR
// and a machine model, the way the generated program runs it.
//
// Model (the generated program's execution model, simplified):
// - Each rank has two streams, compute and comm. A stream runs its steps one at a time in program order; a
//   step starts when its stream is free and every dep (a step of the same rank, either stream) has ended.
//   The two streams never slow each other down (NCCL's SM use and memory traffic are not modelled), so the
//   placement pass's decisions (schedule/placement.ts: the communicator, the SMs a GEMM leaves) do not change
//   the times, but for the copy engines' own rate (below); what overlaps what follows from the same deps and
//   stream order the placement pass reads.
// - A compute step takes the machine's roofline time (machine.ts).
// - A send is eager: it starts as soon as it is ready and holds the sender's comm stream for the transfer
//   time. Its recv is posted when ready on the receiver's comm stream, the data flows from the later of the
//   two (posting, send start) for the same transfer time, and the receiver's stream is held from posting to
//   the end. So a recv never ends before its send started plus the transfer time.
// - A send followed by its recv in one NCCL group (pairedWithPrevious, as the generated program issues them)
//   runs both at once: the recv is ready when the send is, and the stream is free once both have ended.
//   A recv-then-send pair is timed one after the other.
// - A collective is posted on each member when ready there; it starts on all members when the last member
//   has posted it and ends on all of them together, after the machine's collective time. An early member's
//   comm stream is held while it waits. An AllGather or AlltoAll that the placement pass put on the few-CTA
//   communicator, or marked a copy-engine candidate, runs on the copy engines (the program asks NCCL 2.28 for
//   them there): timed at the machine's copy-engine rates (machine.ts's onCopyEngines; the link's where the
//   profile has none, and across nodes, where NCCL's kernels run it).
// Passes are timed separately from time zero, all ranks starting together (the previous pass's end is a
// barrier), so a stack's time is the sum of its passes' makespans.
import type { LayerKind } from "../spec/resolved.js";
import type { CollectiveStep, P2PStep, Pass, RankProgram, ScheduleProgram, Step } from "../schedule/ir.js";
import { pairedWithPrevious } from "../schedule/p2p-groups.js";
import {
  collectiveTime,
  computeTime,
  copyable,
  DEFAULT_MACHINE,
  onCopyEngines,
  p2pTime,
  type Machine,
} from "./machine.js";

export interface StepTiming {
  /**
   * When the step was ready on its stream (stream free, deps done). Equal to `start` except for a recv
   * waiting for its send and a collective waiting for the other members.
   */
  posted: number;
  /** When the step's work (computation or data transfer) began, s from the start of the pass. */
  start: number;
  end: number;
}

export interface RankTimeline {
  rank: number;
  /** Indexed by step id. */
  steps: StepTiming[];
  /** End of this rank's last step. */
  passTime: number;
  /** Time the rank spends computing: the union of its compute steps' intervals. */
  computeTime: number;
  /** Time the rank's comm stream is held by communication (collectives, sends, recvs, waits included). */
  commTime: number;
  /**
   * Communication not hidden: comm time during which no computation runs on this rank, i.e. the compute
   * stream waits for communication (or has nothing left to do but wait for it).
   */
  exposedComm: number;
  /** Communication overlapped with computation on this rank: commTime = exposedComm + hiddenComm. */
  hiddenComm: number;
}

export interface PassTimeline {
  /** In the order of the programs given. */
  ranks: RankTimeline[];
  /** The pass's time: the latest end over all ranks. */
  makespan: number;
  /**
   * Of the makespan, the layer's projections that `host` steps place inside the pass (LASP-2 runs its Q
   * projection and dWo beside its collective): work the program does with any strategy.
   */
  projectionTime: number;
  /** makespan - projectionTime: what the attention itself takes, comparable across strategies. */
  attentionTime: number;
  /** Sums over ranks. */
  commTime: number;
  exposedComm: number;
  hiddenComm: number;
  /** hiddenComm / commTime over all ranks; 1 when the pass does not communicate. */
  hiddenFraction: number;
}

/** The machine a collective step is timed on: the copy engines' view where the program copies it. */
function collectiveMachine(step: CollectiveStep, machine: Machine): Machine {
  const { communicator, copyEngineCandidate } = step.placement;
  const copies = copyable(step.collective) && (communicator === "few_ctas" || copyEngineCandidate);
  return copies ? onCopyEngines(machine) : machine;
}

/** Simulates one pass: one program per rank of the group. Throws if the programs deadlock. */
export function simulatePass(programs: RankProgram[], machine: Machine = DEFAULT_MACHINE): PassTimeline {
  const index = new Map<number, number>(); // rank -> position in `programs`
  programs.forEach((p, i) => index.set(p.rank, i));
  const timings: (StepTiming | undefined)[][] = programs.map((p) => p.steps.map(() => undefined));
  const streams = programs.map((p) => ({
    compute: p.steps.filter((s) => s.stream === "compute"),
    comm: p.steps.filter((s) => s.stream === "comm"),
  }));
  const cursor = programs.map(() => ({ compute: 0, comm: 0 }));
  const free = programs.map(() => ({ compute: 0, comm: 0 }));
  const paired = pairedWithPrevious(programs);
  /** The end of a send whose paired recv is still to come: the stream is busy until then too. */
  const groupEnd = programs.map((): number | undefined => undefined);
  programs.forEach((p) =>
    p.steps.forEach((s, i) => {
      if (s.id !== i) throw new Error(`rank ${p.rank}: step at position ${i} has id ${s.id}`);
    }),
  );

  // Matching: sends by (sender, receiver, tag); collective members by key.
  const sendOf = new Map<string, { at: number; step: P2PStep }>();
  const members = new Map<string, { at: number; step: CollectiveStep }[]>();
  programs.forEach((p, at) => {
    for (const s of p.steps) {
      if (s.kind === "send") sendOf.set(`${p.rank}>${s.peer}:${s.tag}`, { at, step: s });
      if (s.kind === "collective") {
        const list = members.get(s.key) ?? [];
        list.push({ at, step: s });
        members.set(s.key, list);
      }
    }
  });
  for (const [key, list] of members) {
    const group = list[0]!.step.group;
    if (list.length !== group.length || group.some((r) => !index.has(r)))
      throw new Error(
        `collective ${key}: group ${group.join(",")} but ${list.length} members in the programs`,
      );
  }
  /** Posting times of collectives waiting for their other members, by key and member position. */
  const posted = new Map<string, Map<number, number>>();

  const readyAt = (at: number, step: Step): number | undefined => {
    let ready = free[at]![step.stream];
    for (const dep of step.deps) {
      const t = timings[at]![dep];
      if (t === undefined) return undefined;
      ready = Math.max(ready, t.end);
    }
    return ready;
  };
  const finish = (at: number, step: Step, timing: StepTiming): void => {
    timings[at]![step.id] = timing;
    free[at]![step.stream] = timing.end;
    cursor[at]![step.stream]++;
    const next = programs[at]!.steps[step.id + 1];
    if (step.kind === "send" && next !== undefined && paired[at]!.has(next.id)) {
      // The paired recv starts with this send; the stream is free when both have ended.
      free[at]![step.stream] = timing.posted;
      groupEnd[at] = timing.end;
    } else if (paired[at]!.has(step.id) && groupEnd[at] !== undefined) {
      free[at]![step.stream] = Math.max(timing.end, groupEnd[at]!);
      groupEnd[at] = undefined;
    }
  };

  let remaining = programs.reduce((n, p) => n + p.steps.length, 0);
  while (remaining > 0) {
    let progress = false;
    for (let at = 0; at < programs.length; at++) {
      for (const stream of ["compute", "comm"] as const) {
        // Run this stream as far as it can go now.
        for (;;) {
          const step = streams[at]![stream][cursor[at]![stream]];
          if (step === undefined) break;
          const ready = readyAt(at, step);
          if (ready === undefined) break;
          if (step.kind === "compute") {
            finish(at, step, { posted: ready, start: ready, end: ready + computeTime(step, machine) });
          } else if (step.kind === "send") {
            finish(at, step, { posted: ready, start: ready, end: ready + p2pTime(step.bytes, machine) });
          } else if (step.kind === "recv") {
            const rank = programs[at]!.rank;
            const send = sendOf.get(`${step.peer}>${rank}:${step.tag}`);
            if (send === undefined)
              throw new Error(
                `rank ${rank} step ${step.id}: no send from rank ${step.peer} tagged ${step.tag}`,
              );
            const sent = timings[send.at]![send.step.id];
            if (sent === undefined) break;
            const start = Math.max(ready, sent.start);
            finish(at, step, { posted: ready, start, end: start + p2pTime(send.step.bytes, machine) });
          } else {
            const waiting = posted.get(step.key) ?? new Map<number, number>();
            posted.set(step.key, waiting);
            if (!waiting.has(at)) {
              waiting.set(at, ready);
              progress = true;
            }
            const list = members.get(step.key)!;
            if (waiting.size < list.length) break;
            const start = Math.max(...waiting.values());
            const bytes = Math.max(...list.map((m) => m.step.bytes));
            const end =
              start +
              collectiveTime(step.collective, bytes, step.group.length, collectiveMachine(step, machine));
            for (const m of list) finish(m.at, m.step, { posted: waiting.get(m.at)!, start, end });
            remaining -= list.length - 1; // the others finish here; this one is counted below
            posted.delete(step.key);
          }
          remaining--;
          progress = true;
        }
      }
    }
    if (!progress && remaining > 0) {
      const stuck = programs.flatMap((p, at) =>
        (["compute", "comm"] as const).flatMap((stream) => {
          const step = streams[at]![stream][cursor[at]![stream]];
          return step === undefined ? [] : [`rank ${p.rank} ${stream} step ${step.id} (${step.label})`];
        }),
      );
      throw new Error(`the schedule deadlocks: ${stuck.join("; ")}`);
    }
  }

  const ranks = programs.map((p, at): RankTimeline => {
    const steps = timings[at]!.map((t) => t!);
    const computeSpans = p.steps.filter((s) => s.kind === "compute").map((s) => steps[s.id]!);
    const commSpans = p.steps.filter((s) => s.kind !== "compute").map((s) => steps[s.id]!);
    const compute = union(computeSpans.map((t) => [t.start, t.end] as const));
    const comm = union(commSpans.map((t) => [t.posted, t.end] as const));
    const hiddenComm = overlap(comm, compute);
    const commTime = measure(comm);
    return {
      rank: p.rank,
      steps,
      passTime: Math.max(0, ...steps.map((t) => t.end)),
      computeTime: measure(compute),
      commTime,
      exposedComm: commTime - hiddenComm,
      hiddenComm,
    };
  });
  const commTime = sum(ranks.map((r) => r.commTime));
  const hiddenComm = sum(ranks.map((r) => r.hiddenComm));
  const makespan = Math.max(0, ...ranks.map((r) => r.passTime));
  const projectionTime = Math.max(
    0,
    ...programs.map((p, at) =>
      sum(
        p.steps
          .filter((s) => s.kind === "compute" && s.op === "host")
          .map((s) => timings[at]![s.id]!.end - timings[at]![s.id]!.start),
      ),
    ),
  );
  return {
    ranks,
    makespan,
    projectionTime,
    attentionTime: makespan - projectionTime,
    commTime,
    exposedComm: sum(ranks.map((r) => r.exposedComm)),
    hiddenComm,
    hiddenFraction: commTime > 0 ? hiddenComm / commTime : 1,
  };
}

export interface KindTimes {
  /** Index into `program.schedules`. */
  schedule: number;
  /** The layer kind's name in the spec. */
  kind: string;
  layer: LayerKind["type"];
  strategy: string;
  /** How many layers of the stack use this kind. */
  count: number;
  forward: PassTimeline;
  backward: PassTimeline;
}

export interface ProgramTimes {
  machine: string;
  /** One entry per layer kind, in `program.schedules` order. */
  kinds: KindTimes[];
  /**
   * Attention time of one training step: the sum over the stack's layers of forward plus backward
   * attention times (makespans less the projections a schedule places inside; projections, MLPs, norms and
   * the optimizer are otherwise not in the schedule IR).
   */
  stepTime: number;
  /** Sums over the stack's layers and over ranks. */
  commTime: number;
  exposedComm: number;
  hiddenComm: number;
  /** hiddenComm / commTime over the whole stack: "hides N% of its communication". */
  hiddenFraction: number;
}

/** Simulates every layer kind's passes once and adds them up over the stack. */
export function simulateProgram(program: ScheduleProgram, machine: Machine = DEFAULT_MACHINE): ProgramTimes {
  const kinds = program.schedules.map((schedule, i): KindTimes => ({
    schedule: i,
    kind: schedule.kind,
    layer: schedule.layer.type,
    strategy: schedule.strategy,
    count: program.layers.filter((l) => l === i).length,
    forward: simulatePass(schedule.passes.forward, machine),
    backward: simulatePass(schedule.passes.backward, machine),
  }));
  const total = (f: (p: PassTimeline) => number): number =>
    sum(kinds.map((k) => k.count * (f(k.forward) + f(k.backward))));
  const commTime = total((p) => p.commTime);
  const hiddenComm = total((p) => p.hiddenComm);
  return {
    machine: machine.name,
    kinds,
    stepTime: total((p) => p.attentionTime),
    commTime,
    exposedComm: total((p) => p.exposedComm),
    hiddenComm,
    hiddenFraction: commTime > 0 ? hiddenComm / commTime : 1,
  };
}

/** The passes of one training step in execution order: forward up the stack, backward down it. */
export function passOrder(layers: number[]): { layer: number; pass: Pass }[] {
  return [
    ...layers.map((layer) => ({ layer, pass: "forward" as const })),
    ...[...layers].reverse().map((layer) => ({ layer, pass: "backward" as const })),
  ];
}

type Span = readonly [number, number];

/** Sorted, disjoint union of intervals. */
function union(spans: Span[]): Span[] {
  const sorted = spans.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

function measure(spans: Span[]): number {
  return sum(spans.map(([a, b]) => b - a));
}

/** Measure of the intersection of two disjoint sorted unions. */
function overlap(x: Span[], y: Span[]): number {
  let total = 0;
  let i = 0;
  let j = 0;
  while (i < x.length && j < y.length) {
    const [a0, a1] = x[i]!;
    const [b0, b1] = y[j]!;
    total += Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
    if (a1 < b1) i++;
    else j++;
  }
  return total;
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
