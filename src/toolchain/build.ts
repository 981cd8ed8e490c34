// Builds a generated program (PROTOCOL.md, "Build"). The files go into a cache folder named by a hash of
// their contents and the build options, `.lasp-cache/<hash>/` under the working directory (LASP_CACHE_DIR
// overrides), and are built there with cmake, or with the program's build.sh and nvcc when cmake is missing.
// The tools' output goes to `<cache>/build.log`; callers get one short step text per stage to show. A
// second build of the same sources finds `<cache>/build.json` and returns at once.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { writeFileAtomic } from "../io/atomic-write.js";
import { MANIFEST, writeOwnedFolder } from "../io/owned-folder.js";
import { expandPath, formatCommand, shellQuote } from "../text/shell-text.js";
import { isExecutable } from "./tools.js";

/** The executable's name; PROTOCOL.md fixes it. */
export const PROGRAM_NAME = "lasp_program";
export const DEFAULT_ARCH = "90a";
/** Bump when the cache layout or the build commands change, so old entries are not reused. */
const CACHE_VERSION = "lasp-build-1";

export type GeneratedFiles = ReadonlyMap<string, string>;

export interface BuildOptions {
  /** CUDA architecture without `sm_`: `90a` (default), `90`, `80`, ... */
  arch?: string;
  /** CMAKE_BUILD_TYPE, default Release. */
  buildType?: string;
  /** The cache root; default $LASP_CACHE_DIR, else `<cwd>/.lasp-cache`. */
  cacheRoot?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Write the sources here instead of `<cache>/src` (`lasp run -o DIR`); it becomes part of the key. */
  sourceDir?: string;
  /** Path of cmake; undefined builds with build.sh and nvcc. */
  cmake?: string | undefined;
  /** Path of nvcc, handed to cmake (CMAKE_CUDA_COMPILER) and build.sh (NVCC). */
  nvcc?: string | undefined;
  /** Parallel compile jobs, default the number of CPUs. */
  jobs?: number;
  /** Called with a short description of what the build is doing ("compiling main.cu"). */
  onStep?: (text: string) => void;
  /** Aborting kills the running tool; the build then rejects with a BuildError whose `canceled` is set. */
  signal?: AbortSignal;
}

export interface BuildCommand {
  file: string;
  args: string[];
  cwd: string;
  /** Variables set on top of the environment; `$PATH` in a value stands for the environment's PATH. */
  env: Record<string, string>;
}

export interface BuildPlan {
  /** The hash naming the cache entry. */
  key: string;
  cacheDir: string;
  sourceDir: string;
  buildDir: string;
  logPath: string;
  binary: string;
  builder: "cmake" | "build.sh";
  commands: BuildCommand[];
  /** The commands as one shell line, `cd`-prefixed: what to paste to reproduce the build. */
  repro: string;
}

export interface BuildResult extends BuildPlan {
  cached: boolean;
  /** Seconds the build took (0 when cached). */
  seconds: number;
}

export class BuildError extends Error {
  constructor(
    message: string,
    readonly logPath: string,
    readonly repro: string,
    /** The failing tool's exit code; undefined when it could not start or was killed. */
    readonly exitCode: number | undefined,
    /** The lines of the log worth showing: compiler errors, or the last lines. */
    readonly excerpt: string[],
    readonly canceled = false,
  ) {
    super(message);
    this.name = "BuildError";
  }
}

/** The commands as one line a user can paste: `cd DIR && cmd1 && cmd2`. */
export function reproLine(commands: readonly BuildCommand[]): string {
  const first = commands[0];
  if (first === undefined) return "";
  const parts = [`cd ${shellQuote(first.cwd)}`];
  let cwd = first.cwd;
  for (const c of commands) {
    if (c.cwd !== cwd) {
      parts.push(`cd ${shellQuote(c.cwd)}`);
      cwd = c.cwd;
    }
    parts.push(formatCommand(c.file, c.args, c.env));
  }
  return parts.join(" && ");
}

// ------------------------------------------------------------------------------------------------ planning

export function defaultCacheRoot(cwd: string = process.cwd(), env: NodeJS.ProcessEnv = process.env): string {
  const override = env["LASP_CACHE_DIR"];
  return override !== undefined && override !== ""
    ? path.resolve(cwd, override)
    : path.join(cwd, ".lasp-cache");
}

/** Rejects absolute paths and `..` so generated files stay inside their folder. */
function checkRelative(file: string): void {
  const normal = path.posix.normalize(file.replace(/\\/g, "/"));
  if (file === "" || path.isAbsolute(file) || normal.startsWith("../") || normal === "..") {
    throw new Error(`generated file name ${JSON.stringify(file)} is not a relative path inside the program`);
  }
}

export function cacheKey(files: GeneratedFiles, parts: readonly string[]): string {
  const hash = createHash("sha256");
  for (const part of [CACHE_VERSION, ...parts]) hash.update(`${part}\0`);
  for (const name of [...files.keys()].sort()) {
    hash.update(`${name}\0${files.get(name)!.length}\0`);
    hash.update(files.get(name)!);
    hash.update("\0");
  }
  return hash.digest("hex").slice(0, 16);
}

