// `lasp calibrate [--out FILE] [--spec SPEC] [--base PROFILE] [--dry-run]`: measures this machine (cuBLAS
// GEMMs at a spec's shapes, lasp's and cuDNN's attention kernels, HBM streaming, NCCL collectives over sizes)
// with a microbenchmark program built and started as `lasp run` builds and starts the generated program, and
// writes a machine profile that `lasp plan --machine FILE` and `lasp inspect --machine FILE` read
// (docs/PLAN.md, "Calibrating a machine"). Exit codes: 0 ok; 1 the spec has errors, or the measurements make
// no valid profile; 2 usage (a bad option, an output file lasp did not write); 3 no GPU or no nvcc; 4 a build
// failure; the program's own code when it fails (3: a CUDA, cuBLAS or NCCL failure).
import { stat } from "node:fs/promises";
import path from "node:path";
import {
  calibratedProfile,
  profileText,
  shippedProfile,
  shippedProfileFor,
  whyNotOurProfile,
} from "../calibrate/profile-file.js";
import { describeRate, FitError, fitProfile } from "../calibrate/fit.js";
import {
  collectMeasurements,
  measurementOf,
  ProtocolError,
  type CalibrationEvent,
} from "../calibrate/measurements.js";
import {
  calibrationPlan,
  describeBenchmark,
  DEFAULT_SHAPES,
  partOf,
  shapesOf,
  type CalibrationPlan,
} from "../calibrate/plan.js";
import { calibrateProgram } from "../calibrate/program.js";
import { partArgs, runCalibration } from "../calibrate/run.js";
import { loadProfile, ProfileError, SHIPPED_PROFILES, type MachineProfile } from "../cost/profile.js";
import { writeFileAtomic } from "../io/atomic-write.js";
import { version } from "../io/package-info.js";
import {
  BuildError,
  buildGeneratedProgram,
  defaultCacheRoot,
  DEFAULT_ARCH,
  planBuild,
  type BuildOptions,
} from "../toolchain/build.js";
import { describeGpus, detectGpus, type GpuProbe } from "../toolchain/gpus.js";
import { formatLaunch, planLaunch, type LaunchOptions, type LaunchResult } from "../toolchain/launch.js";
import { findTools, HOW_TO_GET, type Toolchain } from "../toolchain/tools.js";
import { loadSpec, reportDiagnostics } from "./check-command.js";
import { EXIT, type CliIo } from "./io.js";
import { integerFlag } from "./number-flag.js";
import { outputFileProblem } from "./output-file.js";

export const CALIBRATE_EXIT = { ...EXIT, invalid: 1, environment: 3, build: 4 } as const;

export interface CalibrateOptions {
  out?: string;
  spec?: string;
  base?: string;
  dryRun?: boolean;
  force?: boolean;
  runs?: string;
  warmup?: string;
  arch?: string;
}

/** What `lasp calibrate` takes from its surroundings; tests replace these (run-command.ts's RunDeps). */
export interface CalibrateDeps {
  detectGpus?: () => Promise<GpuProbe>;
  findTools?: () => Promise<Toolchain>;
  /** The program's files (default: templates/calibrate/ and the runtime headers). */
  program?: () => Map<string, string>;
  /** Starts the program (default launch.ts's launch). */
  launch?: (options: LaunchOptions) => Promise<LaunchResult>;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  now?: () => Date;
}

const DEFAULT_RUNS = 20;
const DEFAULT_WARMUP = 3;

/** A file name from a GPU's name: "NVIDIA H100 80GB HBM3" -> "nvidia-h100-80gb-hbm3". */
export function slug(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-|-$/g, "") || "gpu"
  );
}

/** The default output: `<gpu>.calibrated.json` in the working folder. */
export const defaultOutput = (gpu: string): string => `${slug(gpu)}.calibrated.json`;

/** The architecture to build for on a GPU: sm_80 on an A100 (no wgmma there), sm_90a otherwise. */
export function archFor(gpu: string): string {
  return /\bA100\b/i.test(gpu) ? "80" : DEFAULT_ARCH;
}

/** --base: a shipped profile's name or a profile file; undefined after saying why it cannot be used. */
function baseOption(text: string, io: CliIo): MachineProfile | undefined {
  const shipped = shippedProfile(text);
  if (shipped !== undefined) return shipped;
  try {
    return loadProfile(text);
  } catch (error) {
    if (!(error instanceof ProfileError)) throw error;
    io.stderr(
      `lasp: --base: ${error.message}\n  --base takes one of ${Object.keys(SHIPPED_PROFILES).join(", ")}, or a profile's JSON file\n`,
    );
    return undefined;
  }
}

