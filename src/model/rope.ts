// RoPE's inverse frequencies, one per pair of a head's dimensions: the numbers the generated program rotates by
// (main.cu's table per softmax kind) and the reference checks. In double: an angle is position x frequency, and
// positions reach a million (templates/runtime/softmax_support.cuh says why fp32 is not enough).
import type { RopeScaling } from "../spec/resolved.js";

/**
 * theta^(-2e/d) for e < d/2, scaled as Hugging Face's `rope_scaling` does (transformers'
 * modeling_rope_utils: `linear` divides every frequency by the factor; `llama3` divides those whose wavelength
 * passes original / low_freq_factor, keeps those under original / high_freq_factor, and blends between).
 */
export function ropeInverseFrequencies(headDim: number, theta: number, scaling: RopeScaling): number[] {
  const base = Array.from({ length: headDim / 2 }, (_, e) => Math.pow(theta, (-2 * e) / headDim));
  switch (scaling.type) {
    case "none":
      return base;
    case "linear":
      return base.map((f) => f / scaling.factor);
    case "llama3": {
      const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions } = scaling;
      const longest = originalMaxPositions / lowFreqFactor;
      const shortest = originalMaxPositions / highFreqFactor;
      return base.map((f) => {
        const wavelength = (2 * Math.PI) / f;
        if (wavelength < shortest) return f;
        if (wavelength > longest) return f / factor;
        const smooth = (originalMaxPositions / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        return ((1 - smooth) * f) / factor + smooth * f;
      });
    }
  }
}

/** How a RoPE reads in a comment or a summary: `base 500000`, `base 500000 scaled llama3 (factor 32, ...)`. */
export function describeRope(theta: number, scaling: RopeScaling): string {
  switch (scaling.type) {
    case "none":
      return `base ${theta}`;
    case "linear":
      return `base ${theta} scaled linear (factor ${scaling.factor})`;
    case "llama3":
      return `base ${theta} scaled llama3 (factor ${scaling.factor}, low ${scaling.lowFreqFactor}, high ${scaling.highFreqFactor}, original ${scaling.originalMaxPositions})`;
  }
}
