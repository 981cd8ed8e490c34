// The `.lasp` parser: a chevrotain CstParser. It knows the block structure (model, parallel, run, layer
// declarations, the stack) and reads every setting generically as `key value`; which keys exist and what
// values they take is the checker's job, so a misspelled key gets "unknown key, did you mean ..." rather
// than a syntax error. grammar/README.md writes the same grammar out in EBNF.
import type { IParserErrorMessageProvider, IToken, TokenType } from "chevrotain";
import { CstParser, EOF } from "./chevrotain.js";
import {
  allTokens,
  Comma,
  Equals,
  Identifier,
  Layer,
  LBrace,
  LBracket,
  Model,
  NumberLiteral,
  Parallel,
  RBrace,
  RBracket,
  Run,
  Stack,
  StringLiteral,
  Times,
} from "./tokens.js";

/** How a token is named in messages: its label, or its text in backquotes. */
export function describeToken(token: IToken): string {
  if (token.tokenType === EOF) return "the end of the file";
  const text = token.image.length > 40 ? `${token.image.slice(0, 40)}…` : token.image;
  // Control characters (a string literal may hold them) are shown escaped: they would garble the terminal,
  // and one of them separates a message from its expected words (EXPECTED_SEPARATOR).
  return `\`${text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)}\``;
}

function labelOf(type: TokenType): string {
  return type === EOF ? "the end of the file" : (type.LABEL ?? type.name);
}

function joinAlternatives(labels: string[]): string {
  const unique = [...new Set(labels)];
  if (unique.length <= 1) return unique[0] ?? "nothing";
  return `${unique.slice(0, -1).join(", ")} or ${unique[unique.length - 1]}`;
}

const BLOCK_TOKENS = [Model, Parallel, Run];

/** What each rule is, for messages such as "expected a value for the setting". */
const RULE_MEANING: Record<string, string> = {
  spec: "a block (`model`, `parallel` or `run`)",
  modelEntry: "a setting, a `layer` declaration or the `stack`",
  value: "a value (a number, a word, a string or a list)",
  stackItem: "a layer name or a `[` group",
};

/**
 * Syntax-error messages. The expected tokens also travel after a separator so that the diagnostics layer can
 * suggest the nearest expected word; `splitParserMessage` takes them apart again.
 */
export const EXPECTED_SEPARATOR = "\u0001";

export function splitParserMessage(message: string): { message: string; expected: string[] } {
  // The list is the last part (JSON escapes the separator inside it).
  const at = message.lastIndexOf(EXPECTED_SEPARATOR);
  if (at < 0) return { message, expected: [] };
  return { message: message.slice(0, at), expected: JSON.parse(message.slice(at + 1)) as string[] };
}

function withExpected(message: string, expected: TokenType[]): string {
  const words = expected.map((t) => t.LABEL ?? "").filter((l) => /^`[a-z_]+`$/.test(l));
  return `${message}${EXPECTED_SEPARATOR}${JSON.stringify(words.map((w) => w.slice(1, -1)))}`;
}

/**
 * What may come where a closing bracket was expected: the loop before it ended because the token could not
 * start another entry, so the entries are expected as much as the bracket.
 */
const CLOSING_MEANING: Record<string, { words: string; tokens: TokenType[] }> = {
  modelBlock: {
    words: "a setting, a `layer` declaration, the `stack` or `}`",
    tokens: [Layer, Stack, RBrace],
  },
  layerDecl: { words: "a setting or `}`", tokens: [RBrace] },
  parallelBlock: { words: "a setting or `}`", tokens: [RBrace] },
  runBlock: { words: "a setting or `}`", tokens: [RBrace] },
  list: { words: "`,` or `]`", tokens: [Comma, RBracket] },
  stackItem: { words: "`,` or `]`", tokens: [Comma, RBracket] },
};

const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage({ expected, actual, ruleName }) {
    const closing = CLOSING_MEANING[ruleName];
    if (closing !== undefined && (expected === RBrace || expected === RBracket)) {
      return withExpected(`expected ${closing.words} but found ${describeToken(actual)}`, closing.tokens);
    }
    // The top rule ends in "expected the end of the file": what it really wanted is another block.
    if (expected === EOF && ruleName === "spec") {
      return withExpected(
        `expected ${RULE_MEANING["spec"]} but found ${describeToken(actual)}`,
        BLOCK_TOKENS,
      );
    }
    return withExpected(`expected ${labelOf(expected)} but found ${describeToken(actual)}`, [expected]);
  },
  buildNotAllInputParsedMessage({ firstRedundant }) {
    return withExpected(
      `expected ${RULE_MEANING["spec"]} but found ${describeToken(firstRedundant)}`,
      BLOCK_TOKENS,
    );
  },
  buildNoViableAltMessage({ expectedPathsPerAlt, actual, ruleName }) {
    const firsts = expectedPathsPerAlt.flatMap((alt) => alt.map((path) => path[0]!));
    const wanted = RULE_MEANING[ruleName] ?? joinAlternatives(firsts.map(labelOf));
    return withExpected(`expected ${wanted} but found ${describeToken(actual[0]!)}`, firsts);
  },
  buildEarlyExitMessage({ expectedIterationPaths, actual, ruleName }) {
    const firsts = expectedIterationPaths.map((path) => path[0]!);
    const wanted = RULE_MEANING[ruleName] ?? joinAlternatives(firsts.map(labelOf));
    return withExpected(`expected ${wanted} but found ${describeToken(actual[0]!)}`, firsts);
  },
};

