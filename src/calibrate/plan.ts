// What `lasp calibrate` measures: the benchmark plan. Pure: from a spec (or the default, Linear-Llama3-1B at
// 16K tokens per GPU, the shape of bench/results' whole-model runs) and the number of visible GPUs to a list
// of numbered benchmarks, which the microbenchmark program reads as plan.txt (planText) and answers by number.
//
// - GEMMs at the model's product shapes on one rank's tokens, with the operand layouts the program's calls
//   use (runtime/layer.cuh: weights stored [out][in]): each projection's forward, input gradient and weight
//   gradient (whose inner dimension is the tokens), and the LM head over one chunk of the loss. Products
//   that coincide are measured once.
// - lasp's attention kernels at one rank's piece: the linear kernels (LASP-2's per-rank forward and backward)
//   and the softmax kernels (and cuDNN's fused attention, where the build found it).
// - LASP-2H's gathered calls on cuDNN (every rank of a zigzag layout of GATHERED_RANKS ranks in turn, on one
//   GPU) beside cuDNN's call over the whole sequence they split: the pieces' share of cuDNN's rate.
// - A streaming copy and add over buffers far larger than the L2 cache: attainable HBM bandwidth.
// - With two GPUs or more, the NCCL collectives over sizes from 64 KiB to 256 MiB (nccl-tests' sizes: the
//   whole buffer, the output of an AllGather, the input of a ReduceScatter); and the AllGather and AlltoAll
//   once more on the copy engines (`*_ce`: a communicator with CTA policy zero, symmetric windows), as the
//   program runs LASP-2's state gathers and the weight-gradient sums (templates/runtime/comm.cuh).
import { classifierChunk } from "../model/tables.js";
import type { ResolvedSpec } from "../spec/resolved.js";

/** The collectives on NCCL's copy engines (NCCL 2.28+): no SM, only where NCCL registers symmetric windows. */
export type CopyEngineOp = "all_gather_ce" | "all_to_all_ce";
export const COPY_ENGINE_OPS: readonly CopyEngineOp[] = ["all_gather_ce", "all_to_all_ce"];
export type CollectiveOp =
  "all_gather" | "reduce_scatter" | "all_reduce" | "all_to_all" | "send_recv" | CopyEngineOp;
export const COLLECTIVE_OPS: readonly CollectiveOp[] = [
  "all_gather",
  "reduce_scatter",
  "all_reduce",
  "all_to_all",
  ...COPY_ENGINE_OPS,
  "send_recv",
];

/** Whether a collective runs on the copy engines (its `*_ce` kind). */
export const onCopyEngines = (op: string): op is CopyEngineOp =>
  (COPY_ENGINE_OPS as readonly string[]).includes(op);

/** One benchmark; `id` is its line in plan.txt and the number the program's measurement carries. */
export type Benchmark =
  | {
      id: number;
      kind: "gemm";
      label: string;
      m: number;
      n: number;
      k: number;
      /** op(A) = A^T (A stored [k][m]) and op(B) = B^T (B stored [n][k]), as runtime/blas.cuh's matmul takes them. */
      transA: boolean;
      transB: boolean;
      /** Each timed batch runs at least this long (GEMM_BATCH_MS). */
      batchMs: number;
      /** Run untimed this long before any benchmark (GEMM_HEAT_MS on the plan's largest GEMM, else 0). */
      heatMs: number;
    }
  | { id: number; kind: "copy" | "add"; bytes: number }
  | {
      id: number;
      kind: "linear_forward" | "linear_backward";
      tokens: number;
      heads: number;
      headDim: number;
      causal: boolean;
    }
  | {
      id: number;
      kind: "softmax_forward" | "softmax_backward";
      backend: "lasp" | "cudnn";
      tokens: number;
      heads: number;
      kvHeads: number;
      headDim: number;
      causal: boolean;
    }
  | {
      id: number;
      /** LASP-2H's gathered calls of every rank, forward and backward, and the whole sequence's call beside them. */
      kind: "softmax_gathered";
      backend: "cudnn";
      /** One rank's query tokens; the sequence is ranks x tokens. */
      tokens: number;
      ranks: number;
      layout: "zigzag" | "contiguous";
      heads: number;
      kvHeads: number;
      headDim: number;
      causal: boolean;
    }
  | { id: number; kind: CollectiveOp; bytes: number };

