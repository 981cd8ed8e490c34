// Writes the config.json (and `tokenizer bytes`' files) that lasp writes for each of a set of small models (src/model/hf-config.ts, through
// dist/), one folder per model, for bench/gpu/hf_modeling_check.py. From the repository root, after
// `npm run build`:
//   node bench/gpu/hf-configs.mjs OUT_DIR
// prints the folders it wrote, one a line.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkSource } from "../../dist/src/check/front-end.js";
import { hfConfigText } from "../../dist/src/model/hf-config.js";
import { tokenizerFiles } from "../../dist/src/model/byte-tokenizer.js";

const softmax = "softmax_attention { kv_heads 2  rope_theta 10000 }";
const llama3 =
  "softmax_attention { kv_heads 2  rope_theta 500000  rope_scaling llama3  rope_factor 8  rope_original_max_positions 32 }";

// name -> [model settings, layers, run settings]
const MODELS = {
  "linear-plain": [
    "tie_embeddings true",
    "layer L = linear_attention { decay none  feature_map identity  output_norm rms }\n stack L x 2",
  ],
  // The byte vocabulary of `lasp tokens` with its tokenizer.
  bytes: [
    "tie_embeddings true",
    "layer L = linear_attention { decay 0.99 }\n stack L x 2",
    "tokenizer bytes",
  ],
  "linear-retention-untied": [
    "tie_embeddings false",
    "layer L = linear_attention { decay retention  feature_map identity  output_norm none }\n stack L x 2",
  ],
  "linear-maps-grouped": [
    "",
    "layer A = linear_attention { kv_heads 2  decay 0.9  feature_map elu_plus_one }\n" +
      "layer B = linear_attention { decay lightning  feature_map silu }\n" +
      "layer C = linear_attention { feature_map relu  output_norm none }\n stack [A, B, C]",
  ],
  hybrid: ["", `layer L = linear_attention { kv_heads 2 }\n layer S = ${llama3}\n stack [L, L, S] x 2`],
  "hybrid-layernorm": [
    "norm layernorm  tie_embeddings false",
    `layer L = linear_attention { decay 0.95 }\n layer S = ${softmax}\n stack [S, L]`,
  ],
  // transformers' own LlamaForCausalLM (no modeling file): the config alone must make it lasp's model.
  llama: ["tie_embeddings true", `layer S = ${llama3}\n stack S x 2`],
  // An encoder's byte tokenizer has the mask token at the last id (vocab 257 and up).
  "encoder-bytes": [
    "tie_embeddings true  mask_rate 0.15",
    "layer E = linear_attention { causal false }\n stack E x 2",
    "tokenizer bytes",
  ],
  encoder: [
    "norm layernorm  tie_embeddings true  mask_rate 0.15",
    "layer E = linear_attention { causal false  output_norm rms }\n" +
      "layer F = softmax_attention { kv_heads 4  causal false }\n stack [E, F, E]",
  ],
};

const out = process.argv[2];
if (out === undefined) {
  console.error("usage: node bench/gpu/hf-configs.mjs OUT_DIR");
  process.exit(2);
}
for (const [name, [settings, layers, run = ""]] of Object.entries(MODELS)) {
  const vocab = run.includes("tokenizer bytes") ? (settings.includes("mask_rate") ? 300 : 256) : 97;
  const source = `model m {
  vocab ${vocab}  hidden 128  ffn 160  heads 4  head_dim 64  ${settings}
  ${layers}
}
parallel { gpus 1 }
run { seq_len 256  dtype bf16  ${run} }
`;
  const result = checkSource(`${name}.lasp`, source);
  if (result.spec === undefined) {
    console.error(`${name}: ${result.diagnostics.map((d) => d.message).join("; ")}`);
    process.exit(1);
  }
  const folder = join(out, name);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, "config.json"), hfConfigText(result.spec));
  for (const file of tokenizerFiles(result.spec)) writeFileSync(join(folder, file.name), file.text);
  console.log(folder);
}
