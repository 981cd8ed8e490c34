// Writes a file so that readers see the old contents or the new, never a part: the contents go to a temporary
// file in the same folder, are flushed to the disk, and the temporary file is renamed over the target (a
// rename within one file system is atomic). A failure or a full disk leaves the old file and no temporary one.
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, link, lstat, open, realpath, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { errorCode, fsError } from "./write-error.js";

export interface AtomicWriteOptions {
  /** Permission bits (the umask applies). Default: an existing file keeps its mode; a new one gets 0o666. */
  mode?: number;
  /** Writes the contents into the open temporary file; tests inject a failing one to stand for a crash. */
  write?: (file: FileHandle, contents: string | Uint8Array) => Promise<void>;
  /**
   * Default true: a symbolic link is written through, so it stays a link (fmt on a linked spec). False
   * replaces the link itself, never the file it points to (a folder lasp owns, where a link is not lasp's).
   */
  followLinks?: boolean;
  /**
   * Only a new file: fails with EEXIST where one is there, also one made meanwhile (the temporary file is
   * hard-linked to the target, which no existing name survives, instead of renamed over it).
   */
  createOnly?: boolean;
}

/** Temporary files carry this in their names, so a leftover from a killed process is recognisable. */
export const TEMP_MARK = ".lasp-tmp-";

export async function writeFileAtomic(
  target: string,
  contents: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  if (target === "") throw fsError("ENOENT", target, "an empty path names no file");
  const follow = options.followLinks ?? true;
  const file = follow ? await followLink(target) : target;
  const found = await (follow ? stat : lstat)(file).catch((error: unknown) => {
    if (errorCode(error) === "ENOENT") return undefined;
    throw error;
  });
  const existing = found?.isSymbolicLink() ? undefined : found;
  if (existing?.isDirectory()) throw fsError("EISDIR", file, "a folder, not a file");
  if (options.createOnly === true && found !== undefined) throw fsError("EEXIST", file, "a file is there");
  // A rename replaces a read-only file as easily as any other; its permissions should still stop us.
  if (existing !== undefined) await access(file, constants.W_OK);

  const dir = path.dirname(file);
  // Short enough for any file system's name limit (255 bytes), however long the target's name.
  const temp = path.join(
    dir,
    `.${path.basename(file).slice(0, 64)}${TEMP_MARK}${process.pid}-${randomBytes(4).toString("hex")}`,
  );
  const mode = options.mode ?? (existing !== undefined ? existing.mode & 0o7777 : 0o666);
  let handle: FileHandle | undefined = await open(temp, "wx", mode).catch((error: unknown) => {
    // The temporary file is ours, not the user's: name the folder that refused it.
    throw fsError(errorCode(error) ?? "EIO", dir, (error as Error).message);
  });
  try {
    await (options.write ?? writeAll)(handle, contents);
    if (existing !== undefined) {
      // The umask narrowed the mode at open; an existing file keeps exactly its own, and its owner when we may.
      if (options.mode === undefined) await handle.chmod(existing.mode & 0o7777);
      await handle.chown(existing.uid, existing.gid).catch(() => undefined);
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    if (options.createOnly === true) {
      await link(temp, file);
      await unlink(temp);
    } else {
      await rename(temp, file);
    }
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await syncFolder(dir);
}

async function writeAll(file: FileHandle, contents: string | Uint8Array): Promise<void> {
  await file.writeFile(contents);
}

async function followLink(target: string): Promise<string> {
  try {
    return await realpath(target);
  } catch (error) {
    if (errorCode(error) === "ENOENT") return target;
    throw error;
  }
}

/** Flushes the folder's entry for the renamed file; some systems cannot open a folder, which costs nothing. */
async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, "r").catch(() => undefined);
  if (handle === undefined) return;
  await handle.sync().catch(() => undefined);
  await handle.close().catch(() => undefined);
}
