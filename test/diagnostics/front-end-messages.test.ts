// Front-end messages beyond the goldens: every position exact (columns in code points, the caret by display
// width), every token named, hints that are true, and one error per mistake.
import { describe, expect, it } from "vitest";
import { checkBytes, checkSource, type FrontEndResult } from "../../src/check/front-end.js";
import { withGeneratorNotes } from "../../src/cli/check-command.js";
import { BLOCK_KEYS, KEY_ALIASES, homesOf, suggestKey } from "../../src/spec/key-homes.js";
import { renderDiagnostic } from "../../src/diagnostics/render.js";
import { charWidth, textWidth } from "../../src/diagnostics/width.js";
import { characterHint, describeCharacters } from "../../src/syntax/characters.js";

const MODEL = `model m {
  vocab 512  hidden 256  ffn 512  heads 4
  layer L = linear_attention { }
  stack L x 2
}
`;
const RUN = "run { seq_len 1K }\n";

const codes = (r: FrontEndResult): string[] => r.diagnostics.map((d) => d.code);
const only = (source: string): FrontEndResult["diagnostics"][number] => {
  const result = checkSource("t.lasp", source);
  expect(result.diagnostics, JSON.stringify(codes(result))).toHaveLength(1);
  return result.diagnostics[0]!;
};
/** 1-based line and column (in code points) of the first occurrence of `needle`. */
function at(source: string, needle: string, from = 0): { line: number; column: number } {
  const offset = source.indexOf(needle, from);
  const before = source.slice(0, offset);
  const lineStart = before.lastIndexOf("\n") + 1;
  return { line: before.split("\n").length, column: [...source.slice(lineStart, offset)].length + 1 };
}
const where = (d: { span: { start: { line: number; column: number } } }) => ({
  line: d.span.start.line,
  column: d.span.start.column,
});

describe("a token that cannot stand where it is is reported at the token, named", () => {
  it.each([
    [
      "a key after a block's `}` on the same line",
      `${MODEL.trimEnd()} vocab 512\n${RUN}`,
      "vocab",
      "`model` block",
    ],
    ["a key of the run block at top level", `${MODEL}\nbatch 2\n${RUN}`, "batch", "`run` block"],
    ["a layer key at top level", `${MODEL}\nkv_heads 2\n${RUN}`, "kv_heads", "softmax_attention"],
    ["an unknown block name", `${MODEL}\n  trainer {\n}\n${RUN}`, "trainer", "`model NAME { ... }`"],
    ["a misspelled block name", `${MODEL}\npralel { gpus 2 }\n${RUN}`, "pralel", "did you mean `parallel`?"],
    [
      "`layer` inside `run`",
      `${MODEL}run {\n  seq_len 1K\n  layer S = softmax_attention { }\n}\n`,
      "layer",
      "`model` block",
    ],
    [
      "`stack` inside `parallel`",
      `${MODEL}parallel {\n  gpus 2\n  stack L\n}\n${RUN}`,
      "stack",
      "`model` block",
    ],
    ["a quoted key in `run`", `${MODEL}run {\n  "seq_len" 1K\n}\n`, '"seq_len"', "without quotes"],
    ["a quoted key at top level", `${MODEL}\n"batch" 2\n${RUN}`, '"batch"', "`run` block"],
  ])("%s", (_, source, token, hint) => {
    const d = only(source);
    expect(d.code).toBe("E0201");
    expect(where(d)).toEqual(at(source, token, MODEL.length - 2));
    expect(d.message).toContain(`found \`${token}\``);
    expect(d.message).not.toContain("line ends");
    expect(d.hint).toContain(hint);
  });

  it("a missing value is reported at the token that came instead, whatever line it is on", () => {
    const source = `${MODEL}run {\n  seq_len\n\n\n}\n`;
    const d = only(source);
    expect(where(d)).toEqual({ line: 10, column: 1 });
    expect(d.message).toBe("expected a value for `seq_len` but found `}`");
    expect(d.hint).toBe("for example `seq_len 64K`");
  });
});

