// Machine profiles: what one GPU model and its links can do, as data (profiles/*.json, documented in
// profiles/README.md), every number with its source. This module validates a profile (a shipped one, or a
// user's file for `--machine FILE`) and turns it into the two small views the rest of the cost model reads
// today: the simulator's `Machine` and the memory model's `Gpu`. The shipped H100 profile is the one source of
// the defaults (machine.ts's DEFAULT_MACHINE, memory.ts's H100).
import { readFileSync } from "node:fs";
import { describeReadError, errorCode } from "../io/write-error.js";
import h100Sxm80 from "./profiles/h100-sxm-80gb.json" with { type: "json" };
import h200141 from "./profiles/h200-141gb.json" with { type: "json" };
import a100Sxm80 from "./profiles/a100-sxm-80gb.json" with { type: "json" };
import a100Sxm40 from "./profiles/a100-sxm-40gb.json" with { type: "json" };

/** The machine model the schedule simulator times on (machine.ts says how each number is used). */
export interface Machine {
  name: string;
  /** Attainable dense bf16 tensor-core throughput of the attention kernels on one GPU, FLOP/s. */
  computeFlops: number;
  /** cuBLAS's attainable GEMM rate, FLOP/s: the projections that `host` steps run inside a pass. */
  gemmFlops: number;
  /** The same for lasp's softmax backward (machine.ts: the steps that run it), FLOP/s. */
  laspSoftmaxBackwardFlops: number;
  /** cuDNN's fused attention on a rank's gathered query pieces (LASP-2H), FLOP/s (machine.ts). */
  gatheredAttentionFlops: number;
  /** Attainable device-memory (HBM) bandwidth of one GPU, B/s. */
  memoryBandwidth: number;
  /** What lasp's linear-attention kernels attain over the bytes their IR steps count, B/s (machine.ts). */
  linearKernelBandwidth: number;
  /**
   * Bus bandwidth per GPU that a collective or a point-to-point transfer attains, B/s (NCCL's "busbw":
   * the figure that makes machine.ts's ring formulas exact for large messages).
   */
  linkBandwidth: number;
  /** Fixed cost of one collective or one send/recv hop (launch, handshake, first byte), s. */
  linkLatency: number;
  /**
   * Bus bandwidth of an AllGather or AlltoAll that NCCL copies with the copy engines (inside one node), B/s;
   * linkBandwidth where absent (machine.ts's onCopyEngines).
   */
  copyEngineBandwidth?: number;
  /** The same collectives' fixed cost, s; linkLatency where absent. */
  copyEngineLatency?: number;
}

/** The GPU the memory model fits a program on. */
export interface Gpu {
  /** Device memory in bytes. */
  memory: number;
  /** SMs: the linear-attention workspaces are sized by them (linear_attention.cuh, plan_segments). */
  sms: number;
}

