// The folder of one `lasp run` (issue 17: "everything is in the run folder"): by default
// `runs/<spec name>-<UTC yyyymmdd-hhmmss>/` under the working directory. A run never reuses a folder: when the
// name is taken (two runs in one second, a --run-dir that exists) it gets `-2`, `-3`, ... The folder is made
// with one mkdir, which fails when the name exists, so two runs starting together cannot share one.
// Files written whole go through writeFileAtomic; the event and log streams are appended line by line with
// synchronous writes, so whatever arrived is on the disk when lasp or the machine goes down mid-run.
import { closeSync, openSync, writeSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../io/atomic-write.js";
import { errorCode } from "../io/write-error.js";

/** The default parent of run folders, relative to the working directory. */
export const RUNS_PARENT = "runs";

/** The files of a run folder. */
export const RUN_FILES = {
  spec: "spec.lasp",
  record: "run.json",
  events: "events.jsonl",
  log: "stderr.log",
  chart: "loss.svg",
  summary: "summary.txt",
  /** Train mode: the program's checkpoints (checkpoints.ts). */
  checkpoints: "checkpoints",
} as const;

const MAX_SUFFIX = 1000;

/** The spec's part of its run folders' names: `tiny-linear` for examples/tiny-linear.lasp; odd characters `_`. */
export function runFolderPrefix(specPath: string): string {
  return (
    path
      .basename(specPath)
      .replace(/\.lasp$/, "")
      .replace(/[^A-Za-z0-9._-]/g, "_") || "run"
  );
}

/** `tiny-linear-20261205-151804` for examples/tiny-linear.lasp at 15:18:04 UTC. */
export function runFolderName(specPath: string, at: Date): string {
  const name = runFolderPrefix(specPath);
  const two = (n: number): string => String(n).padStart(2, "0");
  const date = `${at.getUTCFullYear()}${two(at.getUTCMonth() + 1)}${two(at.getUTCDate())}`;
  const time = `${two(at.getUTCHours())}${two(at.getUTCMinutes())}${two(at.getUTCSeconds())}`;
  return `${name}-${date}-${time}`;
}

export interface RunFolderOptions {
  /** The spec being run (names the default folder). */
  specPath: string;
  /** Resolves `dir` and the default `runs/`. */
  cwd: string;
  /** `--run-dir`: the folder wanted; a suffix is added when it exists. */
  dir?: string;
  now?: Date;
}

/** Makes a new folder at `wanted`, or `wanted-2`, `wanted-3`, ... when taken; returns its path. */
export async function makeNewFolder(wanted: string): Promise<string> {
  await mkdir(path.dirname(wanted), { recursive: true });
  for (let n = 1; n <= MAX_SUFFIX; n++) {
    const candidate = n === 1 ? wanted : `${wanted}-${n}`;
    try {
      await mkdir(candidate);
      return candidate;
    } catch (error) {
      if (errorCode(error) !== "EEXIST") throw error;
    }
  }
  throw new Error(`${wanted} and ${MAX_SUFFIX - 1} suffixed names are taken`);
}

/** One open run folder: appends the streams as they come, writes the other files whole. */
export class RunFolder {
  private readonly fds = new Map<string, number>();
  /** The first failed append (a full disk): later appends are dropped, the run goes on. */
  appendProblem: string | undefined;

  private constructor(readonly path: string) {}

  static async create(options: RunFolderOptions): Promise<RunFolder> {
    const wanted =
      options.dir !== undefined
        ? path.resolve(options.cwd, options.dir)
        : path.resolve(options.cwd, RUNS_PARENT, runFolderName(options.specPath, options.now ?? new Date()));
    return new RunFolder(await makeNewFolder(wanted));
  }

  file(name: string): string {
    return path.join(this.path, name);
  }

  /** One event line of the program, as received. */
  appendEvent(line: string): void {
    this.append(RUN_FILES.events, line);
  }

  /** One human line. */
  appendLog(line: string): void {
    this.append(RUN_FILES.log, line);
  }

  async write(name: string, contents: string | Uint8Array): Promise<void> {
    await writeFileAtomic(this.file(name), contents, { followLinks: false });
  }

  /** Closes the streams; the folder stays. */
  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }

  private append(name: string, line: string): void {
    if (this.appendProblem !== undefined) return;
    try {
      let fd = this.fds.get(name);
      if (fd === undefined) {
        fd = openSync(this.file(name), "a");
        this.fds.set(name, fd);
      }
      writeSync(fd, line.endsWith("\n") ? line : `${line}\n`);
    } catch (error) {
      this.appendProblem = `cannot append to ${this.file(name)}: ${(error as Error).message}`;
    }
  }
}

/** run.json: what ran, where, with what, and how it ended. */
export interface RunRecord {
  lasp: string;
  /** The spec as given on the command line, resolved, and its copy in this folder. */
  spec: { path: string; copy: string };
  /** `lasp` and its arguments as typed. */
  command: string[];
  cwd: string;
  mode: string;
  world: number;
  launcher: string;
  /** This machine's GPUs as lasp found them; null under mpirun or srun (the ranks run elsewhere). */
  gpus: { index: number; name: string; memoryMiB: number | undefined }[] | null;
  /** Each rank's device, from its `start` event. */
  devices: Record<string, string>;
  /** The build: the cache key (a hash of the generated sources and build options) and the binary. */
  build: { hash: string; binary: string; sourceDir: string; cached: boolean } | null;
  /** The program's command lines (the NCCL id file's temporary folder as $ID_DIR). */
  launch: string[];
  /** `--resume`: the checkpoint folder this run continues from (absolute); absent otherwise. */
  resumedFrom?: string;
  started: string;
  ended: string | null;
  /** null while running; `status` says in words what the code means. */
  exit: {
    code: number;
    status: "ok" | "failed" | "verify failed" | "build failed" | "interrupted" | "non-finite";
    failedRank?: number;
    signal?: string;
    /** Train mode: the checkpoint written when the ranks stopped (exit 5). */
    checkpoint?: string;
  } | null;
}

export function recordText(record: RunRecord): string {
  return `${JSON.stringify(record, null, 2)}\n`;
}
