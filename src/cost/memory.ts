// The memory model: bytes per GPU of the generated program, by category, mirroring what it allocates
// (runtime/state.cuh, allocate_model: the parameter, gradient, activation and statistics tables of
// src/model/tables.ts, one allocation each, the tokens and the embedding sort's workspace; program.cuh's
// buffer tables per layer kind; the workspaces the runtime headers grow and keep), and the largest seq_len
// that fits on a GPU of a given size. The tables come from modelTables and the IR's buffers from the code
// generator's own buffer table (kindBuffers), so the model counts what the program declares, not a second
// description of it.
//
// Not counted: the CUDA context, NCCL's and cuBLAS's own buffers (RUNTIME_RESERVE_BYTES estimates them; bench's
// `baseline_mem_bytes` measures them), the plan workspace cuDNN asks for, and the kernels' short-lived scratch
// from the stream-ordered pool. CUB's radix-sort scratch is an estimate (its size is CUB's to say at run
// time). In verify mode the oracle's whole-sequence buffers are counted too. Optimizer states only in `train`
// mode (runtime/optimizer.cuh): fp32 master weights (the bf16 weights and a 16-bit plane of their low halves,
// runtime/master_weights.cuh) and two fp32 moments, replicated on every rank or sharded over
// them (ZeRO-1, the compiler's choice: tables.ts optimizerSharded), and the step's gradient sum with
// `accumulate` above 1.
import { buildsWithoutNccl, kindBuffers } from "../codegen/view-model.js";
import { cppIdent } from "../codegen/names.js";
import { usesWorkspaces } from "../codegen/workspaces.js";
import {
  classifierChunk,
  gradientBlocks,
  gradientBlockSpans,
  modelTables,
  optimizerSharded,
  normPartialRows,
  ALIGN_ELEMENTS,
  type ModelTables,
  type TensorTable,
} from "../model/tables.js";
import type { ComputeStep, LayerSchedule, ScheduleProgram, Step } from "../schedule/ir.js";
import { lowerSpec, type LowerOptions } from "../schedule/lower.js";
import { KERNEL_BLOCK, type Recompute, type RecomputeFit, type ResolvedSpec } from "../spec/resolved.js";
import { gpuOf, H100_PROFILE, type Gpu } from "./profile.js";

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
  /**
   * A table of many tensors, addressed with 64-bit offsets: its largest tensor, the most one kernel counts
   * (what the 32-bit limit applies to). Absent: the allocation is one tensor.
   */
  largestTensor?: { name: string; elements: number };
}

export type { Gpu } from "./profile.js";

/** An 80 GB H100 (SXM: 132 SMs), the default GPU of `lasp check` and `lasp inspect`: the shipped profile. */
export const H100: Gpu = gpuOf(H100_PROFILE);

/**
 * An estimate of what the CUDA context, NCCL's communicators and cuBLAS take besides the program's own
 * allocations; bench's `baseline_mem_bytes` is the measured figure to check it against. A one-GPU program links
 * no NCCL (lasp/nccl_one_rank.cuh), and NCCL's buffers were about 1 GiB of it on an H100
 * (bench/results/2026-12-06-one-rank-without-nccl-h100.md).
 */
export const RUNTIME_RESERVE_BYTES = 2 * 2 ** 30;
export const ONE_GPU_RUNTIME_RESERVE_BYTES = 2 ** 30;

/** The runtime's reserve for a spec's program, and what it stands for (NCCL's buffers only where it links NCCL). */
export const runtimeReserve = (spec: ResolvedSpec): { bytes: number; what: string } =>
  buildsWithoutNccl(spec)
    ? { bytes: ONE_GPU_RUNTIME_RESERVE_BYTES, what: "CUDA context, cuBLAS" }
    : { bytes: RUNTIME_RESERVE_BYTES, what: "CUDA context, NCCL, cuBLAS" };

/** The kernels and cuBLAS take element and token counts as 32-bit ints: every tensor stays below this. */
export const MAX_ELEMENTS = 2 ** 31 - 1;

