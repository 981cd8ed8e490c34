// `lasp plan <spec>`: every valid schedule choice at each GPU count and sequence length, priced on a machine
// profile by `lasp inspect`'s numbers, ranked best first (src/plan/, docs/PLAN.md). `--json` for the rows,
// `--svg FILE` for tokens/s per GPU against the GPUs or the sequence length.
import { writeFileAtomic } from "../io/atomic-write.js";
import { plan, type Plan } from "../plan/plan.js";
import { planSvg } from "../plan/svg.js";
import { planText } from "../plan/text.js";
import { outputWidth } from "../text/units.js";
import { loadSpec, reportDiagnostics } from "./check-command.js";
import { machineOption } from "./inspect-command.js";
import { EXIT, type CliIo } from "./io.js";
import { integerFlag } from "./number-flag.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { PARALLEL_KEYS, RUN_KEYS, type KeyRule } from "../spec/schema.js";
import { outputFileProblem, whyNotOurSvg } from "./output-file.js";

export interface PlanOptions {
  gpus?: string[];
  seqLen?: string[];
  machine?: string;
  json?: boolean;
  svg?: string;
  /** Replace a file at --svg that is not a picture lasp wrote (never the spec itself). */
  force?: boolean;
}

/** Progress is shown once the plan has taken this long (lowering many ranks is slow). */
const PROGRESS_AFTER_MS = 1000;

/** Whole numbers of a repeatable flag, each as a spec writes it (512K); null after saying why. */
function listFlag(
  flag: string,
  texts: string[] | undefined,
  io: CliIo,
  min: number,
  max?: number,
): number[] | undefined | null {
  if (texts === undefined) return undefined;
  const values: number[] = [];
  for (const text of texts.flatMap((t) => t.split(",")).filter((t) => t.trim() !== "")) {
    const value = integerFlag(flag, text, io, min, max);
    if (value === null || value === undefined) return null;
    if (!values.includes(value)) values.push(value);
  }
  return values.sort((a, b) => a - b);
}

/** A spec key's whole-number range (src/spec/schema.ts): the flag that sets it takes no more than a spec does. */
function keyRange(keys: readonly KeyRule[], key: string): [number, number] {
  const rule = keys.find((k) => k.key === key)?.rule;
  if (rule?.type !== "int") throw new Error(`${key} is not a whole-number key`);
  return [rule.min, rule.max];
}

export async function planCommand(file: string, options: PlanOptions, io: CliIo): Promise<number> {
  // Checked here, before any choice is lowered: out of range, every choice would be refused, one by one.
  const gpus = listFlag("--gpus", options.gpus, io, ...keyRange(PARALLEL_KEYS, "gpus"));
  if (gpus === null) return EXIT.usage;
  const seqLens = listFlag("--seq-len", options.seqLen, io, ...keyRange(RUN_KEYS, "seq_len"));
  if (seqLens === null) return EXIT.usage;
  const profile = machineOption(options.machine, io);
  if (profile === undefined) return EXIT.usage;
  const result = await loadSpec(file, io);
  if (result === undefined) return EXIT.usage;
  if (!reportDiagnostics(result, io) || result.spec === undefined || result.ast === undefined)
    return EXIT.specErrors;
  // Refused before the plan, which can take a while.
  if (options.svg !== undefined) {
    const notOurs = await whyNotOurSvg(options.svg, file, options.force ?? false, "plan.svg");
    if (notOurs !== undefined) {
      io.stderr(`lasp: will not replace ${options.svg}: ${notOurs}\n`);
      return EXIT.usage;
    }
  }

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
  // Nothing to rank: show what was refused (the table or --json lists every reason), write no picture, fail.
  if (planned.rows.length === 0) {
    io.stdout(
      options.json ? `${JSON.stringify(planned, null, 2)}\n` : `${planText(planned, outputWidth())}\n`,
    );
    io.stderr(`lasp: ${noChoiceMessage(planned, result.spec, options.json ?? false)}\n`);
    return EXIT.usage;
  }
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

/** Why `lasp plan` has nothing to rank, and what plans instead: the spec's own GPUs and seq_len always do. */
export function noChoiceMessage(planned: Plan, spec: ResolvedSpec, json: boolean): string {
  const own = `--gpus ${spec.parallel.gpus} --seq-len ${spec.run.seqLen - spec.run.padding}`;
  return (
    `no schedule choice is valid at --gpus ${planned.gpus.join(",")} and --seq-len ${planned.seqLens.join(",")}: ` +
    `the checker refuses all ${planned.skipped.length} (each with its reason ${json ? "under \`skipped\`" : "above"}); ` +
    `use GPU counts and lengths the model splits over, as the spec's own (${own})`
  );
}
