import { access, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BuildError,
  buildGeneratedProgram,
  buildStepOf,
  cacheKey,
  defaultCacheRoot,
  excerptOf,
  planBuild,
  readSourceTree,
  type BuildResult,
} from "./build.js";
import { formatCommand, shellQuote } from "../text/shell-text.js";
import { fixtureFiles } from "./test-program.js";
import { which } from "./tools.js";

let root: string;
let cmake: string;
let first: BuildResult;
const steps: string[] = [];

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "lasp-build-test-"));
  cmake = (await which("cmake"))!;
  first = await buildGeneratedProgram(fixtureFiles(), {
    cacheRoot: root,
    cmake,
    jobs: 2,
    onStep: (s) => steps.push(s),
  });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("building a generated program", () => {
  it("writes the sources into the cache folder named by their hash and builds lasp_program with cmake", async () => {
    expect(first.cached).toBe(false);
    expect(first.builder).toBe("cmake");
    expect(first.cacheDir).toBe(path.join(root, first.key));
    expect(first.key).toMatch(/^[0-9a-f]{16}$/);
    expect(first.binary).toBe(path.join(root, first.key, "build", "lasp_program"));
    expect(await readFile(path.join(first.sourceDir, "main.cpp"), "utf8")).toBe(
      fixtureFiles().get("main.cpp"),
    );
    const log = await readFile(first.logPath, "utf8");
    expect(log).toContain("$ cd ");
    expect(log).toContain("-DCMAKE_CUDA_ARCHITECTURES=90a");
    expect(log).toMatch(/Linking CXX executable lasp_program/);
    expect(steps).toContain("configuring");
    expect(steps).toContain("compiling main.cpp");
    expect(steps).toContain("linking lasp_program");
    const run = await execa(first.binary, ["--rank", "0", "--world", "1", "--steps", "1"]);
    expect(run.stdout).toContain('"event":"summary"');
  });

  it("returns at once the second time, without running any tool", async () => {
    const started = Date.now();
    const logBefore = await stat(first.logPath);
    // A cmake that does not exist proves that nothing is run.
    const again = await buildGeneratedProgram(fixtureFiles(), {
      cacheRoot: root,
      cmake: "/nonexistent/cmake",
    });
    expect(again.cached).toBe(true);
    expect(again.binary).toBe(first.binary);
    expect(Date.now() - started).toBeLessThan(1000);
    expect((await stat(first.logPath)).mtimeMs).toBe(logBefore.mtimeMs);
  });

  it("keys the cache by contents and options", () => {
    const files = fixtureFiles();
    const base = planBuild(files, { cacheRoot: root, cmake });
    expect(planBuild(new Map(files), { cacheRoot: root, cmake }).key).toBe(base.key);
    expect(planBuild(files, { cacheRoot: root, cmake, arch: "80" }).key).not.toBe(base.key);
    expect(planBuild(files, { cacheRoot: root }).key).not.toBe(base.key);
    const edited = new Map(files).set("main.cpp", `${files.get("main.cpp")}\n// edited\n`);
    expect(planBuild(edited, { cacheRoot: root, cmake }).key).not.toBe(base.key);
    // Moving contents between names changes the key.
    expect(cacheKey(new Map([["a", "bc"]]), [])).not.toBe(cacheKey(new Map([["ab", "c"]]), []));
  });

  it("reports a failing build with the log, the compiler's error and a cd-prefixed repro command", async () => {
    const error = await buildGeneratedProgram(fixtureFiles({ broken: true }), {
      cacheRoot: root,
      cmake,
      jobs: 2,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BuildError);
    const failure = error as BuildError;
    expect(failure.message).toMatch(/^cmake --build exited with code [1-9]/);
    expect(failure.exitCode).toBeGreaterThan(0);
    expect(failure.excerpt.join("\n")).toContain("this_is_not_declared");
    expect(await readFile(failure.logPath, "utf8")).toContain("this_is_not_declared");
    const dir = path.dirname(failure.logPath);
    expect(failure.repro).toBe(
      `cd ${dir} && ${cmake} -S src -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a && ${cmake} --build build -j 2`,
    );
    // A failed build leaves no stamp, so the next attempt builds again instead of finding a cache hit.
    await expect(access(path.join(dir, "build.json"))).rejects.toThrow();
  });

  it("builds with build.sh when cmake is missing, handing it the architecture", async () => {
    const result = await buildGeneratedProgram(fixtureFiles(), { cacheRoot: root, arch: "80" });
    expect(result.builder).toBe("build.sh");
    expect(result.binary).toBe(path.join(result.sourceDir, "lasp_program"));
    expect(result.repro).toBe(`cd ${result.sourceDir} && ARCH=80 bash build.sh`);
    expect(await readFile(result.logPath, "utf8")).toContain("building for sm_80");
  });

  it("writes the sources to a chosen folder, which becomes part of the key", async () => {
    const out = path.join(root, "out");
    const plan = planBuild(fixtureFiles(), { cacheRoot: root, cmake, sourceDir: out });
    expect(plan.sourceDir).toBe(out);
    expect(plan.key).not.toBe(first.key);
    const files = fixtureFiles();
    const { writeFile, mkdir } = await import("node:fs/promises");
    await mkdir(path.join(out, "build"), { recursive: true });
    for (const [name, text] of files) await writeFile(path.join(out, name), text);
    await writeFile(path.join(out, "build", "junk.o"), "x");
    expect(await readSourceTree(out)).toEqual(files);
  });

  it("rejects generated names outside the program folder", () => {
    expect(() => planBuild(new Map([["../evil.cu", ""]]), { cacheRoot: root, cmake })).toThrow(
      /relative path/,
    );
    expect(() => planBuild(new Map([["/abs.cu", ""]]), { cacheRoot: root, cmake })).toThrow(/relative path/);
  });
});

describe("build helpers", () => {
  it("reads the step out of cmake, make and ninja lines", () => {
    expect(buildStepOf("[ 50%] Building CUDA object CMakeFiles/lasp_program.dir/main.cu.o")).toBe(
      "compiling main.cu",
    );
    expect(buildStepOf("[1/3] Building CUDA object CMakeFiles/lasp_program.dir/src/comm.cu.o")).toBe(
      "compiling comm.cu",
    );
    expect(buildStepOf("[100%] Linking CUDA executable lasp_program")).toBe("linking lasp_program");
    expect(buildStepOf("-- The CUDA compiler identification is NVIDIA 13.0.88")).toBe(
      "configuring (checking compilers)",
    );
    expect(buildStepOf("-- Found MPI: TRUE (found version 3.1)")).toBe("configuring (found MPI)");
    expect(buildStepOf("nvcc -O3 -std=c++17 main.cu -lnccl -o lasp_program")).toBe(
      "compiling main.cu (nvcc)",
    );
    expect(buildStepOf("main.cu(12): warning: something")).toBeUndefined();
  });

  it("shows the compiler's errors with the lines under them", () => {
    const log = [
      "[ 50%] Building CXX object CMakeFiles/lasp_program.dir/main.cpp.o",
      "main.cpp:3:3: error: 'x' was not declared in this scope",
      "    3 |   x = 1;",
      "      |   ^",
      "CMake Error at CMakeLists.txt:17 (message):",
      "  NCCL not found: install it or set NCCL_HOME",
      "",
      "make: *** [all] Error 2",
    ];
    expect(excerptOf(log)).toEqual(log.slice(1, 6));
    expect(excerptOf(["gmake[2]: *** [x.o] Error 2"])).toEqual(["gmake[2]: *** [x.o] Error 2"]);
    expect(excerptOf(["a", "b", "c"], 2)).toEqual(["b", "c"]);
  });

  it("quotes shell words only when needed", () => {
    expect(shellQuote("/usr/bin/cmake")).toBe("/usr/bin/cmake");
    expect(shellQuote("-DX=a b")).toBe("'-DX=a b'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote("")).toBe("''");
    expect(formatCommand("bash", ["build.sh"], { PATH: "/opt/cuda/bin:$PATH", ARCH: "90a" })).toBe(
      'PATH=/opt/cuda/bin:"$PATH" ARCH=90a bash build.sh',
    );
  });

  it("puts the cache under the working directory unless LASP_CACHE_DIR says otherwise", () => {
    expect(defaultCacheRoot("/w", {})).toBe("/w/.lasp-cache");
    expect(defaultCacheRoot("/w", { LASP_CACHE_DIR: "cache" })).toBe("/w/cache");
    expect(defaultCacheRoot("/w", { LASP_CACHE_DIR: "/tmp/c" })).toBe("/tmp/c");
  });
});
