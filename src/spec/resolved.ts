// The resolved spec: what the checker hands to every later pass (lowering, reference, codegen). Defaults are
// filled in, schedules of decay are expanded to one value per head, the stack is flattened to one entry per
// layer. Nothing downstream reads the AST.

import type { AutoKey } from "./schema.js";

export type FeatureMap = "identity" | "elu_plus_one" | "relu" | "silu";
export type LinearStrategy = "lasp2" | "lasp1" | "allscan" | "ulysses";
export type SoftmaxStrategy = "allgather" | "ring" | "ulysses";
export type Layout = "contiguous" | "zigzag";
export type DType = "bf16" | "fp16" | "fp32";
export type Mode = "bench" | "verify" | "train";
export type Norm = "rms" | "layernorm";

/** How the per-head decay values were given; `perHead` always holds the numbers. */
export type DecaySchedule = "none" | "fixed" | "list" | "retention" | "lightning";

export interface LinearAttentionKind {
  type: "linear_attention";
  name: string;
  /** Key/value heads when fewer than the query heads (grouped, as a GQA checkpoint's); absent: every head. */
  kvHeads?: number;
  decay: { schedule: DecaySchedule; perHead: number[] };
  featureMap: FeatureMap;
  outputNorm: "rms" | "none";
  causal: boolean;
}

/** RoPE's frequencies scaled as Hugging Face's `rope_scaling` does (src/model/rope.ts computes them). */
export type RopeScaling =
  | { type: "none" }
  | { type: "linear"; factor: number }
  | {
      type: "llama3";
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositions: number;
    };

export interface SoftmaxAttentionKind {
  type: "softmax_attention";
  name: string;
  kvHeads: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  causal: boolean;
}

export type LayerKind = LinearAttentionKind | SoftmaxAttentionKind;

export interface ResolvedModel {
  name: string;
  vocab: number;
  hidden: number;
  ffn: number;
  heads: number;
  headDim: number;
  norm: Norm;
  normEps: number;
  /** The LM head is the embedding transposed (`tie_embeddings`). */
  tieEmbeddings: boolean;
  /** Share of the input tokens masked when every layer is bidirectional (masked-token prediction; `mask_rate`). */
  maskRate: number;
  /** Declared layer kinds by name, in declaration order. */
  kinds: LayerKind[];
  /** The flattened stack: `layers[i]` is the kind of layer i. */
  layers: LayerKind[];
}

export interface ResolvedParallel {
  gpus: number;
  /** Sequence-parallel group size W. */
  sequence: number;
  /** Data-parallel group size. */
  data: number;
  linear: LinearStrategy;
  softmax: SoftmaxStrategy;
  layout: Layout;
  overlap: boolean;
  /** All-Scan's blocks K: each state's dk rows travel in K blocks so the chain pipelines (docs/ALLSCAN.md). */
  scanBlocks: number;
  /** Set when the spec writes `auto` for any of linear, softmax, layout (schema.ts's AUTO). */
  auto?: AutoResolution;
}

/**
 * The keys written `auto` and, once the planner has resolved them (src/plan/auto.ts), what it chose: until
 * then the resolved spec holds the keys' defaults.
 */
export interface AutoResolution {
  keys: AutoKey[];
  /** The planner's choice and why: its tokens/s per GPU, the runner-up's, on which machine profile. */
  chosen?: { label: string; tokensPerSecondPerGpu: number; machine: string };
  runnerUp?: { label: string; tokensPerSecondPerGpu: number };
}

/**
 * What the backward pass makes again instead of keeping (runtime/layer.cuh), each choice including the one
 * before: `none` keeps everything; `norms` (the default) keeps each block norm's input and statistics and makes
 * its output again; `mlp` also makes each layer's gate and up products and SwiGLU's output again.
 */
export type Recompute = "none" | "norms" | "mlp";
/** `recompute`'s choices from keeping the most to keeping the least. */
export const RECOMPUTE_ORDER: readonly Recompute[] = ["none", "norms", "mlp"];

