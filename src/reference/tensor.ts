// A minimal dense float64 tensor for the CPU reference executor (`lasp verify`), plus the token layouts.
//
// Layout conventions (row-major, last axis fastest). Everything is for ONE batch element; callers loop over
// the batch.
//   activations  [T, H, d]    tokens x heads x head dim (q, k, v, o and their gradients)
//   states       [H, dk, dv]  one dk x dv matrix per head (linear attention M, P, dM, G)
//   lse          [T, H]       log-sum-exp of the scaled scores per (query, head)
// The first axis is the "row" axis: a token range is one contiguous slice of `data`, which is what makes
// slicing pieces out of a sequence and writing them back cheap.
//
// Float64 on purpose: the reference must be exact enough (1e-12 relative) that any disagreement with the
// oracle is a schedule bug, never rounding.

export interface Tensor {
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) {
    if (!Number.isInteger(s) || s < 0) throw new Error(`bad tensor shape [${shape.join(", ")}]`);
    n *= s;
  }
  return n;
}

/** Wraps (or copies, for a plain array) `data`; it must hold exactly `numel(shape)` numbers. */
export function tensor(shape: readonly number[], data: Float64Array | readonly number[]): Tensor {
  const n = numel(shape);
  if (data.length !== n)
    throw new Error(`tensor of shape [${shape.join(", ")}] needs ${n} values, got ${data.length}`);
  return { shape: [...shape], data: data instanceof Float64Array ? data : Float64Array.from(data) };
}

export function zeros(shape: readonly number[]): Tensor {
  return { shape: [...shape], data: new Float64Array(numel(shape)) };
}

/** Builds a tensor element by element; `f` receives the multi-index in row-major order. */
export function fromFunction(shape: readonly number[], f: (...index: number[]) => number): Tensor {
  const t = zeros(shape);
  const index = shape.map(() => 0);
  for (let flat = 0; flat < t.data.length; flat++) {
    t.data[flat] = f(...index);
    for (let axis = shape.length - 1; axis >= 0; axis--) {
      const next = (index[axis] ?? 0) + 1;
      if (next < (shape[axis] ?? 0)) {
        index[axis] = next;
        break;
      }
      index[axis] = 0;
    }
  }
  return t;
}

export function clone(t: Tensor): Tensor {
  return { shape: [...t.shape], data: t.data.slice() };
}

export function sameShape(a: Tensor, b: Tensor): boolean {
  return a.shape.length === b.shape.length && a.shape.every((s, i) => s === b.shape[i]);
}

export function assertSameShape(a: Tensor, b: Tensor, what: string): void {
  if (!sameShape(a, b))
    throw new Error(`${what}: shapes differ, [${a.shape.join(", ")}] vs [${b.shape.join(", ")}]`);
}

/** Checks the rank and returns the dims, so callers can destructure without undefined checks. */
export function dims3(t: Tensor, what: string): [number, number, number] {
  const [a, b, c] = t.shape;
  if (t.shape.length !== 3 || a === undefined || b === undefined || c === undefined)
    throw new Error(`${what}: expected a rank-3 tensor, got [${t.shape.join(", ")}]`);
  return [a, b, c];
}

export function dims2(t: Tensor, what: string): [number, number] {
  const [a, b] = t.shape;
  if (t.shape.length !== 2 || a === undefined || b === undefined)
    throw new Error(`${what}: expected a rank-2 tensor, got [${t.shape.join(", ")}]`);
  return [a, b];
}

// ---------------------------------------------------------------------------------------------------------
// Element-wise arithmetic

export function add(a: Tensor, b: Tensor): Tensor {
  const out = clone(a);
  addInto(out, b);
  return out;
}

/** dst += src, in place. */
export function addInto(dst: Tensor, src: Tensor): void {
  assertSameShape(dst, src, "addInto");
  for (let i = 0; i < dst.data.length; i++) dst.data[i] = (dst.data[i] ?? 0) + (src.data[i] ?? 0);
}

export function sub(a: Tensor, b: Tensor): Tensor {
  assertSameShape(a, b, "sub");
  const out = zeros(a.shape);
  for (let i = 0; i < a.data.length; i++) out.data[i] = (a.data[i] ?? 0) - (b.data[i] ?? 0);
  return out;
}

export function scale(a: Tensor, s: number): Tensor {
  const out = zeros(a.shape);
  for (let i = 0; i < a.data.length; i++) out.data[i] = (a.data[i] ?? 0) * s;
  return out;
}

/** Sum of element-wise products: the loss `sum(dout * out)` whose gradient is `dout`. */
export function dot(a: Tensor, b: Tensor): number {
  assertSameShape(a, b, "dot");
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += (a.data[i] ?? 0) * (b.data[i] ?? 0);
  return s;
}

