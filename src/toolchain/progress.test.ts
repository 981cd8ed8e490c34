import { describe, expect, it } from "vitest";
import { parseEventLine, type ProgramEvent, type StepEvent, type SummaryEvent } from "./launch.js";
import {
  formatDuration,
  formatLossLine,
  formatLr,
  formatResumed,
  formatStep,
  formatSummary,
  formatTraining,
  hfLoadLine,
  formatVerify,
  median,
  RunProgress,
  StatusLine,
  stepThroughput,
  summarizeRun,
  summarizeTraining,
  summarizeVerify,
} from "./progress.js";

const start = (rank: number): ProgramEvent => ({
  event: "start",
  rank,
  world: 2,
  device: "NVIDIA H100 80GB HBM3",
  spec: "tiny.lasp",
  mode: "bench",
  steps: 18,
  warmup: 2,
});

const summary = (rank: number, ms: number): ProgramEvent => ({
  event: "summary",
  rank,
  median_ms: ms,
  tokens_per_s: 12.7e6,
  tflops: 312.44,
  hidden_comm_fraction: 0.87,
  peak_mem_bytes: 61.2 * 2 ** 30,
});

describe("run progress", () => {
  it("shows a step line with the total including warm-up", () => {
    // The program counts steps from 0, warm-up included.
    expect(formatStep(6, 41.23, true, start(0) as never)).toBe("step 7/20  41.2 ms  (warm-up)");
    expect(formatStep(19, 4.5, false, start(0) as never)).toBe("step 20/20  4.50 ms");
    expect(formatStep(2, 4.5, false, undefined)).toBe("step 3  4.50 ms");
    // The whole model's programs report each step's loss.
    expect(formatStep(6, 41.23, false, start(0) as never, 11.76543)).toBe("step 7/20  41.2 ms  loss 11.7654");
    expect(formatStep(6, 41.23, false, start(0) as never, 5.5, 125.2)).toBe(
      "step 7/20  41.2 ms  loss 5.5000  ETA 2 min 06 s",
    );
  });

  it("shows tokens/s and MFU per step when the start event says tokens per step, FLOPs per token and the peak", () => {
    // 2 ranks, 65,536 tokens per step in 100 ms: 655,360 tokens/s; 6e8 FLOPs per token over 2 GPUs of 989 TFLOP/s.
    const measured = {
      ...(start(0) as object),
      tokens_per_step: 65536,
      flops_per_token: 6e8,
      peak_flops: 989e12,
    } as never;
    const { tokensPerS, mfu } = stepThroughput(100, measured);
    expect(tokensPerS).toBeCloseTo(655360, 6);
    expect(mfu).toBeCloseTo((6e8 * 655360) / 2 / 989e12, 12);
    expect(formatStep(6, 100, false, measured, 5.5, 1.2)).toBe(
      "step 7/20  100.0 ms  loss 5.5000  655 k tokens/s  MFU 19.9 %  ETA 2 s",
    );
    // An unknown GPU (peak 0): tokens/s without MFU.
    const unknownGpu = { ...(measured as object), peak_flops: 0 } as never;
    expect(stepThroughput(100, unknownGpu).mfu).toBeUndefined();
    expect(formatStep(6, 100, true, unknownGpu)).toBe("step 7/20  100.0 ms  655 k tokens/s  (warm-up)");
    // An older program's start event, or no step time: neither.
    expect(stepThroughput(100, start(0) as never)).toEqual({ tokensPerS: undefined, mfu: undefined });
    expect(stepThroughput(Number.NaN, measured).tokensPerS).toBeUndefined();
  });

  it("writes a time left in seconds, minutes or hours", () => {
    expect(formatDuration(0.2)).toBe("1 s");
    expect(formatDuration(59)).toBe("59 s");
    expect(formatDuration(61)).toBe("1 min 01 s");
    expect(formatDuration(3 * 3600 + 7 * 60 + 30)).toBe("3 h 07 min");
  });

  it("estimates the time left from the median timed step, warm-up steps only before the first timed one", () => {
    const lines: string[] = [];
    const progress = new RunProgress({ write: (t) => lines.push(t.trimEnd()), tty: false });
    progress.event(start(0)); // 18 steps + 2 warm-up
    progress.event({ event: "step", rank: 0, step: 0, ms: 5000, warmup: true });
    progress.event({ event: "step", rank: 0, step: 1, ms: 3000, warmup: true });
    progress.event({ event: "step", rank: 0, step: 2, ms: 1000, warmup: false, loss: 4 });
    progress.event({ event: "step", rank: 0, step: 3, ms: 3000, warmup: false, loss: 3 });
    progress.event({ event: "step", rank: 0, step: 4, ms: 2000, warmup: false, loss: 2 });
    progress.event({ event: "step", rank: 1, step: 5, ms: 9000, warmup: false, loss: 2 });
    expect(lines.slice(1)).toEqual([
      "step 1/20  5000.0 ms  ETA 1 min 35 s  (warm-up)", // 19 x 5 s
      "step 2/20  3000.0 ms  ETA 1 min 12 s  (warm-up)", // 18 x median(5, 3) s
      "step 3/20  1000.0 ms  loss 4.0000  ETA 17 s", // 17 x 1 s: timed steps only from here
      "step 4/20  3000.0 ms  loss 3.0000  ETA 32 s", // 16 x median(1, 3) s
      "step 5/20  2000.0 ms  loss 2.0000  ETA 30 s", // 15 x 2 s
    ]);
    // Rank 0's losses make the curve; other ranks report the same global loss.
    expect(progress.losses().map((p) => p.loss)).toEqual([4, 3, 2]);
    expect(progress.finish()).toBe("loss 4.0000 █▅▁ 2.0000  (3 steps)\n");
  });

  it("draws the loss as a sparkline between its first and last values", () => {
    const points = [5.5, 4, 3, 2, 1.5].map((loss, step) => ({ step, loss, warmup: false }));
    expect(formatLossLine(points)).toBe("loss 5.5000 █▅▄▂▁ 1.5000  (5 steps)");
    expect(formatLossLine([])).toBe("");
  });

  it("shows the model FLOPs utilisation and the loss, and says when the GPU's peak is unknown", () => {
    const known = summarizeRun([{ ...summary(0, 40.9), mfu: 0.6312, loss: 11.8 } as ProgramEvent])!;
    expect(formatSummary(known)).toMatch(/MFU\s+63\.1 %\n/);
    expect(formatSummary(known)).toMatch(/loss\s+11\.8000/);
    const unknown = summarizeRun([{ ...summary(0, 40.9), mfu: null } as ProgramEvent])!;
    expect(formatSummary(unknown)).toMatch(/MFU\s+\? \(GPU not in the program's peak table\)/);
  });

  it("redraws the status line in place on a terminal and prints each change once otherwise", () => {
    let tty = "";
    const line = new StatusLine(
      (t) => (tty += t),
      true,
      () => 80,
    );
    line.update("step 1/2");
    line.print("a warning");
    line.update("step 2/2");
    line.done();
    expect(tty).toBe("\r\x1b[2Kstep 1/2\r\x1b[2Ka warning\nstep 1/2\r\x1b[2Kstep 2/2\r\x1b[2Kstep 2/2\n");
    let plain = "";
    const log = new StatusLine((t) => (plain += t), false);
    log.update("[build] compiling main.cu …");
    log.update("[build] compiling main.cu …");
    log.print("x");
    log.update("[build] linking lasp_program …");
    expect(plain).toBe("[build] compiling main.cu …\nx\n[build] linking lasp_program …\n");
  });

  it("cuts a status line to the terminal width", () => {
    let out = "";
    new StatusLine(
      (t) => (out += t),
      true,
      () => 30,
    ).update("x".repeat(100));
    expect(out).toBe(`\r\x1b[2K${"x".repeat(28)}…`);
  });

  it("names the backend of each softmax kind's whole-sequence attention, and says when ranks differ", () => {
    const events: ProgramEvent[] = [
      summary(0, 40.9),
      summary(1, 41.8),
      { event: "backend", rank: 0, kind: "S", attention: "cudnn 9.14.0" },
      { event: "backend", rank: 1, kind: "S", attention: "cudnn 9.14.0" },
      { event: "backend", rank: 0, kind: "T", attention: "cudnn 9.14.0" },
      { event: "backend", rank: 1, kind: "T", attention: "lasp" },
    ];
    const s = summarizeRun(events)!;
    expect(s.backends).toEqual([
      { kind: "S", attention: ["cudnn 9.14.0"] },
      { kind: "T", attention: ["cudnn 9.14.0", "lasp"] },
    ]);
    const text = formatSummary(s);
    expect(text).toMatch(/softmax S attention\s+cudnn 9\.14\.0\n/);
    expect(text).toMatch(/softmax T attention\s+cudnn 9\.14\.0 \/ lasp/);
    // A program without such a kind says nothing about it.
    expect(formatSummary(summarizeRun([summary(0, 1)])!)).not.toContain("attention");
    // The launcher reads the event from the program's output.
    expect(parseEventLine('{"event":"backend","rank":0,"kind":"S","attention":"lasp"}')).toEqual({
      event: "backend",
      rank: 0,
      kind: "S",
      attention: "lasp",
    });
  });

  it("says where the MLP's SwiGLU GEMMs ran, and when ranks differ", () => {
    const lasp = summarizeRun([
      summary(0, 40.9),
      { event: "mlp", rank: 0, gemm: "lasp" },
      { event: "mlp", rank: 1, gemm: "lasp" },
    ])!;
    expect(lasp.mlpGemm).toEqual(["lasp"]);
    expect(formatSummary(lasp)).toMatch(/MLP GEMMs\s+lasp \(SwiGLU in the epilogues\)$/m);
    const mixed = summarizeRun([
      summary(0, 40.9),
      { event: "mlp", rank: 0, gemm: "lasp" },
      { event: "mlp", rank: 1, gemm: "cublas" },
    ])!;
    expect(formatSummary(mixed)).toMatch(/MLP GEMMs\s+lasp \(SwiGLU in the epilogues\) \/ cublas/);
    // An older program that does not say: no row.
    expect(formatSummary(summarizeRun([summary(0, 1)])!)).not.toContain("MLP GEMMs");
  });

  it("says where the LM head's logits ran", () => {
    const head = summarizeRun([
      summary(0, 40.9),
      { event: "lm_head", rank: 0, gemm: "lasp" },
      { event: "lm_head", rank: 1, gemm: "cublas" },
    ])!;
    expect(head.headGemm).toEqual(["lasp", "cublas"]);
    expect(formatSummary(head)).toMatch(/LM head logits\s+lasp \/ cublas$/m);
    expect(parseEventLine('{"event":"lm_head","rank":0,"gemm":"lasp"}')).toEqual({
      event: "lm_head",
      rank: 0,
      gemm: "lasp",
    });
    expect(formatSummary(summarizeRun([summary(0, 1)])!)).not.toContain("LM head");
  });

  it("adds the GPUs' joules a step where every rank read its energy counter", () => {
    const withEnergy = (rank: number, joules: number | null): ProgramEvent => ({
      ...(summary(rank, 240) as SummaryEvent),
      joules_per_step: joules,
      watts: joules === null ? null : 680 + rank,
    });
    expect(formatSummary(summarizeRun([withEnergy(0, 165.8)])!)).toMatch(
      /energy\s+165\.8 J a step at 680 W$/m,
    );
    expect(formatSummary(summarizeRun([withEnergy(0, 165.8), withEnergy(1, 166.2)])!)).toMatch(
      /energy\s+332\.0 J a step over the 2 GPUs, 681 W each$/m,
    );
    // A rank without the counter: no total to give.
    expect(formatSummary(summarizeRun([withEnergy(0, 165.8), withEnergy(1, null)])!)).not.toContain("energy");
    expect(formatSummary(summarizeRun([summary(0, 1)])!)).not.toContain("energy");
    expect(parseEventLine('{"event":"mlp","rank":0,"gemm":"cublas"}')).toEqual({
      event: "mlp",
      rank: 0,
      gemm: "cublas",
    });
  });

  it("says how the collectives beside the kernels moved data, and when ranks differ", () => {
    const events: ProgramEvent[] = [
      summary(0, 14.1),
      summary(1, 14.2),
      { event: "collectives", rank: 0, gathers: "copy engines", gradients: "copy engines" },
      { event: "collectives", rank: 1, gathers: "copy engines", gradients: "copy engines" },
    ];
    const text = formatSummary(summarizeRun(events)!);
    expect(text).toMatch(/AllGathers beside kernels\s+copy engines$/m);
    expect(text).toMatch(/gradient sum\s+copy engines$/m);
    const mixed = summarizeRun([
      ...events,
      { event: "collectives", rank: 2, gathers: "NCCL kernels", gradients: "copy engines" },
    ])!;
    expect(mixed.gatherCollectives).toEqual(["copy engines", "NCCL kernels"]);
    expect(formatSummary(mixed)).toMatch(/AllGathers beside kernels\s+copy engines \/ NCCL kernels/);
    // A program without AllGathers beside computation (Ulysses) still sums gradients; one GPU reports neither.
    const ulysses = summarizeRun([
      summary(0, 1),
      { event: "collectives", rank: 0, gathers: "none", gradients: "NCCL kernels" },
    ])!;
    expect(formatSummary(ulysses)).not.toContain("AllGathers");
    expect(formatSummary(ulysses)).toMatch(/gradient sum\s+NCCL kernels$/m);
    expect(formatSummary(summarizeRun([summary(0, 1)])!)).not.toContain("gradient sum");
    expect(
      parseEventLine('{"event":"collectives","rank":1,"gathers":"copy engines","gradients":"NCCL kernels"}'),
    ).toEqual({ event: "collectives", rank: 1, gathers: "copy engines", gradients: "NCCL kernels" });
  });

  it("summarizes over ranks: medians, the spread of step time, phases", () => {
    const events: ProgramEvent[] = [
      summary(0, 40.9),
      summary(1, 41.8),
      summary(2, 41.2),
      { event: "phase", rank: 0, name: "L.forward", ms: 3 },
      { event: "phase", rank: 1, name: "L.forward", ms: 5 },
      { event: "phase", rank: 2, name: "L.forward", ms: 4 },
      { event: "phase", rank: 0, name: "S.forward", ms: 12.5 },
    ];
    const s = summarizeRun(events)!;
    expect(s.ranks).toBe(3);
    expect(s.stepMs).toEqual({ median: 41.2, min: 40.9, max: 41.8 });
    expect(s.phases).toEqual([
      { name: "L.forward", ms: 4 },
      { name: "S.forward", ms: 12.5 },
    ]);
    const text = formatSummary(s);
    expect(text).toContain("summary over 3 ranks (median over ranks)");
    expect(text).toMatch(/step time\s+41\.2 ms {2}\(ranks 40\.9–41\.8 ms\)/);
    expect(text).toMatch(/tokens\/s\s+12\.7 M/);
    expect(text).toMatch(/TFLOP\/s per GPU\s+312\.4/);
    expect(text).toMatch(/hidden communication\s+87\.0 %/);
    expect(text).toMatch(/peak memory\s+61\.2 GiB/);
    expect(text).toMatch(/L\.forward\s+4\.000/);
    expect(summarizeRun([start(0)])).toBeUndefined();
    expect(median([3, 1, 2, 10])).toBe(2.5);
  });

  it("reads the timeline: the communication's own time, the pass with and without it, the share hidden", () => {
    const t = (
      rank: number,
      streams: string,
      step: number,
      start_ms: number,
      end_ms: number,
      pass = "forward",
    ): ProgramEvent => ({ event: "trace", rank, kind: "S", pass, streams, step, start_ms, end_ms });
    const events: ProgramEvent[] = [
      summary(0, 40),
      // rank 0: a 0.3 ms collective (step 0) beside a block that slows from 2.6 to 2.7 ms
      t(0, "both", 0, 0.0, 0.3),
      t(0, "both", 1, 0.0, 2.7),
      t(0, "both", 2, 2.7, 5.3),
      t(0, "compute", 1, 0.0, 2.6),
      t(0, "compute", 2, 2.6, 5.2),
      // rank 1: fully exposed (the pass is longer by the whole collective)
      t(1, "both", 0, 0.0, 0.4),
      t(1, "both", 1, 0.4, 3.0),
      t(1, "compute", 1, 0.0, 2.6),
      // backward, rank 0: no communication at all
      t(0, "both", 0, 0.0, 1.0, "backward"),
      t(0, "compute", 0, 0.0, 1.0, "backward"),
    ];
    const rows = summarizeRun(events)!.timeline;
    expect(rows.map((r) => r.name)).toEqual(["S.forward", "S.backward"]);
    const forward = rows[0]!;
    // rank 0: hidden 1 - 0.1 / 0.3 = 2/3; rank 1: 1 - 0.4 / 0.4 = 0; the median of two is their mean.
    expect(forward.hidden).toBeCloseTo((2 / 3 + 0) / 2, 10);
    expect(forward.commMs).toBeCloseTo(0.35, 10);
    expect(rows[1]!.hidden).toBe(1);
    expect(formatSummary(summarizeRun(events)!)).toMatch(/S\.forward\s+0\.350\s+4\.150\s+3\.900\s+33 %/);
  });

  it("reports verify results by layer and quantity, the worst over ranks", () => {
    const v = (rank: number, quantity: string, err: number): ProgramEvent => ({
      event: "verify",
      rank,
      layer: "L",
      quantity,
      max_rel_err: err,
      tolerance: 1e-2,
      ok: err <= 1e-2,
    });
    const report = summarizeVerify([v(0, "o", 1e-4), v(1, "o", 3e-4), v(0, "dk", 1e-4), v(1, "dk", 0.5)])!;
    expect(report.ok).toBe(false);
    expect(report.rows).toEqual([
      { layer: "L", quantity: "o", maxRelErr: 3e-4, tolerance: 1e-2, ok: true, illConditioned: false },
      { layer: "L", quantity: "dk", maxRelErr: 0.5, tolerance: 1e-2, ok: false, illConditioned: false },
    ]);
    expect(formatVerify(report)).toContain("verify FAILED: 1 of 2 above tolerance");
    // A gradient block accepted within the oracle's own spread says so, in its row and in the verdict.
    const loose = summarizeVerify([
      v(0, "o", 1e-4),
      {
        event: "verify",
        rank: 0,
        layer: "model.layers.1",
        quantity: "dW",
        max_rel_err: 0.8,
        tolerance: 1e-2,
        ok: true,
        oracle_spread: 0.4,
        ill_conditioned: true,
      },
    ])!;
    expect(loose.ok).toBe(true);
    const text = formatVerify(loose);
    expect(text).toMatch(/model\.layers\.1 +dW +8\.00e-1 +1\.0e-2 +ok \(ill-conditioned\)/);
    expect(text).toContain("verify ok: 1 of 2 above tolerance but within 3x");
  });

  it("prefixes other ranks' lines, announces the run and prints the tables at the end", () => {
    let out = "";
    const progress = new RunProgress({ write: (t) => (out += t), tty: false });
    progress.event(start(0));
    progress.event(start(1));
    progress.event({ event: "step", rank: 0, step: 0, ms: 41.2, warmup: true });
    progress.event({ event: "step", rank: 1, step: 0, ms: 41.9, warmup: true });
    progress.line(0, "hello from 0");
    progress.line(1, "hello from 1");
    progress.event({ event: "error", rank: 1, message: "NCCL failure" });
    progress.event(summary(0, 40));
    progress.event(summary(1, 42));
    progress.finish();
    const lines = out.split("\n");
    expect(lines.slice(0, 5)).toEqual([
      "[run] tiny.lasp: 2 ranks on NVIDIA H100 80GB HBM3, mode bench, 18 steps + 2 warm-up",
      // 19 steps left at 41.2 ms: 0.8 s, rounded up.
      "step 1/20  41.2 ms  ETA 1 s  (warm-up)",
      "hello from 0",
      "[rank 1] hello from 1",
      "[rank 1] error: NCCL failure",
    ]);
    expect(out).toMatch(/step time\s+41\.0 ms {2}\(ranks 40\.0–42\.0 ms\)/);
  });
});

describe("training progress", () => {
  const trainStart = (rank: number): ProgramEvent => ({
    event: "start",
    rank,
    world: 2,
    device: "NVIDIA H100 80GB HBM3",
    spec: "tiny.lasp",
    mode: "train",
    steps: 1000,
    warmup: 0,
    tokens_per_step: 65536,
    flops_per_token: 6e8,
    peak_flops: 989e12,
  });
  const trainStep = (rank: number, step: number, loss: number): ProgramEvent => ({
    event: "step",
    rank,
    step,
    ms: 100,
    loss,
    tokens_per_s: 655360,
    mfu: 0.199,
    warmup: false,
    steps: 1000,
    grad_norm: 1.25,
    clip: 1,
    lr: 3e-4,
    tokens_seen: 65536 * (step + 1),
  });

  it("shows the learning rate after the loss, and the run's steps as the total", () => {
    expect(formatLr(3e-4)).toBe("3.0e-4");
    expect(formatLr(1.25e-5)).toBe("1.3e-5");
    expect(formatStep(499, 100, false, trainStart(0) as never, 2.5, 50, { lr: 3e-4, steps: 1000 })).toBe(
      "step 500/1000  100.0 ms  loss 2.5000  lr 3.0e-4  655 k tokens/s  MFU 19.9 %  ETA 50 s",
    );
    // Rank 0's GPU's mean power so far, where the program reads the energy counter.
    expect(
      formatStep(499, 100, false, trainStart(0) as never, 2.5, 50, { lr: 3e-4, steps: 1000, watts: 681.6 }),
    ).toBe("step 500/1000  100.0 ms  loss 2.5000  lr 3.0e-4  655 k tokens/s  MFU 19.9 %  682 W  ETA 50 s");
    // A resumed run's steps go on from where it stopped: the total is the run's, whatever the start says.
    expect(formatStep(1499, 100, false, trainStart(0) as never, 2.5, undefined, { steps: 2000 })).toMatch(
      /^step 1500\/2000 /,
    );
  });

  it("shows the program's mean watts on the status line where its step events carry them", () => {
    let out = "";
    const progress = new RunProgress({ write: (t) => (out += t), tty: false });
    progress.event(trainStart(0));
    progress.event({ ...(trainStep(0, 0, 5.5) as StepEvent), watts: null });
    progress.event({ ...(trainStep(0, 1, 5.4) as StepEvent), watts: 681.6 });
    const steps = out.split("\n").filter((l) => l.startsWith("step "));
    expect(steps).toHaveLength(2);
    expect(steps[0]).not.toMatch(/ W /);
    expect(steps[1]).toMatch(/MFU 19\.9 % {2}682 W {2}ETA/);
  });

  it("prints rank 0's evaluations, checkpoints, resume, data and optimizer as lines, paths as the run shows them", () => {
    let out = "";
    const show = (p: string): string => p.replace("/abs/", "");
    const progress = new RunProgress({ write: (t) => (out += t), tty: false, showPath: show });
    const events: ProgramEvent[] = [
      trainStart(0),
      {
        event: "data",
        rank: 0,
        source: "/abs/tokens.bin",
        format: "llm.c",
        tokens: 1.2e6,
        windows: 300,
        windows_per_step: 2,
        eval: "/abs/val.bin",
        eval_windows: 12,
      },
      {
        event: "optimizer",
        rank: 0,
        update: "zero1",
        parameters: 1.2e9,
        state_bytes: 6 * 2 ** 30,
        decayed: 1.1e9,
      },
      {
        event: "resumed",
        rank: 0,
        from: "/abs/runs/a/checkpoints/step-000500",
        step: 500,
        data_position: 1000,
        tokens_seen: 32.8e6,
      },
      trainStep(0, 500, 2.25),
      trainStep(1, 500, 2.25),
      { event: "eval", rank: 0, step: 501, loss: 1.23451, perplexity: 3.4365, targets: 8192, windows: 2 },
      { event: "eval", rank: 1, step: 501, loss: 1.23451, perplexity: 3.4365, targets: 8192, windows: 2 },
      { event: "saving", rank: 0, step: 501, bytes: 22.4e9 },
      { event: "saving", rank: 1, step: 501, bytes: 22.4e9 },
      {
        event: "checkpoint",
        rank: 0,
        step: 501,
        folder: "/abs/runs/b/checkpoints/step-000501",
        ms: 1234,
        removed: ["/abs/runs/b/checkpoints/step-000100"],
      },
    ];
    for (const e of events) progress.event(e);
    expect(out.split("\n").slice(1, -1)).toEqual([
      "[train] data: tokens.bin (llm.c, 1.2 M tokens, 300 windows), 2 windows per step; eval: val.bin (12 windows)",
      "[train] AdamW over 1.2 G parameters (1.1 G with weight decay), sharded over the ranks (ZeRO-1), 6.00 GiB of state on rank 0",
      "resumed from runs/a/checkpoints/step-000500 after step 500 (32.8 M tokens seen)",
      // 499 steps left at 100 ms.
      "step 501/1000  100.0 ms  loss 2.2500  lr 3.0e-4  655 k tokens/s  MFU 19.9 %  ETA 50 s",
      "eval at step 501: loss 1.2345, perplexity 3.44",
      "writing the checkpoint of step 501 (22.4 GB) …",
      "checkpoint step 501 written in 1.2 s: runs/b/checkpoints/step-000501; removed step-000100",
    ]);
  });

  it("says when a resume re-shards the checkpoint's optimizer state for another number of ranks", () => {
    const e = {
      event: "resumed" as const,
      rank: 0,
      from: "runs/a/checkpoints/step-000400",
      step: 400,
      data_position: 6400,
      tokens_seen: 6.5e6,
    };
    expect(formatResumed({ ...e, world: 4, sharded: true, resharded: true })).toBe(
      "resumed from runs/a/checkpoints/step-000400 after step 400 (6.5 M tokens seen); its optimizer state, " +
        "ZeRO-1 over 4 ranks, re-sharded for this run",
    );
    expect(formatResumed({ ...e, world: 1, sharded: false, resharded: false })).toBe(
      "resumed from runs/a/checkpoints/step-000400 after step 400 (6.5 M tokens seen)",
    );
  });

  it("says when a checkpoint is written while training goes on, and how long training stood still for it", () => {
    let out = "";
    const progress = new RunProgress({ write: (t) => (out += t), tty: false });
    const events: ProgramEvent[] = [
      trainStart(0),
      { event: "saving", rank: 0, step: 50, bytes: 22.4e9, background: true },
      trainStep(0, 50, 2.25),
      {
        event: "checkpoint",
        rank: 0,
        step: 50,
        folder: "runs/b/checkpoints/step-000050",
        ms: 31_200,
        background: true,
        paused_ms: 1_430,
        removed: [],
      },
      { event: "saving", rank: 0, step: 100, bytes: 22.4e9, background: false },
      {
        event: "checkpoint",
        rank: 0,
        step: 100,
        folder: "runs/b/checkpoints/step-000100",
        ms: 32_500,
        background: false,
        paused_ms: 32_500,
        removed: [],
      },
    ];
    for (const e of events) progress.event(e);
    expect(out.split("\n").slice(1, -1)).toEqual([
      "writing the checkpoint of step 50 (22.4 GB) while training goes on …",
      expect.stringMatching(/^step 51\/1000 /),
      "checkpoint step 50 written in 31.2 s in the background (training paused 1.4 s): runs/b/checkpoints/step-000050",
      "writing the checkpoint of step 100 (22.4 GB) …",
      "checkpoint step 100 written in 32.5 s: runs/b/checkpoints/step-000100",
    ]);
  });

  it("summarizes a finished run from its `trained` event, with the eval loss and the last checkpoint", () => {
    const events: ProgramEvent[] = [
      trainStart(0),
      trainStart(1),
      trainStep(0, 998, 1.9),
      trainStep(0, 999, 1.8),
      { event: "eval", rank: 0, step: 1000, loss: 2.0, perplexity: Math.exp(2), targets: 8192, windows: 2 },
      {
        event: "checkpoint",
        rank: 0,
        step: 500,
        folder: "runs/b/checkpoints/step-000500",
        ms: 31_000,
        background: true,
        paused_ms: 1_300,
        removed: [],
      },
      {
        event: "checkpoint",
        rank: 0,
        step: 1000,
        folder: "runs/b/checkpoints/step-001000",
        ms: 900,
        background: false,
        paused_ms: 950,
        removed: [],
      },
      {
        event: "trained",
        rank: 0,
        steps: 500,
        step: 1000,
        tokens: 32.8e6,
        seconds: 65,
        tokens_per_s: 504e3,
        mfu: 0.153,
        loss: 1.8,
        eval_loss: 2.0,
        peak_mem_bytes: 37.5 * 2 ** 30,
        program_mem_bytes: 35 * 2 ** 30,
        joules: 45_000,
        watts: 700,
      },
    ];
    const t = summarizeTraining(events)!;
    expect(t).toMatchObject({
      ranks: 2,
      steps: 500,
      lastStep: 1000,
      totalSteps: 1000,
      finished: true,
      evalLoss: 2,
    });
    expect(formatTraining(t).split("\n")).toEqual([
      "training over 2 ranks",
      "  steps            500 (steps 501–1000 of 1000)",
      "  time             1 min 05 s",
      "  tokens           32.8 M",
      // The stand-in steps' 100 ms each against the run's own rate: the median step's beside it.
      "  tokens/s         504 k (655 k at the median step, 100.00 ms)",
      "  MFU              15.3 % (19.9 % at the median step)",
      "  final loss       1.8000",
      "  eval loss        2.0000 (perplexity 7.39)",
      "  GPU memory       37.50 GiB in use at the end (rank 0)",
      "  energy           45.0 kJ on rank 0's GPU at 700 W: 2.74 mJ a token",
      "  checkpoints      2 written; training stood still 2.3 s for them",
      "  last checkpoint  runs/b/checkpoints/step-001000",
    ]);
  });

  it("puts the median step's rate beside the run's where a slow start moves the run's by 2% or more", () => {
    // Ten steps of 100 ms after a first of 1 s (the program's start-up): the run's rate is 10/19 of the median's.
    const slowFirst = { ...(trainStep(0, 0, 5.5) as StepEvent), ms: 1000, tokens_per_s: 65536, mfu: 0.0199 };
    const steady = Array.from({ length: 10 }, (_, i) => trainStep(0, i + 1, 5 - i / 10));
    const trained: ProgramEvent = {
      event: "trained",
      rank: 0,
      steps: 11,
      step: 11,
      tokens: 11 * 65536,
      seconds: 2,
      tokens_per_s: (11 * 65536) / 2,
      mfu: 0.109,
      loss: 4.1,
      eval_loss: null,
      peak_mem_bytes: 2 ** 30,
      program_mem_bytes: 2 ** 29,
      joules: null,
      watts: null,
    };
    const t = summarizeTraining([trainStart(0), slowFirst, ...steady, trained])!;
    expect(t.median).toEqual({ stepMs: 100, tokensPerS: 655360, mfu: 0.199 });
    const rows = formatTraining(t).split("\n");
    expect(rows).toContain("  tokens/s    360 k (655 k at the median step, 100.00 ms)");
    expect(rows).toContain("  MFU         10.9 % (19.9 % at the median step)");
    // Steady from the first step: the run's rate alone.
    const even = summarizeTraining([trainStart(0), ...steady])!;
    expect(formatTraining(even).split("\n")).toContain("  tokens/s    655 k");
    expect(formatTraining(even).split("\n")).toContain("  MFU         19.9 %");
  });

  it("summarizes a run that stopped early from its steps, and none that did not train", () => {
    const t = summarizeTraining([trainStart(0), trainStep(0, 0, 5.5), trainStep(0, 1, 4.5)])!;
    expect(t).toMatchObject({
      steps: 2,
      lastStep: 2,
      seconds: 0.2,
      tokens: 131072,
      tokensPerS: 655360,
      loss: 4.5,
      finished: false,
    });
    expect(t.evalLoss).toBeUndefined();
    expect(t.joules).toBeUndefined(); // no `trained` event: no energy, and no row for it
    expect(formatTraining(t)).not.toContain("energy");
    expect(formatTraining(t).split("\n")[0]).toBe("training over 1 rank (stopped early)");
    expect(summarizeTraining([start(0), summary(0, 40)])).toBeUndefined();
  });
});

describe("the transformers line of the training summary", () => {
  it("names the Auto class config.json's auto_map names, trusting modeling_lasp.py; transformers' own for Llama", () => {
    const causal = {
      AutoConfig: "modeling_lasp.LaspLinearLlamaConfig",
      AutoModelForCausalLM: "modeling_lasp.X",
    };
    expect(hfLoadLine("runs/a/checkpoints/step-000600", causal)).toBe(
      'AutoModelForCausalLM.from_pretrained("runs/a/checkpoints/step-000600", trust_remote_code=True)',
    );
    const masked = { AutoConfig: "modeling_lasp.C", AutoModelForMaskedLM: "modeling_lasp.M" };
    expect(hfLoadLine("ck", masked)).toBe(
      'AutoModelForMaskedLM.from_pretrained("ck", trust_remote_code=True)',
    );
    expect(hfLoadLine("ck", undefined)).toBe('AutoModelForCausalLM.from_pretrained("ck")');
  });
});
