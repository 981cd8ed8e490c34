// templates/runtime/report.cuh's fail_input (compiled with g++ into test/report-harness.cpp): the `error` event
// is one line of valid JSON whatever the message holds, the sentence goes whole to stderr, the exit code is 2.
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { buildHarness, gxx } from "./host-harness.js";

const harness = join(mkdtempSync(join(tmpdir(), "lasp-report-")), "harness");
const run = (kind: string) => spawnSync(harness, [kind], { encoding: "utf8" });

describe.skipIf(!gxx)("report.cuh: an input error as an event and a sentence", () => {
  beforeAll(() => {
    const build = buildHarness("report-harness.cpp", harness);
    expect(build.stderr).toBe("");
    expect(build.status).toBe(0);
  }, 60_000);

  it("escapes quotes, backslashes and control characters in the event, and prints the sentence as it is", () => {
    const message = 'the file "C:\\data\\x.bin" is cut:\nline two\tend';
    const r = run("escapes");
    expect(r.status).toBe(2);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toEqual({ event: "error", rank: 0, message });
    expect(r.stderr).toBe(`lasp_program: ${message}\n`);
  });

  it("keeps the event's line whole for a long message: its first 900 characters", () => {
    const r = run("long");
    expect(r.status).toBe(2);
    expect(JSON.parse(r.stdout).message).toBe("a".repeat(900));
    expect(r.stderr).toBe(`lasp_program: ${"a".repeat(2000)}Z\n`);
  });
});
