import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { parameterCounts } from "../model/parameters.js";
import { lowerSpec } from "../schedule/lower.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { H100_PROFILE, SHIPPED_PROFILES, type MachineProfile } from "./profile.js";
import {
  gradientSumTime,
  OPTIMIZER_BYTES_PER_PARAMETER,
  predictTrainingStep,
  type TrainingStepPrediction,
} from "./training-step.js";

function benchSpec(name: string, edit: (text: string) => string = (t) => t): ResolvedSpec {
  const result = checkSource(`${name}.lasp`, edit(readFileSync(`bench/gpu/specs/${name}.lasp`, "utf8")));
  if (result.spec === undefined) throw new Error(result.diagnostics.map((d) => d.message).join("\n"));
  return result.spec;
}
const predict = (name: string, profile = H100_PROFILE): TrainingStepPrediction => {
  const spec = benchSpec(name);
  return predictTrainingStep(spec, lowerSpec(spec), profile);
};
const ms = (seconds: number): number => seconds * 1e3;

describe("train mode's step on one H100, predicted against the measurement", () => {
  // bench/results/2026-12-05-train-mode-h100.md: t-linear-1b-w1 (Linear-Llama3-1B, 16K tokens, AdamW replicated,
  // 1.599B parameters) trains at 244.35 ms a step (median of 100); the same model's bench step (no optimizer)
  // was 229.1 ms in the call after and 225.6 ms in bench/results/2026-12-05-whole-model-h100.md.
  const TRAIN_STEP_MS = 244.35;
  const BENCH_STEP_MS = [225.6, 229.1];

  it("the train step within 1.5% of the measured 244.35 ms (predicted 243.3: 226.3 + the optimizer's 17.1)", () => {
    const p = predict("t-linear-1b-w1");
    expect(Math.abs(ms(p.total) / TRAIN_STEP_MS - 1)).toBeLessThan(0.015);
    expect(p.gradientSum.busy).toBe(0); // one GPU sums nothing
  });

  it("the optimizer: 34 bytes per parameter at the attainable bandwidth, as much as train adds to bench", () => {
    const spec = benchSpec("t-linear-1b-w1");
    const p = predict("t-linear-1b-w1");
    const parameters = parameterCounts(spec.model).total;
    expect(p.optimizer!.parameters).toBe(parameters);
    expect(p.optimizer!.seconds).toBeCloseTo(
      (parameters * OPTIMIZER_BYTES_PER_PARAMETER) / H100_PROFILE.gpu.hbmAttainable,
      12,
    );
    // Measured: train minus bench is 15.3-18.8 ms (the bench steps of two calls); 15.3 ms would need 3.6 TB/s,
    // above the H100's 3.35 TB/s peak, so the lower figure is the bench step's spread, not the optimizer's.
    const added = BENCH_STEP_MS.map((b) => TRAIN_STEP_MS - b);
    expect(ms(p.optimizer!.seconds)).toBeGreaterThan(Math.min(...added));
    expect(ms(p.optimizer!.seconds)).toBeLessThan(Math.max(...added) * 1.05);
  });

  it("bench mode runs no optimizer; accumulation repeats the forward and backward per micro-batch", () => {
    expect(predict("m-linear-1b-w1").optimizer).toBeNull();
    const spec = benchSpec("t-linear-1b-w1", (t) => t.replace("mode train", "mode train  accumulate 4"));
    const four = predictTrainingStep(spec, lowerSpec(spec), H100_PROFILE);
    const one = predict("t-linear-1b-w1");
    expect(four.microBatches).toBe(4);
    expect(four.tokens).toBe(4 * one.tokens);
    expect(four.total - four.optimizer!.seconds).toBeCloseTo(4 * one.step.total, 12);
    expect(four.optimizer!.bytes).toBeGreaterThan(one.optimizer!.bytes);
  });
});

