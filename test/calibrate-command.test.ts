// `lasp calibrate` without GPUs: the machine is injected (GPU list, tools) and the program is the C++ stand-in
// of src/calibrate/test-program.ts, which answers every benchmark with a known machine's times.
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { calibrateCommand, type CalibrateDeps, type CalibrateOptions } from "../src/cli/calibrate-command.js";
import { main } from "../src/cli/main.js";
import { captureIo } from "../src/cli/test-io.js";
import { calibrateFixtureFiles } from "../src/calibrate/test-program.js";
import { COLLECTIVE_BYTES, COLLECTIVE_OPS } from "../src/calibrate/plan.js";
import type { CalibratedProfile } from "../src/calibrate/profile-file.js";
import { H100_PROFILE, loadProfile, SHIPPED_PROFILES } from "../src/cost/profile.js";
import type { GpuInfo } from "../src/toolchain/gpus.js";

const H100 = (index: number): GpuInfo => ({ index, name: "NVIDIA H100 80GB HBM3", memoryMiB: 81559 });

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "lasp-calibrate-test-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function deps(extra: Partial<CalibrateDeps> = {}, env: NodeJS.ProcessEnv = {}): CalibrateDeps {
  return {
    detectGpus: async () => ({ gpus: [H100(0), H100(1)] }),
    // No cmake: the stand-in builds with its build.sh and g++.
    findTools: async () => ({ nvcc: { path: "/opt/cuda/bin/nvcc", version: "13.0.88" }, cmake: undefined }),
    program: calibrateFixtureFiles,
    cwd: root,
    env: { ...process.env, LASP_CACHE_DIR: path.join(root, "cache"), ...env },
    now: () => new Date("2026-12-05T18:00:00Z"),
    ...extra,
  };
}

async function calibrate(options: CalibrateOptions, d: CalibrateDeps = deps()) {
  const io = captureIo();
  const code = await calibrateCommand(options, io, d);
  return { code, out: io.out, err: io.err };
}

