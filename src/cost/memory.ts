// The memory model: bytes per GPU of the generated program, by category, mirroring what it allocates
// (the tables of main.cu: one allocation each for weights, gradients and activations; program.cuh's buffer
// tables per layer kind; the workspaces the runtime headers grow and keep), and the largest seq_len that fits on a GPU of a given size. The IR's buffers come from the lowered
// program through the code generator's own buffer table (kindBuffers), so the model counts what the program
// declares, not a second description of it.
//
// Not counted: the CUDA context, NCCL's and cuBLAS's own buffers (RUNTIME_RESERVE_BYTES estimates them; bench's
// `baseline_mem_bytes` measures them), the plan workspace cuDNN asks for, and the kernels' short-lived scratch
// from the stream-ordered pool. In verify mode the oracle's whole-sequence buffers are counted too. Optimizer states are zero: `train` mode, the only one with an
// optimizer, is not generated yet.
import { kindBuffers } from "../codegen/view-model.js";
import { weightBlocks } from "../schedule/weights.js";
import { cppIdent } from "../codegen/names.js";
import { usesWorkspaces } from "../codegen/workspaces.js";
import type { ComputeStep, LayerSchedule, ScheduleProgram, Step } from "../schedule/ir.js";
import { lowerSpec, type LowerOptions } from "../schedule/lower.js";
import { KERNEL_BLOCK, type ResolvedSpec } from "../spec/resolved.js";

export type MemoryCategory =
  "weights" | "gradients" | "optimizer" | "activations" | "workspaces" | "communication";

export const MEMORY_CATEGORIES: readonly MemoryCategory[] = [
  "weights",
  "gradients",
  "optimizer",
  "activations",
  "workspaces",
  "communication",
];

/** One kind of allocation: `count` allocations of `elements` x `elementBytes` each (one per layer, say). */
export interface Allocation {
  what: string;
  category: MemoryCategory;
  elements: number;
  elementBytes: number;
  count: number;
}

export interface Gpu {
  /** Device memory in bytes. */
  memory: number;
  /** SMs: the linear-attention workspaces are sized by them (linear_attention.cuh, plan_segments). */
  sms: number;
}

/** An 80 GB H100 (SXM: 132 SMs), the default GPU of `lasp check` and `lasp inspect`. */
export const H100: Gpu = { memory: 80e9, sms: 132 };

/**
 * An estimate of what the CUDA context, NCCL's communicators and cuBLAS take besides the program's own
 * allocations; bench's `baseline_mem_bytes` is the measured figure to check it against.
 */
export const RUNTIME_RESERVE_BYTES = 2 * 2 ** 30;

/** The kernels and cuBLAS take element and token counts as 32-bit ints: every allocation stays below this. */
export const MAX_ELEMENTS = 2 ** 31 - 1;

/** An IR buffer's elements as a function of seq_len: a + b * seq_len (each has at most one dimension in tokens). */
interface BufferShape {
  what: string;
  bytesPerElement: number;
  a: number;
  b: number;
  perLayer: boolean;
  communication: boolean;
}

interface KindShape {
  name: string;
  layers: number;
  buffers: BufferShape[];
  /** The kind keeps segment-state workspaces (kv per layer, qdo per kind). */
  workspaces: boolean;
  /** Feature-map inputs kept for the backward pass (pre_q, pre_k). */
  featureMap: boolean;
  /** RMSNorm outputs kept per layer (normed). */
  outputNorm: boolean;
  /**
   * A softmax backward step, whose delta (and, over the whole sequence, dQ) workspaces the runtime grows:
   * over the whole sequence (Ulysses) it has a shard of `heads` query heads, else every head of local rows.
   */
  softmaxBackward?: { whole: boolean; heads: number };
  /** Elements of the layer's Wq, Wk, Wv and Wo together. */
  weightElements: number;
}

/** What the program allocates apart from seq_len: enough to evaluate it at any length that splits the same way. */
export interface MemoryShape {
  spec: ResolvedSpec;
  kinds: KindShape[];
  /** Bytes of the constant tables (decays, gap tables of every rank), one allocation each. */
  tableBytes: number;
  tables: number;
  /** seq_len must be a multiple of this (whole kernel blocks in every piece). */
  unit: number;
}

const BF16 = 2;
const FP32 = 4;

