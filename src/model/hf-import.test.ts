import { existsSync, mkdtempSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { main } from "../cli/main.js";
import { captureIo } from "../cli/test-io.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { hfConfig } from "./hf-config.js";
import { HfImportError, importHfConfig, type LayerChoice } from "./hf-import.js";
import { kvHeadsOf } from "./parameters.js";
import { modelTables } from "./tables.js";

/** Llama-3.2-1B's config.json as the Hub serves it (the keys that matter, and some that do not). */
const LLAMA = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  vocab_size: 128256,
  hidden_size: 2048,
  intermediate_size: 8192,
  num_hidden_layers: 16,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  head_dim: 64,
  hidden_act: "silu",
  rms_norm_eps: 1e-5,
  rope_theta: 500000.0,
  rope_scaling: {
    factor: 32.0,
    high_freq_factor: 4.0,
    low_freq_factor: 1.0,
    original_max_position_embeddings: 8192,
    rope_type: "llama3",
  },
  tie_word_embeddings: true,
  attention_bias: false,
  mlp_bias: false,
  max_position_embeddings: 131072,
  torch_dtype: "bfloat16",
};

const RUN = "\nparallel { gpus 1 }\nrun { seq_len 1K }\n";

function specOf(text: string, file = "s.lasp"): ResolvedSpec {
  const result = checkSource(file, text);
  if (result.spec === undefined) throw new Error(result.diagnostics.map((d) => d.message).join("\n"));
  return result.spec;
}
const imported = (config: object, choice: LayerChoice = { kind: "as-is" }) =>
  specOf(importHfConfig(config, "m", choice).model + RUN);

