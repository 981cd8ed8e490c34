// The view model of a generated program: everything the templates print, computed from the resolved spec
// and the schedule IR. Templates only loop over these lists and fill in; no number or decision is made
// in a template.
import type { LayerKind, ResolvedSpec } from "../spec/resolved.js";
import type {
  BufferDecl,
  CollectiveStep,
  ComputeStep,
  DocumentTable,
  LayerSchedule,
  LayoutPlan,
  Pass,
  RankProgram,
  ScheduleProgram,
  ScheduleSizes,
  Step,
} from "../schedule/ir.js";
import { elementsOf } from "../schedule/context.js";
import { pairedWithPrevious } from "../schedule/p2p-groups.js";
import { fullSoftmaxDims, gatheredSoftmaxDims, stepCalls, type Call, type StepContext } from "./steps.js";
import { DOC_ENDS } from "../schedule/document-operands.js";
import { DEFAULT_DOCUMENT_LENGTH } from "../schedule/documents.js";
import { cppIdent, doubleLiteral, floatLiteral, softmaxDimsLiteral, softmaxDimsName } from "./names.js";
import { kvHeadsOf } from "../model/parameters.js";
import { describeRope, ropeInverseFrequencies } from "../model/rope.js";
import { OVERLAP_CTAS } from "./communicators.js";
import { usesWorkspaces } from "./workspaces.js";
import { bufferTable, type BufferRow, type BufferTable } from "./buffer-table.js";
import {
  gradientBlocks,
  modelTables,
  type HeadRows,
  type ScratchRows,
  type TensorRow,
} from "../model/tables.js";
import {
  decayRows,
  gradientBlockSpans,
  optimizerSharded,
  type DecayRow,
  type GradientBlock,
  type LayerRows,
} from "../model/tables.js";
import { trainConstants } from "./train-constants.js";
import { trainingFlopsPerToken } from "../model/flops.js";
import { HF_MODELING_FILE, hfConfigText } from "../model/hf-config.js";
import { hfModelingText } from "../model/hf-modeling.js";
import { tokenizerFiles } from "../model/byte-tokenizer.js";

export interface ConstantView {
  ctype: string;
  name: string;
  value: string;
  comment: string;
}

export interface BufferView {
  field: string;
  ctype: "bf16" | "float";
  elements: number;
  doc: string;
  /** Kept per layer instance (activations and what the backward pass reads); else shared scratch. */
  perLayer: boolean;
  /**
   * Sent or received by an AllGather on the few-CTA communicator (or one that may go there): allocated through
   * lasp::Windows, so that NCCL can copy it with the copy engines (comm.cuh).
   */
  window: boolean;
}

export interface StepView {
  id: number;
  /** Indices of the timeline's events around this step in Ctx::trace (2 id and 2 id + 1). */
  traceStart: number;
  traceEnd: number;
  comment: string;
  stream: "compute" | "comm";
  /** Guard flag: `run.compute` or `run.comm`. */
  guard: string;
  waits: { event: number }[];
  group: boolean;
  calls: Call[];
  /** Events this step records when done: its own id, and the id of a step merged into it. */
  records: { event: number }[];
  /** A collective that records when it is about to start, for the computation it overlaps. */
  recordStart: boolean;
  /** Collectives this computation lets start first (their `started` events). */
  waitsStarted: { event: number }[];
}

export interface RankView {
  rank: number;
  function: string;
  steps: StepView[];
}

export interface PassView {
  pass: Pass;
  /** Dispatcher name, e.g. `L_forward`. */
  function: string;
  events: number;
  ranks: RankView[];
}

export interface TableView {
  name: string;
  ctype: string;
  values: string;
  count: number;
  comment: string;
}