/** The model's inputs, from two lowerings at small lengths (lowering cost grows with the ranks, not seq_len). */
export function memoryShape(spec: ResolvedSpec, lowering: LowerOptions = {}): MemoryShape {
  const pieces = spec.parallel.layout === "zigzag" ? 2 * spec.parallel.sequence : spec.parallel.sequence;
  const unit = pieces * KERNEL_BLOCK;
  const at = (seqLen: number): ScheduleProgram =>
    lowerSpec({ ...spec, run: { ...spec.run, seqLen } }, { ...lowering, block: KERNEL_BLOCK });
  const one = at(unit);
  const two = at(2 * unit);
  const kinds = one.schedules.map((schedule, s): KindShape => {
    const small = kindBuffers(schedule);
    const large = kindBuffers(two.schedules[s]!);
    const moved = communicated(schedule);
    const layer = schedule.layer;
    const backward = softmaxBackward(schedule, spec.model.heads);
    const { q, kv } = weightBlocks(spec.model.hidden, one.sizes, schedule);
    return {
      name: schedule.kind,
      layers: one.layers.filter((l) => l === s).length,
      buffers: small.map((buffer, i) => {
        const b = (large[i]!.elements - buffer.elements) / unit;
        return {
          what: buffer.field,
          bytesPerElement: buffer.ctype === "float" ? FP32 : BF16,
          a: buffer.elements - b * unit,
          b,
          perLayer: buffer.perLayer,
          communication: moved.has(buffer.field) || buffer.window,
        };
      }),
      workspaces: usesWorkspaces(schedule.passes.forward),
      featureMap: layer.type === "linear_attention" && layer.featureMap !== "identity",
      outputNorm: layer.type === "linear_attention" && layer.outputNorm === "rms",
      ...(backward === undefined ? {} : { softmaxBackward: backward }),
      weightElements: 2 * q + 2 * kv,
    };
  });
  const { tables, tableBytes } = tableSizes(one);
  return { spec, kinds, tables, tableBytes, unit };
}

/** Buffers a collective or a send/receive moves (named as the generated program's fields). */
function communicated(schedule: LayerSchedule): Set<string> {
  const names = new Set<string>();
  const field = cppIdent;
  for (const pass of ["forward", "backward"] as const)
    for (const rp of schedule.passes[pass])
      for (const step of rp.steps) {
        if (step.kind === "collective")
          for (const t of step.transfers) names.add(field(t.send)).add(field(t.recv));
        if (step.kind === "send" || step.kind === "recv")
          for (const t of step.transfers) names.add(field(t.buffer));
      }
  return names;
}

function softmaxBackward(schedule: LayerSchedule, heads: number): KindShape["softmaxBackward"] {
  const steps: Step[] = schedule.passes.backward[0]!.steps;
  const whole = steps.find(
    (s): s is ComputeStep<"softmax.full_backward"> =>
      s.kind === "compute" && s.op === "softmax.full_backward",
  );
  if (whole !== undefined) return { whole: true, heads: whole.params.heads };
  if (steps.some((s) => s.kind === "compute" && s.op === "softmax.block_backward"))
    return { whole: false, heads };
  return undefined;
}

/** The decay tables (one float per head, per linear kind) and the gap tables of every rank's decayed sums. */
function tableSizes(program: ScheduleProgram): { tables: number; tableBytes: number } {
  const pieces = program.layout.pieces.length;
  let tables = 0;
  let tableBytes = 0;
  for (const schedule of program.schedules) {
    if (schedule.layer.type === "linear_attention") {
      tables++;
      tableBytes += schedule.layer.decay.perHead.length * FP32;
    }
    for (const pass of ["forward", "backward"] as const)
      for (const rp of schedule.passes[pass])
        for (const step of rp.steps) {
          if (step.kind !== "compute" || (step.op !== "linear.prefix" && step.op !== "linear.suffix"))
            continue;
          if (step.params.mode === "zero" || step.params.mode === "others") continue;
          tables++;
          tableBytes += pieces * FP32;
        }
  }
  return { tables, tableBytes };
}

/** Segments of the state walk for a piece (linear_attention.cuh, plan_segments at 2 CTAs per SM). */
function stateSegments(bh: number, pieceLength: number, sms: number): number {
  const blocks = pieceLength / KERNEL_BLOCK;
  if (blocks === 0) return 0;
  let nseg = Math.max(1, Math.min(Math.floor((sms * 2) / bh), blocks));
  const per = Math.ceil(blocks / nseg);
  nseg = Math.ceil(blocks / per);
  return nseg;
}

