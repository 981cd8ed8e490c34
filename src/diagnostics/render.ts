// Renders diagnostics the way compilers users know do:
//   spec.lasp:3:3: error[E0303]: unknown key `hiden` in the `model` block
//      3 |   hiden 2048
//        |   ^^^^^
//        = hint: did you mean `hidden`?
// Long lines are cut to a window around the span so a 10 MB line still prints one short line.
import type { Diagnostic } from "./diagnostic.js";

export interface RenderOptions {
  color: boolean;
  /** Stop after this many errors and say how many more there were. */
  maxErrors?: number;
}

const WINDOW = 100;

const paint = (on: boolean, code: string, text: string): string =>
  on ? `\u001b[${code}m${text}\u001b[0m` : text;

/** The text of 1-based line `line`, without its line break. */
function lineText(source: string, lineStartOffset: number): string {
  let end = source.indexOf("\n", lineStartOffset);
  if (end === -1) end = source.length;
  let text = source.slice(lineStartOffset, end);
  if (text.endsWith("\r")) text = text.slice(0, -1);
  return text;
}

/** Shows only printable characters so a caret lines up and binary junk cannot upset the terminal. */
function printable(text: string): string {
  return text.replace(/[\t]/g, " ").replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
}

function excerpt(source: string, d: Diagnostic, color: boolean): string[] {
  const { start, end } = d.span;
  const lineStart = start.offset - (start.column - 1);
  const full = lineText(source, lineStart);
  const from = start.column - 1;
  const to = Math.max(
    from + 1,
    Math.min(full.length, start.line === end.line ? end.column - 1 : full.length),
  );
  // Cut a window around the span when the line is long.
  let windowStart = 0;
  let windowEnd = full.length;
  if (full.length > WINDOW) {
    windowStart = Math.max(0, from - 30);
    windowEnd = Math.min(full.length, windowStart + WINDOW);
  }
  const prefix = windowStart > 0 ? "…" : "";
  const suffix = windowEnd < full.length ? "…" : "";
  const shown = prefix + printable(full.slice(windowStart, windowEnd)) + suffix;
  const caretStart = prefix.length + (from - windowStart);
  const caretLength = Math.max(1, Math.min(to, windowEnd) - from);
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