export interface KindView {
  name: string;
  /** Index of the first stack layer of this kind (its buffers serve verify and the phase timings). */
  firstLayer: number;
  /** lasp::FeatureMap code: 0 identity, 1 elu_plus_one, 2 relu, 3 silu. */
  featureMap: number;
  outputNorm: string;
  struct: string;
  comment: string;
  strategy: string;
  causal: string;
  /** Softmax attention (RoPE, grouped-query K/V, the softmax oracle) rather than linear attention. */
  softmax: boolean;
  /** Runs softmax attention over the whole sequence on one rank (softmax.full): the program reports its backend. */
  whole: boolean;
  /** The lasp::SoftmaxDims of that attention; an empty initialiser when the kind has none. */
  wholeDims: string;
  /** program.cuh's per-rank table of LASP-2H's gathered attention (`kS_gathered`); "" when the kind has none. */
  gathered: string;
  /** Its lasp::GatheredShape initialisers, one per sequence rank. */
  gatheredShapes: string[];
  /** What kKinds holds for it: `program::kS_gathered`, or `nullptr`. */
  gatheredPointer: string;
  /** The program::Tables member of its per-head decays (`&program::Tables::kLDecay`); nullptr for softmax. */
  decayMember: string;
  /** Key/value heads (the query heads for linear attention unless grouped). */
  kvHeads: number;
  /** "true" for a grouped linear kind: layer.cuh copies its k, v out to every head and sums the gradients back. */
  expandKv: "true" | "false";
  /** Width of a K or V row: kv heads x head dim. */
  kvWidth: number;
  /** Scale of verify's random q and k: 1 for softmax (scores scaled by 1/sqrt(d) inside), 1/sqrt(d) else. */
  verifyScale: string;
  /** program.cuh's table of a softmax kind's RoPE inverse frequencies (`kS_rope`); "" for linear kinds. */
  ropeTable: string;
  /** Its values, head_dim / 2 double literals, four a line. */
  ropeLines: string[];
  /** What kKinds holds for it: `program::kS_rope`, or `nullptr`. */
  ropePointer: string;
  /** The table's comment: the base and the scaling. */
  ropeSource: string;
  /** Segment-state workspaces of the linear-attention walks (workspaces.ts): fields kv_ws, qdo_ws, ws_floats. */
  workspaces: boolean;
  /** "true" when the schedule runs the Q projection and dWo itself (`host` steps on every rank and pass). */
  hosted: "true" | "false";
  /** "true" when its backward also runs dQ's GEMMs itself (a `q_grads` host step on every rank). */
  hostsQGrads: "true" | "false";
  /** A lasp::SoftmaxDims initialiser for the rank's blocks (softmax kinds), else "". */
  dims: string;
  /** The C++ constant that holds `dims`. */
  dimsName: string;
  /** Per-head decay table (linear kinds), else "". */
  decayTable: string;
  buffers: BufferView[];
  /** The same buffers as program.cuh's table: where each lives, its offset in its block. */
  bufferTable: BufferTableView;
  passes: PassView[];
  /** Layers of the stack that use this kind. */
  layerCount: number;
}

/** A row of main.cu's kLayers: the layer's kind, its buffer set, and its tensors' rows in the tables. */
export interface LayerView extends LayerRows {
  index: number;
  kind: string;
  kindIndex: number;
  /** Its buffer set among its kind's (0: the kind's first layer, whose scratch buffers the others share). */
  slot: number;
}

/** A row of main.cu's kParameters or kActivations. */
export interface TensorView extends TensorRow {
  /** The shape as C++ declares an array of it, e.g. `[1024][256]`. */
  shapeText: string;
  /** initStd and initValue as C++ float literals. */
  initStdText: string;
  initValueText: string;
  /** The shape's numbers, comma-separated: a weight's dims (runtime/tensors.cuh holds rank 1 or 2). */
  dimsText: string;
}

export interface BufferTableView extends BufferTable {
  rows: (BufferRow & { bf16Field: string; floatField: string })[];
}

export interface TensorTableView {
  rows: TensorView[];
  /** Elements of the table's one allocation. */
  elements: number;
}

export interface ProgramView {
  specFile: string;
  /** modeling_lasp.py's text, or empty where config.json names no modeling file (src/model/hf-modeling.ts). */
  hfModeling: string;
  /** The modeling file's name (HF_MODELING_FILE). */
  hfModelingName: string;
  /** The tokenizer's files written beside config.json (src/model/byte-tokenizer.ts). */
  tokenizerFiles: { name: string; text: string }[];
  model: string;
  compilerVersion: string;
  world: number;
  gpus: number;
  /** One GPU: built against the one-rank stand-in for NCCL (lasp/nccl_one_rank.cuh), not NCCL itself. */
  withoutNccl: boolean;
  dataParallel: number;
  layout: string;
  pieceMaps: string[];
  wholeSequence: string;
  maxEvents: number;
  flopsPerStep: string;
  constants: ConstantView[];
  tables: TableView[];
  kinds: KindView[];
  /** The stack in order (kLayers), and the model's tensors (kParameters, kActivations, kStatistics). */
  layers: LayerView[];
  parameters: TensorTableView;
  /** AdamW's weight decay over the parameter allocation (kDecayRows). */
  decayRows: DecayRow[];
  /** The blocks of weight gradients summed at once (kGradientBlocks): ZeRO-1 shards each over the ranks. */
  gradientBlocks: GradientBlock[];
  activations: TensorTableView;
  statistics: TensorTableView;
  head: HeadRows;
  scratch: ScratchRows;
}

const ELEMENT_CTYPE = (decl: BufferDecl): "bf16" | "float" => (decl.dtype === "fp32" ? "float" : "bf16");

/** Buffers of a layer kind: the union over passes and ranks (same name, same storage). */
export function kindBuffers(schedule: LayerSchedule): BufferView[] {
  const windows = windowBuffers(schedule);
  const byName = new Map<string, BufferDecl>();
  // Inputs of the backward pass on any rank (ranks may differ: LASP-2's first causal piece saves no prefix).
  const backwardInputs = new Set(
    schedule.passes.backward.flatMap((rp) => rp.buffers.filter((b) => b.input).map((b) => b.name)),
  );
  for (const pass of ["forward", "backward"] as const) {
    for (const rp of schedule.passes[pass])
      for (const decl of rp.buffers) if (!byName.has(decl.name)) byName.set(decl.name, decl);
  }
  // The documents are the step's (Ctx::docs, filled once per step for every layer), not a layer's buffer.
  byName.delete(DOC_ENDS);
  return [...byName.values()].map((decl) => ({
    field: cppIdent(decl.name),
    ctype: ELEMENT_CTYPE(decl),
    elements: elementsOf(decl),
    doc: decl.doc,
    perLayer: backwardInputs.has(decl.name) || decl.name === "o",
    window: windows.has(decl.name),
  }));
}

