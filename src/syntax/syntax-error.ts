// One syntax error as a user reads it: at the token the parser stopped on, naming it, with a hint that fits
// where it stands. Line breaks carry no meaning in the language, so neither do they here: the place is the
// token, whatever line it is on.
import type { CstNode, IRecognitionException, IToken } from "chevrotain";
import { describeToken, splitParserMessage } from "../../grammar/parser.js";
import {
  allTokens,
  BLOCK_KEYWORDS,
  Equals,
  Identifier,
  Layer,
  LBrace,
  LBracket,
  Model,
  NumberLiteral,
  Parallel,
  RBracket,
  Run,
  Stack,
  StringLiteral,
  Times,
} from "../../grammar/tokens.js";
import type { Span } from "../ast/span.js";
import { exampleOf, whereKeyBelongs, KEY_ALIASES } from "../spec/key-homes.js";
import { diagnose, type Diagnostic } from "../diagnostics/diagnostic.js";
import { quote } from "../diagnostics/quote.js";
import { nearest } from "../diagnostics/suggest.js";
import { pointSpan } from "./position.js";
import { tokenSpan } from "./tokens.js";

/** The rules that hold settings, innermost first in a rule stack, and how messages name them. */
const BLOCK_RULES: Record<string, string> = {
  layerDecl: "a layer declaration",
  modelBlock: "the `model` block",
  parallelBlock: "the `parallel` block",
  runBlock: "the `run` block",
};

/** The reserved words: the keyword tokens, each of which a longer word is read as a name instead of. */
const KEYWORDS = allTokens.filter((t) => t.LONGER_ALT === Identifier);

const isBlockKeyword = (t: IToken | undefined): boolean =>
  t !== undefined && (t.tokenType === Model || t.tokenType === Parallel || t.tokenType === Run);

export function syntaxDiagnostic(
  source: string,
  tokens: readonly IToken[],
  error: IRecognitionException,
  cst: CstNode | undefined,
): Diagnostic {
  const found = error.token;
  const atEnd = Number.isNaN(found.startOffset);
  const index = atEnd ? tokens.length : tokens.indexOf(found);
  const previous = tokens[index - 1];
  const rules = error.context?.ruleStack ?? [];
  const rule = rules[rules.length - 1] ?? "spec";
  const block = [...rules].reverse().find((r) => r in BLOCK_RULES);
  const { message, expected } = splitParserMessage(error.message);

  let said = message;
  // A value is missing: name the key it is missing for.
  if (rule === "value" && previous?.tokenType === Identifier && tokens[index - 2]?.tokenType !== Times) {
    said = `expected a value for ${quote(previous.image)} but found ${describeToken(found)}`;
  }
  if (rule === "stackItem" && previous?.tokenType === Times) {
    said = `expected a repeat count after \`x\` but found ${describeToken(found)}`;
  }
  let span: Span = atEnd ? pointSpan(source, source.length) : tokenSpan(found);
  const where: Where = { tokens, index, found, rule, block, expected, cst };
  // `x4` read as one name is the mistake, whatever the parser tripped on after it.
  const glued = gluedRepeat(where);
  if (glued !== undefined) {
    span = tokenSpan(glued);
    said = `expected \`x\` and a repeat count but found ${describeToken(glued)}`;
  }
  const reserved = reservedName(where);
  if (reserved !== undefined)
    said = `${describeToken(found)} is a reserved word (a keyword of the spec language) and cannot be a name`;
  const hint = reserved ?? hintFor(where);
  return diagnose("syntax", span, [said], hint === undefined ? {} : { hint });
}

interface Where {
  tokens: readonly IToken[];
  index: number;
  found: IToken;
  rule: string;
  /** The innermost block rule the parser was in; undefined at top level. */
  block: string | undefined;
  expected: string[];
  cst: CstNode | undefined;
}

/**
 * `model x {`, `layer run = ...`: a keyword where a block's or a layer's name goes (the header goes on with
 * its `{` or `=`, so the word was meant as the name and not a missing one). The hint suggests a name.
 */
function reservedName({ tokens, index, found }: Where): string | undefined {
  if (!KEYWORDS.includes(found.tokenType)) return undefined;
  const header = tokens[index - 1]?.tokenType;
  const next = tokens[index + 1]?.tokenType;
  const suggestion =
    header === Model && next === LBrace
      ? `m_${found.image}`
      : header === Layer && next === Equals
        ? `L_${found.image}`
        : undefined;
  if (suggestion === undefined) return undefined;
  const words = KEYWORDS.map((t) => t.LABEL ?? t.name);
  const list = `${words.slice(0, -1).join(", ")} and ${words[words.length - 1]}`;
  return `${list} are reserved; choose another name, for example \`${suggestion}\``;
}

