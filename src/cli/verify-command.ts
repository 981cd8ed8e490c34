// `lasp verify <spec>`: executes the lowered schedule numerically (float64, W simulated ranks, forward and
// backward) at a reduced size and compares every layer kind's output and dQ, dK, dV with the dense oracle.
import { table } from "../text/units.js";
import { verifySpec, VerifyUsageError, type VerifyOptions } from "../verify/verify.js";
import { loadSpec, reportDiagnostics } from "./check-command.js";
import { documentsNote } from "./documents-note.js";
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
  const note = documentsNote(result.spec, "verify");
  if (note !== undefined) io.stderr(`lasp: note: ${note}\n`);
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
  if (cli.json) {
    io.stdout(
      `${JSON.stringify({ file, tolerance, maxError: report.maxError, ok: !failed, rows: report.rows }, null, 2)}\n`,
    );
    return failed ? EXIT.specErrors : EXIT.ok;
  }
  const s = report.spec;
  io.stdout(
    `${file}: ${s.parallel.sequence} simulated ranks, ${s.parallel.layout}, seq_len ${s.run.seqLen}, ${s.model.heads} heads x ${s.model.headDim}, float64\n`,
  );
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
