import { describe, expect, it } from "vitest";
import { applyVisibleDevices, describeGpus, detectGpus, NVIDIA_SMI_ARGS, parseNvidiaSmi } from "./gpus.js";

const SMI = `0, NVIDIA H100 80GB HBM3, 81559 MiB
1, NVIDIA H100 80GB HBM3, 81559 MiB
2, NVIDIA H100 80GB HBM3, [N/A]
`;

describe("GPU detection", () => {
  it("parses nvidia-smi's CSV lines", () => {
    expect(parseNvidiaSmi(SMI)).toEqual([
      { index: 0, name: "NVIDIA H100 80GB HBM3", memoryMiB: 81559 },
      { index: 1, name: "NVIDIA H100 80GB HBM3", memoryMiB: 81559 },
      { index: 2, name: "NVIDIA H100 80GB HBM3", memoryMiB: undefined },
    ]);
    expect(parseNvidiaSmi("\nNo devices were found\n")).toEqual([]);
  });

  it("asks nvidia-smi for index, name and memory", async () => {
    const calls: string[][] = [];
    const probe = await detectGpus({
      env: {},
      run: async (file, args) => {
        calls.push([file, ...args]);
        return SMI;
      },
    });
    expect(calls).toEqual([["nvidia-smi", ...NVIDIA_SMI_ARGS]]);
    expect(NVIDIA_SMI_ARGS).toEqual(["--query-gpu=index,name,memory.total", "--format=csv,noheader"]);
    expect(probe.gpus).toHaveLength(3);
    expect(probe.problem).toBeUndefined();
    expect(describeGpus(probe.gpus)).toBe("2 x NVIDIA H100 80GB HBM3 (81559 MiB), 1 x NVIDIA H100 80GB HBM3");
  });

  it("treats a missing or failing nvidia-smi as no GPUs and says why", async () => {
    const missing = await detectGpus({
      run: async () => {
        throw Object.assign(new Error("spawn nvidia-smi ENOENT"), { code: "ENOENT" });
      },
    });
    expect(missing).toEqual({ gpus: [], problem: "nvidia-smi not found: no NVIDIA driver" });
    const failing = await detectGpus({
      run: async () => {
        throw Object.assign(new Error("Command failed with exit code 9"), {
          stderr: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
        });
      },
    });
    expect(failing.gpus).toEqual([]);
    expect(failing.problem).toMatch(/^nvidia-smi failed: NVIDIA-SMI has failed/);
    const none = await detectGpus({ env: {}, run: async () => "" });
    expect(none).toEqual({ gpus: [], problem: "nvidia-smi lists no GPUs" });
  });

  it("keeps the GPUs CUDA_VISIBLE_DEVICES shows, in its order", async () => {
    const gpus = parseNvidiaSmi(SMI);
    expect(applyVisibleDevices(gpus, "2,0").map((g) => g.index)).toEqual([2, 0]);
    expect(applyVisibleDevices(gpus, "1,7,0").map((g) => g.index)).toEqual([1]);
    expect(applyVisibleDevices(gpus, "GPU-aaaa,GPU-bbbb")).toHaveLength(2);
    expect(applyVisibleDevices(gpus, undefined)).toHaveLength(3);
    const hidden = await detectGpus({ env: { CUDA_VISIBLE_DEVICES: "" }, run: async () => SMI });
    expect(hidden.gpus).toEqual([]);
    expect(hidden.problem).toMatch(/CUDA_VISIBLE_DEVICES= hides every GPU/);
  });
});
