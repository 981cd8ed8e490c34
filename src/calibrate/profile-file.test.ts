import { mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { H100_PROFILE, loadProfile, ProfileError } from "../cost/profile.js";
import type { Fit } from "./fit.js";
import {
  calibratedProfile,
  profileText,
  shippedProfileFor,
  whyNotOurProfile,
  type CalibratedProfileInput,
} from "./profile-file.js";

const fit: Fit = {
  fields: [
    { path: "gpu.gemmFlops", value: 655e12, what: "median of 6 GEMMs" },
    { path: "nvlink.latency", value: 14e-6, what: "the fits' fixed cost" },
  ],
  collectives: [],
};

const input = (f: Fit = fit): CalibratedProfileInput => ({
  base: H100_PROFILE,
  baseName: "h100-sxm-80gb",
  fit: f,
  collected: { device: undefined, measurements: [], skipped: [] },
  device: "NVIDIA H100 80GB HBM3",
  gpus: 4,
  date: new Date("2026-12-05T17:00:00Z"),
  version: "0.0.0-test",
  shapes: "the default",
});

describe("the calibrated profile", () => {
  it("replaces the measured fields with their sources and keeps the rest with the base's", () => {
    const profile = calibratedProfile(input());
    expect(profile.gpu.gemmFlops).toBe(655e12);
    expect(profile.sources["gpu.gemmFlops"]).toBe(
      "measured by lasp calibrate on NVIDIA H100 80GB HBM3, 2026-12-05, median of 6 GEMMs",
    );
    expect(profile.nvlink.latency).toBe(14e-6);
    expect(profile.gpu.attentionFlops).toBe(H100_PROFILE.gpu.attentionFlops);
    expect(profile.sources["gpu.attentionFlops"]).toBe(H100_PROFILE.sources["gpu.attentionFlops"]);
    // The shipped profile itself is untouched.
    expect(H100_PROFILE.gpu.gemmFlops).not.toBe(655e12);
  });

  it("is read back by the loader of --machine FILE", async () => {
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), "lasp-profile-")), "p.json");
    await writeFile(file, profileText(calibratedProfile(input())));
    expect(loadProfile(file).gpu.gemmFlops).toBe(655e12);
  });

  it("is refused when a measurement exceeds the base's peak", () => {
    const tooFast: Fit = { fields: [{ path: "gpu.gemmFlops", value: 2e15, what: "x" }], collectives: [] };
    expect(() => calibratedProfile(input(tooFast))).toThrow(ProfileError);
  });
});

describe("which file lasp calibrate may replace", () => {
  it("a missing file or one it wrote; not a shipped profile, another JSON file or text", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "lasp-owned-"));
    const at = (name: string) => path.join(dir, name);
    expect(await whyNotOurProfile(at("missing.json"))).toBeUndefined();
    await writeFile(at("ours.json"), profileText(calibratedProfile(input())));
    expect(await whyNotOurProfile(at("ours.json"))).toBeUndefined();
    await writeFile(at("shipped.json"), JSON.stringify(H100_PROFILE));
    expect(await whyNotOurProfile(at("shipped.json"))).toBe("it is not a profile lasp calibrate wrote");
    await writeFile(at("notes.txt"), "my notes\n");
    expect(await whyNotOurProfile(at("notes.txt"))).toBe("it is not JSON");
  });
});

describe("the base profile of a GPU", () => {
  it("maps the CUDA runtime's names to the shipped profiles, and the others to none", () => {
    expect(shippedProfileFor("NVIDIA H100 80GB HBM3", 85e9)).toBe("h100-sxm-80gb");
    expect(shippedProfileFor("NVIDIA H200", 150e9)).toBe("h200-141gb");
    expect(shippedProfileFor("NVIDIA A100-SXM4-40GB", 42e9)).toBe("a100-sxm-40gb");
    expect(shippedProfileFor("NVIDIA A100-SXM4-80GB", 85e9)).toBe("a100-sxm-80gb");
    // A PCIe H100 has other peaks and no NVSwitch: not the SXM profile.
    expect(shippedProfileFor("NVIDIA H100 PCIe", 85e9)).toBeUndefined();
    expect(shippedProfileFor("NVIDIA L40S", 48e9)).toBeUndefined();
  });
});
