// A Hugging Face style config.json for the model, written beside the safetensors weights so that a user can
// rebuild the model in PyTorch from the two files alone. The keys are LlamaConfig's where Llama has them;
// what Llama lacks is added the way recent Hugging Face configs add it (`layer_types`, as Qwen3-Next and
// Gemma do) plus one entry per layer in `layer_configs` with the attention settings of that layer.
//
// - `architectures`: `LlamaForCausalLM` when transformers' Llama is the model exactly (causal softmax layers
//   only, RMSNorm, one kv_heads and RoPE base); otherwise `LaspLinearLlamaForCausalLM`, or `...ForMaskedLM`
//   when every layer is bidirectional (an encoder, trained by masked-token prediction).
// - `num_key_value_heads`, `rope_theta` and `rope_scaling` are the softmax layers' when they all agree (linear
//   layers have no RoPE; their key/value heads are the top level's only in a model of linear layers alone);
//   when they differ only `layer_configs` has them. A grouped linear layer (`kv_heads`) names its own.
//   `rope_scaling` is transformers' (`rope_type` llama3 or linear), absent when unscaled.
// - `auto_map` (not for plain Llama): transformers' classes for the model are in `modeling_lasp.py`, which lasp
//   writes beside config.json (templates/hf/), so `AutoModelForCausalLM.from_pretrained(FOLDER,
//   trust_remote_code=True)` loads it (`AutoModelForMaskedLM` for an encoder).
// - Linear layers: `decay` (one value per head; 1 = none), `feature_map` on q and k, and `output_norm`, an
//   RMSNorm over each head's output with no learned weight (parameters.ts says why).
import type { LayerKind, ResolvedSpec, RopeScaling } from "../spec/resolved.js";
import { version } from "../io/package-info.js";
import { kvHeadsOf } from "./parameters.js";

export type LinearLayerConfig = {
  layer_type: "linear_attention";
  causal: boolean;
  /** Only when grouped (`kv_heads`): fewer key/value heads than query heads. */
  num_key_value_heads?: number;
  decay: number[];
  feature_map: string;
  output_norm: "rms" | "none";
};
/** transformers' `rope_scaling`: `rope_type` and that type's keys. */
export type HfRopeScaling =
  | { rope_type: "linear"; factor: number }
  | {
      rope_type: "llama3";
      factor: number;
      low_freq_factor: number;
      high_freq_factor: number;
      original_max_position_embeddings: number;
    };
export type SoftmaxLayerConfig = {
  layer_type: "full_attention";
  causal: boolean;
  num_key_value_heads: number;
  rope_theta: number;
  rope_scaling?: HfRopeScaling;
};

export interface HfConfig {
  architectures: string[];
  model_type: string;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads?: number;
  head_dim: number;
  hidden_act: "silu";
  /** `rms_norm` (RMSNorm, a weight) or `layer_norm` (LayerNorm, a weight and a bias). */
  norm_type: "rms_norm" | "layer_norm";
  rms_norm_eps?: number;
  layer_norm_eps?: number;
  rope_theta?: number;
  rope_scaling?: HfRopeScaling;
  max_position_embeddings: number;
  tie_word_embeddings: boolean;
  attention_bias: false;
  mlp_bias: false;
  torch_dtype: string;
  layer_types: Array<LinearLayerConfig["layer_type"] | SoftmaxLayerConfig["layer_type"]>;
  layer_configs: Array<LinearLayerConfig | SoftmaxLayerConfig>;
  /** A masked-token model's mask id: the last id of the vocabulary (runtime/tokens.cuh). */
  mask_token_id?: number;
  /** A masked-token model's share of input tokens masked in training (`mask_rate`). */
  mask_rate?: number;
  /** Where transformers finds the model's classes: the modeling file beside config.json (not for plain Llama). */
  auto_map?: Record<string, string>;
  /** Who wrote the file: a program replaces a config.json beside its weights only when lasp wrote it. */
  generated_by: string;
}

/** The file of transformers classes that a config with `auto_map` names, written beside config.json. */
export const HF_MODELING_FILE = "modeling_lasp.py";
const HF_MODULE = HF_MODELING_FILE.replace(/\.py$/, "");

const TORCH_DTYPES = { bf16: "bfloat16", fp16: "float16", fp32: "float32" } as const;

