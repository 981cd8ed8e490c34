// A folder lasp writes a set of files into (`lasp compile -o DIR`, generated/<example>/, the build cache),
// owning only what it wrote: a manifest (`.lasp-manifest`) lists those files. Writing again replaces them,
// removes the ones the manifest lists that the new set lacks (and folders that leaves empty), and leaves
// every other file alone: a user's notes, cmake's build/. A folder that is not empty and has no manifest is
// someone else's and is refused unless `force` is set, which permits writing into it (files of the same
// names are replaced) but still removes nothing lasp did not write.
import { constants } from "node:fs";
import { access, chmod, lstat, mkdir, readdir, readFile, rmdir, stat, unlink } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic, type AtomicWriteOptions } from "./atomic-write.js";
import { describeAt, errorCode, errorPath, isPermissionError } from "./write-error.js";

export const MANIFEST = ".lasp-manifest";

const MANIFEST_HEADER = [
  "# lasp wrote the files listed below. Writing into this folder again replaces them, removes those it no",
  "# longer generates, and leaves every other file alone.",
];

/** What is wrong with an output folder; the caller picks the advice (a command line names its flags). */
export type OutputFolderProblem =
  "empty-path" | "not-a-folder" | "not-owned" | "unowned-files" | "bad-manifest" | "not-writable" | "io";

export class OutputFolderError extends Error {
  constructor(
    readonly problem: OutputFolderProblem,
    /** The path the problem is about: the folder, or the file inside it that failed. */
    readonly path: string,
    message: string,
    /** For unowned-files: the generated names that already exist as files lasp did not write. */
    readonly files: readonly string[] = [],
  ) {
    super(message);
  }
}

export interface OwnedFolderOptions {
  /** Write into a folder lasp does not own, replacing files of the same names; never removes other files. */
  force?: boolean;
  /** Permission bits for a file (e.g. 0o755 for scripts); undefined: the default. */
  mode?: (file: string) => number | undefined;
  /** Passed on to writeFileAtomic; tests inject a failing write to stand for a crash. */
  write?: AtomicWriteOptions["write"];
}

export interface OwnedFolderResult {
  /** Files written because they were new or changed. */
  written: string[];
  /** Files whose contents were already right; left untouched so their time stamps stay (incremental builds). */
  unchanged: string[];
  /** Files the old manifest listed that the new set lacks, removed. */
  removed: string[];
  /** Files lasp had not written that `force` let it replace. */
  replacedUnowned: string[];
}

/** Writes `files` (relative path -> contents) under `dir` by the rules above. */
export async function writeOwnedFolder(
  dir: string,
  files: ReadonlyMap<string, string>,
  options: OwnedFolderOptions = {},
): Promise<OwnedFolderResult> {
  if (dir === "") throw new OutputFolderError("empty-path", dir, "the output path is empty");
  for (const name of files.keys()) {
    if (!isInside(name) || name === MANIFEST) throw new Error(`not a file name inside the folder: ${name}`);
  }
  try {
    const owned = await ownedFiles(dir, files, options.force ?? false);
    const result: OwnedFolderResult = { written: [], unchanged: [], removed: [], replacedUnowned: [] };
    // Claim every file about to be written before writing any, so that after a crash halfway the next
    // write still knows them as lasp's.
    const claimed = new Set([...owned, ...files.keys()]);
    if (claimed.size > owned.size) await writeManifest(dir, claimed);
    for (const name of [...files.keys()].sort()) {
      const target = path.join(dir, name);
      const contents = files.get(name)!;
      const mode = options.mode?.(name);
      await mkdir(path.dirname(target), { recursive: true });
      const current = await readOwn(target);
      if (current === contents) {
        if (mode !== undefined && ((await stat(target)).mode & 0o777) !== mode) await chmod(target, mode);
        result.unchanged.push(name);
        continue;
      }
      const present = (await lstat(target).catch(() => undefined)) !== undefined;
      if (present && !owned.has(name)) result.replacedUnowned.push(name);
      await writeFileAtomic(target, contents, {
        followLinks: false,
        ...(mode !== undefined ? { mode } : {}),
        ...(options.write !== undefined ? { write: options.write } : {}),
      });
      result.written.push(name);
    }
    for (const name of [...owned].filter((f) => !files.has(f)).sort()) {
      if (await removeFile(dir, name)) result.removed.push(name);
    }
    await writeManifest(dir, new Set(files.keys()));
    return result;
  } catch (error) {
    throw asFolderError(error, dir);
  }
}

/**
 * Removes what lasp wrote under `dir` (the files its manifest lists, the manifest, folders that leaves empty,
 * and `dir` itself when nothing else is in it). A folder without a manifest is left alone unless empty.
 */
export async function removeOwnedFiles(dir: string): Promise<string[]> {
  try {
    const manifest = await readManifest(dir);
    if (manifest === undefined) {
      if ((await readdir(dir).catch(() => [])).length > 0)
        throw new OutputFolderError("not-owned", dir, notOwnedMessage(dir));
    } else if (typeof manifest === "string") {
      throw new OutputFolderError("bad-manifest", dir, badManifestMessage(dir, manifest));
    }
    const removed: string[] = [];
    for (const name of [...(manifest ?? [])].sort()) if (await removeFile(dir, name)) removed.push(name);
    await unlink(path.join(dir, MANIFEST)).catch(() => undefined);
    await rmdir(dir).catch(() => undefined);
    return removed;
  } catch (error) {
    throw asFolderError(error, dir);
  }
}