describe("a balanced block inside another block is the only error", () => {
  it.each([
    [
      "parallel",
      "model",
      `model m {\n  vocab 512 hidden 256 ffn 512 heads 4\n  parallel { gpus 2 }\n  layer L = linear_attention { }\n  stack L\n}\n${RUN}`,
    ],
    ["run", "parallel", `${MODEL}parallel {\n  gpus 2\n  run { seq_len 1K }\n}\n`],
    ["model", "run", `run {\n  seq_len 1K\n  ${MODEL.replace(/\n/g, " ")}\n}\n`],
    [
      "parallel",
      "a layer declaration",
      `model m {\n  vocab 512 hidden 256 ffn 512 heads 4\n  layer L = linear_attention { parallel { gpus 2 } }\n  stack L\n}\n${RUN}`,
    ],
  ])("`%s` inside %s", (inner, outer, source) => {
    const d = only(source);
    expect(d.code).toBe("E0201");
    expect(where(d)).toEqual(at(source, `${inner} `, source.indexOf("{") + 1));
    expect(d.hint).toContain(
      `cannot stand inside ${outer === "a layer declaration" ? outer : `the \`${outer}\` block`}`,
    );
  });

  it("an unclosed outer block around a balanced one is still reported as unclosed", () => {
    const source = `model m {\n  vocab 512\n  parallel { gpus 2 }\n${RUN}`;
    const result = checkSource("t.lasp", source);
    expect(codes(result)).toEqual(["E0202"]);
    expect(result.diagnostics[0]!.message).toContain("`model` block");
  });
});

describe("the repeat glued to its `x`", () => {
  it.each(["stack [L, L] x4", "stack L x12", "stack [L] x4, L", "stack L x2\n  vocab 512"])("%s", (stack) => {
    const source = `model m {\n  vocab 512 hidden 256 ffn 512 heads 4\n  layer L = linear_attention { }\n  ${stack}\n}\n${RUN}`;
    const d = only(source);
    const glued = /x\d+/.exec(stack)![0];
    expect(where(d)).toEqual(at(source, glued));
    expect(d.hint).toBe(`write the repeat with a space: \`x ${glued.slice(1)}\``);
  });
});

describe("hints are never false", () => {
  it("a key after a complete setting is not said to be its value", () => {
    for (const run of [
      "run { seq_len 1K mode bench warmup }",
      "run { mode bench\n warmup\n}",
      "run { dtype bf16 steps }",
    ]) {
      const d = only(`${MODEL}${run}\n`);
      expect(d.hint ?? "").not.toContain("as its value");
    }
  });

  it("a key that really took the next key as its value is told so", () => {
    const d = only(`${MODEL}run {\n  mode\n  warmup 3\n}\n`);
    expect(d.hint).toBe("does `mode` have a value? it took `warmup` as its value");
  });
});

describe("columns count code points, the caret goes by display width", () => {
  const cases: [string, string][] = [
    ["an emoji (above U+FFFF)", "\u{1F600}"],
    ["CJK characters", "\u6570\u636e"],
    ["a combining accent", "e\u0301"],
    ["a mix", "\u6570\u{1F600}e\u0301\u{20000}"],
  ];
  it.each(cases)("after %s in a string", (_, text) => {
    const source = `${MODEL}run { data "${text}.bin" seq_len 1K  sede 1 }\n`;
    const d = only(source);
    expect(d.code).toBe("E0303");
    expect(where(d)).toEqual(at(source, "sede"));
    const [, line, caret] = renderDiagnostic("t.lasp", source, d, { color: false }).split("\n");
    const shown = line!.slice(line!.indexOf("| ") + 2);
    const carets = caret!.slice(caret!.indexOf("| ") + 2);
    expect(carets.indexOf("^")).toBe(textWidth(shown.slice(0, shown.indexOf("sede"))));
    expect(carets.trim()).toBe("^^^^");
  });

  it("widths: ASCII 1, wide 2, combining 0", () => {
    expect([
      charWidth("a"),
      charWidth("\u4e2d"),
      charWidth("\u{1F600}"),
      charWidth("\u0301"),
      charWidth("\uff21"),
    ]).toEqual([1, 2, 2, 0, 2]);
  });

  it("a lexical error after an emoji on its line has its column in code points", () => {
    const source = `${MODEL}run { data "\u{1F600}\u{1F600}" seq_len 1K; }\n`;
    expect(where(only(source))).toEqual(at(source, ";"));
  });
});

