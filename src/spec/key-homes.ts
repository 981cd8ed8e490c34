// Where each key belongs, and the names users bring from elsewhere (Hugging Face configs, Megatron flags)
// for lasp's keys. An unknown key's hint comes from here: "did you mean `hidden`?" for `hidden_size`, or
// "`kv_heads` is a setting of `softmax_attention` layers" for a key written in the wrong block.
import { listWords, nearest } from "../diagnostics/suggest.js";
import { quote } from "../diagnostics/quote.js";
import { LINEAR_KEYS, MODEL_KEYS, PARALLEL_KEYS, RUN_KEYS, SOFTMAX_KEYS, type KeyRule } from "./schema.js";

/** The places settings are written: the three blocks and the two kinds of layer declaration. */
export type BlockId = "model" | "parallel" | "run" | "linear_attention" | "softmax_attention";

export const BLOCK_KEYS: Record<BlockId, readonly KeyRule[]> = {
  model: MODEL_KEYS,
  parallel: PARALLEL_KEYS,
  run: RUN_KEYS,
  linear_attention: LINEAR_KEYS,
  softmax_attention: SOFTMAX_KEYS,
};

/** The block a key table belongs to (tables are compared by identity: each block has its own). */
export function blockOfKeys(keys: readonly KeyRule[]): BlockId | undefined {
  return (Object.keys(BLOCK_KEYS) as BlockId[]).find((block) => BLOCK_KEYS[block] === keys);
}

/** Names from other tools, lower case, to lasp's key. `stack` stands for the depth of the model. */
export const KEY_ALIASES: Readonly<Record<string, string>> = {
  // model
  vocab_size: "vocab",
  n_vocab: "vocab",
  hidden_size: "hidden",
  d_model: "hidden",
  n_embd: "hidden",
  dim: "hidden",
  model_dim: "hidden",
  hidden_dim: "hidden",
  intermediate_size: "ffn",
  ffn_hidden_size: "ffn",
  ffn_dim: "ffn",
  n_inner: "ffn",
  d_ff: "ffn",
  num_attention_heads: "heads",
  num_heads: "heads",
  n_heads: "heads",
  n_head: "heads",
  attention_heads: "heads",
  head_size: "head_dim",
  kv_channels: "head_dim",
  rms_norm_eps: "norm_eps",
  layer_norm_eps: "norm_eps",
  layer_norm_epsilon: "norm_eps",
  layernorm_epsilon: "norm_eps",
  norm_epsilon: "norm_eps",
  eps: "norm_eps",
  norm_type: "norm",
  tie_word_embeddings: "tie_embeddings",
  normalization: "norm",
  num_hidden_layers: "stack",
  num_layers: "stack",
  n_layer: "stack",
  n_layers: "stack",
  layers: "stack",
  depth: "stack",
  // layers
  num_key_value_heads: "kv_heads",
  num_kv_heads: "kv_heads",
  rope_type: "rope_scaling",
  low_freq_factor: "rope_low_freq_factor",
  high_freq_factor: "rope_high_freq_factor",
  original_max_position_embeddings: "rope_original_max_positions",
  n_kv_heads: "kv_heads",
  kv_head: "kv_heads",
  num_query_groups: "kv_heads",
  rope_base: "rope_theta",
  rotary_base: "rope_theta",
  rotary_emb_base: "rope_theta",
  decay_rate: "decay",
  gamma: "decay",
  // run
  max_position_embeddings: "seq_len",
  seq_length: "seq_len",
  max_seq_len: "seq_len",
  max_seq_length: "seq_len",
  seqlen: "seq_len",
  sequence_length: "seq_len",
  context_length: "seq_len",
  n_positions: "seq_len",
  n_ctx: "seq_len",
  batch_size: "batch",
  micro_batch_size: "batch",
  torch_dtype: "dtype",
  precision: "dtype",
  max_steps: "steps",
  train_steps: "steps",
  train_iters: "steps",
  iterations: "steps",
  learning_rate: "lr",
  // run: training (Hugging Face TrainingArguments, Megatron-LM flags, llm.c)
  adam_epsilon: "adam_eps",
  eps_adam: "adam_eps",
  adam_beta1: "betas",
  adam_beta2: "betas",
  lr_warmup_iters: "warmup_steps",
  lr_warmup_steps: "warmup_steps",
  warmup_iters: "warmup_steps",
  warmup_iterations: "warmup_steps",
  lr_scheduler_type: "lr_schedule",
  lr_decay_style: "lr_schedule",
  lr_scheduler: "lr_schedule",
  min_learning_rate: "min_lr",
  max_grad_norm: "grad_clip",
  gradient_clipping: "grad_clip", // DeepSpeed's config
  clip_grad: "grad_clip",
  grad_norm_clip: "grad_clip",
  gradient_accumulation_steps: "accumulate",
  grad_accum: "accumulate",
  grad_accumulation_steps: "accumulate",
  save_steps: "checkpoint_every",
  save_interval: "checkpoint_every",
  checkpoint_interval: "checkpoint_every",
  save_total_limit: "keep_checkpoints",
  eval_steps: "eval_every",
  eval_interval: "eval_every",
  val_data: "eval_data",
  validation_data: "eval_data",
  random_seed: "seed",
  // run: packed documents (Hugging Face's eos_token_id, Megatron-LM's EOD token and --reset-attention-mask)
  eos_token_id: "eos_token",
  eos_id: "eos_token",
  eod_token: "eos_token",
  eod_token_id: "eos_token",
  reset_attention_mask: "documents",
  mean_document_length: "document_length",
  doc_len: "document_length",
  // parallel
  world_size: "gpus",
  num_gpus: "gpus",
  n_gpus: "gpus",
  context_parallel_size: "sequence",
  sequence_parallel_size: "sequence",
  cp_size: "sequence",
  sp_size: "sequence",
  data_parallel_size: "data",
  dp_size: "data",
  sequence_parallel: "sequence",
  data_parallel: "data",
};

