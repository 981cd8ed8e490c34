// `lasp run` without GPUs: the machine is injected (GPU list, tools) and the program is the C++ fixture of
// src/toolchain/test-program.ts, which speaks the generated program's protocol.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../src/cli/main.js";
import { onStopSignals, runCommand, type RunCliOptions, type RunDeps } from "../src/cli/run-command.js";
import type { GpuInfo } from "../src/toolchain/gpus.js";
import { fixtureFiles } from "../src/toolchain/test-program.js";
import type { Toolchain } from "../src/toolchain/tools.js";
import { captureIo } from "../src/cli/test-io.js";
import { CodegenLimitation } from "../src/codegen/generate.js";
import { encodeTokenFile, GPT2_FORMAT } from "../src/data/llmc-format.js";
import { megatronParts } from "../src/data/test-megatron.js";
import { checkSource } from "../src/check/front-end.js";
import { bytesTokenizerMismatch, tokensOutsideVocab, trainTokenFiles } from "../src/cli/token-file-paths.js";
import { modelHash } from "../src/codegen/train-constants.js";

const SPEC = "examples/tiny-linear.lasp"; // parallel { gpus 2 }

const capture = captureIo;

const H100 = (index: number): GpuInfo => ({ index, name: "NVIDIA H100 80GB HBM3", memoryMiB: 81559 });
const TOOLS: Toolchain = {
  nvcc: { path: "/opt/cuda/bin/nvcc", version: "13.0.88" },
  // No cmake: the fixture then builds with its build.sh and g++, the quicker way.
  cmake: undefined,
};

let root: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "lasp-run-test-"));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function deps(extra: Partial<RunDeps> = {}, env: NodeJS.ProcessEnv = {}): RunDeps {
  return {
    // The stand-in's checkpoints carry the spec's model hash, as the program's do (--resume checks it).
    generate: (spec) => fixtureFiles({ modelHash: modelHash(spec) }),
    detectGpus: async () => ({ gpus: [H100(0), H100(1)] }),
    findTools: async () => TOOLS,
    which: async (name) => `/usr/bin/${name}`,
    tty: false,
    onInterrupt: () => () => undefined,
    cwd: root,
    env: { ...process.env, LASP_CACHE_DIR: path.join(root, "cache"), ...env },
    ...extra,
  };
}

async function run(options: RunCliOptions, d: RunDeps = deps(), spec = SPEC) {
  const io = capture();
  const code = await runCommand(spec, options, io, d);
  return { code, out: io.out, err: io.err };
}

describe("lasp run: the machine", () => {
  it("says there is no GPU, what the spec needs and what works without one (exit 3)", async () => {
    const r = await run(
      {},
      deps({ detectGpus: async () => ({ gpus: [], problem: "nvidia-smi is not installed" }) }),
    );
    expect(r.code).toBe(3);
    expect(r.err).toContain("lasp: no NVIDIA GPU on this machine (nvidia-smi is not installed).");
    expect(r.err).toContain(`${SPEC} needs 2 GPUs (parallel.gpus 2).`);
    expect(r.err).toContain(`lasp compile ${SPEC} -o DIR`);
    expect(r.err).toContain(`lasp inspect ${SPEC}`);
    expect(r.err).toContain(`lasp verify ${SPEC}`);
    expect(r.err).toContain("--launcher mpirun");
  });

  it("says how many GPUs it found and needs, and how to use several nodes (exit 3)", async () => {
    const r = await run({}, deps({ detectGpus: async () => ({ gpus: [H100(0)] }) }));
    expect(r.code).toBe(3);
    expect(r.err).toContain(
      `lasp: ${SPEC} needs 2 GPUs (parallel.gpus 2); this machine has 1: 1 x NVIDIA H100 80GB HBM3 (81559 MiB).`,
    );
    expect(r.err).toContain(`lasp run ${SPEC} --launcher mpirun --gpus-per-node 1`);
    expect(r.err).toContain(`lasp run ${SPEC} --launcher srun`);
  });

  it("names a missing nvcc and how to get it; a missing cmake only when there is no build.sh (exit 3)", async () => {
    const noNvcc = await run({}, deps({ findTools: async () => ({ nvcc: undefined, cmake: undefined }) }));
    expect(noNvcc.code).toBe(3);
    expect(noNvcc.err).toContain("lasp: nvcc (the CUDA compiler) not found");
    expect(noNvcc.err).toContain("export PATH=/usr/local/cuda/bin:$PATH");
    expect(noNvcc.err).not.toContain("cmake not found on PATH");
    const files = fixtureFiles();
    files.delete("build.sh");
    const noCmake = await run({}, deps({ generate: () => files }));
    expect(noCmake.code).toBe(3);
    expect(noCmake.err).toContain(
      "lasp: cmake not found on PATH, and the generated program has no build.sh.",
    );
    expect(noCmake.err).toContain("pip install cmake");
  });

  it("needs mpirun on PATH for --launcher mpirun, but no local GPU", async () => {
    const r = await run(
      { launcher: "mpirun" },
      deps({ which: async () => undefined, detectGpus: async () => ({ gpus: [] }) }),
    );
    expect(r.code).toBe(3);
    expect(r.err).toContain("lasp: mpirun not found on PATH.");
    expect(r.err).not.toContain("no NVIDIA GPU");
  });

  it("reports spec errors before looking at the machine (exit 1)", async () => {
    const bad = path.join(root, "bad.lasp");
    await writeFile(bad, "model m { heads 4 }\n");
    const r = await run({}, deps({ detectGpus: async () => ({ gpus: [] }) }), bad);
    expect(r.code).toBe(1);
    expect(r.err).not.toContain("GPU");
  });

  it("rejects bad options (exit 2)", async () => {
    expect((await run({ launcher: "pbs" })).err).toContain("--launcher must be one of local, mpirun, srun");
    expect((await run({ steps: "0" })).code).toBe(2);
    expect((await run({ mode: "fast" })).code).toBe(2);
    expect((await run({ arch: "hopper" })).code).toBe(2);
    expect((await run({ gpusPerNode: "4" })).err).toContain(
      "--gpus-per-node applies to --launcher mpirun or srun",
    );
  });

  it("reports a spec the code generator cannot emit yet as a spec error (exit 1)", async () => {
    const r = await run(
      {},
      deps({
        generate: () => {
          throw new CodegenLimitation("the ulysses schedule is not generated yet");
        },
      }),
    );
    expect(r.code).toBe(1);
    expect(r.err.split("\n").slice(-2)).toEqual([
      `lasp: cannot run ${SPEC}: the ulysses schedule is not generated yet`,
      "",
    ]);
  });
});

describe("lasp run: numbers on the command line", () => {
  it("reads --steps and --gpus-per-node as a spec reads numbers, and says what is wrong otherwise (exit 2)", async () => {
    const dry = await run({ dryRun: true, steps: "1K" });
    expect(dry.code).toBe(0);
    expect(dry.out + dry.err).toContain("--steps 1024");
    for (const [options, flag] of [
      [{ steps: "0" }, "--steps"],
      [{ steps: "2.5" }, "--steps"],
      [{ launcher: "mpirun", gpusPerNode: "x" }, "--gpus-per-node"],
    ] as const) {
      const r = await run({ dryRun: true, ...options });
      expect(r.code).toBe(2);
      expect(r.err).toContain(`lasp: ${flag} must be a whole number of at least 1`);
      expect(r.err).toContain("512K");
    }
  });
});