/** One GPU model in its usual node. Rates in FLOP/s, bandwidths in B/s, latencies in s, sizes in bytes. */
export interface MachineProfile {
  name: string;
  gpu: {
    /** The data sheet's dense bf16 tensor-core peak. */
    denseBf16Flops: number;
    /** What large cuBLAS bf16 GEMMs attain (the model's projections, MLP and LM head). */
    gemmFlops: number;
    /**
     * What the attention kernels attain (the simulator's compute roofline): cuDNN's fused attention over a
     * whole sequence, lasp's softmax forward, the linear kernels' arithmetic.
     */
    attentionFlops: number;
    /**
     * What lasp's softmax backward attains: ring attention's blocks, and with packed documents LASP-2H's
     * gathered call and a whole sequence (cuDNN's fused attention has no document mask). Slower than cuDNN's.
     */
    laspSoftmaxBackwardFlops: number;
    /**
     * What cuDNN's fused attention attains on a rank's query pieces against its gathered keys (LASP-2H's
     * gathered call, forward and backward), as a fraction of attentionFlops: its backward with fewer query
     * rows than key rows runs slower than over a whole sequence. Optional: 1 where left out (a profile written
     * before 2026-12-06, or a GPU where it was not measured).
     */
    gatheredAttentionEfficiency?: number;
    /** HBM peak, and what streaming (element-wise) kernels attain. */
    hbmBandwidth: number;
    hbmAttainable: number;
    /**
     * What lasp's linear-attention kernels attain, as the bytes their IR steps count over their time: far below
     * hbmAttainable, since a piece's chunks walk in order (few CTAs per head) rather than streaming. Optional:
     * a profile without it prices them at hbmAttainable (profiles written before 2026-12-06).
     */
    linearKernelBandwidth?: number;
    /**
     * Whether lasp's MLP GEMM with SwiGLU in its epilogues (templates/runtime/mlp_gemm.cuh: Hopper, sm_90a) runs
     * on this GPU: the SwiGLU passes are then bytes the GEMMs' epilogues move (step.ts). Optional: false where left
     * out (a GPU before Hopper, or a profile written before 2026-12-06).
     */
    mlpSwigluEpilogues?: boolean;
    memoryBytes: number;
    sms: number;
  };
  /** The links inside one node. */
  nvlink: {
    generation: string;
    /** Per GPU, each direction. */
    bandwidth: number;
    /** NCCL's bus bandwidth for large collectives. */
    busBandwidth: number;
    latency: number;
    /**
     * NCCL's bus bandwidth for an AllGather or AlltoAll on the copy engines (NCCL 2.28+: CTA policy zero,
     * symmetric windows; LASP-2's state gathers, the weight-gradient sums), at most `bandwidth`. Optional:
     * busBandwidth where left out (not measured: `lasp calibrate` on two GPUs or more measures it).
     */
    copyEngineBusBandwidth?: number;
    /** The same collectives' fixed cost. Optional: latency where left out. */
    copyEngineLatency?: number;
    gpusPerNode: number;
  };
  /** The links between nodes. */
  interNode: {
    fabric: string;
    bandwidthPerGpu: number;
    busBandwidth: number;
    latency: number;
  };
  /** Where each number comes from, keyed by its path ("gpu.gemmFlops"). */
  sources: Record<string, string>;
}

/** The numeric fields of each section, in the order a profile lists them; each needs a source. */
const NUMBERS = {
  gpu: [
    "denseBf16Flops",
    "gemmFlops",
    "attentionFlops",
    "laspSoftmaxBackwardFlops",
    "hbmBandwidth",
    "hbmAttainable",
    "memoryBytes",
    "sms",
  ],
  nvlink: ["bandwidth", "busBandwidth", "latency", "gpusPerNode"],
  interNode: ["bandwidthPerGpu", "busBandwidth", "latency"],
} as const;
/** Numbers a profile may leave out (each says in MachineProfile what stands in for it); with a source if given. */
const OPTIONAL_NUMBERS = {
  gpu: ["gatheredAttentionEfficiency", "linearKernelBandwidth"],
  nvlink: ["copyEngineBusBandwidth", "copyEngineLatency"],
} as const;
const TEXTS = { nvlink: ["generation"], interNode: ["fabric"] } as const;
/** Yes-or-no facts a profile may leave out (false where absent); with a source where given. */
const OPTIONAL_FLAGS = { gpu: ["mlpSwigluEpilogues"] } as const;
/** Counts, not rates: whole numbers. */
const INTEGERS = new Set(["gpu.sms", "nvlink.gpusPerNode"]);

