// The typed syntax tree of a `.lasp` file. Every node has a span; values keep their meaning (numbers are
// numbers, suffixes already applied), not their spelling, so a canonical printer can re-spell them.
import type { Span } from "./span.js";

export interface Ident {
  kind: "ident";
  name: string;
  span: Span;
}

export interface NumberValue {
  kind: "number";
  value: number;
  /** The number as written (`512K`, `1e-5`), for messages; meaning lives in `value`. */
  text?: string;
  span: Span;
}
export interface WordValue {
  kind: "word";
  name: string;
  span: Span;
}
export interface StringValue {
  kind: "string";
  value: string;
  span: Span;
}
export interface ListValue {
  kind: "list";
  items: Value[];
  span: Span;
}
export type Value = NumberValue | WordValue | StringValue | ListValue;

export interface Setting {
  kind: "setting";
  key: Ident;
  value: Value;
  span: Span;
}

export interface LayerDecl {
  kind: "layer";
  name: Ident;
  layerKind: Ident;
  settings: Setting[];
  span: Span;
}

export interface StackGroup {
  kind: "group";
  items: StackItem[];
  span: Span;
}

export interface StackItem {
  kind: "item";
  target: Ident | StackGroup;
  repeat?: NumberValue;
  span: Span;
}

export interface StackDecl {
  kind: "stack";
  items: StackItem[];
  span: Span;
}

export type ModelEntry = Setting | LayerDecl | StackDecl;

export interface ModelBlock {
  kind: "model";
  name: Ident;
  entries: ModelEntry[];
  /** The block keyword, for diagnostics about the whole block. */
  keyword: Span;
  span: Span;
}

export interface ParallelBlock {
  kind: "parallel";
  settings: Setting[];
  keyword: Span;
  span: Span;
}

export interface RunBlock {
  kind: "run";
  settings: Setting[];
  keyword: Span;
  span: Span;
}

export type Block = ModelBlock | ParallelBlock | RunBlock;

export interface Comment {
  text: string;
  span: Span;
}

export interface SpecFile {
  kind: "spec";
  blocks: Block[];
  /** Comments in source order; the parser never sees them, the formatter puts them back. */
  comments: Comment[];
  span: Span;
}

/** A copy of a tree without spans, comments and spellings of numbers, for comparing meaning. */
export function stripSpans(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(stripSpans);
  if (node !== null && typeof node === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(node)) {
      if (key === "span" || key === "keyword" || key === "comments" || key === "text") continue;
      out[key] = stripSpans(value);
    }
    return out;
  }
  return node;
}
