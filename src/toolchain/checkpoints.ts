// Where `lasp run --resume` continues from (PROTOCOL.md, "Train mode"). The program writes a checkpoint into
// a temporary folder and renames it to RUN/checkpoints/step-DIGITS with trainer_state.json inside, so a
// folder of that name holding trainer_state.json is complete; anything else there (a `.tmp-PID` folder a
// crash left, a step folder without its state, a user's notes) is never a candidate. Only reads: the run
// being resumed is never changed (the new run writes its checkpoints into its own folder).
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { parseRawJson, RawJsonError, type RawJson } from "../io/json-raw.js";
import { describeReadError, errorCode } from "../io/write-error.js";
import { RUN_FILES, runFolderPrefix } from "./run-folder.js";

/** The file that completes a checkpoint folder (the program writes it last, then renames the folder). */
export const TRAINER_STATE = "trainer_state.json";

const STEP_FOLDER = /^step-(\d+)$/;

export interface Checkpoint {
  /** The checkpoint folder, absolute. */
  path: string;
  /** Steps done, from the folder's name. */
  step: number;
}

/** Nothing to resume from, in words that say where lasp looked. */
export class CheckpointNotFound extends Error {}

async function isDirectory(target: string): Promise<boolean> {
  return (await stat(target).catch(() => undefined))?.isDirectory() ?? false;
}

async function isFile(target: string): Promise<boolean> {
  return (await stat(target).catch(() => undefined))?.isFile() ?? false;
}

/** Whether `folder` is a complete checkpoint: it holds trainer_state.json. */
export function isCheckpoint(folder: string): Promise<boolean> {
  return isFile(path.join(folder, TRAINER_STATE));
}

/** The complete checkpoints among the `step-DIGITS` folders of `folder`, by step; [] when it cannot be read. */
export async function checkpointsIn(folder: string): Promise<Checkpoint[]> {
  const names = await readdir(folder).catch(() => [] as string[]);
  const found: Checkpoint[] = [];
  for (const name of names) {
    const step = STEP_FOLDER.exec(name)?.[1];
    const candidate = path.resolve(folder, name);
    if (step !== undefined && (await isCheckpoint(candidate)))
      found.push({ path: candidate, step: Number(step) });
  }
  return found.sort((a, b) => a.step - b.step);
}

/** A run folder's newest complete checkpoint (highest step), if any. */
export async function newestCheckpoint(runFolder: string): Promise<Checkpoint | undefined> {
  return (await checkpointsIn(path.join(runFolder, RUN_FILES.checkpoints))).at(-1);
}

interface RunFolderEntry {
  path: string;
  /** Start time (ms): run.json's `started`, else the time in the name. */
  started: number;
  /** 1 for `name`, n for `name-n` (two runs in one second). */
  suffix: number;
}