// bench/results/2026-11-26-weak-scaling-session5-h100x4.md (lease D, one run each, median rank; the copy
// engines for LASP-2's states and the gradient sums, cuDNN for whole-sequence softmax), 16K tokens per GPU,
// 4 layers (linear) or [L, L, L, S] x 2 (hybrid). The programs of that date ran the attention blocks alone
// (projections, core, output norm, O projection, residual; random inputs and incoming gradient): no embedding,
// block norms, MLP or LM head, which came with issue 16 (the specs' vocab 512 and ffn 512 were ignored). So
// they are compared with the prediction's attention parts: the step less its embedding, norms, MLP and LM head
// (attentionOnly). Until 2026-12-06 these tests compared the whole step and read the difference as a 15%
// over-prediction of "this small model's norms and short GEMMs"; that was the missing MLP and norms.
const WEAK: Record<string, [number | undefined, number, number]> = {
  lasp2: [13.45, 13.915, 14.07],
  lasp1: [13.52, 15.21, 15.94],
  "hyb-ag-zz": [40.46, 68.14, 110.14],
  "hyb-ag-ct": [undefined, 84.82, 163.22],
  "hyb-ring-zz": [undefined, 70.37, 117.71],
  "hyb-uly-zz": [undefined, 58.88, 89.22],
};
/** The predicted step of what the 2026-11-26 programs ran: the attention blocks (and their gradient sums). */
function attentionOnly(p: TrainingStepPrediction): number {
  const { embedding, norms, mlp, lm_head_loss } = p.step.parts;
  return p.total - (embedding + norms + mlp + lm_head_loss);
}
// These programs ran lasp's softmax backward before its dQ went through TMA reduce-adds (2026-12-06): priced at
// that kernel's measured rate, as the shipped profile had it then.
const ATOMICS_BACKWARD: MachineProfile = {
  ...H100_PROFILE,
  gpu: { ...H100_PROFILE.gpu, laspSoftmaxBackwardFlops: 379e12 },
};
const weak = (strategy: string, gpus: 1 | 2 | 4): number =>
  ms(attentionOnly(predict(`b-${strategy}-w${gpus}`, ATOMICS_BACKWARD)));
const measuredWeak = (strategy: string, gpus: 1 | 2 | 4): number =>
  WEAK[strategy]![gpus === 4 ? 2 : gpus - 1]!;

