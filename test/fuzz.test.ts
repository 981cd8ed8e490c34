// The front end never throws, whatever it is given: token soup, mutated examples, random bytes, random
// unicode, and fixed nasty inputs (huge lines, deep nesting, numbers out of range, files cut short). When
// there is no resolved spec there is at least one diagnostic, every span lies inside the source and agrees
// with its line and column, and every diagnostic renders.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { laspLexer } from "../grammar/tokens.js";
import type { Span } from "../src/ast/span.js";
import { checkBytes, checkSource, type FrontEndResult } from "../src/check/front-end.js";
import {
  LAYER_KINDS,
  LINEAR_KEYS,
  MODEL_KEYS,
  PARALLEL_KEYS,
  RUN_KEYS,
  SOFTMAX_KEYS,
} from "../src/spec/schema.js";
import { hasErrors } from "../src/diagnostics/diagnostic.js";
import { renderDiagnostic, renderDiagnostics } from "../src/diagnostics/render.js";
import { decodeSpec } from "../src/syntax/decode.js";
import { positionAt } from "../src/syntax/position.js";
import { nameArb, stringValueArb } from "./arbitraries/spec.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const examples = readdirSync(join(root, "examples"))
  .filter((name) => name.endsWith(".lasp"))
  .sort()
  .map((name) => ({ name, source: readFileSync(join(root, "examples", name), "utf8") }));

/**
 * A huge input must be answered within this much CPU time (the 2-core CI included). CPU time of this worker
 * process, not wall time: the nvcc tests that run beside it on a loaded machine must not fail this one.
 */
const HUGE_INPUT_LIMIT_MS = 5000;
const TEN_MB = 10_000_000;

function expectSpanInside(span: Span, source: string, what: string): void {
  const { start, end } = span;
  expect(start.offset, what).toBeGreaterThanOrEqual(0);
  expect(end.offset, what).toBeGreaterThanOrEqual(start.offset);
  expect(end.offset, what).toBeLessThanOrEqual(source.length);
  expect(start.line, what).toBeGreaterThanOrEqual(1);
  expect(start.column, what).toBeGreaterThanOrEqual(1);
  // Lines and columns (in code points) agree with the offset (a lone `\r` is a line break to the lexer
  // but not to positionAt; see the CR case below).
  if (!/\r(?!\n)/.test(source)) {
    const at = positionAt(source, start.offset);
    expect({ line: start.line, column: start.column }, what).toEqual({ line: at.line, column: at.column });
  }
}

/** The front end's promises about any result. */
function expectSane(result: FrontEndResult): void {
  const { source, diagnostics } = result;
  if (result.spec === undefined) expect(diagnostics.length).toBeGreaterThan(0);
  else expect(hasErrors(diagnostics)).toBe(false);
  // Rendering one diagnostic reads its whole line: check the first few hundred, the rest are of a kind.
  for (const d of diagnostics.slice(0, 300)) {
    const what = `${d.code} ${d.message.slice(0, 200)}`;
    expect(d.message.length, what).toBeGreaterThan(0);
    // User text in messages and hints is always cut: a huge name never makes a huge message.
    expect(d.message.length, what).toBeLessThan(MAX_MESSAGE);
    expect(d.hint?.length ?? 0, what).toBeLessThan(MAX_MESSAGE);
    expectSpanInside(d.span, source, what);
    for (const note of d.related ?? []) expectSpanInside(note.span, source, `${what} (note)`);
    expect(renderDiagnostic(result.file, source, d, { color: false })).toContain(d.code);
  }
  // Diagnostics come in source order, whichever stage found them.
  const offsets = diagnostics.map((d) => d.span.start.offset);
  expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
  renderDiagnostics(result.file, source, diagnostics, { color: true });
  renderDiagnostics(result.file, source, diagnostics, { color: false });
}

/** Longer than any message or hint lasp writes, far shorter than the user text fuzzing feeds it. */
const MAX_MESSAGE = 600;

