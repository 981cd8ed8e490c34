// The training section of `lasp inspect` for a spec in train mode: how many tokens the run trains on and how
// long the step model says it takes, how many times it reads its data (the token file's header is read when
// the file is there), the learning-rate schedule, and what each checkpoint writes. The numbers are the step
// section's and the memory model's; the data file's the program reads the same way (token_files.cuh).
import { closeSync, existsSync, fstatSync, openSync, readSync } from "node:fs";
import path from "node:path";
import { checkFileSize, decodeHeader, HEADER_BYTES, TokenFileError } from "../data/llmc-format.js";
import { megatronPrefix, megatronTokens } from "../data/megatron-index.js";
import { EVAL_WINDOWS } from "../codegen/train-constants.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { shellQuote } from "../text/shell-text.js";
import { formatTime, MAX_WIDTH, table } from "../text/units.js";
import type { StepSection } from "./step.js";

export interface TrainingData {
  /** The file as the spec names it, resolved against the spec's folder. */
  path: string;
  /** `llm.c` or `Megatron` (its header, or index's, read), `missing`, or `unreadable`. */
  kind: "llm.c" | "Megatron" | "missing" | "unreadable";
  tokens?: number;
  /** Windows of seq_len tokens and the one after (token_files.cuh window_count). */
  windows?: number;
  /** How many times the run reads every window (steps x windows per step / windows). */
  epochs?: number;
  problem?: string;
}

export interface TrainingSection {
  steps: number;
  /** Tokens of one optimizer step over every GPU (micro-batches included). */
  tokensPerStep: number;
  tokens: number;
  /** The step model's prediction for the whole run, s (checkpoints and evaluation not included). */
  seconds: number;
  schedule: { kind: string; warmupSteps: number; lr: number; minLr: number };
  /** Bytes of one checkpoint: bf16 weights and the fp32 master weights and moments (every rank's shards). */
  checkpointBytes: number;
  /**
   * Host memory rank 0 holds for the copy a checkpoint is written from while training goes on (page-locked
   * where the host allows): the bf16 weights and its 1/W of the fp32 state.
   */
  checkpointHostBytes: number;
  checkpointEvery: number;
  keepCheckpoints: number;
  data: TrainingData | { kind: "synthetic" };
  /** Windows of `data` one optimizer step reads (every replica's micro-batches), and what they are. */
  windowsPerStep: number;
  stepReads: string;
  evalData?: TrainingData;
  /** Windows of `evalData` one evaluation batch reads, and what they are. */
  windowsPerEvalBatch: number;
  evalReads: string;
  evalEvery: number;
}

/** The problem of a data path that names a folder (`lasp run` words the same case its own way). */
export const FOLDER_PROBLEM = "it is a folder, not a token file";

