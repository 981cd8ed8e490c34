// The machine model the simulator times schedules on: how fast one GPU computes and moves memory, and how fast
// the GPUs of one sequence-parallel group talk. Deliberately small (four numbers): it predicts the shape of a
// schedule (what overlaps, what waits, how time grows with W), not a benchmark to the microsecond.
import type { CollectiveKind, ComputeStep } from "../schedule/ir.js";

export interface Machine {
  name: string;
  /** Attainable dense bf16 tensor-core throughput of one GPU, FLOP/s. */
  computeFlops: number;
  /** Attainable device-memory (HBM) bandwidth of one GPU, B/s. */
  memoryBandwidth: number;
  /**
   * Bus bandwidth per GPU that a collective or a point-to-point transfer attains, B/s (NCCL's "busbw":
   * the figure that makes the ring formulas below exact for large messages).
   */
  linkBandwidth: number;
  /** Fixed cost of one collective or one send/recv hop (launch, handshake, first byte), s. */
  linkLatency: number;
}

/**
 * One H100 SXM5 (80 GB) in an 8-GPU HGX node, NVLink 4 through NVSwitch.
 * - computeFlops: the data sheet's dense bf16 peak is 989 TFLOP/s; large cuBLAS GEMMs reach about 790
 *   (~80%); attention kernels (FlashAttention-3, chunked linear attention) reach about 600 (~60%), and they
 *   are what the schedules time, so 600e12.
 * - memoryBandwidth: HBM3 peak 3.35 TB/s; streaming kernels attain about 3.0 TB/s.
 * - linkBandwidth: NVLink 4 is 450 GB/s per direction per GPU; nccl-tests all-gather and reduce-scatter
 *   measure a bus bandwidth of about 350 GB/s on 8 GPUs for large messages.
 * - linkLatency: a small NCCL collective inside one NVLink node takes about 10 us end to end.
 */
export const H100_SXM: Machine = {
  name: "H100 SXM (NVLink 4, 8-GPU node)",
  computeFlops: 600e12,
  memoryBandwidth: 3.0e12,
  linkBandwidth: 350e9,
  linkLatency: 10e-6,
};

export const DEFAULT_MACHINE: Machine = H100_SXM;

/**
 * Time of one compute step: a roofline. A kernel is bound either by its arithmetic or by its memory
 * traffic, whichever is slower; the step's `flops` and `bytes` (read plus written once) come from the IR.
 * Kernel launch overhead and the ramp of small kernels are ignored.
 */
export function computeTime(step: Pick<ComputeStep, "flops" | "bytes">, machine: Machine): number {
  return Math.max(step.flops / machine.computeFlops, step.bytes / machine.memoryBandwidth);
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

/** One point-to-point transfer (an NCCL send matched with a recv) over one link: latency + bytes / bw. */
export function p2pTime(bytes: number, machine: Machine): number {
  return machine.linkLatency + bytes / machine.linkBandwidth;
}
