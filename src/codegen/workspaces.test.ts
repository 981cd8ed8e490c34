// The segment-state workspaces in the generated program: a walk starts from them only where the state walk
// of the same piece ran before it (this pass, or for kv the forward pass of the same layer).
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { generateProgram } from "./generate.js";

function programCuh(parallel: string, linear = "decay 0.9"): string {
  const source = `model m { vocab 64 hidden 256 ffn 64 heads 4 head_dim 64
    layer L = linear_attention { ${linear} }
    stack L x 2 }
    parallel { ${parallel} }
    run { seq_len 4K }`;
  const spec = checkSource("w.lasp", source).spec;
  if (spec === undefined) throw new Error("test spec does not check");
  return generateProgram(spec).get("lasp/program.cuh")!;
}

const body = (cuh: string, fn: string): string => {
  const start = cuh.indexOf(`static void ${fn}(`);
  expect(start, fn).toBeGreaterThanOrEqual(0);
  return cuh.slice(start, cuh.indexOf("\n}\n", start));
};

describe("segment-state workspaces", () => {
  it("are kept per layer for kv and shared for qdo, sized at allocation for the GPU", () => {
    const cuh = programCuh("gpus 2 linear lasp2 layout zigzag");
    expect(cuh).toContain("constexpr int64_t kPieceTokens = 1024;");
    expect(cuh).toContain(
      "b.ws_floats = lasp::linear_state_workspace_bytes(lasp::LinearDims{kBatch, kLocalTokens, kHeads, kHeadDim}, kPieceTokens) / sizeof(float);",
    );
    expect(cuh).toContain("CUDA_CHECK(cudaMalloc(&b.kv_ws, kPiecesPerRank * b.ws_floats * sizeof(float)));");
    expect(cuh).toContain("if (shared != nullptr) b.qdo_ws = shared->qdo_ws;");
  });

  it("pass each piece's own workspace from the state walk to the walks after it", () => {
    const cuh = programCuh("gpus 2 linear lasp2 layout zigzag");
    const forward = body(cuh, "L_forward_rank1");
    // Two pieces per rank: piece 1's workspace sits ws_floats further.
    expect(forward).toMatch(/linear_state\(b\.k, b\.v, lasp::Piece\{0, 1024\}, b\.m, [^;]*, b\.kv_ws\);/);
    expect(forward).toMatch(
      /linear_state\(b\.k, b\.v, lasp::Piece\{1024, 1024\}, b\.m \+ \d+, [^;]*, b\.kv_ws \+ 1 \* b\.ws_floats\);/,
    );
    expect(forward).toMatch(
      /linear_forward_fused\([^;]*lasp::Piece\{1024, 1024\}[^;]*, b\.kv_ws \+ 1 \* b\.ws_floats\);/,
    );
    const backward = body(cuh, "L_backward_rank1");
    expect(backward).toMatch(/linear_grad_state\([^;]*lasp::Piece\{0, 1024\}[^;]*, b\.qdo_ws\);/);
    expect(backward).toMatch(
      /linear_backward_fused\([^;]*lasp::Piece\{0, 1024\}[^;]*, b\.kv_ws, b\.qdo_ws\);/,
    );
  });

  it("give nullptr (recompute) where no state walk ran before the walk (LASP-1's end pieces)", () => {
    // LASP-1: the last piece hands its state to nobody, so no state walk; the first computes no dM.
    const cuh = programCuh("gpus 2 linear lasp1");
    expect(body(cuh, "L_forward_rank1")).toMatch(/linear_intra\([^;]*, nullptr\);/);
    expect(body(cuh, "L_forward_rank0")).toMatch(/linear_intra\([^;]*, b\.kv_ws\);/);
    expect(body(cuh, "L_backward_rank0")).toMatch(/linear_intra_backward\([^;]*, b\.kv_ws, nullptr\);/);
    expect(body(cuh, "L_backward_rank1")).toMatch(/linear_intra_backward\([^;]*, nullptr, b\.qdo_ws\);/);
  });

  it("are left out of kinds without state walks (Ulysses; LASP-2 with one piece in all)", () => {
    expect(programCuh("gpus 2 linear ulysses")).not.toContain("kv_ws");
    expect(programCuh("gpus 1 linear lasp2")).not.toContain("kv_ws");
  });
});
