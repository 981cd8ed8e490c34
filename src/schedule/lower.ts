// The lowering pass: resolved spec to schedule program. One schedule per layer kind the stack uses, chosen by
// the spec's strategy for that kind of layer; the stack refers to them by index.
import type { LayerKind, ResolvedSpec } from "../spec/resolved.js";
import { KERNEL_BLOCK } from "../spec/resolved.js";
import { makeContext, type LowerContext } from "./context.js";
import { DEFAULT_DOCUMENT_LENGTH, documentTable, drawBoundaries } from "./documents.js";
import {
  IR_VERSION,
  type DocumentTable,
  type LayerSchedule,
  type ScheduleProgram,
  type ScheduleSizes,
} from "./ir.js";
import { planLayout } from "./layout.js";
import { lowerAllGather } from "./lower-allgather.js";
import { lowerAllScan } from "./lower-allscan.js";
import { lowerLasp1 } from "./lower-lasp1.js";
import { lowerLasp2 } from "./lower-lasp2.js";
import { lowerRing } from "./lower-ring.js";
import { lowerUlysses } from "./lower-ulysses.js";
import { placeSchedule } from "./placement.js";

const ELEMENT_BYTES = { bf16: 2, fp16: 2, fp32: 4 } as const;

export interface LowerOptions {
  /** Token block of the chunk kernels (the reference executor shrinks it with the sizes). */
  block?: number;
  /** LASP-2's arrangement (lower-lasp2.ts); fused unless asked otherwise. */
  lasp2?: "fused" | "split";
  /**
   * Packed documents (the spec's `documents` other than `none`): their mean length (default the spec's
   * `document_length`, else DEFAULT_DOCUMENT_LENGTH) and the seed of the drawing (default the spec's), or
   * the `boundaries` themselves (global positions, sorted: tests place them where they want).
   */
  documents?: { meanLength?: number; seed?: number; boundaries?: readonly number[] };
}

export function lowerSpec(spec: ResolvedSpec, options: LowerOptions = {}): ScheduleProgram {
  const { model, parallel, run } = spec;
  const sizes: ScheduleSizes = {
    batch: run.batch / parallel.data,
    seqLen: run.seqLen,
    heads: model.heads,
    headDim: model.headDim,
    block: options.block ?? KERNEL_BLOCK,
    dtype: run.dtype,
    elementBytes: ELEMENT_BYTES[run.dtype],
    hidden: model.hidden,
  };
  const plan = planLayout(parallel.layout, parallel.sequence, run.seqLen);
  const documents = documentsOf(spec, plan, options.documents ?? {});
  const ctx = makeContext(plan, sizes, parallel.overlap, options.lasp2, documents, parallel.scanBlocks);
  const used = model.kinds.filter((kind) => model.layers.includes(kind));
  const schedules = used.map((kind) => lowerKind(ctx, kind, strategyOf(spec, kind)));
  return {
    irVersion: IR_VERSION,
    spec: { file: spec.file, model: model.name },
    sizes,
    layout: plan,
    schedules,
    layers: model.layers.map((kind) => used.indexOf(kind)),
    ...(documents !== undefined ? { documents } : {}),
  };
}

/**
 * The document table the schedules are lowered with: boundaries drawn from the seed over the real tokens, and
 * with padding one more at the last real token, so the padding is a document of its own (spec/padding.ts).
 * None without documents and padding.
 */
function documentsOf(
  spec: ResolvedSpec,
  plan: ReturnType<typeof planLayout>,
  options: NonNullable<LowerOptions["documents"]>,
): DocumentTable | undefined {
  const { documents, padding } = spec.run;
  if (documents.kind === "none" && padding === 0) return undefined;
  const real = spec.run.seqLen - padding;
  // `documents none` with padding: the real tokens are one document, the padding another.
  const mean =
    documents.kind === "none"
      ? real
      : (options.meanLength ??
        (documents.kind === "eos" ? documents.meanLength : undefined) ??
        DEFAULT_DOCUMENT_LENGTH);
  const drawn =
    documents.kind === "none"
      ? []
      : (options.boundaries ?? drawBoundaries(real, mean, options.seed ?? spec.run.seed));
  const boundaries = padding > 0 ? [...drawn.filter((b) => b < real - 1), real - 1] : drawn;
  return documentTable(documents.kind, plan, mean, boundaries, padding);
}

export function strategyOf(spec: ResolvedSpec, kind: LayerKind): string {
  return kind.type === "linear_attention" ? spec.parallel.linear : spec.parallel.softmax;
}

/**
 * Lowers one layer kind with a named strategy (also used to compare strategies the spec did not pick), then
 * places its steps (placement.ts).
 */
export function lowerKind(ctx: LowerContext, kind: LayerKind, strategy: string): LayerSchedule {
  const passes = (() => {
    if (kind.type === "linear_attention") {
      if (strategy === "lasp2") return lowerLasp2(ctx, kind);
      if (strategy === "lasp1") return lowerLasp1(ctx, kind);
      if (strategy === "allscan") return lowerAllScan(ctx, kind);
      if (strategy === "ulysses") return lowerUlysses(ctx, kind);
    } else {
      if (strategy === "allgather") return lowerAllGather(ctx, kind);
      if (strategy === "ring") return lowerRing(ctx, kind);
      if (strategy === "ulysses") return lowerUlysses(ctx, kind);
    }
    throw new Error(`no ${strategy} schedule for ${kind.type}`);
  })();
  const blocks = strategy === "allscan" ? { scanBlocks: ctx.scanBlocks } : {};
  return { kind: kind.name, layer: kind, strategy, ...blocks, passes: placeSchedule(passes) };
}
