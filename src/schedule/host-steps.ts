// The layer's own projections placed inside an attention schedule, where a collective can hide behind them
// (`host` steps): LASP-2's state exchange and LASP-2H's K/V AllGather and dK/dV ReduceScatter.
import type { RankBuilder } from "./builder.js";
import type { LowerContext } from "./context.js";
import { projectionCost } from "./linear-costs.js";
import type { HostWork } from "./ops.js";

/**
 * A step the program fills with the layer's own work (a projection), placed for a collective to overlap.
 * `buffer`: the `q` that q_projection writes, or the `dq` that q_grads reads.
 */
export function hostStep(
  b: RankBuilder,
  ctx: LowerContext,
  work: HostWork,
  buffer: string,
  deps: number[],
): number {
  if (work === "q_projection")
    return b.compute(
      "host",
      "Q = X Wq (the layer's projection)",
      { q: buffer },
      projectionCost(ctx),
      { work },
      deps,
    );
  if (work === "q_grads") {
    const gemm = projectionCost(ctx);
    return b.compute(
      "host",
      "dWq = dQ^T a, da = dQ Wq (dQ's share of the layer's backward)",
      { dq: buffer },
      { flops: 2 * gemm.flops, bytes: 2 * gemm.bytes },
      { work },
      deps,
    );
  }
  return b.compute(
    "host",
    "dWo = attn^T dY (the layer's weight gradient)",
    {},
    projectionCost(ctx),
    { work },
    deps,
  );
}
