// The calibrated profile: the base profile (the shipped one of the same GPU model, or --base) with the
// measured fields replaced, each with the source "measured by lasp calibrate on <GPU>, <date>, <what>", and the
// fields calibration cannot measure (data-sheet peaks, the network between nodes) kept with their sources.
// A `calibration` object records what was run and every measurement, and marks the file as lasp's: an
// existing file at the output path is replaced only when it has that mark (tokens-command.ts's rule: lasp
// replaces only what it wrote).
import { readFile, stat } from "node:fs/promises";
import { SHIPPED_PROFILES, validateProfile, type MachineProfile } from "../cost/profile.js";
import { errorCode } from "../io/write-error.js";
import { flopsOf, streamBytesOf, type Fit } from "./fit.js";
import type { Collected } from "./measurements.js";
import { describeBenchmark } from "./plan.js";

/** The mark of a file lasp calibrate wrote. */
export const CALIBRATION_TOOL = "lasp calibrate";

/** The shipped profile of a GPU as the CUDA runtime names it ("NVIDIA H100 80GB HBM3"); undefined if none. */
export function shippedProfileFor(deviceName: string, memoryBytes: number): string | undefined {
  const name = deviceName.toUpperCase();
  if (/\bH200\b/.test(name)) return "h200-141gb";
  if (/\bH100\b/.test(name)) return /PCIE|NVL/.test(name) ? undefined : "h100-sxm-80gb";
  if (/\bA100\b/.test(name)) return memoryBytes > 60e9 ? "a100-sxm-80gb" : "a100-sxm-40gb";
  return undefined;
}

export interface CalibrationRecord {
  tool: typeof CALIBRATION_TOOL;
  version: string;
  /** ISO time of the run. */
  date: string;
  device: string;
  gpus: number;
  /** The base profile: a shipped name or a file. */
  base: string;
  /** The spec whose shapes were measured, or the default model. */
  shapes: string;
  /** wholeMs: the gathered benchmark's whole-sequence call, timed beside its `ms`. */
  measurements: { benchmark: string; ms: number; wholeMs?: number; runs: number; rate?: string }[];
  skipped: { benchmark: string; why: string }[];
}

export type CalibratedProfile = MachineProfile & { calibration: CalibrationRecord };

export interface CalibratedProfileInput {
  base: MachineProfile;
  baseName: string;
  fit: Fit;
  collected: Collected;
  device: string;
  gpus: number;
  date: Date;
  version: string;
  shapes: string;
}

/** The profile to write, validated as `lasp plan --machine FILE` will read it (throws ProfileError). */
export function calibratedProfile(input: CalibratedProfileInput): CalibratedProfile {
  const day = input.date.toISOString().slice(0, 10);
  const profile = structuredClone(input.base) as MachineProfile;
  profile.name = `${input.device} (calibrated ${day})`;
  for (const field of input.fit.fields) {
    const [section, key] = field.path.split(".") as [keyof MachineProfile, string];
    (profile[section] as unknown as Record<string, number>)[key] = field.value;
    profile.sources[field.path] = `measured by lasp calibrate on ${input.device}, ${day}, ${field.what}`;
  }
  const rate = (m: Collected["measurements"][number]): string | undefined => {
    const flops = flopsOf(m.benchmark);
    if (flops !== undefined) return `${(flops / (m.ms / 1000) / 1e12).toFixed(1)} TFLOP/s`;
    const bytes = streamBytesOf(m.benchmark);
    return bytes === undefined ? undefined : `${(bytes / (m.ms / 1000) / 1e9).toFixed(0)} GB/s`;
  };
  const calibration: CalibrationRecord = {
    tool: CALIBRATION_TOOL,
    version: input.version,
    date: input.date.toISOString(),
    device: input.device,
    gpus: input.gpus,
    base: input.baseName,
    shapes: input.shapes,
    measurements: input.collected.measurements.map((m) => {
      const r = rate(m);
      return {
        benchmark: describeBenchmark(m.benchmark),
        ms: Number(m.ms.toPrecision(6)),
        ...(m.wholeMs !== undefined ? { wholeMs: Number(m.wholeMs.toPrecision(6)) } : {}),
        runs: m.runs,
        ...(r !== undefined ? { rate: r } : {}),
      };
    }),
    skipped: input.collected.skipped.map((s) => ({ benchmark: describeBenchmark(s.benchmark), why: s.why })),
  };
  const result = { ...profile, calibration };
  validateProfile(result, "the calibrated profile");
  return result;
}

/** The file's text: the profile's fields as the shipped ones list them, the record last. */
export function profileText(profile: CalibratedProfile): string {
  return `${JSON.stringify(profile, null, 2)}\n`;
}

/** The base profile by name (a shipped one), or undefined. */
export function shippedProfile(name: string): MachineProfile | undefined {
  return Object.hasOwn(SHIPPED_PROFILES, name) ? SHIPPED_PROFILES[name] : undefined;
}

/**
 * Why `path` may not be replaced without --force; undefined where it is free: missing, or a profile lasp
 * calibrate wrote (its `calibration.tool`). A folder is left to the write to report.
 */
export async function whyNotOurProfile(path: string): Promise<string | undefined> {
  try {
    const info = await stat(path);
    if (info.isDirectory()) return undefined;
    if (!info.isFile()) return "it is not a regular file";
  } catch (error) {
    const code = errorCode(error);
    return code === "ENOENT" || code === "ENOTDIR" ? undefined : `it cannot be read (${code ?? "error"})`;
  }
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, "utf8"));
  } catch {
    return "it is not JSON";
  }
  const record = (value as { calibration?: { tool?: unknown } } | null)?.calibration;
  return record?.tool === CALIBRATION_TOOL ? undefined : "it is not a profile lasp calibrate wrote";
}