/** The blocks a key may be written in (two for `causal`, none for an unknown key). */
export function homesOf(key: string): BlockId[] {
  if (key === "stack") return ["model"];
  return (Object.keys(BLOCK_KEYS) as BlockId[]).filter((block) =>
    BLOCK_KEYS[block].some((k) => k.key === key),
  );
}

/** Where a key is written, in words a hint can use. */
export function describeHome(block: BlockId): string {
  switch (block) {
    case "linear_attention":
      return "`linear_attention` layers, inside `layer NAME = linear_attention { ... }`";
    case "softmax_attention":
      return "`softmax_attention` layers, inside `layer NAME = softmax_attention { ... }`";
    default:
      return `the \`${block}\` block`;
  }
}

function describeHomes(homes: readonly BlockId[]): string {
  if (homes.length === 2 && homes.every((h) => h.endsWith("_attention"))) {
    return "layer declarations (`layer NAME = linear_attention { ... }` or `softmax_attention`)";
  }
  return homes.map(describeHome).join(" and ");
}

/** A sentence saying where `key` belongs, or undefined when it is not a key anywhere. */
export function whereKeyBelongs(key: string): string | undefined {
  const homes = homesOf(key);
  if (homes.length === 0) return undefined;
  if (key === "stack") return "the `stack` is written in the `model` block, after the layer declarations";
  return `${quote(key)} is a setting of ${describeHomes(homes)}`;
}

export interface KeySuggestion {
  hint: string;
  /** The key of `block` the user most likely meant, so that "missing" errors about it stay quiet. */
  meant?: { block: BlockId; key: string };
}

/** The hint for an unknown key `key` written in `block`. */
export function suggestKey(key: string, block: BlockId): KeySuggestion {
  const here = BLOCK_KEYS[block].map((k) => k.key);
  // A key of another block: say which.
  const belongs = whereKeyBelongs(key);
  if (belongs !== undefined) {
    const home = homesOf(key)[0]!;
    return { hint: belongs, meant: { block: home, key } };
  }
  const alias = KEY_ALIASES[key.toLowerCase()];
  if (alias !== undefined) {
    if (alias === "stack") {
      return {
        hint: "did you mean `stack`? the number of layers is the stack's length, for example `stack [L] x 16`",
        meant: { block: "model", key: "stack" },
      };
    }
    if (here.includes(alias)) return { hint: `did you mean ${quote(alias)}?`, meant: { block, key: alias } };
    const homes = homesOf(alias);
    return {
      hint: `did you mean ${quote(alias)}? it is a setting of ${describeHomes(homes)}`,
      meant: { block: homes[0]!, key: alias },
    };
  }
  const guess = nearest(key, here);
  if (guess !== undefined) return { hint: `did you mean ${quote(guess)}?`, meant: { block, key: guess } };
  const everywhere = [...new Set(Object.values(BLOCK_KEYS).flatMap((keys) => keys.map((k) => k.key)))];
  const elsewhere = nearest(key, everywhere);
  if (elsewhere !== undefined) {
    const homes = homesOf(elsewhere);
    return {
      hint: `did you mean ${quote(elsewhere)}? it is a setting of ${describeHomes(homes)}`,
      meant: { block: homes[0]!, key: elsewhere },
    };
  }
  return { hint: `keys here: ${listWords(here)}` };
}

/** The example setting of a key (`warmup 3`), wherever the key belongs. */
export function exampleOf(key: string): string | undefined {
  for (const keys of Object.values(BLOCK_KEYS)) {
    const rule = keys.find((k) => k.key === key);
    if (rule !== undefined) return rule.example;
  }
  return undefined;
}
