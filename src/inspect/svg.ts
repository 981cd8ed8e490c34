// The SVG timeline `lasp inspect --svg` writes: the simulated schedule of a training step, one lane per stream
// per rank, every step a rectangle with a tooltip. Passes run in training order (forward up the selected
// layers, backward down them), each in its own segment with a header; an overview strip on top shows the
// passes to scale. When their durations differ a lot (a softmax layer next to linear ones), each segment gets
// its own time scale so the short passes stay readable; the overview keeps the true proportions. The times
// written out (pass = projection + attention, the hidden share, the weight-gradient sum) are read from the
// report's predictions (report.ts) that the text and the JSON show, and the rectangles from the same
// simulation: the caller passes inspectNumbers' one result, so nothing here is computed a second time.
import type { ComputeStep, Pass, ScheduleProgram, Step } from "../schedule/ir.js";
import { boundOf, computeTime, type Machine } from "../cost/machine.js";
import { passOrder, type PassTimeline } from "../cost/simulate.js";
import type { InspectNumbers, PassPrediction } from "./report.js";
import { formatBytes as fmtBytes, formatFlops as fmtFlops, formatTime as fmtTime } from "../text/units.js";

export interface TimelineOptions {
  /** Stack entries to show (indices into `program.layers`); default all. */
  layers?: number[];
  /** Ranks to show; default all. Every rank is simulated either way. */
  ranks?: number[];
  /** Width of the picture in px; default 1600. */
  width?: number;
  /**
   * "shared": one time scale for every segment; "per-pass": each segment fills the same width. Default:
   * shared unless the longest pass is more than 4 times the shortest.
   */
  scale?: "shared" | "per-pass";
}

export type Category = "linear" | "softmax" | "projection" | "collective" | "p2p" | "data";

export const CATEGORY_STYLE: Record<Category, { fill: string; text: string; name: string }> = {
  linear: { fill: "#3b6ea5", text: "#ffffff", name: "linear attention compute" },
  softmax: { fill: "#f0a04b", text: "#1d1d1d", name: "softmax attention compute" },
  projection: { fill: "#2f8f8a", text: "#ffffff", name: "layer projection (GEMM)" },
  collective: { fill: "#8e5ba8", text: "#ffffff", name: "collective (NCCL)" },
  p2p: { fill: "#3f9a5a", text: "#ffffff", name: "send / recv" },
  data: { fill: "#a5a5a5", text: "#1d1d1d", name: "data movement (pack, copy, zero, sum)" },
};

export function categoryOf(step: Step): Category {
  if (step.kind === "collective") return "collective";
  if (step.kind === "send" || step.kind === "recv") return "p2p";
  if (step.op.startsWith("linear.")) return "linear";
  if (step.op.startsWith("softmax.")) return "softmax";
  // A host step is the layer's own projection GEMM that the schedule runs beside its collective.
  if (step.op === "host") return "projection";
  return "data";
}

// Geometry (px).
const FONT = "DejaVu Sans, Verdana, Arial, sans-serif";
const CHAR = 0.6; // average glyph width of the font, in ems
const MARGIN = 16;
const LANE_LABEL = 92;
const LANE = 17;
const STREAM_GAP = 1;
const RANK_GAP = 7;
const SEGMENT_GAP = 12;
const MIN_SEGMENT = 340;
const HEADER = 34;
const AXIS = 26;
const ROW_GAP = 22;

interface Segment {
  entry: number; // index into program.layers
  schedule: number;
  pass: Pass;
  timeline: PassTimeline;
  /** The report's numbers for this pass: every time the picture writes out comes from here. */
  prediction: PassPrediction;
  offset: number; // start within the step, s
}