async function recordOf(
  folder: string,
): Promise<{ started?: unknown; spec?: { path?: unknown } } | undefined> {
  try {
    const value: unknown = JSON.parse(await readFile(path.join(folder, RUN_FILES.record), "utf8"));
    return typeof value === "object" && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The run folders of a spec under `runsRoot`, newest first: those named `<spec name>-<UTC time>[-n]` (as
 * run-folder.ts names them) and those whose run.json names the same spec file (a `--run-dir` of the user's).
 */
export async function runFoldersOf(runsRoot: string, specPath: string): Promise<string[]> {
  const prefix = runFolderPrefix(specPath).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const named = new RegExp(`^${prefix}-(\\d{4})(\\d\\d)(\\d\\d)-(\\d\\d)(\\d\\d)(\\d\\d)(?:-(\\d+))?$`);
  const spec = path.resolve(specPath);
  const entries: RunFolderEntry[] = [];
  for (const name of await readdir(runsRoot).catch(() => [] as string[])) {
    const folder = path.join(runsRoot, name);
    if (!(await isDirectory(folder))) continue;
    const match = named.exec(name);
    const record = await recordOf(folder);
    if (match === null && record?.spec?.path !== spec) continue;
    const fromName =
      match === null
        ? Number.NaN
        : Date.UTC(+match[1]!, +match[2]! - 1, +match[3]!, +match[4]!, +match[5]!, +match[6]!);
    const fromRecord = typeof record?.started === "string" ? Date.parse(record.started) : Number.NaN;
    entries.push({
      path: folder,
      started: Number.isFinite(fromRecord) ? fromRecord : Number.isFinite(fromName) ? fromName : 0,
      suffix: match?.[7] !== undefined ? Number(match[7]) : 1,
    });
  }
  return entries
    .sort((a, b) => b.started - a.started || b.suffix - a.suffix || b.path.localeCompare(a.path))
    .map((e) => e.path);
}

export interface ResumeRequest {
  /** `--resume DIR` (relative to cwd), or undefined for `--resume` alone: the newest run of the spec. */
  dir: string | undefined;
  specPath: string;
  cwd: string;
  /** Where run folders are made: `runs/` under cwd, or `--run-dir`'s parent. */
  runsRoot: string;
}

export interface ResumePoint {
  checkpoint: Checkpoint;
  /** The run folder the checkpoint belongs to, when it was found through one. */
  runFolder: string | undefined;
}

/** The checkpoint to continue from; throws CheckpointNotFound naming where it looked. */
export async function findResumePoint(request: ResumeRequest): Promise<ResumePoint> {
  if (request.dir !== undefined) return resolveGiven(path.resolve(request.cwd, request.dir), request.dir);
  const root = path.resolve(request.cwd, request.runsRoot);
  if (!(await isDirectory(root))) {
    throw new CheckpointNotFound(`no run folders to resume from: ${root} does not exist`);
  }
  const runs = await runFoldersOf(root, request.specPath);
  for (const runFolder of runs) {
    const checkpoint = await newestCheckpoint(runFolder);
    if (checkpoint !== undefined) return { checkpoint, runFolder };
  }
  const what = `${RUN_FILES.checkpoints}/step-N/ with ${TRAINER_STATE}`;
  throw new CheckpointNotFound(
    runs.length === 0
      ? `no run folder of ${request.specPath} in ${root} (folders named ${runFolderPrefix(request.specPath)}-<UTC time>)`
      : `none of the ${runs.length} run folder${runs.length === 1 ? "" : "s"} of ${request.specPath} in ${root} has a complete checkpoint (${what})`,
  );
}

/** trainer_state.json's format_version that the program reads (templates/runtime/checkpoint.cuh). */
export const TRAINER_STATE_VERSION = 1;

type Wanted = "whole" | "count" | "real" | "text" | "hex";
const WANTED_TEXT: Record<Wanted, string> = {
  whole: "a whole number",
  count: "a whole number of at least 1",
  real: "a number of at least 0",
  text: "a non-empty string",
  hex: "a string of 16 hexadecimal digits",
};
/** The keys the program reads, in its order; it refuses a missing key, one of another type, or any other key. */
const STATE_KEYS: ReadonlyArray<[string, Wanted]> = [
  ["step", "whole"],
  ["tokens_seen", "whole"],
  ["data_position", "whole"],
  ["seed", "whole"],
  ["rng_state", "hex"],
  ["world_size", "count"],
];
const SCHEDULE_KEYS: ReadonlyArray<[string, Wanted]> = [
  ["lr", "real"],
  ["min_lr", "real"],
  ["warmup_steps", "whole"],
  ["total_steps", "whole"],
];
const SCHEDULE_KINDS = ["cosine", "linear", "constant"];
const SCHEDULE_KIND_TEXT = '"cosine", "linear" or "constant"';

type RawObject = Extract<RawJson, { kind: "object" }>;

/** A string in quotes as the program writes one (json_string.cuh): `"`, `\` and control characters escaped. */
function quoted(text: string): string {
  const escape = (c: string): string =>
    c < " " ? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}` : `\\${c}`;
  return `"${text.replace(/["\\\x00-\x1f]/g, escape)}"`;
}

/** How a found JSON value reads in an error, in the program's words (checkpoint.cuh's found_text). */
function foundText(value: RawJson): string {
  switch (value.kind) {
    case "object":
      return "an object";
    case "array":
      return "an array";
    case "string":
      return `the string ${quoted(value.value)}`;
    default:
      return value.text;
  }
}

