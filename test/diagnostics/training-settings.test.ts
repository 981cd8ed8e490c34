// Train mode's settings in the `run` block (AdamW, schedule, clipping, accumulation, checkpoints, evaluation):
// their defaults, a clear error at the value for each kind of bad value, the rules between them; the program
// uses them all (templates/runtime/train.cuh), so neither check nor compile says they are ignored.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { withGeneratorNotes } from "../../src/cli/check-command.js";
import { checkSource } from "../../src/check/front-end.js";
import { suggestKey } from "../../src/spec/key-homes.js";
import { RUN_KEYS } from "../../src/spec/schema.js";

const spec = (run: string) => `model m {
  vocab 512  hidden 256  ffn 512  heads 4  head_dim 64
  layer L = linear_attention { }
  stack L x 2
}
run { seq_len 1K  ${run} }
`;
const check = (run: string) => checkSource("t.lasp", spec(run));
const codes = (run: string) => check(run).diagnostics.map((d) => d.code);

const TRAINING_KEYS = [
  "betas",
  "adam_eps",
  "weight_decay",
  "warmup_steps",
  "lr_schedule",
  "min_lr",
  "grad_clip",
  "accumulate",
  "checkpoint_every",
  "keep_checkpoints",
  "eval_data",
  "eval_every",
];

describe("training settings resolve", () => {
  it("to their defaults when none is given", () => {
    expect(check("").spec!.run.train).toEqual({
      betas: [0.9, 0.95],
      adamEps: 1e-8,
      weightDecay: 0.1,
      warmupSteps: 0, // steps 10 / 100, rounded down
      lrSchedule: "cosine",
      minLr: expect.closeTo(3e-5, 15), // lr 3e-4 / 10
      gradClip: 1,
      accumulate: 1,
      checkpointEvery: 0,
      keepCheckpoints: 3,
      evalData: { kind: "none" },
      evalEvery: 0,
    });
  });

  it("with warmup_steps and min_lr following steps and lr when not given", () => {
    const train = check("steps 2500  lr 1e-3").spec!.run.train;
    expect(train.warmupSteps).toBe(25);
    expect(train.minLr).toBeCloseTo(1e-4, 15);
  });

  it("to the values given", () => {
    const train = check(
      'steps 1000  lr 6e-4  betas [0.8, 0.99]  adam_eps 1e-6  weight_decay 0  warmup_steps 1000  lr_schedule linear  min_lr 6e-4  grad_clip 0  accumulate 8  checkpoint_every 100  keep_checkpoints 0  eval_data "val.bin"  eval_every 50',
    ).spec!.run.train;
    expect(train).toEqual({
      betas: [0.8, 0.99],
      adamEps: 1e-6,
      weightDecay: 0,
      warmupSteps: 1000,
      lrSchedule: "linear",
      minLr: 6e-4,
      gradClip: 0,
      accumulate: 8,
      checkpointEvery: 100,
      keepCheckpoints: 0,
      evalData: { kind: "file", path: "val.bin" },
      evalEvery: 50,
    });
  });
});

describe("a bad training value is an error at the value, with the valid range", () => {
  it.each([
    ["betas [0.9, 1]", "1", "E0402", "more than 0 and less than 1"],
    ["betas [0, 0.95]", "0", "E0402", "more than 0 and less than 1"],
    ["betas [0.9]", "[0.9]", "E0405", "2 numbers in brackets"],
    ["betas 0.9", "0.9", "E0401", "2 numbers in brackets"],
    ["betas [0.9, high]", "high", "E0401", "more than 0 and less than 1"],
    ["adam_eps 0", "0", "E0402", "more than 0"],
    ["weight_decay -0.1", "-0.1", "E0402", "at least 0 and at most 1"],
    ["warmup_steps 1.5", "1.5", "E0403", "whole number"],
    ["lr_schedule cosin", "cosin", "E0404", "did you mean `cosine`?"],
    ["lr_schedule 1", "1", "E0401", "`cosine`"],
    ["min_lr 2", "2", "E0402", "at most 1"],
    ["grad_clip -1", "-1", "E0402", "at least 0"],
    ["accumulate 0", "0", "E0402", "from 1 to 65536"],
    ["checkpoint_every -5", "-5", "E0402", "from 0"],
    ["keep_checkpoints two", "two", "E0401", "whole number"],
    ["eval_data 100", "100", "E0401", '"val.bin"'],
    ["eval_every 2.5", "2.5", "E0403", "whole number"],
    // A value quoted as a YAML or JSON config quotes it: the hint gives it back unquoted.
    ['lr "3e-4"', '"3e-4"', "E0401", "write the number without quotes: `lr 3e-4`"],
    ['accumulate "8"', '"8"', "E0401", "write the number without quotes: `accumulate 8`"],
    ['lr_schedule "cosine"', '"cosine"', "E0401", "write the word without quotes: `lr_schedule cosine`"],
  ])("%s", (setting, value, code, hint) => {
    const source = spec(setting);
    const result = checkSource("t.lasp", source);
    expect(result.spec).toBeUndefined();
    expect(result.diagnostics.map((d) => d.code)).toEqual([code]);
    const [d] = result.diagnostics;
    expect(d!.span.start.offset).toBe(source.indexOf(value, source.indexOf(setting)));
    expect(`${d!.message} ${d!.hint ?? ""}`).toContain(hint);
  });
});