export type BenchmarkKind = Benchmark["kind"];

/** Which launch runs a benchmark: one process on GPU 0, or one per GPU. */
export const partOf = (b: Benchmark): "compute" | "collectives" =>
  (COLLECTIVE_OPS as readonly string[]).includes(b.kind) ? "collectives" : "compute";

export interface CalibrationPlan {
  /** Where the shapes come from: the spec's file, or the default model. */
  source: string;
  /** Tokens of one rank (batch included) the shapes use. */
  tokens: number;
  gpus: number;
  benchmarks: Benchmark[];
}

/** The shapes a plan needs from a model. */
export interface ShapeSource {
  name: string;
  hidden: number;
  ffn: number;
  heads: number;
  headDim: number;
  vocab: number;
  /** KV heads of the softmax layers; undefined when the model has none (the default model's S layer then). */
  softmaxKvHeads: number | undefined;
  hasLinear: boolean;
  causal: boolean;
  /** One rank's tokens: its piece of the sequence times its share of the batch. */
  tokens: number;
}

/** Linear-Llama3-1B (examples/linear-llama3-1b-hybrid.lasp) at 16K tokens on one GPU. */
export const DEFAULT_SHAPES: ShapeSource = {
  name: "Linear-Llama3-1B hybrid (the default)",
  hidden: 2048,
  ffn: 8192,
  heads: 16,
  headDim: 128,
  vocab: 128256,
  softmaxKvHeads: 8,
  hasLinear: true,
  causal: true,
  tokens: 16384,
};

/**
 * A GPU's tokens are capped here: the benchmarks are about rates, which longer pieces do not change, and a
 * softmax benchmark grows with the square of the tokens (a few minutes at most, the brief says).
 */
export const MAX_TOKENS = 65536;

/** The gathered benchmark's ranks, zigzag: bench/results/2026-12-06-gathered-h100.md's 0.85 at 64K tokens was W 4's. */
export const GATHERED_RANKS = 4;

/**
 * A rank's tokens in the gathered benchmark are a multiple of this: its two zigzag halves each whole 64-row
 * tiles of lasp's kernels (the calls take any piece, but edge tiles would bias the rate).
 */
export const GATHERED_TOKEN_MULTIPLE = 2 * 64;

/**
 * One rank's tokens in the gathered benchmark: a rank's `tokens`, lowered until the whole sequence (ranks x
 * them) is within MAX_TOKENS, in whole GATHERED_TOKEN_MULTIPLEs (one at least).
 */
export function gatheredRankTokens(tokens: number, ranks: number): number {
  const capped = Math.min(tokens, Math.floor(MAX_TOKENS / ranks));
  const aligned = Math.floor(capped / GATHERED_TOKEN_MULTIPLE) * GATHERED_TOKEN_MULTIPLE;
  return Math.max(aligned, GATHERED_TOKEN_MULTIPLE);
}

/**
 * A GEMM is timed under sustained load, as a training step's GEMMs run (clocks settled under the power limit,
 * not boosted between synchronisations): in batches of at least GEMM_BATCH_MS, after the plan's largest GEMM
 * has run for GEMM_HEAT_MS (twice: the program's untimed and timed batch). Single calls between
 * synchronisations read well above the programs' own GEMM rate (docs/PLAN.md, "lasp calibrate").
 */
export const GEMM_BATCH_MS = 25;
export const GEMM_HEAT_MS = 1000;

/** Buffer sizes of the streaming kernels: every one beyond any L2 (50 MB on H100); the largest is the rate. */
export const STREAM_BYTES = [256 * 2 ** 20, 1024 * 2 ** 20];

