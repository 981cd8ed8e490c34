// Train mode's settings as program constants (templates/runtime/train.cuh reads them): the optimizer, the
// learning-rate schedule, the data and checkpoint settings, and the hash a checkpoint carries so that a resume
// with another model or layout is refused.
import { createHash } from "node:crypto";
import type { LayerKind, ResolvedSpec } from "../spec/resolved.js";
import { doubleLiteral } from "./names.js";

export interface TrainConstant {
  ctype: string;
  name: string;
  value: string;
  comment: string;
}

const SCHEDULE_KIND = {
  cosine: "lasp::kLrCosine",
  linear: "lasp::kLrLinear",
  constant: "lasp::kLrConstant",
} as const;

/**
 * What a checkpoint must match to be resumed: the model (its weights' names, shapes and meaning: layers, decays,
 * feature maps, norms), nothing of the run or the layout. The GPU count is checked on its own (the optimizer's
 * shards are per rank); seq_len, batch and the data may change, as the data position counts windows. 16 hex
 * digits of a SHA-256.
 */
export function modelHash(spec: ResolvedSpec): string {
  // The model's name is a label: renaming it keeps the checkpoints. An unscaled RoPE hashes as before
  // `rope_scaling` existed, so those checkpoints still resume.
  const { name: _name, ...model } = spec.model;
  const unscaled = (kind: LayerKind): object => {
    if (kind.type !== "softmax_attention" || kind.ropeScaling.type !== "none") return kind;
    const { ropeScaling: _none, ...rest } = kind;
    return rest;
  };
  const hashed = { ...model, kinds: model.kinds.map(unscaled), layers: model.layers.map(unscaled) };
  return createHash("sha256").update(JSON.stringify(hashed)).digest("hex").slice(0, 16);
}

export function trainConstants(spec: ResolvedSpec): TrainConstant[] {
  const t = spec.run.train;
  const path = (p: { kind: string; path?: string }): string =>
    JSON.stringify(p.kind === "file" ? p.path : "");
  return [
    {
      ctype: "double",
      name: "kLr",
      value: doubleLiteral(spec.run.lr),
      comment: "train: AdamW's peak learning rate",
    },
    {
      ctype: "double",
      name: "kBeta1",
      value: doubleLiteral(t.betas[0]),
      comment: "train: AdamW's first-moment decay",
    },
    {
      ctype: "double",
      name: "kBeta2",
      value: doubleLiteral(t.betas[1]),
      comment: "train: AdamW's second-moment decay",
    },
    { ctype: "double", name: "kAdamEps", value: doubleLiteral(t.adamEps), comment: "train: AdamW's epsilon" },
    {
      ctype: "double",
      name: "kWeightDecay",
      value: doubleLiteral(t.weightDecay),
      comment: "train: decoupled weight decay on the rows kDecayRows marks",
    },
    {
      ctype: "int64_t",
      name: "kWarmupSteps",
      value: String(t.warmupSteps),
      comment: "train: steps of linear warmup to kLr",
    },
    {
      ctype: "lasp::LrScheduleKind",
      name: "kLrSchedule",
      value: SCHEDULE_KIND[t.lrSchedule],
      comment: `train: lr_schedule ${t.lrSchedule}`,
    },
    {
      ctype: "double",
      name: "kMinLr",
      value: doubleLiteral(t.minLr),
      comment: "train: the rate at the last step",
    },
    {
      ctype: "double",
      name: "kGradClip",
      value: doubleLiteral(t.gradClip),
      comment: "train: the largest global gradient norm (0: no clipping)",
    },
    {
      ctype: "int",
      name: "kAccumulate",
      value: String(t.accumulate),
      comment: "train: micro-batches per step",
    },
    {
      ctype: "int64_t",
      name: "kCheckpointEvery",
      value: String(t.checkpointEvery),
      comment: "train: steps between checkpoints (0: at the end only)",
    },
    {
      ctype: "int64_t",
      name: "kKeepCheckpoints",
      value: String(t.keepCheckpoints),
      comment: "train: checkpoints kept (0: all)",
    },
    {
      ctype: "int64_t",
      name: "kEvalEvery",
      value: String(t.evalEvery),
      comment: "train: steps between evaluations on kEvalData (0: never)",
    },
    {
      ctype: "const char*",
      name: "kData",
      value: path(spec.run.data),
      comment: 'train: the token file ("": synthetic tokens from the seed)',
    },
    {
      ctype: "const char*",
      name: "kEvalData",
      value: path(t.evalData),
      comment: 'train: held-out tokens ("": none)',
    },
    {
      ctype: "int",
      name: "kEvalWindows",
      value: String(EVAL_WINDOWS),
      comment: "train: the most windows of kEvalData one evaluation reads (in file order)",
    },
    {
      ctype: "const char*",
      name: "kModelHash",
      value: JSON.stringify(modelHash(spec)),
      comment: "the model: a checkpoint of another is not resumed",
    },
  ];
}

/** Windows one evaluation reads at most: enough for a steady mean, few enough to stay a small share of a run. */
export const EVAL_WINDOWS = 32;
