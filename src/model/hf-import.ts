// A spec's model from a Hugging Face config.json (`lasp init --from-hf`): a Llama-family config (LlamaConfig's
// keys, as Llama, Mistral without a sliding window, and the configs lasp writes have them) becomes a model block
// of the same shape, so that the checkpoint beside the config loads with `--load-weights`. `layers` turns it into
// linear attention (every layer) or a hybrid (one softmax layer in K, the last of each group), the linear layers
// keeping the config's key/value heads (`kv_heads`); a config lasp wrote (hf-config.ts) comes back layer for layer.
//
// What the program cannot compute is refused with the key named (biases, another activation, a sliding
// window); what it computes differently is said in a note (a `rope_scaling` other than `llama3` or `linear`).

/** What `lasp init` makes of the layers: the config's own, all linear attention, or one softmax layer in K. */
export type LayerChoice = { kind: "as-is" } | { kind: "linear" } | { kind: "hybrid"; every: number };

export interface ImportedModel {
  /** The model block's text, ready for a spec. */
  model: string;
  /** Layers, and how many are softmax attention. */
  layers: number;
  softmax: number;
  /** What the spec computes differently from the config's model. */
  notes: string[];
}

/** A config the spec cannot express: the sentence names the key. */
export class HfImportError extends Error {}

type Json = Record<string, unknown>;

const LINEAR = "decay none  feature_map identity  output_norm rms";

/** `within` names the object a key is in (`rope_scaling.`), "" at the top. */
function integer(config: Json, key: string, fallback?: number, within = ""): number {
  const value = config[key] ?? fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1)
    throw new HfImportError(
      `"${within}${key}" is ${value === undefined ? "missing" : JSON.stringify(value)}; a Llama-family config has a positive whole number there`,
    );
  return value;
}

function positive(config: Json, key: string, fallback?: number, within = ""): number {
  const value = config[key] ?? fallback;
  if (typeof value !== "number" || !(value > 0))
    throw new HfImportError(
      `"${within}${key}" is ${value === undefined ? "missing" : JSON.stringify(value)}; expected a positive number`,
    );
  return value;
}

/** A number as the spec language writes it (no trailing zeros, exponents where JavaScript uses them). */
const num = (x: number): string => String(x);

/** `kv_heads N` where a layer's key/value heads are fewer than its query heads. */
const kvSetting = (kvHeads: number, heads: number): string[] =>
  kvHeads !== heads ? [`kv_heads ${kvHeads}`] : [];

/** A linear layer of a config lasp wrote, as its settings. */
function linearSettings(layer: Json, heads: number): string {
  const decay = Array.isArray(layer["decay"]) ? (layer["decay"] as number[]) : [];
  const parts = [
    ...kvSetting(integer(layer, "num_key_value_heads", heads), heads),
    decay.length === 0 || decay.every((d) => d === 1)
      ? "decay none"
      : decay.every((d) => d === decay[0])
        ? `decay ${num(decay[0]!)}`
        : `decay [${decay.map(num).join(", ")}]`,
    `feature_map ${String(layer["feature_map"] ?? "identity")}`,
    `output_norm ${String(layer["output_norm"] ?? "rms")}`,
  ];
  if (layer["causal"] === false) parts.push("causal false");
  return parts.join("  ");
}

function softmaxSettings(
  kvHeads: number,
  heads: number,
  ropeTheta: number,
  rope: string,
  causal: boolean,
): string {
  const parts = [...kvSetting(kvHeads, heads), `rope_theta ${num(ropeTheta)}`];
  if (rope !== "") parts.push(rope);
  if (!causal) parts.push("causal false");
  return parts.join("  ");
}

/**
 * `rope_scaling` as the spec's settings: `llama3` and `linear` as they are (src/model/rope.ts computes the same
 * frequencies), none for a missing one or `default`; another type is a note (lasp's RoPE then uses the base
 * alone).
 */
function ropeSettings(scaling: unknown, at: string, notes: string[]): string {
  if (scaling === undefined || scaling === null) return "";
  if (typeof scaling !== "object" || Array.isArray(scaling))
    throw new HfImportError(`${at} is ${JSON.stringify(scaling)}; expected an object with "rope_type"`);
  const r = scaling as Json;
  const type = r["rope_type"] ?? r["type"];
  if (type === "default") return "";
  const within = "rope_scaling.";
  if (type === "linear")
    return `rope_scaling linear  rope_factor ${num(positive(r, "factor", undefined, within))}`;
  if (type === "llama3") {
    const factor = positive(r, "factor", undefined, within);
    const low = positive(r, "low_freq_factor", 1, within);
    const high = positive(r, "high_freq_factor", 4, within);
    const original = integer(r, "original_max_position_embeddings", undefined, within);
    return [
      `rope_scaling llama3  rope_factor ${num(factor)}`,
      ...(low !== 1 ? [`rope_low_freq_factor ${num(low)}`] : []),
      ...(high !== 4 ? [`rope_high_freq_factor ${num(high)}`] : []),
      `rope_original_max_positions ${original}`,
    ].join("  ");
  }
  notes.push(
    `${at} (${JSON.stringify(scaling)}) is not modelled: lasp scales RoPE as llama3 or linear only, so this spec's softmax layers use the base alone and differ from the config's model`,
  );
  return "";
}

/** The stack of `kinds` (one name per layer) as the shortest repeating pattern. */
function stackOf(kinds: string[]): string {
  for (let period = 1; period <= kinds.length; period++) {
    if (kinds.length % period !== 0) continue;
    const unit = kinds.slice(0, period);
    if (kinds.every((k, i) => k === unit[i % period])) {
      const repeat = kinds.length / period;
      return period === 1 ? `stack ${unit[0]} x ${repeat}` : `stack [${unit.join(", ")}] x ${repeat}`;
    }
  }
  return `stack [${kinds.join(", ")}]`;
}

