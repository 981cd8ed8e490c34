// The copy engines' own collective rate (nvlink.copyEngineBusBandwidth, measured by lasp calibrate): the
// profile field, the machine views, the gradient sum's copy-engine path and the simulator's copy-engine steps.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import type { CollectiveStep, RankProgram, ScheduleProgram } from "../schedule/ir.js";
import { lowerSpec } from "../schedule/lower.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { collectiveTime } from "./machine.js";
import {
  H100_PROFILE,
  machineForGroup,
  machineOf,
  ProfileError,
  validateProfile,
  type MachineProfile,
} from "./profile.js";
import { simulatePass, simulateProgram } from "./simulate.js";
import { gradientSumTime, predictTrainingStep } from "./training-step.js";

/** The H100 profile with its NVLink numbers edited (and a source for each number given). */
function withNvlink(nvlink: Partial<MachineProfile["nvlink"]>): MachineProfile {
  const p = structuredClone(H100_PROFILE) as MachineProfile;
  Object.assign(p.nvlink, nvlink);
  for (const key of Object.keys(nvlink)) p.sources[`nvlink.${key}`] = "test";
  return validateProfile(p, "test.json");
}

// Kernels at 200 GB/s; the copy engines at twice that (below the 450 GB/s link), the same latency.
const KERNELS = withNvlink({ busBandwidth: 200e9 });
const COPIES = withNvlink({ busBandwidth: 200e9, copyEngineBusBandwidth: 400e9 });

function benchSpec(name: string): ResolvedSpec {
  const result = checkSource(`${name}.lasp`, readFileSync(`bench/gpu/specs/${name}.lasp`, "utf8"));
  if (result.spec === undefined) throw new Error(result.diagnostics.map((d) => d.message).join("\n"));
  return result.spec;
}

describe("nvlink.copyEngineBusBandwidth in a profile", () => {
  it("is optional: the shipped profiles have none, and their machines none", () => {
    expect(H100_PROFILE.nvlink.copyEngineBusBandwidth).toBeUndefined();
    expect(machineOf(H100_PROFILE).copyEngineBandwidth).toBeUndefined();
    expect(machineOf(H100_PROFILE).copyEngineLatency).toBeUndefined();
  });

  it("must be positive, with a source, and at most the link's rate each way", () => {
    expect(() => withNvlink({ copyEngineBusBandwidth: 0 })).toThrow(
      /nvlink.copyEngineBusBandwidth must be a positive number where given/,
    );
    expect(() => withNvlink({ copyEngineBusBandwidth: 451e9 })).toThrow(ProfileError);
    expect(() => withNvlink({ copyEngineBusBandwidth: 451e9 })).toThrow(/exceeds nvlink.bandwidth/);
    expect(() => withNvlink({ copyEngineLatency: -1e-6 })).toThrow(
      /nvlink.copyEngineLatency must be a positive number where given/,
    );
    const unsourced = structuredClone(COPIES) as MachineProfile;
    delete unsourced.sources["nvlink.copyEngineBusBandwidth"];
    expect(() => validateProfile(unsourced, "x.json")).toThrow(
      /sources\["nvlink.copyEngineBusBandwidth"\] is missing/,
    );
    expect(withNvlink({ copyEngineBusBandwidth: 450e9 }).nvlink.copyEngineBusBandwidth).toBe(450e9);
  });

  it("reaches the machine inside a node, not a group across nodes (NCCL's kernels there)", () => {
    const both = withNvlink({ copyEngineBusBandwidth: 400e9, copyEngineLatency: 8e-6 });
    expect(machineForGroup(both, 8)).toMatchObject({ copyEngineBandwidth: 400e9, copyEngineLatency: 8e-6 });
    const across = machineForGroup(both, 16);
    expect(across.copyEngineBandwidth).toBeUndefined();
    expect(across.copyEngineLatency).toBeUndefined();
    expect(across.linkBandwidth).toBe(both.interNode.busBandwidth);
  });
});

describe("the gradient sum on the copy engines", () => {
  const elements = 8 * 2 ** 20; // splits evenly over 4 and 8 ranks
  const latency = KERNELS.nvlink.latency;

  it("moves its AlltoAll and AllGather at the copy engines' rate: twice the rate, half the transfer time", () => {
    const slow = gradientSumTime(elements, 4, KERNELS);
    const fast = gradientSumTime(elements, 4, COPIES);
    expect(slow.path).toBe("copy_engines");
    expect(fast.path).toBe("copy_engines");
    const bytes = elements * 4;
    const kernel = (bytes + bytes / 4) / H100_PROFILE.gpu.hbmAttainable;
    const transfers = (t: number) => t - kernel - 2 * latency; // the AlltoAll's and the AllGather's bytes
    expect(transfers(fast.seconds)).toBeCloseTo(transfers(slow.seconds) / 2, 12);
    expect(transfers(slow.seconds)).toBeGreaterThan(0);
    // Without the final AllGather (ZeRO-1), the AlltoAll alone.
    const alltoall = (t: number) => t - kernel - latency;
    expect(alltoall(gradientSumTime(elements, 4, COPIES, false).seconds)).toBeCloseTo(
      alltoall(gradientSumTime(elements, 4, KERNELS, false).seconds) / 2,
      12,
    );
  });

  it("takes the copy engines' latency where the profile has one", () => {
    const slower = withNvlink({
      busBandwidth: 200e9,
      copyEngineBusBandwidth: 200e9,
      copyEngineLatency: 30e-6,
    });
    const diff = gradientSumTime(elements, 4, slower).seconds - gradientSumTime(elements, 4, KERNELS).seconds;
    expect(diff).toBeCloseTo(2 * (30e-6 - latency), 12);
  });

  it("leaves the AllReduce path (blocks that do not split evenly, groups across nodes) at NCCL's kernel rate", () => {
    expect(gradientSumTime(elements + 1, 4, COPIES)).toEqual(gradientSumTime(elements + 1, 4, KERNELS));
    expect(gradientSumTime(elements + 1, 4, COPIES).path).toBe("allreduce");
    expect(gradientSumTime(elements, 16, COPIES)).toEqual(gradientSumTime(elements, 16, KERNELS));
  });
});

