// Lexing, and the checks that need only the token stream: lexical errors and bracket balance.
import type { ILexingError, IToken } from "chevrotain";
import {
  Identifier,
  laspLexer,
  Layer,
  LBrace,
  LBracket,
  Model,
  Parallel,
  RBrace,
  RBracket,
  Run,
  Stack,
} from "../../grammar/tokens.js";
import type { Comment } from "../ast/ast.js";
import type { Span } from "../ast/span.js";
import { diagnose, type Diagnostic } from "../diagnostics/diagnostic.js";
import { quote } from "../diagnostics/quote.js";
import {
  characterHint,
  CURLY_CLOSING_QUOTES,
  CURLY_OPENING_QUOTES,
  describeCharacters,
} from "./characters.js";
import { codePointsBetween, positionAt, toCodePointColumns } from "./position.js";

export function tokenSpan(token: IToken): Span {
  return {
    start: { offset: token.startOffset, line: token.startLine ?? 1, column: token.startColumn ?? 1 },
    end: {
      offset: (token.endOffset ?? token.startOffset) + 1,
      line: token.endLine ?? token.startLine ?? 1,
      column: (token.endColumn ?? token.startColumn ?? 1) + 1,
    },
  };
}

export interface Lexed {
  tokens: IToken[];
  comments: Comment[];
  diagnostics: Diagnostic[];
}

/** At most this many lexical diagnostics: binary junk would otherwise produce one per byte run. */
const MAX_LEXICAL = 50;

