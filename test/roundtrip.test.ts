// Printer and parser agree: a valid spec printed by printSpec parses back to the same AST (spans aside),
// checks without diagnostics, and prints the same text again. The examples go through the same loop.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { stripSpans, type SpecFile } from "../src/ast/ast.js";
import { checkSource } from "../src/check/front-end.js";
import { renderDiagnostics } from "../src/diagnostics/render.js";
import { printSpec } from "../src/format/print.js";
import { parseSpec } from "../src/syntax/parse.js";
import { validSpecArb } from "./arbitraries/spec.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const examplesDir = join(root, "examples");
const examples = readdirSync(examplesDir)
  .filter((name) => name.endsWith(".lasp"))
  .sort();

/** The diagnostics as a user would read them, so a failure shows the message rather than an object. */
function shown(file: string, source: string): string {
  const result = checkSource(file, source);
  return renderDiagnostics(file, source, result.diagnostics, { color: false });
}

function parseOrFail(file: string, source: string): SpecFile {
  const parsed = parseSpec(source);
  if (!parsed.ast) {
    throw new Error(
      `${file} does not parse:\n${renderDiagnostics(file, source, parsed.diagnostics, { color: false })}\n--- text:\n${source}`,
    );
  }
  return parsed.ast;
}

describe("printSpec on generated valid specs", () => {
  it("parses back to the same AST, checks clean, and prints the same text again", () => {
    fc.assert(
      fc.property(validSpecArb, (ast) => {
        const text = printSpec(ast);
        const reparsed = parseOrFail("generated.lasp", text);
        expect(stripSpans(reparsed)).toEqual(stripSpans(ast));
        const checked = checkSource("generated.lasp", text);
        expect(shown("generated.lasp", text), text).toBe("");
        expect(checked.spec).toBeDefined();
        expect(printSpec(reparsed)).toBe(text);
      }),
      // A failure shrinks in well under a second; the limit only guards against a shrinker that never ends.
      { numRuns: 200, interruptAfterTimeLimit: 30_000, markInterruptAsFailure: true },
    );
  });
});

describe("examples", () => {
  it("has examples", () => {
    expect(examples.length).toBeGreaterThan(0);
  });

  it.each(examples)("%s parses, prints and re-parses to the same AST, and checks clean", (name) => {
    const source = readFileSync(join(examplesDir, name), "utf8");
    expect(shown(name, source)).toBe("");
    expect(checkSource(name, source).spec).toBeDefined();

    const ast = parseOrFail(name, source);
    const printed = printSpec(ast);
    const reparsed = parseOrFail(`${name} (printed)`, printed);
    expect(stripSpans(reparsed)).toEqual(stripSpans(ast));
    expect(shown(name, printed)).toBe("");
    expect(printSpec(reparsed)).toBe(printed);
    // The printed form resolves to the same spec as the original.
    expect(checkSource(name, printed).spec).toEqual(checkSource(name, source).spec);
  });
});
