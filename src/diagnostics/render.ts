// Renders diagnostics the way compilers users know do:
//   spec.lasp:3:3: error[E0303]: unknown key `hiden` in the `model` block
//      3 |   hiden 2048
//        |   ^^^^^
//        = hint: did you mean `hidden`?
// Long lines are cut to a window around the span so a 10 MB line still prints one short line.
import type { Diagnostic } from "./diagnostic.js";
import { textWidth } from "./width.js";

export interface RenderOptions {
  color: boolean;
  /** Stop after this many errors and say how many more there were. */
  maxErrors?: number;
}

const WINDOW = 100;

const paint = (on: boolean, code: string, text: string): string =>
  on ? `\u001b[${code}m${text}\u001b[0m` : text;

/** Where the line holding `offset` starts (a lone `\r` ends a line too, as it does for the lexer). */
function lineStartOf(source: string, offset: number): number {
  const before = Math.min(offset, source.length) - 1;
  if (before < 0) return 0;
  return Math.max(source.lastIndexOf("\n", before), source.lastIndexOf("\r", before)) + 1;
}

/** The text of the line starting at `lineStartOffset`, without its line break. */
function lineText(source: string, lineStartOffset: number): string {
  const ends = [source.indexOf("\n", lineStartOffset), source.indexOf("\r", lineStartOffset)];
  const end = Math.min(...ends.map((e) => (e === -1 ? source.length : e)));
  return source.slice(lineStartOffset, end);
}

/**
 * Shows only printable characters so a caret lines up and binary junk cannot upset the terminal: control
 * and invisible format characters (U+200B, U+FEFF) become `?`, a tab one space.
 */
function printable(text: string): string {
  return text.replace(/[\t]/g, " ").replace(/[\u0000-\u001f\u007f-\u009f]|\p{Cf}/gu, "?");
}

/** Moves a cut off the second half of a surrogate pair, so no half character is printed. */
function snap(text: string, at: number): number {
  const unit = text.charCodeAt(at);
  return at > 0 && at < text.length && unit >= 0xdc00 && unit <= 0xdfff ? at - 1 : at;
}

function excerpt(source: string, d: Diagnostic, color: boolean): string[] {
  const { start, end } = d.span;
  const lineStart = lineStartOf(source, start.offset);
  const full = lineText(source, lineStart);
  // Offsets within the line, in UTF-16 units; what is printed is measured in terminal columns.
  const from = Math.min(start.offset - lineStart, full.length);
  const to = Math.max(from + 1, Math.min(full.length, end.offset - lineStart));
  // Cut a window around the span when the line is long.
  let windowStart = 0;
  let windowEnd = full.length;
  if (full.length > WINDOW) {
    windowStart = snap(full, Math.max(0, from - 30));
    windowEnd = snap(full, Math.min(full.length, windowStart + WINDOW));
  }
  const prefix = windowStart > 0 ? "…" : "";
  const suffix = windowEnd < full.length ? "…" : "";
  const shown = prefix + printable(full.slice(windowStart, windowEnd)) + suffix;
  const caretStart = prefix.length + textWidth(printable(full.slice(windowStart, from)));
  const caretLength = Math.max(1, textWidth(printable(full.slice(from, Math.min(to, windowEnd)))));
  const gutter = String(start.line);
  const pad = " ".repeat(gutter.length);
  const caretColor = d.severity === "error" ? "1;31" : "1;33";
  return [
    ` ${paint(color, "1;34", gutter)} ${paint(color, "1;34", "|")} ${shown}`,
    ` ${pad} ${paint(color, "1;34", "|")} ${" ".repeat(caretStart)}${paint(color, caretColor, "^".repeat(caretLength))}`,
  ];
}

export function renderDiagnostic(
  file: string,
  source: string,
  d: Diagnostic,
  options: RenderOptions,
): string {
  const { color } = options;
  const where = `${file}:${d.span.start.line}:${d.span.start.column}`;
  const label =
    d.severity === "error"
      ? paint(color, "1;31", `error[${d.code}]`)
      : paint(color, "1;33", `warning[${d.code}]`);
  const lines = [`${paint(color, "1", where)}: ${label}: ${paint(color, "1", d.message)}`];
  lines.push(...excerpt(source, d, color));
  const pad = " ".repeat(String(d.span.start.line).length);
  if (d.hint !== undefined) lines.push(` ${pad} ${paint(color, "1;34", "=")} hint: ${d.hint}`);
  for (const note of d.related ?? []) {
    lines.push(
      ` ${pad} ${paint(color, "1;34", "=")} note: ${note.message} (${file}:${note.span.start.line}:${note.span.start.column})`,
    );
  }
  return lines.join("\n");
}

export function renderDiagnostics(
  file: string,
  source: string,
  diagnostics: readonly Diagnostic[],
  options: RenderOptions,
): string {
  const max = options.maxErrors ?? 50;
  const shown = diagnostics.slice(0, max);
  const parts = shown.map((d) => renderDiagnostic(file, source, d, options));
  if (diagnostics.length > max) {
    parts.push(`${file}: ${diagnostics.length - max} more diagnostics not shown`);
  }
  return parts.join("\n\n");
}
