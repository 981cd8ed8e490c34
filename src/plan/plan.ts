// `lasp plan`: every valid schedule choice for a spec at each GPU count and sequence length, priced on one
// machine profile by the numbers `lasp inspect` shows (inspect/report.ts's inspectNumbers: its step section
// and simulation) and the memory model, ranked best first. Choices the checker refuses are counted with its
// reason, never priced.
import type { SpecFile } from "../ast/ast.js";
import { unverifiedNotes } from "../codegen/unverified-notes.js";
import { memoryReport, memoryShape } from "../cost/memory.js";
import { gpuOf, type MachineProfile } from "../cost/profile.js";
import { inspectNumbers } from "../inspect/report.js";
import { lowerSpec } from "../schedule/lower.js";
import type { Layout, LinearStrategy, ResolvedSpec, SoftmaxStrategy } from "../spec/resolved.js";
import { resolveRecomputeAuto } from "./recompute-auto.js";
import { strategyWords, variant, type SettingEdits } from "./variants.js";

/** One schedule choice: the sequence x data split and each layer kind's schedule, the layout. */
export interface Choice {
  sequence: number;
  data: number;
  /** Undefined when the model has no linear-attention layers (the setting changes nothing). */
  linear?: LinearStrategy;
  /** `linear allscan` only: the blocks K each state travels in (SCAN_BLOCK_CHOICES). */
  scanBlocks?: number;
  /** Undefined when the model has no softmax layers. */
  softmax?: SoftmaxStrategy;
  layout: Layout;
}

export interface PlanRow {
  gpus: number;
  seqLen: number;
  choice: Choice;
  /** "lasp2 + allgather, zigzag, 8 x 1" (sequence x data): one name per choice. */
  label: string;
  /** The spec's own choice at its own GPU count and seq_len. */
  own: boolean;
  /** The whole step, s (inspect's step section). */
  step: number;
  tokensPerSecondPerGpu: number;
  mfu: number;
  /**
   * Communication a rank waits for per step, s: the schedules' exposed communication (the simulator's,
   * averaged over the sequence-parallel ranks) and the gradient sums the backward leaves.
   */
  exposedComm: number;
  memoryBytes: number;
  fits: boolean;
  /** Its program has not run on GPUs yet: check, compile and run warn W0613 (codegen/unverified-notes.ts). */
  unverified: boolean;
}

export interface Skipped {
  gpus: number;
  seqLen: number;
  label: string;
  reason: string;
}

export interface Plan {
  spec: string;
  machine: string;
  gpuMemoryBytes: number;
  gpus: number[];
  seqLens: number[];
  /** Best first within each (gpus, seq_len): those that fit before those that do not, then tokens/s per GPU. */
  rows: PlanRow[];
  skipped: Skipped[];
}

