// What the measured numerics of a model say about a spec that checks clean: a warning where bf16 activations
// cannot carry the gradients the model defines. Measured, not modelled: W0610 in
// bench/results/2026-12-05-train-mode-h100.md, W0614 in bench/results/2026-12-05-documents-h100.md.
import type { Setting, SpecFile } from "../ast/ast.js";
import { diagnose, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { FeatureMap, ResolvedSpec } from "../spec/resolved.js";

/** Feature maps whose values are never negative: a bidirectional layer's output is then nearly one vector. */
const NON_NEGATIVE: readonly FeatureMap[] = ["elu_plus_one", "relu"];

/** Layer `name`'s declaration. */
function layerEntry(ast: SpecFile, name: string) {
  for (const block of ast.blocks) {
    if (block.kind !== "model") continue;
    for (const entry of block.entries) if (entry.kind === "layer" && entry.name.name === name) return entry;
  }
  return undefined;
}

/** The setting `key` of layer `name`'s declaration, where a warning points. */
function layerSetting(ast: SpecFile, name: string, key: string): Setting | undefined {
  return layerEntry(ast, name)?.settings.find((s) => s.key.name === key);
}

/**
 * A bidirectional linear-attention layer with a non-negative feature map gives every token nearly the same
 * output, a direction common to all tokens that the layers after it carry; their Wq and Wk gradients then come
 * from a cancellation that bf16 activations cannot resolve (PyTorch in fp32 with its activations rounded to
 * bf16 moves them by 5x to 8x their size, every other gradient by under 1%). One warning per such layer kind
 * that has a layer after it, at its feature_map.
 */
export function numericsNotes(ast: SpecFile, spec: ResolvedSpec): Diagnostic[] {
  if (spec.run.dtype === "fp32") return [];
  return [...cancellationNotes(ast, spec), ...outputNormNotes(ast, spec)];
}

function cancellationNotes(ast: SpecFile, spec: ResolvedSpec): Diagnostic[] {
  const layers = spec.model.layers;
  const out: Diagnostic[] = [];
  const warned = new Set<string>();
  layers.forEach((kind, i) => {
    if (kind.type !== "linear_attention" || kind.causal || !NON_NEGATIVE.includes(kind.featureMap)) return;
    if (i === layers.length - 1 || warned.has(kind.name)) return;
    const setting = layerSetting(ast, kind.name, "feature_map");
    if (setting === undefined) return;
    warned.add(kind.name);
    out.push(
      diagnose("bf16Cancellation", setting.span, [kind.name, kind.featureMap, spec.run.dtype], {
        hint: "use `feature_map identity` (the default) for bidirectional layers, or only in the last layer",
      }),
    );
  });
  return out;
}

/**
 * A causal linear layer with `output_norm rms` over packed documents: each document's first token has the
 * attention output (q . k) v, which RMSNorm scales to unit size, so near q . k = 0 the output flips sign and its
 * q and k gradients peak at 1/sqrt(eps) times the usual; in bf16 the last bits of q and k decide them, and one
 * such token can move a whole layer's Wq gradient. Measured on an H100: with `output_norm none` the same
 * programs match the fp32 oracle and PyTorch. One warning per such layer kind, at its output_norm (or its name).
 */
function outputNormNotes(ast: SpecFile, spec: ResolvedSpec): Diagnostic[] {
  if (spec.run.documents.kind === "none") return [];
  const out: Diagnostic[] = [];
  for (const kind of spec.model.kinds) {
    if (kind.type !== "linear_attention" || !kind.causal || kind.outputNorm !== "rms") continue;
    const entry = layerEntry(ast, kind.name);
    if (entry === undefined) continue;
    const at = layerSetting(ast, kind.name, "output_norm")?.span ?? entry.name.span;
    out.push(
      diagnose("outputNormAtDocumentStarts", at, [kind.name, spec.run.dtype], {
        hint: "the model's own sensitivity, in any bf16 implementation: verify names the gradients it moves as ill-conditioned; `output_norm none` avoids it",
      }),
    );
  }
  return out;
}
