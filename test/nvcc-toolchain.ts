// Whether the nvcc tests run, decided once per `vitest run` by test/global-setup.ts and handed to the test
// workers (vitest's provide/inject). No vitest imports here: the global setup runs outside the workers.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface NvccToolchain {
  /** True when nvcc answers and LASP_SKIP_NVCC is not set. */
  available: boolean;
  /** Why the nvcc tests are skipped ("" when they run); shown next to every skipped test. */
  reason: string;
  /** `nvcc --version` and the host compiler's `--version`: part of every cache key (test/nvcc.ts). */
  versions: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    nvcc: NvccToolchain;
  }
}

/** LASP_SKIP_NVCC=1 (`npm run test:fast`) turns the nvcc tests off; empty or 0 leaves them on. */
export function nvccSkippedByEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env["LASP_SKIP_NVCC"];
  return value !== undefined && value !== "" && value !== "0";
}

export function detectNvcc(env: NodeJS.ProcessEnv = process.env): NvccToolchain {
  if (nvccSkippedByEnv(env)) {
    return { available: false, reason: "LASP_SKIP_NVCC is set (npm run test:fast)", versions: "" };
  }
  const nvcc = spawnSync("nvcc", ["--version"], { encoding: "utf8", env });
  if (nvcc.status !== 0) return { available: false, reason: "nvcc not found on PATH", versions: "" };
  // nvcc compiles host code with the gcc on PATH; a different gcc may accept different code.
  const host = spawnSync("gcc", ["--version"], { encoding: "utf8", env });
  return { available: true, reason: "", versions: `${nvcc.stdout}\n${host.stdout ?? ""}` };
}

/** Where test/nvcc-cache.ts stores compiles: node_modules/.cache/lasp-nvcc, or LASP_NVCC_CACHE_DIR. */
export function nvccCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  return env["LASP_NVCC_CACHE_DIR"] ?? join(root, "node_modules", ".cache", "lasp-nvcc");
}
