// The keys each block accepts, what values they take, their defaults and one-line docs. The checker reads
// settings through this table, and grammar/README.md's key reference is generated from it (a test keeps
// the two in sync), so the docs cannot drift from what is accepted.

export type ValueRule =
  /** `auto`: the word `auto` is accepted too (the planner picks the number, src/plan/auto.ts). */
  | { type: "int"; min: number; max: number; auto?: boolean }
  | { type: "float"; min: number; max: number; minExclusive?: boolean; maxExclusive?: boolean }
  | { type: "enum"; words: readonly string[] }
  | { type: "bool" }
  | { type: "decay" }
  | { type: "data" }
  /** A fixed number of numbers in brackets, each in the range of `item` (`betas [0.9, 0.95]`). */
  | { type: "numbers"; count: number; item: FloatRule }
  /** A file path in quotes, or the word `none`. */
  | { type: "path" }
  /** `none`, `bytes`, or a tokenizer's folder in quotes. */
  | { type: "tokenizer" };

export type FloatRule = Extract<ValueRule, { type: "float" }>;

export interface KeyRule {
  key: string;
  rule: ValueRule;
  required?: boolean;
  /** The default, as a user would write it (shown in docs); `undefined` when required or derived. */
  default?: string;
  /** A valid setting to suggest when the key is missing. */
  example: string;
  doc: string;
}

export const BOOLEAN_WORDS: Record<string, boolean> = {
  true: true,
  false: false,
  on: true,
  off: false,
  yes: true,
  no: false,
};

export const LR_SCHEDULES = ["cosine", "linear", "constant"] as const;
export const DOCUMENT_BOUNDARIES = ["none", "eos", "index"] as const;

export const LAYER_KINDS = ["linear_attention", "softmax_attention"] as const;
export const DECAY_SCHEDULES = ["none", "retention", "lightning"] as const;

const int = (min: number, max: number): ValueRule => ({ type: "int", min, max });

export const MODEL_KEYS: readonly KeyRule[] = [
  { key: "vocab", rule: int(1, 2 ** 24), required: true, example: "vocab 128256", doc: "vocabulary size" },
  { key: "hidden", rule: int(1, 65536), required: true, example: "hidden 2048", doc: "model width" },
  { key: "ffn", rule: int(1, 262144), required: true, example: "ffn 8192", doc: "feed-forward inner width" },
  { key: "heads", rule: int(1, 1024), required: true, example: "heads 16", doc: "query heads per layer" },
  {
    key: "head_dim",
    rule: int(1, 1024),
    example: "head_dim 128",
    doc: "dimension of one head (64 or 128); default hidden / heads",
  },
  {
    key: "norm",
    rule: { type: "enum", words: ["rms", "layernorm"] },
    default: "rms",
    example: "norm rms",
    doc: "block normalisation",
  },
  {
    key: "norm_eps",
    rule: { type: "float", min: 0, max: 1, minExclusive: true },
    default: "1e-5",
    example: "norm_eps 1e-5",
    doc: "epsilon of the block normalisation",
  },
  {
    key: "tie_embeddings",
    rule: { type: "bool" },
    default: "false",
    example: "tie_embeddings true",
    doc: "the LM head is the token embedding transposed (no `lm_head.weight` of its own)",
  },
  {
    key: "mask_rate",
    rule: { type: "float", min: 0, max: 1, minExclusive: true, maxExclusive: true },
    default: "0.15",
    example: "mask_rate 0.15",
    doc: "share of the input tokens masked when the model trains by masked-token prediction (every layer bidirectional)",
  },
];

export const LINEAR_KEYS: readonly KeyRule[] = [
  {
    key: "decay",
    rule: { type: "decay" },
    default: "none",
    example: "decay 0.99",
    doc: "per-head decay: `none`, one value in (0, 1], a list with one value per head, `retention` or `lightning`",
  },
  {
    key: "feature_map",
    rule: { type: "enum", words: ["identity", "elu_plus_one", "relu", "silu"] },
    default: "identity",
    example: "feature_map identity",
    doc: "applied to q and k before the products; a non-negative one (`elu_plus_one`, `relu`) on a bidirectional layer followed by others loses their Wq and Wk gradients to bf16 rounding (W0610)",
  },
  {
    key: "output_norm",
    rule: { type: "enum", words: ["rms", "none"] },
    default: "rms",
    example: "output_norm rms",
    doc: "RMSNorm over the head dimension of the output",
  },
  {
    key: "causal",
    rule: { type: "bool" },
    default: "true",
    example: "causal true",
    doc: "causal (true) or bidirectional (false)",
  },
  {
    key: "kv_heads",
    rule: int(1, 1024),
    example: "kv_heads 8",
    doc: "key/value heads, each shared by heads / kv_heads query heads, as a grouped-query checkpoint's k_proj and v_proj have them; default heads",
  },
];

