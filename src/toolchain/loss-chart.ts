// The loss curve of a run as a small SVG line chart (the run folder's loss.svg): one point per step, steps
// counted from 1 as the status line counts them, the y axis from the lowest loss to the highest with round
// ticks, the warm-up steps shaded, the minimum and the last loss written out; a training run's held-out losses
// as a second, dashed line. A pure function of the losses,
// so tests read its structure; the file is self-contained (no fonts, scripts or links to fetch).

export interface LossPoint {
  /** The program's step number (0-based over warm-up and timed steps together, PROTOCOL.md). */
  step: number;
  loss: number;
  warmup: boolean;
}

/** A held-out evaluation (train mode's `eval` event): its step is the optimizer steps done, counted from 1. */
export interface EvalPoint {
  step: number;
  loss: number;
}

export interface LossChartOptions {
  /** The chart's heading, e.g. the spec's name; escaped. */
  title: string;
  width?: number;
  height?: number;
}

const FONT = "DejaVu Sans, Verdana, Arial, sans-serif";
const MARGIN = { left: 64, right: 24, top: 52, bottom: 48 };

/** Text for SVG content and attribute values. */
export function escapeXml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

/** Round tick values covering lo..hi: steps of 1, 2 or 5 times a power of ten, about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const rough = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const ticks: number[] = [];
  // Rounded to the step's own precision, so 0.30000000000000004 prints as 0.3.
  const digits = Math.max(0, -Math.floor(Math.log10(step)));
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    ticks.push(Number(t.toFixed(digits)));
  return ticks;
}

function label(value: number, ticks: readonly number[]): string {
  const spacing = ticks.length > 1 ? Math.abs(ticks[1]! - ticks[0]!) : 1;
  return value.toFixed(Math.max(0, Math.min(6, -Math.floor(Math.log10(spacing)))));
}

/**
 * The chart of the finite losses (non-finite ones are left out and counted in a note), and the held-out losses
 * (`evals`) as a second line with a mark at each evaluation; "" when there is no training loss.
 */
