// nvcc for the tests, paid for once per translation unit. A compile's key is the hash of everything that can
// change its outcome: the compiler versions, the arguments, and every file of the folder it runs in and of
// each include folder outside it. A success is stored (node_modules/.cache/lasp-nvcc by default; `npm ci`
// starts CI from an empty one) with the outputs the test goes on to use; the same key later, in this run or
// the next, replays the recorded stderr and restores the outputs instead of compiling again. Failures are
// never stored: they are compiled, and reported, every time. No vitest here: test/nvcc-cache.test.ts drives
// it with a stand-in compiler.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { availableParallelism } from "node:os";
import { isAbsolute, join, relative, resolve } from "node:path";

export interface NvccResult {
  status: number | null;
  /** stdout and stderr together, as nvcc printed them (replayed on a cache hit). */
  stderr: string;
  /** True when no compiler ran for this call: replayed from the cache or from a compile of this run. */
  cached: boolean;
}

export interface NvccCallOptions {
  /** Files the compile writes into its folder that the test uses afterwards (an executable it runs). */
  outputs?: string[];
}

export interface NvccCacheOptions {
  /** The compiler to run (nvcc; a stand-in in the cache's own tests). */
  command: string;
  /** Where successes are stored; undefined keeps results for this process only. */
  cacheRoot: string | undefined;
  /** The versions of the compilers, part of every key. */
  versions: () => string;
}

export type Nvcc = (cwd: string, args: string[], options?: NvccCallOptions) => Promise<NvccResult>;

function filesUnder(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return filesUnder(path, base);
      return entry.isFile() ? [relative(base, path)] : [];
    })
    .sort();
}

/** Every folder whose files the compile can read: the working folder and the -I folders outside it. */
function inputFolders(cwd: string, args: string[]): string[] {
  const folders = [cwd];
  for (const arg of args) {
    if (!arg.startsWith("-I")) continue;
    const folder = resolve(cwd, arg.slice(2));
    const inside = relative(cwd, folder);
    if (inside.startsWith("..") || isAbsolute(inside)) folders.push(folder);
  }
  return folders;
}

export function cacheKey(cwd: string, args: string[], versions: string): string {
  const hash = createHash("sha256");
  hash.update(`lasp-nvcc 1\0${versions}\0${JSON.stringify(args)}\0`);
  for (const folder of inputFolders(cwd, args)) {
    for (const file of filesUnder(folder)) {
      const content = createHash("sha256")
        .update(readFileSync(join(folder, file)))
        .digest("hex");
      hash.update(`${relative(cwd, join(folder, file))}\0${content}\0`);
    }
  }
  return hash.digest("hex");
}

// At most one compile per core in this worker: each nvcc is single-threaded and cicc takes a GB or more.
let running = 0;
const waiting: (() => void)[] = [];
async function slot(): Promise<() => void> {
  if (running >= availableParallelism()) await new Promise<void>((go) => waiting.push(go));
  running++;
  return () => {
    running--;
    waiting.shift()?.();
  };
}

async function compile(command: string, cwd: string, args: string[]) {
  const release = await slot();
  try {
    return await new Promise<{ status: number | null; stderr: string }>((done, fail) => {
      const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      child.stdout.setEncoding("utf8").on("data", (text: string) => (output += text));
      child.stderr.setEncoding("utf8").on("data", (text: string) => (output += text));
      child.on("error", fail);
      child.on("close", (status) => done({ status, stderr: output }));
    });
  } finally {
    release();
  }
}

const RECORD = "result.json";

function replay(entry: string, cwd: string, outputs: string[]): NvccResult | undefined {
  const record = join(entry, RECORD);
  if (!existsSync(record)) return undefined;
  const { stderr } = JSON.parse(readFileSync(record, "utf8")) as { stderr: string };
  for (const output of outputs) copyFileSync(join(entry, output), join(cwd, output));
  // Marks the entry as used, for pruneNvccCache.
  const now = new Date();
  utimesSync(record, now, now);
  return { status: 0, stderr, cached: true };
}

/** Stores a success: written beside the entry, then renamed into place, so readers never see half of one. */
function store(entry: string, cwd: string, outputs: string[], stderr: string): void {
  const partial = `${entry}.${process.pid}.${Math.random().toString(36).slice(2)}.partial`;
  mkdirSync(partial, { recursive: true });
  for (const output of outputs) copyFileSync(join(cwd, output), join(partial, output));
  writeFileSync(join(partial, RECORD), JSON.stringify({ stderr }));
  try {
    renameSync(partial, entry);
  } catch {
    // Another worker stored the same compile first; its entry is as good as this one.
    rmSync(partial, { recursive: true, force: true });
  }
}

export function createNvcc(options: NvccCacheOptions): Nvcc {
  // A compile of this process by key: two tests asking for the same one at once share it, and a failure is
  // reported to both without compiling twice.
  const compiles = new Map<string, Promise<{ status: number | null; stderr: string; cwd: string }>>();
  return async (cwd, args, call = {}) => {
    const outputs = call.outputs ?? [];
    const key = cacheKey(cwd, args, options.versions());
    const entry = options.cacheRoot === undefined ? undefined : join(options.cacheRoot, key);
    const hit = entry === undefined ? undefined : replay(entry, cwd, outputs);
    if (hit !== undefined) return hit;
    let compiled = compiles.get(key);
    const first = compiled === undefined;
    if (compiled === undefined) {
      compiled = compile(options.command, cwd, args).then(({ status, stderr }) => {
        const complete = outputs.every((output) => existsSync(join(cwd, output)));
        if (status === 0 && complete && entry !== undefined) store(entry, cwd, outputs, stderr);
        return { status, stderr, cwd };
      });
      compiles.set(key, compiled);
    }
    const { status, stderr, cwd: ranIn } = await compiled;
    if (!first && status === 0) {
      for (const output of outputs) copyFileSync(join(ranIn, output), join(cwd, output));
    }
    return { status, stderr, cached: !first };
  };
}

/** Removes entries no run used for maxAgeDays (and partial ones a killed worker left): edits add entries. */
export function pruneNvccCache(cacheRoot: string, maxAgeDays: number, now = Date.now()): void {
  if (!existsSync(cacheRoot)) return;
  for (const name of readdirSync(cacheRoot)) {
    const entry = join(cacheRoot, name);
    const record = join(entry, RECORD);
    const used = existsSync(record) ? statSync(record).mtimeMs : statSync(entry).mtimeMs;
    if (now - used > maxAgeDays * 86_400_000) rmSync(entry, { recursive: true, force: true });
  }
}