describe("lasp run --dry-run", () => {
  it("prints the build and launch commands and touches nothing", async () => {
    const cache = path.join(root, "dry-cache");
    const r = await run(
      { dryRun: true, steps: "5", programArgs: ["--seed", "3"] },
      deps(
        { findTools: async () => ({ ...TOOLS, cmake: { path: "/usr/bin/cmake", version: "3.25.1" } }) },
        {
          LASP_CACHE_DIR: cache,
        },
      ),
    );
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split("\n");
    const key = /dry-cache\/([0-9a-f]{16})/.exec(r.out)?.[1];
    expect(key).toBeDefined();
    const dir = path.join(cache, key!);
    expect(lines.slice(0, 8)).toEqual([
      `# lasp run ${SPEC} --dry-run: nothing is written, built or started`,
      `# 3 generated files -> ${dir}/src`,
      `# build (cmake; cmake 3.25.1, nvcc 13.0.88); the log would go to ${dir}/build.log`,
      `cd ${dir} && /usr/bin/cmake -S src -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DCMAKE_CUDA_COMPILER=/opt/cuda/bin/nvcc && /usr/bin/cmake --build build -j ${os.availableParallelism()}`,
      "# launch: 2 ranks on this machine",
      `ID_DIR=$(mktemp -d); trap 'rm -rf "$ID_DIR"' EXIT`,
      `NCCL_NVLS_ENABLE=0 ${dir}/build/lasp_program --rank 0 --world 2 --device 0 --nccl-id-file "$ID_DIR/nccl.id" --json --steps 5 --seed 3 & PIDS="$!"`,
      `NCCL_NVLS_ENABLE=0 ${dir}/build/lasp_program --rank 1 --world 2 --device 1 --nccl-id-file "$ID_DIR/nccl.id" --json --steps 5 --seed 3 & PIDS="$PIDS $!"`,
    ]);
    // Then formatLaunch's poll (launch.test.ts runs it): the first failed rank's code, the others stopped; a
    // benchmark has no stop codes.
    expect(lines[8]).toBe("STATUS=0 FAILED= KILLER= LEFT=$PIDS");
    expect(lines).toContain("    case $CODE in 0) continue ;; esac");
    expect(lines.at(-1)).toBe('exit "${FAILED:-$STATUS}"');
    expect(existsSync(cache)).toBe(false);
  });

  it("prints the mpirun and srun command lines, and warns about what a real run would lack", async () => {
    const mpirun = await run(
      {
        dryRun: true,
        launcher: "mpirun",
        gpusPerNode: "1",
        launcherArgs: "--hostfile hosts",
        mode: "verify",
      },
      deps({ findTools: async () => ({ nvcc: undefined, cmake: undefined }) }),
    );
    expect(mpirun.code).toBe(0);
    expect(mpirun.err).toContain(
      "lasp: warning (a real run would stop here): nvcc (the CUDA compiler) not found",
    );
    expect(mpirun.out).toMatch(
      /^NCCL_NVLS_ENABLE=0 mpirun -np 2 --map-by ppr:1:node --hostfile hosts \S+\/src\/lasp_program --nccl-id-file "\$ID_DIR\/nccl.id" --json --mode verify$/m,
    );
    expect(mpirun.out).toContain("&& ARCH=90a bash build.sh");
    expect(mpirun.out).toMatch(
      /^mkdir -p \S+\/cache\/run && ID_DIR=\$\(mktemp -d \S+\/cache\/run\/lasp-nccl-XXXXXX\); trap 'rm -rf "\$ID_DIR"' EXIT$/m,
    );
    const srun = await run({ dryRun: true, launcher: "srun" });
    expect(srun.out).toMatch(
      /^NCCL_NVLS_ENABLE=0 srun --ntasks 2 --gpus-per-task 1 --kill-on-bad-exit=1 \S+lasp_program --nccl-id-file "\$ID_DIR\/nccl.id" --json$/m,
    );
  });
});

describe("lasp run with `recompute auto`", () => {
  it("fits the choice to the smallest GPU found, hands that spec to the generator, and says which", async () => {
    const cwd = await mkdtemp(path.join(root, "recompute-"));
    const spec = path.join(cwd, "auto.lasp");
    const text = await readFile(SPEC, "utf8");
    await writeFile(spec, text.replace("dtype bf16", "dtype bf16  recompute auto"));
    const seen: string[] = [];
    const generate: RunDeps["generate"] = (s) => (seen.push(s.run.recompute), fixtureFiles());
    // A cache of its own: the build tests below count on building the fixture first.
    const cache = { LASP_CACHE_DIR: path.join(cwd, "cache") };
    const big = await run({}, deps({ cwd, generate }, cache), spec);
    expect(big.code).toBe(0);
    expect(big.err).toMatch(/^\[run\] recompute auto: none \(\d+\.\d GB of the 85\.5 GB GPU\)$/m);
    // A GPU of 64 MiB holds none of them: the least memory, said not to fit.
    const small = (index: number): GpuInfo => ({ ...H100(index), memoryMiB: 64 });
    const tiny = await run(
      {},
      deps({ cwd, generate, detectGpus: async () => ({ gpus: [small(0), small(1)] }) }, cache),
      spec,
    );
    expect(tiny.err).toMatch(
      /^\[run\] recompute auto: mlp \(\d+\.\d GB of the 0\.1 GB GPU: does not fit\)$/m,
    );
    expect(seen).toEqual(["none", "mlp"]);
  });
});

describe("lasp run --lasp2", () => {
  it("hands LASP-2's arrangement to the generator, and refuses any other value before anything else", async () => {
    const seen: unknown[] = [];
    const generate: RunDeps["generate"] = (_spec, _renderer, lowering) => {
      seen.push(lowering);
      return fixtureFiles();
    };
    const split = await run({ dryRun: true, lasp2: "split" }, deps({ generate }));
    expect(split.code).toBe(0);
    const fused = await run({ dryRun: true }, deps({ generate }));
    expect(fused.code).toBe(0);
    expect(seen).toEqual([{ lasp2: "split" }, { lasp2: undefined }]);
    const bad = await run({ dryRun: true, lasp2: "fast" }, deps({ generate }));
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("lasp: --lasp2 must be fused or split, got fast");
    expect(seen).toHaveLength(2);
  });
});

