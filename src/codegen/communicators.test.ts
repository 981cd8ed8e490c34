// Which communicator each collective takes (decided by the placement pass, schedule/placement.ts, and spelled
// by communicators.ts): small collectives beside computation go to the few-CTA communicator, everything else
// to NCCL's defaults.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it, type ExpectStatic } from "vitest";
import { checkSource } from "../check/front-end.js";
import { lowerSpec } from "../schedule/lower.js";
import type { CollectiveStep, RankProgram } from "../schedule/ir.js";
import { GEMM_SM_MARGIN, OVERLAP_CTAS, SMALL_COLLECTIVE_BYTES } from "../schedule/placement.js";
import { communicator, smsLeft } from "./communicators.js";
import { generateProgram, writeProgram } from "./generate.js";
import { buildView } from "./view-model.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { itWithNvcc, nvcc } from "../../test/nvcc.js";

function spec(parallel: string, run: string, dims = "heads 4 head_dim 64") {
  const source = `model m { vocab 64 hidden 256 ffn 64 ${dims}
    layer L = linear_attention { decay 0.9 }
    layer S = softmax_attention { kv_heads 2 }
    stack [L, S] x 1 }
    parallel { ${parallel} }
    run { ${run} }`;
  const checked = checkSource("t.lasp", source).spec;
  if (checked === undefined) throw new Error("test spec does not check");
  return checked;
}

/** Where each buffer of each layer kind lives (program.cuh's buffer tables), as `kind.field home`. */
function bufferHomes(source: ResolvedSpec): string[] {
  const view = buildView({ spec: source, program: lowerSpec(source), compilerVersion: "test" });
  return view.kinds.flatMap((k) => k.bufferTable.rows.map((r) => `${k.name}.${r.field} ${r.home}`));
}
const windowsOf = (source: ResolvedSpec): string[] => bufferHomes(source).filter((b) => b.endsWith("Window"));

/** Collectives of one rank's pass, each with whether it goes to the few-CTA communicator. */
function selection(program: RankProgram): { step: CollectiveStep; few: boolean }[] {
  return program.steps
    .filter((s): s is CollectiveStep => s.kind === "collective")
    .map((step) => ({ step, few: step.placement.communicator === "few_ctas" }));
}

