// templates/runtime/lr_schedule.cuh (the learning rate of each step and the clip factor), compiled with g++ into
// test/lr-schedule-harness.cpp. The expected rates are the schedule's defining points (grammar/README.md
// "Training": warmup reaches `lr` at step warmup_steps, `min_lr` is the rate of the last step), written here
// from those definitions.
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { buildHarness, gxx } from "./host-harness.js";

const harness = join(mkdtempSync(join(tmpdir(), "lasp-lr-schedule-")), "harness");

function run(...args: (string | number)[]): { status: number | null; values: number[]; text: string } {
  const r = spawnSync(
    harness,
    args.map((a) => String(a)),
    { encoding: "utf8" },
  );
  const text = r.stdout.trim();
  return { status: r.status, text, values: r.status === 0 ? text.split("\n").map(Number) : [] };
}

/** The rates of steps `ks` of a schedule (lr 1e-3, min_lr 1e-4 unless given). */
function rates(kind: string, warmup: number, steps: number, ks: number[], lr = 1e-3, min = 1e-4): number[] {
  const r = run("lr", kind, lr, min, warmup, steps, ...ks);
  expect(r.status, r.text).toBe(0);
  return r.values;
}

// Rates are computed in double by both sides from the same closed forms; 1e-12 relative covers cos's last bits.
function expectClose(actual: number[], expected: number[]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((a, i) => expect(Math.abs(a - expected[i]!)).toBeLessThanOrEqual(1e-12 * expected[i]!));
}

describe.skipIf(!gxx)("the learning-rate schedule and clip factor (lr_schedule.cuh)", () => {
  beforeAll(() => {
    const build = buildHarness("lr-schedule-harness.cpp", harness);
    expect(build.stderr).toBe("");
    expect(build.status).toBe(0);
  });

  it("warms up linearly from lr / warmup at step 1 to lr at step warmup, as llm.c does", () => {
    expectClose(rates("cosine", 10, 100, [1, 2, 5, 10]), [1e-4, 2e-4, 5e-4, 1e-3]);
    expectClose(rates("linear", 4, 8, [1, 4]), [2.5e-4, 1e-3]);
    expectClose(rates("constant", 4, 8, [1, 3, 4, 5, 8]), [2.5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3]);
  });

  it("decays by a half cosine to min_lr at the last step, without a jump after the warmup", () => {
    // Steps 11..110 decay over ratio (k - 10) / 100: step 60 is the middle, step 110 the end.
    const [after, quarter, mid, last] = rates("cosine", 10, 110, [11, 35, 60, 110]);
    expectClose([mid!, last!], [(1e-3 + 1e-4) / 2, 1e-4]);
    expectClose([quarter!], [1e-4 + 0.9e-3 * 0.5 * (1 + Math.cos(Math.PI * 0.25))]);
    // The first decayed step is a hair below lr (ratio 1/100), not a drop.
    expect(after!).toBeLessThan(1e-3);
    expect(after!).toBeGreaterThan(0.999e-3);
  });

  it("decays linearly to min_lr, and with no warmup starts decaying at step 1", () => {
    expectClose(rates("linear", 10, 110, [60, 110]), [5.5e-4, 1e-4]);
    expectClose(rates("linear", 0, 4, [1, 2, 4]), [1e-3 - 0.9e-3 / 4, 1e-3 - 0.9e-3 / 2, 1e-4]);
    // min_lr 0 is allowed: the last step then trains at rate 0.
    expectClose(rates("cosine", 0, 2, [1], 1e-3, 0), [0.5e-3]);
    expect(rates("cosine", 0, 2, [2], 1e-3, 0)).toEqual([0]);
  });

  it("clamps steps outside the run, and a run that is all warmup ends at lr", () => {
    expectClose(rates("cosine", 10, 100, [0, 101, 1000]), [1e-4, 1e-4, 1e-4]);
    expectClose(rates("cosine", 5, 5, [5]), [1e-3]);
  });

  it("refuses settings the schedule cannot follow, with the reason", () => {
    expect(run("lr", "cosine", 1e-3, 2e-3, 0, 10, 1).text).toBe(
      "lr schedule: min_lr 0.002 must be between 0 and lr 0.001",
    );
    expect(run("lr", "cosine", 1e-3, 1e-4, 11, 10, 1).text).toBe(
      "lr schedule: warmup 11 must be between 0 and steps 10",
    );
    expect(run("lr", "linear", 1e-3, 1e-4, 0, 0, 1).text).toBe("lr schedule: steps 0 must be at least 1");
    expect(run("lr", "cosine", 0, 0, 0, 10, 1).text).toBe("lr schedule: lr 0 must be positive");
    // constant ignores min_lr, so a min_lr above lr is no error there.
    expect(run("lr", "constant", 1e-3, 2e-3, 0, 10, 1).status).toBe(0);
  });

  it("clips as clip_grad_norm_: min(1, clip / (norm + 1e-6)), 1 when clip is 0, NaN kept", () => {
    // norm 2 (squared 4): clip 1 scales by 1 / (2 + 1e-6); clip 3 leaves it alone; clip 0 is off.
    expectClose(run("clip", 4, 1, 3, 0).values, [1 / (2 + 1e-6), 1, 1]);
    // A zero gradient: 1 / 1e-6 is far above 1, so the factor is 1, not a division by zero.
    expect(run("clip", 0, 1).values).toEqual([1]);
    expect(run("clip", "nan", 1).values[0]).toBeNaN();
    expect(run("clip", "inf", 1).values).toEqual([0]);
  });
});