// ---------------------------------------------------------------------------------------------------------
// Errors. Both are relative to the reference `b` as a whole, not per element: per-element relative error is
// meaningless where the reference is near zero, which happens all the time with decayed attention.

export function maxAbs(t: Tensor): number {
  let m = 0;
  for (const x of t.data) m = Math.max(m, Math.abs(x));
  return m;
}

const TINY = 1e-300;

/** max|a - b| / max(max|b|, tiny). NaN anywhere gives NaN (so a tolerance check fails). */
export function maxRelErr(a: Tensor, b: Tensor): number {
  assertSameShape(a, b, "maxRelErr");
  let diff = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs((a.data[i] ?? 0) - (b.data[i] ?? 0));
    if (Number.isNaN(d)) return NaN;
    diff = Math.max(diff, d);
  }
  return diff / Math.max(maxAbs(b), TINY);
}

/** ||a - b||_2 / max(||b||_2, tiny), over all elements. */
export function normRelErr(a: Tensor, b: Tensor): number {
  assertSameShape(a, b, "normRelErr");
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.data.length; i++) {
    const bi = b.data[i] ?? 0;
    const d = (a.data[i] ?? 0) - bi;
    num += d * d;
    den += bi * bi;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), TINY);
}

// ---------------------------------------------------------------------------------------------------------
// Deterministic random data. The global tensors are generated once from a seed and then split, so every W
// and every layout sees the same numbers and results are comparable across schedules.

