import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { validSpecArb } from "../../test/arbitraries/spec.js";
import { stripSpans } from "../ast/ast.js";
import { lex } from "../syntax/tokens.js";
import { parseSpec } from "../syntax/parse.js";
import { commentText, formatSpec } from "./format.js";
import { printSpec } from "./print.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const examples = readdirSync(join(root, "examples"))
  .filter((name) => name.endsWith(".lasp"))
  .map((name) => ({ name, text: readFileSync(join(root, "examples", name), "utf8") }));

function format(source: string): string {
  const result = formatSpec(source);
  if ("diagnostics" in result) {
    throw new Error(`does not format: ${result.diagnostics.map((d) => d.message).join("; ")}\n${source}`);
  }
  return result.text;
}

/** The meaning of a spec: its AST without spans and comments. */
function meaning(source: string): unknown {
  const parsed = parseSpec(source);
  expect(parsed.diagnostics).toEqual([]);
  return stripSpans(parsed.ast);
}

const commentsOf = (source: string): string[] => (parseSpec(source).ast?.comments ?? []).map(commentText);

describe("formatSpec on the examples", () => {
  it("finds the examples", () => {
    expect(examples.length).toBeGreaterThanOrEqual(8);
  });

  it.each(examples)("$name is already formatted", ({ text }) => {
    expect(format(text)).toBe(text);
  });

  it.each(examples)("$name: formatting is idempotent and keeps the meaning and comments", ({ text }) => {
    // The examples, squashed onto as few lines as the grammar allows, come back to a fixed point.
    const squashed = text
      .split("\n")
      .filter((line) => !line.startsWith("//"))
      .join(" ")
      .replace(/\s+/g, " ");
    const once = format(squashed);
    expect(format(once)).toBe(once);
    expect(meaning(once)).toEqual(meaning(text));
    expect(commentsOf(format(text))).toEqual(commentsOf(text));
  });
});

describe("layout", () => {
  it("lays out a spec written on one line", () => {
    const source =
      'model m { vocab 512 hidden 256 layer L = linear_attention{decay [0.9,1]} layer Soft=softmax_attention{} stack [L,Soft]x 2,L } run{seq_len 1K data "a \\"b\\""}parallel{}';
    expect(format(source)).toBe(
      [
        "model m {",
        "  vocab 512  hidden 256",
        "  layer L = linear_attention     { decay [0.9, 1] }",
        "  layer Soft = softmax_attention { }",
        "  stack [L, Soft] x 2, L",
        "}",
        "",
        "run {",
        '  seq_len 1K  data "a \\"b\\""',
        "}",
        "",
        "parallel { }",
        "",
      ].join("\n"),
    );
  });

  it("keeps the user's grouping of settings on lines and one blank line between groups", () => {
    const source = "run {\n\n\n  seq_len 1K   batch 1\n\n\n\n steps 3\n  mode verify    seed 1\n\n}\n";
    expect(format(source)).toBe("run {\n  seq_len 1K  batch 1\n\n  steps 3\n  mode verify  seed 1\n}\n");
  });

  it("keeps numbers as the user spelled them", () => {
    const source = "model m {\n  hidden 2048  vocab 128256  ffn 8k  norm_eps 1e-5  x1 0.50  x2 -3\n}\n";
    expect(format(source)).toBe(source);
  });

  it("aligns `{` only over one-line layers on consecutive lines", () => {
    const source = [
      "model m {",
      "  layer A = linear_attention { }",
      "  layer Bb = softmax_attention { kv_heads 2 }",
      "",
      "  layer C = linear_attention { }",
      "  layer D = softmax_attention {",
      "    kv_heads 2",
      "  }",
      "}",
      "",
    ].join("\n");
    expect(format(source)).toBe(
      [
        "model m {",
        "  layer A = linear_attention   { }",
        "  layer Bb = softmax_attention { kv_heads 2 }",
        "",
        "  layer C = linear_attention { }",
        "  layer D = softmax_attention {",
        "    kv_heads 2",
        "  }",
        "}",
        "",
      ].join("\n"),
    );
  });

  it("keeps line breaks the user put in lists and in the stack", () => {
    const source = "model m {\n  stack [L,\n S] x 2,\n S x 3, L\n  decay [1, 2,\n   3]\n}\n";
    expect(format(source)).toBe(
      "model m {\n  stack [\n    L,\n    S\n  ] x 2,\n    S x 3, L\n  decay [\n    1, 2,\n    3\n  ]\n}\n",
    );
  });

  it("turns CRLF line ends into LF", () => {
    expect(format("run {\r\n  seq_len 1K\r\n}\r\n")).toBe("run {\n  seq_len 1K\n}\n");
  });
});

