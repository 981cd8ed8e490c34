import { describe, expect, it } from "vitest";
import { sparkline } from "./sparkline.js";

describe("sparkline", () => {
  it("draws the lowest value as the lowest block and the highest as the full block", () => {
    expect(sparkline([5.5, 4, 3, 2, 1.5])).toBe("█▅▄▂▁");
    expect(sparkline([0, 7])).toBe("▁█");
  });

  it("averages a long series down to the width, keeping its trend", () => {
    const falling = Array.from({ length: 1000 }, (_, i) => 5.5 - i / 250);
    const line = sparkline(falling, 20);
    expect([...line]).toHaveLength(20);
    expect(line.startsWith("█")).toBe(true);
    expect(line.endsWith("▁")).toBe(true);
  });

  it("shows a flat series in the middle, leaves out non-finite values, and gives nothing for no values", () => {
    expect(sparkline([2, 2, 2])).toBe("▄▄▄");
    expect(sparkline([1, Number.NaN, 3, Number.POSITIVE_INFINITY])).toBe("▁█");
    expect(sparkline([])).toBe("");
    expect(sparkline([Number.NaN])).toBe("");
  });
});
