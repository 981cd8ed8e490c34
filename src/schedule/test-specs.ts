// Small resolved specs for tests of the schedule passes, built directly (the checker's size rules, such as
// head dims 64 and 128, do not bind the reduced sizes the reference executor runs at).
import type {
  LayerKind,
  Layout,
  LinearAttentionKind,
  ResolvedSpec,
  SoftmaxAttentionKind,
} from "../spec/resolved.js";

export interface TinyOptions {
  ranks: number;
  layout: Layout;
  /** The length the passes compute on; with `padding`, its last `padding` tokens are the padding document. */
  seqLen: number;
  padding?: number;
  heads?: number;
  headDim?: number;
  batch?: number;
  linear?: "lasp2" | "lasp1" | "allscan" | "ulysses";
  /** All-Scan's blocks K (default 2: the chain pipelines at the reduced head dims). */
  scanBlocks?: number;
  softmax?: "allgather" | "ring" | "ulysses";
  overlap?: boolean;
  layers: LayerKind[];
}

export function linearKind(
  name: string,
  heads: number,
  decay: number[] | number = 1,
  causal = true,
): LinearAttentionKind {
  const perHead = Array.isArray(decay) ? decay : Array(heads).fill(decay);
  const schedule = perHead.every((x) => x === 1) ? "none" : Array.isArray(decay) ? "list" : "fixed";
  return {
    type: "linear_attention",
    name,
    decay: { schedule, perHead },
    featureMap: "identity",
    outputNorm: "none",
    causal,
  };
}

export function softmaxKind(name: string, kvHeads: number, causal = true): SoftmaxAttentionKind {
  return {
    type: "softmax_attention",
    name,
    kvHeads,
    ropeTheta: 10000,
    ropeScaling: { type: "none" },
    causal,
  };
}

export function tinySpec(o: TinyOptions): ResolvedSpec {
  const heads = o.heads ?? 4;
  const headDim = o.headDim ?? 8;
  return {
    file: "tiny.lasp",
    model: {
      name: "tiny",
      vocab: 64,
      hidden: heads * headDim,
      ffn: 64,
      heads,
      headDim,
      norm: "rms",
      normEps: 1e-5,
      tieEmbeddings: false,
      maskRate: 0.15,
      kinds: o.layers,
      layers: o.layers,
    },
    parallel: {
      gpus: o.ranks,
      sequence: o.ranks,
      data: 1,
      linear: o.linear ?? "lasp2",
      softmax: o.softmax ?? "allgather",
      layout: o.layout,
      overlap: o.overlap ?? true,
      scanBlocks: o.scanBlocks ?? 2,
    },
    run: {
      seqLen: o.seqLen,
      padding: o.padding ?? 0,
      batch: o.batch ?? 1,
      dtype: "fp32",
      recompute: "none",
      steps: 1,
      warmup: 0,
      mode: "verify",
      seed: 1,
      lr: 3e-4,
      data: { kind: "synthetic" },
      tokenizer: { kind: "none" },
      documents: { kind: "none" },
      // The schema's defaults for a 1-step run (train mode is not generated; nothing here reads them).
      train: {
        betas: [0.9, 0.95],
        adamEps: 1e-8,
        weightDecay: 0.1,
        warmupSteps: 0,
        lrSchedule: "cosine",
        minLr: 3e-5,
        gradClip: 1,
        accumulate: 1,
        checkpointEvery: 0,
        keepCheckpoints: 3,
        evalData: { kind: "none" },
        evalEvery: 0,
      },
    },
  };
}
