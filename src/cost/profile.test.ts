import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { computeTime, DEFAULT_MACHINE } from "./machine.js";
import { H100 } from "./memory.js";
import {
  gpuOf,
  H100_PROFILE,
  loadProfile,
  machineOf,
  ProfileError,
  SHIPPED_PROFILES,
  validateProfile,
  type MachineProfile,
} from "./profile.js";

const dir = mkdtempSync(join(tmpdir(), "lasp-profile-"));
/** Writes `value` as a profile file and loads it. */
function load(name: string, value: unknown): MachineProfile {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, typeof value === "string" ? value : JSON.stringify(value));
  return loadProfile(file);
}
/** A deep copy of the H100 profile with `edit` applied. */
function edited(edit: (p: Record<string, any>) => void): Record<string, any> {
  const copy = structuredClone(H100_PROFILE) as Record<string, any>;
  edit(copy);
  return copy;
}

describe("machine profiles", () => {
  it("ships the four GPUs of issue 20, every number with its source", () => {
    expect(Object.keys(SHIPPED_PROFILES).sort()).toEqual([
      "a100-sxm-40gb",
      "a100-sxm-80gb",
      "h100-sxm-80gb",
      "h200-141gb",
    ]);
    for (const profile of Object.values(SHIPPED_PROFILES)) {
      // 8 GPU numbers and linearKernelBandwidth, 4 NVLink, 3 inter-node: 16 sources, none empty; the H100
      // and H200 also gatheredAttentionEfficiency (measured on an H100; not on an A100) and the fact that
      // lasp's MLP GEMM with SwiGLU epilogues runs there (Hopper).
      const gathered = profile.gpu.gatheredAttentionEfficiency !== undefined ? 1 : 0;
      const epilogues = profile.gpu.mlpSwigluEpilogues !== undefined ? 1 : 0;
      expect(Object.values(profile.sources).filter((s) => s.length > 20)).toHaveLength(
        16 + gathered + epilogues,
      );
    }
    expect(SHIPPED_PROFILES["h100-sxm-80gb"]!.gpu.gatheredAttentionEfficiency).toBe(0.94);
    expect(SHIPPED_PROFILES["a100-sxm-80gb"]!.gpu.gatheredAttentionEfficiency).toBeUndefined();
    expect(SHIPPED_PROFILES["h100-sxm-80gb"]!.gpu.mlpSwigluEpilogues).toBe(true);
    expect(SHIPPED_PROFILES["h200-141gb"]!.gpu.mlpSwigluEpilogues).toBe(true);
    expect(SHIPPED_PROFILES["a100-sxm-40gb"]!.gpu.mlpSwigluEpilogues).toBeUndefined();
  });

  it("cites this repository's measurement for the H100's GEMM rate", () => {
    expect(H100_PROFILE.sources["gpu.gemmFlops"]).toContain("bench/results/2026-12-05-whole-model-h100.md");
    // 664-695 TFLOP/s measured; the profile takes the middle, below the 989 dense peak.
    expect(H100_PROFILE.gpu.gemmFlops).toBeGreaterThanOrEqual(664e12);
    expect(H100_PROFILE.gpu.gemmFlops).toBeLessThanOrEqual(695e12);
  });

  it("orders the GPUs as their data sheets do", () => {
    const { "a100-sxm-40gb": a40, "a100-sxm-80gb": a80, "h200-141gb": h200 } = SHIPPED_PROFILES;
    expect(h200!.gpu.hbmBandwidth).toBeGreaterThan(H100_PROFILE.gpu.hbmBandwidth);
    expect(h200!.gpu.memoryBytes).toBeGreaterThan(H100_PROFILE.gpu.memoryBytes);
    expect(a80!.gpu.denseBf16Flops).toBeLessThan(H100_PROFILE.gpu.denseBf16Flops / 3);
    // The two A100s differ in memory only: capacity and bandwidth.
    expect({ ...a40!.gpu, memoryBytes: 0, hbmBandwidth: 0, hbmAttainable: 0 }).toEqual({
      ...a80!.gpu,
      memoryBytes: 0,
      hbmBandwidth: 0,
      hbmAttainable: 0,
    });
    expect(a40!.gpu.memoryBytes).toBe(40e9);
  });

  it("gives the simulator and the memory model their H100 from the one profile", () => {
    expect(DEFAULT_MACHINE).toEqual(machineOf(H100_PROFILE));
    // Attention kernels at cuDNN's measured 544 TFLOP/s (600 until 2026-12-06), 3.0 TB/s, NVLink 4.
    expect(DEFAULT_MACHINE).toMatchObject({
      computeFlops: 544e12,
      memoryBandwidth: 3.0e12,
      linkBandwidth: 350e9,
      linkLatency: 10e-6,
    });
    expect(H100).toEqual(gpuOf(H100_PROFILE));
    expect(H100).toEqual({ memory: 80e9, sms: 132 });
  });

  it("prices the linear chunk walks at the H100's measured rate, the state products at streaming speed", () => {
    expect(H100_PROFILE.sources["gpu.linearKernelBandwidth"]).toContain("2026-12-05-whole-model-h100.md");
    const walk = { op: "linear.forward_fused", operands: {}, flops: 0, bytes: 1.1e9 } as const;
    const state = { op: "linear.state", operands: {}, flops: 0, bytes: 3.0e9 } as const;
    expect(computeTime(walk as never, DEFAULT_MACHINE)).toBeCloseTo(1e-3, 12);
    expect(computeTime(state as never, DEFAULT_MACHINE)).toBeCloseTo(1e-3, 12);
  });

  it("takes a profile without linearKernelBandwidth (written before it existed) at hbmAttainable", () => {
    const old = edited((p) => {
      delete p.gpu.linearKernelBandwidth;
      delete p.sources["gpu.linearKernelBandwidth"];
    });
    expect(machineOf(load("old", old)).linearKernelBandwidth).toBe(H100_PROFILE.gpu.hbmAttainable);
  });

  it("prices LASP-2H's gathered calls at gatheredAttentionEfficiency of the attention rate (1 where left out)", () => {
    const gathered = { op: "softmax.gathered_backward", operands: {}, flops: 544e9, bytes: 0 } as const;
    const whole = { op: "softmax.full_backward", operands: {}, flops: 544e9, bytes: 0 } as const;
    const h100 = machineOf(H100_PROFILE);
    expect(computeTime(whole as never, h100)).toBeCloseTo(1e-3, 12);
    expect(computeTime(gathered as never, h100)).toBeCloseTo(1e-3 / 0.94, 12);
    // With packed documents the gathered call runs lasp's kernels: their own rate, not the fraction.
    const masked = { ...gathered, operands: { ends: "doc_ends" } };
    expect(computeTime(masked as never, h100)).toBeCloseTo(
      544e9 / H100_PROFILE.gpu.laspSoftmaxBackwardFlops,
      12,
    );
    const old = edited((p) => {
      delete p.gpu.gatheredAttentionEfficiency;
      delete p.sources["gpu.gatheredAttentionEfficiency"];
    });
    expect(computeTime(gathered as never, machineOf(load("nogathered", old)))).toBeCloseTo(1e-3, 12);
  });

  it("loads a user's profile file", () => {
    const mine = edited((p) => {
      p.name = "my cluster";
      p.interNode.busBandwidth = 12.5e9;
    });
    const profile = load("mine", mine);
    expect(profile.interNode.busBandwidth).toBe(12.5e9);
    expect(machineOf(profile).name).toBe("my cluster (NVLink 4, 8-GPU node)");
  });
});