describe("rules between the training settings", () => {
  it("let the warmup fill the run and min_lr equal lr", () => {
    expect(codes("steps 100  warmup_steps 100  lr 1e-3  min_lr 1e-3")).toEqual([]);
    expect(codes("steps 100  warmup_steps 101")).toEqual(["E0512"]);
    expect(codes("lr 1e-3  min_lr 1.1e-3")).toEqual(["E0513"]);
    // `constant` ignores min_lr, as the program's schedule check does: "would raise the rate" is untrue there.
    expect(codes("lr 1e-3  min_lr 1.1e-3  lr_schedule constant")).toEqual([]);
    expect(codes("lr 1e-3  min_lr 1.1e-3  lr_schedule linear")).toEqual(["E0513"]);
  });

  it("compare min_lr with lr's default, and say so", () => {
    const [d] = check("min_lr 1e-3").diagnostics;
    expect(d!.code).toBe("E0513");
    expect(d!.message).toContain("lr 3e-4");
    expect(d!.hint).toContain("lr defaults to 3e-4");
    expect(d!.related ?? []).toEqual([]);
  });

  it("need eval_data for eval_every, and warn at eval_data that is never read", () => {
    expect(codes('eval_data "val.bin"  eval_every 100')).toEqual([]);
    expect(codes("eval_every 100")).toEqual(["E0514"]);
    expect(codes('eval_data "val.bin"')).toEqual(["W0607"]);
    expect(codes('eval_data "val.bin"  eval_every 0')).toEqual(["W0607"]);
    expect(codes("eval_data none  eval_every 0")).toEqual([]);
    // The warning leaves the spec resolved; the error does not.
    expect(check('eval_data "val.bin"').spec!.run.train.evalData).toEqual({ kind: "file", path: "val.bin" });
    expect(check("eval_every 100").spec).toBeUndefined();
  });

  it("stay quiet about a value that is already wrong", () => {
    expect(codes("steps 0  warmup_steps 100")).toEqual(["E0402"]);
    expect(codes("lr 0  min_lr 1e-3")).toEqual(["E0402"]);
    expect(codes("eval_data 1  eval_every 10")).toEqual(["E0401"]);
  });

  it("stay quiet about a key that a misspelled key stood for, instead of judging its default", () => {
    // Each would add a second diagnostic about the default the typo left (eval_every 0, steps 10, lr 3e-4).
    expect(codes('eval_data "val.bin"  evaluate_every 50')).toEqual(["E0303"]);
    expect(codes('eval_dat "val.bin"  eval_every 50')).toEqual(["E0303"]);
    expect(codes("step 1000  warmup_steps 500")).toEqual(["E0303"]);
    expect(codes("learning_rate 1e-2  min_lr 1e-3")).toEqual(["E0303"]);
    // A key that stands for nothing known leaves the rules as they were.
    expect(codes('eval_data "val.bin"  zzz 50')).toEqual(["W0607", "E0303"]);
  });

  it("give a quoted word that is not a value no made-up hint", () => {
    const [d] = check('lr_schedule "fast"').diagnostics;
    expect(d!.code).toBe("E0401");
    expect(d!.hint).toBeUndefined();
    expect(check('lr "fast"').diagnostics[0]!.hint).toBe("valid: more than 0 and at most 1");
  });
});

describe("training settings have their effect in train mode (no W0603 or E0701)", () => {
  const notes = (run: string, refuse = false) =>
    withGeneratorNotes(checkSource("t.lasp", spec(run)), { refuse }).diagnostics;

  it("every training key, a token file and `mode train`: neither warned about nor refused", () => {
    const all =
      'mode train  lr 1e-3  data "t.bin"  betas [0.9, 0.95]  adam_eps 1e-8  weight_decay 0.1  warmup_steps 0  lr_schedule cosine  min_lr 1e-5  grad_clip 1  accumulate 2  checkpoint_every 10  keep_checkpoints 3  eval_data "v.bin"  eval_every 5';
    expect(notes(all)).toEqual([]);
    expect(notes(all, true)).toEqual([]);
  });
});

describe("training settings in the docs and the key hints", () => {
  it("are run keys with a default, listed in grammar/README.md with it", () => {
    const readme = readFileSync("grammar/README.md", "utf8");
    for (const key of TRAINING_KEYS) {
      const rule = RUN_KEYS.find((k) => k.key === key);
      expect(rule, key).toBeDefined();
      const row = readme.split("\n").find((line) => line.startsWith(`| \`${key}\``));
      expect(row, key).toBeDefined();
      const shown = rule!.default ?? rule!.doc.split("; default ")[1]!;
      expect(row, key).toContain(shown);
    }
  });

  it("are suggested for the names of other tools", () => {
    for (const [alias, key] of [
      ["max_grad_norm", "grad_clip"],
      ["gradient_accumulation_steps", "accumulate"],
      ["lr_warmup_iters", "warmup_steps"],
      ["adam_beta2", "betas"],
      ["save_total_limit", "keep_checkpoints"],
      ["eval_interval", "eval_every"],
      ["gradient_clipping", "grad_clip"], // DeepSpeed's
    ]) {
      expect(suggestKey(alias!, "run").hint, alias).toBe(`did you mean \`${key}\`?`);
    }
  });
});

describe("`warmup` in a training spec (W0616)", () => {
  it("warns only where it could be mistaken for warmup_steps: train mode, above 0", () => {
    expect(codes("mode train  steps 100  warmup 20")).toEqual(["W0616"]);
    expect(codes("mode train  steps 100  warmup 0")).toEqual([]);
    expect(codes("mode bench  steps 100  warmup 20")).toEqual([]);
    expect(codes("mode train  steps 100  warmup_steps 20")).toEqual([]);
  });
});
