// The whole training step of one rank on any number of GPUs: step.ts's forward and backward by part, then
// what more than one GPU and train mode add, as the generated program runs them.
//
// - The weight-gradient sum (runtime/grad_sum.cuh, issued by layer.cuh's sum_block): one fp32 sum over every
//   GPU (sequence x data) per block of gradients, issued on its own stream as soon as the backward has written
//   the block: the head's (final norm, untied LM head) after the loss, each layer's after its backward, the
//   embedding's last. Inside one node NCCL 2.28 takes the copy engines (an AlltoAll, a small kernel adding the
//   W slices, an AllGather of the summed slice) where the ranks split the block evenly, else one AllReduce. The
//   sums queue on their stream; the program joins it after the embedding's backward, so the step waits only for
//   what is still queued then (the measured `step.gradient_wait` is ~0 because the join is in the backward).
// - The optimizer (train mode, runtime/optimizer.cuh), memory-bound: the norm pass reads the fp32 gradients
//   (4 B per parameter), AdamW reads gradient, both moments and the master weight's two halves (16 B) and writes
//   the moments and both halves (12 B: runtime/master_weights.cuh). Replicated, every rank does it all; under ZeRO-1 (model/tables.ts's
//   optimizerSharded, the compiler's decision) each rank updates its 1/W slice of every block, the gradient
//   sums leave out their AllGather, and an AllGather of each block's bf16 weights follows the update.
//   `accumulate` > 1 runs the forward and backward (and the sums) once per micro-batch and adds each
//   micro-batch's gradients into a sum (scale_add).
// The blocks are the program's own (model/tables.ts's gradientBlockSpans: each layer's, the head's, the
// embedding's, with the parameter table's alignment), so the copy-engine and ZeRO-1 conditions see what the
// program sees.
//
// Where each backward block ends is not in the step's terms (they are per part, not per layer): the layers'
// share of the step is split one third forward, two thirds backward (a GEMM's backward is two products, its
// forward one), evenly over the layers. That places the sums; it moves no time between parts.
import { parameterCounts } from "../model/parameters.js";
import { gradientBlockSpans, modelTables, optimizerSharded } from "../model/tables.js";
import type { ScheduleProgram } from "../schedule/ir.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { collectiveTime, onCopyEngines } from "./machine.js";
import { machineForGroup, type MachineProfile } from "./profile.js";
import { predictStep, type StepPrediction } from "./step.js";

const FP32 = 4;

/** How the program sums a block of weight gradients over the GPUs. */
export type GradientSumPath = "none" | "copy_engines" | "allreduce";

/** One block of gradients summed over every GPU. */
export interface GradientBlock {
  what: string;
  elements: number;
  path: GradientSumPath;
  /** When the backward has written it (the sum is issued), s from the start of the step. */
  issued: number;
  /** When its sum ends on the gradient stream (after the sums queued before it). */
  done: number;
  /** The sum alone. */
  seconds: number;
}

export interface GradientSumPrediction {
  /** GPUs summed over: sequence x data. */
  ranks: number;
  blocks: GradientBlock[];
  /** The gradient stream's busy time: every block's sum. */
  busy: number;
  /** What the step waits for after the embedding's backward: the sums not hidden behind the backward. */
  exposed: number;
}

export interface OptimizerPrediction {
  parameters: number;
  /** ZeRO-1: each rank updates its 1/W of every block, then the bf16 weights are gathered. */
  sharded: boolean;
  /** The AllGathers of the updated bf16 weights (ZeRO-1; 0 when replicated), s; part of `seconds`. */
  weightGather: number;
  /** Bytes moved per step: the norm pass, AdamW, and the micro-batches' accumulation. */
  bytes: number;
  seconds: number;
}

export interface TrainingStepPrediction {
  /** One micro-batch's forward and backward by part (step.ts). */
  step: StepPrediction;
  gradientSum: GradientSumPrediction;
  /** Train mode's update; null in bench and verify mode (they run none). */
  optimizer: OptimizerPrediction | null;
  /** Micro-batches per step (`accumulate`, train mode; else 1). */
  microBatches: number;
  /** The step: micro-batches x (forward, backward, exposed sums) + the optimizer, s. */
  total: number;
  /** Tokens one step trains on over all GPUs (seq_len x batch x micro-batches). */
  tokens: number;
  /** Tokens per second per GPU. */
  tokensPerSecondPerGpu: number;
}

/** Bytes per parameter of the norm pass (reads the gradient) and AdamW (reads 3 fp32 + 2 x 16 bits, writes
 *  2 fp32 + 2 x 16 bits). */
export const OPTIMIZER_BYTES_PER_PARAMETER = 4 + 16 + 12;

/** Predicts one whole training step of `program` (lowered from `spec`) on `profile`'s GPUs. */
export function predictTrainingStep(
  spec: ResolvedSpec,
  program: ScheduleProgram,
  profile: MachineProfile,
): TrainingStepPrediction {
  const step = predictStep(spec, program, profile);
  const train = spec.run.mode === "train";
  const gradientSum = predictGradientSum(spec, step, profile, gathersGradients(spec));
  const microBatches = train ? spec.run.train.accumulate : 1;
  const optimizer = train ? predictOptimizer(spec, profile, microBatches) : null;
  const total = microBatches * (step.total + gradientSum.exposed) + (optimizer?.seconds ?? 0);
  // Real tokens only: a padded seq_len's padding trains nothing (spec/padding.ts).
  const tokens = (spec.run.seqLen - spec.run.padding) * spec.run.batch * microBatches;
  return {
    step,
    gradientSum,
    optimizer,
    microBatches,
    total,
    tokens,
    tokensPerSecondPerGpu: tokens / spec.parallel.gpus / total,
  };
}

