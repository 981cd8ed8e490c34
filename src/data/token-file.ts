// llm.c token files on disk (the format: llmc-format.ts), read without loading them whole: the header and
// the file's size first, then, where asked, the tokens a chunk at a time. File-system errors (ENOENT, EISDIR,
// EACCES) pass through as they are; a file that is not a valid token file is a TokenFileError.
import { open, type FileHandle } from "node:fs/promises";
import {
  checkFileSize,
  decodeHeader,
  decodeTokens,
  HEADER_BYTES,
  TokenFileError,
  type TokenFileHeader,
} from "./llmc-format.js";

/** The header of the token file at `path`, checked against the file's size. */
export async function readTokenFileHeader(path: string): Promise<TokenFileHeader> {
  const file = await open(path, "r");
  try {
    const size = (await file.stat()).size;
    const bytes = new Uint8Array(Math.min(size, HEADER_BYTES));
    await readFully(file, bytes, 0);
    const header = decodeHeader(bytes);
    checkFileSize(header, size);
    return header;
  } finally {
    await file.close();
  }
}

export interface TokenOutOfRange {
  /** Its position among the tokens (0 is the first after the header). */
  index: number;
  token: number;
}

/**
 * The first token of the file at `path` that is `vocab` or more, or undefined when every token is below; with
 * `limit`, among the first `limit` tokens only.
 */
export async function findTokenOutOfRange(
  path: string,
  header: TokenFileHeader,
  vocab: number,
  chunkTokens = 1 << 20,
  limit = Infinity,
): Promise<TokenOutOfRange | undefined> {
  const width = header.format.tokenBytes;
  const end = Math.min(header.tokens, limit);
  const buffer = new Uint8Array(Math.min(chunkTokens, Math.max(end, 1)) * width);
  const file = await open(path, "r");
  try {
    for (let first = 0; first < end; first += chunkTokens) {
      const count = Math.min(chunkTokens, end - first);
      const bytesRead = await readFully(
        file,
        buffer.subarray(0, count * width),
        HEADER_BYTES + first * width,
      );
      // The size was checked with the header; a file cut short since is no token file any more.
      if (bytesRead < count * width) {
        throw new TokenFileError(
          "wrong-size",
          `ends inside token ${first + Math.floor(bytesRead / width)} of the ${header.tokens} its header counts (truncated while being read?)`,
        );
      }
      const tokens = decodeTokens(header.format, buffer.subarray(0, count * width));
      const at = tokens.findIndex((token) => token >= vocab);
      if (at >= 0) return { index: first + at, token: tokens[at]! };
    }
    return undefined;
  } finally {
    await file.close();
  }
}

/** Fills `into` from `position` on, stopping early only at the end of the file; the bytes read. */
async function readFully(file: FileHandle, into: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await file.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}
