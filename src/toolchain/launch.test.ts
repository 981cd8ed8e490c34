import { execa } from "execa";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildGeneratedProgram } from "./build.js";
import {
  formatLaunch,
  launch,
  parseEventLine,
  planLaunch,
  type LaunchOptions,
  type ProgramEvent,
  type StartEvent,
} from "./launch.js";
import { fixtureFiles } from "./test-program.js";

let root: string;
let binary: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "lasp-launch-test-"));
  // build.sh (g++ alone) is the quicker build; build.test.ts covers cmake.
  binary = (await buildGeneratedProgram(fixtureFiles(), { cacheRoot: root })).binary;
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function options(extra: Partial<LaunchOptions> & { env?: NodeJS.ProcessEnv }): LaunchOptions {
  return {
    binary,
    world: 2,
    idParent: path.join(root, "ids"),
    ...extra,
    env: { ...process.env, ...extra.env },
  };
}

describe("launching ranks on this node", () => {
  it("starts one process per rank, parses their JSON events and hands on their stderr", async () => {
    const lines: [number | undefined, string][] = [];
    const seen: ProgramEvent[] = [];
    const env = { ...process.env };
    delete env["NCCL_NVLS_ENABLE"];
    const result = await launch({
      ...options({}),
      env,
      programArgs: ["--steps", "4"],
      onEvent: (e) => seen.push(e),
      onLine: (rank, line) => lines.push([rank, line]),
    });
    expect(result.exitCode).toBe(0);
    expect(result.interrupted).toBe(false);
    expect(result.exits.map((e) => e.exitCode)).toEqual([0, 0]);
    expect(seen).toEqual(result.events);
    const starts = result.events.filter((e): e is StartEvent => e.event === "start");
    expect(starts.map((s) => s.rank).sort()).toEqual([0, 1]);
    expect(starts.every((s) => s.world === 2 && s.steps === 4)).toBe(true);
    expect(starts.find((s) => s.rank === 1)?.device).toBe("Fake GPU 1");
    // NCCL_NVLS_ENABLE=0 unless the environment sets it.
    expect(starts.every((s) => (s as unknown as { nvls: string }).nvls === "0")).toBe(true);
    expect(result.events.filter((e) => e.event === "step")).toHaveLength(2 * 5);
    expect(result.events.filter((e) => e.event === "summary")).toHaveLength(2);
    expect(lines).toContainEqual([0, "fixture: rank 0 done"]);
    // The temporary id folder is gone.
    expect(await readdir(path.join(root, "ids"))).toEqual([]);
  });

  it("keeps NCCL_NVLS_ENABLE when the environment sets it", async () => {
    const result = await launch(options({ world: 1, env: { NCCL_NVLS_ENABLE: "1" } }));
    const start = result.events.find((e) => e.event === "start") as unknown as { nvls: string };
    expect(start.nvls).toBe("1");
  });

  it("stops the other ranks when one crashes and passes its exit code and last stderr lines on", async () => {
    const started = Date.now();
    const result = await launch(options({ env: { FIXTURE_CRASH_RANK: "1", FIXTURE_SLEEP_RANK: "0" } }));
    expect(result.exitCode).toBe(7);
    expect(result.failedRank).toBe(1);
    expect(result.failedSignal).toBeUndefined();
    expect(result.stderrTail).toEqual(["rank 1: something broke", "rank 1: boom"]);
    // Rank 0 was asleep for 60 s: it was stopped with SIGTERM.
    expect(result.exits).toContainEqual({ rank: 0, exitCode: 143, signal: "SIGTERM" });
    expect(Date.now() - started).toBeLessThan(4000);
    expect(await readdir(path.join(root, "ids"))).toEqual([]);
  });

  it("kills a rank that ignores SIGTERM after the grace period", async () => {
    const result = await launch(
      options({
        killGraceMs: 300,
        env: { FIXTURE_CRASH_RANK: "1", FIXTURE_SLEEP_RANK: "0", FIXTURE_IGNORE_TERM: "1" },
      }),
    );
    expect(result.exitCode).toBe(7);
    expect(result.exits).toContainEqual({ rank: 0, exitCode: 137, signal: "SIGKILL" });
  });

  it("stops every rank when aborted (Ctrl-C) and reports exit 130", async () => {
    const controller = new AbortController();
    const result = await launch({
      ...options({ env: { FIXTURE_STEP_MS: "100" } }),
      programArgs: ["--steps", "100"],
      signal: controller.signal,
      onEvent: (e) => {
        if (e.event === "step" && e.rank === 0) controller.abort();
      },
    });
    expect(result.interrupted).toBe(true);
    expect(result.exitCode).toBe(130);
    expect(result.failedRank).toBeUndefined();
    expect(result.exits.every((e) => e.signal === "SIGTERM")).toBe(true);
    expect(await readdir(path.join(root, "ids"))).toEqual([]);
  });

  it("gives a training run's ranks the interrupt grace to write their checkpoint, not the failure grace", async () => {
    // Rank 0 writes the checkpoint for 400 ms after the abort; the failure grace (50 ms) would cut it short.
    const train = async (interruptGraceMs: number | undefined) => {
      const runDir = await mkdtemp(path.join(root, "train-"));
      const controller = new AbortController();
      // Both ranks must be in their steps (their handlers installed) before the abort: a rank still starting
      // on a loaded machine would die of the SIGTERM with nothing to write.
      const stepping = new Set<number>();
      const result = await launch({
        ...options({ killGraceMs: 50, env: { FIXTURE_STEP_MS: "20", FIXTURE_CHECKPOINT_MS: "400" } }),
        ...(interruptGraceMs !== undefined ? { interruptGraceMs } : {}),
        programArgs: ["--mode", "train", "--steps", "100", "--run-dir", runDir],
        signal: controller.signal,
        onEvent: (e) => {
          if (e.event === "step") stepping.add(e.rank);
          if (stepping.size === 2 && !controller.signal.aborted) controller.abort();
        },
      });
      return { result, checkpoints: await readdir(path.join(runDir, "checkpoints")).catch(() => []) };
    };
    const patient = await train(10_000);
    expect(patient.result.interrupted).toBe(true);
    expect(patient.result.exitCode).toBe(130);
    expect(patient.result.exits.map((e) => e.exitCode)).toEqual([5, 5]);
    expect(patient.checkpoints.some((name) => /^step-\d{6}$/.test(name))).toBe(true);
    const hasty = await train(undefined);
    expect(hasty.result.exits).toContainEqual({ rank: 0, exitCode: 137, signal: "SIGKILL" });
    expect(hasty.checkpoints.some((name) => /^step-\d{6}$/.test(name))).toBe(false);
  });

  it("takes a stop code (exit 5, a checkpoint written) as no failure: the other ranks may finish theirs", async () => {
    // Every rank stops after step 2 (as when Slurm signals every task); rank 1 has nothing to write and exits
    // first, rank 0 writes for 400 ms.
    const stop = (stopExitCodes: number[] | undefined) =>
      mkdtemp(path.join(root, "stop-")).then((runDir) =>
        launch({
          ...options({ killGraceMs: 50, env: { FIXTURE_STOP_STEP: "1", FIXTURE_CHECKPOINT_MS: "400" } }),
          ...(stopExitCodes !== undefined ? { stopExitCodes, interruptGraceMs: 10_000 } : {}),
          programArgs: ["--mode", "train", "--steps", "10", "--run-dir", runDir],
        }),
      );
    const clean = await stop([5]);
    expect(clean.exitCode).toBe(5);
    expect(clean.failedRank).toBeUndefined();
    expect(clean.interrupted).toBe(false);
    expect(clean.exits.map((e) => e.exitCode)).toEqual([5, 5]);
    // Without stop codes, rank 1's exit 5 is a failure and rank 0 is stopped mid-checkpoint.
    const failed = await stop(undefined);
    expect(failed.failedRank).toBe(1);
    expect(failed.exits).toContainEqual({ rank: 0, exitCode: 137, signal: "SIGKILL" });
  });

  it("reports a program that cannot be started as exit 127", async () => {
    const result = await launch(options({ binary: path.join(root, "missing"), world: 1 }));
    expect(result.exitCode).toBe(127);
    expect(result.failedRank).toBe(0);
    expect(result.stderrTail.join("\n")).toMatch(/ENOENT/);
  });

  it("runs the single launcher command and takes ranks from the JSON lines", async () => {
    // A stand-in for mpirun: a shell that runs both ranks itself (this machine has no MPI).
    const bin = path.join(root, "fake-bin");
    const { mkdir, writeFile, chmod } = await import("node:fs/promises");
    await mkdir(bin, { recursive: true });
    const script = path.join(bin, "mpirun");
    await writeFile(
      script,
      `#!/bin/sh
# -np W --map-by ppr:G:node PROGRAM ARGS...
shift 4
OMPI_COMM_WORLD_RANK=0 OMPI_COMM_WORLD_SIZE=2 "$@" & OMPI_COMM_WORLD_RANK=1 OMPI_COMM_WORLD_SIZE=2 "$@"; wait
`,
    );
    await chmod(script, 0o755);
    const result = await launch(
      options({ launcher: "mpirun", env: { PATH: `${bin}:${process.env["PATH"] ?? ""}` } }),
    );
    expect(result.exitCode).toBe(0);
    expect(result.exits).toEqual([{ rank: undefined, exitCode: 0, signal: undefined }]);
    const summaries = result.events.filter((e) => e.event === "summary").map((e) => e.rank);
    expect(summaries.sort()).toEqual([0, 1]);
  });
});

