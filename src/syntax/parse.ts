// Text to AST: lexing, bracket balance, parsing, tree building. Each stage stops the pipeline when it finds
// errors, so a user sees the first real cause rather than the errors it would cascade into.
import { laspParser, splitParserMessage } from "../../grammar/parser.js";
import type { IToken } from "chevrotain";
import { BLOCK_KEYWORDS, Identifier } from "../../grammar/tokens.js";
import type { SpecFile } from "../ast/ast.js";
import { pointSpan, type Span } from "../ast/span.js";
import { diagnose, type Diagnostic } from "../diagnostics/diagnostic.js";
import { nearest } from "../diagnostics/suggest.js";
import { AstBuilder } from "./build-ast.js";
import { checkBrackets, lex, tokenSpan } from "./tokens.js";

export interface ParseResult {
  ast?: SpecFile;
  diagnostics: Diagnostic[];
}

// After the first syntax error chevrotain's recovery guesses, and later errors are mostly echoes of it.
const MAX_SYNTAX = 1;

/** Specs are a few kilobytes; past this size a file is not a spec, and lexing it would take seconds. */
export const MAX_SPEC_CHARS = 1024 * 1024;

export function parseSpec(source: string): ParseResult {
  if (source.length > MAX_SPEC_CHARS) {
    return {
      diagnostics: [
        diagnose("tooLarge", pointSpan(source, 0), [source.length, MAX_SPEC_CHARS], {
          hint: "is this the right file? a spec describes a model, its parallel layout and a run in a few dozen lines",
        }),
      ],
    };
  }
  const lexed = lex(source);
  if (lexed.diagnostics.length > 0) return { diagnostics: lexed.diagnostics };
  if (lexed.tokens.length === 0) {
    return {
      diagnostics: [
        diagnose("emptyFile", pointSpan(source, source.length), [], {
          hint: "a spec has a `model` block, a `run` block and usually a `parallel` block; examples/ has some to start from",
        }),
      ],
    };
  }
  const brackets = checkBrackets(lexed.tokens);
  if (brackets.length > 0) return { diagnostics: brackets };

  laspParser.input = lexed.tokens;
  const cst = laspParser.spec();
  if (laspParser.errors.length > 0) {
    const diagnostics = laspParser.errors.slice(0, MAX_SYNTAX).map((error) => {
      const { message, expected } = splitParserMessage(error.message);
      const lineEnd = Number.isNaN(error.token.startOffset)
        ? undefined
        : afterPreviousLine(source, lexed.tokens, error.token);
      const span: Span = Number.isNaN(error.token.startOffset)
        ? endOfInput(source)
        : (lineEnd?.span ?? tokenSpan(error.token));
      const said =
        lineEnd === undefined
          ? message
          : message.replace(/ but found .*$/, ` after ${lineEnd.after}, but the line ends`);
      const found = error.token.image;
      const guess =
        expected.length > 0 && /^[A-Za-z_]\w*$/.test(found) ? nearest(found, expected) : undefined;
      const hint =
        guess !== undefined
          ? `did you mean \`${guess}\`?`
          : (slipHint(lexed.tokens, error.token) ?? syntaxHint(expected));
      return diagnose("syntax", span, [said], hint === undefined ? {} : { hint });
    });
    return { diagnostics };
  }
  const builder = new AstBuilder();
  const blocks = builder.blocks(cst);
  if (builder.diagnostics.length > 0) return { diagnostics: builder.diagnostics };
  const span = { start: { offset: 0, line: 1, column: 1 }, end: pointSpan(source, source.length).end };
  return { ast: { kind: "spec", blocks, comments: lexed.comments, span }, diagnostics: [] };
}

/**
 * Where something is missing at the end of a line (`stack L x` and then a line break), the place to point at
 * is just after the line's last token, not the next line's first.
 */
function afterPreviousLine(
  source: string,
  tokens: readonly IToken[],
  found: IToken,
): { span: Span; after: string } | undefined {
  const previous = tokens[tokens.indexOf(found) - 1];
  if (previous === undefined || previous.endLine === undefined || found.startLine === undefined)
    return undefined;
  if (found.startLine <= previous.endLine) return undefined;
  return { span: pointSpan(source, previous.endOffset! + 1), after: `\`${previous.image}\`` };
}

function endOfInput(source: string): Span {
  return pointSpan(source, source.length);
}

/** Hints for slips users make: commas between settings, `=` after a key, a key left without its value. */
function slipHint(tokens: readonly IToken[], found: IToken): string | undefined {
  if (found.image === ",") return "settings are separated by spaces or line breaks, not commas";
  if (found.image === "=") return "write a setting as `key value`, without `=`";
  const index = tokens.indexOf(found);
  const value = tokens[index - 1];
  const key = tokens[index - 2];
  // `heads` followed by `ffn 512`: `heads` took `ffn` as its value and `512` is left over.
  if (key?.tokenType === Identifier && value?.tokenType === Identifier && found.tokenType !== Identifier) {
    return `does \`${key.image}\` have a value? it took \`${value.image}\` as its value`;
  }
  return undefined;
}

function syntaxHint(expected: string[]): string | undefined {
  if (expected.length > 0 && expected.every((w) => (BLOCK_KEYWORDS as readonly string[]).includes(w))) {
    return "a spec is made of `model NAME { ... }`, `parallel { ... }` and `run { ... }` blocks";
  }
  return undefined;
}
