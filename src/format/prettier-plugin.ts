// A prettier plugin for `.lasp` files: `prettier --plugin ./dist/src/format/prettier-plugin.js spec.lasp`, or
// `"plugins": ["lasp/dist/src/format/prettier-plugin.js"]` in a prettier config so editors that run prettier
// format specs too. The parser runs the compiler's own formatter (format.ts, STYLE_GUIDE.md): the layout
// keeps the user's line breaks, so prettier's width-driven doc printing has nothing to decide and the
// printer hands prettier the finished text.
import type { Doc, Parser, Plugin, Printer, SupportLanguage } from "prettier";
import { doc } from "prettier";
import type { SpecFile } from "../ast/ast.js";
import { formatWithAst } from "./format.js";

/** The AST prettier sees: the spec (for tools that want it) and its formatted text. */
export interface LaspRoot {
  type: "lasp";
  start: number;
  end: number;
  /** The spec's AST; its comments are the formatter's business, not prettier's. */
  spec: Omit<SpecFile, "comments">;
  formatted: string;
}

/** A syntax error as prettier reports it: a message and a `loc` it turns into a code frame. */
export class LaspSyntaxError extends SyntaxError {
  constructor(
    message: string,
    readonly loc: { start: { line: number; column: number }; end: { line: number; column: number } },
  ) {
    super(message);
    this.name = "SyntaxError";
  }
}

const languages: SupportLanguage[] = [
  { name: "lasp", parsers: ["lasp"], extensions: [".lasp"], vscodeLanguageIds: ["lasp"] },
];

const parser: Parser<LaspRoot> = {
  astFormat: "lasp",
  parse(text) {
    const result = formatWithAst(text);
    if ("diagnostics" in result) {
      const first = result.diagnostics[0];
      if (first === undefined) throw new SyntaxError("lasp: the spec does not parse");
      const { start, end } = first.span;
      throw new LaspSyntaxError(`${first.message} [${first.code}]${first.hint ? ` (${first.hint})` : ""}`, {
        start: { line: start.line, column: start.column },
        end: { line: end.line, column: end.column },
      });
    }
    // Without `comments` on the tree: prettier would try to attach and print them itself.
    const { comments: _comments, ...spec } = result.ast;
    return { type: "lasp", start: 0, end: text.length, spec, formatted: result.text };
  },
  locStart: (node) => node.start,
  locEnd: (node) => node.end,
};

const printer: Printer<LaspRoot> = {
  print(path): Doc {
    // Literal lines: prettier must neither indent nor trim what the formatter wrote (block comments).
    return doc.builders.join(doc.builders.literalline, path.node.formatted.split("\n"));
  },
};

const plugin: Plugin<LaspRoot> = {
  languages,
  parsers: { lasp: parser },
  printers: { lasp: printer },
};

export default plugin;
