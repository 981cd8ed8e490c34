// What the measured numerics of a model say about a spec that checks clean: a warning (W0610) where bf16
// activations cannot carry the gradients the model defines. Measured, not modelled:
// bench/results/2026-12-05-train-mode-h100.md.
import type { Setting, SpecFile } from "../ast/ast.js";
import { diagnose, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { FeatureMap, ResolvedSpec } from "../spec/resolved.js";

/** Feature maps whose values are never negative: a bidirectional layer's output is then nearly one vector. */
const NON_NEGATIVE: readonly FeatureMap[] = ["elu_plus_one", "relu"];

/** The `feature_map` setting of layer `name`'s declaration, where the warning points. */
function featureMapSetting(ast: SpecFile, name: string): Setting | undefined {
  for (const block of ast.blocks) {
    if (block.kind !== "model") continue;
    for (const entry of block.entries) {
      if (entry.kind === "layer" && entry.name.name === name)
        return entry.settings.find((s) => s.key.name === "feature_map");
    }
  }
  return undefined;
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
  const layers = spec.model.layers;
  const out: Diagnostic[] = [];
  const warned = new Set<string>();
  layers.forEach((kind, i) => {
    if (kind.type !== "linear_attention" || kind.causal || !NON_NEGATIVE.includes(kind.featureMap)) return;
    if (i === layers.length - 1 || warned.has(kind.name)) return;
    const setting = featureMapSetting(ast, kind.name);
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
