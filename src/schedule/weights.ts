// The attention weights of a layer kind, as the projections around its schedule use them: what the program
// allocates (codegen), what the memory model counts (cost) and what the gradient sum moves (inspect).
import type { LayerSchedule, ScheduleSizes } from "./ir.js";

/** Elements of a layer's Wq (and Wo), hidden x heads x d, and of its Wk (and Wv), hidden x kv heads x d. */
export function weightBlocks(
  hidden: number,
  sizes: ScheduleSizes,
  schedule: LayerSchedule,
): { q: number; kv: number } {
  const kvHeads = schedule.layer.type === "softmax_attention" ? schedule.layer.kvHeads : sizes.heads;
  return { q: hidden * sizes.heads * sizes.headDim, kv: hidden * kvHeads * sizes.headDim };
}

/** Elements of a layer's four attention weights (Wq, Wk, Wv, Wo): one weight-gradient sum. */
export function attentionWeightElements(sizes: ScheduleSizes, schedule: LayerSchedule): number {
  const { q, kv } = weightBlocks(sizes.hidden, sizes, schedule);
  return 2 * q + 2 * kv;
}
