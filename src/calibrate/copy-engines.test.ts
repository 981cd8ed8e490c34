// The copy-engine collectives in calibration: planned beside NCCL's kernels, fitted into their own fields.
import { describe, expect, it } from "vitest";
import { collected, collectiveTimes } from "./test-measurements.js";
import { fitProfile } from "./fit.js";
import {
  calibrationPlan,
  COLLECTIVE_BYTES,
  COPY_ENGINE_OPS,
  DEFAULT_SHAPES,
  describeBenchmark,
  onCopyEngines,
  partOf,
  planText,
  type Benchmark,
} from "./plan.js";

const timed = collectiveTimes;
const field = (fit: ReturnType<typeof fitProfile>, path: string) => fit.fields.find((f) => f.path === path);

describe("the copy-engine collectives' plan", () => {
  it("plans the AllGather and AlltoAll on the copy engines at every collective size, with two GPUs or more", () => {
    const four = calibrationPlan(DEFAULT_SHAPES, 4).benchmarks;
    for (const op of COPY_ENGINE_OPS) {
      const planned = four.filter((b) => b.kind === op);
      expect(planned.map((b) => (b as { bytes: number }).bytes)).toEqual(COLLECTIVE_BYTES);
      expect(planned.every((b) => partOf(b) === "collectives")).toBe(true);
    }
    expect(calibrationPlan(DEFAULT_SHAPES, 1).benchmarks.some((b) => onCopyEngines(b.kind))).toBe(false);
    // send/recv stays last: the program answers in plan order.
    expect(four.at(-1)!.kind).toBe("send_recv");
  });

  it("writes them as `ID KIND BYTES` and names the copy engines in words", () => {
    const b: Benchmark = { id: 7, kind: "all_to_all_ce", bytes: 4 * 2 ** 20 };
    expect(planText([b])).toBe("7 all_to_all_ce 4194304\n");
    expect(describeBenchmark(b)).toBe(
      "NCCL all_to_all on the copy engines (CTA policy zero, symmetric windows; 4 MiB)",
    );
    expect(onCopyEngines("all_gather")).toBe(false);
  });
});

describe("fitting the copy-engine collectives", () => {
  const kernels = [...timed("all_gather", 4, 10e-6, 300e9, 0), ...timed("all_to_all", 4, 10e-6, 300e9, 20)];
  const copies = [
    ...timed("all_gather_ce", 4, 20e-6, 400e9, 40),
    ...timed("all_to_all_ce", 4, 24e-6, 360e9, 60),
  ];

  it("fits nvlink.copyEngineBusBandwidth and latency as the median of the two, apart from NCCL's kernels", () => {
    const fit = fitProfile(collected([...kernels, ...copies]), 4);
    expect(field(fit, "nvlink.busBandwidth")!.value / 300e9).toBeCloseTo(1, 9);
    expect(field(fit, "nvlink.latency")!.value / 10e-6).toBeCloseTo(1, 9);
    expect(field(fit, "nvlink.copyEngineBusBandwidth")!.value / 380e9).toBeCloseTo(1, 9);
    expect(field(fit, "nvlink.copyEngineLatency")!.value / 22e-6).toBeCloseTo(1, 9);
    expect(field(fit, "nvlink.copyEngineBusBandwidth")!.what).toMatch(
      /^NCCL all_gather_ce, all_to_all_ce on 4 GPUs on the copy engines .*all_gather_ce 400 GB\/s, all_to_all_ce 360 GB\/s$/,
    );
  });

  it("leaves the fields out without copy-engine measurements (skipped: the base's value stays)", () => {
    const fit = fitProfile(collected(kernels), 4);
    expect(field(fit, "nvlink.busBandwidth")).toBeDefined();
    expect(fit.fields.filter((f) => f.path.startsWith("nvlink.copyEngine"))).toEqual([]);
  });

  it("fits the copy engines alone where NCCL's kernels were not measured", () => {
    const fit = fitProfile(collected(copies.filter((m) => m.benchmark.kind === "all_gather_ce")), 4);
    expect(field(fit, "nvlink.busBandwidth")).toBeUndefined();
    expect(field(fit, "nvlink.copyEngineBusBandwidth")!.value / 400e9).toBeCloseTo(1, 9);
    expect(field(fit, "nvlink.copyEngineLatency")!.value / 20e-6).toBeCloseTo(1, 9);
  });
});