/** Renders the simulated timeline of the selected layers as a standalone SVG document. */
export function timelineSvg(
  program: ScheduleProgram,
  /** inspectNumbers(spec, program, profile): the machine, its simulation and the report's predictions. */
  numbers: InspectNumbers,
  options: TimelineOptions = {},
): string {
  const { machine, times } = numbers;
  const predictions = numbers.report.predictions;
  const width = options.width ?? 1600;
  const entries = options.layers ?? program.layers.map((_, i) => i);
  for (const e of entries)
    if (program.layers[e] === undefined)
      throw new Error(`no layer ${e} in a stack of ${program.layers.length}`);
  const allRanks = Array.from({ length: program.layout.ranks }, (_, r) => r);
  const ranks = options.ranks ?? allRanks;
  for (const r of ranks)
    if (!allRanks.includes(r)) throw new Error(`no rank ${r} in a group of ${allRanks.length}`);

  // Each (layer kind, pass) is simulated once, for the whole program; place the passes in training order.
  const timelineOf = (schedule: number, pass: Pass): PassTimeline => times.kinds[schedule]![pass];
  let clock = 0;
  const segments: Segment[] = passOrder(entries).map(({ layer: entry, pass }) => {
    const schedule = program.layers[entry]!;
    const timeline = timelineOf(schedule, pass);
    const prediction = predictions.kinds[schedule]![pass];
    const segment = { entry, schedule, pass, timeline, prediction, offset: clock };
    clock += timeline.makespan;
    return segment;
  });
  const total = clock;
  const durations = segments.map((s) => s.timeline.makespan).filter((d) => d > 0);
  const spread = durations.length > 0 ? Math.max(...durations) / Math.min(...durations) : 1;
  const scale = options.scale ?? (spread > 4 ? "per-pass" : "shared");

  const plotX = MARGIN + LANE_LABEL;
  const plotWidth = width - plotX - MARGIN;
  const perRow = Math.max(1, Math.floor((plotWidth + SEGMENT_GAP) / (MIN_SEGMENT + SEGMENT_GAP)));
  const rows: Segment[][] = [];
  for (let i = 0; i < segments.length; i += perRow) rows.push(segments.slice(i, i + perRow));
  const rowSpan = Math.max(0, ...rows.map((row) => row.reduce((a, s) => a + s.timeline.makespan, 0)));

  const out: string[] = [];
  let y = MARGIN;

  // Title.
  const hidden = sumOf(segments, (s) => s.prediction.comm * s.prediction.hiddenFraction);
  const comm = sumOf(segments, (s) => s.prediction.comm);
  const title = `${program.spec.model} — ${program.layout.ranks} rank${program.layout.ranks === 1 ? "" : "s"}, ${program.layout.layout} layout, ${fmtTokens(program.sizes.seqLen)} tokens`;
  const passes = sumOf(segments, (s) => s.prediction.pass);
  const projection = sumOf(segments, (s) => s.prediction.projection);
  const attention = sumOf(segments, (s) => s.prediction.attention);
  const subtitle =
    `${entries.length} of the ${program.layers.length} layers (${entries.join(", ")}), forward then backward: ` +
    `${fmtTime(passes)} of passes = ${fmtTime(projection)} projection + ${fmtTime(attention)} attention ` +
    `on ${machine.name}; ` +
    (comm > 0 ? `${pct(hidden / comm)} of the communication hidden behind compute` : "no communication");
  const sums = [...new Set(entries.map((e) => program.layers[e]!))].map((k) => predictions.kinds[k]!);
  // One GPU holds the whole gradient: the program issues no sum (report.ts's collective "none").
  const gradients = sums.every((k) => k.weightGradientSum.collective === "none")
    ? "weight-gradient sum: none on one GPU"
    : `weight-gradient sum after each layer's backward, on its own stream (not drawn): ` +
      sums
        .map(
          (k) =>
            `${k.kind} ${fmtTime(k.weightGradientSum.time)} (${k.weightGradientSum.collective} of ${fmtBytes(k.weightGradientSum.bytes)} over ${k.weightGradientSum.ranks} GPUs)`,
        )
        .join(", ");
  out.push(text(MARGIN, y + 14, title, { size: 16, weight: "bold" }));
  out.push(text(MARGIN, y + 32, subtitle, { size: 12, fill: "#333" }));
  out.push(text(MARGIN, y + 48, gradients, { size: 12, fill: "#333" }));
  y += 62;

  // Overview: every pass to scale.
  out.push(text(MARGIN, y + 13, "whole step", { size: 11, fill: "#444" }));
  const overviewH = 20;
  const ox = (t: number): number => plotX + (total > 0 ? (t / total) * plotWidth : 0);
  for (const s of segments) {
    const x0 = ox(s.offset);
    const w = Math.max(0.75, ox(s.offset + s.timeline.makespan) - x0);
    const layer = program.schedules[s.schedule]!;
    const fill =
      layer.layer.type === "linear_attention" ? CATEGORY_STYLE.linear.fill : CATEGORY_STYLE.softmax.fill;
    const name = `layer ${s.entry} ${layer.kind} ${s.pass}`;
    out.push(
      `<rect class="overview" x="${n(x0)}" y="${n(y)}" width="${n(w)}" height="${overviewH}" fill="${fill}" ` +
        `fill-opacity="${s.pass === "forward" ? 0.55 : 0.95}" stroke="#fff" stroke-width="0.5">` +
        `<title>${esc(`${name}: ${fmtTime(s.timeline.makespan)}, from ${fmtTime(s.offset)}`)}</title></rect>`,
    );
    const label = fit([`L${s.entry} ${s.pass === "forward" ? "fwd" : "bwd"}`, `${s.entry}`], w - 4, 10);
    if (label !== undefined)
      out.push(text(x0 + w / 2, y + 14, label, { size: 10, anchor: "middle", fill: "#111", pointer: false }));
  }
  y += overviewH;
  out.push(...axis(0, total, plotX, plotWidth, y));
  y += AXIS;

  // Legend.
  let lx = plotX;
  const legendY = y + 4;
  const swatch = (fill: string, opacity: number, label: string): void => {
    out.push(
      `<rect class="legend" x="${n(lx)}" y="${n(legendY)}" width="12" height="12" fill="${fill}" fill-opacity="${opacity}"/>`,
    );
    out.push(text(lx + 17, legendY + 10, label, { size: 11 }));
    lx += 17 + textWidth(label, 11) + 18;
  };
  for (const c of Object.keys(CATEGORY_STYLE) as Category[])
    swatch(CATEGORY_STYLE[c].fill, 1, CATEGORY_STYLE[c].name);
  swatch("#777777", 0.3, "pale: posted, waiting for a peer");
  y += 26;
  out.push(
    text(
      plotX,
      y + 8,
      scale === "shared"
        ? "All segments share one time scale."
        : "Each segment has its own time scale (its axis starts at 0); the whole-step strip above is to scale.",
      { size: 11, fill: "#555", style: "italic" },
    ),
  );
  y += 20;

  // Rows of segments.
  const lanesHeight = ranks.length * (2 * LANE + STREAM_GAP) + Math.max(0, ranks.length - 1) * RANK_GAP;
  const laneY = (i: number, stream: "compute" | "comm"): number =>
    i * (2 * LANE + STREAM_GAP + RANK_GAP) + (stream === "comm" ? LANE + STREAM_GAP : 0);
  for (const row of rows) {
    const top = y + HEADER;
    // Lane labels and backgrounds.
    ranks.forEach((rank, i) => {
      for (const stream of ["compute", "comm"] as const) {
        const ly = top + laneY(i, stream);
        out.push(
          `<rect class="lane" data-rank="${rank}" data-stream="${stream}" x="${n(plotX)}" y="${n(ly)}" ` +
            `width="${n(plotWidth)}" height="${LANE}" fill="${stream === "compute" ? "#f3f5f8" : "#faf6fb"}"/>`,
        );
        out.push(
          text(plotX - 6, ly + LANE - 5, `r${rank} ${stream}`, {
            size: 10.5,
            anchor: "end",
            fill: stream === "compute" ? "#222" : "#6b4a7a",
            weight: stream === "compute" ? "bold" : "normal",
          }),
        );
      }
    });
    // Segments.
    const equal = (plotWidth - (perRow - 1) * SEGMENT_GAP) / perRow;
    const pxPerSecond = rowSpan > 0 ? (plotWidth - (perRow - 1) * SEGMENT_GAP) / rowSpan : 0;
    let x = plotX;
    row.forEach((s, k) => {
      const span = s.timeline.makespan;
      const w = scale === "shared" ? span * pxPerSecond : equal;
      const tx = (t: number): number => x + (span > 0 ? (t / span) * w : 0);
      const layer = program.schedules[s.schedule]!;
      if (k > 0) {
        const sx = x - SEGMENT_GAP / 2;
        out.push(
          `<line class="separator" x1="${n(sx)}" y1="${n(y + 2)}" x2="${n(sx)}" y2="${n(top + lanesHeight + 4)}" ` +
            `stroke="#777" stroke-width="1" stroke-dasharray="3 2"/>`,
        );
      }
      const type = layer.layer.type === "linear_attention" ? "linear" : "softmax";
      const head1 = `layer ${s.entry} · ${layer.kind} (${type}, ${layer.strategy}) · ${s.pass}`;
      const hiddenText =
        s.prediction.comm > 0 ? ` · comm ${pct(s.prediction.hiddenFraction)} hidden` : " · no communication";
      const split =
        s.prediction.projection > 0
          ? ` = ${fmtTime(s.prediction.projection)} projection + ${fmtTime(s.prediction.attention)} attention`
          : "";
      const gradientSum =
        s.pass === "backward"
          ? ` · then a ${fmtTime(predictions.kinds[s.schedule]!.weightGradientSum.time)} weight-gradient sum`
          : "";
      const passTime = fmtTime(s.prediction.pass);
      const head2 = `${passTime}${split}${hiddenText}${gradientSum}`;
      out.push(
        text(x + 1, y + 13, fit([head1, `L${s.entry} ${layer.kind} ${type} ${s.pass}`], w, 11.5) ?? "", {
          size: 11.5,
          weight: "bold",
        }),
      );
      out.push(
        text(
          x + 1,
          y + 27,
          fit([head2, `${passTime}${split}${hiddenText}`, `${passTime}${split}`, passTime], w, 10.5) ?? "",
          {
            size: 10.5,
            fill: "#444",
          },
        ),
      );
      // Steps.
      ranks.forEach((rank, i) => {
        const at = s.timeline.ranks.findIndex((r) => r.rank === rank);
        const rankTimeline = s.timeline.ranks[at]!;
        const steps = layer.passes[s.pass][at]!.steps;
        for (const step of steps) {
          const t = rankTimeline.steps[step.id]!;
          const cat = categoryOf(step);
          const style = CATEGORY_STYLE[cat];
          const ly = top + laneY(i, step.stream) + 1;
          const h = LANE - 2;
          if (t.start > t.posted) {
            const wx = tx(t.posted);
            out.push(
              `<rect class="wait" x="${n(wx)}" y="${n(ly + 3)}" width="${n(Math.max(0, tx(t.start) - wx))}" ` +
                `height="${n(h - 6)}" fill="${style.fill}" fill-opacity="0.3"/>`,
            );
          }
          const x0 = tx(t.start);
          const rw = Math.max(0.75, tx(t.end) - x0);
          const tip = tooltip(step, rank, t, s, machine);
          out.push(
            `<rect class="step" data-rank="${rank}" data-step="${step.id}" x="${n(x0)}" y="${n(ly)}" ` +
              `width="${n(rw)}" height="${h}" fill="${style.fill}" stroke="#fff" stroke-width="0.5">` +
              `<title>${esc(tip)}</title></rect>`,
          );
          const label = fit(labels(step, program.layout.byRank[rank] ?? []), rw - 4, 9.5);
          if (label !== undefined)
            out.push(
              text(x0 + rw / 2, ly + h - 4, label, {
                size: 9.5,
                anchor: "middle",
                fill: style.text,
                pointer: false,
              }),
            );
        }
      });
      out.push(...axis(0, span, x, w, top + lanesHeight + 2));
      x += w + SEGMENT_GAP;
    });
    y = top + lanesHeight + 2 + AXIS + ROW_GAP;
  }
  const height = y - ROW_GAP + MARGIN;
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${n(height)}" viewBox="0 0 ${width} ${n(height)}" ` +
      `font-family="${FONT}" ${writtenBy("inspect")}>`,
    `<title>${esc(`${title}: ${subtitle}`)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${n(height)}" fill="#ffffff"/>`,
    ...out,
    `</svg>`,
    "",
  ].join("\n");
}

