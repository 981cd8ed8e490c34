import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { main } from "../cli/main.js";
import { captureIo } from "../cli/test-io.js";
import { H100_PROFILE, machineOf, SHIPPED_PROFILES } from "../cost/profile.js";
import { simulateProgram } from "../cost/simulate.js";
import { predictStep, STEP_PARTS } from "../cost/step.js";
import { predictTrainingStep } from "../cost/training-step.js";
import { trainingFlopsPerToken } from "../model/flops.js";
import { lowerSpec } from "../schedule/lower.js";
import { formatTime } from "../text/units.js";
import type { InspectReport } from "./report.js";
import { stepSection, stepText } from "./step.js";

const ONE_GPU = "bench/gpu/specs/m-linear-1b-w1.lasp";
const HYBRID = "examples/linear-llama3-1b-hybrid.lasp";
const dir = mkdtempSync(join(tmpdir(), "lasp-inspect-step-"));

function spec(file: string) {
  const result = checkSource(file, readFileSync(file, "utf8"));
  if (result.spec === undefined) throw new Error(`${file} does not check`);
  return result.spec;
}

async function inspectJson(args: string[]): Promise<InspectReport & Record<string, unknown>> {
  const io = captureIo();
  expect(await main(["inspect", ...args, "--json"], io)).toBe(0);
  return JSON.parse(io.out) as InspectReport & Record<string, unknown>;
}

describe("inspect's step section", () => {
  it("is predictStep's parts and total on one GPU, with the tokens/s and MFU they imply", async () => {
    const s = spec(ONE_GPU);
    expect(s.parallel.gpus).toBe(1);
    const profile = SHIPPED_PROFILES["a100-sxm-80gb"]!;
    const prediction = predictStep(s, lowerSpec(s), profile);
    const json = await inspectJson([ONE_GPU, "--machine", "a100-sxm-80gb"]);
    expect(json.step.profile).toBe(profile.name);
    expect(json.step.modelled).toBe(true);
    expect(json.step.parts).toEqual(prediction.parts);
    expect(json.step.total).toBe(prediction.total);
    const tokensPerSecond = prediction.rows / prediction.total;
    expect(json.step.tokensPerSecond).toBeCloseTo(tokensPerSecond, 6);
    expect(json.step.mfu).toBeCloseTo(
      (tokensPerSecond * trainingFlopsPerToken(s).perToken) / profile.gpu.denseBf16Flops,
      9,
    );
    expect(json.step.notModelled).toEqual(["kernel launch gaps"]);
    expect(json.step.optimizer).toBeNull(); // bench mode

    const io = captureIo();
    expect(await main(["inspect", ONE_GPU, "--machine", "a100-sxm-80gb"], io)).toBe(0);
    expect(io.out).toContain(`predicted from the ${profile.name} profile for one GPU`);
    for (const part of STEP_PARTS) expect(io.out).toContain(formatTime(prediction.parts[part]));
    expect(io.out).toMatch(new RegExp(`step\\s+${formatTime(prediction.total)}`));
    expect(io.out).toContain(`MFU ${(json.step.mfu! * 100).toFixed(1)}%`);
  });

  it("gives the whole step for more than one GPU: the parts, the exposed gradient sums, tokens/s per GPU", async () => {
    const s = spec(HYBRID);
    const section = stepSection(s, lowerSpec(s), H100_PROFILE, trainingFlopsPerToken(s).perToken);
    const prediction = predictTrainingStep(s, lowerSpec(s), H100_PROFILE);
    expect(section).toMatchObject({ gpus: 8, modelled: true, total: prediction.total, optimizer: null });
    expect(section.gradientSum.busy).toBeGreaterThan(section.gradientSum.exposed);
    expect(section.total).toBeCloseTo(prediction.step.total + section.gradientSum.exposed, 12);
    expect(section.tokensPerSecond).toBeCloseTo((s.run.seqLen * s.run.batch) / 8 / section.total, 6);
    // The parts are still one rank's: predictStep on the rank's rows.
    expect(section.parts).toEqual(predictStep(s, lowerSpec(s), H100_PROFILE).parts);
    const io = captureIo();
    expect(await main(["inspect", HYBRID], io)).toBe(0);
    expect(io.out).toContain("predicted from the H100 SXM 80 GB profile for 8 GPUs");
    expect(io.out).toMatch(
      new RegExp(`gradient sums left after the backward\\s+${formatTime(section.gradientSum.exposed)}`),
    );
    expect(io.out).toMatch(new RegExp(`step\\s+${formatTime(section.total)}`));
    expect(io.out).toContain("tokens/s per GPU");
  });

  it("adds train mode's optimizer to the step", () => {
    const s = spec("bench/gpu/specs/t-linear-1b-w1.lasp");
    const section = stepSection(s, lowerSpec(s), H100_PROFILE, trainingFlopsPerToken(s).perToken);
    const bench = predictStep(s, lowerSpec(s), H100_PROFILE);
    expect(section.optimizer).toBeGreaterThan(0);
    expect(section.total).toBeCloseTo(bench.total + section.optimizer!, 12);
    expect(stepText(section)).toContain("optimizer (AdamW)");
  });
});

