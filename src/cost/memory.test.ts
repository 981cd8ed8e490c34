import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { kindBuffers } from "../codegen/view-model.js";
import { lowerSpec } from "../schedule/lower.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import {
  allocations,
  bytesByCategory,
  H100,
  memoryReport,
  memoryShape,
  parseMemorySize,
  programBytes,
  RUNTIME_RESERVE_BYTES,
} from "./memory.js";

function spec(source: string): ResolvedSpec {
  const result = checkSource("m.lasp", source);
  if (result.spec === undefined) throw new Error(result.diagnostics.map((d) => d.message).join("\n"));
  return result.spec;
}

const tiny = spec(`model m { vocab 512 hidden 128 ffn 512 heads 2 head_dim 64
  layer L = linear_attention { } stack L }
run { seq_len 128 }`);

describe("the memory model", () => {
  it("counts a tiny one-GPU linear layer byte by byte, as the program allocates it", () => {
    const rows = 128; // batch 1 x 128 tokens on the one rank
    const act = rows * 128 * 2; // one bf16 [rows][128] tensor: hidden = heads x head_dim = 128
    const state = 2 * 64 * 64 * 4; // one fp32 [batch][heads][d][d] state
    const weights = 4 * 128 * 128 * 2; // Wq, Wk, Wv, Wo
    const expected = {
      weights,
      gradients: weights,
      optimizer: 0,
      // x[0], x[1]; the normed output; q, k, v, o, do kept for the backward
      activations: 2 * act + act + 5 * act,
      // dx, dx_prev, y, dnormed; states m, p, dm, g; dq, dk, dv; the decay table (2 floats)
      workspaces: 4 * act + 4 * state + 3 * act + 2 * 4,
      communication: 0,
    };
    const list = allocations(memoryShape(tiny), 128);
    expect(bytesByCategory(list)).toEqual(expected);
    expect(programBytes(memoryShape(tiny), 128)).toBe(884744);
  });

  it.each([
    "linear-llama3-1b",
    "linear-llama3-1b-hybrid",
    "tiny-baselines",
    "tiny-hybrid",
    "retention-1b",
    "bidirectional-encoder",
  ])("%s: the IR buffers evaluated at the spec's seq_len are those of the program lowered there", (name) => {
    const s = spec(readFileSync(`examples/${name}.lasp`, "utf8"));
    const program = lowerSpec(s);
    const direct = program.schedules.flatMap((schedule) =>
      kindBuffers(schedule).map((b) => [`${schedule.kind}.${b.field}`, b.elements]),
    );
    const modelled = allocations(memoryShape(s), s.run.seqLen)
      .filter((a) => direct.some(([what]) => what === a.what))
      .map((a) => [a.what, a.elements]);
    expect(modelled).toEqual(direct.filter(([, elements]) => (elements as number) > 0));
  });

  it.each([
    ["linear-llama3-1b-hybrid", 80e9],
    ["linear-llama3-1b-hybrid", 141e9],
    ["linear-llama3-8b-hybrid", 80e9],
    ["retention-1b", 24e9],
    ["tiny-hybrid", 16e9],
  ])("%s on %d bytes: the longest seq_len fits and one unit longer does not", (name, memory) => {
    const s = spec(readFileSync(`examples/${name}.lasp`, "utf8"));
    const shape = memoryShape(s);
    const gpu = { ...H100, memory };
    const report = memoryReport(shape, s.run.seqLen, gpu);
    const longest = report.largestSeqLen!;
    expect(longest % shape.unit).toBe(0);
    expect(programBytes(shape, longest) + RUNTIME_RESERVE_BYTES).toBeLessThanOrEqual(memory);
    if (report.limitedBy === "memory")
      expect(programBytes(shape, longest + shape.unit) + RUNTIME_RESERVE_BYTES).toBeGreaterThan(memory);
    expect(memoryReport(shape, longest, gpu).fits).toBe(true);
  });

  it("grows with seq_len, and more memory never allows a shorter sequence", () => {
    const s = spec(readFileSync("examples/linear-llama3-1b-hybrid.lasp", "utf8"));
    const shape = memoryShape(s);
    let previous = 0;
    for (let k = 1; k <= 4096; k *= 2) {
      const bytes = programBytes(shape, k * shape.unit);
      expect(bytes).toBeGreaterThan(previous);
      previous = bytes;
    }
    const longest = [16e9, 40e9, 80e9, 141e9, 192e9].map(
      (memory) => memoryReport(shape, s.run.seqLen, { ...H100, memory }).largestSeqLen ?? 0,
    );
    expect(longest).toEqual([...longest].sort((a, b) => a - b));
    // Where memory is what limits the length, more of it allows a longer sequence.
    expect(longest[0]).toBeLessThan(longest[1]!);
    expect(longest[1]).toBeLessThan(longest[2]!);
  });

  it("says when no seq_len fits", () => {
    const report = memoryReport(memoryShape(tiny), 128, { ...H100, memory: 1e9 });
    expect(report.fits).toBe(false);
    expect(report.largestSeqLen).toBeUndefined();
  });

  it("reads GPU memory sizes in decimal and binary units", () => {
    expect(parseMemorySize("80GB")).toBe(80e9);
    expect(parseMemorySize("141 GB")).toBe(141e9);
    expect(parseMemorySize("96GiB")).toBe(96 * 2 ** 30);
    expect(parseMemorySize("0.5TB")).toBe(5e11);
    for (const bad of ["80", "80 gigs", "", "-1GB", "0GB"]) expect(parseMemorySize(bad)).toBeUndefined();
  });
});
