// Ulysses data movement as pure functions over per-rank tensors: the all-to-all that turns
// [tokens sharded, all heads] into [all tokens, heads sharded] and back. Token ownership is explicit
// (ownership[r] = the global positions of rank r's local rows, in local order), so contiguous and zigzag
// layouts are the same code. After seqToHeads every rank holds the whole sequence in GLOBAL order
// (positions 0 .. N-1) for its heads [r H/W, (r+1) H/W); attention then runs locally, unchanged.
//
// Under GQA, run seqToHeads on q (H heads) and on k, v (Hkv heads) separately: with W | H and W | Hkv, rank
// r's local query head h reads local kv head floor(h / (H / Hkv)), the same grouping as globally.

import { type Tensor, concatHeads, dims3, gatherRows, scatterRows, sliceHeads, zeros } from "./tensor.js";

/** The collective itself: recv[s][r] = send[r][s] (rank r's buffer for rank s arrives at s from r). */
export function allToAll<T>(send: readonly (readonly T[])[]): T[][] {
  const W = send.length;
  return Array.from({ length: W }, (_, s) =>
    Array.from({ length: W }, (_, r) => {
      const row = send[r];
      if (row?.length !== W) throw new Error(`allToAll: rank ${r} must send exactly ${W} buffers`);
      return row[s] as T;
    }),
  );
}

/** Heads [start, end) that rank r holds after the all-to-all. Needs W | H. */
export function headRange(H: number, W: number, r: number): [number, number] {
  if (H % W !== 0) throw new Error(`Ulysses needs the head count ${H} divisible by W = ${W}`);
  const n = H / W;
  return [r * n, (r + 1) * n];
}

/** Checks ownership is a partition of 0 .. N-1 matching the shards' row counts; returns N. */
function checkOwnership(ownership: readonly (readonly number[])[], rowsPerRank: readonly number[]): number {
  if (ownership.length !== rowsPerRank.length) throw new Error("ulysses: one ownership list per rank");
  const N = ownership.reduce((n, o) => n + o.length, 0);
  const seen = new Uint8Array(N);
  ownership.forEach((own, r) => {
    if (own.length !== rowsPerRank[r])
      throw new Error(`ulysses: rank ${r} owns ${own.length} tokens, holds ${rowsPerRank[r]}`);
    for (const i of own) {
      if (!(Number.isInteger(i) && i >= 0 && i < N) || seen[i])
        throw new Error(`ulysses: token ${i} is owned twice or out of range`);
      seen[i] = 1;
    }
  });
  return N;
}

/**
 * Sequence-sharded [C_r, H, d] per rank -> head-sharded [N, H/W, d] per rank, tokens in global order.
 * Rank r sends heads headRange(s) of its rows to rank s; rank s places what it gets from r at ownership[r].
 */
export function seqToHeads(shards: readonly Tensor[], ownership: readonly (readonly number[])[]): Tensor[] {
  const W = shards.length;
  const dimsOf = shards.map((t, r) => dims3(t, `seqToHeads rank ${r}`));
  const N = checkOwnership(
    ownership,
    dimsOf.map((d) => d[0]),
  );
  const [, H, d] = dimsOf[0] ?? [0, 0, 0];
  if (dimsOf.some(([, h, e]) => h !== H || e !== d))
    throw new Error("seqToHeads: ranks disagree on heads or dim");
  const send = shards.map((t) => Array.from({ length: W }, (_, s) => sliceHeads(t, ...headRange(H, W, s))));
  const recv = allToAll(send);
  return recv.map((fromRanks) => {
    const out = zeros([N, H / W, d]);
    fromRanks.forEach((buf, r) => scatterRows(out, ownership[r] ?? [], buf));
    return out;
  });
}

/**
 * Head-sharded [N, H/W, d] per rank (global token order) -> sequence-sharded [C_r, H, d] per rank.
 * Rank s sends the rows ownership[r] of its heads to rank r, which joins the W head groups in rank order.
 */
export function headsToSeq(shards: readonly Tensor[], ownership: readonly (readonly number[])[]): Tensor[] {
  const W = shards.length;
  const dimsOf = shards.map((t, r) => dims3(t, `headsToSeq rank ${r}`));
  const N = checkOwnership(
    ownership,
    ownership.map((o) => o.length),
  );
  if (dimsOf.some(([n]) => n !== N)) throw new Error(`headsToSeq: every rank must hold all ${N} tokens`);
  const send = shards.map((t) => Array.from({ length: W }, (_, r) => gatherRows(t, ownership[r] ?? [])));
  const recv = allToAll(send);
  return recv.map((fromRanks) => concatHeads(fromRanks));
}
