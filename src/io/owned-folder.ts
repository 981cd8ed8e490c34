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
  try {
    const { owned, missing } = await inspectFolder(dir, files.keys(), options.force ?? false);
    if (missing) {
      // The check found the nearest existing parent writable; this catch covers a change since.
      await mkdir(dir, { recursive: true }).catch(async (error: unknown) => {
        throw isPermissionError(error) ? cannotCreate(dir, await nearestExisting(dir), error) : error;
      });
    }
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
 * Why writeOwnedFolder would refuse to write files named `names` into `dir`, found without writing anything
 * (a missing folder is not created); undefined where it would write. The same rules as the write, so that a
 * command can refuse before work it would waste (`lasp run -o DIR`, a dry run); the write checks again.
 */
export async function checkOwnedFolder(
  dir: string,
  names: Iterable<string>,
  options: Pick<OwnedFolderOptions, "force"> = {},
): Promise<OutputFolderError | undefined> {
  try {
    await inspectFolder(dir, names, options.force ?? false);
    return undefined;
  } catch (error) {
    const refused = asFolderError(error, dir);
    if (refused instanceof OutputFolderError) return refused;
    throw refused;
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

/**
 * The rules of writing into `dir`, read-only (shared by writeOwnedFolder and checkOwnedFolder so they cannot
 * drift apart): throws the refusal, else returns the files lasp owns there and whether `dir` is still to be
 * created. `force` lets lasp into a folder it did not write (or whose manifest is bad) and over files it did
 * not write; never over a file where a folder is needed, nor into a folder it cannot write.
 */
async function inspectFolder(
  dir: string,
  names: Iterable<string>,
  force: boolean,
): Promise<{ owned: Set<string>; missing: boolean }> {
  if (dir === "") throw new OutputFolderError("empty-path", dir, "the output path is empty");
  const all = [...names];
  for (const name of all) {
    if (!isInside(name) || name === MANIFEST) throw new Error(`not a file name inside the folder: ${name}`);
  }
  const info = await stat(dir).catch((error: unknown) => {
    if (errorCode(error) === "ENOENT") return undefined;
    throw error;
  });
  if (info === undefined) {
    // mkdir would fail on a link to nothing with a misleading ENOENT.
    if ((await lstat(dir).catch(() => undefined)) !== undefined)
      throw new OutputFolderError("not-a-folder", dir, `${dir} is a link to nothing, not a folder`);
    const parent = await nearestExisting(dir);
    try {
      await access(parent, constants.W_OK);
    } catch (error) {
      throw isPermissionError(error) ? cannotCreate(dir, parent, error) : error;
    }
    return { owned: new Set(), missing: true };
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
  // A file (or a link to none) where a generated file needs a folder: even --force never replaces a file with
  // a folder, and mkdir would only say EEXIST.
  const blocking = await fileWhereFolderNeeded(dir, all);
  if (blocking !== undefined)
    throw new OutputFolderError("not-a-folder", blocking, `${blocking} is a file where a folder is needed`);
  if (!force) {
    const unowned: string[] = [];
    for (const name of all) {
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
  return { owned, missing: false };
}

function cannotCreate(dir: string, parent: string, error: unknown): OutputFolderError {
  return new OutputFolderError(
    "not-writable",
    parent,
    `${dir} cannot be created: ${describeAt(parent, error)}`,
  );
}

/** The first path inside `dir` that is there but not a folder where one of `names` needs a folder. */
async function fileWhereFolderNeeded(dir: string, names: Iterable<string>): Promise<string | undefined> {
  const folders = new Set<string>();
  for (const name of names) {
    const parts = name.split("/").slice(0, -1);
    for (let n = 1; n <= parts.length; n++) folders.add(parts.slice(0, n).join("/"));
  }
  for (const folder of [...folders].sort()) {
    const at = path.join(dir, folder);
    // stat follows a link to a folder, which mkdir accepts; lstat finds a link that leads nowhere.
    const info = (await stat(at).catch(() => undefined)) ?? (await lstat(at).catch(() => undefined));
    if (info !== undefined && !info.isDirectory()) return at;
  }
  return undefined;
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
