// The generated parts of grammar/README.md: the grammar in EBNF (from the parser's own productions), one key
// table per block (from src/spec/schema.ts) and the table of diagnostic codes (from the catalogue). README
// holds each between `<!-- NAME:begin -->` and `<!-- NAME:end -->`; update.ts rewrites them and a test fails
// when they are stale, so the reference cannot drift from what the compiler accepts.
import type { ISerializedGast } from "chevrotain";
import { laspParser } from "../../grammar/parser.js";
import { Identifier } from "../../grammar/tokens.js";
import {
  BOOLEAN_WORDS,
  DECAY_SCHEDULES,
  LINEAR_KEYS,
  MAX_LAYERS,
  MAX_REPEAT,
  MODEL_KEYS,
  PARALLEL_KEYS,
  RUN_KEYS,
  SOFTMAX_KEYS,
  type KeyRule,
  type ValueRule,
} from "../spec/schema.js";
import { catalogue } from "../diagnostics/catalogue.js";
import { listWords } from "../diagnostics/suggest.js";

/** A serialized production with the fields chevrotain writes but does not type. */
export interface Production extends ISerializedGast {
  name?: string;
  label?: string;
  terminalLabel?: string;
  separator?: Production;
  definition?: Production[];
}

export function grammarProductions(): Production[] {
  return laspParser.getSerializedGastProductions() as Production[];
}

/**
 * How a terminal is written in the grammar: a keyword or sign as it is typed (`literal`), or what stands
 * there (`name`, `kind`, `key`, `word`, `number`, `string`). Names play several roles, told apart by the
 * parser's CONSUME labels; numbers and strings are just that.
 */
export function terminalText(terminal: Production): { text: string; literal: boolean } {
  const label = terminal.label ?? terminal.name ?? "?";
  const quoted = /^`(.+)`$/.exec(label);
  if (quoted) return { text: quoted[1]!, literal: true };
  if (terminal.name === Identifier.name && terminal.terminalLabel) {
    return { text: terminal.terminalLabel, literal: false };
  }
  return { text: label.replace(/^an? /, ""), literal: false };
}

// ---------------------------------------------------------------------------------------------- grammar

/** The grammar in EBNF, one line per parser rule, in the parser's order and with its rule names. */
export function grammarEbnf(): string {
  const lines = grammarProductions().map((rule) => `${rule.name} = ${sequence(rule.definition ?? [])} ;`);
  return ["```ebnf", ...lines, "```"].join("\n");
}

function sequence(items: readonly Production[]): string {
  // An alternation that is a whole body (of a rule, `[ ]` or `{ }`) needs no parentheses.
  if (items.length === 1 && items[0]!.type === "Alternation") return alternatives(items[0]!);
  return items
    .map((item) => (item.type === "Alternation" ? `( ${alternatives(item)} )` : production(item)))
    .join(" ");
}

function alternatives(alternation: Production): string {
  return (alternation.definition ?? []).map((alt) => sequence(alt.definition ?? [])).join(" | ");
}

function production(p: Production): string {
  const body = sequence(p.definition ?? []);
  switch (p.type) {
    case "NonTerminal":
      return p.name!;
    case "Terminal": {
      const { text, literal } = terminalText(p);
      return literal ? `"${text}"` : text;
    }
    case "Alternative":
      return body;
    case "Option":
      return `[ ${body} ]`;
    case "Repetition":
      return `{ ${body} }`;
    case "RepetitionMandatory":
      return `${body} { ${body} }`;
    case "RepetitionWithSeparator":
      return `[ ${body} { ${production(p.separator!)} ${body} } ]`;
    case "RepetitionMandatoryWithSeparator":
      return `${body} { ${production(p.separator!)} ${body} }`;
    default:
      throw new Error(`grammar-docs: no EBNF for a ${p.type} production`);
  }
}

// ------------------------------------------------------------------------------------------------- keys

interface Table {
  heading: string;
  keys: readonly KeyRule[];
  /** Rows that are not settings (the model's `stack`). */
  extra?: string[][];
}

const TABLES: Table[] = [
  {
    heading: "`model NAME { ... }`",
    keys: MODEL_KEYS,
    extra: [
      [
        "`stack`",
        `stack items (see [Grammar](#grammar)); each \`x\` repeat from 1 to ${formatSize(MAX_REPEAT)}, ` +
          `at most ${formatSize(MAX_LAYERS)} layers in all`,
        "required",
        "the layers from first to last, by declared name: `stack [L, L, L, S] x 4`",
      ],
    ],
  },
  { heading: "`layer NAME = linear_attention { ... }`", keys: LINEAR_KEYS },
  { heading: "`layer NAME = softmax_attention { ... }`", keys: SOFTMAX_KEYS },
  { heading: "`parallel { ... }`", keys: PARALLEL_KEYS },
  { heading: "`run { ... }`", keys: RUN_KEYS },
];

