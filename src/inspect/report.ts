// The numbers `lasp inspect` shows, computed once: the communication table and the cost model's predictions
// (each pass of each layer kind, split into the attention and the projection a schedule runs inside the pass,
// and the weight-gradient sum after each layer's backward). The text, `--json` and `--svg` all render this
// report, so they cannot disagree. Times are seconds, sizes bytes.
import type { Machine } from "../cost/machine.js";
import { H100_PROFILE, machineForGroup, type MachineProfile } from "../cost/profile.js";
import {
  blockSpans,
  gathersGradients,
  gradientSumTime,
  type GradientSumPath,
} from "../cost/training-step.js";
import { simulateProgram, type PassTimeline, type ProgramTimes } from "../cost/simulate.js";
import type { ScheduleProgram } from "../schedule/ir.js";
import type { LayerKind, ResolvedSpec } from "../spec/resolved.js";
import { compareStrategies, type StrategyRow } from "./compare.js";
import { modelReport, type ModelReport } from "./model.js";
import { stepSection, type StepSection } from "./step.js";

export interface CommunicationRow extends StrategyRow {
  /** Layers of the stack that use this kind. */
  layers: number;
}

export interface PassPrediction {
  /** The whole pass (its makespan): what the SVG draws. */
  pass: number;
  /** The layer's projection that the schedule runs inside the pass (LASP-2's Q projection or dWo), else 0. */
  projection: number;
  /** pass - projection: the attention itself, comparable across strategies. */
  attention: number;
  /** Communication summed over ranks, and the share of it that overlaps computation. */
  comm: number;
  hiddenFraction: number;
}

/**
 * The sum of a layer's fp32 weight gradients (its norms, attention and MLP: one block) over every GPU, as the
 * generated program issues it (runtime/grad_sum.cuh; cost/training-step.ts prices it).
 */
export interface WeightGradientSum {
  /**
   * "copy engines" (AlltoAll, a sum kernel, AllGather) inside a node, else "AllReduce"; "none" on one GPU,
   * where the program issues no sum (layer.cuh returns before it when the world is one rank).
   */
  collective: "AllReduce" | "copy engines" | "none";
  /** Every GPU holds a replica: sequence x data. */
  ranks: number;
  elements: number;
  bytes: number;
  /** Predicted time of one sum; it runs on its own stream beside the backward, outside the pass times. */
  time: number;
}

export interface KindPrediction {
  kind: string;
  layer: LayerKind["type"];
  strategy: string;
  /** Layers of the stack that use this kind. */
  count: number;
  forward: PassPrediction;
  backward: PassPrediction;
  weightGradientSum: WeightGradientSum;
}

export interface StepPrediction {
  /** Sums over the stack's layers of both passes. */
  passes: number;
  attention: number;
  projection: number;
  /** Every layer's weight-gradient sum, one after another on their stream. */
  weightGradientSums: number;
  /** Of all the schedules' communication (summed over ranks), the share that overlaps computation. */
  hiddenFraction: number;
}

export interface Predictions {
  machine: string;
  kinds: KindPrediction[];
  step: StepPrediction;
}

export interface InspectReport {
  communication: CommunicationRow[];
  predictions: Predictions;
  /** The whole model: parameters per part and training FLOPs per token (model.ts). */
  model: ModelReport;
  /** The whole step of one rank by part, from the machine profile (step.ts). */
  step: StepSection;
}

/**
 * Everything the text, `--json` and `--svg` show, computed once for one machine profile: the simulator's view
 * of it, the simulation of every pass on it, and the report the three render.
 */
export interface InspectNumbers {
  machine: Machine;
  times: ProgramTimes;
  report: InspectReport;
}

export function inspectNumbers(
  spec: ResolvedSpec,
  program: ScheduleProgram,
  profile: MachineProfile = H100_PROFILE,
): InspectNumbers {
  const machine = machineForGroup(profile, spec.parallel.sequence);
  const times = simulateProgram(program, machine);
  return { machine, times, report: inspectReport(spec, program, profile, times) };
}

/** The program sums fp32 weight gradients (the optimizer's master weights are fp32). */
const GRADIENT_BYTES = 4;

const COLLECTIVE: Record<GradientSumPath, WeightGradientSum["collective"]> = {
  none: "none",
  allreduce: "AllReduce",
  copy_engines: "copy engines",
};

function passPrediction(t: PassTimeline): PassPrediction {
  return {
    pass: t.makespan,
    projection: t.projectionTime,
    attention: t.attentionTime,
    comm: t.commTime,
    hiddenFraction: t.hiddenFraction,
  };
}

export function inspectReport(
  spec: ResolvedSpec,
  program: ScheduleProgram,
  profile: MachineProfile = H100_PROFILE,
  /** The simulation on the profile's machine, where the caller has it already (inspectNumbers). */
  times: ProgramTimes = simulateProgram(program, machineForGroup(profile, spec.parallel.sequence)),
): InspectReport {
  const model = modelReport(spec);
  const layerCount = (kind: string): number =>
    program.layers.filter((s) => program.schedules[s]!.kind === kind).length;
  const communication = compareStrategies(spec, program).map((row) => ({
    ...row,
    layers: layerCount(row.kind),
  }));
  return {
    communication,
    predictions: predict(spec, program, profile, times),
    model,
    step: stepSection(spec, program, profile, model.flops_per_token),
  };
}

/** The predictions of `program` (lowered from `spec`) on `profile`'s GPUs: every GPU holds the weights. */
export function predict(
  spec: ResolvedSpec,
  program: ScheduleProgram,
  profile: MachineProfile,
  /** The simulation of `program` on the profile's machine. */
  times: ProgramTimes,
): Predictions {
  const gpus = spec.parallel.gpus;
  const blocks = blockSpans(spec);
  const gather = gathersGradients(spec);
  const kinds = times.kinds.map((k): KindPrediction => {
    // The block of the first layer of this kind (every layer of a kind has the same weights).
    const layer = program.layers.indexOf(k.schedule);
    const elements = blocks[layer]!.elements;
    const bytes = elements * GRADIENT_BYTES;
    const sum = gradientSumTime(elements, gpus, profile, gather);
    return {
      kind: k.kind,
      layer: k.layer,
      strategy: k.strategy,
      count: k.count,
      forward: passPrediction(k.forward),
      backward: passPrediction(k.backward),
      weightGradientSum: {
        collective: COLLECTIVE[sum.path],
        ranks: gpus,
        elements,
        bytes,
        time: sum.seconds,
      },
    };
  });
  const total = (f: (k: KindPrediction) => number): number => kinds.reduce((a, k) => a + k.count * f(k), 0);
  return {
    machine: times.machine,
    kinds,
    step: {
      passes: total((k) => k.forward.pass + k.backward.pass),
      attention: total((k) => k.forward.attention + k.backward.attention),
      projection: total((k) => k.forward.projection + k.backward.projection),
      weightGradientSums: total((k) => k.weightGradientSum.time),
      hiddenFraction: times.hiddenFraction,
    },
  };
}
