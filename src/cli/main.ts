// The `lasp` command line. Every command returns an exit code (EXIT in io.ts, RUN_EXIT in run-command.ts).
// A command's module is imported only when that command runs: the parser (chevrotain), the code generator
// (handlebars) and the toolchain (execa) were most of every start, and `--help` or `--version` need none of
// them (test/cli-startup.test.ts keeps it so). Only types come from the command modules here.
import { Command, CommanderError } from "commander";
import type { CompileOptions } from "./compile-command.js";
import { COMPILE_HELP } from "./compile-help.js";
import type { FmtOptions } from "./fmt-command.js";
import type { InspectOptions } from "./inspect-command.js";
import type { PlanOptions } from "./plan-command.js";
import { LASP2_FLAG, LASP2_HELP } from "./lasp2-option.js";
import { outputWidth } from "../text/units.js";
import { EXIT, processIo, type CliIo } from "./io.js";
import { version } from "../io/package-info.js";
import type { RunCliOptions } from "./run-command.js";
import { RUN_HELP } from "./run-help.js";
import type { InitOptions } from "./init-command.js";
import type { TokensOptions } from "./tokens-command.js";
import type { CalibrateOptions } from "./calibrate-command.js";
import type { VerifyCliOptions } from "./verify-command.js";

const EXAMPLES = `
Examples:
  $ lasp check examples/linear-llama3-1b.lasp
      check a spec, print ok or the errors
  $ lasp check examples/*.lasp
      check several specs at once
  $ lasp fmt --check examples/*.lasp
      list the specs that are not formatted
  $ lasp compile examples/tiny-linear.lasp -o out
      write the CUDA/NCCL program to out/
  $ lasp inspect examples/tiny-hybrid.lasp
      the schedule of rank 0, the communication table, predicted times
  $ lasp inspect examples/tiny-hybrid.lasp --json
      the same tables and the whole lowered program, as JSON
  $ lasp inspect examples/tiny-hybrid.lasp --svg timeline.svg
      a timeline picture of the first layers
  $ lasp plan examples/linear-llama3-1b.lasp --gpus 8 16 32 --svg plan.svg
      rank every schedule choice by predicted tokens/s per GPU, and plot it
  $ lasp verify examples/linear-llama3-1b-hybrid.lasp --seq-len 2K
      prove the schedules exact on the CPU (float64), at 2048 tokens
  $ lasp run examples/tiny-linear.lasp --mode verify
      build the CUDA program and run it on this machine's GPUs
  $ lasp calibrate --spec examples/linear-llama3-1b.lasp
      measure this machine's GPUs and write its profile (for plan --machine)
  $ lasp tokens README.md grammar/README.md -o docs.bin
      a byte-level token file (llm.c's format) to train on

Exit codes: 0 ok; 1 the spec has errors (or cannot be generated yet, or its
verification failed); 2 usage errors (bad options, unreadable files, no valid
plan choice); 3 a missing GPU, tool or library; 4 a build failure; run's
own codes: lasp run --help.
Set NO_COLOR to turn colours off.`;