/** Characters no token can start with (outside strings and comments, which the lexer handles). */
const FOREIGN = /[^A-Za-z0-9_\s{}[\],=/"\-.+]+/g;

export function lex(source: string): Lexed {
  // Runs of characters no token can contain are reported here and blanked out before chevrotain sees them:
  // its recovery drops one character at a time, which takes seconds on megabytes of binary junk.
  const foreign = foreignRuns(source);
  if (foreign.length > MAX_LEXICAL) {
    // Mostly not a spec at all: the first runs say enough.
    return {
      tokens: [],
      comments: [],
      diagnostics: foreign.slice(0, MAX_LEXICAL).map((run) => unexpected(source, run)),
    };
  }
  const text = foreign.length === 0 ? source : blank(source, foreign);
  const result = laspLexer.tokenize(text);
  toCodePointColumns(source, [
    ...result.tokens,
    ...(result.groups["comments"] ?? []),
    ...(result.groups["errors"] ?? []),
  ]);
  const diagnostics: Diagnostic[] = foreign.slice(0, MAX_LEXICAL).map((run) => unexpected(source, run));
  for (const error of result.errors.slice(0, MAX_LEXICAL)) {
    // Chevrotain counts columns in UTF-16 units: place the error again in code points.
    const { line, column } = positionAt(source, error.offset);
    diagnostics.push(unexpected(source, { offset: error.offset, length: error.length, line, column }));
  }
  for (const token of result.groups["errors"] ?? []) diagnostics.push(errorToken(token));
  const comments = (result.groups["comments"] ?? []).map((t) => ({ text: t.image, span: tokenSpan(t) }));
  return { tokens: result.tokens, comments, diagnostics: diagnostics.slice(0, MAX_LEXICAL) };
}

interface CharRun {
  offset: number;
  length: number;
  line?: number;
  column?: number;
}

/** Foreign character runs outside strings and comments, with their line and column. */
function foreignRuns(source: string): CharRun[] {
  const runs: CharRun[] = [];
  if (!/[^A-Za-z0-9_\s{}[\],=/"\-.+]/.test(source)) return runs;
  // Strings and comments may hold any character: skip them with the same shapes the lexer uses.
  const skip = /"[^"\\\n\r]*(?:\\.[^"\\\n\r]*)*"?|\/\/[^\n\r]*|\/\*[\s\S]*?(?:\*\/|$)/g;
  let position = 0;
  let line = 1;
  let lineStart = 0;
  const scan = (end: number): void => {
    FOREIGN.lastIndex = position;
    for (let m = FOREIGN.exec(source); m !== null && m.index < end; m = FOREIGN.exec(source)) {
      let length = Math.min(m[0].length, end - m.index);
      // A curly-quoted string is one mistake: the run covers it up to its closing quote on the same line.
      if (CURLY_OPENING_QUOTES.includes(source[m.index]!)) {
        const rest = source.slice(m.index + 1, end).split(/[\r\n]/, 1)[0]!;
        const close = [...CURLY_CLOSING_QUOTES].map((q) => rest.indexOf(q)).filter((i) => i >= 0);
        if (close.length > 0) {
          length = Math.max(length, Math.min(...close) + 2);
          FOREIGN.lastIndex = m.index + length;
        }
      }
      for (
        let i = source.indexOf("\n", lineStart);
        i !== -1 && i < m.index;
        i = source.indexOf("\n", i + 1)
      ) {
        line++;
        lineStart = i + 1;
      }
      runs.push({ offset: m.index, length, line, column: codePointsBetween(source, lineStart, m.index) + 1 });
      if (runs.length > MAX_LEXICAL) return;
    }
  };
  for (let m = skip.exec(source); m !== null; m = skip.exec(source)) {
    if (m[0].length === 0) {
      skip.lastIndex++;
      continue;
    }
    scan(m.index);
    position = m.index + m[0].length;
  }
  scan(source.length);
  return runs;
}

function blank(source: string, runs: readonly CharRun[]): string {
  let out = "";
  let position = 0;
  for (const run of runs) {
    out += source.slice(position, run.offset) + " ".repeat(run.length);
    position = run.offset + run.length;
  }
  return out + source.slice(position);
}

function unexpected(source: string, error: CharRun | ILexingError): Diagnostic {
  // Enough of a long run to show and name its start; the rest is counted, not copied.
  const text = source.slice(error.offset, error.offset + Math.min(error.length, 64));
  const count = codePointsBetween(source, error.offset, error.offset + error.length);
  const line = error.line ?? 1;
  const column = error.column ?? 1;
  const span: Span = {
    start: { offset: error.offset, line, column },
    end: { offset: error.offset + error.length, line, column: column + count },
  };
  const shown = describeCharacters(text);
  return diagnose("unexpectedCharacters", span, [shown, count], {
    hint:
      characterHint(text) ??
      'a spec holds names, numbers, "strings", the signs { } [ ] , = and comments (// or /* */)',
  });
}

function errorToken(token: IToken): Diagnostic {
  const span = tokenSpan(token);
  switch (token.tokenType.name) {
    case "UnterminatedString":
      return diagnose("unterminatedString", span, [], { hint: 'add the closing `"` on the same line' });
    case "UnterminatedComment":
      return diagnose(
        "unterminatedComment",
        {
          start: span.start,
          end: { ...span.start, offset: span.start.offset + 2, column: span.start.column + 2 },
        },
        [],
        {
          hint: "close it with `*/`",
        },
      );
    case "UnquotedPath":
      return diagnose("unquotedPath", span, [token.image], {
        hint: `write it in quotes: ${JSON.stringify(token.image)}`,
      });
    default: {
      const text = token.image.length > 40 ? `${token.image.slice(0, 40)}…` : token.image;
      return diagnose("malformedNumber", span, [text], {
        hint: "numbers look like 2048, 512K, 0.99 or 1e-5 (K, M and G multiply by 1024, 1024² and 1024³)",
      });
    }
  }
}

const CLOSER_OF: Record<string, string> = { "{": "}", "[": "]" };

/** How deep brackets may nest. */
export const MAX_NESTING = 256;

/**
 * Unbalanced brackets are reported before parsing: "`{` of the `model` block is never closed" points at
 * the real cause, where the parser would point at the end of the file.
 */
export function checkBrackets(tokens: readonly IToken[]): Diagnostic[] {
  // Brackets that nest properly are the structure the user wrote: a keyword out of place inside them (a
  // `parallel` block or a `stack` inside `model`'s braces) is the parser's to report, at the keyword.
  if (nestsProperly(tokens)) return [];
  const open: { token: IToken; index: number }[] = [];
  const diagnostics: Diagnostic[] = [];
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index]!;
    const type = token.tokenType;
    // A keyword that cannot stand where the innermost bracket is open shows which bracket was left open:
    // `layer` or `stack` inside a layer's braces or a list, a block keyword inside any bracket.
    const top = open[open.length - 1];
    const insideLayerOrList =
      top !== undefined && (top.token.tokenType === LBracket || tokens[top.index - 4]?.tokenType === Layer);
    const blockKeyword = type === Model || type === Parallel || type === Run;
    if (top !== undefined && blockKeyword) {
      // A whole block inside another (`parallel { ... }` inside `model`) is misplaced, not a sign that the
      // outer one was left open: skip it, and let the parser say where it belongs.
      const end = balancedBlockEnd(tokens, index);
      if (end !== undefined) {
        index = end;
        continue;
      }
    }
    if (top !== undefined && ((insideLayerOrList && (type === Layer || type === Stack)) || blockKeyword)) {
      diagnostics.push(unclosed(tokens, top.token, top.index));
      open.pop();
      if (blockKeyword) open.length = 0; // the new block starts afresh
      continue;
    }
    if (type === LBrace || type === LBracket) {
      open.push({ token, index });
      // Real specs nest a few levels; a runaway nesting would only exhaust the parser's stack.
      if (open.length > MAX_NESTING) {
        return [
          diagnose("tooDeep", tokenSpan(token), [MAX_NESTING], {
            hint: "flatten the stack or list; a spec needs a few levels at most",
          }),
        ];
      }
    } else if (type === RBrace || type === RBracket) {
      const expected = type === RBrace ? "{" : "[";
      const top = open[open.length - 1];
      if (top !== undefined && top.token.image === expected) {
        open.pop();
      } else if (top !== undefined && open.some((o) => o.token.image === expected)) {
        // A closer that skips an open bracket: the inner one is the unclosed one.
        const inner = open.pop()!;
        diagnostics.push(unclosed(tokens, inner.token, inner.index));
        while (open.length > 0 && open[open.length - 1]!.token.image !== expected) open.pop();
        open.pop();
      } else {
        diagnostics.push(
          diagnose("unmatchedClose", tokenSpan(token), [token.image, expected], {
            hint: `remove it, or add the \`${expected}\` it should close`,
          }),
        );
      }
    }
    if (diagnostics.length >= MAX_LEXICAL) return diagnostics;
  }
  for (const { token, index } of open.slice(0, MAX_LEXICAL - diagnostics.length))
    diagnostics.push(unclosed(tokens, token, index));
  return diagnostics;
}

/**
 * The index of the `}` closing the block that the keyword at `at` starts (`parallel {`, `model NAME {`), when
 * its brackets nest properly and hold no other block keyword; undefined otherwise.
 */
function balancedBlockEnd(tokens: readonly IToken[], at: number): number | undefined {
  let i = at + 1;
  if (tokens[at]!.tokenType === Model && tokens[i]?.tokenType === Identifier) i++;
  if (tokens[i]?.tokenType !== LBrace) return undefined;
  const open: string[] = [];
  for (; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.tokenType === LBrace || t.tokenType === LBracket) open.push(t.image);
    else if (t.tokenType === RBrace || t.tokenType === RBracket) {
      if (open.pop() !== CLOSER_OPENER[t.image]) return undefined;
      if (open.length === 0) return i;
    } else if (t.tokenType === Model || t.tokenType === Parallel || t.tokenType === Run) return undefined;
  }
  return undefined;
}

const CLOSER_OPENER: Record<string, string> = { "}": "{", "]": "[" };

/** Whether every bracket is closed by the right closer, no deeper than MAX_NESTING. */
function nestsProperly(tokens: readonly IToken[]): boolean {
  const open: string[] = [];
  for (const t of tokens) {
    if (t.tokenType === LBrace || t.tokenType === LBracket) {
      open.push(t.image);
      if (open.length > MAX_NESTING) return false;
    } else if (
      (t.tokenType === RBrace || t.tokenType === RBracket) &&
      open.pop() !== CLOSER_OPENER[t.image]
    ) {
      return false;
    }
  }
  return open.length === 0;
}

function unclosed(tokens: readonly IToken[], token: IToken, index: number): Diagnostic {
  const closer = CLOSER_OF[token.image]!;
  return diagnose("unclosed", tokenSpan(token), [token.image, describeOpener(tokens, index)], {
    hint: `add \`${closer}\` where it ends`,
  });
}

/** What a bracket opens, in words: "the `model` block", "layer `L`", "this list". */
function describeOpener(tokens: readonly IToken[], index: number): string {
  const token = tokens[index]!;
  if (token.tokenType === LBracket) return "this list";
  const before = tokens[index - 1];
  const twoBefore = tokens[index - 2];
  if (
    before !== undefined &&
    ["model", "parallel", "run"].includes(before.image) &&
    before.tokenType !== Identifier
  ) {
    return `the \`${before.image}\` block`;
  }
  if (twoBefore?.tokenType.name === "Model") return "the `model` block";
  const layerAt = tokens[index - 4];
  if (layerAt?.tokenType === Layer) return `layer ${quote(tokens[index - 3]!.image)}`;
  return "this block";
}
