import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { main } from "../cli/main.js";
import { captureIo } from "../cli/test-io.js";
import { H100_PROFILE } from "../cost/profile.js";
import { autoText } from "../inspect/auto.js";
import { resolveAuto } from "./auto.js";
import { plan } from "./plan.js";

const dir = mkdtempSync(join(tmpdir(), "lasp-auto-"));
/** tiny-hybrid (2 GPUs, lasp2 + allgather, zigzag) with `linear auto` and `layout auto`. */
const AUTO_TEXT = readFileSync("examples/tiny-hybrid.lasp", "utf8")
  .replace("linear lasp2", "linear auto")
  .replace("layout zigzag", "layout auto");
const AUTO_FILE = join(dir, "tiny-auto.lasp");
writeFileSync(AUTO_FILE, AUTO_TEXT);

function front() {
  const result = checkSource(AUTO_FILE, AUTO_TEXT);
  if (result.spec === undefined || result.ast === undefined)
    throw new Error(result.diagnostics.map((d) => d.message).join("\n"));
  return { ast: result.ast, spec: result.spec };
}

describe("auto in the parallel block", () => {
  it("checks clean: the checker keeps the defaults and lists the keys written auto", () => {
    const { spec } = front();
    expect(spec.parallel).toMatchObject({
      linear: "lasp2",
      layout: "contiguous",
      softmax: "allgather",
      auto: { keys: ["linear", "layout"] },
    });
    expect(spec.parallel.auto!.chosen).toBeUndefined();
  });

  it("ranks what has not run on GPUs (W0613) after what has, unless the spec fixes it: LASP-2H over ranks", () => {
    const text = AUTO_TEXT.replace("softmax allgather", "softmax auto");
    const file = join(dir, "tiny-softmax-auto.lasp");
    const result = checkSource(file, text);
    const resolved = resolveAuto(result.ast!, file, result.spec!, H100_PROFILE);
    expect(resolved.parallel.auto!.keys).toContain("softmax");
    expect(["ring", "ulysses"]).toContain(resolved.parallel.softmax);
    // With `softmax allgather` written, it stays (and W0613 warns): the other auto keys are still resolved.
    expect(resolveAuto(front().ast, AUTO_FILE, front().spec, H100_PROFILE).parallel.softmax).toBe(
      "allgather",
    );
  });

  it("takes the plan's best among the choices that keep every other setting", () => {
    const { ast, spec } = front();
    const resolved = resolveAuto(ast, AUTO_FILE, spec, H100_PROFILE);
    const rows = plan({
      ast,
      file: AUTO_FILE,
      spec,
      profile: H100_PROFILE,
      // All-Scan's blocked chain is not generated (E0701): auto leaves it out.
      keep: (c) => c.sequence === 2 && c.data === 1 && c.softmax === "allgather" && c.linear !== "allscan",
    }).rows;
    expect(rows.length).toBeGreaterThan(1);
    const [best, next] = rows;
    expect(resolved.parallel).toMatchObject({
      linear: best!.choice.linear,
      layout: best!.choice.layout,
      softmax: "allgather",
      sequence: 2,
      data: 1,
    });
    expect(resolved.parallel.auto).toEqual({
      keys: ["linear", "layout"],
      chosen: {
        label: best!.label,
        tokensPerSecondPerGpu: best!.tokensPerSecondPerGpu,
        machine: H100_PROFILE.name,
      },
      runnerUp: { label: next!.label, tokensPerSecondPerGpu: next!.tokensPerSecondPerGpu },
    });
    expect(best!.tokensPerSecondPerGpu).toBeGreaterThanOrEqual(next!.tokensPerSecondPerGpu);
  });

  it("leaves a spec without auto as it is", () => {
    const result = checkSource(
      "examples/tiny-hybrid.lasp",
      readFileSync("examples/tiny-hybrid.lasp", "utf8"),
    );
    expect(result.spec!.parallel.auto).toBeUndefined();
    expect(resolveAuto(result.ast!, "examples/tiny-hybrid.lasp", result.spec!)).toBe(result.spec);
  });

  it("lasp inspect says what was chosen, the runner-up and the margin; --json has it too", async () => {
    const { ast, spec } = front();
    const chosen = resolveAuto(ast, AUTO_FILE, spec).parallel.auto!;
    const io = captureIo();
    expect(await main(["inspect", AUTO_FILE], io)).toBe(0);
    const text = io.out.replace(/\n/g, " ");
    expect(text).toContain(`\`linear auto\`, \`layout auto\`: chose ${chosen.chosen!.label}`);
    const margin = (chosen.chosen!.tokensPerSecondPerGpu / chosen.runnerUp!.tokensPerSecondPerGpu - 1) * 100;
    expect(text).toContain(`runner-up ${chosen.runnerUp!.label}`);
    // Within 0.1% the runner-up is a tie (this spec's is: 0.06%), else the margin.
    expect(text).toContain(
      margin < 0.1 ? "within 0.1%: a tie the model cannot break" : `${margin.toFixed(1)}% slower`,
    );
    const json = captureIo();
    expect(await main(["inspect", AUTO_FILE, "--json"], json)).toBe(0);
    expect((JSON.parse(json.out) as { auto: unknown }).auto).toEqual(chosen);
  });

  it("calls a runner-up within 0.1% a tie, and gives a larger margin in percent", () => {
    const auto = (runnerUp: number) => ({
      keys: ["linear" as const],
      chosen: { label: "lasp2, contiguous, 1 x 1", tokensPerSecondPerGpu: 65770, machine: "H100" },
      runnerUp: { label: "lasp1, contiguous, 1 x 1", tokensPerSecondPerGpu: runnerUp },
    });
    const tie = autoText(auto(65768), 1000);
    expect(tie).toContain(
      "runner-up lasp1, contiguous, 1 x 1 at 65,768 tokens/s per GPU, within 0.1%: a tie",
    );
    expect(tie).not.toContain("slower");
    expect(autoText(auto(64000), 1000)).toContain("at 64,000 tokens/s per GPU, 2.8% slower");
  });

  it("lasp check accepts it", async () => {
    const io = captureIo();
    expect(await main(["check", AUTO_FILE], io)).toBe(0);
    expect(io.out).toContain(`ok ${AUTO_FILE}`);
  });
});

