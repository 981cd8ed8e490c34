// The segment-state workspaces in the generated program: a walk starts from them only where the state walk
// of the same piece ran before it (this pass, or for kv the forward pass of the same layer).
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { generateProgram } from "./generate.js";
import { lowerSpec } from "../schedule/lower.js";
import { namedCallsOf } from "./test-calls.js";
import { buildView, type ProgramView } from "./view-model.js";

function specOf(parallel: string, linear = "decay 0.9") {
  const source = `model m { vocab 64 hidden 256 ffn 64 heads 4 head_dim 64
    layer L = linear_attention { ${linear} }
    stack L x 2 }
    parallel { ${parallel} }
    run { seq_len 4K }`;
  const spec = checkSource("w.lasp", source).spec;
  if (spec === undefined) throw new Error("test spec does not check");
  return spec;
}

const programCuh = (parallel: string, linear?: string): string =>
  generateProgram(specOf(parallel, linear)).get("lasp/program.cuh")!;

function viewOf(parallel: string): ProgramView {
  const spec = specOf(parallel);
  return buildView({ spec, program: lowerSpec(spec), compilerVersion: "test" });
}

/** The workspace fields of `fn`'s calls to `runtimeFn`, one [kv_ws, qdo_ws] per call (undefined: unset). */
const workspacesOf = (view: ProgramView, fn: string, runtimeFn: string) =>
  namedCallsOf(view, fn, `lasp::${runtimeFn}`).map(({ fields }) => [
    fields.piece,
    fields.kv_ws,
    fields.qdo_ws,
  ]);

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
    const view = viewOf("gpus 2 linear lasp2 layout zigzag");
    // Two pieces per rank: piece 1's workspace sits ws_floats further.
    expect(workspacesOf(view, "L_forward_rank1", "linear_state")).toEqual([
      ["lasp::Piece{0, 1024}", "b.kv_ws", undefined],
      ["lasp::Piece{1024, 1024}", "b.kv_ws + 1 * b.ws_floats", undefined],
    ]);
    expect(workspacesOf(view, "L_forward_rank1", "linear_forward_fused")).toContainEqual([
      "lasp::Piece{1024, 1024}",
      "b.kv_ws + 1 * b.ws_floats",
      undefined,
    ]);
    expect(workspacesOf(view, "L_backward_rank1", "linear_grad_state")).toContainEqual([
      "lasp::Piece{0, 1024}",
      undefined,
      "b.qdo_ws",
    ]);
    expect(workspacesOf(view, "L_backward_rank1", "linear_backward_fused")).toContainEqual([
      "lasp::Piece{0, 1024}",
      "b.kv_ws",
      "b.qdo_ws",
    ]);
    // The program sets them on the walk's struct, on a line of their own.
    const cuh = programCuh("gpus 2 linear lasp2 layout zigzag");
    expect(body(cuh, "L_backward_rank1")).toContain(
      "    args.kv_ws = b.kv_ws; args.qdo_ws = b.qdo_ws;\n    lasp::linear_backward_fused(args, ",
    );
  });

  it("leave them unset (nullptr: recompute) where no state walk ran before the walk (LASP-1's end pieces)", () => {
    // LASP-1: the last piece hands its state to nobody, so no state walk; the first computes no dM.
    const view = viewOf("gpus 2 linear lasp1");
    const piece = "lasp::Piece{0, 2048}"; // one piece per rank
    expect(workspacesOf(view, "L_forward_rank1", "linear_intra")).toEqual([[piece, undefined, undefined]]);
    expect(workspacesOf(view, "L_forward_rank0", "linear_intra")).toEqual([[piece, "b.kv_ws", undefined]]);
    expect(workspacesOf(view, "L_backward_rank0", "linear_intra_backward")).toEqual([
      [piece, "b.kv_ws", undefined],
    ]);
    expect(workspacesOf(view, "L_backward_rank1", "linear_intra_backward")).toEqual([
      [piece, undefined, "b.qdo_ws"],
    ]);
  });

  it("are left out of kinds without state walks (Ulysses; LASP-2 with one piece in all)", () => {
    expect(programCuh("gpus 2 linear ulysses")).not.toContain("kv_ws");
    expect(programCuh("gpus 1 linear lasp2")).not.toContain("kv_ws");
  });
});
