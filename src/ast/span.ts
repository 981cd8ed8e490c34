// Source positions. Lines and columns are 1-based, as editors show them (columns in code points:
// src/syntax/position.ts computes them); `end` is exclusive.
export interface Position {
  offset: number;
  line: number;
  column: number;
}

export interface Span {
  start: Position;
  end: Position;
}

export function spanCovering(first: Span, last: Span): Span {
  return { start: first.start, end: last.end };
}
