import { describe, expect, it } from "vitest";
import {
  describeRate,
  fitCollective,
  fitLine,
  fitProfile,
  FitError,
  flopsOf,
  LARGE_GEMM_FLOPS,
} from "./fit.js";
import type { Collected, Measurement } from "./measurements.js";
import { COLLECTIVE_BYTES, type Benchmark } from "./plan.js";
import { collected, collectiveTimes } from "./test-measurements.js";

const gemm = (id: number, m: number, n: number, k: number, tflops: number): Measurement => ({
  benchmark: {
    id,
    kind: "gemm",
    label: `g${id}`,
    m,
    n,
    k,
    transA: false,
    transB: true,
    batchMs: 25,
    heatMs: 0,
  },
  ms: ((2 * m * n * k) / (tflops * 1e12)) * 1e3,
  runs: 20,
});

const collective = collectiveTimes;

describe("fitting collectives", () => {
  it("finds the bandwidth and latency that made the times, for every bus factor", () => {
    for (const op of ["all_gather", "all_reduce", "send_recv"] as const) {
      const points = collective(op, 8, 12e-6, 320e9).map((m) => ({
        bytes: (m.benchmark as { bytes: number }).bytes,
        ms: m.ms,
      }));
      const fit = fitCollective(op, 8, points);
      expect(fit.busBandwidth / 320e9).toBeCloseTo(1, 9);
      expect(fit.latency / 12e-6).toBeCloseTo(1, 9);
      expect(fit.latencyFromSmallest).toBe(false);
    }
  });

  it("weighs sizes by relative error, so noise on the largest does not swamp the latency", () => {
    const points = COLLECTIVE_BYTES.map((bytes) => ({ bytes, ms: (10e-6 + bytes / 300e9) * 1e3 }));
    points[points.length - 1]!.ms *= 1.02;
    const fit = fitCollective("send_recv", 2, points);
    expect(fit.latency / 10e-6).toBeCloseTo(1, 1);
  });

  it("takes the smallest message's time where the fitted latency is not positive", () => {
    const fit = fitCollective("send_recv", 2, [
      { bytes: 1e6, ms: 0.001 },
      { bytes: 2e6, ms: 0.003 },
    ]);
    expect(fit.latencyFromSmallest).toBe(true);
    expect(fit.latency).toBe(1e-6);
  });

  it("refuses times that do not grow with the size, and a single size", () => {
    expect(() =>
      fitCollective("all_gather", 2, [
        { bytes: 1, ms: 2 },
        { bytes: 2, ms: 1 },
      ]),
    ).toThrow(FitError);
    expect(() => fitLine([{ x: 1, t: 1 }])).toThrow(FitError);
  });
});

