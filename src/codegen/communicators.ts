// The C++ a step's placement becomes. The placement pass (schedule/placement.ts) decides which communicator
// each collective takes and how many SMs a GEMM leaves beside one; this module only spells the decision:
// the few-CTA communicator (c.nccl_few_ctas, ncclConfig_t.maxCTAs = OVERLAP_CTAS) or NCCL's defaults (c.nccl),
// and for copy-engine candidates the choice the program makes when it starts (Ctx::few_ctas_on_copy_engines,
// templates/runtime/comm.cuh): NCCL 2.28 copies the few-CTA communicator's AllGathers with the copy engines,
// where CTA limits no longer apply and no SM is taken.
import type { CollectivePlacement, ComputePlacement } from "../schedule/ir.js";

export { OVERLAP_CTAS } from "../schedule/placement.js";

/** The communicator expression of a collective's calls. */
export function communicator(placement: CollectivePlacement): string {
  if (placement.communicator === "few_ctas") return "c.nccl_few_ctas";
  if (placement.copyEngineCandidate) return "c.few_ctas_on_copy_engines ? c.nccl_few_ctas : c.nccl";
  return "c.nccl";
}

/** The SMs a `host` step's GEMM leaves to the collective beside it: 0 when none is beside it. */
export function smsLeft(placement: ComputePlacement): string {
  const margin = placement.smMargin;
  if (margin === undefined) return "0";
  if (margin.kernels === margin.copyEngines) return String(margin.kernels);
  return `c.few_ctas_on_copy_engines ? ${margin.copyEngines} : ${margin.kernels}`;
}
