// Human progress of `lasp run` on stderr: a status line redrawn in place on a terminal (one line per change
// otherwise), the program's human lines, the verify results, and a summary table over all ranks; in train
// mode also a line per evaluation, checkpoint and resume, and a training summary.
import { sparkline } from "../text/sparkline.js";
import { formatBytes, table } from "../text/units.js";
import type {
  CheckpointEvent,
  SavingEvent,
  CollectivesEvent,
  DataEvent,
  EvalEvent,
  OptimizerEvent,
  ProgramEvent,
  ResumedEvent,
  StartEvent,
  StepEvent,
  SummaryEvent,
  TraceEvent,
} from "./launch.js";
import type { EvalPoint, LossPoint } from "./loss-chart.js";

// --------------------------------------------------------------------------------------------- status line

/** One line of status under the output: redrawn in place on a terminal, printed once per change otherwise. */
export class StatusLine {
  private current: string | undefined;
  private lastPrinted: string | undefined;

  constructor(
    private readonly write: (text: string) => void,
    private readonly tty: boolean,
    private readonly width: () => number = () => process.stderr.columns || 100,
  ) {}

  update(text: string): void {
    if (this.tty) {
      this.current = text;
      this.write(`\r\x1b[2K${this.fit(text)}`);
    } else if (text !== this.lastPrinted) {
      this.lastPrinted = text;
      this.write(`${text}\n`);
    }
  }

  /** A permanent line above the status line. */
  print(line: string): void {
    if (this.tty && this.current !== undefined) {
      this.write(`\r\x1b[2K${line}\n${this.fit(this.current)}`);
    } else {
      this.write(`${line}\n`);
    }
  }

  /** Removes the status line (terminal) so that what follows starts on a clean line. */
  clear(): void {
    if (this.tty && this.current !== undefined) this.write("\r\x1b[2K");
    this.current = undefined;
  }

  /** Leaves the status line's last text as a permanent line. */
  done(text?: string): void {
    if (this.tty) {
      const last = text ?? this.current;
      this.write(last === undefined ? "" : `\r\x1b[2K${last}\n`);
      this.current = undefined;
    } else if (text !== undefined && text !== this.lastPrinted) {
      this.lastPrinted = text;
      this.write(`${text}\n`);
    }
  }

  private fit(text: string): string {
    const width = Math.max(20, this.width() - 1);
    return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
  }
}

// ---------------------------------------------------------------------------------------------- formatting

const finite = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);

export function formatMs(ms: number | undefined): string {
  if (!finite(ms)) return "?";
  return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
}

/** 12.7 M, 850 k. */
export function formatRate(value: number | undefined): string {
  if (!finite(value)) return "?";
  const units = ["", " k", " M", " G", " T"];
  let v = value;
  let unit = 0;
  while (Math.abs(v) >= 1000 && unit < units.length - 1) {
    v /= 1000;
    unit++;
  }
  return `${v.toFixed(unit === 0 || v >= 100 ? 0 : 1)}${units[unit]}`;
}