export const SOFTMAX_KEYS: readonly KeyRule[] = [
  {
    key: "kv_heads",
    rule: int(1, 1024),
    example: "kv_heads 8",
    doc: "key/value heads (grouped-query attention); default heads",
  },
  {
    key: "rope_theta",
    rule: { type: "float", min: 0, max: 1e12, minExclusive: true },
    default: "10000",
    example: "rope_theta 500000",
    doc: "RoPE base",
  },
  {
    key: "rope_scaling",
    rule: { type: "enum", words: ["none", "llama3", "linear"] },
    default: "none",
    example: "rope_scaling llama3",
    doc: "RoPE frequencies scaled as Hugging Face's `rope_scaling` of that `rope_type`: `llama3` (Llama 3.1 to 3.3: frequencies whose wavelength passes the original context divided by `rope_factor`, those well inside it kept, a blend between), `linear` (all divided by `rope_factor`)",
  },
  {
    key: "rope_factor",
    rule: { type: "float", min: 1, max: 1e6 },
    example: "rope_factor 32",
    doc: "`rope_scaling`'s `factor`; needed with `llama3` and `linear`",
  },
  {
    key: "rope_low_freq_factor",
    rule: { type: "float", min: 0, max: 1e6, minExclusive: true },
    default: "1",
    example: "rope_low_freq_factor 1",
    doc: "`rope_scaling llama3`'s `low_freq_factor`: wavelengths past original / this are divided by `rope_factor`",
  },
  {
    key: "rope_high_freq_factor",
    rule: { type: "float", min: 0, max: 1e6, minExclusive: true },
    default: "4",
    example: "rope_high_freq_factor 4",
    doc: "`rope_scaling llama3`'s `high_freq_factor`: wavelengths under original / this are kept",
  },
  {
    key: "rope_original_max_positions",
    rule: int(1, 1 << 30),
    example: "rope_original_max_positions 8192",
    doc: "`rope_scaling llama3`'s `original_max_position_embeddings`, the context the model was first trained for; needed with `llama3`",
  },
  {
    key: "causal",
    rule: { type: "bool" },
    default: "true",
    example: "causal true",
    doc: "causal mask from global positions",
  },
];

/**
 * `linear auto`, `softmax auto`, `layout auto`, `sequence auto`: the checker puts the key's default in the
 * resolved spec (for `sequence`, all of `gpus`) and lists the key in `parallel.auto`; the command line's loader
 * (src/plan/auto.ts) then picks the fastest choice.
 */
export const AUTO = "auto";
export const AUTO_KEYS = ["sequence", "linear", "softmax", "layout"] as const;
export type AutoKey = (typeof AUTO_KEYS)[number];