describe("the few-CTA communicator", () => {
  it("takes LASP-2's state gathers, which run beside the intra-piece kernels", () => {
    const lowered = lowerSpec(spec("gpus 4 sequence 4 linear lasp2 softmax allgather", "seq_len 8K"));
    for (const pass of ["forward", "backward"] as const) {
      const chosen = selection(lowered.schedules[0]!.passes[pass][1]!);
      expect(chosen.length).toBe(1);
      expect(chosen[0]!.step.collective).toBe("allgather");
      expect(chosen[0]!.few).toBe(true);
    }
  });

  it("leaves large collectives (K and V of a long sequence) on NCCL's defaults", () => {
    // 64K tokens over 2 ranks, 8 kv heads x 128: 32K x 8 x 128 x 2 bytes = 64 MiB each for K and V.
    const lowered = lowerSpec(
      spec("gpus 2 sequence 2 linear lasp2 softmax allgather", "seq_len 64K", "heads 16 head_dim 128"),
    );
    const softmax = lowered.schedules.find((s) => s.strategy === "allgather")!;
    for (const pass of ["forward", "backward"] as const) {
      const chosen = selection(softmax.passes[pass][0]!);
      expect(chosen.length).toBeGreaterThan(0);
      for (const { step, few } of chosen) {
        expect(step.bytes).toBeGreaterThan(SMALL_COLLECTIVE_BYTES);
        expect(few).toBe(false);
      }
    }
  });

  it("takes large K/V AllGathers beside computation too, when NCCL copies its AllGathers with copy engines", () => {
    const source = spec(
      "gpus 2 sequence 2 linear lasp2 softmax allgather",
      "seq_len 64K",
      "heads 16 head_dim 128",
    );
    const softmax = lowerSpec(source).schedules.find((s) => s.strategy === "allgather")!;
    const forward = softmax.passes.forward[0]!;
    const candidates = (program: RankProgram): CollectiveStep[] =>
      program.steps.filter(
        (s): s is CollectiveStep => s.kind === "collective" && s.placement.copyEngineCandidate,
      );
    const gathers = forward.steps.filter((s) => s.kind === "collective" && s.collective === "allgather");
    expect(gathers.length).toBeGreaterThan(0);
    expect(candidates(forward).map((s) => s.id)).toEqual(gathers.map((s) => s.id));
    for (const g of candidates(forward))
      expect(communicator(g.placement)).toContain("c.few_ctas_on_copy_engines");
    // The dK/dV ReduceScatter too (as an AlltoAll and a sum in rank order), on the default communicator.
    const backward = softmax.passes.backward[0]!;
    const scatters = backward.steps.filter(
      (s) => s.kind === "collective" && s.collective === "reducescatter",
    );
    expect(scatters).toHaveLength(1);
    for (const step of scatters)
      expect((step as CollectiveStep).placement).toEqual({
        communicator: "default",
        copyEngineCandidate: true,
      });
    const linear = lowerSpec(source).schedules.find((s) => s.strategy === "lasp2")!.passes.forward[0]!;
    expect(candidates(linear)).toHaveLength(0);
    // The call picks the communicator at run time; the buffers are windows, so NCCL may copy them.
    const cuh = generateProgram(source).get("lasp/program.cuh")!;
    expect(cuh).toMatch(
      /ncclAllGather\(b\.k, b\.k_all, \d+, ncclBfloat16, c\.few_ctas_on_copy_engines \? c\.nccl_few_ctas : c\.nccl, c\.comm\)/,
    );
    expect(windowsOf(source)).toContain("S.k_all kSharedWindow");
    // The dK/dV ReduceScatter beside dWo and dQ's GEMMs: AlltoAll + sum on the copy engines (into the
    // global-order gradients, windows too) where the program takes them, NCCL's kernel otherwise; one call.
    expect(cuh).toMatch(
      /lasp::reduce_scatter_sum\(\{\{b\.dk_all, b\.dk_sum, b\.dk_seq, (\d+)\}, \{b\.dv_all, b\.dv_sum, b\.dv_seq, \1\}\}, 2, c\.scatters_on_copy_engines, c\.nccl_few_ctas, c\.nccl, c\.comm\);/,
    );
    expect(cuh).not.toContain("ncclReduceScatter");
    for (const window of ["S.dk_all", "S.dv_all", "S.dk_seq", "S.dv_seq"])
      expect(windowsOf(source)).toContain(`${window} kSharedWindow`);
    expect(windowsOf(source)).not.toContain("S.dk_sum kSharedWindow");
    expect(cuh).toContain("constexpr bool kScattersBesideKernels = true;");
  });

  it("is not used without a computation beside the collective (overlap off) or for Ulysses' all-to-all", () => {
    const off = lowerSpec(spec("gpus 2 sequence 2 linear lasp2 softmax allgather overlap off", "seq_len 8K"));
    const uly = lowerSpec(spec("gpus 2 sequence 2 linear ulysses softmax ulysses", "seq_len 8K"));
    for (const lowered of [off, uly]) {
      let collectives = 0;
      for (const schedule of lowered.schedules) {
        for (const pass of ["forward", "backward"] as const) {
          for (const { few } of selection(schedule.passes[pass][0]!)) {
            expect(few).toBe(false);
            collectives++;
          }
        }
      }
      expect(collectives).toBeGreaterThan(0);
    }
  });

  it("is created with the CTA limit the compiler chose and used by the state gather's call", () => {
    const files = generateProgram(spec("gpus 2 sequence 2 linear lasp2 softmax allgather", "seq_len 8K"));
    const cuh = files.get("lasp/program.cuh")!;
    expect(cuh).toContain(`constexpr int kFewCtas = ${OVERLAP_CTAS};`);
    // The state AllGather (B x H x d x d = 4 x 64 x 64 fp32 per rank) uses it; the verify mode's error
    // reduction and everything else use the default communicator.
    expect(cuh).toMatch(/ncclAllGather\(b\.m, b\.m_all, 16384, ncclFloat32, c\.nccl_few_ctas, c\.comm\)/);
    const state = files.get("lasp/state.cuh")!;
    expect(state).toContain("init_comms(st.layout, st.opt.id_file, program::kFewCtas)");
    expect(state).toContain("st.ctx.nccl_few_ctas = st.comms.sp_few_ctas;");
    expect(files.get("lasp/comm.cuh")!).toContain("few.maxCTAs = few_ctas;");
  });

  it("allocates the buffers of those collectives as NCCL windows, so NCCL may copy them with copy engines", () => {
    const source = spec("gpus 2 sequence 2 linear lasp2 softmax allgather", "seq_len 8K");
    const files = generateProgram(source);
    // LASP-2's states and gathered states, forward and backward, shared by the layers of the kind; in this
    // short sequence also the softmax kind's K and V (small enough for the few-CTA communicator) and the gathered
    // slots, shared too: what each layer keeps is the reordered k_seq, v_seq. The ReduceScatter of their
    // gradients, this small, is NCCL's kernel on few CTAs: plain memory (shared scratch).
    expect(windowsOf(source)).toEqual([
      "L.m kSharedWindow",
      "L.m_all kSharedWindow",
      "L.dm kSharedWindow",
      "L.dm_all kSharedWindow",
      "S.k kSharedWindow",
      "S.v kSharedWindow",
      "S.k_all kSharedWindow",
      "S.v_all kSharedWindow",
    ]);
    expect(bufferHomes(source)).toContain("S.dk_sum kShared");
    // Each layer's buffers come from its kind's allocate(), the windows among them from st.windows.
    const main = files.get("main.cu")!;
    expect(main).toContain(
      "program::allocate(passes.sets[layer.slot], layer.slot == 0 ? nullptr : &passes.sets[0], st.windows);",
    );
    // The weight gradients (one window in the weights' layout) and the gradient sum's scratch come from
    // windows too (grad_sum.cuh); each layer's block is summed on its own.
    const state = files.get("lasp/state.cuh")!;
    expect(state).toContain(
      "float* grads = static_cast<float*>(st.windows.grads(m.parameter_elements * sizeof(float)));",
    );
    expect(state).toContain(
      "st.grad_parts = static_cast<float*>(st.windows.grads(program::kLargestGradientBlock * sizeof(float)));",
    );
    expect(files.get("lasp/layer.cuh")!).toContain(
      "sum_gradients(block_start(st.grads, first), block_elements(st.grads, first, last), st.grad_parts, st.comms,",
    );
    // The choice is known once the windows are registered (at the end of the allocation), then reported; the
    // windows are released before the communicators are destroyed.
    expect(state).toMatch(
      /registered \(every rank the same\)\.\n\s+st\.ctx\.few_ctas_on_copy_engines = st\.comms\.gathers_on_copy_engines;\n\s+st\.ctx\.scatters_on_copy_engines = scatters_on_copy_engines\(st\.comms\);\n\}/,
    );
    expect(main.indexOf("allocate(st);")).toBeLessThan(main.indexOf("lasp::report_collectives(st);"));
    expect(state).toContain(
      'emit("collectives", "\\"gathers\\":\\"%s\\",\\"scatters\\":\\"%s\\",\\"gradients\\":\\"%s\\"", gathers, scatters, grads);',
    );
    // This short sequence's dK/dV are small: a few-CTA ReduceScatter kernel, no copy-engine candidate.
    expect(files.get("lasp/program.cuh")!).toContain("constexpr bool kScattersBesideKernels = false;");
    expect(files.get("lasp/program.cuh")!).toContain("constexpr bool kGathersBesideKernels = true;");
    // The report says copy engines for the gradients only where every layer's gradients split evenly.
    expect(files.get("lasp/program.cuh")!).toContain("constexpr bool kGradientsSplitEvenly = true;");
    expect(state).toContain(
      "collective_path(program::kGradientsSplitEvenly && st.comms.grads_on_copy_engines)",
    );
    const uneven = checkSource(
      "t.lasp",
      `model m { vocab 64 hidden 200 ffn 64 heads 4 head_dim 64
        layer L = linear_attention { decay 0.9 }
        stack L x 1 }
        parallel { gpus 3 sequence 3 linear lasp2 }
        run { seq_len 3K }`,
    ).spec!;
    // 2 x (200 x 256) + 2 x (200 x 256) = 204800 gradients do not split over 3 ranks.
    expect(generateProgram(uneven).get("lasp/program.cuh")!).toContain(
      "constexpr bool kGradientsSplitEvenly = false;",
    );
    expect(state.indexOf("st.windows.release();")).toBeLessThan(state.indexOf("destroy_comms(st.comms);"));
    // A program without state collectives says "none" for them and allocates no state windows.
    const ulysses = generateProgram(spec("gpus 2 sequence 2 linear ulysses softmax ulysses", "seq_len 8K"));
    expect(ulysses.get("lasp/program.cuh")!).toContain("constexpr bool kGathersBesideKernels = false;");
    expect(windowsOf(spec("gpus 2 sequence 2 linear ulysses softmax ulysses", "seq_len 8K"))).toEqual([]);
  });
});

