// Counts at the largest values the language allows (seq_len 2G = 2^31): 64-bit in the generated program and
// the view model, and a clear refusal where an allocation would outgrow the kernels' 32-bit counts.
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { withGeneratorNotes } from "../cli/check-command.js";
import { lowerSpec } from "../schedule/lower.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { CodegenLimitation, generateProgram } from "./generate.js";
import { buildView } from "./view-model.js";

const source = (sequence: number, layout = "contiguous") => `model m {
  vocab 512  hidden 64  ffn 32  heads 1  head_dim 64
  layer L = linear_attention { }
  stack L x 2
}
parallel { sequence ${sequence}  layout ${layout} }
run { seq_len 2G  batch 1 }
`;

function spec(text: string): ResolvedSpec {
  const result = checkSource("big.lasp", text);
  if (result.spec === undefined) throw new Error(result.diagnostics.map((d) => d.message).join("\n"));
  return result.spec;
}

describe("seq_len 2G (2^31 tokens, the language's largest)", () => {
  const big = spec(source(128));

  it("is a 64-bit constant in the view model, as are the tokens per rank and per piece", () => {
    const view = buildView({ spec: big, program: lowerSpec(big), compilerVersion: "test" });
    const constant = (name: string) => view.constants.find((c) => c.name === name)!;
    expect(constant("kSeqLen")).toMatchObject({ ctype: "int64_t", value: "2147483648" });
    expect(constant("kLocalTokens")).toMatchObject({ ctype: "int64_t", value: String(2 ** 24) });
    expect(constant("kPieceTokens")).toMatchObject({ ctype: "int64_t", value: String(2 ** 24) });
    // Every constant still typed `int` holds a value an int can.
    for (const c of view.constants.filter((c) => c.ctype === "int"))
      expect(Math.abs(Number(c.value))).toBeLessThanOrEqual(2 ** 31 - 1);
    // The whole sequence is described without its length (count 0: rows are global positions).
    expect(view.wholeSequence).toBe("lasp::PieceMap{0, {0, 0}, {0, 0}, {0, 0}}");
  });

  it("generates `constexpr int64_t kSeqLen = 2147483648;` and no int literal past 2^31 - 1 in a PieceMap", () => {
    const files = generateProgram(big);
    const program = files.get("lasp/program.cuh")!;
    expect(program).toContain("constexpr int64_t kSeqLen = 2147483648;");
    expect(program).not.toMatch(/constexpr int k\w+ = \d{10,}/);
    for (const map of program.matchAll(/lasp::PieceMap\{[^;]*?\}\}/g))
      for (const n of map[0].match(/\d+/g)!) expect(Number(n)).toBeLessThanOrEqual(2 ** 31 - 1);
    expect(files.get("lasp/model.cuh")).toContain("int64_t global_rows");
  });

  it("is refused by compile where an allocation would pass 2^31 - 1 elements (E0702), at seq_len", () => {
    const tooBig = spec(source(64));
    expect(() => generateProgram(tooBig)).toThrow(CodegenLimitation);
    expect(() => generateProgram(tooBig)).toThrow(/2147483648 elements per GPU.*E0702/);
    const refused = withGeneratorNotes(checkSource("big.lasp", source(64)), { refuse: true });
    const e0702 = refused.diagnostics.find((d) => d.code === "E0702")!;
    expect(e0702.span.start).toMatchObject({ line: 7, column: 7 });
    expect(e0702.hint).toContain("the longest seq_len that compiles and fits is");
    // `lasp check` only warns.
    const checked = withGeneratorNotes(checkSource("big.lasp", source(64)));
    expect(checked.diagnostics.map((d) => d.code)).toContain("W0605");
    expect(checked.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  });
});
