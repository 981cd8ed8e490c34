// From measurements to profile fields (src/cost/profiles/README.md names each field):
// - gpu.gemmFlops: the median rate of the large GEMMs (at least LARGE_GEMM_FLOPS; all of them if none is),
//   where launch and wave-tail effects are small, as the step model prices the model's big products.
// - gpu.attentionFlops: cuDNN's fused attention, forward and backward together, where the build has it; else
//   lasp's softmax forward (FlashAttention's FLOP count: 4 T^2 H d forward, half of it causal, 2.5 times that
//   backward): the compute-bound attention kernels (lasp's softmax forward runs at cuDNN's speed).
// - gpu.laspSoftmaxBackwardFlops: lasp's softmax backward (ring's blocks; with documents, LASP-2H's gathered
//   call and whole sequences).
// - gpu.gatheredAttentionEfficiency: cuDNN on LASP-2H's gathered calls (every rank of a W-rank zigzag layout,
//   forward and backward, on one GPU) against cuDNN on the whole sequence they split: the whole sequence's time
//   over the ranks' (their pieces hold exactly its query-key pairs, so the FLOPs are equal), at most 1. Only
//   where the build has cuDNN: without it the base's value stays.
// - gpu.hbmAttainable: the best streaming kernel at the largest buffer (bytes read and written over time).
// - gpu.linearKernelBandwidth: lasp's LASP-2 kernels, forward (state + fused walk) and backward (gradient state
//   + fused walk) together: the walks' bytes as their IR steps count them (schedule/linear-costs.ts) over the
//   time left once the state products are taken at gpu.hbmAttainable, as the simulator prices them.
// - gpu.memoryBytes, gpu.sms: what the CUDA runtime says of the device.
// - nvlink.busBandwidth, nvlink.latency: per collective, t = latency + f * bytes / busbw (f: nccl-tests' bus
//   factor, so busbw is its "busbw"), fitted by least squares on relative error (each size counts alike:
//   the small ones fix the latency, the large ones the bandwidth); the profile takes the median over the
//   collectives (send/recv, a point-to-point rate, is reported but not in the median).
// - nvlink.copyEngineBusBandwidth, nvlink.copyEngineLatency: the same fit of the AllGather and AlltoAll on the
//   copy engines (`*_ce`: CTA policy zero, symmetric windows), the median over the two; only where NCCL ran
//   them (2.28+ with symmetric windows between the GPUs): without them the base's values (or their absence:
//   NCCL's kernel rate) stay.
import type { ScheduleSizes } from "../schedule/ir.js";
import { backwardFusedCost, forwardFusedCost, stateCost } from "../schedule/linear-costs.js";
import { KERNEL_BLOCK } from "../spec/resolved.js";
import type { Collected, Measurement } from "./measurements.js";
import type { Benchmark, CollectiveOp } from "./plan.js";
import { COLLECTIVE_OPS, onCopyEngines } from "./plan.js";

/** GEMMs of at least 2^36 FLOPs (69 GFLOP: the 1B model's smallest projection at 16K tokens) count as large. */
export const LARGE_GEMM_FLOPS = 2 ** 36;

/** The profile fields calibration can measure. */
export type MeasuredPath =
  | "gpu.gemmFlops"
  | "gpu.attentionFlops"
  | "gpu.laspSoftmaxBackwardFlops"
  | "gpu.gatheredAttentionEfficiency"
  | "gpu.hbmAttainable"
  | "gpu.linearKernelBandwidth"
  | "gpu.memoryBytes"
  | "gpu.sms"
  | "nvlink.busBandwidth"
  | "nvlink.latency"
  | "nvlink.copyEngineBusBandwidth"
  | "nvlink.copyEngineLatency";

export interface FittedField {
  path: MeasuredPath;
  value: number;
  /** How it was measured, for its source: "median of 6 cuBLAS bf16 GEMMs of at least 69 GFLOP". */
  what: string;
}

/** FLOPs of a compute benchmark; undefined for the memory-bound and communication ones. */
export function flopsOf(b: Benchmark): number | undefined {
  switch (b.kind) {
    case "gemm":
      return 2 * b.m * b.n * b.k;
    case "softmax_forward":
    case "softmax_backward": {
      const forward = 4 * b.tokens * b.tokens * b.heads * b.headDim * (b.causal ? 0.5 : 1);
      return b.kind === "softmax_forward" ? forward : 2.5 * forward;
    }
    case "softmax_gathered": {
      // The ranks' calls together hold the whole sequence's pairs; forward and backward.
      const sequence = b.ranks * b.tokens;
      return 3.5 * 4 * sequence * sequence * b.heads * b.headDim * (b.causal ? 0.5 : 1);
    }
    default:
      return undefined;
  }
}

