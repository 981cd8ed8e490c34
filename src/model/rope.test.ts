import { describe, expect, it } from "vitest";
import { describeRope, ropeInverseFrequencies } from "./rope.js";

// Llama-3.2-1B's RoPE: head_dim 64, base 500000, rope_scaling llama3 with factor 32 over an original 8192.
const LLAMA32 = {
  type: "llama3",
  factor: 32,
  lowFreqFactor: 1,
  highFreqFactor: 4,
  originalMaxPositions: 8192,
} as const;

describe("RoPE's inverse frequencies", () => {
  it("are theta^(-2e/d) unscaled", () => {
    const f = ropeInverseFrequencies(128, 500000, { type: "none" });
    expect(f).toHaveLength(64);
    expect(f[0]).toBe(1);
    expect(f[32]).toBeCloseTo(1 / Math.sqrt(500000), 15);
    expect(f[63]).toBe(Math.pow(500000, -126 / 128));
  });

  it("divide every frequency by the factor for `linear`", () => {
    const base = ropeInverseFrequencies(64, 10000, { type: "none" });
    const scaled = ropeInverseFrequencies(64, 10000, { type: "linear", factor: 4 });
    expect(scaled.map((f, e) => f * 4 - base[e]!)).toEqual(base.map(() => 0));
    // bench/gpu/torch_reference.py's rope_inv_freq (transformers' formula in Python floats) gives the same.
    expect(scaled[5]).toBe(0.05928434264154138);
  });

  // The values are bench/gpu/torch_reference.py's rope_inv_freq for the same settings: its own Python of
  // transformers' _compute_llama3_parameters, in float64.
  it("keep short wavelengths, divide long ones, and blend between for `llama3` (Llama 3.2's numbers)", () => {
    const base = ropeInverseFrequencies(64, 500000, { type: "none" });
    const f = ropeInverseFrequencies(64, 500000, LLAMA32);
    // Wavelengths under 8192 / 4 = 2048 positions (e <= 14) are kept.
    expect(f.slice(0, 15)).toEqual(base.slice(0, 15));
    expect(f[14]).toBe(0.003211445994752591);
    // 2048 to 8192: the blend (e 15, 16, 17).
    expect(f[15]).toBeCloseTo(0.001290547928209264, 17);
    expect(f[16]).toBeCloseTo(0.00042955679655936815, 17);
    expect(f[17]).toBeCloseTo(9.70828780262767e-5, 18);
    // Past 8192 (e >= 18): divided by 32.
    expect(f[18]).toBeCloseTo(1.9461638184831125e-5, 19);
    expect(f[31]).toBeCloseTo(9.41830672543491e-8, 21);
    for (let e = 18; e < 32; e++) expect(f[e]).toBe(base[e]! / 32);
    // Scaling only ever lowers a frequency, and the order stays.
    f.forEach((x, e) => expect(x).toBeLessThanOrEqual(base[e]!));
    f.slice(1).forEach((x, e) => expect(x).toBeLessThan(f[e]!));
  });

  it("follow Llama 3.1's factor 8 at head_dim 128", () => {
    const f = ropeInverseFrequencies(128, 500000, { ...LLAMA32, factor: 8 });
    expect(f[0]).toBe(1);
    expect(f[40]).toBeCloseTo(3.428102195952591e-5, 19);
    expect(f[45]).toBeCloseTo(1.2297638677963614e-5, 19);
    expect(f[63]).toBeCloseTo(3.068925988914511e-7, 21);
  });

  it("read in a comment as the spec's settings", () => {
    expect(describeRope(10000, { type: "none" })).toBe("base 10000");
    expect(describeRope(10000, { type: "linear", factor: 4 })).toBe("base 10000 scaled linear (factor 4)");
    expect(describeRope(500000, LLAMA32)).toBe(
      "base 500000 scaled llama3 (factor 32, low 1, high 4, original 8192)",
    );
  });
});
