// Text to AST: lexing, bracket balance, parsing, tree building. Each stage stops the pipeline when it finds
// errors, so a user sees the first real cause rather than the errors it would cascade into.
import { laspParser } from "../../grammar/parser.js";
import type { SpecFile } from "../ast/ast.js";
import { diagnose, sortDiagnostics, type Diagnostic } from "../diagnostics/diagnostic.js";
import { AstBuilder } from "./build-ast.js";
import { pointSpan } from "./position.js";
import { syntaxDiagnostic } from "./syntax-error.js";
import { checkBrackets, lex } from "./tokens.js";

export interface ParseResult {
  ast?: SpecFile;
  diagnostics: Diagnostic[];
}

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
  if (lexed.diagnostics.length > 0) return { diagnostics: sortDiagnostics(lexed.diagnostics) };
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
  if (brackets.length > 0) return { diagnostics: sortDiagnostics(brackets) };

  laspParser.input = lexed.tokens;
  const cst = laspParser.spec();
  const first = laspParser.errors[0];
  if (first !== undefined) {
    // After the first syntax error chevrotain's recovery guesses, and later errors are mostly echoes of it.
    return { diagnostics: [syntaxDiagnostic(source, lexed.tokens, first, cst)] };
  }
  const builder = new AstBuilder();
  const blocks = builder.blocks(cst);
  if (builder.diagnostics.length > 0) return { diagnostics: builder.diagnostics };
  const span = { start: { offset: 0, line: 1, column: 1 }, end: pointSpan(source, source.length).end };
  return { ast: { kind: "spec", blocks, comments: lexed.comments, span }, diagnostics: [] };
}
