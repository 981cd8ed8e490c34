// What a failed write (or read) means to a user, in words: the file system's error codes say "EROFS" or
// "EACCES" where a user needs "not writable". Shared by every command that writes or reads a user's file.
import { resolve } from "node:path";

/** The error code of a Node file-system error, or undefined for anything else. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Why a read failed, as words that can follow "cannot read PATH: ". */
export function describeReadError(error: unknown): string {
  switch (errorCode(error)) {
    case "ENOENT":
      return "no such file";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "ENOTDIR":
      return "a part of the path is a file, not a folder";
    case "EISDIR":
      return "it is a folder, not a file";
    default:
      return (error as Error).message;
  }
}

/** Why a write failed, as words that can follow "cannot write PATH: ". */
export function describeWriteError(error: unknown): string {
  switch (errorCode(error)) {
    case "EACCES":
    case "EPERM":
      return "not writable (permission denied)";
    case "EROFS":
      return "not writable (read-only file system)";
    case "ENOSPC":
      return "no space left on the device";
    case "EDQUOT":
      return "the disk quota is used up";
    case "ENOTDIR":
      return "a part of the path is a file, not a folder";
    case "EISDIR":
      return "it is a folder, not a file";
    case "ENOENT":
      return "its folder does not exist";
    case "EBUSY":
      return "busy (a mount point, or in use by another program)";
    case "ENAMETOOLONG":
      return "the name is too long";
    default:
      return (error as Error).message;
  }
}

/** Why writing `target` failed, naming the folder where the folder is what refused (no room for a temporary). */
export function describeWriteFailure(target: string, error: unknown): string {
  const where = errorPath(error);
  if (where === undefined || resolve(where) === resolve(target)) return describeWriteError(error);
  return describeAt(where, error);
}

/** "PATH is not writable (...)" or "PATH: no space left on the device". */
export function describeAt(where: string, error: unknown): string {
  return `${where}${isPermissionError(error) ? " is" : ":"} ${describeWriteError(error)}`;
}

export function isPermissionError(error: unknown): boolean {
  const code = errorCode(error);
  return code === "EACCES" || code === "EPERM" || code === "EROFS";
}

/** The path a file-system error names, if any. */
export function errorPath(error: unknown): string | undefined {
  const path = (error as NodeJS.ErrnoException | undefined)?.path;
  return typeof path === "string" ? path : undefined;
}

/** A file-system-style error, for refusals that should read like the system's own (EISDIR, EACCES). */
export function fsError(code: string, path: string, message: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${code}: ${message}, '${path}'`);
  error.code = code;
  error.path = path;
  return error;
}
