// The runtime headers' host-only logic (safetensors.cuh, token_files.cuh) is tested through small C++ harnesses
// compiled with g++ under every warning, no CUDA needed: where g++ is missing the suites skip.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

export const gxx = spawnSync("g++", ["--version"]).status === 0;

/**
 * Compiles test/NAME against templates/runtime into `out` (with `extra` flags: `-shared -fPIC` for a stand-in
 * library); g++'s status and stderr (empty when clean).
 */
export function buildHarness(
  name: string,
  out: string,
  extra: readonly string[] = [],
): { status: number | null; stderr: string } {
  const build = spawnSync(
    "g++",
    [
      "-std=c++17",
      "-O1",
      "-Wall",
      "-Wextra",
      "-Werror",
      "-pedantic",
      "-pthread",
      "-I",
      join(root, "templates/runtime"),
    ].concat([...extra, join(root, "test", name), "-o", out]),
    { encoding: "utf8" },
  );
  return { status: build.status, stderr: build.stderr };
}