export async function calibrateCommand(
  options: CalibrateOptions,
  io: CliIo,
  deps: CalibrateDeps = {},
): Promise<number> {
  const cwd = deps.cwd ?? process.cwd();
  const env = deps.env ?? process.env;
  const runs = integerFlag("--runs", options.runs, io);
  const warmup = integerFlag("--warmup", options.warmup, io, 0);
  if (runs === null || warmup === null) return CALIBRATE_EXIT.usage;
  const archOption = options.arch?.replace(/^(sm_|compute_)/, "");
  if (archOption !== undefined && !/^\d{2,3}[a-z]?$/.test(archOption)) {
    io.stderr(`lasp: --arch must be a CUDA architecture such as 90a, 90 or 80, got ${options.arch}\n`);
    return CALIBRATE_EXIT.usage;
  }

  let shapes = DEFAULT_SHAPES;
  if (options.spec !== undefined) {
    const loaded = await loadSpec(options.spec, io);
    if (loaded === undefined) return CALIBRATE_EXIT.usage;
    if (!reportDiagnostics(loaded, io) || loaded.spec === undefined) return CALIBRATE_EXIT.specErrors;
    shapes = shapesOf(loaded.spec);
  }
  let base: { profile: MachineProfile; name: string } | undefined;
  if (options.base !== undefined) {
    const profile = baseOption(options.base, io);
    if (profile === undefined) return CALIBRATE_EXIT.usage;
    base = { profile, name: options.base };
  }

  const [probe, tools] = await Promise.all([
    (deps.detectGpus ?? (() => detectGpus({ env })))(),
    (deps.findTools ?? (() => findTools({ env })))(),
  ]);
  const gpus = probe.gpus;
  const plan = calibrationPlan(shapes, Math.max(1, gpus.length));
  const first = gpus[0];
  if (base === undefined && first !== undefined) {
    const name = shippedProfileFor(first.name, (first.memoryMiB ?? 0) * 2 ** 20);
    if (name !== undefined) base = { profile: shippedProfile(name)!, name };
  }
  const out = path.resolve(cwd, options.out ?? defaultOutput(first?.name ?? "gpu"));
  const arch = archOption ?? archFor(first?.name ?? "");
  const files = (deps.program ?? (() => calibrateProgram(version())))();
  const buildOptions: BuildOptions = {
    arch,
    cwd,
    env,
    cacheRoot: defaultCacheRoot(cwd, env),
    cmake: tools.cmake?.path,
    nvcc: tools.nvcc?.path,
  };
  const timing = { runs: runs ?? DEFAULT_RUNS, warmup: warmup ?? DEFAULT_WARMUP };

  // Refused before minutes of measuring, not after; and by a dry run as by a real one.
  const unwritable = await whyNotWritable(out);
  if (unwritable !== undefined) {
    io.stderr(`lasp: cannot write ${out}: ${unwritable}\n`);
    return CALIBRATE_EXIT.usage;
  }
  if (!options.force) {
    const notOurs = await whyNotOurProfile(out);
    if (notOurs !== undefined) {
      io.stderr(
        `lasp: will not replace ${out}: ${notOurs}; name another file with --out, or add --force to replace it\n`,
      );
      return CALIBRATE_EXIT.usage;
    }
  }

  // A GPU without a shipped profile needs --base (without a GPU a real run stops at that, a dry run plans on).
  if (base === undefined && first !== undefined) {
    io.stderr(
      `lasp: no shipped profile for ${first.name}: name the profile whose unmeasured fields (data-sheet peaks, the network between nodes) the calibrated one keeps, with --base ${Object.keys(SHIPPED_PROFILES).join("|")} or --base FILE\n`,
    );
    return CALIBRATE_EXIT.usage;
  }

  if (options.dryRun) {
    dryRun(plan, probe, files, buildOptions, timing, out, base?.name, io);
    return CALIBRATE_EXIT.ok;
  }
  const problems: string[] = [];
  if (first === undefined) {
    problems.push(
      [
        `no NVIDIA GPU on this machine${probe.problem !== undefined ? ` (${probe.problem})` : ""}.`,
        "  lasp calibrate measures the GPUs of the machine it runs on: run it there.",
        "  lasp calibrate --dry-run shows what it would build and run; without a GPU, the shipped profiles",
        `  (${Object.keys(SHIPPED_PROFILES).join(", ")}) serve lasp plan and lasp inspect --machine.`,
      ].join("\n"),
    );
  }
  if (tools.nvcc === undefined) {
    problems.push(
      [
        "nvcc (the CUDA compiler) not found on PATH, in $CUDA_HOME or in /usr/local/cuda/bin.",
        ...HOW_TO_GET.nvcc,
      ].join("\n  "),
    );
  }
  // `base` is missing only where no GPU was found (checked above where one was): one of the problems.
  if (problems.length > 0 || base === undefined) {
    for (const problem of problems) io.stderr(`lasp: ${problem}\n`);
    return CALIBRATE_EXIT.environment;
  }
  io.stderr(
    `lasp: calibrating ${describeGpus(gpus)}: ${plan.benchmarks.length} benchmarks (shapes of ${plan.source}, ${plan.tokens} tokens per GPU), base profile ${base.name}\n`,
  );
  let binary: string;
  try {
    const built = await buildGeneratedProgram(files, {
      ...buildOptions,
      nvcc: tools.nvcc!.path,
      onStep: (step) => io.stderr(`lasp: build: ${step}\n`),
    });
    binary = built.binary;
  } catch (error) {
    if (!(error instanceof BuildError)) throw error;
    io.stderr(
      [
        `lasp: building the microbenchmark program failed: ${error.message}`,
        ...error.excerpt.map((l) => `  ${l}`),
        `  log: ${error.logPath}`,
        `  to reproduce: ${error.repro}`,
      ].join("\n") + "\n",
    );
    return CALIBRATE_EXIT.build;
  }

  const total = plan.benchmarks.length;
  const tail: string[] = [];
  let answered = 0;
  const run = await runCalibration({
    binary,
    plan,
    ...timing,
    env,
    ...(deps.launch !== undefined ? { launch: deps.launch } : {}),
    onEvent: (event) => {
      // The counter counts benchmarks answered; device and error lines are not benchmarks.
      if (event.event === "measure" || event.event === "skipped") answered++;
      showProgress(event, plan, answered, total, io);
    },
    onLine: (rank, line) => {
      tail.push(rank === undefined ? line : `[rank ${rank}] ${line}`);
      if (tail.length > 20) tail.shift();
    },
  });
  if (run.protocolError !== undefined) {
    io.stderr(
      `lasp: the microbenchmark program's output is not what this lasp reads: ${run.protocolError}\n`,
    );
    return CALIBRATE_EXIT.invalid;
  }
  if (run.failed !== undefined) {
    const { part, result } = run.failed;
    const lines = result.stderrTail.length > 0 ? result.stderrTail : tail;
    io.stderr(
      [
        `lasp: the microbenchmark program failed in its ${part} part (exit ${result.exitCode}${result.failedRank !== undefined ? `, rank ${result.failedRank}` : ""}); nothing was written`,
        ...lines.map((l) => `  ${l}`),
      ].join("\n") + "\n",
    );
    return result.exitCode;
  }

  try {
    const collected = collectMeasurements(plan, run.events);
    const device = collected.device?.name ?? first!.name;
    const fit = fitProfile(collected, plan.gpus);
    const profile = calibratedProfile({
      base: base.profile,
      baseName: base.name,
      fit,
      collected,
      device,
      gpus: gpus.length,
      date: deps.now?.() ?? new Date(),
      version: version(),
      shapes: plan.source,
    });
    try {
      await writeFileAtomic(out, profileText(profile));
    } catch (error) {
      io.stderr(`lasp: cannot write ${out}: ${outputFileProblem(out, error, "profile.json")}\n`);
      return CALIBRATE_EXIT.usage;
    }
    const measured = new Set(fit.fields.map((f) => f.path));
    const keptFields = Object.keys(profile.sources).filter((p) => !measured.has(p as never));
    io.stdout(
      [
        `wrote ${path.relative(cwd, out) || out}: ${profile.name}`,
        ...fit.fields.map(
          (f) =>
            `  ${f.path.padEnd(22)} ${formatField(f.path, f.value)}  (base ${baseValue(base!.profile, f.path)})`,
        ),
        `  kept from ${base.name}: ${keptFields.join(", ")}`,
        ...collected.skipped.map((s) => `  skipped: ${describeBenchmark(s.benchmark)}: ${s.why}`),
        `  use it: lasp plan SPEC --machine ${path.relative(cwd, out) || out}`,
      ].join("\n") + "\n",
    );
    return CALIBRATE_EXIT.ok;
  } catch (error) {
    if (error instanceof ProtocolError || error instanceof FitError || error instanceof ProfileError) {
      io.stderr(`lasp: the measurements make no valid profile: ${error.message}; nothing was written\n`);
      return CALIBRATE_EXIT.invalid;
    }
    throw error;
  }
}

