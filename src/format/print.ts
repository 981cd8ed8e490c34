// The canonical printer: an AST back to `.lasp` text in the layout of examples/ (without comments; the
// formatter that keeps comments builds on these functions). Whatever it prints parses back to the same AST,
// spans aside: numbers are spelled so they read back to the identical double, strings are re-escaped.
import type { Block, LayerDecl, ModelEntry, Setting, SpecFile, StackItem, Value } from "../ast/ast.js";

const INDENT = "  ";

/** Size suffixes, largest first: the lexer reads K, M and G as powers of 1024. */
const SUFFIXES: readonly [string, number][] = [
  ["G", 1024 ** 3],
  ["M", 1024 ** 2],
  ["K", 1024],
];

/**
 * A number as the lexer reads it back to exactly `value`: `512K` for whole multiples of a power of 1024,
 * else JavaScript's shortest round-tripping form (`0.99`, `1e-7`, `1e+21`, all of which the lexer accepts).
 */
export function printNumber(value: number): string {
  if (!Number.isFinite(value)) throw new Error(`printNumber: ${value} cannot be written in a spec`);
  if (Object.is(value, -0)) return "-0";
  // Only exact integers get a suffix: every double above 2^53 is a multiple of 1024³ too, but
  // `953674316406250M` for 1e21 helps nobody. Dividing by a power of two is exact.
  if (Number.isSafeInteger(value) && value !== 0) {
    for (const [suffix, size] of SUFFIXES) {
      const scaled = value / size;
      if (Number.isInteger(scaled)) return `${scaled}${suffix}`;
    }
  }
  return String(value);
}

/** A string literal: `"` and `\` escaped, the only escapes the parser undoes. */
export function printString(value: string): string {
  if (/[\n\r]/.test(value)) {
    throw new Error("printString: a spec string cannot hold a line break");
  }
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export function printValue(value: Value): string {
  switch (value.kind) {
    case "number":
      return printNumber(value.value);
    case "word":
      return value.name;
    case "string":
      return printString(value.value);
    case "list":
      return `[${value.items.map(printValue).join(", ")}]`;
  }
}

export function printSetting(setting: Setting): string {
  return `${setting.key.name} ${printValue(setting.value)}`;
}

/** `layer L = linear_attention { decay 0.99  causal true }` on one line, settings two spaces apart. */
export function printLayer(layer: LayerDecl): string {
  const settings = layer.settings.map(printSetting).join("  ");
  const body = settings === "" ? "{ }" : `{ ${settings} }`;
  return `layer ${layer.name.name} = ${layer.layerKind.name} ${body}`;
}

function printStackItem(item: StackItem): string {
  const target =
    item.target.kind === "group" ? `[${item.target.items.map(printStackItem).join(", ")}]` : item.target.name;
  return item.repeat === undefined ? target : `${target} x ${printNumber(item.repeat.value)}`;
}

/** `stack [L, L, L, S] x 4`. */
export function printStack(items: readonly StackItem[]): string {
  return `stack ${items.map(printStackItem).join(", ")}`;
}

export function printModelEntry(entry: ModelEntry): string {
  switch (entry.kind) {
    case "setting":
      return printSetting(entry);
    case "layer":
      return printLayer(entry);
    case "stack":
      return printStack(entry.items);
  }
}

function printBlockBody(header: string, lines: readonly string[]): string {
  if (lines.length === 0) return `${header} { }`;
  return [`${header} {`, ...lines.map((line) => INDENT + line), "}"].join("\n");
}

export function printBlock(block: Block): string {
  switch (block.kind) {
    case "model":
      return printBlockBody(`model ${block.name.name}`, block.entries.map(printModelEntry));
    case "parallel":
    case "run":
      return printBlockBody(block.kind, block.settings.map(printSetting));
  }
}

/** The whole file: blocks in source order, a blank line between them, a final newline. */
export function printSpec(ast: SpecFile): string {
  if (ast.blocks.length === 0) return "";
  return `${ast.blocks.map(printBlock).join("\n\n")}\n`;
}
