import { describe, expect, it } from "vitest";
import { formatTime, outputWidth, table, wrap } from "./units.js";

describe("table", () => {
  const header = ["#", "step", "size"];
  const rows = [
    ["0", "attend to this rank's own keys (no communication needed)", "17.6 TFLOP"],
    ["1", "merge", "4.3 GFLOP"],
  ];

  it("is as wide as its cells without a width", () => {
    const lines = table(header, rows).split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[2]).toBe("  0  attend to this rank's own keys (no communication needed)  17.6 TFLOP");
  });

  it("wraps the widest column at spaces to fit a width, continuing the row below", () => {
    const lines = table(header, rows, "  ", 50).split("\n");
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(50);
    expect(lines.slice(2).map((l) => l.slice(5, 5 + 10).trim())[0]).toBe("attend to");
    // Every word of the long cell is still there, in order.
    const words = lines
      .slice(2, -1)
      .map((l) =>
        l
          .slice(5)
          .replace(/\d+\.\d TFLOP/, "")
          .trim(),
      )
      .join(" ");
    expect(words).toBe(rows[0]![1]);
    expect(lines[lines.length - 1]).toMatch(/^ {2}1 {2}merge +4\.3 GFLOP$/);
  });

  it("never breaks a word, even when the width cannot be met", () => {
    const lines = table(["a"], [["incomprehensibilities"]], "", 5).split("\n");
    expect(lines[2]).toBe("incomprehensibilities");
  });
});

describe("wrap", () => {
  it("splits at spaces into lines no longer than the width", () => {
    expect(wrap("one two three four", 9)).toEqual(["one two", "three", "four"]);
    expect(wrap("short", 9)).toEqual(["short"]);
  });
});

describe("outputWidth", () => {
  it("is 100 columns at most, fewer where COLUMNS or the terminal says so", () => {
    expect(outputWidth({}, { isTTY: false })).toBe(100);
    expect(outputWidth({ COLUMNS: "80" }, { isTTY: false })).toBe(80);
    expect(outputWidth({ COLUMNS: "200" }, { isTTY: true, columns: 250 })).toBe(100);
    expect(outputWidth({}, { isTTY: true, columns: 72 })).toBe(72);
    expect(outputWidth({ COLUMNS: "junk" }, { isTTY: false })).toBe(100);
    expect(outputWidth({ COLUMNS: "5" }, { isTTY: false })).toBe(40);
  });
});

describe("formatTime", () => {
  it("gives three significant digits in a fitting unit", () => {
    expect(formatTime(0.000544210944)).toBe("544 µs");
    expect(formatTime(0.0014604706)).toBe("1.46 ms");
    expect(formatTime(3.3377)).toBe("3.34 s");
    expect(formatTime(2.5e-8)).toBe("25.0 ns");
  });
});
