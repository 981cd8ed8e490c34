// templates/runtime/model_files.cuh (a tokenizer's folder read for the checkpoints, and which files beside the
// weights lasp may replace), compiled with g++ into test/model-files-harness.cpp.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { MODELING_MARKER } from "../src/model/hf-modeling.js";
import { buildHarness, gxx } from "./host-harness.js";

const work = mkdtempSync(join(tmpdir(), "lasp-model-files-"));
const harness = join(work, "harness");

function run(...args: string[]): { status: number | null; out: string; err: string } {
  const r = spawnSync(harness, args, { encoding: "utf8" });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

/** A fresh folder holding `files` (name -> contents). */
function folder(name: string, files: Record<string, string | Buffer>): string {
  const dir = join(work, name);
  mkdirSync(dir);
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
}

describe.skipIf(!gxx)("the files beside the weights (model_files.cuh)", () => {
  beforeAll(() => {
    const build = buildHarness("model-files-harness.cpp", harness);
    expect(build.stderr).toBe("");
    expect(build.status).toBe(0);
  }, 60_000);

  it("reads the tokenizer files of a Hugging Face folder whole, and nothing else there", () => {
    const dir = folder("llama", {
      "tokenizer.json": '{"model": {}}',
      "tokenizer_config.json": '{"bos_token": "<|begin_of_text|>"}',
      "special_tokens_map.json": "{}",
      "generation_config.json": '{"eos_token_id": 128001}',
      "model.safetensors": "weights",
      "config.json": "{}",
    });
    const r = run("tokenizer", dir);
    expect(r.status).toBe(0);
    expect(r.out).toBe(
      "tokenizer.json 13\ntokenizer_config.json 34\nspecial_tokens_map.json 2\ngeneration_config.json 24\n",
    );
  });

  it("reads a SentencePiece tokenizer.model as bytes, NULs included", () => {
    const model = Buffer.from([0x0a, 0x00, 0x00, 0xff, 0x01, 0x00]);
    const r = run("tokenizer", folder("spm", { "tokenizer.model": model }));
    expect(r.out).toBe("tokenizer.model 6\n");
  });

  it("refuses a folder without a tokenizer, and one that is not there, saying what a folder needs", () => {
    const empty = run("tokenizer", folder("empty", { "config.json": "{}" }));
    expect(empty.status).toBe(1);
    expect(empty.err).toMatch(/the folder holds no tokenizer\.json or tokenizer\.model/);
    const missing = run("tokenizer", join(work, "nowhere"));
    expect(missing.status).toBe(1);
    expect(missing.err).toContain(`tokenizer "${join(work, "nowhere")}"`);
  });

  // The marker is the one hf-modeling.ts writes at the top of modeling_lasp.py (model_files.cuh spells it too).
  it("replaces only what lasp wrote, or the same bytes: a user's file is left alone", () => {
    const lasp = '{\n  "generated_by": "lasp 0.1.0"\n}\n';
    const dir = folder("beside", {
      "config.json": '{"model_type": "llama"}',
      "modeling_lasp.py": `${MODELING_MARKER} beside config.json\n`,
      "tokenizer.json": '{"model": {}}',
      "tokenizer_config.json": '{"bos_token": "<s>"}',
    });
    expect(run("replace", dir, "config.json", lasp).out).toBe("no\n");
    expect(run("replace", dir, "config.json", '{"model_type": "llama"}').out).toBe("yes\n");
    expect(run("replace", dir, "modeling_lasp.py", `${MODELING_MARKER}, newer\n`).out).toBe("yes\n");
    expect(run("replace", dir, "absent.json", "{}").out).toBe("yes\n");
    // tokenizer.json is lasp's when the tokenizer_config.json beside it is: here it is the user's.
    expect(run("replace", dir, "tokenizer.json", '{"other": 1}').out).toBe("no\n");
    const ours = folder("ours", { "tokenizer.json": '{"model": {}}', "tokenizer_config.json": lasp });
    expect(run("replace", ours, "tokenizer.json", '{"other": 1}').out).toBe("yes\n");
    const user = folder("user-py", { "modeling_lasp.py": "# my own model\n" });
    expect(run("replace", user, "modeling_lasp.py", `${MODELING_MARKER}\n`).out).toBe("no\n");
  });
});
