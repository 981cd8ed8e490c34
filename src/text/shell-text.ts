// Shell text: words quoted for a POSIX shell and commands as lines a user can paste (the build's repro line,
// the launch lines of --dry-run and run.json, a command suggested in a message). Here, below every pass, so
// that init and inspect quote a path without loading the build's process tools.

const SAFE = /^[\w@%+=:,./-]+$/;

/** Quotes one word for a POSIX shell. */
export function shellQuote(word: string): string {
  if (word !== "" && SAFE.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A variable's value in a shell line; a `$PATH` inside stays a reference to the caller's PATH. */
function shellValue(value: string): string {
  return value
    .split("$PATH")
    .map((part) => (part === "" ? "" : shellQuote(part)))
    .join('"$PATH"');
}

/** Sets `$PATH` inside a BuildCommand's variable to the environment's PATH. */
export function expandPath(value: string, env: NodeJS.ProcessEnv): string {
  return value.split("$PATH").join(env["PATH"] ?? "");
}

/** `VAR=value file args...` as a shell line. */
export function formatCommand(
  file: string,
  args: readonly string[],
  env: Record<string, string> = {},
): string {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${shellValue(v)}`);
  return [...vars, shellQuote(file), ...args.map(shellQuote)].join(" ");
}