/** The collectives of a schedule, both passes, every rank. */
function collectivesOf(schedule: LayerSchedule): CollectiveStep[] {
  return (["forward", "backward"] as const).flatMap((pass) =>
    schedule.passes[pass].flatMap((rp) =>
      rp.steps.filter((s): s is CollectiveStep => s.kind === "collective"),
    ),
  );
}

/** AllGathers on the few-CTA communicator, or that go there when it copies with the copy engines. */
function copiedGathers(schedule: LayerSchedule): CollectiveStep[] {
  return collectivesOf(schedule).filter(
    (s) =>
      s.collective === "allgather" &&
      (s.placement.communicator === "few_ctas" || s.placement.copyEngineCandidate),
  );
}

/** ReduceScatters that run as an AlltoAll on the copy engines and a sum where the program takes that path. */
function copiedScatters(schedule: LayerSchedule): CollectiveStep[] {
  return collectivesOf(schedule).filter(
    (s) => s.collective === "reducescatter" && s.placement.copyEngineCandidate,
  );
}

/**
 * Buffers the copy engines may read or write, on any rank of either pass (symmetric windows): what those
 * AllGathers send and receive, and what those ReduceScatters' AlltoAlls send and land in (`slices`; the sum
 * kernel writes `recv`).
 */
function windowBuffers(schedule: LayerSchedule): Set<string> {
  const names = new Set<string>();
  for (const step of copiedGathers(schedule)) for (const t of step.transfers) names.add(t.send).add(t.recv);
  for (const step of copiedScatters(schedule))
    for (const t of step.transfers) names.add(t.send).add(t.slices!);
  return names;
}

function stepView(step: Step, ctx: StepContext, events: Set<number>, overlap: Map<number, number>): StepView {
  const program = ctx.program;
  const waits = step.deps.filter((d) => program.steps[d]!.stream !== step.stream).map((event) => ({ event }));
  const calls = stepCalls(step, ctx);
  return {
    id: step.id,
    traceStart: 2 * step.id,
    traceEnd: 2 * step.id + 1,
    comment: step.label,
    stream: step.stream,
    guard: step.stream === "compute" ? "run.compute" : "run.comm",
    waits,
    group: calls.length > 1 && (step.kind === "collective" || step.kind === "send" || step.kind === "recv"),
    calls,
    records: events.has(step.id) ? [{ event: step.id }] : [],
    recordStart: [...overlap.values()].includes(step.id),
    waitsStarted: overlap.has(step.id) ? [{ event: overlap.get(step.id)! }] : [],
  };
}

/**
 * Step views in program order, with each send issued in one NCCL group with the receive beside it
 * (`paired`, from pairedWithPrevious: a ring's ranks all send before they receive). The group waits for what
 * either step waits for and records both steps' events.
 */
export function rankSteps(
  program: RankProgram,
  ctx: StepContext,
  events: Set<number>,
  overlap: Map<number, number>,
  paired: ReadonlySet<number>,
): StepView[] {
  const views: StepView[] = [];
  for (const step of program.steps) {
    const view = stepView(step, ctx, events, overlap);
    const first = views[views.length - 1];
    if (paired.has(step.id) && first !== undefined) {
      const waits = [...first.waits, ...view.waits].filter(
        (w, j, all) => w.event !== first.id && all.findIndex((x) => x.event === w.event) === j,
      );
      views[views.length - 1] = {
        ...first,
        comment: `${first.comment}; ${view.comment} (one NCCL group)`,
        waits,
        group: true,
        calls: [...first.calls, ...view.calls],
        records: [...first.records, ...view.records],
      };
      continue;
    }
    views.push(view);
  }
  return views;
}

/** Computation step -> the collective it overlaps, as the placement pass decided (schedule/placement.ts). */
function overlapsOf(program: RankProgram): Map<number, number> {
  const overlaps = new Map<number, number>();
  for (const step of program.steps)
    if (step.kind === "compute" && step.placement.overlaps !== undefined)
      overlaps.set(step.id, step.placement.overlaps);
  return overlaps;
}

/**
 * Whether a kind's schedule places the layer's Q projection and dWo GEMM itself. main.cu then leaves them to
 * the pass, so every rank's program must have them, once each, or none of them may.
 */
function hostsProjections(schedule: LayerSchedule): boolean {
  const works = hostWorks(schedule);
  if (works.every((w) => w === "")) return false;
  const forward = works.slice(0, schedule.passes.forward.length);
  const backward = works.slice(forward.length);
  const same = (ws: string[]) => ws.every((w) => w === ws[0]);
  if (
    same(forward) &&
    same(backward) &&
    forward[0] === "q_projection" &&
    backward[0]!.startsWith("o_weight_grad")
  )
    return true;
  throw new Error(
    `layer kind ${schedule.kind}: host steps on some ranks or passes only (${works.join("; ")})`,
  );
}

