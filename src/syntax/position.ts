// Source positions as users count them: lines from 1, columns from 1 in Unicode code points (a character
// above U+FFFF is one column, as editors show it, not the two UTF-16 units JavaScript strings hold).
// Offsets stay UTF-16 indices into the source string, for slicing.
import type { IToken } from "chevrotain";
import type { Position, Span } from "../ast/span.js";

const HAS_SURROGATE = /[\uD800-\uDFFF]/;

/** Code points in `text` from `from` to `to` (UTF-16 indices). */
export function codePointsBetween(text: string, from: number, to: number): number {
  let count = 0;
  for (let i = from; i < to; i++) {
    const unit = text.charCodeAt(i);
    // A low surrogate that follows a high one is the second half of the same code point.
    if (unit >= 0xdc00 && unit <= 0xdfff && i > from && isHigh(text.charCodeAt(i - 1))) continue;
    count++;
  }
  return count;
}

const isHigh = (unit: number): boolean => unit >= 0xd800 && unit <= 0xdbff;

export function positionAt(source: string, offset: number): Position {
  let line = 1;
  let lineStart = 0;
  for (let i = source.indexOf("\n"); i !== -1 && i < offset; i = source.indexOf("\n", i + 1)) {
    line += 1;
    lineStart = i + 1;
  }
  return { offset, line, column: codePointsBetween(source, lineStart, offset) + 1 };
}

/** A zero-width span at `offset` (the end of input, an empty file). */
export function pointSpan(source: string, offset: number): Span {
  const position = positionAt(source, offset);
  return { start: position, end: position };
}

/**
 * Chevrotain counts columns in UTF-16 units; rewrites the tokens' columns in code points. Only a line
 * holding a character above U+FFFF differs, so a source without one is left alone. Tokens are walked in
 * offset order with a running count, so a megabyte-long line costs one pass.
 */
export function toCodePointColumns(source: string, tokens: readonly IToken[]): void {
  if (!HAS_SURROGATE.test(source)) return;
  const sorted = [...tokens].sort((a, b) => a.startOffset - b.startOffset);
  let at = 0; // UTF-16 index the count has reached
  let lineStart = 0;
  let column = 1; // the column of `at`
  const advance = (to: number): number => {
    for (let i = source.indexOf("\n", at); i !== -1 && i < to; i = source.indexOf("\n", i + 1)) {
      lineStart = i + 1;
      at = lineStart;
      column = 1;
    }
    if (to < at) return codePointsBetween(source, lineStart, to) + 1; // a token inside the last one
    column += codePointsBetween(source, at, to);
    at = to;
    return column;
  };
  for (const token of sorted) {
    const end = token.endOffset ?? token.startOffset;
    token.startColumn = advance(token.startOffset);
    // The end column is that of the token's last code point (inclusive, as chevrotain's is).
    const lastStart = end > token.startOffset && !isHigh(source.charCodeAt(end - 1)) ? end : end - 1;
    if (token.endLine === token.startLine) token.endColumn = advance(Math.max(token.startOffset, lastStart));
    else token.endColumn = codePointsBetween(source, source.lastIndexOf("\n", end) + 1, lastStart) + 1;
  }
}
