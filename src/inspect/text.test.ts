import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { main } from "../cli/main.js";
import { captureIo } from "../cli/test-io.js";
import { IR_VERSION } from "../schedule/ir.js";

const capture = captureIo;

const HYBRID = "examples/linear-llama3-1b-hybrid.lasp";

// The text fits the terminal; these tests read whole rows, so they fix its width whatever runs them.
beforeEach(() => void vi.stubEnv("COLUMNS", "100"));
afterEach(() => void vi.unstubAllEnvs());

describe("lasp inspect", () => {
  it("shows one fp32 state per rank in one AllGather per pass for LASP-2, and W-1 hops for LASP-1", async () => {
    const io = capture();
    expect(await main(["inspect", HYBRID], io)).toBe(0);
    const rows = io.out.split("\n");
    // One row per pass: the forward row names the strategy, the backward row follows it.
    const lasp2 = rows.findIndex((r) => /^\s+L \(x12\)\s+lasp2\s+contiguous/.test(r));
    expect(rows[lasp2]).toMatch(/forward\s+1 AllGather\s+1\.00 MiB \(1 state\)\s+1$/);
    expect(rows[lasp2 + 1]).toMatch(/^\s+backward\s+1 AllGather\s+1\.00 MiB \(1 state\)\s+1$/);
    const lasp1 = rows.findIndex((r) => /^\s+L \(x12\)\s+lasp1\s+contiguous/.test(r));
    // 8 ranks: 7 dependent hops in each pass.
    expect(rows[lasp1]).toMatch(/forward\s+1 send\/recv\s+1\.00 MiB \(1 state\)\s+7$/);
    expect(rows[lasp1 + 1]).toMatch(/backward\s+1 send\/recv\s+1\.00 MiB \(1 state\)\s+7$/);
    expect(io.out).toContain("B x H x dk x dv x 4 = 1 x 16 x 128 x 128 x 4 = 1.00 MiB");
    // The spec's own choices are starred.
    expect(rows.some((r) => /lasp2 \*\s+zigzag/.test(r))).toBe(true);
    expect(rows.some((r) => /allgather \*\s+zigzag/.test(r))).toBe(true);
  });

  it("names each softmax kind's RoPE, its scaling included", async () => {
    const io = capture();
    expect(await main(["inspect", HYBRID, "--rank", "0"], io)).toBe(0);
    expect(io.out).toContain("(kv_heads 8, RoPE base 500000, causal)");
    const dir = mkdtempSync(join(tmpdir(), "lasp-inspect-rope-"));
    const spec = join(dir, "scaled.lasp");
    writeFileSync(
      spec,
      readFileSync(HYBRID, "utf8").replace(
        "rope_theta 500000",
        "rope_theta 500000  rope_scaling llama3  rope_factor 32  rope_original_max_positions 8192",
      ),
    );
    const scaled = capture();
    expect(await main(["inspect", spec, "--rank", "0"], scaled)).toBe(0);
    // A grouped linear layer says its kv heads.
    const grouped = join(dir, "grouped.lasp");
    writeFileSync(grouped, readFileSync(HYBRID, "utf8").replace("decay none", "kv_heads 8  decay none"));
    const gio = capture();
    expect(await main(["inspect", grouped, "--rank", "0"], gio)).toBe(0);
    expect(gio.out).toContain("(kv_heads 8, no decay, causal)");
    expect(scaled.out.replace(/\s+/g, " ")).toContain(
      "(kv_heads 8, RoPE base 500000 scaled llama3 (factor 32, low 1, high 4, original 8192), causal)",
    );
  });

  it("lists a rank's steps with streams and what the AllGather overlaps", async () => {
    const io = capture();
    expect(await main(["inspect", HYBRID, "--rank", "3"], io)).toBe(0);
    expect(io.out).toContain("forward, rank 3:");
    expect(io.out).toMatch(/comm\s+AllGather piece states \(2 per rank\)\s+2\.00 MiB\s+0, 1\s+overlaps 3/);
    expect(io.out).toMatch(/comm\s+ReduceScatter dK and dV/);
    // The placement pass's decisions, under the table: the state gather on few CTAs, the Q projection
    // issued beside it with SMs left to it.
    expect(io.out).toContain(
      "placement: 2 on the few-CTA communicator; 3 issued beside 2, its GEMM leaving 16 SMs (0 on the\n      copy engines)",
    );
    // LASP-2H's dK/dV ReduceScatter: a copy-engine candidate taken only when asked.
    expect(io.out).toContain(
      "placement: 2 as an AlltoAll on the copy engines and a sum where asked\n      (LASP_COLLECTIVES=copy_engines); 3 issued beside 2",
    );
  });

  it("sizes a step by what bounds its time: FLOPs for products, bytes for data movement", async () => {
    const io = capture();
    expect(await main(["inspect", HYBRID], io)).toBe(0);
    // The Q projection is a GEMM (compute-bound); putting the gathered K, V in global order only moves data,
    // and so does one piece's K^T V at d = 128 (8.6 GFLOP against 129 MiB at 3.35 TB/s).
    expect(io.out).toMatch(/Q = X Wq \(the layer's projection\)\s+275 GFLOP/);
    expect(io.out).toMatch(/K, V in global order \(positions 0\.\.262143\)\s+2\.00 GiB/);
    expect(io.out).toMatch(/M\[0\] = K\^T V over piece 0\s+129 MiB/);
    expect(io.out).toMatch(/attend to the gathered keys 0\.\.262143 \(one call\)\s+35\.2 TFLOP/);
  });

  it("prints the whole lowered program as JSON with stable fields", async () => {
    const io = capture();
    expect(await main(["inspect", "examples/tiny-hybrid.lasp", "--json"], io)).toBe(0);
    const program = JSON.parse(io.out);
    expect(program.irVersion).toBe(IR_VERSION);
    expect(program.layout.byRank).toHaveLength(2);
    expect(program.schedules.map((s: { strategy: string }) => s.strategy)).toEqual(["lasp2", "allgather"]);
    expect(program.layers).toEqual([0, 1, 0, 1]);
    const step = program.schedules[0].passes.forward[0].steps[0];
    expect(Object.keys(step)).toEqual(
      expect.arrayContaining([
        ...["id", "label", "stream", "deps", "op", "operands", "params", "reads", "writes", "flops", "bytes"],
        "placement",
      ]),
    );
  });

  it("rejects a rank outside the sequence-parallel group with a usage error", async () => {
    const io = capture();
    expect(await main(["inspect", HYBRID, "--rank", "8"], io)).toBe(2);
    expect(io.err).toContain("--rank must be a whole number from 0 to 7");
  });

  it("reports spec errors instead of inspecting", async () => {
    const io = capture();
    expect(await main(["inspect", "no/such/file.lasp"], io)).toBe(2);
    expect(io.err).toContain("cannot read no/such/file.lasp: no such file");
  });
});

describe("lasp verify", () => {
  it("passes on every example", async () => {
    const { readdirSync } = await import("node:fs");
    for (const file of readdirSync("examples").filter((f) => f.endsWith(".lasp"))) {
      const io = capture();
      expect(await main(["verify", `examples/${file}`], io), `${file}: ${io.err}`).toBe(0);
      expect(io.out).toMatch(/^ok: max relative error \d\.\de-1[5-9]/m);
    }
  });

  it("exits 1 when the tolerance is not met and 2 for bad flags", async () => {
    const strict = capture();
    expect(await main(["verify", "examples/tiny-hybrid.lasp", "--tolerance", "1e-30"], strict)).toBe(1);
    expect(strict.out).toContain("FAILED");
    const bad = capture();
    expect(await main(["verify", "examples/tiny-hybrid.lasp", "--block", "0"], bad)).toBe(2);
    expect(bad.err).toContain("--block must be a whole number of at least 1");
  });

  it("pads a reduced length that does not fit the layout, and rejects a bad tolerance", async () => {
    const sizes = capture();
    expect(await main(["verify", "examples/tiny-hybrid.lasp", "--seq-len", "30"], sizes)).toBe(0);
    expect(sizes.out).toContain("seq_len 32,");
    expect(sizes.out).toContain("padded: 30 real tokens and 2 of padding");
    const tolerance = capture();
    expect(await main(["verify", "examples/tiny-hybrid.lasp", "--tolerance", "-1"], tolerance)).toBe(2);
    expect(tolerance.err).toContain("--tolerance must be a positive number, got -1");
  });

  it("prints JSON rows per layer kind", async () => {
    const io = capture();
    expect(await main(["verify", "examples/tiny-baselines.lasp", "--json"], io)).toBe(0);
    const report = JSON.parse(io.out);
    expect(report.ok).toBe(true);
    expect(report.rows.map((r: { strategy: string }) => r.strategy)).toEqual(["lasp1", "ring"]);
  });
});

describe("lasp inspect --svg", () => {
  it("writes a timeline with one lane per stream and rank", async () => {
    const { mkdtempSync, readFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const file = join(mkdtempSync(join(tmpdir(), "lasp-svg-")), "t.svg");
    const io = capture();
    expect(await main(["inspect", HYBRID, "--svg", file], io)).toBe(0);
    const svg = readFileSync(file, "utf8");
    expect(svg.startsWith("<svg") || svg.startsWith("<?xml")).toBe(true);
    for (let r = 0; r < 8; r++) expect(svg).toContain(`r${r} comm`);
    // The count of ranks cannot be read as one more layer.
    expect(io.err).toContain("layers 0, 1, 2, 3 of 16, on each of the 8 ranks");
  });

  it("says which file it cannot write", async () => {
    const io = capture();
    expect(await main(["inspect", HYBRID, "--svg", "/no/such/dir/t.svg"], io)).toBe(2);
    expect(io.err).toContain("cannot write /no/such/dir/t.svg");
  });
});

describe("lasp inspect with packed documents", () => {
  it("says how many documents the schedule was lowered with and the softmax work they leave", async () => {
    const io = captureIo();
    expect(await main(["inspect", "examples/tiny-documents.lasp"], io)).toBe(0);
    // The line wraps at the terminal's width: join its continuation.
    const text = io.out.replace(/\n {4}/g, " ");
    const line = text.split("\n").find((l) => l.startsWith("  documents eos:"))!;
    const [, count, share] =
      /: (\d+) documents of mean length 100 drawn from seed 1 .*compute ([\d.]+)% of/.exec(line)!;
    // 1K tokens in documents of mean 100 (lengths uniform in [1, 199]): about ten; each one's causal pairs
    // only, against the whole sequence's N (N + 1) / 2: a few times D / N.
    expect(Number(count)).toBeGreaterThan(5);
    expect(Number(count)).toBeLessThan(16);
    expect(Number(share)).toBeGreaterThan(5);
    expect(Number(share)).toBeLessThan(30);
    const plain = captureIo();
    expect(await main(["inspect", "examples/tiny-hybrid.lasp"], plain)).toBe(0);
    expect(plain.out).not.toContain("documents");
  });
});