/** The manifest's text for a set of files: what `writeOwnedFolder` leaves in the folder. */
export function manifestText(files: Iterable<string>): string {
  return [...MANIFEST_HEADER, ...[...files].sort()].join("\n") + "\n";
}

/** The files a manifest lists, or why it is not one lasp wrote. */
export function parseManifest(text: string): Set<string> | string {
  const files = new Set<string>();
  const lines = text.split("\n");
  for (const [i, raw] of lines.entries()) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "" || line.startsWith("#")) continue;
    if (!isInside(line) || line === MANIFEST)
      return `line ${i + 1} names \`${line}\`, not a file inside the folder`;
    files.add(line);
  }
  return files;
}

/** A relative path that stays inside its folder: no leading `/`, no `.`, `..` or empty parts. */
function isInside(name: string): boolean {
  if (name === "" || name.startsWith("/") || name.includes("\0")) return false;
  return name.split("/").every((part) => part !== "" && part !== "." && part !== "..");
}

/** The files lasp owns in `dir`, after refusing a folder it may not write into. Creates a missing folder. */
async function ownedFiles(
  dir: string,
  files: ReadonlyMap<string, string>,
  force: boolean,
): Promise<Set<string>> {
  const info = await stat(dir).catch((error: unknown) => {
    if (errorCode(error) === "ENOENT") return undefined;
    throw error;
  });
  if (info === undefined) {
    await mkdir(dir, { recursive: true }).catch(async (error: unknown) => {
      if (!isPermissionError(error)) throw error;
      const parent = await nearestExisting(dir);
      throw new OutputFolderError(
        "not-writable",
        parent,
        `${dir} cannot be created: ${describeAt(parent, error)}`,
      );
    });
    return new Set();
  }
  if (!info.isDirectory()) {
    throw new OutputFolderError("not-a-folder", dir, `${dir} is a file, not a folder`);
  }
  let owned = new Set<string>();
  const manifest = await readManifest(dir);
  if (typeof manifest === "string") {
    if (!force) throw new OutputFolderError("bad-manifest", dir, badManifestMessage(dir, manifest));
  } else if (manifest !== undefined) {
    owned = manifest;
  } else if (!force && (await readdir(dir)).length > 0) {
    throw new OutputFolderError("not-owned", dir, notOwnedMessage(dir));
  }
  try {
    await access(dir, constants.W_OK);
  } catch (error) {
    throw new OutputFolderError("not-writable", dir, describeAt(dir, error));
  }
  if (!force) {
    const unowned: string[] = [];
    for (const name of files.keys()) {
      if (!owned.has(name) && (await lstat(path.join(dir, name)).catch(() => undefined)) !== undefined)
        unowned.push(name);
    }
    if (unowned.length > 0) {
      throw new OutputFolderError(
        "unowned-files",
        dir,
        `${dir} holds ${unowned.length === 1 ? "a file" : "files"} lasp did not write where it would write: ${unowned.sort().join(", ")}`,
        unowned,
      );
    }
  }
  return owned;
}

function notOwnedMessage(dir: string): string {
  return `${dir} is not empty and has no ${MANIFEST}, so lasp did not write it`;
}

function badManifestMessage(dir: string, why: string): string {
  return `${path.join(dir, MANIFEST)} is not a manifest lasp wrote: ${why}`;
}

/** The manifest's files; undefined where there is none; a string saying why it is not a manifest. */
async function readManifest(dir: string): Promise<Set<string> | string | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dir, MANIFEST), "utf8");
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    if (errorCode(error) === "EISDIR") return "it is a folder";
    throw error;
  }
  return parseManifest(text);
}

/** A regular file's contents; undefined for anything else (missing, a folder, a link to a user's file). */
async function readOwn(file: string): Promise<string | undefined> {
  const info = await lstat(file).catch(() => undefined);
  return info?.isFile() ? readFile(file, "utf8") : undefined;
}

async function writeManifest(dir: string, files: ReadonlySet<string>): Promise<void> {
  const file = path.join(dir, MANIFEST);
  const text = manifestText(files);
  if ((await readOwn(file)) === text) return;
  await writeFileAtomic(file, text, { followLinks: false });
}

/** Removes a file lasp wrote (never a folder put in its place), then the folders that leaves empty. */
async function removeFile(dir: string, name: string): Promise<boolean> {
  const target = path.join(dir, name);
  const info = await lstat(target).catch(() => undefined);
  if (info === undefined || info.isDirectory()) return false;
  await unlink(target);
  const parts = name.split("/").slice(0, -1);
  for (let n = parts.length; n > 0; n--) {
    const removed = await rmdir(path.join(dir, ...parts.slice(0, n))).then(
      () => true,
      () => false,
    );
    if (!removed) break;
  }
  return true;
}

/** A file-system error as an OutputFolderError naming the path that failed; anything else unchanged. */
function asFolderError(error: unknown, dir: string): unknown {
  if (error instanceof OutputFolderError || errorCode(error) === undefined) return error;
  const where = errorPath(error) ?? dir;
  return new OutputFolderError(
    isPermissionError(error) ? "not-writable" : "io",
    where,
    describeAt(where, error),
  );
}

async function nearestExisting(dir: string): Promise<string> {
  let at = dir;
  while ((await stat(at).catch(() => undefined)) === undefined && path.dirname(at) !== at)
    at = path.dirname(at);
  return at;
}
