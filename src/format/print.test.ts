import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { laspLexer, NumberLiteral } from "../../grammar/tokens.js";
import { stripSpans, type SpecFile, type Value } from "../ast/ast.js";
import { numberLiteralValue } from "../syntax/build-ast.js";
import { parseSpec } from "../syntax/parse.js";
import {
  ident,
  list,
  num,
  setting,
  str,
  stringValueArb,
  valueArb,
  word,
} from "../../test/arbitraries/spec.js";
import { printNumber, printSpec, printString, printValue } from "./print.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Parses `run { v VALUE }` and returns the value the parser built. */
function readBack(text: string): Value {
  const parsed = parseSpec(`run { v ${text} }`);
  const block = parsed.ast?.blocks[0];
  if (parsed.diagnostics.length > 0 || block?.kind !== "run") {
    throw new Error(`\`${text}\` does not parse: ${parsed.diagnostics.map((d) => d.message).join("; ")}`);
  }
  return block.settings[0]!.value;
}

describe("printNumber", () => {
  it.each([
    [0, "0"],
    [-0, "-0"],
    [1, "1"],
    [4, "4"],
    [1000, "1000"],
    [1024, "1K"],
    [1536, "1536"],
    [2048, "2K"],
    [524288, "512K"],
    [1024 ** 2, "1M"],
    [3 * 1024 ** 2, "3M"],
    [1024 ** 3, "1G"],
    [1024 ** 4, "1024G"],
    [-1024, "-1K"],
    [128256, "128256"],
    [0.99, "0.99"],
    [1e-5, "0.00001"],
    [1e-7, "1e-7"],
    [1.5e-7, "1.5e-7"],
    [1e21, "1e+21"],
    [2 ** 53 + 2, "9007199254740994"],
    [2 ** 60, "1152921504606847000"],
    [2 ** 52, "4194304G"],
    [Number.MAX_VALUE, "1.7976931348623157e+308"],
    [Number.MIN_VALUE, "5e-324"],
  ])("%d prints as %s", (value, text) => {
    expect(printNumber(value)).toBe(text);
  });

  it("refuses what no literal can spell", () => {
    expect(() => printNumber(Infinity)).toThrow();
    expect(() => printNumber(-Infinity)).toThrow();
    expect(() => printNumber(NaN)).toThrow();
  });

  it("prints every finite double as one number token that reads back to exactly that double", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.double({ noNaN: true, noDefaultInfinity: true }),
          fc.integer().map((n) => n * 1024),
          fc.integer({ min: -(2 ** 23), max: 2 ** 23 }).map((n) => n * 1024 ** 3),
          fc.maxSafeInteger(),
        ),
        (value) => {
          const text = printNumber(value);
          const lexed = laspLexer.tokenize(text);
          expect(lexed.errors).toEqual([]);
          expect(lexed.tokens.map((t) => [t.tokenType, t.image])).toEqual([[NumberLiteral, text]]);
          expect(Object.is(numberLiteralValue(text), value)).toBe(true);
          const back = readBack(text);
          expect(back.kind === "number" && Object.is(back.value, value)).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("printString", () => {
  it("escapes quotes and backslashes", () => {
    expect(printString("tokens.bin")).toBe('"tokens.bin"');
    expect(printString('say "hi"')).toBe('"say \\"hi\\""');
    expect(printString("C:\\data\\")).toBe('"C:\\\\data\\\\"');
    expect(printString("\\n")).toBe('"\\\\n"');
  });

  it("refuses line breaks, which no string literal can hold", () => {
    expect(() => printString("a\nb")).toThrow();
    expect(() => printString("a\rb")).toThrow();
  });

  it("reads back to the same string", () => {
    fc.assert(
      fc.property(stringValueArb, (value) => {
        expect(readBack(printString(value))).toMatchObject({ kind: "string", value });
      }),
      { numRuns: 300 },
    );
  });
});

describe("printValue", () => {
  it("prints each kind of value", () => {
    expect(printValue(num(512 * 1024))).toBe("512K");
    expect(printValue(word("lasp2"))).toBe("lasp2");
    expect(printValue(str("a.bin"))).toBe('"a.bin"');
    expect(printValue(list([]))).toBe("[]");
    expect(printValue(list([num(0.9), num(1)]))).toBe("[0.9, 1]");
    expect(printValue(list([list([num(1), word("a")]), str("")]))).toBe('[[1, a], ""]');
  });

  it("reads back to the same value", () => {
    fc.assert(
      fc.property(valueArb, (value) => {
        expect(stripSpans(readBack(printValue(value)))).toEqual(stripSpans(value));
      }),
      { numRuns: 300 },
    );
  });
});

describe("printSpec", () => {
  it("lays a spec out like the examples", () => {
    const ast: SpecFile = {
      kind: "spec",
      comments: [],
      span: num(0).span,
      blocks: [
        {
          kind: "model",
          name: ident("tiny"),
          keyword: num(0).span,
          span: num(0).span,
          entries: [
            setting("vocab", num(512)),
            setting("heads", num(4)),
            {
              kind: "layer",
              name: ident("L"),
              layerKind: ident("linear_attention"),
              settings: [setting("decay", num(0.98)), setting("causal", word("true"))],
              span: num(0).span,
            },
            {
              kind: "layer",
              name: ident("S"),
              layerKind: ident("softmax_attention"),
              settings: [],
              span: num(0).span,
            },
            {
              kind: "stack",
              span: num(0).span,
              items: [
                {
                  kind: "item",
                  span: num(0).span,
                  target: {
                    kind: "group",
                    span: num(0).span,
                    items: [
                      { kind: "item", target: ident("L"), span: num(0).span },
                      { kind: "item", target: ident("L"), span: num(0).span },
                      {
                        kind: "item",
                        target: {
                          kind: "group",
                          items: [{ kind: "item", target: ident("S"), span: num(0).span }],
                          span: num(0).span,
                        },
                        repeat: num(2),
                        span: num(0).span,
                      },
                    ],
                  },
                  repeat: num(4),
                },
                { kind: "item", target: ident("L"), span: num(0).span },
              ],
            },
          ],
        },
        { kind: "parallel", settings: [], keyword: num(0).span, span: num(0).span },
        {
          kind: "run",
          settings: [setting("seq_len", num(1024)), setting("data", str("t.bin"))],
          keyword: num(0).span,
          span: num(0).span,
        },
      ],
    };
    expect(printSpec(ast)).toBe(
      [
        "model tiny {",
        "  vocab 512",
        "  heads 4",
        "  layer L = linear_attention { decay 0.98  causal true }",
        "  layer S = softmax_attention { }",
        "  stack [L, L, [S] x 2] x 4, L",
        "}",
        "",
        "parallel { }",
        "",
        "run {",
        "  seq_len 1K",
        '  data "t.bin"',
        "}",
        "",
      ].join("\n"),
    );
    expect(stripSpans(parseSpec(printSpec(ast)).ast)).toEqual(stripSpans(ast));
  });

  it("prints an example in canonical form, dropping comments", () => {
    const source = readFileSync(join(root, "examples", "tiny-hybrid.lasp"), "utf8");
    expect(printSpec(parseSpec(source).ast!)).toBe(
      [
        "model tiny_hybrid {",
        "  vocab 512",
        "  hidden 256",
        "  ffn 512",
        "  heads 4",
        "  head_dim 64",
        "  layer L = linear_attention { decay 0.98 }",
        "  layer S = softmax_attention { kv_heads 2  rope_theta 10000 }",
        "  stack [L, S] x 2",
        "}",
        "",
        "parallel {",
        "  gpus 2",
        "  sequence 2",
        "  linear lasp2",
        "  softmax allgather",
        "  layout zigzag",
        "}",
        "",
        "run {",
        "  seq_len 1K",
        "  batch 1",
        "  dtype bf16",
        "  steps 3",
        "  warmup 1",
        "  mode verify",
        "  seed 1",
        "}",
        "",
      ].join("\n"),
    );
  });

  it("prints nothing for a spec without blocks", () => {
    expect(printSpec({ kind: "spec", blocks: [], comments: [], span: num(0).span })).toBe("");
  });
});