/** A profile that does not validate: the message names the file and the field. */
export class ProfileError extends Error {}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Checks a parsed profile (`file` names it in errors) and returns it typed. */
export function validateProfile(value: unknown, file: string): MachineProfile {
  const fail = (field: string, why: string): never => {
    throw new ProfileError(`${file}: ${field} ${why}`);
  };
  if (!isObject(value)) return fail("the profile", "must be a JSON object");
  if (typeof value.name !== "string" || value.name === "") fail("name", "must be a non-empty string");
  const sources = value.sources;
  if (!isObject(sources))
    return fail("sources", "must be an object mapping each number's path to its source");
  /** A number of the profile, with its source; an optional one may be absent. */
  const checkNumber = (part: Record<string, unknown>, section: string, field: string, optional: boolean) => {
    const path = `${section}.${field}`;
    const x = part[field];
    if (optional && x === undefined) return;
    if (typeof x !== "number" || !Number.isFinite(x) || x <= 0)
      fail(
        path,
        `must be a positive number${optional ? " where given" : ""} (got ${JSON.stringify(x) ?? "nothing"})`,
      );
    if (INTEGERS.has(path) && !Number.isInteger(x)) fail(path, `must be a whole number (got ${x})`);
    const source = sources[path];
    if (typeof source !== "string" || source.trim() === "")
      fail(`sources["${path}"]`, "is missing: every number says where it comes from");
  };
  for (const [section, fields] of Object.entries(NUMBERS)) {
    const part = value[section];
    if (!isObject(part)) return fail(section, "must be an object");
    for (const field of fields) checkNumber(part, section, field, false);
    for (const field of (OPTIONAL_NUMBERS as Record<string, readonly string[]>)[section] ?? [])
      checkNumber(part, section, field, true);
    for (const field of (TEXTS as Record<string, readonly string[]>)[section] ?? []) {
      if (typeof part[field] !== "string") fail(`${section}.${field}`, "must be a string");
    }
    for (const field of (OPTIONAL_FLAGS as Record<string, readonly string[]>)[section] ?? []) {
      const path = `${section}.${field}`;
      if (part[field] === undefined) continue;
      if (typeof part[field] !== "boolean")
        fail(path, `must be true or false where given (got ${JSON.stringify(part[field])})`);
      const source = sources[path];
      if (typeof source !== "string" || source.trim() === "")
        fail(`sources["${path}"]`, "is missing: every fact says where it comes from");
    }
  }
  const profile = value as unknown as MachineProfile;
  if (profile.gpu.gemmFlops > profile.gpu.denseBf16Flops)
    fail("gpu.gemmFlops", "exceeds gpu.denseBf16Flops: an attainable rate is at most the peak");
  if (profile.gpu.attentionFlops > profile.gpu.denseBf16Flops)
    fail("gpu.attentionFlops", "exceeds gpu.denseBf16Flops: an attainable rate is at most the peak");
  if (profile.gpu.laspSoftmaxBackwardFlops > profile.gpu.denseBf16Flops)
    fail(
      "gpu.laspSoftmaxBackwardFlops",
      "exceeds gpu.denseBf16Flops: an attainable rate is at most the peak",
    );
  if ((profile.gpu.gatheredAttentionEfficiency ?? 0) > 1)
    fail(
      "gpu.gatheredAttentionEfficiency",
      `is a fraction of gpu.attentionFlops: at most 1 (got ${profile.gpu.gatheredAttentionEfficiency})`,
    );
  if (profile.gpu.hbmAttainable > profile.gpu.hbmBandwidth)
    fail("gpu.hbmAttainable", "exceeds gpu.hbmBandwidth: an attainable rate is at most the peak");
  if ((profile.gpu.linearKernelBandwidth ?? 0) > profile.gpu.hbmBandwidth)
    fail("gpu.linearKernelBandwidth", "exceeds gpu.hbmBandwidth: an attainable rate is at most the peak");
  if ((profile.nvlink.copyEngineBusBandwidth ?? 0) > profile.nvlink.bandwidth)
    fail(
      "nvlink.copyEngineBusBandwidth",
      "exceeds nvlink.bandwidth: a bus bandwidth is at most the link's rate each way",
    );
  for (const path of Object.keys(sources)) {
    const [section, field] = path.split(".");
    const known = [NUMBERS, OPTIONAL_NUMBERS, OPTIONAL_FLAGS].some((list) =>
      (list as Record<string, readonly string[]>)[section ?? ""]?.includes(field ?? ""),
    );
    if (!known) fail(`sources["${path}"]`, "names no number or fact of the profile");
  }
  return profile;
}