export function importHfConfig(config: unknown, name: string, choice: LayerChoice): ImportedModel {
  if (typeof config !== "object" || config === null || Array.isArray(config))
    throw new HfImportError("it is not a JSON object");
  const c = config as Json;
  const vocab = integer(c, "vocab_size");
  const hidden = integer(c, "hidden_size");
  const ffn = integer(c, "intermediate_size");
  const count = integer(c, "num_hidden_layers");
  const heads = integer(c, "num_attention_heads");
  const headDim = integer(c, "head_dim", hidden % heads === 0 ? hidden / heads : undefined);
  const kvHeads = integer(c, "num_key_value_heads", heads);
  const ropeTheta = positive(c, "rope_theta", 10000);
  const act = c["hidden_act"] ?? "silu";
  if (act !== "silu" && act !== "swish")
    throw new HfImportError(`"hidden_act" is ${JSON.stringify(act)}; lasp's MLP is SwiGLU (silu)`);
  // Qwen2's config has no attention_bias key, but its q, k and v projections have biases.
  if (c["model_type"] === "qwen2")
    throw new HfImportError(
      `"model_type" is "qwen2": its q, k and v projections have biases, and lasp's have none`,
    );
  for (const key of ["attention_bias", "mlp_bias"])
    if (c[key] === true) throw new HfImportError(`"${key}" is true; lasp's projections have no biases`);
  if (c["sliding_window"] !== undefined && c["sliding_window"] !== null && c["use_sliding_window"] !== false)
    throw new HfImportError(
      `"sliding_window" is ${JSON.stringify(c["sliding_window"])}; lasp's softmax layers attend to every earlier token`,
    );
  const layerNorm = c["norm_type"] === "layer_norm";
  const eps = positive(c, layerNorm ? "layer_norm_eps" : "rms_norm_eps", 1e-5);
  const notes: string[] = [];
  const rope = ropeSettings(c["rope_scaling"], '"rope_scaling"', notes);

  // The layers: a config lasp wrote has one entry per layer; otherwise every layer is Llama's softmax attention.
  const own = Array.isArray(c["layer_configs"]) ? (c["layer_configs"] as Json[]) : undefined;
  if (own !== undefined && choice.kind !== "as-is")
    throw new HfImportError(
      "it describes each layer (`layer_configs`, as lasp writes it): its layers are taken as they are",
    );
  let settings: { type: "linear_attention" | "softmax_attention"; text: string }[];
  if (own !== undefined) {
    if (own.length !== count)
      throw new HfImportError(`"layer_configs" has ${own.length} entries for ${count} layers`);
    settings = own.map((layer) =>
      layer["layer_type"] === "linear_attention"
        ? { type: "linear_attention", text: linearSettings(layer, heads) }
        : {
            type: "softmax_attention",
            text: softmaxSettings(
              integer(layer, "num_key_value_heads", kvHeads),
              heads,
              positive(layer, "rope_theta", ropeTheta),
              "rope_scaling" in layer
                ? ropeSettings(layer["rope_scaling"], '"rope_scaling" of a layer', notes)
                : rope,
              layer["causal"] !== false,
            ),
          },
    );
  } else {
    if (choice.kind === "hybrid" && (choice.every < 2 || count % choice.every !== 0))
      throw new HfImportError(
        `its ${count} layers do not split into groups of ${choice.every} (one softmax layer in each); choose a divisor of ${count} above 1`,
      );
    const softmax = {
      type: "softmax_attention" as const,
      text: softmaxSettings(kvHeads, heads, ropeTheta, rope, true),
    };
    // Linear layers keep the config's key/value heads (`kv_heads`), so its k_proj and v_proj load into them.
    const linear = {
      type: "linear_attention" as const,
      text: [...kvSetting(kvHeads, heads), LINEAR].join("  "),
    };
    settings = Array.from({ length: count }, (_, i) =>
      choice.kind === "linear"
        ? linear
        : choice.kind === "hybrid" && (i + 1) % choice.every !== 0
          ? linear
          : softmax,
    );
  }
  // One `layer` per distinct setting: L, L2, ... for linear attention, S, S2, ... for softmax.
  const names = new Map<string, string>();
  const defs: string[] = [];
  for (const s of settings) {
    const key = `${s.type}{${s.text}}`;
    if (names.has(key)) continue;
    const base = s.type === "linear_attention" ? "L" : "S";
    const taken = [...names.values()].filter((n) => n.startsWith(base)).length;
    const label = taken === 0 ? base : `${base}${taken + 1}`;
    names.set(key, label);
    defs.push(`  layer ${label} = ${s.type} { ${s.text} }`);
  }
  const kinds = settings.map((s) => names.get(`${s.type}{${s.text}}`)!);
  const tie = c["tie_word_embeddings"] === true;
  const lines = [
    `model ${name} {`,
    `  vocab ${vocab}  hidden ${hidden}  ffn ${ffn}  heads ${heads}  head_dim ${headDim}`,
    `  norm ${layerNorm ? "layernorm" : "rms"}  norm_eps ${num(eps)}  tie_embeddings ${tie}` +
      (typeof c["mask_rate"] === "number" ? `  mask_rate ${num(c["mask_rate"])}` : ""),
    ...defs,
    `  ${stackOf(kinds)}`,
    "}",
  ];
  return {
    model: lines.join("\n"),
    layers: count,
    softmax: settings.filter((s) => s.type === "softmax_attention").length,
    notes,
  };
}