describe("lasp run: building and running", () => {
  it("builds, runs both ranks, shows progress and the summary; the second run finds the build cached", async () => {
    const first = await run({ json: true });
    expect(first.err).toContain(
      "lasp: cmake not found; building with the program's build.sh and nvcc alone.",
    );
    expect(first.code).toBe(0);
    expect(first.err).toMatch(/^\[build\] done in \d+\.\d s: \S+\/src\/lasp_program$/m);
    expect(first.err).toContain("[run] fixture.lasp: 2 ranks on Fake GPU 0, mode bench, 3 steps + 1 warm-up");
    // 3 steps left at 10 ms: an ETA of 0.03 s, rounded up. The start event's 4096 tokens per step in 10 ms
    // are 409,600 tokens/s; at 1e6 FLOPs per token over 2 GPUs of 1e12 FLOP/s peak, an MFU of 20.5 %.
    expect(first.err).toContain(
      "step 1/4  10.0 ms  loss 5.5000  410 k tokens/s  MFU 20.5 %  ETA 1 s  (warm-up)\n" +
        "step 2/4  10.0 ms  loss 3.6667  410 k tokens/s  MFU 20.5 %  ETA 1 s\n",
    );
    expect(first.err).toContain("fixture: rank 0 done");
    expect(first.err).toContain("summary over 2 ranks (median over ranks)");
    expect(first.err).toMatch(/step time\s+10\.5 ms {2}\(ranks 10\.0–11\.0 ms\)/);
    expect(first.err).toMatch(/L\.backward\s+6\.500/);
    // --json: the events on stdout, one per line.
    const events = first.out
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { event: string; rank: number });
    expect(
      events
        .filter((e) => e.event === "summary")
        .map((e) => e.rank)
        .sort(),
    ).toEqual([0, 1]);

    const second = await run({});
    expect(second.code).toBe(0);
    expect(second.err).toMatch(/^\[build\] cached: \S+\/lasp_program$/m);
    expect(second.out).toBe("");
  });

  it("writes the sources to --out and passes --mode and --steps to the program", async () => {
    const out = path.join(root, "program");
    const r = await run({ out, mode: "verify", steps: "2" });
    expect(r.code).toBe(0);
    // The manifest marks the files lasp wrote there, as `lasp compile -o` does (src/io/owned-folder.ts).
    expect((await readdir(out)).sort()).toEqual([
      ".lasp-manifest",
      "CMakeLists.txt",
      "build.sh",
      "lasp_program",
      "main.cpp",
    ]);
    expect(r.err).toContain(`[build] sources in ${out}`);
    expect(r.err).toContain("mode verify, 2 steps + 1 warm-up");
    expect(r.err).toContain("verify ok: every error is within tolerance");
    // The folder is lasp's now: a dry run into it finds nothing to refuse.
    expect((await run({ out, dryRun: true })).code).toBe(0);
  });

  it("refuses an -o that the build would refuse, in a dry run as in a real one, before the run folder, writing nothing", async () => {
    const cwd = await mkdtemp(path.join(root, "out-"));
    await writeFile(path.join(cwd, "victim.txt"), "mine\n");
    await mkdir(path.join(cwd, "examples"));
    await writeFile(path.join(cwd, "examples", "notes.txt"), "mine\n");
    // A folder lasp wrote (its manifest lists nothing) holding a user's main.cpp where lasp would write one.
    await mkdir(path.join(cwd, "claimed"));
    await writeFile(path.join(cwd, "claimed", ".lasp-manifest"), "# lasp wrote the files listed below.\n");
    await writeFile(path.join(cwd, "claimed", "main.cpp"), "// mine\n");
    // A folder lasp wrote with a user's file named as a folder the program has (lasp/ for lasp/x.h).
    await mkdir(path.join(cwd, "blocked"));
    await writeFile(path.join(cwd, "blocked", ".lasp-manifest"), "# lasp wrote the files listed below.\n");
    await writeFile(path.join(cwd, "blocked", "lasp"), "mine\n");
    const refusals: [string, string][] = [
      ["victim.txt", `${path.join(cwd, "victim.txt")} is a file, not a folder`],
      [".", `${cwd} is not empty and has no .lasp-manifest, so lasp did not write it`],
      [
        "examples",
        `${path.join(cwd, "examples")} is not empty and has no .lasp-manifest, so lasp did not write it`,
      ],
      [
        "claimed",
        `${path.join(cwd, "claimed")} holds a file lasp did not write where it would write: main.cpp`,
      ],
    ];
    const before = await readdir(cwd, { recursive: true });
    for (const [out, why] of refusals) {
      for (const dryRun of [true, false]) {
        const r = await run({ out, dryRun }, deps({ cwd }));
        expect(r.code).toBe(2);
        expect(r.err).toBe(
          `lasp: cannot write the sources to ${out}: ${why}\n` +
            "  = hint: name a new or empty folder with -o (or one lasp wrote there before), or leave -o out to build in the cache\n",
        );
        expect(r.out).toBe("");
      }
    }
    const withFolder = deps({ cwd, generate: () => new Map([...fixtureFiles(), ["lasp/x.h", "\n"]]) });
    const blocked = await run({ out: "blocked", dryRun: true }, withFolder);
    expect(blocked.code).toBe(2);
    expect(blocked.err).toContain(
      `lasp: cannot write the sources to blocked: ${path.join(cwd, "blocked", "lasp")} is a file where a folder is needed\n`,
    );
    // Nothing written: no run folder, no sources, the user's files as they were.
    expect(await readdir(cwd, { recursive: true })).toEqual(before);
    expect(await readFile(path.join(cwd, "claimed", "main.cpp"), "utf8")).toBe("// mine\n");
    // A new folder is fine, and a dry run does not make it.
    const fresh = await run({ out: "new/program", dryRun: true }, deps({ cwd }));
    expect(fresh.code).toBe(0);
    expect(fresh.out).toContain(`-> ${path.join(cwd, "new/program")}`);
    expect(existsSync(path.join(cwd, "new"))).toBe(false);
  });

  it("passes a crashed rank's exit code through, naming the rank, with its last stderr lines", async () => {
    const r = await run({}, deps({}, { FIXTURE_CRASH_RANK: "1", FIXTURE_SLEEP_RANK: "0" }));
    expect(r.code).toBe(7);
    expect(r.err).toContain("[rank 1] rank 1: boom");
    expect(r.err).toContain("lasp: rank 1 exited with code 7; stopped the other ranks\n");
    expect(r.err).toContain(
      "  last lines of rank 1's stderr:\n    rank 1: something broke\n    rank 1: boom\n",
    );
    expect(r.err).not.toContain("summary over");
  });

  it("reports a failed verification with the program's exit code 1", async () => {
    const r = await run({ mode: "verify" }, deps({}, { FIXTURE_VERIFY_FAIL: "1" }));
    expect(r.code).toBe(1);
    expect(r.err).toContain("verify FAILED: 1 of 4 above tolerance");
    expect(r.err).toContain("lasp: the program's verification failed on rank 1");
  });

  it("stops every rank on Ctrl-C and exits 130", async () => {
    let interrupt: (() => void) | undefined;
    const d = deps(
      { onInterrupt: (handler) => ((interrupt = handler), () => (interrupt = undefined)) },
      {
        FIXTURE_STEP_MS: "100",
      },
    );
    const io = capture();
    const pending = runCommand(
      SPEC,
      { steps: "100" },
      {
        ...io,
        stderr: (t) => {
          io.stderr(t);
          if (t.startsWith("step 2/")) interrupt?.();
        },
      },
      d,
    );
    const code = await pending;
    expect(code).toBe(130);
    expect(io.err).toContain("lasp: interrupted; stopped all 2 ranks");
    expect(interrupt).toBeUndefined();
    const folder = path.join(root, /^run folder: (\S+)$/m.exec(io.err)![1]!);
    expect(JSON.parse(await readFile(path.join(folder, "run.json"), "utf8")).exit).toEqual({
      code: 130,
      status: "interrupted",
    });
  });

  it("exits 4 on a failed build with the log path and a repro command", async () => {
    const r = await run({}, deps({ generate: () => fixtureFiles({ broken: true }) }));
    expect(r.code).toBe(4);
    expect(r.err).toMatch(/^lasp: build failed: bash exited with code 1$/m);
    expect(r.err).toContain("this_is_not_declared");
    expect(r.err).toMatch(/^ {2}log: \S+\/build\.log$/m);
    expect(r.err).toMatch(
      /^ {2}Repro command:\n {4}cd \S+\/src && PATH=\/opt\/cuda\/bin:"\$PATH" ARCH=90a bash build\.sh$/m,
    );
    // The run folder records the failed build.
    const folder = path.join(root, /^run folder: (\S+)$/m.exec(r.err)![1]!);
    const record = JSON.parse(await readFile(path.join(folder, "run.json"), "utf8"));
    expect(record.exit).toEqual({ code: 4, status: "build failed" });
    expect(record.build).toBeNull();
    expect(await readFile(path.join(folder, "stderr.log"), "utf8")).toContain("lasp: build failed");
  });
});

