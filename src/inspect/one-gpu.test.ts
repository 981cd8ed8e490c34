// `lasp inspect` on one GPU (sequence 1, data 1): no collective crosses GPUs there, so the communication table
// says none for every strategy, the copies the one-rank program still makes are named, and no weight-gradient
// sum is priced.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { main } from "../cli/main.js";
import { captureIo } from "../cli/test-io.js";
import type { InspectReport } from "./report.js";

const ONE_GPU = "examples/tiny-train.lasp";

beforeEach(() => void vi.stubEnv("COLUMNS", "100"));
afterEach(() => void vi.unstubAllEnvs());

/** The communication table's rows of the text: [strategy or "", layout or "", pass, collectives, bytes, dependent]. */
function communicationRows(text: string): string[][] {
  const start = text.indexOf("Communication per layer and rank");
  const lines = text.slice(start).split("\n").slice(3);
  return lines
    .slice(
      0,
      lines.findIndex((l) => !/(forward|backward)/.test(l)),
    )
    .map((l) => l.trim().split(/\s{2,}/));
}

describe("lasp inspect on one GPU", () => {
  it("says 1 GPU, and no collective, bytes or dependent steps for any strategy or layout", async () => {
    const io = captureIo();
    expect(await main(["inspect", ONE_GPU], io)).toBe(0);
    expect(io.out).toContain("  1 GPU = sequence 1 x data 1;");
    expect(io.out).not.toContain("1 GPUs");
    const rows = communicationRows(io.out);
    // 4 strategies x 2 layouts x 2 passes, Ulysses and zigzag LASP-2 among them.
    expect(rows).toHaveLength(16);
    expect(io.out).toMatch(/ulysses\s+contiguous\s+forward/);
    expect(io.out).toMatch(/lasp2\s+zigzag\s+forward/);
    for (const row of rows) expect(row.slice(-3), row.join(" | ")).toEqual(["none: one GPU", "0 B", "0"]);
  });

  it("names the collectives the one-rank program still calls as copies on the GPU", async () => {
    const io = captureIo();
    expect(await main(["inspect", ONE_GPU], io)).toBe(0);
    const text = io.out.replace(/\n\s+/g, " ");
    expect(text).toContain("On one GPU nothing is communicated.");
    expect(text).toContain("nccl_one_rank.cuh");
    expect(text).toContain(
      "L ulysses contiguous: 2 AllToAll of 48.0 MiB forward, 2 AllToAll of 48.0 MiB backward",
    );
    expect(text).toContain("L lasp2 zigzag: 1 AllGather of 3.00 MiB forward");
    // LASP-2 over one contiguous piece calls nothing: it is not listed.
    expect(text).not.toContain("L lasp2 contiguous:");
    const json = captureIo();
    expect(await main(["inspect", ONE_GPU, "--json"], json)).toBe(0);
    const report = JSON.parse(json.out) as InspectReport;
    const ulysses = report.communication.find((r) => r.strategy === "ulysses" && r.layout === "contiguous")!;
    expect(ulysses.forward).toMatchObject({
      collectives: "none: one GPU",
      bytesPerRank: 0,
      dependentSteps: 0,
    });
    expect(ulysses.forward.oneRankCopies).toEqual({ calls: "2 AllToAll", bytes: 48 * 2 ** 20 });
    const own = report.communication.find((r) => r.chosen)!;
    expect(own.forward.oneRankCopies).toBeUndefined();
  });

  it("prices no weight-gradient sum and no hidden communication", async () => {
    const io = captureIo();
    expect(await main(["inspect", ONE_GPU], io)).toBe(0);
    const text = io.out.replace(/\n\s+/g, " ");
    expect(text).toContain("weight-gradient sum: none on one GPU");
    expect(text).not.toContain("over 1 GPUs");
    expect(text).toContain("no weight-gradient sums; no communication to hide");
    expect(text).not.toContain("100% of the schedules' communication hidden");
    const json = captureIo();
    expect(await main(["inspect", ONE_GPU, "--json"], json)).toBe(0);
    const report = JSON.parse(json.out) as InspectReport;
    for (const k of report.predictions.kinds)
      expect(k.weightGradientSum).toMatchObject({ collective: "none", ranks: 1, time: 0 });
    const svg = join(mkdtempSync(join(tmpdir(), "lasp-one-gpu-")), "t.svg");
    expect(await main(["inspect", ONE_GPU, "--svg", svg], captureIo())).toBe(0);
    const picture = readFileSync(svg, "utf8");
    expect(picture).toContain("weight-gradient sum: none on one GPU");
    expect(picture).toContain("— 1 rank,");
  });

  it("says one sequence rank, not one GPU, where two GPUs are data-parallel, and keeps their gradient sum", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lasp-one-rank-"));
    const spec = join(dir, "data2.lasp");
    writeFileSync(
      spec,
      readFileSync(ONE_GPU, "utf8").replace("gpus 1  sequence 1", "gpus 2  sequence 1  data 2"),
    );
    const io = captureIo();
    expect(await main(["inspect", spec], io)).toBe(0);
    expect(io.out).toContain("  2 GPUs = sequence 1 x data 2;");
    for (const row of communicationRows(io.out))
      expect(row.slice(-3)).toEqual(["none: one sequence rank", "0 B", "0"]);
    const text = io.out.replace(/\n\s+/g, " ");
    expect(text).toContain("With one sequence rank the attention communicates nothing.");
    expect(text).toContain("NCCL (a communicator of one rank) copies");
    // The data-parallel replicas still sum their weight gradients.
    expect(text).toMatch(/L: \S+ µs \(\S+ MiB over 2 GPUs\)/);
  });

  it("keeps the collectives and their bytes on two GPUs", async () => {
    const io = captureIo();
    expect(await main(["inspect", "examples/tiny-linear.lasp"], io)).toBe(0);
    expect(io.out).toContain("  2 GPUs = sequence 2 x data 1;");
    expect(io.out).toMatch(/ulysses\s+contiguous\s+forward\s+2 AllToAll\s+\S+ [KM]iB\s+2/);
    expect(io.out).not.toContain("none: one GPU");
    expect(io.out).not.toContain("On one GPU");
    expect(io.out.replace(/\n\s+/g, " ")).toMatch(/L: \S+ µs \(\S+ [KM]iB over 2 GPUs\)/);
  });
});
