// What the generator emits but no GPU has run yet: check, compile and run warn at the setting (W0613), so
// nobody trains on it unchecked. An entry leaves with the commit that records its GPU verify in bench/results.
import type { SpecFile } from "../ast/ast.js";
import { diagnose, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { ResolvedSpec } from "../spec/resolved.js";

/** The setting `key` of the block of kind `kind`, where a warning points. */
function setting(ast: SpecFile, kind: "parallel" | "run", key: string) {
  for (const block of ast.blocks)
    if (block.kind === kind) return block.settings.find((s) => s.key.name === key);
  return undefined;
}

export function unverifiedNotes(ast: SpecFile, spec: ResolvedSpec): Diagnostic[] {
  return [
    ...allScanNote(ast, spec),
    ...documentsNote(ast, spec),
    ...gatheredNote(ast, spec),
    ...replicatedKvNote(ast, spec),
  ];
}

function replicatedKvNote(ast: SpecFile, spec: ResolvedSpec): Diagnostic[] {
  // Ulysses with fewer kv heads than sequence ranks (issue 18): each kv head replicated on W / kv_heads ranks,
  // the token owner summing their dK, dV partials (sum_slices_bf16). `lasp verify` proves the schedule on the
  // CPU and the program compiles and links here; it has not run on GPUs.
  const W = spec.parallel.sequence;
  const fewest = Math.min(
    ...spec.model.layers.flatMap((l) => (l.type === "softmax_attention" ? [l.kvHeads] : [])),
  );
  if (spec.parallel.softmax !== "ulysses" || W <= 1 || !(fewest < W)) return [];
  const at = setting(ast, "parallel", "softmax") ?? setting(ast, "parallel", "sequence");
  if (at === undefined) return [];
  return [
    diagnose(
      "unverifiedOnGpu",
      at.span,
      [
        `\`softmax ulysses\` with kv_heads ${fewest} replicated over ${W} sequence ranks`,
        "more than one GPU",
        "`lasp run --mode verify` on its GPUs",
      ],
      {
        hint: "`lasp verify` proves the schedule on the CPU; Ulysses with kv_heads divisible by the sequence size has run on GPUs",
      },
    ),
  ];
}

function gatheredNote(ast: SpecFile, spec: ResolvedSpec): Diagnostic[] {
  // LASP-2H as one gathered call per rank (K, V reordered, cuDNN per query piece; issue 18): compiled and
  // linked here, its runtime checked by bench/gpu/gathered_check.cu on one GPU; the program has not run on
  // several GPUs since.
  const softmax = spec.model.layers.some((l) => l.type === "softmax_attention");
  if (!softmax || spec.parallel.softmax !== "allgather" || spec.parallel.sequence <= 1) return [];
  const at =
    setting(ast, "parallel", "softmax") ??
    setting(ast, "parallel", "sequence") ??
    setting(ast, "parallel", "gpus");
  if (at === undefined) return [];
  return [
    diagnose(
      "unverifiedOnGpu",
      at.span,
      [
        `\`softmax allgather\` (LASP-2H, one gathered call per rank) over ${spec.parallel.sequence} sequence ranks`,
        "more than one GPU",
        "`lasp run --mode verify` on its GPUs",
      ],
      { hint: "`lasp verify` proves the schedule on the CPU; `softmax ulysses` or `ring` have run on GPUs" },
    ),
  ];
}

function allScanNote(ast: SpecFile, spec: ResolvedSpec): Diagnostic[] {
  // All-Scan's blocks of state rows (linear_ring_step_rows, the grouped per-state transfers): compiled and
  // linked in CI; the program runs and verifies on one GPU, where there is no chain, and the chain has never
  // run (no multi-GPU machine since it was written). One block is LASP-1's chain.
  if (spec.parallel.linear !== "allscan" || spec.parallel.scanBlocks <= 1 || spec.parallel.sequence <= 1)
    return [];
  const at = setting(ast, "parallel", "scan_blocks") ?? setting(ast, "parallel", "linear");
  if (at === undefined) return [];
  return [
    diagnose(
      "unverifiedOnGpu",
      at.span,
      [
        `\`linear allscan\` with ${spec.parallel.scanBlocks} blocks`,
        "a GPU",
        "`lasp run --mode verify` on its GPUs",
      ],
      {
        hint: "`scan_blocks 1` is LASP-1's chain, which has run; `lasp verify` proves the schedule on the CPU",
      },
    ),
  ];
}

function documentsNote(ast: SpecFile, spec: ResolvedSpec): Diagnostic[] {
  // On one GPU the document kernels, the step's documents and the whole model have run
  // (bench/results/2026-12-05-documents-h100.md); across sequence ranks (the flags' AllGather and scan, a
  // zigzag tile across a rank's two pieces in a real collective) they have not. A padded seq_len runs them too
  // (the padding is a document).
  const documents = spec.run.documents.kind !== "none";
  if ((!documents && spec.run.padding === 0) || spec.parallel.sequence <= 1) return [];
  const at = documents ? setting(ast, "run", "documents") : setting(ast, "run", "seq_len");
  if (at === undefined) return [];
  const what = documents
    ? `\`documents ${spec.run.documents.kind}\` over ${spec.parallel.sequence} sequence ranks`
    : `a padded \`seq_len\` (the padding is a document) over ${spec.parallel.sequence} sequence ranks`;
  return [
    diagnose("unverifiedOnGpu", at.span, [what, "more than one GPU", "`lasp run --mode verify`"], {
      hint: "on one GPU it has run and verified; `lasp verify` proves the schedules with documents on the CPU",
    }),
  ];
}
