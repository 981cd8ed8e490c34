// A keyword written where a model's or a layer's name goes is told as a reserved word, with a name that works.
import { describe, expect, it } from "vitest";
import { allTokens, Identifier } from "../../grammar/tokens.js";
import { checkSource } from "../../src/check/front-end.js";

// The keywords as the lexer has them, so that a new keyword is tested without editing this list.
const KEYWORDS = allTokens.filter((t) => t.LONGER_ALT === Identifier).map((t) => t.LABEL!.slice(1, -1));

const model = (name: string, layer = "L") => `model ${name} {
  vocab 512  hidden 256  ffn 512  heads 4
  layer ${layer} = linear_attention { }
  stack ${layer} x 2
}
run { seq_len 1K }
`;

function errors(source: string) {
  return checkSource("t.lasp", source).diagnostics.filter((d) => d.severity === "error");
}

describe("a keyword used as a name", () => {
  it("the lexer's keywords are the grammar's reserved words", () => {
    expect(KEYWORDS).toEqual(["model", "parallel", "run", "layer", "stack", "x"]);
  });

  it.each(KEYWORDS)("`model %s {` says the word is reserved and suggests a name that checks", (word) => {
    const [d, ...rest] = errors(model(word));
    expect(rest).toEqual([]);
    expect(d).toMatchObject({ code: "E0201", span: { start: { line: 1, column: 7 } } });
    expect(d!.message).toBe(
      `\`${word}\` is a reserved word (a keyword of the spec language) and cannot be a name`,
    );
    expect(d!.hint).toBe(
      `\`model\`, \`parallel\`, \`run\`, \`layer\`, \`stack\` and \`x\` are reserved; choose another name, for example \`m_${word}\``,
    );
    expect(errors(model(`m_${word}`))).toEqual([]);
  });

  it.each(KEYWORDS)("`layer %s = ...` says the word is reserved and suggests a name that checks", (word) => {
    const [d] = errors(model("m", word));
    expect(d).toMatchObject({ code: "E0201", span: { start: { line: 3, column: 9 } } });
    expect(d!.message).toContain(`\`${word}\` is a reserved word`);
    expect(d!.hint).toContain(`for example \`L_${word}\``);
    expect(errors(model("m", `L_${word}`))).toEqual([]);
  });

  it("a name that is missing, not a keyword, keeps the header's shape as its hint", () => {
    const [d] = errors("model {\n  vocab 512\n}\n");
    expect(d!.message).toBe("expected a name but found `{`");
    expect(d!.hint).toBe("the model block is written `model NAME { ... }`");
  });

  it("a keyword that is not in a name's place is not said to be reserved", () => {
    const [d] = errors("model m {\n  vocab 512\n  run { seq_len 1K }\n}\n");
    expect(d!.message).not.toContain("reserved");
    expect(d!.hint).toContain("cannot stand inside the `model` block");
  });
});