/** mulberry32: a tiny 32-bit PRNG, uniform in [0, 1). Good enough for test data, and identical everywhere. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples times `std`, by Box-Muller over mulberry32(seed). */
export function randn(shape: readonly number[], seed: number, std = 1): Tensor {
  const rand = mulberry32(seed);
  const t = zeros(shape);
  for (let i = 0; i < t.data.length; i += 2) {
    const u1 = 1 - rand(); // (0, 1]: log stays finite
    const u2 = rand();
    const r = Math.sqrt(-2 * Math.log(u1)) * std;
    t.data[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < t.data.length) t.data[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return t;
}

// ---------------------------------------------------------------------------------------------------------
// Rows (tokens) and heads

/** Elements per row: the product of every axis but the first. */
export function rowSize(t: Tensor): number {
  return numel(t.shape.slice(1));
}

function rows(t: Tensor): number {
  const r = t.shape[0];
  if (r === undefined) throw new Error("a scalar tensor has no rows");
  return r;
}

/** Rows [start, end) as a new tensor (a copy, so writes never alias the source). */
export function sliceRows(t: Tensor, start: number, end: number): Tensor {
  if (!(0 <= start && start <= end && end <= rows(t)))
    throw new Error(`sliceRows [${start}, ${end}) out of range`);
  const rs = rowSize(t);
  return { shape: [end - start, ...t.shape.slice(1)], data: t.data.slice(start * rs, end * rs) };
}

/** Rows `indices[0], indices[1], ...` of `t`, in that order. */
export function gatherRows(t: Tensor, indices: ArrayLike<number>): Tensor {
  const rs = rowSize(t);
  const n = rows(t);
  const out = zeros([indices.length, ...t.shape.slice(1)]);
  for (let r = 0; r < indices.length; r++) {
    const src = indices[r] ?? -1;
    if (!(src >= 0 && src < n)) throw new Error(`gatherRows: row ${src} out of range [0, ${n})`);
    out.data.set(t.data.subarray(src * rs, (src + 1) * rs), r * rs);
  }
  return out;
}

/** dst rows [start, start + rows(src)) = src, in place. */
export function writeRows(dst: Tensor, start: number, src: Tensor): void {
  const rs = rowSize(dst);
  if (rowSize(src) !== rs || dst.shape.length !== src.shape.length)
    throw new Error("writeRows: row shapes differ");
  if (start < 0 || start + rows(src) > rows(dst)) throw new Error("writeRows: out of range");
  dst.data.set(src.data, start * rs);
}

/** dst row indices[r] = src row r, in place. */
export function scatterRows(dst: Tensor, indices: ArrayLike<number>, src: Tensor): void {
  const rs = rowSize(dst);
  if (rowSize(src) !== rs || dst.shape.length !== src.shape.length)
    throw new Error("scatterRows: row shapes differ");
  if (indices.length !== rows(src)) throw new Error("scatterRows: one index per source row");
  const n = rows(dst);
  for (let r = 0; r < indices.length; r++) {
    const d = indices[r] ?? -1;
    if (!(d >= 0 && d < n)) throw new Error(`scatterRows: row ${d} out of range [0, ${n})`);
    dst.data.set(src.data.subarray(r * rs, (r + 1) * rs), d * rs);
  }
}

/** dst row indices[r] += src row r: how summed gradients (ReduceScatter) land at their owners. */
export function scatterAddRows(dst: Tensor, indices: ArrayLike<number>, src: Tensor): void {
  const rs = rowSize(dst);
  if (rowSize(src) !== rs || dst.shape.length !== src.shape.length)
    throw new Error("scatterAddRows: row shapes differ");
  if (indices.length !== rows(src)) throw new Error("scatterAddRows: one index per source row");
  const n = rows(dst);
  for (let r = 0; r < indices.length; r++) {
    const d = indices[r] ?? -1;
    if (!(d >= 0 && d < n)) throw new Error(`scatterAddRows: row ${d} out of range [0, ${n})`);
    for (let e = 0; e < rs; e++)
      dst.data[d * rs + e] = (dst.data[d * rs + e] ?? 0) + (src.data[r * rs + e] ?? 0);
  }
}

/** Stacks tensors along the row axis (their other axes must agree). */
export function concatRows(parts: readonly Tensor[]): Tensor {
  const first = parts[0];
  if (first === undefined) throw new Error("concatRows needs at least one part");
  const tail = first.shape.slice(1);
  let total = 0;
  for (const p of parts) {
    if (p.shape.length !== first.shape.length || !p.shape.slice(1).every((s, i) => s === tail[i]))
      throw new Error("concatRows: row shapes differ");
    total += rows(p);
  }
  const out = zeros([total, ...tail]);
  let offset = 0;
  for (const p of parts) {
    out.data.set(p.data, offset);
    offset += p.data.length;
  }
  return out;
}

/** Heads [h0, h1) of a [T, H, d] activation tensor. */
export function sliceHeads(t: Tensor, h0: number, h1: number): Tensor {
  const [T, H, d] = dims3(t, "sliceHeads");
  if (!(0 <= h0 && h0 <= h1 && h1 <= H)) throw new Error(`sliceHeads [${h0}, ${h1}) out of range`);
  const out = zeros([T, h1 - h0, d]);
  for (let i = 0; i < T; i++)
    out.data.set(t.data.subarray((i * H + h0) * d, (i * H + h1) * d), i * (h1 - h0) * d);
  return out;
}

/** Joins [T, H_p, d] tensors along the head axis, in order. */
export function concatHeads(parts: readonly Tensor[]): Tensor {
  const first = parts[0];
  if (first === undefined) throw new Error("concatHeads needs at least one part");
  const [T, , d] = dims3(first, "concatHeads");
  let H = 0;
  for (const p of parts) {
    const [Tp, Hp, dp] = dims3(p, "concatHeads");
    if (Tp !== T || dp !== d) throw new Error("concatHeads: token counts or head dims differ");
    H += Hp;
  }
  const out = zeros([T, H, d]);
  let h0 = 0;
  for (const p of parts) {
    const Hp = p.shape[1] ?? 0;
    for (let i = 0; i < T; i++) out.data.set(p.data.subarray(i * Hp * d, (i + 1) * Hp * d), (i * H + h0) * d);
    h0 += Hp;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Token layouts. A piece is a contiguous run of global token positions [start, start + length). A rank's
// local rows are its pieces in the order listed, which is ascending global order for both layouts.

export interface Piece {
  readonly start: number;
  readonly length: number;
}

/** Rank t holds tokens [tC, (t+1)C), C = N / W. */
export function contiguousPieces(N: number, W: number): Piece[][] {
  if (!Number.isInteger(N / W)) throw new Error(`contiguous layout needs W | N (N=${N}, W=${W})`);
  const C = N / W;
  return Array.from({ length: W }, (_, t) => [{ start: t * C, length: C }]);
}

/** 2W pieces of N / 2W tokens; rank r holds pieces r and 2W-1-r (so causal work is balanced). */
export function zigzagPieces(N: number, W: number): Piece[][] {
  if (!Number.isInteger(N / (2 * W))) throw new Error(`zigzag layout needs 2W | N (N=${N}, W=${W})`);
  const L = N / (2 * W);
  return Array.from({ length: W }, (_, r) => [
    { start: r * L, length: L },
    { start: (2 * W - 1 - r) * L, length: L },
  ]);
}

/** Global token positions of a rank's local rows. */
export function pieceIndices(pieces: readonly Piece[]): number[] {
  const out: number[] = [];
  for (const p of pieces) for (let i = 0; i < p.length; i++) out.push(p.start + i);
  return out;
}

/** All pieces of all ranks, sorted by start: the global piece order that LASP-2 prefix sums run over. */
export function globalPieceOrder(layout: readonly (readonly Piece[])[]): Piece[] {
  return layout.flat().sort((a, b) => a.start - b.start);
}
