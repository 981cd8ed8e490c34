// `lasp run <spec>`: checks the spec, generates its CUDA/NCCL program, checks this machine (GPUs, nvcc,
// cmake), builds the program into the cache and starts one process per GPU (or hands it to mpirun/srun),
// showing progress and a summary. Exit codes: RUN_EXIT below. In train mode the ranks write checkpoints into
// the run folder (--run-dir), `--resume` continues from one (checkpoints.ts finds it), and the first Ctrl-C
// or SIGTERM gives them time to finish their step and write a checkpoint.
import { existsSync } from "node:fs";
import path from "node:path";
import {
  BuildError,
  buildGeneratedProgram,
  defaultCacheRoot,
  DEFAULT_ARCH,
  planBuild,
  type BuildOptions,
  type GeneratedFiles,
} from "../toolchain/build.js";
import { shellQuote } from "../text/shell-text.js";
import {
  CheckpointNotFound,
  checkpointsIn,
  findResumePoint,
  whyNotResumable,
  type ResumePoint,
} from "../toolchain/checkpoints.js";
import { modelHash } from "../codegen/train-constants.js";
import { describeGpus, detectGpus, type GpuProbe } from "../toolchain/gpus.js";
import {
  defaultIdParent,
  formatLaunch,
  launch,
  LAUNCHERS,
  planLaunch,
  type Launcher,
  type LaunchOptions,
  type LaunchResult,
} from "../toolchain/launch.js";
import { lossChartSvg } from "../toolchain/loss-chart.js";
import {
  bytesTokenizerMismatch,
  tokenizerFolder,
  tokensOutsideVocab,
  trainTokenFiles,
} from "./token-file-paths.js";
import { hfLoadLine, RunProgress, StatusLine } from "../toolchain/progress.js";
import { hfConfig } from "../model/hf-config.js";
import {
  recordText,
  RUN_FILES,
  RunFolder,
  runFolderName,
  RUNS_PARENT,
  type RunRecord,
} from "../toolchain/run-folder.js";
import { findTools, HOW_TO_GET, which, type Toolchain } from "../toolchain/tools.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { checkOwnedFolder, OutputFolderError } from "../io/owned-folder.js";
import { version } from "../io/package-info.js";
import { describeWriteError } from "../io/write-error.js";
import { loadSpec, reportDiagnostics, withGeneratorNotes } from "./check-command.js";
import { EXIT, type CliIo } from "./io.js";
import type { LowerOptions } from "../schedule/lower.js";
import { lasp2Option } from "./lasp2-option.js";
import { integerFlag } from "./number-flag.js";

/** Exit codes of `lasp run`; a failing rank's own code is passed through unchanged. */
export const RUN_EXIT = { ...EXIT, environment: 3, build: 4, interrupted: 130 } as const;

export { RUN_HELP } from "./run-help.js";

export type ProgramGenerator = (
  spec: ResolvedSpec,
  renderer?: undefined,
  lowering?: LowerOptions,
) => Map<string, string> | Promise<Map<string, string>>;

export interface RunCliOptions {
  launcher?: string;
  gpusPerNode?: string;
  launcherArgs?: string;
  mode?: string;
  steps?: string;
  arch?: string;
  out?: string;
  dryRun?: boolean;
  json?: boolean;
  /** LASP-2's arrangement (--lasp2 fused|split). */
  lasp2?: string;
  /** Operands after `--`, handed to the program. */
  programArgs?: string[];
  /** `--run-dir`: the run folder (default runs/<spec name>-<UTC time>/); a taken name gets a suffix. */
  runDir?: string;
  /** `--resume [DIR]`: true without DIR (the spec's newest run), else a checkpoint or run folder. */
  resume?: string | boolean;
  /** False with `--no-checkpoints` (commander's negated flag): train mode writes no checkpoint. */
  checkpoints?: boolean;
  /** `--load-weights PATH`: the weights the run starts from (the program's option, also accepted after `--`). */
  loadWeights?: string;
  /** The command line as typed (after `lasp`), recorded in run.json. */
  argv?: readonly string[];
}

