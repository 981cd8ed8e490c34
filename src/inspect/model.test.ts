import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { main } from "../cli/main.js";
import { captureIo } from "../cli/test-io.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { formatCount, modelReport, modelText } from "./model.js";

const example = (name: string): ResolvedSpec => {
  const file = `examples/${name}.lasp`;
  return checkSource(file, readFileSync(file, "utf8")).spec!;
};

describe("the model section of lasp inspect", () => {
  it("counts Linear-Llama3-8B hybrid's parameters per part, its own LM head included", () => {
    const report = modelReport(example("linear-llama3-8b-hybrid"));
    const { parts } = report;
    expect(report.tied_embeddings).toBe(false);
    expect(parts.lm_head).toBe(128256 * 4096);
    expect(parts.embedding).toBe(parts.lm_head);
    // 24 linear layers with k, v over 32 heads; 8 softmax layers with k, v over 8 heads.
    expect(parts.attention).toBe(24 * 4 * 4096 * 4096 + 8 * (2 * 4096 * 4096 + 2 * 1024 * 4096));
    expect(parts.mlp).toBe(32 * 3 * 4096 * 14336);
    expect(report.parameters).toBe(
      parts.embedding + parts.attention + parts.mlp + parts.norms + parts.lm_head,
    );
    expect(report.flops_per_token).toBe(6 * report.matmul_parameters + report.attention_flops_per_token);
  });

  it("writes counts with three significant digits", () => {
    expect([1_336_477_696, 268_435_456, 67_584, 512].map(formatCount)).toEqual([
      "1.34B",
      "268M",
      "67.6K",
      "512",
    ]);
  });

  it("says in the text whether the head is tied, within the width", () => {
    const tied = modelText(modelReport(example("linear-llama3-1b")), 80);
    expect(tied).toContain("Model: 1.34B parameters (1336477696)");
    expect(tied).toContain("LM head tied to the embedding");
    expect(tied).toContain("training FLOPs per token: 8.1 GFLOP");
    expect(Math.max(...tied.split("\n").map((l) => l.length))).toBeLessThanOrEqual(80);
    expect(modelText(modelReport(example("linear-llama3-8b-hybrid")))).toContain("LM head 525M");
  });

  it("is in --json as `model`, with the counts and FLOPs per token", async () => {
    const io = captureIo();
    expect(await main(["inspect", "examples/linear-llama3-1b.lasp", "--json"], io)).toBe(0);
    const json = JSON.parse(io.out) as { model: Record<string, unknown> };
    expect(json.model).toMatchObject({
      parameters: 1_336_477_696,
      tied_embeddings: true,
      flops_per_token: 8_093_958_144,
      parts: { embedding: 262_668_288, lm_head: 0 },
    });
  });

  it("is in the text after the predicted times", async () => {
    const io = captureIo();
    expect(await main(["inspect", "examples/linear-llama3-1b-hybrid.lasp"], io)).toBe(0);
    const model = io.out.indexOf("\nModel: ");
    expect(model).toBeGreaterThan(io.out.indexOf("Predicted per layer"));
  });
});
