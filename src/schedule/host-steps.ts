// The layer's own projections placed inside an attention schedule, where a collective can hide behind them
// (`host` steps): LASP-2's state exchange and LASP-2H's K/V AllGather and dK/dV ReduceScatter.
import type { RankBuilder } from "./builder.js";
import type { LowerContext } from "./context.js";
import { projectionCost } from "./linear-costs.js";
import type { HostWork } from "./ops.js";

/** What each work is called in `inspect`, and how many projection-sized GEMMs it runs. */
const HOST_WORK: Record<HostWork, { label: string; gemms: number }> = {
  q_projection: { label: "Q = X Wq (the layer's projection)", gemms: 1 },
  o_weight_grad: { label: "dWo = attn^T dY (the layer's weight gradient)", gemms: 1 },
  q_grads: { label: "dWq = dQ^T a, da = dQ Wq (dQ's share of the layer's backward)", gemms: 2 },
};

/**
 * A step the program fills with the layer's own work (a projection), placed for a collective to overlap.
 * `buffer`: the `q` that q_projection writes, or the `dq` that q_grads reads (dWo names none).
 */
export function hostStep(
  b: RankBuilder,
  ctx: LowerContext,
  work: HostWork,
  buffer: string,
  deps: number[],
): number {
  const { label, gemms } = HOST_WORK[work];
  const gemm = projectionCost(ctx);
  const operands = work === "q_projection" ? { q: buffer } : work === "q_grads" ? { dq: buffer } : {};
  return b.compute(
    "host",
    label,
    operands,
    { flops: gemms * gemm.flops, bytes: gemms * gemm.bytes },
    { work },
    deps,
  );
}
