// The whole training step of one rank, predicted by part: the parts the generated program's bench mode
// reports (runtime/state.cuh, Part), so a prediction and a measurement line up row by row.
//
// Three kinds of term:
// - GEMMs (cuBLAS): FLOPs from the parameter catalogue (model/parameters.ts: each weight that multiplies the
//   tokens is three products of 2 x rows x out x in, forward, input gradient, weight gradient; their sum is
//   model/flops.ts's 6 x matmul weights), timed at the profile's attainable GEMM rate.
// - Element-wise kernels (norms, SwiGLU, the output norm, the loss's row kernel, the embedding): the bytes they
//   move, counted from what runtime/layer.cuh runs and the tensor shapes of model/tables.ts, over the
//   profile's attainable HBM bandwidth. Each count below names its kernel.
// - The attention core: the schedule simulator on the IR (simulate.ts), every layer's forward and backward
//   pass. A hosted kind's schedule runs the Q projection and dWo inside its passes (`host` steps), and the
//   program's profile counts them in attention_core too, so they leave the projections' GEMMs here.
// Not in it: kernel launch gaps; the weight-gradient sum over ranks and the optimizer are training-step.ts's.
import { elementsOf, kvHeadsOf, modelParameters, type ModelPart } from "../model/parameters.js";
import { classifierChunk, normPartialRows } from "../model/tables.js";
import type { ScheduleProgram } from "../schedule/ir.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { cubSortBytes } from "./memory.js";
import { machineForGroup, type MachineProfile } from "./profile.js";
import { simulatePass } from "./simulate.js";

export const STEP_PARTS = [
  "embedding",
  "norms",
  "attention_projections",
  "attention_core",
  "mlp",
  "lm_head_loss",
] as const;
export type StepPart = (typeof STEP_PARTS)[number];

/** One term of the prediction: a GEMM group, an element-wise kernel group, or a layer kind's attention. */
export interface StepTerm {
  part: StepPart;
  what: string;
  /** GEMM FLOPs (0 for the other kinds of term). */
  flops: number;
  /** Bytes moved by element-wise kernels (0 for the other kinds of term). */
  bytes: number;
  seconds: number;
}

export interface StepPrediction {
  profile: string;
  /** Rows (tokens) of this rank. */
  rows: number;
  terms: StepTerm[];
  /** Seconds per part. */
  parts: Record<StepPart, number>;
  /** The step: the sum of the parts, s. */
  total: number;
}

const BF16 = 2;
const FP32 = 4;

/** Which catalogue part's GEMMs belong to which reported part. */
const GEMM_PART: Record<ModelPart, StepPart | undefined> = {
  embedding: undefined, // a gather, not a product
  attention: "attention_projections",
  mlp: "mlp",
  norms: undefined,
  lmHead: "lm_head_loss",
};

/**
 * Whether the program runs the MLP's SwiGLU in its GEMMs' epilogues on this GPU (mlp_gemm.cuh's
 * `mlp_gemm_backend` under LASP_MLP_GEMM=auto): a profile that says the kernel runs there, and the shapes its
 * tiles cover (tokens per rank % 128, hidden % 64, ffn % 128).
 */
export function mlpSwigluEpilogues(
  profile: MachineProfile,
  rows: number,
  hidden: number,
  ffn: number,
): boolean {
  return profile.gpu.mlpSwigluEpilogues === true && rows % 128 === 0 && hidden % 64 === 0 && ffn % 128 === 0;
}