describe("characters that cannot be seen or are not what they look like are named", () => {
  it.each([
    ["\u200b", "U+200B ZERO WIDTH SPACE", "invisible"],
    ["\ufeff", "U+FEFF ZERO WIDTH NO-BREAK SPACE (byte order mark)", "byte order mark"],
    ["\u00a0", "U+00A0 NO-BREAK SPACE", "plain space"],
    ["\u0391", "`\u0391` (U+0391 GREEK CAPITAL LETTER ALPHA)", "`A`"],
    ["\u0435", "`\u0435` (U+0435 CYRILLIC SMALL LETTER IE)", "`e`"],
    ["\u00d7", "`\u00d7` (U+00D7 MULTIPLICATION SIGN)", "`x`"],
    ["\u2018", "`\u2018` (U+2018 LEFT SINGLE QUOTATION MARK)", "straight double quotes"],
    [
      "\u201ca b\u201d",
      "`\u201ca b\u201d` (U+201C LEFT DOUBLE QUOTATION MARK, U+201D RIGHT DOUBLE QUOTATION MARK)",
      'straight quotes: "a b"',
    ],
  ])("%s", (text, shown, hint) => {
    expect(describeCharacters(text)).toBe(shown);
    expect(characterHint(text)).toContain(hint);
  });

  it("in a spec, a curly-quoted path is one error with a straight-quoted fix", () => {
    const source = `${MODEL}run { seq_len 1K  data \u201cdata/tokens.bin\u201d }\n`;
    const d = only(source);
    expect(d.message).toContain("U+201C LEFT DOUBLE QUOTATION MARK");
    expect(d.hint).toBe('write it with straight quotes: "data/tokens.bin"');
    expect(where(d)).toEqual(at(source, "\u201c"));
  });

  it("a look-alike letter inside a key is pointed at, not the whole key", () => {
    const source = `${MODEL.replace("hidden", "hidd\u0435n")}${RUN}`;
    const d = only(source);
    expect(where(d)).toEqual(at(source, "\u0435"));
    expect(d.hint).toBe("it looks like `e` but is not ASCII: type `e` instead");
  });
});

describe("a file that is not UTF-8 text is reported at its bad byte", () => {
  const encode = (s: string): number[] => [...new TextEncoder().encode(s)];
  it.each([
    [
      "a NUL byte",
      [...encode("model m {\n  // \u00e9t\u00e9 "), 0, ...encode("\n}\n")],
      { line: 2, column: 10 },
    ],
    [
      "a Latin-1 byte",
      [...encode("run {\n  seq_len 1K\n  // na"), 0xef, ...encode("ve\n}\n")],
      { line: 3, column: 8 },
    ],
    ["a truncated sequence", [...encode("\u{1F600}\u{1F600} "), 0xf0, 0x9f], { line: 1, column: 4 }],
    ["an overlong form", [...encode("ab\n"), 0xc0, 0xaf], { line: 2, column: 1 }],
  ])("%s", (_, bytes, position) => {
    const result = checkBytes("t.lasp", new Uint8Array(bytes));
    expect(codes(result)).toEqual(["E0105"]);
    expect(where(result.diagnostics[0]!)).toEqual(position);
    const rendered = renderDiagnostic("t.lasp", result.source, result.diagnostics[0]!, { color: false });
    expect(rendered.split("\n")[1]).toMatch(new RegExp(`^ ${position.line} \\| `));
  });
});

