// Starts the built program (PROTOCOL.md, "Command line" and "Output"). On this node: one process per rank,
// `--rank R --world W --device R --nccl-id-file <tmp>/nccl.id`. Through `mpirun` or `srun`: that one
// command, which starts the ranks itself. Either way each stdout line is parsed as a JSON event, stderr
// lines are handed on as text, and when a rank fails the others are stopped (SIGTERM, SIGKILL after a grace
// period) and its exit code comes back.
import { jsonObjectLine } from "./json-line.js";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { execa, type ResultPromise } from "execa";
import { formatCommand } from "../text/shell-text.js";

export type Launcher = "local" | "mpirun" | "srun";
export const LAUNCHERS: readonly Launcher[] = ["local", "mpirun", "srun"];
/** From SIGTERM to SIGKILL for the other ranks when one fails. */
const DEFAULT_KILL_GRACE_MS = 5000;

// ------------------------------------------------------------------------------------------------- events

export interface StartEvent {
  event: "start";
  rank: number;
  world: number;
  device: string;
  spec: string;
  mode: string;
  steps: number;
  warmup: number;
  /** Tokens of one step over every rank; with the next two, tokens/s and MFU per step (absent from older
   * programs). */
  tokens_per_step?: number;
  /** Training FLOPs per token as MFU counts them. */
  flops_per_token?: number;
  /** The GPU's dense bf16 peak FLOP/s; 0 when the program's table does not know the GPU. */
  peak_flops?: number;
}
export interface StepEvent {
  event: "step";
  rank: number;
  step: number;
  ms: number;
  /** The step's loss: the mean over every target of every rank (absent from older programs). */
  loss?: number;
  /** Every rank's tokens over this step's time, and one GPU's MFU (null: unknown GPU); absent from older programs. */
  tokens_per_s?: number;
  mfu?: number | null;
  warmup: boolean;
  /** Train mode: the run's steps (a resumed run's included), the global gradient norm before clipping, the
   * clipping factor applied (1: none), the learning rate, and the tokens seen so far. */
  steps?: number;
  grad_norm?: number;
  clip?: number;
  lr?: number;
  tokens_seen?: number;
  /** Train mode: rank 0's GPU's mean power over the steps so far (null: no energy counter, or under half a second). */
  watts?: number | null;
}
export interface PhaseEvent {
  event: "phase";
  rank: number;
  name: string;
  ms: number;
}
export interface VerifyEvent {
  event: "verify";
  rank: number;
  layer: string;
  quantity: string;
  max_rel_err: number;
  tolerance: number;
  ok: boolean;
  /** dW, when some gradient was above tolerance: how far the oracle itself moves when q, k, v move by one bf16 rounding. */
  oracle_spread?: number | null;
  /** dW: above tolerance but within 3x the oracle's own spread (the quantity is ill-conditioned), so accepted. */
  ill_conditioned?: boolean;
}
export interface SummaryEvent {
  event: "summary";
  rank: number;
  median_ms: number;
  tokens_per_s: number;
  tflops: number;
  /** Model FLOPs utilisation of one GPU (0..1); null where the GPU's peak is unknown, absent in older programs. */
  mfu?: number | null;
  /** The last step's loss. */
  loss?: number;
  hidden_comm_fraction: number;
  peak_mem_bytes: number;
  /** This rank's GPU over the timed steps (NVML's energy counter); null without one, absent in older programs. */
  joules_per_step?: number | null;
  watts?: number | null;
}
/** bench's timeline: one IR step of one pass, timed on its stream (PROTOCOL.md). */
export interface TraceEvent {
  event: "trace";
  rank: number;
  kind: string;
  pass: string;
  /** `both` streams, or the `compute` stream alone. */
  streams: string;
  step: number;
  start_ms: number;
  end_ms: number;
}
export interface ErrorEvent {
  event: "error";
  rank: number;
  message: string;
}
/** The backend of a softmax kind's whole-sequence attention: `lasp` or `cudnn X.Y.Z` (PROTOCOL.md). */
export interface BackendEvent {
  event: "backend";
  rank: number;
  kind: string;
  attention: string;
}
/**
 * Where the MLP's gate|up product and down-product input gradient run (PROTOCOL.md): `lasp` (lasp's Hopper GEMM
 * with SwiGLU in its epilogues) or `cublas` (cuBLAS, SwiGLU in passes of its own).
 */
