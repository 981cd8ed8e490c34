// The numbers `lasp inspect` shows, computed once: the communication table and the cost model's predictions
// (each pass of each layer kind, split into the attention and the projection a schedule runs inside the pass,
// and the weight-gradient sum after each layer's backward). The text, `--json` and `--svg` all render this
// report, so they cannot disagree. Times are seconds, sizes bytes.
import { collectiveTime, type Machine } from "../cost/machine.js";
import { H100_PROFILE, machineOf, type MachineProfile } from "../cost/profile.js";
import { simulateProgram, type PassTimeline, type ProgramTimes } from "../cost/simulate.js";
import type { ScheduleProgram } from "../schedule/ir.js";
import type { LayerKind, ResolvedSpec } from "../spec/resolved.js";
import { attentionWeightElements } from "../schedule/weights.js";
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

/** The sum of a layer's weight gradients (Wq, Wk, Wv, Wo) over every GPU, as the generated program issues it. */
export interface WeightGradientSum {
  collective: "AllReduce";
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
  const machine = machineOf(profile);
  const times = simulateProgram(program, machine);
  return { machine, times, report: inspectReport(spec, program, profile, times) };
}

/** The program keeps weights and their gradients in bf16 whatever the activations' dtype (main.cu.hbs). */
const WEIGHT_BYTES = 2;

/** Elements of a layer's attention weights: Wq and Wo over the heads, Wk and Wv over the kv heads. */
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
  times: ProgramTimes = simulateProgram(program, machineOf(profile)),
): InspectReport {
  const machine = machineOf(profile);
  const model = modelReport(spec);
  const layerCount = (kind: string): number =>
    program.layers.filter((s) => program.schedules[s]!.kind === kind).length;
  const communication = compareStrategies(spec, program).map((row) => ({
    ...row,
    layers: layerCount(row.kind),
  }));
  return {
    communication,
    predictions: predict(program, spec.parallel.gpus, machine, times),
    model,
    step: stepSection(spec, program, profile, model.flops_per_token),
  };
}

/** The predictions of `program` on `machine` when `gpus` GPUs (sequence x data) hold the weights. */
export function predict(
  program: ScheduleProgram,
  gpus: number,
  machine: Machine,
  /** The simulation of `program` on `machine`. */
  times: ProgramTimes,
): Predictions {
  const kinds = times.kinds.map((k): KindPrediction => {
    const elements = attentionWeightElements(program.sizes, program.schedules[k.schedule]!);
    const bytes = elements * WEIGHT_BYTES;
    return {
      kind: k.kind,
      layer: k.layer,
      strategy: k.strategy,
      count: k.count,
      forward: passPrediction(k.forward),
      backward: passPrediction(k.backward),
      weightGradientSum: {
        collective: "AllReduce",
        ranks: gpus,
        elements,
        bytes,
        time: collectiveTime("allreduce", bytes, gpus, machine),
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