/** Where the build goes and which commands it runs; touches nothing. */
export function planBuild(files: GeneratedFiles, options: BuildOptions = {}): BuildPlan {
  for (const name of files.keys()) checkRelative(name);
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const arch = options.arch ?? DEFAULT_ARCH;
  const buildType = options.buildType ?? "Release";
  const builder = options.cmake !== undefined ? "cmake" : "build.sh";
  if (builder === "build.sh" && !files.has("build.sh")) {
    throw new Error("cmake is missing and the generated program has no build.sh to build it with nvcc alone");
  }
  const external = options.sourceDir === undefined ? undefined : path.resolve(cwd, options.sourceDir);
  const key = cacheKey(files, [builder, arch, buildType, options.nvcc ?? "", external ?? ""]);
  const cacheDir = path.join(path.resolve(cwd, options.cacheRoot ?? defaultCacheRoot(cwd, env)), key);
  const sourceDir = external ?? path.join(cacheDir, "src");
  const buildDir = path.join(cacheDir, "build");
  const jobs = String(options.jobs ?? os.availableParallelism());
  let commands: BuildCommand[];
  let binary: string;
  if (builder === "cmake") {
    const cmake = options.cmake!;
    const defines = [`-DCMAKE_BUILD_TYPE=${buildType}`, `-DCMAKE_CUDA_ARCHITECTURES=${arch}`];
    if (options.nvcc !== undefined) defines.push(`-DCMAKE_CUDA_COMPILER=${options.nvcc}`);
    // Run from the cache folder with paths relative to it, so the repro command reads short.
    const near = (dir: string): string =>
      dir.startsWith(cacheDir + path.sep) ? path.relative(cacheDir, dir) : dir;
    commands = [
      {
        file: cmake,
        args: ["-S", near(sourceDir), "-B", near(buildDir), ...defines],
        cwd: cacheDir,
        env: {},
      },
      { file: cmake, args: ["--build", near(buildDir), "-j", jobs], cwd: cacheDir, env: {} },
    ];
    binary = path.join(buildDir, PROGRAM_NAME);
  } else {
    // The generated build.sh takes the architecture from ARCH and runs the nvcc on PATH.
    const vars: Record<string, string> = {};
    const nvccDir = options.nvcc === undefined ? undefined : path.dirname(options.nvcc);
    const onPath = (env["PATH"] ?? "").split(path.delimiter).map((d) => path.resolve(cwd, d));
    if (nvccDir !== undefined && !onPath.includes(nvccDir)) vars["PATH"] = `${nvccDir}${path.delimiter}$PATH`;
    vars["ARCH"] = arch;
    commands = [{ file: "bash", args: ["build.sh"], cwd: sourceDir, env: vars }];
    binary = path.join(sourceDir, PROGRAM_NAME);
  }
  return {
    key,
    cacheDir,
    sourceDir,
    buildDir,
    logPath: path.join(cacheDir, "build.log"),
    binary,
    builder,
    commands,
    repro: reproLine(commands),
  };
}

// ----------------------------------------------------------------------------------------------- the build

/** What a line of cmake, make or ninja output says the build is doing, or undefined. */
export function buildStepOf(line: string): string | undefined {
  const compiling = /Building (?:CUDA|CXX|C) object \S*?([^/\s]+?)\.o(?:bj)?\s*$/.exec(line);
  if (compiling) return `compiling ${compiling[1]}`;
  const linking = /Linking (?:CUDA|CXX|C) executable (\S+)/.exec(line);
  if (linking) return `linking ${path.basename(linking[1]!)}`;
  if (/^-- (?:Configuring done|Generating done)/.test(line)) return "generating build files";
  if (/^-- The (?:CUDA|CXX|C) compiler identification/.test(line)) return "configuring (checking compilers)";
  if (/^-- Found (\S+)/.test(line))
    return `configuring (found ${/^-- Found (\S+?):?\s/.exec(line)?.[1] ?? "a package"})`;
  const nvcc = /^\+?\s*\S*nvcc\b.*?(\S+\.cu)\b/.exec(line);
  if (nvcc) return `compiling ${path.basename(nvcc[1]!)} (nvcc)`;
  return undefined;
}

/**
 * Writes the sources as `lasp compile` does (src/io/owned-folder.ts: atomic files, a manifest, stale files
 * of lasp's removed, nobody else's), leaving unchanged files with their time stamps so an incremental
 * rebuild recompiles only what changed. The cache's own folder is lasp's (`force`); a folder named by
 * `lasp run -o DIR` follows compile's rules, so a user's folder is refused (OutputFolderError).
 */
async function writeSources(files: GeneratedFiles, dir: string, force: boolean): Promise<void> {
  await writeOwnedFolder(dir, files, {
    force,
    mode: (name) => (name.endsWith(".sh") ? 0o755 : undefined),
  });
}

