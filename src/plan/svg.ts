// `lasp plan --svg`: tokens/s per GPU against the GPU count (when the plan spans several) or the sequence
// length, one line per strategy combination, as the LASP-2 paper's scalability figure draws it. Points that do
// not fit the GPU's memory are hollow. Axes are logarithmic in base 2 (GPU counts and lengths double).
import { esc, writtenBy } from "../inspect/svg.js";
import type { Plan, PlanRow } from "./plan.js";
import { tokensText } from "./text.js";

const WIDTH = 900;
const HEIGHT = 520;
const LEFT = 90;
const RIGHT = 330; // room for the legend
const TOP = 50;
const BOTTOM = 60;
const COLORS = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
  "#7f7f7f",
  "#bcbd22",
];

export interface Line {
  name: string;
  points: { x: number; y: number; fits: boolean }[];
}

/** The lines the picture draws: x is GPUs when the plan has several GPU counts, else seq_len. */
export function planLines(plan: Plan): { axis: "gpus" | "seqLen"; lines: Line[] } {
  const axis = plan.gpus.length > 1 ? "gpus" : "seqLen";
  const key = (r: PlanRow): string => {
    const kinds = [r.choice.linear, r.choice.softmax].filter((s) => s !== undefined).join(" + ");
    const split =
      axis === "gpus" ? `data ${r.choice.data}` : `sequence ${r.choice.sequence} x data ${r.choice.data}`;
    const other = axis === "gpus" && plan.seqLens.length > 1 ? `, seq_len ${tokensText(r.seqLen)}` : "";
    const gpus = axis === "seqLen" && plan.gpus.length > 1 ? `, ${r.gpus} GPUs` : "";
    return `${kinds}, ${r.choice.layout}, ${split}${other}${gpus}`;
  };
  const lines = new Map<string, Line>();
  for (const r of plan.rows) {
    const name = key(r);
    const line = lines.get(name) ?? { name, points: [] };
    line.points.push({ x: axis === "gpus" ? r.gpus : r.seqLen, y: r.tokensPerSecondPerGpu, fits: r.fits });
    lines.set(name, line);
  }
  for (const line of lines.values()) line.points.sort((a, b) => a.x - b.x);
  return { axis, lines: [...lines.values()] };
}

export function planSvg(plan: Plan): string {
  const { axis, lines } = planLines(plan);
  const xs = (axis === "gpus" ? plan.gpus : plan.seqLens).slice().sort((a, b) => a - b);
  const ys = lines.flatMap((l) => l.points.map((p) => p.y));
  const yMax = niceCeil(Math.max(1, ...ys));
  const plotW = WIDTH - LEFT - RIGHT;
  const plotH = HEIGHT - TOP - BOTTOM;
  const lo = Math.log2(xs[0]!);
  const hi = Math.log2(xs.at(-1)!);
  const px = (x: number): number =>
    LEFT + (hi === lo ? plotW / 2 : ((Math.log2(x) - lo) / (hi - lo)) * plotW);
  const py = (y: number): number => TOP + plotH - (y / yMax) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12" ${writtenBy("plan")}>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${LEFT}" y="24" font-size="15">${esc(`${plan.spec}: tokens/s per GPU on ${plan.machine} (predicted)`)}</text>`,
    `<line x1="${LEFT}" y1="${TOP + plotH}" x2="${LEFT + plotW}" y2="${TOP + plotH}" stroke="black"/>`,
    `<line x1="${LEFT}" y1="${TOP}" x2="${LEFT}" y2="${TOP + plotH}" stroke="black"/>`,
  ];
  for (const x of xs)
    out.push(
      `<text x="${r(px(x))}" y="${TOP + plotH + 18}" text-anchor="middle">${axis === "gpus" ? x : tokensText(x)}</text>`,
    );
  out.push(
    `<text x="${LEFT + plotW / 2}" y="${HEIGHT - 18}" text-anchor="middle">${axis === "gpus" ? "GPUs" : "sequence length (tokens)"}</text>`,
  );
  for (let i = 0; i <= 5; i++) {
    const y = (yMax * i) / 5;
    out.push(
      `<line x1="${LEFT}" y1="${r(py(y))}" x2="${LEFT + plotW}" y2="${r(py(y))}" stroke="#ddd"/>`,
      `<text x="${LEFT - 6}" y="${r(py(y) + 4)}" text-anchor="end">${Math.round(y).toLocaleString("en-US")}</text>`,
    );
  }
  out.push(
    `<text transform="translate(20 ${TOP + plotH / 2}) rotate(-90)" text-anchor="middle">tokens/s per GPU</text>`,
  );
  lines.forEach((line, i) => {
    const color = COLORS[i % COLORS.length]!;
    const path = line.points.map((p) => `${r(px(p.x))},${r(py(p.y))}`).join(" ");
    out.push(`<g><title>${esc(line.name)}</title>`);
    if (line.points.length > 1)
      out.push(`<polyline points="${path}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const p of line.points)
      out.push(
        `<circle cx="${r(px(p.x))}" cy="${r(py(p.y))}" r="4" stroke="${color}" stroke-width="2" fill="${p.fits ? color : "white"}"><title>${esc(`${line.name}: ${Math.round(p.y)} tokens/s per GPU${p.fits ? "" : " (does not fit)"}`)}</title></circle>`,
      );
    out.push("</g>");
    const ly = TOP + 10 + i * 18;
    out.push(
      `<line x1="${WIDTH - RIGHT + 20}" y1="${ly}" x2="${WIDTH - RIGHT + 40}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${WIDTH - RIGHT + 46}" y="${ly + 4}">${esc(line.name)}</text>`,
    );
  });
  out.push(
    `<text x="${WIDTH - RIGHT + 20}" y="${TOP + 10 + lines.length * 18 + 10}" fill="#555">hollow: does not fit the GPU's memory</text>`,
    "</svg>",
  );
  return `${out.join("\n")}\n`;
}

/** 1, 2 or 5 times a power of ten, at least `y`. */
function niceCeil(y: number): number {
  const p = 10 ** Math.floor(Math.log10(y));
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= y)!;
}

function r(x: number): string {
  return String(Math.round(x * 100) / 100);
}