/** The first hint that applies, most specific first; undefined when none would be sure to be true. */
function hintFor(w: Where): string | undefined {
  return (
    repeatWithoutSpace(w) ??
    misplacedKeyword(w) ??
    quotedKey(w) ??
    keyAtTopLevel(w) ??
    separatorSlip(w) ??
    misspelledKeyword(w) ??
    keyWithoutValue(w) ??
    secondValue(w) ??
    missingValue(w) ??
    missingRepeat(w) ??
    declarationShape(w) ??
    listSeparator(w) ??
    blockHint(w)
  );
}

/** `stack [L, S] x4`: the lexer reads `x4` as one name, just before the error or as the token it stops on. */
function gluedRepeat({ tokens, index }: Where): IToken | undefined {
  for (let i = Math.max(0, index - 2); i <= index && i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.tokenType !== Identifier || !/^x\d+$/.test(t.image)) continue;
    const before = tokens[i - 1];
    if (before?.tokenType === RBracket || (before?.tokenType === Identifier && inStack(tokens, i - 1)))
      return t;
  }
  return undefined;
}

function repeatWithoutSpace(where: Where): string | undefined {
  const glued = gluedRepeat(where);
  return glued === undefined ? undefined : `write the repeat with a space: \`x ${glued.image.slice(1, 41)}\``;
}

/** Whether the name at `i` is a stack item: after `stack`, `[` or `,` inside a stack. */
function inStack(tokens: readonly IToken[], i: number): boolean {
  for (let k = i - 1; k >= 0; k--) {
    const t = tokens[k]!;
    if (t.tokenType === Stack) return true;
    if (t.image === "," || t.tokenType === LBracket || t.tokenType === RBracket || t.tokenType === Identifier)
      continue;
    if (t.tokenType === Times || t.tokenType === NumberLiteral) continue;
    return false;
  }
  return false;
}

/** A block inside a block, or `layer` / `stack` outside the `model` block. */
function misplacedKeyword({ found, block }: Where): string | undefined {
  if (isBlockKeyword(found) && block !== undefined) {
    return `a \`${found.image}\` block cannot stand inside ${BLOCK_RULES[block]}: move it after the \`}\` that closes ${block === "layerDecl" ? "the `model` block" : BLOCK_RULES[block]}`;
  }
  if ((found.tokenType === Layer || found.tokenType === Stack) && block !== "modelBlock") {
    const what = found.tokenType === Layer ? "`layer` declarations belong" : "the `stack` belongs";
    return block === "layerDecl"
      ? `${what} in the \`model\` block, not inside a layer's braces`
      : `${what} in the \`model\` block`;
  }
  return undefined;
}

/** `"vocab" 512`: keys are names, not strings. */
function quotedKey({ found, rule, block }: Where): string | undefined {
  if (found.tokenType !== StringLiteral || rule === "value" || rule === "list") return undefined;
  const inner = found.image.slice(1, -1);
  if (!/^[A-Za-z_]\w*$/.test(inner)) return undefined;
  // At top level, also say which block the key goes in.
  const belongs = block === undefined ? whereKeyBelongs(inner) : undefined;
  return `keys are written without quotes: ${quote(inner)}${belongs === undefined ? "" : ` (${belongs})`}`;
}

/** `vocab 512` after a block's `}`: say which block it belongs in. */
function keyAtTopLevel({ found, block, rule }: Where): string | undefined {
  if (block !== undefined || rule === "value" || found.tokenType !== Identifier) return undefined;
  const key = KEY_ALIASES[found.image.toLowerCase()] ?? found.image;
  const belongs = whereKeyBelongs(key);
  if (belongs === undefined) return undefined;
  const alias = key === found.image ? "" : `did you mean ${quote(key)}? `;
  return `${alias}${belongs}: move it inside that block's braces`;
}

/** Commas between settings, `=` after a key. */
function separatorSlip({ found, rule }: Where): string | undefined {
  if (found.image === "," && rule !== "list" && rule !== "stackItem")
    return "settings are separated by spaces or line breaks, not commas";
  if (found.image === "=" && rule !== "layerDecl") return "write a setting as `key value`, without `=`";
  return undefined;
}

