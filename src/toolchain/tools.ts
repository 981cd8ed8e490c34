// Finds the build tools of the generated program: nvcc (required) and cmake (preferred; without it the
// program's build.sh builds with nvcc alone), with their versions.
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";

export interface Tool {
  /** Absolute path of the executable. */
  path: string;
  /** "13.0.88" for nvcc, "3.25.1" for cmake; undefined when `--version` did not say. */
  version: string | undefined;
}

export interface Toolchain {
  nvcc: Tool | undefined;
  cmake: Tool | undefined;
}

export interface FindToolsOptions {
  env?: NodeJS.ProcessEnv;
  /** Runs `tool --version`; injectable for tests. */
  version?: (file: string) => Promise<string>;
}

/** Where nvcc lives when the CUDA toolkit is installed but not on PATH. */
export function nvccFallbacks(env: NodeJS.ProcessEnv): string[] {
  const dirs = [env["CUDA_HOME"], env["CUDA_PATH"], "/usr/local/cuda"].filter(
    (d): d is string => d !== undefined && d !== "",
  );
  return [...new Set(dirs.map((d) => path.join(d, "bin", "nvcc")))];
}

/** The first executable named `name` on PATH, like `which`. */
export async function which(name: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  for (const dir of (env["PATH"] ?? "").split(path.delimiter)) {
    if (dir === "") continue;
    const candidate = path.resolve(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

export async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** The version number in `nvcc --version` ("release 13.0, V13.0.88") or `cmake --version` output. */
export function parseVersion(text: string): string | undefined {
  const nvcc = /\bV(\d+\.\d+(?:\.\d+)?)/.exec(text) ?? /release (\d+\.\d+)/.exec(text);
  if (nvcc) return nvcc[1];
  const other = /version (\d+\.\d+(?:\.\d+)?)/.exec(text);
  return other?.[1];
}

const defaultVersion = async (file: string): Promise<string> =>
  (await execa(file, ["--version"], { timeout: 20_000, stdin: "ignore" })).stdout;

async function describe(file: string | undefined, options: FindToolsOptions): Promise<Tool | undefined> {
  if (file === undefined) return undefined;
  let version: string | undefined;
  try {
    version = parseVersion(await (options.version ?? defaultVersion)(file));
  } catch {
    version = undefined;
  }
  return { path: file, version };
}

/** Looks for nvcc (PATH, then $CUDA_HOME, $CUDA_PATH, /usr/local/cuda) and cmake (PATH). */
export async function findTools(options: FindToolsOptions = {}): Promise<Toolchain> {
  const env = options.env ?? process.env;
  let nvcc = await which("nvcc", env);
  for (const candidate of nvcc === undefined ? nvccFallbacks(env) : []) {
    if (await isExecutable(candidate)) {
      nvcc = candidate;
      break;
    }
  }
  const cmake = await which("cmake", env);
  const [nvccTool, cmakeTool] = await Promise.all([describe(nvcc, options), describe(cmake, options)]);
  return { nvcc: nvccTool, cmake: cmakeTool };
}

/** How to get a missing tool, for messages. */
export const HOW_TO_GET = {
  nvcc: [
    "Install the CUDA toolkit (https://developer.nvidia.com/cuda-downloads; 12.4 or newer for sm_90a),",
    "or put its bin folder on PATH: export PATH=/usr/local/cuda/bin:$PATH (or set CUDA_HOME).",
  ],
  cmake: [
    "Install CMake 3.24 or newer: `pip install cmake`, `apt-get install cmake` or https://cmake.org/download/.",
  ],
} as const;