export function median(values: readonly number[]): number | undefined {
  const sorted = values.filter(finite).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** `45 s`, `2 min 05 s`, `1 h 02 min`: a time left, rounded up to what a reader needs. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s} s`;
  const two = (n: number): string => String(n).padStart(2, "0");
  if (s < 3600) return `${Math.floor(s / 60)} min ${two(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${two(Math.floor((s % 3600) / 60))} min`;
}

/** Warm-up and timed steps together, from the `start` event; 0 when unknown. */
function totalSteps(start: StartEvent | undefined): number {
  return start !== undefined && finite(start.steps)
    ? start.steps + (finite(start.warmup) ? start.warmup : 0)
    : 0;
}

/**
 * A step's throughput from its time and the `start` event's tokens per step, FLOPs per token and GPU peak:
 * tokens/s of the whole job, and MFU (0..1) of one GPU as the summary counts it; undefined where the start
 * event lacks a field (an older program) or the GPU's peak is unknown (0).
 */
export function stepThroughput(
  ms: number,
  start: StartEvent | undefined,
): { tokensPerS: number | undefined; mfu: number | undefined } {
  const tokens = start?.tokens_per_step;
  if (!finite(ms) || ms <= 0 || !finite(tokens) || tokens <= 0)
    return { tokensPerS: undefined, mfu: undefined };
  const tokensPerS = tokens / (ms / 1000);
  const flops = start?.flops_per_token;
  const peak = start?.peak_flops;
  const gpus = start?.world;
  const mfu =
    finite(flops) && finite(peak) && peak > 0 && finite(gpus) && gpus > 0
      ? (flops * tokensPerS) / gpus / peak
      : undefined;
  return { tokensPerS, mfu };
}

/** A learning rate as the status line shows it: `3.0e-4`. */
export function formatLr(lr: number): string {
  return lr.toExponential(1).replace("e+", "e");
}

/**
 * `step 7/20  41.2 ms  loss 5.1234  410 k tokens/s  MFU 41.0 %  682 W  ETA 1 s  (warm-up)` for the event with `step` 6: the program counts from
 * 0 over warm-up and timed steps together, and `start` gives the timed `steps` and the `warmup` steps (and
 * what tokens/s and MFU need: stepThroughput; an older program's start event lacks it, and they are left out).
 * `etaS` is the time the steps left will take (RunProgress: their number times the median step time).
 * A train step adds its learning rate after the loss (`lr 3.0e-4`), and rank 0's GPU's mean power so far where
 * the program reads it (`682 W`); its `steps` (the run's) is the total.
 */
export function formatStep(
  step: number,
  ms: number,
  warmup: boolean,
  start: StartEvent | undefined,
  loss?: number,
  etaS?: number,
  train: { lr?: number; steps?: number; watts?: number } = {},
): string {
  const total = finite(train.steps) ? train.steps : totalSteps(start);
  const shown = finite(step) ? step + 1 : "?";
  const position = total > 0 && finite(step) && step < total ? `${shown}/${total}` : String(shown);
  const shownLoss =
    (finite(loss) ? `  loss ${loss.toFixed(4)}` : "") +
    (finite(train.lr) ? `  lr ${formatLr(train.lr)}` : "");
  const { tokensPerS, mfu } = stepThroughput(ms, start);
  const rate = finite(tokensPerS) ? `  ${formatRate(tokensPerS)} tokens/s` : "";
  const shownMfu = finite(mfu) ? `  MFU ${(mfu * 100).toFixed(1)} %` : "";
  const watts = finite(train.watts) ? `  ${train.watts.toFixed(0)} W` : "";
  const eta = finite(etaS) && etaS > 0 ? `  ETA ${formatDuration(etaS)}` : "";
  return `step ${position}  ${formatMs(ms)}${shownLoss}${rate}${shownMfu}${watts}${eta}${warmup ? "  (warm-up)" : ""}`;
}

/** `loss 5.5432 █▇▆▄▃▂▁ 1.8234  (24 steps)`: the summary's text picture of the loss; "" without losses. */
export function formatLossLine(points: readonly LossPoint[], width = 40): string {
  const losses = points.map((p) => p.loss).filter(finite);
  if (losses.length === 0) return "";
  return `loss ${losses[0]!.toFixed(4)} ${sparkline(losses, width)} ${losses.at(-1)!.toFixed(4)}  (${losses.length} step${losses.length === 1 ? "" : "s"})`;
}

// ------------------------------------------------------------------------------------------------- summary

export interface RunSummary {
  ranks: number;
  /** Median over ranks of each rank's median step time, and its spread. */
  stepMs: { median: number | undefined; min: number | undefined; max: number | undefined };
  /** Tokens of the whole job per second (every rank reports the same global rate, timed on itself). */
  tokensPerS: number | undefined;
  /** Model TFLOP/s of one GPU. */
  tflops: number | undefined;
  /** Model FLOPs utilisation of one GPU (0..1); undefined where the program could not say (unknown GPU). */
  mfu: number | undefined;
  /** The loss of the last step. */
  loss: number | undefined;
  /** Fraction 0..1 of communication hidden behind computation. */
  hiddenComm: number | undefined;
  peakMemBytes: { median: number | undefined; max: number | undefined };
  /** Joules a step of every GPU together (where every rank read its energy counter) and one GPU's mean watts
   * (median over ranks). */
  energy: { joulesPerStep: number | undefined; watts: number | undefined };
  /** Median over ranks of each phase's time, in the order the phases first appeared. */
  phases: { name: string; ms: number | undefined }[];
  /** From the timeline: per layer kind and pass, what the communication cost beside the computation. */
  timeline: TimelineRow[];
  /** Per softmax kind with whole-sequence attention, the backends its ranks reported (`lasp`, `cudnn X.Y.Z`). */
  backends: { kind: string; attention: string[] }[];
  /** Where the MLP's SwiGLU GEMMs ran, over the ranks (`lasp`, `cublas`); empty where no rank said. */
  mlpGemm: string[];
  /** Where the LM head's logits ran, over the ranks (`lasp`, `cublas`); empty where no rank said. */
  headGemm: string[];
  /** How the AllGathers beside computation moved data, over the ranks (`copy engines`, `NCCL kernels`); empty
   * without them. */
  gatherCollectives: string[];
  /** How the weight-gradient sum moved data, over the ranks; empty on one GPU. */
  gradientCollectives: string[];
}

export interface TimelineRow {
  /** `kind.pass`, e.g. `S.forward`. */
  name: string;
  /** Time the communication steps took, overlapped (their own start to end on the comm stream). */
  commMs: number | undefined;
  /** The pass with both streams, and with the computation alone. */
  passMs: number | undefined;
  aloneMs: number | undefined;
  /** 1 - (pass - alone) / comm, clamped to 0..1: the share of the communication that cost no time. */
  hidden: number | undefined;
}

/**
 * Per kind and pass, medians over ranks of the timeline's numbers. Steps that appear only with both streams
 * are the communication; the pass takes as long as its last step's end.
 */
export function summarizeTimeline(events: readonly ProgramEvent[]): TimelineRow[] {
  const groups = new Map<string, Map<number, TraceEvent[]>>();
  for (const e of events) {
    if (e.event !== "trace" || !finite(e.start_ms) || !finite(e.end_ms)) continue;
    const name = `${e.kind}.${e.pass}`;
    if (!groups.has(name)) groups.set(name, new Map());
    const ranks = groups.get(name)!;
    if (!ranks.has(e.rank)) ranks.set(e.rank, []);
    ranks.get(e.rank)!.push(e);
  }
  return [...groups].map(([name, ranks]) => {
    const comm: number[] = [];
    const pass: number[] = [];
    const alone: number[] = [];
    const hidden: number[] = [];
    for (const trace of ranks.values()) {
      const both = trace.filter((e) => e.streams === "both");
      const computeOnly = trace.filter((e) => e.streams === "compute");
      if (both.length === 0 || computeOnly.length === 0) continue;
      const computeSteps = new Set(computeOnly.map((e) => e.step));
      const c = both
        .filter((e) => !computeSteps.has(e.step))
        .reduce((t, e) => t + (e.end_ms - e.start_ms), 0);
      const p = Math.max(...both.map((e) => e.end_ms));
      const a = Math.max(...computeOnly.map((e) => e.end_ms));
      comm.push(c);
      pass.push(p);
      alone.push(a);
      hidden.push(c > 0 ? Math.min(1, Math.max(0, 1 - Math.max(0, p - a) / c)) : 1);
    }
    return {
      name,
      commMs: median(comm),
      passMs: median(pass),
      aloneMs: median(alone),
      hidden: median(hidden),
    };
  });
}

/** The summary of all ranks' `summary` and `phase` events; undefined when no rank sent a summary. */
export function summarizeRun(events: readonly ProgramEvent[]): RunSummary | undefined {
  const byRank = new Map<number, SummaryEvent>();
  for (const e of events) if (e.event === "summary") byRank.set(e.rank, e);
  if (byRank.size === 0) return undefined;
  const summaries = [...byRank.values()];
  const pick = (f: (s: SummaryEvent) => unknown): number[] => summaries.map(f).filter(finite);
  const steps = pick((s) => s.median_ms);
  const memory = pick((s) => s.peak_mem_bytes);
  const joules = pick((s) => s.joules_per_step);
  const phaseTimes = new Map<string, Map<number, number>>();
  for (const e of events) {
    if (e.event !== "phase") continue;
    if (!phaseTimes.has(e.name)) phaseTimes.set(e.name, new Map());
    if (finite(e.ms)) phaseTimes.get(e.name)!.set(e.rank, e.ms);
  }
  return {
    ranks: byRank.size,
    stepMs: {
      median: median(steps),
      min: steps.length > 0 ? Math.min(...steps) : undefined,
      max: steps.length > 0 ? Math.max(...steps) : undefined,
    },
    tokensPerS: median(pick((s) => s.tokens_per_s)),
    tflops: median(pick((s) => s.tflops)),
    mfu: median(pick((s) => s.mfu)),
    loss: median(pick((s) => s.loss)),
    hiddenComm: median(pick((s) => s.hidden_comm_fraction)),
    peakMemBytes: { median: median(memory), max: memory.length > 0 ? Math.max(...memory) : undefined },
    energy: {
      joulesPerStep: joules.length === byRank.size ? joules.reduce((a, b) => a + b, 0) : undefined,
      watts: median(pick((s) => s.watts)),
    },
    phases: [...phaseTimes].map(([name, times]) => ({ name, ms: median([...times.values()]) })),
    timeline: summarizeTimeline(events),
    backends: summarizeBackends(events),
    mlpGemm: [...new Set(events.flatMap((e) => (e.event === "mlp" ? [e.gemm] : [])))],
    headGemm: [...new Set(events.flatMap((e) => (e.event === "lm_head" ? [e.gemm] : [])))],
    gatherCollectives: collectiveChoices(events, (e) => e.gathers).filter((c) => c !== "none"),
    gradientCollectives: collectiveChoices(events, (e) => e.gradients),
  };
}

/** The distinct values of one field of the `collectives` events, in the order first reported. */
function collectiveChoices(
  events: readonly ProgramEvent[],
  field: (e: CollectivesEvent) => string,
): string[] {
  return [...new Set(events.flatMap((e) => (e.event === "collectives" ? [field(e)] : [])))];
}

/** Each kind's backends over the ranks, in the order first reported; ranks normally agree. */
function summarizeBackends(events: readonly ProgramEvent[]): { kind: string; attention: string[] }[] {
  const byKind = new Map<string, Set<string>>();
  for (const e of events) {
    if (e.event !== "backend") continue;
    if (!byKind.has(e.kind)) byKind.set(e.kind, new Set());
    byKind.get(e.kind)!.add(e.attention);
  }
  return [...byKind].map(([kind, attention]) => ({ kind, attention: [...attention] }));
}

export function formatSummary(s: RunSummary): string {
  const spread =
    s.ranks > 1 && finite(s.stepMs.min) && finite(s.stepMs.max)
      ? `  (ranks ${s.stepMs.min.toFixed(1)}–${s.stepMs.max.toFixed(1)} ms)`
      : "";
  const memory = finite(s.peakMemBytes.median)
    ? formatBytes(s.peakMemBytes.median) +
      (finite(s.peakMemBytes.max) && s.peakMemBytes.max !== s.peakMemBytes.median
        ? `  (max ${formatBytes(s.peakMemBytes.max)})`
        : "")
    : "?";
  const rows = [
    ["step time", `${formatMs(s.stepMs.median)}${spread}`],
    ["tokens/s", formatRate(s.tokensPerS)],
    ["TFLOP/s per GPU", finite(s.tflops) ? s.tflops.toFixed(1) : "?"],
    ["MFU", finite(s.mfu) ? `${(s.mfu * 100).toFixed(1)} %` : "? (GPU not in the program's peak table)"],
    ["loss", finite(s.loss) ? s.loss.toFixed(4) : "?"],
    ["hidden communication", finite(s.hiddenComm) ? `${(s.hiddenComm * 100).toFixed(1)} %` : "?"],
    ["peak memory", memory],
    ...(finite(s.energy.joulesPerStep) && finite(s.energy.watts)
      ? [
          [
            "energy",
            s.ranks > 1
              ? `${s.energy.joulesPerStep.toFixed(1)} J a step over the ${s.ranks} GPUs, ${s.energy.watts.toFixed(0)} W each`
              : `${s.energy.joulesPerStep.toFixed(1)} J a step at ${s.energy.watts.toFixed(0)} W`,
          ],
        ]
      : []),
    ...s.backends.map((b) => [`softmax ${b.kind} attention`, b.attention.join(" / ")]),
    ...(s.mlpGemm.length > 0
      ? [
          [
            "MLP GEMMs",
            s.mlpGemm.map((g) => (g === "lasp" ? "lasp (SwiGLU in the epilogues)" : g)).join(" / "),
          ],
        ]
      : []),
    ...(s.headGemm.length > 0 ? [["LM head logits", s.headGemm.join(" / ")]] : []),
    ...(s.gatherCollectives.length > 0
      ? [["AllGathers beside kernels", s.gatherCollectives.join(" / ")]]
      : []),
    ...(s.gradientCollectives.length > 0 ? [["gradient sum", s.gradientCollectives.join(" / ")]] : []),
  ];
  const out = [
    `summary over ${s.ranks} rank${s.ranks === 1 ? "" : "s"} (median over ranks)`,
    table(["", ""], rows).split("\n").slice(2).join("\n"),
  ];
  if (s.phases.length > 0) {
    out.push(
      table(
        ["phase", "ms"],
        s.phases.map((p) => [p.name, finite(p.ms) ? p.ms.toFixed(p.ms < 10 ? 3 : 2) : "?"]),
      ),
    );
  }
  if (s.timeline.length > 0) {
    const ms = (x: number | undefined): string => (finite(x) ? x.toFixed(3) : "?");
    out.push(
      table(
        ["timeline (one pass)", "communication ms", "pass ms", "computation alone ms", "hidden"],
        s.timeline.map((t) => [
          t.name,
          ms(t.commMs),
          ms(t.passMs),
          ms(t.aloneMs),
          finite(t.hidden) ? `${(t.hidden * 100).toFixed(0)} %` : "?",
        ]),
      ),
    );
  }
  return out.join("\n");
}

// ------------------------------------------------------------------------------------------- training

/** A training run's result: from the `trained` event, or from the steps seen when the run stopped early. */
export interface TrainingSummary {
  ranks: number;
  /** Steps done by this run (a resumed run counts from where it resumed), and the last one of the run. */
  steps: number;
  lastStep: number | undefined;
  /** The run's steps (the start event's). */
  totalSteps: number | undefined;
  /** The step this run resumed after, when it did. */
  resumedAfter: number | undefined;
  seconds: number | undefined;
  tokens: number | undefined;
  tokensPerS: number | undefined;
  mfu: number | undefined;
  /** Rank 0's median step (ms) and its tokens/s and MFU: the steady rate, which the run's own leaves behind by
   * its first steps (the program's start-up: module loading, cuBLAS's heuristics). */
  median: { stepMs: number | undefined; tokensPerS: number | undefined; mfu: number | undefined };
  /** The last step's loss, and the last evaluation's. */
  loss: number | undefined;
  evalLoss: number | undefined;
  evalPerplexity: number | undefined;
  /** The newest checkpoint written (its folder). */
  checkpoint: string | undefined;
  /** Checkpoints written, and how long training stood still for them (s; programs that say `paused_ms`). */
  checkpoints: number;
  checkpointPause: number | undefined;
  /** Rank 0's device memory in use at the end (`trained`): the run's peak. */
  peakMemBytes: number | undefined;
  /** Rank 0's GPU over the steps' own time (`trained`), where the program could read the energy counter. */
  joules: number | undefined;
  watts: number | undefined;
  /** Whether the program said it finished (`trained`); false when it stopped early. */
  finished: boolean;
}

function lastOf<K extends ProgramEvent["event"]>(
  events: readonly ProgramEvent[],
  kind: K,
): Extract<ProgramEvent, { event: K }> | undefined {
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!;
    if (e.event === kind && e.rank === 0) return e as Extract<ProgramEvent, { event: K }>;
  }
  return undefined;
}

/** Rank 0's training events summarized; undefined when the run was not a training run. */
export function summarizeTraining(events: readonly ProgramEvent[]): TrainingSummary | undefined {
  const start = events.find((e): e is StartEvent => e.event === "start" && e.rank === 0);
  const trained = lastOf(events, "trained");
  if (start?.mode !== "train" && trained === undefined) return undefined;
  const steps = events.filter((e): e is StepEvent => e.event === "step" && e.rank === 0);
  const evaluation = lastOf(events, "eval");
  const pick = (f: (s: StepEvent) => unknown): number[] => steps.map(f).filter(finite);
  const steady = {
    stepMs: median(pick((s) => s.ms)),
    tokensPerS: median(pick((s) => s.tokens_per_s)),
    mfu: median(pick((s) => s.mfu)),
  };
  const stepMs = pick((s) => s.ms);
  const last = steps.at(-1);
  const resumed = lastOf(events, "resumed");
  const evalLoss = trained !== undefined && finite(trained.eval_loss) ? trained.eval_loss : evaluation?.loss;
  const written = events.filter((e): e is CheckpointEvent => e.event === "checkpoint" && e.rank === 0);
  return {
    ranks: new Set(events.filter((e) => e.event === "start").map((e) => e.rank)).size,
    steps: finite(trained?.steps) ? trained.steps : steps.length,
    lastStep: finite(trained?.step) ? trained.step : last !== undefined ? last.step + 1 : undefined,
    totalSteps: finite(last?.steps) ? last.steps : finite(start?.steps) ? start.steps : undefined,
    resumedAfter: finite(resumed?.step) ? resumed.step : undefined,
    seconds: finite(trained?.seconds)
      ? trained.seconds
      : stepMs.length > 0
        ? stepMs.reduce((a, b) => a + b, 0) / 1000
        : undefined,
    tokens: finite(trained?.tokens)
      ? trained.tokens
      : finite(start?.tokens_per_step)
        ? start.tokens_per_step * steps.length
        : undefined,
    tokensPerS: finite(trained?.tokens_per_s) ? trained.tokens_per_s : steady.tokensPerS,
    mfu: finite(trained?.mfu) ? trained.mfu : steady.mfu,
    median: steady,
    loss: finite(trained?.loss) ? trained.loss : last?.loss,
    evalLoss: finite(evalLoss) ? evalLoss : undefined,
    evalPerplexity: finite(evalLoss) ? Math.exp(evalLoss) : undefined,
    checkpoint: lastOf(events, "checkpoint")?.folder,
    checkpoints: written.length,
    checkpointPause: written.some((c) => finite(c.paused_ms))
      ? written.reduce((sum, c) => sum + (finite(c.paused_ms) ? c.paused_ms : 0), 0) / 1000
      : undefined,
    peakMemBytes: finite(trained?.peak_mem_bytes) ? trained.peak_mem_bytes : undefined,
    joules: finite(trained?.joules) ? trained.joules : undefined,
    watts: finite(trained?.watts) ? trained.watts : undefined,
    finished: trained !== undefined,
  };
}

/** `1.2 s`, `850 ms`, or a longer duration as formatDuration writes it. */
function formatSeconds(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  return seconds < 60 ? `${seconds.toFixed(1)} s` : formatDuration(seconds);
}

/**
 * `45.0 kJ on rank 0's GPU at 700 W: 2.74 mJ a token`: the steps' energy on rank 0's GPU, its mean power, and
 * the joules a token of that GPU's share (every rank runs the same step).
 */
function formatEnergy(joules: number, watts: number, tokens: number | undefined, ranks: number): string {
  const amount =
    joules >= 1e6
      ? `${(joules / 3.6e6).toFixed(2)} kWh`
      : joules >= 1e3
        ? `${(joules / 1e3).toFixed(1)} kJ`
        : `${joules.toFixed(1)} J`;
  const perToken =
    finite(tokens) && tokens > 0
      ? `: ${((joules / (tokens / Math.max(ranks, 1))) * 1e3).toFixed(2)} mJ a token`
      : "";
  return `${amount} on rank 0's GPU at ${watts.toFixed(0)} W${perToken}`;
}

/** The training table; paths through `showPath` (relative to the working directory). */
export function formatTraining(
  t: TrainingSummary,
  showPath: (p: string) => string = (p) => p,
  hfLoad?: (folder: string) => string,
): string {
  const first = finite(t.lastStep) ? t.lastStep - t.steps + 1 : undefined;
  const range =
    finite(first) && finite(t.lastStep) && t.steps > 0
      ? ` (steps ${first}–${t.lastStep}${finite(t.totalSteps) ? ` of ${t.totalSteps}` : ""}${finite(t.resumedAfter) ? `, resumed after step ${t.resumedAfter}` : ""})`
      : "";
  // The median step's rate beside the run's where they differ by 2% or more (a short run's start-up).
  const steady =
    finite(t.tokensPerS) &&
    finite(t.median.tokensPerS) &&
    finite(t.median.stepMs) &&
    Math.abs(t.median.tokensPerS / t.tokensPerS - 1) >= 0.02;
  const rows = [
    ["steps", `${t.steps}${range}`],
    ["time", finite(t.seconds) ? formatSeconds(t.seconds) : "?"],
    ["tokens", finite(t.tokens) ? formatRate(t.tokens) : "?"],
    [
      "tokens/s",
      `${formatRate(t.tokensPerS)}${steady ? ` (${formatRate(t.median.tokensPerS)} at the median step, ${t.median.stepMs!.toFixed(2)} ms)` : ""}`,
    ],
    [
      "MFU",
      finite(t.mfu)
        ? `${(t.mfu * 100).toFixed(1)} %${steady && finite(t.median.mfu) ? ` (${(t.median.mfu * 100).toFixed(1)} % at the median step)` : ""}`
        : "? (GPU not in the program's peak table)",
    ],
    ["final loss", finite(t.loss) ? t.loss.toFixed(4) : "?"],
    ...(finite(t.evalLoss)
      ? [["eval loss", `${t.evalLoss.toFixed(4)} (perplexity ${t.evalPerplexity!.toFixed(2)})`]]
      : []),
    ...(finite(t.peakMemBytes)
      ? [["GPU memory", `${(t.peakMemBytes / 2 ** 30).toFixed(2)} GiB in use at the end (rank 0)`]]
      : []),
    ...(finite(t.joules) && finite(t.watts)
      ? [["energy", formatEnergy(t.joules, t.watts, t.tokens, t.ranks)]]
      : []),
    ...(t.checkpoints > 0 && finite(t.checkpointPause)
      ? [
          [
            "checkpoints",
            `${t.checkpoints} written; training stood still ${formatSeconds(t.checkpointPause)} for them`,
          ],
        ]
      : []),
    ...(t.checkpoint !== undefined ? [["last checkpoint", showPath(t.checkpoint)]] : []),
    ...(t.checkpoint !== undefined && hfLoad !== undefined
      ? [["in transformers", hfLoad(showPath(t.checkpoint))]]
      : []),
  ];
  const title = `training over ${t.ranks} rank${t.ranks === 1 ? "" : "s"}${t.finished ? "" : " (stopped early)"}`;
  return [title, table(["", ""], rows).split("\n").slice(2).join("\n")].join("\n");
}

/** `eval at step 500: loss 1.2345, perplexity 3.44`. */
export function formatEval(e: EvalEvent): string {
  const loss = finite(e.loss) ? e.loss.toFixed(4) : String(e.loss);
  const perplexity = finite(e.perplexity) ? `, perplexity ${e.perplexity.toFixed(2)}` : "";
  return `eval at step ${e.step}: loss ${loss}${perplexity}`;
}

/**
 * `checkpoint step 500 written in 1.2 s: runs/x/checkpoints/step-000500` (and the ones keep_checkpoints removed);
 * `… in 31 s in the background (training paused 1.4 s): …` for one written while training went on.
 */
export function formatCheckpoint(e: CheckpointEvent, showPath: (p: string) => string = (p) => p): string {
  const paused =
    e.background === true && finite(e.paused_ms)
      ? ` in the background (training paused ${formatSeconds(e.paused_ms / 1000)})`
      : "";
  const time = finite(e.ms) ? ` in ${formatSeconds(e.ms / 1000)}${paused}` : "";
  const removed =
    Array.isArray(e.removed) && e.removed.length > 0
      ? `; removed ${e.removed.map((r) => r.split("/").at(-1)).join(", ")}`
      : "";
  return `checkpoint step ${e.step} written${time}: ${showPath(e.folder)}${removed}`;
}

/**
 * `writing the checkpoint of step 500 (22.4 GB) …`: the status line while a checkpoint is written, or while its
 * tensors are copied for a thread to write (`background`: the next step's line follows at once).
 */
export function formatSaving(e: SavingEvent): string {
  const size = finite(e.bytes) ? ` (${(e.bytes / 1e9).toFixed(1)} GB)` : "";
  return `writing the checkpoint of step ${e.step}${size}${e.background === true ? " while training goes on" : ""} …`;
}

/** `resumed from runs/x/checkpoints/step-000500 after step 500 (2.0 M tokens seen)`. */
export function formatResumed(e: ResumedEvent, showPath: (p: string) => string = (p) => p): string {
  const seen = finite(e.tokens_seen) ? ` (${formatRate(e.tokens_seen)} tokens seen)` : "";
  const resharded =
    e.resharded === true && finite(e.world)
      ? `; its optimizer state, ${e.sharded === true ? "ZeRO-1" : "replicated"} over ${e.world} rank${e.world === 1 ? "" : "s"}, re-sharded for this run`
      : "";
  return `resumed from ${showPath(e.from)} after step ${e.step}${seen}${resharded}`;
}

/** `[train] data: synthetic tokens, 2 windows per step` or the token file with its size and evaluation file. */
export function formatData(e: DataEvent, showPath: (p: string) => string = (p) => p): string {
  const source =
    e.format === "synthetic"
      ? "synthetic tokens"
      : `${showPath(e.source)} (${e.format}, ${formatRate(e.tokens)} tokens, ${formatRate(e.windows)} windows)`;
  const evaluation =
    typeof e.eval === "string" ? `; eval: ${showPath(e.eval)} (${formatRate(e.eval_windows)} windows)` : "";
  return `[train] data: ${source}, ${e.windows_per_step} window${e.windows_per_step === 1 ? "" : "s"} per step${evaluation}`;
}

/** `[train] AdamW over 1.2 G parameters (1.1 G with weight decay), zero1: 4.0 GiB of state on rank 0`. */
export function formatOptimizer(e: OptimizerEvent): string {
  const update = e.update === "zero1" ? "sharded over the ranks (ZeRO-1)" : e.update;
  return `[train] AdamW over ${formatRate(e.parameters)} parameters (${formatRate(e.decayed)} with weight decay), ${update}, ${finite(e.state_bytes) ? formatBytes(e.state_bytes) : "?"} of state on rank ${e.rank}`;
}

export interface VerifyReport {
  ok: boolean;
  /** Per layer and quantity, the largest error over ranks. */
  rows: {
    layer: string;
    quantity: string;
    maxRelErr: number;
    tolerance: number;
    ok: boolean;
    /** Passed above its tolerance, within the oracle's own spread (verify_model.cuh's conditioning rule). */
    illConditioned: boolean;
  }[];
}

export function summarizeVerify(events: readonly ProgramEvent[]): VerifyReport | undefined {
  const rows = new Map<string, VerifyReport["rows"][number]>();
  for (const e of events) {
    if (e.event !== "verify") continue;
    const key = `${e.layer}\0${e.quantity}`;
    const old = rows.get(key);
    const err = finite(e.max_rel_err) ? e.max_rel_err : Number.POSITIVE_INFINITY;
    const ok = e.ok === true && (old?.ok ?? true);
    rows.set(key, {
      layer: e.layer,
      quantity: e.quantity,
      maxRelErr: Math.max(err, old?.maxRelErr ?? 0),
      tolerance: e.tolerance,
      ok,
      illConditioned: e.ill_conditioned === true || (old?.illConditioned ?? false),
    });
  }
  if (rows.size === 0) return undefined;
  const list = [...rows.values()];
  return { ok: list.every((r) => r.ok), rows: list };
}

export function formatVerify(report: VerifyReport): string {
  const rows = report.rows.map((r) => [
    r.layer,
    r.quantity,
    r.maxRelErr.toExponential(2),
    finite(r.tolerance) ? r.tolerance.toExponential(1) : "?",
    r.ok ? (r.illConditioned ? "ok (ill-conditioned)" : "ok") : "FAIL",
  ]);
  const failed = report.rows.filter((r) => !r.ok).length;
  const loose = report.rows.filter((r) => r.ok && r.illConditioned).length;
  const verdict = !report.ok
    ? `verify FAILED: ${failed} of ${report.rows.length} above tolerance`
    : loose > 0
      ? `verify ok: ${loose} of ${report.rows.length} above tolerance but within 3x of how far the oracle itself moves when q, k, v move by one bf16 rounding (ill-conditioned), the rest within tolerance`
      : "verify ok: every error is within tolerance";
  return [table(["layer", "quantity", "max rel err", "tolerance", ""], rows), verdict].join("\n");
}

// ---------------------------------------------------------------------------------------------- the run

export interface RunProgressOptions {
  /** Writes to stderr. */
  write: (text: string) => void;
  tty: boolean;
  /** A status line shared with the build; made here when absent. */
  status?: StatusLine;
  /** How a path the program names is shown (the run's: relative to the working directory). */
  showPath?: (p: string) => string;
  /** How transformers loads a checkpoint folder (shown path in): the summary's last line (hfLoadLine). */
  hfLoad?: (folder: string) => string;
}

/** Feeds on launch events and lines; `finish()` prints the verify table and the summary. */
export class RunProgress {
  readonly status: StatusLine;
  private start: StartEvent | undefined;
  private announced = false;
  private readonly devices = new Map<number, string>();
  private readonly events: ProgramEvent[] = [];
  /** The status line's rank's step times: timed steps, and warm-up ones until the first timed step. */
  private readonly stepMs: { timed: number[]; warmup: number[] } = { timed: [], warmup: [] };
  private readonly lossPoints: LossPoint[] = [];
  private readonly evalPoints: EvalPoint[] = [];

  constructor(private readonly options: RunProgressOptions) {
    this.status = options.status ?? new StatusLine(options.write, options.tty);
  }

  private readonly showPath = (p: string): string => this.options.showPath?.(p) ?? p;

  event(e: ProgramEvent): void {
    this.events.push(e);
    switch (e.event) {
      case "start":
        this.devices.set(e.rank, e.device);
        if (e.rank === 0) this.start = e;
        if (e.rank === 0 && !this.announced) {
          this.announced = true;
          const steps = finite(e.steps) ? `${e.steps} steps` : "";
          const warmup = finite(e.warmup) && e.warmup > 0 ? ` + ${e.warmup} warm-up` : "";
          this.status.print(
            `[run] ${e.spec ?? "program"}: ${e.world} rank${e.world === 1 ? "" : "s"} on ${e.device}, mode ${e.mode}, ${steps}${warmup}`,
          );
        }
        break;
      case "step":
        // The loss is the mean over every rank's targets (PROTOCOL.md), so rank 0's is the run's.
        if (e.rank === 0) {
          const warmup = e.warmup === true;
          if (finite(e.ms)) (warmup ? this.stepMs.warmup : this.stepMs.timed).push(e.ms);
          if (finite(e.loss)) this.lossPoints.push({ step: e.step, loss: e.loss, warmup });
          const total = finite(e.steps) ? e.steps : undefined;
          const train = {
            ...(finite(e.lr) ? { lr: e.lr } : {}),
            ...(total !== undefined ? { steps: total } : {}),
            ...(finite(e.watts) ? { watts: e.watts } : {}),
          };
          this.status.update(
            formatStep(e.step, e.ms, warmup, this.start, e.loss, this.etaSeconds(e.step, total), train),
          );
        }
        break;
      case "eval":
        if (e.rank === 0) {
          this.status.print(formatEval(e));
          if (finite(e.loss) && finite(e.step)) this.evalPoints.push({ step: e.step, loss: e.loss });
        }
        break;
      case "checkpoint":
        if (e.rank === 0) this.status.print(formatCheckpoint(e, this.showPath));
        break;
      case "saving":
        // A large model's checkpoint takes a while: the status line says what the run is doing meanwhile.
        if (e.rank === 0) this.status.update(formatSaving(e));
        break;
      case "resumed":
        if (e.rank === 0) this.status.print(formatResumed(e, this.showPath));
        break;
      case "data":
        if (e.rank === 0) this.status.print(formatData(e, this.showPath));
        break;
      case "optimizer":
        if (e.rank === 0) this.status.print(formatOptimizer(e));
        break;
      case "error":
        this.status.print(`[rank ${e.rank}] error: ${e.message}`);
        break;
      default:
        break;
    }
  }

  /** A human line of the program: rank 0's as they are, other ranks' prefixed. */
  line(rank: number | undefined, text: string): void {
    this.status.print(rank === undefined || rank === 0 ? text : `[rank ${rank}] ${text}`);
  }

  /** Events seen so far. */
  all(): readonly ProgramEvent[] {
    return this.events;
  }

  verify(): VerifyReport | undefined {
    return summarizeVerify(this.events);
  }

  /** Training's result so far (train mode), for lasp's messages at the end. */
  training(): TrainingSummary | undefined {
    return summarizeTraining(this.events);
  }

  /** Rank 0's last event of a kind (`stopped`, `checkpoint`, ...). */
  last<K extends ProgramEvent["event"]>(kind: K): Extract<ProgramEvent, { event: K }> | undefined {
    return lastOf(this.events, kind);
  }

  /** Rank 0's finite losses per step, in the order they came. */
  losses(): readonly LossPoint[] {
    return this.lossPoints;
  }

  /** Rank 0's held-out losses (train mode's `eval` events), in the order they came. */
  evals(): readonly EvalPoint[] {
    return this.evalPoints;
  }

  /** The steps after `step` times the median step time so far (warm-up steps only until a timed one). */
  private etaSeconds(step: number, total = totalSteps(this.start)): number | undefined {
    const left = total - (step + 1);
    const ms = median(this.stepMs.timed.length > 0 ? this.stepMs.timed : this.stepMs.warmup);
    return left > 0 && ms !== undefined ? (left * ms) / 1000 : undefined;
  }

  /** Ends the status line, prints the verify table, the summary table and the loss line; returns that text. */
  finish(): string {
    this.status.done();
    const parts: string[] = [];
    const verify = summarizeVerify(this.events);
    if (verify !== undefined) parts.push(formatVerify(verify));
    const summary = summarizeRun(this.events);
    if (summary !== undefined) parts.push(formatSummary(summary));
    const training = summarizeTraining(this.events);
    if (training !== undefined) parts.push(formatTraining(training, this.showPath, this.options.hfLoad));
    const loss = formatLossLine(this.lossPoints);
    if (loss !== "") parts.push(loss);
    const text = parts.map((p) => `${p}\n`).join("");
    if (text !== "") this.options.write(text);
    return text;
  }
}

/**
 * The Python that loads a checkpoint folder in transformers: `AutoModelForCausalLM.from_pretrained("DIR",
 * trust_remote_code=True)`, the Auto class config.json's `auto_map` names (its modeling_lasp.py: hence trusting
 * its code), or transformers' own for a plain Llama (`autoMap` undefined).
 */
export function hfLoadLine(folder: string, autoMap: Record<string, string> | undefined): string {
  const auto = Object.keys(autoMap ?? {}).find((k) => k.startsWith("AutoModelFor")) ?? "AutoModelForCausalLM";
  return `${auto}.from_pretrained(${JSON.stringify(folder)}${autoMap !== undefined ? ", trust_remote_code=True" : ""})`;
}