function fits(value: RawJson, wanted: Wanted): boolean {
  switch (wanted) {
    // The program's strtoull of the text: only digits, at most 20, within 64 bits.
    case "whole":
    case "count":
      return (
        value.kind === "number" &&
        /^\d{1,20}$/.test(value.text) &&
        BigInt(value.text) >= (wanted === "count" ? 1n : 0n) &&
        BigInt(value.text) < 2n ** 64n
      );
    case "real":
      // The program's strtod of the text (`-0` and `1e-3` are reals).
      return value.kind === "number" && Number.isFinite(Number(value.text)) && Number(value.text) >= 0;
    case "text":
      return value.kind === "string" && value.value !== "";
    case "hex":
      return value.kind === "string" && /^[0-9a-fA-F]{16}$/.test(value.value);
  }
}

/** The value of `key`, or why not, as the program's Fields.get says it: missing, or given twice. */
function get(object: RawObject, key: string, wanted: string, file: string, prefix = ""): RawJson | string {
  const found = object.entries.filter(([k]) => k === key);
  if (found.length > 1) return `${file} has "${prefix}${key}" twice`;
  return found[0]?.[1] ?? `${file} lacks "${prefix}${key}" (${wanted})`;
}

/** The first of `keys` that `object` lacks, holds twice or holds with another type, as the program words it. */
function fieldProblem(
  object: RawObject,
  keys: ReadonlyArray<[string, Wanted]>,
  file: string,
  prefix = "",
): string | undefined {
  for (const [key, wanted] of keys) {
    const value = get(object, key, WANTED_TEXT[wanted], file, prefix);
    if (typeof value === "string") return value;
    if (!fits(value, wanted))
      return `${file}: "${prefix}${key}" should be ${WANTED_TEXT[wanted]}, found ${foundText(value)}`;
  }
  return undefined;
}

/** The text of a key's value once checked: a number's digits, or a string's value. */
function textOf(object: RawObject, key: string): string {
  const value = object.entries.find(([k]) => k === key)?.[1];
  return value?.kind === "string" ? value.value : value?.kind === "number" ? value.text : "";
}

/** Why the text is not JSON: JSON.parse's words where it refuses it too (as lasp said before), else the reader's. */
function notJson(text: string, error: RawJsonError): string {
  try {
    JSON.parse(text);
    return error.message;
  } catch (parseError) {
    // V8's message quotes the text, line breaks and all: one line here.
    return (parseError as Error).message.replace(/\s+/g, " ");
  }
}

/**
 * Why the program would refuse to resume from `folder` (checkpoint.cuh's `resume`), checked before the build:
 * trainer_state.json must parse (json-raw.ts: the program's reader) with exactly the keys the program reads,
 * each once and of its type, name the model whose hash is `modelHash` (train-constants.ts), and the weights,
 * config and every rank's optimizer shard must be there. Undefined where it would resume.
 */