/** Whether the kind's backward runs dQ's GEMMs itself (a `q_grads` host step on every rank). */
function hostsQGrads(schedule: LayerSchedule): boolean {
  return schedule.passes.backward.every((rp) =>
    rp.steps.some((s) => s.kind === "compute" && s.op === "host" && s.params.work === "q_grads"),
  );
}

/** Per rank program, forward ranks then backward ranks: its host steps' works, joined in step order. */
function hostWorks(schedule: LayerSchedule): string[] {
  return [...schedule.passes.forward, ...schedule.passes.backward].map((rp) =>
    rp.steps.flatMap((s) => (s.kind === "compute" && s.op === "host" ? [s.params.work] : [])).join(", "),
  );
}

/** Every piece has the same length in the layouts lasp plans; the workspaces are sized by it. */
function pieceTokens(plan: LayoutPlan): number {
  const lengths = new Set(plan.pieces.map((p) => p.length));
  if (lengths.size !== 1) throw new Error(`pieces of unequal lengths: ${[...lengths].join(", ")}`);
  return plan.pieces[0]!.length;
}

/** Steps whose completion another stream waits for: they record an event. */
function recordedSteps(program: RankProgram): Set<number> {
  const recorded = new Set<number>();
  for (const step of program.steps) {
    for (const d of step.deps) if (program.steps[d]!.stream !== step.stream) recorded.add(d);
  }
  return recorded;
}

export interface ViewInputs {
  spec: ResolvedSpec;
  program: ScheduleProgram;
  compilerVersion: string;
}

/**
 * Whether the spec's program builds without NCCL: on one GPU it runs against the one-rank stand-in
 * (lasp/nccl_one_rank.cuh). The build files and the memory model's runtime reserve follow this.
 */
export const buildsWithoutNccl = (spec: ResolvedSpec): boolean => spec.parallel.gpus === 1;

