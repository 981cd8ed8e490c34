// Bytes to text. A spec must be UTF-8 text; anything else (a binary, a compressed file, a spec saved as
// UTF-16) gets one clear diagnostic instead of a flood of "unexpected character" errors, placed at the
// first bad byte.
import type { Span } from "../ast/span.js";
import { diagnose, type Diagnostic } from "../diagnostics/diagnostic.js";
import { positionAt } from "./position.js";

/** Either the text, or one diagnostic with the text as well as it decodes, so its line can be shown. */
export type Decoded = { ok: true; text: string } | { ok: false; diagnostic: Diagnostic; text: string };

export function decodeSpec(bytes: Uint8Array): Decoded {
  const nul = bytes.indexOf(0);
  const invalid = firstInvalidUtf8(bytes);
  if (nul !== -1 && nul < invalid) {
    return notText(bytes, nul, `it contains a NUL byte at byte offset ${nul}`);
  }
  if (invalid < bytes.length) {
    return notText(
      bytes,
      invalid,
      `it is not valid UTF-8 (byte 0x${hex(bytes[invalid]!)} at byte offset ${invalid})`,
    );
  }
  return { ok: true, text: lenient(bytes) };
}

/**
 * The text with every invalid sequence replaced by U+FFFD (and a NUL shown as `?` by the renderer). The
 * byte order mark is dropped and a lone carriage return (old Mac line ends) becomes a newline, so every
 * stage counts lines alike; both keep lengths, so offsets into the valid prefix are the same either way.
 */
function lenient(bytes: Uint8Array): string {
  let text = new TextDecoder("utf-8").decode(bytes);
  if (text.startsWith("\uFEFF")) text = text.slice(1);
  return text.replace(/\r(?!\n)/g, "\n");
}

function notText(bytes: Uint8Array, at: number, why: string): Decoded {
  // Everything before `at` is valid UTF-8, so its decoded length is the bad byte's offset in the text.
  const text = lenient(bytes);
  const offset = lenient(bytes.subarray(0, at)).length;
  const start = positionAt(text, offset);
  // One character wide: the replacement character (or the NUL) the bad byte became.
  const span: Span = { start, end: { ...start, offset: offset + 1, column: start.column + 1 } };
  return {
    ok: false,
    text,
    diagnostic: diagnose("notText", span, [why], {
      hint: "a spec is a UTF-8 text file; see examples/ for what one looks like",
    }),
  };
}

const hex = (byte: number): string => byte.toString(16).toUpperCase().padStart(2, "0");

/** The offset of the first byte that does not start or continue a valid UTF-8 sequence (or the length). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const length = b < 0x80 ? 1 : b >> 5 === 0b110 ? 2 : b >> 4 === 0b1110 ? 3 : b >> 3 === 0b11110 ? 4 : 0;
    if (length === 0) return i;
    for (let k = 1; k < length; k++) {
      const c = bytes[i + k];
      if (c === undefined || c >> 6 !== 0b10) return i;
    }
    if (length > 1 && !wellFormed(bytes, i, length)) return i;
    i += length;
  }
  return i;
}

/** Overlong forms, surrogates and code points past U+10FFFF are not UTF-8 either (TextDecoder agrees). */
function wellFormed(bytes: Uint8Array, i: number, length: number): boolean {
  const b = bytes[i]!;
  const c = bytes[i + 1]!;
  if (length === 2) return b >= 0xc2;
  if (length === 3) {
    if (b === 0xe0) return c >= 0xa0;
    if (b === 0xed) return c < 0xa0;
    return true;
  }
  if (b === 0xf0) return c >= 0x90;
  if (b === 0xf4) return c < 0x90;
  return b < 0xf4;
}
