// `tokenizer bytes`: the byte-level tokenizer of `lasp tokens` (token id = byte value) as Hugging Face
// tokenizers' files, written beside config.json so that `AutoTokenizer.from_pretrained(FOLDER,
// trust_remote_code=True)` (transformers reads config.json's auto_map first) encodes text to the ids the model
// was trained on and decodes its output back to text. It is a BPE model with no merges over
// GPT-2's byte-level alphabet (each byte shown as one printable character, `bytes_to_unicode` in GPT-2's
// encoder.py), with the ByteLevel pre-tokenizer and decoder: every byte is one token, whose id is its value.
import type { ResolvedSpec } from "../spec/resolved.js";

/** GPT-2's printable stand-in for each byte value: the printable Latin-1 bytes stand for themselves, the others
 * take the characters from U+0100 on, in byte order. */
export function byteAlphabet(): string[] {
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(printable(b) ? b : next++));
  return out;
}

/** JSON with every character outside printable ASCII escaped (\uXXXX): the C++ source stays ASCII. */
function asciiJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2).replace(
    /[^\x20-\x7e\n]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  )}\n`;
}

const BYTE_LEVEL = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };

/** The mask token of an encoder (every layer bidirectional): the vocabulary's last id, as the program masks. */
export const MASK_TOKEN = "<mask>";

/** tokenizer.json and tokenizer_config.json of `tokenizer bytes`, or none. */
export function tokenizerFiles(spec: ResolvedSpec): { name: string; text: string }[] {
  if (spec.run.tokenizer.kind !== "bytes") return [];
  const vocab = Object.fromEntries(byteAlphabet().map((c, b) => [c, b]));
  const encoder = spec.model.layers.every((l) => !l.causal);
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  // The tokenizers library numbers added tokens in order after the vocabulary, so the ids between the bytes and
  // the mask are held by unused tokens: the mask lands on the vocabulary's last id, the program's.
  const mask = special(spec.model.vocab - 1, MASK_TOKEN);
  const unused = Array.from({ length: spec.model.vocab - 257 }, (_, i) =>
    special(256 + i, `<unused_${256 + i}>`),
  );
  const added = encoder ? [...unused, mask] : [];
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: BYTE_LEVEL,
    post_processor: null,
    decoder: BYTE_LEVEL,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
  const config = {
    tokenizer_class: "PreTrainedTokenizerFast",
    model_max_length: spec.run.seqLen - spec.run.padding,
    clean_up_tokenization_spaces: false,
    added_tokens_decoder: Object.fromEntries(added.map((t) => [t.id, { ...t, id: undefined }])),
    ...(encoder ? { mask_token: MASK_TOKEN } : {}),
    generated_by: "lasp",
  };
  const files = [
    { name: "tokenizer.json", text: asciiJson(tokenizer) },
    { name: "tokenizer_config.json", text: asciiJson(config) },
  ];
  // lasp/hf_files.h holds each as a raw string closed by this.
  if (files.some((f) => f.text.includes(')json"'))) throw new Error('a tokenizer file contains )json"');
  return files;
}
