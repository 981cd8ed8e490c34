// Which communicator each collective of the generated program uses: small collectives beside computation go
// to the few-CTA communicator, everything else to NCCL's defaults.
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { lowerSpec } from "../schedule/lower.js";
import type { CollectiveStep, RankProgram } from "../schedule/ir.js";
import { fewCtaCollectives, GEMM_SM_MARGIN, OVERLAP_CTAS, SMALL_COLLECTIVE_BYTES } from "./communicators.js";
import { generateProgram } from "./generate.js";
import { overlapPartners } from "./view-model.js";

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

/** Collectives of one rank's pass, each with whether it goes to the few-CTA communicator. */
function selection(program: RankProgram): { step: CollectiveStep; few: boolean }[] {
  const few = fewCtaCollectives(program, overlapPartners(program));
  return program.steps
    .filter((s): s is CollectiveStep => s.kind === "collective")
    .map((step) => ({ step, few: few.has(step.id) }));
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
    const main = files.get("main.cu")!;
    expect(main).toContain("lasp::init_comms(st.layout, opt.id_file, program::kFewCtas)");
    expect(main).toContain("st.ctx.nccl_few_ctas = st.comms.sp_few_ctas;");
    expect(files.get("lasp/comm.cuh")!).toContain("few.maxCTAs = few_ctas;");
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
    return generateProgram(checked);
  };

  it("leaves SMs to the state collective on every rank, and none where no collective runs", () => {
    const cuh = linear(4).get("lasp/program.cuh")!;
    const calls = [...cuh.matchAll(/run_host\(run, HostWork::(\w+), (\d+)\);/g)];
    // Forward (Q projection) and backward (dWo) of each of the 4 ranks.
    expect(calls).toHaveLength(8);
    for (const [, , leave] of calls) expect(Number(leave)).toBe(GEMM_SM_MARGIN);
    const single = linear(1).get("lasp/program.cuh")!;
    const alone = [...single.matchAll(/run_host\(run, HostWork::(\w+), (\d+)\);/g)];
    expect(alone).toHaveLength(2);
    for (const [, , leave] of alone) expect(Number(leave)).toBe(0);
    // The program plans the GEMM for fewer SMs only then, and only while the collective is issued.
    expect(cuh).toContain("(*run.host)(work, run.comm ? leave_sms : 0)");
    const main = linear(4).get("main.cu")!;
    expect(main).toContain("cublasSetSmCountTarget(st.blas, st.sms - leave_sms)");
    expect(main).toContain("cublasSetSmCountTarget(st.blas, 0)");
  });
});
