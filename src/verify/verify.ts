// `lasp verify`: runs the lowered schedule of every layer kind on W simulated ranks in float64, forward and
// backward, at a reduced size, and compares the output and dQ, dK, dV with the dense oracle (the masked
// attention formula computed directly over the whole sequence). Exact schedules agree to rounding (~1e-15).
import {
  linearAttentionBackward,
  linearAttentionForward,
  softmaxAttentionBackward,
  softmaxAttentionForward,
} from "../reference/oracle.js";
import { gatherRows, maxRelErr, randn, scatterRows, type Tensor, zeros } from "../reference/tensor.js";
import type { LayoutPlan, ScheduleProgram } from "../schedule/ir.js";
import { rankPositions } from "../schedule/layout.js";
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

function oracle(kind: LayerKind, g: Globals): { o: Tensor; dq: Tensor; dk: Tensor; dv: Tensor } {
  if (kind.type === "linear_attention") {
    const o = linearAttentionForward(g.q, g.k, g.v, kind.decay.perHead, kind.causal);
    return { o, ...linearAttentionBackward(g.q, g.k, g.v, g.dout, kind.decay.perHead, kind.causal) };
  }
  const positions = Array.from({ length: g.q.shape[0]! }, (_, i) => i);
  const o = softmaxAttentionForward(g.q, positions, g.k, positions, g.v, kind.causal).o;
  return { o, ...softmaxAttentionBackward(g.q, positions, g.k, positions, g.v, g.dout, kind.causal) };
}

function assemble(plan: LayoutPlan, parts: Tensor[], like: Tensor): Tensor {
  const out = zeros(like.shape);
  parts.forEach((part, rank) => scatterRows(out, rankPositions(plan, rank), part));
  return out;
}

export function verifySpec(original: ResolvedSpec, options: VerifyOptions = {}): VerifyReport {
  const { spec, block } = shrinkSpec(original, options);
  return verifyProgram(
    spec,
    lowerSpec(spec, { block, lasp2: options.lasp2 }),
    block,
    options.seed ?? spec.run.seed,
  );
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
  const rows = program.schedules.map((schedule, index): VerifyRow => {
    const g = globals(spec, schedule.layer, seed * 100 + index * 10);
    const local = (t: Tensor, rank: number): Tensor => gatherRows(t, rankPositions(plan, rank));
    const activations: Record<string, Tensor> = { q: g.q, k: g.k, v: g.v, do: g.dout };
    const forward = executePass(schedule, "forward", executionPlan, block, (rank, name) => {
      const t = activations[name];
      if (t === undefined) throw new Error(`forward input ${name} has no source`);
      return [local(t, rank)];
    });
    const backward = executePass(schedule, "backward", executionPlan, block, (rank, name) => {
      const t = activations[name];
      return t !== undefined ? [local(t, rank)] : forward.stores[rank]!.get(name);
    });
    const expected = oracle(schedule.layer, g);
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
  return { spec, rows, maxError };
}
