import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import {
  calibrationPlan,
  COLLECTIVE_BYTES,
  COLLECTIVE_OPS,
  DEFAULT_SHAPES,
  MAX_TOKENS,
  partOf,
  planText,
  shapesOf,
  type Benchmark,
} from "./plan.js";

const gemms = (benchmarks: Benchmark[]) => benchmarks.flatMap((b) => (b.kind === "gemm" ? [b] : []));

describe("the benchmark plan", () => {
  it("measures the default model's products with the program's operand layouts, each shape once", () => {
    const plan = calibrationPlan(DEFAULT_SHAPES, 1);
    const mlp = gemms(plan.benchmarks).filter((g) => g.label.startsWith("mlp.gate_up"));
    expect(mlp.map((g) => [g.label, g.m, g.n, g.k, g.transA, g.transB])).toEqual([
      ["mlp.gate_up forward", 16384, 16384, 2048, false, true],
      ["mlp.gate_up input gradient", 16384, 2048, 16384, false, false],
      ["mlp.gate_up weight gradient", 16384, 2048, 16384, true, false],
    ]);
    const keys = gemms(plan.benchmarks).map((g) => `${g.m} ${g.n} ${g.k} ${g.transA} ${g.transB}`);
    expect(new Set(keys).size).toBe(keys.length);
    // The LM head over one chunk of the loss (model/tables.ts's classifierChunk: 4096 tokens at this vocab).
    expect(gemms(plan.benchmarks).at(-1)).toMatchObject({ m: 4096, n: 128256, k: 2048 });
  });

  it("numbers the benchmarks in order, and plans collectives only for two GPUs or more", () => {
    const one = calibrationPlan(DEFAULT_SHAPES, 1);
    expect(one.benchmarks.map((b) => b.id)).toEqual(one.benchmarks.map((_, i) => i));
    expect(one.benchmarks.some((b) => partOf(b) === "collectives")).toBe(false);
    const eight = calibrationPlan(DEFAULT_SHAPES, 8);
    const collectives = eight.benchmarks.filter((b) => partOf(b) === "collectives");
    expect(collectives).toHaveLength(COLLECTIVE_OPS.length * COLLECTIVE_BYTES.length);
    expect(COLLECTIVE_BYTES[0]).toBe(64 * 1024);
    expect(COLLECTIVE_BYTES.at(-1)).toBe(256 * 1024 * 1024);
  });

  it("takes a spec's shapes: one rank's tokens, its heads, and the default grouping where it has no softmax layer", () => {
    const result = checkSource(
      "m.lasp",
      `model m { vocab 1000  hidden 256  ffn 512  heads 4  head_dim 64
         layer L = linear_attention { decay none }
         stack [L] x 2 }
       parallel { gpus 4  sequence 2  data 2 }
       run { seq_len 8K  batch 4 }`,
    );
    const shapes = shapesOf(result.spec!);
    // 8K tokens over 2 sequence ranks, 4 sequences over 2 data replicas: 4096 x 2 tokens per rank.
    expect(shapes.tokens).toBe(8192);
    const plan = calibrationPlan(shapes, 4);
    expect(plan.benchmarks.find((b) => b.kind === "linear_forward")).toMatchObject({
      tokens: 8192,
      heads: 4,
      headDim: 64,
    });
    expect(plan.benchmarks.find((b) => b.kind === "softmax_forward")).toMatchObject({
      heads: 16,
      kvHeads: 8,
      headDim: 128,
    });
    expect(gemms(plan.benchmarks)[0]).toMatchObject({ label: "qkv forward", m: 8192, n: 3 * 256, k: 256 });
  });

  it("caps a rank's tokens, so that a softmax benchmark stays within seconds", () => {
    const plan = calibrationPlan({ ...DEFAULT_SHAPES, tokens: 1 << 20 }, 1);
    expect(plan.tokens).toBe(MAX_TOKENS);
    expect(plan.benchmarks.find((b) => b.kind === "softmax_backward")).toMatchObject({ tokens: MAX_TOKENS });
  });

  it("writes one line per benchmark with the numbers main.cu reads for its kind", () => {
    const plan = calibrationPlan(DEFAULT_SHAPES, 2);
    const lines = planText(plan.benchmarks).trimEnd().split("\n");
    expect(lines).toHaveLength(plan.benchmarks.length);
    const counts: Record<string, number> = {
      gemm: 5,
      linear_forward: 4,
      softmax_backward: 6,
      copy: 1,
      all_to_all: 1,
    };
    for (const line of lines) {
      const [id, kind, ...rest] = line.split(" ");
      expect(Number(id)).toBe(lines.indexOf(line));
      if (counts[kind!] !== undefined) expect(rest, line).toHaveLength(counts[kind!]!);
    }
    expect(lines).toContain(
      `${plan.benchmarks.find((b) => b.kind === "softmax_backward" && b.backend === "cudnn")!.id} softmax_backward 16384 16 8 128 1 cudnn`,
    );
  });
});