/** The program's blocks of weight gradients: each layer's in order, then the head's, then the embedding's. */
export const blockSpans = (spec: ResolvedSpec) => {
  const tables = modelTables(spec, 1);
  return gradientBlockSpans(tables.parameters, tables.layers, tables.head);
};

/** Whether the gradient sums end with their AllGather: not under train mode's ZeRO-1. */
export function gathersGradients(spec: ResolvedSpec): boolean {
  return !(spec.run.mode === "train" && optimizerSharded(blockSpans(spec), spec.parallel.gpus));
}

/**
 * Time of one fp32 sum of `elements` over `ranks` GPUs, and the path the program takes for it; without
 * `gather` (ZeRO-1) the copy-engine path leaves each rank only its summed slice.
 */
export function gradientSumTime(
  elements: number,
  ranks: number,
  profile: MachineProfile,
  gather = true,
): { path: GradientSumPath; seconds: number } {
  if (ranks <= 1) return { path: "none", seconds: 0 };
  const machine = machineForGroup(profile, ranks);
  const bytes = elements * FP32;
  // NCCL's copy-engine collectives stay inside one node; the block must split evenly (grad_sum.cuh).
  if (ranks <= profile.nvlink.gpusPerNode && elements % ranks === 0) {
    const slice = bytes / ranks;
    // The kernel reads the W slices the AlltoAll brought and writes the summed one.
    const kernel = (bytes + slice) / profile.gpu.hbmAttainable;
    const copy = onCopyEngines(machine);
    return {
      path: "copy_engines",
      seconds:
        collectiveTime("alltoall", bytes, ranks, copy) +
        kernel +
        (gather ? collectiveTime("allgather", slice, ranks, copy) : 0),
    };
  }
  return { path: "allreduce", seconds: collectiveTime("allreduce", bytes, ranks, machine) };
}

/** The sums of one micro-batch's backward, queued on the gradient stream (see the top of this file). */
export function predictGradientSum(
  spec: ResolvedSpec,
  step: StepPrediction,
  profile: MachineProfile,
  /** False under ZeRO-1: each rank keeps only its summed slice. */
  gather = true,
): GradientSumPrediction {
  const ranks = spec.parallel.gpus;
  const L = spec.model.layers.length;
  // The program's blocks: the layers' in order, then the head's, then the embedding's.
  const spans = blockSpans(spec).map((b) => b.elements);
  const layerElements = (i: number): number => spans[i]!;
  const headElements = spans[L]!;
  const embeddingElements = spans[L + 1]!;

  const { parts } = step;
  const layersTime = step.total - parts.lm_head_loss - parts.embedding;
  const layerBackward = L > 0 ? (2 * layersTime) / 3 / L : 0;
  // Issue order and times: the head after the loss, layers last to first, the embedding at the step's end.
  const order: { what: string; elements: number; issued: number }[] = [];
  let t = parts.embedding / 2 + layersTime / 3 + parts.lm_head_loss;
  order.push({ what: "final norm and LM head", elements: headElements, issued: t });
  for (let i = L - 1; i >= 0; i--) {
    t += layerBackward;
    order.push({ what: `layer ${i}`, elements: layerElements(i), issued: t });
  }
  order.push({ what: "embedding", elements: embeddingElements, issued: step.total });

  let free = 0;
  const blocks = order.map((b): GradientBlock => {
    const { path, seconds } = gradientSumTime(b.elements, ranks, profile, gather);
    const done = seconds === 0 ? b.issued : Math.max(free, b.issued) + seconds;
    if (seconds > 0) free = done;
    return { ...b, path, seconds, done };
  });
  return {
    ranks,
    blocks,
    busy: blocks.reduce((s, b) => s + b.seconds, 0),
    exposed: Math.max(0, free - step.total),
  };
}

/** Train mode's optimizer: memory-bound passes over the parameters a rank updates, and ZeRO-1's gathers. */
export function predictOptimizer(
  spec: ResolvedSpec,
  profile: MachineProfile,
  microBatches: number,
): OptimizerPrediction {
  const parameters = parameterCounts(spec.model).total;
  const gpus = spec.parallel.gpus;
  const spans = blockSpans(spec);
  const sharded = optimizerSharded(spans, gpus);
  // scale_add per micro-batch: the first writes the sum from the gradients (read 4, write 4), each later one
  // reads the sum too (12); the mean's scaling reads and writes it once more (8).
  const accumulation = microBatches > 1 ? 8 + 12 * (microBatches - 1) + 8 : 0;
  const updated = sharded ? parameters / gpus : parameters;
  const bytes = updated * (OPTIMIZER_BYTES_PER_PARAMETER + accumulation);
  // ZeRO-1: every block's bf16 weights gathered from the ranks' slices, one after another.
  const machine = machineForGroup(profile, gpus);
  const weightGather = sharded
    ? spans.reduce((t, b) => t + collectiveTime("allgather", (b.elements / gpus) * 2, gpus, machine), 0)
    : 0;
  return {
    parameters,
    sharded,
    weightGather,
    bytes,
    seconds: bytes / profile.gpu.hbmAttainable + weightGather,
  };
}