export interface MlpEvent {
  event: "mlp";
  rank: number;
  gemm: string;
}
/** Where the LM head's logits run (PROTOCOL.md): `lasp` (lasp's Hopper GEMM) or `cublas`. */
export interface LmHeadEvent {
  event: "lm_head";
  rank: number;
  gemm: string;
}
/**
 * How the collectives beside the kernels move data (PROTOCOL.md): the AllGathers beside computation (`copy engines`,
 * `NCCL kernels`, or `none`) and the weight-gradient sum (`copy engines` or `NCCL kernels`).
 */
export interface CollectivesEvent {
  event: "collectives";
  rank: number;
  gathers: string;
  gradients: string;
}
// Train mode's events (PROTOCOL.md).
export interface OptimizerEvent {
  event: "optimizer";
  rank: number;
  /** `zero1` (each rank its 1/W slice) or `replicated`. */
  update: string;
  parameters: number;
  /** AdamW's state on this rank: fp32 moments, the fp32 master weights' low halves (and a micro-batch sum). */
  state_bytes: number;
  decayed: number;
}
export interface DataEvent {
  event: "data";
  rank: number;
  /** `synthetic` or the token file. */
  source: string;
  format: string;
  tokens: number;
  windows: number;
  windows_per_step: number;
  eval: string | null;
  eval_windows: number;
}
export interface ResumedEvent {
  event: "resumed";
  rank: number;
  from: string;
  /** Steps done. */
  step: number;
  data_position: number;
  tokens_seen: number;
  /** The ranks that wrote the checkpoint, and whether its optimizer state was ZeRO-1's (older programs: absent). */
  world?: number;
  sharded?: boolean;
  /** Its state was re-sharded for this run's ranks or kind of update. */
  resharded?: boolean;
}
export interface EvalEvent {
  event: "eval";
  rank: number;
  step: number;
  loss: number;
  perplexity: number;
  targets: number;
  windows: number;
}
export interface CheckpointEvent {
  event: "checkpoint";
  rank: number;
  step: number;
  /** The committed checkpoint folder. */
  folder: string;
  /** From the copy of the step's tensors to the commit. */
  ms: number;
  /** Written by a thread while training went on (older programs: absent, written in place). */
  background?: boolean;
  /** How long training stood still for it: the wait for the previous write and the copy to the host, or the write too when waited for. */
  paused_ms?: number;
  /** Older checkpoints deleted by keep_checkpoints. */
  removed: string[];
}
export interface SavingEvent {
  event: "saving";
  rank: number;
  /** The step whose checkpoint is being written. */
  step: number;
  /** What it will hold on disk, every rank's files together. */
  bytes: number;
  /** Training goes on while it is written (the `checkpoint` event says when it is on disk). */
  background?: boolean;
}
export interface StoppedEvent {
  event: "stopped";
  rank: number;
  /** The last step done. */
  step: number;
  /** `signal` (a checkpoint was written, unless `checkpoint` is false) or `non-finite` (the last checkpoint is kept). */
  reason: string;
  code: number;
  /** `signal`: false when the run writes none (`--no-checkpoints`). */
  checkpoint?: boolean;
}
export interface TrainedEvent {
  event: "trained";
  rank: number;
  /** Done in this process (a resumed run counts from where it resumed). */
  steps: number;
  step: number;
  tokens: number;
  seconds: number;
  tokens_per_s: number;
  mfu: number | null;
  loss: number;
  eval_loss: number | null;
  /** Device memory in use at the end (the run's peak) and what the program allocated itself. */
  peak_mem_bytes?: number;
  program_mem_bytes?: number;
  /** Rank 0's GPU over the steps' own time (NVML's energy counter), null where the program could not read it. */
  joules?: number | null;
  watts?: number | null;
}
export type ProgramEvent =
  | OptimizerEvent
  | DataEvent
  | ResumedEvent
  | EvalEvent
  | CheckpointEvent
  | SavingEvent
  | StoppedEvent
  | TrainedEvent
  | StartEvent
  | StepEvent
  | PhaseEvent
  | VerifyEvent
  | SummaryEvent
  | TraceEvent
  | ErrorEvent
  | BackendEvent
  | MlpEvent
  | LmHeadEvent
  | CollectivesEvent;

const EVENT_NAMES = new Set([
  "start",
  "step",
  "phase",
  "verify",
  "summary",
  "trace",
  "error",
  "backend",
  "mlp",
  "lm_head",
  "collectives",
  "optimizer",
  "data",
  "resumed",
  "eval",
  "checkpoint",
  "saving",
  "stopped",
  "trained",
]);

/**
 * One stdout line: a known event, `"ignored"` for a JSON object of an event this lasp does not know (a newer
 * program), or undefined for anything else (plain text, handed on as a human line). `rank` falls back to
 * the process's own rank when the line lacks it.
 */
