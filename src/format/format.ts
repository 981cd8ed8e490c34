// The formatter: `.lasp` text to `.lasp` text in the layout of STYLE_GUIDE.md, every comment kept. It walks
// the AST that the compiler's parser builds and reads spellings (numbers, strings), line breaks and
// comments from the source through the spans. Comments are emitted when the printer reaches the first
// token after them, so they keep their order relative to the tokens; whether a comment ends a line or
// stands on its own line is read from the source.
import type { IToken } from "chevrotain";
import {
  stripSpans,
  type Block,
  type Comment,
  type LayerDecl,
  type ModelEntry,
  type Setting,
  type SpecFile,
  type StackItem,
  type Value,
} from "../ast/ast.js";
import type { Span } from "../ast/span.js";
import type { Diagnostic } from "../diagnostics/diagnostic.js";
import { parseSpec } from "../syntax/parse.js";
import { lex } from "../syntax/tokens.js";

export type FormatResult = { text: string } | { diagnostics: Diagnostic[] };

const INDENT = "  ";

/**
 * Formats a spec. Input with syntax errors is refused with the parser's diagnostics. The output parses to
 * the same AST (spans aside) with the same comments; that is checked on every call.
 */
export function formatSpec(source: string): FormatResult {
  const result = formatWithAst(source);
  return "diagnostics" in result ? result : { text: result.text };
}

/** formatSpec, also handing back the AST of the input (the prettier plugin gives it to prettier). */
export function formatWithAst(
  source: string,
): { text: string; ast: SpecFile } | { diagnostics: Diagnostic[] } {
  const parsed = parseSpec(source);
  if (!parsed.ast) return { diagnostics: parsed.diagnostics };
  // Line ends become LF. Strings hold no line breaks, so only white space and comments change.
  let text = source;
  let ast = parsed.ast;
  if (/\r/.test(source)) {
    text = source.replace(/\r\n?/g, "\n");
    const again = parseSpec(text);
    if (!again.ast) return { diagnostics: again.diagnostics };
    ast = again.ast;
  }
  const formatted = new SpecPrinter(text, ast).print();
  assertSameMeaning(ast, formatted);
  return { text: formatted, ast };
}

/** The formatter's safety net: its output must mean what its input meant and hold the same comments. */
function assertSameMeaning(before: SpecFile, formatted: string): void {
  const after = parseSpec(formatted).ast;
  const same =
    after !== undefined &&
    JSON.stringify(stripSpans(before)) === JSON.stringify(stripSpans(after)) &&
    JSON.stringify(before.comments.map(commentText)) === JSON.stringify(after.comments.map(commentText));
  if (!same) {
    throw new Error("lasp fmt: the formatted spec would differ from the original (a formatter bug)");
  }
}

/** A comment's text as the formatter prints it: line comments lose trailing white space. */
export function commentText(comment: Comment): string {
  return comment.text.startsWith("//") ? comment.text.trimEnd() : comment.text;
}

interface CommentInfo {
  text: string;
  start: number;
  /** Nothing but white space between the previous token or comment (or the file start) and this one. */
  ownLine: boolean;
  /** A blank line before it, not right after an opening bracket. */
  blankBefore: boolean;
  /** A line comment, or a block comment with a line break after it. */
  breakAfter: boolean;
}

interface Piece {
  start: number;
  end: number;
  /** The token's text, or undefined for a comment. */
  token?: string;
}

const BLANK_LINE = /\n[ \t]*\n/;

/**
 * Output with pending separators: the printer asks for spaces, line breaks and blank lines between tokens;
 * the strongest request wins when the next text is written, at the indentation of that moment.
 */
class Writer {
  private out = "";
  private breaks = 0;
  private spaces = 0;
  private level = 0;
  /** The last line written ends in a line comment. */
  private lineCommentOpen = false;

