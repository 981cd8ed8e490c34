// A strict JSON reader that keeps what JSON.parse loses: an object's keys in order with duplicates, and a
// number's text. It mirrors the reader of the generated program (templates/runtime/checkpoint.cuh's
// JsonParser, on safetensors.cuh's Parser), so that lasp can refuse before a build exactly the texts the
// program refuses: the same grammar, nesting limit and error words (offsets in bytes of UTF-8).

/** A parsed JSON value. */
export type RawJson =
  | { kind: "object"; entries: [key: string, value: RawJson][] }
  | { kind: "array"; items: RawJson[] }
  | { kind: "string"; value: string }
  /** The number's text as written (`5.0`, `1e3`, `-0`): the reader of a value decides what it means. */
  | { kind: "number"; text: string }
  | { kind: "literal"; text: "true" | "false" | "null" };

/** Text that is not JSON, in the program's words: what was expected, and where. */
export class RawJsonError extends Error {}

/** The program's limit: a value inside 32 others is refused. */
const MAX_DEPTH = 32;
const LITERALS = ["true", "false", "null"] as const;
const ESCAPES: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

/** Parses `text`, one value with only white space around it; throws RawJsonError. */
export function parseRawJson(text: string): RawJson {
  let i = 0;
  const fail = (what: string): never => {
    throw new RawJsonError(`${what} at byte ${Buffer.byteLength(text.slice(0, i), "utf8")}`);
  };
  const space = (): void => {
    while (i < text.length && " \n\r\t".includes(text[i]!)) i++;
  };
  const eat = (c: string): boolean => {
    space();
    if (text[i] !== c) return false;
    i++;
    return true;
  };
  const expect = (c: string): void => {
    if (!eat(c)) fail(`expected '${c}'`);
  };
  const digits = (): boolean => {
    const from = i;
    while (i < text.length && text[i]! >= "0" && text[i]! <= "9") i++;
    return i > from;
  };

  function string(): string {
    expect('"');
    let out = "";
    while (i < text.length && text[i] !== '"') {
      const c = text[i++]!;
      // Like the program, control characters are taken as they are.
      if (c !== "\\") {
        out += c;
        continue;
      }
      if (i >= text.length) break;
      const e = text[i++]!;
      if (e === "u") {
        let code = 0;
        for (let k = 0; k < 4; k++, i++) {
          const v = /[0-9a-fA-F]/.test(text[i] ?? "") ? parseInt(text[i]!, 16) : -1;
          if (v < 0) fail("a bad \\u escape");
          code = code * 16 + v;
        }
        out += String.fromCharCode(code);
      } else {
        out += ESCAPES[e] ?? fail("an unknown escape in a string");
      }
    }
    expect('"');
    return out;
  }

  function number(): string {
    // JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
    const start = i;
    if (text[i] === "-") i++;
    if (text[i] === "0") i++;
    else if (!digits()) fail("expected a value");
    if (text[i] === ".") {
      i++;
      if (!digits()) fail("expected digits after '.'");
    }
    if (text[i] === "e" || text[i] === "E") {
      i++;
      if (text[i] === "+" || text[i] === "-") i++;
      if (!digits()) fail("expected digits in the exponent");
    }
    return text.slice(start, i);
  }

  function value(depth: number): RawJson {
    space();
    if (depth > MAX_DEPTH) fail("values nested too deep");
    if (i >= text.length) fail("expected a value");
    const c = text[i]!;
    if (c === "{" || c === "[") {
      i++;
      const close = c === "{" ? "}" : "]";
      const entries: [string, RawJson][] = [];
      const items: RawJson[] = [];
      if (!eat(close)) {
        do {
          if (c === "[") {
            items.push(value(depth + 1));
            continue;
          }
          space();
          if (text[i] !== '"') fail("expected a key in quotes");
          const key = string();
          expect(":");
          entries.push([key, value(depth + 1)]);
        } while (eat(","));
        expect(close);
      }
      return c === "{" ? { kind: "object", entries } : { kind: "array", items };
    }
    if (c === '"') return { kind: "string", value: string() };
    const literal = LITERALS.find((word) => text.startsWith(word, i));
    if (literal !== undefined) {
      i += literal.length;
      return { kind: "literal", text: literal };
    }
    return { kind: "number", text: number() };
  }

  const root = value(0);
  space();
  if (i !== text.length) fail("text after the object");
  return root;
}