/**
 * The linear kernels' rate over the bytes their IR steps count (calibrate's linear benchmarks run one piece of
 * `tokens` with the earlier and later ranks' states present: the fused walks with both terms). The state
 * products stream, so their share is taken out at `hbm`; undefined where a pass is missing or the state
 * products alone would take longer than the measurement.
 */
export function linearKernelBandwidth(
  forward: readonly Measurement[],
  backward: readonly Measurement[],
  hbm: number,
): { value: number; what: string } | undefined {
  const f = forward[0];
  const b = backward[0];
  if (f === undefined || b === undefined || f.benchmark.kind !== "linear_forward") return undefined;
  const { tokens, heads, headDim } = f.benchmark;
  const sizes: ScheduleSizes = {
    batch: 1,
    seqLen: tokens,
    heads,
    headDim,
    block: KERNEL_BLOCK,
    dtype: "bf16",
    elementBytes: 2,
    hidden: heads * headDim,
  };
  const ctx = { sizes };
  const state = stateCost(ctx, tokens).bytes; // K^T V forward, Q^T dO backward: the same count
  const walks = forwardFusedCost(ctx, tokens, true).bytes + backwardFusedCost(ctx, tokens, true, true).bytes;
  const seconds = (f.ms + b.ms) / 1000 - (2 * state) / hbm;
  if (!(seconds > 0)) return undefined;
  return {
    value: walks / seconds,
    what: `lasp's LASP-2 kernels at ${tokens} tokens, ${heads} heads x ${headDim}, forward and backward: the fused walks' ${(walks / 2 ** 20).toFixed(0)} MiB (as their IR steps count them) over their time, the state products taken at gpu.hbmAttainable`,
  };
}

/**
 * The gathered calls' share of cuDNN's rate: the whole sequence's time over the ranks' calls' (equal FLOPs),
 * capped at 1 (a fraction of gpu.attentionFlops); undefined without a cuDNN measurement.
 */
export function gatheredAttentionEfficiency(
  gathered: readonly Measurement[],
): { value: number; what: string } | undefined {
  for (const m of gathered) {
    const b = m.benchmark;
    if (b.kind !== "softmax_gathered" || m.wholeMs === undefined) continue;
    const ratio = m.wholeMs / m.ms;
    return {
      value: Math.min(1, ratio),
      what: `cuDNN's fused attention on LASP-2H's gathered calls against one call over the whole sequence, forward and backward: W ${b.ranks} ${b.layout}, ${b.ranks * b.tokens} tokens (${b.tokens} per rank), ${b.heads} heads x ${b.headDim}, ${b.kvHeads} KV heads${b.causal ? ", causal" : ""}; the ranks' calls ${m.ms.toFixed(3)} ms, the whole sequence ${m.wholeMs.toFixed(3)} ms (${ratio.toFixed(3)}x${ratio > 1 ? ", capped at 1" : ""})`,
    };
  }
  return undefined;
}

/** Bytes a streaming benchmark moves through HBM: copy reads one buffer and writes one, add reads two. */
export function streamBytesOf(b: Benchmark): number | undefined {
  if (b.kind === "copy") return 2 * b.bytes;
  if (b.kind === "add") return 3 * b.bytes;
  return undefined;
}

/** nccl-tests' bus factor: busbw = f * size / time makes the ring's link rate comparable across collectives. */
export function busFactor(op: CollectiveOp, world: number): number {
  if (op === "all_reduce") return (2 * (world - 1)) / world;
  if (op === "send_recv") return 1;
  return (world - 1) / world;
}

/** A measurement's rate in words, for the progress lines. */
export function describeRate(m: Measurement, world: number): string {
  const seconds = m.ms / 1000;
  const flops = flopsOf(m.benchmark);
  if (flops !== undefined && m.wholeMs !== undefined)
    return `${(flops / seconds / 1e12).toFixed(1)} TFLOP/s, ${(m.wholeMs / m.ms).toFixed(3)}x the whole sequence's (${m.wholeMs.toFixed(3)} ms)`;
  if (flops !== undefined) return `${(flops / seconds / 1e12).toFixed(1)} TFLOP/s`;
  const stream = streamBytesOf(m.benchmark);
  if (stream !== undefined) return `${(stream / seconds / 1e9).toFixed(0)} GB/s`;
  const b = m.benchmark;
  if (b.kind === "linear_forward" || b.kind === "linear_backward")
    return `${(b.tokens / seconds / 1e6).toFixed(1)} M tokens/s`;
  if ((COLLECTIVE_OPS as readonly string[]).includes(b.kind) && "bytes" in b) {
    const busbw = (busFactor(b.kind as CollectiveOp, world) * b.bytes) / seconds;
    return `busbw ${(busbw / 1e9).toFixed(1)} GB/s`;
  }
  return `${m.ms.toFixed(3)} ms`;
}

