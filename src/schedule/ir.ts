// The schedule IR: for every layer kind, pass and rank, the ordered steps of computation and communication.
// It is the single source of truth downstream of the checker: the reference executor proves it exact, the
// cost model times it, the code generator emits it and `lasp inspect` shows it. Nothing downstream
// re-derives a schedule. Field names are part of `lasp inspect --json`'s documented output: keep them stable.
import type { DType, LayerKind, Layout } from "../spec/resolved.js";

/** Version of the JSON form; bump on any incompatible change of the fields below. */
export const IR_VERSION = 1;

export type Stream = "compute" | "comm";
export type Pass = "forward" | "backward";

/** A contiguous run of global token positions held by one rank. */
export interface Piece {
  /** Index of the piece in global order (0 .. pieces-1). */
  index: number;
  rank: number;
  /** First global token position. */
  start: number;
  length: number;
}

/** How the sequence is split: the same for every layer, so activations never move between layers. */
export interface LayoutPlan {
  layout: Layout;
  /** Sequence-parallel group size W. */
  ranks: number;
  /** All pieces in global order. */
  pieces: Piece[];
  /** For each rank, its pieces in local order (local token i of piece j is row offset + i). */
  byRank: Piece[][];
}

export interface BufferDecl {
  name: string;
  /** Per-rank shape, outermost first. */
  shape: number[];
  /**
   * When set, the first dimension indexes slots of this many entries (pieces, source ranks, ring buffers,
   * destination ranks); the dimension after the slots (or the first, without slots) is always the batch.
   */
  slots?: number;
  dtype: DType | "fp32";
  /** What the buffer holds, in words. */
  doc: string;
  /** Inputs are written before the layer's pass begins (activations, cached values, incoming gradients). */
  input?: boolean;
}

export type ComputeOp =
  // linear attention (per piece; `piece` is the local piece index)
  | "linear.state" // M = sum_j lam^(C-1-j) k_j^T v_j
  | "linear.intra" // O_intra, the masked product inside the piece (chunk algorithm)
  | "linear.prefix" // P for a piece from the gathered states (AllGather) or the total (AllReduce)
  | "linear.inter" // O += lam^(i+1) q_i P
  | "linear.ring_forward" // LASP-1: P_next = lam^C P + M
  | "linear.grad_state" // dM = sum_i lam^(i+1) q_i^T do_i
  | "linear.intra_backward" // dQ, dK, dV inside the piece
  | "linear.dq_inter" // dq_i += lam^(i+1) do_i P^T
  | "linear.suffix" // G for a piece from the gathered dM (or the total)
  | "linear.dkdv_inter" // dk_j += lam^(C-1-j) v_j G^T, dv_j += lam^(C-1-j) k_j G
  | "linear.ring_backward" // LASP-1: G_prev = lam^C G + dM
  | "linear.forward_fused" // LASP-2: O = intra + lam^(i+1) q_i P in one walk (params.prefix: P is read)
  | "linear.backward_fused" // LASP-2: dQ, dK, dV inside the piece plus the P and G terms (params.prefix, .suffix)
  | "linear.full" // Ulysses: whole-sequence linear attention on a head shard, forward
  | "linear.full_backward"
  // softmax attention
  | "softmax.block" // flash attention of local queries against one key/value block (global positions)
  | "softmax.merge" // log-sum-exp merge of the partial results
  | "softmax.block_backward" // dq, and dk/dv for the block, from the merged o and lse
  | "softmax.full" // Ulysses: whole-sequence attention on a head shard
  | "softmax.full_backward"
  // data movement inside a rank
  | "pack" // lay data out for a collective (token pieces or head shards)
  | "unpack" // the inverse, after the collective
  | "copy" // dst = src (a slot of a state buffer, or a whole buffer)
  | "fill_zero" // dst = 0
  | "accumulate" // dst = sum of the source slots
  | "add" // writes[i] = reads[2i] + reads[2i+1], in the written buffer's dtype
  // the layer's own work around the attention core, placed where a collective can overlap it
  | "host"; // params.work: "q_projection" (writes q) or "o_weight_grad" (dWo; touches no core buffer)

export interface StepBase {
  /** Position in the rank's program; `deps` refer to these. */
  id: number;
  /** A short human description, shown by `lasp inspect`. */
  label: string;
  stream: Stream;
  /** Steps of the same rank that must finish first (CUDA events across streams). */
  deps: number[];
}

export interface ComputeStep extends StepBase {
  kind: "compute";
  op: ComputeOp;
  reads: string[];
  writes: string[];
  /** Operation parameters the executor and code generator need (piece indices, block indices, ...). */
  params: Record<string, number | boolean | string>;
  flops: number;
  /** Bytes read plus written in device memory, counting each buffer once. */
  bytes: number;
}

export type CollectiveKind = "allgather" | "allreduce" | "reducescatter" | "alltoall";

export interface CollectiveStep extends StepBase {
  kind: "collective";
  collective: CollectiveKind;
  /** Global ranks of the group, in group order (the sequence-parallel group). */
  group: number[];
  /** Identifies the same collective on every rank of the group. */
  key: string;
  /** Buffers moved together in one grouped call (K and V, say): one communication step, not several. */
  transfers: { send: string; recv: string }[];
  /** Bytes this rank contributes (its send buffers): the figure ALGORITHMS.md's table gives. */
  bytes: number;
}

interface P2PBase extends StepBase {
  peer: number;
  /** A send and its recv share the tag. */
  tag: string;
  /** Buffer slots (index into the first dimension) moved together in one grouped call. */
  transfers: { buffer: string; slot: number }[];
  bytes: number;
}

export interface SendStep extends P2PBase {
  kind: "send";
}

export interface RecvStep extends P2PBase {
  kind: "recv";
}

export type P2PStep = SendStep | RecvStep;

export type Step = ComputeStep | CollectiveStep | P2PStep;

export interface RankProgram {
  rank: number;
  buffers: BufferDecl[];
  steps: Step[];
}

/** The lowered schedule of one layer kind under one strategy: both passes, every rank. */
export interface LayerSchedule {
  /** The layer kind's name in the spec. */
  kind: string;
  layer: LayerKind;
  strategy: string;
  passes: Record<Pass, RankProgram[]>;
}

/** Sizes the schedules were lowered for. `batch` is per data-parallel rank. */
export interface ScheduleSizes {
  batch: number;
  seqLen: number;
  heads: number;
  headDim: number;
  /** Token block of the chunk kernels. */
  block: number;
  dtype: DType;
  /** Bytes per element of `dtype`. */
  elementBytes: number;
  /** Model width: the projections that `host` steps stand for are hidden x (heads x headDim). */
  hidden: number;
}

export interface ScheduleProgram {
  irVersion: number;
  spec: { file: string; model: string };
  sizes: ScheduleSizes;
  layout: LayoutPlan;
  /** One schedule per layer kind used by the stack. */
  schedules: LayerSchedule[];
  /** The stack: layer i runs `schedules[layers[i]]`. */
  layers: number[];
}

/** Buffers a step reads. */
export function stepReads(step: Step): string[] {
  if (step.kind === "compute") return step.reads;
  if (step.kind === "collective") return step.transfers.map((t) => t.send);
  if (step.kind === "send") return step.transfers.map((t) => t.buffer);
  return [];
}

/** Buffers a step writes. */
export function stepWrites(step: Step): string[] {
  if (step.kind === "compute") return step.writes;
  if (step.kind === "collective") return step.transfers.map((t) => t.recv);
  if (step.kind === "recv") return step.transfers.map((t) => t.buffer);
  return [];
}
