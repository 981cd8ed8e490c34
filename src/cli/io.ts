// Where the CLI writes, injectable so tests can capture output and decide whether colours are on.

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Colours on stderr: only on a terminal and never when NO_COLOR is set. */
  color: boolean;
}

/**
 * A reader that stops early (`lasp --help | head`) closes the pipe: the rest of the output has nowhere to
 * go, which is no error of ours. Exit quietly instead of throwing EPIPE with a stack trace.
 */
function quietOnClosedPipe(stream: NodeJS.WriteStream): void {
  if (stream.listenerCount("error") > 0) return;
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw error;
  });
}

export function processIo(): CliIo {
  quietOnClosedPipe(process.stdout);
  quietOnClosedPipe(process.stderr);
  const noColor = process.env["NO_COLOR"] !== undefined && process.env["NO_COLOR"] !== "";
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    color: Boolean(process.stderr.isTTY) && !noColor,
  };
}

/** Exit codes, the same for every command. */
export const EXIT = { ok: 0, specErrors: 1, usage: 2 } as const;