describe("comments", () => {
  const everywhere = [
    "// header, first line",
    "/* header block */",
    "",
    "// before model",
    "model m { // after the brace",
    "  // own line in the model",
    "  vocab 512 /* inline */ hidden 256 // end of line",
    "",
    "",
    "  // after a blank line",
    "  layer L = linear_attention { decay /* in a layer */ 0.9 }",
    "  layer S = softmax_attention { // in layer braces",
    "    kv_heads 2 // after a layer setting",
    "    // last in the layer",
    "  } // after the layer",
    "  decay [0.9, // in a list",
    "    // own line in a list",
    "    1 /* before a comma */, 0.5",
    "    // last in the list",
    "  ]",
    "  stack [L, /* in a group */ S] x /* before the repeat */ 2, // after a stack comma",
    "    L",
    "  /* multi",
    "     line */",
    "  // last in the model",
    "} // after the model",
    "run /* after run */ {",
    "  seq_len 1K",
    "}",
    "parallel {",
    "  // only a comment",
    "}",
    "// after the last block",
    "/* and a block comment */",
    "",
  ].join("\n");

  it("keeps every comment, in order, where the user put it", () => {
    const once = format(everywhere);
    expect(once).toBe(
      [
        "// header, first line",
        "/* header block */",
        "",
        "// before model",
        "model m { // after the brace",
        "  // own line in the model",
        "  vocab 512 /* inline */  hidden 256 // end of line",
        "",
        "  // after a blank line",
        "  layer L = linear_attention { decay /* in a layer */ 0.9 }",
        "  layer S = softmax_attention { // in layer braces",
        "    kv_heads 2 // after a layer setting",
        "    // last in the layer",
        "  } // after the layer",
        "  decay [",
        "    0.9, // in a list",
        "    // own line in a list",
        "    1, /* before a comma */ 0.5",
        "    // last in the list",
        "  ]",
        "  stack [L, /* in a group */ S] x /* before the repeat */ 2, // after a stack comma",
        "    L",
        "  /* multi",
        "     line */",
        "  // last in the model",
        "} // after the model",
        "",
        "run /* after run */ {",
        "  seq_len 1K",
        "}",
        "",
        "parallel {",
        "  // only a comment",
        "}",
        "// after the last block",
        "/* and a block comment */",
        "",
      ].join("\n"),
    );
    expect(commentsOf(once)).toEqual(commentsOf(everywhere));
    expect(meaning(once)).toEqual(meaning(everywhere));
    expect(format(once)).toBe(once);
  });

  it("ends a line after a line comment even inside a layer header or between a key and its value", () => {
    const source =
      "model m {\n  layer // odd\n L = linear_attention { }\n  vocab // odder\n 512 hidden 256\n}\n";
    const once = format(source);
    expect(once).toBe(
      "model m {\n  layer // odd\n  L = linear_attention { }\n  vocab // odder\n  512  hidden 256\n}\n",
    );
    expect(format(once)).toBe(once);
  });

  it("does not let a comment moved after a comma run into a line comment", () => {
    const source = "model m {\n  stack A // c1\n, // c2\n B\n  decay [1 // c3\n, /* c4 */ 2]\n}\n";
    const once = format(source);
    expect(once).toBe(
      "model m {\n  stack A, // c1\n    // c2\n    B\n  decay [\n    1, // c3\n    /* c4 */ 2\n  ]\n}\n",
    );
    expect(format(once)).toBe(once);
  });

  it("removes trailing white space from line comments only", () => {
    expect(format("// a   \nrun { seq_len 1K } /* b  \n  */\n")).toBe(
      "// a\nrun {\n  seq_len 1K\n} /* b  \n  */\n",
    );
  });
});

