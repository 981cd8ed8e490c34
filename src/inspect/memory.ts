// The memory section of `lasp inspect`: bytes per GPU by category (src/cost/memory.ts), whether they fit the
// chosen GPU and the longest seq_len that does, as a small table for the text and an object for `--json`.
import { gigabytes } from "../cost/memory-notes.js";
import { type MemoryCategory, type MemoryReport } from "../cost/memory.js";
import { MAX_WIDTH, table, wrap } from "../text/units.js";

const LABELS: Record<MemoryCategory, string> = {
  weights: "weights",
  gradients: "weight gradients",
  optimizer: "optimizer states",
  activations: "activations kept for the backward pass",
  workspaces: "workspaces and scratch",
  communication: "communication buffers",
};

/** What a category holds where it is not obvious from its label, by mode. */
function note(category: MemoryCategory, mode: string): string {
  if (category !== "optimizer") return "";
  return mode === "train"
    ? "AdamW: fp32 m and v, masters' low halves"
    : `none in ${mode} mode (train mode has AdamW's)`;
}

const LIMITS: Record<MemoryReport["limitedBy"], string> = {
  memory: "the GPU's memory",
  "32-bit counts": "the kernels' 32-bit counts",
  "seq_len limit": "the language's largest seq_len, 2^31",
};

export function memoryText(report: MemoryReport, width: number = MAX_WIDTH): string {
  const rows = (Object.keys(LABELS) as MemoryCategory[]).map((c) => [
    LABELS[c],
    gigabytes(report.categories[c]),
    note(c, report.mode),
  ]);
  const share = Math.round((100 * report.totalBytes) / report.gpu.memory);
  rows.push(
    [
      "allocated by the program",
      gigabytes(report.programBytes),
      report.mode === "bench"
        ? "what bench's program_mem_bytes measures"
        : "what the program allocates itself",
    ],
    [report.runtimeReserveWhat, gigabytes(report.runtimeReserveBytes), "an estimate"],
    ["total", gigabytes(report.totalBytes), `${report.fits ? "fits" : "does not fit"}: ${share}% of the GPU`],
  );
  const title = `Memory per GPU at seq_len ${report.seqLen} (${report.mode} mode; GPU of ${gigabytes(report.gpu.memory)}, ${report.gpu.sms} SMs):`;
  const longest =
    report.largestSeqLen === undefined
      ? `No seq_len fits: even the shortest is limited by ${LIMITS[report.limitedBy]}.`
      : `Longest seq_len that fits: ${report.largestSeqLen} (then limited by ${LIMITS[report.limitedBy]}).`;
  const largest = `Largest tensor: ${report.largestAllocation.what}, ${report.largestAllocation.elements} elements.`;
  return [
    wrap(title, width).join("\n"),
    table(["", "per GPU", "note"], rows, "  ", width),
    ...[longest, largest].map((line) =>
      wrap(line, width - 2)
        .map((l) => `  ${l}`)
        .join("\n"),
    ),
  ].join("\n");
}

/** The section for `--json`: the same numbers, in bytes. */
export function memoryJson(report: MemoryReport): object {
  return {
    seqLen: report.seqLen,
    gpuMemoryBytes: report.gpu.memory,
    gpuSms: report.gpu.sms,
    categories: report.categories,
    programBytes: report.programBytes,
    runtimeReserveBytes: report.runtimeReserveBytes,
    totalBytes: report.totalBytes,
    fits: report.fits,
    largestSeqLen: report.largestSeqLen ?? null,
    limitedBy: report.limitedBy,
    largestAllocation: report.largestAllocation,
    allocations: report.allocations,
  };
}