/** What the token file at `file` holds, from its header (llm.c) or its index's header and last sequence (Megatron). */
export function describeTokenFile(file: string, seqLen: number, windowsRead: number): TrainingData {
  const prefix = megatronPrefix(file);
  if (prefix !== undefined) {
    // A prefix whose .idx or .bin is missing, or an index the program would refuse, is said now, as it will say it.
    try {
      return counted(file, "Megatron", megatronTokens(prefix), seqLen, windowsRead);
    } catch (error) {
      return {
        path: file,
        kind: "unreadable",
        problem: error instanceof Error ? error.message : String(error),
      };
    }
  }
  if (!existsSync(file)) return { path: file, kind: "missing" };
  let fd: number | undefined;
  let read = new Uint8Array(0);
  try {
    fd = openSync(file, "r");
    // Reading a folder fails with EISDIR, which says nothing to someone who named a folder by mistake.
    if (fstatSync(fd).isDirectory()) return { path: file, kind: "unreadable", problem: FOLDER_PROBLEM };
    read = new Uint8Array(HEADER_BYTES);
    read = read.subarray(0, readSync(fd, read, 0, HEADER_BYTES, 0));
    const header = decodeHeader(read);
    checkFileSize(header, fstatSync(fd).size);
    return counted(file, "llm.c", header.tokens, seqLen, windowsRead);
  } catch (error) {
    let problem = error instanceof Error ? error.message : String(error);
    // What the program says where a .bin is neither (token_files.cuh, open_llmc).
    const neither =
      error instanceof TokenFileError && (error.problem === "bad-magic" || error.problem === "short-header");
    if (neither && file.endsWith(".bin")) {
      const what = `not an llm.c token file (nor a Megatron dataset: there is no ${file.slice(0, -4)}.idx beside it)`;
      problem =
        error.problem === "bad-magic"
          ? problem.replace("not an llm.c token file", what)
          : `${what}: ${problem}`;
    } else if (neither && error.problem === "short-header") problem = `not an llm.c token file: ${problem}`;
    if (neither && looksLikeText(read)) {
      const out = file.endsWith(".bin") ? `${file}.tokens.bin` : `${file.replace(/\.[^./]*$/, "")}.bin`;
      problem += `; it looks like text: \`lasp tokens ${shellQuote(file)} -o ${shellQuote(out)}\` makes a token file of it`;
    }
    return { path: file, kind: "unreadable", problem };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Why an llm.c file cannot be `data` under `documents index` (lasp run refuses it before the build). */
export const DOCUMENTS_INDEX_PROBLEM =
  "an llm.c token file, and `documents index` reads where documents end from a Megatron dataset's index (PREFIX.idx)";

/** Whether a file's first bytes read as text (UTF-8, no control characters but tabs and line ends). */
function looksLikeText(bytes: Uint8Array): boolean {
  if (bytes.length === 0) return false;
  // A multi-byte character cut at the end of the bytes read is still text.
  const text = new TextDecoder("utf-8").decode(bytes).replace(/\uFFFD{1,3}$/, "");
  return !/[\x00-\x08\x0B\x0C\x0E-\x1F\x7F\uFFFD]/.test(text);
}

/** A token file of `tokens` tokens, in windows of seqLen and the one after (token_files.cuh window_count). */
function counted(
  file: string,
  kind: "llm.c" | "Megatron",
  tokens: number,
  seqLen: number,
  windowsRead: number,
): TrainingData {
  const windows = tokens > 0 ? Math.floor((tokens - 1) / seqLen) : 0;
  return {
    path: file,
    kind,
    tokens,
    windows,
    ...(windows > 0 && windowsRead > 0 ? { epochs: windowsRead / windows } : {}),
  };
}

/** What reads a data file's windows, for tooFewWindows. */
export const stepReads = (spec: ResolvedSpec): string =>
  `that one step reads (batch ${spec.run.batch} x accumulate ${spec.run.train.accumulate})`;
/** What reads an evaluation file's windows, for tooFewWindows. */
export const evalReads = (spec: ResolvedSpec): string =>
  `that one evaluation batch reads (batch ${spec.run.batch})`;

/**
 * Windows of the token file one optimizer step reads: `batch` (the step's sequences, split over the
 * data-parallel replicas) x micro-batches.
 */
export const windowsPerOptimizerStep = (spec: ResolvedSpec): number =>
  spec.run.batch * spec.run.train.accumulate;

/** Windows one evaluation batch reads (`batch`, over every replica): an evaluation file needs at least these. */
export const windowsPerEvalBatch = (spec: ResolvedSpec): number => spec.run.batch;

/** The section for a train-mode spec (undefined in bench and verify mode). `specFolder` resolves the data. */
export function trainingSection(
  spec: ResolvedSpec,
  step: StepSection,
  parameterElements: number,
  specFolder: string,
): TrainingSection | undefined {
  if (spec.run.mode !== "train") return undefined;
  const t = spec.run.train;
  // A window is the spec's seq_len of file tokens: a padded length's padding is no data.
  const real = spec.run.seqLen - spec.run.padding;
  const windowsPerStep = windowsPerOptimizerStep(spec);
  const tokensPerStep = windowsPerStep * real;
  let data: TrainingData | { kind: "synthetic" } =
    spec.run.data.kind === "file"
      ? describeTokenFile(path.resolve(specFolder, spec.run.data.path), real, spec.run.steps * windowsPerStep)
      : { kind: "synthetic" };
  if (data.kind === "llm.c" && spec.run.documents.kind === "index")
    data = { path: data.path, kind: "unreadable", problem: DOCUMENTS_INDEX_PROBLEM };
  return {
    steps: spec.run.steps,
    tokensPerStep,
    tokens: tokensPerStep * spec.run.steps,
    seconds: step.total * spec.run.steps,
    schedule: { kind: t.lrSchedule, warmupSteps: t.warmupSteps, lr: spec.run.lr, minLr: t.minLr },
    checkpointBytes: parameterElements * (2 + 12),
    checkpointHostBytes: parameterElements * 2 + Math.ceil(parameterElements / spec.parallel.gpus) * 12,
    checkpointEvery: t.checkpointEvery,
    keepCheckpoints: t.keepCheckpoints,
    data,
    windowsPerStep,
    stepReads: stepReads(spec),
    ...(t.evalData.kind === "file"
      ? { evalData: describeTokenFile(path.resolve(specFolder, t.evalData.path), real, 0) }
      : {}),
    windowsPerEvalBatch: windowsPerEvalBatch(spec),
    evalReads: evalReads(spec),
    evalEvery: t.evalEvery,
  };
}

/** A rate as a person writes it: 3 significant digits, no float noise (3e-5, 0.002). */
const rate = (x: number): string => String(Number(x.toPrecision(3)));

/** A path under the working folder relative to it, any other absolute. */
function shown(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative !== "" && !relative.startsWith("..") && !path.isAbsolute(relative) ? relative : file;
}

const count = (n: number): string =>
  n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n.toLocaleString("en-US");

/** Where a token file holds fewer windows than `need`, what the program will say before step 1, else "". */
export function tooFewWindows(d: TrainingData, need: number, reads: string): string {
  if ((d.kind !== "llm.c" && d.kind !== "Megatron") || (d.windows ?? 0) >= need) return "";
  return `${count(d.windows ?? 0)} windows, fewer than the ${count(need)} ${reads}`;
}

function dataText(d: TrainingData | { kind: "synthetic" }, need = 0, reads = ""): string {
  switch (d.kind) {
    case "synthetic":
      return "synthetic: new random tokens every step from the seed";
    case "missing":
      return `${shown(d.path)} does not exist yet (\`lasp tokens FILES... -o ${shown(d.path)}\` makes one from text)`;
    case "unreadable":
      return `${shown(d.path)}: ${d.problem ?? "unreadable"}`;
    case "Megatron":
    case "llm.c": {
      const few = tooFewWindows(d, need, reads);
      if (few !== "")
        return `${shown(d.path)}: ${count(d.tokens ?? 0)} tokens: ${few} (the program stops before step 1)`;
      const epochs = d.epochs === undefined ? "" : `; the run reads it ${d.epochs.toFixed(2)} times`;
      const kind = d.kind === "Megatron" ? " (a Megatron-LM dataset)" : "";
      return `${shown(d.path)}${kind}: ${count(d.tokens ?? 0)} tokens, ${count(d.windows ?? 0)} windows${epochs}`;
    }
  }
}

/**
 * Windows one evaluation reads, as train.cuh's `evaluate` counts them: the first EVAL_WINDOWS of the file, or
 * all it holds when fewer, cut to whole batches. Undefined where the file's windows are not known here.
 */
export function windowsEvaluated(d: TrainingData, perBatch: number): number | undefined {
  if ((d.kind !== "llm.c" && d.kind !== "Megatron") || d.windows === undefined) return undefined;
  const windows = Math.min(d.windows, EVAL_WINDOWS);
  return windows - (windows % perBatch);
}

/** When and on what an evaluation runs, after the file's description. */
function evaluationText(s: TrainingSection): string {
  // With eval_every 0 the program never opens eval_data (W0607).
  if (s.evalEvery === 0) return "; never read: eval_every is 0";
  const evaluated = windowsEvaluated(s.evalData!, s.windowsPerEvalBatch);
  const what =
    evaluated === undefined
      ? `its first ${EVAL_WINDOWS} windows (or all, when fewer, in whole batches)`
      : evaluated === 0
        ? "" // too few windows for one batch: the file's text says so
        : evaluated === EVAL_WINDOWS
          ? `its first ${EVAL_WINDOWS} windows`
          : `its first ${evaluated} windows (whole batches of ${s.windowsPerEvalBatch}; at most ${EVAL_WINDOWS})`;
  return what === "" ? "" : `; ${what} every ${s.evalEvery} steps and at the end`;
}

export function trainingText(s: TrainingSection, width: number = MAX_WIDTH): string {
  const schedule =
    s.schedule.kind === "constant"
      ? `${s.schedule.warmupSteps} warmup steps to ${rate(s.schedule.lr)}, then constant`
      : `${s.schedule.warmupSteps} warmup steps to ${rate(s.schedule.lr)}, then ${s.schedule.kind} to ${rate(s.schedule.minLr)} at step ${s.steps}`;
  const every = s.checkpointEvery > 0 ? `every ${s.checkpointEvery} steps and at the end` : "at the end";
  const keep = s.keepCheckpoints > 0 ? `, the last ${s.keepCheckpoints} kept` : ", all kept";
  const rows = [
    [
      "steps",
      `${s.steps.toLocaleString("en-US")} x ${count(s.tokensPerStep)} tokens = ${count(s.tokens)} tokens`,
    ],
    ["predicted time", `${formatTime(s.seconds)} of steps (the step section's step, times the steps)`],
    ["learning rate", schedule],
    ["data", dataText(s.data, s.windowsPerStep, s.stepReads)],
    ...(s.evalData !== undefined
      ? [["evaluation", `${dataText(s.evalData, s.windowsPerEvalBatch, s.evalReads)}${evaluationText(s)}`]]
      : []),
    [
      "checkpoints",
      `${every}${keep}; ${(s.checkpointBytes / 1e9).toFixed(2)} GB each, written while training goes on from a copy in host memory (${(s.checkpointHostBytes / 1e9).toFixed(2)} GB on rank 0; in place, training waiting, where the host cannot hold the copies or LASP_CHECKPOINT_COPY=none)`,
    ],
  ];
  return [
    `Training (train mode), ${s.steps.toLocaleString("en-US")} steps:`,
    table(["", "what"], rows, "  ", width),
  ].join("\n");
}