describe("a projection beside a collective", () => {
  const linear = (gpus: number) => {
    const source = `model m { vocab 64 hidden 256 ffn 64 heads 4 head_dim 64
      layer L = linear_attention { decay 0.9 }
      stack L x 1 }
      parallel { gpus ${gpus} sequence ${gpus} linear lasp2 }
      run { seq_len 8K }`;
    const checked = checkSource("t.lasp", source).spec;
    if (checked === undefined) throw new Error("test spec does not check");
    return checked;
  };
  const hosts = (gpus: number) =>
    lowerSpec(linear(gpus))
      .schedules[0]!.passes.forward.concat(lowerSpec(linear(gpus)).schedules[0]!.passes.backward)
      .map((rp) => ({ rp, host: rp.steps.find((s) => s.kind === "compute" && s.op === "host")! }));

  it("leaves SMs to the state collective on every rank, and none where no collective runs", () => {
    // Forward (Q projection) and backward (dWo) of each of the 4 ranks. The state collective is on the
    // few-CTA communicator: the margin is for NCCL's kernel, none when NCCL copies it with the copy engines.
    const placed = hosts(4);
    expect(placed).toHaveLength(8);
    for (const { rp, host } of placed) {
      const partner = rp.steps[host.placement.overlaps!] as CollectiveStep;
      expect(partner.kind).toBe("collective");
      expect(partner.placement.communicator).toBe("few_ctas");
      expect(host.placement.smMargin).toEqual({ kernels: GEMM_SM_MARGIN, copyEngines: 0 });
      expect(smsLeft(host.placement)).toBe(`c.few_ctas_on_copy_engines ? 0 : ${GEMM_SM_MARGIN}`);
    }
    const alone = hosts(1);
    expect(alone).toHaveLength(2);
    for (const { host } of alone) {
      expect(host.placement).toEqual({});
      expect(smsLeft(host.placement)).toBe("0");
    }
    // The program plans the GEMM for fewer SMs only then, and only while the collective is issued.
    const files = generateProgram(linear(4));
    expect(files.get("lasp/run.cuh")!).toContain("(*run.host)(work, run.comm ? leave_sms : 0)");
    const layer = files.get("lasp/layer.cuh")!;
    expect(layer).toContain("cublasSetSmCountTarget(st.blas, st.sms - leave_sms)");
    expect(layer).toContain("cublasSetSmCountTarget(st.blas, 0)");
  });
});