describe("the profile fields", () => {
  it("takes the median of the large GEMMs, leaving the small ones out", () => {
    const fit = fitProfile(
      collected([
        gemm(0, 8192, 8192, 8192, 600),
        gemm(1, 8192, 8192, 4096, 700),
        gemm(2, 16384, 8192, 8192, 650),
        gemm(3, 64, 64, 64, 5),
      ]),
      1,
    );
    expect(2 * 64 ** 3).toBeLessThan(LARGE_GEMM_FLOPS);
    const field = fit.fields.find((f) => f.path === "gpu.gemmFlops")!;
    expect(field.value / 650e12).toBeCloseTo(1, 9);
    expect(field.what).toContain("median of 3 cuBLAS bf16 GEMMs");
  });

  it("times attention by cuDNN (else lasp's forward), lasp's softmax backward apart, and HBM by the best stream at the largest size", () => {
    const softmax = (
      kind: "softmax_forward" | "softmax_backward",
      backend: "lasp" | "cudnn",
      ms: number,
    ): Measurement => ({
      benchmark: { id: 0, kind, backend, tokens: 16384, heads: 16, kvHeads: 8, headDim: 128, causal: true },
      ms,
      runs: 20,
    });
    const stream = (kind: "copy" | "add", bytes: number, ms: number): Measurement => ({
      benchmark: { id: 0, kind, bytes },
      ms,
      runs: 20,
    });
    const fit = fitProfile(
      collected([
        softmax("softmax_forward", "lasp", 2),
        softmax("softmax_backward", "lasp", 6),
        softmax("softmax_backward", "cudnn", 1),
        stream("copy", 2 ** 30, 1),
        stream("add", 2 ** 30, 1.2),
        stream("copy", 2 ** 28, 0.1),
      ]),
      1,
    );
    const forward = 4 * 16384 * 16384 * 16 * 128 * 0.5;
    // No cuDNN forward here: the attention rate is lasp's forward; the backward has its own.
    expect(fit.fields.find((f) => f.path === "gpu.attentionFlops")!.value).toBeCloseTo(forward / 2e-3, -3);
    expect(fit.fields.find((f) => f.path === "gpu.laspSoftmaxBackwardFlops")!.value).toBeCloseTo(
      (2.5 * forward) / 6e-3,
      -3,
    );
    // With cuDNN's forward too, the attention rate is cuDNN's forward and backward together.
    const withCudnn = fitProfile(
      collected([
        softmax("softmax_forward", "lasp", 2),
        softmax("softmax_backward", "lasp", 6),
        softmax("softmax_forward", "cudnn", 2),
        softmax("softmax_backward", "cudnn", 4),
      ]),
      1,
    );
    expect(withCudnn.fields.find((f) => f.path === "gpu.attentionFlops")!.value).toBeCloseTo(
      (3.5 * forward) / 6e-3,
      -3,
    );
    // add moves 3 GiB in 1.2 ms, copy 2 GiB in 1 ms; the small buffer's faster-looking copy is not counted.
    expect(fit.fields.find((f) => f.path === "gpu.hbmAttainable")!.value).toBeCloseTo(
      (3 * 2 ** 30) / 1.2e-3,
      -3,
    );
  });

  it("fits NVLink from the ring collectives' median, leaving send/recv out", () => {
    const fit = fitProfile(
      collected([
        ...collective("all_gather", 4, 10e-6, 300e9),
        ...collective("all_reduce", 4, 20e-6, 340e9),
        ...collective("send_recv", 4, 5e-6, 100e9),
      ]),
      4,
    );
    expect(fit.collectives.map((c) => c.op)).toEqual(["all_gather", "all_reduce", "send_recv"]);
    expect(fit.fields.find((f) => f.path === "nvlink.busBandwidth")!.value / 320e9).toBeCloseTo(1, 9);
    expect(fit.fields.find((f) => f.path === "nvlink.latency")!.value / 15e-6).toBeCloseTo(1, 9);
  });

  it("fits the linear walks' rate from the LASP-2 kernels, the state products taken at the streaming rate", () => {
    const linear = (kind: "linear_forward" | "linear_backward", ms: number): Measurement => ({
      benchmark: { id: 0, kind, tokens: 16384, heads: 16, headDim: 128, causal: true },
      ms,
      runs: 20,
    });
    const hbm: Measurement = { benchmark: { id: 0, kind: "add", bytes: 2 ** 30 }, ms: 1.117, runs: 20 };
    // The H100 of 2026-12-06: forward (state + fused walk) 0.264 ms, backward (gradient state + walk) 0.547 ms.
    const fit = fitProfile(
      collected([linear("linear_forward", 0.264), linear("linear_backward", 0.547), hbm]),
      1,
    );
    const rows = 16384 * 16 * 128 * 2; // 64 MiB of bf16 rows
    const state = 16 * 128 * 128 * 4; // one fp32 state per head
    const streaming = (3 * 2 ** 30) / 1.117e-3;
    // Walks: the fused forward reads q, k, v and writes o (4 rows) with P; the fused backward 7 rows with P, G.
    const walks = 4 * rows + state + (7 * rows + 2 * state);
    const seconds = (0.264 + 0.547) / 1000 - (2 * (2 * rows + state)) / streaming;
    const field = fit.fields.find((f) => f.path === "gpu.linearKernelBandwidth")!;
    expect(field.value / (walks / seconds)).toBeCloseTo(1, 12);
    expect(field.value).toBeGreaterThan(1.0e12); // about a third of the streaming rate
    expect(field.value).toBeLessThan(1.1e12);
    expect(field.what).toContain("707 MiB");
    // Without a streaming measurement, or without the backward, there is nothing to fit it from.
    const noHbm = fitProfile(
      collected([linear("linear_forward", 0.264), linear("linear_backward", 0.547)]),
      1,
    );
    expect(noHbm.fields.map((f) => f.path)).not.toContain("gpu.linearKernelBandwidth");
    const noBackward = fitProfile(collected([linear("linear_forward", 0.264), hbm]), 1);
    expect(noBackward.fields.map((f) => f.path)).not.toContain("gpu.linearKernelBandwidth");
  });

  describe("LASP-2H's gathered calls against the whole sequence", () => {
    const benchmark: Benchmark = {
      id: 14,
      kind: "softmax_gathered",
      backend: "cudnn",
      tokens: 16384,
      ranks: 4,
      layout: "zigzag",
      heads: 16,
      kvHeads: 8,
      headDim: 128,
      causal: true,
    };
    const gathered = (ms: number, wholeMs: number): Measurement => ({ benchmark, ms, runs: 20, wholeMs });
    const field = (c: Collected) =>
      fitProfile(c, 1).fields.find((f) => f.path === "gpu.gatheredAttentionEfficiency");

    it("takes the whole sequence's time over the ranks' calls', the same FLOPs", () => {
      // The H100 of bench/results/2026-12-06-gathered-h100.md's estimate: 106 ms whole, 125 ms the four ranks.
      const fit = field(collected([gathered(125, 106)]))!;
      expect(fit.value).toBeCloseTo(106 / 125, 12);
      expect(fit.what).toContain(
        "W 4 zigzag, 65536 tokens (16384 per rank), 16 heads x 128, 8 KV heads, causal",
      );
      expect(fit.what).toContain("the ranks' calls 125.000 ms, the whole sequence 106.000 ms (0.848x)");
      // The FLOPs of the ranks' calls are the whole sequence's forward and backward, FlashAttention's count.
      const whole = {
        id: 0,
        backend: "cudnn",
        tokens: 65536,
        heads: 16,
        kvHeads: 8,
        headDim: 128,
        causal: true,
      } as const;
      expect(flopsOf(benchmark)).toBe(
        flopsOf({ ...whole, kind: "softmax_forward" })! + flopsOf({ ...whole, kind: "softmax_backward" })!,
      );
      expect(describeRate(gathered(125, 106), 1)).toMatch(
        /TFLOP\/s, 0\.848x the whole sequence's \(106\.000 ms\)$/,
      );
    });

    it("caps it at 1 where the ranks' calls were faster", () => {
      const fit = field(collected([gathered(100, 104)]))!;
      expect(fit.value).toBe(1);
      expect(fit.what).toContain("(1.040x, capped at 1)");
    });

    it("leaves it out where the benchmark did not run (no cuDNN), so the base's value stays", () => {
      // cuDNN's whole-sequence benchmarks ran, the gathered one did not (a shape cuDNN refused).
      const cudnn = (kind: "softmax_forward" | "softmax_backward", ms: number): Measurement => ({
        benchmark: {
          id: 0,
          kind,
          backend: "cudnn",
          tokens: 16384,
          heads: 16,
          kvHeads: 8,
          headDim: 128,
          causal: true,
        },
        ms,
        runs: 20,
      });
      const skipped: Collected = {
        device: undefined,
        measurements: [cudnn("softmax_forward", 2), cudnn("softmax_backward", 5)],
        skipped: [{ benchmark, why: "cuDNN cannot run some rank's gathered calls on this GPU" }],
      };
      const paths = fitProfile(skipped, 1).fields.map((f) => f.path);
      expect(paths).toContain("gpu.attentionFlops");
      expect(paths).not.toContain("gpu.gatheredAttentionEfficiency");
    });
  });

  it("leaves out every field it has no measurement for", () => {
    expect(fitProfile(collected([]), 1).fields).toEqual([]);
  });
});
