// The microbenchmark program's files: templates/calibrate/ (fixed C++: the benchmarks come from plan.txt at
// run time, so every spec shares one build in the cache) and the runtime headers of the generated programs
// it reuses, under lasp/ as there: lasp's own attention kernels, cuBLAS's call, NCCL's id exchange.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../io/package-info.js";

/** The program's own files, from templates/calibrate/. */
export const CALIBRATE_FILES = [
  "main.cu",
  "plan.h",
  "lines.h",
  "kernels.cu",
  "kernels.h",
  "CMakeLists.txt",
  "build.sh",
];

/** The runtime headers it includes (and theirs), copied from templates/runtime/. */
export const CALIBRATE_RUNTIME = [
  "types.cuh",
  "attention_args.cuh",
  "check.cuh",
  "mma.cuh",
  "hopper.cuh",
  "linear_attention.cuh",
  "softmax_attention.cuh",
  "cudnn_attention.cuh",
  "softmax_backend.cuh",
  "softmax_whole.cuh",
  "gathered_calls.cuh",
  "softmax_gathered.cuh",
  "blas.cuh",
  "nccl_one_rank.cuh",
  "nccl_api.cuh",
  "comm.cuh",
];

/** The files of the program, as buildGeneratedProgram takes them. */
export function calibrateProgram(version: string): Map<string, string> {
  const dir = join(packageRoot(), "templates");
  const files = new Map<string, string>();
  const mark = `lasp ${version} calibrate`;
  for (const name of CALIBRATE_FILES) {
    const text = readFileSync(join(dir, "calibrate", name), "utf8");
    // The version in a comment: a new lasp rebuilds (the cache is keyed by the files' contents).
    const comment = name.endsWith(".txt") || name.endsWith(".sh") ? "#" : "//";
    files.set(
      name,
      name === "build.sh" ? text.replace("\n", `\n${comment} ${mark}\n`) : `${comment} ${mark}\n${text}`,
    );
  }
  for (const name of CALIBRATE_RUNTIME)
    files.set(`lasp/${name}`, readFileSync(join(dir, "runtime", name), "utf8"));
  return files;
}
