// The front end as one call: bytes or text of a spec to a resolved spec, or diagnostics.
import { readFile } from "node:fs/promises";
import type { SpecFile } from "../ast/ast.js";
import type { Diagnostic } from "../diagnostics/diagnostic.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { decodeSpec } from "../syntax/decode.js";
import { parseSpec } from "../syntax/parse.js";
import { checkSpec } from "./check.js";

export interface FrontEndResult {
  file: string;
  source: string;
  ast?: SpecFile;
  spec?: ResolvedSpec;
  diagnostics: Diagnostic[];
}

export function checkSource(file: string, source: string): FrontEndResult {
  const parsed = parseSpec(source);
  if (!parsed.ast) return { file, source, diagnostics: parsed.diagnostics };
  const checked = checkSpec(parsed.ast, file);
  const result: FrontEndResult = { file, source, ast: parsed.ast, diagnostics: checked.diagnostics };
  if (checked.spec) result.spec = checked.spec;
  return result;
}

export function checkBytes(file: string, bytes: Uint8Array): FrontEndResult {
  const decoded = decodeSpec(bytes);
  if (!decoded.ok) return { file, source: decoded.text, diagnostics: [decoded.diagnostic] };
  return checkSource(file, decoded.text);
}

/** Reads and checks a spec file. Fails (rejects) only for I/O problems, which the CLI reports as usage errors. */
export async function checkFile(file: string): Promise<FrontEndResult> {
  return checkBytes(file, await readFile(file));
}