/** `argv`: the command line being parsed, which `lasp run` records in its run folder. */
export function buildProgram(
  io: CliIo,
  setExit: (code: number) => void,
  argv: readonly string[] = [],
): Command {
  const program = new Command("lasp")
    .description(
      "Compiler for long-context training: checks .lasp specs, lowers them to LASP-2 / LASP-2H schedules, and writes, builds and runs their CUDA/NCCL programs.",
    )
    .version(version(), "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .showHelpAfterError("(run `lasp --help` for usage)")
    .addHelpText("after", EXAMPLES)
    // Descriptions wrap to the terminal (100 columns at most), however long the command column.
    .configureHelp({ helpWidth: outputWidth(), minWidthToWrap: 20 })
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride();

  program
    .command("check")
    .description("check specs and print `ok` per file or the diagnostics")
    .argument("<files...>", ".lasp spec files")
    .action(async (files: string[]) => {
      const { checkCommand } = await import("./check-command.js");
      setExit(await checkCommand(files, io));
    });

  program
    .command("fmt")
    .description("format specs in place (layout: src/format/STYLE_GUIDE.md), keeping every comment")
    .argument("<files...>", ".lasp spec files")
    .option("--check", "change nothing; list the files that are not formatted and exit 1 if there are any")
    .action(async (files: string[], options: FmtOptions) => {
      const { fmtCommand } = await import("./fmt-command.js");
      setExit(await fmtCommand(files, options, io));
    });

  program
    .command("compile")
    .description(
      "write the generated CUDA/NCCL program of a spec (sources, CMakeLists.txt, build.sh, README)",
    )
    .argument("<spec>", ".lasp spec file")
    .option("-o, --out <dir>", "output directory (default: lasp_<model name>); see below")
    .option("--force", "write into a non-empty folder lasp did not write (deletes nothing of it)")
    .option(LASP2_FLAG, LASP2_HELP)
    .option(
      "--gpu-memory <size>",
      "the GPU memory `recompute auto` fits, such as 141GB (default: an 80 GB H100's; `lasp run` fits the GPUs it finds)",
    )
    .addHelpText("after", COMPILE_HELP)
    .action(async (spec: string, options: CompileOptions) => {
      const { compileCommand } = await import("./compile-command.js");
      setExit(await compileCommand(spec, options, io));
    });

  program
    .command("inspect")
    .description(
      "show the lowered schedule of one rank, the communication per layer, predicted times, the model and the memory per GPU",
    )
    .argument("<spec>", ".lasp spec file")
    .option("--rank <n>", "the rank whose steps are listed", "0")
    .option(
      "--json",
      "print the lowered program and the report as JSON (fields: src/schedule/README.md, src/inspect/README.md)",
    )
    .option("--svg <file>", "write a timeline picture (one lane per stream and rank, predicted times)")
    .option("--force", "replace a file at --svg that is not a picture lasp wrote (never the spec)")
    .option(
      "--machine <name|file>",
      "machine profile of the predictions and the memory section: h100-sxm-80gb (default), h200-141gb, a100-sxm-80gb, a100-sxm-40gb, or a profile's JSON file",
    )
    .option(
      "--gpu-memory <size>",
      "GPU memory the memory section compares with, in place of the profile's (e.g. 141GB, 96GiB)",
    )
    .option(LASP2_FLAG, LASP2_HELP)
    .action(async (spec: string, options: InspectOptions) => {
      const { inspectCommand } = await import("./inspect-command.js");
      setExit(await inspectCommand(spec, options, io));
    });

  program
    .command("plan")
    .description(
      "rank every valid schedule choice (strategies, layout, sequence x data) by predicted step time and tokens/s per GPU, with memory per GPU",
    )
    .argument("<spec>", ".lasp spec file")
    .option("--gpus <n...>", "GPU counts to plan for, 1 to 4096 (default: the spec's)")
    .option("--seq-len <n...>", "global sequence lengths, 64 to 2G, e.g. 64K 256K (default: the spec's)")
    .option(
      "--machine <name|file>",
      "machine profile: h100-sxm-80gb (default), h200-141gb, a100-sxm-80gb, a100-sxm-40gb, or a profile's JSON file",
    )
    .option("--json", "print the ranked rows and the skipped choices as JSON")
    .option("--svg <file>", "write tokens/s per GPU against the GPUs (or seq_len), one line per choice")
    .option("--force", "replace a file at --svg that is not a picture lasp wrote (never the spec)")
    .action(async (spec: string, options: PlanOptions) => {
      const { planCommand } = await import("./plan-command.js");
      setExit(await planCommand(spec, options, io));
    });

  program
    .command("verify")
    .description("run the lowered schedule in float64 on simulated ranks and compare with the dense oracle")
    .argument("<spec>", ".lasp spec file")
    .option("--seq-len <n>", "global tokens at the reduced size (default: two blocks per piece)")
    .option(
      "--heads <n>",
      "query heads at the reduced size, at most 256 (default 4, or 2 x sequence for Ulysses)",
    )
    .option("--head-dim <n>", "head dimension at the reduced size, at most 256", "8")
    .option("--block <n>", "token block of the chunk algorithm at the reduced size, at most 64", "8")
    .option("--seed <n>", "seed of the random inputs (default: the spec's seed)")
    .option("--tolerance <x>", "largest relative error that passes", "1e-9")
    .option("--json", "print the errors as JSON")
    .option(LASP2_FLAG, LASP2_HELP)
    .action(async (spec: string, options: VerifyCliOptions) => {
      const { verifyCommand } = await import("./verify-command.js");
      setExit(await verifyCommand(spec, options, io));
    });

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
    .option("--run-dir <dir>", "the run folder (default runs/<spec name>-<UTC time>/; never reused)")
    .option(
      "--resume [dir]",
      "train mode: continue from a checkpoint folder, a run folder's newest checkpoint, or (no DIR) the spec's newest run's",
    )
    .option(
      "--no-checkpoints",
      "train mode: write no checkpoint, periodic, final or on a signal (a benchmark or a smoke test; nothing to resume)",
    )
    .option(
      "--load-weights <path>",
      "start from these weights: a safetensors file, a Hugging Face model.safetensors.index.json, or the folder holding either (every tensor checked against the spec first)",
    )
    .option(LASP2_FLAG, LASP2_HELP)
    .addHelpText("after", RUN_HELP)
    .action(async (spec: string, programArgs: string[], options: RunCliOptions) => {
      const { runCommand } = await import("./run-command.js");
      setExit(await runCommand(spec, { ...options, programArgs, argv }, io));
    });

  program
    .command("init")
    .description(
      "write a new spec whose model is a Hugging Face config's (Llama family), to edit and run; its weights load with --load-weights",
    )
    .argument("<spec>", "the .lasp file to write (never over one that exists)")
    .requiredOption("--from-hf <config>", "a Hugging Face config.json, or the folder holding it")
    .option(
      "--layers <choice>",
      "softmax (the config's layers, default), linear (every layer linear attention) or hybrid:K (one softmax layer in K)",
    )
    .option("--gpus <n>", "GPUs of the parallel block (default 1)")
    .option("--seq-len <n>", "tokens per sequence, as a spec writes them (default 8K)")
    .action(async (spec: string, options: InitOptions) => {
      const { initCommand } = await import("./init-command.js");
      setExit(await initCommand(spec, options, io));
    });

  program
    .command("tokens")
    .description(
      "write llm.c's token file of the files' bytes: a byte-level tokenizer (vocab 256), files joined in order",
    )
    .argument("<files...>", "files to tokenize, read as bytes")
    .requiredOption("-o, --out <file>", "the token file to write (llm.c's GPT-2 format, version 1)")
    .option("--force", "replace a file at --out that is not a token file lasp wrote")
    .option("--eval-out <file>", "hold the last tokens out, in this token file (for eval_data)")
    .option(
      "--eval-share <fraction>",
      "the share held out with --eval-out, above 0 and below 1 (default 0.1)",
    )
    .action(async (files: string[], options: TokensOptions) => {
      const { tokensCommand } = await import("./tokens-command.js");
      setExit(await tokensCommand(files, options, io));
    });

  program
    .command("calibrate")
    .description(
      "measure this machine's GPUs (GEMMs, attention kernels, HBM, NCCL collectives) and write a machine profile for plan and inspect",
    )
    .option("--out <file>", "the profile to write (default: <gpu name>.calibrated.json here)")
    .option(
      "--spec <spec>",
      "measure the GEMM and attention shapes of this spec (default: the Linear-Llama3-1B hybrid, 16K tokens per GPU)",
    )
    .option(
      "--base <name|file>",
      "the profile whose unmeasured fields are kept (default: the shipped profile of the GPU found)",
    )
    .option("--runs <n>", "timed runs per benchmark; the median is kept (default 20)")
    .option("--warmup <n>", "untimed runs before them (default 3)")
    .option("--arch <arch>", "CUDA architecture to build for (default: 80 on A100s, else 90a)")
    .option("--force", "replace a file at --out that lasp calibrate did not write")
    .option("--dry-run", "print the benchmarks, the build and the launch commands without running anything")
    .action(async (options: CalibrateOptions) => {
      const { calibrateCommand } = await import("./calibrate-command.js");
      setExit(await calibrateCommand(options, io));
    });

  // A command's usage error points to that command's help, not the list of commands.
  for (const command of program.commands)
    command.showHelpAfterError(`(run \`lasp help ${command.name()}\` for usage)`);
  return program;
}

export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  let exit: number = EXIT.ok;
  const program = buildProgram(io, (code) => (exit = code), argv);
  if (argv.length === 0) {
    program.outputHelp();
    return EXIT.usage;
  }
  // commander answers `help NAME` for an unknown NAME with the whole help; say what is unknown instead.
  const asked = argv[0] === "help" ? argv[1] : undefined;
  if (asked !== undefined && !asked.startsWith("-") && !program.commands.some((c) => c.name() === asked)) {
    io.stderr(`error: unknown command '${asked}'\n(run \`lasp --help\` for usage)\n`);
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