describe("how the collectives beside the kernels move data (lasp/comm.cuh, grad_sum.cuh; stand-in NCCL, no GPU)", () => {
  const fixtures = resolve("src/codegen/fixtures/host-api");
  // The test program defines NCCL's functions itself: they record the configs of the splits and the calls of
  // the gradient sum, and play an NCCL that registers windows or not (REGISTERS=0|1). OLD_NCCL plays an
  // NCCL older than 2.28. Rank 0 of WORLD ranks (SP per sequence group) writes the NCCL id and goes on.
  const harness = (oldNccl: boolean) => `#include <nccl.h>
${oldNccl ? "#undef NCCL_CTA_POLICY_ZERO\n" : ""}#include <cstdlib>
#include "lasp/comm.cuh"
#include "lasp/grad_sum.cuh"
static int g_few_policy = -1, g_few_ctas = -1, g_world_policy = -1;
static char g_window;
static const char* g_base;
static int policy(const ncclConfig_t* c) { return c->CTAPolicy == NCCL_CONFIG_UNDEF_INT ? -1 : c->CTAPolicy; }
extern "C" {
ncclResult_t ncclGetUniqueId(ncclUniqueId*) { return ncclSuccess; }
ncclResult_t ncclCommInitRank(ncclComm_t* c, int, ncclUniqueId, int) { *c = (ncclComm_t)&g_window; return ncclSuccess; }
ncclResult_t ncclCommSplit(ncclComm_t, int, int, ncclComm_t* c, ncclConfig_t* config) {
  if (config != nullptr && config->maxCTAs != NCCL_CONFIG_UNDEF_INT) { g_few_policy = policy(config); g_few_ctas = config->maxCTAs; }
  else if (config != nullptr) g_world_policy = policy(config);
  *c = (ncclComm_t)&g_window;
  return ncclSuccess;
}
ncclResult_t ncclMemAlloc(void** p, size_t bytes) { *p = std::malloc(bytes); return ncclSuccess; }
ncclResult_t ncclMemFree(void* p) { std::free(p); return ncclSuccess; }
ncclResult_t ncclCommWindowRegister(ncclComm_t, void*, size_t, ncclWindow_t* win, int flags) {
  *win = std::atoi(std::getenv("REGISTERS")) != 0 && flags == NCCL_WIN_COLL_SYMMETRIC ? (ncclWindow_t)&g_window : nullptr;
  return ncclSuccess;
}
ncclResult_t ncclCommWindowDeregister(ncclComm_t, ncclWindow_t) { return ncclSuccess; }
ncclResult_t ncclAlltoAll(const void* s, void*, size_t n, ncclDataType_t, ncclComm_t, cudaStream_t) {
  std::printf(" alltoall(dw+%td, %zu)", ((const char*)s - g_base) / 4, n);
  return ncclSuccess;
}
ncclResult_t ncclAllGather(const void* s, void* r, size_t n, ncclDataType_t, ncclComm_t, cudaStream_t) {
  std::printf(" allgather(dw+%td, dw+%td, %zu)", ((const char*)s - g_base) / 4, ((const char*)r - g_base) / 4, n);
  return ncclSuccess;
}
ncclResult_t ncclAllReduce(const void* s, void*, size_t n, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t) {
  std::printf(" allreduce(dw+%td, %zu)", ((const char*)s - g_base) / 4, n);
  return ncclSuccess;
}
const char* ncclGetErrorString(ncclResult_t) { return "stand-in"; }
}
void lasp::sum_slices(const float*, int parts, size_t slice, float* out, cudaStream_t) {
  std::printf(" sum(%d x %zu -> dw+%td)", parts, slice, ((const char*)out - g_base) / 4);
}
int main(int argc, char** argv) {
  lasp::Layout l;
  l.world = std::atoi(argv[1]);
  l.sp_size = std::atoi(argv[2]);
  const size_t elements = std::strtoull(argv[4], nullptr, 10);
  lasp::Comms c = lasp::init_comms(l, argv[3], 4);
  std::printf("few_policy=%d few_ctas=%d world_policy=%d states=%d grads=%d", g_few_policy, g_few_ctas,
              g_world_policy, (int)c.gathers_on_copy_engines, (int)c.grads_on_copy_engines);
  lasp::Windows windows(&c);
  if (c.gathers_on_copy_engines) windows.gathers(4096);
  if (c.grads_on_copy_engines) {
    float* dw = static_cast<float*>(windows.grads(elements * 4));
    g_base = (const char*)dw;
    std::printf(" | windows: states=%d grads=%d |", (int)c.gathers_on_copy_engines, (int)c.grads_on_copy_engines);
    // Rank 1's part of the sum, as rank 1 would issue it.
    if (l.world > 1) lasp::sum_gradients(dw, elements, nullptr, c, 1, l.world, nullptr);
  }
  windows.release();
  std::printf("\\n");
  (void)argc;
  return 0;
}
`;
  const build = async (oldNccl: boolean, expect: ExpectStatic) => {
    const dir = mkdtempSync(join(tmpdir(), "lasp-collectives-"));
    await writeProgram(
      dir,
      generateProgram(spec("gpus 2 sequence 2 linear lasp2 softmax allgather", "seq_len 8K")),
    );
    writeFileSync(join(dir, "t.cu"), harness(oldNccl));
    // The two tests that build the same harness share one compile (test/nvcc.ts).
    // Host code only (`-x c++`: no device pass), linked with the CUDA runtime as nvcc does.
    const r = await nvcc(
      dir,
      ["-std=c++17", "-x", "c++", "-I.", "-Ilasp", `-I${fixtures}`, "t.cu", "-o", "t"],
      {
        outputs: ["t"],
      },
    );
    expect(r.stderr).not.toMatch(/error/);
    expect(r.status).toBe(0);
    let ids = 0;
    return (choice: string | undefined, world: number, sp: number, elements = 4096, registers = 1) => {
      const env: NodeJS.ProcessEnv = { ...process.env, REGISTERS: String(registers) };
      delete env["LASP_COLLECTIVES"];
      if (choice !== undefined) env["LASP_COLLECTIVES"] = choice;
      const args = [String(world), String(sp), join(dir, `id${ids++}`), String(elements)];
      return spawnSync(join(dir, "t"), args, { cwd: dir, encoding: "utf8", env });
    };
  };
  const kernels = "few_policy=-1 few_ctas=4 world_policy=-1 states=0 grads=0\n";

  itWithNvcc(
    "asks NCCL 2.28 for copy engines where more than one rank shares the work, and keeps its kernels when told",
    async ({ expect }) => {
      const run = await build(false, expect);
      for (const choice of [undefined, "auto", "copy_engines"]) {
        const r = run(choice, 4, 4);
        expect(r.status).toBe(0);
        // The state AllGathers (few CTAs, CTA policy zero) and the gradient sum (world, policy zero) both.
        expect(r.stdout).toMatch(
          /^few_policy=2 few_ctas=4 world_policy=2 states=1 grads=1 \| windows: states=1 grads=1 \|/,
        );
      }
      // Data parallel only: nothing to gather along the sequence, gradients still summed on copy engines.
      expect(run("auto", 2, 1).stdout).toMatch(/^few_policy=-1 few_ctas=4 world_policy=2 states=0 grads=1 /);
      // Told to, or a single GPU: NCCL's kernels (the AllGathers on few CTAs), as before.
      expect(run("kernels", 4, 4).stdout).toBe(kernels);
      expect(run("copy_engines", 1, 1).stdout).toBe(kernels);
      const bogus = run("dma", 4, 4);
      expect(bogus.status).toBe(2);
      expect(bogus.stderr).toContain("LASP_COLLECTIVES=dma is not a choice (auto, copy_engines or kernels)");
    },
    120_000,
  );

  itWithNvcc(
    "sums gradients by an AlltoAll, a sum of the slices and an in-place AllGather, else by one AllReduce",
    async ({ expect }) => {
      const run = await build(false, expect);
      // 4096 gradients on 4 ranks: rank 1 receives every rank's 1024-element slice 1, sums the 4 into dw's own
      // slice (elements 1024..2047), and gathers every rank's slice into dw.
      expect(run("auto", 4, 4).stdout).toMatch(
        /\| alltoall\(dw\+0, 1024\) sum\(4 x 1024 -> dw\+1024\) allgather\(dw\+1024, dw\+0, 1024\)\n$/,
      );
      // Gradients the ranks cannot split evenly: one AllReduce.
      expect(run("auto", 4, 4, 4098).stdout).toMatch(/\| allreduce\(dw\+0, 4098\)\n$/);
      // NCCL registers no window (no symmetric memory between the GPUs): its kernels, or exit 2 if insisted on.
      expect(run("auto", 4, 4, 4096, 0).stdout).toMatch(
        /\| windows: states=0 grads=0 \| allreduce\(dw\+0, 4096\)\n$/,
      );
      const insist = run("copy_engines", 4, 4, 4096, 0);
      expect(insist.status).toBe(2);
      expect(insist.stderr).toContain(
        "LASP_COLLECTIVES=copy_engines, but NCCL has no symmetric memory between these GPUs",
      );
    },
    120_000,
  );

  itWithNvcc(
    "runs NCCL's kernels with an NCCL older than 2.28, and says so when copy engines are insisted on",
    async ({ expect }) => {
      const run = await build(true, expect);
      expect(run("auto", 4, 4).stdout).toBe(kernels);
      const insist = run("copy_engines", 4, 4);
      expect(insist.status).toBe(2);
      expect(insist.stderr).toContain(
        "LASP_COLLECTIVES=copy_engines, but this program was built against an NCCL older than 2.28",
      );
    },
    120_000,
  );
});