describe("names from other tools", () => {
  it.each([
    ["hidden_size", "model", "hidden"],
    ["num_attention_heads", "model", "heads"],
    ["intermediate_size", "model", "ffn"],
    ["vocab_size", "model", "vocab"],
    ["rms_norm_eps", "model", "norm_eps"],
    ["num_hidden_layers", "model", "stack"],
    ["num_key_value_heads", "softmax_attention", "kv_heads"],
    ["max_position_embeddings", "run", "seq_len"],
    ["seq_length", "run", "seq_len"],
    ["learning_rate", "run", "lr"],
    ["world_size", "parallel", "gpus"],
  ] as const)("%s in %s means %s", (alias, block, key) => {
    const suggestion = suggestKey(alias, block);
    expect(suggestion.hint).toMatch(new RegExp(`^did you mean \`${key}\`\\?`));
    // The block it is written in where the key belongs there too (kv_heads: both layer kinds).
    expect(suggestion.meant).toEqual({ block: homesOf(key).includes(block) ? block : homesOf(key)[0], key });
  });

  it("an alias in the wrong block names the key and its block", () => {
    expect(suggestKey("num_key_value_heads", "model").hint).toBe(
      "did you mean `kv_heads`? it is a setting of layer declarations (`layer NAME = linear_attention { ... }` or `softmax_attention`)",
    );
    expect(suggestKey("rope_theta", "model").hint).toContain("`softmax_attention` layers");
  });

  it("every alias names a key that exists, and no alias is itself a key", () => {
    const keys = new Set(Object.values(BLOCK_KEYS).flatMap((rules) => rules.map((r) => r.key)));
    for (const [alias, key] of Object.entries(KEY_ALIASES)) {
      expect(key === "stack" || keys.has(key), alias).toBe(true);
      expect(keys.has(alias), alias).toBe(false);
    }
  });

  it("HF names for every required key give one error each and no missing-key error", () => {
    const source = `model m {\n  vocab_size 512 hidden_size 256 intermediate_size 512 num_attention_heads 4\n  layer L = linear_attention { }\n  num_hidden_layers 2\n}\nrun { seq_length 1K }\n`;
    const result = checkSource("t.lasp", source);
    expect(codes(result)).toEqual(Array(6).fill("E0303"));
    // In source order.
    const offsets = result.diagnostics.map((d) => d.span.start.offset);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
  });
});

describe("user text in messages is bounded", () => {
  const long = "N".repeat(20_000);
  it.each([
    [
      "declared layer names",
      `model m {\n  vocab 512 hidden 256 ffn 512 heads 4\n  layer ${long} = linear_attention { }\n  stack [${long}, S]\n}\n${RUN}`,
    ],
    [
      "an unknown key in a long-named layer",
      `model m {\n  vocab 512 hidden 256 ffn 512 heads 4\n  layer ${long} = linear_attention { k 1 }\n  stack ${long}\n}\n${RUN}`,
    ],
    [
      "a long word as a number",
      `model m {\n  vocab ${long} hidden 256 ffn 512 heads 4\n  layer L = linear_attention { }\n  stack L\n}\n${RUN}`,
    ],
    ["a long decimal out of range", `${MODEL}run { seq_len 0.${"0".repeat(20_000)}1 }\n`],
    ["a long key at top level", `${MODEL}${long} 1\n${RUN}`],
    [
      "a long glued repeat",
      `model m {\n  vocab 512 hidden 256 ffn 512 heads 4\n  layer L = linear_attention { }\n  stack L x${"9".repeat(20_000)}\n}\n${RUN}`,
    ],
  ])("%s", (_, source) => {
    const result = checkSource("t.lasp", source);
    expect(result.diagnostics.length).toBeGreaterThan(0);
    for (const d of result.diagnostics) {
      expect(d.message.length, d.message.slice(0, 100)).toBeLessThan(200);
      expect((d.hint ?? "").length, d.hint?.slice(0, 100)).toBeLessThan(200);
      for (const note of d.related ?? []) expect(note.message.length).toBeLessThan(200);
    }
  });
});

