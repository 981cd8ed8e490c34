// The schedule IR: for every layer kind, pass and rank, the ordered steps of computation and communication.
// It is the single source of truth downstream of the checker: the reference executor proves it exact, the
// cost model times it, the code generator emits it and `lasp inspect` shows it. Nothing downstream
// re-derives a schedule: placement (what overlaps what, which communicator a collective takes, the SMs a GEMM
// leaves) is decided by the placement pass (placement.ts) and recorded here. Compute ops, their named operands
// and typed params are catalogued in ops.ts. Field names are part of `lasp inspect --json`'s documented output
// (src/schedule/README.md; golden files in test/ir-json/): keep them stable.
import type { DType, LayerKind, Layout } from "../spec/resolved.js";
import type { ComputeOp, OpOperands, OpParams, RowBlock } from "./ops.js";

/** Version of the JSON form; bump on any incompatible change of the fields below (2: operands, placement). */
export const IR_VERSION = 2;

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
  /** `int32`: the document end flags of packed documents (`doc_ends`). */
  dtype: DType | "fp32" | "int32";
  /** What the buffer holds, in words. */
  doc: string;
  /** Inputs are written before the layer's pass begins (activations, cached values, incoming gradients). */
  input?: boolean;
}

export type { ComputeOp, RowBlock } from "./ops.js";

export interface StepBase {
  /** Position in the rank's program; `deps` refer to these. */
  id: number;
  /** A short human description, shown by `lasp inspect`. */
  label: string;
  stream: Stream;
  /** Steps of the same rank that must finish first (CUDA events across streams). */
  deps: number[];
}

/**
 * Placement of a compute step (placement.ts): the collective it overlaps, and for a `host` step (a GEMM) the
 * SMs it leaves to that collective.
 */
export interface ComputePlacement {
  /**
   * The collective (step id) this step is the first computation beside: the step waits until the comm stream
   * has started that collective, so NCCL's kernel is issued before a kernel that fills the GPU.
   */
  overlaps?: number;
  /**
   * `host` steps beside a collective: SMs the GEMM leaves free, `kernels` while the collective runs NCCL's
   * kernels, `copyEngines` where it runs on the copy engines (the run-time choice, comm.cuh).
   */
  smMargin?: { kernels: number; copyEngines: number };
}

interface ComputeStepOf<O extends ComputeOp> extends StepBase {
  kind: "compute";
  op: O;
  /** Named buffer operands (ops.ts). */
  operands: OpOperands[O];
  /** Typed operation parameters (ops.ts): piece indices, source ranks, slots, modes, head shards. */
  params: OpParams[O];
  /** Buffers read and written, derived from the operands by the catalogue (ops.ts) for graph analysis. */
  reads: string[];
  writes: string[];
  flops: number;
  /** Bytes read plus written in device memory, counting each buffer once. */
  bytes: number;
  placement: ComputePlacement;
}

/** A compute step of op O; without O, the union over every op (narrowed by `step.op`). */
export type ComputeStep<O extends ComputeOp = ComputeOp> = O extends ComputeOp ? ComputeStepOf<O> : never;

/** One handler per op: a table of this type misses no op (ops.ts's catalogue is its key set). */
export type OpHandlers<Args extends unknown[], R> = {
  [O in ComputeOp]: (step: ComputeStep<O>, ...args: Args) => R;
};

/** Calls the handler of the step's op. */
export function handleOp<Args extends unknown[], R>(
  handlers: OpHandlers<Args, R>,
  step: ComputeStep,
  ...args: Args
): R {
  // The table is keyed by op, so the handler found takes exactly this step's type.
  const handler = handlers[step.op] as (step: ComputeStep, ...args: Args) => R;
  return handler(step, ...args);
}

/**
 * Which communicator a collective takes (placement.ts). `few_ctas`: the communicator with few CTAs (small
 * collectives beside computation). `default`: NCCL's defaults; with `copyEngineCandidate`, an AllGather beside
 * computation that takes the few-CTA communicator anyway when it copies with the copy engines (decided when
 * the program starts, comm.cuh).
 */
export interface CollectivePlacement {
  communicator: "default" | "few_ctas";
  copyEngineCandidate: boolean;
}

export type CollectiveKind = "allgather" | "allreduce" | "reducescatter" | "alltoall";

/**
 * One buffer a collective moves. `slices` (a ReduceScatter's, optional): a buffer of the send's size and type,
 * free at the collective, where its copy-engine form lands the W ranks' slices of this rank (an AlltoAll) before
 * it adds them in rank order into `recv`; only a ReduceScatter whose every transfer has one is a copy-engine
 * candidate (placement.ts).
 */
export interface CollectiveTransfer {
  send: string;
  recv: string;
  slices?: string;
}

export interface CollectiveStep extends StepBase {
  kind: "collective";
  collective: CollectiveKind;
  /** Global ranks of the group, in group order (the sequence-parallel group). */
  group: number[];
  /** Identifies the same collective on every rank of the group. */
  key: string;
  /** Buffers moved together in one grouped call (K and V, say): one communication step, not several. */
  transfers: CollectiveTransfer[];
  /** Bytes this rank contributes (its send buffers): the figure ALGORITHMS.md's table gives. */
  bytes: number;
  placement: CollectivePlacement;
}

export interface P2PTransfer {
  buffer: string;
  slot: number;
  rows?: RowBlock;
}

interface P2PBase extends StepBase {
  peer: number;
  /** A send and its recv share the tag. */
  tag: string;
  /**
   * Buffer slots (index into the first dimension) moved together in one grouped call; with `rows`, only that
   * block of every head's state rows (All-Scan).
   */
  transfers: P2PTransfer[];
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
  /** All-Scan only: the blocks K each state travels in (docs/ALLSCAN.md). */
  scanBlocks?: number;
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
  /** Packed documents or padding (absent with neither): the boundaries the schedules were lowered with. */
  documents?: DocumentTable;
}

/**
 * Where documents end (docs/DOCUMENTS.md). The ops take the boundaries per step from the input buffer
 * `doc_ends` (1 at each token that ends a document, the whole sequence on every rank); this table holds the
 * ones drawn from the seed (`drawBoundaries`), which `lasp verify` runs and `lasp inspect` shows.
 */
export interface DocumentTable {
  /** The spec's `documents`; `none` when the only boundary is the padding's. */
  kind: "none" | "eos" | "index";
  /** Mean document length the boundaries were drawn with (`none`: the real tokens' count). */
  meanLength: number;
  /**
   * Tokens of padding at the sequence's end (absent without): one document of their own, after a boundary
   * at the last real token (spec/padding.ts).
   */
  padding?: number;
  /** Global positions of the last token of each document (all but the sequence's last), sorted. */
  boundaries: number[];
  /** `byRank[r][j]`: the boundaries inside rank r's local piece j, as indices into the piece. */
  byRank: number[][][];
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
  // A ReduceScatter's copy-engine form also lands the ranks' slices in `slices`.
  if (step.kind === "collective")
    return step.transfers.flatMap((t) => (t.slices === undefined ? [t.recv] : [t.recv, t.slices]));
  if (step.kind === "recv") return step.transfers.map((t) => t.buffer);
  return [];
}
