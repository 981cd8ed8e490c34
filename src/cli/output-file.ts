// Why a command could not write the one file it was told to (`inspect --svg FILE`), and what would work.
import { join } from "node:path";
import { describeWriteFailure, errorCode, isPermissionError } from "../io/write-error.js";

/** Words to follow "cannot write PATH: "; `example` is a file name to suggest (`timeline.svg`). */
export function outputFileProblem(path: string, error: unknown, example: string): string {
  if (path === "") return `the path is empty; name a file, e.g. ${example}`;
  if (errorCode(error) === "EISDIR")
    return `it is a folder, not a file; name a file, e.g. ${join(path, example)}`;
  const why = describeWriteFailure(path, error);
  return isPermissionError(error) ? `${why}; name a place you can write to` : why;
}
