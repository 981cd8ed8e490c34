// The layer's own projections placed inside an attention schedule, where a collective can hide behind them
// (`host` steps): LASP-2's state exchange and LASP-2H's K/V AllGather and dK/dV ReduceScatter.
import type { RankBuilder } from "./builder.js";
import type { LowerContext } from "./context.js";
import { projectionCost } from "./linear-costs.js";

/** A step the program fills with the layer's own work (a projection), placed for a collective to overlap. */
export function hostStep(
  b: RankBuilder,
  ctx: LowerContext,
  work: "q_projection" | "o_weight_grad",
  q: string,
  deps: number[],
): number {
  return work === "q_projection"
    ? b.compute("host", "Q = X Wq (the layer's projection)", { q }, projectionCost(ctx), { work }, deps)
    : b.compute(
        "host",
        "dWo = attn^T dY (the layer's weight gradient)",
        {},
        projectionCost(ctx),
        { work },
        deps,
      );
}
