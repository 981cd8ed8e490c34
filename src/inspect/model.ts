// The model section of `lasp inspect`: the parameter count, total and per part, and the training FLOPs per
// token that MFU divides by (src/model/). The object is what `--json` shows as `model`; the text is a short
// paragraph under the communication and time tables.
import { trainingFlopsPerToken } from "../model/flops.js";
import { parameterCounts } from "../model/parameters.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { formatFlops, MAX_WIDTH, wrap } from "../text/units.js";

export interface ModelReport {
  /** Every distinct weight; a tied LM head is the embedding and counts once. */
  parameters: number;
  tied_embeddings: boolean;
  parts: { embedding: number; attention: number; mlp: number; norms: number; lm_head: number };
  /** Weights that multiply each token's activations (the LM head included, tied or not). */
  matmul_parameters: number;
  /** Training (forward + backward) FLOPs of one token: 6 x matmul_parameters + the attention products. */
  flops_per_token: number;
  /** The attention products' share of flops_per_token. */
  attention_flops_per_token: number;
}

export function modelReport(spec: ResolvedSpec): ModelReport {
  const counts = parameterCounts(spec.model);
  const flops = trainingFlopsPerToken(spec);
  const { embedding, attention, mlp, norms, lmHead } = counts.parts;
  return {
    parameters: counts.total,
    tied_embeddings: spec.model.tieEmbeddings,
    parts: { embedding, attention, mlp, norms, lm_head: lmHead },
    matmul_parameters: counts.matmul,
    flops_per_token: flops.perToken,
    attention_flops_per_token: flops.attention,
  };
}

/** A count with three significant digits: 1.60B, 268M, 67.6K, 512. */
export function formatCount(n: number): string {
  const [unit, name] = n >= 1e9 ? [1e9, "B"] : n >= 1e6 ? [1e6, "M"] : n >= 1e3 ? [1e3, "K"] : [1, ""];
  const v = n / unit;
  return unit === 1 ? String(n) : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)}${name}`;
}

export function modelText(report: ModelReport, width: number = MAX_WIDTH): string {
  const p = report.parts;
  const head = report.tied_embeddings ? "LM head tied to the embedding" : `LM head ${formatCount(p.lm_head)}`;
  const lines = [
    `Model: ${formatCount(report.parameters)} parameters (${report.parameters}) = embedding ${formatCount(p.embedding)} + attention ${formatCount(p.attention)} + MLP ${formatCount(p.mlp)} + norms ${formatCount(p.norms)}; ${head}`,
    `  training FLOPs per token: ${formatFlops(report.flops_per_token)} = 6 x ${formatCount(report.matmul_parameters)} weights in matrix products (LM head included, embedding lookup not) + ${formatFlops(report.attention_flops_per_token)} of attention products`,
  ];
  return lines
    .flatMap((line) => {
      const indent = line.startsWith("  ") ? "  " : "";
      return wrap(line.trimStart(), width - indent.length - 2).map(
        (l, i) => `${indent}${i > 0 ? "  " : ""}${l}`,
      );
    })
    .join("\n");
}
