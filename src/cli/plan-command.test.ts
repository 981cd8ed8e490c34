// `lasp plan`'s flags and its exit code: --gpus and --seq-len take a spec's ranges, checked before any choice
// is lowered, and a plan where the checker refuses every choice fails with the reason instead of exiting 0.
import { describe, expect, it } from "vitest";
import type { Plan } from "../plan/plan.js";
import { main } from "./main.js";
import { captureIo } from "./test-io.js";

const LINEAR = "examples/tiny-linear.lasp";

describe("lasp plan flags", () => {
  it("refuses a --seq-len below a spec's 64 at once, naming the flag and the range", async () => {
    const io = captureIo();
    expect(await main(["plan", LINEAR, "--seq-len", "1"], io)).toBe(2);
    expect(io.err).toContain("lasp: --seq-len must be a whole number from 64 to 2147483648, got 1");
    expect(io.out).toBe("");
  });

  it("refuses --gpus 1e9 at once (no 1394 choices lowered and skipped first)", async () => {
    const io = captureIo();
    expect(await main(["plan", LINEAR, "--gpus", "1e9"], io)).toBe(2);
    expect(io.err).toContain("lasp: --gpus must be a whole number from 1 to 4096, got 1e9");
    expect(io.out).toBe("");
    // Refused before any choice is lowered: one line, no progress, no skipped list (it took 4 s to list 1394).
    expect(io.err.trim().split("\n")).toHaveLength(1);
    for (const bad of ["0", "4097"]) {
      const out = captureIo();
      expect(await main(["plan", LINEAR, "--gpus", bad], out), bad).toBe(2);
      expect(out.err).toContain(`--gpus must be a whole number from 1 to 4096, got ${bad}`);
    }
  });

  it("exits 2 and says why when the checker refuses every choice", async () => {
    // 4096 GPUs for a batch of 1 and 4 heads: no split of them is valid.
    const io = captureIo();
    expect(await main(["plan", LINEAR, "--gpus", "4096"], io)).toBe(2);
    expect(io.out).toContain("4096 GPUs, seq_len 1K: no valid choice, all 176 skipped (why is below)");
    expect(io.out).toContain("Skipped 176 choices the checker refuses:");
    expect(io.err).toContain(
      "lasp: no schedule choice is valid at --gpus 4096 and --seq-len 1024: the checker refuses all 176 (each with its reason above)",
    );
    expect(io.err).toContain("as the spec's own (--gpus 2 --seq-len 1024)");
    const json = captureIo();
    expect(await main(["plan", LINEAR, "--seq-len", "64", "--json"], json)).toBe(2);
    const planned = JSON.parse(json.out) as Plan;
    expect(planned.rows).toEqual([]);
    expect(planned.skipped.length).toBeGreaterThan(0);
    expect(json.err).toContain("each with its reason under `skipped`");
  });

  it("exits 0 where some length has choices, and marks the one that has none", async () => {
    const io = captureIo();
    expect(await main(["plan", LINEAR, "--seq-len", "64,1K"], io)).toBe(0);
    expect(io.out).toContain("2 GPUs, seq_len 64: no valid choice, all 22 skipped (why is below)");
    expect(io.out).toMatch(/2 GPUs, seq_len 1K: \d+ choices, \d+ skipped/);
    expect(io.err).not.toContain("no schedule choice is valid");
  });
});