describe("sequence auto", () => {
  const write = (name: string, text: string): string => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };
  /** tiny-hybrid on 8 GPUs, the split left to the planner; 8K tokens, batch 2 (so data 1 or 2). */
  const text = readFileSync("examples/tiny-hybrid.lasp", "utf8")
    .replace("gpus 2  sequence 2", "gpus 8  sequence auto")
    .replace("seq_len 1K  batch 1", "seq_len 8K  batch 2");

  it("checks with every GPU sequence-parallel until the planner splits them", () => {
    const { spec, diagnostics } = checkSource("s.lasp", text);
    expect(diagnostics).toEqual([]);
    expect(spec!.parallel).toMatchObject({ gpus: 8, sequence: 8, data: 1, auto: { keys: ["sequence"] } });
  });

  it("picks the split the plan ranks first among every split of the GPUs, and inspect says so", async () => {
    const file = write("split.lasp", text);
    const checked = checkSource(file, text);
    const chosen = resolveAuto(checked.ast!, file, checked.spec!);
    const ranked = plan({
      ast: checked.ast!,
      file,
      spec: checked.spec!,
      profile: H100_PROFILE,
      keep: (c) => c.linear === "lasp2" && c.softmax === "allgather" && c.layout === "zigzag",
    }).rows;
    expect(new Set(ranked.map((r) => `${r.choice.sequence}x${r.choice.data}`))).toEqual(
      new Set(["8x1", "4x2"]),
    );
    expect([chosen.parallel.sequence, chosen.parallel.data]).toEqual([
      ranked[0]!.choice.sequence,
      ranked[0]!.choice.data,
    ]);
    expect(chosen.parallel.sequence * chosen.parallel.data).toBe(8);
    expect(chosen.parallel.auto!.chosen!.label).toBe(ranked[0]!.label);
    const io = captureIo();
    expect(await main(["inspect", file], io)).toBe(0);
    expect(io.out).toContain(`8 GPUs = sequence ${chosen.parallel.sequence} x data ${chosen.parallel.data}`);
    expect(io.out).toMatch(/`sequence auto`: chose /);
  });

  it("is an error at the setting when no split checks clean, naming the first refusal", async () => {
    const file = write(
      "nosplit.lasp",
      text
        .replace("kv_heads 2", "kv_heads 1")
        .replace("softmax allgather", "softmax ulysses")
        .replace("batch 2", "batch 3"),
    );
    const io = captureIo();
    expect(await main(["check", file], io)).toBe(1);
    expect(io.err).toMatch(
      /error\[E0519\]: `sequence auto` splits `gpus` into sequence x data: no split of 8 GPUs checks clean \(.*: layer `S` uses ulysses/,
    );
  });

  it("plans a padded seq_len at its written length for every choice", () => {
    const padded = text.replace("seq_len 8K", "seq_len 8000");
    const checked = checkSource("p.lasp", padded);
    const rows = plan({ ast: checked.ast!, file: "p.lasp", spec: checked.spec!, profile: H100_PROFILE }).rows;
    expect(new Set(rows.map((r) => r.seqLen))).toEqual(new Set([8000]));
  });
});
