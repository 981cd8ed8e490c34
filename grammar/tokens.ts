// The tokens of the `.lasp` language. Every token carries a human `label`: it is what diagnostics print
// ("expected `}` but found `hidden`"), so labels are written the way a user would write the token.
import type { TokenType } from "chevrotain";
import { createToken, Lexer } from "./chevrotain.js";

export const WhiteSpace = createToken({
  name: "WhiteSpace",
  pattern: /[ \t\r\n]+/,
  group: Lexer.SKIPPED,
  label: "white space",
});

// Comments go to their own group: the parser never sees them, the formatter keeps them.
export const LineComment = createToken({
  name: "LineComment",
  pattern: /\/\/[^\n\r]*/,
  group: "comments",
  label: "a comment",
});
export const BlockComment = createToken({
  name: "BlockComment",
  pattern: /\/\*[\s\S]*?\*\//,
  group: "comments",
  label: "a comment",
  line_breaks: true,
});

// Error tokens: they match what a user most often gets wrong, so the front end can say exactly what is
// wrong instead of "unexpected character". The checker turns each into a diagnostic.
export const UnterminatedComment = createToken({
  name: "UnterminatedComment",
  pattern: /\/\*[\s\S]*/,
  group: "errors",
  label: "an unterminated comment",
  line_breaks: true,
});
export const UnterminatedString = createToken({
  name: "UnterminatedString",
  pattern: /"[^"\\\n\r]*(?:\\.[^"\\\n\r]*)*/,
  group: "errors",
  label: "an unterminated string",
});
// A path written without quotes (`data/train.bin`, `./val.bin`, `/data/x`): a name or `.`, `..`, `~` or `/`
// (not a comment's `//` or `/*`) followed by `/` or a `.` and more. A plain name never matches.
export const UnquotedPath = createToken({
  name: "UnquotedPath",
  pattern: /(?:\.{1,2}\/|~\/|\/(?![/*])|[A-Za-z_][\w-]*(?=[/.][\w~-]))[\w.~/-]*/,
  group: "errors",
  label: "a path without quotes",
});
// An exponent's sign inside counts too: `1e-1x` is one malformed number, not `1e-1` and then `x`.
export const MalformedNumber = createToken({
  name: "MalformedNumber",
  pattern: /-?\d(?:[eE][+-]|[\w.])*/,
  group: "errors",
  label: "a malformed number",
});

// Strings are written as an unrolled loop (runs of plain characters between escapes): the alternation form
// recurses once per character in V8's regex engine and overflows the stack on a 10 MB string.
export const StringLiteral = createToken({
  name: "StringLiteral",
  pattern: /"[^"\\\n\r]*(?:\\.[^"\\\n\r]*)*"/,
  label: "a string",
});

// 512K, 1M, 0.99, 1e-5, 5e5. Size suffixes K, M, G are powers of 1024 (512K = 524288 tokens), as
// long-context lengths are usually written. A longer run of word characters is a MalformedNumber.
export const NumberLiteral = createToken({
  name: "NumberLiteral",
  pattern: /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[KMGkmg]?/,
  longer_alt: MalformedNumber,
  label: "a number",
});

export const Identifier = createToken({
  name: "Identifier",
  pattern: /[A-Za-z_][A-Za-z0-9_]*/,
  label: "a name",
});

function keyword(word: string, name: string): TokenType {
  return createToken({ name, pattern: new RegExp(word), longer_alt: Identifier, label: `\`${word}\`` });
}

export const Model = keyword("model", "Model");
export const Parallel = keyword("parallel", "Parallel");
export const Run = keyword("run", "Run");
export const Layer = keyword("layer", "Layer");
export const Stack = keyword("stack", "Stack");
export const Times = keyword("x", "Times");

export const LBrace = createToken({ name: "LBrace", pattern: /\{/, label: "`{`" });
export const RBrace = createToken({ name: "RBrace", pattern: /\}/, label: "`}`" });
export const LBracket = createToken({ name: "LBracket", pattern: /\[/, label: "`[`" });
export const RBracket = createToken({ name: "RBracket", pattern: /\]/, label: "`]`" });
export const Comma = createToken({ name: "Comma", pattern: /,/, label: "`,`" });
export const Equals = createToken({ name: "Equals", pattern: /=/, label: "`=`" });

/** The block keywords, in the order the examples write the blocks. */
export const BLOCK_KEYWORDS = ["model", "parallel", "run"] as const;

// Order matters: comments before anything starting with `/`, terminated forms before their error forms,
// keywords before Identifier.
export const allTokens: TokenType[] = [
  WhiteSpace,
  BlockComment,
  UnterminatedComment,
  LineComment,
  StringLiteral,
  UnterminatedString,
  UnquotedPath,
  NumberLiteral,
  MalformedNumber,
  Model,
  Parallel,
  Run,
  Layer,
  Stack,
  Times,
  Identifier,
  LBrace,
  RBrace,
  LBracket,
  RBracket,
  Comma,
  Equals,
];

export const laspLexer = new Lexer(allTokens, {
  positionTracking: "full",
  ensureOptimizations: false,
});
