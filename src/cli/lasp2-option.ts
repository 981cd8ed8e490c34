// `--lasp2 fused|split`: LASP-2's arrangement (src/schedule/lower-lasp2.ts) for compile, inspect and verify,
// so the two can be compared from one build. Fused is the default.
import type { LowerOptions } from "../schedule/lower.js";
import type { CliIo } from "./io.js";

export const LASP2_FLAG = "--lasp2 <arrangement>";
export const LASP2_HELP =
  "LASP-2's arrangement: fused (default; the state collective beside a projection, one walk per piece) or split (beside the intra-piece walk, separate inter steps)";

/** The lowering option for `--lasp2`, or a usage error (printed) when the value is not an arrangement. */
export function lasp2Option(value: string | undefined, io: CliIo): LowerOptions["lasp2"] | null {
  if (value === undefined || value === "fused" || value === "split") return value;
  io.stderr(`lasp: --lasp2 must be fused or split, got ${value}\n`);
  return null;
}