function checkText(source: string): FrontEndResult {
  const result = checkSource("fuzz.lasp", source);
  expectSane(result);
  return result;
}

// ---------------------------------------------------------------- token soup

const allKeys = [...MODEL_KEYS, ...LINEAR_KEYS, ...SOFTMAX_KEYS, ...PARALLEL_KEYS, ...RUN_KEYS].map(
  (k) => k.key,
);
const allWords = [...MODEL_KEYS, ...LINEAR_KEYS, ...SOFTMAX_KEYS, ...PARALLEL_KEYS, ...RUN_KEYS].flatMap(
  (k) => (k.rule.type === "enum" ? [...k.rule.words] : []),
);

const numberTextArb = fc.oneof(
  fc.integer().map(String),
  fc.nat({ max: 4096 }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.tuple(fc.nat({ max: 999 }), fc.constantFrom("K", "M", "G", "k")).map(([n, s]) => `${n}${s}`),
  fc.constantFrom(
    "512K",
    "1M",
    "0.99",
    "1e-5",
    "5e5",
    "-3",
    "1e400",
    "-1e400",
    "1e-400",
    "99999999999999999999",
    "1.2.3",
    "64KB",
    "0x10",
    "1e",
    "1.",
    ".5",
    "-",
  ),
);

const tokenArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom("model", "parallel", "run", "layer", "stack", "x") },
  {
    weight: 3,
    arbitrary: fc.constantFrom(...allKeys, ...allWords, ...LAYER_KINDS, "L", "S", "m", "true", "off"),
  },
  { weight: 1, arbitrary: nameArb },
  { weight: 3, arbitrary: numberTextArb },
  { weight: 5, arbitrary: fc.constantFrom("{", "}", "[", "]", ",", "=") },
  {
    weight: 1,
    arbitrary: fc.oneof(
      stringValueArb.map((s) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`),
      fc.constantFrom('"unterminated', '"\\"', '""', '"\\q"'),
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom("// comment\n", "/* block */", "/* unterminated", "//", "/*/") },
  {
    weight: 1,
    arbitrary: fc.constantFrom("@", ";", ":", "é", "\u2028", "\u0000", "\uFEFF", "\u{1F600}", "/"),
  },
);

const whitespaceArb = fc.constantFrom(" ", " ", " ", "", "\n", "  ", "\t", "\r\n", "\n\n");

const soupArb = fc
  .array(fc.tuple(tokenArb, whitespaceArb), { maxLength: 60 })
  .map((parts) => parts.map(([token, space]) => token + space).join(""));

/** An example's tokens (with comments), so mutations keep most of a real spec and reach the checker. */
const exampleTokens = examples.map(({ source }) => {
  const lexed = laspLexer.tokenize(source);
  return [...lexed.tokens, ...(lexed.groups["comments"] ?? [])]
    .sort((a, b) => a.startOffset - b.startOffset)
    .map((t) => t.image);
});

type Mutation =
  | { op: "delete"; at: number }
  | { op: "duplicate"; at: number }
  | { op: "insert"; at: number; token: string }
  | { op: "replace"; at: number; token: string }
  | { op: "swap"; at: number; with: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("delete" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("duplicate" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("insert" as const), at: fc.nat(), token: tokenArb }),
  fc.record({ op: fc.constant("replace" as const), at: fc.nat(), token: tokenArb }),
  fc.record({ op: fc.constant("swap" as const), at: fc.nat(), with: fc.nat() }),
);

const mutatedExampleArb = fc
  .tuple(
    fc.nat({ max: exampleTokens.length - 1 }),
    fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
    whitespaceArb,
  )
  .map(([which, mutations, space]) => {
    const tokens = [...exampleTokens[which]!];
    for (const m of mutations) {
      const at = m.at % Math.max(1, tokens.length);
      if (m.op === "delete") tokens.splice(at, 1);
      else if (m.op === "duplicate" && tokens[at] !== undefined) tokens.splice(at, 0, tokens[at]!);
      else if (m.op === "insert") tokens.splice(at, 0, m.token);
      else if (m.op === "replace") tokens[at] = m.token;
      else if (m.op === "swap" && tokens.length > 0) {
        const other = m.with % tokens.length;
        [tokens[at], tokens[other]] = [tokens[other]!, tokens[at]!];
      }
    }
    // Line comments need their line break to stay comments of one line.
    return tokens.map((t) => (t.startsWith("//") ? `${t}\n` : t)).join(space === "" ? " " : space);
  });

describe("fuzz", () => {
  it("token soup never throws and always explains itself", () => {
    fc.assert(
      fc.property(soupArb, (source) => {
        checkText(source);
      }),
      { numRuns: 200 },
    );
  });

  it("a string with a control character before a block is explained, the character shown escaped", () => {
    // Found by the property below (seed -374623865): the character was the message separator.
    const result = checkText('"\u0001" model m { }');
    expect(result.diagnostics.length).toBeGreaterThan(0);
    const text = result.diagnostics.map((d) => d.message).join("\n");
    expect(text).toContain("\\u0001");
    expect(text).not.toContain("\u0001");
  });

  it("mutated examples never throw and always explain themselves", () => {
    fc.assert(
      fc.property(mutatedExampleArb, (source) => {
        checkText(source);
      }),
      { numRuns: 200 },
    );
  });

  it("random bytes never throw", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 512 }),
          // Mostly printable ASCII, so the decoder lets it through to the lexer.
          fc
            .array(fc.oneof(fc.integer({ min: 9, max: 13 }), fc.integer({ min: 32, max: 126 })), {
              maxLength: 512,
            })
            .map((codes) => new Uint8Array(codes)),
        ),
        (bytes) => {
          expectSane(checkBytes("fuzz.lasp", bytes));
        },
      ),
      { numRuns: 100 },
    );
  });

  it("bytes are refused exactly when they are not UTF-8 or hold a NUL, at the bad byte's line", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }),
          fc.string({ unit: "binary", maxLength: 40 }).map((s) => new TextEncoder().encode(s)),
          fc
            .tuple(
              fc.string({ unit: "binary", maxLength: 30 }),
              fc.uint8Array({ minLength: 1, maxLength: 3 }),
            )
            .map(([s, tail]) => new Uint8Array([...new TextEncoder().encode(s), ...tail])),
        ),
        (bytes) => {
          let valid = !bytes.includes(0);
          try {
            new TextDecoder("utf-8", { fatal: true }).decode(bytes);
          } catch {
            valid = false;
          }
          const decoded = decodeSpec(bytes);
          expect(decoded.ok).toBe(valid);
          if (!decoded.ok) {
            const { start } = decoded.diagnostic.span;
            expect(positionAt(decoded.text, start.offset)).toEqual(start);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("random unicode text never throws", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: "binary", maxLength: 300 }),
          fc.string({ unit: "grapheme", maxLength: 300 }),
        ),
        (source) => {
          checkText(source);
        },
      ),
      { numRuns: 100 },
    );
  });
});

// ---------------------------------------------------------------- fixed edge cases

const codes = (result: FrontEndResult): string[] => result.diagnostics.map((d) => d.code);

const VALID_MODEL_START = "model m {\n  vocab 512\n  hidden 256\n  ffn 512\n  heads 4\n";
const validWithStack = (stack: string): string =>
  `${VALID_MODEL_START}  layer L = linear_attention { }\n  stack ${stack}\n}\nrun {\n  seq_len 1K\n}\n`;

describe("edge cases", () => {
  it.each([
    ["an empty file", ""],
    ["only white space", "  \n\t\r\n   \n"],
    ["only comments", "// one\n/* two\n three */\n// four"],
    ["a comment without a final line break", "// only"],
  ])("%s is an empty spec", (_, source) => {
    expect(codes(checkText(source))).toEqual(["E0204"]);
  });

  it("a byte order mark alone is an empty spec", () => {
    const result = checkBytes("bom.lasp", new Uint8Array([0xef, 0xbb, 0xbf]));
    expectSane(result);
    expect(codes(result)).toEqual(["E0204"]);
  });

  it("bytes that are not UTF-8 or hold a NUL give one diagnostic", () => {
    for (const bytes of [[0xff, 0xfe, 0x6d, 0x00], [0x6d, 0x6f, 0xc3], [0x80]]) {
      const result = checkBytes("bin.lasp", new Uint8Array(bytes));
      expectSane(result);
      expect(codes(result)).toEqual(["E0105"]);
    }
  });

  it("old Mac line endings (a lone \\r) still check and render", () => {
    const source = "model m {\r  vocab 512\r  hidden 256;\r}\r";
    const result = checkText(source);
    expect(codes(result)).toEqual(["E0101"]);
  });

  describe("files cut short: every prefix of every example", () => {
    it.each(examples)("$name", ({ source }) => {
      const lexed = laspLexer.tokenize(source);
      const ends = [...lexed.tokens, ...(lexed.groups["comments"] ?? [])].map((t) => t.endOffset! + 1);
      for (const end of ends) {
        const prefix = source.slice(0, end);
        const result = checkText(prefix);
        const tokens = laspLexer.tokenize(prefix).tokens;
        const depth = tokens.filter((t) => t.image === "{" || t.image === "[").length;
        const closed = tokens.filter((t) => t.image === "}" || t.image === "]").length;
        if (depth > closed) expect(codes(result), prefix).toContain("E0202");
      }
    });
  });

  it.each([1, 2, 3, 4, 5])("a spec unterminated at depth %i says which bracket is open", (depth) => {
    const opened = ["model m {", " layer L = linear_attention {", " decay [", "[", "["].slice(0, depth);
    const result = checkText(opened.join(""));
    expect(codes(result)).toContain("E0202");
  });

  it.each([
    ["1e400", "E0104"],
    ["-1e400", "E0104"],
    ["1e400K", "E0104"],
    ["99999999999999999999", "E0402"],
    ["1e-400", "E0402"],
    ["-5", "E0402"],
  ])("seq_len %s is reported as %s", (literal, code) => {
    const result = checkText(
      `${VALID_MODEL_START}  layer L = linear_attention { }\n  stack L\n}\nrun {\n  seq_len ${literal}\n}\n`,
    );
    expect(codes(result)).toEqual([code]);
  });

  it.each([1, 10, 100])("a stack nested %i deep checks", (depth) => {
    const result = checkText(validWithStack(`${"[".repeat(depth)}L${"]".repeat(depth)} x 2`));
    expect(result.spec?.model.layers.length).toBe(2);
  });

  it.each([1000, 10_000, 100_000])("a stack nested %i deep is too deep, not a crash", (depth) => {
    expect(codes(checkText(validWithStack(`${"[".repeat(depth)}L${"]".repeat(depth)}`)))).toEqual(["E0205"]);
  });

  it.each([1000, 10_000, 100_000])("a list nested %i deep is too deep, not a crash", (depth) => {
    const result = checkText(`${VALID_MODEL_START}  vocab ${"[".repeat(depth)}1${"]".repeat(depth)}\n}`);
    expect(codes(result)).toEqual(["E0205"]);
  });

  it("an unclosed list nested 100000 deep is too deep, not a crash", () => {
    expect(codes(checkText(`${VALID_MODEL_START}  vocab ${"[".repeat(100_000)}`))).toEqual(["E0205"]);
  });

  it("a stack of 10000 layers checks, one more is out of range", () => {
    expect(checkText(validWithStack("[L x 100] x 100")).spec?.model.layers.length).toBe(10_000);
    expect(codes(checkText(validWithStack("[L x 100] x 100, L")))).toEqual(["E0402"]);
    expect(codes(checkText(validWithStack("[[L x 10000] x 10000] x 10000")))).toEqual(["E0402"]);
  });
});

// ---------------------------------------------------------------- huge inputs

const timings: string[] = [];

afterAll(() => {
  if (timings.length > 0) console.info(`front-end timings on huge inputs:\n${timings.join("\n")}`);
});

function checkHuge(name: string, source: string): FrontEndResult {
  const started = performance.now();
  const cpu = process.cpuUsage();
  const result = checkSource("huge.lasp", source);
  const checked = performance.now();
  const rendered = renderDiagnostics("huge.lasp", source, result.diagnostics, { color: false });
  const used = process.cpuUsage(cpu);
  const elapsed = (used.user + used.system) / 1000;
  timings.push(
    `  ${name.padEnd(40)} check ${(checked - started).toFixed(0).padStart(6)} ms, render ${(performance.now() - checked).toFixed(0).padStart(4)} ms, CPU ${elapsed.toFixed(0).padStart(6)} ms, ${result.diagnostics.length} diagnostics`,
  );
  expect(result.diagnostics.length).toBeGreaterThan(0);
  expect(elapsed, `${name} took ${elapsed.toFixed(0)} ms of CPU time`).toBeLessThan(HUGE_INPUT_LIMIT_MS);
  // What is shown of a huge line is a window around the span, never the line itself.
  for (const line of rendered.split("\n")) expect(line.length, `${name}: a rendered line`).toBeLessThan(400);
  expectSane(result);
  return result;
}

/** Huge inputs: a name for the table, the text (built lazily), the codes expected (undefined: any). */
const ONE_MB = 1_000_000; // just under the 1 MiB limit on specs (MAX_SPEC_CHARS)
const HUGE: [string, () => string, string[] | undefined][] = [
  // Over the limit: one diagnostic, at once.
  ["10 MB name", () => "x".repeat(TEN_MB), ["E0106"]],
  ["10 MB run of @", () => "@".repeat(TEN_MB), ["E0106"]],
  ["10 MB unterminated string", () => `"${"a".repeat(TEN_MB)}`, ["E0106"]],
  ["10 MB of settings", () => `run { ${"seq_len 1K ".repeat(TEN_MB / 11)} }`, ["E0106"]],
  // Under it: the whole front end runs.
  ["1 MB name", () => "x".repeat(ONE_MB), ["E0201"]],
  ["1 MB run of @", () => "@".repeat(ONE_MB), ["E0101"]],
  ["1 MB number at top level", () => "1".repeat(ONE_MB), ["E0201"]],
  ["1 MB number as seq_len", () => `run { seq_len ${"1".repeat(ONE_MB)} }`, ["E0104"]],
  ["1 MB line comment", () => `// ${"a".repeat(ONE_MB)}`, ["E0204"]],
  ["1 MB unterminated block comment", () => `/* ${"a".repeat(ONE_MB)}`, ["E0103"]],
  ["1 MB unterminated string", () => `"${"a".repeat(ONE_MB)}`, ["E0102"]],
  ["1 MB string as data", () => `run { data "${"a".repeat(ONE_MB)}" }`, undefined],
  ["1 MB key", () => `${VALID_MODEL_START}  ${"k".repeat(ONE_MB)} 1\n}`, undefined],
  // 1 MB of tokens: hundreds of thousands of them.
  ["1 MB of [", () => "[".repeat(ONE_MB), ["E0205"]],
  ["1 MB of }", () => "}".repeat(ONE_MB), undefined],
  ["1 MB of `@ `", () => "@ ".repeat(ONE_MB / 2), undefined],
  ["1 MB of `a=`", () => "a=".repeat(ONE_MB / 2), undefined],
  ["1 MB of settings", () => `run { ${"seq_len 1K ".repeat(ONE_MB / 11)} }`, undefined],
];

describe("huge inputs answer within a few seconds", () => {
  it.each(HUGE)("%s", (name, make, expected) => {
    const result = checkHuge(name, make());
    if (expected !== undefined) expect(codes(result)).toEqual(expected);
  });
});
