// The step section of `lasp inspect`: the whole training step of one rank by part (cost/step.ts's
// predictStep on the chosen machine profile), what more than one GPU and train mode add (cost/training-step.ts:
// the weight-gradient sums the backward does not hide, the optimizer), and the tokens/s per GPU and MFU the step
// implies. `lasp plan` ranks choices by the same section, so the two never disagree.
import { STEP_PARTS, type StepPart } from "../cost/step.js";
import { predictTrainingStep } from "../cost/training-step.js";
import type { MachineProfile } from "../cost/profile.js";
import type { ScheduleProgram } from "../schedule/ir.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { formatTime, MAX_WIDTH, table, wrap } from "../text/units.js";

export interface StepSection {
  /** The machine profile the prediction comes from. */
  profile: string;
  /** GPUs of the spec (sequence x data). */
  gpus: number;
  /** Tokens (rows) of one rank in a micro-batch. */
  rowsPerRank: number;
  /** Seconds per part of one micro-batch on one rank, as bench mode reports them (runtime/state.cuh). */
  parts: Record<StepPart, number>;
  /** True: the step below is predicted (kept for readers of the JSON written before it always was). */
  modelled: boolean;
  /** What the prediction leaves out. */
  notModelled: string[];
  /** The weight-gradient sums over every GPU: their whole time, and what the backward leaves exposed, s. */
  gradientSum: { busy: number; exposed: number };
  /** Train mode's optimizer step, s; null in bench and verify mode. */
  optimizer: number | null;
  /** Micro-batches per step (`accumulate` in train mode, else 1). */
  microBatches: number;
  /** The step, s: micro-batches x (the parts + exposed sums) + the optimizer. */
  total: number;
  /** Tokens per second per GPU. */
  tokensPerSecond: number;
  /** Model FLOPs per token x tokens/s per GPU over the profile's dense bf16 peak. */
  mfu: number;
}

export function stepSection(
  spec: ResolvedSpec,
  program: ScheduleProgram,
  profile: MachineProfile,
  /** Training FLOPs per token (model/flops.ts), the MFU's numerator per token. */
  flopsPerToken: number,
): StepSection {
  const prediction = predictTrainingStep(spec, program, profile);
  const tokensPerSecond = prediction.tokensPerSecondPerGpu;
  return {
    profile: profile.name,
    gpus: spec.parallel.gpus,
    rowsPerRank: prediction.step.rows,
    parts: prediction.step.parts,
    modelled: true,
    notModelled: ["kernel launch gaps"],
    gradientSum: { busy: prediction.gradientSum.busy, exposed: prediction.gradientSum.exposed },
    optimizer: prediction.optimizer?.seconds ?? null,
    microBatches: prediction.microBatches,
    total: prediction.total,
    tokensPerSecond,
    mfu: (tokensPerSecond * flopsPerToken) / profile.gpu.denseBf16Flops,
  };
}

const LABELS: Record<StepPart, string> = {
  embedding: "embedding",
  norms: "norms",
  attention_projections: "attention projections",
  attention_core: "attention core",
  mlp: "MLP",
  lm_head_loss: "LM head and loss",
};

export function stepText(step: StepSection, width: number = MAX_WIDTH): string {
  const rows = STEP_PARTS.map((p) => [LABELS[p], formatTime(step.parts[p])]);
  const one = step.gpus === 1;
  if (!one) rows.push(["gradient sums left after the backward", formatTime(step.gradientSum.exposed)]);
  if (step.optimizer !== null) rows.push(["optimizer (AdamW)", formatTime(step.optimizer)]);
  rows.push(["step", formatTime(step.total)]);
  const title = one
    ? `Step by part, predicted from the ${step.profile} profile for one GPU (${step.rowsPerRank} tokens)`
    : `Step by part on one rank, predicted from the ${step.profile} profile for ${step.gpus} GPUs (${step.rowsPerRank} tokens per rank)`;
  const lines = [
    `${Math.round(step.tokensPerSecond).toLocaleString("en-US")} tokens/s${one ? "" : " per GPU"}, MFU ${(step.mfu * 100).toFixed(1)}% of the dense bf16 peak; without ${step.notModelled.join(" or ")}.`,
  ];
  if (step.microBatches > 1)
    lines.push(`The parts are one micro-batch's; the step runs ${step.microBatches} of them.`);
  if (!one)
    lines.push(
      `The weight-gradient sums take ${formatTime(step.gradientSum.busy)} on their own stream beside the backward; what is left after it is in the step.`,
    );
  return [
    wrap(title, width).join("\n"),
    table(["part", "time"], rows, "  ", width),
    ...lines.map((line) =>
      wrap(line, width - 2)
        .map((l) => `  ${l}`)
        .join("\n"),
    ),
  ].join("\n");
}