export function lossChartSvg(
  points: readonly LossPoint[],
  options: LossChartOptions,
  evals: readonly EvalPoint[] = [],
): string {
  const shown = points.filter((p) => Number.isFinite(p.loss) && Number.isFinite(p.step));
  if (shown.length === 0) return "";
  const held = evals.filter((e) => Number.isFinite(e.loss) && Number.isFinite(e.step));
  const skipped = points.length - shown.length;
  const width = options.width ?? 640;
  const height = options.height ?? 360;
  const plot = {
    x0: MARGIN.left,
    x1: width - MARGIN.right,
    y0: MARGIN.top,
    y1: height - MARGIN.bottom,
  };
  const steps = [...shown.map((p) => p.step + 1), ...held.map((e) => e.step)];
  const losses = [...shown.map((p) => p.loss), ...held.map((e) => e.loss)];
  const first = Math.min(...steps);
  const last = Math.max(...steps);
  const lo = Math.min(...losses);
  const hi = Math.max(...losses);
  // A flat curve still gets a y range, so it draws as a line across the middle.
  const pad = hi > lo ? (hi - lo) * 0.05 : Math.max(Math.abs(lo) * 0.05, 0.5);
  const yLo = lo - pad;
  const yHi = hi + pad;
  const xLo = last > first ? first : first - 1;
  const xHi = last > first ? last : first + 1;
  const x = (step: number): number => plot.x0 + ((step - xLo) / (xHi - xLo)) * (plot.x1 - plot.x0);
  const y = (loss: number): number => plot.y1 - ((loss - yLo) / (yHi - yLo)) * (plot.y1 - plot.y0);
  const r = (v: number): string => v.toFixed(1);

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}" font-size="11">`,
    `<title>${escapeXml(options.title)}: loss per step</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text class="title" x="${plot.x0}" y="20" font-size="13" font-weight="bold">${escapeXml(options.title)}</text>`,
  ];

  // Warm-up steps: a shaded band up to halfway to the first timed step.
  const warm = shown.filter((p) => p.warmup).map((p) => p.step + 1);
  if (warm.length > 0) {
    const timed = shown.filter((p) => !p.warmup).map((p) => p.step + 1);
    const end = timed.length > 0 ? (Math.max(...warm) + Math.min(...timed)) / 2 : Math.max(...warm);
    const from = Math.max(plot.x0, x(Math.min(...warm) - 0.5));
    const to = Math.min(plot.x1, Math.max(from + 2, x(end)));
    out.push(
      `<rect class="warmup" x="${r(from)}" y="${plot.y0}" width="${r(to - from)}" height="${plot.y1 - plot.y0}" fill="#eeeeee"/>`,
      `<text class="warmup-label" x="${r(from + 3)}" y="${plot.y0 + 12}" fill="#777777">warm-up</text>`,
    );
  }

  // Axes, ticks and grid lines.
  const yTicks = niceTicks(lo - pad, hi + pad, 6);
  const xTicks = niceTicks(xLo, xHi, 6).filter((t) => Number.isInteger(t));
  for (const t of yTicks) {
    out.push(
      `<line x1="${plot.x0}" y1="${r(y(t))}" x2="${plot.x1}" y2="${r(y(t))}" stroke="#e4e4e4"/>`,
      `<text class="y-tick" x="${plot.x0 - 6}" y="${r(y(t) + 4)}" text-anchor="end">${label(t, yTicks)}</text>`,
    );
  }
  for (const t of xTicks) {
    out.push(
      `<line x1="${r(x(t))}" y1="${plot.y1}" x2="${r(x(t))}" y2="${plot.y1 + 4}" stroke="#333333"/>`,
      `<text class="x-tick" x="${r(x(t))}" y="${plot.y1 + 16}" text-anchor="middle">${t}</text>`,
    );
  }
  out.push(
    `<path class="axes" d="M${plot.x0},${plot.y0} V${plot.y1} H${plot.x1}" fill="none" stroke="#333333"/>`,
    `<text class="x-label" x="${(plot.x0 + plot.x1) / 2}" y="${height - 10}" text-anchor="middle">step</text>`,
    `<text class="y-label" transform="translate(16 ${(plot.y0 + plot.y1) / 2}) rotate(-90)" text-anchor="middle">loss</text>`,
  );

  // The curve, the minimum and the last loss.
  const coords = shown.map((p) => `${r(x(p.step + 1))},${r(y(p.loss))}`).join(" ");
  out.push(`<polyline class="loss" points="${coords}" fill="none" stroke="#3b6ea5" stroke-width="1.5"/>`);
  const min = shown.reduce((a, b) => (b.loss < a.loss ? b : a));
  const end = shown.reduce((a, b) => (b.step > a.step ? b : a));
  const trainHi = Math.max(...shown.map((p) => p.loss));
  let heldText = "";
  if (held.length > 0) {
    const evalCoords = held.map((e) => `${r(x(e.step))},${r(y(e.loss))}`).join(" ");
    out.push(
      `<polyline class="eval" points="${evalCoords}" fill="none" stroke="#d35400" stroke-width="1.5" stroke-dasharray="4 3"/>`,
      ...held.map(
        (e) =>
          `<circle class="eval-point" cx="${r(x(e.step))}" cy="${r(y(e.loss))}" r="2.5" fill="#d35400"/>`,
      ),
      `<text class="legend" x="${plot.x1}" y="38" text-anchor="end"><tspan fill="#3b6ea5">training</tspan>  <tspan fill="#d35400">held-out</tspan></text>`,
    );
    heldText = `; held-out last ${held.reduce((a, b) => (b.step > a.step ? b : a)).loss.toFixed(4)}`;
  }
  out.push(
    `<circle class="min" cx="${r(x(min.step + 1))}" cy="${r(y(min.loss))}" r="3" fill="#c0392b"/>`,
    `<text class="stats" x="${plot.x0}" y="38" fill="#555555">min ${min.loss.toFixed(4)} at step ${min.step + 1}, last ${end.loss.toFixed(4)}, max ${trainHi.toFixed(4)}${heldText}${skipped > 0 ? `, ${skipped} non-finite left out` : ""}</text>`,
    "</svg>",
  );
  return `${out.join("\n")}\n`;
}