export interface PlanRequest {
  ast: SpecFile;
  file: string;
  spec: ResolvedSpec;
  /** Default: the spec's own. */
  gpus?: number[];
  seqLens?: number[];
  profile: MachineProfile;
  /** Only the choices this keeps (default: every one). */
  keep?: (choice: Choice) => boolean;
  /** Called after each choice is priced or skipped. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * The blocks K the planner tries for All-Scan (those that divide head_dim): K = 1 is LASP-1's chain, which
 * `lasp1` already prices, so the choices start at 2. The best K grows as sqrt(W) (docs/ALLSCAN.md): 2 inside
 * one node, 8 to 16 over hundreds of GPUs.
 */
export const SCAN_BLOCK_CHOICES = [2, 4, 8, 16] as const;

export function choiceLabel(choice: Choice): string {
  const linear = choice.scanBlocks === undefined ? choice.linear : `${choice.linear}/${choice.scanBlocks}`;
  const kinds = [linear, choice.softmax].filter((s) => s !== undefined).join(" + ");
  return `${kinds}, ${choice.layout}, ${choice.sequence} x ${choice.data}`;
}

/** Every choice for `gpus` GPUs: each split of them into sequence x data and each schedule of the model's kinds. */
export function choicesFor(spec: ResolvedSpec, gpus: number): Choice[] {
  const hasLinear = spec.model.layers.some((l) => l.type === "linear_attention");
  const hasSoftmax = spec.model.layers.some((l) => l.type === "softmax_attention");
  const linears = hasLinear ? (strategyWords("linear") as LinearStrategy[]) : [undefined];
  const softmaxes = hasSoftmax ? (strategyWords("softmax") as SoftmaxStrategy[]) : [undefined];
  const out: Choice[] = [];
  for (let data = 1; data <= gpus; data++) {
    if (gpus % data !== 0) continue;
    for (const linear of linears)
      for (const blocks of linear === "allscan" ? scanBlockChoices(spec, gpus / data) : [undefined])
        for (const softmax of softmaxes)
          for (const layout of strategyWords("layout") as Layout[])
            out.push({
              sequence: gpus / data,
              data,
              layout,
              ...(linear === undefined ? {} : { linear }),
              ...(blocks === undefined ? {} : { scanBlocks: blocks }),
              ...(softmax === undefined ? {} : { softmax }),
            });
  }
  return out;
}

/** All-Scan's block counts: each that divides the head dim; with one sequence rank no state travels, so one. */
function scanBlockChoices(spec: ResolvedSpec, sequence: number): number[] {
  const all: number[] = SCAN_BLOCK_CHOICES.filter((K) => spec.model.headDim % K === 0);
  if (sequence > 1) return all;
  return [all.includes(spec.parallel.scanBlocks) ? spec.parallel.scanBlocks : all[0]!];
}

function isOwn(spec: ResolvedSpec, gpus: number, seqLen: number, choice: Choice): boolean {
  const p = spec.parallel;
  return (
    gpus === p.gpus &&
    seqLen === spec.run.seqLen - spec.run.padding &&
    choice.sequence === p.sequence &&
    choice.data === p.data &&
    choice.layout === p.layout &&
    (choice.linear === undefined || choice.linear === p.linear) &&
    (choice.scanBlocks === undefined || choice.scanBlocks === p.scanBlocks) &&
    (choice.softmax === undefined || choice.softmax === p.softmax)
  );
}

function edits(gpus: number, seqLen: number, choice: Choice): SettingEdits {
  return {
    parallel: {
      gpus,
      sequence: choice.sequence,
      data: choice.data,
      layout: choice.layout,
      ...(choice.linear === undefined ? {} : { linear: choice.linear }),
      ...(choice.scanBlocks === undefined ? {} : { scan_blocks: choice.scanBlocks }),
      ...(choice.softmax === undefined ? {} : { softmax: choice.softmax }),
    },
    run: { seq_len: seqLen },
  };
}

/** Prices one checked spec as inspect does. */
export function priceSpec(
  spec: ResolvedSpec,
  profile: MachineProfile,
): Omit<PlanRow, "gpus" | "seqLen" | "choice" | "label" | "own" | "unverified"> {
  const program = lowerSpec(spec);
  const { times, report } = inspectNumbers(spec, program, profile);
  const memory = memoryReport(memoryShape(spec), spec.run.seqLen, gpuOf(profile));
  const step = report.step;
  return {
    step: step.total,
    tokensPerSecondPerGpu: step.tokensPerSecond,
    mfu: step.mfu,
    exposedComm: step.microBatches * (times.exposedComm / spec.parallel.sequence + step.gradientSum.exposed),
    memoryBytes: memory.totalBytes,
    fits: memory.fits,
  };
}

/** Best first: what fits before what does not, then the most tokens/s per GPU. */
export function compareRows(a: PlanRow, b: PlanRow): number {
  const faster = b.tokensPerSecondPerGpu - a.tokensPerSecondPerGpu;
  // Predictions equal but for float rounding (the same program by two schedules' names) keep the language's order.
  const same = Math.abs(faster) <= 1e-9 * Math.max(a.tokensPerSecondPerGpu, b.tokensPerSecondPerGpu);
  return Number(b.fits) - Number(a.fits) || (same ? 0 : faster);
}

export function plan(request: PlanRequest): Plan {
  const { spec, profile } = request;
  const gpusList = request.gpus ?? [spec.parallel.gpus];
  // The spec's own seq_len as written: each choice pads it for its own pieces (a padded length is no real one).
  const seqLens = request.seqLens ?? [spec.run.seqLen - spec.run.padding];
  const work = gpusList.flatMap((gpus) =>
    seqLens.flatMap((seqLen) =>
      choicesFor(spec, gpus)
        .filter(request.keep ?? (() => true))
        .map((choice) => ({ gpus, seqLen, choice })),
    ),
  );
  const rows: PlanRow[] = [];
  const skipped: Skipped[] = [];
  work.forEach(({ gpus, seqLen, choice }, i) => {
    const label = choiceLabel(choice);
    const checked = variant(request.ast, request.file, edits(gpus, seqLen, choice));
    if ("refused" in checked) skipped.push({ gpus, seqLen, label, reason: checked.refused });
    else
      rows.push({
        gpus,
        seqLen,
        choice,
        label,
        own: isOwn(spec, gpus, seqLen, choice),
        // `recompute auto`: each choice with the recompute that fits it on this machine.
        ...priceSpec(resolveRecomputeAuto(checked.spec, gpuOf(profile)), profile),
        unverified: unverifiedNotes(checked.ast, checked.spec).length > 0,
      });
    request.onProgress?.(i + 1, work.length);
  });
  const order = (r: { gpus: number; seqLen: number }): number =>
    gpusList.indexOf(r.gpus) * seqLens.length + seqLens.indexOf(r.seqLen);
  rows.sort((a, b) => order(a) - order(b) || compareRows(a, b));
  return {
    spec: request.file,
    machine: profile.name,
    gpuMemoryBytes: profile.gpu.memoryBytes,
    gpus: gpusList,
    seqLens,
    rows,
    skipped,
  };
}
