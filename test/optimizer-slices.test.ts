// templates/runtime/optimizer_slices.cuh (which parameters each rank's AdamW updates: replicated, or ZeRO-1's
// 1/W of every gradient block), compiled with g++ into test/optimizer-slices-harness.cpp, against the blocks the
// compiler writes for a real model (src/model/tables.ts gradientBlockSpans).
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { checkSource } from "../src/check/front-end.js";
import { gradientBlockSpans, modelTables, optimizerSharded } from "../src/model/tables.js";
import { buildHarness, gxx } from "./host-harness.js";

const harness = join(mkdtempSync(join(tmpdir(), "lasp-optimizer-slices-")), "harness");

const run = (...args: (string | number)[]): string =>
  spawnSync(harness, args.map(String), { encoding: "utf8" }).stdout.trim();

interface Span {
  param: number;
  state: number;
  elements: number;
  blockOffset: number;
  blockElements: number;
}

const spans = (params: number, sharded: boolean, rank: number, world: number, blocks: string[]): Span[] =>
  run("spans", params, sharded ? 1 : 0, rank, world, ...blocks)
    .split("\n")
    .map((line) => {
      const [param, state, elements, blockOffset, blockElements] = line.split(" ").map(Number);
      return {
        param: param!,
        state: state!,
        elements: elements!,
        blockOffset: blockOffset!,
        blockElements: blockElements!,
      };
    });

describe.runIf(gxx)("the optimizer's slices (optimizer_slices.cuh)", () => {
  beforeAll(() => {
    const built = buildHarness("optimizer-slices-harness.cpp", harness);
    expect(built.stderr).toBe("");
    expect(built.status).toBe(0);
  });

  const t = modelTables(
    checkSource(
      "m.lasp",
      `model m { vocab 512 hidden 256 ffn 512 heads 4 head_dim 64
  layer L = linear_attention { } stack L x 3 }
run { seq_len 1K }`,
    ).spec!,
    1024,
  );
  const blocks = gradientBlockSpans(t.parameters, t.layers, t.head);
  const args = blocks.map((b) => `${b.offset}:${b.elements}`);

  it("replicated: one slice, the whole allocation, on every rank", () => {
    expect(spans(t.parameters.elements, false, 1, 4, args)).toEqual([
      {
        param: 0,
        state: 0,
        elements: t.parameters.elements,
        blockOffset: 0,
        blockElements: t.parameters.elements,
      },
    ]);
  });

  it("ZeRO-1: the ranks' slices tile every block exactly once, each rank's states back to back", () => {
    for (const world of [2, 4, 8]) {
      expect(optimizerSharded(blocks, world)).toBe(true);
      expect(run("problem", world, ...args)).toBe("ok");
      const covered = blocks.map(() => 0);
      for (let rank = 0; rank < world; rank++) {
        const mine = spans(t.parameters.elements, true, rank, world, args);
        expect(mine).toHaveLength(blocks.length);
        let state = 0;
        mine.forEach((s, b) => {
          expect(s.blockOffset).toBe(blocks[b]!.offset);
          expect(s.elements).toBe(blocks[b]!.elements / world);
          expect(s.param).toBe(blocks[b]!.offset + rank * s.elements);
          expect(s.state).toBe(state);
          expect(s.param % 4).toBe(0); // 16-byte aligned fp32, 8-byte aligned bf16
          state += s.elements;
          covered[b]! += s.elements;
        });
      }
      expect(covered).toEqual(blocks.map((b) => b.elements));
    }
  });

  // Every layout a checkpoint can have: replicated on any number of ranks, ZeRO-1 on 2 or more.
  const layouts = "0x1,0x2,0x4,1x2,1x4,1x8";

  it("resumes every layout from every other: each parameter's state from where the checkpoint kept it", () => {
    const lines = run("reshard", t.parameters.elements, layouts, ...args).split("\n");
    expect(lines).toHaveLength(6 * (1 + 2 + 4 + 2 + 4 + 8));
    for (const line of lines) {
      const [from, to, , , copies, , shards, , wrong, , missing, , padding] = line.split(" ");
      expect([wrong, missing], line).toEqual(["0", "0"]);
      expect(Number(copies), line).toBeGreaterThan(0);
      // A replicated checkpoint holds the padding between blocks too; a ZeRO-1 one only the blocks.
      if (from!.startsWith("0x") || to!.startsWith("1x")) expect(padding, line).toBe("0");
      // The same layout reads what it wrote: ZeRO-1 its own shard, replicated every one.
      if (from === to) expect(Number(shards), line).toBe(to!.startsWith("1x") ? 1 : Number(to!.slice(2)));
    }
  });

  it("says which parameter no shard holds when a shard is missing", () => {
    const lines = run("reshard-without-last", t.parameters.elements, "1x4,0x1", ...args).split("\n");
    expect(lines).toContainEqual(
      expect.stringMatching(/^1x4 0x1 0 error parameter \d+ \(block \d+\) is in none of the 3 shards$/),
    );
  });

  it("names a block that does not split", () => {
    expect(run("problem", 3, "0:25600", "25600:1024")).toBe(
      "block 0 (25600 elements from 0) does not split into 3 slices of a multiple of 4 elements",
    );
    expect(run("problem", 2, "2:8")).toMatch(/^block 0 \(8 elements from 2\)/);
  });
});
