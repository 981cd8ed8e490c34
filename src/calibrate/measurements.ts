// The microbenchmark program's output (templates/calibrate/main.cu), one JSON object per stdout line as the
// generated program's events are (src/toolchain/PROTOCOL.md): `device` (what GPU this is), `measure` (the
// median time of one benchmark of the plan, by its number; softmax_gathered's also the whole sequence's time,
// `whole_ms`), `skipped` (a benchmark this build or GPU cannot run, and why), `error`. Anything that is not a
// JSON object is a human line.
import { jsonObjectLine } from "../toolchain/json-line.js";
import type { Benchmark, CalibrationPlan } from "./plan.js";

export interface DeviceEvent {
  event: "device";
  rank: number;
  name: string;
  sms: number;
  memory_bytes: number;
  /** Compute capability, "9.0". */
  cc: string;
  /** The cuDNN the program was built with ("9.14.0"), or null. */
  cudnn: string | null;
}
export interface MeasureEvent {
  event: "measure";
  rank: number;
  id: number;
  /** Median of `runs` timed runs after warm-up, CUDA events. */
  ms: number;
  runs: number;
  /** softmax_gathered only: the whole sequence's forward and backward, median of the same runs (`ms`: the ranks'). */
  whole_ms?: number;
}
export interface SkippedEvent {
  event: "skipped";
  rank: number;
  id: number;
  why: string;
}
export interface CalibrationErrorEvent {
  event: "error";
  rank: number;
  message: string;
}
export type CalibrationEvent = DeviceEvent | MeasureEvent | SkippedEvent | CalibrationErrorEvent;

/** A line that claims to be an event of this protocol and is not one: a program and a lasp out of step. */
export class ProtocolError extends Error {}

type FieldType = "number" | "number?" | "string" | "string|null";
const FIELDS: Record<CalibrationEvent["event"], Record<string, FieldType>> = {
  device: { name: "string", sms: "number", memory_bytes: "number", cc: "string", cudnn: "string|null" },
  measure: { id: "number", ms: "number", runs: "number", whole_ms: "number?" },
  skipped: { id: "number", why: "string" },
  error: { message: "string" },
};

const isNumber = (x: unknown): boolean => typeof x === "number" && Number.isFinite(x);

function hasType(x: unknown, type: FieldType): boolean {
  switch (type) {
    case "number":
      return isNumber(x);
    case "number?":
      return x === undefined || isNumber(x);
    case "string":
      return typeof x === "string";
    case "string|null":
      return typeof x === "string" || x === null;
  }
}

/** One stdout line: an event, or undefined for a human line (not a JSON object, or an event of another kind). */
export function parseCalibrationLine(line: string): CalibrationEvent | undefined {
  const record = jsonObjectLine(line);
  if (record === undefined) return undefined;
  const text = line.trim();
  const event = record["event"];
  if (typeof event !== "string" || !Object.hasOwn(FIELDS, event)) return undefined;
  const fields = { rank: "number", ...FIELDS[event as CalibrationEvent["event"]] } as const;
  for (const [field, type] of Object.entries(fields)) {
    if (!hasType(record[field], type))
      throw new ProtocolError(`a "${event}" line without a valid ${field} (${type}): ${text}`);
  }
  const wholeMs = record["whole_ms"] as number | undefined;
  if (event === "measure" && !((record["ms"] as number) > 0 && (wholeMs === undefined || wholeMs > 0)))
    throw new ProtocolError(`a "measure" line with a time that is not positive: ${text}`);
  return record as unknown as CalibrationEvent;
}

/** One benchmark of the plan and its median time. */
export interface Measurement {
  benchmark: Benchmark;
  ms: number;
  runs: number;
  /** softmax_gathered: the whole sequence's time beside `ms`, the ranks' calls together. */
  wholeMs?: number;
}

export interface Collected {
  device: DeviceEvent | undefined;
  measurements: Measurement[];
  skipped: { benchmark: Benchmark; why: string }[];
}

/**
 * Joins the events to the plan. Only rank 0 reports measurements (the collectives' times are rank 0's, as
 * nccl-tests prints); a number outside the plan, a benchmark measured twice, or a gathered one measured
 * without its whole sequence's time, is a ProtocolError.
 */
export function collectMeasurements(plan: CalibrationPlan, events: readonly CalibrationEvent[]): Collected {
  const byId = new Map(plan.benchmarks.map((b) => [b.id, b]));
  const done = new Set<number>();
  const collected: Collected = { device: undefined, measurements: [], skipped: [] };
  for (const event of events) {
    if (event.rank !== 0 || event.event === "error") continue;
    if (event.event === "device") {
      collected.device ??= event;
      continue;
    }
    const benchmark = byId.get(event.id);
    if (benchmark === undefined)
      throw new ProtocolError(`the program answered benchmark ${event.id}, which the plan does not have`);
    if (done.has(event.id)) throw new ProtocolError(`the program answered benchmark ${event.id} twice`);
    done.add(event.id);
    if (event.event === "measure") collected.measurements.push(measurementOf(benchmark, event));
    else collected.skipped.push({ benchmark, why: event.why });
  }
  return collected;
}

/** A measure event of a benchmark as a Measurement: the gathered benchmark's needs its whole_ms. */
export function measurementOf(benchmark: Benchmark, event: MeasureEvent): Measurement {
  const measurement: Measurement = { benchmark, ms: event.ms, runs: event.runs };
  if (benchmark.kind !== "softmax_gathered") return measurement;
  if (event.whole_ms === undefined)
    throw new ProtocolError(
      `the program answered benchmark ${event.id} (softmax_gathered) without the whole sequence's time (whole_ms)`,
    );
  return { ...measurement, wholeMs: event.whole_ms };
}
