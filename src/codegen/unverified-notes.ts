// What the generator emits but no GPU has run yet: check, compile and run warn at the setting (W0613), so
// nobody trains on it unchecked. An entry leaves with the commit that records its GPU verify in bench/results.
import type { SpecFile } from "../ast/ast.js";
import { diagnose, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { ResolvedSpec } from "../spec/resolved.js";

/** The `parallel` block's setting `key`, where the warning points. */
function parallelSetting(ast: SpecFile, key: string) {
  for (const block of ast.blocks)
    if (block.kind === "parallel") return block.settings.find((s) => s.key.name === key);
  return undefined;
}

export function unverifiedNotes(ast: SpecFile, spec: ResolvedSpec): Diagnostic[] {
  // All-Scan's blocks of state rows (linear_ring_step_rows, the grouped per-state transfers): compiled and
  // linked in CI, never run (no multi-GPU machine since they were written). One block is LASP-1's chain.
  if (spec.parallel.linear !== "allscan" || spec.parallel.scanBlocks <= 1 || spec.parallel.sequence <= 1)
    return [];
  const setting = parallelSetting(ast, "scan_blocks") ?? parallelSetting(ast, "linear");
  if (setting === undefined) return [];
  return [
    diagnose(
      "unverifiedOnGpu",
      setting.span,
      [`\`linear allscan\` with ${spec.parallel.scanBlocks} blocks`, "`lasp run --mode verify` on its GPUs"],
      {
        hint: "`scan_blocks 1` is LASP-1's chain, which has run; `lasp verify` proves the schedule on the CPU",
      },
    ),
  ];
}
