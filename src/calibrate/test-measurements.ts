// Test helpers: measurements a machine of known rates would give, as the calibrate program reports them.
import { busFactor } from "./fit.js";
import type { Collected, Measurement } from "./measurements.js";
import { COLLECTIVE_BYTES, type Benchmark, type CollectiveOp } from "./plan.js";

/** Times of `op` at every planned size on a machine of `latency` (s) and bus bandwidth `busbw` (B/s). */
export const collectiveTimes = (
  op: CollectiveOp,
  world: number,
  latency: number,
  busbw: number,
  first = 100,
): Measurement[] =>
  COLLECTIVE_BYTES.map((bytes, i) => ({
    benchmark: { id: first + i, kind: op, bytes } as Benchmark,
    ms: (latency + (busFactor(op, world) * bytes) / busbw) * 1e3,
    runs: 20,
  }));

/** The measurements of one run, with nothing skipped. */
export const collected = (measurements: Measurement[]): Collected => ({
  device: undefined,
  measurements,
  skipped: [],
});
