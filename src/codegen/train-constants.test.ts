import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { doubleLiteral } from "./names.js";
import { modelHash, trainConstants } from "./train-constants.js";

function spec(model: string, rest: string, name = "m"): ResolvedSpec {
  const result = checkSource(
    "t.lasp",
    `model ${name} { vocab 256 hidden 256 ffn 512 heads 4 head_dim 64 ${model}
  layer L = linear_attention { decay 0.99 } stack L x 2 }
${rest}`,
  );
  if (result.spec === undefined) throw new Error(result.diagnostics.map((d) => d.message).join("\n"));
  return result.spec;
}

describe("train mode's constants", () => {
  it("hash the model alone: a resume may change the run, the length and the layout, not the model", () => {
    const base = modelHash(spec("", "run { seq_len 1K }"));
    expect(base).toMatch(/^[0-9a-f]{16}$/);
    expect(modelHash(spec("", "parallel { gpus 2 } run { seq_len 4K  batch 2  steps 99  lr 1e-3 }"))).toBe(
      base,
    );
    expect(modelHash(spec("", "run { seq_len 1K }", "renamed"))).toBe(base);
    expect(modelHash(spec("tie_embeddings true", "run { seq_len 1K }"))).not.toBe(base);
    expect(modelHash(spec("norm layernorm", "run { seq_len 1K }"))).not.toBe(base);
  });

  it("write the spec's settings as C++ doubles that read back exactly", () => {
    expect(doubleLiteral(3)).toBe("3.0");
    expect(doubleLiteral(3e-4)).toBe("0.0003");
    expect(Number(doubleLiteral(0.1 + 0.2))).toBe(0.1 + 0.2);
    const c = Object.fromEntries(
      trainConstants(spec("", 'run { seq_len 1K  mode train  lr 2e-3  betas [0.8, 0.9]  data "d.bin" }')).map(
        (k) => [k.name, k.value],
      ),
    );
    expect([c.kLr, c.kBeta1, c.kBeta2, c.kData, c.kEvalData]).toEqual([
      "0.002",
      "0.8",
      "0.9",
      '"d.bin"',
      '""',
    ]);
    expect(c.kLrSchedule).toBe("lasp::kLrCosine");
  });
});
