// The `lasp` command line. Every command returns an exit code: 0 ok, 1 spec errors, 2 usage errors.
import { Command, CommanderError } from "commander";
import { checkCommand } from "./check-command.js";
import { compileCommand, type CompileOptions } from "./compile-command.js";
import { fmtCommand, type FmtOptions } from "./fmt-command.js";
import { inspectCommand, type InspectOptions } from "./inspect-command.js";
import { LASP2_FLAG, LASP2_HELP } from "./lasp2-option.js";
import { EXIT, processIo, type CliIo } from "./io.js";
import { version } from "./package-info.js";
import { RUN_HELP, runCommand, type RunCliOptions } from "./run-command.js";
import { verifyCommand, type VerifyCliOptions } from "./verify-command.js";

const EXAMPLES = `
Examples:
  $ lasp check examples/linear-llama3-1b.lasp      check a spec, print ok or the errors
  $ lasp check examples/*.lasp                     check several specs at once
  $ lasp fmt --check examples/*.lasp               list the specs that are not formatted
  $ lasp compile examples/tiny-linear.lasp -o out   write the CUDA/NCCL program to out/
  $ lasp inspect examples/tiny-hybrid.lasp         the schedule of rank 0 and the communication table
  $ lasp inspect examples/tiny-hybrid.lasp --json  the whole lowered program as JSON
  $ lasp inspect examples/tiny-hybrid.lasp --svg timeline.svg   a timeline picture of the first layers
  $ lasp verify examples/linear-llama3-1b-hybrid.lasp   prove the schedules exact on the CPU (float64)
  $ lasp run examples/tiny-linear.lasp --mode verify    build the CUDA program and run it on this machine's GPUs

Exit codes: 0 ok; 1 the spec has errors (or cannot be generated yet, or its verification failed);
2 usage errors (bad options, unreadable files); 3 a missing GPU, tool or library; 4 a build failure.
Set NO_COLOR to turn colours off.`;

export function buildProgram(io: CliIo, setExit: (code: number) => void): Command {
  const program = new Command("lasp")
    .description(
      "Compiler for long-context training: checks .lasp specs and lowers them to LASP-2 schedules.",
    )
    .version(version(), "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .showHelpAfterError("(run `lasp --help` for usage)")
    .addHelpText("after", EXAMPLES)
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride();

  program
    .command("check")
    .description("check specs and print `ok` per file or the diagnostics")
    .argument("<files...>", ".lasp spec files")
    .action(async (files: string[]) => setExit(await checkCommand(files, io)));

  program
    .command("fmt")
    .description("format specs in place (layout: src/format/STYLE_GUIDE.md), keeping every comment")
    .argument("<files...>", ".lasp spec files")
    .option("--check", "change nothing; list the files that are not formatted and exit 1 if there are any")
    .action(async (files: string[], options: FmtOptions) => setExit(await fmtCommand(files, options, io)));

  program
    .command("compile")
    .description(
      "write the generated CUDA/NCCL program of a spec (sources, CMakeLists.txt, build.sh, README)",
    )
    .argument("<spec>", ".lasp spec file")
    .option("-o, --out <dir>", "output directory (default: lasp_<model name>)")
    .option(LASP2_FLAG, LASP2_HELP)
    .action(async (spec: string, options: CompileOptions) =>
      setExit(await compileCommand(spec, options, io)),
    );

  program
    .command("inspect")
    .description("show the lowered schedule of one rank and the communication per layer and rank")
    .argument("<spec>", ".lasp spec file")
    .option("--rank <n>", "the rank whose steps are listed", "0")
    .option("--json", "print the whole lowered program as JSON (field reference: src/schedule/README.md)")
    .option("--svg <file>", "write a timeline picture (one lane per stream and rank, predicted times)")
    .option(LASP2_FLAG, LASP2_HELP)
    .action(async (spec: string, options: InspectOptions) =>
      setExit(await inspectCommand(spec, options, io)),
    );

  program
    .command("verify")
    .description("run the lowered schedule in float64 on simulated ranks and compare with the dense oracle")
    .argument("<spec>", ".lasp spec file")
    .option("--seq-len <n>", "global tokens at the reduced size (default: two blocks per piece)")
    .option("--heads <n>", "query heads at the reduced size (default 4, or 2 x sequence for Ulysses)")
    .option("--head-dim <n>", "head dimension at the reduced size", "8")
    .option("--block <n>", "token block of the chunk algorithm at the reduced size", "8")
    .option("--seed <n>", "seed of the random inputs (default: the spec's seed)")
    .option("--tolerance <x>", "largest relative error that passes", "1e-9")
    .option("--json", "print the errors as JSON")
    .option(LASP2_FLAG, LASP2_HELP)
    .action(async (spec: string, options: VerifyCliOptions) =>
      setExit(await verifyCommand(spec, options, io)),
    );

  program
    .command("run")
    .description(
      "build the spec's CUDA/NCCL program and run it on this machine's GPUs, or through mpirun/srun",
    )
    .argument("<spec>", ".lasp spec file")
    .argument("[program-options...]", "after `--`: options handed to every rank unchanged")
    .option("--launcher <name>", "local (one process per GPU here), mpirun or srun", "local")
    .option("--gpus-per-node <n>", "GPUs per node under mpirun (default 8) or srun")
    .option("--launcher-args <args>", 'extra options for mpirun or srun, as one string ("--hostfile HOSTS")')
    .option("--mode <mode>", "bench, verify or train (default: the spec's)")
    .option("--steps <n>", "timed steps (default: the spec's)")
    .option("--arch <arch>", "CUDA architecture to build for", "90a")
    .option("-o, --out <dir>", "write the generated sources here (default: inside the build cache)")
    .option("--json", "also print the program's events as JSON lines on stdout")
    .option("--dry-run", "print the build and launch commands without running anything")
    .option(LASP2_FLAG, LASP2_HELP)
    .addHelpText("after", RUN_HELP)
    .action(async (spec: string, programArgs: string[], options: RunCliOptions) =>
      setExit(await runCommand(spec, { ...options, programArgs }, io)),
    );

  return program;
}

export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  let exit: number = EXIT.ok;
  const program = buildProgram(io, (code) => (exit = code));
  if (argv.length === 0) {
    program.outputHelp();
    return EXIT.usage;
  }
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end through here with exit code 0; everything else is a usage error.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    io.stderr(
      `lasp: internal error: ${(error as Error).message}\nThis is a bug in lasp; please report it with the spec that caused it.\n`,
    );
    return 70;
  }
  return exit;
}