/** `modle m {`, `lyaer L = ...`: the nearest word the parser expected. */
function misspelledKeyword({ found, expected }: Where): string | undefined {
  if (expected.length === 0 || found.tokenType !== Identifier) return undefined;
  const guess = nearest(found.image, expected);
  return guess === undefined ? undefined : `did you mean \`${guess}\`?`;
}

/**
 * `heads` followed by `ffn 512`: `heads` took `ffn` as its value and `512` is left over. Said only when
 * the parse really paired the two as a setting, never for `mode bench` followed by `warmup`.
 */
function keyWithoutValue({ tokens, index, found, cst }: Where): string | undefined {
  const value = tokens[index - 1];
  if (value?.tokenType !== Identifier || found.tokenType === Identifier) return undefined;
  const key = settingKeyOf(cst, value);
  if (key === undefined || key !== tokens[index - 2]) return undefined;
  return `does ${quote(key.image)} have a value? it took ${quote(value.image)} as its value`;
}

/** `heads 4 8`: a second value after a complete setting. */
function secondValue({ tokens, index, found, cst }: Where): string | undefined {
  const value = tokens[index - 1];
  if (value === undefined || found.tokenType === Identifier || found.tokenType === StringLiteral)
    return undefined;
  if (found.tokenType !== NumberLiteral) return undefined;
  const key = settingKeyOf(cst, value);
  if (key === undefined) return undefined;
  return `${quote(key.image)} already has its value ${quote(value.image)}; a setting takes one value (a list is written \`[a, b]\`)`;
}

/** A key with nothing after it: show what a value looks like. */
function missingValue({ tokens, index, rule }: Where): string | undefined {
  if (rule !== "value") return undefined;
  const key = tokens[index - 1];
  if (key?.tokenType !== Identifier) return undefined;
  const example = exampleOf(key.image);
  return example === undefined ? undefined : `for example \`${example}\``;
}

/** `stack L x` with nothing after the `x`. */
function missingRepeat({ tokens, index, rule }: Where): string | undefined {
  if (rule !== "stackItem" || tokens[index - 1]?.tokenType !== Times) return undefined;
  return "`x` repeats the item before it: for example `stack [L, L, L, S] x 4`";
}

/** A `model` or `layer` header written differently: show the shape. */
function declarationShape({ rule, tokens, index }: Where): string | undefined {
  // Only for the header, before its `{`: inside the braces the settings are what went wrong.
  const header = tokens.slice(Math.max(0, index - 4), index);
  const keyword = header.map((t) => t.tokenType === Layer || t.tokenType === Model).lastIndexOf(true);
  if (keyword < 0 || header.slice(keyword).some((t) => t.tokenType === LBrace)) return undefined;
  if (rule === "layerDecl")
    return "a layer is declared as `layer NAME = linear_attention { ... }` (or `softmax_attention`)";
  if (rule === "modelBlock") return "the model block is written `model NAME { ... }`";
  return undefined;
}

/** `[0.9 0.95]`: list items are separated by commas. */
function listSeparator({ rule, found }: Where): string | undefined {
  if ((rule === "list" || rule === "stackItem") && found.tokenType !== Layer && found.tokenType !== Stack)
    return "separate the items with commas: `[a, b]`";
  return undefined;
}

function blockHint({ expected, block }: Where): string | undefined {
  if (block !== undefined) return undefined;
  if (expected.length > 0 && expected.every((w) => (BLOCK_KEYWORDS as readonly string[]).includes(w))) {
    return "a spec is made of `model NAME { ... }`, `parallel { ... }` and `run { ... }` blocks";
  }
  return undefined;
}

/** The key token of the setting whose value is `value` in the (possibly partial) tree, if there is one. */
function settingKeyOf(cst: CstNode | undefined, value: IToken): IToken | undefined {
  if (cst === undefined) return undefined;
  const stack: CstNode[] = [cst];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (node.name === "setting") {
      const key = node.children["key"]?.[0] as IToken | undefined;
      const valueNode = node.children["value"]?.[0] as CstNode | undefined;
      const first = valueNode === undefined ? undefined : firstToken(valueNode);
      if (first === value && key !== undefined) return key;
      continue;
    }
    for (const children of Object.values(node.children)) {
      for (const child of children) if ("children" in child) stack.push(child);
    }
  }
  return undefined;
}

function firstToken(node: CstNode): IToken | undefined {
  let best: IToken | undefined;
  for (const children of Object.values(node.children)) {
    for (const child of children) {
      const t = "children" in child ? firstToken(child) : child;
      if (t !== undefined && (best === undefined || t.startOffset < best.startOffset)) best = t;
    }
  }
  return best;
}
