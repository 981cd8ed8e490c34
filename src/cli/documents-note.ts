// Packed documents (`documents`, issue 19): the schedule IR stops attention at document boundaries and
// `lasp verify` proves it (each document attended to alone), but the cost model still times every schedule
// as one whole sequence (softmax blocks that documents let a kernel skip are not subtracted): `inspect`
// says so rather than report a cost of a different computation.
import type { ResolvedSpec } from "../spec/resolved.js";

/** The note for a spec with document boundaries, or undefined when it has none. */
export function documentsNote(spec: ResolvedSpec, command: "inspect"): string | undefined {
  const { documents } = spec.run;
  if (documents.kind === "none") return undefined;
  return (
    `the costs ${command} shows for \`documents ${documents.kind}\` are those of \`documents none\` (the ` +
    "blocks that documents let softmax kernels skip are not subtracted); the schedules stop attention at " +
    "boundaries drawn from the seed"
  );
}