describe("weak scaling on 1, 2 and 4 H100s, the attention blocks predicted against the measurement", () => {
  // Predicted attention parts (ms; measured in brackets):
  // | LASP-2       | 12.83 [13.45] | 13.50 [13.92] | 13.62 [14.07] | 4 vs 1: +6.2% [+4.6%; four leases +4.3..+4.7%] |
  // | LASP-1       | 12.84 [13.52] | 14.58 [15.21] | 14.92 [15.94] | 4 vs 1: +16.2% [+17.9%]                        |
  // | Ulysses      |               | 54.64 [58.88] | 83.65 [89.22] | -7.2%, -6.2%                                   |
  // | ring zz      |               | 64.04 [70.37] | 103.79 [117.71]| -9.0%, -11.8%                                 |
  // | LASP-2H zz   | 37.89 [40.46] | (per-block schedule, measured: [68.14], [110.14]; gathered: below)             |
  // What it says, without a fit:
  // - The linear stacks 3-6% under: their chunk walks at gpu.linearKernelBandwidth, what the walks attain in
  //   the programs, and the projections of these small layers (hidden 1024) at the large GEMMs' rate. Until
  //   2026-12-06 the model priced the walks at the streaming bandwidth (a third of their time) and these
  //   comparisons read 14-18% under; until 2026-12-07 LASP-2's hosted projections took the attention rate,
  //   which read LASP-2 within 2% and LASP-1 (the same work on one GPU) 5% under.
  // - The hybrids 6-12% under. Their softmax layers are priced at what lasp calibrate measured on an H100
  //   (cuDNN 544 TFLOP/s forward and backward, lasp's backward 379: bench/results/2026-12-06-calibrate-h100.md;
  //   until 2026-12-06 the profile had an estimate, 600 and 429, and these read 11-19% under). Ring runs
  //   lasp's kernels; its miss grows with W (the blocks' merge and fp32 accumulators, which the roofline
  //   counts once).
  // - What more GPUs add is predicted within 2 points: LASP-2's state AllGathers and the gradient sums' last
  //   layer, LASP-1's W-1 dependent hops. LASP-1's margin over LASP-2 is under-predicted (6% vs 13% at 4 GPUs):
  //   each hop waits for a kernel launch and a handshake that the model prices at one link latency.
  // - LASP-2H is now one gathered call per rank and pass (issue 18) on cuDNN, each causal piece's backward split
  //   into a rectangle and a square, priced at what lasp calibrate measured of a rank's calls on an H100: 0.94x
  //   of cuDNN's whole-sequence rate (64K tokens, W 4 zigzag: gpu.gatheredAttentionEfficiency,
  //   bench/results/2026-12-06-calibrate-h100-split.json; the harness on an H200: 0.95x). That puts it 2-5% behind Ulysses at 2 and 4 GPUs and
  //   ahead of ring; the b-hyb-ag-* programs on several GPUs will say what a step attains.
  const ratio = (strategy: string, gpus: 1 | 2 | 4): number =>
    weak(strategy, gpus) / measuredWeak(strategy, gpus);

  it("the linear stacks under by 3-7% at every GPU count, LASP-2 as LASP-1", () => {
    for (const gpus of [1, 2, 4] as const) {
      expect(ratio("lasp2", gpus)).toBeGreaterThan(0.94);
      expect(ratio("lasp2", gpus)).toBeLessThan(0.98);
      expect(ratio("lasp1", gpus)).toBeGreaterThan(0.93);
      expect(ratio("lasp1", gpus)).toBeLessThan(0.97);
    }
  });

  it("the hybrids under by 5-13%: Ulysses within 8%, ring's miss growing with W", () => {
    expect(ratio("hyb-ag-zz", 1)).toBeGreaterThan(0.92);
    expect(ratio("hyb-ag-zz", 1)).toBeLessThan(0.96);
    for (const gpus of [2, 4] as const) {
      expect(ratio("hyb-uly-zz", gpus)).toBeGreaterThan(0.92);
      expect(ratio("hyb-uly-zz", gpus)).toBeLessThan(0.95);
      expect(ratio("hyb-ring-zz", gpus)).toBeGreaterThan(0.87);
      expect(ratio("hyb-ring-zz", gpus)).toBeLessThan(0.93);
    }
    expect(ratio("hyb-ring-zz", 4)).toBeLessThan(ratio("hyb-ring-zz", 2));
  });

  it("what 2 and 4 GPUs add over one: LASP-2 and LASP-1 within 2 points of the measured", () => {
    for (const strategy of ["lasp2", "lasp1"]) {
      const p1 = weak(strategy, 1);
      const m1 = measuredWeak(strategy, 1);
      for (const gpus of [2, 4] as const)
        expect(Math.abs(weak(strategy, gpus) / p1 - measuredWeak(strategy, gpus) / m1)).toBeLessThan(0.02);
    }
  });

  it("LASP-1's chain: slower than LASP-2 at 2 and 4 GPUs, its margin under-predicted (launch latency per hop)", () => {
    for (const gpus of [2, 4] as const) {
      expect(weak("lasp1", gpus)).toBeGreaterThan(weak("lasp2", gpus));
      const predicted = weak("lasp1", gpus) / weak("lasp2", gpus);
      const measured = measuredWeak("lasp1", gpus) / measuredWeak("lasp2", gpus);
      expect(predicted).toBeLessThan(measured);
      expect(measured - predicted).toBeLessThan(0.08);
    }
  });

  it("LASP-2H's gathered call (cuDNN at its measured 0.94x) predicted just behind Ulysses, well under its old per-block measurement", () => {
    for (const gpus of [2, 4] as const) {
      // The softmax layers' share of the step grows with W (16K tokens per GPU), and so does the 0.94's effect:
      // 2% behind at 2 GPUs, 5% at 4.
      expect(weak("hyb-ag-zz", gpus) / weak("hyb-uly-zz", gpus)).toBeGreaterThan(1.0);
      expect(weak("hyb-ag-zz", gpus) / weak("hyb-uly-zz", gpus)).toBeLessThan(1.06);
      // Even taken as far under as Ulysses (0.93 at the most), under the per-block schedule's measurement.
      for (const strategy of ["hyb-ag-zz", "hyb-ag-ct"])
        expect(weak(strategy, gpus) / 0.93).toBeLessThan(measuredWeak(strategy, gpus));
    }
    expect(weak("hyb-ag-zz", 4) / weak("hyb-uly-zz", 4)).toBeGreaterThan(
      weak("hyb-ag-zz", 2) / weak("hyb-uly-zz", 2),
    );
  });

  it("the ranking the measurements show: zigzag before contiguous, Ulysses before ring at 4 GPUs", () => {
    expect(weak("hyb-ag-zz", 4)).toBeLessThan(weak("hyb-ag-ct", 4));
    // Measured: Ulysses 89.2 < LASP-2H (per-block) 110.1 < ring 117.7; predicted 83.7 < ring 103.8.
    expect(weak("hyb-uly-zz", 4)).toBeLessThan(weak("hyb-ring-zz", 4));
    expect(weak("hyb-ag-zz", 4)).toBeLessThan(weak("hyb-ring-zz", 4));
  });
});

