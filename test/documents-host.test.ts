// templates/runtime/documents.cuh's host logic (compiled with g++ into test/documents-harness.cpp): the program
// draws the same documents from a seed as the schedule IR (src/schedule/documents.ts), so `lasp inspect` and
// `lasp verify` describe the documents a verify run takes, and every token's range follows types.cuh's
// definition, computed here independently by brute force.
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { drawBoundaries } from "../src/schedule/documents.js";
import { buildHarness, gxx } from "./host-harness.js";

const harness = join(mkdtempSync(join(tmpdir(), "lasp-documents-")), "harness");

const numbers = (stdout: string, name: string): number[] => {
  const found = stdout.split("\n").find((l) => l === name || l.startsWith(name + " "));
  if (found === undefined) throw new Error(`no line "${name}" in ${stdout}`);
  return found.split(" ").slice(1).map(Number);
};
const run = (...args: (string | number)[]): string =>
  spawnSync(harness, args.map(String), { encoding: "utf8" }).stdout;

describe.runIf(gxx)("documents.cuh (host side, compiled with g++)", () => {
  beforeAll(() => {
    const built = buildHarness("documents-harness.cpp", harness);
    expect(built.stderr).toBe("");
    expect(built.status).toBe(0);
  });

  it("draws the boundaries the schedule IR draws, for any seed and mean (mulberry32 ported bit for bit)", () => {
    for (const [n, mean, seed] of [
      [1024, 100, 1],
      [4096, 2048, 7],
      [256, 1, 3],
      [65536, 2048, 4294967295],
      [512, 40, 123456789],
    ] as const) {
      const expected = drawBoundaries(n, mean, seed);
      expect(numbers(run("draw", n, n, mean, seed), "ends")).toEqual(expected);
      if (mean > 1) expect(expected.length).toBeGreaterThan(0);
    }
  });

  it("with padding: the real tokens' documents, then one end at the last real token", () => {
    const expected = [...drawBoundaries(1000, 64, 5), 999];
    expect(numbers(run("draw", 1024, 1000, 64, 5), "ends")).toEqual(expected);
  });

  it("gives each token its document's first token and the first end at or after it (seq_len if none)", () => {
    for (const ends of [[], [0], [63], [5, 6, 7], [3, 64, 127], [127]]) {
      const n = 128;
      const first = Array.from({ length: n }, (_, t) =>
        Math.max(0, ...ends.filter((e) => e < t).map((e) => e + 1)),
      );
      const last = Array.from({ length: n }, (_, t) => Math.min(n, ...ends.filter((e) => e >= t)));
      const out = run("ranges", n, ...ends);
      expect(numbers(out, "first")).toEqual(first);
      expect(numbers(out, "last")).toEqual(last);
      // The definition's promise: key j reaches query i >= j iff j >= first[i] iff last[j] >= i.
      for (let i = 0; i < n; i += 7)
        for (let j = 0; j <= i; j += 5) {
          const sameDocument = !ends.some((e) => e >= j && e < i);
          expect(j >= first[i]!).toBe(sameDocument);
          expect(last[j]! >= i).toBe(sameDocument);
        }
    }
  });
});
