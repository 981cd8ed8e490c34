// templates/runtime/energy.cuh (the GPU's energy counter through NVML, loaded at run time), compiled with g++ and
// driven against test/energy-nvml-stub.cpp, a stand-in library with NVML's three entry points: what the program
// reports where NVML is there, missing, fails, or its counter runs backwards.
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { buildHarness, gxx } from "./host-harness.js";

const dir = mkdtempSync(join(tmpdir(), "lasp-energy-"));
const harness = join(dir, "harness");
const stub = join(dir, "libnvml-stub.so");
const bus = "00000000:1B:00.0";

/** The harness's line for CALLS, reading the counter at every step_done unless `interval` (s) says otherwise. */
function run(
  library: string,
  busId: string,
  calls: string,
  env: Record<string, string> = {},
  interval = "0",
): string {
  const r = spawnSync(harness, [library, busId, interval, calls], {
    encoding: "utf8",
    env: { ...process.env, ...env },
  });
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return r.stdout.trim();
}

describe.skipIf(!gxx)("energy.cuh (host side, compiled with g++)", () => {
  beforeAll(() => {
    const build = buildHarness("energy-harness.cpp", harness);
    expect(build.stderr).toBe("");
    expect(build.status).toBe(0);
    const lib = buildHarness("energy-nvml-stub.cpp", stub, ["-shared", "-fPIC"]);
    expect(lib.stderr).toBe("");
    expect(lib.status).toBe(0);
  }, 60_000);

  it("sums the counter over the steps: each read adds what the board spent since the last", () => {
    // The stand-in's counter advances 1500 mJ a read: start, then three steps back to back.
    expect(run(stub, bus, "seee")).toBe("available 1 joules 4.500 timed 1");
    expect(run(stub, bus, "seee", { LASP_STUB_STEP_MJ: "250" })).toBe("available 1 joules 0.750 timed 1");
  });

  it("leaves out what is spent between a pause and the next start (evaluation, checkpoints)", () => {
    // start, a step, pause (counts the step's tail), [left out], start, a step.
    expect(run(stub, bus, "sepse")).toBe("available 1 joules 4.500 timed 1");
    expect(run(stub, bus, "sepssse")).toBe("available 1 joules 4.500 timed 1");
    expect(run(stub, bus, "sss")).toBe("available 1 joules 0.000 timed 0");
  });

  it("reads at most once an interval between steps, and always at a pause", () => {
    // With a long interval the steps do not read; the pause counts everything since the start.
    expect(run(stub, bus, "seee", {}, "1000")).toBe("available 1 joules 0.000 timed 0");
    expect(run(stub, bus, "seeep", {}, "1000")).toBe("available 1 joules 1.500 timed 1");
  });

  it("counts nothing where the counter runs backwards (a reset or wrapped counter)", () => {
    expect(run(stub, bus, "seee", { LASP_STUB_STEP_MJ: "-100" })).toBe("available 1 joules 0.000 timed 0");
  });

  it("reports no energy, and does not fail, where NVML is missing, fails, or does not know the GPU", () => {
    const none = "available 0 joules 0.000 timed 0";
    expect(run(join(dir, "no-such-library.so"), bus, "sep")).toBe(none);
    for (const fail of ["init", "handle", "energy"])
      expect(run(stub, bus, "sep", { LASP_STUB_FAIL: fail }), fail).toBe(none);
    expect(run(stub, "00000000:65:00.0", "sep")).toBe(none);
  });
});