describe("rule errors point at the setting that chose the strategy, with a note on the other", () => {
  it("LASP-1 on a bidirectional layer", () => {
    const source = `model m {\n  vocab 512 hidden 256 ffn 512 heads 4\n  layer E = linear_attention { causal false }\n  stack E\n}\nparallel { sequence 2  linear lasp1 }\n${RUN}`;
    const d = only(source);
    expect(d.code).toBe("E0508");
    expect(where(d)).toEqual(at(source, "linear lasp1"));
    expect(d.related?.map((n) => ({ line: n.span.start.line, column: n.span.start.column }))).toEqual([
      at(source, "causal false"),
    ]);
  });

  it("Ulysses with heads that do not split", () => {
    const source = `model m {\n  vocab 512 hidden 256 ffn 512 heads 4\n  layer L = linear_attention { }\n  stack L\n}\nparallel { sequence 8  linear ulysses }\nrun { seq_len 8K }\n`;
    const d = only(source);
    expect(d.code).toBe("E0507");
    expect(where(d)).toEqual(at(source, "linear ulysses"));
    const noted = d.related?.map((n) => ({ line: n.span.start.line, column: n.span.start.column }));
    expect(noted).toEqual([at(source, "heads 4"), at(source, "sequence 8")]);
  });

  it("softmax Ulysses with kv heads that neither split over nor divide the ranks", () => {
    const source = `model m {\n  vocab 512 hidden 768 ffn 1024 heads 12\n  layer S = softmax_attention { kv_heads 3 }\n  stack S\n}\nparallel { sequence 4  softmax ulysses }\n${RUN}`;
    const d = only(source);
    expect(d.code).toBe("E0507");
    expect(d.message).toContain("kv_heads 3 neither is divisible by nor divides sequence 4");
    expect(d.hint).toContain("replicates each");
    expect(where(d)).toEqual(at(source, "softmax ulysses"));
  });
});

describe("softmax Ulysses accepts fewer kv heads than ranks when they divide the ranks (replicated)", () => {
  const spec = (kvHeads: number, sequence: number): string =>
    `model m {\n  vocab 512 hidden 1024 ffn 1024 heads 16\n  layer S = softmax_attention { kv_heads ${kvHeads} }\n  stack S\n}\nparallel { sequence ${sequence}  softmax ulysses }\n${RUN}`;
  for (const [kvHeads, sequence] of [
    [1, 2],
    [1, 8],
    [2, 4],
    [2, 8],
    [4, 8],
    [8, 8],
    [16, 8],
  ] as const) {
    it(`kv_heads ${kvHeads} on sequence ${sequence}`, () => {
      const errors = checkSource("t.lasp", spec(kvHeads, sequence)).diagnostics.filter(
        (d) => d.severity === "error",
      );
      expect(errors).toEqual([]);
    });
  }

  it("warns (W0613) at `softmax ulysses` that the replicated program has not run on GPUs, only then", () => {
    const notes = (kvHeads: number, sequence: number) =>
      withGeneratorNotes(checkSource("t.lasp", spec(kvHeads, sequence)), { refuse: true }).diagnostics.filter(
        (d) => d.code === "W0613",
      );
    const [note, ...rest] = notes(2, 8);
    expect(rest).toEqual([]);
    expect(note!.message).toContain("`softmax ulysses` with kv_heads 2 replicated over 8 sequence ranks");
    expect(where(note!)).toEqual(at(spec(2, 8), "softmax ulysses"));
    expect(notes(8, 8)).toEqual([]);
    expect(notes(16, 8)).toEqual([]);
  });
});