export function parseEventLine(line: string, fallbackRank?: number): ProgramEvent | "ignored" | undefined {
  const record = jsonObjectLine(line);
  if (record === undefined) return undefined;
  if (typeof record["event"] !== "string") return undefined;
  if (typeof record["rank"] !== "number") {
    if (fallbackRank === undefined) return "ignored";
    record["rank"] = fallbackRank;
  }
  return EVENT_NAMES.has(record["event"]) ? (record as unknown as ProgramEvent) : "ignored";
}

// ------------------------------------------------------------------------------------------------ planning

export interface LaunchOptions {
  /** The built `lasp_program`. */
  binary: string;
  /** Number of ranks (the spec's `parallel.gpus`). */
  world: number;
  launcher?: Launcher;
  /** GPUs per node: `mpirun --map-by ppr:G:node` (default 8, at most W); `srun --ntasks-per-node G` if given. */
  gpusPerNode?: number;
  /** Options handed to every rank after the launch options (`--mode verify`, `--steps 5`, ...). */
  programArgs?: readonly string[];
  /** Options for mpirun or srun, placed before the program (`--hostfile hosts`). */
  launcherArgs?: readonly string[];
  /** The environment of the ranks (default process.env); NCCL_NVLS_ENABLE=0 is added unless set. */
  env?: NodeJS.ProcessEnv;
  /** The folder that holds the temporary id folder (default the system temp folder). */
  idParent?: string;
  /** Aborting stops every rank (SIGTERM, then SIGKILL after the grace period); the result says interrupted. */
  signal?: AbortSignal;
  /** Aborting kills every rank at once with SIGKILL (a second Ctrl-C). */
  forceSignal?: AbortSignal;
  /** From SIGTERM to SIGKILL when a rank failed, default 5000 ms. */
  killGraceMs?: number;
  /** From SIGTERM to SIGKILL when aborted (default killGraceMs): a training run's ranks finish their step
   * and write a checkpoint first. */
  interruptGraceMs?: number;
  /** Exit codes of a rank that stopped cleanly (train mode's 5: a signal, a checkpoint written; 6: a non-finite
   * loss, which every rank finds at the same step): not a failure; the other ranks get interruptGraceMs to stop
   * the same way before they are stopped. */
  stopExitCodes?: readonly number[];
  onEvent?: (event: ProgramEvent) => void;
  /** Every JSON event line as received, known to this lasp or not (the run folder's events.jsonl). */
  onEventLine?: (rank: number | undefined, line: string) => void;
  /** Human lines: stderr, and stdout lines that are not JSON. `rank` is undefined under mpirun or srun. */
  onLine?: (rank: number | undefined, line: string, stream: "stdout" | "stderr") => void;
}

export interface LaunchCommand {
  /** The rank this process is (local launcher), undefined for mpirun/srun. */
  rank: number | undefined;
  file: string;
  args: string[];
  /** Variables set on top of the environment. */
  env: Record<string, string>;
}

/** The processes a launch starts, given the id file's path; touches nothing. */
export function planLaunch(options: LaunchOptions, idFile: string): LaunchCommand[] {
  const launcher = options.launcher ?? "local";
  const world = options.world;
  // --json: the ranks print only JSON events (and errors); lasp shows the progress itself.
  const programArgs = ["--json", ...(options.programArgs ?? [])];
  const base = options.env ?? process.env;
  const env: Record<string, string> = base["NCCL_NVLS_ENABLE"] === undefined ? { NCCL_NVLS_ENABLE: "0" } : {};
  const launcherArgs = [...(options.launcherArgs ?? [])];
  if (launcher === "local") {
    return Array.from({ length: world }, (_, rank) => ({
      rank,
      file: options.binary,
      args: [
        "--rank",
        String(rank),
        "--world",
        String(world),
        "--device",
        String(rank),
        "--nccl-id-file",
        idFile,
        ...programArgs,
      ],
      env,
    }));
  }
  const program = [options.binary, "--nccl-id-file", idFile, ...programArgs];
  if (launcher === "mpirun") {
    const perNode = Math.max(1, Math.min(world, options.gpusPerNode ?? 8));
    return [
      {
        rank: undefined,
        file: "mpirun",
        args: ["-np", String(world), "--map-by", `ppr:${perNode}:node`, ...launcherArgs, ...program],
        env,
      },
    ];
  }
  const perNode = options.gpusPerNode === undefined ? [] : ["--ntasks-per-node", String(options.gpusPerNode)];
  // A rank that fails ends the step, as mpirun does by default and `launch` does locally: the others would wait
  // in a collective for it until the job's time limit. Stop codes are safe: every rank exits with one together.
  const kill = ["--kill-on-bad-exit=1"];
  return [
    {
      rank: undefined,
      file: "srun",
      args: [
        "--ntasks",
        String(world),
        "--gpus-per-task",
        "1",
        ...kill,
        ...perNode,
        ...launcherArgs,
        ...program,
      ],
      env,
    },
  ];
}