/** Tick marks and labels under a time range drawn from x over w px. */
function axis(t0: number, t1: number, x: number, w: number, y: number): string[] {
  const out = [
    `<line class="axis" x1="${n(x)}" y1="${n(y)}" x2="${n(x + w)}" y2="${n(y)}" stroke="#888" stroke-width="1"/>`,
  ];
  const span = t1 - t0;
  if (span <= 0 || w <= 0) return out;
  const step = niceStep(span, Math.max(1, Math.floor(w / 70)));
  for (let k = 0; ; k++) {
    const t = k * step;
    if (t > span * (1 + 1e-9)) break;
    const tx = x + (t / span) * w;
    out.push(
      `<line class="tick" x1="${n(tx)}" y1="${n(y)}" x2="${n(tx)}" y2="${n(y + 4)}" stroke="#888" stroke-width="1"/>`,
    );
    const label = fmtTick(t, step);
    // Keep the last label inside the axis.
    const anchor = k === 0 ? "start" : tx + textWidth(label, 9.5) / 2 > x + w ? "end" : "middle";
    out.push(text(tx, y + 15, label, { size: 9.5, anchor, fill: "#555" }));
  }
  return out;
}

function niceStep(span: number, ticks: number): number {
  const raw = span / ticks;
  const pow = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * pow >= raw) return m * pow;
  return 10 * pow;
}