/** Reads and validates a profile file; a ProfileError says what is wrong (unreadable, not JSON, a field). */
export function loadProfile(file: string): MachineProfile {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    // In words, not the system's codes (EISDIR: illegal operation on a directory, read).
    if (errorCode(error) === "EISDIR")
      throw new ProfileError(
        `${file} is a folder, not a machine profile: name a profile's JSON file (src/cost/profiles/README.md) or a shipped profile: ${Object.keys(SHIPPED_PROFILES).join(", ")}`,
      );
    throw new ProfileError(`${file}: cannot read the machine profile (${describeReadError(error)})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ProfileError(`${file}: not JSON (${(error as Error).message})`);
  }
  return validateProfile(value, file);
}

/** The simulator's view: the attention kernels' rate, streaming bandwidth, and the NVLink level. */
export function machineOf(profile: MachineProfile): Machine {
  return {
    name: `${profile.name} (${profile.nvlink.generation}, ${profile.nvlink.gpusPerNode}-GPU node)`,
    computeFlops: profile.gpu.attentionFlops,
    gemmFlops: profile.gpu.gemmFlops,
    laspSoftmaxBackwardFlops: profile.gpu.laspSoftmaxBackwardFlops,
    gatheredAttentionFlops: profile.gpu.attentionFlops * (profile.gpu.gatheredAttentionEfficiency ?? 1),
    memoryBandwidth: profile.gpu.hbmAttainable,
    linearKernelBandwidth: profile.gpu.linearKernelBandwidth ?? profile.gpu.hbmAttainable,
    linkBandwidth: profile.nvlink.busBandwidth,
    linkLatency: profile.nvlink.latency,
    // undefined where the profile gives none: the link's rates stand in (onCopyEngines).
    copyEngineBandwidth: profile.nvlink.copyEngineBusBandwidth,
    copyEngineLatency: profile.nvlink.copyEngineLatency,
  };
}

/**
 * The simulator's view for a group of `ranks` GPUs placed on consecutive GPUs of nodes: inside one node the
 * NVLink level; a group that spans nodes runs its rings through the slower inter-node links, which bound
 * NCCL's bus bandwidth (the hierarchical algorithms change the latency, not that bound). Copy-engine
 * collectives stay inside one node: across nodes NCCL's kernels run them, at the inter-node rate.
 */
export function machineForGroup(profile: MachineProfile, ranks: number): Machine {
  if (ranks <= profile.nvlink.gpusPerNode) return machineOf(profile);
  return {
    ...machineOf(profile),
    copyEngineBandwidth: undefined,
    copyEngineLatency: undefined,
    name: `${profile.name} (${Math.ceil(ranks / profile.nvlink.gpusPerNode)} nodes over ${profile.interNode.fabric})`,
    linkBandwidth: profile.interNode.busBandwidth,
    linkLatency: profile.interNode.latency,
  };
}

/** The memory model's view. */
export function gpuOf(profile: MachineProfile): Gpu {
  return { memory: profile.gpu.memoryBytes, sms: profile.gpu.sms };
}

/** The shipped profiles, by file name without `.json`; validated once, here. */
export const SHIPPED_PROFILES: Readonly<Record<string, MachineProfile>> = Object.fromEntries(
  Object.entries({
    "h100-sxm-80gb": h100Sxm80,
    "h200-141gb": h200141,
    "a100-sxm-80gb": a100Sxm80,
    "a100-sxm-40gb": a100Sxm40,
  }).map(([name, json]) => [name, validateProfile(json, `src/cost/profiles/${name}.json`)]),
);

/** The default machine: one H100 SXM in an 8-GPU node. */
export const H100_PROFILE: MachineProfile = SHIPPED_PROFILES["h100-sxm-80gb"]!;
