// Row x state kernels of the chunk walk (linear-chunks.ts, linear-documents.ts). Rows live at an offset
// inside a [L, H, d] buffer; a head's state [dk, dv] at h * dk * dv.

/** Default token block of the chunk algorithm (the kernels' B). */
export const DEFAULT_BLOCK = 64;

/** out[io + e] += c * sum_a x[ix + a] S[so + a dv + e]   (x S, a 1 x dv row) */
export function rowState(
  out: Float64Array,
  io: number,
  c: number,
  x: Float64Array,
  ix: number,
  S: Float64Array,
  so: number,
  dk: number,
  dv: number,
): void {
  for (let a = 0; a < dk; a++) {
    const xa = c * (x[ix + a] ?? 0);
    if (xa === 0) continue;
    const row = so + a * dv;
    for (let e = 0; e < dv; e++) out[io + e] = (out[io + e] ?? 0) + xa * (S[row + e] ?? 0);
  }
}

/** out[io + a] += c * sum_e y[iy + e] S[so + a dv + e]   (y S^T, a 1 x dk row) */
export function rowStateT(
  out: Float64Array,
  io: number,
  c: number,
  y: Float64Array,
  iy: number,
  S: Float64Array,
  so: number,
  dk: number,
  dv: number,
): void {
  for (let a = 0; a < dk; a++) {
    const row = so + a * dv;
    let s = 0;
    for (let e = 0; e < dv; e++) s += (y[iy + e] ?? 0) * (S[row + e] ?? 0);
    out[io + a] = (out[io + a] ?? 0) + c * s;
  }
}

/** S[so + a dv + e] += c * x[ix + a] y[iy + e]   (S += c x^T y) */
export function outerAdd(
  S: Float64Array,
  so: number,
  c: number,
  x: Float64Array,
  ix: number,
  dk: number,
  y: Float64Array,
  iy: number,
  dv: number,
): void {
  for (let a = 0; a < dk; a++) {
    const xa = c * (x[ix + a] ?? 0);
    if (xa === 0) continue;
    const row = so + a * dv;
    for (let e = 0; e < dv; e++) S[row + e] = (S[row + e] ?? 0) + xa * (y[iy + e] ?? 0);
  }
}

export function dotAt(a: Float64Array, ia: number, b: Float64Array, ib: number, n: number): number {
  let s = 0;
  for (let e = 0; e < n; e++) s += (a[ia + e] ?? 0) * (b[ib + e] ?? 0);
  return s;
}

export function axpyAt(y: Float64Array, iy: number, w: number, x: Float64Array, ix: number, n: number): void {
  for (let e = 0; e < n; e++) y[iy + e] = (y[iy + e] ?? 0) + w * (x[ix + e] ?? 0);
}

export function scaleRange(S: Float64Array, from: number, n: number, c: number): void {
  if (c === 1) return;
  for (let e = from; e < from + n; e++) S[e] = (S[e] ?? 0) * c;
}

export function checkBlock(blockSize: number): void {
  if (!Number.isInteger(blockSize) || blockSize < 1)
    throw new Error(`block size ${blockSize} must be a positive integer`);
}