/** An estimate of CUB's radix-sort scratch for the embedding's sort of `rows` token ids (embedding.cuh). */
export const cubSortBytes = (rows: number): number => rows * 8 + 2 ** 20;

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
  /**
   * A softmax backward step, whose delta (and, over the whole sequence, dQ) workspaces the runtime grows:
   * over the whole sequence (Ulysses) it has a shard of `heads` query heads, else every head of local rows.
   */
  softmaxBackward?: { whole: boolean; heads: number };
}

/** Rows of the activation and statistics tables of one name (a layer's, with every layer alike) and size. */
export interface TableGroup {
  what: string;
  category: MemoryCategory;
  /** Elements of one row, the padding to the next row included (so the groups sum to the table). */
  elements: number;
  elementBytes: number;
  count: number;
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
  /** The parameter table (the gradients have the same layout), which does not depend on seq_len. */
  parameters: { elements: number; largest: { name: string; elements: number } };
  /** The largest block of weight gradients the gradient sum moves at once (state.cuh). */
  mostGradientBlock: number;
  /** train mode: the elements of AdamW's state arrays on one rank (optimizer.cuh: all, or its ZeRO-1 slices). */
  optimizerElements: number;
  /** Whether that state is sharded over the ranks (ZeRO-1). */
  optimizerSharded: boolean;
  /** The activation and statistics tables' rows at `rows` rows per rank. */
  tableGroups: (rows: number) => TableGroup[];
}

const BF16 = 2;
const FP32 = 4;
const INT32 = 4;

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
    const backward = softmaxBackward(schedule, spec.model.heads);
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
      ...(backward === undefined ? {} : { softmaxBackward: backward }),
    };
  });
  const { tables, tableBytes } = tableSizes(one);
  // The parameter table does not depend on the rows: any row count gives it.
  const base = modelTables(spec, 1);
  const largest = base.parameters.rows.reduce((best, row) => (row.elements > best.elements ? row : best));
  return {
    spec,
    kinds,
    tables,
    tableBytes,
    unit,
    parameters: {
      elements: base.parameters.elements,
      largest: { name: largest.name, elements: largest.elements },
    },
    mostGradientBlock: Math.max(...gradientBlocks(base.parameters, base.layers, base.head)),
    ...optimizerState(spec, base),
    tableGroups: tableGroupsOf(spec),
  };
}

/** AdamW's state on one rank: every parameter, or with ZeRO-1 the rank's 1/W of each gradient block. */
function optimizerState(
  spec: ResolvedSpec,
  base: ModelTables,
): { optimizerElements: number; optimizerSharded: boolean } {
  const blocks = gradientBlockSpans(base.parameters, base.layers, base.head);
  const gpus = spec.parallel.gpus;
  if (!optimizerSharded(blocks, gpus))
    return { optimizerElements: base.parameters.elements, optimizerSharded: false };
  return { optimizerElements: blocks.reduce((n, b) => n + b.elements / gpus, 0), optimizerSharded: true };
}

/**
 * The activation and statistics tables' rows at any row count, grouped. A direct modelTables call costs about
 * a millisecond for a large model and the seq_len search makes dozens; past the tables' clamps (the LM head's
 * chunk, the norm partials' rows) every row's elements are affine in the rows, and so is its padding within
 * one residue class of the rows modulo the alignment: there two calls, 128 rows apart, give every length.
 */
export function tableGroupsOf(spec: ResolvedSpec): (rows: number) => TableGroup[] {
  const affineFrom = Math.max(classifierChunk(Infinity, spec.model.vocab), normPartialRows(Infinity) / 2);
  const cache = new Map<number, [TableGroup[], TableGroup[], number]>();
  return (rows: number): TableGroup[] => {
    if (rows < affineFrom) return groupRows(modelTables(spec, rows));
    const residue = (rows - affineFrom) % ALIGN_ELEMENTS;
    let known = cache.get(residue);
    if (known === undefined) {
      const r1 = affineFrom + residue;
      known = [groupRows(modelTables(spec, r1)), groupRows(modelTables(spec, r1 + ALIGN_ELEMENTS)), r1];
      cache.set(residue, known);
    }
    const [g1, g2, r1] = known;
    const steps = (rows - r1) / ALIGN_ELEMENTS;
    return g1.map((g, i) => ({ ...g, elements: g.elements + (g2[i]!.elements - g.elements) * steps }));
  };
}

