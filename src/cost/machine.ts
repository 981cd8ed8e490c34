// The machine model the simulator times schedules on: how fast one GPU computes and moves memory, and how fast
// the GPUs of one sequence-parallel group talk. Deliberately small (a few rates): it predicts the shape of a
// schedule (what overlaps, what waits, how time grows with W), not a benchmark to the microsecond.
import type { CollectiveKind, ComputeStep } from "../schedule/ir.js";
import { H100_PROFILE, machineOf, type Machine } from "./profile.js";

export type { Machine } from "./profile.js";

/**
 * One H100 SXM5 (80 GB) in an 8-GPU HGX node, NVLink 4 through NVSwitch: the shipped profile
 * (profiles/h100-sxm-80gb.json cites each number). The simulator times attention kernels at the profile's
 * attention rate (544 TFLOP/s, cuDNN's as lasp calibrate measured it: about 55% of the 989 dense peak, large
 * GEMMs about 70%), streams memory at the attainable 3.0 TB/s, lasp's linear chunk walks at 1.1 TB/s, and links
 * at NCCL's 350 GB/s bus bandwidth and 10 us.
 */
export const H100_SXM: Machine = machineOf(H100_PROFILE);

export const DEFAULT_MACHINE: Machine = H100_SXM;

/**
 * Time of one compute step: a roofline. A kernel is bound either by its arithmetic or by its memory
 * traffic, whichever is slower; the step's `flops` and `bytes` (read plus written once) come from the IR.
 * Kernel launch overhead and the ramp of small kernels are ignored. A `host` step is one of the layer's
 * projections (cuBLAS), run inside the pass: priced as step.ts prices every other GEMM, its FLOPs at the GEMM
 * rate, so a schedule that hosts its projections costs what one that runs them outside would.
 */
export function computeTime(
  step: Pick<ComputeStep, "op" | "operands" | "flops" | "bytes">,
  machine: Machine,
): number {
  if (step.op === "host") return step.flops / machine.gemmFlops;
  return Math.max(step.flops / rateOf(step, machine), step.bytes / bandwidthOf(step, machine));
}

/** Which of computeTime's two terms sets a step's time: its arithmetic or its memory traffic. */
export function boundOf(
  step: Pick<ComputeStep, "op" | "operands" | "flops" | "bytes">,
  machine: Machine,
): "compute" | "memory" {
  if (step.op === "host") return "compute";
  return step.flops / rateOf(step, machine) >= step.bytes / bandwidthOf(step, machine) ? "compute" : "memory";
}

/**
 * The rate at which a step's kernel moves the bytes its IR step counts. lasp's linear-attention walks go through
 * a piece's chunks in order, few CTAs per head, and attain about a third of what streaming kernels do
 * (`gpu.linearKernelBandwidth`, measured in the generated programs); everything else streams.
 */
function bandwidthOf(step: Pick<ComputeStep, "op">, machine: Machine): number {
  return CHUNK_WALKS.has(step.op) ? machine.linearKernelBandwidth : machine.memoryBandwidth;
}
/**
 * The linear steps that walk a piece's chunks in order (the intra-piece product and its backward, fused or
 * not, and a whole sequence's). The state products (K^T V, Q^T dO, q P) run every chunk at once and stream.
 */
const CHUNK_WALKS = new Set([
  "linear.intra",
  "linear.intra_backward",
  "linear.forward_fused",
  "linear.backward_fused",
  "linear.full",
  "linear.full_backward",
]);

/**
 * The arithmetic rate of a step's kernel. lasp's softmax backward has a rate of its own (0.98x of cuDNN's on an
 * H100 since bench/results/2026-12-06-softmax-bwd-diet.md, 0.7x before): it runs ring attention's blocks, and
 * a whole sequence or LASP-2H's gathered keys with packed documents (operand `ends`: cuDNN's fused attention
 * has no document mask); the whole sequence and the gathered keys without them take cuDNN, as the program does
 * where its build found it, the gathered pieces at cuDNN's rate on them (bench/results/
 * 2026-12-06-gathered-split-h200.md: 0.95x of a whole sequence's, with the backward split). Everything else:
 * the attention rate.
 */
