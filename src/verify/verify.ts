// `lasp verify`: runs the lowered schedule of every layer kind on W simulated ranks in float64, forward and
// backward, at a reduced size, and compares the output and dQ, dK, dV with the dense oracle (the masked
// attention formula computed directly over the whole sequence). Exact schedules agree to rounding (~1e-15).
// With packed documents (`documents eos|index`) the schedules run with boundaries drawn from the seed
// (schedule/documents.ts) and the oracle is the document one: each document attended to alone. A padded
// seq_len (spec/padding.ts) runs padded, and its real tokens are compared with the oracle of the real tokens
// alone: the padding document must change none of their outputs and gradients.
import {
  linearAttentionBackwardDocs,
  linearAttentionForwardDocs,
  softmaxAttentionBackwardDocs,
  softmaxAttentionForwardDocs,
} from "../reference/documents.js";
import {
  linearAttentionBackward,
  linearAttentionForward,
  softmaxAttentionBackward,
  softmaxAttentionForward,
} from "../reference/oracle.js";
import { gatherRows, maxRelErr, randn, scatterRows, type Tensor, zeros } from "../reference/tensor.js";
import type { LayoutPlan, ScheduleProgram } from "../schedule/ir.js";
import { rankPositions } from "../schedule/layout.js";
import { DEFAULT_DOCUMENT_LENGTH } from "../schedule/documents.js";
import { paddedLength, pieceCount } from "../spec/padding.js";
import { lowerSpec } from "../schedule/lower.js";
import { KERNEL_BLOCK, type LayerKind, type ResolvedSpec } from "../spec/resolved.js";
import { executePass } from "./execute.js";

export interface VerifyOptions {
  /**
   * Real tokens at the reduced size, padded like the spec's seq_len when they do not split into pieces of
   * whole blocks; default two blocks per piece (less the spec's padding, scaled down, if it pads).
   */
  seqLen?: number;
  heads?: number;
  headDim?: number;
  /** Token block of the chunk algorithm at the reduced size. */
  block?: number;
  seed?: number;
  /** LASP-2's arrangement to check (lower-lasp2.ts); the compiler's default otherwise. */
  lasp2?: "fused" | "split";
  /**
   * With documents: their mean length at the reduced size. Default: the spec's mean scaled with the
   * sequence (as many documents per sequence as at full size), at least 2 tokens.
   */
  documentLength?: number;
}

export interface VerifyRow {
  kind: string;
  type: LayerKind["type"];
  strategy: string;
  /** Max relative error (max |a - b| / max |b|) of each compared quantity. */
  errors: { o: number; dq: number; dk: number; dv: number };
}

export interface VerifyReport {
  spec: ResolvedSpec;
  /** Token block of the chunk algorithm the schedules ran with. */
  block: number;
  rows: VerifyRow[];
  maxError: number;
  /** With documents: the boundaries every layer ran with (global positions at the reduced size). */
  documents?: { meanLength: number; boundaries: number[] };
  /** With a padded seq_len: the real tokens compared with the oracle and the padding after them. */
  padding?: { realSeqLen: number; padding: number };
  /**
   * Simulated ranks that hold padding alone: no real token crosses to or from them, so the comparison checks
   * none of their communication. Absent when every rank holds a real token.
   */
  paddingOnlyRanks?: number[];
  /**
   * Softmax kinds whose grouped-query attention the reduced heads could not keep grouped: they ran one kv
   * head per query head, so the grouping itself went unchecked. Absent when none.
   */
  ungrouped?: UngroupedKind[];
}

/** A grouped softmax kind that ran ungrouped at the reduced size. */
export interface UngroupedKind {
  kind: string;
  /** The spec's heads and kv heads. */
  heads: number;
  kvHeads: number;
  /** The reduced heads (each its own kv head). */
  reducedHeads: number;
}

