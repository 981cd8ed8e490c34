// `lasp inspect <spec>`: the lowered schedule of one rank in words, the communication table and the predicted
// times; `--json` for the whole IR with the same tables (src/inspect/README.md), `--svg FILE` for a timeline
// picture. All three render one report (src/inspect/report.ts).
import path from "node:path";
import { existsSync } from "node:fs";
import { inspectNumbers } from "../inspect/report.js";
import { writeFileAtomic } from "../io/atomic-write.js";
import { timelineSvg } from "../inspect/svg.js";
import { inspectText } from "../inspect/text.js";
import { outputWidth } from "../text/units.js";
import { lowerSpec } from "../schedule/lower.js";
import { memoryReport, memoryShape, type Gpu } from "../cost/memory.js";
import { gpuMemoryOption } from "./gpu-memory-option.js";
import {
  gpuOf,
  H100_PROFILE,
  loadProfile,
  ProfileError,
  SHIPPED_PROFILES,
  type MachineProfile,
} from "../cost/profile.js";
import { stepText } from "../inspect/step.js";
import { trainingSection, trainingText } from "../inspect/training.js";
import { autoText, recomputeAutoText } from "../inspect/auto.js";
import { memoryJson, memoryText } from "../inspect/memory.js";
import { gigabytes } from "../cost/memory-notes.js";
import { loadSpec, reportDiagnostics } from "./check-command.js";
import { documentsNote } from "./documents-note.js";
import { EXIT, type CliIo } from "./io.js";
import { lasp2Option } from "./lasp2-option.js";
import { outputFileProblem, whyNotOurSvg } from "./output-file.js";
import { parseNumberText } from "./number-flag.js";

export interface InspectOptions {
  rank: string;
  json?: boolean;
  svg?: string;
  /** Replace a file at --svg that is not a picture lasp wrote (never the spec itself). */
  force?: boolean;
  lasp2?: string;
  /** A shipped machine profile's name or a profile's JSON file; default the H100 SXM. */
  machine?: string;
  /** Device memory of the GPU the memory section compares against, e.g. `80GB`, `141GB`, `96GiB`. */
  gpuMemory?: string;
}