/**
 * The launch as shell lines (`--dry-run`, run.json) that end as `launch` does: one command as it is; several
 * ranks in the background, then a poll each second. The first rank to fail sets the exit code and stops the
 * others (SIGTERM, SIGKILL after the grace): ranks waiting in a collective for the failed one would otherwise
 * wait forever. A stop code (every rank exits with it by itself) stops no one, and is the exit code when no
 * rank failed. A poll, not `wait -n`: bash's `wait -n` loses the codes of ranks that end together by a signal,
 * and a bare `wait` returns 0 whatever the ranks did. A script's clean-up belongs in a `trap ... EXIT`.
 */
export function formatLaunch(
  commands: readonly LaunchCommand[],
  options: Pick<LaunchOptions, "stopExitCodes" | "killGraceMs"> = {},
): string[] {
  const lines = commands.map((c) => formatCommand(c.file, c.args, c.env));
  if (lines.length === 1) return lines;
  const stops = options.stopExitCodes ?? [];
  const grace = (options.killGraceMs ?? DEFAULT_KILL_GRACE_MS) / 1000;
  return [
    ...lines.map((line, i) => `${line} & PIDS="${i === 0 ? "" : "$PIDS "}$!"`),
    "STATUS=0 FAILED= KILLER= LEFT=$PIDS",
    'while [ -n "$LEFT" ]; do',
    "  sleep 1; RUNNING=",
    "  for PID in $LEFT; do",
    '    if kill -0 "$PID" 2>/dev/null; then RUNNING="$RUNNING $PID"; continue; fi',
    '    wait "$PID"; CODE=$?',
    `    case $CODE in 0) continue ;;${stops.length === 0 ? "" : ` ${stops.join("|")}) [ "$STATUS" = 0 ] && STATUS=$CODE; continue ;;`} esac`,
    '    [ -n "$FAILED" ] && continue',
    `    FAILED=$CODE; kill $PIDS 2>/dev/null; (sleep ${grace}; kill -KILL $PIDS 2>/dev/null) & KILLER=$!`,
    "  done",
    "  LEFT=$RUNNING",
    "done",
    '[ -z "$KILLER" ] || kill "$KILLER" 2>/dev/null',
    'exit "${FAILED:-$STATUS}"',
  ];
}

// ------------------------------------------------------------------------------------------------- running

export interface RankExit {
  rank: number | undefined;
  exitCode: number;
  /** The signal that ended it ("SIGSEGV"), if one did. */
  signal: string | undefined;
}

export interface LaunchResult {
  /** 0 when every rank exited 0; else the failing rank's code (128 + n for signal n), or a stop code
   * (stopExitCodes) when no rank failed; 130 when interrupted. */
  exitCode: number;
  /** The rank that failed first; undefined when none did, or when mpirun/srun failed without saying. */
  failedRank: number | undefined;
  /** The signal that ended the failing process, if any. */
  failedSignal: string | undefined;
  interrupted: boolean;
  /** The failing rank's last stderr lines (under mpirun/srun: the last lines of all ranks). */
  stderrTail: string[];
  /** Every process's exit, in the order they ended. */
  exits: RankExit[];
  events: ProgramEvent[];
}

const TAIL = 20;

function exitCodeOf(result: { exitCode?: number | undefined; signal?: string | undefined }): number {
  if (result.exitCode !== undefined) return result.exitCode;
  const number =
    result.signal === undefined ? undefined : os.constants.signals[result.signal as NodeJS.Signals];
  return number === undefined ? 1 : 128 + number;
}

function lines(stream: Readable | null, onLine: (line: string) => void): Promise<void> {
  if (stream === null) return Promise.resolve();
  return new Promise((resolve) => {
    const reader = createInterface({ input: stream, crlfDelay: Infinity });
    reader.on("line", onLine);
    reader.on("close", resolve);
  });
}