describe("lasp calibrate on a machine with GPUs", () => {
  it("writes a profile with the stand-in machine's numbers, which the profile loader accepts", async () => {
    const out = path.join(root, "two.json");
    const r = await calibrate({ out });
    expect(r.code).toBe(0);
    const profile = loadProfile(out);
    expect(profile.gpu.gemmFlops / 500e12).toBeCloseTo(1, 6);
    expect(profile.gpu.attentionFlops / 500e12).toBeCloseTo(1, 6);
    expect(profile.gpu.laspSoftmaxBackwardFlops / 500e12).toBeCloseTo(1, 6);
    expect(profile.gpu.hbmAttainable / 2.5e12).toBeCloseTo(1, 6);
    // The linear kernels answer in 1 ms a pass: the fused walks' bytes over the 2 ms less the state products'.
    const rows = 16384 * 16 * 128 * 2;
    const state = 16 * 128 * 128 * 4;
    const walkSeconds = 2e-3 - (2 * (2 * rows + state)) / 2.5e12;
    expect(profile.gpu.linearKernelBandwidth! / ((11 * rows + 3 * state) / walkSeconds)).toBeCloseTo(1, 6);
    expect(profile.nvlink.busBandwidth / 300e9).toBeCloseTo(1, 6);
    expect(profile.nvlink.latency / 10e-6).toBeCloseTo(1, 6);
    expect(profile.gpu.sms).toBe(132);
    expect(profile.gpu.memoryBytes).toBe(85520809984);
    expect(profile.sources["gpu.gemmFlops"]).toMatch(
      /^measured by lasp calibrate on Fake H100, 2026-12-05, /,
    );
    // What calibration cannot measure keeps the shipped H100 profile's numbers and sources; so does what it did
    // not measure here: the gathered calls need cuDNN, which the stand-in has not.
    expect(profile.gpu.denseBf16Flops).toBe(H100_PROFILE.gpu.denseBf16Flops);
    expect(profile.gpu.gatheredAttentionEfficiency).toBe(H100_PROFILE.gpu.gatheredAttentionEfficiency);
    expect(profile.sources["gpu.gatheredAttentionEfficiency"]).toBe(
      H100_PROFILE.sources["gpu.gatheredAttentionEfficiency"],
    );
    expect(profile.sources["interNode.latency"]).toBe(H100_PROFILE.sources["interNode.latency"]);
    expect(profile.name).toBe("Fake H100 (calibrated 2026-12-05)");
  });

  it("shows each benchmark as it is answered, n of N, and what it wrote", async () => {
    const r = await calibrate({ out: path.join(root, "progress.json") });
    expect(r.code).toBe(0);
    const total = Number(/: (\d+) benchmarks/.exec(r.err)![1]);
    expect(total).toBeGreaterThan(COLLECTIVE_OPS.length * COLLECTIVE_BYTES.length);
    expect(r.err).toMatch(new RegExp(`\\[ *1/${total}\\] GEMM qkv forward`));
    expect(r.err).toContain(`[${total}/${total}] NCCL send_recv (256 MiB)`);
    expect(r.err).toContain("skipped: built without cuDNN");
    expect(r.out).toContain("nvlink.busBandwidth");
    expect(r.out).toContain("kept from h100-sxm-80gb: gpu.denseBf16Flops");
  });

  it("records every measurement and skip in the file's calibration object", async () => {
    const out = path.join(root, "record.json");
    expect((await calibrate({ out })).code).toBe(0);
    const file = JSON.parse(await readFile(out, "utf8"));
    expect(file.calibration.tool).toBe("lasp calibrate");
    expect(file.calibration.gpus).toBe(2);
    expect(file.calibration.base).toBe("h100-sxm-80gb");
    expect(
      file.calibration.skipped.map((s: { benchmark: string; why: string }) => [s.benchmark, s.why]),
    ).toEqual([
      [expect.stringMatching(/^cuDNN softmax forward/), "built without cuDNN"],
      [expect.stringMatching(/^cuDNN softmax backward/), "built without cuDNN"],
      [expect.stringMatching(/^cuDNN LASP-2H gathered/), "built without cuDNN"],
    ]);
    expect(file.calibration.measurements.length).toBeGreaterThan(40);
  });

  it("measures LASP-2H's gathered calls where cuDNN runs them: the whole sequence's time over theirs", async () => {
    const out = path.join(root, "gathered.json");
    const r = await calibrate({ out }, deps({}, { FIXTURE_GATHERED: "0.8" }));
    expect(r.code).toBe(0);
    const profile = loadProfile(out);
    expect(profile.gpu.gatheredAttentionEfficiency).toBeCloseTo(0.8, 6);
    expect(profile.sources["gpu.gatheredAttentionEfficiency"]).toMatch(
      /^measured by lasp calibrate on Fake H100, 2026-12-05, cuDNN's fused attention on LASP-2H's gathered calls .*W 4 zigzag, 65536 tokens \(16384 per rank\)/,
    );
    expect(r.err).toMatch(
      /cuDNN LASP-2H gathered .*: \d+\.\d{3} ms, [\d.]+ TFLOP\/s, 0\.800x the whole sequence's/,
    );
    expect(r.out).toContain(
      "gpu.gatheredAttentionEfficiency 0.800 of gpu.attentionFlops  (base 0.940 of gpu.attentionFlops)",
    );
    // The record keeps both times of the benchmark; the other benchmarks have no whole-sequence time.
    const record = (JSON.parse(await readFile(out, "utf8")) as CalibratedProfile).calibration.measurements;
    const gathered = record.filter((m) => m.benchmark.startsWith("cuDNN LASP-2H gathered"));
    expect(gathered).toHaveLength(1);
    expect(gathered[0]!.wholeMs! / gathered[0]!.ms).toBeCloseTo(0.8, 3);
    expect(record.filter((m) => m.wholeMs !== undefined)).toHaveLength(1);
  });

  it("on one GPU measures no collectives and keeps the base's NVLink numbers", async () => {
    const out = path.join(root, "one.json");
    const r = await calibrate({ out }, deps({ detectGpus: async () => ({ gpus: [H100(0)] }) }));
    expect(r.code).toBe(0);
    const profile = loadProfile(out);
    expect(profile.nvlink.busBandwidth).toBe(H100_PROFILE.nvlink.busBandwidth);
    expect(profile.sources["nvlink.latency"]).toBe(H100_PROFILE.sources["nvlink.latency"]);
    expect(r.err).not.toContain("NCCL");
  });

  it("takes the shapes of --spec", async () => {
    const out = path.join(root, "spec.json");
    const r = await calibrate({ out, spec: "examples/tiny-linear.lasp" }, deps({ cwd: process.cwd() }));
    expect(r.code).toBe(0);
    expect(JSON.parse(await readFile(out, "utf8")).calibration.shapes).toBe("examples/tiny-linear.lasp");
  });
});

