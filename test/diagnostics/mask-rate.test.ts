// `mask_rate`: the share of input tokens an all-bidirectional model masks in training (default 0.15), and a
// warning (W0606) where one causal layer makes the model train by next-token prediction instead.
import { describe, expect, it } from "vitest";
import { checkSource } from "../../src/check/front-end.js";

const spec = (extra: string, layers: string, stack: string) => `model m {
  vocab 512  hidden 256  ffn 512  heads 4  head_dim 64 ${extra}
  ${layers}
  stack ${stack}
}
parallel { gpus 1 }
run { seq_len 1K }
`;
const ENCODER = "layer E = linear_attention { causal false }";
const check = (source: string) => checkSource("m.lasp", source);
const codes = (source: string) => check(source).diagnostics.map((d) => d.code);

describe("mask_rate", () => {
  it("defaults to 0.15 and resolves the value given", () => {
    expect(check(spec("", ENCODER, "E x 2")).spec!.model.maskRate).toBe(0.15);
    expect(check(spec("mask_rate 0.3", ENCODER, "E x 2")).spec!.model.maskRate).toBe(0.3);
  });

  it("is a share strictly between 0 and 1", () => {
    for (const bad of ["0", "1", "1.5", "-0.1"]) {
      const result = check(spec(`mask_rate ${bad}`, ENCODER, "E x 2"));
      expect(result.spec, bad).toBeUndefined();
      expect(result.diagnostics.map((d) => d.hint)).toContainEqual(
        expect.stringContaining("more than 0 and less than 1"),
      );
    }
    expect(codes(spec("mask_rate 0.999", ENCODER, "E x 2"))).toEqual([]);
  });

  it("says nothing on an all-bidirectional stack, softmax layers included", () => {
    const both = `${ENCODER}\n  layer S = softmax_attention { causal false }`;
    expect(codes(spec("mask_rate 0.2", both, "[E, S] x 2"))).toEqual([]);
  });

  it("warns once when a layer of the stack is causal, with a note at that layer's `causal`", () => {
    const layers = `${ENCODER}\n  layer C = linear_attention { causal true }`;
    const source = spec("mask_rate 0.2", layers, "[E, C, C] x 1");
    const result = check(source);
    expect(result.diagnostics.map((d) => d.code)).toEqual(["W0606"]);
    const [d] = result.diagnostics;
    expect(d!.message).toContain("layer `C` is causal");
    expect(d!.span.start.offset).toBe(source.indexOf("mask_rate"));
    expect(d!.related!.map((r) => r.span.start.offset)).toEqual([source.indexOf("causal true")]);
    // A warning only: the spec still resolves, with the value given.
    expect(result.spec!.model.maskRate).toBe(0.2);
  });

  it("points at the declaration of a layer that is causal by default", () => {
    const layers = `${ENCODER}\n  layer S = softmax_attention { }`;
    const source = spec("mask_rate 0.2", layers, "[E, S] x 1");
    const [d] = check(source).diagnostics;
    expect(d!.code).toBe("W0606");
    expect(d!.related!.map((r) => [r.span.start.offset, r.message])).toEqual([
      [source.indexOf("S = softmax"), "layer `S` is causal by default"],
    ]);
  });

  it("says nothing when the setting is left out, or when the causal layer is declared but unused", () => {
    expect(codes(spec("", "layer C = linear_attention { }", "C x 2"))).toEqual([]);
    const unused = `${ENCODER}\n  layer C = linear_attention { }`;
    expect(codes(spec("mask_rate 0.2", unused, "E x 2"))).toEqual(["W0601"]);
  });
});
