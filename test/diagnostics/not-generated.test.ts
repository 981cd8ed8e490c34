// Settings the generated program ignores are never silent (src/codegen/not-generated.ts). The goldens in
// generator-cases/ show what `lasp check` (W0603) and `lasp compile` / `lasp run` (E0701) print; one case
// per code, named like the front end's cases.
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { checkSource } from "../../src/check/front-end.js";
import { main } from "../../src/cli/main.js";
import { withGeneratorNotes } from "../../src/cli/check-command.js";
import { captureIo } from "../../src/cli/test-io.js";
import { hasErrors } from "../../src/diagnostics/diagnostic.js";
import { renderDiagnostics } from "../../src/diagnostics/render.js";

const dir = join(dirname(fileURLToPath(import.meta.url)), "generator-cases");
export const GENERATOR_CASES = readdirSync(dir).filter((f) => f.endsWith(".lasp"));

describe("generator goldens (what check, compile and run say about settings the program ignores)", () => {
  it.each(GENERATOR_CASES)("%s", async (file) => {
    const code = file.split(/[-.]/)[0]!;
    const refuse = code.startsWith("E");
    const result = withGeneratorNotes(checkSource(file, readFileSync(join(dir, file), "utf8")), { refuse });
    expect(result.diagnostics.map((d) => d.code)).toContain(code);
    const text = renderDiagnostics(file, result.source, result.diagnostics, { color: false });
    const exit = hasErrors(result.diagnostics) ? 1 : 0;
    await expect(`${text}\n\nexit code ${exit}\n`).toMatchFileSnapshot(
      `generator-cases/${file.replace(/\.lasp$/, "")}.golden.txt`,
    );
  });
});

describe("settings the generated program ignores", () => {
  const spec = (run: string, model = "") => `model m {
  vocab 512  hidden 256  ffn 512  heads 4  head_dim 64 ${model}
  layer L = linear_attention { decay 0.9 }
  stack L x 2
}
parallel { gpus 2 }
run { seq_len 1K ${run} }
`;
  const notes = (source: string, refuse = false) =>
    withGeneratorNotes(checkSource("s.lasp", source), { refuse }).diagnostics;

  it("warn once per reason, at the setting", () => {
    const d = notes(spec("dtype fp16", "norm rms"));
    expect(d.map((x) => x.code)).toEqual(["W0603"]);
    expect(d[0]!.message).toMatch(/^`dtype fp16` has no effect yet: the generated kernels are bf16/);
    expect(d[0]!.span.start).toMatchObject({ line: 7, column: 18 });
  });

  it("leave synthetic data, the defaults and the model's settings alone: the program runs the whole model", () => {
    expect(notes(spec("data synthetic  mode bench"))).toEqual([]);
    expect(notes(spec("", "norm layernorm  tie_embeddings true"))).toEqual([]);
  });

  it("leave `mode train`, a token file and the training settings alone: the program trains", () => {
    const source = spec('mode train  lr 1e-3  data "tokens.bin"  grad_clip 0.5');
    expect(notes(source)).toEqual([]);
    expect(notes(source, true)).toEqual([]);
  });

  it("refuse a dtype other than bf16 at the setting", () => {
    const refused = notes(spec("dtype fp16"), true).filter((d) => d.severity === "error");
    expect(refused.map((d) => [d.code, d.message])).toEqual([
      [
        "E0701",
        expect.stringMatching(/^`dtype fp16` cannot be compiled yet: the generated kernels are bf16/),
      ],
    ]);
    expect(notes(spec("dtype bf16"), true).filter((d) => d.severity === "error")).toEqual([]);
  });

  it("refuse more than 64 sequence-parallel ranks for ring attention, at `sequence` or else at `gpus`", () => {
    const hybrid = (parallel: string, run = "") => `model m {
  vocab 512  hidden 256  ffn 512  heads 4  head_dim 64
  layer S = softmax_attention { }
  stack S x 1
}
parallel { ${parallel} }
run { seq_len 8K  ${run} }
`;
    const at = (parallel: string, run = "") =>
      notes(hybrid(parallel, run), true)
        .filter((d) => d.severity === "error")
        .map((d) => [d.span.start.line, d.message.split(" cannot")[0]]);
    expect(at("gpus 128  sequence 128  softmax ring")).toEqual([[6, "`sequence`"]]);
    expect(at("gpus 128  softmax ring")).toEqual([[6, "`gpus`"]]);
    expect(at("gpus 128  sequence 64  data 2  softmax ring", "batch 2")).toEqual([]);
    // LASP-2H's gathered call merges nothing: any number of ranks.
    expect(at("gpus 128  sequence 128  softmax allgather")).toEqual([]);
  });

  it("say nothing more about a spec that already has errors", () => {
    const d = notes(spec("mode train  batch 0"), true);
    expect(d.map((x) => x.code)).not.toContain("E0701");
    expect(d.map((x) => x.code)).not.toContain("W0603");
  });
});

describe("the commands", () => {
  const write = (text: string): string => {
    const file = join(mkdtempSync(join(tmpdir(), "lasp-notgen-")), "train.lasp");
    writeFileSync(file, text);
    return file;
  };
  const train = `model m {
  vocab 512  hidden 256  ffn 512  heads 4  head_dim 64
  layer L = linear_attention { decay 0.9 }
  stack L x 2
}
parallel { gpus 2 }
run { seq_len 1K  mode train }
`;

  it("lasp check accepts `mode train` without a warning", async () => {
    const file = write(train);
    const io = captureIo();
    expect(await main(["check", file], io)).toBe(0);
    expect(io.err).toBe("");
    expect(io.out).toContain(`ok ${file}`);
  });

  it("lasp compile writes a program whose mode without --mode is train", async () => {
    const file = write(train);
    const out = join(dirname(file), "out");
    const io = captureIo();
    expect(await main(["compile", file, "-o", out], io)).toBe(0);
    expect(readFileSync(join(out, "lasp/program.cuh"), "utf8")).toContain(
      'constexpr const char* kMode = "train";',
    );
    expect(existsSync(join(out, "lasp/train.cuh"))).toBe(true);
  });
});

describe("linear allscan", () => {
  const spec = (parallel: string) => `model m {
  vocab 512  hidden 256  ffn 512  heads 4  head_dim 64
  layer L = linear_attention { decay 0.9 }
  stack L x 2
}
parallel { gpus 2  linear allscan ${parallel} }
run { seq_len 1K }
`;
  const codes = (source: string, refuse: boolean) =>
    withGeneratorNotes(checkSource("s.lasp", source), { refuse }).diagnostics.map((d) => d.code);

  it("is generated with several blocks (the default 4), with a warning that it has not run on a GPU yet", () => {
    expect(codes(spec(""), true)).toEqual(["W0613"]);
    expect(codes(spec("scan_blocks 8"), true)).toEqual(["W0613"]);
    expect(codes(spec(""), false)).toEqual(["W0613"]);
  });

  it("compiles with one block, LASP-1's chain", () => {
    expect(codes(spec("scan_blocks 1"), true)).toEqual([]);
  });
});