/** A tick value in the unit its spacing calls for (µs below a millisecond step, ms below a second). */
function fmtTick(t: number, step: number): string {
  if (t === 0) return "0";
  const [unit, name] = step >= 1 ? [1, "s"] : step >= 1e-3 ? [1e-3, "ms"] : [1e-6, "µs"];
  let digits = 0; // enough decimals to tell the ticks apart (2.5 ms steps need one)
  while (
    digits < 6 &&
    Math.abs(Math.round((step / unit) * 10 ** digits) - (step / unit) * 10 ** digits) > 1e-6
  )
    digits++;
  return `${(t / unit).toFixed(digits)} ${name}`;
}

function fmtTokens(tokens: number): string {
  if (tokens % (1 << 20) === 0) return `${tokens >> 20}M`;
  if (tokens % 1024 === 0) return `${tokens >> 10}K`;
  return `${tokens}`;
}

const pct = (x: number): string => `${Math.round(100 * x)}%`;

const COLLECTIVE_NAMES: Record<string, [string, string]> = {
  allgather: ["AllGather", "AG"],
  allreduce: ["AllReduce", "AR"],
  reducescatter: ["ReduceScatter", "RS"],
  alltoall: ["AllToAll", "A2A"],
};

/** Short names of compute ops for rectangle labels: [medium, tiny]. */
const OP_SHORT: Record<ComputeStep["op"], [string, string]> = {
  "linear.state": ["state M", "M"],
  "linear.intra": ["intra", "intra"],
  "linear.prefix": ["prefix P", "P"],
  "linear.inter": ["inter", "inter"],
  "linear.ring_forward": ["hand on", "P+"],
  "linear.grad_state": ["grad dM", "dM"],
  "linear.intra_backward": ["intra bwd", "intra"],
  "linear.dq_inter": ["dQ inter", "dQ"],
  "linear.suffix": ["suffix G", "G"],
  "linear.dkdv_inter": ["dK dV inter", "dK"],
  "linear.ring_backward": ["hand back", "G+"],
  "linear.forward_fused": ["intra+inter", "attn"],
  "linear.backward_fused": ["bwd+inter", "bwd"],
  "linear.full": ["full attn", "attn"],
  "linear.full_backward": ["full bwd", "bwd"],
  "softmax.block": ["attn", "attn"],
  "softmax.merge": ["merge", "lse"],
  "softmax.block_backward": ["attn bwd", "attn"],
  "softmax.gathered": ["gathered attn", "attn"],
  "softmax.gathered_backward": ["gathered bwd", "bwd"],
  "softmax.full": ["full attn", "attn"],
  "softmax.full_backward": ["full bwd", "bwd"],
  pack: ["pack", "pk"],
  unpack: ["unpack", "up"],
  order: ["order", "ord"],
  copy: ["copy", "cp"],
  fill_zero: ["zero", "0"],
  accumulate: ["sum", "+"],
  host: ["projection", "W"],
};

