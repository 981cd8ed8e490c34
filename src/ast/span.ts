// Source positions. Lines and columns are 1-based, as editors show them; `end` is exclusive.
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

/** The span of an empty file or of the end of input: a zero-width span at `offset`. */
export function pointSpan(source: string, offset: number): Span {
  const position = positionAt(source, offset);
  return { start: position, end: position };
}

export function positionAt(source: string, offset: number): Position {
  let line = 1;
  let lineStart = 0;
  for (let i = source.indexOf("\n"); i !== -1 && i < offset; i = source.indexOf("\n", i + 1)) {
    line += 1;
    lineStart = i + 1;
  }
  return { offset, line, column: offset - lineStart + 1 };
}