export const PARALLEL_KEYS: readonly KeyRule[] = [
  { key: "gpus", rule: int(1, 4096), example: "gpus 8", doc: "total GPUs; default sequence x data" },
  {
    key: "sequence",
    rule: { type: "int", min: 1, max: 4096, auto: true },
    example: "sequence 8",
    doc: "sequence-parallel group size W; default gpus / data; `auto`: the split of `gpus` into sequence x data that `lasp plan` ranks first",
  },
  { key: "data", rule: int(1, 4096), default: "1", example: "data 1", doc: "data-parallel group size" },
  {
    key: "linear",
    rule: { type: "enum", words: ["lasp2", "lasp1", "allscan", "ulysses", AUTO] },
    default: "lasp2",
    example: "linear lasp2",
    doc: "schedule of linear-attention layers (`allscan`: ZeCO's pipelined state scan, docs/ALLSCAN.md); `auto`: the fastest by `lasp plan`'s model (H100)",
  },
  {
    key: "scan_blocks",
    rule: int(1, 128),
    default: "4",
    example: "scan_blocks 4",
    doc: "`linear allscan`: blocks K each state travels in (a divisor of head_dim), so the chain pipelines",
  },
  {
    key: "softmax",
    rule: { type: "enum", words: ["allgather", "ring", "ulysses", AUTO] },
    default: "allgather",
    example: "softmax allgather",
    doc: "schedule of softmax layers (`allgather` is LASP-2H); `auto` as for `linear`",
  },
  {
    key: "layout",
    rule: { type: "enum", words: ["contiguous", "zigzag", AUTO] },
    default: "contiguous",
    example: "layout zigzag",
    doc: "how the sequence is split over ranks, the same for every layer; `auto` as for `linear`",
  },
  {
    key: "overlap",
    rule: { type: "bool" },
    default: "on",
    example: "overlap on",
    doc: "overlap communication with computation",
  },
];