/** Candidate labels for a step's rectangle, longest first; `pieces` are the rank's pieces in local order. */
function labels(step: Step, pieces: { index: number }[]): string[] {
  if (step.kind === "collective") {
    const [long, short] = COLLECTIVE_NAMES[step.collective] ?? [step.collective, step.collective];
    const what = step.key.split(".").slice(1).join(".");
    return [step.label, `${long} ${what}`, `${short} ${what}`, short];
  }
  if (step.kind === "send") return [step.label, `send → r${step.peer}`, `→${step.peer}`];
  if (step.kind === "recv") return [step.label, `recv ← r${step.peer}`, `←${step.peer}`];
  const [medium, tiny] = OP_SHORT[step.op];
  const source = "source" in step.params ? step.params.source : undefined;
  const local = "piece" in step.params ? step.params.piece : undefined;
  const piece = local !== undefined ? pieces[local]?.index : undefined;
  const detail = source !== undefined ? ` r${source}` : piece !== undefined ? ` ${piece}` : "";
  return [step.label, `${medium}${detail}`, `${tiny}${detail}`, medium, tiny];
}

function tooltip(
  step: Step,
  rank: number,
  t: { posted: number; start: number; end: number },
  s: Segment,
  machine: Machine,
): string {
  const lines = [
    `rank ${rank} · layer ${s.entry} ${s.pass} · step ${step.id} (${step.stream} stream)`,
    step.label,
  ];
  if (step.kind === "compute") {
    lines.push(
      `${step.op}: ${fmtFlops(step.flops)}, ${fmtBytes(step.bytes)} (${boundOf(step, machine)}-bound, ${fmtTime(computeTime(step, machine))})`,
    );
  } else if (step.kind === "collective") {
    lines.push(
      `${step.collective} over ${step.group.length} ranks: ${fmtBytes(step.bytes)} sent by this rank`,
    );
  } else {
    lines.push(
      `${step.kind} ${step.kind === "send" ? "to" : "from"} rank ${step.peer}: ${fmtBytes(step.bytes)} (tag ${step.tag})`,
    );
  }
  const at = (x: number): string => fmtTime(s.offset + x);
  lines.push(`${at(t.start)} → ${at(t.end)} (${fmtTime(t.end - t.start)}) from the start of the step`);
  if (t.start > t.posted)
    lines.push(`waited ${fmtTime(t.start - t.posted)} for its peers from ${at(t.posted)}`);
  return lines.join("\n");
}

