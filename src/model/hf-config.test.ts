import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { hfConfig, hfConfigText } from "./hf-config.js";

function specOf(source: string, file = "m.lasp"): ResolvedSpec {
  const result = checkSource(file, source);
  if (result.spec === undefined) throw new Error(result.diagnostics.map((d) => d.message).join("\n"));
  return result.spec;
}
const example = (name: string): ResolvedSpec =>
  specOf(readFileSync(`examples/${name}.lasp`, "utf8"), `examples/${name}.lasp`);

const model = (body: string, extra = "") =>
  specOf(`model m {
  vocab 100  hidden 256  ffn 512  heads 4  head_dim 64 ${extra}
  ${body}
}
parallel { gpus 1 }
run { seq_len 1K  dtype fp16 }
`);

describe("config.json (Hugging Face style)", () => {
  it("has LlamaConfig's keys for the hybrid Linear-Llama3-1B, and one layer type per layer", () => {
    const config = hfConfig(example("linear-llama3-1b-hybrid"));
    expect(config).toMatchObject({
      architectures: ["LaspLinearLlamaForCausalLM"],
      vocab_size: 128256,
      hidden_size: 2048,
      intermediate_size: 8192,
      num_hidden_layers: 16,
      num_attention_heads: 16,
      num_key_value_heads: 8,
      head_dim: 128,
      rms_norm_eps: 1e-5,
      rope_theta: 500000,
      tie_word_embeddings: true,
      torch_dtype: "bfloat16",
    });
    expect(config.layer_types.slice(0, 4)).toEqual([
      "linear_attention",
      "linear_attention",
      "linear_attention",
      "full_attention",
    ]);
    expect(config.layer_configs[0]).toEqual({
      layer_type: "linear_attention",
      causal: true,
      decay: Array(16).fill(1),
      feature_map: "identity",
      output_norm: "rms",
    });
    expect(config.layer_configs[3]).toEqual({
      layer_type: "full_attention",
      causal: true,
      num_key_value_heads: 8,
      rope_theta: 500000,
    });
  });

  it("writes the decay of each head (RetNet's schedule here)", () => {
    const config = hfConfig(example("retention-1b"));
    const decay = (config.layer_configs[5] as { decay: number[] }).decay;
    expect(decay).toHaveLength(16);
    expect(decay[0]).toBeCloseTo(1 - 2 ** -5, 12);
    expect(decay[15]).toBeCloseTo(1 - 2 ** -20, 12);
  });

  it("calls a model of causal softmax layers with RMSNorm a Llama, which transformers loads as it is", () => {
    const config = hfConfig(model("layer S = softmax_attention { kv_heads 2 }\n  stack S x 2"));
    expect(config.architectures).toEqual(["LlamaForCausalLM"]);
    expect(config.model_type).toBe("llama");
    expect(config.num_key_value_heads).toBe(2);
    expect(config.rope_theta).toBe(10000);
    expect(config.torch_dtype).toBe("float16");
    // transformers has the classes: no modeling file to name.
    expect(config).not.toHaveProperty("auto_map");
  });

  it("names modeling_lasp.py's classes for transformers' Auto classes where transformers has no such model", () => {
    expect(hfConfig(example("linear-llama3-1b-hybrid")).auto_map).toEqual({
      AutoConfig: "modeling_lasp.LaspLinearLlamaConfig",
      AutoModelForCausalLM: "modeling_lasp.LaspLinearLlamaForCausalLM",
    });
    expect(hfConfig(example("bidirectional-encoder")).auto_map).toEqual({
      AutoConfig: "modeling_lasp.LaspLinearLlamaConfig",
      AutoModelForMaskedLM: "modeling_lasp.LaspLinearLlamaForMaskedLM",
    });
    // A softmax-only model that is not Llama (bidirectional here) needs the file too.
    const encoder = hfConfig(
      model("layer S = softmax_attention { kv_heads 2  causal false }\n  stack S x 2"),
    );
    expect(encoder.auto_map).toHaveProperty("AutoModelForMaskedLM");
  });

  it("calls an all-bidirectional model a masked LM and names LayerNorm's epsilon", () => {
    const config = hfConfig(example("bidirectional-encoder"));
    expect(config.architectures).toEqual(["LaspLinearLlamaForMaskedLM"]);
    expect(config.norm_type).toBe("layer_norm");
    expect(config.layer_norm_eps).toBe(1e-5);
    expect(config).not.toHaveProperty("rms_norm_eps");
    expect(config).not.toHaveProperty("rope_theta");
    expect(config.num_key_value_heads).toBe(16);
    expect([config.mask_token_id, config.mask_rate]).toEqual([31999, 0.15]);
    const rate = hfConfig(
      model("layer E = linear_attention { causal false }\n  stack E x 1", "mask_rate 0.3"),
    );
    expect(rate.mask_rate).toBe(0.3);
    // A causal model trains by the next token: no mask to describe.
    expect(hfConfig(example("linear-llama3-1b"))).not.toHaveProperty("mask_rate");
  });

  it("leaves kv heads and RoPE base to the layers when the softmax layers disagree", () => {
    const config = hfConfig(
      model(`layer A = softmax_attention { kv_heads 2  rope_theta 1000 }
  layer B = softmax_attention { kv_heads 4 }
  stack [A, B]`),
    );
    expect(config).not.toHaveProperty("num_key_value_heads");
    expect(config).not.toHaveProperty("rope_theta");
    expect(config.architectures).toEqual(["LaspLinearLlamaForCausalLM"]);
    expect(
      config.layer_configs.map((l) => (l as { num_key_value_heads: number }).num_key_value_heads),
    ).toEqual([2, 4]);
  });

  it("is JSON that reads back to the same object", () => {
    const spec = example("linear-llama3-8b-hybrid");
    const text = hfConfigText(spec);
    expect(text.endsWith("}\n")).toBe(true);
    expect(JSON.parse(text)).toEqual(hfConfig(spec));
    expect(JSON.parse(text).tie_word_embeddings).toBe(false);
  });
});
