// CST (chevrotain's generic tree) to the typed AST. Runs only on a parse without errors, so every child the
// grammar requires is present.
import type { CstNode, IToken } from "chevrotain";
import type {
  Block,
  Ident,
  LayerDecl,
  ModelBlock,
  ModelEntry,
  NumberValue,
  ParallelBlock,
  RunBlock,
  Setting,
  StackDecl,
  StackGroup,
  StackItem,
  Value,
} from "../ast/ast.js";
import { spanCovering, type Span } from "../ast/span.js";
import { diagnose, type Diagnostic } from "../diagnostics/diagnostic.js";
import { tokenSpan } from "./tokens.js";

const SUFFIX: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** The numeric value of a number literal, or undefined when it does not fit a double. */
export function numberLiteralValue(text: string): number | undefined {
  const last = text[text.length - 1]!.toLowerCase();
  const multiplier = SUFFIX[last] ?? 1;
  const digits = multiplier === 1 ? text : text.slice(0, -1);
  const value = Number(digits) * multiplier;
  return Number.isFinite(value) ? value : undefined;
}

type Children = Record<string, (CstNode | IToken)[] | undefined>;

const nodes = (children: Children, key: string): CstNode[] => (children[key] ?? []) as CstNode[];
const tokens = (children: Children, key: string): IToken[] => (children[key] ?? []) as IToken[];
const node = (children: Children, key: string): CstNode => nodes(children, key)[0]!;
const token = (children: Children, key: string): IToken => tokens(children, key)[0]!;

/** Children of a node in source order, whatever their key. */
function inOrder(children: Children): (CstNode | IToken)[] {
  return Object.values(children)
    .flatMap((list) => list ?? [])
    .sort((a, b) => start(a) - start(b));
}

function start(element: CstNode | IToken): number {
  return "name" in element && "children" in element
    ? element.location!.startOffset
    : (element as IToken).startOffset;
}

function isToken(element: CstNode | IToken): element is IToken {
  return "tokenType" in element;
}

export class AstBuilder {
  readonly diagnostics: Diagnostic[] = [];

  blocks(spec: CstNode): Block[] {
    const children = spec.children as Children;
    const all = [
      ...nodes(children, "modelBlock").map((n) => this.modelBlock(n)),
      ...nodes(children, "parallelBlock").map((n) => this.settingsBlock(n, "parallel")),
      ...nodes(children, "runBlock").map((n) => this.settingsBlock(n, "run")),
    ];
    return all.sort((a, b) => a.span.start.offset - b.span.start.offset);
  }

  private ident(t: IToken): Ident {
    return { kind: "ident", name: t.image, span: tokenSpan(t) };
  }

  private enclosing(children: Children, first: string, last: string): Span {
    return spanCovering(tokenSpan(token(children, first)), tokenSpan(token(children, last)));
  }

  private modelBlock(cst: CstNode): ModelBlock {
    const c = cst.children as Children;
    const entries = nodes(c, "modelEntry").map((entry): ModelEntry => {
      const e = entry.children as Children;
      if (e["layerDecl"]) return this.layerDecl(node(e, "layerDecl"));
      if (e["stackDecl"]) return this.stackDecl(node(e, "stackDecl"));
      return this.setting(node(e, "setting"));
    });
    return {
      kind: "model",
      name: this.ident(token(c, "name")),
      entries,
      keyword: tokenSpan(token(c, "Model")),
      span: this.enclosing(c, "Model", "RBrace"),
    };
  }

  private settingsBlock(cst: CstNode, kind: "parallel" | "run"): ParallelBlock | RunBlock {
    const c = cst.children as Children;
    const keywordKey = kind === "parallel" ? "Parallel" : "Run";
    return {
      kind,
      settings: nodes(c, "setting").map((s) => this.setting(s)),
      keyword: tokenSpan(token(c, keywordKey)),
      span: this.enclosing(c, keywordKey, "RBrace"),
    };
  }

  private layerDecl(cst: CstNode): LayerDecl {
    const c = cst.children as Children;
    return {
      kind: "layer",
      name: this.ident(token(c, "name")),
      layerKind: this.ident(token(c, "kind")),
      settings: nodes(c, "setting").map((s) => this.setting(s)),
      span: this.enclosing(c, "Layer", "RBrace"),
    };
  }

  private stackDecl(cst: CstNode): StackDecl {
    const c = cst.children as Children;
    const items = this.stackSeq(node(c, "stackSeq"));
    return {
      kind: "stack",
      items,
      span: spanCovering(tokenSpan(token(c, "Stack")), items[items.length - 1]!.span),
    };
  }

  private stackSeq(cst: CstNode): StackItem[] {
    return nodes(cst.children as Children, "stackItem").map((i) => this.stackItem(i));
  }

  private stackItem(cst: CstNode): StackItem {
    const c = cst.children as Children;
    let target: Ident | StackGroup;
    if (c["name"]) {
      target = this.ident(token(c, "name"));
    } else {
      target = {
        kind: "group",
        items: this.stackSeq(node(c, "stackSeq")),
        span: this.enclosing(c, "LBracket", "RBracket"),
      };
    }
    const item: StackItem = { kind: "item", target, span: target.span };
    if (c["repeat"]) {
      item.repeat = this.number(token(c, "repeat"));
      item.span = spanCovering(target.span, item.repeat.span);
    }
    return item;
  }

  private setting(cst: CstNode): Setting {
    const c = cst.children as Children;
    const key = this.ident(token(c, "key"));
    const value = this.value(node(c, "value"));
    return { kind: "setting", key, value, span: spanCovering(key.span, value.span) };
  }

  private value(cst: CstNode): Value {
    const c = cst.children as Children;
    const [only] = inOrder(c);
    if (only === undefined) throw new Error("value without children");
    if (!isToken(only)) return this.list(only);
    switch (only.tokenType.name) {
      case "NumberLiteral":
        return this.number(only);
      case "StringLiteral":
        return { kind: "string", value: unquote(only.image), span: tokenSpan(only) };
      default:
        return { kind: "word", name: only.image, span: tokenSpan(only) };
    }
  }

  private list(cst: CstNode): Value {
    const c = cst.children as Children;
    return {
      kind: "list",
      items: nodes(c, "value").map((v) => this.value(v)),
      span: this.enclosing(c, "LBracket", "RBracket"),
    };
  }

  private number(t: IToken): NumberValue {
    const span = tokenSpan(t);
    const value = numberLiteralValue(t.image);
    if (value === undefined) {
      this.diagnostics.push(
        diagnose(
          "malformedNumber",
          span,
          [t.image.length > 40 ? `${t.image.slice(0, 40)}…` : t.image, "is too large to represent"],
          { hint: "every setting's largest valid value is far smaller; check the exponent or the digits" },
        ),
      );
      return { kind: "number", value: Number.MAX_VALUE, span };
    }
    return { kind: "number", value, text: t.image, span };
  }
}

/** The contents of a string literal: `\"` and `\\` escapes, other escapes kept as written. */
export function unquote(image: string): string {
  return image.slice(1, -1).replace(/\\(["\\])/g, "$1");
}
