// The code generator: resolved spec -> schedule IR -> view model -> the files of a standalone CUDA/NCCL
// program (`lasp compile`). One template per output file; the runtime headers are copied under a header.
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { lowerSpec, type LowerOptions } from "../schedule/lower.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { version } from "../cli/package-info.js";
import { Renderer } from "./render.js";
import { UnsupportedOp } from "./steps.js";
import { buildView } from "./view-model.js";

/** Runtime headers copied into every program, under lasp/. */
export const RUNTIME_FILES = [
  "types.cuh",
  "check.cuh",
  "mma.cuh",
  "linear_attention.cuh",
  "linear_oracle.cuh",
  "softmax_attention.cuh",
  "cudnn_attention.cuh",
  "softmax_backend.cuh",
  "softmax_whole.cuh",
  "softmax_support.cuh",
  "softmax_oracle.cuh",
  "elementwise.cuh",
  "model.cuh",
  "comm.cuh",
  "grad_sum.cuh",
  "blas.cuh",
] as const;

/** Output files rendered from templates: template -> path in the program. */
const RENDERED: [string, string][] = [
  ["main.cu.hbs", "main.cu"],
  ["kernels.cu.hbs", "kernels.cu"],
  ["kernels.h.hbs", "lasp/kernels.h"],
  ["program.cuh.hbs", "lasp/program.cuh"],
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

function checkSupported(spec: ResolvedSpec): void {
  if (spec.run.dtype !== "bf16") {
    throw new CodegenLimitation(
      `dtype ${spec.run.dtype} is not generated yet: the kernels are bf16 (states and statistics fp32)`,
    );
  }
  const softmax = spec.model.layers.find((l) => l.type === "softmax_attention");
  if (softmax !== undefined && spec.parallel.sequence > MAX_MERGED_SOURCES) {
    throw new CodegenLimitation(
      `the generated log-sum-exp merge combines at most ${MAX_MERGED_SOURCES} key blocks, and sequence is ${spec.parallel.sequence}`,
    );
  }
}

/** Slots in lasp::SlotList (types.cuh). */
const MAX_MERGED_SOURCES = 64;

/** Writes the files under `dir`, replacing what a previous compile left there. */
export async function writeProgram(dir: string, files: Map<string, string>): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  for (const [path, contents] of files) {
    const target = join(dir, path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, contents, path.endsWith(".sh") ? { mode: 0o755 } : {});
  }
}
