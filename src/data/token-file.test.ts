import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeTokenFile, GPT2_FORMAT, LLAMA3_FORMAT, TokenFileError } from "./llmc-format.js";
import { findTokenOutOfRange, readTokenFileHeader } from "./token-file.js";

let dir = "";
let count = 0;
const file = (bytes: Uint8Array): string => {
  const path = join(dir, `tokens-${++count}.bin`);
  writeFileSync(path, bytes);
  return path;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "lasp-token-file-"));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("a token file on disk", () => {
  it("has its header read and checked against the file's size", async () => {
    const path = file(encodeTokenFile(LLAMA3_FORMAT, [1, 2, 3, 4, 5]));
    expect(await readTokenFileHeader(path)).toEqual({ format: LLAMA3_FORMAT, tokens: 5 });
  });

  it("is refused when cut short, with the reason as a TokenFileError", async () => {
    const whole = encodeTokenFile(GPT2_FORMAT, [1, 2, 3]);
    const error = await readTokenFileHeader(file(whole.subarray(0, whole.length - 2))).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TokenFileError);
    expect((error as TokenFileError).problem).toBe("wrong-size");
    expect((error as TokenFileError).message).toContain("truncated");
    const empty = await readTokenFileHeader(file(new Uint8Array(0))).catch((e: unknown) => e);
    expect((empty as TokenFileError).problem).toBe("short-header");
  });

  it("passes the file system's own errors through (a missing file stays ENOENT)", async () => {
    await expect(readTokenFileHeader(join(dir, "missing.bin"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("finds the first token at or over the vocabulary, a chunk at a time, and its position", async () => {
    const tokens = [5, 255, 0, 17, 9, 300, 256, 1];
    const path = file(encodeTokenFile(GPT2_FORMAT, tokens));
    const header = await readTokenFileHeader(path);
    // Chunks of 1, 3 and many tokens: the position counts across chunk boundaries.
    for (const chunk of [1, 3, 1 << 20]) {
      expect(await findTokenOutOfRange(path, header, 256, chunk)).toEqual({ index: 5, token: 300 });
      expect(await findTokenOutOfRange(path, header, 301, chunk)).toBeUndefined();
    }
    expect(await findTokenOutOfRange(path, header, 10, 3)).toEqual({ index: 1, token: 255 });
  });
});