/** The spec at the reduced size: same layers, strategies, layout and W; fewer tokens, heads and dims. */
export function shrinkSpec(
  spec: ResolvedSpec,
  options: VerifyOptions = {},
): { spec: ResolvedSpec; block: number; ungrouped: UngroupedKind[] } {
  // Before the default seq_len, which grows with --block: the flag the user gave is the one to name.
  for (const [flag, value, max] of [
    ["--heads", options.heads, MAX_VERIFY_HEADS],
    ["--head-dim", options.headDim, MAX_VERIFY_HEAD_DIM],
    ["--block", options.block, KERNEL_BLOCK],
  ] as const)
    if (value !== undefined && value > max)
      throw new VerifyUsageError(
        `${flag} ${value} is more than a schedule check needs, and the float64 run's time grows with it: use at most ${max}`,
      );
  const W = spec.parallel.sequence;
  const pieces = pieceCount(spec.parallel.layout, W);
  const block = options.block ?? 8;
  const real = options.seqLen ?? reducedRealLength(spec, pieces * 2 * block, 2 * block);
  if (!Number.isInteger(real) || real < 1)
    throw new VerifyUsageError(`--seq-len ${real} must be a whole number of tokens, at least 1`);
  if (real > MAX_VERIFY_SEQ_LEN)
    throw new VerifyUsageError(
      `--seq-len ${real}${options.seqLen === undefined ? ` (the default: two blocks of ${block} tokens for each of ${pieces} pieces)` : ""} is more than the float64 oracle runs in minutes (it is quadratic in the length): use at most ${MAX_VERIFY_SEQ_LEN}${options.seqLen === undefined ? ", or a smaller --block" : ""}`,
    );
  const seqLen = paddedLength(real, pieces, block);
  const ulysses = spec.parallel.linear === "ulysses" || spec.parallel.softmax === "ulysses";
  const heads = options.heads ?? (ulysses ? 2 * W : Math.min(4, spec.model.heads));
  if (ulysses && heads % W !== 0)
    throw new VerifyUsageError(`--heads ${heads} must be divisible by sequence ${W} for Ulysses`);
  // Softmax kinds whose kv heads the reduced heads cannot keep grouped (the report warns of them).
  const ungrouped: UngroupedKind[] = [];
  const shrinkKind = (kind: LayerKind): LayerKind => {
    if (kind.type === "linear_attention") {
      const perHead = Array.from(
        { length: heads },
        (_, h) => kind.decay.perHead[Math.floor((h * kind.decay.perHead.length) / heads)]!,
      );
      return { ...kind, decay: { ...kind.decay, perHead } };
    }
    // Fewer kv heads than ranks (each replicated on W / kv_heads ranks): keep them, the replication is what
    // is verified; they divide W, so they divide the reduced heads.
    if (spec.parallel.softmax === "ulysses" && kind.kvHeads < W && heads % kind.kvHeads === 0) return kind;
    // Keep grouped-query attention grouped: the same ratio where it fits the reduced heads.
    let group = Math.min(
      spec.model.heads / kind.kvHeads,
      spec.parallel.softmax === "ulysses" ? heads / W : heads,
    );
    while (heads % group !== 0 || (spec.parallel.softmax === "ulysses" && (heads / group) % W !== 0)) group--;
    if (group === 1 && kind.kvHeads < spec.model.heads)
      ungrouped.push({
        kind: kind.name,
        heads: spec.model.heads,
        kvHeads: kind.kvHeads,
        reducedHeads: heads,
      });
    return { ...kind, kvHeads: heads / group };
  };
  const kinds = spec.model.kinds.map(shrinkKind);
  const layers = spec.model.layers.map((l) => kinds[spec.model.kinds.indexOf(l)]!);
  const headDim = options.headDim ?? 8;
  return {
    spec: {
      ...spec,
      model: { ...spec.model, heads, headDim, hidden: heads * headDim, kinds, layers },
      // All-Scan's blocks must divide the reduced head dim: the most that do, up to the spec's.
      parallel: {
        ...spec.parallel,
        data: 1,
        gpus: W,
        scanBlocks: largestDivisor(headDim, spec.parallel.scanBlocks),
      },
      run: { ...spec.run, seqLen, padding: seqLen - real, batch: 1 },
    },
    block,
    ungrouped,
  };
}

/**
 * The real tokens at the reduced size `padded`: all of them without padding; with it, the spec's padding
 * scaled down, at least one token (so the padding document runs) and less than a piece (as the checker asks).
 */
function reducedRealLength(spec: ResolvedSpec, padded: number, piece: number): number {
  const { padding, seqLen } = spec.run;
  if (padding === 0) return padded;
  return padded - Math.min(piece - 1, Math.max(1, Math.round((padding * padded) / seqLen)));
}

export class VerifyUsageError extends Error {}

