// Why a command could not write the one file it was told to (`inspect --svg FILE`), and what would work.
import { lstat, open, readlink, realpath, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { LASP_SVG } from "../inspect/svg.js";
import { describeWriteFailure, errorCode, isPermissionError } from "../io/write-error.js";

/** Words to follow "cannot write PATH: "; `example` is a file name to suggest (`timeline.svg`). */
export function outputFileProblem(path: string, error: unknown, example: string): string {
  if (path === "") return `the path is empty; name a file, e.g. ${example}`;
  if (errorCode(error) === "EISDIR")
    return `it is a folder, not a file; name a file, e.g. ${join(path, example)}`;
  const why = describeWriteFailure(path, error);
  return isPermissionError(error) ? `${why}; name a place you can write to` : why;
}

/**
 * Why `--svg FILE` may not replace `file`; undefined where it may: nothing is there, or a picture lasp wrote
 * (LASP_SVG), or `force`. The spec being read is refused even with `force`: it is the input, not a picture.
 * A folder or a missing folder is left to the write to report. `example` is a file name to suggest.
 */
export async function whyNotOurSvg(
  file: string,
  spec: string,
  force: boolean,
  example: string,
): Promise<string | undefined> {
  if (file === "") return undefined;
  if (await sameFile(file, spec))
    return `it is the spec being read (--force does not change that); name another file, e.g. ${example}`;
  if (force) return undefined;
  let head: string;
  try {
    const info = await stat(file);
    if (info.isDirectory()) return undefined;
    if (!info.isFile()) return notOurs("it is not a regular file");
    // The root element is at the top; a few kilobytes hold it whatever the picture's size.
    const handle = await open(file, "r");
    try {
      const bytes = Buffer.alloc(4096);
      const { bytesRead } = await handle.read(bytes, 0, bytes.length, 0);
      head = bytes.subarray(0, bytesRead).toString("utf8");
    } finally {
      await handle.close();
    }
  } catch (error) {
    const code = errorCode(error);
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    return notOurs(
      `it cannot be read (${isPermissionError(error) ? "permission denied" : (code ?? "error")})`,
    );
  }
  return LASP_SVG.test(head) ? undefined : notOurs("it is not a picture lasp wrote");
}

function notOurs(why: string): string {
  return `${why}; name another file, or add --force to replace it`;
}

/**
 * Whether paths `a` and `b` name one file however they are spelled (`d/t.bin`, `./d/t.bin`, an absolute
 * path, a symbolic link, a hard link): the same device and inode where both exist, else the same path once
 * links are followed as far as they go.
 */
export async function sameFile(a: string, b: string): Promise<boolean> {
  const [first, second] = await Promise.all([stat(a).catch(() => undefined), stat(b).catch(() => undefined)]);
  if (first !== undefined && second !== undefined)
    return first.dev === second.dev && first.ino === second.ino;
  return (await canonicalPath(a)) === (await canonicalPath(b));
}

/**
 * The absolute path `file` stands for, links followed: realpath where it exists; for a name not there yet,
 * its folder's canonical path and its name, and a dangling link's target (writing through it creates that).
 */
async function canonicalPath(file: string, hops = 0): Promise<string> {
  const absolute = resolve(file);
  try {
    return await realpath(absolute);
  } catch {
    // Fall through: the file (or a folder above it) is not there yet.
  }
  const parent = dirname(absolute);
  if (parent === absolute) return absolute;
  const info = await lstat(absolute).catch(() => undefined);
  // A loop of links never resolves: 40 hops, as Linux allows, and then the path as it is.
  if (info?.isSymbolicLink() && hops < 40) {
    const target = await readlink(absolute).catch(() => undefined);
    if (target !== undefined) return canonicalPath(resolve(parent, target), hops + 1);
  }
  return join(await canonicalPath(parent, hops), basename(absolute));
}