/** Each collective step's duration in the forward and backward passes of every schedule, with its step. */
function collectiveDurations(program: ScheduleProgram, profile: MachineProfile, ranks: number) {
  const machine = machineForGroup(profile, ranks);
  return program.schedules.flatMap((s) =>
    (["forward", "backward"] as const).flatMap((pass) => {
      const programs: RankProgram[] = s.passes[pass];
      const timeline = simulatePass(programs, machine);
      const rank0 = programs[0]!;
      return rank0.steps
        .filter((step): step is CollectiveStep => step.kind === "collective")
        .map((step) => {
          const t = timeline.ranks[0]!.steps[step.id]!;
          return { step, seconds: t.end - t.start };
        });
    }),
  );
}

describe("the simulator's collectives on the copy engines", () => {
  it("times LASP-2's state AllGathers (few-CTA communicator) at the copy engines' rate", () => {
    const spec = benchSpec("b-lasp2-w4");
    const program = lowerSpec(spec);
    const slow = collectiveDurations(program, KERNELS, 4);
    const fast = collectiveDurations(program, COPIES, 4);
    const gathers = slow
      .map((s, i) => ({ ...s, fast: fast[i]!.seconds }))
      .filter((s) => s.step.collective === "allgather" && s.step.placement.communicator === "few_ctas");
    expect(gathers.length).toBeGreaterThan(0);
    for (const g of gathers) {
      const latency = KERNELS.nvlink.latency;
      expect(g.fast - latency).toBeCloseTo((g.seconds - latency) / 2, 12);
      expect(g.seconds).toBeCloseTo(collectiveTime("allgather", g.step.bytes, 4, machineOf(KERNELS)), 12);
    }
    // The communication they take shrinks with them (hidden behind the Q projection either way).
    const comm = (p: MachineProfile) => simulateProgram(program, machineOf(p)).commTime;
    expect(comm(COPIES)).toBeLessThan(comm(KERNELS));
    // The training step: the gradient sums on the copy engines shrink (the state AllGathers hide behind the
    // Q projection either way).
    const step = (p: MachineProfile) => predictTrainingStep(spec, program, p);
    expect(step(COPIES).gradientSum.busy).toBeLessThan(step(KERNELS).gradientSum.busy);
    expect(step(COPIES).step.total).toBeLessThanOrEqual(step(KERNELS).step.total);
  });

  it("copies only AllGather and AlltoAll, and only those the placement put on the few-CTA communicator or marked", () => {
    const step = (
      id: number,
      collective: CollectiveStep["collective"],
      placement: CollectiveStep["placement"],
    ): CollectiveStep => ({
      kind: "collective",
      id,
      label: `${collective} ${id}`,
      stream: "comm",
      deps: id === 0 ? [] : [id - 1],
      collective,
      group: [0, 1],
      key: `c${id}`,
      transfers: [{ send: "a", recv: "b" }],
      bytes: 2 ** 24,
      placement,
    });
    const few = { communicator: "few_ctas", copyEngineCandidate: false } as const;
    const candidate = { communicator: "default", copyEngineCandidate: true } as const;
    const plain = { communicator: "default", copyEngineCandidate: false } as const;
    const steps = [
      step(0, "allgather", few),
      step(1, "alltoall", candidate),
      step(2, "allreduce", few),
      step(3, "reducescatter", few),
      step(4, "allgather", plain),
    ];
    const programs = [0, 1].map((rank): RankProgram => ({ rank, buffers: [], steps }));
    const seconds = (p: MachineProfile) =>
      simulatePass(programs, machineOf(p)).ranks[0]!.steps.map((t) => t.end - t.start);
    const slow = seconds(KERNELS);
    const fast = seconds(COPIES);
    const latency = KERNELS.nvlink.latency;
    for (const i of [0, 1]) expect(fast[i]! - latency).toBeCloseTo((slow[i]! - latency) / 2, 12);
    for (const i of [2, 3, 4]) expect(fast[i]).toBe(slow[i]);
  });

  it("leaves a spec without copy-engine collectives unchanged (LASP-1: sends and receives)", () => {
    const spec = benchSpec("b-lasp1-w4");
    const program = lowerSpec(spec);
    expect(simulateProgram(program, machineOf(COPIES))).toEqual(simulateProgram(program, machineOf(KERNELS)));
    const step = (p: MachineProfile) => predictTrainingStep(spec, program, p).step;
    expect(step(COPIES).total).toBe(step(KERNELS).total);
  });

  it("changes nothing where the profile has no copy-engine rate (the shipped H100)", () => {
    const spec = benchSpec("b-lasp2-w4");
    const program = lowerSpec(spec);
    const same = withNvlink({});
    expect(predictTrainingStep(spec, program, same)).toEqual(
      predictTrainingStep(spec, program, H100_PROFILE),
    );
  });
});