describe("lasp run: the run folder", () => {
  const AT = new Date(Date.UTC(2026, 11, 5, 9, 3, 7));
  const lines = (text: string): string[] => text.trimEnd().split("\n");

  it("holds the spec, run.json, every event as received, the logs, the loss chart and the summary", async () => {
    const r = await run({ json: true }, deps({ now: () => AT }));
    expect(r.code).toBe(0);
    const name = "runs/tiny-linear-20261205-090307";
    const folder = path.join(root, name);
    expect(r.err).toContain(`[run] folder: ${name}\n`);
    expect(lines(r.err).at(-1)).toBe(`run folder: ${name}`);
    expect((await readdir(folder)).sort()).toEqual([
      "events.jsonl",
      "loss.svg",
      "run.json",
      "spec.lasp",
      "stderr.log",
      "summary.txt",
    ]);
    const read = (file: string): Promise<string> => readFile(path.join(folder, file), "utf8");
    expect(await read("spec.lasp")).toBe(await readFile(SPEC, "utf8"));

    const record = JSON.parse(await read("run.json"));
    expect(record.lasp).toMatch(/^\d+\.\d+\.\d+/);
    expect(record.spec).toEqual({ path: path.resolve(SPEC), copy: "spec.lasp" });
    expect(record.command).toEqual(["lasp", "run", SPEC]);
    // The spec's mode (the fixture itself always says bench).
    expect(record.mode).toBe("verify");
    expect(record.world).toBe(2);
    expect(record.gpus.map((g: GpuInfo) => g.name)).toEqual([H100(0).name, H100(1).name]);
    expect(record.devices).toEqual({ "0": "Fake GPU 0", "1": "Fake GPU 1" });
    expect(record.build.hash).toMatch(/^[0-9a-f]{16}$/);
    expect(r.err).toContain(record.build.binary);
    expect(existsSync(record.build.binary)).toBe(true);
    expect(record.launch[0]).toContain(`${record.build.binary} --rank 0 --world 2`);
    expect(record.started).toBe(AT.toISOString());
    expect(Date.parse(record.ended)).toBeGreaterThanOrEqual(AT.getTime());
    expect(record.exit).toEqual({ code: 0, status: "ok" });

    // Every event line of both ranks, the ones this lasp does not know included; the known ones are those
    // --json printed, in the same order.
    const events = lines(await read("events.jsonl")).map(
      (l) => JSON.parse(l) as { event: string; rank: number },
    );
    expect(events.filter((e) => e.event === "step")).toHaveLength(2 * 4);
    expect(
      events
        .filter((e) => e.event === "fixture_note")
        .map((e) => e.rank)
        .sort(),
    ).toEqual([0, 1]);
    expect(events.filter((e) => e.event !== "fixture_note")).toEqual(lines(r.out).map((l) => JSON.parse(l)));

    expect(await read("stderr.log")).toContain("[rank 0] fixture: rank 0 done\n");
    const svg = await read("loss.svg");
    expect(svg).toContain("tiny-linear.lasp, mode verify");
    expect(/<polyline class="loss" points="([^"]*)"/.exec(svg)![1]!.split(" ")).toHaveLength(4);

    // The summary as the terminal showed it, with the loss's sparkline.
    const summary = await read("summary.txt");
    expect(summary).toContain("summary over 2 ranks (median over ranks)");
    expect(lines(summary).at(-1)).toBe("loss 5.5000 █▄▂▁ 2.2000  (4 steps)");
    expect(r.err).toContain(summary);
  });

  it("never reuses a folder: a --run-dir that exists gets a suffix", async () => {
    const first = await run({ runDir: "mine" });
    const second = await run({ runDir: "mine" });
    expect([first.code, second.code]).toEqual([0, 0]);
    expect(lines(first.err).at(-1)).toBe("run folder: mine");
    expect(lines(second.err).at(-1)).toBe("run folder: mine-2");
    expect(existsSync(path.join(root, "mine-2", "run.json"))).toBe(true);
  });

  it("keeps what a failing program sent: the events received, its stderr and the exit status", async () => {
    const r = await run(
      { runDir: "crashed" },
      deps({}, { FIXTURE_CRASH_RANK: "1", FIXTURE_SLEEP_RANK: "0" }),
    );
    expect(r.code).toBe(7);
    const folder = path.join(root, "crashed");
    const record = JSON.parse(await readFile(path.join(folder, "run.json"), "utf8"));
    expect(record.exit).toEqual({ code: 7, status: "failed", failedRank: 1 });
    expect(record.ended).not.toBeNull();
    const events = lines(await readFile(path.join(folder, "events.jsonl"), "utf8")).map((l) => JSON.parse(l));
    expect(events.map((e) => `${e.event} ${e.rank}`).sort()).toEqual(["start 0", "start 1"]);
    const log = await readFile(path.join(folder, "stderr.log"), "utf8");
    expect(log).toContain("[rank 1] rank 1: boom\n");
    expect(log).toContain("lasp: rank 1 exited with code 7; stopped the other ranks\n");
    // No step reported a loss and no summary was printed.
    expect(existsSync(path.join(folder, "loss.svg"))).toBe(false);
    expect(existsSync(path.join(folder, "summary.txt"))).toBe(false);
  });

  it("is not made by --dry-run, nor when the machine cannot run the spec", async () => {
    const cwd = await mkdtemp(path.join(root, "empty-"));
    expect((await run({ dryRun: true }, deps({ cwd }))).code).toBe(0);
    expect((await run({ runDir: "x" }, deps({ cwd, detectGpus: async () => ({ gpus: [] }) }))).code).toBe(3);
    expect(await readdir(cwd)).toEqual([]);
  });

  it("says when the folder cannot be made (exit 2)", async () => {
    const cwd = await mkdtemp(path.join(root, "blocked-"));
    await writeFile(path.join(cwd, "runs"), "a file where the folder would go");
    const r = await run({}, deps({ cwd }));
    expect(r.code).toBe(2);
    expect(r.err).toContain(`lasp: cannot make the run folder in ${path.join(cwd, "runs")}:`);
  });
});

