import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { numericsNotes } from "./numerics-notes.js";

const notes = (layers: string, stack: string, dtype = "bf16") => {
  const result = checkSource(
    "n.lasp",
    `model m {
  vocab 512  hidden 256  ffn 512  heads 4  head_dim 64
  ${layers}
  ${stack}
}
run { seq_len 1K  dtype ${dtype} }
`,
  );
  if (result.spec === undefined || result.ast === undefined) throw new Error("spec does not check");
  return numericsNotes(result.ast, result.spec);
};

describe("W0610: bidirectional layers with non-negative feature maps before other layers", () => {
  it("warns once per such kind, at its feature_map, when a layer follows it", () => {
    const d = notes("layer E = linear_attention { causal false  feature_map elu_plus_one }", "stack E x 3");
    expect(d.map((x) => [x.code, x.span.start.line, x.span.start.column])).toEqual([["W0610", 3, 46]]);
    expect(
      notes("layer E = linear_attention { causal false  feature_map relu }", "stack E x 2").map(
        (x) => x.code,
      ),
    ).toEqual(["W0610"]);
  });

  it("stays quiet for the measured good cases: identity or silu, causal layers, a last layer, fp32", () => {
    expect(notes("layer E = linear_attention { causal false }", "stack E x 4")).toEqual([]);
    expect(notes("layer E = linear_attention { causal false  feature_map silu }", "stack E x 4")).toEqual([]);
    expect(notes("layer C = linear_attention { feature_map elu_plus_one }", "stack C x 4")).toEqual([]);
    expect(
      notes(
        "layer C = linear_attention { }\n  layer E = linear_attention { causal false  feature_map elu_plus_one }",
        "stack [C, C, E] x 1",
      ),
    ).toEqual([]);
    expect(
      notes("layer E = linear_attention { causal false  feature_map elu_plus_one }", "stack E x 2", "fp32"),
    ).toEqual([]);
  });
});