/** Why the profile could not be written at `file` (a folder, a missing folder); undefined where it can. */
async function whyNotWritable(file: string): Promise<string | undefined> {
  const info = await stat(file).catch(() => undefined);
  if (info?.isDirectory()) return `it is a folder; name a file, e.g. ${path.join(file, "profile.json")}`;
  const folder = await stat(path.dirname(file)).catch(() => undefined);
  if (folder === undefined) return `its folder ${path.dirname(file)} does not exist`;
  if (!folder.isDirectory()) return `${path.dirname(file)} is not a folder`;
  return undefined;
}

/** The base's value of a measured field in its unit; an optional field the base leaves out says so. */
function baseValue(profile: MachineProfile, fieldPath: string): string {
  const [section, key] = fieldPath.split(".") as [keyof MachineProfile, string];
  const value = (profile[section] as unknown as Record<string, number | undefined>)[key];
  return value === undefined ? "none" : formatField(fieldPath, value);
}

/** A profile number in its unit. */
export function formatField(fieldPath: string, value: number): string {
  if (fieldPath.endsWith("Flops")) return `${(value / 1e12).toFixed(0)} TFLOP/s`;
  if (fieldPath.toLowerCase().endsWith("latency")) return `${(value * 1e6).toFixed(1)} us`;
  if (fieldPath === "gpu.memoryBytes") return `${(value / 1e9).toFixed(1)} GB`;
  if (fieldPath === "gpu.sms") return `${value} SMs`;
  if (fieldPath === "gpu.gatheredAttentionEfficiency") return `${value.toFixed(3)} of gpu.attentionFlops`;
  return `${(value / 1e9).toFixed(0)} GB/s`;
}

