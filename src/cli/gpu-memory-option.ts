// `--gpu-memory SIZE` for inspect and compile: the bytes of the GPU a report or a program is for.
import { parseMemorySize } from "../cost/memory.js";
import type { CliIo } from "./io.js";

/** The bytes `text` names (undefined without the flag), or a usage error (printed) when it names no size. */
export function gpuMemoryOption(text: string | undefined, io: CliIo): number | undefined | null {
  if (text === undefined) return undefined;
  const bytes = parseMemorySize(text);
  if (bytes !== undefined) return bytes;
  io.stderr(`lasp: --gpu-memory must be a size such as 80GB, 141GB or 96GiB, got ${JSON.stringify(text)}\n`);
  return null;
}
