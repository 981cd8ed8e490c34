// Human units for sizes, FLOPs and times, and tables that fit the terminal: what inspect, verify and the
// progress of `lasp run` print.

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0
    ? `${value} B`
    : `${value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)} ${units[unit]}`;
}

export function formatFlops(flops: number): string {
  const units = ["FLOP", "kFLOP", "MFLOP", "GFLOP", "TFLOP", "PFLOP"];
  let value = flops;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value >= 100 || unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** Seconds with three significant digits and a unit: the one time format of text, JSON-derived text and SVG. */
export function formatTime(s: number): string {
  const [unit, name] =
    s >= 1 ? [1, "s"] : s >= 1e-3 ? [1e-3, "ms"] : s >= 1e-6 || s === 0 ? [1e-6, "µs"] : [1e-9, "ns"];
  const v = s / unit;
  return `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${name}`;
}

/** The widest text lasp prints: 100 columns, or fewer where `COLUMNS` or the terminal says so (40 at least). */
export const MAX_WIDTH = 100;

export function outputWidth(
  env: Record<string, string | undefined> = process.env,
  terminal: { isTTY?: boolean; columns?: number } = process.stdout,
): number {
  const fromEnv = Number(env["COLUMNS"]);
  const limits = [MAX_WIDTH];
  if (Number.isInteger(fromEnv) && fromEnv > 0) limits.push(fromEnv);
  if (terminal.isTTY && terminal.columns !== undefined && terminal.columns > 0) limits.push(terminal.columns);
  return Math.max(40, Math.min(...limits));
}

/**
 * Left-aligned text table with a header row and a rule under it. Given a `width`, cells of the widest columns
 * wrap at spaces (onto continuation lines of their row) until every line fits, or no column can narrow further.
 */
export function table(header: string[], rows: string[][], indent = "  ", width?: number): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  if (width !== undefined) narrow(widths, [header, ...rows], width - indent.length);
  const line = (cells: string[]): string =>
    indent +
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  const lines = (cells: string[]): string[] => {
    const wrapped = cells.map((c, i) => wrap(c, widths[i]!));
    const height = Math.max(...wrapped.map((w) => w.length));
    return Array.from({ length: height }, (_, k) => line(wrapped.map((w) => w[k] ?? "")));
  };
  return [
    ...lines(header),
    indent + widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.flatMap(lines),
  ].join("\n");
}

/** Narrows the widest wrappable column, one character at a time, until the columns fit `width`. */
function narrow(widths: number[], rows: string[][], width: number): void {
  // A column cannot get narrower than its longest word.
  const floor = widths.map((_, i) =>
    Math.max(1, ...rows.flatMap((r) => (r[i] ?? "").split(" ").map((word) => word.length))),
  );
  const total = (): number => widths.reduce((a, w) => a + w, 0) + 2 * (widths.length - 1);
  while (total() > width) {
    let widest = -1;
    widths.forEach((w, i) => {
      if (w > floor[i]! && (widest < 0 || w > widths[widest]!)) widest = i;
    });
    if (widest < 0) return;
    // Re-measure: wrapping at spaces may leave the column narrower than the target.
    const target = widths[widest]! - 1;
    widths[widest] = Math.max(
      ...rows.map((r) => Math.max(...wrap(r[widest] ?? "", target).map((l) => l.length))),
    );
  }
}

/** Splits `text` at spaces into lines of at most `width` characters (a longer word stays whole). */
export function wrap(text: string, width: number): string[] {
  if (text.length <= width) return [text];
  const lines: string[] = [];
  let current = "";
  for (const word of text.split(" ")) {
    if (current !== "" && current.length + 1 + word.length > width) {
      lines.push(current);
      current = word;
    } else current = current === "" ? word : `${current} ${word}`;
  }
  lines.push(current);
  return lines;
}
