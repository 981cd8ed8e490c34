// The model's parameter table: every weight tensor of the whole model, named as Hugging Face's Llama names
// them (so a safetensors file of these tensors loads into a Llama-shaped PyTorch model), with its shape and
// the part of the model it belongs to. The program's weight tables, `--save-weights`, config.json and the
// counts of `lasp inspect` all read this one list. Shapes are PyTorch's nn.Linear layout: [out, in].
//
// Linear-attention layers have the same four projections as softmax layers (k and v over all heads). Their
// output norm (`output_norm rms`) has no learned weight: the kernels (runtime/elementwise.cuh) and the CPU
// reference normalise each head's vector without a scale, as fla's RMSNorm with elementwise_affine=False. A
// learned scale would be one entry here, `model.layers.{i}.self_attn.o_norm.weight` [head_dim].
import type { LayerKind, ResolvedModel } from "../spec/resolved.js";

/** The parts `lasp inspect` counts separately. */
export const MODEL_PARTS = ["embedding", "attention", "mlp", "norms", "lmHead"] as const;
export type ModelPart = (typeof MODEL_PARTS)[number];

export interface ParameterTensor {
  /** Hugging Face Llama name, e.g. `model.layers.3.self_attn.q_proj.weight`. */
  name: string;
  /** PyTorch shape: [out, in] for a projection, [vocab, hidden] for the embedding and head. */
  shape: number[];
  part: ModelPart;
  /** The layer of the stack, for per-layer tensors. */
  layer?: number;
  /** Multiplies every token's activations (a GEMM weight); false for the embedding lookup and norm scales. */
  matmul: boolean;
}

export const elementsOf = (tensor: ParameterTensor): number => tensor.shape.reduce((a, b) => a * b, 1);

/** Key and value heads of a layer: grouped-query layers (softmax, or linear with `kv_heads`) have fewer. */
export function kvHeadsOf(model: ResolvedModel, layer: LayerKind): number {
  return layer.type === "softmax_attention" ? layer.kvHeads : (layer.kvHeads ?? model.heads);
}

/** The tensors of a norm over `width`: a weight, and a bias for LayerNorm. */
function norm(model: ResolvedModel, prefix: string, layer?: number): ParameterTensor[] {
  const at = layer === undefined ? {} : { layer };
  const weight = { name: `${prefix}.weight`, shape: [model.hidden], part: "norms" as const, matmul: false };
  const bias = { name: `${prefix}.bias`, shape: [model.hidden], part: "norms" as const, matmul: false };
  return model.norm === "layernorm"
    ? [
        { ...weight, ...at },
        { ...bias, ...at },
      ]
    : [{ ...weight, ...at }];
}

function layerTensors(model: ResolvedModel, kind: LayerKind, i: number): ParameterTensor[] {
  const { hidden, ffn, heads, headDim } = model;
  const p = `model.layers.${i}`;
  const kv = kvHeadsOf(model, kind) * headDim;
  const linear = (name: string, shape: number[], part: ModelPart): ParameterTensor => ({
    name: `${p}.${name}.weight`,
    shape,
    part,
    layer: i,
    matmul: true,
  });
  return [
    ...norm(model, `${p}.input_layernorm`, i),
    linear("self_attn.q_proj", [heads * headDim, hidden], "attention"),
    linear("self_attn.k_proj", [kv, hidden], "attention"),
    linear("self_attn.v_proj", [kv, hidden], "attention"),
    linear("self_attn.o_proj", [hidden, heads * headDim], "attention"),
    ...norm(model, `${p}.post_attention_layernorm`, i),
    linear("mlp.gate_proj", [ffn, hidden], "mlp"),
    linear("mlp.up_proj", [ffn, hidden], "mlp"),
    linear("mlp.down_proj", [hidden, ffn], "mlp"),
  ];
}

/** Every weight of the model in Hugging Face's order: embedding, layers in order, final norm, LM head. */
export function modelParameters(model: ResolvedModel): ParameterTensor[] {
  const embedding: ParameterTensor = {
    name: "model.embed_tokens.weight",
    shape: [model.vocab, model.hidden],
    part: "embedding",
    matmul: false,
  };
  const head: ParameterTensor[] = model.tieEmbeddings
    ? []
    : [{ name: "lm_head.weight", shape: [model.vocab, model.hidden], part: "lmHead", matmul: true }];
  return [
    embedding,
    ...model.layers.flatMap((kind, i) => layerTensors(model, kind, i)),
    ...norm(model, "model.norm"),
    ...head,
  ];
}

export interface ParameterCounts {
  /** Every distinct weight (a tied head counts once, as the embedding). */
  total: number;
  parts: Record<ModelPart, number>;
  /** Weights that multiply each token's activations, the LM head included even when tied. */
  matmul: number;
}

export function parameterCounts(model: ResolvedModel): ParameterCounts {
  const tensors = modelParameters(model);
  const parts = Object.fromEntries(MODEL_PARTS.map((p) => [p, 0])) as Record<ModelPart, number>;
  for (const t of tensors) parts[t.part] += elementsOf(t);
  const total = MODEL_PARTS.reduce((sum, p) => sum + parts[p], 0);
  // A tied head still multiplies every token by the (shared) embedding matrix.
  const tiedHead = model.tieEmbeddings ? model.vocab * model.hidden : 0;
  const matmul = tensors.filter((t) => t.matmul).reduce((sum, t) => sum + elementsOf(t), 0) + tiedHead;
  return { total, parts, matmul };
}
