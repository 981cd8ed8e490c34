// The microbenchmark program's output (templates/calibrate/main.cu), one JSON object per stdout line as the
// generated program's events are (src/toolchain/PROTOCOL.md): `device` (what GPU this is), `measure` (the
// median time of one benchmark of the plan, by its number), `skipped` (a benchmark this build or GPU cannot
// run, and why), `error`. Anything that is not a JSON object is a human line.
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

const FIELDS: Record<CalibrationEvent["event"], Record<string, "number" | "string" | "string|null">> = {
  device: { name: "string", sms: "number", memory_bytes: "number", cc: "string", cudnn: "string|null" },
  measure: { id: "number", ms: "number", runs: "number" },
  skipped: { id: "number", why: "string" },
  error: { message: "string" },
};

/** One stdout line: an event, or undefined for a human line (not a JSON object, or an event of another kind). */
export function parseCalibrationLine(line: string): CalibrationEvent | undefined {
  const record = jsonObjectLine(line);
  if (record === undefined) return undefined;
  const text = line.trim();
  const event = record["event"];
  if (typeof event !== "string" || !Object.hasOwn(FIELDS, event)) return undefined;
  const fields = { rank: "number", ...FIELDS[event as CalibrationEvent["event"]] } as const;
  for (const [field, type] of Object.entries(fields)) {
    const x = record[field];
    const ok =
      type === "number"
        ? typeof x === "number" && Number.isFinite(x)
        : type === "string"
          ? typeof x === "string"
          : typeof x === "string" || x === null;
    if (!ok) throw new ProtocolError(`a "${event}" line without a valid ${field} (${type}): ${text}`);
  }
  if (event === "measure" && !((record["ms"] as number) > 0))
    throw new ProtocolError(`a "measure" line with a time that is not positive: ${text}`);
  return record as unknown as CalibrationEvent;
}

/** One benchmark of the plan and its median time. */
export interface Measurement {
  benchmark: Benchmark;
  ms: number;
  runs: number;
}

export interface Collected {
  device: DeviceEvent | undefined;
  measurements: Measurement[];
  skipped: { benchmark: Benchmark; why: string }[];
}

/**
 * Joins the events to the plan. Only rank 0 reports measurements (the collectives' times are rank 0's, as
 * nccl-tests prints); a number outside the plan, or a benchmark measured twice, is a ProtocolError.
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
    if (event.event === "measure") collected.measurements.push({ benchmark, ms: event.ms, runs: event.runs });
    else collected.skipped.push({ benchmark, why: event.why });
  }
  return collected;
}