/**
 * The activation table's rows (bf16) and the statistics table's (fp32) as groups: a layer's rows and the
 * final norm's (kept for the backward pass) are activations, the rows every layer shares are workspaces.
 */
export function groupRows(tables: ModelTables): TableGroup[] {
  const { scratch } = tables;
  const shared = {
    activations: new Set([
      scratch.normed,
      scratch.y,
      scratch.dx,
      scratch.dnormed,
      scratch.dattn,
      scratch.ffn,
      scratch.logits,
      ...(scratch.gateUp >= 0 ? [scratch.gateUp] : []),
    ]),
    statistics: new Set([scratch.partials, scratch.losses]),
  };
  const groups: TableGroup[] = [];
  const byKey = new Map<string, TableGroup>();
  const addTable = (
    table: TensorTable,
    label: string,
    elementBytes: number,
    scratchRows: Set<number>,
  ): void => {
    table.rows.forEach((row, i) => {
      const end = i + 1 < table.rows.length ? table.rows[i + 1]!.offset : table.elements;
      const elements = end - row.offset;
      const name = row.name.replace(/^layers\.\d+\./, "layers.{l}.");
      const category: MemoryCategory = scratchRows.has(row.index) ? "workspaces" : "activations";
      const what = `${label} ${name}`;
      const key = `${what}/${elements}`;
      const group = byKey.get(key);
      if (group !== undefined) group.count++;
      else {
        const created = { what, category, elements, elementBytes, count: 1 };
        byKey.set(key, created);
        groups.push(created);
      }
    });
  };
  addTable(tables.activations, "activation", BF16, shared.activations);
  addTable(tables.statistics, "statistic", FP32, shared.statistics);
  return groups;
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
  const { heads, headDim } = spec.model;
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
  // The model's tables (state.cuh, allocate_model): weights in bf16, their gradients in fp32 (a window).
  const { parameters } = shape;
  out.push(
    {
      what: "parameter table",
      category: "weights",
      elements: parameters.elements,
      elementBytes: BF16,
      count: 1,
      largestTensor: parameters.largest,
    },
    {
      what: "gradient table",
      category: "gradients",
      elements: parameters.elements,
      elementBytes: FP32,
      count: 1,
      largestTensor: parameters.largest,
    },
  );
  // train mode's optimizer (optimizer.cuh, make_optimizer): m and v, the master weights' low halves (their high
  // halves are the weights), and the micro-batches' sum.
  if (spec.run.mode === "train") {
    const how = shape.optimizerSharded ? "sharded over the ranks (ZeRO-1)" : "replicated";
    add(`AdamW moments m and v (fp32, ${how})`, "optimizer", shape.optimizerElements, FP32, 2);
    add(`AdamW master weights' low halves (16-bit, ${how})`, "optimizer", shape.optimizerElements, BF16);
    if (spec.run.train.accumulate > 1)
      add("the step's gradient sum over micro-batches", "optimizer", shape.optimizerElements, FP32);
  }
  // The gradient sum's landing buffer where NCCL can copy with the copy engines (grad_sum.cuh): decided
  // at run time, counted whenever there is more than one GPU.
  if (gpus > 1) add("gradient-sum landing buffer", "communication", shape.mostGradientBlock, FP32);
  for (const g of shape.tableGroups(rows)) add(g.what, g.category, g.elements, g.elementBytes, g.count);
  // The step's tokens, and the embedding's sort of them (embedding.cuh: three int arrays, then CUB's scratch).
  add("token ids and targets", "activations", rows, INT32, 2);
  add("embedding sort positions and ids", "workspaces", align256(rows * INT32) / INT32, INT32, 3);
  add("embedding sort CUB scratch (an estimate)", "workspaces", cubSortBytes(rows) / 8, 8);
  add("loss sum (fp64) and target count", "workspaces", 8 + INT32, 1);
  let delta = 0;
  let dq = 0;
  for (const kind of shape.kinds) {
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
    // verify's dense oracle over the whole sequence (verify.cuh, make_oracle), at the widest kind's width.
    const full = batch * seqLen * width;
    add("verify's whole-sequence q, k, v, do", "workspaces", full, BF16, 4);
    add("verify's fp32 reference", "workspaces", 3 * full, FP32);
    add("verify's local reference", "workspaces", rows * width, FP32);
    add("verify's log-sum-exp", "workspaces", batch * seqLen * heads, FP32);
  }
  return out;
}