export class LaspParser extends CstParser {
  constructor() {
    super(allTokens, { errorMessageProvider: messages, recoveryEnabled: true, nodeLocationTracking: "full" });
    this.performSelfAnalysis();
  }

  // spec = { modelBlock | parallelBlock | runBlock } ;
  public spec = this.RULE("spec", () => {
    this.MANY(() => {
      this.OR([
        { ALT: () => this.SUBRULE(this.modelBlock) },
        { ALT: () => this.SUBRULE(this.parallelBlock) },
        { ALT: () => this.SUBRULE(this.runBlock) },
      ]);
    });
  });

  // modelBlock = "model" name "{" { modelEntry } "}" ;
  public modelBlock = this.RULE("modelBlock", () => {
    this.CONSUME(Model);
    this.CONSUME(Identifier, { LABEL: "name" });
    this.CONSUME(LBrace);
    this.MANY(() => this.SUBRULE(this.modelEntry));
    this.CONSUME(RBrace);
  });

  // modelEntry = layerDecl | stackDecl | setting ;
  public modelEntry = this.RULE("modelEntry", () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.layerDecl) },
      { ALT: () => this.SUBRULE(this.stackDecl) },
      { ALT: () => this.SUBRULE(this.setting) },
    ]);
  });

  // layerDecl = "layer" name "=" kind "{" { setting } "}" ;
  public layerDecl = this.RULE("layerDecl", () => {
    this.CONSUME(Layer);
    this.CONSUME(Identifier, { LABEL: "name" });
    this.CONSUME(Equals);
    this.CONSUME2(Identifier, { LABEL: "kind" });
    this.CONSUME(LBrace);
    this.MANY(() => this.SUBRULE(this.setting));
    this.CONSUME(RBrace);
  });

  // stackDecl = "stack" stackSeq ;
  public stackDecl = this.RULE("stackDecl", () => {
    this.CONSUME(Stack);
    this.SUBRULE(this.stackSeq);
  });

  // stackSeq = stackItem { "," stackItem } ;
  public stackSeq = this.RULE("stackSeq", () => {
    this.SUBRULE(this.stackItem);
    this.MANY(() => {
      this.CONSUME(Comma);
      this.SUBRULE2(this.stackItem);
    });
  });

  // stackItem = ( name | "[" stackSeq "]" ) [ "x" number ] ;
  public stackItem = this.RULE("stackItem", () => {
    this.OR([
      { ALT: () => this.CONSUME(Identifier, { LABEL: "name" }) },
      {
        ALT: () => {
          this.CONSUME(LBracket);
          this.SUBRULE(this.stackSeq);
          this.CONSUME(RBracket);
        },
      },
    ]);
    this.OPTION(() => {
      this.CONSUME(Times);
      this.CONSUME(NumberLiteral, { LABEL: "repeat" });
    });
  });

  // parallelBlock = "parallel" "{" { setting } "}" ;
  public parallelBlock = this.RULE("parallelBlock", () => {
    this.CONSUME(Parallel);
    this.CONSUME(LBrace);
    this.MANY(() => this.SUBRULE(this.setting));
    this.CONSUME(RBrace);
  });

  // runBlock = "run" "{" { setting } "}" ;
  public runBlock = this.RULE("runBlock", () => {
    this.CONSUME(Run);
    this.CONSUME(LBrace);
    this.MANY(() => this.SUBRULE(this.setting));
    this.CONSUME(RBrace);
  });

  // setting = key value ;
  public setting = this.RULE("setting", () => {
    this.CONSUME(Identifier, { LABEL: "key" });
    this.SUBRULE(this.value);
  });

  // value = number | word | string | list ;
  public value = this.RULE("value", () => {
    this.OR([
      { ALT: () => this.CONSUME(NumberLiteral) },
      { ALT: () => this.CONSUME(Identifier, { LABEL: "word" }) },
      { ALT: () => this.CONSUME(StringLiteral) },
      { ALT: () => this.SUBRULE(this.list) },
    ]);
  });

  // list = "[" [ value { "," value } ] "]" ;
  public list = this.RULE("list", () => {
    this.CONSUME(LBracket);
    this.OPTION(() => {
      this.SUBRULE(this.value);
      this.MANY(() => {
        this.CONSUME(Comma);
        this.SUBRULE2(this.value);
      });
    });
    this.CONSUME(RBracket);
  });
}

/** One parser instance serves every parse: chevrotain parsers are reusable by resetting `input`. */
export const laspParser = new LaspParser();