describe("a profile that does not validate", () => {
  const error = (name: string, value: unknown): string => {
    try {
      load(name, value);
    } catch (e) {
      expect(e).toBeInstanceOf(ProfileError);
      return (e as Error).message;
    }
    throw new Error("the profile loaded");
  };
  const file = (name: string) => join(dir, `${name}.json`);

  it("says the file cannot be read, or is not JSON", () => {
    expect(() => loadProfile(file("absent"))).toThrow(
      `${file("absent")}: cannot read the machine profile (no such file)`,
    );
    expect(error("broken", "{ name: ").startsWith(`${file("broken")}: not JSON (`)).toBe(true);
  });

  it("calls a folder a folder, naming what --machine and --base take instead", () => {
    expect(() => loadProfile(dir)).toThrow(
      `${dir} is a folder, not a machine profile: name a profile's JSON file (src/cost/profiles/README.md) or a shipped profile: ${Object.keys(SHIPPED_PROFILES).join(", ")}`,
    );
    expect(() => loadProfile(dir)).not.toThrow(/EISDIR/);
  });

  it("names the file and the field that is missing or wrong", () => {
    // [file name, the edit, what the error says after the file's name]
    const cases: [string, (p: Record<string, any>) => unknown, string][] = [
      ["nogemm", (p) => delete p.gpu.gemmFlops, "gpu.gemmFlops must be a positive number (got nothing)"],
      ["negative", (p) => (p.nvlink.latency = -1), "nvlink.latency must be a positive number (got -1)"],
      [
        "text",
        (p) => (p.interNode.bandwidthPerGpu = "50 GB/s"),
        'interNode.bandwidthPerGpu must be a positive number (got "50 GB/s")',
      ],
      ["fraction", (p) => (p.gpu.sms = 131.5), "gpu.sms must be a whole number (got 131.5)"],
      ["nosection", (p) => delete p.interNode, "interNode must be an object"],
      [
        "linearzero",
        (p) => (p.gpu.linearKernelBandwidth = 0),
        "gpu.linearKernelBandwidth must be a positive number where given (got 0)",
      ],
      [
        "linearfast",
        (p) => (p.gpu.linearKernelBandwidth = 4e12),
        "gpu.linearKernelBandwidth exceeds gpu.hbmBandwidth: an attainable rate is at most the peak",
      ],
      [
        "gatheredfraction",
        (p) => (p.gpu.gatheredAttentionEfficiency = 1.2),
        "gpu.gatheredAttentionEfficiency is a fraction of gpu.attentionFlops: at most 1 (got 1.2)",
      ],
      [
        "linearsource",
        (p) => delete p.sources["gpu.linearKernelBandwidth"],
        'sources["gpu.linearKernelBandwidth"] is missing: every number says where it comes from',
      ],
    ];
    for (const [name, edit, says] of cases) expect(error(name, edited(edit))).toBe(`${file(name)}: ${says}`);
    expect(error("array", [])).toBe(`${file("array")}: the profile must be a JSON object`);
  });

  it("wants a source for every number, and no source for a number it does not have", () => {
    expect(
      error(
        "unsourced",
        edited((p) => delete p.sources["gpu.sms"]),
      ),
    ).toBe(`${file("unsourced")}: sources["gpu.sms"] is missing: every number says where it comes from`);
    expect(
      error(
        "stray",
        edited((p) => (p.sources["gpu.clock"] = "a data sheet")),
      ),
    ).toBe(`${file("stray")}: sources["gpu.clock"] names no number or fact of the profile`);
  });

  it("takes the MLP-epilogue fact as true or false with a source, and leaves it out as false", () => {
    expect(
      error(
        "word",
        edited((p) => ((p.gpu as unknown as Record<string, unknown>)["mlpSwigluEpilogues"] = "yes")),
      ),
    ).toBe(`${file("word")}: gpu.mlpSwigluEpilogues must be true or false where given (got "yes")`);
    expect(
      error(
        "unsourced-fact",
        edited((p) => delete p.sources["gpu.mlpSwigluEpilogues"]),
      ),
    ).toBe(
      `${file("unsourced-fact")}: sources["gpu.mlpSwigluEpilogues"] is missing: every fact says where it comes from`,
    );
  });

  it("refuses an attainable rate above its peak", () => {
    expect(
      error(
        "fast",
        edited((p) => (p.gpu.gemmFlops = 2e15)),
      ),
    ).toBe(
      `${file("fast")}: gpu.gemmFlops exceeds gpu.denseBf16Flops: an attainable rate is at most the peak`,
    );
    expect(
      error(
        "hbm",
        edited((p) => (p.gpu.hbmAttainable = 4e12)),
      ),
    ).toContain("gpu.hbmAttainable exceeds");
  });

  it("validates the value it is given, not a file, under the name it is given", () => {
    expect(() => validateProfile({ name: "" }, "inline")).toThrow("inline: name must be a non-empty string");
  });
});
