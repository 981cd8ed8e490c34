import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { attentionForwardFlops, trainingFlopsPerToken } from "./flops.js";
import { elementsOf, modelParameters, parameterCounts } from "./parameters.js";

function specOf(source: string, file = "m.lasp"): ResolvedSpec {
  const result = checkSource(file, source);
  if (result.spec === undefined) throw new Error(result.diagnostics.map((d) => d.message).join("\n"));
  return result.spec;
}
const example = (name: string): ResolvedSpec =>
  specOf(readFileSync(`examples/${name}.lasp`, "utf8"), `examples/${name}.lasp`);

const tiny = (model: string, stack = "stack L x 2", layers = "layer L = linear_attention { }") =>
  specOf(`model m {
  vocab 100  hidden 256  ffn 512  heads 4  head_dim 64 ${model}
  ${layers}
  ${stack}
}
parallel { gpus 1 }
run { seq_len 1K }
`);

describe("the parameter table of Linear-Llama3-1B (examples/linear-llama3-1b.lasp)", () => {
  const spec = example("linear-llama3-1b");

  it("has the parameter count worked out by hand", () => {
    const embedding = 128256 * 2048; // 262,668,288
    const attention = 4 * (16 * 128) * 2048; // q, k, v, o: 16,777,216 (linear layers use every head for k, v)
    const mlp = 3 * 8192 * 2048; // gate, up, down: 50,331,648
    const norms = 2 * 2048; // input_layernorm, post_attention_layernorm (RMSNorm: a weight each)
    const layer = attention + mlp + norms; // 67,112,960
    const finalNorm = 2048;
    // tie_embeddings true: the LM head is the embedding, no lm_head.weight of its own.
    const total = embedding + 16 * layer + finalNorm;
    expect(total).toBe(1_336_477_696);
    expect(parameterCounts(spec.model).total).toBe(total);
    const tensors = modelParameters(spec.model);
    expect(tensors.reduce((s, t) => s + elementsOf(t), 0)).toBe(total);
  });

  it("counts each part, the tied head as zero", () => {
    expect(parameterCounts(spec.model).parts).toEqual({
      embedding: 262_668_288,
      attention: 16 * 16_777_216,
      mlp: 16 * 50_331_648,
      norms: 16 * 4096 + 2048,
      lmHead: 0,
    });
  });

  it("names and shapes the tensors as Hugging Face's Llama does, in its order", () => {
    const tensors = modelParameters(spec.model);
    expect(tensors).toHaveLength(1 + 16 * 9 + 1);
    expect(tensors.slice(0, 10).map((t) => [t.name, t.shape])).toEqual([
      ["model.embed_tokens.weight", [128256, 2048]],
      ["model.layers.0.input_layernorm.weight", [2048]],
      ["model.layers.0.self_attn.q_proj.weight", [2048, 2048]],
      ["model.layers.0.self_attn.k_proj.weight", [2048, 2048]],
      ["model.layers.0.self_attn.v_proj.weight", [2048, 2048]],
      ["model.layers.0.self_attn.o_proj.weight", [2048, 2048]],
      ["model.layers.0.post_attention_layernorm.weight", [2048]],
      ["model.layers.0.mlp.gate_proj.weight", [8192, 2048]],
      ["model.layers.0.mlp.up_proj.weight", [8192, 2048]],
      ["model.layers.0.mlp.down_proj.weight", [2048, 8192]],
    ]);
    expect(tensors.at(-1)).toMatchObject({ name: "model.norm.weight", shape: [2048] });
    expect(new Set(tensors.map((t) => t.name)).size).toBe(tensors.length);
  });

  it("reproduces the MFU issue 16 records for its PyTorch baseline (253.5 ms for 16K tokens, 52.9%)", () => {
    const flops = trainingFlopsPerToken(spec);
    // 6 x (16 layers x (q, k, v, o + gate, up, down) + the LM head, tied or not)
    expect(flops.weights).toBe(6 * (16 * (16_777_216 + 50_331_648) + 128256 * 2048));
    // per layer and head, forward: 4 x block x d (QK^T, PV in the 64-token block) + 4 x d x d (K^T V, Q S)
    expect(flops.attention).toBe(16 * 3 * 16 * (4 * 64 * 128 + 4 * 128 * 128));
    const mfu = (flops.perToken * (16384 / 0.2535)) / 989e12;
    expect(mfu.toFixed(3)).toBe("0.529");
  });
});

describe("the parameter table", () => {
  it("gives grouped-query softmax layers narrower k and v projections", () => {
    const spec = example("linear-llama3-1b-hybrid");
    const shape = (name: string) => modelParameters(spec.model).find((t) => t.name === name)?.shape;
    expect(shape("model.layers.3.self_attn.k_proj.weight")).toEqual([8 * 128, 2048]);
    expect(shape("model.layers.3.self_attn.v_proj.weight")).toEqual([8 * 128, 2048]);
    expect(shape("model.layers.3.self_attn.q_proj.weight")).toEqual([16 * 128, 2048]);
    expect(shape("model.layers.2.self_attn.k_proj.weight")).toEqual([16 * 128, 2048]);
  });

  it("has an LM head of its own unless the embeddings are tied, and counts it in the FLOPs either way", () => {
    const untied = tiny("");
    const tied = tiny("tie_embeddings true");
    expect(untied.model.tieEmbeddings).toBe(false);
    expect(modelParameters(untied.model).at(-1)).toMatchObject({ name: "lm_head.weight", shape: [100, 256] });
    expect(modelParameters(tied.model).map((t) => t.name)).not.toContain("lm_head.weight");
    expect(parameterCounts(untied.model).total - parameterCounts(tied.model).total).toBe(100 * 256);
    expect(parameterCounts(tied.model).matmul).toBe(parameterCounts(untied.model).matmul);
  });

  it("gives LayerNorm a bias beside each weight", () => {
    const names = modelParameters(tiny("norm layernorm").model).map((t) => t.name);
    expect(names).toContain("model.layers.1.input_layernorm.bias");
    expect(names).toContain("model.layers.1.post_attention_layernorm.bias");
    expect(names).toContain("model.norm.bias");
    expect(modelParameters(tiny("").model).map((t) => t.name)).not.toContain("model.norm.bias");
  });

  it("counts softmax attention products against the whole sequence (PaLM's 12 x H x d x T per layer)", () => {
    const spec = tiny("", "stack S", "layer S = softmax_attention { kv_heads 2 }");
    expect(attentionForwardFlops(spec, spec.model.layers[0]!)).toBe(4 * 4 * 1024 * 64);
    expect(trainingFlopsPerToken(spec).attention).toBe(12 * 4 * 64 * 1024);
  });
});
