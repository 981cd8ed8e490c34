import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { main } from "../cli/main.js";
import { captureIo } from "../cli/test-io.js";
import { H100_PROFILE } from "../cost/profile.js";
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
    expect(text).toContain(`${margin.toFixed(1)}% slower`);
    const json = captureIo();
    expect(await main(["inspect", AUTO_FILE, "--json"], json)).toBe(0);
    expect((JSON.parse(json.out) as { auto: unknown }).auto).toEqual(chosen);
  });

  it("lasp check accepts it", async () => {
    const io = captureIo();
    expect(await main(["check", AUTO_FILE], io)).toBe(0);
    expect(io.out).toContain(`ok ${AUTO_FILE}`);
  });
});