/**
 * Reads a program folder (e.g. what `lasp compile -o DIR` wrote) into a file map; skips `build*` folders and
 * the manifest.
 */
export async function readSourceTree(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const name = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        if (!/^(build|\.)/.test(entry.name)) await walk(name);
      } else if (entry.isFile() && entry.name !== PROGRAM_NAME && entry.name !== MANIFEST) {
        files.set(name, await readFile(path.join(dir, name), "utf8"));
      }
    }
  };
  await walk("");
  return files;
}

/** The error lines of a tool's output, each with the indented lines under it (source line, caret, cause). */
export function excerptOf(lines: readonly string[], limit = 30): string[] {
  const chosen: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    // make's own "*** [target] Error 2" lines only repeat that something failed.
    if (/^g?make(?:\[\d+\])?: \*\*\*/.test(lines[i]!)) continue;
    if (!/\berror\b|fatal|undefined reference|CMake Error/i.test(lines[i]!)) continue;
    chosen.push(lines[i]!);
    for (let j = i + 1; j < lines.length && j <= i + 4 && /^\s+\S/.test(lines[j]!); j++) {
      chosen.push(lines[j]!);
      i = j;
    }
  }
  // The first errors are the ones to read; without any, the end of the output says most.
  return chosen.length > 0 ? chosen.slice(0, limit) : lines.slice(-limit);
}

/** Builds the program, or returns the cached binary at once. Rejects with BuildError when a tool fails. */
export async function buildGeneratedProgram(
  files: GeneratedFiles,
  options: BuildOptions = {},
): Promise<BuildResult> {
  const plan = planBuild(files, options);
  const stamp = path.join(plan.cacheDir, "build.json");
  await mkdir(plan.cacheDir, { recursive: true });
  const ownFolder = plan.sourceDir === path.join(plan.cacheDir, "src");
  if (!ownFolder) await writeSources(files, plan.sourceDir, false);
  const previous = await readFile(stamp, "utf8")
    .then((t) => JSON.parse(t) as { key?: string; binary?: string })
    .catch(() => undefined);
  if (previous?.key === plan.key && previous.binary === plan.binary && (await isExecutable(plan.binary))) {
    options.onStep?.("cached");
    return { ...plan, cached: true, seconds: 0 };
  }
  await rm(stamp, { force: true });
  await writeSources(files, plan.sourceDir, ownFolder);
  await mkdir(plan.buildDir, { recursive: true });

  const started = Date.now();
  const log = createWriteStream(plan.logPath, { flags: "w" });
  const logLine = (line: string): void => void log.write(`${line}\n`);
  const env = { ...(options.env ?? process.env) };
  try {
    for (const command of plan.commands) {
      const text = formatCommand(command.file, command.args, command.env);
      logLine(`$ cd ${shellQuote(command.cwd)} && ${text}`);
      options.onStep?.(
        command.args[0] === "--build"
          ? "compiling"
          : command.file === "bash"
            ? "running build.sh"
            : "configuring",
      );
      const output: string[] = [];
      const child = execa(command.file, command.args, {
        cwd: command.cwd,
        env: {
          ...env,
          ...Object.fromEntries(Object.entries(command.env).map(([k, v]) => [k, expandPath(v, env)])),
        },
        extendEnv: false,
        stdin: "ignore",
        all: true,
        buffer: false,
        reject: false,
        ...(options.signal ? { cancelSignal: options.signal } : {}),
      });
      try {
        for await (const line of child.iterable({ from: "all" })) {
          output.push(line);
          if (output.length > 2000) output.splice(0, 1000);
          logLine(line);
          const step = buildStepOf(line);
          if (step !== undefined) options.onStep?.(step);
        }
      } catch {
        // The tool failed to start or was killed; the awaited result below says which.
      }
      const result = await child;
      if (result.exitCode === 0 && !result.failed) continue;
      const name = command.args[0] === "--build" ? "cmake --build" : path.basename(command.file);
      let message: string;
      if (result.isCanceled || options.signal?.aborted) message = "build interrupted";
      else if (result.exitCode === undefined) {
        message = `could not start ${name}: ${(result.cause as Error | undefined)?.message ?? result.shortMessage}`;
      } else message = `${name} exited with code ${result.exitCode}`;
      logLine(`# ${message}`);
      throw new BuildError(
        message,
        plan.logPath,
        plan.repro,
        result.exitCode,
        excerptOf(output),
        Boolean(result.isCanceled || options.signal?.aborted),
      );
    }
  } finally {
    await new Promise<void>((resolve) => log.end(resolve));
  }
  if (!(await isExecutable(plan.binary))) {
    throw new BuildError(
      `the build finished but did not produce ${plan.binary}`,
      plan.logPath,
      plan.repro,
      0,
      [],
    );
  }
  const seconds = (Date.now() - started) / 1000;
  await writeFileAtomic(
    stamp,
    `${JSON.stringify({ key: plan.key, binary: plan.binary, builder: plan.builder, seconds, at: new Date().toISOString() }, null, 2)}\n`,
  );
  return { ...plan, cached: false, seconds };
}