describe("inspect --machine", () => {
  it("takes a shipped profile by name, and the H100 by default", async () => {
    const h100 = await inspectJson([ONE_GPU]);
    const h200 = await inspectJson([ONE_GPU, "--machine", "h200-141gb"]);
    expect(h100.step.profile).toBe(H100_PROFILE.name);
    expect(h200.step.profile).toBe(SHIPPED_PROFILES["h200-141gb"]!.name);
    expect(h200.predictions.machine).toContain(SHIPPED_PROFILES["h200-141gb"]!.name);
    expect((h200["memory"] as { gpuMemoryBytes: number }).gpuMemoryBytes).toBe(
      SHIPPED_PROFILES["h200-141gb"]!.gpu.memoryBytes,
    );
    expect(h200.step.total!).toBeLessThan(h100.step.total!);
  });

  it("takes a user's profile file, and --gpu-memory replaces only its capacity", async () => {
    const file = join(dir, "slow.json");
    const profile = structuredClone(H100_PROFILE);
    profile.name = "Half an H100";
    profile.gpu.gemmFlops /= 2;
    writeFileSync(file, JSON.stringify(profile));
    const json = await inspectJson([ONE_GPU, "--machine", file]);
    expect(json.step.profile).toBe("Half an H100");
    const h100 = await inspectJson([ONE_GPU]);
    // Half the GEMM rate doubles the GEMM terms and leaves the rest (element-wise, the attention kernels) alone;
    // in the attention core only the projections that LASP-2 hosts in its passes are GEMMs.
    const s = spec(ONE_GPU);
    const gemm = predictStep(s, lowerSpec(s), H100_PROFILE)
      .terms.filter((t) => t.part === "mlp" && t.flops > 0)
      .reduce((sum, t) => sum + t.seconds, 0);
    expect(json.step.parts.mlp).toBeCloseTo(h100.step.parts.mlp + gemm, 9);
    const hosted = simulateProgram(lowerSpec(s), machineOf(H100_PROFILE)).kinds.reduce(
      (sum, k) => sum + k.count * (k.forward.projectionTime + k.backward.projectionTime),
      0,
    );
    expect(hosted).toBeGreaterThan(0);
    expect(json.step.parts.attention_core).toBeCloseTo(h100.step.parts.attention_core + hosted, 9);

    const io = captureIo();
    expect(await main(["inspect", ONE_GPU, "--machine", file, "--gpu-memory", "40GB", "--json"], io)).toBe(0);
    expect((JSON.parse(io.out) as { memory: { gpuMemoryBytes: number } }).memory.gpuMemoryBytes).toBe(40e9);
    expect(io.err).toContain("--gpu-memory 40GB replaces the Half an H100 profile's");
  });

  it("refuses an unknown name (listing the shipped ones) and an invalid file with the loader's error", async () => {
    const unknown = captureIo();
    expect(await main(["inspect", ONE_GPU, "--machine", "b200"], unknown)).toBe(2);
    expect(unknown.err).toContain('unknown machine "b200"');
    for (const name of Object.keys(SHIPPED_PROFILES)) expect(unknown.err).toContain(name);

    const file = join(dir, "bad.json");
    const profile = structuredClone(H100_PROFILE) as unknown as { gpu: Record<string, unknown> };
    profile.gpu["hbmBandwidth"] = -1;
    writeFileSync(file, JSON.stringify(profile));
    const bad = captureIo();
    expect(await main(["inspect", ONE_GPU, "--machine", file], bad)).toBe(2);
    expect(bad.err).toContain(`${file}: gpu.hbmBandwidth must be a positive number`);
    expect(bad.err).not.toMatch(/\n\s+at /);

    const missing = captureIo();
    expect(await main(["inspect", ONE_GPU, "--machine", join(dir, "none.json")], missing)).toBe(2);
    expect(missing.err).toContain("cannot read the machine profile (no such file)");

    for (const command of ["inspect", "plan"]) {
      const folder = captureIo();
      expect(await main([command, ONE_GPU, "--machine", "examples"], folder)).toBe(2);
      expect(folder.err).toMatch(
        /^lasp: --machine: examples is a folder, not a machine profile: name a profile's JSON file/,
      );
      expect(folder.err).not.toContain("EISDIR");
    }
  });
});