/** Runs the program on all ranks and waits for them; never rejects for a failing rank. */
export async function launch(options: LaunchOptions): Promise<LaunchResult> {
  const grace = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const interruptGrace = options.interruptGraceMs ?? grace;
  const stopCodes = new Set(options.stopExitCodes ?? []);
  const events: ProgramEvent[] = [];
  const exits: RankExit[] = [];
  const tails = new Map<number | undefined, string[]>();
  if (options.signal?.aborted) {
    return {
      exitCode: 130,
      failedRank: undefined,
      failedSignal: undefined,
      interrupted: true,
      stderrTail: [],
      exits,
      events,
    };
  }

  const parent = options.idParent ?? os.tmpdir();
  await mkdir(parent, { recursive: true });
  const idDir = await mkdtemp(path.join(parent, "lasp-nccl-"));
  const commands = planLaunch(options, path.join(idDir, "nccl.id"));
  const baseEnv = options.env ?? process.env;

  let failure: RankExit | undefined;
  let stoppedCleanly: RankExit | undefined;
  let failedByEvent: number | undefined;
  let interrupted = false;
  let stopping = false;
  const timers: NodeJS.Timeout[] = [];
  const running = new Set<ResultPromise>();

  const later = (ms: number, action: () => void): void => {
    const timer = setTimeout(action, ms);
    timer.unref();
    timers.push(timer);
  };
  const stopAll = (ms = grace): void => {
    if (stopping) return;
    stopping = true;
    for (const child of running) child.kill("SIGTERM");
    later(ms, () => {
      for (const child of running) child.kill("SIGKILL");
    });
  };
  const onAbort = (): void => {
    interrupted = true;
    stopAll(interruptGrace);
  };
  const onForce = (): void => {
    interrupted = true;
    stopping = true;
    for (const child of running) child.kill("SIGKILL");
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });
  options.forceSignal?.addEventListener("abort", onForce, { once: true });

  try {
    await Promise.all(
      commands.map(async (command) => {
        const child = execa(command.file, command.args, {
          env: { ...baseEnv, ...command.env },
          extendEnv: false,
          stdin: "ignore",
          buffer: false,
          reject: false,
          forceKillAfterDelay: false,
        });
        running.add(child);
        const tail: string[] = [];
        tails.set(command.rank, tail);
        const onStdout = (line: string): void => {
          const event = parseEventLine(line, command.rank);
          if (event !== undefined) options.onEventLine?.(command.rank, line);
          if (event === "ignored") return;
          if (event === undefined) {
            options.onLine?.(command.rank, line, "stdout");
            return;
          }
          events.push(event);
          if (event.event === "error" && failedByEvent === undefined) failedByEvent = event.rank;
          options.onEvent?.(event);
        };
        const onStderr = (line: string): void => {
          tail.push(line);
          if (tail.length > TAIL) tail.shift();
          options.onLine?.(command.rank, line, "stderr");
        };
        const [result] = await Promise.all([
          child,
          lines(child.stdout, onStdout),
          lines(child.stderr, onStderr),
        ]);
        running.delete(child);
        const exit: RankExit = {
          rank: command.rank,
          exitCode: exitCodeOf(result),
          signal: result.signal ?? undefined,
        };
        if (result.exitCode === undefined && result.signal === undefined && result.failed) {
          // It never started (missing binary or launcher): report like a failing rank.
          tail.push((result.cause as Error | undefined)?.message ?? result.shortMessage ?? "could not start");
          exit.exitCode = 127;
        }
        exits.push(exit);
        if (stopCodes.has(exit.exitCode) && exit.signal === undefined) {
          // The others were signalled too (Slurm signals every task) and are finishing the same step; they
          // are stopped only if they have not followed within the grace period.
          if (stoppedCleanly === undefined && !interrupted && !stopping) {
            stoppedCleanly = exit;
            later(interruptGrace, () => stopAll());
          }
        } else if (exit.exitCode !== 0 && failure === undefined && !interrupted && !stopping) {
          failure = exit;
          stopAll();
        }
      }),
    );
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    options.forceSignal?.removeEventListener("abort", onForce);
    for (const timer of timers) clearTimeout(timer);
    await rm(idDir, { recursive: true, force: true });
  }

  const failedRank = failure?.rank ?? (failure !== undefined ? failedByEvent : undefined);
  return {
    exitCode: interrupted ? 130 : (failure?.exitCode ?? stoppedCleanly?.exitCode ?? 0),
    failedRank: interrupted ? undefined : failedRank,
    failedSignal: interrupted ? undefined : failure?.signal,
    interrupted,
    stderrTail: failure === undefined ? [] : [...(tails.get(failure.rank) ?? [])],
    exits,
    events,
  };
}

/** Used by `lasp run`: where the id file goes for each launcher. */
export function defaultIdParent(launcher: Launcher, cacheRoot: string): string {
  // Ranks on other nodes read the id file only when it is on a shared file system; the cache folder under
  // the working directory usually is, the system temp folder usually is not.
  return launcher === "local" ? os.tmpdir() : path.join(cacheRoot, "run");
}
