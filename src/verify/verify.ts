// `lasp verify`: runs the lowered schedule of every layer kind on W simulated ranks in float64, forward and
// backward, at a reduced size, and compares the output and dQ, dK, dV with the dense oracle (the masked
// attention formula computed directly over the whole sequence). Exact schedules agree to rounding (~1e-15).
// With packed documents (`documents eos|index`) the schedules run with boundaries drawn from the seed
// (schedule/documents.ts) and the oracle is the document one: each document attended to alone.
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
import { lowerSpec } from "../schedule/lower.js";
import type { LayerKind, ResolvedSpec } from "../spec/resolved.js";
import { executePass } from "./execute.js";

export interface VerifyOptions {
  /** Global tokens at the reduced size; default two kernel blocks per piece. */
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
  rows: VerifyRow[];
  maxError: number;
  /** With documents: the boundaries every layer ran with (global positions at the reduced size). */
  documents?: { meanLength: number; boundaries: number[] };
}

/** The spec at the reduced size: same layers, strategies, layout and W; fewer tokens, heads and dims. */
export function shrinkSpec(
  spec: ResolvedSpec,
  options: VerifyOptions = {},
): { spec: ResolvedSpec; block: number } {
  const W = spec.parallel.sequence;
  const pieces = spec.parallel.layout === "zigzag" ? 2 * W : W;
  const block = options.block ?? 8;
  const seqLen = options.seqLen ?? pieces * 2 * block;
  if (seqLen % (pieces * block) !== 0) {
    throw new VerifyUsageError(
      `--seq-len ${seqLen} must be a multiple of ${pieces * block} (${pieces} pieces of whole ${block}-token blocks)`,
    );
  }
  const ulysses = spec.parallel.linear === "ulysses" || spec.parallel.softmax === "ulysses";
  const heads = options.heads ?? (ulysses ? 2 * W : Math.min(4, spec.model.heads));
  if (ulysses && heads % W !== 0)
    throw new VerifyUsageError(`--heads ${heads} must be divisible by sequence ${W} for Ulysses`);
  const shrinkKind = (kind: LayerKind): LayerKind => {
    if (kind.type === "linear_attention") {
      const perHead = Array.from(
        { length: heads },
        (_, h) => kind.decay.perHead[Math.floor((h * kind.decay.perHead.length) / heads)]!,
      );
      return { ...kind, decay: { ...kind.decay, perHead } };
    }
    // Keep grouped-query attention grouped: the same ratio where it fits the reduced heads.
    let group = Math.min(
      spec.model.heads / kind.kvHeads,
      spec.parallel.softmax === "ulysses" ? heads / W : heads,
    );
    while (heads % group !== 0 || (spec.parallel.softmax === "ulysses" && (heads / group) % W !== 0)) group--;
    return { ...kind, kvHeads: heads / group };
  };
  const kinds = spec.model.kinds.map(shrinkKind);
  const layers = spec.model.layers.map((l) => kinds[spec.model.kinds.indexOf(l)]!);
  const headDim = options.headDim ?? 8;
  return {
    spec: {
      ...spec,
      model: { ...spec.model, heads, headDim, hidden: heads * headDim, kinds, layers },
      parallel: { ...spec.parallel, data: 1, gpus: W },
      run: { ...spec.run, seqLen, batch: 1 },
    },
    block,
  };
}

export class VerifyUsageError extends Error {}

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

/** The mean document length at the reduced size: as many documents per sequence as the spec's. */
export function reducedDocumentLength(original: ResolvedSpec, seqLen: number): number {
  const { documents } = original.run;
  const mean = (documents.kind === "eos" ? documents.meanLength : undefined) ?? DEFAULT_DOCUMENT_LENGTH;
  // At least 2 tokens (1 for a spec whose documents are single tokens), so some documents span tokens.
  return Math.max(Math.min(2, mean), Math.round((mean * seqLen) / original.run.seqLen));
}

function assemble(plan: LayoutPlan, parts: Tensor[], like: Tensor): Tensor {
  const out = zeros(like.shape);
  parts.forEach((part, rank) => scatterRows(out, rankPositions(plan, rank), part));
  return out;
}

export function verifySpec(original: ResolvedSpec, options: VerifyOptions = {}): VerifyReport {
  const { spec, block } = shrinkSpec(original, options);
  const seed = options.seed ?? spec.run.seed;
  if (
    options.documentLength !== undefined &&
    (!Number.isInteger(options.documentLength) || options.documentLength < 1)
  )
    throw new VerifyUsageError(
      `--document-length ${options.documentLength} must be a whole number of tokens, at least 1`,
    );
  const documents = {
    meanLength: options.documentLength ?? reducedDocumentLength(original, spec.run.seqLen),
    seed,
  };
  const program = lowerSpec(spec, { block, lasp2: options.lasp2, documents });
  return verifyProgram(spec, program, block, seed);
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
    const expected = oracle(schedule.layer, g, boundaries);
    const got = (run: typeof forward, name: string, like: Tensor): Tensor =>
      assemble(
        plan,
        run.stores.map((s) => s.one(name)),
        like,
      );
    return {
      kind: schedule.kind,
      type: schedule.layer.type,
      strategy: schedule.strategy,
      errors: {
        o: maxRelErr(got(forward, "o", expected.o), expected.o),
        dq: maxRelErr(got(backward, "dq", expected.dq), expected.dq),
        dk: maxRelErr(got(backward, "dk", expected.dk), expected.dk),
        dv: maxRelErr(got(backward, "dv", expected.dv), expected.dv),
      },
    };
  });
  const maxError = Math.max(0, ...rows.flatMap((r) => Object.values(r.errors)));
  const documents = program.documents;
  return documents === undefined
    ? { spec, rows, maxError }
    : {
        spec,
        rows,
        maxError,
        documents: { meanLength: documents.meanLength, boundaries: documents.boundaries },
      };
}