describe("a Hugging Face config as a spec's model (lasp init --from-hf)", () => {
  it("takes a Llama's shape, so that its checkpoint's tensors have the spec's names and shapes", () => {
    const spec = imported(LLAMA);
    expect(spec.model).toMatchObject({
      vocab: 128256,
      hidden: 2048,
      ffn: 8192,
      heads: 32,
      headDim: 64,
      norm: "rms",
      normEps: 1e-5,
      tieEmbeddings: true,
    });
    expect(spec.model.layers).toHaveLength(16);
    for (const layer of spec.model.layers)
      expect(layer).toMatchObject({
        type: "softmax_attention",
        kvHeads: 8,
        ropeTheta: 500000,
        ropeScaling: {
          type: "llama3",
          factor: 32,
          lowFreqFactor: 1,
          highFreqFactor: 4,
          originalMaxPositions: 8192,
        },
        causal: true,
      });
    // And lasp's config.json of it says the same as the Hub's.
    expect(hfConfig(spec)).toMatchObject({
      architectures: ["LlamaForCausalLM"],
      rope_theta: 500000,
      rope_scaling: LLAMA.rope_scaling,
    });
    // The parameters a transformers LlamaForCausalLM of this config has, by name and shape (tied: no lm_head).
    const rows = modelTables(spec, 1024).parameters.rows;
    const shape = (name: string) => rows.find((r) => r.name === name)?.shape;
    expect(shape("model.layers.0.self_attn.q_proj.weight")).toEqual([2048, 2048]);
    expect(shape("model.layers.0.self_attn.k_proj.weight")).toEqual([512, 2048]);
    expect(shape("model.layers.15.mlp.down_proj.weight")).toEqual([2048, 8192]);
    expect(shape("model.norm.weight")).toEqual([2048]);
    expect(shape("lm_head.weight")).toBeUndefined();
    expect(rows).toHaveLength(1 + 16 * 9 + 1);
  });

  it("makes every layer linear attention, or one softmax layer in K (the last of each group)", () => {
    // Llama 3.2's grouped-query k and v: the linear layers keep its 8 key/value heads, so every tensor of the
    // checkpoint has the spec's shape.
    expect(importHfConfig(LLAMA, "m", { kind: "hybrid", every: 4 }).notes).toEqual([]);
    const grouped = imported(LLAMA, { kind: "hybrid", every: 4 });
    expect(grouped.model.layers[0]).toMatchObject({ type: "linear_attention", kvHeads: 8 });
    const rows = modelTables(grouped, 1024).parameters.rows;
    expect(rows.find((r) => r.name === "model.layers.0.self_attn.k_proj.weight")?.shape).toEqual([512, 2048]);
    expect(rows.find((r) => r.name === "model.layers.0.self_attn.v_proj.weight")?.shape).toEqual([512, 2048]);
    // And lasp's config.json of it says so per layer, which comes back the same.
    const config = hfConfig(grouped);
    expect(config.layer_configs[0]).toMatchObject({ layer_type: "linear_attention", num_key_value_heads: 8 });
    expect(
      imported(JSON.parse(JSON.stringify(config))).model.layers.map((l) => kvHeadsOf(grouped.model, l)),
    ).toEqual(Array(16).fill(8));
    expect(
      imported({ ...LLAMA, num_key_value_heads: 32 }, { kind: "linear" }).model.layers[0],
    ).not.toHaveProperty("kvHeads");
    const linear = imported(LLAMA, { kind: "linear" });
    expect(linear.model.layers.every((l) => l.type === "linear_attention")).toBe(true);
    const hybrid = imported(LLAMA, { kind: "hybrid", every: 4 });
    expect(hybrid.model.layers.map((l) => l.type[0])).toEqual("llls".repeat(4).split(""));
    expect(() => importHfConfig(LLAMA, "m", { kind: "hybrid", every: 3 })).toThrow(
      "its 16 layers do not split into groups of 3 (one softmax layer in each); choose a divisor of 16 above 1",
    );
  });

  it.each(["tiny-hybrid", "tiny-linear", "retention-1b", "bidirectional-encoder", "tiny-baselines"])(
    "gives back the model of a config lasp wrote (%s), layer for layer",
    (name) => {
      const original = specOf(readFileSync(`examples/${name}.lasp`, "utf8"));
      const again = imported(JSON.parse(JSON.stringify(hfConfig(original))));
      // The per-head decays, however the spec wrote them (one value, a list, `retention`).
      const strip = (s: ResolvedSpec) =>
        s.model.layers.map(({ name: _, ...layer }) =>
          "decay" in layer ? { ...layer, decay: layer.decay.perHead } : layer,
        );
      expect(strip(again)).toEqual(strip(original));
      const { name: _a, kinds: _b, layers: _c, ...rest } = again.model;
      const { name: _d, kinds: _e, layers: _f, ...restOriginal } = original.model;
      expect(rest).toEqual(restOriginal);
    },
  );

  it("gives back each softmax layer's RoPE scaling of a config lasp wrote", () => {
    const original = specOf(`model two {
  vocab 512  hidden 256  ffn 512  heads 4
  layer A = softmax_attention { rope_theta 500000  rope_scaling llama3  rope_factor 8  rope_high_freq_factor 2  rope_original_max_positions 4096 }
  layer B = softmax_attention { kv_heads 2  rope_scaling linear  rope_factor 4 }
  layer C = linear_attention { }
  stack [A, B, C]
}${RUN}`);
    const config = hfConfig(original);
    // The layers disagree: only layer_configs holds a scaling, and transformers' Llama is not the model.
    expect(config.rope_scaling).toBeUndefined();
    expect(config.layer_configs[1]).toMatchObject({ rope_scaling: { rope_type: "linear", factor: 4 } });
    const again = imported(JSON.parse(JSON.stringify(config)));
    expect(again.model.layers.map((l) => (l.type === "softmax_attention" ? l.ropeScaling : l.type))).toEqual([
      { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 2, originalMaxPositions: 4096 },
      { type: "linear", factor: 4 },
      "linear_attention",
    ]);
  });

  it("refuses what lasp cannot compute, naming the key, and notes what it computes differently", () => {
    const refused = (edit: object) => () => importHfConfig({ ...LLAMA, ...edit }, "m", { kind: "as-is" });
    expect(refused({ attention_bias: true })).toThrow(
      '"attention_bias" is true; lasp\'s projections have no biases',
    );
    expect(refused({ model_type: "qwen2" })).toThrow(
      '"model_type" is "qwen2": its q, k and v projections have biases, and lasp\'s have none',
    );
    expect(refused({ hidden_act: "gelu" })).toThrow('"hidden_act" is "gelu"; lasp\'s MLP is SwiGLU (silu)');
    expect(refused({ sliding_window: 4096 })).toThrow('"sliding_window" is 4096');
    expect(refused({ vocab_size: undefined })).toThrow('"vocab_size" is missing');
    expect(refused({ num_hidden_layers: 2.5 })).toThrow('"num_hidden_layers" is 2.5');
    expect(() => importHfConfig([], "m", { kind: "as-is" })).toThrow(HfImportError);
    expect(refused({ rope_scaling: { rope_type: "llama3", factor: 32 } })).toThrow(
      '"rope_scaling.original_max_position_embeddings" is missing; a Llama-family config has a positive whole number there',
    );
    expect(refused({ rope_scaling: { rope_type: "linear" } })).toThrow(
      '"rope_scaling.factor" is missing; expected a positive number',
    );
    expect(refused({ rope_scaling: "llama3" })).toThrow(
      '"rope_scaling" is "llama3"; expected an object with "rope_type"',
    );
    const yarn = importHfConfig({ ...LLAMA, rope_scaling: { rope_type: "yarn", factor: 4 } }, "m", {
      kind: "as-is",
    });
    expect(yarn.notes).toEqual([
      '"rope_scaling" ({"rope_type":"yarn","factor":4}) is not modelled: lasp scales RoPE as llama3 or linear only, so this spec\'s softmax layers use the base alone and differ from the config\'s model',
    ]);
    expect(yarn.model).not.toContain("rope_scaling");
    // Older configs name the type `type`; `default` is no scaling.
    expect(imported({ ...LLAMA, rope_scaling: { type: "linear", factor: 2 } }).model.layers[0]).toMatchObject(
      {
        ropeScaling: { type: "linear", factor: 2 },
      },
    );
    expect(imported({ ...LLAMA, rope_scaling: { rope_type: "default" } }).model.layers[0]).toMatchObject({
      ropeScaling: { type: "none" },
    });
    // Mistral's keys without a window, and a config without head_dim or kv heads (their defaults).
    const { head_dim: _h, num_key_value_heads: _k, ...bare } = LLAMA;
    expect(imported({ ...bare, sliding_window: null }).model).toMatchObject({ headDim: 64 });
    expect(imported(bare).model.layers[0]).toMatchObject({ kvHeads: 32 });
  });
});