export function buildView({ spec, program, compilerVersion }: ViewInputs): ProgramView {
  const { sizes, layout } = program;
  const localTokens = layout.byRank[0]!.reduce((s, p) => s + p.length, 0);
  const gathersBesideKernels = program.schedules.some((schedule) => copiedGathers(schedule).length > 0);
  const scattersBesideKernels = program.schedules.some((schedule) => copiedScatters(schedule).length > 0);
  const tensors = modelTables(spec, sizes.batch * localTokens);
  // Every block of weight gradients splits evenly over the ranks: the gradient sum may take the copy engines
  // (templates/runtime/grad_sum.cuh).
  const gradientsSplitEvenly = gradientBlocks(tensors.parameters, tensors.layers, tensors.head).every(
    (elements) => elements % spec.parallel.gpus === 0,
  );
  const blocks = gradientBlockSpans(tensors.parameters, tensors.layers, tensors.head);
  const constants: ConstantView[] = [
    {
      ctype: "const char*",
      name: "kSpecFile",
      value: JSON.stringify(spec.file),
      comment: "the spec it came from",
    },
    {
      ctype: "const char*",
      name: "kCompilerVersion",
      value: JSON.stringify(compilerVersion),
      comment: "the lasp that generated it (checkpoints record it)",
    },
    {
      ctype: "const char*",
      name: "kModelName",
      value: JSON.stringify(spec.model.name),
      comment: "the spec's model",
    },
    {
      ctype: "const char*",
      name: "kMode",
      value: JSON.stringify(spec.run.mode),
      comment: "the mode without --mode",
    },
    {
      ctype: "float",
      name: "kTolerance",
      value: floatLiteral(TOLERANCE[sizes.dtype]),
      comment: `largest relative error verify passes (${sizes.dtype})`,
    },
    {
      ctype: "int",
      name: "kWorld",
      value: String(layout.ranks),
      comment: "sequence-parallel ranks W (the SP group)",
    },
    {
      ctype: "int",
      name: "kDataParallel",
      value: String(spec.parallel.data),
      comment: "data-parallel groups",
    },
    { ctype: "int", name: "kGpus", value: String(spec.parallel.gpus), comment: "all GPUs = sequence x data" },
    {
      ctype: "int",
      name: "kBatch",
      value: String(sizes.batch),
      comment: "sequences per step on each data-parallel rank",
    },
    { ctype: "int64_t", name: "kSeqLen", value: String(sizes.seqLen), comment: "global sequence length N" },
    {
      ctype: "int64_t",
      name: "kRealSeqLen",
      value: String(sizes.seqLen - spec.run.padding),
      comment: "the spec's seq_len: tokens from here to kSeqLen are padding (a document no loss counts)",
    },
    { ctype: "int64_t", name: "kLocalTokens", value: String(localTokens), comment: "tokens each rank holds" },
    {
      ctype: "int64_t",
      name: "kPieceTokens",
      value: String(pieceTokens(layout)),
      comment: "tokens of each piece",
    },
    {
      ctype: "int",
      name: "kPiecesPerRank",
      value: String(layout.byRank[0]!.length),
      comment: `${layout.layout} layout`,
    },
    { ctype: "int", name: "kHidden", value: String(spec.model.hidden), comment: "model width" },
    { ctype: "int", name: "kHeads", value: String(sizes.heads), comment: "query heads" },
    { ctype: "int", name: "kHeadDim", value: String(sizes.headDim), comment: "head dimension" },
    { ctype: "int", name: "kLayers", value: String(program.layers.length), comment: "layers in the stack" },
    { ctype: "int", name: "kLayerKinds", value: String(program.schedules.length), comment: "layer kinds" },
    {
      ctype: "int",
      name: "kSteps",
      value: String(spec.run.steps),
      comment: "timed steps (bench) by default",
    },
    { ctype: "int", name: "kWarmup", value: String(spec.run.warmup), comment: "untimed warm-up steps" },
    { ctype: "int", name: "kSeed", value: String(spec.run.seed), comment: "seed of weights and inputs" },
    { ctype: "int", name: "kVocab", value: String(spec.model.vocab), comment: "vocabulary size" },
    { ctype: "int", name: "kFfn", value: String(spec.model.ffn), comment: "the MLP's inner width" },
    {
      ctype: "lasp::NormKind",
      name: "kNorm",
      value: spec.model.norm === "layernorm" ? "lasp::kLayerNorm" : "lasp::kRmsNorm",
      comment: "the block norms and the final norm",
    },
    {
      ctype: "float",
      name: "kNormEps",
      value: floatLiteral(spec.model.normEps),
      comment: "epsilon of every norm (block, final, attention output)",
    },
    {
      ctype: "bool",
      name: "kRecomputeMlp",
      value: String(spec.run.recompute === "mlp"),
      comment: "the backward pass makes each layer's gate|up again (`recompute mlp`) instead of keeping it",
    },
    {
      ctype: "bool",
      name: "kTiedEmbeddings",
      value: String(spec.model.tieEmbeddings),
      comment: "the LM head is the embedding table",
    },
    {
      ctype: "bool",
      name: "kMaskedObjective",
      value: String(maskedObjective(spec)),
      comment: "masked-token prediction (every layer bidirectional), else the next token",
    },
    {
      ctype: "float",
      name: "kMaskRate",
      value: floatLiteral(spec.model.maskRate),
      comment: "share of the input tokens masked (masked-token prediction)",
    },
    ...documentConstants(spec, program.documents),
    {
      ctype: "int",
      name: "kClassifierChunk",
      value: String(tensors.classifierChunk),
      comment: "tokens per chunk of the LM head and loss",
    },
    {
      ctype: "float",
      name: "kModelLossTolerance",
      value: floatLiteral(MODEL_TOLERANCE.loss),
      comment: "verify: the whole model's loss against its fp32 oracle, relative error",
    },
    {
      ctype: "float",
      name: "kModelGradTolerance",
      value: floatLiteral(MODEL_TOLERANCE.gradients),
      comment: "verify: each weight gradient against the oracle's, relative L2 error",
    },
    {
      ctype: "int",
      name: "kModelConditioningProbes",
      value: String(MODEL_CONDITIONING.probes),
      comment: "verify: where a gradient fails, oracle steps with q, k, v moved by one bf16 rounding",
    },
    {
      ctype: "float",
      name: "kModelConditioningFactor",
      value: floatLiteral(MODEL_CONDITIONING.factor),
      comment:
        "verify: a failing gradient passes as ill-conditioned within this many times the oracle's spread",
    },
    {
      ctype: "const char*",
      name: "kHfConfig",
      value: `R"json(${hfConfigText(spec)})json"`,
      comment: "config.json, written beside --save-weights (src/model/hf-config.ts)",
    },
    {
      ctype: "const char*",
      name: "kTokenizerFolder",
      value: JSON.stringify(spec.run.tokenizer.kind === "folder" ? spec.run.tokenizer.path : ""),
      comment:
        '`tokenizer "FOLDER"`: its tokenizer files go beside config.json (--tokenizer overrides; "": none)',
    },
    {
      ctype: "double",
      name: "kModelFlopsPerToken",
      value: trainingFlopsPerToken(spec).perToken.toExponential(6),
      comment: "training FLOPs per token as MFU counts them (src/model/flops.ts)",
    },
    {
      ctype: "float",
      name: "kWeightScale",
      value: floatLiteral(1 / Math.sqrt(spec.model.hidden)),
      comment: "standard deviation of the initial weights, 1/sqrt(hidden)",
    },
    {
      ctype: "bool",
      name: "kGathersBesideKernels",
      value: String(gathersBesideKernels),
      comment: "some layer kind has AllGathers beside computation that may take the copy engines",
    },
    {
      ctype: "bool",
      name: "kScattersBesideKernels",
      value: String(scattersBesideKernels),
      comment: "some layer kind has ReduceScatters beside computation that may take the copy engines",
    },
    {
      ctype: "size_t",
      name: "kLargestGradientBlock",
      value: String(Math.max(...gradientBlocks(tensors.parameters, tensors.layers, tensors.head))),
      comment: "elements of the largest block of weight gradients summed at once (the copy engines' scratch)",
    },
    {
      ctype: "double",
      name: "kTokensPerStep",
      value: String(sizes.batch * (sizes.seqLen - spec.run.padding) * spec.parallel.data),
      comment:
        "real tokens of one step over every rank (sequence x data; a padded seq_len's padding not counted)",
    },
    {
      ctype: "bool",
      name: "kGradientsSplitEvenly",
      value: String(gradientsSplitEvenly),
      comment: "every layer's weight gradients split evenly over the ranks (the copy-engine gradient sum)",
    },
    {
      ctype: "bool",
      name: "kOptimizerSharded",
      value: String(optimizerSharded(blocks, spec.parallel.gpus)),
      comment: "train: AdamW's state sharded over the ranks by gradient block (ZeRO-1), else replicated",
    },
    {
      ctype: "int",
      name: "kFewCtas",
      value: String(OVERLAP_CTAS),
      comment: "CTA limit of the communicator for small collectives beside computation (Ctx::nccl_few_ctas)",
    },
    ...trainConstants(spec),
  ];
  const tables: TableView[] = [];
  const kinds = program.schedules.map((schedule): KindView => {
    const name = cppIdent(schedule.kind);
    const layer = schedule.layer;
    const softmax = layer.type === "softmax_attention";
    const decayTable = softmax ? "" : `k${name}Decay`;
    if (!softmax) {
      tables.push({
        name: decayTable,
        ctype: "float",
        values: layer.decay.perHead.map(floatLiteral).join(", "),
        count: layer.decay.perHead.length,
        comment: `per-head decay of layer kind ${schedule.kind} (${layer.decay.schedule})`,
      });
    }
    const kvHeads = kvHeadsOf(spec.model, layer);
    const workspaces = usesWorkspaces(schedule.passes.forward);
    const buffers = kindBuffers(schedule);
    const passes = (["forward", "backward"] as const).map((pass): PassView => {
      const pairedByRank = pairedWithPrevious(schedule.passes[pass]);
      const ranks = schedule.passes[pass].map((rp, at): RankView => {
        const overlap = overlapsOf(rp);
        const ctx: StepContext = {
          program: rp,
          schedule,
          plan: layout,
          sizes,
          kind: name,
          tables,
          pass,
          workspaces,
        };
        const events = recordedSteps(rp);
        return {
          rank: rp.rank,
          function: `${name}_${pass}_rank${rp.rank}`,
          steps: rankSteps(rp, ctx, events, overlap, pairedByRank[at]!),
        };
      });
      const events = Math.max(1, ...schedule.passes[pass].map((rp) => rp.steps.length));
      return { pass, function: `${name}_${pass}`, events, ranks };
    });
    const firstLayer = program.layers.findIndex((l) => program.schedules[l] === schedule);
    return {
      name,
      firstLayer,
      featureMap: softmax ? 0 : FEATURE_MAPS.indexOf(layer.featureMap),
      outputNorm: !softmax && layer.outputNorm === "rms" ? "true" : "false",
      struct: `${name}Buffers`,
      comment: softmax
        ? `${schedule.kind}: softmax_attention, ${schedule.strategy}, ${layer.causal ? "causal" : "bidirectional"}, ${layer.kvHeads} kv heads, RoPE ${describeRope(layer.ropeTheta, layer.ropeScaling)}`
        : `${schedule.kind}: ${layer.type}, ${schedule.strategy}, ${layer.causal ? "causal" : "bidirectional"}, decay ${layer.decay.schedule}${layer.kvHeads === undefined ? "" : `, ${layer.kvHeads} kv heads copied to every head`}`,
      strategy: schedule.strategy,
      causal: layer.causal ? "true" : "false",
      softmax,
      kvHeads,
      expandKv: !softmax && kvHeads !== sizes.heads ? "true" : "false",
      kvWidth: kvHeads * sizes.headDim,
      verifyScale: floatLiteral(softmax ? 1 : 1 / Math.sqrt(sizes.headDim)),
      whole: wholeSoftmaxDims(schedule, sizes) !== "",
      wholeDims: wholeSoftmaxDims(schedule, sizes) || "lasp::SoftmaxDims{}",
      ...gatheredShapes(name, schedule, layout, sizes),
      decayMember: softmax ? "nullptr" : `&program::Tables::${decayTable}`,
      ...ropeTable(name, layer, sizes.headDim),
      hosted: hostsProjections(schedule) ? "true" : "false",
      hostsQGrads: hostsQGrads(schedule) ? "true" : "false",
      workspaces,
      dims: softmax
        ? softmaxDimsLiteral({
            batch: sizes.batch,
            qRows: localTokens,
            kRows: localTokens,
            heads: sizes.heads,
            kvHeads,
            headDim: sizes.headDim,
          })
        : "",
      dimsName: softmaxDimsName(name),
      decayTable,
      buffers,
      bufferTable: bufferTableView(`${name}Buffers`, bufferTable(buffers)),
      passes,
      layerCount: program.layers.filter((l) => program.schedules[l] === schedule).length,
    };
  });
  const layers = program.layers.map((s, index): LayerView => ({
    index,
    kind: kinds[s]!.name,
    kindIndex: s,
    slot: program.layers.slice(0, index).filter((t) => t === s).length,
    ...tensors.layers[index]!,
  }));
  const maxEvents = Math.max(1, ...kinds.flatMap((k) => k.passes.map((p) => p.events)));
  return {
    specFile: spec.file,
    hfModeling: hfModelingText(spec),
    hfModelingName: HF_MODELING_FILE,
    tokenizerFiles: tokenizerFiles(spec),
    model: spec.model.name,
    compilerVersion,
    world: layout.ranks,
    gpus: spec.parallel.gpus,
    withoutNccl: buildsWithoutNccl(spec),
    dataParallel: spec.parallel.data,
    layout: layout.layout,
    pieceMaps: layout.byRank.map((pieces) => pieceMap(pieces)),
    // Count 0: the rows are global positions already, so no length is stored (the sequence may hold 2^31).
    wholeSequence: "lasp::PieceMap{0, {0, 0}, {0, 0}, {0, 0}}",
    maxEvents,
    flopsPerStep: flopsPerStep(spec, program).toExponential(6),
    constants,
    tables,
    kinds,
    layers,
    parameters: tableView(tensors.parameters),
    decayRows: decayRows(tensors.parameters),
    gradientBlocks: blocks,
    activations: tableView(tensors.activations),
    statistics: tableView(tensors.statistics),
    head: tensors.head,
    scratch: tensors.scratch,
  };
}

