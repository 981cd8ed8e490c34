// `lasp inspect` in words: the layout, then per layer kind the forward and backward steps of one rank
// (stream, size, what each waits on, which computation each communication overlaps (schedule/overlap.ts) and
// what the placement pass decided), then the communication table and the
// predicted times, both from the report (report.ts) that --json and --svg show too. Lines fit `width` columns.
import { describeRope } from "../model/rope.js";
import { boundOf, DEFAULT_MACHINE, type Machine } from "../cost/machine.js";
import type { LayerSchedule, Pass, RankProgram, ScheduleProgram, Step } from "../schedule/ir.js";
import { Concurrency } from "../schedule/overlap.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { modelText } from "./model.js";
import { inspectReport, type CommunicationRow, type InspectReport, type PassPrediction } from "./report.js";
import { formatBytes, formatFlops, formatTime, MAX_WIDTH, table, wrap } from "../text/units.js";

export interface InspectTextOptions {
  rank: number;
  /** Columns the text may use; default 100. */
  width?: number;
  /** The numbers to show, where the caller has them already. */
  report?: InspectReport;
  /** The machine the report was priced on: a step's size column shows what bounds it there. */
  machine?: Machine;
}

export function inspectText(
  spec: ResolvedSpec,
  program: ScheduleProgram,
  options: InspectTextOptions,
): string {
  const width = options.width ?? MAX_WIDTH;
  const report = options.report ?? inspectReport(spec, program);
  const parts = [header(spec, program, width)];
  for (const schedule of program.schedules) {
    const layers = program.layers.flatMap((s, i) => (program.schedules[s] === schedule ? [i] : []));
    parts.push(
      paragraph(
        `Layer kind ${schedule.kind}: ${schedule.layer.type}, ${schedule.strategy}${describeKind(schedule)} — layers ${compactList(layers)}`,
        width,
        "",
      ),
    );
    for (const pass of ["forward", "backward"] as const)
      parts.push(passText(schedule, pass, options.rank, width, options.machine ?? DEFAULT_MACHINE));
  }
  parts.push(communicationText(spec, program, report.communication, width));
  parts.push(predictionText(report, width));
  parts.push(modelText(report.model, width));
  return `${parts.join("\n\n")}\n`;
}

/** A line wrapped at spaces to `width`, continuation lines indented two more than the first. */
function paragraph(text: string, width: number, indent = "  "): string {
  const lines = wrap(text, width - indent.length - 2);
  return lines.map((l, i) => `${indent}${i > 0 ? "  " : ""}${l}`).join("\n");
}

/**
 * The cost model's prediction, per layer kind and pass: the pass as the SVG draws it, the projection it runs
 * inside (LASP-2 overlaps its collective with one), the attention itself, and the hidden communication; then
 * the weight-gradient sums and the totals of a training step.
 */
function predictionText(report: InspectReport, width: number): string {
  const p = report.predictions;
  const pct = (x: number): string => `${Math.round(x * 100)}%`;
  const row = (kind: string, strategy: string, pass: string, t: PassPrediction): string[] => [
    kind,
    strategy,
    pass,
    formatTime(t.pass),
    t.projection > 0 ? formatTime(t.projection) : "none",
    formatTime(t.attention),
    t.comm > 0 ? pct(t.hiddenFraction) : "no comm",
  ];
  const rows = p.kinds.flatMap((k) => [
    row(`${k.kind} (x${k.count})`, k.strategy, "forward", k.forward),
    row("", "", "backward", k.backward),
  ]);
  // One GPU: the program issues no weight-gradient sum (layer.cuh), so there is nothing to price.
  const oneGpu = p.kinds.every((k) => k.weightGradientSum.collective === "none");
  const comm = p.kinds.reduce((a, k) => a + k.count * (k.forward.comm + k.backward.comm), 0);
  const sums = p.kinds.map(
    (k) =>
      `${k.kind}: ${formatTime(k.weightGradientSum.time)} (${formatBytes(k.weightGradientSum.bytes)} over ${k.weightGradientSum.ranks} GPUs)`,
  );
  return [
    paragraph(
      `Predicted per layer on the ${p.machine} model (roofline compute, NCCL ring volumes); pass = projection + attention`,
      width,
      "",
    ),
    table(
      ["layer kind", "strategy", "pass", "pass time", "projection", "attention", "comm hidden"],
      rows,
      "  ",
      width,
    ),
    paragraph(
      oneGpu
        ? "weight-gradient sum: none on one GPU (its gradients are already the whole sum)"
        : `weight-gradient sum, one AllReduce per layer on its own stream beside the backward (not in the pass times): ${sums.join("; ")}`,
      width,
    ),
    paragraph(
      `attention layers per training step (the whole step by part is in the step section): ${formatTime(p.step.passes)} of passes = ${formatTime(p.step.projection)} projection + ${formatTime(p.step.attention)} attention; ` +
        (oneGpu
          ? "no weight-gradient sums; "
          : `${formatTime(p.step.weightGradientSums)} of weight-gradient sums; `) +
        (comm > 0
          ? `${pct(p.step.hiddenFraction)} of the schedules' communication hidden behind computation`
          : "no communication to hide"),
      width,
    ),
  ].join("\n");
}

