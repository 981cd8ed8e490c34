// `lasp inspect <spec>`: the lowered schedule of one rank in words, the communication table, `--json` for
// the whole IR, `--svg FILE` for a timeline picture.
import { writeFile } from "node:fs/promises";
import { timelineSvg } from "../inspect/svg.js";
import { inspectText } from "../inspect/text.js";
import { lowerSpec } from "../schedule/lower.js";
import { describeIoError, loadSpec, reportDiagnostics } from "./check-command.js";
import { EXIT, type CliIo } from "./io.js";
import { lasp2Option } from "./lasp2-option.js";

export interface InspectOptions {
  rank: string;
  json?: boolean;
  svg?: string;
  lasp2?: string;
}

export async function inspectCommand(file: string, options: InspectOptions, io: CliIo): Promise<number> {
  const rank = Number(options.rank);
  const result = await loadSpec(file, io);
  if (result === undefined) return EXIT.usage;
  if (!reportDiagnostics(result, io) || result.spec === undefined) return EXIT.specErrors;
  const spec = result.spec;
  if (!Number.isInteger(rank) || rank < 0 || rank >= spec.parallel.sequence) {
    io.stderr(
      `lasp: --rank must be a whole number from 0 to ${spec.parallel.sequence - 1} (the spec has sequence ${spec.parallel.sequence}), got ${options.rank}\n`,
    );
    return EXIT.usage;
  }
  const lasp2 = lasp2Option(options.lasp2, io);
  if (lasp2 === null) return EXIT.usage;
  const program = lowerSpec(spec, { lasp2 });
  if (options.svg !== undefined) {
    // Four layers (one of each kind where the stack has several) keep the picture readable.
    const first = program.schedules.map((_, s) => program.layers.indexOf(s));
    const layers = [...new Set([...first, ...program.layers.keys()])].slice(0, 4).sort((a, b) => a - b);
    try {
      await writeFile(options.svg, timelineSvg(program, { layers }));
    } catch (error) {
      io.stderr(`lasp: cannot write ${options.svg}: ${describeIoError(error)}\n`);
      return EXIT.usage;
    }
    io.stderr(`wrote ${options.svg} (layers ${layers.join(", ")}, ${spec.parallel.sequence} ranks)\n`);
    if (!options.json) return EXIT.ok;
  }
  if (options.json) {
    io.stdout(`${JSON.stringify(program, null, 2)}\n`);
    return EXIT.ok;
  }
  io.stdout(inspectText(spec, program, { rank }));
  return EXIT.ok;
}
