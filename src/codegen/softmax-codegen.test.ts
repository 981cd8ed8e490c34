// The generated program for softmax layers (LASP-2H, ring attention) and the Ulysses baseline: which calls
// each IR step becomes, and that the host code type-checks with nvcc against declaration-only NCCL and
// cuBLAS headers (CI has nvcc but neither library).
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { lowerSpec } from "../schedule/lower.js";
import { ropeInverseFrequencies } from "../model/rope.js";
import type { ResolvedSpec, SoftmaxAttentionKind } from "../spec/resolved.js";
import { CodegenLimitation, generateProgram, writeProgram } from "./generate.js";
import { buildView, type ProgramView } from "./view-model.js";
import { namedCallsOf, stepCalling, stepsOf } from "./test-calls.js";
import { kindRows } from "./test-main-tables.js";
import { itWithNvcc, mainHostCheck, nvcc } from "../../test/nvcc.js";

function specOf(parallel: string, stack = "[L, S] x 1", run = ""): ResolvedSpec {
  const source = `model m { vocab 64 hidden 256 ffn 64 heads 4 head_dim 64
    layer L = linear_attention { decay 0.9 }
    layer S = softmax_attention { kv_heads 2 }
    stack ${stack} }
    parallel { ${parallel} }
    run { seq_len 2K ${run} }`;
  const spec = checkSource("t.lasp", source).spec;
  if (spec === undefined) throw new Error("test spec does not check");
  return spec;
}

function program(parallel: string, stack = "[L, S] x 1", run = ""): Map<string, string> {
  return generateProgram(specOf(parallel, stack, run));
}

/** The view model main.cu's tables are filled from. */
function view(parallel: string): ProgramView {
  const spec = specOf(parallel);
  return buildView({ spec, program: lowerSpec(spec), compilerVersion: "test" });
}

/** The body of one rank's pass function, without the timeline's trace events unless asked for. */
function rankBody(cuh: string, fn: string, traced = false): string {
  const start = cuh.indexOf(`static void ${fn}(`);
  expect(start, fn).toBeGreaterThanOrEqual(0);
  const body = cuh.slice(start, cuh.indexOf("\n}\n", start));
  return traced ? body : body.replace(/\n\s*if \(c\.trace != nullptr\)[^\n]*/g, "");
}

