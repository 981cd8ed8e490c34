// Bytes to text. A spec must be UTF-8 text; anything else (a binary, a compressed file, a spec saved as
// UTF-16) gets one clear diagnostic instead of a flood of "unexpected character" errors.
import { pointSpan } from "../ast/span.js";
import { diagnose, type Diagnostic } from "../diagnostics/diagnostic.js";

export type Decoded = { ok: true; text: string } | { ok: false; diagnostic: Diagnostic };

export function decodeSpec(bytes: Uint8Array): Decoded {
  const nul = bytes.indexOf(0);
  if (nul !== -1) {
    return notText(`it contains a NUL byte at offset ${nul}`);
  }
  try {
    let text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    if (text.startsWith("\uFEFF")) text = text.slice(1);
    // A lone carriage return (old Mac line ends) becomes a newline, so every stage counts lines alike.
    text = text.replace(/\r(?!\n)/g, "\n");
    return { ok: true, text };
  } catch {
    const bad = firstInvalidUtf8(bytes);
    return notText(`it is not valid UTF-8 (first bad byte at offset ${bad})`);
  }
}

function notText(why: string): Decoded {
  // Point at the start of the file: the offending byte may sit in a line that cannot be shown.
  return {
    ok: false,
    diagnostic: diagnose("notText", pointSpan("", 0), [why], {
      hint: "a spec is a UTF-8 text file; see examples/ for what one looks like",
    }),
  };
}

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
    i += length;
  }
  return i;
}
