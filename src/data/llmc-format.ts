// llm.c's token files, as its data scripts write them and its loaders read them (checked in karpathy/llm.c at
// f1e2ace, May 2025): dev/data/data_common.py's `write_datafile` writes a header of 256 int32 (numpy's native
// order: little-endian on every machine llm.c targets), [0] the magic number, [1] the version, [2] the token
// count, every other word zero; then the tokens. It knows two kinds, picked by `model_desc`:
//   GPT-2:   magic 20240520, version 1, uint16 tokens (llmc/dataloader.h and train_gpt2.py read these, and the
//            loader insists that the file is exactly 1024 + 2 x count bytes);
//   Llama-3: magic 20240801, version 7, uint32 tokens (train_llama3.py reads these).
// The count is an int32 (`write_datafile` asserts fewer than 2^31 tokens). Nothing here touches the disk.

export const HEADER_INTS = 256;
export const HEADER_BYTES = HEADER_INTS * 4;
/** The header's count is an int32. */
export const MAX_TOKENS = 2 ** 31 - 1;

export interface TokenFormat {
  /** How messages name the kind: the model family whose tokenizer llm.c's scripts use. */
  readonly name: string;
  readonly magic: number;
  readonly version: number;
  readonly tokenBytes: 2 | 4;
}

export const GPT2_FORMAT: TokenFormat = {
  name: "GPT-2",
  magic: 20240520,
  version: 1,
  tokenBytes: 2,
};
export const LLAMA3_FORMAT: TokenFormat = {
  name: "Llama-3",
  magic: 20240801,
  version: 7,
  tokenBytes: 4,
};
export const TOKEN_FORMATS: readonly TokenFormat[] = [GPT2_FORMAT, LLAMA3_FORMAT];

export interface TokenFileHeader {
  format: TokenFormat;
  /** Tokens after the header. */
  tokens: number;
}

export type TokenFileProblem =
  "short-header" | "bad-magic" | "bad-version" | "bad-count" | "wrong-size" | "too-many-tokens" | "bad-token";

/** Why bytes are not a token file (or tokens cannot be one); the message can follow "PATH: ". */
export class TokenFileError extends Error {
  constructor(
    readonly problem: TokenFileProblem,
    message: string,
  ) {
    super(message);
  }
}

/** The size of a file holding `header`'s tokens, header included. */
export function tokenFileBytes(header: TokenFileHeader): number {
  return HEADER_BYTES + header.tokens * header.format.tokenBytes;
}

export function encodeHeader(header: TokenFileHeader): Uint8Array {
  checkCount(header.tokens);
  const bytes = new Uint8Array(HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  view.setInt32(0, header.format.magic, true);
  view.setInt32(4, header.format.version, true);
  view.setInt32(8, header.tokens, true);
  return bytes;
}

/** Reads and validates the header at the start of `bytes` (at least its first 1024 bytes). */
export function decodeHeader(bytes: Uint8Array): TokenFileHeader {
  if (bytes.length < HEADER_BYTES) {
    throw new TokenFileError(
      "short-header",
      `${bytes.length} bytes, too short for llm.c's header of ${HEADER_BYTES} bytes`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const magic = view.getInt32(0, true);
  const version = view.getInt32(4, true);
  const tokens = view.getInt32(8, true);
  const known = TOKEN_FORMATS.find((f) => f.magic === magic);
  if (known === undefined) {
    const magics = TOKEN_FORMATS.map((f) => `${f.magic} (${f.name})`).join(" or ");
    throw new TokenFileError(
      "bad-magic",
      `not an llm.c token file: its magic number is ${magic}, not ${magics}`,
    );
  }
  if (version !== known.version) {
    throw new TokenFileError(
      "bad-version",
      `an llm.c token file of version ${version}, which llm.c does not write: with magic ${magic} (${known.name}) the version is ${known.version}`,
    );
  }
  if (tokens < 0) {
    throw new TokenFileError("bad-count", `the header counts ${tokens} tokens, fewer than none`);
  }
  return { format: known, tokens };
}

/** Throws unless a file of `size` bytes holds exactly the tokens `header` counts. */
export function checkFileSize(header: TokenFileHeader, size: number): void {
  const expected = tokenFileBytes(header);
  if (size === expected) return;
  const what = `its header counts ${header.tokens} tokens of ${header.format.tokenBytes} bytes, ${expected} bytes with the header`;
  const why = size < expected ? "truncated, or still being written?" : "bytes after the last token";
  throw new TokenFileError("wrong-size", `${size} bytes, but ${what} (${why})`);
}

/** A whole GPT-2-format file whose tokens are the bytes of `chunks`, in order: a byte-level tokenizer. */
export function encodeByteTokens(chunks: readonly Uint8Array[]): Uint8Array {
  const tokens = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const file = new Uint8Array(tokenFileBytes({ format: GPT2_FORMAT, tokens }));
  file.set(encodeHeader({ format: GPT2_FORMAT, tokens }));
  // A byte b is the uint16 b: low byte b, high byte zero (the array starts zeroed), whatever the host's order.
  let at = HEADER_BYTES;
  for (const chunk of chunks) {
    for (const byte of chunk) {
      file[at] = byte;
      at += 2;
    }
  }
  return file;
}

/** A whole file of `tokens` in `format`; every token must fit its width. */
export function encodeTokenFile(format: TokenFormat, tokens: ArrayLike<number>): Uint8Array {
  const file = new Uint8Array(tokenFileBytes({ format, tokens: tokens.length }));
  file.set(encodeHeader({ format, tokens: tokens.length }));
  const view = new DataView(file.buffer);
  const limit = 2 ** (8 * format.tokenBytes);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (!Number.isInteger(token) || token < 0 || token >= limit) {
      throw new TokenFileError(
        "bad-token",
        `token ${i} is ${token}, not a whole number from 0 to ${limit - 1} (${format.name}'s uint${8 * format.tokenBytes})`,
      );
    }
    const at = HEADER_BYTES + i * format.tokenBytes;
    if (format.tokenBytes === 2) view.setUint16(at, token, true);
    else view.setUint32(at, token, true);
  }
  return file;
}

export interface TokenFile {
  header: TokenFileHeader;
  tokens: Uint16Array | Uint32Array;
}

/** Reads a whole token file held in memory, after checking its header and size. */
export function decodeTokenFile(bytes: Uint8Array): TokenFile {
  const header = decodeHeader(bytes);
  checkFileSize(header, bytes.length);
  return { header, tokens: decodeTokens(header.format, bytes.subarray(HEADER_BYTES)) };
}

/** Little-endian tokens of `format` in `bytes` (a whole number of tokens), whatever the host's order. */
export function decodeTokens(format: TokenFormat, bytes: Uint8Array): Uint16Array | Uint32Array {
  const count = Math.floor(bytes.length / format.tokenBytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (format.tokenBytes === 2) {
    const tokens = new Uint16Array(count);
    for (let i = 0; i < count; i++) tokens[i] = view.getUint16(2 * i, true);
    return tokens;
  }
  const tokens = new Uint32Array(count);
  for (let i = 0; i < count; i++) tokens[i] = view.getUint32(4 * i, true);
  return tokens;
}

function checkCount(tokens: number): void {
  if (!Number.isInteger(tokens) || tokens < 0 || tokens > MAX_TOKENS) {
    throw new TokenFileError(
      "too-many-tokens",
      `${tokens} tokens: llm.c's header counts from 0 to ${MAX_TOKENS} (an int32)`,
    );
  }
}
