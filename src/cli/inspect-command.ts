// `lasp inspect <spec>`: the lowered schedule of one rank in words, the communication table, `--json` for
// the whole IR, `--svg FILE` for a timeline picture.
import { inspectText } from "../inspect/text.js";
import { lowerSpec } from "../schedule/lower.js";
import { loadSpec, reportDiagnostics } from "./check-command.js";
import { EXIT, type CliIo } from "./io.js";

export interface InspectOptions {
  rank: string;
  json?: boolean;
  svg?: string;
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
  const program = lowerSpec(spec);
  if (options.json) {
    io.stdout(`${JSON.stringify(program, null, 2)}\n`);
    return EXIT.ok;
  }
  io.stdout(inspectText(spec, program, { rank }));
  return EXIT.ok;
}
