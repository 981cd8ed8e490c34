// A CliIo that captures what a command prints, for tests of the CLI.
import type { CliIo } from "./io.js";

export type CapturedIo = CliIo & { out: string; err: string };

export function captureIo(color = false): CapturedIo {
  const io: CapturedIo = {
    out: "",
    err: "",
    color,
    stdout: (text) => void (io.out += text),
    stderr: (text) => void (io.err += text),
  };
  return io;
}