describe("LASP-2H in the generated program", () => {
  const files = program("gpus 2 sequence 2 linear lasp2 softmax allgather layout zigzag");
  const cuh = files.get("lasp/program.cuh")!;

  it("gathers K and V of the kv heads only while the Q projection runs, orders them, and attends in one call", () => {
    const rank0 = rankBody(cuh, "S_forward_rank0");
    // 1 x 1024 rows x 2 kv heads x 64 = 131072 elements per rank: small, so on the few-CTA communicator.
    expect(rank0).toContain(
      "NCCL_CHECK(ncclAllGather(b.k, b.k_all, 131072, ncclBfloat16, c.nccl_few_ctas, c.comm));",
    );
    // The layer's Q projection waits only until the gather is issued, not until it ends.
    const gather = rank0.indexOf("ncclAllGather(b.k,");
    const host = rank0.indexOf("run_host(run, HostWork::kQProjection");
    expect(host).toBeGreaterThan(gather);
    expect(rank0.slice(gather, host)).toContain("cudaStreamWaitEvent(c.compute, c.started[0], 0)");
    expect(rank0.slice(gather, host)).not.toMatch(/cudaStreamWaitEvent\(c\.compute, c\.events/);
    // Zigzag, 2 ranks of 1024 tokens: halves of 512 rows x 128 elements; rank 1's slot holds halves 1 and 2.
    // Each half goes to its global rows (one strided copy per half; the height is the batch).
    const row = 2 * 64;
    const copies = [
      ...rank0.matchAll(
        /cudaMemcpy2DAsync\(b\.k_seq( \+ \d+)?, (\d+) \* sizeof\(bf16\), b\.k_all( \+ \d+)?,/g,
      ),
    ].map((m) => [Number((m[1] ?? " + 0").slice(3)) / row, Number((m[3] ?? " + 0").slice(3)) / row]);
    // [global row, row in the gathered slots]: slot 0 = halves 0 and 3, slot 1 (from row 1024) = halves 1, 2.
    expect(copies).toEqual([
      [0, 0],
      [1536, 512],
      [512, 1024],
      [1024, 1536],
    ]);
    const v = view("gpus 2 sequence 2 linear lasp2 softmax allgather layout zigzag");
    expect(namedCallsOf(v, "S_forward_rank1", "lasp::softmax_gathered_forward")).toEqual([
      {
        fn: "lasp::softmax_gathered_forward",
        type: "SoftmaxGatheredArgs",
        fields: {
          q: "b.q",
          k: "b.k_seq",
          v: "b.v_seq",
          o: "b.o",
          lse: "b.lse",
          q_map: "kPieceMaps[1]",
          // Rank 1's last half ends at 3 x 512: no query of it sees a key past that.
          key_rows: "1536",
          causal: "true",
        },
        args: ["lasp::SoftmaxDims{1, 1024, 2048, 4, 2, 64}", "c.compute"],
      },
    ]);
    expect(namedCallsOf(v, "S_forward_rank0", "lasp::softmax_block_forward")).toEqual([]);
    expect(namedCallsOf(v, "S_forward_rank0", "lasp::softmax_merge")).toEqual([]);
    // The program prints each field on its own line of the struct, then the call.
    expect(rank0).toContain(
      "lasp::SoftmaxGatheredArgs args;\n    args.q = b.q; args.k = b.k_seq; args.v = b.v_seq;\n",
    );
    // Both kinds run their layer's Q projection and dWo inside their passes.
    expect(v.kinds.map((k) => [k.name, k.hosted])).toEqual([
      ["L", "true"],
      ["S", "true"],
    ]);
  });

  it("takes fp32 dK, dV of every gathered position back to rank order and ReduceScatters them beside dWo", () => {
    const rank1 = rankBody(cuh, "S_backward_rank1");
    const v = view("gpus 2 sequence 2 linear lasp2 softmax allgather layout zigzag");
    expect(
      namedCallsOf(v, "S_backward_rank1", "lasp::softmax_gathered_backward").map((c) => c.fields),
    ).toEqual([
      {
        q: "b.q",
        k: "b.k_seq",
        v: "b.v_seq",
        o: "b.o",
        lse: "b.lse",
        dout: "b.do_",
        dq: "b.dq",
        dk: "b.dk_seq",
        dv: "b.dv_seq",
        q_map: "kPieceMaps[1]",
        key_rows: "1536",
        causal: "true",
      },
    ]);
    // Rank 0's half 3 (rows 1536..2047) lies past rank 1's keys: cleared in the slot, not copied.
    expect(rank1).toContain(
      "CUDA_CHECK(cudaMemset2DAsync(b.dk_all + 65536, 131072 * sizeof(float), 0, 65536 * sizeof(float), 1, c.compute));",
    );
    expect(rank1).toContain(
      "CUDA_CHECK(cudaMemcpy2DAsync(b.dk_all + 131072, 131072 * sizeof(float), b.dk_seq + 65536, 262144 * sizeof(float), 65536 * sizeof(float), 1, cudaMemcpyDeviceToDevice, c.compute));",
    );
    const scatter = rank1.indexOf(
      "NCCL_CHECK(ncclReduceScatter(b.dk_all, b.dk_sum, 131072, ncclFloat32, ncclSum, c.nccl_few_ctas, c.comm));",
    );
    const dwo = rank1.indexOf("run_host(run, HostWork::kOWeightGrad");
    expect(scatter).toBeGreaterThan(0);
    expect(dwo).toBeGreaterThan(scatter);
    // dWo, then dQ's GEMMs, wait only until the ReduceScatter is issued, not until it ends; the cast waits
    // for its end.
    const dq = rank1.indexOf("run_host(run, HostWork::kQGrads");
    expect(dq).toBeGreaterThan(dwo);
    expect(rank1.slice(scatter, dq)).not.toMatch(/cudaStreamWaitEvent\(c\.compute, c\.events/);
    expect(rank1.indexOf("lasp::cast_to_bf16(b.dk_sum")).toBeGreaterThan(dq);
    // The layer then leaves dQ's GEMMs to the schedule (layer.cuh's q_grads runs only where not hosted).
    const [l, s] = kindRows(files.get("main.cu")!);
    expect(s).toMatchObject({ name: '"S"', strategy: '"allgather"', softmax: "true", kv_heads: "2" });
    expect(s).toMatchObject({ rope_inv_freq: "program::kS_rope", hosted: "true", hosts_q_grads: "true" });
    expect(l).toMatchObject({ name: '"L"', strategy: '"lasp2"', softmax: "false", kv_heads: "4" });
    expect(l).toMatchObject({ rope_inv_freq: "nullptr", hosted: "true", hosts_q_grads: "false" });
    expect(files.get("lasp/layer.cuh")!).toContain("if (!kind.hosts_q_grads) q_grads(st, l, kind, b);");
    expect(rank1).toMatch(
      /cudaStreamWaitEvent\(c\.compute, c\.events\[\d+\], 0\)\);\n\s*lasp::cast_to_bf16\(b\.dk_sum, b\.dk, 131072, c\.compute\);/,
    );
  });

  it("can time every step on its own stream for bench's timeline", () => {
    const rank0 = rankBody(cuh, "S_forward_rank0", true);
    expect(rank0).toMatch(
      /c\.trace\[0\], c\.comm\)\);\n\s*NCCL_CHECK\(ncclGroupStart\(\)\);[\s\S]*?ncclGroupEnd\(\)\);\n\s*if \(c\.trace != nullptr\) CUDA_CHECK\(cudaEventRecord\(c\.trace\[1\], c\.comm\)\);/,
    );
    expect(rank0).toContain("if (c.trace != nullptr) CUDA_CHECK(cudaEventRecord(c.trace[7], c.compute));");
    // bench traces both passes of every kind, with as many events as its longest rank program has steps.
    const main = files.get("main.cu")!;
    for (const kind of ["L", "S"])
      expect(main).toContain(`program::k${kind}_forward_events, program::k${kind}_backward_events}`);
    for (const pass of ["forward", "backward"])
      expect(files.get("lasp/bench.cuh")!).toContain(
        `trace_pass(st, kind.name, "${pass}", passes.${pass}_events, run,`,
      );
  });

  it("declares the piece maps before the steps that read them", () => {
    expect(cuh.indexOf("kPieceMaps[kWorld] =")).toBeLessThan(cuh.indexOf("static void S_forward_rank0"));
  });
});