describe("lasp init", () => {
  const dir = mkdtempSync(join(tmpdir(), "lasp-init-"));
  const folder = join(dir, "llama");
  mkdirSync(folder);
  writeFileSync(
    join(folder, "config.json"),
    JSON.stringify({ ...LLAMA, rope_scaling: { rope_type: "yarn", factor: 4 } }),
  );

  it("writes a spec that checks clean, from a config or its folder, and says what it wrote", async () => {
    const file = join(dir, "llama-3.2-1b.lasp");
    const io = captureIo();
    expect(await main(["init", file, "--from-hf", folder, "--layers", "hybrid:4", "--gpus", "2"], io)).toBe(
      0,
    );
    expect(io.out).toBe(
      `wrote ${file}: 16 layers of 12 linear and 4 softmax attention; next: lasp inspect ${file}\n`,
    );
    expect(io.err).toContain('lasp: note: "rope_scaling"');
    const spec = specOf(readFileSync(file, "utf8"), file);
    expect(spec.model.name).toBe("llama_3_2_1b");
    // As `lasp fmt` would leave it.
    const fmt = captureIo();
    expect(await main(["fmt", "--check", file], fmt)).toBe(0);
    expect(spec.parallel.gpus).toBe(2);
    expect(spec.run).toMatchObject({ mode: "train", recomputeAuto: {} });
  });

  it("names the config's folder as the tokenizer when it holds one, relative to the spec", async () => {
    expect(specOf(readFileSync(join(dir, "llama-3.2-1b.lasp"), "utf8")).run.tokenizer).toEqual({
      kind: "none",
    });
    const withTokenizer = join(dir, "with-tokenizer");
    mkdirSync(withTokenizer);
    writeFileSync(join(withTokenizer, "config.json"), JSON.stringify(LLAMA));
    writeFileSync(join(withTokenizer, "tokenizer.json"), "{}");
    mkdirSync(join(dir, "specs"));
    const file = join(dir, "specs", "tok.lasp");
    expect(await main(["init", file, "--from-hf", withTokenizer], captureIo())).toBe(0);
    const text = readFileSync(file, "utf8");
    expect(text).toContain('tokenizer "../with-tokenizer"');
    expect(specOf(text, file).run.tokenizer).toEqual({ kind: "folder", path: "../with-tokenizer" });
  });

  it("never writes over a file, and says what is wrong with the config or the flags (exit 2)", async () => {
    const file = join(dir, "mine.lasp");
    writeFileSync(file, "my notes");
    const taken = captureIo();
    expect(await main(["init", file, "--from-hf", folder], taken)).toBe(2);
    expect(taken.err).toBe(`lasp: will not replace ${file}: it exists; name a new file\n`);
    expect(readFileSync(file, "utf8")).toBe("my notes");
    const fresh = join(dir, "fresh.lasp");
    const bad = captureIo();
    writeFileSync(join(dir, "bias.json"), JSON.stringify({ ...LLAMA, mlp_bias: true }));
    expect(await main(["init", fresh, "--from-hf", join(dir, "bias.json")], bad)).toBe(2);
    expect(bad.err).toBe(
      `lasp: --from-hf ${join(dir, "bias.json")}: "mlp_bias" is true; lasp's projections have no biases\n`,
    );
    const missing = captureIo();
    expect(await main(["init", fresh, "--from-hf", join(dir, "nowhere")], missing)).toBe(2);
    expect(missing.err).toBe(`lasp: --from-hf: cannot read ${join(dir, "nowhere")}: no such file\n`);
    writeFileSync(join(dir, "broken.json"), "{");
    const broken = captureIo();
    expect(await main(["init", fresh, "--from-hf", join(dir, "broken.json")], broken)).toBe(2);
    expect(broken.err).toMatch(
      new RegExp(`^lasp: --from-hf: cannot read ${join(dir, "broken.json")}: not JSON \\(`),
    );
    const layers = captureIo();
    expect(await main(["init", fresh, "--from-hf", folder, "--layers", "mamba"], layers)).toBe(2);
    expect(layers.err).toContain("--layers must be softmax");
    const length = captureIo();
    expect(await main(["init", fresh, "--from-hf", folder, "--seq-len", "8k tokens"], length)).toBe(2);
    expect(length.err).toBe(
      "lasp: --seq-len must be a token count as a spec writes it (8192, 8K, 1M), got 8k tokens\n",
    );
    const gpus = captureIo();
    expect(await main(["init", fresh, "--from-hf", folder, "--gpus", "0"], gpus)).toBe(2);
    expect(gpus.err).toContain("lasp: --gpus must be a whole number from 1 to 4096, got 0");
    // A shape the spec language refuses: its diagnostic, and nothing written.
    writeFileSync(join(dir, "huge.json"), JSON.stringify({ ...LLAMA, vocab_size: 2 ** 25 }));
    const huge = captureIo();
    expect(await main(["init", fresh, "--from-hf", join(dir, "huge.json")], huge)).toBe(2);
    expect(huge.err).toContain("vocab");
    expect(huge.err).toContain(
      `lasp: the spec made from ${join(dir, "huge.json")} does not check (above); it was not written`,
    );
    const named = captureIo();
    expect(await main(["init", join(dir, "fresh.txt"), "--from-hf", folder], named)).toBe(2);
    expect(named.err).toBe(`lasp: ${join(dir, "fresh.txt")}: a spec's name ends in .lasp\n`);
    expect(existsSync(fresh)).toBe(false);
  });
});