/** What `lasp run` takes from its surroundings; tests replace these. */
export interface RunDeps {
  generate?: ProgramGenerator;
  detectGpus?: () => Promise<GpuProbe>;
  findTools?: () => Promise<Toolchain>;
  /** Finds mpirun/srun on PATH. */
  which?: (name: string) => Promise<string | undefined>;
  /** Whether stderr is a terminal (status line redrawn in place); default process.stderr.isTTY. */
  tty?: boolean;
  /** Installs a handler of Ctrl-C and SIGTERM and returns its removal; default: process SIGINT and SIGTERM. */
  onInterrupt?: (handler: () => void) => () => void;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** From SIGTERM to SIGKILL when a rank failed, or on Ctrl-C outside train mode (launch.ts's 5 s). */
  killGraceMs?: number;
  /** Train mode: from the first Ctrl-C to SIGKILL, the time to finish a step and write a checkpoint. */
  trainGraceMs?: number;
  /** The start time, naming the run folder; default now. */
  now?: () => Date;
}

const MODES = ["bench", "verify", "train"] as const;

/** Train mode's grace after the first Ctrl-C: a step of a large model plus writing its checkpoint. */
export const TRAIN_GRACE_MS = 10 * 60 * 1000;

/** The program's own exit codes (PROTOCOL.md), for messages. */
const PROGRAM_EXIT: Record<number, string> = {
  1: "verify failed",
  2: "bad command line or input file",
  3: "CUDA or NCCL failure",
  5: "stopped by a signal after its step (and a checkpoint, unless --no-checkpoints)",
  6: "stopped by a non-finite loss or gradient norm",
};
/** Train mode's clean stop: SIGTERM or SIGINT, the step finished and a checkpoint written. */
const STOPPED_WITH_CHECKPOINT = 5;
/** The program's flag (and lasp run's) for a training run that writes no checkpoint. */
const NO_CHECKPOINTS = "--no-checkpoints";
const LOAD_WEIGHTS = "--load-weights";
const NON_FINITE = 6;

/** The code generator, loaded only by the commands that build (handlebars and the templates are heavy). */
async function codegen(): Promise<typeof import("../codegen/generate.js")> {
  return import("../codegen/generate.js");
}

/** SIGTERM too: Slurm's preemption and `kill` reach lasp run, which passes them on as the first Ctrl-C. */
export function onStopSignals(handler: () => void): () => void {
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return () => {
    process.off("SIGINT", handler);
    process.off("SIGTERM", handler);
  };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

interface Parsed {
  launcher: Launcher;
  gpusPerNode: number | undefined;
  launcherArgs: string[];
  /** lasp's options for the program (--mode, --steps), then the user's after `--`. */
  programArgs: string[];
  userArgs: string[];
  /** `--resume`: undefined without it, else the DIR given (undefined inside: the newest run's). */
  resume: { dir: string | undefined } | undefined;
  /** `--no-checkpoints`, lasp's or handed to the program after `--`. */
  noCheckpoints: boolean;
  /** `--load-weights`, lasp's or after `--`: the path as given (the program gets it resolved). */
  loadWeights: string | undefined;
  arch: string;
  lowering: LowerOptions;
}

function parseOptions(cli: RunCliOptions, io: CliIo): Parsed | undefined {
  const fail = (text: string): undefined => {
    io.stderr(`lasp: ${text}\n`);
    return undefined;
  };
  const launcher = (cli.launcher ?? "local") as Launcher;
  if (!LAUNCHERS.includes(launcher)) {
    return fail(`--launcher must be one of ${LAUNCHERS.join(", ")}, got ${cli.launcher}`);
  }
  const programArgs: string[] = [];
  if (cli.mode !== undefined) {
    if (!(MODES as readonly string[]).includes(cli.mode)) {
      return fail(`--mode must be one of ${MODES.join(", ")}, got ${cli.mode}`);
    }
    programArgs.push("--mode", cli.mode);
  }
  const resume =
    cli.resume === undefined || cli.resume === false
      ? undefined
      : { dir: typeof cli.resume === "string" ? cli.resume : undefined };
  if (resume !== undefined && cli.mode !== undefined && cli.mode !== "train") {
    return fail(`--resume continues a training run (mode train); it cannot run --mode ${cli.mode}`);
  }
  // --resume implies train mode, whatever the spec says.
  if (resume !== undefined && cli.mode === undefined) programArgs.push("--mode", "train");
  // Numbers as a spec writes them (number-flag.ts): `--steps 1K` is 1024 steps.
  const steps = integerFlag("--steps", cli.steps, io);
  if (steps === null) return undefined;
  if (steps !== undefined) programArgs.push("--steps", String(steps));
  const gpusPerNode = integerFlag("--gpus-per-node", cli.gpusPerNode, io);
  if (gpusPerNode === null) return undefined;
  if (gpusPerNode !== undefined && launcher === "local") {
    return fail("--gpus-per-node applies to --launcher mpirun or srun");
  }
  if (cli.launcherArgs !== undefined && launcher === "local") {
    return fail("--launcher-args applies to --launcher mpirun or srun");
  }
  const lasp2 = lasp2Option(cli.lasp2, io);
  if (lasp2 === null) return undefined;
  const userArgs = [...(cli.programArgs ?? [])];
  const after = userArgs.indexOf(LOAD_WEIGHTS);
  if (cli.loadWeights !== undefined && after >= 0)
    return fail(`${LOAD_WEIGHTS} is given twice (before and after \`--\`): give it once`);
  const loadWeights = cli.loadWeights ?? (after >= 0 ? userArgs[after + 1] : undefined);
  if (loadWeights !== undefined && resume !== undefined)
    return fail(`--resume continues from the checkpoint's weights: drop ${LOAD_WEIGHTS}`);
  const arch = (cli.arch ?? DEFAULT_ARCH).replace(/^(sm_|compute_)/, "");
  if (!/^\d{2,3}[a-z]?$/.test(arch)) {
    return fail(`--arch must be a CUDA architecture such as 90a, 90 or 80, got ${cli.arch}`);
  }
  return {
    launcher,
    gpusPerNode,
    launcherArgs: (cli.launcherArgs ?? "").split(/\s+/).filter((a) => a !== ""),
    programArgs,
    userArgs,
    resume,
    noCheckpoints: cli.checkpoints === false || userArgs.includes(NO_CHECKPOINTS),
    loadWeights,
    arch,
    lowering: { lasp2 },
  };
}

/** The spec with `recompute auto` fitted to the smallest of `probe`'s GPUs, and the line saying so. */
async function fitRecompute(
  spec: ResolvedSpec,
  probe: GpuProbe | undefined,
): Promise<{ spec: ResolvedSpec; line?: string }> {
  if (spec.run.recomputeAuto === undefined) return { spec };
  const { recomputeAutoLine, refitRecomputeAuto } = await import("../plan/recompute-auto.js");
  const mib = (probe?.gpus ?? []).map((g) => g.memoryMiB).filter((m): m is number => m !== undefined);
  if (mib.length > 0) return refitRecomputeAuto(spec, Math.min(...mib) * 2 ** 20);
  // No GPU memory found: the loader's fit (an 80 GB H100), said as it is.
  const line = recomputeAutoLine(spec.run.recomputeAuto);
  return { spec, ...(line === undefined ? {} : { line }) };
}

// --------------------------------------------------------------------------------------- environment checks

interface Environment {
  problems: string[];
  notes: string[];
  tools: Toolchain;
  /** This machine's GPUs (local launcher only). */
  probe: GpuProbe | undefined;
}

async function checkEnvironment(
  file: string,
  spec: ResolvedSpec,
  parsed: Parsed,
  deps: RunDeps,
): Promise<Environment> {
  const needed = spec.parallel.gpus;
  const problems: string[] = [];
  const notes: string[] = [];
  const [probe, tools, launcherPath] = await Promise.all([
    parsed.launcher === "local" ? (deps.detectGpus ?? (() => detectGpus({ env: deps.env })))() : undefined,
    (deps.findTools ?? (() => findTools({ env: deps.env })))(),
    parsed.launcher === "local"
      ? Promise.resolve(undefined)
      : (deps.which ?? ((name: string) => which(name, deps.env)))(parsed.launcher),
  ]);
  const needs = `${file} needs ${plural(needed, "GPU")} (parallel.gpus ${needed})`;
  if (probe !== undefined && probe.gpus.length === 0) {
    problems.push(
      [
        `no NVIDIA GPU on this machine${probe.problem !== undefined ? ` (${probe.problem})` : ""}.`,
        `  ${needs}.`,
        "  These work without a GPU:",
        `    lasp compile ${file} -o DIR   write the CUDA/NCCL program (to build and run elsewhere)`,
        `    lasp inspect ${file}          the schedule of each rank and its communication`,
        `    lasp verify ${file}           run the schedule on the CPU and compare with the exact result`,
        "  On a cluster, start it through --launcher mpirun or --launcher srun.",
      ].join("\n"),
    );
  } else if (probe !== undefined && probe.gpus.length < needed) {
    const have = probe.gpus.length;
    problems.push(
      [
        `${needs}; this machine has ${have}: ${describeGpus(probe.gpus)}.`,
        "  To use several nodes, start it through a launcher:",
        `    lasp run ${file} --launcher mpirun --gpus-per-node ${have} --launcher-args "--hostfile HOSTS"`,
        `    lasp run ${file} --launcher srun     (inside a Slurm allocation of ${needed} GPUs)`,
        `  Or set parallel { gpus ${have} } (sequence x data = ${have}) to run on this machine alone.`,
      ].join("\n"),
    );
  }
  if (tools.nvcc === undefined) {
    problems.push(
      [
        "nvcc (the CUDA compiler) not found on PATH, in $CUDA_HOME or in /usr/local/cuda/bin.",
        ...HOW_TO_GET.nvcc,
      ]
        .map((l, i) => (i === 0 ? l : `  ${l}`))
        .join("\n"),
    );
  }
  if (tools.cmake === undefined) {
    // Not fatal: the generated build.sh builds with nvcc alone (checked once the files exist).
    notes.push("cmake not found; building with the program's build.sh and nvcc alone.");
  }
  if (parsed.launcher !== "local" && launcherPath === undefined) {
    problems.push(
      parsed.launcher === "mpirun"
        ? "mpirun not found on PATH.\n  Install Open MPI (`apt-get install openmpi-bin`) or load its module (`module load openmpi`)."
        : "srun not found on PATH.\n  --launcher srun works on a Slurm cluster, inside an allocation (salloc, sbatch).",
    );
  }
  return { problems, notes, tools, probe };
}

// ------------------------------------------------------------------------------------------------ the run

export async function runCommand(
  file: string,
  cli: RunCliOptions,
  io: CliIo,
  deps: RunDeps = {},
): Promise<number> {
  const parsed = parseOptions(cli, io);
  if (parsed === undefined) return RUN_EXIT.usage;
  const read = await loadSpec(file, io);
  if (read === undefined) return RUN_EXIT.usage;
  const loaded = withGeneratorNotes(read, {
    refuse: true,
    ...(cli.mode !== undefined ? { modeOverride: cli.mode } : {}),
  });
  if (!reportDiagnostics(loaded, io) || loaded.spec === undefined) return RUN_EXIT.specErrors;
  const spec = loaded.spec;
  const world = spec.parallel.gpus;
  const cwd = deps.cwd ?? process.cwd();
  const env = deps.env ?? process.env;
  const mode = cli.mode ?? (parsed.resume !== undefined ? "train" : spec.run.mode);
  const train = mode === "train";
  if (parsed.noCheckpoints && !train) {
    io.stderr(
      `lasp: ${NO_CHECKPOINTS} applies to train mode, and this run is --mode ${mode}\n` +
        `  = hint: drop ${NO_CHECKPOINTS}, or add --mode train\n`,
    );
    return RUN_EXIT.usage;
  }

  // What to resume from, before anything else is looked at: a wrong folder is the user's to fix.
  let resumePoint: ResumePoint | undefined;
  if (parsed.resume !== undefined) {
    try {
      resumePoint = await findResumePoint({
        dir: parsed.resume.dir,
        specPath: file,
        cwd,
        runsRoot:
          cli.runDir !== undefined
            ? path.dirname(path.resolve(cwd, cli.runDir))
            : path.join(cwd, RUNS_PARENT),
      });
    } catch (error) {
      if (!(error instanceof CheckpointNotFound)) throw error;
      io.stderr(
        `lasp: --resume: ${error.message}\n` +
          `  Name one: lasp run ${shellQuote(file)} --resume RUN_FOLDER (its newest checkpoint) or --resume CHECKPOINT_FOLDER\n`,
      );
      return RUN_EXIT.usage;
    }
    // The program reads trainer_state.json strictly and refuses another model's checkpoint: said here, before
    // the build, as the program would say it.
    const shown = shownPath(resumePoint.checkpoint.path, cwd);
    const why = await whyNotResumable(resumePoint.checkpoint.path, modelHash(spec), shown);
    if (why !== undefined) {
      const other = await otherResumable(resumePoint.checkpoint.path, modelHash(spec));
      io.stderr(
        `lasp: --resume: cannot resume from ${shown}: ${why}\n` +
          (other !== undefined
            ? `  = hint: continue from another checkpoint of that run: lasp run ${shellQuote(file)} --resume ${shellQuote(shownPath(other, cwd))}\n`
            : `  = hint: name another checkpoint with --resume CHECKPOINT_FOLDER, or start afresh without --resume\n`),
      );
      return RUN_EXIT.usage;
    }
  }
  // Bad input stops a real run here, before anything is built or a run folder made; a dry run says the same
  // errors, goes on to say what else a real run would find, and exits as the real run would.
  const inputErrors: string[] = [];
  // The spec's token files are relative to its folder; the program compiles them in as written (relative to
  // its working directory), so lasp hands it the resolved paths.
  const specFolder = path.dirname(path.resolve(cwd, file));
  const tokens = train ? trainTokenFiles(loaded.ast!, spec, specFolder) : undefined;
  // The tokenizer's folder goes beside config.json in every mode (--save-weights too).
  const tokenizer = tokenizerFolder(loaded.ast!, spec, specFolder);
  const tokenFiles = [...(tokens?.args ?? []), ...tokenizer.args];
  const fileProblems = [...(tokens?.problems ?? []), ...tokenizer.problems];
  // The byte tokenizer is checked against the data where both are there to read.
  // The token ids, against the vocabulary and the byte tokenizer, where the files are there to read (two
  // settings, each wrong for its own reason: both are said).
  if (train && fileProblems.length === 0) {
    const outside = await tokensOutsideVocab(loaded.ast!, spec, specFolder);
    if (outside !== undefined) fileProblems.push(outside);
    const mismatch = await bytesTokenizerMismatch(loaded.ast!, spec, specFolder);
    if (mismatch !== undefined) fileProblems.push(mismatch);
  }
  for (const p of fileProblems) {
    const at = p.span === undefined ? file : `${file}:${p.span.start.line}:${p.span.start.column}`;
    inputErrors.push(`${at}: error: \`${p.key}\`: ${p.message}\n  = hint: ${p.hint}\n`);
  }
  // The weights a run starts from: a path that is not there stops it before the build.
  const weightsPath = parsed.loadWeights;
  if (weightsPath !== undefined && !existsSync(path.resolve(cwd, weightsPath))) {
    inputErrors.push(
      `lasp: ${LOAD_WEIGHTS} ${weightsPath}: ${path.resolve(cwd, weightsPath)} does not exist\n` +
        "  = hint: name a .safetensors file, a Hugging Face model.safetensors.index.json, or the folder holding either\n",
    );
  }
  for (const error of inputErrors) io.stderr(error);
  if (inputErrors.length > 0 && !cli.dryRun) return RUN_EXIT.usage;
  /** The program's options: lasp's, train mode's run folder, token files and checkpoint, then the user's. */
  const programArgs = (runFolder: string): string[] => [
    ...parsed.programArgs,
    ...(train ? ["--run-dir", runFolder] : []),
    ...tokenFiles,
    ...(resumePoint !== undefined ? ["--resume", resumePoint.checkpoint.path] : []),
    ...(cli.checkpoints === false ? [NO_CHECKPOINTS] : []),
    // lasp's own --load-weights, resolved: the ranks may start in another folder (mpirun, srun).
    ...(cli.loadWeights !== undefined ? [LOAD_WEIGHTS, path.resolve(cwd, cli.loadWeights)] : []),
    ...parsed.userArgs,
  ];

  const environment = await checkEnvironment(file, spec, parsed, { ...deps, env });
  if (!cli.dryRun && environment.problems.length > 0) {
    for (const problem of environment.problems) io.stderr(`lasp: ${problem}\n`);
    return RUN_EXIT.environment;
  }

  // `recompute auto` fitted to the smallest GPU found here (the loader fitted an 80 GB H100).
  const fitted = await fitRecompute(spec, environment.probe);
  const generator = await codegen();
  const generate = deps.generate ?? generator.generateProgram;
  let files: Map<string, string>;
  try {
    files = await generate(fitted.spec, undefined, parsed.lowering);
  } catch (error) {
    // A spec the generator cannot emit yet, said in words.
    if (error instanceof generator.CodegenLimitation) {
      io.stderr(`lasp: cannot run ${file}: ${error.message}\n`);
      return RUN_EXIT.specErrors;
    }
    throw error;
  }

  const tools = environment.tools;
  if (tools.cmake === undefined && !files.has("build.sh")) {
    io.stderr(
      ["lasp: cmake not found on PATH, and the generated program has no build.sh.", ...HOW_TO_GET.cmake].join(
        "\n  ",
      ) + "\n",
    );
    return RUN_EXIT.environment;
  }
  const cacheRoot = defaultCacheRoot(cwd, env);
  const buildOptions: BuildOptions = {
    arch: parsed.arch,
    cwd,
    env,
    cacheRoot,
    cmake: tools.cmake?.path,
    nvcc: tools.nvcc?.path,
  };
  if (cli.out !== undefined) {
    buildOptions.sourceDir = path.resolve(cwd, cli.out);
    // The build's own check (writeOwnedFolder's rules), made here without writing: refused before the run
    // folder is made, and by a dry run as by a real one.
    const refused = await checkOwnedFolder(buildOptions.sourceDir, files.keys());
    if (refused !== undefined) {
      io.stderr(sourceFolderRefusal(refused, cli.out));
      if (!cli.dryRun) return RUN_EXIT.usage;
      inputErrors.push(refused.message);
    }
  }
  const started = deps.now?.() ?? new Date();
  // A dry run shows the folder a run would get (before any suffix a taken name gets).
  const plannedFolder =
    cli.runDir !== undefined
      ? path.resolve(cwd, cli.runDir)
      : path.join(cwd, RUNS_PARENT, runFolderName(file, started));
  let launchOptions: Omit<LaunchOptions, "binary"> = {
    world,
    launcher: parsed.launcher,
    programArgs: programArgs(plannedFolder),
    launcherArgs: parsed.launcherArgs,
    env,
    ...(parsed.gpusPerNode !== undefined ? { gpusPerNode: parsed.gpusPerNode } : {}),
    ...(deps.killGraceMs !== undefined ? { killGraceMs: deps.killGraceMs } : {}),
    // A training run's ranks finish their step and write a checkpoint before they exit 5; a non-finite loss or
    // norm is every rank's at the same step (both are summed over the ranks), so the first rank to exit 6 does
    // not make lasp stop the others: each exits 6 itself, without a checkpoint of the step.
    ...(train
      ? {
          interruptGraceMs: deps.trainGraceMs ?? TRAIN_GRACE_MS,
          stopExitCodes: [STOPPED_WITH_CHECKPOINT, NON_FINITE],
        }
      : {}),
  };

  if (cli.dryRun) {
    if (inputErrors.length > 0) {
      // The machine's problems too, then no plan: a real run would stop at the errors above.
      for (const problem of environment.problems)
        io.stderr(`lasp: warning (a real run would stop here): ${problem}\n`);
      return RUN_EXIT.usage;
    }
    return dryRun(file, files, buildOptions, launchOptions, environment, io);
  }
  for (const note of environment.notes) io.stderr(`lasp: ${note}\n`);

  // The run folder comes first, so that a failed build or a crashed rank is recorded too.
  let folder: RunFolder;
  try {
    folder = await RunFolder.create({ specPath: file, cwd, dir: cli.runDir, now: started });
  } catch (error) {
    const wanted = cli.runDir ?? path.join(cwd, "runs");
    io.stderr(`lasp: cannot make the run folder in ${wanted}: ${describeWriteError(error)}\n`);
    return RUN_EXIT.usage;
  }
  launchOptions = { ...launchOptions, programArgs: programArgs(folder.path) };
  const run = new RunBook(folder, {
    lasp: version(),
    spec: { path: path.resolve(file), copy: RUN_FILES.spec },
    command: ["lasp", ...(cli.argv ?? ["run", file])],
    cwd,
    mode,
    world,
    launcher: parsed.launcher,
    gpus:
      environment.probe?.gpus.map((g) => ({ index: g.index, name: g.name, memoryMiB: g.memoryMiB })) ?? null,
    devices: {},
    build: null,
    launch: [],
    ...(resumePoint !== undefined ? { resumedFrom: resumePoint.checkpoint.path } : {}),
    started: started.toISOString(),
    ended: null,
    exit: null,
  });
  await run.save(RUN_FILES.spec, read.source);
  await run.saveRecord();

  const tty = deps.tty ?? Boolean(process.stderr.isTTY);
  const status = new StatusLine(io.stderr, tty);
  status.print(`[run] folder: ${shownPath(folder.path, cwd)}`);
  if (train && parsed.noCheckpoints)
    status.print(`[run] checkpoints: off (${NO_CHECKPOINTS}): nothing to resume`);
  if (fitted.line !== undefined) status.print(`[run] ${fitted.line}`);
  /** Ends the run: the folder's last files, its warnings and its path, then the exit code. */
  const end = async (
    code: number,
    how: NonNullable<RunRecord["exit"]>["status"],
    details: { progress?: RunProgress; summary?: string; result?: LaunchResult; checkpoint?: string } = {},
  ): Promise<number> => {
    const warnings = await run.finish(code, how, {
      ...details,
      title: `${path.basename(file)}, mode ${run.record.mode}`,
    });
    for (const warning of warnings) io.stderr(`lasp: warning: ${warning}\n`);
    io.stderr(`run folder: ${shownPath(folder.path, cwd)}\n`);
    return code;
  };
  /** A message of lasp's about the run, on the terminal (above the status line, when given) and in stderr.log. */
  const say = (text: string, above?: StatusLine): void => {
    if (above !== undefined) above.print(text.replace(/\n$/, ""));
    else io.stderr(text);
    for (const line of text.replace(/\n$/, "").split("\n")) folder.appendLog(line);
  };
  const controller = new AbortController();
  // The first Ctrl-C (or SIGTERM) stops the ranks: SIGTERM, SIGKILL after 5 s, or in train mode after
  // TRAIN_GRACE_MS, time to finish the step and write a checkpoint; a second one kills them at once.
  const force = new AbortController();
  let launched = false;
  const removeHandler = (deps.onInterrupt ?? onStopSignals)(() => {
    if (controller.signal.aborted) {
      if (train && launched && !force.signal.aborted) say("lasp: killing the ranks\n", status);
      force.abort();
    } else if (train && launched) {
      const writing = parsed.noCheckpoints ? "" : " and writing a checkpoint";
      say(
        `lasp: stopping: the ranks are finishing their step${writing} (press Ctrl-C again to kill them)\n`,
        status,
      );
    }
    controller.abort();
  });
  try {
    // Build.
    let binary: string;
    try {
      const result = await buildGeneratedProgram(files, {
        ...buildOptions,
        signal: controller.signal,
        onStep: (text) => status.update(`[build] ${text} …`),
      });
      binary = result.binary;
      run.record.build = {
        hash: result.key,
        binary: result.binary,
        sourceDir: result.sourceDir,
        cached: result.cached,
      };
      run.record.launch = formatLaunch(planLaunch({ ...launchOptions, binary }, ID_TOKEN), launchOptions);
      if (cli.out !== undefined) status.print(`[build] sources in ${result.sourceDir}`);
      status.done(
        result.cached
          ? `[build] cached: ${result.binary}`
          : `[build] done in ${result.seconds.toFixed(1)} s: ${result.binary}`,
      );
    } catch (error) {
      status.clear();
      if (controller.signal.aborted) {
        say("lasp: interrupted during the build\n");
        return await end(RUN_EXIT.interrupted, "interrupted");
      }
      if (error instanceof OutputFolderError) {
        say(sourceFolderRefusal(error, cli.out ?? ""));
        return await end(RUN_EXIT.usage, "build failed");
      }
      if (!(error instanceof BuildError)) {
        await end(RUN_EXIT.build, "build failed");
        throw error;
      }
      const excerpt = error.excerpt.map((l) => `  ${l}\n`).join("");
      say(
        `lasp: build failed: ${error.message}\n${excerpt}` +
          `  log: ${error.logPath}\n  Repro command:\n    ${error.repro}\n`,
      );
      return await end(RUN_EXIT.build, "build failed");
    }

    // Launch.
    const autoMap = hfConfig(spec).auto_map;
    const progress = new RunProgress({
      write: io.stderr,
      tty,
      status,
      showPath: (p) => shownPath(p, cwd),
      hfLoad: (folder) => hfLoadLine(folder, autoMap),
    });
    launched = true;
    const result: LaunchResult = await launch({
      ...launchOptions,
      binary,
      idParent: defaultIdParent(parsed.launcher, cacheRoot),
      signal: controller.signal,
      forceSignal: force.signal,
      onEvent: (event) => {
        if (cli.json) io.stdout(`${JSON.stringify(event)}\n`);
        progress.event(event);
      },
      onEventLine: (_rank, line) => folder.appendEvent(line),
      onLine: (rank, line) => {
        // Every rank's lines carry their rank in the log; the terminal shows rank 0's bare.
        folder.appendLog(rank === undefined ? line : `[rank ${rank}] ${line}`);
        progress.line(rank, line);
      },
    });
    progress.status.clear();
    if (train) {
      const ended = trainingEnd(result, progress, {
        file,
        runFolder: folder.path,
        show: (p) => shownPath(p, cwd),
        checkpoints: !parsed.noCheckpoints,
      });
      if (ended !== undefined) {
        const summary = progress.finish();
        say(ended.message);
        return await end(ended.code, ended.status, {
          progress,
          summary,
          result,
          checkpoint: ended.checkpoint,
        });
      }
    }
    if (result.interrupted) {
      const what = parsed.launcher === "local" ? `all ${plural(world, "rank")}` : parsed.launcher;
      say(`lasp: interrupted; stopped ${what}\n`);
      return await end(RUN_EXIT.interrupted, "interrupted", { progress, result });
    }
    const summary = progress.finish();
    if (result.exitCode === 0) return await end(RUN_EXIT.ok, "ok", { progress, summary, result });
    const verify = progress.verify();
    if (result.exitCode === 1 && verify !== undefined && !verify.ok) {
      say(`lasp: the program's verification failed${rankText(result, " on")}\n`);
      return await end(result.exitCode, "verify failed", { progress, summary, result });
    }
    say(`lasp: ${failureText(result, parsed.launcher, world)}\n`);
    if (result.stderrTail.length > 0) {
      const who = result.failedRank !== undefined ? `rank ${result.failedRank}` : parsed.launcher;
      io.stderr(`  last lines of ${who}'s stderr:\n${result.stderrTail.map((l) => `    ${l}\n`).join("")}`);
    }
    return await end(result.exitCode, "failed", { progress, summary, result });
  } finally {
    removeHandler();
  }
}

/** A path under the working directory relative to it (`runs/x`), any other absolute. */
function shownPath(target: string, cwd: string): string {
  const relative = path.relative(cwd, target);
  return relative !== "" && !relative.startsWith("..") && !path.isAbsolute(relative) ? relative : target;
}

/** The newest other checkpoint beside `checkpoint` (the same checkpoints/ folder) that would resume. */
async function otherResumable(checkpoint: string, hash: string): Promise<string | undefined> {
  const others = (await checkpointsIn(path.dirname(checkpoint))).filter((c) => c.path !== checkpoint);
  for (const other of others.reverse())
    if ((await whyNotResumable(other.path, hash)) === undefined) return other.path;
  return undefined;
}

/** The refusal of `-o OUT` (the build's or checkOwnedFolder's), with what would work instead. */
function sourceFolderRefusal(error: OutputFolderError, out: string): string {
  const hint =
    error.problem === "not-writable"
      ? "name a folder you can write to with -o"
      : "name a new or empty folder with -o (or one lasp wrote there before), or leave -o out to build in the cache";
  return `lasp: cannot write the sources to ${out}: ${error.message}\n  = hint: ${hint}\n`;
}

/** The run folder's bookkeeping: run.json as the run goes, and the files written at its end. */
class RunBook {
  private readonly warnings: string[] = [];

  constructor(
    readonly folder: RunFolder,
    readonly record: RunRecord,
  ) {}

  /** Writes a whole file; a failure becomes a warning, never the run's end. */
  async save(name: string, contents: string): Promise<void> {
    await this.folder.write(name, contents).catch((error: unknown) => {
      this.warnings.push(`cannot write ${this.folder.file(name)}: ${describeWriteError(error)}`);
    });
  }

  async saveRecord(): Promise<void> {
    await this.save(RUN_FILES.record, recordText(this.record));
  }

  /** Records the end, writes loss.svg (when there are losses), summary.txt and run.json; returns warnings. */
  async finish(
    code: number,
    how: NonNullable<RunRecord["exit"]>["status"],
    details: {
      progress?: RunProgress;
      summary?: string;
      result?: LaunchResult;
      checkpoint?: string;
      title: string;
    },
  ): Promise<string[]> {
    this.folder.close();
    const { progress, result } = details;
    for (const e of progress?.all() ?? [])
      if (e.event === "start") this.record.devices[String(e.rank)] = e.device;
    this.record.ended = new Date().toISOString();
    this.record.exit = {
      code,
      status: how,
      ...(result?.failedRank !== undefined && how !== "ok" ? { failedRank: result.failedRank } : {}),
      ...(result?.failedSignal !== undefined ? { signal: result.failedSignal } : {}),
      ...(details.checkpoint !== undefined ? { checkpoint: details.checkpoint } : {}),
    };
    const chart = lossChartSvg(progress?.losses() ?? [], { title: details.title }, progress?.evals() ?? []);
    if (chart !== "") await this.save(RUN_FILES.chart, chart);
    if (details.summary !== undefined && details.summary !== "")
      await this.save(RUN_FILES.summary, details.summary);
    await this.saveRecord();
    if (this.folder.appendProblem !== undefined) this.warnings.push(this.folder.appendProblem);
    return this.warnings;
  }
}

interface TrainingEnd {
  code: number;
  status: NonNullable<RunRecord["exit"]>["status"];
  message: string;
  /** The checkpoint written on the way out. */
  checkpoint?: string;
}

/**
 * How a training run ended, where train mode has its own words: every rank stopped after writing a
 * checkpoint (exit 5: a Ctrl-C, or a SIGTERM from lasp or from Slurm), a non-finite loss (exit 6), or a
 * Ctrl-C that ended the ranks before they wrote one. Undefined otherwise (ok, or a failure said as for any run).
 */
function trainingEnd(
  result: LaunchResult,
  progress: RunProgress,
  where: { file: string; runFolder: string; show: (p: string) => string; checkpoints: boolean },
): TrainingEnd | undefined {
  const stopped = progress.last("stopped");
  const last = progress.last("checkpoint")?.folder;
  const resume = `lasp run ${shellQuote(where.file)} --resume ${shellQuote(where.show(where.runFolder))}`;
  const codes = result.exits.map((e) => e.exitCode);
  if (codes.length > 0 && codes.every((c) => c === STOPPED_WITH_CHECKPOINT)) {
    const step = stopped?.step ?? progress.training()?.lastStep;
    const after = step !== undefined ? ` after step ${step}` : "";
    if (!where.checkpoints) {
      return {
        code: RUN_EXIT.interrupted,
        status: "interrupted",
        message: `lasp: stopped${after}; no checkpoint written (${NO_CHECKPOINTS})\n`,
      };
    }
    const written = last !== undefined ? `: ${where.show(last)}` : "";
    return {
      code: RUN_EXIT.interrupted,
      status: "interrupted",
      message: `lasp: stopped${after}; checkpoint written${written}\n  continue with: ${resume}\n`,
      ...(last !== undefined ? { checkpoint: last } : {}),
    };
  }
  const resumeText = `\n  continue from it with: ${resume}`;
  if (!result.interrupted && result.exitCode === NON_FINITE) {
    // `step` is the last step done (PROTOCOL.md); the one whose loss or norm was not finite is the next.
    const at =
      stopped?.reason === "non-finite" && Number.isFinite(stopped.step) ? ` at step ${stopped.step + 1}` : "";
    const kept =
      last !== undefined
        ? `the last checkpoint is kept: ${where.show(last)}${resumeText}`
        : `no checkpoint had been written${where.checkpoints ? "" : ` (${NO_CHECKPOINTS})`}`;
    return {
      code: NON_FINITE,
      status: "non-finite",
      message: `lasp: stopped: non-finite loss or gradient norm${at}; ${kept}\n`,
    };
  }
  if (result.interrupted) {
    const kept = last !== undefined ? `; the last checkpoint: ${where.show(last)}${resumeText}` : "";
    return {
      code: RUN_EXIT.interrupted,
      status: "interrupted",
      message: `lasp: interrupted; the ranks ended before writing a checkpoint${kept}\n`,
    };
  }
  return undefined;
}

function rankText(result: LaunchResult, prefix: string): string {
  return result.failedRank === undefined ? "" : `${prefix} rank ${result.failedRank}`;
}

function failureText(result: LaunchResult, launcher: Launcher, world: number): string {
  const meaning = PROGRAM_EXIT[result.exitCode];
  const how =
    result.failedSignal !== undefined
      ? `was killed by ${result.failedSignal} (exit ${result.exitCode})`
      : result.exitCode === 127 && result.stderrTail.some((l) => /ENOENT/.test(l))
        ? "could not be started (exit 127)"
        : `exited with code ${result.exitCode}${meaning !== undefined ? ` (${meaning})` : ""}`;
  if (launcher === "local") {
    const others = world > 1 ? "; stopped the other ranks" : "";
    return `rank ${result.failedRank ?? "?"} ${how}${others}`;
  }
  return `${launcher} ${how}${rankText(result, "; the first error came from")}`;
}

// ------------------------------------------------------------------------------------------------ dry run

const ID_TOKEN = "$ID_DIR/nccl.id";

function dryRun(
  file: string,
  files: GeneratedFiles,
  buildOptions: BuildOptions,
  launchOptions: Omit<LaunchOptions, "binary">,
  environment: Environment,
  io: CliIo,
): number {
  for (const note of environment.notes) io.stderr(`lasp: note: ${note}\n`);
  for (const problem of environment.problems) {
    io.stderr(`lasp: warning (a real run would stop here): ${problem}\n`);
  }
  let plan;
  try {
    plan = planBuild(files, buildOptions);
  } catch (error) {
    io.stderr(`lasp: ${(error as Error).message}\n`);
    return RUN_EXIT.environment;
  }
  const launcher = launchOptions.launcher ?? "local";
  const commands = planLaunch({ ...launchOptions, binary: plan.binary }, ID_TOKEN);
  const quotedToken = shellQuote(ID_TOKEN);
  const launchLines = formatLaunch(commands, launchOptions).map((l) =>
    l.split(quotedToken).join(`"${ID_TOKEN}"`),
  );
  const tools = environment.tools;
  const toolText = [
    tools.cmake ? `cmake ${tools.cmake.version ?? "?"}` : "no cmake",
    tools.nvcc ? `nvcc ${tools.nvcc.version ?? "?"}` : "no nvcc",
  ].join(", ");
  const idParent = defaultIdParent(launcher, path.dirname(plan.cacheDir));
  // The clean-up as a trap, so that the script's exit code stays the launch's (formatLaunch).
  const mktemp =
    (launcher === "local"
      ? "ID_DIR=$(mktemp -d)"
      : `mkdir -p ${shellQuote(idParent)} && ID_DIR=$(mktemp -d ${shellQuote(path.join(idParent, "lasp-nccl-XXXXXX"))})`) +
    `; trap 'rm -rf "$ID_DIR"' EXIT`;
  const out = [
    `# lasp run ${file} --dry-run: nothing is written, built or started`,
    `# ${plural(files.size, "generated file")} -> ${plan.sourceDir}`,
    `# build (${plan.builder}; ${toolText}); the log would go to ${plan.logPath}`,
    plan.repro,
    `# launch: ${plural(launchOptions.world, "rank")}${launcher === "local" ? " on this machine" : ` through ${launcher}`}`,
    mktemp,
    ...launchLines,
  ];
  io.stdout(`${out.join("\n")}\n`);
  return RUN_EXIT.ok;
}
