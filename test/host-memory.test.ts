// templates/runtime/host_memory.cuh (whether a host can hold its ranks' checkpoint copies), compiled with g++.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { buildHarness, gxx } from "./host-harness.js";

const dir = mkdtempSync(join(tmpdir(), "lasp-host-memory-"));
const harness = join(dir, "harness");

function run(...args: string[]): string {
  const r = spawnSync(harness, args, { encoding: "utf8" });
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return r.stdout.trim();
}

describe.skipIf(!gxx)("host_memory.cuh (host side, compiled with g++)", () => {
  beforeAll(() => {
    const build = buildHarness("host-memory-harness.cpp", harness);
    expect(build.stderr).toBe("");
    expect(build.status).toBe(0);
  }, 60_000);

  it("reads MemAvailable in bytes from a meminfo file, 0 where there is none", () => {
    const file = join(dir, "meminfo");
    writeFileSync(
      file,
      "MemTotal:       263800000 kB\nMemFree:         1000 kB\nMemAvailable:   201326592 kB\n",
    );
    expect(run("meminfo", file)).toBe(String(201326592 * 1024));
    writeFileSync(file, "MemTotal:       263800000 kB\n");
    expect(run("meminfo", file)).toBe("0");
    expect(run("meminfo", join(dir, "missing"))).toBe("0");
  });

  it("counts the ranks on this host from the launcher, else up to the GPUs it sees", () => {
    expect(run("ranks", "4", "-", "-", "16", "8")).toBe("4");
    expect(run("ranks", "-", "8", "-", "16", "8")).toBe("8");
    expect(run("ranks", "-", "-", "4(x2)", "8", "4")).toBe("4");
    // never more than the world
    expect(run("ranks", "-", "-", "8", "2", "8")).toBe("2");
    expect(run("ranks", "-", "-", "-", "8", "4")).toBe("4");
    expect(run("ranks", "-", "-", "-", "2", "8")).toBe("2");
    expect(run("ranks", "-", "-", "-", "1", "0")).toBe("1");
  });

  it("fits the copies in 80% of the available memory, rank 0's and the others'", () => {
    // 1B model on one GPU: 22.4 GB on a host with 32 GB free fits; with 24 GB free it does not.
    expect(run("fits", "22400000000", "0", "1", "32000000000")).toBe("needs 22400000000 fits 1");
    expect(run("fits", "22400000000", "0", "1", "24000000000")).toBe("needs 22400000000 fits 0");
    // 8 ranks: rank 0's 28 GB and 7 x 12 GB = 112 GB against 128 GB free (102.4 usable): no.
    expect(run("fits", "28000000000", "12000000000", "8", "128000000000")).toBe("needs 112000000000 fits 0");
    expect(run("fits", "28000000000", "12000000000", "8", "140000000000")).toBe("needs 112000000000 fits 1");
    // unknown free memory: taken as fitting (the allocation then says)
    expect(run("fits", "28000000000", "12000000000", "8", "0")).toBe("needs 112000000000 fits 1");
  });

  it("reads LASP_CHECKPOINT_COPY's values", () => {
    expect(run("choice", "-")).toBe("auto");
    expect(run("choice", "auto")).toBe("auto");
    expect(run("choice", "host")).toBe("host");
    expect(run("choice", "none")).toBe("none");
    expect(run("choice", "pinned")).toBe(
      "invalid\nLASP_CHECKPOINT_COPY is `pinned`: it must be auto (the default: a copy in host memory where the " +
        "host holds it), host or none (checkpoints written in place, training waiting for each)",
    );
  });
});
