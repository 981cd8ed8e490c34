// Packed documents (`documents`, issue 19): the cost model counts the softmax work the kernels do with the
// documents the schedule was lowered with, drawn from the seed (src/schedule/documents.ts). With synthetic data
// those are the program's documents too; a token file's (or a Megatron index's) have their own lengths, so
// `inspect` says which documents its costs assume.
import { DEFAULT_DOCUMENT_LENGTH } from "../schedule/documents.js";
import type { ResolvedSpec } from "../spec/resolved.js";

/** The note for a spec whose documents come from its data, or undefined when the costs are the run's. */
export function documentsNote(spec: ResolvedSpec, command: "inspect"): string | undefined {
  const { documents } = spec.run;
  if (documents.kind === "none" || spec.run.data.kind !== "file") return undefined;
  return (
    `the costs ${command} shows for \`documents ${documents.kind}\` assume documents of mean length ` +
    `${DEFAULT_DOCUMENT_LENGTH} tokens drawn from the seed (the softmax work they let the kernels skip is ` +
    "subtracted); the token file's documents have their own lengths"
  );
}