/** A `recompute` choice's memory per GPU and whether it fits the GPU (cost/memory.ts's recomputeFits). */
export interface RecomputeFit {
  recompute: Recompute;
  bytes: number;
  fits: boolean;
}

/**
 * `recompute auto`: until resolved (src/plan/recompute-auto.ts, by the command line's loader) `recompute` holds
 * the default; then the first choice, from keeping the most, whose memory fits the GPU, and what each tried needs.
 */
export interface RecomputeAuto {
  chosen?: {
    recompute: Recompute;
    /** Device memory of the GPU it was fitted to. */
    gpuBytes: number;
    /** Each choice tried, in order, with the bytes per GPU it needs; the last is the one chosen. */
    tried: RecomputeFit[];
  };
}

/** `bytes`: `lasp tokens`' byte-level tokenizer; `folder`: a Hugging Face tokenizer's files, copied. */
export type Tokenizer = { kind: "none" } | { kind: "bytes" } | { kind: "folder"; path: string };

export interface ResolvedRun {
  /**
   * Global sequence length N every pass computes on, in tokens: the spec's `seq_len` padded up to equal pieces
   * of whole kernel blocks (spec/padding.ts).
   */
  seqLen: number;
  /**
   * Tokens of padding at the sequence's end (0 when `seq_len` splits evenly): the last `padding` of the
   * `seqLen` tokens form one document of their own, which no real token attends to and no loss counts.
   */
  padding: number;
  /** Global batch (sequences per step), split over the data-parallel ranks. */
  batch: number;
  dtype: DType;
  /** Activations the backward pass recomputes instead of keeping. */
  recompute: Recompute;
  /** Set when the spec writes `recompute auto`. */
  recomputeAuto?: RecomputeAuto;
  steps: number;
  warmup: number;
  mode: Mode;
  seed: number;
  lr: number;
  data: { kind: "synthetic" } | { kind: "file"; path: string };
  /** The tokenizer written beside config.json (`tokenizer`). */
  tokenizer: Tokenizer;
  /** Where documents end in the packed sequence (attention should not cross a boundary; not generated yet). */
  documents: Documents;
  /** Train mode's optimizer, schedule, checkpoint and evaluation settings (templates/runtime/train.cuh). */
  train: ResolvedTraining;
}

/**
 * Document boundaries. `eos`: a document ends after each `eosToken`; with synthetic data, documents of
 * random lengths with mean `meanLength` (drawn from the seed), undefined with a token file. `index`: from
 * the `.idx` beside a Megatron dataset, which only the program reads.
 */
export type Documents =
  { kind: "none" } | { kind: "eos"; eosToken: number; meanLength: number | undefined } | { kind: "index" };

export type LrSchedule = "cosine" | "linear" | "constant";

export interface ResolvedTraining {
  /** AdamW's moment decay rates (beta1, beta2). */
  betas: [number, number];
  adamEps: number;
  /** Decoupled, on weight matrices (embedding and LM head included), not on norm gains or biases. */
  weightDecay: number;
  /** Steps of linear warmup from 0 to `lr`, at most `steps`. */
  warmupSteps: number;
  lrSchedule: LrSchedule;
  /** The absolute learning rate the schedule ends at, at most `lr`. */
  minLr: number;
  /** The global gradient norm above which gradients are scaled down; 0 = no clipping. */
  gradClip: number;
  /** Micro-batches per optimizer step. */
  accumulate: number;
  /** Steps between checkpoints; 0 = only at the end. */
  checkpointEvery: number;
  /** Latest checkpoints kept; 0 = all. */
  keepCheckpoints: number;
  evalData: { kind: "none" } | { kind: "file"; path: string };
  /** Steps between evaluations; 0 = never. */
  evalEvery: number;
}

export interface ResolvedSpec {
  /** The file the spec came from, as given on the command line. */
  file: string;
  model: ResolvedModel;
  parallel: ResolvedParallel;
  run: ResolvedRun;
}

/** The token block of the kernels: every rank's piece of the sequence is a multiple of it. */
export const KERNEL_BLOCK = 64;

/** Head dimensions the kernels are written for. */
export const SUPPORTED_HEAD_DIMS = [64, 128] as const;
