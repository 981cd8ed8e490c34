// Which NVIDIA GPUs this machine has, asked of `nvidia-smi`. A missing `nvidia-smi`, a failing one or an
// empty list all mean "no GPUs"; the reason is kept so `lasp run` can say why.
import { execa } from "execa";

export interface GpuInfo {
  /** The index `nvidia-smi` gives the GPU (before CUDA_VISIBLE_DEVICES). */
  index: number;
  name: string;
  /** Total memory in MiB, or undefined when nvidia-smi did not report a number. */
  memoryMiB: number | undefined;
}

export interface GpuProbe {
  /** The GPUs a CUDA program started from here can use, in device order. */
  gpus: GpuInfo[];
  /** Why the list is empty (nvidia-smi missing or failing), for messages. */
  problem?: string;
}

/** Runs a command and returns its stdout; rejects when it cannot start or exits non-zero. */
export type CommandRunner = (file: string, args: string[]) => Promise<string>;

export interface DetectGpusOptions {
  run?: CommandRunner;
  env?: NodeJS.ProcessEnv;
}

export const NVIDIA_SMI_ARGS = ["--query-gpu=index,name,memory.total", "--format=csv,noheader"];

const defaultRunner: CommandRunner = async (file, args) =>
  (await execa(file, args, { timeout: 20_000, stdin: "ignore" })).stdout;

/** Parses `nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader` output. */
export function parseNvidiaSmi(text: string): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "") continue;
    // The name may itself hold commas in principle; index is first and memory last.
    const first = line.indexOf(",");
    const last = line.lastIndexOf(",");
    if (first < 0 || last <= first) continue;
    const index = Number(line.slice(0, first).trim());
    if (!Number.isInteger(index)) continue;
    const name = line.slice(first + 1, last).trim();
    const memory = /^(\d+(?:\.\d+)?)\s*MiB$/i.exec(line.slice(last + 1).trim());
    gpus.push({ index, name, memoryMiB: memory ? Number(memory[1]) : undefined });
  }
  return gpus;
}

/**
 * Keeps the GPUs that CUDA_VISIBLE_DEVICES lets a program see, in its order. Numeric entries select by
 * index; UUID or MIG entries cannot be matched against this query, so they only limit the count.
 */
export function applyVisibleDevices(gpus: GpuInfo[], visible: string | undefined): GpuInfo[] {
  if (visible === undefined) return gpus;
  const entries = visible
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "");
  const chosen: GpuInfo[] = [];
  for (const entry of entries) {
    if (/^\d+$/.test(entry)) {
      const gpu = gpus.find((g) => g.index === Number(entry));
      // CUDA stops at the first invalid entry.
      if (gpu === undefined) break;
      if (!chosen.includes(gpu)) chosen.push(gpu);
    } else if (/^-/.test(entry)) {
      break;
    } else {
      return gpus.slice(0, Math.min(gpus.length, entries.length));
    }
  }
  return chosen;
}

/** Lists the usable NVIDIA GPUs; never rejects. */
export async function detectGpus(options: DetectGpusOptions = {}): Promise<GpuProbe> {
  const run = options.run ?? defaultRunner;
  const env = options.env ?? process.env;
  let text: string;
  try {
    text = await run("nvidia-smi", NVIDIA_SMI_ARGS);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const problem =
      code === "ENOENT"
        ? "nvidia-smi not found: no NVIDIA driver"
        : `nvidia-smi failed: ${firstLine((error as { stderr?: string }).stderr) ?? firstLine((error as Error).message) ?? "unknown error"}`;
    return { gpus: [], problem };
  }
  const all = parseNvidiaSmi(text);
  const gpus = applyVisibleDevices(all, env["CUDA_VISIBLE_DEVICES"]);
  if (all.length === 0) return { gpus, problem: "nvidia-smi lists no GPUs" };
  if (gpus.length === 0) {
    return { gpus, problem: `CUDA_VISIBLE_DEVICES=${env["CUDA_VISIBLE_DEVICES"] ?? ""} hides every GPU` };
  }
  return { gpus };
}

function firstLine(text: string | undefined): string | undefined {
  const line = text
    ?.split("\n")
    .map((l) => l.trim())
    .find((l) => l !== "");
  return line === undefined || line === "" ? undefined : line;
}

/** "2 x NVIDIA H100 80GB HBM3 (81559 MiB)" style summary of a GPU list. */
export function describeGpus(gpus: GpuInfo[]): string {
  const groups = new Map<string, number>();
  for (const gpu of gpus) {
    const key = gpu.memoryMiB === undefined ? gpu.name : `${gpu.name} (${gpu.memoryMiB} MiB)`;
    groups.set(key, (groups.get(key) ?? 0) + 1);
  }
  return [...groups].map(([name, n]) => `${n} x ${name}`).join(", ");
}