function showProgress(
  event: CalibrationEvent,
  plan: CalibrationPlan,
  n: number,
  total: number,
  io: CliIo,
): void {
  if (event.event === "device") {
    io.stderr(
      `lasp: ${event.name}, ${event.sms} SMs, compute capability ${event.cc}, cuDNN ${event.cudnn ?? "not built in"}\n`,
    );
    return;
  }
  if (event.event === "error") {
    io.stderr(`lasp: rank ${event.rank}: ${event.message}\n`);
    return;
  }
  const benchmark = plan.benchmarks.find((b) => b.id === event.id);
  if (benchmark === undefined) return;
  const counter = `[${String(n).padStart(String(total).length)}/${total}]`;
  const result =
    event.event === "measure"
      ? `${event.ms.toFixed(3)} ms, ${describeRate(measurementOf(benchmark, event), plan.gpus)}`
      : `skipped: ${event.why}`;
  io.stderr(`${counter} ${describeBenchmark(benchmark)}: ${result}\n`);
}

function dryRun(
  plan: CalibrationPlan,
  probe: GpuProbe,
  files: Map<string, string>,
  buildOptions: BuildOptions,
  timing: { runs: number; warmup: number },
  out: string,
  base: string | undefined,
  io: CliIo,
): void {
  const build = planBuild(files, buildOptions);
  const planFile = "<tmp>/plan.txt";
  const launches = (["compute", "collectives"] as const)
    .filter((part) => plan.benchmarks.some((b) => partOf(b) === part))
    .flatMap((part) => [
      `# ${part}`,
      ...formatLaunch(
        planLaunch(
          {
            binary: build.binary,
            world: part === "compute" ? 1 : plan.gpus,
            programArgs: partArgs(planFile, part, timing.runs, timing.warmup),
          },
          "<tmp>/nccl.id",
        ),
      ),
    ]);
  const machine =
    probe.gpus.length > 0
      ? describeGpus(probe.gpus)
      : `no GPU here${probe.problem !== undefined ? ` (${probe.problem})` : ""}: the plan for one GPU (the collectives need two or more)`;
  io.stdout(
    [
      `machine: ${machine}`,
      `shapes: ${plan.source}, ${plan.tokens} tokens per GPU; ${timing.runs} timed runs after ${timing.warmup} warm-up, the median`,
      `benchmarks (${plan.benchmarks.length}):`,
      ...plan.benchmarks.map(
        (b) => `  ${String(b.id).padStart(2)} ${partOf(b).padEnd(11)} ${describeBenchmark(b)}`,
      ),
      `build (${build.builder}, cached in ${build.cacheDir}):`,
      `  ${build.repro}`,
      "run:",
      ...launches.map((l) => `  ${l}`),
      `profile: ${out} (base ${base ?? "the shipped profile of the GPU found, or --base"})`,
    ].join("\n") + "\n",
  );
}