  text(text: string): void {
    if (this.lineCommentOpen) this.line();
    if (this.out.length > 0) {
      if (this.breaks > 0) this.out += "\n".repeat(this.breaks) + INDENT.repeat(this.level);
      else if (this.spaces > 0) this.out += " ".repeat(this.spaces);
    }
    this.out += text;
    // Only comments start with `//`: tokens are names, numbers, strings and signs.
    this.lineCommentOpen = text.startsWith("//");
    this.breaks = 0;
    this.spaces = 0;
  }

  /**
   * A comment that ends the line written so far, whatever separator is pending after it; on a line of its
   * own when that line already ends in a line comment (a comma moved before it), which would swallow it.
   */
  trailing(text: string): void {
    if (this.lineCommentOpen) {
      this.line();
      this.text(text);
      return;
    }
    this.out += this.out.length > 0 ? ` ${text}` : text;
    this.lineCommentOpen = text.startsWith("//");
  }

  space(count: number): void {
    this.spaces = Math.max(this.spaces, count);
  }

  line(): void {
    this.breaks = Math.max(this.breaks, 1);
  }

  blank(): void {
    this.breaks = 2;
  }

  indent(): void {
    this.level += 1;
  }

  dedent(): void {
    this.level -= 1;
  }

  result(): string {
    return this.out.length > 0 ? `${this.out}\n` : "";
  }
}

class SpecPrinter {
  private readonly w = new Writer();
  private readonly tokens: IToken[];
  private readonly comments: CommentInfo[];
  /** Index of the next comment to emit. */
  private next = 0;
  private readonly pieces: Piece[];
  private readonly pieceAt = new Map<number, number>();

  constructor(
    private readonly source: string,
    private readonly ast: SpecFile,
  ) {
    this.tokens = lex(source).tokens;
    const pieces: Piece[] = [
      ...this.tokens.map((t) => ({
        start: t.startOffset,
        end: t.startOffset + t.image.length,
        token: t.image,
      })),
      ...ast.comments.map((c) => ({ start: c.span.start.offset, end: c.span.end.offset })),
    ].sort((a, b) => a.start - b.start);
    this.pieces = pieces;
    pieces.forEach((piece, index) => this.pieceAt.set(piece.start, index));
    this.comments = ast.comments.map((comment) => {
      const start = comment.span.start.offset;
      const index = this.pieceAt.get(start)!;
      const after = pieces[index + 1];
      const gapAfter = source.slice(comment.span.end.offset, after?.start ?? source.length);
      return {
        text: commentText(comment),
        start,
        ownLine: index === 0 || this.gapBefore(index).includes("\n"),
        blankBefore: this.blankBefore(start),
        breakAfter: comment.text.startsWith("//") || after === undefined || gapAfter.includes("\n"),
      };
    });
  }

  print(): string {
    this.ast.blocks.forEach((block, i) => {
      if (i > 0) this.w.blank();
      this.startLine(block.span.start.offset);
      this.block(block);
    });
    this.flush(Infinity);
    return this.w.result();
  }

  // --- source queries

  private gapBefore(pieceIndex: number): string {
    const previous = this.pieces[pieceIndex - 1];
    const piece = this.pieces[pieceIndex]!;
    return this.source.slice(previous?.end ?? 0, piece.start);
  }

  /** A blank line between the previous token or comment and the piece at `offset`, not after `{` or `[`. */
  private blankBefore(offset: number): boolean {
    const index = this.pieceAt.get(offset);
    if (index === undefined || index === 0) return false;
    const previous = this.pieces[index - 1]!;
    if (previous.token === "{" || previous.token === "[") return false;
    return BLANK_LINE.test(this.gapBefore(index));
  }

  private hasNewline(from: number, to: number): boolean {
    return this.source.slice(from, to).includes("\n");
  }

  private slice(span: Span): string {
    return this.source.slice(span.start.offset, span.end.offset);
  }