export const RUN_KEYS: readonly KeyRule[] = [
  {
    key: "seq_len",
    rule: int(64, 2 ** 31),
    required: true,
    example: "seq_len 64K",
    doc: "global sequence length in tokens; one that does not split into equal pieces of whole 64-token blocks is padded up to the next that does (W0612), the padding a document of its own",
  },
  {
    key: "batch",
    rule: int(1, 65536),
    default: "1",
    example: "batch 1",
    doc: "sequences per step, split over data-parallel ranks",
  },
  {
    key: "dtype",
    rule: { type: "enum", words: ["bf16", "fp16", "fp32"] },
    default: "bf16",
    example: "dtype bf16",
    doc: "activation and weight type (states and softmax statistics are fp32)",
  },
  {
    key: "recompute",
    rule: { type: "enum", words: ["none", "norms", "mlp", AUTO] },
    default: "norms",
    example: "recompute mlp",
    doc: "what the backward pass recomputes instead of keeping: `norms`, each block norm's output (one pass over the residual stream per norm); `mlp`, the norms and each layer's gate and up products (one more GEMM per layer, less activation memory); `none` keeps both norms' outputs (2 x hidden more bf16 values per token and layer, the fastest); `auto`, the first of none, norms, mlp whose memory fits the GPU (`lasp run`: the smallest it finds; `lasp inspect`: its --machine or --gpu-memory; `lasp compile`: its --gpu-memory; else an 80 GB H100)",
  },
  {
    key: "steps",
    rule: int(1, 1e9),
    default: "10",
    example: "steps 20",
    doc: "timed steps, or optimizer steps in train mode",
  },
  {
    key: "warmup",
    rule: int(0, 1e6),
    default: "3",
    example: "warmup 3",
    doc: "untimed steps before a benchmark",
  },
  {
    key: "mode",
    rule: { type: "enum", words: ["bench", "verify", "train"] },
    default: "bench",
    example: "mode bench",
    doc: "what the program does",
  },
  {
    key: "seed",
    rule: int(0, 2 ** 32 - 1),
    default: "0",
    example: "seed 0",
    doc: "seed of weights and synthetic data",
  },
  {
    key: "lr",
    rule: { type: "float", min: 0, max: 1, minExclusive: true },
    default: "3e-4",
    example: "lr 3e-4",
    doc: "AdamW's peak learning rate (train mode), reached at the end of `warmup_steps`",
  },
  {
    key: "data",
    rule: { type: "data" },
    default: "synthetic",
    example: 'data "tokens.bin"',
    doc: "`synthetic` or a token file path in quotes",
  },
  // Packed documents (issue 19): checked and resolved; the program does not stop attention at them yet (E0701).
  {
    key: "documents",
    rule: { type: "enum", words: DOCUMENT_BOUNDARIES },
    default: "none",
    example: "documents eos",
    doc: "where documents end in the packed sequence, so that attention stops there: `none` (attention crosses the whole sequence), `eos` (after each `eos_token`), or `index` (from the `.idx` of a Megatron dataset given as `data`)",
  },
  {
    key: "eos_token",
    rule: int(0, 2 ** 24 - 1),
    example: "eos_token 50256",
    doc: "with `documents eos`: the token id that ends each document (GPT-2's `<|endoftext|>` is 50256), below `vocab`; default none: required with `documents eos`",
  },
  {
    key: "document_length",
    rule: int(1, 2 ** 31),
    default: "2K",
    example: "document_length 2K",
    doc: "with `documents eos` and `data synthetic`: the mean length in tokens of the documents drawn from `seed`",
  },
  // Training settings (train mode: templates/runtime/train.cuh and optimizer.cuh).
  {
    key: "betas",
    rule: {
      type: "numbers",
      count: 2,
      item: { type: "float", min: 0, max: 1, minExclusive: true, maxExclusive: true },
    },
    default: "[0.9, 0.95]",
    example: "betas [0.9, 0.95]",
    doc: "AdamW's decay rates of the first and second moment (0.95 for the second, as Llama and GPT-3 pre-training use)",
  },
  {
    key: "adam_eps",
    rule: { type: "float", min: 0, max: 1, minExclusive: true },
    default: "1e-8",
    example: "adam_eps 1e-8",
    doc: "AdamW's epsilon, added to the root of the second moment",
  },
  {
    key: "weight_decay",
    rule: { type: "float", min: 0, max: 1 },
    default: "0.1",
    example: "weight_decay 0.1",
    doc: "AdamW's decoupled weight decay, on every weight matrix, the token embedding and LM head included (as Megatron-LM, Llama and llm.c do); never on norm gains or biases",
  },
  {
    key: "warmup_steps",
    rule: int(0, 1e9),
    example: "warmup_steps 100",
    doc: "optimizer steps over which the learning rate rises linearly from 0 to `lr` (not `warmup`, the untimed steps of a benchmark); default steps / 100, rounded down",
  },
  {
    key: "lr_schedule",
    rule: { type: "enum", words: LR_SCHEDULES },
    default: "cosine",
    example: "lr_schedule cosine",
    doc: "how the learning rate falls from `lr` to `min_lr` after the warmup, over the remaining steps",
  },
  {
    key: "min_lr",
    rule: { type: "float", min: 0, max: 1 },
    example: "min_lr 3e-5",
    doc: "the learning rate at the last step, an absolute value at most `lr` (ignored by `lr_schedule constant`); default lr / 10",
  },
  {
    key: "grad_clip",
    rule: { type: "float", min: 0, max: 1e6 },
    default: "1.0",
    example: "grad_clip 1.0",
    doc: "the most the global gradient norm (over every rank's shard) may be before the gradients are scaled down; 0 turns clipping off",
  },
  {
    key: "accumulate",
    rule: int(1, 65536),
    default: "1",
    example: "accumulate 4",
    doc: "micro-batches whose gradients are summed into one optimizer step (each of `batch` sequences)",
  },
  {
    key: "checkpoint_every",
    rule: int(0, 1e9),
    default: "0",
    example: "checkpoint_every 1000",
    doc: "optimizer steps between checkpoints; 0: only at the end (and when the run is stopped by a signal)",
  },
  {
    key: "keep_checkpoints",
    rule: int(0, 1e6),
    default: "3",
    example: "keep_checkpoints 3",
    doc: "how many of the latest checkpoints to keep on disk; 0 keeps every one",
  },
  {
    key: "eval_data",
    rule: { type: "path" },
    default: "none",
    example: 'eval_data "val.bin"',
    doc: "held-out tokens for validation loss and perplexity: a token file path in quotes, or `none`",
  },
  {
    key: "eval_every",
    rule: int(0, 1e9),
    default: "0",
    example: "eval_every 250",
    doc: "optimizer steps between evaluations on `eval_data` (and one at the end); 0: never",
  },
  {
    key: "tokenizer",
    rule: { type: "tokenizer" },
    default: "none",
    example: "tokenizer bytes",
    doc: 'the tokenizer written beside config.json in checkpoints and saved weights, for transformers\' AutoTokenizer: `bytes` (one token per byte, what `lasp tokens` writes), a Hugging Face folder in quotes whose tokenizer files are copied (`"Llama-3.2-1B"`, relative to the spec), or `none`',
  },
];

/** The stack's repeat counts and the flattened depth. */
export const MAX_REPEAT = 10000;
export const MAX_LAYERS = 10000;
