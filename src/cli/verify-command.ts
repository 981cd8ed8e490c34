// `lasp verify <spec>`: executes the lowered schedule numerically (float64, W simulated ranks, forward and
// backward) at a reduced size and compares every layer kind's output and dQ, dK, dV with the dense oracle.
// With packed documents the schedules run with boundaries drawn from the seed, against the document oracle
// (each document attended to alone).
import { table } from "../text/units.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { verifySpec, VerifyUsageError, type VerifyOptions, type VerifyReport } from "../verify/verify.js";
import { loadSpec, reportDiagnostics } from "./check-command.js";
import { EXIT, type CliIo } from "./io.js";
import { lasp2Option } from "./lasp2-option.js";
import { integerFlag, positiveFlag } from "./number-flag.js";

export interface VerifyCliOptions {
  seqLen?: string;
  heads?: string;
  headDim?: string;
  block?: string;
  seed?: string;
  tolerance: string;
  json?: boolean;
  lasp2?: string;
}

export async function verifyCommand(file: string, cli: VerifyCliOptions, io: CliIo): Promise<number> {
  const options: VerifyOptions = {};
  for (const [flag, key, text] of [
    ["--seq-len", "seqLen", cli.seqLen],
    ["--heads", "heads", cli.heads],
    ["--head-dim", "headDim", cli.headDim],
    ["--block", "block", cli.block],
    ["--seed", "seed", cli.seed],
  ] as const) {
    const value = integerFlag(flag, text, io);
    if (value === null) return EXIT.usage;
    if (value !== undefined) options[key] = value;
  }
  const lasp2 = lasp2Option(cli.lasp2, io);
  if (lasp2 === null) return EXIT.usage;
  options.lasp2 = lasp2;
  const tolerance = positiveFlag("--tolerance", cli.tolerance, io);
  if (tolerance === null || tolerance === undefined) return EXIT.usage;
  const result = await loadSpec(file, io);
  if (result === undefined) return EXIT.usage;
  if (!reportDiagnostics(result, io) || result.spec === undefined) return EXIT.specErrors;
  let report;
  try {
    report = verifySpec(result.spec, options);
  } catch (error) {
    if (error instanceof VerifyUsageError) {
      io.stderr(`lasp: ${error.message}\n`);
      return EXIT.usage;
    }
    throw error;
  }
  const failed = report.maxError > tolerance;
  // What the errors cannot show: said on stderr (text and --json alike) and listed in the JSON.
  const warnings = verifyWarnings(report);
  for (const warning of warnings) io.stderr(`lasp: warning: ${warning}\n`);
  if (cli.json) {
    io.stdout(
      `${JSON.stringify({ file, tolerance, maxError: report.maxError, ok: !failed, rows: report.rows, ...(report.documents !== undefined ? { documents: report.documents } : {}), ...(report.padding !== undefined ? { padding: report.padding } : {}), ...(warnings.length > 0 ? { warnings } : {}) }, null, 2)}\n`,
    );
    return failed ? EXIT.specErrors : EXIT.ok;
  }
  const s = report.spec;
  io.stdout(
    `${file}: ${s.parallel.sequence} simulated rank${s.parallel.sequence === 1 ? "" : "s"}, ${s.parallel.layout}, seq_len ${s.run.seqLen}, ${s.model.heads} heads${kvHeadsText(s)} x ${s.model.headDim}, float64\n`,
  );
  if (report.padding !== undefined) {
    const { realSeqLen, padding } = report.padding;
    io.stdout(
      `padded: ${realSeqLen} real tokens and ${padding} of padding (a document of its own); the real tokens are compared with the oracle of the real tokens alone\n`,
    );
  }
  if (report.documents !== undefined) {
    const { boundaries, meanLength } = report.documents;
    io.stdout(
      `documents ${s.run.documents.kind}: ${boundaries.length + 1} documents of mean length ${meanLength} drawn from seed ${cli.seed ?? s.run.seed}, each attended to alone (boundaries after ${listed(boundaries)})\n`,
    );
  }
  const fmt = (x: number): string => x.toExponential(1);
  const rows = report.rows.map((r) => [
    r.kind,
    r.type,
    r.strategy,
    fmt(r.errors.o),
    fmt(r.errors.dq),
    fmt(r.errors.dk),
    fmt(r.errors.dv),
    Math.max(...Object.values(r.errors)) > tolerance ? "FAIL" : "ok",
  ]);
  io.stdout(`${table(["layer kind", "type", "strategy", "o", "dq", "dk", "dv", "result"], rows, "  ")}\n`);
  io.stdout(
    failed
      ? `FAILED: max relative error ${fmt(report.maxError)} is above ${tolerance}\n`
      : `ok: max relative error ${fmt(report.maxError)} (tolerance ${tolerance})\n`,
  );
  return failed ? EXIT.specErrors : EXIT.ok;
}

/** Up to a dozen boundaries, then an ellipsis: the line stays readable at any --seq-len. */
function listed(boundaries: readonly number[]): string {
  if (boundaries.length === 0) return "none";
  const shown = boundaries.slice(0, 12).join(", ");
  return boundaries.length > 12 ? `${shown}, … ${boundaries.length} in all` : shown;
}

/** The softmax kinds' kv heads where they differ from the heads: " (S: 2 kv heads)"; "" when none do. */
function kvHeadsText(spec: ResolvedSpec): string {
  const kinds = spec.model.kinds.flatMap((k) =>
    k.type === "softmax_attention" && k.kvHeads !== spec.model.heads
      ? [`${k.name}: ${k.kvHeads} kv heads`]
      : [],
  );
  return kinds.length === 0 ? "" : ` (${kinds.join(", ")})`;
}

/**
 * What a passing comparison would not have checked: ranks that hold padding alone (nothing real crosses to
 * them), and grouped-query attention that the reduced heads could not keep grouped.
 */
export function verifyWarnings(report: VerifyReport): string[] {
  const out: string[] = [];
  const { parallel } = report.spec;
  const idle = report.paddingOnlyRanks ?? [];
  if (idle.length > 0) {
    const pieces = parallel.layout === "zigzag" ? 2 * parallel.sequence : parallel.sequence;
    const real = report.padding?.realSeqLen ?? report.spec.run.seqLen;
    const one = idle.length === 1;
    out.push(
      `simulated rank${one ? "" : "s"} ${idle.join(", ")} of ${parallel.sequence} hold${one ? "s" : ""} only padding: ` +
        `the ${real} real tokens sit on the other ranks, so what ${one ? "it sends and receives" : "they send and receive"} reaches none of the compared outputs and gradients, and ${one ? "its" : "their"} communication goes unchecked; ` +
        `use a --seq-len that fills every piece, a multiple of ${pieces * report.block} (one block of ${report.block} tokens per piece)`,
    );
  }
  for (const u of report.ungrouped ?? []) {
    // The reduced heads keep the spec's group where they are a multiple of it (of it times W under Ulysses).
    const multiple = (u.heads / u.kvHeads) * (parallel.softmax === "ulysses" ? parallel.sequence : 1);
    out.push(
      `--heads ${u.reducedHeads} cannot keep ${u.kind}'s grouped-query attention (the spec's ${u.heads} heads share ${u.kvHeads} kv heads): ` +
        `${u.kind} ran ${u.reducedHeads} kv heads, one per query head, so the grouping is not checked; use a --heads that is a multiple of ${multiple}`,
    );
  }
  return out;
}
