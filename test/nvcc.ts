// The nvcc tests' side of vitest: whether they run (test/global-setup.ts decides once per run), the compiler
// through the cache of test/nvcc-cache.ts, and the flags that make a check cheap without making it weaker.
// LASP_NVCC_CACHE=off compiles everything anew; LASP_NVCC_CACHE_DIR moves the cache.
import { inject, it, type TestContext } from "vitest";
import { createNvcc, type Nvcc } from "./nvcc-cache.js";
import { detectNvcc, nvccCacheRoot, type NvccToolchain } from "./nvcc-toolchain.js";

export type { NvccResult } from "./nvcc-cache.js";

/**
 * Device code at -O0 for checks: every stage that can reject the code still runs (the C++ front end, NVVM,
 * ptxas for the architecture, which rejects an instruction the target lacks), but the optimizers, which
 * reject nothing, took 70-80% of a kernels compile (sm_90a 34 s -> 10 s of CPU, sm_80 21 s -> 4 s here).
 */
export const UNOPTIMIZED_DEVICE_CODE = ["-Xcicc", "-O0", "-Xptxas", "-O0"];

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