export interface LineFit {
  intercept: number;
  slope: number;
}

/** Least squares of t = intercept + slope x with weights 1/t^2 (relative error); needs two distinct x. */
export function fitLine(points: readonly { x: number; t: number }[]): LineFit {
  let s = 0;
  let sx = 0;
  let st = 0;
  let sxx = 0;
  let sxt = 0;
  for (const { x, t } of points) {
    const w = 1 / (t * t);
    s += w;
    sx += w * x;
    st += w * t;
    sxx += w * x * x;
    sxt += w * x * t;
  }
  const det = s * sxx - sx * sx;
  if (points.length < 2 || !(det > 0)) throw new FitError("a line needs two points of different sizes");
  const slope = (s * sxt - sx * st) / det;
  return { slope, intercept: (st - slope * sx) / s };
}

/** Measurements that fit no model (a bandwidth that does not grow with size): the message says which. */
export class FitError extends Error {}

export interface CollectiveFit {
  op: CollectiveOp;
  busBandwidth: number;
  latency: number;
  /** The fitted intercept was not positive (noise at small sizes): the smallest message's time stands in. */
  latencyFromSmallest: boolean;
  sizes: number;
}

export function fitCollective(
  op: CollectiveOp,
  world: number,
  points: readonly { bytes: number; ms: number }[],
): CollectiveFit {
  const f = busFactor(op, world);
  const line = fitLine(points.map((p) => ({ x: f * p.bytes, t: p.ms / 1000 })));
  if (!(line.slope > 0))
    throw new FitError(`${op}: the time does not grow with the size, so no bandwidth can be fitted`);
  const smallest = [...points].sort((a, b) => a.bytes - b.bytes)[0]!;
  const positive = line.intercept > 0;
  return {
    op,
    busBandwidth: 1 / line.slope,
    latency: positive ? line.intercept : smallest.ms / 1000,
    latencyFromSmallest: !positive,
    sizes: points.length,
  };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface Fit {
  fields: FittedField[];
  collectives: CollectiveFit[];
}

const GB = 1e9;
const T = 1e12;

/** The profile fields the measurements determine; a field without measurements is left out (the base's stays). */
export function fitProfile(collected: Collected, world: number): Fit {
  const fields: FittedField[] = [];
  const of = (kind: Benchmark["kind"]): Measurement[] =>
    collected.measurements.filter((m) => m.benchmark.kind === kind);

  const gemms = of("gemm").map((m) => ({
    flops: flopsOf(m.benchmark)!,
    rate: flopsOf(m.benchmark)! / (m.ms / 1000),
  }));
  if (gemms.length > 0) {
    const large = gemms.filter((g) => g.flops >= LARGE_GEMM_FLOPS);
    const chosen = large.length > 0 ? large : gemms;
    const rates = chosen.map((g) => g.rate);
    fields.push({
      path: "gpu.gemmFlops",
      value: median(rates),
      what: `median of ${chosen.length} cuBLAS bf16 GEMMs at the model's product shapes${large.length > 0 ? ` of at least ${(LARGE_GEMM_FLOPS / 1e9).toFixed(0)} GFLOP` : " (none large)"}, ${(Math.min(...rates) / T).toFixed(0)}-${(Math.max(...rates) / T).toFixed(0)} TFLOP/s`,
    });
  }

  // Softmax attention per backend and pass: FLOPs over time of every measurement of that kind.
  const softmax = (backend: "lasp" | "cudnn", kind: "softmax_forward" | "softmax_backward") =>
    collected.measurements.filter((m) => m.benchmark.kind === kind && m.benchmark.backend === backend);
  const rateOf = (ms: Measurement[]) =>
    ms.reduce((sum, m) => sum + flopsOf(m.benchmark)!, 0) / ms.reduce((sum, m) => sum + m.ms / 1000, 0);
  const shapeOf = (m: Measurement) => {
    const b = m.benchmark as Extract<Benchmark, { backend: string }>;
    return `${b.tokens} tokens, ${b.heads} heads x ${b.headDim}${b.causal ? ", causal" : ""} (FlashAttention's FLOP count)`;
  };
  const cudnn = [...softmax("cudnn", "softmax_forward"), ...softmax("cudnn", "softmax_backward")];
  const laspForward = softmax("lasp", "softmax_forward");
  const laspBackward = softmax("lasp", "softmax_backward");
  if (softmax("cudnn", "softmax_forward").length > 0 && softmax("cudnn", "softmax_backward").length > 0)
    fields.push({
      path: "gpu.attentionFlops",
      value: rateOf(cudnn),
      what: `cuDNN's fused attention, forward and backward, ${shapeOf(cudnn[0]!)}`,
    });
  else if (laspForward.length > 0)
    fields.push({
      path: "gpu.attentionFlops",
      value: rateOf(laspForward),
      what: `lasp's softmax forward (no cuDNN in this build), ${shapeOf(laspForward[0]!)}`,
    });
  if (laspBackward.length > 0)
    fields.push({
      path: "gpu.laspSoftmaxBackwardFlops",
      value: rateOf(laspBackward),
      what: `lasp's softmax backward, ${shapeOf(laspBackward[0]!)}`,
    });

  const gathered = gatheredAttentionEfficiency(of("softmax_gathered"));
  if (gathered !== undefined) fields.push({ path: "gpu.gatheredAttentionEfficiency", ...gathered });

  const streams = collected.measurements.filter((m) => streamBytesOf(m.benchmark) !== undefined);
  if (streams.length > 0) {
    const largest = Math.max(...streams.map((m) => (m.benchmark as { bytes: number }).bytes));
    const best = streams
      .filter((m) => (m.benchmark as { bytes: number }).bytes === largest)
      .map((m) => ({ kind: m.benchmark.kind, rate: streamBytesOf(m.benchmark)! / (m.ms / 1000) }))
      .sort((a, b) => b.rate - a.rate)[0]!;
    fields.push({
      path: "gpu.hbmAttainable",
      value: best.rate,
      what: `the best streaming kernel (${best.kind}) over ${largest / 2 ** 20} MiB buffers, bytes read and written over time`,
    });
  }

  const hbm = fields.find((f) => f.path === "gpu.hbmAttainable")?.value;
  const linear =
    hbm === undefined ? undefined : linearKernelBandwidth(of("linear_forward"), of("linear_backward"), hbm);
  if (linear !== undefined) fields.push({ path: "gpu.linearKernelBandwidth", ...linear });

  const device = collected.device;
  if (device !== undefined) {
    fields.push({
      path: "gpu.memoryBytes",
      value: device.memory_bytes,
      what: "cudaGetDeviceProperties totalGlobalMem",
    });
    fields.push({ path: "gpu.sms", value: device.sms, what: "cudaGetDeviceProperties multiProcessorCount" });
  }

  const collectives: CollectiveFit[] = [];
  for (const op of COLLECTIVE_OPS) {
    const points = of(op).map((m) => ({ bytes: (m.benchmark as { bytes: number }).bytes, ms: m.ms }));
    if (points.length >= 2) collectives.push(fitCollective(op, world, points));
  }
  const rings = collectives.filter((c) => c.op !== "send_recv" && !onCopyEngines(c.op));
  if (rings.length > 0) {
    const names = rings.map((c) => c.op).join(", ");
    fields.push({
      path: "nvlink.busBandwidth",
      value: median(rings.map((c) => c.busBandwidth)),
      what: `NCCL ${names} on ${world} GPUs, 64 KiB to 256 MiB: the median of each collective's bus bandwidth fitted by least squares (t = latency + bus factor x bytes / busbw), ${rings.map((c) => `${c.op} ${(c.busBandwidth / GB).toFixed(0)} GB/s`).join(", ")}`,
    });
    fields.push({
      path: "nvlink.latency",
      value: median(rings.map((c) => c.latency)),
      what: `the same fits' fixed cost, median over ${names}: ${rings.map((c) => `${c.op} ${(c.latency * 1e6).toFixed(1)} us${c.latencyFromSmallest ? " (smallest size's time)" : ""}`).join(", ")}`,
    });
  }
  fields.push(
    ...copyEngineFields(
      collectives.filter((c) => onCopyEngines(c.op)),
      world,
    ),
  );
  return { fields, collectives };
}

/** nvlink.copyEngine*: the copy-engine collectives' fits, median over them; none without them. */
export function copyEngineFields(copies: readonly CollectiveFit[], world: number): FittedField[] {
  if (copies.length === 0) return [];
  const names = copies.map((c) => c.op).join(", ");
  return [
    {
      path: "nvlink.copyEngineBusBandwidth",
      value: median(copies.map((c) => c.busBandwidth)),
      what: `NCCL ${names} on ${world} GPUs on the copy engines (CTA policy zero, symmetric windows), 64 KiB to 256 MiB: the median of each collective's bus bandwidth fitted by least squares (t = latency + bus factor x bytes / busbw), ${copies.map((c) => `${c.op} ${(c.busBandwidth / GB).toFixed(0)} GB/s`).join(", ")}`,
    },
    {
      path: "nvlink.copyEngineLatency",
      value: median(copies.map((c) => c.latency)),
      what: `the same fits' fixed cost, median over ${names}: ${copies.map((c) => `${c.op} ${(c.latency * 1e6).toFixed(1)} us${c.latencyFromSmallest ? " (smallest size's time)" : ""}`).join(", ")}`,
    },
  ];
}
