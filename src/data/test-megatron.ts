// Megatron-LM indexed datasets written in memory, for tests (the readers: src/data/megatron-index.ts and the
// program's token_files.cuh).

/** Megatron's dtype codes (DType in indexed_dataset.py) and how each writes one value. */
const MEGATRON_TYPES = {
  uint8: { code: 1, bytes: 1, write: (b: Buffer, v: number, at: number) => b.writeUInt8(v, at) },
  int8: { code: 2, bytes: 1, write: (b: Buffer, v: number, at: number) => b.writeInt8(v, at) },
  int16: { code: 3, bytes: 2, write: (b: Buffer, v: number, at: number) => b.writeInt16LE(v, at) },
  int32: { code: 4, bytes: 4, write: (b: Buffer, v: number, at: number) => b.writeInt32LE(v, at) },
  int64: { code: 5, bytes: 8, write: (b: Buffer, v: number, at: number) => b.writeBigInt64LE(BigInt(v), at) },
  uint16: { code: 8, bytes: 2, write: (b: Buffer, v: number, at: number) => b.writeUInt16LE(v, at) },
};
export type MegatronType = keyof typeof MEGATRON_TYPES;

export interface MegatronParts {
  bin: Buffer;
  idx: Buffer;
}

/**
 * A Megatron dataset of `sequences` (one document each unless `documents` says otherwise): .bin the tokens
 * back to back; .idx "MMIDIDX\0\0", version, dtype code, counts, int32 lengths, int64 pointers, int64
 * document indices.
 */
export function megatron(
  sequences: number[][],
  type: MegatronType,
  options: { documents?: number[]; code?: number; version?: bigint; pointers?: number[] } = {},
): MegatronParts {
  const t = MEGATRON_TYPES[type];
  const tokens = sequences.flat();
  const bin = Buffer.alloc(tokens.length * t.bytes);
  tokens.forEach((v, i) => t.write(bin, v, i * t.bytes));
  const documents = options.documents ?? sequences.map((_, i) => i).concat([sequences.length]);
  const n = sequences.length;
  const idx = Buffer.alloc(34 + 12 * n + 8 * documents.length);
  idx.write("MMIDIDX\0\0", 0, "latin1");
  idx.writeBigUInt64LE(options.version ?? 1n, 9);
  idx.writeUInt8(options.code ?? t.code, 17);
  idx.writeBigUInt64LE(BigInt(n), 18);
  idx.writeBigUInt64LE(BigInt(documents.length), 26);
  let pointer = 0;
  sequences.forEach((s, i) => {
    idx.writeInt32LE(s.length, 34 + 4 * i);
    idx.writeBigInt64LE(BigInt(options.pointers?.[i] ?? pointer), 34 + 4 * n + 8 * i);
    pointer += s.length * t.bytes;
  });
  documents.forEach((d, i) => idx.writeBigInt64LE(BigInt(d), 34 + 12 * n + 8 * i));
  return { bin, idx };
}

/** A Megatron dataset of one sequence of `tokens` uint16 zeros (one document). */
export function megatronParts(tokens: number): MegatronParts {
  return megatron([new Array<number>(tokens).fill(0)], "uint16");
}
