import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { generateProgram } from "../codegen/generate.js";
import { templatesDir } from "../codegen/render.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { hfConfig } from "./hf-config.js";
import { MODELING_DELIMITER, MODELING_MARKER, hfModelingSource, hfModelingText } from "./hf-modeling.js";

const specOf = (source: string): ResolvedSpec => {
  const result = checkSource("m.lasp", source);
  if (result.spec === undefined) throw new Error(result.diagnostics.map((d) => d.message).join("\n"));
  return result.spec;
};
const model = (layers: string): ResolvedSpec =>
  specOf(`model m {
  vocab 100  hidden 256  ffn 512  heads 4  head_dim 64
  ${layers}
}
parallel { gpus 1 }
run { seq_len 1K  dtype bf16  mode train }
`);
const LINEAR = model("layer L = linear_attention { decay 0.9 }\n  stack L x 2");
const LLAMA = model("layer S = softmax_attention { kv_heads 2 }\n  stack S x 2");
const FILE = readFileSync(`${templatesDir()}/hf/modeling_lasp.py`, "utf8");

/** The text between lasp/hf_files.h's raw-string delimiters. */
function embedded(header: string): string {
  const open = 'kHfModeling = R"py(';
  const start = header.indexOf(open);
  const end = header.indexOf(MODELING_DELIMITER, start);
  expect(start).toBeGreaterThan(0);
  expect(end).toBeGreaterThan(start);
  return header.slice(start + open.length, end);
}

describe("modeling_lasp.py in the generated program", () => {
  it("holds the file byte for byte where config.json names it", () => {
    const header = generateProgram(LINEAR).get("lasp/hf_files.h")!;
    expect(embedded(header)).toBe(FILE);
    expect(header).toContain('kHfModelingName = "modeling_lasp.py"');
  });

  it("holds nothing for a plain Llama, which transformers has", () => {
    expect(hfModelingText(LLAMA)).toBe("");
    expect(embedded(generateProgram(LLAMA).get("lasp/hf_files.h")!)).toBe("");
  });

  it("starts with the marker that lets a program replace its own copy, and never closes the raw string", () => {
    expect(hfModelingSource().startsWith(MODELING_MARKER)).toBe(true);
    expect(FILE.includes(MODELING_DELIMITER)).toBe(false);
  });

  it("defines every class config.json's auto_map names, under the model_type config.json gives", () => {
    const classes = [...FILE.matchAll(/^class (\w+)\(/gm)].map((m) => m[1]);
    for (const spec of [LINEAR, model("layer E = linear_attention { causal false }\n  stack E x 1")]) {
      const config = hfConfig(spec);
      for (const target of Object.values(config.auto_map!)) {
        const [module, name] = target.split(".");
        expect(module).toBe("modeling_lasp");
        expect(classes).toContain(name);
      }
      expect(classes).toContain(config.architectures[0]);
      expect(FILE).toContain(`model_type = "${config.model_type}"`);
    }
  });
});

// The file's numbers are checked against the PyTorch reference by bench/gpu/hf_modeling_check.py (torch and
// transformers, not installed in CI); here only that Python parses it, where python3 is on the machine.
const python = spawnSync("python3", ["--version"]).status === 0;

describe.skipIf(!python)("modeling_lasp.py as Python", () => {
  it("parses, and defines its classes at the top level", () => {
    const script =
      "import ast, sys; t = ast.parse(open(sys.argv[1]).read()); print(' '.join(n.name for n in t.body if isinstance(n, ast.ClassDef)))";
    const r = spawnSync("python3", ["-c", script, `${templatesDir()}/hf/modeling_lasp.py`], {
      encoding: "utf8",
    });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim().split(" ")).toEqual(
      expect.arrayContaining([
        "LaspLinearLlamaConfig",
        "LaspLinearLlamaForCausalLM",
        "LaspLinearLlamaForMaskedLM",
        "LaspCache",
      ]),
    );
  });
});

// The numbers themselves where LASP_HF_PYTHON names a Python with torch, transformers and safetensors (not in CI:
// bench/gpu/README.md, "Checkpoints in transformers"): bench/gpu/hf_modeling_check.py against the PyTorch
// reference in fp64, about 20 s. It reads lasp's config.json files through dist/, which `npm test` builds first.
const hfPython = process.env.LASP_HF_PYTHON ?? "";

describe.runIf(hfPython !== "")("modeling_lasp.py against the PyTorch reference (LASP_HF_PYTHON)", () => {
  it("passes bench/gpu/hf_modeling_check.py", () => {
    const r = spawnSync(hfPython, ["bench/gpu/hf_modeling_check.py"], {
      cwd: dirname(templatesDir()),
      encoding: "utf8",
      timeout: 280_000,
    });
    const failed = r.stdout.split("\n").filter((line) => line.startsWith("FAIL"));
    expect(failed).toEqual([]);
    expect(r.stdout).toContain("all passed");
    expect(r.status).toBe(0);
  }, 300_000);
});