describe("the weight-gradient sum", () => {
  it("queues one sum per block behind the backward: only what is left after the embedding is exposed", () => {
    const p = predict("b-lasp2-w4");
    const { blocks } = p.gradientSum;
    expect(blocks.map((b) => b.what)).toEqual([
      "final norm and LM head",
      "layer 3",
      "layer 2",
      "layer 1",
      "layer 0",
      "embedding",
    ]);
    for (let i = 1; i < blocks.length; i++) {
      expect(blocks[i]!.issued).toBeGreaterThanOrEqual(blocks[i - 1]!.issued);
      expect(blocks[i]!.done).toBeCloseTo(
        Math.max(blocks[i - 1]!.done, blocks[i]!.issued) + blocks[i]!.seconds,
        15,
      );
    }
    expect(p.gradientSum.exposed).toBeCloseTo(blocks.at(-1)!.done - p.step.total, 15);
    // Layer 0's sum (20M fp32 gradients) is the bulk of it: less than all the sums, more than none.
    expect(p.gradientSum.exposed).toBeGreaterThan(blocks[4]!.seconds * 0.9);
    expect(p.gradientSum.exposed).toBeLessThan(p.gradientSum.busy);
    expect(blocks.every((b) => b.path === "copy_engines")).toBe(true);
  });

  it("takes the copy engines inside a node when the block splits evenly, else one AllReduce", () => {
    expect(gradientSumTime(1024, 1, H100_PROFILE)).toEqual({ path: "none", seconds: 0 });
    expect(gradientSumTime(1024, 8, H100_PROFILE).path).toBe("copy_engines");
    expect(gradientSumTime(1023, 8, H100_PROFILE).path).toBe("allreduce");
    expect(gradientSumTime(1024, 16, H100_PROFILE).path).toBe("allreduce");
  });

  it("between nodes the inter-node links bound it: much slower than inside a node", () => {
    const elements = 20e6;
    const inside = gradientSumTime(elements, 8, H100_PROFILE).seconds;
    const across = gradientSumTime(elements, 16, H100_PROFILE).seconds;
    const bytes = elements * 4;
    expect(across).toBeCloseTo(
      H100_PROFILE.interNode.latency + (2 * bytes * 15) / 16 / H100_PROFILE.interNode.busBandwidth,
      12,
    );
    expect(across / inside).toBeGreaterThan(5);
  });

  it("an A100 profile prices the same step slower than the H100's", () => {
    expect(predict("b-lasp2-w4", SHIPPED_PROFILES["a100-sxm-80gb"]).total).toBeGreaterThan(
      predict("b-lasp2-w4").total,
    );
  });
});

describe("train mode on more than one GPU", () => {
  /** t-linear-1b-w1 on `gpus` GPUs as data parallelism (`batch` sequences), optionally another vocabulary. */
  const dataParallel = (gpus: number, vocab = 128256): TrainingStepPrediction => {
    const spec = benchSpec("t-linear-1b-w1", (t) =>
      t
        .replace("gpus 1  sequence 1  data 1", `gpus ${gpus}  sequence 1  data ${gpus}`)
        .replace("batch 1", `batch ${gpus}`)
        .replace("vocab 128256", `vocab ${vocab}`),
    );
    return predictTrainingStep(spec, lowerSpec(spec), H100_PROFILE);
  };

  it("ZeRO-1 where every block splits evenly: a 1/W update, gradient sums without their AllGather, weights gathered", () => {
    const one = predict("t-linear-1b-w1");
    const four = dataParallel(4);
    expect(four.optimizer!.sharded).toBe(true);
    expect(four.optimizer!.bytes).toBeCloseTo(one.optimizer!.bytes / 4, 0);
    expect(four.optimizer!.weightGather).toBeGreaterThan(0);
    for (const b of four.gradientSum.blocks) {
      expect(b.path).toBe("copy_engines");
      expect(b.seconds).toBeLessThan(gradientSumTime(b.elements, 4, H100_PROFILE).seconds);
    }
  });

  it("replicated where a block does not split (vocab 128257 over 3 GPUs): the whole update on every rank", () => {
    const three = dataParallel(3, 128257);
    expect(three.optimizer!.sharded).toBe(false);
    expect(three.optimizer!.weightGather).toBe(0);
    expect(three.optimizer!.bytes).toBe(three.optimizer!.parameters * OPTIMIZER_BYTES_PER_PARAMETER);
    // No block splits over 3 (a layer's is 2048 x 32770 elements): one AllReduce each, as grad_sum.cuh does.
    expect(three.gradientSum.blocks.every((b) => b.path === "allreduce")).toBe(true);
  });
});

describe("a padded seq_len", () => {
  it("counts only the real tokens in tokens per step (the padding trains nothing)", () => {
    const result = checkSource(
      "p.lasp",
      `model m { vocab 512 hidden 256 ffn 512 heads 4 head_dim 64
  layer L = linear_attention { } stack L x 2 }
run { seq_len 1000  batch 2 }`,
    );
    const spec = result.spec!;
    expect(spec.run.padding).toBe(24);
    expect(spec.run.seqLen).toBe(1024);
    const prediction = predictTrainingStep(spec, lowerSpec(spec), H100_PROFILE);
    expect(prediction.tokens).toBe(1000 * 2);
    expect(prediction.tokensPerSecondPerGpu).toBeCloseTo(2000 / prediction.total, 6);
  });
});