const FEATURE_MAPS = ["identity", "elu_plus_one", "relu", "silu"];

/** An encoder (every layer bidirectional) trains by masked-token prediction; anything else by the next token. */
export const maskedObjective = (spec: ResolvedSpec): boolean => spec.model.layers.every((l) => !l.causal);

/** A kind's buffer table with each row's field as the C++ pointer to member of its element type. */
function bufferTableView(struct: string, table: BufferTable): BufferTableView {
  const rows = table.rows.map((row) => ({
    ...row,
    bf16Field: row.ctype === "bf16" ? `&${struct}::${row.field}` : "nullptr",
    floatField: row.ctype === "float" ? `&${struct}::${row.field}` : "nullptr",
  }));
  return { ...table, rows };
}

function tableView(table: { rows: TensorRow[]; elements: number }): TensorTableView {
  const rows = table.rows.map((row) => ({
    ...row,
    shapeText: row.shape.map((n) => `[${n}]`).join(""),
    initStdText: floatLiteral(row.initStd),
    initValueText: floatLiteral(row.initValue),
    dimsText: row.shape.join(", "),
  }));
  return { rows, elements: table.elements };
}

/**
 * verify's whole-model step against its fp32 oracle (bf16 programs): the loss's relative error, and each weight
 * gradient's relative L2 error, about twice what one bf16 rounding of the weights alone does to the gradients
 * (bench/results/2026-12-05-whole-model-h100.md).
 */
