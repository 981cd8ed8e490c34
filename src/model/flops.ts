// Training FLOPs per token, as MFU is counted (PaLM, appendix B; nanoGPT's and torchtitan's estimate_mfu):
// 6 x the weights that multiply each token's activations (2 FLOPs per multiply-add, forward once and
// backward twice), the LM head included even when tied and the embedding lookup not (it is a gather), plus
// the attention's own products, again x 3 for forward and backward. Norms, feature maps, SwiGLU's
// element-wise middle and the loss are left out, as the literature leaves them out.
//
// Attention's own products per token and layer, forward (d = head_dim, H = query heads):
// - softmax: QK^T and PV against every key of the sequence, 2 x 2 x seq_len x d per head, the causal mask
//   not halving it (PaLM's 12 x L x H x d x T for the three passes);
// - linear: the chunk algorithm the kernels run (blocks of KERNEL_BLOCK tokens, as fla's chunk kernels):
//   QK^T and (.)V inside the block, 2 x 2 x block x d, and the state products K^T V and Q S, 2 x 2 x d x d.
//   This is the count PyTorch baselines with fla's kernels are measured against in bench/results/.
import { KERNEL_BLOCK, type LayerKind, type ResolvedSpec } from "../spec/resolved.js";
import { parameterCounts } from "./parameters.js";

/** Forward FLOPs of one layer's attention products for one token, over all heads. */
export function attentionForwardFlops(spec: ResolvedSpec, layer: LayerKind): number {
  const { heads, headDim: d } = spec.model;
  if (layer.type === "softmax_attention") return heads * 4 * spec.run.seqLen * d;
  return heads * (4 * KERNEL_BLOCK * d + 4 * d * d);
}

export interface TrainingFlops {
  /** 6 x the weights in matrix products. */
  weights: number;
  /** 3 x the attention products' forward FLOPs, summed over the layers. */
  attention: number;
  /** weights + attention: one token's share of a training step (forward and backward). */
  perToken: number;
}

export function trainingFlopsPerToken(spec: ResolvedSpec): TrainingFlops {
  const weights = 6 * parameterCounts(spec.model).matmul;
  const attention = spec.model.layers.reduce((sum, layer) => sum + 3 * attentionForwardFlops(spec, layer), 0);
  return { weights, attention, perToken: weights + attention };
}
