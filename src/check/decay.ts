// Named decay schedules, expanded to one value per head (head h = 0 .. H-1).

/** RetNet: lam_h = 1 - 2^(-5 - h). */
export function retentionDecay(heads: number): number[] {
  return Array.from({ length: heads }, (_, h) => 1 - 2 ** (-5 - h));
}

/** Lightning Attention: lam_h = exp(-s_h) with the ALiBi slopes s_h = 2^(-8 (h + 1) / H). */
export function lightningDecay(heads: number): number[] {
  return Array.from({ length: heads }, (_, h) => Math.exp(-(2 ** ((-8 * (h + 1)) / heads))));
}