/** The first candidate that fits in `width` px at `size`, if any. */
function fit(candidates: string[], width: number, size: number): string | undefined {
  return candidates.find((c) => c.length > 0 && textWidth(c, size) <= width);
}

function textWidth(s: string, size: number): number {
  return s.length * size * CHAR;
}

function text(
  x: number,
  y: number,
  content: string,
  o: {
    size: number;
    anchor?: "start" | "middle" | "end";
    fill?: string;
    weight?: string;
    style?: string;
    pointer?: boolean;
  },
): string {
  const attrs = [`x="${n(x)}"`, `y="${n(y)}"`, `font-size="${o.size}"`];
  if (o.anchor !== undefined && o.anchor !== "start") attrs.push(`text-anchor="${o.anchor}"`);
  if (o.fill !== undefined) attrs.push(`fill="${o.fill}"`);
  if (o.weight !== undefined && o.weight !== "normal") attrs.push(`font-weight="${o.weight}"`);
  if (o.style !== undefined) attrs.push(`font-style="${o.style}"`);
  // Labels on top of rectangles let the pointer through, so the rectangle's tooltip shows.
  if (o.pointer === false) attrs.push(`pointer-events="none"`);
  return `<text ${attrs.join(" ")}>${esc(content)}</text>`;
}

/**
 * The root element's attribute on every picture lasp writes: `--svg FILE` replaces a file that has it and
 * refuses any other without --force (src/cli/output-file.ts), as lasp replaces only what it wrote.
 */
export function writtenBy(command: "inspect" | "plan"): string {
  return `data-written-by="lasp ${command}"`;
}

/** A picture lasp wrote: its root `<svg>` element, after an optional XML declaration, carries `writtenBy`. */
export const LASP_SVG = /^\s*(?:<\?xml[^>]*\?>\s*)?<svg\s[^>]*\sdata-written-by="lasp [a-z]+"/;

/** Escapes text for XML content and attribute values. */
export function esc(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

/** A coordinate with at most two decimals. */
function n(x: number): string {
  return String(Math.round(x * 100) / 100);
}

function sumOf<T>(xs: T[], f: (x: T) => number): number {
  return xs.reduce((a, x) => a + f(x), 0);
}
