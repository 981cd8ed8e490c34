// One golden case per diagnostic code: `cases/CODE.lasp` (or `cases/CODE.bin`, read as bytes, or
// `cases/CODE.lasp.gz`, for a case too large to commit as it is) shows the
// error, `cases/CODE.golden.txt` holds what a user sees. Extra cases for one code are named
// `CODE-what.lasp`. Update the goldens with `npx vitest run test/diagnostics -u` and read the diff.
import { readdirSync, readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { checkBytes, checkSource, type FrontEndResult } from "../../src/check/front-end.js";
import { catalogue } from "../../src/diagnostics/catalogue.js";
import { hasErrors } from "../../src/diagnostics/diagnostic.js";
import { renderDiagnostics } from "../../src/diagnostics/render.js";

const casesDir = join(dirname(fileURLToPath(import.meta.url)), "cases");

interface Case {
  /** The case file name, e.g. `E0303.lasp`, shown as the file in the rendered output. */
  file: string;
  /** The code the case is about: the file name up to the first `-` or `.`. */
  code: string;
  golden: string;
}

const cases: Case[] = readdirSync(casesDir)
  .filter((name) => name.endsWith(".lasp") || name.endsWith(".bin") || name.endsWith(".lasp.gz"))
  .sort()
  .map((file) => {
    const stem = file.replace(/\.(lasp|bin|lasp\.gz)$/, "");
    return { file, code: stem.split("-")[0]!, golden: `cases/${stem}.golden.txt` };
  });

function runCase(c: Case): FrontEndResult {
  const path = join(casesDir, c.file);
  if (c.file.endsWith(".bin")) return checkBytes(c.file, new Uint8Array(readFileSync(path)));
  if (c.file.endsWith(".gz")) return checkSource(c.file, gunzipSync(readFileSync(path)).toString("utf8"));
  return checkSource(c.file, readFileSync(path, "utf8"));
}

/** What `lasp check` shows for the case, and the exit code it gives. */
function render(result: FrontEndResult): string {
  const text = renderDiagnostics(result.file, result.source, result.diagnostics, { color: false });
  const exit = hasErrors(result.diagnostics) ? 1 : 0;
  return `${text}\n\nexit code ${exit}\n`;
}

describe("diagnostic goldens", () => {
  it("has cases", () => {
    expect(cases.length).toBeGreaterThan(0);
  });

  it.each(cases)("$file", async (c) => {
    const result = runCase(c);
    const codes = result.diagnostics.map((d) => d.code);
    expect(codes).toContain(c.code);
    // Each case shows exactly its own problem: one cause, no cascade.
    expect(new Set(codes)).toEqual(new Set([c.code]));
    await expect(render(result)).toMatchFileSnapshot(c.golden);
  });

  it("every code in the catalogue has a case", () => {
    // Codes only compile and run report (settings the generated program ignores) have their goldens in
    // generator-cases/ (not-generated.test.ts).
    const generator = readdirSync(join(dirname(casesDir), "generator-cases")).map((f) => f.split(/[-.]/)[0]!);
    const covered = new Set([...cases.map((c) => c.code), ...generator]);
    const missing = catalogue()
      .map((entry) => entry.code)
      .filter((code) => !covered.has(code));
    expect(missing).toEqual([]);
  });

  it("every case is named after a code in the catalogue", () => {
    const known = new Set(catalogue().map((entry) => entry.code));
    expect(cases.map((c) => c.code).filter((code) => !known.has(code))).toEqual([]);
  });

  it("every golden file belongs to a case", () => {
    const goldens = readdirSync(casesDir).filter((name) => name.endsWith(".golden.txt"));
    const expected = new Set(cases.map((c) => c.golden.slice("cases/".length)));
    expect(goldens.filter((name) => !expected.has(name))).toEqual([]);
  });
});
