// The code generator: resolved spec -> schedule IR -> view model -> the files of a standalone CUDA/NCCL
// program (`lasp compile`). One template per output file; the runtime headers are copied under a header.
import { writeOwnedFolder, type OwnedFolderResult } from "../io/owned-folder.js";
import { largestAllocation, MAX_ELEMENTS, memoryShape } from "../cost/memory.js";
import { lowerSpec, type LowerOptions } from "../schedule/lower.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { version } from "../io/package-info.js";
import { MAX_MERGED_SOURCES } from "./not-generated.js";
import { Renderer } from "./render.js";
import { UnsupportedOp } from "./steps.js";
import { buildView } from "./view-model.js";

/** Runtime headers copied into every program, under lasp/. */
export const RUNTIME_FILES = [
  "types.cuh",
  "attention_args.cuh",
  "check.cuh",
  "mma.cuh",
  "hopper.cuh",
  "linear_attention.cuh",
  "linear_document_scan.cuh",
  "linear_oracle.cuh",
  "softmax_attention.cuh",
  "cudnn_attention.cuh",
  "softmax_backend.cuh",
  "softmax_whole.cuh",
  "gathered_calls.cuh",
  "softmax_gathered.cuh",
  "softmax_support.cuh",
  "softmax_oracle.cuh",
  "elementwise.cuh",
  "model.cuh",
  "tokens.cuh",
  "embedding.cuh",
  "norm.cuh",
  "swiglu.cuh",
  "mlp_gemm.cuh",
  "classifier.cuh",
  "model_oracle.cuh",
  "nccl_one_rank.cuh",
  "nccl_api.cuh",
  "comm.cuh",
  "grad_sum.cuh",
  "reduce_scatter.cuh",
  "blas.cuh",
  "lm_head.cuh",
  "buffers.cuh",
  "run.cuh",
  "options.cuh",
  "json_string.cuh",
  "report.cuh",
  "tensors.cuh",
  "documents.cuh",
  "step_documents.cuh",
  "state.cuh",
  "layer.cuh",
  "bench.cuh",
  "verify.cuh",
  "verify_model.cuh",
  "safetensors.cuh",
  "safetensors_shards.cuh",
  "model_files.cuh",
  "weights_io.cuh",
  "lr_schedule.cuh",
  "adamw_table.cuh",
  "master_bits.cuh",
  "master_weights.cuh",
  "adamw.cuh",
  "grad_norm.cuh",
  "token_files.cuh",
  "checkpoint.cuh",
  "checkpoint_writer.cuh",
  "host_memory.cuh",
  "optimizer_slices.cuh",
  "optimizer.cuh",
  "train_data.cuh",
  "train_checkpoint.cuh",
  "energy.cuh",
  "train.cuh",
] as const;

/** Output files rendered from templates: template -> path in the program. */
const RENDERED: [string, string][] = [
  ["main.cu.hbs", "main.cu"],
  ["kernels.cu.hbs", "kernels.cu"],
  ["kernels.h.hbs", "lasp/kernels.h"],
  ["program.cuh.hbs", "lasp/program.cuh"],
  ["hf_files.h.hbs", "lasp/hf_files.h"],
  ["CMakeLists.txt.hbs", "CMakeLists.txt"],
  ["build.sh.hbs", "build.sh"],
  ["README.md.hbs", "README.md"],
];

/** A spec the generator cannot emit yet: said in words, with what would work. */
export class CodegenLimitation extends Error {}

export function generateProgram(
  spec: ResolvedSpec,
  renderer = new Renderer(),
  lowering: LowerOptions = {},
): Map<string, string> {
  checkSupported(spec);
  checkCounts(spec, lowering);
  const program = lowerSpec(spec, lowering);
  let view;
  try {
    view = buildView({ spec, program, compilerVersion: version() });
  } catch (error) {
    if (error instanceof UnsupportedOp) throw new CodegenLimitation(error.message);
    throw error;
  }
  const files = new Map<string, string>();
  for (const [template, path] of RENDERED) files.set(path, renderer.render(template, view));
  for (const file of RUNTIME_FILES) files.set(`lasp/${file}`, renderer.runtime(file, view));
  return files;
}

/** The same limits `lasp compile` reports at the spec's settings (E0701, not-generated.ts), for every caller. */
function checkSupported(spec: ResolvedSpec): void {
  if (spec.run.dtype !== "bf16") {
    throw new CodegenLimitation(
      `dtype ${spec.run.dtype} is not generated yet: the kernels are bf16 (states and statistics fp32) (E0701)`,
    );
  }
  const softmax = spec.model.layers.find((l) => l.type === "softmax_attention");
  if (
    softmax !== undefined &&
    spec.parallel.softmax === "ring" &&
    spec.parallel.sequence > MAX_MERGED_SOURCES
  ) {
    throw new CodegenLimitation(
      `the generated log-sum-exp merge of ring attention combines at most ${MAX_MERGED_SOURCES} key blocks, and sequence is ${spec.parallel.sequence} (E0701)`,
    );
  }
}

/**
 * The kernels and cuBLAS take token and element counts as 32-bit ints. `lasp compile` reports this at the
 * spec's seq_len (E0702, src/cost/memory-notes.ts) where it can; this guard holds for every spec.
 */
function checkCounts(spec: ResolvedSpec, lowering: LowerOptions): void {
  const largest = largestAllocation(memoryShape(spec, lowering), spec.run.seqLen);
  if (largest.elements > MAX_ELEMENTS) {
    throw new CodegenLimitation(
      `at seq_len ${spec.run.seqLen} the generated program's ${largest.what} would hold ${largest.elements} elements per GPU, more than its kernels count (2^31 - 1) (E0702): use a shorter seq_len or more sequence-parallel GPUs`,
    );
  }
}

/**
 * Writes the files under `dir`, each atomically, replacing what a previous compile wrote there and nothing
 * else (src/io/owned-folder.ts: the rules, and the OutputFolderError thrown for a folder lasp may not use).
 */
export async function writeProgram(
  dir: string,
  files: ReadonlyMap<string, string>,
  options: { force?: boolean } = {},
): Promise<OwnedFolderResult> {
  return writeOwnedFolder(dir, files, {
    force: options.force ?? false,
    mode: (path) => (path.endsWith(".sh") ? 0o755 : undefined),
  });
}