/** Every allocation of one rank of the program at `seqLen`, on a GPU with `sms` SMs. */
export function allocations(shape: MemoryShape, seqLen: number, sms: number = H100.sms): Allocation[] {
  const { spec } = shape;
  const { sequence, layout, gpus } = spec.parallel;
  const batch = spec.run.batch / spec.parallel.data;
  const { hidden, heads, headDim } = spec.model;
  const layers = spec.model.layers.length;
  const pieces = layout === "zigzag" ? 2 : 1;
  const local = seqLen / sequence;
  const rows = batch * local;
  const width = heads * headDim;
  const out: Allocation[] = [];
  const add = (
    what: string,
    category: MemoryCategory,
    elements: number,
    elementBytes: number,
    count = 1,
  ): void => {
    if (count > 0 && elements > 0) out.push({ what, category, elements, elementBytes, count });
  };
  let mostWeights = 0;
  for (const kind of shape.kinds) {
    add(`${kind.name} weights (Wq, Wk, Wv, Wo)`, "weights", kind.weightElements, BF16, kind.layers);
    add(`${kind.name} weight gradients`, "gradients", kind.weightElements, BF16, kind.layers);
    mostWeights = Math.max(mostWeights, kind.weightElements);
  }
  // The gradient sum's landing buffer where NCCL can copy with the copy engines (grad_sum.cuh): decided
  // at run time, counted whenever there is more than one GPU.
  if (gpus > 1) add("gradient-sum landing buffer", "communication", mostWeights, BF16);
  add("layer inputs x (and the output)", "activations", rows * hidden, BF16, layers + 1);
  add("backward scratch dx, dx_prev, y", "workspaces", rows * hidden, BF16, 3);
  add("backward scratch dnormed", "workspaces", rows * width, BF16);
  let delta = 0;
  let dq = 0;
  for (const kind of shape.kinds) {
    if (kind.featureMap)
      add(`${kind.name} feature-map inputs`, "activations", rows * width, BF16, 2 * kind.layers);
    if (kind.outputNorm) add(`${kind.name} normed output`, "activations", rows * width, BF16, kind.layers);
    for (const buffer of kind.buffers) {
      const category = buffer.perLayer
        ? "activations"
        : buffer.communication
          ? "communication"
          : "workspaces";
      const elements = buffer.a + buffer.b * seqLen;
      add(
        `${kind.name}.${buffer.what}`,
        category,
        elements,
        buffer.bytesPerElement,
        buffer.perLayer ? kind.layers : 1,
      );
    }
    if (kind.workspaces) {
      const bh = batch * heads;
      const floats = pieces * stateSegments(bh, local / pieces, sms) * bh * headDim * headDim;
      add(`${kind.name} state workspace kv_ws`, "workspaces", floats, FP32, kind.layers);
      add(`${kind.name} state workspace qdo_ws`, "workspaces", floats, FP32);
    }
    if (kind.softmaxBackward !== undefined) {
      // delta: one float per query row and head; the whole-sequence backward also accumulates dQ in fp32.
      const { whole, heads: qHeads } = kind.softmaxBackward;
      const qRows = (whole ? batch * seqLen : rows) * qHeads;
      delta = Math.max(delta, qRows);
      if (whole) dq = Math.max(dq, qRows * headDim);
    }
  }
  // Grown to what is asked plus an eighth (softmax_attention.cuh, Workspace::get).
  add("softmax backward delta workspace", "workspaces", delta + Math.floor(delta / 8), FP32);
  add("softmax backward dQ workspace", "workspaces", dq + Math.floor(dq / 8), FP32);
  add("constant tables", "workspaces", shape.tableBytes / FP32, FP32);
  if (spec.run.mode === "verify") {
    // verify's dense oracle over the whole sequence (main.cu.hbs `verify`), at the widest kind's width.
    const full = batch * seqLen * width;
    add("verify's whole-sequence q, k, v, do", "workspaces", full, BF16, 4);
    add("verify's fp32 reference", "workspaces", 3 * full, FP32);
    add("verify's local reference", "workspaces", rows * width, FP32);
    add("verify's log-sum-exp", "workspaces", batch * seqLen * heads, FP32);
  }
  return out;
}

