// `lasp check <files...>`: checks specs and prints `ok` per file or the diagnostics.
import { checkFile, type FrontEndResult } from "../check/front-end.js";
import { hasErrors } from "../diagnostics/diagnostic.js";
import { renderDiagnostics } from "../diagnostics/render.js";
import { EXIT, type CliIo } from "./io.js";

/** Reads and checks one file; an unreadable file is a usage error, reported here. */
export async function loadSpec(file: string, io: CliIo): Promise<FrontEndResult | undefined> {
  try {
    return await checkFile(file);
  } catch (error) {
    io.stderr(`lasp: cannot read ${file}: ${describeIoError(error)}\n`);
    return undefined;
  }
}

export function describeIoError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return "no such file";
  if (code === "EISDIR") return "it is a directory, not a spec file";
  if (code === "EACCES") return "permission denied";
  return (error as Error).message;
}

/** Prints a result's diagnostics; true when it has no errors. */
export function reportDiagnostics(result: FrontEndResult, io: CliIo): boolean {
  if (result.diagnostics.length > 0) {
    io.stderr(`${renderDiagnostics(result.file, result.source, result.diagnostics, { color: io.color })}\n`);
  }
  return !hasErrors(result.diagnostics);
}

export async function checkCommand(files: string[], io: CliIo): Promise<number> {
  let exit: number = EXIT.ok;
  for (const file of files) {
    const result = await loadSpec(file, io);
    if (result === undefined) {
      exit = EXIT.usage;
      continue;
    }
    const ok = reportDiagnostics(result, io);
    if (ok) {
      const warnings = result.diagnostics.length;
      io.stdout(`ok ${file}${warnings > 0 ? ` (${warnings} warning${warnings > 1 ? "s" : ""})` : ""}\n`);
    } else if (exit === EXIT.ok) {
      exit = EXIT.specErrors;
    }
  }
  return exit;
}