describe("refusing input that does not parse", () => {
  it.each([
    ["a missing value", "run { seq_len }"],
    ["an unclosed block", "model m { vocab 1"],
    ["an unterminated comment", "run { seq_len 1K } /* no end"],
    ["only comments", "// nothing else\n"],
    ["a stray character", "run { seq_len 1K ; }"],
  ])("refuses %s with the parser's diagnostics", (_what, source) => {
    const result = formatSpec(source);
    expect("diagnostics" in result).toBe(true);
    const diagnostics = "diagnostics" in result ? result.diagnostics : [];
    expect(diagnostics.length).toBeGreaterThan(0);
    expect(diagnostics).toEqual(parseSpec(source).diagnostics);
  });
});

describe("properties on random valid specs", () => {
  it("formatting a printed spec is idempotent and keeps its meaning", () => {
    fc.assert(
      fc.property(validSpecArb, (spec) => {
        const printed = printSpec(spec);
        const once = format(printed);
        expect(format(once)).toBe(once);
        expect(meaning(once)).toEqual(stripSpans(spec));
      }),
      { numRuns: 200 },
    );
  });

  it("reaches the same fixed point whatever white space separates the tokens", () => {
    const respaced = fc
      .tuple(validSpecArb, fc.array(fc.constantFrom(" ", "  ", "\n", "\n\n\n", " \t"), { minLength: 1 }))
      .map(([spec, gaps]) => {
        const printed = printSpec(spec);
        const tokens = lex(printed).tokens;
        const text = tokens.map((t, i) => t.image + (gaps[i % gaps.length] ?? " ")).join("");
        return { printed, text };
      });
    fc.assert(
      fc.property(respaced, ({ printed, text }) => {
        const once = format(text);
        expect(format(once)).toBe(once);
        expect(meaning(once)).toEqual(meaning(printed));
      }),
      { numRuns: 200 },
    );
  });

  it("keeps random comments between random tokens, in order, and stays idempotent", () => {
    const withComments = fc
      .tuple(
        validSpecArb,
        fc.uniqueArray(fc.nat(), { maxLength: 12 }),
        fc.array(fc.constantFrom("line", "block", "block-break", "own-line"), {
          minLength: 12,
          maxLength: 12,
        }),
        fc.option(fc.array(fc.constantFrom(" ", "\n", "\n\n"), { minLength: 1 })),
      )
      .map(([spec, picks, styles, gaps]) => {
        const printed = printSpec(spec);
        // Either the printer's layout or the same tokens with random white space between them.
        const base =
          gaps === null
            ? printed
            : lex(printed)
                .tokens.map((t, i) => t.image + (gaps[i % gaps.length] ?? " "))
                .join("");
        const tokens = lex(base).tokens;
        // Insert after token `i` (before the first token for i = -1), from the end so offsets stay valid.
        const places = [...new Set(picks.map((p) => (p % (tokens.length + 1)) - 1))].sort((a, b) => b - a);
        let text = base;
        places.forEach((place, k) => {
          const n = places.length - k;
          const at = place < 0 ? 0 : tokens[place]!.startOffset + tokens[place]!.image.length;
          const comment = {
            line: ` // c${n}\n`,
            block: ` /* c${n} */ `,
            "block-break": ` /* c${n} */\n`,
            "own-line": `\n// c${n}\n`,
          }[styles[k] ?? "line"];
          text = text.slice(0, at) + comment + text.slice(at);
        });
        return { printed, text, count: places.length };
      });
    fc.assert(
      fc.property(withComments, ({ printed, text, count }) => {
        const once = format(text);
        const comments = commentsOf(once);
        const names = comments.map((c) => c.replace(/^\/\/ |^\/\* | \*\/$/g, ""));
        expect(names).toEqual(Array.from({ length: count }, (_, i) => `c${i + 1}`));
        expect(meaning(once)).toEqual(meaning(printed));
        expect(format(once)).toBe(once);
      }),
      { numRuns: 300 },
    );
  });
});