function header(spec: ResolvedSpec, program: ScheduleProgram, width: number): string {
  const { parallel, run } = spec;
  const plan = program.layout;
  const local = plan.byRank[0]!.reduce((s, p) => s + p.length, 0);
  const pieces = plan.byRank
    .slice(0, 4)
    .map((ps, r) => `rank ${r}: ${ps.map((p) => `[${p.start}, ${p.start + p.length})`).join(" + ")}`);
  if (plan.ranks > 4) pieces.push(`… (${plan.ranks - 4} more ranks)`);
  return [
    `${spec.model.name} (${spec.file})`,
    `  ${parallel.gpus} GPU${parallel.gpus === 1 ? "" : "s"} = sequence ${parallel.sequence} x data ${parallel.data}; ${parallel.layout} layout; overlap ${parallel.overlap ? "on" : "off"}`,
    `  seq_len ${run.seqLen}${run.padding > 0 ? ` (${run.seqLen - run.padding} real tokens and ${run.padding} of padding, a document of its own)` : ""}: ${local} tokens per rank in ${plan.byRank[0]!.length} piece${plan.byRank[0]!.length > 1 ? "s" : ""}; batch ${program.sizes.batch} per data-parallel rank; ${program.sizes.dtype}`,
    ...documentsLine(spec, program),
    ...pieces.map((p) => `  ${p}`),
  ]
    .map((line, i) => (i === 0 ? line : paragraph(line.slice(2), width)))
    .join("\n");
}

/**
 * Packed documents: how many the schedule was lowered with (drawn from the seed: with synthetic data the
 * program draws the same for its first row), and the share of one whole sequence's causal (query, key) pairs
 * they leave to the softmax layers, which the costs below count.
 */
function documentsLine(spec: ResolvedSpec, program: ScheduleProgram): string[] {
  const table = program.documents;
  const { documents } = spec.run;
  if (table === undefined || documents.kind === "none") return [];
  const N = program.sizes.seqLen;
  const ends = [...table.boundaries, N - 1];
  const lengths = ends.map((e, i) => e - (i === 0 ? -1 : ends[i - 1]!));
  const pairs = (n: number): number => (n * (n + 1)) / 2;
  const share = lengths.reduce((sum, n) => sum + pairs(n), 0) / pairs(N);
  const source =
    spec.run.data.kind === "file"
      ? "standing in for the token file's"
      : "as the program draws them for its first row";
  return [
    `  documents ${documents.kind}: ${lengths.length} documents of mean length ${table.meanLength} drawn from seed ${spec.run.seed} (${source}); softmax layers compute ${(100 * share).toFixed(share < 0.01 ? 2 : 1)}% of one whole sequence's causal pairs`,
  ];
}

function describeKind(schedule: LayerSchedule): string {
  const layer = schedule.layer;
  if (layer.type === "softmax_attention") {
    const rope = describeRope(layer.ropeTheta, layer.ropeScaling);
    return ` (kv_heads ${layer.kvHeads}, RoPE ${rope}${layer.causal ? ", causal" : ", bidirectional"})`;
  }
  const decay = layer.decay.schedule === "none" ? "no decay" : `decay ${layer.decay.schedule}`;
  const kv = layer.kvHeads === undefined ? "" : `kv_heads ${layer.kvHeads}, `;
  return ` (${kv}${decay}${layer.causal ? ", causal" : ", bidirectional"})`;
}

function compactList(values: number[]): string {
  const runs: string[] = [];
  for (let i = 0; i < values.length;) {
    let j = i;
    while (j + 1 < values.length && values[j + 1] === values[j]! + 1) j++;
    runs.push(j > i ? `${values[i]}-${values[j]}` : `${values[i]}`);
    i = j + 1;
  }
  return runs.join(", ");
}

/** A compute step's FLOPs, or its bytes where memory traffic sets its time (sums, copies); a transfer's bytes. */
function sizeOf(step: Step, machine: Machine): string {
  if (step.kind === "compute" && boundOf(step, machine) === "compute") return formatFlops(step.flops);
  return formatBytes(step.bytes);
}

/** Steps of `rank` that may run at the same time as `node`: neither happens before the other. */
/** What the placement pass decided for a step (schedule/placement.ts), in words; "" if nothing. */
function placementWords(step: Step): string {
  if (step.kind === "collective") {
    if (step.placement.communicator === "few_ctas") return `${step.id} on the few-CTA communicator`;
    if (step.placement.copyEngineCandidate && step.collective === "reducescatter")
      return `${step.id} as an AlltoAll on the copy engines and a sum where asked (LASP_COLLECTIVES=copy_engines)`;
    if (step.placement.copyEngineCandidate)
      return `${step.id} on the few-CTA communicator where NCCL copies with the copy engines`;
    return "";
  }
  if (step.kind !== "compute" || step.placement.overlaps === undefined) return "";
  const beside = `${step.id} issued beside ${step.placement.overlaps}`;
  const margin = step.placement.smMargin;
  if (margin === undefined) return beside;
  if (margin.kernels === margin.copyEngines) return `${beside}, its GEMM leaving ${margin.kernels} SMs`;
  return `${beside}, its GEMM leaving ${margin.kernels} SMs (${margin.copyEngines} on the copy engines)`;
}

