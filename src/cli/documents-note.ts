// Packed documents (`documents`, issue 19) are checked and resolved, but the schedule IR does not stop
// attention at them yet: `verify` and `inspect` say so rather than report on a different computation.
import type { ResolvedSpec } from "../spec/resolved.js";

/** The note for a spec with document boundaries, or undefined when it has none. */
export function documentsNote(spec: ResolvedSpec, command: "verify" | "inspect"): string | undefined {
  const { documents } = spec.run;
  if (documents.kind === "none") return undefined;
  const what =
    command === "verify"
      ? "it checks attention across the whole sequence, as with `documents none`"
      : "the schedules and costs shown are those of `documents none`";
  return `\`documents ${documents.kind}\` is not modelled yet: ${what}`;
}
