// `lasp init`: the names it makes from file names, its flags read and refused as a spec reads them, and the
// next step it prints as a shell would take it.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { main } from "./main.js";
import { captureIo } from "./test-io.js";

/** A small Llama config.json: the keys init reads. */
const LLAMA = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  vocab_size: 512,
  hidden_size: 256,
  intermediate_size: 512,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  hidden_act: "silu",
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: true,
  attention_bias: false,
  mlp_bias: false,
};

const dir = mkdtempSync(join(tmpdir(), "lasp-init-command-"));
const hf = join(dir, "hf");
mkdirSync(hf);
writeFileSync(join(hf, "config.json"), JSON.stringify(LLAMA));

async function init(file: string, ...flags: string[]) {
  const io = captureIo();
  const code = await main(["init", file, "--from-hf", hf, ...flags], io);
  return { code, out: io.out, err: io.err };
}

function specOf(file: string) {
  const checked = checkSource(file, readFileSync(file, "utf8"));
  expect(checked.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  return checked.spec!;
}

describe("lasp init names the model after the file", () => {
  it.each(["model", "parallel", "run", "layer", "stack", "x"])(
    "a keyword (%s.lasp) gets the prefix a number does, and the spec is written",
    async (word) => {
      const file = join(dir, `${word}.lasp`);
      const { code, err } = await init(file);
      expect(err).toBe("");
      expect(code).toBe(0);
      expect(specOf(file).model.name).toBe(`m_${word}`);
    },
  );

  it("keeps the rule for other names: a digit first is prefixed, other characters become `_`", async () => {
    const digits = join(dir, "8b.lasp");
    const dashed = join(dir, "my-model.lasp");
    const longer = join(dir, "models.lasp");
    for (const file of [digits, dashed, longer]) expect((await init(file)).code).toBe(0);
    expect(specOf(digits).model.name).toBe("m_8b");
    expect(specOf(dashed).model.name).toBe("my_model");
    // A word that only starts with a keyword is a name as it is.
    expect(specOf(longer).model.name).toBe("models");
  });
});

describe("lasp init's flags", () => {
  /** Refused with exit 2, naming the flag and no line of the spec, which is not written. */
  async function refused(file: string, ...flags: string[]): Promise<string> {
    const { code, out, err } = await init(file, ...flags);
    expect(code).toBe(2);
    expect(out).toBe("");
    expect(err).not.toMatch(/\.lasp:\d+/);
    expect(err).not.toContain("error[");
    expect(existsSync(file)).toBe(false);
    return err;
  }

  it("a --seq-len the checker refuses is the flag's problem, in the checker's words", async () => {
    const file = join(dir, "short.lasp");
    expect(await refused(file, "--seq-len", "63")).toBe(
      "lasp: --seq-len 63: `seq_len` 63 is out of range; valid: a whole number from 64 to 2147483648\n",
    );
    expect(await refused(file, "--seq-len", "4G")).toBe(
      "lasp: --seq-len 4G: `seq_len` 4G is out of range; valid: a whole number from 64 to 2147483648\n",
    );
    expect(await refused(file, "--seq-len", "1.5")).toMatch(
      /^lasp: --seq-len 1\.5: `seq_len` must be a whole number, found 1\.5; /,
    );
  });

  it("--gpus that the sequence does not split over names both flags, the default one said so", async () => {
    const file = join(dir, "wide.lasp");
    expect(await refused(file, "--gpus", "4096")).toMatch(
      /^lasp: --gpus 4096 with --seq-len 8K \(the default\): seq_len 8192 does not split into 4096 equal pieces .*; or use fewer sequence-parallel ranks\n$/,
    );
    expect(await refused(file, "--gpus", "32", "--seq-len", "1K")).toMatch(
      /^lasp: --gpus 32 with --seq-len 1K: seq_len 1024 does not split into 32 equal pieces /,
    );
  });

  it.each([
    ["2G", 2 ** 31],
    ["1.5K", 1536],
    ["1e3K", 1024000],
    ["16k", 16384],
  ])("--seq-len %s is read as a spec reads it, and written as given", async (text, tokens) => {
    const file = join(dir, `len-${text}.lasp`);
    const { code, err } = await init(file, "--seq-len", text);
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(readFileSync(file, "utf8")).toContain(`seq_len ${text} `);
    expect(specOf(file).run.seqLen).toBe(tokens);
  });

  it("--seq-len that no spec would take is refused before anything is read", async () => {
    for (const text of ["8 K", "1.5.2", "8KB", ".5K"]) {
      expect(await refused(join(dir, "bad-length.lasp"), "--seq-len", text)).toBe(
        `lasp: --seq-len must be a token count as a spec writes it (8192, 8K, 1M), got ${text}\n`,
      );
    }
  });
});

describe("lasp init's next step", () => {
  it("quotes a path a shell would split or misread", async () => {
    mkdirSync(join(dir, "a b"));
    const spaced = join(dir, "a b", "c d.lasp");
    expect((await init(spaced)).out).toBe(
      `wrote ${spaced}: 2 layers of softmax attention; next: lasp inspect '${spaced}'\n`,
    );
    const quoted = join(dir, "it's.lasp");
    expect((await init(quoted)).out).toContain(`next: lasp inspect '${join(dir, "it")}'\\''s.lasp'\n`);
  });

  it("leaves a plain path as it is", async () => {
    const plain = join(dir, "plain.lasp");
    expect((await init(plain)).out).toMatch(new RegExp(`next: lasp inspect ${plain}\\n$`));
  });
});