describe("lasp calibrate on the copy engines", () => {
  it("fits nvlink.copyEngineBusBandwidth and latency from the copy-engine collectives, with their source", async () => {
    const out = path.join(root, "copy-engines.json");
    const r = await calibrate({ out });
    expect(r.code).toBe(0);
    const profile = loadProfile(out);
    // The stand-in: 20 us + f x bytes / 400 GB/s on the copy engines, 10 us and 300 GB/s on NCCL's kernels.
    expect(profile.nvlink.copyEngineBusBandwidth! / 400e9).toBeCloseTo(1, 6);
    expect(profile.nvlink.copyEngineLatency! / 20e-6).toBeCloseTo(1, 6);
    expect(profile.nvlink.busBandwidth / 300e9).toBeCloseTo(1, 6);
    expect(profile.sources["nvlink.copyEngineBusBandwidth"]).toMatch(
      /^measured by lasp calibrate on Fake H100, 2026-12-05, NCCL all_gather_ce, all_to_all_ce on 2 GPUs on the copy engines/,
    );
    expect(r.err).toContain(
      "NCCL all_gather on the copy engines (CTA policy zero, symmetric windows; 256 MiB)",
    );
    expect(r.out).toContain("nvlink.copyEngineBusBandwidth 400 GB/s  (base none)");
    expect(r.out).toContain("nvlink.copyEngineLatency 20.0 us  (base none)");
  });

  it("reports them skipped where NCCL has no copy engines here, and keeps the base's (absent) field", async () => {
    const out = path.join(root, "no-copy-engines.json");
    const r = await calibrate({ out }, deps({}, { FIXTURE_COPY_ENGINES: "0" }));
    expect(r.code).toBe(0);
    const profile = loadProfile(out);
    expect(profile.nvlink.copyEngineBusBandwidth).toBeUndefined();
    expect(profile.nvlink.copyEngineLatency).toBeUndefined();
    expect(profile.nvlink.busBandwidth / 300e9).toBeCloseTo(1, 6);
    const record = (JSON.parse(await readFile(out, "utf8")) as CalibratedProfile).calibration.skipped;
    const skipped = record.filter((s) => s.benchmark.includes("on the copy engines"));
    expect(skipped).toHaveLength(2 * COLLECTIVE_BYTES.length);
    expect(new Set(skipped.map((s) => s.why))).toEqual(new Set(["NCCL registered no symmetric window"]));
  });
});