describe("RoPE in the generated program", () => {
  it("rotates each softmax kind by the compiler's table of frequencies, its scaling included", () => {
    const spec = checkSource(
      "t.lasp",
      `model m { vocab 64 hidden 256 ffn 64 heads 4 head_dim 64
        layer L = linear_attention { }
        layer S = softmax_attention { rope_theta 500000  rope_scaling llama3  rope_factor 32  rope_original_max_positions 8192 }
        layer T = softmax_attention { }
        stack [L, S, T] }
       run { seq_len 2K }`,
    ).spec!;
    const files = generateProgram(spec);
    const table = (name: string): number[] => {
      const cuh = files.get("lasp/program.cuh")!;
      const start = cuh.indexOf(`static const double ${name}[] = {`);
      expect(start, name).toBeGreaterThan(0);
      const body = cuh.slice(cuh.indexOf("{", start) + 1, cuh.indexOf("};", start));
      return body
        .split(",")
        .map((v) => v.trim())
        .filter((v) => v !== "")
        .map(Number);
    };
    const s = spec.model.kinds[1] as SoftmaxAttentionKind;
    expect(table("kS_rope")).toEqual(ropeInverseFrequencies(64, 500000, s.ropeScaling));
    expect(table("kT_rope")).toEqual(ropeInverseFrequencies(64, 10000, { type: "none" }));
    // Scaled: Llama 3.2's last frequency is base^(-62/64) / 32.
    expect(table("kS_rope")[31]).toBe(Math.pow(500000, -62 / 64) / 32);
    expect(files.get("lasp/program.cuh")).toContain(
      "(base 500000 scaled llama3 (factor 32, low 1, high 4, original 8192))",
    );
    // kKinds points each softmax kind at its table; linear kinds have none.
    const kinds = kindRows(files.get("main.cu")!);
    expect(kinds.map((k) => k.name)).toEqual(['"L"', '"S"', '"T"']);
    expect(kinds.map((k) => k.rope_inv_freq)).toEqual(["nullptr", "program::kS_rope", "program::kT_rope"]);
  });
});