const MODEL_TOLERANCE = { loss: 1e-3, gradients: 5e-2 } as const;

/**
 * Where a gradient fails: how many oracle steps with q, k, v moved by one bf16 rounding measure how far the
 * oracle itself moves (the largest counts), and within how many times that movement an error passes as
 * ill-conditioned (bench/results/2026-12-05-documents-h100.md). A draw either flips the sign of a document's
 * first output or not, so its movement is bimodal: at v-doc-sm-uly's shape 6 of 10 draws moved the softmax
 * layer's Wv gradient by 1.2% and 4 by 5-9%, so three draws all missed the flip in one run of five
 * (bench/results/2026-12-06-documents-allscan-h100.md); eight miss it in one of sixty.
 */
const MODEL_CONDITIONING = { probes: 8, factor: 3 } as const;

/** Max relative error that passes verify, by activation type (bf16 keeps 8 bits of mantissa). */
const TOLERANCE = { bf16: 2e-2, fp16: 5e-3, fp32: 1e-4 } as const;

/** A lasp::PieceMap initialiser: the rank's pieces with their local offsets and global starts. */
function pieceMap(pieces: readonly { start: number; length: number }[]): string {
  const offsets: number[] = [];
  let offset = 0;
  for (const p of pieces) {
    offsets.push(offset);
    offset += p.length;
  }
  const pad = (xs: number[]): string => `{${[...xs, 0, 0].slice(0, 2).join(", ")}}`;
  return `lasp::PieceMap{${pieces.length}, ${pad(offsets)}, ${pad(pieces.map((p) => p.start))}, ${pad(pieces.map((p) => p.length))}}`;
}