describe("launch command lines", () => {
  const base = { binary: "/c/lasp_program", world: 4, env: {} };

  it("gives each local rank its rank, world, device and the id file", () => {
    const commands = planLaunch({ ...base, programArgs: ["--mode", "verify"] }, "/tmp/x/nccl.id");
    expect(commands).toHaveLength(4);
    expect(commands[2]).toEqual({
      rank: 2,
      file: "/c/lasp_program",
      args: [
        "--rank",
        "2",
        "--world",
        "4",
        "--device",
        "2",
        "--nccl-id-file",
        "/tmp/x/nccl.id",
        "--json",
        "--mode",
        "verify",
      ],
      env: { NCCL_NVLS_ENABLE: "0" },
    });
    expect(formatLaunch(commands).slice(4)).toEqual([
      "STATUS=0 FAILED= KILLER= LEFT=$PIDS",
      'while [ -n "$LEFT" ]; do',
      "  sleep 1; RUNNING=",
      "  for PID in $LEFT; do",
      '    if kill -0 "$PID" 2>/dev/null; then RUNNING="$RUNNING $PID"; continue; fi',
      '    wait "$PID"; CODE=$?',
      "    case $CODE in 0) continue ;; esac",
      '    [ -n "$FAILED" ] && continue',
      "    FAILED=$CODE; kill $PIDS 2>/dev/null; (sleep 5; kill -KILL $PIDS 2>/dev/null) & KILLER=$!",
      "  done",
      "  LEFT=$RUNNING",
      "done",
      '[ -z "$KILLER" ] || kill "$KILLER" 2>/dev/null',
      'exit "${FAILED:-$STATUS}"',
    ]);
    const stopping = formatLaunch(commands, { stopExitCodes: [5, 6], killGraceMs: 2500 });
    expect(stopping[10]).toBe(
      '    case $CODE in 0) continue ;; 5|6) [ "$STATUS" = 0 ] && STATUS=$CODE; continue ;; esac',
    );
    expect(stopping[12]).toContain("(sleep 2.5; kill -KILL $PIDS 2>/dev/null) &");
    expect(formatLaunch(commands)[0]).toBe(
      'NCCL_NVLS_ENABLE=0 /c/lasp_program --rank 0 --world 4 --device 0 --nccl-id-file /tmp/x/nccl.id --json --mode verify & PIDS="$!"',
    );
    expect(formatLaunch(commands)[3]).toMatch(/ --rank 3 .* & PIDS="\$PIDS \$!"$/);
    // One local rank runs in the foreground: its exit code is the line's.
    expect(formatLaunch(planLaunch({ ...base, world: 1 }, "/tmp/x/nccl.id"))).toEqual([
      "NCCL_NVLS_ENABLE=0 /c/lasp_program --rank 0 --world 1 --device 0 --nccl-id-file /tmp/x/nccl.id --json",
    ]);
  });

  it("as a shell script, exits with the first failed rank's code and stops the others, and 0 when none failed", async () => {
    const ids = await mkdtemp(path.join(root, "script-"));
    const script = (world: number, name: string) =>
      formatLaunch(planLaunch({ binary, world, env: {} }, path.join(ids, `${name}.id`)), {
        killGraceMs: 1000,
      }).join("\n");
    const sh = async (text: string, env: NodeJS.ProcessEnv = {}) => {
      const started = Date.now();
      const result = await execa("bash", ["-c", text], { env: { ...process.env, ...env }, reject: false });
      return { code: result.exitCode, ms: Date.now() - started };
    };
    const [clean, stuck, deaf, single] = await Promise.all([
      sh(script(2, "clean")),
      // Rank 1 exits 7 while rank 0 sleeps 60 s (a rank waiting for the failed one): SIGTERM ends it.
      sh(script(3, "stuck"), { FIXTURE_CRASH_RANK: "1", FIXTURE_SLEEP_RANK: "0" }),
      // One that ignores SIGTERM gets SIGKILL after the grace (1 s here).
      sh(script(2, "deaf"), { FIXTURE_CRASH_RANK: "1", FIXTURE_SLEEP_RANK: "0", FIXTURE_IGNORE_TERM: "1" }),
      sh(script(1, "single"), { FIXTURE_CRASH_RANK: "0" }),
    ]);
    expect(clean.code).toBe(0);
    expect(stuck.code).toBe(7);
    expect(stuck.ms).toBeLessThan(20_000);
    expect(deaf.code).toBe(7);
    expect(deaf.ms).toBeLessThan(20_000);
    expect(single.code).toBe(7);
  });

  it("builds the mpirun and srun command lines", () => {
    const mpirun = planLaunch(
      { ...base, world: 16, launcher: "mpirun", gpusPerNode: 8, launcherArgs: ["--hostfile", "hosts"] },
      "/s/nccl.id",
    );
    expect(formatLaunch(mpirun)).toEqual([
      "NCCL_NVLS_ENABLE=0 mpirun -np 16 --map-by ppr:8:node --hostfile hosts /c/lasp_program --nccl-id-file /s/nccl.id --json",
    ]);
    expect(planLaunch({ ...base, launcher: "mpirun" }, "/s/id")[0]!.args.slice(0, 4)).toEqual([
      "-np",
      "4",
      "--map-by",
      "ppr:4:node",
    ]);
    const srun = planLaunch({ ...base, world: 16, launcher: "srun", programArgs: ["--steps", "5"] }, "/s/id");
    expect(srun[0]!.file).toBe("srun");
    expect(srun[0]!.args).toEqual([
      "--ntasks",
      "16",
      "--gpus-per-task",
      "1",
      "--kill-on-bad-exit=1",
      "/c/lasp_program",
      "--nccl-id-file",
      "/s/id",
      "--json",
      "--steps",
      "5",
    ]);
  });
});

describe("event lines", () => {
  it("parses the protocol's JSON lines and leaves other text alone", () => {
    expect(parseEventLine('{"event":"step","rank":1,"step":3,"ms":4.5,"warmup":false}')).toEqual({
      event: "step",
      rank: 1,
      step: 3,
      ms: 4.5,
      warmup: false,
    });
    expect(parseEventLine('{"event":"error","message":"x"}', 3)).toEqual({
      event: "error",
      rank: 3,
      message: "x",
    });
    expect(parseEventLine('{"event":"newfangled","rank":0}')).toBe("ignored");
    expect(parseEventLine("NCCL INFO Bootstrap : Using eth0")).toBeUndefined();
    expect(parseEventLine("{not json")).toBeUndefined();
    expect(parseEventLine("[1,2]")).toBeUndefined();
  });
});