/** The longest reduced sequence `lasp verify` takes: its dense oracle does N^2 work in float64 on the CPU. */
export const MAX_VERIFY_SEQ_LEN = 65536;

/**
 * The most heads and the largest head dim `lasp verify` takes: a schedule splits, gathers and exchanges heads
 * and head dims alike whatever their count, so a few show any mistake; each takes seconds at the default
 * seq_len, and --heads 1M ran for minutes.
 */
export const MAX_VERIFY_HEADS = 256;
export const MAX_VERIFY_HEAD_DIM = 256;
// --block is capped at the generated kernels' own block (KERNEL_BLOCK): a larger one checks no schedule the
// program runs, and the default seq_len grows with it (--block 256 took 30 s, 1024 over a minute).

function largestDivisor(n: number, atMost: number): number {
  let d = Math.min(n, atMost);
  while (n % d !== 0) d--;
  return d;
}

interface Globals {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  dout: Tensor;
}

function globals(spec: ResolvedSpec, kind: LayerKind, seed: number): Globals {
  const N = spec.run.seqLen;
  const { heads, headDim } = spec.model;
  const kvHeads = kind.type === "softmax_attention" ? kind.kvHeads : heads;
  const scale = 1 / Math.sqrt(headDim);
  return {
    q: randn([N, heads, headDim], seed + 1, scale),
    k: randn([N, kvHeads, headDim], seed + 2, scale),
    v: randn([N, kvHeads, headDim], seed + 3),
    dout: randn([N, heads, headDim], seed + 4),
  };
}

/** The dense result: over the whole sequence, or with `boundaries` each document attended to alone. */
function oracle(
  kind: LayerKind,
  g: Globals,
  boundaries?: readonly number[],
): { o: Tensor; dq: Tensor; dk: Tensor; dv: Tensor } {
  if (kind.type === "linear_attention") {
    const lam = kind.decay.perHead;
    if (boundaries !== undefined) {
      const o = linearAttentionForwardDocs(g.q, g.k, g.v, lam, kind.causal, boundaries);
      return { o, ...linearAttentionBackwardDocs(g.q, g.k, g.v, g.dout, lam, kind.causal, boundaries) };
    }
    const o = linearAttentionForward(g.q, g.k, g.v, lam, kind.causal);
    return { o, ...linearAttentionBackward(g.q, g.k, g.v, g.dout, lam, kind.causal) };
  }
  const positions = Array.from({ length: g.q.shape[0]! }, (_, i) => i);
  if (boundaries !== undefined) {
    const o = softmaxAttentionForwardDocs(g.q, positions, g.k, positions, g.v, kind.causal, boundaries).o;
    return {
      o,
      ...softmaxAttentionBackwardDocs(g.q, positions, g.k, positions, g.v, g.dout, kind.causal, boundaries),
    };
  }
  const o = softmaxAttentionForward(g.q, positions, g.k, positions, g.v, kind.causal).o;
  return { o, ...softmaxAttentionBackward(g.q, positions, g.k, positions, g.v, g.dout, kind.causal) };
}

/** The input `doc_ends`: 1 at each token that ends a document (the whole sequence, as every rank holds it). */
function documentEndFlags(seqLen: number, boundaries: readonly number[]): Tensor {
  const t = zeros([seqLen]);
  for (const b of boundaries) t.data[b] = 1;
  return t;
}

/** The mean document length at `realSeqLen` real tokens: as many documents per sequence as the spec's. */
export function reducedDocumentLength(original: ResolvedSpec, realSeqLen: number): number {
  const { documents } = original.run;
  const mean = (documents.kind === "eos" ? documents.meanLength : undefined) ?? DEFAULT_DOCUMENT_LENGTH;
  const originalReal = original.run.seqLen - original.run.padding;
  // At least 2 tokens (1 for a spec whose documents are single tokens), so some documents span tokens.
  return Math.max(Math.min(2, mean), Math.round((mean * realSeqLen) / originalReal));
}

function assemble(plan: LayoutPlan, parts: Tensor[], like: Tensor): Tensor {
  const out = zeros(like.shape);
  parts.forEach((part, rank) => scatterRows(out, rankPositions(plan, rank), part));
  return out;
}