/** Collective sizes: 64 KiB to 256 MiB, times 4. */
export const COLLECTIVE_BYTES = [16, 18, 20, 22, 24, 26, 28].map((e) => 2 ** e);

export function shapesOf(spec: ResolvedSpec): ShapeSource {
  const { model, parallel, run } = spec;
  const softmax = model.kinds.find((k) => k.type === "softmax_attention");
  const perRankBatch = Math.max(1, Math.floor(run.batch / parallel.data));
  return {
    name: spec.file,
    hidden: model.hidden,
    ffn: model.ffn,
    heads: model.heads,
    headDim: model.headDim,
    vocab: model.vocab,
    softmaxKvHeads: softmax?.type === "softmax_attention" ? softmax.kvHeads : undefined,
    hasLinear: model.kinds.some((k) => k.type === "linear_attention"),
    causal: model.layers.some((k) => k.causal),
    tokens: (run.seqLen / parallel.sequence) * perRankBatch,
  };
}

export function calibrationPlan(shapes: ShapeSource, gpus: number): CalibrationPlan {
  const tokens = Math.min(shapes.tokens, MAX_TOKENS);
  const { hidden, ffn, heads, headDim, vocab } = shapes;
  const width = heads * headDim;
  const kv = shapes.softmaxKvHeads ?? heads;
  const benchmarks: Benchmark[] = [];
  const add = (b: DistributiveOmit<Benchmark, "id">): void => {
    benchmarks.push({ ...b, id: benchmarks.length } as Benchmark);
  };

  // Row-major C[m][n] = op(A)[m][k] op(B)[k][n], weights W[out][in]: forward y = x W^T, input gradient
  // dx = dy W, weight gradient dW = dy^T x.
  const projections: [string, number, number][] = [
    ["qkv", hidden, (heads + 2 * kv) * headDim],
    ["o", width, hidden],
    ["mlp.gate_up", hidden, 2 * ffn],
    ["mlp.down", ffn, hidden],
  ];
  const seen = new Set<string>();
  const gemm = (label: string, m: number, n: number, k: number, transA: boolean, transB: boolean): void => {
    const key = `${m} ${n} ${k} ${transA} ${transB}`;
    if (seen.has(key)) return;
    seen.add(key);
    add({ kind: "gemm", label, m, n, k, transA, transB, batchMs: GEMM_BATCH_MS, heatMs: 0 });
  };
  for (const [name, fanIn, fanOut] of projections) {
    gemm(`${name} forward`, tokens, fanOut, fanIn, false, true);
    gemm(`${name} input gradient`, tokens, fanIn, fanOut, false, false);
    gemm(`${name} weight gradient`, fanOut, fanIn, tokens, true, false);
  }
  gemm("lm_head forward (one chunk)", classifierChunk(tokens, vocab), vocab, hidden, false, true);
  const largest = benchmarks.reduce<Extract<Benchmark, { kind: "gemm" }> | undefined>(
    (top, b) =>
      b.kind === "gemm" && (top === undefined || b.m * b.n * b.k > top.m * top.n * top.k) ? b : top,
    undefined,
  );
  if (largest !== undefined) largest.heatMs = GEMM_HEAT_MS;

  if (shapes.hasLinear) {
    for (const kind of ["linear_forward", "linear_backward"] as const)
      add({ kind, tokens, heads, headDim, causal: shapes.causal });
  }
  // The softmax kernels set the attention rate (compute-bound, unlike the linear ones): measured for every
  // spec, at the default model's grouping when the spec has no softmax layer.
  const softmax = {
    heads: shapes.softmaxKvHeads === undefined ? DEFAULT_SHAPES.heads : heads,
    kvHeads: shapes.softmaxKvHeads ?? DEFAULT_SHAPES.softmaxKvHeads!,
    headDim: shapes.softmaxKvHeads === undefined ? DEFAULT_SHAPES.headDim : headDim,
    causal: shapes.causal,
  };
  for (const backend of ["lasp", "cudnn"] as const) {
    for (const kind of ["softmax_forward", "softmax_backward"] as const)
      add({ kind, backend, tokens, ...softmax });
  }
  // LASP-2H's gathered calls at the same shapes, a rank holding this rank's tokens (gpu.gatheredAttentionEfficiency).
  add({
    kind: "softmax_gathered",
    backend: "cudnn",
    tokens: gatheredRankTokens(tokens, GATHERED_RANKS),
    ranks: GATHERED_RANKS,
    layout: "zigzag",
    ...softmax,
  });
  for (const bytes of STREAM_BYTES) for (const kind of ["copy", "add"] as const) add({ kind, bytes });
  if (gpus > 1) {
    for (const kind of COLLECTIVE_OPS) for (const bytes of COLLECTIVE_BYTES) add({ kind, bytes });
  }
  return { source: shapes.name, tokens, gpus, benchmarks };
}

