// `lasp plan <spec>`: every valid schedule choice at each GPU count and sequence length, priced on a machine
// profile by `lasp inspect`'s numbers, ranked best first (src/plan/, docs/PLAN.md). `--json` for the rows,
// `--svg FILE` for tokens/s per GPU against the GPUs or the sequence length.
import { writeFileAtomic } from "../io/atomic-write.js";
import { plan } from "../plan/plan.js";
import { planSvg } from "../plan/svg.js";
import { planText } from "../plan/text.js";
import { outputWidth } from "../text/units.js";
import { loadSpec, reportDiagnostics } from "./check-command.js";
import { machineOption } from "./inspect-command.js";
import { EXIT, type CliIo } from "./io.js";
import { integerFlag } from "./number-flag.js";
import { outputFileProblem } from "./output-file.js";

export interface PlanOptions {
  gpus?: string[];
  seqLen?: string[];
  machine?: string;
  json?: boolean;
  svg?: string;
}

/** Progress is shown once the plan has taken this long (lowering many ranks is slow). */
const PROGRESS_AFTER_MS = 1000;

/** Whole numbers of a repeatable flag, each as a spec writes it (512K); null after saying why. */
function listFlag(
  flag: string,
  texts: string[] | undefined,
  io: CliIo,
  min: number,
): number[] | undefined | null {
  if (texts === undefined) return undefined;
  const values: number[] = [];
  for (const text of texts.flatMap((t) => t.split(",")).filter((t) => t.trim() !== "")) {
    const value = integerFlag(flag, text, io, min);
    if (value === null || value === undefined) return null;
    if (!values.includes(value)) values.push(value);
  }
  return values.sort((a, b) => a - b);
}

export async function planCommand(file: string, options: PlanOptions, io: CliIo): Promise<number> {
  const gpus = listFlag("--gpus", options.gpus, io, 1);
  if (gpus === null) return EXIT.usage;
  const seqLens = listFlag("--seq-len", options.seqLen, io, 1);
  if (seqLens === null) return EXIT.usage;
  const profile = machineOption(options.machine, io);
  if (profile === undefined) return EXIT.usage;
  const result = await loadSpec(file, io);
  if (result === undefined) return EXIT.usage;
  if (!reportDiagnostics(result, io) || result.spec === undefined || result.ast === undefined)
    return EXIT.specErrors;

  const started = Date.now();
  let shownAt = 0;
  const planned = plan({
    ast: result.ast,
    file,
    spec: result.spec,
    profile,
    ...(gpus === undefined ? {} : { gpus }),
    ...(seqLens === undefined ? {} : { seqLens }),
    // A line a second at most, from the first second on, and the last one once any was shown.
    onProgress: (done, total) => {
      const now = Date.now();
      const last = done === total && shownAt > 0;
      if (!last && (now - started < PROGRESS_AFTER_MS || now - shownAt < PROGRESS_AFTER_MS)) return;
      shownAt = now;
      io.stderr(`plan: ${done} of ${total} choices priced or skipped\n`);
    },
  });
  if (options.svg !== undefined) {
    try {
      await writeFileAtomic(options.svg, planSvg(planned));
    } catch (error) {
      io.stderr(`lasp: cannot write ${options.svg}: ${outputFileProblem(options.svg, error, "plan.svg")}\n`);
      return EXIT.usage;
    }
    io.stderr(`wrote ${options.svg}\n`);
  }
  if (options.json) io.stdout(`${JSON.stringify(planned, null, 2)}\n`);
  else io.stdout(`${planText(planned, outputWidth())}\n`);
  return EXIT.ok;
}