/** Every key of every block, as in the tables (for tests). */
export function allKeys(): { heading: string; key: string }[] {
  return TABLES.flatMap((t) => t.keys.map((k) => ({ heading: t.heading, key: k.key })));
}

/** One Markdown table per block and layer kind: key, value, default, meaning. */
export function keyTables(): string {
  return TABLES.map((table) => {
    const rows = [...table.keys.map(keyRow), ...(table.extra ?? [])];
    return `### ${table.heading}\n\n${markdownTable(["key", "value", "default", "meaning"], rows)}`;
  }).join("\n\n");
}

function keyRow(rule: KeyRule): string[] {
  // Derived defaults are written into the doc line as "...; default hidden / heads".
  const [meaning, derived] = rule.doc.split("; default ");
  const fallback = rule.required
    ? "required"
    : rule.default !== undefined
      ? `\`${rule.default}\``
      : undefined;
  return [`\`${rule.key}\``, valueText(rule.rule), fallback ?? derived ?? "derived", meaning!];
}

export function valueText(rule: ValueRule): string {
  switch (rule.type) {
    case "int":
      return `whole number, ${formatSize(rule.min)} to ${formatSize(rule.max)}${rule.auto === true ? ", or `auto`" : ""}`;
    case "float":
      return `number in ${rule.minExclusive ? "(" : "["}${formatSize(rule.min)}, ${formatSize(rule.max)}${rule.maxExclusive ? ")" : "]"}`;
    case "enum":
      return listWords(rule.words);
    case "bool": {
      const words = Object.keys(BOOLEAN_WORDS);
      const yes = words.filter((w) => BOOLEAN_WORDS[w]);
      const no = words.filter((w) => !BOOLEAN_WORDS[w]);
      return yes.map((w, i) => `\`${w}\`/\`${no[i]}\``).join(", ");
    }
    case "decay":
      return `${DECAY_SCHEDULES.map((w) => `\`${w}\``).join(", ")}, a number or a list (see [Decay](#decay))`;
    case "data":
      return '`synthetic` or a string: `"tokens.bin"`';
    case "numbers":
      return `list of ${rule.count}, each a ${valueText(rule.item)}`;
    case "path":
      return '`none` or a string: `"val.bin"`';
    case "tokenizer":
      return '`none`, `bytes` or a string: `"Llama-3.2-1B"`';
  }
}

/**
 * A bound as a user would write it: 1e9 rather than 1000000000, 64K rather than 65536 (K, M, G are powers of
 * 1024, as in specs); small numbers as they are.
 */
export function formatSize(n: number): string {
  const log10 = Math.log10(n);
  if (n >= 1e6 && Number.isInteger(log10)) return `1e${log10}`;
  if (Number.isInteger(n) && n >= 65536) {
    for (const [suffix, unit] of [
      ["G", 1024 ** 3],
      ["M", 1024 ** 2],
      ["K", 1024],
    ] as const) {
      if (n % unit === 0) return `${n / unit}${suffix}`;
    }
  }
  return String(n);
}

// ------------------------------------------------------------------------------------------ diagnostics

/** Every diagnostic code with its severity and title, in code order. */
export function diagnosticsTable(): string {
  return markdownTable(
    ["code", "severity", "title"],
    catalogue().map((e) => [`\`${e.code}\``, e.severity, e.title]),
  );
}

// ------------------------------------------------------------------------------------------------ shared

function markdownTable(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.map((c) => c.replace(/\|/g, "\\|")).join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** The generated regions of grammar/README.md, by marker name. */
export function readmeRegions(): Record<string, string> {
  return { grammar: grammarEbnf(), keys: keyTables(), diagnostics: diagnosticsTable() };
}

/** `text` with the content between each `<!-- NAME:begin -->` and `<!-- NAME:end -->` replaced. */
export function replaceRegions(text: string, regions: Record<string, string>): string {
  let out = text;
  for (const [name, content] of Object.entries(regions)) {
    const begin = `<!-- ${name}:begin -->`;
    const end = `<!-- ${name}:end -->`;
    const from = out.indexOf(begin);
    const to = out.indexOf(end, from);
    if (from === -1 || to === -1)
      throw new Error(`grammar-docs: the markers ${begin} ... ${end} are missing`);
    out = `${out.slice(0, from + begin.length)}\n\n${content}\n\n${out.slice(to)}`;
  }
  return out;
}

/** The content between a region's markers, trimmed ("" when the markers are missing). */
export function regionOf(text: string, name: string): string {
  const begin = `<!-- ${name}:begin -->`;
  const from = text.indexOf(begin);
  const to = text.indexOf(`<!-- ${name}:end -->`, from);
  return from === -1 || to === -1 ? "" : text.slice(from + begin.length, to).trim();
}