describe("lasp calibrate replaces only what it wrote", () => {
  it("refuses a file it did not write (exit 2) and leaves it, unless --force", async () => {
    const out = path.join(root, "notes.json");
    await writeFile(out, '{"mine": true}\n');
    const r = await calibrate({ out });
    expect(r.code).toBe(2);
    expect(r.err).toContain(`will not replace ${out}: it is not a profile lasp calibrate wrote`);
    expect(await readFile(out, "utf8")).toBe('{"mine": true}\n');
    expect((await calibrate({ out, force: true })).code).toBe(0);
    expect(loadProfile(out).gpu.sms).toBe(132);
  });

  it("refuses a shipped profile's file, which is not a calibrated one", async () => {
    const out = path.join(root, "h100-copy.json");
    await writeFile(out, await readFile("src/cost/profiles/h100-sxm-80gb.json", "utf8"));
    expect((await calibrate({ out })).code).toBe(2);
  });

  it("refuses a folder and a missing folder before measuring anything (exit 2)", async () => {
    const folder = await calibrate({ out: root });
    expect(folder.code).toBe(2);
    expect(folder.err).toContain("it is a folder; name a file");
    expect(folder.err).not.toContain("calibrating");
    const missing = await calibrate({ out: path.join(root, "no-such-folder", "p.json") });
    expect(missing.code).toBe(2);
    expect(missing.err).toContain("does not exist");
  });

  it("replaces a profile it wrote", async () => {
    const out = path.join(root, "again.json");
    expect((await calibrate({ out })).code).toBe(0);
    expect((await calibrate({ out })).code).toBe(0);
  });
});

describe("lasp calibrate when it cannot measure", () => {
  it("says there is no GPU and what works without one (exit 3)", async () => {
    const r = await calibrate(
      {},
      deps({ detectGpus: async () => ({ gpus: [], problem: "nvidia-smi not found: no NVIDIA driver" }) }),
    );
    expect(r.code).toBe(3);
    expect(r.err).toContain("lasp: no NVIDIA GPU on this machine (nvidia-smi not found: no NVIDIA driver).");
    expect(r.err).toContain("--dry-run");
  });

  it("says nvcc is missing (exit 3)", async () => {
    const r = await calibrate({}, deps({ findTools: async () => ({ nvcc: undefined, cmake: undefined }) }));
    expect(r.code).toBe(3);
    expect(r.err).toContain("nvcc (the CUDA compiler) not found");
  });

  it("asks for --base on a GPU without a shipped profile (exit 2), and takes one", async () => {
    const l40 = async () => ({ gpus: [{ index: 0, name: "NVIDIA L40S", memoryMiB: 46068 }] });
    const r = await calibrate({ out: path.join(root, "l40.json") }, deps({ detectGpus: l40 }));
    expect(r.code).toBe(2);
    expect(r.err).toContain("no shipped profile for NVIDIA L40S");
    const ok = await calibrate(
      { out: path.join(root, "l40.json"), base: "h200-141gb" },
      deps({ detectGpus: l40 }),
    );
    expect(ok.code).toBe(0);
    const written = JSON.parse(await readFile(path.join(root, "l40.json"), "utf8"));
    expect(written.calibration.base).toBe("h200-141gb");
    expect(written.interNode).toEqual(SHIPPED_PROFILES["h200-141gb"]!.interNode);
  });

  it("passes a failing program's exit code on, with its last lines, and writes nothing", async () => {
    const out = path.join(root, "crash.json");
    const r = await calibrate({ out }, deps({}, { FIXTURE_CRASH_PART: "collectives" }));
    expect(r.code).toBe(3);
    expect(r.err).toContain("failed in its collectives part (exit 3");
    expect(r.err).toContain("out of memory");
    expect(existsSync(out)).toBe(false);
  });

  it("writes nothing when the measurements exceed the base's peak (exit 1)", async () => {
    const out = path.join(root, "too-fast.json");
    const r = await calibrate({ out }, deps({}, { FIXTURE_TFLOPS: "2000" }));
    expect(r.code).toBe(1);
    expect(r.err).toContain("no valid profile");
    expect(r.err).toContain("exceeds gpu.denseBf16Flops");
    expect(existsSync(out)).toBe(false);
  });

  it("rejects a bad --runs and an unknown --base (exit 2)", async () => {
    expect((await calibrate({ runs: "0" })).code).toBe(2);
    const r = await calibrate({ base: "b200" });
    expect(r.code).toBe(2);
    expect(r.err).toContain("--base takes one of h100-sxm-80gb");
  });
});

