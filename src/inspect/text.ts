// `lasp inspect` in words: the layout, then per layer kind the forward and backward steps of one rank
// (stream, size, what each waits on, which communication it overlaps), then the communication table.
import { simulateProgram } from "../cost/simulate.js";
import { PassGraph, type NodeRef } from "../schedule/graph.js";
import type { LayerSchedule, Pass, ScheduleProgram, Step } from "../schedule/ir.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { compareStrategies, type StrategyRow } from "./compare.js";
import { formatBytes, formatFlops, table } from "./units.js";

export interface InspectTextOptions {
  rank: number;
}

export function inspectText(
  spec: ResolvedSpec,
  program: ScheduleProgram,
  options: InspectTextOptions,
): string {
  const parts = [header(spec, program)];
  for (const schedule of program.schedules) {
    const layers = program.layers.flatMap((s, i) => (program.schedules[s] === schedule ? [i] : []));
    parts.push(
      `Layer kind ${schedule.kind}: ${schedule.layer.type}, ${schedule.strategy}${describeKind(schedule)} — layers ${compactList(layers)}`,
    );
    for (const pass of ["forward", "backward"] as const) parts.push(passText(schedule, pass, options.rank));
  }
  parts.push(communicationText(spec, program));
  parts.push(simulationText(program));
  return `${parts.join("\n\n")}\n`;
}

/** The cost model's prediction: per layer kind and pass, the makespan and how much communication is hidden. */
function simulationText(program: ScheduleProgram): string {
  const times = simulateProgram(program);
  const ms = (s: number): string => `${(s * 1e3).toFixed(3)} ms`;
  const pct = (x: number): string => `${Math.round(x * 100)}%`;
  const rows = times.kinds.map((k) => [
    `${k.kind} (x${k.count})`,
    k.strategy,
    ms(k.forward.attentionTime),
    pct(k.forward.hiddenFraction),
    ms(k.backward.attentionTime),
    pct(k.backward.hiddenFraction),
  ]);
  return [
    `Predicted on the ${times.machine} model (roofline compute, NCCL ring volumes; attention only)`,
    table(["layer kind", "strategy", "forward", "comm hidden", "backward", "comm hidden"], rows),
    `  attention per training step: ${ms(times.stepTime)}; ${pct(times.hiddenFraction)} of all communication hidden behind computation`,
  ].join("\n");
}

function header(spec: ResolvedSpec, program: ScheduleProgram): string {
  const { parallel, run } = spec;
  const plan = program.layout;
  const local = plan.byRank[0]!.reduce((s, p) => s + p.length, 0);
  const pieces = plan.byRank
    .slice(0, 4)
    .map((ps, r) => `rank ${r}: ${ps.map((p) => `[${p.start}, ${p.start + p.length})`).join(" + ")}`);
  if (plan.ranks > 4) pieces.push(`… (${plan.ranks - 4} more ranks)`);
  return [
    `${spec.model.name} (${spec.file})`,
    `  ${parallel.gpus} GPUs = sequence ${parallel.sequence} x data ${parallel.data}; ${parallel.layout} layout; overlap ${parallel.overlap ? "on" : "off"}`,
    `  seq_len ${run.seqLen}: ${local} tokens per rank in ${plan.byRank[0]!.length} piece${plan.byRank[0]!.length > 1 ? "s" : ""}; batch ${program.sizes.batch} per data-parallel rank; ${program.sizes.dtype}`,
    ...pieces.map((p) => `  ${p}`),
  ].join("\n");
}

