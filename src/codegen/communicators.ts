// Which NCCL communicator each collective uses. Both span the same sequence-parallel group; they differ in
// how many CTAs NCCL may run. A small collective issued beside a kernel that fills the GPU (LASP-2's state
// AllGather beside the intra-chunk walk) needs few CTAs to finish in time, and every SM it takes delays that
// kernel: measured on 4 x H100 (bench/results/2026-11-26-scaling-h100x4.md), limiting NCCL to 4 CTAs made
// LASP-2's attention 5% faster while its AllGather still ended well before the kernel beside it. Large
// collectives (K and V, Ulysses' all-to-all) keep NCCL's default: with 4 CTAs they would take longer than
// the computation they hide behind.
// Where NCCL 2.28 copies the few-CTA communicator's AllGathers with the copy engines (decided when the
// program starts, templates/runtime/comm.cuh), CTA limits no longer apply and no SM is taken: the large
// AllGathers beside computation go there too (copyEngineCandidates), and a GEMM beside keeps every SM.
import type { RankProgram } from "../schedule/ir.js";

/** The CTA limit of the communicator for small collectives beside computation (ncclConfig_t.maxCTAs). */
export const OVERLAP_CTAS = 4;

/** Largest contribution per rank that goes to the few-CTA communicator: a few fp32 d x d states. */
export const SMALL_COLLECTIVE_BYTES = 8 * 1024 * 1024;

/**
 * SMs a projection GEMM (a `host` step) leaves free when a collective runs beside it. cuBLAS's Hopper
 * kernels hold every SM until they end, so NCCL's kernel, issued beside one, started only after it: on
 * 4 x H100 LASP-2's state AllGathers were not hidden at all (bench/results/2026-11-26-lasp2-overlap-h100x4.md).
 * Planned for 16 SMs fewer, the GEMM lets the AllGather run beside it; 8 was not enough, 32 slowed the
 * GEMM more than it helped.
 */
export const GEMM_SM_MARGIN = 16;

/**
 * Collectives (step ids) of one rank's program that use the few-CTA communicator: small ones that have a
 * computation beside them (`partners`: computation step -> the collective it overlaps, from overlapPartners).
 */
export function fewCtaCollectives(program: RankProgram, partners: ReadonlyMap<number, number>): Set<number> {
  const overlapped = new Set(partners.values());
  return new Set(
    program.steps
      .filter(
        (s) =>
          s.kind === "collective" &&
          s.collective !== "alltoall" &&
          s.bytes <= SMALL_COLLECTIVE_BYTES &&
          overlapped.has(s.id),
      )
      .map((s) => s.id),
  );
}

/**
 * AllGathers too large for the few-CTA communicator that have a computation beside them (LASP-2H's K and V
 * over a long sequence). They go to it anyway when NCCL copies its AllGathers with the copy engines, where
 * CTA limits do not apply and no SM is taken from the kernel beside; to NCCL's defaults otherwise. The choice
 * is made at run time (Ctx::few_ctas_on_copy_engines, comm.cuh).
 */
export function copyEngineCandidates(
  program: RankProgram,
  partners: ReadonlyMap<number, number>,
): Set<number> {
  const overlapped = new Set(partners.values());
  const few = fewCtaCollectives(program, partners);
  return new Set(
    program.steps
      .filter(
        (s) =>
          s.kind === "collective" && s.collective === "allgather" && overlapped.has(s.id) && !few.has(s.id),
      )
      .map((s) => s.id),
  );
}
