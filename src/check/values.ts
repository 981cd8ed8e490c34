// Reads one block's settings through its key table: unknown and duplicate keys, and each value's type and
// range. Invalid values are reported and left out, so later rules that need them stay quiet instead of
// cascading.
import type { Setting, Value } from "../ast/ast.js";
import type { Span } from "../ast/span.js";
import { diagnose, type Diagnostic } from "../diagnostics/diagnostic.js";
import { cut, quote } from "../diagnostics/quote.js";
import { listWords, nearest } from "../diagnostics/suggest.js";
import { blockOfKeys, suggestKey } from "../spec/key-homes.js";
import { numberLiteralValue } from "../syntax/build-ast.js";
import { AUTO, BOOLEAN_WORDS, DECAY_SCHEDULES, type KeyRule, type ValueRule } from "../spec/schema.js";
import type { Tokenizer } from "../spec/resolved.js";

export type DecayValue =
  { kind: "schedule"; name: string } | { kind: "fixed"; value: number } | { kind: "list"; values: number[] };
export type DataValue = { kind: "synthetic" } | { kind: "file"; path: string };
export type PathValue = { kind: "none" } | { kind: "file"; path: string };
export type ReadValue = number | string | boolean | DecayValue | DataValue | PathValue | Tokenizer | number[];

export interface ReadSettings {
  values: Map<string, ReadValue>;
  /** The setting each key came from (also for keys whose value was invalid). */
  settings: Map<string, Setting>;
}

/**
 * A key's default as the checker uses it: the schema's text (what the docs show), read by the same rules as
 * a written value, so the schema is the one home of every default. Undefined for required and derived keys.
 */
export function schemaDefault(rule: KeyRule): ReadValue | undefined {
  const text = rule.default;
  if (text === undefined) return undefined;
  switch (rule.rule.type) {
    case "int":
    case "float":
      return numberLiteralValue(text);
    case "enum":
      return text;
    case "bool":
      return BOOLEAN_WORDS[text];
    case "decay":
      return { kind: "schedule", name: text };
    case "data":
      return text === "synthetic" ? { kind: "synthetic" } : { kind: "file", path: text };
    case "numbers":
      // Written as a list: `[0.9, 0.95]`.
      return text
        .slice(1, -1)
        .split(",")
        .map((item) => numberLiteralValue(item.trim())!);
    case "path":
      return text === "none" ? { kind: "none" } : { kind: "file", path: text };
    case "tokenizer":
      return text === "none" || text === "bytes" ? { kind: text } : { kind: "folder", path: text };
  }
}

/** The value a block gives `key`, or the schema's default; undefined for a required or derived key not given. */
export function settingValue<T extends ReadValue>(
  read: ReadSettings | undefined,
  keys: readonly KeyRule[],
  key: string,
): T | undefined {
  const given = read?.values.get(key);
  if (given !== undefined) return given as T;
  const rule = keys.find((r) => r.key === key);
  if (rule === undefined) throw new Error(`${key} is not a key of this block`);
  return schemaDefault(rule) as T | undefined;
}

/** A number as the user wrote it where the source is known, else as JavaScript prints it. */
export function formatNumber(value: number, text?: string): string {
  return cut(text ?? String(value));
}

function describeValue(value: Value): string {
  switch (value.kind) {
    case "number":
      return `the number ${formatNumber(value.value, value.text)}`;
    case "word":
      return `the word ${quote(value.name)}`;
    case "string":
      return "a string";
    case "list":
      return "a list";
  }
}

