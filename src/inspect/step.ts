// The step section of `lasp inspect`: the whole training step of one rank by part (cost/step.ts's
// predictStep on the chosen machine profile), and on one GPU the tokens/s and MFU it implies. With more than
// one GPU, predictStep prices each rank's own work and its attention's communication but not the weight-gradient
// sum over ranks, the launch gaps or the optimizer, so the section shows the parts and no step total: a total
// that leaves out the sum over ranks would read as a multi-GPU step time and mean something else.
import { predictStep, STEP_PARTS, type StepPart } from "../cost/step.js";
import type { MachineProfile } from "../cost/profile.js";
import type { ScheduleProgram } from "../schedule/ir.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { formatTime, MAX_WIDTH, table, wrap } from "../text/units.js";

/** What predictStep leaves out with more than one GPU (with one, bench mode measures none of it either). */
export const NOT_MODELLED = [
  "the weight-gradient sum over ranks",
  "kernel launch gaps",
  "the optimizer",
] as const;

export interface StepSection {
  /** The machine profile the prediction comes from. */
  profile: string;
  /** GPUs of the spec (sequence x data). */
  gpus: number;
  /** Tokens (rows) of one rank in a step. */
  rowsPerRank: number;
  /** Seconds per part on one rank, as bench mode reports them (runtime/state.cuh). */
  parts: Record<StepPart, number>;
  /** True on one GPU: the parts add up to the step bench mode measures (no optimizer). */
  modelled: boolean;
  /** What the prediction leaves out. */
  notModelled: string[];
  /** The step, s; null with more than one GPU. */
  total: number | null;
  /** Tokens per second of the GPU; null with more than one GPU. */
  tokensPerSecond: number | null;
  /** Model FLOPs per token x tokens/s over the profile's dense bf16 peak; null with more than one GPU. */
  mfu: number | null;
}

export function stepSection(
  spec: ResolvedSpec,
  program: ScheduleProgram,
  profile: MachineProfile,
  /** Training FLOPs per token (model/flops.ts), the MFU's numerator per token. */
  flopsPerToken: number,
): StepSection {
  const prediction = predictStep(spec, program, profile);
  const gpus = spec.parallel.gpus;
  const one = gpus === 1;
  const tokensPerSecond = one ? prediction.rows / prediction.total : null;
  return {
    profile: profile.name,
    gpus,
    rowsPerRank: prediction.rows,
    parts: prediction.parts,
    modelled: one,
    notModelled: one ? ["kernel launch gaps", "the optimizer"] : [...NOT_MODELLED],
    total: one ? prediction.total : null,
    tokensPerSecond,
    mfu: tokensPerSecond === null ? null : (tokensPerSecond * flopsPerToken) / profile.gpu.denseBf16Flops,
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
  const title =
    step.total === null
      ? `Step by part on one rank, predicted from the ${step.profile} profile: each rank's own work and its attention's communication, ${step.rowsPerRank} tokens per rank`
      : `Step by part, predicted from the ${step.profile} profile for one GPU (${step.rowsPerRank} tokens)`;
  const lines =
    step.total === null
      ? [`No step time for ${step.gpus} GPUs yet: the model does not include ${inWords(step.notModelled)}.`]
      : [
          `${Math.round(step.tokensPerSecond!).toLocaleString("en-US")} tokens/s, MFU ${(step.mfu! * 100).toFixed(1)}% of the dense bf16 peak; without ${step.notModelled.join(" or ")} (bench mode's step).`,
        ];
  if (step.total !== null) rows.push(["step", formatTime(step.total)]);
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

/** "a, b and c". */
function inWords(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? "") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}