describe("ring attention in the generated program", () => {
  const cuh = program("gpus 4 sequence 4 linear lasp1 softmax ring layout contiguous").get(
    "lasp/program.cuh",
  )!;

  it("issues every send in one NCCL group with the receive beside it", () => {
    for (const fn of ["S_forward_rank2", "S_backward_rank2"]) {
      const body = rankBody(cuh, fn);
      const calls = [...body.matchAll(/ncclGroupStart|ncclGroupEnd|ncclSend|ncclRecv/g)].map((m) => m[0]);
      let open = false;
      for (const call of calls) {
        if (call === "ncclGroupStart") open = true;
        else if (call === "ncclGroupEnd") open = false;
        else expect(open, `${fn}: ${call} outside a group`).toBe(true);
      }
      expect(calls.filter((c) => c === "ncclGroupStart").length).toBeGreaterThanOrEqual(3);
    }
  });

  it("records the receive's event for the block that waits for it", () => {
    const rank2 = rankBody(cuh, "S_forward_rank2");
    // Step 2 (recv) is merged into step 1's group; step 6 attends to slot 1 once step 2 is done.
    expect(rank2).toMatch(
      /ncclGroupEnd\(\)\);\n\s*CUDA_CHECK\(cudaEventRecord\(c\.events\[2\], c\.comm\)\);/,
    );
    const ring = view("gpus 4 sequence 4 linear lasp1 softmax ring layout contiguous");
    const block = stepCalling(ring, "S_forward_rank2", "lasp::softmax_block_forward", {
      k: "b.k_ring + 65536",
    });
    expect(block?.waits).toContainEqual({ event: 2 });
  });

  it("casts the dK, dV accumulators that came home", () => {
    expect(rankBody(cuh, "S_backward_rank0")).toMatch(
      /lasp::cast_to_bf16\(b\.dk_ring( \+ \d+)?, b\.dk, 65536, c\.compute\)/,
    );
  });
});