/** FLOPs of one training step on one rank: the IR's attention steps (mean over ranks) plus the projections. */
export function flopsPerStep(spec: ResolvedSpec, program: ScheduleProgram): number {
  // The attention's own FLOPs, averaged over the ranks (end ranks skip terms that would add zero). Host
  // steps are the layer's projections, counted with the others below.
  const attention = (schedule: LayerSchedule): number =>
    (["forward", "backward"] as const).reduce((sum, pass) => {
      const ranks = schedule.passes[pass];
      const flops = ranks
        .flatMap((rp) => rp.steps)
        .filter((s): s is ComputeStep => s.kind === "compute" && s.op !== "host");
      return sum + flops.reduce((s, step) => s + step.flops, 0) / ranks.length;
    }, 0);
  const rows = program.sizes.batch * program.layout.byRank[0]!.reduce((s, p) => s + p.length, 0);
  const { heads, headDim } = program.sizes;
  // Forward: Q, K, V, O products (K and V over the kv heads); backward: two products per forward product.
  const projections = (schedule: LayerSchedule): number => {
    const kvHeads = kvHeadsOf(spec.model, schedule.layer);
    return 3 * 2 * rows * spec.model.hidden * headDim * (2 * heads + 2 * kvHeads);
  };
  // The MLP's gate, up and down products and the LM head, forward and backward (3 x 2 FLOPs a weight).
  const { hidden, ffn, vocab } = spec.model;
  // `recompute mlp` runs the gate|up product once more (executed FLOPs; MFU counts the model's only).
  const mlp = 6 * rows * 3 * hidden * ffn + (spec.run.recompute === "mlp" ? 2 * rows * 2 * ffn * hidden : 0);
  const head = 6 * rows * vocab * hidden;
  return program.layers.reduce((sum, s) => {
    const schedule = program.schedules[s]!;
    return sum + attention(schedule) + projections(schedule) + mlp;
  }, head);
}

/** A softmax kind's RoPE frequencies as the compiler computes them (src/model/rope.ts), for program.cuh. */
function ropeTable(
  name: string,
  layer: LayerKind,
  headDim: number,
): Pick<KindView, "ropeTable" | "ropeLines" | "ropePointer" | "ropeSource"> {
  if (layer.type !== "softmax_attention")
    return { ropeTable: "", ropeLines: [], ropePointer: "nullptr", ropeSource: "" };
  const values = ropeInverseFrequencies(headDim, layer.ropeTheta, layer.ropeScaling).map(doubleLiteral);
  const lines = Array.from({ length: Math.ceil(values.length / 4) }, (_, i) =>
    values.slice(4 * i, 4 * i + 4).join(", "),
  );
  return {
    ropeTable: `k${name}_rope`,
    ropeLines: lines,
    ropePointer: `program::k${name}_rope`,
    ropeSource: describeRope(layer.ropeTheta, layer.ropeScaling),
  };
}

/**
 * LASP-2H's gathered attention per sequence rank (the forward step's dims, the rank's pieces, the keys it
 * sees), for the program to report its backend and build cuDNN's plans before any timing.
 */
function gatheredShapes(
  name: string,
  schedule: LayerSchedule,
  layout: LayoutPlan,
  sizes: ScheduleSizes,
): Pick<KindView, "gathered" | "gatheredShapes" | "gatheredPointer"> {
  const shapes = schedule.passes.forward.map((rp) => {
    const step = rp.steps.find(
      (s): s is ComputeStep<"softmax.gathered"> => s.kind === "compute" && s.op === "softmax.gathered",
    );
    if (step === undefined) return undefined;
    const k = rp.buffers.find((b) => b.name === step.operands.k)!;
    const dims = gatheredSoftmaxDims(sizes, layout, rp.rank, k);
    return `lasp::GatheredShape{${dims}, ${pieceMap(layout.byRank[rp.rank]!)}, ${step.params.keyRows}}`;
  });
  if (shapes.some((s) => s === undefined))
    return { gathered: "", gatheredShapes: [], gatheredPointer: "nullptr" };
  const gathered = `k${name}_gathered`;
  return { gathered, gatheredShapes: shapes as string[], gatheredPointer: `program::${gathered}` };
}

/** The dims of a kind's whole-sequence softmax step (the same on every rank: each holds one head shard). */
function wholeSoftmaxDims(schedule: LayerSchedule, sizes: ScheduleSizes): string {
  const step = schedule.passes.forward[0]!.steps.find(
    (s): s is ComputeStep => s.kind === "compute" && s.op === "softmax.full",
  );
  return step === undefined ? "" : fullSoftmaxDims({ sizes }, step);
}

/**
 * Packed documents (documents.cuh): where the program finds them and the mean length it draws them with from
 * the seed (synthetic data; the IR's table was drawn the same way, so row 0 of verify's step is that table).
 */
function documentConstants(spec: ResolvedSpec, table: DocumentTable | undefined): ConstantView[] {
  const { documents } = spec.run;
  const kind = { none: "lasp::kNoDocuments", eos: "lasp::kEosDocuments", index: "lasp::kIndexDocuments" };
  return [
    {
      ctype: "lasp::DocumentKind",
      name: "kDocuments",
      value: kind[documents.kind],
      comment: "where documents end: none, at the eos token, or at the Megatron index's sequence ends",
    },
    {
      ctype: "bool",
      name: "kStepDocuments",
      value: String(table !== undefined),
      comment: "the attention calls read the step's documents (packed ones, or the padding's)",
    },
    {
      ctype: "int",
      name: "kDocumentLength",
      value: String(documents.kind === "none" ? 0 : (table?.meanLength ?? DEFAULT_DOCUMENT_LENGTH)),
      comment: "mean length of the documents drawn from the seed (synthetic data; none drawn: 0)",
    },
    {
      ctype: "int",
      name: "kEosToken",
      value: String(documents.kind === "eos" ? documents.eosToken : -1),
      comment: "the token that ends a document (`documents eos`; -1: none)",
    },
  ];
}