export function verifySpec(original: ResolvedSpec, options: VerifyOptions = {}): VerifyReport {
  const { spec, block, ungrouped } = shrinkSpec(original, options);
  const seed = options.seed ?? spec.run.seed;
  if (
    options.documentLength !== undefined &&
    (!Number.isInteger(options.documentLength) || options.documentLength < 1)
  )
    throw new VerifyUsageError(
      `--document-length ${options.documentLength} must be a whole number of tokens, at least 1`,
    );
  const documents = {
    meanLength: options.documentLength ?? reducedDocumentLength(original, spec.run.seqLen - spec.run.padding),
    seed,
  };
  const program = lowerSpec(spec, { block, lasp2: options.lasp2, documents });
  const report = verifyProgram(spec, program, block, seed);
  return ungrouped.length > 0 ? { ...report, ungrouped } : report;
}

/**
 * Runs an already lowered program against the oracle. `executionPlan` is the layout the executor believes
 * in; the data is always laid out by the program's real layout (tests pass a wrong plan to show that a
 * kernel which assumes another layout than the data's is caught).
 */
export function verifyProgram(
  spec: ResolvedSpec,
  program: ScheduleProgram,
  block: number,
  seed: number,
  executionPlan: LayoutPlan = program.layout,
): VerifyReport {
  const plan = program.layout;
  const boundaries = program.documents?.boundaries;
  const ends = boundaries === undefined ? undefined : documentEndFlags(spec.run.seqLen, boundaries);
  // The oracle sees the real tokens alone: without the padding, and without its boundary.
  const padding = program.documents?.padding ?? 0;
  const real = Array.from({ length: spec.run.seqLen - padding }, (_, i) => i);
  const realBoundaries =
    program.documents === undefined || program.documents.kind === "none"
      ? undefined
      : program.documents.boundaries.filter((b) => b < real.length - 1);
  const rows = program.schedules.map((schedule, index): VerifyRow => {
    const g = globals(spec, schedule.layer, seed * 100 + index * 10);
    const local = (t: Tensor, rank: number): Tensor => gatherRows(t, rankPositions(plan, rank));
    const activations: Record<string, Tensor> = { q: g.q, k: g.k, v: g.v, do: g.dout };
    // Every rank holds the whole sequence's document end flags (global positions).
    const whole: Record<string, Tensor> = ends === undefined ? {} : { doc_ends: ends };
    const forward = executePass(schedule, "forward", executionPlan, block, (rank, name) => {
      if (whole[name] !== undefined) return [whole[name]];
      const t = activations[name];
      if (t === undefined) throw new Error(`forward input ${name} has no source`);
      return [local(t, rank)];
    });
    const backward = executePass(schedule, "backward", executionPlan, block, (rank, name) => {
      if (whole[name] !== undefined) return [whole[name]];
      const t = activations[name];
      return t !== undefined ? [local(t, rank)] : forward.stores[rank]!.get(name);
    });
    const alone: Globals = {
      q: gatherRows(g.q, real),
      k: gatherRows(g.k, real),
      v: gatherRows(g.v, real),
      dout: gatherRows(g.dout, real),
    };
    const expected = oracle(schedule.layer, alone, realBoundaries);
    const got = (run: typeof forward, name: string, like: Tensor): Tensor =>
      gatherRows(
        assemble(
          plan,
          run.stores.map((s) => s.one(name)),
          like,
        ),
        real,
      );
    return {
      kind: schedule.kind,
      type: schedule.layer.type,
      strategy: schedule.strategy,
      errors: {
        o: maxRelErr(got(forward, "o", g.q), expected.o),
        dq: maxRelErr(got(backward, "dq", g.q), expected.dq),
        dk: maxRelErr(got(backward, "dk", g.k), expected.dk),
        dv: maxRelErr(got(backward, "dv", g.v), expected.dv),
      },
    };
  });
  const maxError = Math.max(0, ...rows.flatMap((r) => Object.values(r.errors)));
  const documents =
    realBoundaries === undefined
      ? {}
      : { documents: { meanLength: program.documents!.meanLength, boundaries: realBoundaries } };
  const padded = padding > 0 ? { padding: { realSeqLen: real.length, padding } } : {};
  // A rank whose pieces all start past the real tokens holds padding alone.
  const idle = plan.byRank.flatMap((pieces, rank) =>
    pieces.some((p) => p.start < real.length) ? [] : [rank],
  );
  const paddingOnly = idle.length > 0 ? { paddingOnlyRanks: idle } : {};
  return { spec, block, rows, maxError, ...documents, ...padded, ...paddingOnly };
}