function describeKind(schedule: LayerSchedule): string {
  const layer = schedule.layer;
  if (layer.type === "softmax_attention")
    return ` (kv_heads ${layer.kvHeads}${layer.causal ? ", causal" : ", bidirectional"})`;
  const decay = layer.decay.schedule === "none" ? "no decay" : `decay ${layer.decay.schedule}`;
  return ` (${decay}${layer.causal ? ", causal" : ", bidirectional"})`;
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

function sizeOf(step: Step): string {
  if (step.kind === "compute") return step.flops > 0 ? formatFlops(step.flops) : formatBytes(step.bytes);
  return formatBytes(step.bytes);
}

/** Steps of `rank` that may run at the same time as `node`: neither happens before the other. */
function concurrentWith(graph: PassGraph, node: NodeRef, candidates: NodeRef[]): NodeRef[] {
  const ancestors = closure(graph, node);
  return candidates.filter(
    (c) => c.step !== node.step && !ancestors.has(c.step) && !closure(graph, c).has(node.step),
  );
}

function closure(graph: PassGraph, node: NodeRef): Set<number> {
  const seen = new Set<string>();
  const sameRank = new Set<number>();
  const stack = [...graph.predsOf(node)];
  while (stack.length > 0) {
    const n = stack.pop()!;
    const k = `${n.rank}:${n.step}`;
    if (seen.has(k)) continue;
    seen.add(k);
    if (n.rank === node.rank) sameRank.add(n.step);
    stack.push(...graph.predsOf(n));
  }
  return sameRank;
}

function passText(schedule: LayerSchedule, pass: Pass, rank: number): string {
  const programs = schedule.passes[pass];
  const program = programs[rank] ?? programs[0]!;
  const graph = new PassGraph(programs);
  const nodes = program.steps.map((s) => ({ rank: program.rank, step: s.id }));
  const computeNodes = nodes.filter((n) => program.steps[n.step]!.stream === "compute");
  const rows = program.steps.map((step) => {
    let overlaps = "";
    if (step.stream === "comm") {
      const with_ = concurrentWith(graph, { rank: program.rank, step: step.id }, computeNodes);
      overlaps = with_.length > 0 ? `overlaps ${with_.map((n) => n.step).join(",")}` : "not overlapped";
    }
    return [String(step.id), step.stream, step.label, sizeOf(step), step.deps.join(","), overlaps];
  });
  return [
    `  ${pass}, rank ${program.rank}:`,
    table(["#", "stream", "step", "size", "waits on", "overlap"], rows, "    "),
  ].join("\n");
}

function communicationText(spec: ResolvedSpec, program: ScheduleProgram): string {
  const rows = compareStrategies(spec, program);
  const layerCount = (kind: string): number =>
    program.layers.filter((s) => program.schedules[s]!.kind === kind).length;
  const body = rows.map((row: StrategyRow) => [
    `${row.kind} (x${layerCount(row.kind)})`,
    `${row.strategy}${row.chosen ? " *" : ""}`,
    row.layout,
    row.forward.collectives,
    bytesCell(program, row, "forward"),
    String(row.forward.dependentSteps),
    row.backward.collectives,
    bytesCell(program, row, "backward"),
    String(row.backward.dependentSteps),
  ]);
  return [
    "Communication per layer and rank (* = what this spec uses)",
    table(
      [
        "layer kind",
        "strategy",
        "layout",
        "forward",
        "bytes/rank",
        "dependent",
        "backward",
        "bytes/rank",
        "dependent",
      ],
      body,
    ),
    `  One fp32 state is B x H x dk x dv x 4 = ${program.sizes.batch} x ${program.sizes.heads} x ${program.sizes.headDim} x ${program.sizes.headDim} x 4 = ${formatBytes(stateBytes(program))}.`,
    "  'dependent' counts communication steps that wait on each other: LASP-1 and ring attention grow with the ranks, LASP-2 stays at one.",
  ].join("\n");
}

function stateBytes(program: ScheduleProgram): number {
  const { batch, heads, headDim } = program.sizes;
  return batch * heads * headDim * headDim * 4;
}

function bytesCell(program: ScheduleProgram, row: StrategyRow, pass: Pass): string {
  const bytes = row[pass].bytesPerRank;
  const text = formatBytes(bytes);
  if (row.strategy === "lasp2" || row.strategy === "lasp1") {
    const states = bytes / stateBytes(program);
    return `${text} (${states} state${states === 1 ? "" : "s"})`;
  }
  return text;
}