  /** The first token at or after `offset` (the `=`, `{` or `x` the AST has no node for). */
  private tokenAfter(offset: number): IToken {
    let lo = 0;
    let hi = this.tokens.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.tokens[mid]!.startOffset < offset) lo = mid + 1;
      else hi = mid;
    }
    const token = this.tokens[lo];
    if (token === undefined) throw new Error(`formatter: no token after offset ${offset}`);
    return token;
  }

  private commentsWithin(from: number, to: number): CommentInfo[] {
    return this.comments.filter((c) => c.start >= from && c.start < to);
  }

  // --- emitting

  /** Emits every comment that starts before `offset`. */
  private flush(offset: number): void {
    while (this.next < this.comments.length && this.comments[this.next]!.start < offset) {
      const comment = this.comments[this.next]!;
      this.next += 1;
      if (comment.ownLine) {
        if (comment.blankBefore) this.w.blank();
        else this.w.line();
        this.w.text(comment.text);
      } else {
        this.w.trailing(comment.text);
      }
      if (comment.breakAfter) this.w.line();
      else this.w.space(1);
    }
  }

  /** A token: the comments before it, then its text. */
  private token(offset: number, text: string): void {
    this.flush(offset);
    this.w.text(text);
  }

  /** Before an entry that starts a line: its comments, then the blank line the user left before it. */
  private startLine(offset: number): void {
    this.flush(offset);
    if (this.blankBefore(offset)) this.w.blank();
  }

  // --- the tree

  private block(block: Block): void {
    this.token(block.keyword.start.offset, block.kind);
    let headEnd = block.keyword.end.offset;
    if (block.kind === "model") {
      this.w.space(1);
      this.token(block.name.span.start.offset, block.name.name);
      headEnd = block.name.span.end.offset;
    }
    const open = this.tokenAfter(headEnd).startOffset;
    const close = block.span.end.offset - 1;
    this.w.space(1);
    this.token(open, "{");
    const entries: ModelEntry[] = block.kind === "model" ? block.entries : block.settings;
    if (entries.length === 0 && this.commentsWithin(open, close).length === 0) {
      this.w.space(1);
      this.token(close, "}");
      return;
    }
    this.body(entries, close);
  }

  /** The indented lines of a block or of a layer written across lines, then `}`. */
  private body(entries: readonly ModelEntry[], close: number): void {
    const pads = this.layerPads(entries);
    this.w.indent();
    entries.forEach((entry, i) => {
      const previous = entries[i - 1];
      const ownLine =
        previous === undefined ||
        entry.kind !== "setting" ||
        previous.kind !== "setting" ||
        this.hasNewline(previous.span.end.offset, entry.span.start.offset);
      if (ownLine) this.w.line();
      else this.w.space(2);
      this.startLine(entry.span.start.offset);
      this.entry(entry, pads.get(entry));
    });
    this.flush(close);
    this.w.dedent();
    this.w.line();
    this.token(close, "}");
  }

  /**
   * Spaces before `{` for one-line layer declarations that follow each other, so their `{` line up. Only
   * layers without comments inside, with no blank line and nothing but end-of-line comments between them,
   * take part: they come out on consecutive lines.
   */
  private layerPads(entries: readonly ModelEntry[]): Map<ModelEntry, number> {
    const pads = new Map<ModelEntry, number>();
    const alignable = (e: ModelEntry | undefined): e is LayerDecl =>
      e?.kind === "layer" &&
      !this.hasNewline(this.tokenAfter(e.layerKind.span.end.offset).startOffset, e.span.end.offset) &&
      this.commentsWithin(e.span.start.offset, e.span.end.offset).length === 0;
    const head = (l: LayerDecl): number => `layer ${l.name.name} = ${l.layerKind.name}`.length;
    let run: LayerDecl[] = [];
    const close = (): void => {
      const width = Math.max(...run.map(head));
      for (const layer of run) pads.set(layer, width - head(layer) + 1);
      run = [];
    };
    entries.forEach((entry) => {
      const last = run[run.length - 1];
      if (!alignable(entry)) {
        if (run.length > 0) close();
        return;
      }
      // Adjacent in the output: no blank line and no comment line between (end-of-line comments are fine).
      const adjacent =
        last !== undefined &&
        !this.blankBefore(entry.span.start.offset) &&
        this.commentsWithin(last.span.end.offset, entry.span.start.offset).every(
          (c) => !c.ownLine && !c.text.includes("\n"),
        );
      if (last !== undefined && !adjacent) close();
      run.push(entry);
    });
    if (run.length > 0) close();
    return pads;
  }

  private entry(entry: ModelEntry, pad: number | undefined): void {
    switch (entry.kind) {
      case "setting":
        return this.setting(entry);
      case "layer":
        return this.layer(entry, pad ?? 1);
      case "stack":
        this.token(entry.span.start.offset, "stack");
        this.w.space(1);
        return this.stackSeq(entry.items, true);
    }
  }

  private setting(setting: Setting): void {
    this.token(setting.key.span.start.offset, setting.key.name);
    this.w.space(1);
    this.value(setting.value);
  }

  private value(value: Value): void {
    switch (value.kind) {
      case "number":
      case "string":
        return this.token(value.span.start.offset, this.slice(value.span));
      case "word":
        return this.token(value.span.start.offset, value.name);
      case "list":
        return this.bracketed(value.span, value.items, (v) => this.value(v));
    }
  }

  private layer(layer: LayerDecl, pad: number): void {
    this.token(layer.span.start.offset, "layer");
    this.w.space(1);
    this.token(layer.name.span.start.offset, layer.name.name);
    this.w.space(1);
    this.token(this.tokenAfter(layer.name.span.end.offset).startOffset, "=");
    this.w.space(1);
    this.token(layer.layerKind.span.start.offset, layer.layerKind.name);
    this.w.space(pad);
    const open = this.tokenAfter(layer.layerKind.span.end.offset).startOffset;
    const close = layer.span.end.offset - 1;
    this.token(open, "{");
    if (this.hasNewline(open, close)) return this.body(layer.settings, close);
    layer.settings.forEach((setting, i) => {
      this.w.space(i === 0 ? 1 : 2);
      this.setting(setting);
    });
    this.w.space(1);
    this.token(close, "}");
  }

  /** `a, b, [c, d] x 2`; a line break after a comma is kept, continuation lines one level deeper. */
  private stackSeq(items: readonly StackItem[], top: boolean): void {
    let indented = false;
    items.forEach((item, i) => {
      const previous = items[i - 1];
      if (previous !== undefined) {
        this.w.text(",");
        if (this.hasNewline(previous.span.end.offset, item.span.start.offset)) {
          if (top && !indented) {
            this.w.indent();
            indented = true;
          }
          this.w.line();
        } else {
          this.w.space(1);
        }
      }
      this.stackItem(item);
    });
    if (indented) this.w.dedent();
  }

  private stackItem(item: StackItem): void {
    const target = item.target;
    if (target.kind === "group") {
      this.bracketed(target.span, target.items, (i) => this.stackItem(i));
    } else {
      this.token(target.span.start.offset, target.name);
    }
    if (item.repeat !== undefined) {
      this.w.space(1);
      this.token(this.tokenAfter(target.span.end.offset).startOffset, "x");
      this.w.space(1);
      this.token(item.repeat.span.start.offset, this.slice(item.repeat.span));
    }
  }

  /** `[a, b]` on one line, or, when the user broke it across lines, one indented line per group of items. */
  private bracketed<T extends { span: Span }>(
    span: Span,
    items: readonly T[],
    print: (item: T) => void,
  ): void {
    const open = span.start.offset;
    const close = span.end.offset - 1;
    this.token(open, "[");
    const broken = this.hasNewline(open, close);
    if (broken) this.w.indent();
    items.forEach((item, i) => {
      const previous = items[i - 1];
      if (previous === undefined) {
        if (broken) this.w.line();
      } else {
        // Comments between an item and its comma come out after the comma.
        this.w.text(",");
        if (broken && this.hasNewline(previous.span.end.offset, item.span.start.offset)) this.w.line();
        else this.w.space(1);
      }
      print(item);
    });
    this.flush(close);
    if (broken) {
      this.w.dedent();
      this.w.line();
    }
    this.token(close, "]");
  }
}
