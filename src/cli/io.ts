// Where the CLI writes, injectable so tests can capture output and decide whether colours are on.

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Colours on stderr: only on a terminal and never when NO_COLOR is set. */
  color: boolean;
}

export function processIo(): CliIo {
  const noColor = process.env["NO_COLOR"] !== undefined && process.env["NO_COLOR"] !== "";
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    color: Boolean(process.stderr.isTTY) && !noColor,
  };
}

/** Exit codes, the same for every command. */
export const EXIT = { ok: 0, specErrors: 1, usage: 2 } as const;