describe("lasp run: train mode", () => {
  const lines = (text: string): string[] => text.trimEnd().split("\n");
  /** Every file under `dir`, relative, sorted: what a run folder holds. */
  const tree = async (dir: string): Promise<string[]> =>
    (await readdir(dir, { recursive: true })).map(String).sort();
  const record = async (folder: string) => JSON.parse(await readFile(path.join(folder, "run.json"), "utf8"));
  const folderOf = (err: string, cwd: string): string =>
    path.join(cwd, /^run folder: (\S+)$/m.exec(err)![1]!);

  it("hands every rank the run folder; the checkpoints land in it; progress shows lr, evals, checkpoints and a training summary", async () => {
    const cwd = await mkdtemp(path.join(root, "train-"));
    const r = await run({ mode: "train", steps: "5" }, deps({ cwd }));
    expect(r.code).toBe(0);
    const folder = folderOf(r.err, cwd);
    const rel = path.relative(cwd, folder);
    expect((await record(folder)).launch[0]).toContain(`--mode train --steps 5 --run-dir ${folder}`);
    expect((await record(folder)).mode).toBe("train");
    expect(await readdir(path.join(folder, "checkpoints"))).toEqual([
      "step-000002",
      "step-000004",
      "step-000005",
    ]);
    expect(r.err).toContain("[run] fixture.lasp: 2 ranks on Fake GPU 0, mode train, 5 steps\n");
    expect(r.err).toContain("[train] data: synthetic tokens, 2 windows per step\n");
    expect(r.err).toContain(
      "step 2/5  10.0 ms  loss 3.6667  lr 1.2e-4  410 k tokens/s  MFU 20.5 %  ETA 1 s\n",
    );
    expect(r.err).toContain("eval at step 2: loss 3.7667, perplexity 43.24\n");
    expect(r.err).toMatch(
      new RegExp(`^checkpoint step 4 written in \\d+ ms: ${rel}/checkpoints/step-000004$`, "m"),
    );
    const summary = await readFile(path.join(folder, "summary.txt"), "utf8");
    expect(lines(summary)).toEqual([
      "training over 2 ranks",
      "  steps            5 (steps 1–5 of 5)",
      "  time             50 ms",
      "  tokens           20.5 k",
      "  tokens/s         410 k",
      "  MFU              20.5 %",
      "  final loss       1.8333",
      "  eval loss        2.3000 (perplexity 9.97)",
      expect.stringMatching(/^ {2}checkpoints {6}3 written; training stood still \d+ ms for them$/),
      `  last checkpoint  ${rel}/checkpoints/step-000005`,
      // The checkpoint's Python: a linear model, so modeling_lasp.py beside its config.json.
      `  in transformers  AutoModelForCausalLM.from_pretrained("${rel}/checkpoints/step-000005", trust_remote_code=True)`,
      "loss 5.5000 █▅▃▂▁ 1.8333  (5 steps)",
    ]);
    expect(r.err).toContain(summary);
    const svg = await readFile(path.join(folder, "loss.svg"), "utf8");
    expect(/<polyline class="loss" points="([^"]*)"/.exec(svg)![1]!.split(" ")).toHaveLength(5);
    // The stand-in evaluates after steps 2 and 4: the held-out line has those two points.
    expect(/<polyline class="eval" points="([^"]*)"/.exec(svg)![1]!.split(" ")).toHaveLength(2);
  });

  it("--resume alone continues from the newest checkpoint of the spec's newest run, in a new folder, leaving the old one as it was", async () => {
    const cwd = await mkdtemp(path.join(root, "resume-"));
    const first = await run({ mode: "train", steps: "5" }, deps({ cwd }));
    expect(first.code).toBe(0);
    const old = folderOf(first.err, cwd);
    const before = await tree(old);
    const argv = ["run", SPEC, "--resume", "--steps", "7"];
    // The spec says bench: --resume makes it a training run.
    const r = await run({ resume: true, steps: "7", argv }, deps({ cwd }));
    expect(r.code).toBe(0);
    const folder = folderOf(r.err, cwd);
    expect(folder).not.toBe(old);
    const checkpoint = path.join(old, "checkpoints", "step-000005");
    const rec = await record(folder);
    expect(rec.resumedFrom).toBe(checkpoint);
    expect(rec.mode).toBe("train");
    expect(rec.command).toEqual(["lasp", ...argv]);
    expect(rec.launch[0]).toContain(`--mode train --steps 7 --run-dir ${folder} --resume ${checkpoint}`);
    expect(r.err).toContain(
      `resumed from ${path.relative(cwd, checkpoint)} after step 5 (20.5 k tokens seen)\n`,
    );
    expect(r.err).toContain("step 6/7  10.0 ms  loss 1.5714");
    expect(r.err).toContain("  steps            2 (steps 6–7 of 7, resumed after step 5)");
    expect(await readdir(path.join(folder, "checkpoints"))).toEqual(["step-000006", "step-000007"]);
    expect(await tree(old)).toEqual(before);
  });

  it("hands the program the spec's token files resolved against the spec's folder", async () => {
    const cwd = await mkdtemp(path.join(root, "data-"));
    const specDir = path.join(cwd, "specs");
    await mkdir(specDir);
    const spec = path.join(specDir, "train.lasp");
    const text = await readFile(SPEC, "utf8");
    await writeFile(
      spec,
      text.replace(/mode verify/, 'mode train  data "data/train.bin"  eval_data "../val.bin"  eval_every 2'),
    );
    // Token files of one window each (a dry run checks them as a real run does).
    const seqLen = checkSource(spec, await readFile(spec, "utf8")).spec!.run.seqLen;
    await mkdir(path.join(specDir, "data"));
    const window = encodeTokenFile(GPT2_FORMAT, new Uint16Array(seqLen + 1));
    await writeFile(path.join(specDir, "data", "train.bin"), window);
    await writeFile(path.join(cwd, "val.bin"), window);
    const r = await run({ dryRun: true }, deps({ cwd }), spec);
    expect(r.code).toBe(0);
    expect(r.out).toContain(
      `--data ${path.join(specDir, "data", "train.bin")} --eval-data ${path.join(cwd, "val.bin")}`,
    );
    // bench and verify read no token file: nothing is passed
    const bench = await run({ dryRun: true, mode: "bench" }, deps({ cwd }), spec);
    expect(bench.out).not.toContain("--data");
  });

  it("stops a dry run where the real run stops on a token file that is missing or not one: the same errors, exit 2, no plan", async () => {
    const cwd = await mkdtemp(path.join(root, "dry-data-"));
    const spec = path.join(cwd, "train.lasp");
    const text = await readFile(SPEC, "utf8");
    await writeFile(spec, text.replace(/mode verify/, 'mode train  data "train.bin"'));
    const noGpu = deps({ cwd, detectGpus: async () => ({ gpus: [], problem: "nvidia-smi not found" }) });
    for (const contents of [undefined, "hello\n"]) {
      if (contents !== undefined) await writeFile(path.join(cwd, "train.bin"), contents);
      const real = await run({}, deps({ cwd }), spec);
      const dry = await run({ dryRun: true }, noGpu, spec);
      expect(real.code).toBe(2);
      expect(dry.code).toBe(2);
      expect(real.err).toContain(
        contents === undefined
          ? `\`data\`: the token file ${path.join(cwd, "train.bin")} does not exist`
          : `\`data\`: ${path.join(cwd, "train.bin")}: not an llm.c token file (nor a Megatron dataset: there is no ${path.join(cwd, "train")}.idx beside it): 6 bytes, too short for llm.c's header of 1024 bytes; it looks like text: \`lasp tokens ${path.join(cwd, "train.bin")} -o ${path.join(cwd, "train.bin")}.tokens.bin\` makes a token file of it`,
      );
      // The real run's errors, word for word, then what else a real run would meet (here: no GPU).
      expect(dry.err.startsWith(real.err)).toBe(true);
      expect(dry.err.slice(real.err.length)).toMatch(
        /^lasp: warning \(a real run would stop here\): no NVIDIA GPU on this machine/,
      );
      expect(dry.out).toBe("");
    }
    expect(await readdir(cwd)).toEqual(["train.bin", "train.lasp"]);
    // --load-weights that is not there: the same.
    const weights = await run({ dryRun: true, loadWeights: "llama" }, deps({ cwd }));
    expect(weights.code).toBe(2);
    expect(weights.err).toBe(
      `lasp: --load-weights llama: ${path.join(cwd, "llama")} does not exist\n` +
        "  = hint: name a .safetensors file, a Hugging Face model.safetensors.index.json, or the folder holding either\n",
    );
  });

  it("stops before the build when a token file the spec names does not exist, at the setting", async () => {
    const cwd = await mkdtemp(path.join(root, "no-data-"));
    const spec = path.join(cwd, "train.lasp");
    const text = await readFile(SPEC, "utf8");
    await writeFile(spec, text.replace(/mode verify/, 'mode train  data "missing.bin"'));
    const r = await run({}, deps({ cwd }), spec);
    expect(r.code).toBe(2);
    const line = text.split("\n").findIndex((l) => l.includes("mode verify")) + 1;
    expect(r.err).toContain(`${spec}:${line}:`);
    expect(r.err).toContain(`the token file ${path.join(cwd, "missing.bin")} does not exist`);
    expect(r.err).toContain("lasp tokens");
    expect(existsSync(path.join(cwd, "runs"))).toBe(false);
  });

  it("hands the program the spec's tokenizer folder resolved, in every mode, and stops at one without a tokenizer", async () => {
    const cwd = await mkdtemp(path.join(root, "tokenizer-"));
    const spec = path.join(cwd, "tok.lasp");
    const text = await readFile(SPEC, "utf8");
    await writeFile(spec, text.replace(/mode verify/, 'mode verify  tokenizer "Llama-3.2-1B"'));
    const missing = await run({}, deps({ cwd }), spec);
    expect(missing.code).toBe(2);
    const line = text.split("\n").findIndex((l) => l.includes("mode verify")) + 1;
    expect(missing.err).toContain(`${spec}:${line}:`);
    expect(missing.err).toContain(
      `\`tokenizer\`: the folder ${path.join(cwd, "Llama-3.2-1B")} does not exist (paths are relative to the spec's folder)`,
    );
    expect(existsSync(path.join(cwd, "runs"))).toBe(false);
    await mkdir(path.join(cwd, "Llama-3.2-1B"));
    const empty = await run({}, deps({ cwd }), spec);
    expect(empty.err).toContain("holds no tokenizer.json or tokenizer.model");
    await writeFile(path.join(cwd, "Llama-3.2-1B", "tokenizer.json"), "{}");
    const r = await run({ dryRun: true }, deps({ cwd }), spec);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`--tokenizer ${path.join(cwd, "Llama-3.2-1B")}`);
  });

  it("stops before the build when the weights to start from (--load-weights after --) are not there", async () => {
    const cwd = await mkdtemp(path.join(root, "no-weights-"));
    const r = await run(
      { programArgs: ["--load-weights", "llama/model.safetensors.index.json"] },
      deps({ cwd }),
    );
    expect(r.code).toBe(2);
    expect(lines(r.err)).toEqual([
      `lasp: --load-weights llama/model.safetensors.index.json: ${path.join(cwd, "llama/model.safetensors.index.json")} does not exist`,
      "  = hint: name a .safetensors file, a Hugging Face model.safetensors.index.json, or the folder holding either",
    ]);
    expect(existsSync(path.join(cwd, "runs"))).toBe(false);
    // A folder that is there goes to the program as written (the program checks what is in it).
    await mkdir(path.join(cwd, "llama"));
    const ok = await run({ programArgs: ["--load-weights", "llama"] }, deps({ cwd }));
    expect(ok.code).toBe(0);
    expect((await record(folderOf(ok.err, cwd))).launch[0]).toContain("--load-weights llama");
  });

  it("takes --load-weights itself, hands the ranks its resolved path, and refuses it twice or with --resume", async () => {
    const cwd = await mkdtemp(path.join(root, "lasp-weights-"));
    const missing = await run({ loadWeights: "llama" }, deps({ cwd }));
    expect(missing.code).toBe(2);
    expect(missing.err).toContain(`lasp: --load-weights llama: ${path.join(cwd, "llama")} does not exist`);
    await mkdir(path.join(cwd, "llama"));
    const ok = await run({ loadWeights: "llama" }, deps({ cwd }));
    expect(ok.code).toBe(0);
    expect((await record(folderOf(ok.err, cwd))).launch[0]).toContain(
      `--load-weights ${path.join(cwd, "llama")}`,
    );
    const twice = await run(
      { loadWeights: "llama", programArgs: ["--load-weights", "llama"] },
      deps({ cwd }),
    );
    expect(twice.code).toBe(2);
    expect(twice.err).toBe("lasp: --load-weights is given twice (before and after `--`): give it once\n");
    const resumed = await run({ loadWeights: "llama", resume: true }, deps({ cwd }));
    expect(resumed.code).toBe(2);
    expect(resumed.err).toBe("lasp: --resume continues from the checkpoint's weights: drop --load-weights\n");
    expect(
      await run({ programArgs: ["--load-weights", "llama"], resume: true }, deps({ cwd })),
    ).toMatchObject({
      code: 2,
    });
  });

  it("stops before the build on a token file too short for one step or cut short, at the setting, with its numbers", async () => {
    const cwd = await mkdtemp(path.join(root, "short-data-"));
    const spec = path.join(cwd, "train.lasp");
    const text = await readFile(SPEC, "utf8");
    const seqLen = Number(/seq_len (\d+)K/.exec(text)![1]) * 1024;
    // One window short of the one step needs (batch 1 x data 1), then a file whose header counts more than it holds.
    await writeFile(path.join(cwd, "few.bin"), encodeTokenFile(GPT2_FORMAT, new Uint16Array(seqLen)));
    const whole = encodeTokenFile(GPT2_FORMAT, new Uint16Array(4 * seqLen));
    await writeFile(path.join(cwd, "cut.bin"), whole.subarray(0, 2048));
    await writeFile(
      spec,
      text.replace(/mode verify/, 'mode train  data "few.bin"  eval_data "cut.bin"  eval_every 2'),
    );
    const r = await run({}, deps({ cwd }), spec);
    expect(r.code).toBe(2);
    const line = text.split("\n").findIndex((l) => l.includes("mode verify")) + 1;
    expect(r.err).toContain(`${spec}:${line}:`);
    expect(r.err).toContain(
      `\`data\`: the token file ${path.join(cwd, "few.bin")} holds ${seqLen} tokens: 0 windows, fewer than the 1 that one step reads (batch 1 x accumulate 1); a window is seq_len ${seqLen} tokens and the one after`,
    );
    expect(r.err).toContain(
      `\`eval_data\`: ${path.join(cwd, "cut.bin")}: 2048 bytes, but its header counts ${4 * seqLen} tokens`,
    );
    expect(r.err).toContain("(truncated, or still being written?)");
    expect(existsSync(path.join(cwd, "runs"))).toBe(false);
    // One more token makes the first window, the whole file its size: nothing left to say.
    await writeFile(path.join(cwd, "few.bin"), encodeTokenFile(GPT2_FORMAT, new Uint16Array(seqLen + 1)));
    await writeFile(path.join(cwd, "cut.bin"), whole);
    const checked = checkSource(spec, await readFile(spec, "utf8"));
    expect(trainTokenFiles(checked.ast!, checked.spec!, cwd).problems).toEqual([]);
    // Without eval_every the program never opens eval_data (W0607 says so): a cut file there is not stopped on.
    await writeFile(path.join(cwd, "cut.bin"), whole.subarray(0, 2048));
    const unused = checkSource(
      spec,
      text.replace(/mode verify/, 'mode train  data "few.bin"  eval_data "cut.bin"'),
    );
    expect(trainTokenFiles(unused.ast!, unused.spec!, cwd).problems).toEqual([]);
  });

  it("stops before the build where `tokenizer bytes` meets data of another tokenizer, naming the first such token", async () => {
    const cwd = await mkdtemp(path.join(root, "bytes-"));
    const spec = path.join(cwd, "bytes.lasp");
    const text = await readFile(SPEC, "utf8");
    await writeFile(spec, text.replace(/mode verify/, 'mode train  data "gpt2.bin"  tokenizer bytes'));
    const seqLen = checkSource(spec, await readFile(spec, "utf8")).spec!.run.seqLen;
    const tokens = new Uint16Array(2 * seqLen + 1).fill(104);
    tokens[5] = 50256;
    await writeFile(path.join(cwd, "gpt2.bin"), encodeTokenFile(GPT2_FORMAT, tokens));
    const r = await run({}, deps({ cwd }), spec);
    expect(r.code).toBe(2);
    const line = text.split("\n").findIndex((l) => l.includes("mode verify")) + 1;
    expect(r.err).toContain(`${spec}:${line}:`);
    expect(r.err).toContain(
      `\`tokenizer\`: \`tokenizer bytes\` writes a byte tokenizer, but token 5 of ${path.join(cwd, "gpt2.bin")} is 50256, not a byte`,
    );
    expect(r.err).toContain('`tokenizer "gpt2"`');
    expect(existsSync(path.join(cwd, "runs"))).toBe(false);
    // Bytes only: nothing to say.
    tokens[5] = 255;
    await writeFile(path.join(cwd, "gpt2.bin"), encodeTokenFile(GPT2_FORMAT, tokens));
    const checked = checkSource(spec, await readFile(spec, "utf8"));
    expect(await bytesTokenizerMismatch(checked.ast!, checked.spec!, cwd)).toBeUndefined();
  });

  it("stops before the build on token ids past the vocabulary, an llm.c file with `documents index`, and a quoted `bytes`", async () => {
    const cwd = await mkdtemp(path.join(root, "ids-"));
    const spec = path.join(cwd, "ids.lasp");
    const text = await readFile(SPEC, "utf8");
    const line = text.split("\n").findIndex((l) => l.includes("mode verify")) + 1;
    await writeFile(spec, text.replace(/mode verify/, 'mode train  data "gpt2.bin"'));
    const seqLen = checkSource(spec, await readFile(spec, "utf8")).spec!.run.seqLen;
    const tokens = new Uint16Array(2 * seqLen + 1).fill(104);
    tokens[9] = 50256; // GPT-2's end of text, past tiny-linear's vocab 512
    await writeFile(path.join(cwd, "gpt2.bin"), encodeTokenFile(GPT2_FORMAT, tokens));
    const r = await run({}, deps({ cwd }), spec);
    expect(r.code).toBe(2);
    expect(r.err).toContain(
      `${spec}:${line}:${text.split("\n")[line - 1]!.indexOf("mode verify") + 1 + "mode train  ".length}: error: \`data\`: token 9 of ${path.join(cwd, "gpt2.bin")} is 50256, outside the vocabulary [0, 512)`,
    );
    expect(r.err).toContain("at least 50257");
    expect(existsSync(path.join(cwd, "runs"))).toBe(false);
    const fits = checkSource(spec, await readFile(spec, "utf8"));
    tokens[9] = 511;
    await writeFile(path.join(cwd, "gpt2.bin"), encodeTokenFile(GPT2_FORMAT, tokens));
    expect(await tokensOutsideVocab(fits.ast!, fits.spec!, cwd)).toBeUndefined();
    // `documents index` needs a Megatron index: an llm.c file is refused before the build, not after it.
    await writeFile(spec, text.replace(/mode verify/, 'mode train  data "gpt2.bin"  documents index'));
    const index = await run({}, deps({ cwd }), spec);
    expect(index.code).toBe(2);
    expect(index.err).toContain(
      `\`data\`: ${path.join(cwd, "gpt2.bin")} is an llm.c token file, and \`documents index\` reads where documents end from a Megatron dataset's index (PREFIX.idx)`,
    );
    // `tokenizer "bytes"` names a folder; the hint says the word goes without quotes.
    await writeFile(spec, text.replace(/mode verify/, 'mode train  data "gpt2.bin"  tokenizer "bytes"'));
    const quoted = await run({}, deps({ cwd }), spec);
    expect(quoted.code).toBe(2);
    expect(quoted.err).toContain("= hint: write the word without quotes: `tokenizer bytes`");
  });

  it("stops before the build on a Megatron dataset missing a part or with a bad index, in the program's words", async () => {
    const cwd = await mkdtemp(path.join(root, "megatron-"));
    const spec = path.join(cwd, "meg.lasp");
    const text = await readFile(SPEC, "utf8");
    await writeFile(spec, text.replace(/mode verify/, 'mode train  data "corpus"'));
    const seqLen = checkSource(spec, await readFile(spec, "utf8")).spec!.run.seqLen;
    const prefix = path.join(cwd, "corpus");
    const { bin, idx } = megatronParts(2 * seqLen + 1);
    await writeFile(`${prefix}.bin`, bin);
    const noIndex = await run({}, deps({ cwd }), spec);
    expect(noIndex.code).toBe(2);
    expect(noIndex.err).toContain(
      `\`data\`: the Megatron dataset ${prefix} has no index: ${prefix}.idx is missing beside ${prefix}.bin`,
    );
    await writeFile(`${prefix}.idx`, idx.subarray(0, idx.length - 3));
    const cut = await run({}, deps({ cwd }), spec);
    expect(cut.code).toBe(2);
    expect(cut.err).toContain(`${prefix}.idx is truncated: its header announces 1 sequences`);
    await writeFile(`${prefix}.idx`, idx);
    const ok = await run({ dryRun: true }, deps({ cwd }), spec);
    expect(ok.err).not.toContain("error");
    expect(ok.out).toContain(`--data ${prefix}`);
  });

  it("--resume DIR takes a run folder's newest checkpoint or a checkpoint folder, and passes its absolute path", async () => {
    const cwd = await mkdtemp(path.join(root, "resume-dir-"));
    const first = await run({ mode: "train", steps: "4", runDir: "runs/first" }, deps({ cwd }));
    expect(first.code).toBe(0);
    const checkpoints = path.join(cwd, "runs/first/checkpoints");
    const fromRun = await run({ resume: "runs/first", dryRun: true }, deps({ cwd }));
    expect(fromRun.code).toBe(0);
    expect(fromRun.out).toContain(`--mode train --run-dir ${path.join(cwd, "runs", "tiny-linear-")}`);
    expect(fromRun.out).toContain(`--resume ${path.join(checkpoints, "step-000004")} &`);
    const fromCheckpoint = await run(
      { resume: "runs/first/checkpoints/step-000002", dryRun: true },
      deps({ cwd }),
    );
    expect(fromCheckpoint.out).toContain(`--resume ${path.join(checkpoints, "step-000002")} &`);
    // --resume alone finds the run by its run.json, whatever --run-dir named it.
    const newest = await run({ resume: true, dryRun: true, runDir: "runs/second" }, deps({ cwd }));
    expect(newest.out).toContain(
      `--run-dir ${path.join(cwd, "runs/second")} --resume ${path.join(checkpoints, "step-000004")} &`,
    );
  });

  it("refuses before the build a checkpoint the program would refuse: its trainer_state.json, model or files (exit 2)", async () => {
    const cwd = await mkdtemp(path.join(root, "resume-bad-"));
    const first = await run({ mode: "train", steps: "4", runDir: "runs/first" }, deps({ cwd }));
    expect(first.code).toBe(0);
    const newest = "runs/first/checkpoints/step-000004";
    const state = path.join(cwd, newest, "trainer_state.json");
    const good = await readFile(state, "utf8");
    /** `why` a string: the whole reason; a pattern: the reason's end (V8 words JSON's errors its own way). */
    const refused = async (text: string, why: string | RegExp, hint: string) => {
      await writeFile(state, text);
      for (const dryRun of [true, false]) {
        const r = await run({ resume: true, dryRun }, deps({ cwd }));
        expect(r.code).toBe(2);
        const said = `lasp: --resume: cannot resume from ${newest}: `;
        expect(lines(r.err)).toEqual([
          typeof why === "string" ? said + why : expect.stringMatching(new RegExp(`^${said}${why.source}`)),
          `  = hint: ${hint}`,
        ]);
        expect(r.out).toBe("");
      }
    };
    const older = `continue from another checkpoint of that run: lasp run ${SPEC} --resume runs/first/checkpoints/step-000002`;
    await refused("garbage\n", new RegExp(`${newest}/trainer_state.json is not valid JSON: [^\\n]+$`), older);
    await refused(
      good.replace(/ *"data_position": \d+,\n/, ""),
      `${newest}/trainer_state.json lacks "data_position" (a whole number)`,
      older,
    );
    // Another model's: the hash the program compares with its own.
    const hash = /"spec_hash": "([0-9a-f]{16})"/.exec(good)![1]!;
    await refused(
      good.replace(hash, "0000000000000000"),
      `it was written for another model (model hash 0000000000000000, this run's is ${hash})`,
      older,
    );
    // Nothing else to go back to: the plain hint.
    await rm(path.join(cwd, "runs/first/checkpoints/step-000002"), { recursive: true });
    await writeFile(state, good);
    await rm(path.join(cwd, newest, "optimizer-rank-1-of-2.safetensors"));
    await refused(
      good,
      "it lacks optimizer-rank-1-of-2.safetensors",
      "name another checkpoint with --resume CHECKPOINT_FOLDER, or start afresh without --resume",
    );
    // Only the first run's folder: nothing was made.
    expect(await readdir(path.join(cwd, "runs"))).toEqual(["first"]);
  });

  it("says where it looked when there is nothing to resume, and refuses --resume outside train mode (exit 2)", async () => {
    const cwd = await mkdtemp(path.join(root, "resume-none-"));
    const none = await run({ resume: true }, deps({ cwd }));
    expect(none.code).toBe(2);
    expect(lines(none.err)).toEqual([
      `lasp: --resume: no run folders to resume from: ${path.join(cwd, "runs")} does not exist`,
      `  Name one: lasp run ${SPEC} --resume RUN_FOLDER (its newest checkpoint) or --resume CHECKPOINT_FOLDER`,
    ]);
    await writeFile(path.join(cwd, "notes.txt"), "mine");
    const file = await run({ resume: "notes.txt" }, deps({ cwd }));
    expect(file.code).toBe(2);
    expect(file.err).toContain("lasp: --resume: notes.txt is a file, not a checkpoint or run folder");
    const bench = await run({ resume: true, mode: "bench" }, deps({ cwd }));
    expect(bench.code).toBe(2);
    expect(bench.err).toContain(
      "lasp: --resume continues a training run (mode train); it cannot run --mode bench",
    );
    expect(await readdir(cwd)).toEqual(["notes.txt"]);
  });

  it("takes SIGTERM (Slurm's preemption) as it takes Ctrl-C, and leaves both alone after the run", () => {
    const seen: string[] = [];
    const listeners = (): number[] => [process.listenerCount("SIGINT"), process.listenerCount("SIGTERM")];
    const before = listeners();
    const remove = onStopSignals(() => seen.push("stop"));
    process.emit("SIGTERM");
    process.emit("SIGINT");
    expect(seen).toEqual(["stop", "stop"]);
    remove();
    expect(listeners()).toEqual(before);
  });

  /** Starts a training run that is interrupted (once or twice) when rank 0's step line `at` is shown. */
  async function interrupted(times: number, at: string, env: NodeJS.ProcessEnv) {
    const cwd = await mkdtemp(path.join(root, "stop-"));
    let interrupt: (() => void) | undefined;
    const d = deps(
      // The failure grace is short; a training run's Ctrl-C waits for the checkpoint (trainGraceMs, 10 min).
      {
        cwd,
        killGraceMs: 50,
        onInterrupt: (handler) => ((interrupt = handler), () => (interrupt = undefined)),
      },
      { FIXTURE_STEP_MS: "50", ...env },
    );
    const io = capture();
    const code = await runCommand(
      SPEC,
      { mode: "train", steps: "100" },
      {
        ...io,
        stderr: (t) => {
          io.stderr(t);
          if (t.startsWith(at)) for (let i = 0; i < times; i++) interrupt?.();
        },
      },
      d,
    );
    return { code, err: io.err, cwd, folder: folderOf(io.err, cwd) };
  }

  it("on Ctrl-C or SIGTERM lets the ranks finish their step and write a checkpoint, then says how to resume (exit 130)", async () => {
    const r = await interrupted(1, "step 2/", { FIXTURE_CHECKPOINT_MS: "300" });
    expect(r.code).toBe(130);
    const rel = path.relative(r.cwd, r.folder);
    expect(r.err).toContain(
      "lasp: stopping: the ranks are finishing their step and writing a checkpoint (press Ctrl-C again to kill them)\n",
    );
    const stopped = /^lasp: stopped after step (\d+); checkpoint written: (\S+)$/m.exec(r.err);
    expect(stopped).not.toBeNull();
    expect(stopped![2]).toBe(`${rel}/checkpoints/step-${stopped![1]!.padStart(6, "0")}`);
    expect(existsSync(path.join(r.cwd, stopped![2]!, "trainer_state.json"))).toBe(true);
    expect(r.err).toContain(`\n  continue with: lasp run ${SPEC} --resume ${rel}\n`);
    expect(r.err).toContain("training over 2 ranks (stopped early)");
    expect((await record(r.folder)).exit).toEqual({
      code: 130,
      status: "interrupted",
      checkpoint: path.join(r.cwd, stopped![2]!),
    });
    expect(await readFile(path.join(r.folder, "stderr.log"), "utf8")).toContain("lasp: stopping: the ranks");
  });

  it("kills the ranks at once on a second Ctrl-C, and says no checkpoint was written on the way out", async () => {
    const r = await interrupted(2, "step 1/", { FIXTURE_CHECKPOINT_MS: "5000" });
    expect(r.code).toBe(130);
    expect(r.err).toContain("lasp: killing the ranks\n");
    expect(r.err).toContain("lasp: interrupted; the ranks ended before writing a checkpoint\n");
    expect((await record(r.folder)).exit).toEqual({ code: 130, status: "interrupted" });
  });

  it("names the step of a non-finite loss and the checkpoint kept (exit 6)", async () => {
    const cwd = await mkdtemp(path.join(root, "nan-"));
    const r = await run({ mode: "train", steps: "5" }, deps({ cwd }, { FIXTURE_NONFINITE_STEP: "3" }));
    expect(r.code).toBe(6);
    const rel = path.relative(cwd, folderOf(r.err, cwd));
    expect(r.err).toContain(
      `lasp: stopped: non-finite loss or gradient norm at step 4; the last checkpoint is kept: ${rel}/checkpoints/step-000002\n` +
        `  continue from it with: lasp run ${SPEC} --resume ${rel}\n`,
    );
    expect((await record(folderOf(r.err, cwd))).exit).toMatchObject({ code: 6, status: "non-finite" });
  });
  it("--no-checkpoints writes none, says so, and stops on a signal with nothing to resume; only in train mode", async () => {
    const cwd = await mkdtemp(path.join(root, "no-checkpoints-"));
    const r = await run({ mode: "train", steps: "5", checkpoints: false }, deps({ cwd }));
    expect(r.code).toBe(0);
    const folder = folderOf(r.err, cwd);
    expect((await record(folder)).launch[0]).toContain(`--run-dir ${folder} --no-checkpoints`);
    expect(r.err).toContain("[run] checkpoints: off (--no-checkpoints): nothing to resume\n");
    expect(existsSync(path.join(folder, "checkpoints"))).toBe(false);
    expect(r.err).not.toContain("last checkpoint");

    // After `--` it means the same to lasp as to the program; a signal stops the run after its step.
    const stop = await run(
      { mode: "train", steps: "5", programArgs: ["--no-checkpoints"] },
      deps({ cwd }, { FIXTURE_STOP_STEP: "3" }),
    );
    expect(stop.code).toBe(130);
    expect(stop.err).toContain("lasp: stopped after step 3; no checkpoint written (--no-checkpoints)\n");
    expect(stop.err).not.toContain("continue with");
    expect(existsSync(path.join(folderOf(stop.err, cwd), "checkpoints"))).toBe(false);

    const bench = await run({ mode: "bench", checkpoints: false }, deps({ cwd }));
    expect(bench.code).toBe(2);
    expect(lines(bench.err)).toEqual([
      "lasp: --no-checkpoints applies to train mode, and this run is --mode bench",
      "  = hint: drop --no-checkpoints, or add --mode train",
    ]);
  });
});

describe("lasp run on the command line", () => {
  it("is listed with its options and exit codes", async () => {
    const io = capture();
    expect(await main(["run", "--help"], io)).toBe(0);
    expect(io.out).toContain("--launcher <name>");
    expect(io.out).toContain("--dry-run");
    expect(io.out).toContain("--run-dir <dir>");
    expect(io.out).toContain("--resume [dir]");
    expect(io.out).toContain("lasp run spec.lasp --resume runs/NAME");
    expect(io.out).toContain("4 the build failed");
    const top = capture();
    await main(["--help"], top);
    expect(top.out).toContain("lasp run examples/tiny-linear.lasp");
  });
});