const align256 = (bytes: number): number => Math.ceil(bytes / 256) * 256;

export interface MemoryReport {
  seqLen: number;
  /** The program's mode (train adds the optimizer's state). */
  mode: string;
  /** Bytes per category, every category present (zero where nothing is allocated). */
  categories: Record<MemoryCategory, number>;
  /** What the program allocates: the sum of the categories. */
  programBytes: number;
  /** The runtime's reserve (runtimeReserve): the CUDA context, cuBLAS and, on several GPUs, NCCL. */
  runtimeReserveBytes: number;
  /** What that reserve stands for. */
  runtimeReserveWhat: string;
  /** programBytes plus runtimeReserveBytes: what must fit on the GPU. */
  totalBytes: number;
  gpu: Gpu;
  fits: boolean;
  /** The largest tensor in elements (of a table, its largest row), what the kernels count with 32-bit ints. */
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

/**
 * The tensor with the most elements at `seqLen` (of a table, its largest tensor): what the kernels' 32-bit
 * counts must hold.
 */
export function largestAllocation(
  shape: MemoryShape,
  seqLen: number,
  sms: number = H100.sms,
): { what: string; elements: number } {
  let best = { what: "", elements: 0 };
  for (const a of allocations(shape, seqLen, sms)) {
    const tensor =
      a.largestTensor === undefined
        ? { what: a.what, elements: a.elements }
        : { what: `${a.what}'s ${a.largestTensor.name}`, elements: a.largestTensor.elements };
    if (tensor.elements > best.elements) best = tensor;
  }
  return best;
}

const MAX_SEQ_LEN = 2 ** 31;

/**
 * The memory per GPU of `spec` with each `recompute` of `choices` in turn, up to and with the first that fits
 * `gpu` (recompute auto, and W0604's hint of a choice that fits).
 */
export function recomputeFits(
  spec: ResolvedSpec,
  choices: readonly Recompute[],
  gpu: Gpu = H100,
): RecomputeFit[] {
  const tried: RecomputeFit[] = [];
  for (const recompute of choices) {
    const report = memoryReport(
      memoryShape({ ...spec, run: { ...spec.run, recompute } }),
      spec.run.seqLen,
      gpu,
    );
    tried.push({ recompute, bytes: report.totalBytes, fits: report.fits });
    if (report.fits) break;
  }
  return tried;
}

export function memoryReport(shape: MemoryShape, seqLen: number, gpu: Gpu = H100): MemoryReport {
  const list = allocations(shape, seqLen, gpu.sms);
  const categories = bytesByCategory(list);
  const program = Object.values(categories).reduce((a, b) => a + b, 0);
  const largest = largestAllocation(shape, seqLen, gpu.sms);
  const runtime = runtimeReserve(shape.spec);
  const reserve = runtime.bytes;
  const fitsMemory = (n: number): boolean => programBytes(shape, n, gpu.sms) + reserve <= gpu.memory;
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
    mode: shape.spec.run.mode,
    categories,
    programBytes: program,
    runtimeReserveBytes: reserve,
    runtimeReserveWhat: runtime.what,
    totalBytes: program + reserve,
    gpu,
    fits: program + reserve <= gpu.memory,
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