/** The placement pass's decisions for the rank's steps, as one paragraph under its table (none if none). */
function placementText(program: RankProgram, width: number): string[] {
  const words = program.steps.map(placementWords).filter((w) => w !== "");
  return words.length === 0 ? [] : [paragraph(`placement: ${words.join("; ")}`, width, "    ")];
}

function passText(
  schedule: LayerSchedule,
  pass: Pass,
  rank: number,
  width: number,
  machine: Machine,
): string {
  const programs = schedule.passes[pass];
  const program = programs[rank] ?? programs[0]!;
  const concurrency = new Concurrency(programs);
  const rows = program.steps.map((step) => {
    let overlaps = "";
    if (step.stream === "comm") {
      const with_ = concurrency.computeBeside({ rank: program.rank, step: step.id });
      overlaps = with_.length > 0 ? `overlaps ${with_.join(", ")}` : "not overlapped";
    }
    // Spaces after the commas let long lists wrap.
    return [String(step.id), step.stream, step.label, sizeOf(step, machine), step.deps.join(", "), overlaps];
  });
  return [
    `  ${pass}, rank ${program.rank}:`,
    table(["#", "stream", "step", "size", "waits on", "overlap"], rows, "    ", width),
    ...placementText(program, width),
  ].join("\n");
}

function communicationText(
  spec: ResolvedSpec,
  program: ScheduleProgram,
  rows: CommunicationRow[],
  width: number,
): string {
  // One row per pass keeps the table narrow enough for a terminal.
  const body = rows.flatMap((row) =>
    (["forward", "backward"] as const).map((pass) => [
      pass === "forward" ? `${row.kind} (x${row.layers})` : "",
      pass === "forward" ? `${row.strategy}${row.chosen ? " *" : ""}` : "",
      pass === "forward" ? row.layout : "",
      pass,
      row[pass].collectives,
      bytesCell(program, row, pass),
      String(row[pass].dependentSteps),
    ]),
  );
  return [
    "Communication per layer and rank (* = what this spec uses)",
    table(
      ["layer kind", "strategy", "layout", "pass", "collectives", "bytes/rank", "dependent"],
      body,
      "  ",
      width,
    ),
    paragraph(
      `One fp32 state is B x H x dk x dv x 4 = ${program.sizes.batch} x ${program.sizes.heads} x ${program.sizes.headDim} x ${program.sizes.headDim} x 4 = ${formatBytes(stateBytes(program))}.`,
      width,
    ),
    paragraph(
      "'dependent' counts communication steps that wait on each other: LASP-1 and ring attention grow with the ranks, LASP-2 stays at one.",
      width,
    ),
    ...oneRankCopiesText(spec, rows, width),
  ].join("\n");
}

/**
 * With one sequence rank some schedules still call collectives (Ulysses' all-to-alls, zigzag LASP-2's gather
 * of its two pieces' states): the program makes them, but as copies on the GPU, so the table says none and
 * this says what.
 */
function oneRankCopiesText(spec: ResolvedSpec, rows: CommunicationRow[], width: number): string[] {
  const copies = rows.flatMap((row) => {
    const passes = (["forward", "backward"] as const).flatMap((pass) => {
      const c = row[pass].oneRankCopies;
      return c === undefined ? [] : [`${c.calls} of ${formatBytes(c.bytes)} ${pass}`];
    });
    return passes.length === 0 ? [] : [`${row.kind} ${row.strategy} ${row.layout}: ${passes.join(", ")}`];
  });
  if (copies.length === 0) return [];
  return [
    paragraph(
      (spec.parallel.gpus === 1
        ? "On one GPU nothing is communicated. Where a schedule still calls a collective, the program's one-rank stand-in for NCCL (templates/runtime/nccl_one_rank.cuh)"
        : "With one sequence rank the attention communicates nothing. Where a schedule still calls a collective, NCCL (a communicator of one rank)") +
        ` copies its send buffer into its receive buffer on the GPU: ${copies.join("; ")}.`,
      width,
    ),
  ];
}

function stateBytes(program: ScheduleProgram): number {
  const { batch, heads, headDim } = program.sizes;
  return batch * heads * headDim * headDim * 4;
}

function bytesCell(program: ScheduleProgram, row: CommunicationRow, pass: Pass): string {
  const bytes = row[pass].bytesPerRank;
  const text = formatBytes(bytes);
  // One sequence rank: no state travels, whatever the schedule (compare.ts).
  if (program.layout.ranks === 1) return text;
  if (row.strategy === "lasp2" || row.strategy === "lasp1" || row.strategy === "allscan") {
    const states = bytes / stateBytes(program);
    return `${text} (${states} state${states === 1 ? "" : "s"})`;
  }
  return text;
}
