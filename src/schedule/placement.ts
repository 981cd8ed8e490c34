// The placement pass, run at the end of lowering: decides where each step runs beside the others and records
// it in the IR, so the code generator only emits it and inspect, the cost model and the CPU executor read the
// same decisions.
// - Overlap: each collective's partner, the first later computation beside it (overlap.ts). The partner
//   waits until the comm stream has started the collective, so NCCL's kernel is issued first and is not left
//   waiting for SMs that the (one-wave) chunk kernels would take.
// - Communicator: two NCCL communicators span the same sequence-parallel group and differ in how many CTAs
//   NCCL may run. A small collective beside a kernel that fills the GPU (LASP-2's state AllGather beside the
//   intra-chunk walk) needs few CTAs to finish in time, and every SM it takes delays that kernel: measured on
//   4 x H100 (bench/results/2026-11-26-scaling-h100x4.md), limiting NCCL to 4 CTAs made LASP-2's attention 5%
//   faster while its AllGather still ended well before the kernel beside it. Large collectives (K and V,
//   Ulysses' all-to-all) keep NCCL's default: with 4 CTAs they would take longer than the computation they
//   hide behind. Where NCCL 2.28 copies the few-CTA communicator's AllGathers with the copy engines (decided
//   when the program starts, templates/runtime/comm.cuh), CTA limits no longer apply and no SM is taken: the
//   large AllGathers beside computation go there too (copy-engine candidates), and a GEMM beside keeps every SM.
//   So does a ReduceScatter beside computation that names where its slices land (LASP-2H's dK, dV): as an
//   AlltoAll on the copy engines and a sum in rank order, where the program takes that path (comm.cuh).
// - SMs a GEMM leaves: cuBLAS's Hopper kernels hold every SM until they end, so NCCL's kernel, issued beside
//   one, started only after it: on 4 x H100 LASP-2's state AllGathers were not hidden at all
//   (bench/results/2026-11-26-lasp2-overlap-h100x4.md). Planned for 16 SMs fewer, the GEMM lets the
//   AllGather run beside it; 8 was not enough, 32 slowed the GEMM more than it helped.
import type { CollectiveStep, ComputeStep, LayerSchedule, RankProgram, Step } from "./ir.js";
import { Concurrency, overlapPartners } from "./overlap.js";

/** The CTA limit of the communicator for small collectives beside computation (ncclConfig_t.maxCTAs). */
export const OVERLAP_CTAS = 4;

/** Largest contribution per rank that goes to the few-CTA communicator: a few fp32 d x d states. */
export const SMALL_COLLECTIVE_BYTES = 8 * 1024 * 1024;

/** SMs a projection GEMM (a `host` step) leaves free while a collective beside it runs NCCL's kernels. */
export const GEMM_SM_MARGIN = 16;

/** Places both passes of a lowered layer schedule. */
export function placeSchedule(passes: LayerSchedule["passes"]): LayerSchedule["passes"] {
  return { forward: placePass(passes.forward), backward: placePass(passes.backward) };
}

/**
 * Places one pass: every rank's program, with the overlap judged over all of them. A pass of one rank places
 * nothing beside its collectives: they move no data between GPUs (NCCL copies within the one GPU), so a GEMM
 * keeps every SM and no computation waits for them to start.
 */
export function placePass(programs: RankProgram[]): RankProgram[] {
  const concurrency = new Concurrency(programs);
  const alone = programs.length === 1;
  return programs.map((program) =>
    placeRank(program, alone ? new Map() : overlapPartners(concurrency, program)),
  );
}

function placeRank(program: RankProgram, partners: ReadonlyMap<number, number>): RankProgram {
  const overlapped = new Set(partners.values());
  const placed = program.steps.map((step): Step => {
    if (step.kind !== "collective") return step;
    const few =
      step.collective !== "alltoall" && step.bytes <= SMALL_COLLECTIVE_BYTES && overlapped.has(step.id);
    const copyable =
      step.collective === "allgather" ||
      (step.collective === "reducescatter" && step.transfers.every((t) => t.slices !== undefined));
    const placement: CollectiveStep["placement"] = {
      communicator: few ? "few_ctas" : "default",
      copyEngineCandidate: !few && copyable && overlapped.has(step.id),
    };
    return { ...step, placement };
  });
  const steps = placed.map((step): Step => {
    if (step.kind !== "compute") return step;
    const partner = partners.get(step.id);
    if (partner === undefined) return { ...step, placement: {} };
    const placement: ComputeStep["placement"] = { overlaps: partner };
    if (step.op === "host") {
      // No SM is taken from the GEMM where the collective beside runs on the copy engines.
      const onCopyEngines = (placed[partner] as CollectiveStep).placement.communicator === "few_ctas";
      placement.smMargin = { kernels: GEMM_SM_MARGIN, copyEngines: onCopyEngines ? 0 : GEMM_SM_MARGIN };
    }
    return { ...step, placement };
  });
  return { ...program, steps };
}