function hfRopeScaling(scaling: RopeScaling): HfRopeScaling | undefined {
  switch (scaling.type) {
    case "none":
      return undefined;
    case "linear":
      return { rope_type: "linear", factor: scaling.factor };
    case "llama3":
      return {
        rope_type: "llama3",
        factor: scaling.factor,
        low_freq_factor: scaling.lowFreqFactor,
        high_freq_factor: scaling.highFreqFactor,
        original_max_position_embeddings: scaling.originalMaxPositions,
      };
  }
}

function layerConfig(layer: LayerKind): LinearLayerConfig | SoftmaxLayerConfig {
  const rope = layer.type === "softmax_attention" ? hfRopeScaling(layer.ropeScaling) : undefined;
  return layer.type === "softmax_attention"
    ? {
        layer_type: "full_attention",
        causal: layer.causal,
        num_key_value_heads: layer.kvHeads,
        rope_theta: layer.ropeTheta,
        ...(rope !== undefined ? { rope_scaling: rope } : {}),
      }
    : {
        layer_type: "linear_attention",
        causal: layer.causal,
        ...(layer.kvHeads !== undefined ? { num_key_value_heads: layer.kvHeads } : {}),
        decay: [...layer.decay.perHead],
        feature_map: layer.featureMap,
        output_norm: layer.outputNorm,
      };
}

/** The one value every element has, or undefined when they differ or there are none. */
function shared<T>(values: T[]): T | undefined {
  return values.length > 0 && values.every((v) => v === values[0]) ? values[0] : undefined;
}

export function hfConfig(spec: ResolvedSpec): HfConfig {
  const { model } = spec;
  const softmax = model.layers.filter((l) => l.type === "softmax_attention");
  const kvHeads =
    softmax.length === 0
      ? shared(model.layers.map((l) => kvHeadsOf(model, l)))
      : shared(softmax.map((l) => l.kvHeads));
  const ropeTheta = shared(softmax.map((l) => l.ropeTheta));
  // Scalings compare by their JSON; one that all softmax layers share is also the config's own.
  const scalings = softmax.map((l) => JSON.stringify(hfRopeScaling(l.ropeScaling) ?? null));
  const ropeShared = shared(scalings) !== undefined;
  const ropeScaling = ropeShared ? hfRopeScaling(softmax[0]!.ropeScaling) : undefined;
  const encoder = model.layers.every((l) => !l.causal);
  const plainLlama =
    softmax.length === model.layers.length &&
    !encoder &&
    softmax.every((l) => l.causal) &&
    model.norm === "rms" &&
    kvHeads !== undefined &&
    ropeTheta !== undefined &&
    ropeShared;
  const eps = model.norm === "rms" ? { rms_norm_eps: model.normEps } : { layer_norm_eps: model.normEps };
  const task = encoder ? "MaskedLM" : "CausalLM";
  const autoMap = {
    AutoConfig: `${HF_MODULE}.LaspLinearLlamaConfig`,
    [`AutoModelFor${task}`]: `${HF_MODULE}.LaspLinearLlamaFor${task}`,
  };
  return {
    architectures: [plainLlama ? "LlamaForCausalLM" : `LaspLinearLlamaFor${task}`],
    model_type: plainLlama ? "llama" : "lasp_linear_llama",
    vocab_size: model.vocab,
    hidden_size: model.hidden,
    intermediate_size: model.ffn,
    num_hidden_layers: model.layers.length,
    num_attention_heads: model.heads,
    ...(kvHeads !== undefined ? { num_key_value_heads: kvHeads } : {}),
    head_dim: model.headDim,
    hidden_act: "silu",
    norm_type: model.norm === "rms" ? "rms_norm" : "layer_norm",
    ...eps,
    ...(ropeTheta !== undefined ? { rope_theta: ropeTheta } : {}),
    ...(ropeScaling !== undefined ? { rope_scaling: ropeScaling } : {}),
    max_position_embeddings: spec.run.seqLen - spec.run.padding, // the real length, not the padded one
    tie_word_embeddings: model.tieEmbeddings,
    attention_bias: false,
    mlp_bias: false,
    torch_dtype: TORCH_DTYPES[spec.run.dtype],
    layer_types: model.layers.map((l) => layerConfig(l).layer_type),
    layer_configs: model.layers.map(layerConfig),
    ...(encoder ? { mask_token_id: model.vocab - 1, mask_rate: model.maskRate } : {}),
    ...(plainLlama ? {} : { auto_map: autoMap }),
    generated_by: `lasp ${version()}`,
  };
}

/** config.json's text: two-space JSON and a final newline, as Hugging Face writes it. */
export function hfConfigText(spec: ResolvedSpec): string {
  return `${JSON.stringify(hfConfig(spec), null, 2)}\n`;
}
