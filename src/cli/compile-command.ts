// `lasp compile <spec> [-o DIR]`: writes the generated CUDA/NCCL program (sources, CMakeLists.txt,
// build.sh, README.md) for the spec.
import { CodegenLimitation, generateProgram, writeProgram } from "../codegen/generate.js";
import { describeIoError, loadSpec, reportDiagnostics } from "./check-command.js";
import { EXIT, type CliIo } from "./io.js";
import { lasp2Option } from "./lasp2-option.js";

export interface CompileOptions {
  out?: string;
  lasp2?: string;
}

export async function compileCommand(file: string, options: CompileOptions, io: CliIo): Promise<number> {
  const result = await loadSpec(file, io);
  if (result === undefined) return EXIT.usage;
  if (!reportDiagnostics(result, io) || result.spec === undefined) return EXIT.specErrors;
  const lasp2 = lasp2Option(options.lasp2, io);
  if (lasp2 === null) return EXIT.usage;
  let files: Map<string, string>;
  try {
    files = generateProgram(result.spec, undefined, { lasp2 });
  } catch (error) {
    if (error instanceof CodegenLimitation) {
      io.stderr(`lasp: cannot compile ${file}: ${error.message}\n`);
      return EXIT.specErrors;
    }
    throw error;
  }
  const dir = options.out ?? `lasp_${result.spec.model.name}`;
  try {
    await writeProgram(dir, files);
  } catch (error) {
    io.stderr(`lasp: cannot write ${dir}: ${describeIoError(error)}\n`);
    return EXIT.usage;
  }
  io.stdout(
    `wrote ${files.size} files to ${dir}/ (build: cmake -S ${dir} -B ${dir}/build && cmake --build ${dir}/build, or ${dir}/build.sh)\n`,
  );
  return EXIT.ok;
}
