// The op table of src/schedule/README.md (the region between `<!-- ops:begin -->` and `<!-- ops:end -->`),
// written from the catalogue (ops.ts) by `npm run docs`; a test keeps the README in sync.
import { COMPUTE_OPS, OPS } from "./ops.js";

export const OPS_README = "src/schedule/README.md";

const code = (names: readonly string[]): string => names.map((n) => `\`${n}\``).join(", ");

/** One row per op: its name, operands, params and meaning. */
export function opsTable(): string {
  const rows = COMPUTE_OPS.map((op) => {
    const entry = OPS[op];
    return `| \`${op}\` | ${code(entry.operands)} | ${code(entry.params)} | ${entry.doc} |`;
  });
  return ["| op | operands | params | meaning |", "| --- | --- | --- | --- |", ...rows].join("\n");
}
