// `lasp plan`'s table: per GPU count and sequence length, the choices best first, the spec's own marked, and
// the choices the checker refused counted by reason.
import { gigabytes } from "../cost/memory-notes.js";
import { TIE, ties } from "../cost/tie.js";
import { formatTime, MAX_WIDTH, table, wrap } from "../text/units.js";
import type { Plan, PlanRow } from "./plan.js";

/** 262144 -> 256K, 2097152 -> 2M; other lengths as they are. */
export function tokensText(n: number): string {
  if (n >= 2 ** 20 && n % 2 ** 20 === 0) return `${n / 2 ** 20}M`;
  if (n >= 2 ** 10 && n % 2 ** 10 === 0) return `${n / 2 ** 10}K`;
  return String(n);
}

const HEADER = ["", "choice", "step", "tokens/s/GPU", "MFU", "exposed comm", "memory/GPU", "fits"];

/** Holds a space that the table must not wrap at; planText turns it back into a space. */
const KEEP = "\u00a0";

function cells(row: PlanRow, rank: number): string[] {
  return [
    `${rank}${row.own ? "*" : ""}${row.unverified ? "?" : ""}`,
    // A narrow choice column wraps after a comma, never inside "lasp2 + allgather" or "2 x 1".
    row.label.replace(/ ([x+]) /g, `${KEEP}$1${KEEP}`),
    formatTime(row.step),
    Math.round(row.tokensPerSecondPerGpu).toLocaleString("en-US"),
    `${(row.mfu * 100).toFixed(1)}%`,
    formatTime(row.exposedComm),
    gigabytes(row.memoryBytes),
    row.fits ? "yes" : "no",
  ];
}

export function planText(plan: Plan, width: number = MAX_WIDTH): string {
  const out: string[] = [
    ...wrap(
      `Plan for ${plan.spec} on ${plan.machine} (${gigabytes(plan.gpuMemoryBytes)} per GPU): every valid choice (schedules, layout, sequence x data), best first: those that fit, then by tokens/s per GPU; * marks the spec's own, ? a choice whose program has not run on GPUs yet (W0613).`,
      width,
    ),
  ];
  for (const gpus of plan.gpus)
    for (const seqLen of plan.seqLens) {
      const rows = plan.rows.filter((r) => r.gpus === gpus && r.seqLen === seqLen);
      const skipped = plan.skipped.filter((s) => s.gpus === gpus && s.seqLen === seqLen);
      out.push(
        "",
        `${gpus} GPU${gpus === 1 ? "" : "s"}, seq_len ${tokensText(seqLen)}: ` +
          (rows.length === 0
            ? `no valid choice, all ${skipped.length} skipped (why is below)`
            : `${rows.length} choice${rows.length === 1 ? "" : "s"}, ${skipped.length} skipped`),
      );
      if (rows.length > 0)
        out.push(
          table(
            HEADER,
            rows.map((r, i) => cells(r, i + 1)),
            "  ",
            width,
          ).replaceAll(KEEP, " "),
        );
      if (rows.length > 1 && rows[0]!.fits) out.push(bestLine(rows));
    }
  const reasons = new Map<string, number>();
  for (const s of plan.skipped) reasons.set(s.reason, (reasons.get(s.reason) ?? 0) + 1);
  if (reasons.size > 0) {
    out.push("", `Skipped ${plan.skipped.length} choices the checker refuses:`);
    for (const [reason, count] of [...reasons].sort((a, b) => b[1] - a[1]))
      out.push(...wrap(`${count} x ${reason}`, width - 2).map((l, i) => (i === 0 ? `  ${l}` : `    ${l}`)));
  }
  out.push(
    "",
    ...wrap(
      "Predicted by the model of `lasp inspect` (src/cost/training-step.ts); where it is known to be off for some schedules is in docs/PLAN.md.",
      width,
    ),
  );
  return out.join("\n");
}

/** The best choice and its margin; or, where others are within TIE of it, how many tie with it. */
function bestLine(rows: PlanRow[]): string {
  const best = rows[0]!;
  const tied = rows.filter(
    (r, i) => i > 0 && r.fits && ties(best.tokensPerSecondPerGpu, r.tokensPerSecondPerGpu),
  );
  if (tied.length === 0)
    return `  best: ${best.label}, ${percent(best, rows[1]!)} more tokens/s per GPU than the runner-up`;
  return `  best: ${best.label}, tied within ${TIE * 100}% with ${tied.length} other choice${tied.length === 1 ? "" : "s"} (${tied[0]!.label}${tied.length > 1 ? ", ..." : ""}): the model cannot tell them apart`;
}

function percent(best: PlanRow, next: PlanRow): string {
  return `${((best.tokensPerSecondPerGpu / next.tokensPerSecondPerGpu - 1) * 100).toFixed(1)}%`;
}
