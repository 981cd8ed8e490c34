// The spec with other parallel and run settings, checked by the compiler's own front end: the planner never
// re-implements a rule (heads divisible for Ulysses, the sequence splitting into pieces, the batch over the
// data replicas, ...); a choice the checker refuses is skipped with the checker's message.
import type { Block, Setting, SpecFile, Value } from "../ast/ast.js";
import type { Span } from "../ast/span.js";
import { checkSpec } from "../check/check.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { AUTO, PARALLEL_KEYS } from "../spec/schema.js";

/** Settings to put in place of the spec's own, by block; a number or a word. */
export interface SettingEdits {
  parallel?: Record<string, number | string>;
  run?: Record<string, number | string>;
}

/** The checked spec and the edited syntax tree it came from (diagnostics point into it), or the refusal. */
export type Variant = { spec: ResolvedSpec; ast: SpecFile } | { refused: string };

/** The choices a parallel setting offers (`linear`: lasp2, lasp1, ulysses), from the schema; not `auto`. */
export function strategyWords(key: "linear" | "softmax" | "layout"): string[] {
  const rule = PARALLEL_KEYS.find((k) => k.key === key)?.rule;
  return rule?.type === "enum" ? rule.words.filter((w) => w !== AUTO) : [];
}

function valueOf(value: number | string, span: Span): Value {
  return typeof value === "number"
    ? { kind: "number", value, text: String(value), span }
    : { kind: "word", name: value, span };
}

/** A copy of `ast` with `edits` in place of (or beside) the settings of its parallel and run blocks. */
export function editSpec(ast: SpecFile, edits: SettingEdits): SpecFile {
  const blocks = ast.blocks.map((block): Block => {
    if (block.kind === "model") return block;
    const changes = edits[block.kind];
    if (changes === undefined) return block;
    const kept = block.settings.filter((s) => !(s.key.name in changes));
    const added = Object.entries(changes).map(([key, value]): Setting => ({
      kind: "setting",
      key: { kind: "ident", name: key, span: block.keyword },
      value: valueOf(value, block.keyword),
      span: block.keyword,
    }));
    return { ...block, settings: [...kept, ...added] };
  });
  return { ...ast, blocks };
}

/** The checked spec with `edits`, or the checker's first error when it refuses them. */
export function variant(ast: SpecFile, file: string, edits: SettingEdits): Variant {
  const edited = editSpec(ast, edits);
  const checked = checkSpec(edited, file);
  const error = checked.diagnostics.find((d) => d.severity === "error");
  if (error !== undefined || checked.spec === undefined)
    return { refused: error?.message ?? "the checker refused it" };
  return { spec: checked.spec, ast: edited };
}
