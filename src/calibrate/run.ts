// Runs the microbenchmark program over a plan: the compute benchmarks in one process on GPU 0, then, with two
// GPUs or more, the collectives in one process per GPU (launch.ts starts both as it starts the generated
// program, NCCL id file included). Each JSON line is parsed as it arrives (measurements.ts) and handed on for
// the progress display; human lines are kept for the failure message.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { launch, type LaunchOptions, type LaunchResult } from "../toolchain/launch.js";
import { parseCalibrationLine, ProtocolError, type CalibrationEvent } from "./measurements.js";
import { partOf, planText, type CalibrationPlan } from "./plan.js";

export interface CalibrationRunOptions {
  binary: string;
  plan: CalibrationPlan;
  /** Timed runs per benchmark, and untimed ones before them. */
  runs: number;
  warmup: number;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  onEvent?: (event: CalibrationEvent) => void;
  onLine?: (rank: number | undefined, line: string) => void;
  /** Starts the program; launch.ts's by default (tests may wrap it). */
  launch?: (options: LaunchOptions) => Promise<LaunchResult>;
}

export interface CalibrationRun {
  events: CalibrationEvent[];
  /** The part whose program failed, with launch's result; undefined when both ran to the end. */
  failed?: { part: "compute" | "collectives"; result: LaunchResult };
  /** A line that broke the protocol (the program and lasp out of step). */
  protocolError?: string;
}

/** The program's command line for one part, after launch.ts's own options. */
export function partArgs(
  planFile: string,
  part: "compute" | "collectives",
  runs: number,
  warmup: number,
): string[] {
  return ["--plan", planFile, "--part", part, "--runs", String(runs), "--warmup", String(warmup)];
}

export async function runCalibration(options: CalibrationRunOptions): Promise<CalibrationRun> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "lasp-calibrate-"));
  const planFile = path.join(dir, "plan.txt");
  await writeFile(planFile, planText(options.plan.benchmarks));
  const run: CalibrationRun = { events: [] };
  const start = options.launch ?? launch;
  try {
    const parts = (["compute", "collectives"] as const).filter((part) =>
      options.plan.benchmarks.some((b) => partOf(b) === part),
    );
    for (const part of parts) {
      const result = await start({
        binary: options.binary,
        world: part === "compute" ? 1 : options.plan.gpus,
        programArgs: partArgs(planFile, part, options.runs, options.warmup),
        ...(options.env !== undefined ? { env: options.env } : {}),
        ...(options.signal !== undefined ? { signal: options.signal } : {}),
        onEventLine: (_rank, line) => {
          if (run.protocolError !== undefined) return;
          try {
            const event = parseCalibrationLine(line);
            if (event === undefined) return;
            run.events.push(event);
            options.onEvent?.(event);
          } catch (error) {
            if (!(error instanceof ProtocolError)) throw error;
            run.protocolError = error.message;
          }
        },
        onLine: (rank, line) => options.onLine?.(rank, line),
      });
      if (result.exitCode !== 0) {
        run.failed = { part, result };
        break;
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return run;
}
