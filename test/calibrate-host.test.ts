// Both sides of lasp calibrate's program protocol, with g++ alone: plan.txt, which src/calibrate/plan.ts writes
// and templates/calibrate/plan.h reads, and the output lines, which templates/calibrate/lines.h writes and
// src/calibrate/measurements.ts reads (test/calibrate-host-harness.cpp).
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parseCalibrationLine } from "../src/calibrate/measurements.js";
import {
  calibrationPlan,
  DEFAULT_SHAPES,
  onCopyEngines,
  partOf,
  planText,
  type Benchmark,
} from "../src/calibrate/plan.js";
import { buildHarness, gxx } from "./host-harness.js";

const dir = mkdtempSync(join(tmpdir(), "lasp-calibrate-host-"));
const binary = join(dir, "harness");

beforeAll(() => {
  if (!gxx) return;
  const build = buildHarness("calibrate-host-harness.cpp", binary);
  expect(build.stderr).toBe("");
  expect(build.status).toBe(0);
});

function read(text: string): { status: number | null; lines: string[] } {
  const file = join(dir, `plan-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(file, text);
  const run = spawnSync(binary, [file], { encoding: "utf8" });
  return { status: run.status, lines: run.stdout.trimEnd().split("\n") };
}

/** What the reader should hold for a benchmark: its numbers in plan.ts's order, zero-filled to seven. */
function expected(b: Benchmark): string {
  const numbers: number[] =
    b.kind === "gemm"
      ? [b.m, b.n, b.k, b.transA ? 1 : 0, b.transB ? 1 : 0, b.batchMs, b.heatMs]
      : "bytes" in b
        ? [b.bytes]
        : b.kind === "softmax_gathered"
          ? [
              b.tokens,
              b.heads,
              b.kvHeads,
              b.headDim,
              b.causal ? 1 : 0,
              b.ranks,
              b.layout === "zigzag" ? 1 : 0,
            ]
          : "kvHeads" in b
            ? [b.tokens, b.heads, b.kvHeads, b.headDim, b.causal ? 1 : 0]
            : [b.tokens, b.heads, b.headDim, b.causal ? 1 : 0];
  const backend = "backend" in b ? b.backend : "-";
  return [b.id, b.kind, ...numbers, ...Array(7 - numbers.length).fill(0), backend].join(" ");
}

describe.runIf(gxx)("plan.txt, written by plan.ts and read by the program's plan.h", () => {
  it("reads every benchmark of a plan with collectives as plan.ts meant it", () => {
    const plan = calibrationPlan(DEFAULT_SHAPES, 8);
    const run = read(planText(plan.benchmarks));
    expect(run.status).toBe(0);
    expect(run.lines).toEqual(plan.benchmarks.map(expected));
    const gathered = plan.benchmarks.find((b) => b.kind === "softmax_gathered")!;
    expect(run.lines).toContain(`${gathered.id} softmax_gathered 16384 16 8 128 1 4 1 cudnn`);
  });

  it("reads a contiguous gathered benchmark on lasp's kernels too, and refuses one without its layout", () => {
    expect(read("0 softmax_gathered 4096 8 2 64 0 2 0 lasp\n").lines).toEqual([
      "0 softmax_gathered 4096 8 2 64 0 2 0 lasp",
    ]);
    const short = read("0 softmax_gathered 16384 16 8 128 1 4 cudnn\n");
    expect(short.status).toBe(2);
    expect(short.lines[0]).toContain("softmax_gathered needs 7 numbers");
    expect(read("0 softmax_gathered 16384 16 8 128 1 4 1\n").lines[0]).toContain("ends with lasp or cudnn");
  });

  it("refuses a line it cannot read, naming the line", () => {
    expect(read("0 gemm 1 2 3 0 1 25 0\n1 gemm 1 2\n").lines[0]).toMatch(
      /plan-\w+\.txt:2: gemm needs 7 numbers/,
    );
    expect(read("0 tensor_core 1\n")).toEqual({
      status: 2,
      lines: [expect.stringContaining("unknown benchmark tensor_core")],
    });
    expect(read("0 softmax_forward 128 2 2 64 1 flash\n").lines[0]).toContain("ends with lasp or cudnn");
    expect(read("copy 1024\n").lines[0]).toContain("not `ID KIND NUMBERS...`");
    expect(read("0 copy -4\n").status).toBe(2);
  });
});

describe.runIf(gxx)("the program's parts, as plan.h sorts the benchmarks and plan.ts meant them", () => {
  it("runs the copy-engine collectives on their own communicator, the other collectives on NCCL's kernels", () => {
    const plan = calibrationPlan(DEFAULT_SHAPES, 4);
    const file = join(dir, "parts.txt");
    writeFileSync(file, planText(plan.benchmarks));
    const run = spawnSync(binary, ["--parts", file], { encoding: "utf8" });
    expect(run.status).toBe(0);
    const part = (b: Benchmark): string => (onCopyEngines(b.kind) ? "copy_engines" : partOf(b));
    expect(run.stdout.trimEnd().split("\n")).toEqual(plan.benchmarks.map((b) => `${b.id} ${part(b)}`));
    expect(run.stdout).toMatch(/^\d+ copy_engines$/m);
  });
});

describe.runIf(gxx)("the output lines, written by the program's lines.h and read by measurements.ts", () => {
  it("are events lasp reads back exactly, awkward names and times included", () => {
    const run = spawnSync(binary, ["--lines"], { encoding: "utf8" });
    expect(run.status).toBe(0);
    const events = run.stdout
      .trimEnd()
      .split("\n")
      .map((line) => parseCalibrationLine(line));
    expect(events).toEqual([
      {
        event: "device",
        rank: 0,
        name: 'NVIDIA "H100" 80GB\\HBM3\t',
        sms: 132,
        memory_bytes: 85520809984,
        cc: "9.0",
        cudnn: null,
      },
      {
        event: "device",
        rank: 0,
        name: "NVIDIA H200",
        sms: 132,
        memory_bytes: 150754820096,
        cc: "9.0",
        cudnn: "9.14.0",
      },
      { event: "measure", rank: 0, id: 7, ms: 0.0000123, runs: 20 },
      { event: "measure", rank: 0, id: 8, ms: 1234570, runs: 1 },
      { event: "measure", rank: 0, id: 10, ms: 125.5, runs: 20, whole_ms: 106.25 },
      { event: "skipped", rank: 0, id: 9, why: "built without cuDNN (set CUDNN_HOME)" },
    ]);
  });
});
