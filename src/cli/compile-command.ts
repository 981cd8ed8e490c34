// `lasp compile <spec> [-o DIR]`: writes the generated CUDA/NCCL program (sources, CMakeLists.txt,
// build.sh, README.md) for the spec. The output folder is lasp's only where it wrote it: src/io/owned-folder.ts
// says what is replaced and what is left; each folder lasp may not use is refused with exit 2.
import { CodegenLimitation, generateProgram, writeProgram } from "../codegen/generate.js";
import { MANIFEST, OutputFolderError, type OwnedFolderResult } from "../io/owned-folder.js";
import { loadSpec, reportDiagnostics, withGeneratorNotes } from "./check-command.js";
import { EXIT, type CliIo } from "./io.js";
import { lasp2Option } from "./lasp2-option.js";
import { H100 } from "../cost/memory.js";
import { gpuMemoryOption } from "./gpu-memory-option.js";
import type { ResolvedSpec } from "../spec/resolved.js";

export interface CompileOptions {
  out?: string;
  lasp2?: string;
  force?: boolean;
  /** The GPU memory `recompute auto` fits (default an 80 GB H100's). */
  gpuMemory?: string;
}

export async function compileCommand(file: string, options: CompileOptions, io: CliIo): Promise<number> {
  const loaded = await loadSpec(file, io);
  if (loaded === undefined) return EXIT.usage;
  const result = withGeneratorNotes(loaded, { refuse: true });
  if (!reportDiagnostics(result, io) || result.spec === undefined) return EXIT.specErrors;
  const lasp2 = lasp2Option(options.lasp2, io);
  if (lasp2 === null) return EXIT.usage;
  let spec = result.spec;
  if (options.gpuMemory !== undefined || spec.run.recomputeAuto !== undefined) {
    const fitted = await fitRecomputeAuto(spec, options.gpuMemory, io);
    if (fitted === undefined) return EXIT.usage;
    spec = fitted;
  }
  let files: Map<string, string>;
  try {
    files = generateProgram(spec, undefined, { lasp2 });
  } catch (error) {
    if (error instanceof CodegenLimitation) {
      io.stderr(`lasp: cannot compile ${file}: ${error.message}\n`);
      return EXIT.specErrors;
    }
    throw error;
  }
  const dir = options.out ?? `lasp_${spec.model.name}`;
  let written: OwnedFolderResult;
  try {
    written = await writeProgram(dir, files, { force: options.force ?? false });
  } catch (error) {
    if (!(error instanceof OutputFolderError)) throw error;
    io.stderr(`lasp: ${refusal(error, dir)}\n`);
    return EXIT.usage;
  }
  io.stdout(
    `wrote ${files.size} files to ${dir}/ (build: cmake -S ${dir} -B ${dir}/build && cmake --build ${dir}/build, or ${dir}/build.sh)\n`,
  );
  if (written.removed.length > 0)
    io.stdout(`removed what the program no longer has: ${written.removed.join(", ")}\n`);
  if (written.replacedUnowned.length > 0)
    io.stdout(`replaced (--force) files lasp had not written: ${written.replacedUnowned.join(", ")}\n`);
  return EXIT.ok;
}

/**
 * `recompute auto` fitted to the GPU the program is for: `--gpu-memory`'s, else an 80 GB H100's (the program
 * keeps what the choice keeps; `lasp run` fits its own build to the GPUs it finds). Says the choice.
 */
async function fitRecomputeAuto(
  spec: ResolvedSpec,
  gpuMemory: string | undefined,
  io: CliIo,
): Promise<ResolvedSpec | undefined> {
  const given = gpuMemoryOption(gpuMemory, io);
  if (given === null) return undefined;
  const memory = given ?? H100.memory;
  if (spec.run.recomputeAuto === undefined) {
    io.stderr(
      `lasp: note: --gpu-memory changes nothing: the spec sets \`recompute ${spec.run.recompute}\`\n`,
    );
    return spec;
  }
  const { refitRecomputeAuto } = await import("../plan/recompute-auto.js");
  const fitted = refitRecomputeAuto(spec, memory);
  if (fitted.line !== undefined)
    io.stdout(`${fitted.line}${gpuMemory === undefined ? "; --gpu-memory SIZE fits another GPU" : ""}\n`);
  return fitted.spec;
}

/** Why the program cannot go to `dir`, and what would work. */
function refusal(error: OutputFolderError, dir: string): string {
  const force = "(lasp then writes its files there, replacing files of the same names, and deletes nothing)";
  switch (error.problem) {
    case "empty-path":
      return "-o names no folder (the path is empty); name the folder for the program, e.g. -o out";
    case "not-a-folder":
      // The folder itself, or a file inside it where the program has a folder (DIR/lasp).
      return error.path === dir
        ? `cannot write the program to ${dir}: ${error.message}; name a new folder with -o (lasp never replaces a file with a folder)`
        : `cannot write the program to ${dir}: ${error.path} is a file where the program needs a folder; move it away or name another folder with -o`;
    case "not-owned":
      return `will not write into ${dir}: it is not empty and has no ${MANIFEST}, so lasp did not write it; name a new or empty folder with -o, or add --force ${force}`;
    case "unowned-files":
      return `will not write into ${dir}: it holds files lasp did not write under names the program uses (${error.files.join(", ")}); move them away, or add --force to replace them`;
    case "bad-manifest":
      return `will not write into ${dir}: ${error.message}; add --force ${force}`;
    case "not-writable":
      return `cannot write the program to ${dir}: ${error.message}; name a folder you can write to with -o`;
    case "io":
      return `cannot write the program to ${dir}: ${error.message}`;
  }
}
