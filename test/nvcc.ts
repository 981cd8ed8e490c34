// The nvcc tests' side of vitest: whether they run (test/global-setup.ts decides once per run), the compiler
// through the cache of test/nvcc-cache.ts, and the flags that make a check cheap without making it weaker.
// LASP_NVCC_CACHE=off compiles everything anew; LASP_NVCC_CACHE_DIR moves the cache.
import { inject, it, type TestContext } from "vitest";
import { createNvcc, type Nvcc } from "./nvcc-cache.js";
import { detectNvcc, nvccCacheRoot, type NvccToolchain } from "./nvcc-toolchain.js";

export type { NvccResult } from "./nvcc-cache.js";

/**
 * Device code compiled for the speed of the compile, for checks: every stage that can reject the code still runs
 * (the C++ front end, NVVM, ptxas for the architecture, which rejects an instruction the target lacks or too much
 * shared memory), but not the optimizations, which reject nothing: nvcc 12.8's fast-compile level where there
 * (a third faster again than -O0 on the kernels), else cicc's and ptxas's -O0.
 */
export function unoptimizedDeviceCode(): string[] {
  const release = /release (\d+)\.(\d+)/.exec(nvccToolchain().versions);
  const fastCompile = release !== null && Number(release[1]) * 100 + Number(release[2]) >= 1208;
  return fastCompile ? ["-Ofc=max"] : ["-Xcicc", "-O0", "-Xptxas", "-O0"];
}

/** Host code through every check (gcc's included) without writing an object file, where nothing links it. */
export const HOST_SYNTAX_ONLY = ["-Xcompiler", "-fsyntax-only"];

/**
 * A generated program's main.cu through nvcc's host compiler alone (`-x c++`: main.cu holds no device code, so
 * no device pass; seconds instead of half a minute), type-checked against the given include folders.
 */
export const mainHostCheck = (...includes: string[]): string[] => [
  "-std=c++17",
  "-x",
  "c++",
  ...HOST_SYNTAX_ONLY,
  "-I.",
  "-Ilasp",
  ...includes.map((dir) => `-I${dir}`),
  "-c",
  "main.cu",
];

/** The same host-only compile of main.cu, kept as main.o: its undefined symbols for a link check. */
export const mainHostObject = (...includes: string[]): string[] => [
  ...mainHostCheck(...includes).filter((arg) => !HOST_SYNTAX_ONLY.includes(arg)),
  "-o",
  "main.o",
];

let toolchain: NvccToolchain | undefined;
/** What test/global-setup.ts found; detected here when a file runs without it. */
export function nvccToolchain(): NvccToolchain {
  toolchain ??= inject("nvcc") ?? detectNvcc();
  return toolchain;
}

export const nvcc: Nvcc = createNvcc({
  command: "nvcc",
  cacheRoot: process.env["LASP_NVCC_CACHE"] === "off" ? undefined : nvccCacheRoot(),
  versions: () => nvccToolchain().versions,
});

/**
 * A test that needs nvcc. Concurrent, so that the distinct compiles of one file share the cores (use the
 * context's `expect`); skipped, with the reason in the report, where nvcc is missing or LASP_SKIP_NVCC is
 * set.
 */
export function itWithNvcc(
  name: string,
  body: (context: TestContext) => Promise<void>,
  timeout: number,
): void {
  it.concurrent(
    name,
    async (context) => {
      const found = nvccToolchain();
      if (!found.available) context.skip(`nvcc skipped: ${found.reason}`);
      await body(context);
    },
    timeout,
  );
}
