import { describe, expect, it } from "vitest";
import {
  checkFileSize,
  decodeHeader,
  decodeTokenFile,
  encodeByteTokens,
  encodeHeader,
  encodeTokenFile,
  GPT2_FORMAT,
  HEADER_BYTES,
  LLAMA3_FORMAT,
  MAX_TOKENS,
  TokenFileError,
  type TokenFileProblem,
} from "./llmc-format.js";

/** The problem `run` throws, or "none". */
function problemOf(run: () => unknown): TokenFileProblem | "none" {
  try {
    run();
    return "none";
  } catch (error) {
    if (error instanceof TokenFileError) return error.problem;
    throw error;
  }
}

/** A header with the given first three int32 words, little-endian, the rest zero. */
function rawHeader(magic: number, version: number, tokens: number): Uint8Array {
  const bytes = new Uint8Array(HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  view.setInt32(0, magic, true);
  view.setInt32(4, version, true);
  view.setInt32(8, tokens, true);
  return bytes;
}

describe("llm.c's token file, written", () => {
  it("puts magic, version and count little-endian in the first three of 256 int32, then one uint16 per byte", () => {
    const file = encodeByteTokens([new TextEncoder().encode("hi"), new Uint8Array([0x0a])]);
    expect(file.length).toBe(1024 + 3 * 2);
    // 20240520 = 0x0134d888; 1; 3 tokens.
    expect([...file.subarray(0, 12)]).toEqual([0x88, 0xd8, 0x34, 0x01, 1, 0, 0, 0, 3, 0, 0, 0]);
    expect(file.subarray(12, 1024).every((b) => b === 0)).toBe(true);
    expect([...file.subarray(1024)]).toEqual([0x68, 0, 0x69, 0, 0x0a, 0]);
  });

  it("writes every byte value as its own token, binary bytes included", () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => 255 - i);
    const { header, tokens } = decodeTokenFile(encodeByteTokens([all, all.subarray(0, 2)]));
    expect(header).toEqual({ format: GPT2_FORMAT, tokens: 258 });
    expect([...tokens]).toEqual([...all, 255, 254]);
  });

  it("writes Llama-3's kind with its own magic and version and uint32 tokens", () => {
    const file = encodeTokenFile(LLAMA3_FORMAT, [128000, 2 ** 32 - 1]);
    expect([...file.subarray(0, 12)]).toEqual([0xa1, 0xd9, 0x34, 0x01, 7, 0, 0, 0, 2, 0, 0, 0]);
    expect([...file.subarray(1024)]).toEqual([0x00, 0xf4, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff]);
  });

  it("refuses a token wider than the format and a count beyond an int32", () => {
    expect(problemOf(() => encodeTokenFile(GPT2_FORMAT, [65535]))).toBe("none");
    expect(problemOf(() => encodeTokenFile(GPT2_FORMAT, [1, 65536]))).toBe("bad-token");
    expect(problemOf(() => encodeTokenFile(GPT2_FORMAT, [-1]))).toBe("bad-token");
    expect(problemOf(() => encodeTokenFile(LLAMA3_FORMAT, [0.5]))).toBe("bad-token");
    expect(problemOf(() => encodeHeader({ format: GPT2_FORMAT, tokens: MAX_TOKENS }))).toBe("none");
    expect(problemOf(() => encodeHeader({ format: GPT2_FORMAT, tokens: MAX_TOKENS + 1 }))).toBe(
      "too-many-tokens",
    );
  });
});

describe("llm.c's token file, read back", () => {
  it("gives back the header and tokens written, for both kinds", () => {
    for (const [format, tokens] of [
      [GPT2_FORMAT, [0, 1, 50256, 65535, 7]],
      [LLAMA3_FORMAT, [128000, 0, 2 ** 31, 2 ** 32 - 1]],
    ] as const) {
      const read = decodeTokenFile(encodeTokenFile(format, tokens));
      expect(read.header).toEqual({ format, tokens: tokens.length });
      expect([...read.tokens]).toEqual(tokens);
    }
  });

  it("reads an empty token list (the size check, not the reader, decides what is too few)", () => {
    expect(decodeTokenFile(encodeTokenFile(GPT2_FORMAT, [])).tokens.length).toBe(0);
  });

  it("says what is wrong with a header it cannot use", () => {
    const fail = (bytes: Uint8Array): TokenFileError => {
      try {
        decodeHeader(bytes);
      } catch (error) {
        if (error instanceof TokenFileError) return error;
      }
      throw new Error("decodeHeader accepted a bad header");
    };
    const short = fail(new Uint8Array(1023));
    expect(short.problem).toBe("short-header");
    expect(short.message).toContain("1023 bytes");

    const text = fail(new TextEncoder().encode("# notes\n".repeat(200)));
    expect(text.problem).toBe("bad-magic");
    expect(text.message).toContain("20240520");
    expect(text.message).toContain("20240801");

    // The "version 2 = uint32" is no file llm.c writes: its uint32 tokens carry magic 20240801.
    const v2 = fail(rawHeader(20240520, 2, 0));
    expect(v2.problem).toBe("bad-version");
    expect(v2.message).toContain("version 2");
    expect(v2.message).toContain("the version is 1");
    expect(fail(rawHeader(20240801, 1, 0)).problem).toBe("bad-version");
    expect(fail(rawHeader(20240520, 1, -5)).problem).toBe("bad-count");
  });

  it("refuses a file cut short or with bytes after the last token, naming both sizes", () => {
    const file = encodeTokenFile(GPT2_FORMAT, [1, 2, 3]);
    const header = decodeHeader(file);
    expect(problemOf(() => checkFileSize(header, file.length))).toBe("none");
    expect(problemOf(() => decodeTokenFile(file.subarray(0, file.length - 1)))).toBe("wrong-size");
    const long = new Uint8Array(file.length + 2);
    long.set(file);
    expect(() => decodeTokenFile(long)).toThrow(
      /1032 bytes, but its header counts 3 tokens of 2 bytes, 1030/,
    );
  });
});