export async function whyNotResumable(
  folder: string,
  modelHash: string,
  /** The folder as messages name it (relative to the working directory). */
  shown = folder,
): Promise<string | undefined> {
  const file = path.join(shown, TRAINER_STATE);
  let text: string;
  try {
    text = await readFile(path.join(folder, TRAINER_STATE), "utf8");
  } catch (error) {
    return `${file} cannot be read: ${describeReadError(error)}`;
  }
  let state: RawJson;
  try {
    state = parseRawJson(text);
  } catch (error) {
    if (!(error instanceof RawJsonError)) throw error;
    return `${file} is not valid JSON: ${notJson(text, error)}`;
  }
  if (state.kind !== "object") return `${file} should hold a JSON object, found ${foundText(state)}`;
  const version = fieldProblem(state, [["format_version", "whole"]], file);
  if (version !== undefined) return version;
  if (textOf(state, "format_version") !== String(TRAINER_STATE_VERSION))
    return `${file} has format_version ${textOf(state, "format_version")}; this program reads ${TRAINER_STATE_VERSION}`;
  const top = fieldProblem(state, STATE_KEYS, file);
  if (top !== undefined) return top;
  const schedule = get(state, "lr_schedule", "an object", file);
  if (typeof schedule === "string") return schedule;
  if (schedule.kind !== "object")
    return `${file}: "lr_schedule" should be an object, found ${foundText(schedule)}`;
  const kind = get(schedule, "kind", SCHEDULE_KIND_TEXT, file, "lr_schedule.");
  if (typeof kind === "string") return kind;
  if (kind.kind !== "string" || !SCHEDULE_KINDS.includes(kind.value))
    return `${file}: "lr_schedule.kind" should be ${SCHEDULE_KIND_TEXT}, found ${foundText(kind)}`;
  const inSchedule =
    fieldProblem(schedule, SCHEDULE_KEYS, file, "lr_schedule.") ??
    unknownKey(schedule, ["kind", ...SCHEDULE_KEYS.map(([k]) => k)], file, "lr_schedule.");
  if (inSchedule !== undefined) return inSchedule;
  const rest =
    fieldProblem(
      state,
      [
        ["lasp_version", "text"],
        ["spec_hash", "text"],
      ],
      file,
    ) ??
    unknownKey(
      state,
      ["format_version", ...STATE_KEYS.map(([k]) => k), "lr_schedule", "lasp_version", "spec_hash"],
      file,
    );
  if (rest !== undefined) return rest;
  const specHash = textOf(state, "spec_hash");
  if (specHash !== modelHash)
    return `it was written for another model (model hash ${specHash}, this run's is ${modelHash})`;
  for (const name of ["model.safetensors", "config.json"])
    if (!(await isFile(path.join(folder, name)))) return `it lacks ${name}`;
  // One optimizer shard per rank that wrote it; stops at the first missing (a huge world_size ends at once).
  const world = BigInt(textOf(state, "world_size"));
  for (let r = 0n; r < world; r++) {
    const shard = `optimizer-rank-${r}-of-${world}.safetensors`;
    if (!(await isFile(path.join(folder, shard)))) return `it lacks ${shard}`;
  }
  return undefined;
}

function unknownKey(
  object: RawObject,
  known: readonly string[],
  file: string,
  prefix = "",
): string | undefined {
  const extra = object.entries.find(([k]) => !known.includes(k))?.[0];
  return extra === undefined ? undefined : `${file} has an unknown key "${prefix}${extra}"`;
}

/** `--resume DIR`: a checkpoint folder, a run folder (its newest checkpoint) or a run's checkpoints/ folder. */
async function resolveGiven(dir: string, shown: string): Promise<ResumePoint> {
  let info;
  try {
    info = await stat(dir);
  } catch (error) {
    const code = errorCode(error);
    throw new CheckpointNotFound(
      `${shown}: ${code === "ENOENT" ? "no such folder" : (error as Error).message}`,
    );
  }
  if (!info.isDirectory()) throw new CheckpointNotFound(`${shown} is a file, not a checkpoint or run folder`);
  const step = STEP_FOLDER.exec(path.basename(dir))?.[1];
  if (await isCheckpoint(dir)) {
    return {
      checkpoint: { path: dir, step: step !== undefined ? Number(step) : Number.NaN },
      runFolder: undefined,
    };
  }
  if (step !== undefined) {
    throw new CheckpointNotFound(
      `${shown} is not a complete checkpoint: it has no ${TRAINER_STATE} (the program writes it last)`,
    );
  }
  const inRun = await newestCheckpoint(dir);
  if (inRun !== undefined) return { checkpoint: inRun, runFolder: dir };
  const inFolder = (await checkpointsIn(dir)).at(-1);
  if (inFolder !== undefined) {
    const runFolder = path.basename(dir) === RUN_FILES.checkpoints ? path.dirname(dir) : undefined;
    return { checkpoint: inFolder, runFolder };
  }
  throw new CheckpointNotFound(
    `${shown} holds no complete checkpoint: neither ${TRAINER_STATE} nor ${RUN_FILES.checkpoints}/step-N/ with one`,
  );
}
