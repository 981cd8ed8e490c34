// What the memory model says about a spec that checks clean, at its `seq_len`: a warning when the generated
// program would not fit the default GPU (W0604), and, where an allocation would outgrow the kernels' 32-bit
// counts, a warning in `lasp check` (W0605) that `lasp compile` and `lasp run` make an error (E0702).
import type { Setting, SpecFile } from "../ast/ast.js";
import { diagnose, type Diagnostic } from "../diagnostics/diagnostic.js";
import { RECOMPUTE_ORDER, type ResolvedSpec } from "../spec/resolved.js";
import {
  H100,
  MAX_ELEMENTS,
  memoryReport,
  memoryShape,
  recomputeFits,
  type Gpu,
  type MemoryReport,
} from "./memory.js";

/**
 * Lowering every rank's schedule costs time and memory that grow faster than the ranks (a hybrid's softmax
 * layers: about 1 s at 64 ranks, 40 s of CPU at 256 on the 2-core dev machine), and check runs on every
 * command: beyond this sequence-parallel size the notes are left to `lasp inspect`
 * (compile still refuses what the 32-bit counts cannot hold, generate.ts).
 */
export const MEMORY_NOTES_MAX_SEQUENCE = 64;

/** Bytes in decimal gigabytes, as GPU memory is sold (80 GB). */
export function gigabytes(bytes: number): string {
  return `${(bytes / 1e9).toFixed(1)} GB`;
}

function seqLenSetting(ast: SpecFile): Setting | undefined {
  for (const block of ast.blocks) {
    if (block.kind !== "run") continue;
    return block.settings.find((s) => s.key.name === "seq_len");
  }
  return undefined;
}

/** The seq_len as written (`512K`), else the number. */
function seqLenText(setting: Setting, spec: ResolvedSpec): string {
  return setting.value.kind === "number" && setting.value.text !== undefined
    ? setting.value.text
    : String(spec.run.seqLen);
}

/** The longest seq_len the report allows, for a hint. */
function longest(report: MemoryReport, what: string): string {
  if (report.largestSeqLen === undefined) return `no seq_len ${what} with this model and GPU count`;
  return `the longest seq_len ${what} is ${report.largestSeqLen}`;
}

/** The first `recompute` that keeps less than the spec's and fits, for a hint: "; `recompute mlp` fits (70.1 GB)". */
function lighterRecompute(spec: ResolvedSpec, gpu: Gpu): string {
  const last = recomputeFits(
    spec,
    RECOMPUTE_ORDER.slice(RECOMPUTE_ORDER.indexOf(spec.run.recompute) + 1),
    gpu,
  ).at(-1);
  return last?.fits === true ? `; \`recompute ${last.recompute}\` fits (${gigabytes(last.bytes)})` : "";
}

export function memoryNotes(
  ast: SpecFile,
  spec: ResolvedSpec,
  options: { refuse?: boolean; gpu?: Gpu } = {},
): Diagnostic[] {
  if (spec.parallel.sequence > MEMORY_NOTES_MAX_SEQUENCE) return [];
  const setting = seqLenSetting(ast);
  if (setting === undefined) return [];
  const gpu = options.gpu ?? H100;
  const report = memoryReport(memoryShape(spec), spec.run.seqLen, gpu);
  const seqLen = seqLenText(setting, spec);
  const out: Diagnostic[] = [];
  const largest = report.largestAllocation;
  if (largest.elements > MAX_ELEMENTS) {
    const args: [string, string, number] = [seqLen, largest.what, largest.elements];
    const hint = `${longest(report, "that compiles and fits")}; more sequence-parallel GPUs (\`sequence\`) give each a shorter piece`;
    out.push(
      options.refuse === true
        ? diagnose("countLimit", setting.span, args, { hint })
        : diagnose("countLimitAhead", setting.span, args, { hint }),
    );
  }
  if (!report.fits) {
    out.push(
      diagnose(
        "memoryFit",
        setting.span,
        [seqLen, gigabytes(report.totalBytes), `the ${gigabytes(gpu.memory)} of an H100`],
        {
          hint: `${longest(report, "that fits")}${lighterRecompute(spec, gpu)}; more sequence-parallel GPUs (\`sequence\`) need less each; \`lasp inspect\` shows where the memory goes`,
        },
      ),
    );
  }
  return out;
}
