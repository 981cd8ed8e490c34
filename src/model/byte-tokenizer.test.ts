import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { generateProgram } from "../codegen/generate.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { byteAlphabet, tokenizerFiles } from "./byte-tokenizer.js";

const specOf = (run: string): ResolvedSpec => {
  const result = checkSource(
    "m.lasp",
    `model m {
  vocab 256  hidden 256  ffn 512  heads 4  head_dim 64
  layer L = linear_attention { }
  stack L x 2
}
parallel { gpus 1 }
run { seq_len 2K  dtype bf16  mode train  ${run} }
`,
  );
  if (result.spec === undefined) throw new Error(result.diagnostics.map((d) => d.message).join("\n"));
  return result.spec;
};

describe("tokenizer bytes", () => {
  it("shows each byte as GPT-2's byte-level alphabet does: printable Latin-1 as itself, the rest from U+0100", () => {
    const alphabet = byteAlphabet();
    expect(alphabet).toHaveLength(256);
    expect(new Set(alphabet).size).toBe(256);
    expect(alphabet[65]).toBe("A");
    expect(alphabet[0x21]).toBe("!");
    expect(alphabet[0xe9]).toBe("é");
    // The bytes that are not printable, in order: 0 -> U+0100, ..., space (32) -> U+0120 "Ġ", newline "Ċ".
    expect(alphabet[0]).toBe("\u0100");
    expect(alphabet[32]).toBe("Ġ");
    expect(alphabet[10]).toBe("Ċ");
    expect(alphabet[0xad]).toBe("\u0143");
  });

  it("is a BPE model without merges whose ids are the byte values, with the byte-level pre-tokenizer and decoder", () => {
    const files = tokenizerFiles(specOf("tokenizer bytes"));
    expect(files.map((f) => f.name)).toEqual(["tokenizer.json", "tokenizer_config.json"]);
    const tokenizer = JSON.parse(files[0]!.text);
    expect(tokenizer.model.type).toBe("BPE");
    expect(tokenizer.model.merges).toEqual([]);
    const vocab = tokenizer.model.vocab as Record<string, number>;
    expect(Object.values(vocab).sort((a, b) => a - b)).toEqual([...Array(256).keys()]);
    expect(vocab["Ġ"]).toBe(32);
    expect(vocab["h"]).toBe(104);
    expect(tokenizer.pre_tokenizer.type).toBe("ByteLevel");
    expect(tokenizer.decoder.type).toBe("ByteLevel");
    // ASCII only (the C++ raw string), and it reads back to the same characters.
    expect(/^[\x20-\x7e\n]*$/.test(files[0]!.text)).toBe(true);
    const config = JSON.parse(files[1]!.text);
    expect(config).toMatchObject({ tokenizer_class: "PreTrainedTokenizerFast", model_max_length: 2048 });
    expect(config.generated_by).toBe("lasp");
  });

  it("gives an encoder's mask token the vocabulary's last id, the ids between held by unused tokens", () => {
    const result = checkSource(
      "e.lasp",
      `model e {
  vocab 260  hidden 256  ffn 512  heads 4  head_dim 64
  layer E = linear_attention { causal false }
  stack E x 2
}
parallel { gpus 1 }
run { seq_len 1K  dtype bf16  tokenizer bytes }
`,
    );
    const [json, config] = tokenizerFiles(result.spec!).map((f) => JSON.parse(f.text));
    expect(json.added_tokens.map((t: { id: number; content: string }) => [t.id, t.content])).toEqual([
      [256, "<unused_256>"],
      [257, "<unused_257>"],
      [258, "<unused_258>"],
      [259, "<mask>"],
    ]);
    expect(json.added_tokens.every((t: { special: boolean }) => t.special)).toBe(true);
    expect(config.mask_token).toBe("<mask>");
    expect(config.added_tokens_decoder["259"]).toMatchObject({ content: "<mask>", special: true });
    // A causal model has no mask: no added tokens.
    expect(JSON.parse(tokenizerFiles(specOf("tokenizer bytes"))[0]!.text).added_tokens).toEqual([]);
  });

  it("writes nothing with tokenizer none (the default)", () => {
    expect(tokenizerFiles(specOf(""))).toEqual([]);
    expect(tokenizerFiles(specOf("tokenizer none"))).toEqual([]);
  });

  it("goes into the program's lasp/hf_files.h, ended by the null entry", () => {
    const header = generateProgram(specOf("tokenizer bytes")).get("lasp/hf_files.h")!;
    expect(header).toContain('{"tokenizer.json", R"json({');
    expect(header).toContain('{"tokenizer_config.json", R"json({');
    expect(header).toMatch(/\{nullptr, nullptr\},\n\};/);
    const none = generateProgram(specOf("")).get("lasp/hf_files.h")!;
    expect(none).not.toContain("tokenizer.json");
    expect(none).toMatch(/kTokenizerFiles\[\] = \{\n {4}\{nullptr, nullptr\},\n\};/);
  });
});
