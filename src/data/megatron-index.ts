// Megatron-LM's indexed datasets (PREFIX.idx beside PREFIX.bin), as far as `lasp run` and `lasp inspect` read
// them before the build: which files a path names, the index's header and sizes, and the token count. The
// layout, and the messages, are the program's (templates/runtime/token_files.cuh, `open_megatron`), which also
// checks every sequence and document index before step 1; this reads only the header and the last sequence,
// so a large index costs a few reads.
import { closeSync, existsSync, fstatSync, openSync, readSync } from "node:fs";

/** The first bytes of an index. */
export const MEGATRON_MAGIC = "MMIDIDX\0\0";
/** Magic (9), version uint64, dtype code uint8, sequence count uint64, document count uint64. */
export const MEGATRON_HEADER_BYTES = 34;
/** Bytes of a token per dtype code; 6 (float64) and 7 (float32) hold no token ids. */
const TOKEN_BYTES: Readonly<Record<number, number>> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 8: 2 };

/**
 * The prefix of the Megatron dataset `path` names, as the program decides it: PREFIX, PREFIX.bin with
 * PREFIX.idx beside it, or PREFIX.idx; undefined for an llm.c file (a file of its own name, or a .bin alone).
 */
export function megatronPrefix(path: string): string | undefined {
  const named = path.endsWith(".bin") || path.endsWith(".idx");
  const prefix = named ? path.slice(0, -4) : path;
  if (!named && existsSync(path)) return undefined;
  const is = path.endsWith(".idx") || existsSync(`${prefix}.idx`) || (!named && existsSync(`${prefix}.bin`));
  return is ? prefix : undefined;
}

/** The tokens of the dataset at `prefix`, after checking what the program checks first; throws its message. */
export function megatronTokens(prefix: string): number {
  const idx = `${prefix}.idx`;
  const bin = `${prefix}.bin`;
  if (!existsSync(idx))
    throw new Error(
      `the Megatron dataset ${prefix} has no index: ${idx} is missing beside ${bin} (an llm.c token file is named by its own path, ${bin})`,
    );
  if (!existsSync(bin))
    throw new Error(`the Megatron dataset ${prefix} has no data: ${bin} is missing beside ${idx}`);
  const fd = openSync(idx, "r");
  try {
    const size = fstatSync(fd).size;
    const header = Buffer.alloc(MEGATRON_HEADER_BYTES);
    const got = readSync(fd, header, 0, MEGATRON_HEADER_BYTES, 0);
    if (got < MEGATRON_MAGIC.length || header.toString("latin1", 0, MEGATRON_MAGIC.length) !== MEGATRON_MAGIC)
      throw new Error(`${idx} is not a Megatron index: it does not start with "MMIDIDX\\0\\0"`);
    if (got < MEGATRON_HEADER_BYTES)
      throw new Error(
        `${idx} is truncated: ${size} bytes, too short for the ${MEGATRON_HEADER_BYTES}-byte header`,
      );
    const version = header.readBigUInt64LE(9);
    if (version !== 1n)
      throw new Error(
        `${idx} has version ${version} (uint64 at byte 9), expected 1, the only version Megatron writes`,
      );
    const code = header[17]!;
    const width = TOKEN_BYTES[code];
    if (width === undefined) {
      const what = code === 6 ? "float64, not token ids" : code === 7 ? "float32, not token ids" : "unknown";
      throw new Error(
        `${idx} has dtype code ${code} (byte 17: ${what}), expected one of 1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 8 uint16`,
      );
    }
    const sequences = header.readBigUInt64LE(18);
    const documents = header.readBigUInt64LE(26);
    const want = BigInt(MEGATRON_HEADER_BYTES) + 12n * sequences + 8n * documents;
    const have = BigInt(size);
    // A multimodal index has one more byte per sequence, its modes.
    if (have !== want && have !== want + sequences)
      throw new Error(
        `${idx} ${have < want ? "is truncated" : "is longer than its header says"}: its header announces ${sequences} sequences and ${documents} document indices (34-byte header, ${sequences} int32 lengths, ${sequences} int64 pointers, ${documents} int64 document indices), the file has ${size} bytes`,
      );
    if (sequences === 0n) throw new Error(`the Megatron dataset ${prefix} holds no tokens`);
    // The sequences lie back to back (the program checks each): the last one's end is the token count.
    const last = Number(sequences - 1n);
    const lengthBytes = Buffer.alloc(4);
    readSync(fd, lengthBytes, 0, 4, MEGATRON_HEADER_BYTES + 4 * last);
    const pointerBytes = Buffer.alloc(8);
    readSync(fd, pointerBytes, 0, 8, MEGATRON_HEADER_BYTES + 4 * Number(sequences) + 8 * last);
    const tokens = Number(pointerBytes.readBigInt64LE(0)) / width + lengthBytes.readInt32LE(0);
    const binBytes = fstatSizeOf(bin);
    if (binBytes !== tokens * width)
      throw new Error(
        `${bin} ${binBytes < tokens * width ? "is truncated" : "is longer than its index says"}: ${idx} describes ${tokens} tokens (${tokens * width} bytes), the file has ${binBytes}`,
      );
    if (tokens === 0) throw new Error(`the Megatron dataset ${prefix} holds no tokens`);
    return tokens;
  } finally {
    closeSync(fd);
  }
}

function fstatSizeOf(file: string): number {
  const fd = openSync(file, "r");
  try {
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
}