/** Omit over each member of a union. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** The plan as the program reads it: one benchmark per line, `ID KIND NUMBERS...` (templates/calibrate/main.cu). */
export function planText(benchmarks: readonly Benchmark[]): string {
  const line = (b: Benchmark): string => {
    switch (b.kind) {
      case "gemm":
        return `${b.id} gemm ${b.m} ${b.n} ${b.k} ${b.transA ? 1 : 0} ${b.transB ? 1 : 0} ${b.batchMs} ${b.heatMs}`;
      case "linear_forward":
      case "linear_backward":
        return `${b.id} ${b.kind} ${b.tokens} ${b.heads} ${b.headDim} ${b.causal ? 1 : 0}`;
      case "softmax_forward":
      case "softmax_backward":
        return `${b.id} ${b.kind} ${b.tokens} ${b.heads} ${b.kvHeads} ${b.headDim} ${b.causal ? 1 : 0} ${b.backend}`;
      case "softmax_gathered":
        return `${b.id} ${b.kind} ${b.tokens} ${b.heads} ${b.kvHeads} ${b.headDim} ${b.causal ? 1 : 0} ${b.ranks} ${b.layout === "zigzag" ? 1 : 0} ${b.backend}`;
      default:
        return `${b.id} ${b.kind} ${b.bytes}`;
    }
  };
  return benchmarks.map(line).join("\n") + "\n";
}

const MIB = 2 ** 20;
const size = (bytes: number): string => (bytes >= MIB ? `${bytes / MIB} MiB` : `${bytes / 1024} KiB`);

/** What a benchmark is, in words, for progress lines and --dry-run. */
export function describeBenchmark(b: Benchmark): string {
  switch (b.kind) {
    case "gemm":
      return `GEMM ${b.label} (${b.m} x ${b.n} x ${b.k}${b.transA || b.transB ? `, ${b.transA ? "A" : ""}${b.transB ? "B" : ""} transposed` : ""})`;
    case "copy":
    case "add":
      return `HBM ${b.kind} (${size(b.bytes)} per buffer)`;
    case "linear_forward":
    case "linear_backward":
      return `lasp ${b.kind.replace("_", " ")} (${b.tokens} tokens, ${b.heads} x ${b.headDim}${b.causal ? ", causal" : ""})`;
    case "softmax_forward":
    case "softmax_backward":
      return `${b.backend === "cudnn" ? "cuDNN" : "lasp"} ${b.kind.replace("_", " ")} (${b.tokens} tokens, ${b.heads} x ${b.headDim}, ${b.kvHeads} KV heads${b.causal ? ", causal" : ""})`;
    case "softmax_gathered":
      return `cuDNN LASP-2H gathered forward and backward against the whole sequence (${b.ranks} ranks ${b.layout}, ${b.ranks * b.tokens} tokens, ${b.heads} x ${b.headDim}, ${b.kvHeads} KV heads${b.causal ? ", causal" : ""})`;
    case "all_gather_ce":
    case "all_to_all_ce":
      return `NCCL ${b.kind.replace("_ce", "")} on the copy engines (CTA policy zero, symmetric windows; ${size(b.bytes)})`;
    default:
      return `NCCL ${b.kind} (${size(b.bytes)})`;
  }
}
