import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { main } from "../cli/main.js";
import { captureIo } from "../cli/test-io.js";
import { H100, memoryReport, memoryShape } from "../cost/memory.js";
import { memoryJson, memoryText } from "./memory.js";

const hybrid = checkSource("h.lasp", readFileSync("examples/linear-llama3-1b-hybrid.lasp", "utf8")).spec!;

describe("inspect's memory section", () => {
  const report = memoryReport(memoryShape(hybrid), hybrid.run.seqLen, H100);

  it("is a table of every category with the total and the longest seq_len, within 100 columns", () => {
    const text = memoryText(report);
    for (const line of text.split("\n")) expect(line.length).toBeLessThanOrEqual(100);
    for (const label of ["weights", "optimizer states", "activations kept for the backward pass", "total"])
      expect(text).toContain(label);
    expect(text).toContain(`Longest seq_len that fits: ${report.largestSeqLen}`);
    expect(text).toMatch(/total\s+66\.1 GB\s+fits: 83% of the GPU/);
  });

  it("narrows to a 60-column terminal", () => {
    for (const line of memoryText(report, 60).split("\n")) expect(line.length).toBeLessThanOrEqual(60);
  });

  it("gives --json the same numbers", async () => {
    const io = captureIo();
    expect(await main(["inspect", "examples/linear-llama3-1b-hybrid.lasp", "--json"], io)).toBe(0);
    const json = JSON.parse(io.out) as { memory: ReturnType<typeof memoryJson> & Record<string, unknown> };
    expect(json.memory).toEqual(JSON.parse(JSON.stringify(memoryJson(report))));
    expect(json.memory["totalBytes"]).toBe(report.totalBytes);
  });

  it("compares with the GPU --gpu-memory names, and refuses a size it cannot read (exit 2)", async () => {
    const io = captureIo();
    expect(await main(["inspect", "examples/linear-llama3-1b-hybrid.lasp", "--gpu-memory", "40GB"], io)).toBe(
      0,
    );
    expect(io.out).toContain("GPU of 40.0 GB");
    expect(io.out).toMatch(/total\s+66\.1 GB\s+does not fit: 165% of the GPU/);
    const bad = captureIo();
    expect(await main(["inspect", "examples/tiny-linear.lasp", "--gpu-memory", "80 gigs"], bad)).toBe(2);
    expect(bad.err).toContain('--gpu-memory must be a size such as 80GB, 141GB or 96GiB, got "80 gigs"');
  });
});
