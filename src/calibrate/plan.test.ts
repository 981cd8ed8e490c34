import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import {
  calibrationPlan,
  COLLECTIVE_BYTES,
  COLLECTIVE_OPS,
  DEFAULT_SHAPES,
  describeBenchmark,
  GATHERED_RANKS,
  gatheredRankTokens,
  GEMM_BATCH_MS,
  GEMM_HEAT_MS,
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

  it("times every GEMM in sustained batches, after heating the GPU with the largest one", () => {
    const plan = calibrationPlan(DEFAULT_SHAPES, 1);
    const all = gemms(plan.benchmarks);
    expect(all.every((g) => g.batchMs === GEMM_BATCH_MS)).toBe(true);
    const heated = all.filter((g) => g.heatMs > 0);
    expect(heated).toHaveLength(1);
    expect(heated[0]!.heatMs).toBe(GEMM_HEAT_MS);
    const volume = (g: (typeof all)[number]) => g.m * g.n * g.k;
    expect(Math.max(...all.map(volume))).toBe(volume(heated[0]!));
    // The program reads both from the plan's line (main.cu: BATCH HEAT after the operands' layout).
    expect(planText(plan.benchmarks)).toContain(
      `${heated[0]!.id} gemm ${heated[0]!.m} ${heated[0]!.n} ${heated[0]!.k} ${heated[0]!.transA ? 1 : 0} ${heated[0]!.transB ? 1 : 0} ${GEMM_BATCH_MS} ${GEMM_HEAT_MS}`,
    );
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
      gemm: 7,
      linear_forward: 4,
      softmax_backward: 6,
      softmax_gathered: 8,
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
    // T H KV D C W Z backend: 4 ranks of 16384 tokens, zigzag.
    expect(lines).toContain(
      `${plan.benchmarks.find((b) => b.kind === "softmax_gathered")!.id} softmax_gathered 16384 16 8 128 1 4 1 cudnn`,
    );
  });
});

describe("the gathered benchmark (gpu.gatheredAttentionEfficiency)", () => {
  const gathered = (plan: ReturnType<typeof calibrationPlan>) => {
    const found = plan.benchmarks.filter((b) => b.kind === "softmax_gathered");
    expect(found).toHaveLength(1);
    return found[0]!;
  };

  it("runs LASP-2H's cuDNN calls of 4 zigzag ranks, each holding a rank's tokens, at the softmax benchmarks' shapes", () => {
    const plan = calibrationPlan(DEFAULT_SHAPES, 1);
    const softmax = plan.benchmarks.find((b) => b.kind === "softmax_forward")!;
    expect(gathered(plan)).toEqual({
      id: gathered(plan).id,
      kind: "softmax_gathered",
      backend: "cudnn",
      tokens: 16384,
      ranks: GATHERED_RANKS,
      layout: "zigzag",
      heads: 16,
      kvHeads: 8,
      headDim: 128,
      causal: true,
    });
    expect(GATHERED_RANKS).toBe(4);
    expect(softmax).toMatchObject({ heads: 16, kvHeads: 8, headDim: 128, causal: true });
    expect(describeBenchmark(gathered(plan))).toBe(
      "cuDNN LASP-2H gathered forward and backward against the whole sequence (4 ranks zigzag, 65536 tokens, 16 x 128, 8 KV heads, causal)",
    );
  });

  it("caps the whole sequence at MAX_TOKENS and keeps each zigzag half whole 64-row tiles", () => {
    expect(gathered(calibrationPlan({ ...DEFAULT_SHAPES, tokens: 1 << 20 }, 1)).tokens).toBe(MAX_TOKENS / 4);
    expect(gathered(calibrationPlan({ ...DEFAULT_SHAPES, tokens: 5000 }, 1)).tokens).toBe(4992);
    expect(gathered(calibrationPlan({ ...DEFAULT_SHAPES, tokens: 100 }, 1)).tokens).toBe(128);
    for (const tokens of [1, 100, 128, 5000, 8192, 16383, 16384, 20000, 1 << 20]) {
      for (const ranks of [2, 4, 8]) {
        const rank = gatheredRankTokens(tokens, ranks);
        expect(ranks * rank, `${tokens} at W ${ranks}`).toBeLessThanOrEqual(MAX_TOKENS);
        expect((ranks * rank) % (2 * ranks * 64), `${tokens} at W ${ranks}`).toBe(0);
        expect(rank).toBeLessThanOrEqual(Math.max(tokens, 128));
      }
    }
  });

  it("takes a spec's softmax grouping, and the default model's where the spec has none", () => {
    const result = checkSource(
      "m.lasp",
      `model m { vocab 1000  hidden 512  ffn 1024  heads 8  head_dim 64
         layer S = softmax_attention { kv_heads 2 }
         stack [S] x 2 }
       parallel { gpus 2  sequence 2 }
       run { seq_len 16K  batch 1 }`,
    );
    expect(gathered(calibrationPlan(shapesOf(result.spec!), 2))).toMatchObject({
      tokens: 8192,
      heads: 8,
      kvHeads: 2,
      headDim: 64,
    });
    const linearOnly = { ...DEFAULT_SHAPES, softmaxKvHeads: undefined, heads: 4, headDim: 64 };
    expect(gathered(calibrationPlan(linearOnly, 1))).toMatchObject({ heads: 16, kvHeads: 8, headDim: 128 });
  });
});
