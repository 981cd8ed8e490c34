// A program's stdout line as a JSON object, or undefined: the first step of reading the events of the generated
// program (launch.ts) and of lasp calibrate's microbenchmarks (src/calibrate/measurements.ts).

/** The line's JSON object, or undefined for anything else (plain text, an array, broken JSON). */
export function jsonObjectLine(line: string): Record<string, unknown> | undefined {
  const text = line.trim();
  if (!text.startsWith("{")) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  return value as Record<string, unknown>;
}