export interface MemoryReport {
  seqLen: number;
  /** Bytes per category, every category present (zero where nothing is allocated). */
  categories: Record<MemoryCategory, number>;
  /** What the program allocates: the sum of the categories. */
  programBytes: number;
  /** programBytes plus RUNTIME_RESERVE_BYTES: what must fit on the GPU. */
  totalBytes: number;
  gpu: Gpu;
  fits: boolean;
  /** The largest allocation in elements, and whether it stays within the kernels' 32-bit counts. */
  largestAllocation: { what: string; elements: number };
  /** The largest seq_len (a multiple of `unit`) that fits the GPU and the 32-bit counts; undefined if none. */
  largestSeqLen?: number;
  /** What stops a longer sequence: the GPU's memory, the 32-bit counts, or the language's 2^31. */
  limitedBy: "memory" | "32-bit counts" | "seq_len limit";
  allocations: Allocation[];
}

export function bytesByCategory(list: readonly Allocation[]): Record<MemoryCategory, number> {
  const sums = Object.fromEntries(MEMORY_CATEGORIES.map((c) => [c, 0])) as Record<MemoryCategory, number>;
  for (const a of list) sums[a.category] += bytesOf(a);
  return sums;
}

export const bytesOf = (a: Allocation): number => a.elements * a.elementBytes * a.count;

/** Program bytes of one rank at `seqLen`. */
export function programBytes(shape: MemoryShape, seqLen: number, sms: number = H100.sms): number {
  return allocations(shape, seqLen, sms).reduce((sum, a) => sum + bytesOf(a), 0);
}

/** The allocation with the most elements at `seqLen`. */
export function largestAllocation(shape: MemoryShape, seqLen: number, sms: number = H100.sms): Allocation {
  return allocations(shape, seqLen, sms).reduce((best, a) => (a.elements > best.elements ? a : best));
}

const MAX_SEQ_LEN = 2 ** 31;

export function memoryReport(shape: MemoryShape, seqLen: number, gpu: Gpu = H100): MemoryReport {
  const list = allocations(shape, seqLen, gpu.sms);
  const categories = bytesByCategory(list);
  const program = Object.values(categories).reduce((a, b) => a + b, 0);
  const largest = largestAllocation(shape, seqLen, gpu.sms);
  const fitsMemory = (n: number): boolean =>
    programBytes(shape, n, gpu.sms) + RUNTIME_RESERVE_BYTES <= gpu.memory;
  const fitsCounts = (n: number): boolean => largestAllocation(shape, n, gpu.sms).elements <= MAX_ELEMENTS;
  // Both are monotone in the length: binary search over multiples of the unit.
  const search = (ok: (n: number) => boolean): number => {
    let lo = 0;
    let hi = Math.floor(MAX_SEQ_LEN / shape.unit);
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (ok(mid * shape.unit)) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const byMemory = search(fitsMemory);
  const byCounts = search(fitsCounts);
  const steps = Math.min(byMemory, byCounts);
  const limitedBy =
    steps === Math.floor(MAX_SEQ_LEN / shape.unit)
      ? "seq_len limit"
      : byMemory <= byCounts
        ? "memory"
        : "32-bit counts";
  const report: MemoryReport = {
    seqLen,
    categories,
    programBytes: program,
    totalBytes: program + RUNTIME_RESERVE_BYTES,
    gpu,
    fits: program + RUNTIME_RESERVE_BYTES <= gpu.memory,
    largestAllocation: { what: largest.what, elements: largest.elements },
    limitedBy,
    allocations: list,
  };
  if (steps > 0) report.largestSeqLen = steps * shape.unit;
  return report;
}

/** A device memory size as `80GB` (10^9 bytes), `96GiB` (2^30), `512MB`, `1TB`; undefined if unreadable. */
export function parseMemorySize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$/i.exec(text);
  if (match === null) return undefined;
  const unit = match[2]!.toLowerCase();
  const scale: Record<string, number> = {
    b: 1,
    kb: 1e3,
    mb: 1e6,
    gb: 1e9,
    tb: 1e12,
    kib: 2 ** 10,
    mib: 2 ** 20,
    gib: 2 ** 30,
    tib: 2 ** 40,
  };
  const bytes = Number(match[1]) * scale[unit]!;
  return bytes > 0 ? Math.round(bytes) : undefined;
}