/** Predicts one training step of `program` (lowered from `spec`) on one GPU of `profile`. */
export function predictStep(
  spec: ResolvedSpec,
  program: ScheduleProgram,
  profile: MachineProfile,
): StepPrediction {
  const { model } = spec;
  const { hidden, heads, headDim, ffn, vocab } = model;
  const rows = (spec.run.batch / spec.parallel.data) * (spec.run.seqLen / spec.parallel.sequence);
  const width = heads * headDim;
  const bandwidth = profile.gpu.hbmAttainable;
  const terms: StepTerm[] = [];
  /** Adds to the term of the same part and description (a kind's layers add up to one term). */
  const add = (part: StepPart, what: string, flops: number, bytes: number, seconds: number): void => {
    const term = terms.find((t) => t.part === part && t.what === what);
    if (term === undefined) terms.push({ part, what, flops, bytes, seconds });
    else
      Object.assign(term, {
        flops: term.flops + flops,
        bytes: term.bytes + bytes,
        seconds: term.seconds + seconds,
      });
  };
  const gemm = (part: StepPart, what: string, flops: number): void =>
    add(part, what, flops, 0, flops / profile.gpu.gemmFlops);
  const stream = (part: StepPart, what: string, bytes: number): void =>
    add(part, what, 0, bytes, bytes / bandwidth);
  /** Bytes of `count` bf16 tensors of [rows][columns]. */
  const tensors = (count: number, columns: number): number => count * rows * columns * BF16;

  // GEMMs: three products per weight, by part. A tied head multiplies by the embedding's matrix.
  const perPart = new Map<StepPart, number>();
  for (const t of modelParameters(model)) {
    const part = GEMM_PART[t.part];
    if (part === undefined || !t.matmul) continue;
    perPart.set(part, (perPart.get(part) ?? 0) + 3 * 2 * rows * elementsOf(t));
  }
  if (model.tieEmbeddings)
    perPart.set("lm_head_loss", (perPart.get("lm_head_loss") ?? 0) + 3 * 2 * rows * vocab * hidden);
  // Host steps take the Q projection (forward) and dWo (backward) into the attention core.
  const hosted = program.layers.reduce((n, kind) => n + hostSteps(program, kind), 0);
  const projection = 2 * rows * hidden * width;
  gemm(
    "attention_projections",
    "Q, K, V, O: forward, input and weight gradients",
    perPart.get("attention_projections")! - hosted * projection,
  );
  gemm("mlp", "gate|up and down: forward, input and weight gradients", perPart.get("mlp")!);
  if (spec.run.recompute === "mlp")
    gemm(
      "mlp",
      "gate|up again in the backward (`recompute mlp`)",
      model.layers.length * 2 * rows * 2 * ffn * hidden,
    );
  gemm(
    "lm_head_loss",
    "logits, their input and weight gradients, chunk by chunk",
    perPart.get("lm_head_loss")!,
  );

  // Block norms (norm.cuh): norm_forward with the residual add reads x and y and writes the sum and the
  // output (4 [rows][hidden] tensors), without it reads x and writes the output (2); norm_backward reads dout
  // and x and writes dx (3), reading dx too when it accumulates (4), and writes then reads its fp32 partials.
  const L = model.layers.length;
  const partials = 2 * normPartialRows(rows) * hidden * FP32;
  stream(
    "norms",
    "forward: attention norms (layer 0 without the residual add) and MLP norms",
    tensors(2, hidden) + tensors(4, hidden) * (2 * L - 1),
  );
  // `recompute none` keeps their outputs instead.
  if (spec.run.recompute !== "none")
    stream("norms", "backward: both norms of every layer recomputed", tensors(2, hidden) * 2 * L);
  stream(
    "norms",
    "backward: both norms of every layer, accumulating into dx",
    (tensors(4, hidden) + partials) * 2 * L,
  );
  stream(
    "norms",
    "final norm: forward with the residual add, backward writing dx",
    tensors(4, hidden) + tensors(3, hidden) + partials,
  );

  // The attention's element-wise parts around the core (layer.cuh), per layer of each kind.
  for (const layer of model.layers) {
    const kv = kvHeadsOf(model, layer) * headDim;
    if (layer.type === "softmax_attention") {
      // rope_apply in place on q and k, forward, and on dq and dk, backward: read and write each.
      stream("attention_projections", "RoPE on q, k and dq, dk", 2 * (tensors(2, width) + tensors(2, kv)));
    } else {
      if (layer.featureMap !== "identity")
        // Forward: copy q, k to pre_q, pre_k, then the map in place (read and write); backward: the map's
        // backward reads pre and the gradient and writes the gradient.
        stream(
          "attention_projections",
          "feature map on q, k, forward and backward",
          tensors(4, width + kv) + tensors(3, width + kv),
        );
      // Output norm: forward reads o and writes normed; backward reads o and dattn and writes do. Without it
      // the backward copies dattn to do.
      stream(
        "attention_projections",
        "output RMSNorm, forward and backward (or dattn's copy)",
        layer.outputNorm === "rms" ? tensors(5, width) : tensors(2, width),
      );
      // Grouped k and v (`kv_heads`): copied out to every query head forward, each group's gradients summed
      // back: read the kv heads and write all heads, and the reverse.
      if (kv < width)
        stream(
          "attention_projections",
          "grouped k, v: expanded to every head, gradients summed back",
          2 * (tensors(1, kv) + tensors(1, width)) * 2,
        );
    }
  }

  // SwiGLU. Where lasp's MLP GEMM runs (mlp_gemm.cuh: a Hopper profile, and the shapes its tiles cover), in the
  // GEMMs' epilogues, which no MMA overlaps: the gate|up product also writes h, and the down product's input
  // gradient reads gate and up and writes d(gate|up) instead of writing dh (the GEMM terms price a plain
  // output). Elsewhere in passes of their own (swiglu.cuh): forward reads gate and up and writes h; backward
  // reads gate, up and dh and writes dgate and dup. `recompute mlp` runs the forward again in the backward.
  const swigluPasses = spec.run.recompute === "mlp" ? 2 : 1;
  if (mlpSwigluEpilogues(profile, rows, hidden, ffn))
    stream(
      "mlp",
      "SwiGLU in the GEMMs' epilogues: h written (again with `recompute mlp`), d(gate|up) in place of dh",
      L * (tensors(swigluPasses, ffn) + tensors(3, ffn)),
    );
  else
    stream(
      "mlp",
      "SwiGLU forward (again in the backward with `recompute mlp`) and backward",
      L * (tensors(3 * swigluPasses, ffn) + tensors(5, ffn)),
    );

  // LM head and loss (lm_head.cuh, classifier.cuh): the row kernel reads each chunk's bf16 logits twice and
  // writes the gradient over them; the head's fp32 weight gradient is written by the first chunk's GEMM and
  // read and written by each later one (the GEMM rate, measured at a bf16 output, does not cover it); an
  // untied head's embedding gradient is zeroed first (memset).
  const chunks = Math.ceil(rows / classifierChunk(rows, vocab));
  stream("lm_head_loss", "loss row kernel: logits read twice, gradient written", tensors(3, vocab));
  stream(
    "lm_head_loss",
    "fp32 head gradient accumulated over chunks",
    (2 * chunks - 1) * vocab * hidden * FP32,
  );
  if (!model.tieEmbeddings) stream("lm_head_loss", "embedding gradient zeroed", vocab * hidden * FP32);

  // Embedding (embedding.cuh): the forward gathers rows (read and write); the backward sorts the ids (CUB's
  // radix sort, estimated as memory.ts sizes its scratch, read and written), reads dx, and adds into the fp32
  // rows of the tokens that occur (read and write, at most one per distinct token).
  stream(
    "embedding",
    "lookup, sort, scatter-add of dx",
    tensors(2, hidden) +
      2 * cubSortBytes(rows) +
      tensors(1, hidden) +
      2 * Math.min(rows, vocab) * hidden * FP32,
  );

  // The attention core: each kind's passes on the simulator, once per layer of that kind.
  const machine = machineForGroup(profile, spec.parallel.sequence);
  program.schedules.forEach((schedule, i) => {
    const count = program.layers.filter((l) => l === i).length;
    if (count === 0) return;
    const forward = simulatePass(schedule.passes.forward, machine).makespan;
    const backward = simulatePass(schedule.passes.backward, machine).makespan;
    const what = `${schedule.kind} (${schedule.strategy}) x ${count}: forward and backward on the simulator`;
    add("attention_core", what, 0, 0, count * (forward + backward));
  });

  const parts = Object.fromEntries(STEP_PARTS.map((p) => [p, 0])) as Record<StepPart, number>;
  for (const t of terms) parts[t.part] += t.seconds;
  return { profile: profile.name, rows, terms, parts, total: STEP_PARTS.reduce((s, p) => s + parts[p], 0) };
}

/** Host steps of one layer of schedule `kind` on its first rank (the projections its passes run). */
function hostSteps(program: ScheduleProgram, kind: number): number {
  const { forward, backward } = program.schedules[kind]!.passes;
  return [forward[0], backward[0]].reduce(
    (n, pass) => n + (pass?.steps.filter((s) => s.kind === "compute" && s.op === "host").length ?? 0),
    0,
  );
}
