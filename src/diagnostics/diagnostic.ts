// A diagnostic is data: a stable code, a span in one file, a message, an optional hint and related notes.
// Rendering (text with a caret, colours) is separate, in render.ts.
import type { Span } from "../ast/span.js";
import {
  MESSAGES,
  type DiagnosticCode,
  type MessageArgs,
  type MessageName,
  type Severity,
} from "./catalogue.js";

export type { Severity } from "./catalogue.js";

export interface RelatedNote {
  span: Span;
  message: string;
}

export interface Diagnostic {
  code: DiagnosticCode;
  severity: Severity;
  span: Span;
  message: string;
  hint?: string;
  related?: RelatedNote[];
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === "error");
}

/** Diagnostics in reading order: by position, then by code, so output is stable whatever pass found them. */
export function sortDiagnostics(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  return [...diagnostics].sort(
    (a, b) => a.span.start.offset - b.span.start.offset || a.code.localeCompare(b.code),
  );
}

/** Builds a diagnostic from a catalogue entry: the only way passes create one. */
export function diagnose<N extends MessageName>(
  name: N,
  span: Span,
  args: MessageArgs<N>,
  extra: { hint?: string; related?: RelatedNote[] } = {},
): Diagnostic {
  const entry = MESSAGES[name] as unknown as {
    code: string;
    severity: Severity;
    message: (...a: unknown[]) => string;
  };
  const diagnostic: Diagnostic = {
    code: entry.code,
    severity: entry.severity,
    span,
    message: entry.message(...(args as unknown[])),
  };
  if (extra.hint !== undefined) diagnostic.hint = extra.hint;
  if (extra.related !== undefined && extra.related.length > 0) diagnostic.related = extra.related;
  return diagnostic;
}