describe("lasp calibrate --dry-run", () => {
  it("prints the benchmarks, the build and the launches without a GPU, building nothing", async () => {
    const cache = path.join(root, "dry-cache");
    const r = await calibrate(
      { dryRun: true },
      deps(
        { detectGpus: async () => ({ gpus: [], problem: "nvidia-smi not found: no NVIDIA driver" }) },
        { LASP_CACHE_DIR: cache },
      ),
    );
    expect(r.code).toBe(0);
    expect(r.out).toContain("machine: no GPU here");
    expect(r.out).toContain("GEMM mlp.gate_up forward (16384 x 16384 x 2048, B transposed)");
    expect(r.out).toContain("--part compute");
    expect(r.out).not.toContain("--part collectives");
    expect(existsSync(cache)).toBe(false);
  });

  it("builds for sm_80 on A100s and sm_90a on Hopper, unless --arch says", async () => {
    const a100 = async () => ({ gpus: [{ index: 0, name: "NVIDIA A100-SXM4-80GB", memoryMiB: 81920 }] });
    expect((await calibrate({ dryRun: true }, deps({ detectGpus: a100 }))).out).toContain("ARCH=80 ");
    expect((await calibrate({ dryRun: true })).out).toContain("ARCH=90a ");
    expect((await calibrate({ dryRun: true, arch: "sm_90" })).out).toContain("ARCH=90 ");
    expect((await calibrate({ dryRun: true, arch: "hopper" })).code).toBe(2);
  });

  it("refuses the --out a real run would refuse (a folder, a file lasp did not write), unless --force (exit 2)", async () => {
    const cache = path.join(root, "dry-out-cache");
    const d = deps({}, { LASP_CACHE_DIR: cache });
    const folder = await calibrate({ dryRun: true, out: root }, d);
    expect(folder.code).toBe(2);
    expect(folder.err).toBe(
      `lasp: cannot write ${root}: it is a folder; name a file, e.g. ${path.join(root, "profile.json")}\n`,
    );
    expect(folder.out).toBe("");
    const victim = path.join(root, "victim.txt");
    await writeFile(victim, "mine\n");
    const mine = await calibrate({ dryRun: true, out: victim }, d);
    expect(mine.code).toBe(2);
    expect(mine.err).toBe(
      `lasp: will not replace ${victim}: it is not JSON; name another file with --out, or add --force to replace it\n`,
    );
    expect(mine.out).toBe("");
    // The same words as the real run's, which stops there before building or measuring.
    expect(await calibrate({ out: victim }, d)).toEqual({ code: 2, out: "", err: mine.err });
    const forced = await calibrate({ dryRun: true, out: victim, force: true }, d);
    expect(forced.code).toBe(0);
    expect(forced.out).toContain(`profile: ${victim}`);
    expect(await readFile(victim, "utf8")).toBe("mine\n");
    expect(existsSync(cache)).toBe(false);
  });

  it("asks for --base on a GPU without a shipped profile, as the real run does (exit 2)", async () => {
    const l40 = async () => ({ gpus: [{ index: 0, name: "NVIDIA L40S", memoryMiB: 46068 }] });
    const r = await calibrate({ dryRun: true }, deps({ detectGpus: l40 }));
    expect(r.code).toBe(2);
    expect(r.err).toContain("lasp: no shipped profile for NVIDIA L40S");
    expect((await calibrate({ dryRun: true, base: "h200-141gb" }, deps({ detectGpus: l40 }))).code).toBe(0);
  });

  it("plans the collectives, one process per GPU, where there are two GPUs", async () => {
    const r = await calibrate({ dryRun: true });
    expect(r.out).toContain("--part collectives");
    expect(r.out).toContain("--rank 1 --world 2");
  });

  it("is reachable from the command line", async () => {
    const io = captureIo();
    expect(await main(["calibrate", "--runs", "x"], io)).toBe(2);
    expect(io.err).toContain("--runs must be a whole number");
  });
});