describe("Ulysses in the generated program", () => {
  const files = program("gpus 2 sequence 2 linear ulysses softmax ulysses layout zigzag");
  const cuh = files.get("lasp/program.cuh")!;

  it("runs each AllToAll as one grouped send and receive per rank", () => {
    const rank0 = rankBody(cuh, "S_forward_rank0");
    const group = rank0.slice(rank0.indexOf("ncclGroupStart"), rank0.indexOf("ncclGroupEnd"));
    expect(group.match(/ncclSend\(/g)).toHaveLength(2);
    expect(group.match(/ncclRecv\(/g)).toHaveLength(2);
    expect(group).toContain("ncclSend(b.qkv_send + ");
  });

  it("moves exactly the packed buffer's bytes in every pack and unpack", () => {
    for (const fn of ["L_forward_rank1", "S_forward_rank1", "S_backward_rank0"]) {
      const body = rankBody(cuh, fn);
      const steps = body.split("  // [").slice(1);
      for (const step of steps.filter((s) => s.includes("cudaMemcpy2DAsync"))) {
        let moved = 0;
        for (const m of step.matchAll(/cudaMemcpy2DAsync\([^,]+, \d+, [^,]+, \d+, (\d+), (\d+),/g))
          moved += Number(m[1]) * Number(m[2]);
        // Each pack or unpack moves one slot per rank of a [W, B, L, S, d] bf16 buffer: W x 1 x 1024 x S x 64 x 2.
        expect(moved % (2 * 1024 * 64 * 2), `${fn}: ${step.slice(0, 60)}`).toBe(0);
        expect(moved).toBeGreaterThan(0);
      }
    }
  });

  it("runs whole-sequence attention on the rank's head shard", () => {
    // softmax_whole_*: cuDNN's fused attention where the build has it, lasp's kernels otherwise.
    const v = view("gpus 2 sequence 2 linear ulysses softmax ulysses layout zigzag");
    const dims = "lasp::SoftmaxDims{1, 2048, 2048, 2, 1, 64}";
    expect(namedCallsOf(v, "S_forward_rank1", "lasp::softmax_whole_forward")).toEqual([
      {
        fn: "lasp::softmax_whole_forward",
        type: "SoftmaxFullArgs",
        fields: {
          q: "b.q_full",
          k: "b.k_full",
          v: "b.v_full",
          o: "b.o_full",
          lse: "b.lse_full",
          causal: "true",
        },
        args: [dims, "c.compute"],
      },
    ]);
    expect(namedCallsOf(v, "S_backward_rank1", "lasp::softmax_whole_backward").map((c) => c.fields)).toEqual([
      {
        q: "b.q_full",
        k: "b.k_full",
        v: "b.v_full",
        o: "b.o_full",
        lse: "b.lse_full",
        dout: "b.do_full",
        dq: "b.dq_full",
        dk: "b.dk_full",
        dv: "b.dv_full",
        causal: "true",
      },
    ]);
    // The program reports that kind's backend once, asking with the same dims (kKinds' whole_dims).
    const kinds = v.kinds;
    expect(kinds.map((k) => [k.name, k.whole, k.wholeDims])).toEqual([
      ["L", false, "lasp::SoftmaxDims{}"],
      ["S", true, "lasp::SoftmaxDims{1, 2048, 2048, 2, 1, 64}"],
    ]);
    // Linear layers read the decay of the shard's heads.
    expect(namedCallsOf(v, "L_forward_rank1", "lasp::linear_intra")).toEqual([
      {
        fn: "lasp::linear_intra",
        type: "LinearIntraArgs",
        fields: {
          q: "b.q_full",
          k: "b.k_full",
          v: "b.v_full",
          o: "b.o_full",
          piece: "lasp::Piece{0, 2048}",
          causal: "true",
        },
        args: ["lasp::LinearDims{1, 2048, 2, 64}", "c.tables.kLDecay + 2", "c.compute"],
      },
    ]);
  });
});

describe("Ulysses with fewer kv heads than ranks in the generated program (kv_heads 2 on 4 ranks)", () => {
  const spec = specOf("gpus 4 sequence 4 softmax ulysses layout contiguous", "S x 1");
  const v = buildView({ spec, program: lowerSpec(spec), compilerVersion: "test" });
  const copies = (fn: string) =>
    stepsOf(v, fn)
      .flatMap((s) => s.calls)
      .filter((c) => c.fn === "cudaMemcpy2DAsync");
  // 512 local rows, heads 4 / 4 = 1 query head and 1 kv head of k and v per destination: 3 heads a row.
  const slot = 512 * 3 * 64;

  it("sends each destination its kv head floor(d / 2) of k and v", () => {
    const pack = copies("S_forward_rank0").slice(0, 12);
    const kv = pack.filter((c) => /^b\.[kv]( |$)/.test(c.args[2]!)).map((c) => [c.args[0], c.args[2]]);
    expect(kv).toEqual([
      ["b.qkv_send + 64", "b.k"],
      ["b.qkv_send + 128", "b.v"],
      [`b.qkv_send + ${slot + 64}`, "b.k"],
      [`b.qkv_send + ${slot + 128}`, "b.v"],
      [`b.qkv_send + ${2 * slot + 64}`, "b.k + 64"],
      [`b.qkv_send + ${2 * slot + 128}`, "b.v + 64"],
      [`b.qkv_send + ${3 * slot + 64}`, "b.k + 64"],
      [`b.qkv_send + ${3 * slot + 128}`, "b.v + 64"],
    ]);
  });

  it("places source s's dK in slot s mod 2 at kv head floor(s / 2), then sums the slots in order", () => {
    const steps = stepsOf(v, "S_backward_rank2");
    const into = copies("S_backward_rank2")
      .filter((c) => c.args[0]!.startsWith("b.dk_parts"))
      .map((c) => [c.args[0], c.args[2]]);
    const dkSlot = 512 * 2 * 64;
    expect(into).toEqual([
      ["b.dk_parts", "b.dqkv_recv + 64"],
      [`b.dk_parts + ${dkSlot}`, `b.dqkv_recv + ${slot + 64}`],
      ["b.dk_parts + 64", `b.dqkv_recv + ${2 * slot + 64}`],
      [`b.dk_parts + ${dkSlot + 64}`, `b.dqkv_recv + ${3 * slot + 64}`],
    ]);
    const sums = steps.flatMap((s) => s.calls).filter((c) => c.fn === "lasp::sum_slices_bf16");
    expect(sums.map((c) => c.args)).toEqual([
      ["b.dk_parts", "2", String(dkSlot), "b.dk", "c.compute"],
      ["b.dv_parts", "2", String(dkSlot), "b.dv", "c.compute"],
    ]);
  });

  it("attends with one kv head per rank", () => {
    expect(v.kinds.map((k) => k.wholeDims)).toEqual(["lasp::SoftmaxDims{1, 2048, 2048, 1, 1, 64}"]);
  });
});

describe("cuDNN in the build", () => {
  const files = program("gpus 2 sequence 2 linear ulysses softmax ulysses layout zigzag");

  it("is found by CMake and build.sh where installed, optional, and switched off on request", () => {
    const cmake = files.get("CMakeLists.txt")!;
    expect(cmake).toContain('option(LASP_CUDNN "use cuDNN\'s fused attention where it applies" ON)');
    expect(cmake).toMatch(/find_path\(CUDNN_INCLUDE_DIR cudnn\.h HINTS \$ENV\{CUDNN_HOME\}\/include/);
    expect(cmake).toMatch(/if\(LASP_CUDNN AND CUDNN_INCLUDE_DIR AND CUDNN_LIBRARY\)\n[^]*LASP_WITH_CUDNN/);
    expect(cmake).not.toMatch(/FATAL_ERROR[^\n]*cuDNN/);
    const build = files.get("build.sh")!;
    expect(build).toContain('if [ "${LASP_CUDNN:-1}" != 0 ]; then');
    expect(build).toContain("-DLASP_WITH_CUDNN");
    expect(build).toContain('main.cu kernels.cu "${cudnn[@]}" "${nccl[@]}" -lcublas');
    // The kernels' translation unit takes the backend choice and, only with the macro, cuDNN's header.
    expect(files.get("kernels.cu")!).toContain('#include "lasp/softmax_whole.cuh"');
    expect(files.get("lasp/cudnn_attention.cuh")!).toMatch(
      /#ifdef LASP_WITH_CUDNN\n\n#include <cuda_runtime\.h>\n#include <cudnn\.h>/,
    );
  });
});

describe("the softmax backend choice (lasp/softmax_backend.cuh, host code: no GPU needed)", () => {
  const files = program("gpus 2 sequence 2 linear ulysses softmax ulysses layout zigzag");

  itWithNvcc(
    "follows LASP_SOFTMAX_BACKEND and stops with exit 2 and a message where it cannot",
    async ({ expect }) => {
      const dir = mkdtempSync(join(tmpdir(), "lasp-backend-"));
      await writeProgram(dir, files);
      writeFileSync(
        join(dir, "choice.cu"),
        `#include "lasp/softmax_backend.cuh"
int main() {
  const lasp::SoftmaxDims d{1, 128, 128, 2, 1, 64};
  std::printf("cudnn=%d\\n", (int)lasp::whole::use_cudnn(d, true));
  return 0;
}
`,
      );
      const build = await nvcc(dir, ["-std=c++17", "-I.", "-Ilasp", "choice.cu", "-o", "choice"], {
        outputs: ["choice"],
      });
      expect(build.stderr).not.toMatch(/error/);
      expect(build.status).toBe(0);
      const run = (backend: string | undefined) => {
        const env = { ...process.env };
        delete env["LASP_SOFTMAX_BACKEND"];
        if (backend !== undefined) env["LASP_SOFTMAX_BACKEND"] = backend;
        return spawnSync(join(dir, "choice"), [], { cwd: dir, encoding: "utf8", env });
      };
      // This build has no cuDNN: lasp's kernels, asked for or not.
      for (const backend of [undefined, "auto", "lasp"]) {
        const r = run(backend);
        expect(r.status).toBe(0);
        expect(r.stdout).toBe("cudnn=0\n");
      }
      const bogus = run("fast");
      expect(bogus.status).toBe(2);
      expect(bogus.stderr).toContain("LASP_SOFTMAX_BACKEND=fast is not a backend (auto, lasp or cudnn)");
      const insist = run("cudnn");
      expect(insist.status).toBe(2);
      expect(insist.stderr).toContain(
        "LASP_SOFTMAX_BACKEND=cudnn, but this program was built without cuDNN (CMake did not find it; set CUDNN_HOME)",
      );
    },
    120_000,
  );
});

describe("what the generator refuses", () => {
  it("says when more key blocks would be merged than the merge kernel takes", () => {
    const source = `model m { vocab 64 hidden 256 ffn 64 heads 4 head_dim 64
      layer S = softmax_attention { }
      stack S x 1 }
      parallel { gpus 128 linear lasp2 softmax ring }
      run { seq_len 8K }`;
    const spec = checkSource("wide.lasp", source).spec!;
    expect(() => generateProgram(spec)).toThrow(CodegenLimitation);
    expect(() => generateProgram(spec)).toThrow(/combines at most 64 key blocks, and sequence is 128/);
    // LASP-2H's gathered call merges nothing: 128 sequence ranks are generated.
    const gathered = checkSource("wide.lasp", source.replace("softmax ring", "softmax allgather")).spec!;
    expect(generateProgram(gathered).get("lasp/program.cuh")).toContain(
      "static const lasp::GatheredShape kS_gathered[kWorld]",
    );
  });
});

describe("the generated host code", () => {
  const fixtures = resolve("src/codegen/fixtures/host-api");
  const specs: [string, Map<string, string>][] = [
    ["LASP-2 + LASP-2H zigzag", program("gpus 2 sequence 2 linear lasp2 softmax allgather layout zigzag")],
    ["LASP-1 + ring", program("gpus 4 sequence 4 linear lasp1 softmax ring layout contiguous")],
    ["Ulysses", program("gpus 2 sequence 2 linear ulysses softmax ulysses layout zigzag")],
    ["Ulysses, kv heads replicated", program("gpus 4 sequence 4 softmax ulysses layout zigzag", "S x 1")],
    [
      "softmax only, sequence x data",
      program("gpus 4 sequence 2 data 2 softmax allgather", "S x 2", "batch 2"),
    ],
  ];
  for (const [name, files] of specs) {
    // The host code is what is checked here (mainHostCheck: no device pass, no object file); the links test
    // of codegen.test.ts compiles one main.cu as CUDA to an object.
    itWithNvcc(
      `type-checks with nvcc against declaration-only NCCL and cuBLAS headers: ${name}`,
      async ({ expect }) => {
        const dir = mkdtempSync(join(tmpdir(), "lasp-host-"));
        await writeProgram(dir, files);
        const result = await nvcc(dir, mainHostCheck(fixtures));
        expect(result.stderr).not.toMatch(/error/);
        expect(result.status).toBe(0);
      },
      120_000,
    );
  }
});
