import { describe, expect, it } from "vitest";
import { escapeXml, lossChartSvg, niceTicks, type LossPoint } from "./loss-chart.js";

const curve = (n: number, warmup = 2): LossPoint[] =>
  Array.from({ length: n }, (_, step) => ({
    step,
    loss: 5.5 * Math.exp(-step / 10) + 1,
    warmup: step < warmup,
  }));

/** The text of every element with this class. */
const texts = (svg: string, cls: string): string[] =>
  [...svg.matchAll(new RegExp(`<text class="${cls}"[^>]*>([^<]*)</text>`, "g"))].map((m) => m[1]!);

const polyline = (svg: string): [number, number][] => {
  const points = /<polyline class="loss" points="([^"]*)"/.exec(svg)?.[1] ?? "";
  return points.split(" ").map((p) => p.split(",").map(Number) as [number, number]);
};

describe("the loss chart", () => {
  it("draws one point per step, left to right, the lowest loss lowest", () => {
    const svg = lossChartSvg(curve(30), { title: "tiny" });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
    const points = polyline(svg);
    expect(points).toHaveLength(30);
    for (let i = 1; i < points.length; i++) {
      expect(points[i]![0]).toBeGreaterThan(points[i - 1]![0]);
      // The loss falls, so the curve goes down the picture (SVG's y grows downwards).
      expect(points[i]![1]).toBeGreaterThan(points[i - 1]![1]);
    }
  });

  it("labels both axes, numbers the steps from 1 and the loss with round ticks around its range", () => {
    const svg = lossChartSvg(curve(30), { title: "tiny" });
    expect(texts(svg, "x-label")).toEqual(["step"]);
    expect(texts(svg, "y-label")).toEqual(["loss"]);
    const xs = texts(svg, "x-tick").map(Number);
    expect(xs[0]).toBeGreaterThanOrEqual(1);
    expect(xs.at(-1)).toBeLessThanOrEqual(30);
    const ys = texts(svg, "y-tick").map(Number);
    expect(ys.length).toBeGreaterThanOrEqual(3);
    // The losses run from 1.30 to 6.50: the ticks cover that range and stay near it.
    expect(Math.min(...ys)).toBeLessThanOrEqual(2);
    expect(Math.max(...ys)).toBeGreaterThanOrEqual(6);
    expect(ys.every((t) => t >= 1 && t <= 7)).toBe(true);
  });

  it("writes the minimum, the last and the maximum loss, and marks the warm-up steps", () => {
    const points = curve(30);
    const svg = lossChartSvg(points, { title: "tiny" });
    const last = points.at(-1)!.loss;
    expect(texts(svg, "stats")).toEqual([
      `min ${last.toFixed(4)} at step 30, last ${last.toFixed(4)}, max ${(6.5).toFixed(4)}`,
    ]);
    expect(texts(svg, "warmup-label")).toEqual(["warm-up"]);
    expect(lossChartSvg(curve(5, 0), { title: "t" })).not.toContain('class="warmup"');
  });

  it("escapes the title, and leaves out non-finite losses saying how many", () => {
    const svg = lossChartSvg([...curve(3, 0), { step: 3, loss: Number.NaN, warmup: false }], {
      title: `a<b & "c"`,
    });
    expect(texts(svg, "title")).toEqual(["a&lt;b &amp; &quot;c&quot;"]);
    expect(svg).not.toContain("a<b");
    expect(polyline(svg)).toHaveLength(3);
    expect(texts(svg, "stats")[0]).toContain("1 non-finite left out");
  });

  it("draws a flat or one-point curve, and nothing without losses", () => {
    const flat = lossChartSvg(
      [0, 1, 2].map((step) => ({ step, loss: 2, warmup: false })),
      { title: "f" },
    );
    const ys = new Set(polyline(flat).map((p) => p[1]));
    expect(ys.size).toBe(1);
    expect(polyline(lossChartSvg([{ step: 0, loss: 3, warmup: false }], { title: "one" }))).toHaveLength(1);
    expect(lossChartSvg([], { title: "none" })).toBe("");
  });
});

describe("chart helpers", () => {
  it("picks ticks of 1, 2 or 5 times a power of ten", () => {
    expect(niceTicks(0, 10)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(0, 30)).toEqual([0, 10, 20, 30]);
    expect(niceTicks(1.03, 1.97)).toEqual([1.2, 1.4, 1.6, 1.8]);
    expect(niceTicks(3, 3)).toEqual([3]);
  });

  it("escapes the five XML specials", () => {
    expect(escapeXml(`<&>"'`)).toBe("&lt;&amp;&gt;&quot;&apos;");
  });
});

describe("a training run's held-out losses", () => {
  const evalLine = (svg: string): [number, number][] => {
    const points = /<polyline class="eval" points="([^"]*)"/.exec(svg)?.[1] ?? "";
    return points === "" ? [] : points.split(" ").map((p) => p.split(",").map(Number) as [number, number]);
  };

  it("draw a second line with a mark at each evaluation, inside the y range, and say the last", () => {
    const train = curve(30, 0);
    const evals = [
      { step: 10, loss: 9.5 }, // above every training loss: the y axis must reach it
      { step: 20, loss: 4.25 },
      { step: 30, loss: 4.0 },
    ];
    const svg = lossChartSvg(train, { title: "t" }, evals);
    const line = evalLine(svg);
    expect(line).toHaveLength(3);
    expect(line[0]![0]).toBeLessThan(line[1]![0]); // later steps further right
    expect(line[0]![1]).toBeLessThan(line[1]![1]); // the higher loss drawn higher (smaller y)
    // Inside the plot (top margin 52, bottom 360 - 48), the highest point at the top's padding.
    for (const [, y] of line) {
      expect(y).toBeGreaterThanOrEqual(52);
      expect(y).toBeLessThanOrEqual(312);
    }
    expect(line[0]![1]).toBeLessThan(70);
    expect(svg.match(/class="eval-point"/g)).toHaveLength(3);
    expect(texts(svg, "stats")[0]).toContain("held-out last 4.0000");
    expect(svg).toContain('class="legend"');
  });

  it("leave the chart as it was without evaluations", () => {
    const svg = lossChartSvg(curve(30, 0), { title: "t" });
    expect(evalLine(svg)).toEqual([]);
    expect(svg).not.toContain('class="legend"');
    expect(lossChartSvg([], { title: "t" }, [{ step: 1, loss: 2 }])).toBe("");
  });
});
