import { describe, expect, it } from "vitest";
import { parseRawJson, RawJsonError } from "./json-raw.js";

const error = (text: string): string => {
  try {
    parseRawJson(text);
  } catch (e) {
    expect(e).toBeInstanceOf(RawJsonError);
    return (e as Error).message;
  }
  throw new Error(`parsed: ${text}`);
};

describe("parseRawJson", () => {
  it("keeps an object's keys in order, duplicates included", () => {
    expect(parseRawJson('{"b": 1, "a": true, "b": null}')).toEqual({
      kind: "object",
      entries: [
        ["b", { kind: "number", text: "1" }],
        ["a", { kind: "literal", text: "true" }],
        ["b", { kind: "literal", text: "null" }],
      ],
    });
  });

  it("keeps a number's text as written", () => {
    for (const text of ["5.0", "1e3", "-0", "18446744073709551616", "1E-3", "0.30000000000000004"])
      expect(parseRawJson(` ${text}\n`)).toEqual({ kind: "number", text });
  });

  it("reads nested objects and arrays", () => {
    expect(parseRawJson('{"a": {"b": [1, {}, []]}, "c": false}')).toEqual({
      kind: "object",
      entries: [
        [
          "a",
          {
            kind: "object",
            entries: [
              [
                "b",
                {
                  kind: "array",
                  items: [
                    { kind: "number", text: "1" },
                    { kind: "object", entries: [] },
                    { kind: "array", items: [] },
                  ],
                },
              ],
            ],
          },
        ],
        ["c", { kind: "literal", text: "false" }],
      ],
    });
  });

  it("decodes strings' escapes, in keys too", () => {
    expect(parseRawJson(String.raw`{"st\u0065p": "a\"b\\c\/d\b\f\n\r\t\u00e9"}`)).toEqual({
      kind: "object",
      entries: [["step", { kind: "string", value: 'a"b\\c/d\b\f\n\r\t\u00e9' }]],
    });
  });

  it("accepts what the program's reader accepts beyond JSON.parse: control characters in strings", () => {
    expect(parseRawJson('"a\tb\u0001"')).toEqual({ kind: "string", value: "a\tb\u0001" });
  });

  it("refuses what is not JSON, saying what it expected and at which byte, as the program does", () => {
    expect(error("")).toBe("expected a value at byte 0");
    expect(error("garbage")).toBe("expected a value at byte 0");
    expect(error('{"step": 7,}')).toBe("expected a key in quotes at byte 11");
    expect(error('{"a": 1} trailing')).toBe("text after the object at byte 9");
    expect(error("[1,]")).toBe("expected a value at byte 3");
    expect(error('{"a" 1}')).toBe("expected ':' at byte 5");
    expect(error("[1 2]")).toBe("expected ']' at byte 3");
    expect(error("01")).toBe("text after the object at byte 1");
    expect(error("1.")).toBe("expected digits after '.' at byte 2");
    expect(error("1e+")).toBe("expected digits in the exponent at byte 3");
    expect(error("-")).toBe("expected a value at byte 1");
    expect(error("+1")).toBe("expected a value at byte 0");
    expect(error("tru")).toBe("expected a value at byte 0");
    expect(error('"abc')).toBe("expected '\"' at byte 4");
    expect(error('"\\x"')).toBe("an unknown escape in a string at byte 3");
    expect(error('"\\u12g4"')).toBe("a bad \\u escape at byte 5");
    // Offsets count bytes of UTF-8, as the program reads the file.
    expect(error('"é" x')).toBe("text after the object at byte 5");
  });

  it("refuses a value nested in more than 32 others, as the program does", () => {
    expect(parseRawJson("[".repeat(32) + "1" + "]".repeat(32)).kind).toBe("array");
    expect(parseRawJson("[".repeat(33) + "]".repeat(33)).kind).toBe("array");
    expect(error("[".repeat(33) + "1" + "]".repeat(33))).toBe("values nested too deep at byte 33");
  });
});