export function rangeText(rule: ValueRule): string {
  if (rule.type === "int")
    return `a whole number from ${rule.min} to ${rule.max}${rule.auto === true ? `, or \`${AUTO}\`` : ""}`;
  if (rule.type === "float")
    return `${rule.minExclusive ? `more than ${rule.min}` : `at least ${rule.min}`} and ${rule.maxExclusive ? `less than ${rule.max}` : `at most ${rule.max}`}`;
  return "";
}

/** A string's text when it is a number as a spec writes one (`3e-4`, `16K`), else undefined. */
function quotedNumber(text: string): string | undefined {
  const trimmed = text.trim();
  return /^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?[KMGkmg]?$/.test(trimmed) ? trimmed : undefined;
}

export class SettingsReader {
  /**
   * `block.key` of every key an unknown key was taken for ("did you mean `hidden`?", a key written in the
   * wrong block): a missing-key error about it would only repeat the same mistake.
   */
  private readonly meant = new Set<string>();

  constructor(private readonly diagnostics: Diagnostic[]) {}

  read(settings: readonly Setting[], keys: readonly KeyRule[], where: string): ReadSettings {
    const values = new Map<string, ReadValue>();
    const seen = new Map<string, Setting>();
    const known = keys.map((k) => k.key);
    for (const setting of settings) {
      const key = setting.key.name;
      const rule = keys.find((k) => k.key === key);
      if (rule === undefined) {
        const block = blockOfKeys(keys);
        const suggestion = block === undefined ? undefined : suggestKey(key, block);
        if (suggestion?.meant !== undefined)
          this.meant.add(`${suggestion.meant.block}.${suggestion.meant.key}`);
        const hint = suggestion?.hint ?? `keys here: ${listWords(known)}`;
        this.diagnostics.push(diagnose("unknownKey", setting.key.span, [key, where], { hint }));
        continue;
      }
      const first = seen.get(key);
      if (first !== undefined) {
        this.diagnostics.push(
          diagnose("duplicateKey", setting.key.span, [key, where], {
            hint: "keep one of them",
            related: [{ span: first.key.span, message: "first given here" }],
          }),
        );
        continue;
      }
      seen.set(key, setting);
      const value = this.value(key, setting.value, rule.rule);
      if (value !== undefined) values.set(key, value);
    }
    return { values, settings: seen };
  }

  /** Whether an unknown key was taken for `key` of `block` (see `meant`); call after reading every block. */
  wasMeant(block: string, key: string): boolean {
    return this.meant.has(`${block}.${key}`);
  }

  /** Reports every missing required key at `at` (the block keyword), unless an unknown key stood for it. */
  requireKeys(read: ReadSettings, keys: readonly KeyRule[], where: string, at: Span): void {
    const block = blockOfKeys(keys);
    for (const rule of keys) {
      if (rule.required && !read.settings.has(rule.key) && !this.wasMeant(block ?? "", rule.key)) {
        this.diagnostics.push(
          diagnose("missingKey", at, [rule.key, where], { hint: `add it, for example \`${rule.example}\`` }),
        );
      }
    }
  }

  value(key: string, value: Value, rule: ValueRule): ReadValue | undefined {
    switch (rule.type) {
      case "int":
      case "float":
        return this.number(key, value, rule);
      case "enum":
        return this.word(key, value, rule.words);
      case "bool": {
        const word = this.word(key, value, Object.keys(BOOLEAN_WORDS), ["true", "false"]);
        return word === undefined ? undefined : BOOLEAN_WORDS[word];
      }
      case "decay":
        return this.decay(key, value);
      case "data":
        if (value.kind === "string") return { kind: "file", path: value.value };
        if (value.kind === "word" && value.name === "synthetic") return { kind: "synthetic" };
        this.diagnostics.push(
          diagnose(
            "wrongType",
            value.span,
            [key, "`synthetic` or a file path in quotes", describeValue(value)],
            {
              hint: 'for example `data synthetic` or `data "tokens.bin"`',
            },
          ),
        );
        return undefined;
      case "numbers":
        return this.numbers(key, value, rule);
      case "path":
        if (value.kind === "string") return { kind: "file", path: value.value };
        if (value.kind === "word" && value.name === "none") return { kind: "none" };
        this.diagnostics.push(
          diagnose("wrongType", value.span, [key, "a file path in quotes or `none`", describeValue(value)], {
            hint: `for example \`${key} "val.bin"\``,
          }),
        );
        return undefined;
      case "tokenizer":
        if (value.kind === "string") return { kind: "folder", path: value.value };
        if (value.kind === "word" && (value.name === "none" || value.name === "bytes"))
          return { kind: value.name };
        this.diagnostics.push(
          diagnose(
            "wrongType",
            value.span,
            [key, "`none`, `bytes` or a tokenizer's folder in quotes", describeValue(value)],
            { hint: 'for example `tokenizer bytes` or `tokenizer "Llama-3.2-1B"`' },
          ),
        );
        return undefined;
    }
  }

  /** A list of exactly `rule.count` numbers, each in range; every bad item is reported. */
  private numbers(
    key: string,
    value: Value,
    rule: Extract<ValueRule, { type: "numbers" }>,
  ): number[] | undefined {
    const hint = `valid: ${rule.count} numbers in brackets, each ${rangeText(rule.item)}`;
    if (value.kind !== "list") {
      this.diagnostics.push(
        diagnose("wrongType", value.span, [key, `a list of ${rule.count} numbers`, describeValue(value)], {
          hint,
        }),
      );
      return undefined;
    }
    if (value.items.length !== rule.count) {
      this.diagnostics.push(
        diagnose("listLength", value.span, [key, rule.count, value.items.length], { hint }),
      );
      return undefined;
    }
    const values = value.items.map((item) => this.number(key, item, rule.item));
    return values.every((v) => v !== undefined) ? (values as number[]) : undefined;
  }

  number(key: string, value: Value, rule: Extract<ValueRule, { type: "int" | "float" }>): number | undefined {
    const expected = rule.type === "int" ? "a whole number" : "a number";
    if (rule.type === "int" && rule.auto === true && value.kind === "word" && value.name === AUTO)
      return AUTO as unknown as number; // the planner picks it (schema.ts's AUTO)
    if (value.kind !== "number") {
      // `lr "3e-4"`, as a YAML or JSON config writes it: the number is right, the quotes are not.
      const unquoted = value.kind === "string" ? quotedNumber(value.value) : undefined;
      this.diagnostics.push(
        diagnose("wrongType", value.span, [key, expected, describeValue(value)], {
          hint:
            unquoted !== undefined
              ? `write the number without quotes: \`${key} ${unquoted}\``
              : `valid: ${rangeText(rule)}`,
        }),
      );
      return undefined;
    }
    const n = value.value;
    if (rule.type === "int" && !Number.isInteger(n)) {
      this.diagnostics.push(
        diagnose("notInteger", value.span, [key, formatNumber(n, value.text)], {
          hint: `valid: ${rangeText(rule)}`,
        }),
      );
      return undefined;
    }
    const tooSmall = rule.type === "float" && rule.minExclusive ? n <= rule.min : n < rule.min;
    const tooLarge = rule.type === "float" && rule.maxExclusive ? n >= rule.max : n > rule.max;
    if (tooSmall || tooLarge) {
      this.diagnostics.push(
        diagnose("outOfRange", value.span, [key, formatNumber(n, value.text)], {
          hint: `valid: ${rangeText(rule)}`,
        }),
      );
      return undefined;
    }
    return n;
  }

  private word(
    key: string,
    value: Value,
    words: readonly string[],
    shown: readonly string[] = words,
  ): string | undefined {
    if (value.kind !== "word") {
      // `lr_schedule "cosine"`: a word value is written as a name, without quotes.
      const quoted = value.kind === "string" && words.includes(value.value);
      this.diagnostics.push(
        diagnose(
          "wrongType",
          value.span,
          [key, `one of ${listWords(shown)}`, describeValue(value)],
          quoted ? { hint: `write the word without quotes: \`${key} ${value.value}\`` } : {},
        ),
      );
      return undefined;
    }
    if (!words.includes(value.name)) {
      const guess = nearest(value.name, words);
      const hint = guess !== undefined ? `did you mean \`${guess}\`?` : `valid values: ${listWords(shown)}`;
      this.diagnostics.push(diagnose("unknownWord", value.span, [key, value.name], { hint }));
      return undefined;
    }
    return value.name;
  }

  private decay(key: string, value: Value): DecayValue | undefined {
    const range: ValueRule = { type: "float", min: 0, max: 1, minExclusive: true };
    if (value.kind === "word") {
      const name = this.word(key, value, DECAY_SCHEDULES);
      return name === undefined ? undefined : { kind: "schedule", name };
    }
    if (value.kind === "number") {
      const n = this.number(key, value, range);
      return n === undefined ? undefined : { kind: "fixed", value: n };
    }
    if (value.kind === "list") {
      const values = value.items.map((item) => this.number(key, item, range));
      return values.every((v) => v !== undefined) ? { kind: "list", values: values as number[] } : undefined;
    }
    this.diagnostics.push(
      diagnose("wrongType", value.span, [
        key,
        "`none`, a number, a list of numbers, `retention` or `lightning`",
        describeValue(value),
      ]),
    );
    return undefined;
  }
}
