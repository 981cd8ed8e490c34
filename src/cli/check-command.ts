// `lasp check <files...>`: checks specs and prints `ok` per file or the diagnostics.
import { checkFile, type FrontEndResult } from "../check/front-end.js";
import { notGenerated, type NotGeneratedOptions } from "../codegen/not-generated.js";
import { memoryNotes } from "../cost/memory-notes.js";
import { numericsNotes } from "../model/numerics-notes.js";
import { unverifiedNotes } from "../codegen/unverified-notes.js";
import { diagnose, hasErrors, sortDiagnostics } from "../diagnostics/diagnostic.js";
import { renderDiagnostics } from "../diagnostics/render.js";
import { describeReadError, errorCode } from "../io/write-error.js";
import { EXIT, type CliIo } from "./io.js";

/**
 * Reads and checks one file; an unreadable file is a usage error, reported here. Settings written `auto` are
 * resolved here, once for every command, by the planner (src/plan/auto.ts and recompute-auto.ts, loaded only
 * then).
 */
export async function loadSpec(file: string, io: CliIo): Promise<FrontEndResult | undefined> {
  let result: FrontEndResult;
  try {
    result = await checkFile(file);
  } catch (error) {
    io.stderr(`lasp: cannot read ${file}: ${describeIoError(error)}\n`);
    return undefined;
  }
  if (result.spec?.parallel.auto !== undefined && result.ast !== undefined) {
    const { AutoUnresolved, resolveAuto } = await import("../plan/auto.js");
    try {
      result.spec = resolveAuto(result.ast, file, result.spec);
    } catch (error) {
      if (!(error instanceof AutoUnresolved)) throw error;
      // `sequence auto` with no split that checks clean: an error at the setting, as the checker's are.
      const at = result.ast.blocks
        .flatMap((b) => (b.kind === "parallel" ? b.settings : []))
        .find((s) => s.key.name === "sequence")!.span;
      const { spec: _, ...rest } = result;
      return {
        ...rest,
        diagnostics: sortDiagnostics([
          ...result.diagnostics,
          diagnose("sequenceAuto", at, [error.message], {
            hint: "set `sequence` and `data` yourself, or change what the refusal names",
          }),
        ]),
      };
    }
  }
  // `recompute auto` after the parallel keys: how the sequence is split decides the memory per GPU.
  if (result.spec?.run.recomputeAuto !== undefined) {
    const { resolveRecomputeAuto } = await import("../plan/recompute-auto.js");
    result.spec = resolveRecomputeAuto(result.spec);
  }
  return result;
}

/** Why a spec file cannot be read, as words that can follow "cannot read PATH: ". */
export function describeIoError(error: unknown): string {
  return errorCode(error) === "EISDIR" ? "it is a folder, not a spec file" : describeReadError(error);
}

/**
 * Adds, to a spec that checks clean, what the generated program would ignore (warnings) or, with `refuse`,
 * cannot do yet (errors): check, compile and run say it at the setting's position.
 */
export function withGeneratorNotes(
  result: FrontEndResult,
  options: NotGeneratedOptions = {},
): FrontEndResult {
  if (result.ast === undefined || result.spec === undefined) return result;
  const notes = [
    ...notGenerated(result.ast, options, result.spec),
    ...memoryNotes(result.ast, result.spec, options),
    ...numericsNotes(result.ast, result.spec),
    ...unverifiedNotes(result.ast, result.spec),
  ];
  if (notes.length === 0) return result;
  const diagnostics = sortDiagnostics([...result.diagnostics, ...notes]);
  return hasErrors(notes)
    ? { file: result.file, source: result.source, ast: result.ast, diagnostics }
    : { ...result, diagnostics };
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
    const loaded = await loadSpec(file, io);
    if (loaded === undefined) {
      exit = EXIT.usage;
      continue;
    }
    const result = withGeneratorNotes(loaded);
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