function rateOf(step: Pick<ComputeStep, "op" | "operands">, machine: Machine): number {
  if (step.op === "softmax.block_backward") return machine.laspSoftmaxBackwardFlops;
  const gathered = step.op === "softmax.gathered" || step.op === "softmax.gathered_backward";
  const masked = "ends" in step.operands && step.operands.ends !== undefined;
  if (masked && (step.op === "softmax.full_backward" || step.op === "softmax.gathered_backward"))
    return machine.laspSoftmaxBackwardFlops;
  if (gathered && !masked) return machine.gatheredAttentionFlops;
  return machine.computeFlops;
}

/**
 * Time of one collective over a group of `ranks` GPUs. `bytes` is what one rank passes to the call: its send
 * buffer, as `CollectiveStep.bytes` records it. The bandwidth terms are NCCL's ring-algorithm volumes per rank
 * (nccl-tests' PERFORMANCE.md, "bus bandwidth"): with busbw = linkBandwidth they are exact for large messages;
 * one `linkLatency` stands for the whole call (inside one NVLink node NCCL's LL/LL128 protocols keep the
 * latency nearly flat in W). A group of one rank moves nothing and costs nothing.
 */
export function collectiveTime(
  collective: CollectiveKind,
  bytes: number,
  ranks: number,
  machine: Machine,
): number {
  if (ranks <= 1) return 0;
  const W = ranks;
  const bw = machine.linkBandwidth;
  switch (collective) {
    // Every rank receives the W-1 other contributions of `bytes`: (W-1) * bytes / busbw.
    case "allgather":
      return machine.linkLatency + (bytes * (W - 1)) / bw;
    // The send buffer holds W shards of bytes/W; every rank receives and sums the W-1 other ranks' copies
    // of its shard: (W-1) * (bytes/W) / busbw, the all-gather formula applied to the per-rank shard.
    case "reducescatter":
      return machine.linkLatency + ((bytes / W) * (W - 1)) / bw;
    // A reduce-scatter then an all-gather of the same buffer: 2 (W-1)/W * bytes / busbw.
    case "allreduce":
      return machine.linkLatency + (2 * bytes * (W - 1)) / W / bw;
    // Every rank keeps 1/W of its send buffer and sends the rest: (W-1)/W * bytes / busbw.
    case "alltoall":
      return machine.linkLatency + (bytes * (W - 1)) / W / bw;
  }
}

/**
 * The machine as an AllGather or AlltoAll on the copy engines sees it (NCCL 2.28+, CTA policy zero, symmetric
 * windows): the same formulas at the copy engines' bus bandwidth and fixed cost (`nvlink.copyEngine*`), the
 * link's where the profile has none (never measured, or a group across nodes: NCCL's kernels then).
 */
export function onCopyEngines(machine: Machine): Machine {
  return {
    ...machine,
    linkBandwidth: machine.copyEngineBandwidth ?? machine.linkBandwidth,
    linkLatency: machine.copyEngineLatency ?? machine.linkLatency,
  };
}

/**
 * Whether NCCL copies a collective with the copy engines: an AllGather or AlltoAll. A ReduceScatter or AllReduce
 * needs its kernel; LASP-2H's candidate ReduceScatter (an AlltoAll and a sum) takes the copy engines only when
 * asked (LASP_COLLECTIVES=copy_engines), so it is priced as the kernel it runs by default.
 */
export const copyable = (collective: CollectiveKind): boolean =>
  collective === "allgather" || collective === "alltoall";

/** One point-to-point transfer (an NCCL send matched with a recv) over one link: latency + bytes / bw. */
export function p2pTime(bytes: number, machine: Machine): number {
  return machine.linkLatency + bytes / machine.linkBandwidth;
}