export async function inspectCommand(file: string, options: InspectOptions, io: CliIo): Promise<number> {
  const rank = parseNumberText(options.rank.trim()) ?? Number.NaN;
  const result = await loadSpec(file, io);
  if (result === undefined) return EXIT.usage;
  if (!reportDiagnostics(result, io) || result.spec === undefined) return EXIT.specErrors;
  const note = documentsNote(result.spec, "inspect");
  if (note !== undefined) io.stderr(`lasp: note: ${note}\n`);
  let spec = result.spec;
  if (!Number.isInteger(rank) || rank < 0 || rank >= spec.parallel.sequence) {
    io.stderr(
      `lasp: --rank must be a whole number from 0 to ${spec.parallel.sequence - 1} (the spec has sequence ${spec.parallel.sequence}), got ${options.rank}\n`,
    );
    return EXIT.usage;
  }
  const lasp2 = lasp2Option(options.lasp2, io);
  if (lasp2 === null) return EXIT.usage;
  const profile = machineOption(options.machine, io);
  if (profile === undefined) return EXIT.usage;
  const gpu = gpuOption(options.gpuMemory, profile, io);
  if (gpu === undefined) return EXIT.usage;
  if (options.svg !== undefined) {
    const notOurs = await whyNotOurSvg(options.svg, file, options.force ?? false, "timeline.svg");
    if (notOurs !== undefined) {
      io.stderr(`lasp: will not replace ${options.svg}: ${notOurs}\n`);
      return EXIT.usage;
    }
  }
  // `recompute auto` fitted to the GPU this report is for.
  if (spec.run.recomputeAuto !== undefined)
    spec = (await import("../plan/recompute-auto.js")).resolveRecomputeAuto(spec, gpu, true);
  const shape = memoryShape(spec, { lasp2 });
  const memory = memoryReport(shape, spec.run.seqLen, gpu);
  const program = lowerSpec(spec, { lasp2 });
  // One set of numbers for the text, the JSON and the SVG.
  const numbers = inspectNumbers(spec, program, profile);
  const report = numbers.report;
  // train mode: the run's tokens, time, data reads and checkpoints (the data's paths are the spec folder's).
  const training = trainingSection(
    spec,
    report.step,
    shape.parameters.elements,
    path.dirname(path.resolve(file)),
  );
  if (options.svg !== undefined) {
    // Four layers (one of each kind where the stack has several) keep the picture readable.
    const first = program.schedules.map((_, s) => program.layers.indexOf(s));
    const layers = [...new Set([...first, ...program.layers.keys()])].slice(0, 4).sort((a, b) => a - b);
    try {
      await writeFileAtomic(options.svg, timelineSvg(program, numbers, { layers }));
    } catch (error) {
      io.stderr(
        `lasp: cannot write ${options.svg}: ${outputFileProblem(options.svg, error, "timeline.svg")}\n`,
      );
      return EXIT.usage;
    }
    io.stderr(
      `wrote ${options.svg}: layers ${layers.join(", ")} of ${program.layers.length}, on each of the ${spec.parallel.sequence} ranks\n`,
    );
    if (!options.json) return EXIT.ok;
  }
  if (options.json) {
    // The IR's fields as before, and beside them the tables the text shows.
    const auto = spec.parallel.auto === undefined ? {} : { auto: spec.parallel.auto };
    const recompute = spec.run.recomputeAuto === undefined ? {} : { recomputeAuto: spec.run.recomputeAuto };
    const train = training === undefined ? {} : { training };
    io.stdout(
      `${JSON.stringify({ ...program, ...report, memory: memoryJson(memory), ...auto, ...recompute, ...train }, null, 2)}\n`,
    );
    return EXIT.ok;
  }
  const auto =
    (spec.parallel.auto === undefined ? "" : `${autoText(spec.parallel.auto, outputWidth())}\n\n`) +
    (spec.run.recomputeAuto === undefined
      ? ""
      : `${recomputeAutoText(spec.run.recomputeAuto, outputWidth())}\n\n`);
  const train = training === undefined ? "" : `\n\n${trainingText(training, outputWidth())}`;
  io.stdout(
    `${auto}${inspectText(spec, program, { rank, report, machine: numbers.machine, width: outputWidth() })}\n${stepText(report.step, outputWidth())}${train}\n\n${memoryText(memory, outputWidth())}\n`,
  );
  return EXIT.ok;
}

/**
 * `--machine`: a shipped profile by name, else a profile's JSON file (an existing file, or a path with `/` or
 * ending in `.json`, so that a missing file gets the loader's error);
 * undefined (after saying why) when unknown or invalid.
 */
export function machineOption(text: string | undefined, io: CliIo): MachineProfile | undefined {
  if (text === undefined) return H100_PROFILE;
  const shipped = SHIPPED_PROFILES[text];
  if (shipped !== undefined) return shipped;
  if (!text.includes("/") && !text.endsWith(".json") && !existsSync(text)) {
    io.stderr(
      `lasp: unknown machine ${JSON.stringify(text)}: --machine takes one of ${Object.keys(SHIPPED_PROFILES).join(", ")}, or a profile's JSON file (src/cost/profiles/README.md)\n`,
    );
    return undefined;
  }
  try {
    return loadProfile(text);
  } catch (error) {
    if (!(error instanceof ProfileError)) throw error;
    io.stderr(`lasp: --machine: ${error.message}\n`);
    return undefined;
  }
}

/**
 * The GPU of the memory section: the profile's, with `--gpu-memory` bytes in place of its capacity (said on
 * stderr); undefined (after saying why) if unreadable.
 */
function gpuOption(text: string | undefined, profile: MachineProfile, io: CliIo): Gpu | undefined {
  const gpu = gpuOf(profile);
  const memory = gpuMemoryOption(text, io);
  if (memory === null) return undefined;
  if (memory === undefined) return gpu;
  io.stderr(
    `lasp: note: --gpu-memory ${text} replaces the ${profile.name} profile's ${gigabytes(profile.gpu.memoryBytes)} in the memory section; the rest of the profile is unchanged\n`,
  );
  return { ...gpu, memory };
}
