// The linear-attention kernels' segment-state workspaces (linear_attention.cuh, "workspaces"): a state walk
// (linear_state, linear_grad_state) can keep the per-segment states it computes, and the walks that would
// compute them again (the intra-piece product forward, the dQ and dK/dV walks backward) start from them. The
// IR does not see them: they carry no value of the algorithm, only work the kernels would repeat. This
// module decides, per step, which workspace a call passes: one per piece, kv (from linear_state, kept from
// the forward pass to the backward, so per layer) and qdo (from linear_grad_state, within the backward).
import type { ComputeStep, RankProgram } from "../schedule/ir.js";
import type { StepContext } from "./step-context.js";

/** Whether a pass program computes piece j's state (op linear.state or linear.grad_state). */
function computes(
  program: RankProgram | undefined,
  op: "linear.state" | "linear.grad_state",
  j: number,
): boolean {
  return (program?.steps ?? []).some(
    (s) =>
      s.kind === "compute" &&
      (s.op === "linear.state" || s.op === "linear.grad_state") &&
      s.op === op &&
      s.params.piece === j,
  );
}

/** The workspaces a call passes, by field; an absent one is left unset (nullptr) in the call's struct. */
export type WorkspaceFields = { kv_ws?: string; qdo_ws?: string };

const at = (name: "kv_ws" | "qdo_ws", j: number): string =>
  j === 0 ? `b.${name}` : `b.${name} + ${j} * b.ws_floats`;

/** A kind uses workspaces when any rank's forward pass runs a state walk. */
export function usesWorkspaces(forward: RankProgram[]): boolean {
  return forward.some((p) => p.steps.some((s) => s.kind === "compute" && s.op === "linear.state"));
}

/**
 * The workspace fields of a linear-attention call of piece `j` (attention_args.cuh's kv_ws, qdo_ws), none
 * when the kind has no workspaces. A consumer's field is left unset (nullptr: recompute) unless the producer
 * ran for the same piece before it.
 */
export function workspaceFields(step: ComputeStep, ctx: StepContext, j: number): WorkspaceFields {
  if (!ctx.workspaces) return {};
  const forward = ctx.schedule.passes.forward.find((p) => p.rank === ctx.program.rank);
  const kv = computes(forward, "linear.state", j) ? at("kv_ws", j) : undefined;
  const qdo = computes(ctx.program, "linear.grad_state", j) ? at("qdo_ws", j) : undefined;
  switch (step.op) {
    case "linear.state":
      return { kv_ws: at("kv_ws", j) };
    case "linear.grad_state":
      return { qdo_ws: at("qdo_ws", j) };
    case "linear.intra":
    case "linear.forward_fused":
      return { kv_ws: kv };
    case "linear.intra_backward":
    case "linear.backward_fused":
      return { kv_ws: kv, qdo_ws: qdo };
    default:
      return {};
  }
}
