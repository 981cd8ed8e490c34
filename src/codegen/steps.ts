// IR steps to C++ calls: which runtime function each op becomes and every argument it gets (buffer slots,
// piece offsets, element counts, gap tables), all computed here so the templates only print them. One
// handler per op of the catalogue (CODEGEN_HANDLERS), reading the step's named operands; the attention calls
// pass them on by the same names, as a struct (runtime/attention_args.cuh). The communicator and the SMs a
// GEMM leaves come from the placement pass's fields (communicators.ts spells them).
import {
  handleOp,
  type BufferDecl,
  type ComputeStep,
  type LayoutPlan,
  type OpHandlers,
  type ScheduleSizes,
  type Step,
} from "../schedule/ir.js";
import { elementsOf } from "../schedule/context.js";
import type { HeadShard } from "../schedule/ops.js";
import { communicator, smsLeft } from "./communicators.js";
import { cppIdent, softmaxDimsLiteral, softmaxDimsName } from "./names.js";
import type { StepContext } from "./step-context.js";
import { workspaceFields } from "./workspaces.js";

export type { StepContext, TableSink } from "./step-context.js";

export interface Call {
  /** The checking macro wrapped around the call, or "" for the runtime's own checked launchers. */
  check: "" | "CUDA_CHECK" | "NCCL_CHECK";
  fn: string;
  /** The struct of named operands the call takes first (attention_args.cuh), for the attention calls. */
  operands?: NamedOperands;
  /** The positional arguments: all of them, or those after the struct (the shape, decays, stream). */
  args: string[];
}

/**
 * A `lasp::<type> args;` whose fields the program sets, one line per group of related fields (inputs,
 * outputs, where and how, workspaces); an unset field keeps its default (nullptr).
 */
export interface NamedOperands {
  type: string;
  lines: Field[][];
}

export interface Field {
  name: string;
  value: string;
}

type FieldGroup = Record<string, string | undefined>;

export class UnsupportedOp extends Error {}

function decl(ctx: StepContext, name: string): BufferDecl {
  const found = ctx.program.buffers.find((b) => b.name === name);
  if (found === undefined) throw new Error(`step uses undeclared buffer ${name}`);
  return found;
}

function slotElements(d: BufferDecl): number {
  return d.slots === undefined ? elementsOf(d) : elementsOf(d) / d.slots;
}

/** `b.name` or `b.name + slot * stride` for slot > 0. */
function slotPointer(ctx: StepContext, name: string, slot: number): string {
  const base = `b.${cppIdent(name)}`;
  const d = decl(ctx, name);
  if (d.slots === undefined || slot === 0) return base;
  return `${base} + ${slot * slotElements(d)}`;
}

function ncclType(d: BufferDecl): string {
  return d.dtype === "fp32" ? "ncclFloat32" : d.dtype === "fp16" ? "ncclFloat16" : "ncclBfloat16";
}

function sizeofType(d: BufferDecl): string {
  return d.dtype === "fp32" ? "sizeof(float)" : "sizeof(bf16)";
}

const stream = (step: Step): string => (step.stream === "compute" ? "c.compute" : "c.comm");

function piece(ctx: StepContext, j: number): string {
  const local = ctx.plan.byRank[ctx.program.rank]!;
  const offset = local.slice(0, j).reduce((s, p) => s + p.length, 0);
  return `lasp::Piece{${offset}, ${local[j]!.length}}`;
}

/**
 * Registers a gap table for a decayed sum over the gathered states (rank-major order): gaps[u] is the
 * number of tokens between gathered piece u and the target piece j (prefix: u before the target; suffix: u
 * after), or -1 when u does not contribute. Returns the C++ name of the device pointer.
 */
function gapTable(ctx: StepContext, j: number, prefix: boolean): string {
  const target = ctx.plan.byRank[ctx.program.rank]![j]!;
  const gathered = ctx.plan.byRank.flat(); // rank-major, as the AllGather lays them out
  const gaps = gathered.map((u) => {
    const gap = prefix ? target.start - (u.start + u.length) : u.start - (target.start + target.length);
    return u.index !== target.index && gap >= 0 ? gap : -1;
  });
  // The direction in the name: a bidirectional layer with documents scans both ways in one pass.
  const name = `k${ctx.kind}_${ctx.pass}_r${ctx.program.rank}_${prefix ? "prefix" : "suffix"}_gaps${j}`;
  ctx.tables.push({
    name,
    ctype: "int",
    values: gaps.join(", "),
    count: gaps.length,
    comment: `${prefix ? "prefix" : "suffix"} gaps of rank ${ctx.program.rank}'s piece ${target.index} (-1: not included)`,
  });
  return `c.tables.${name}`;
}

export function stepCalls(step: Step, ctx: StepContext): Call[] {
  if (step.kind === "collective") return collectiveCalls(step, ctx);
  if (step.kind === "send" || step.kind === "recv") {
    const fn = step.kind === "send" ? "ncclSend" : "ncclRecv";
    return step.transfers.flatMap((t): Call[] => {
      const d = decl(ctx, t.buffer);
      const call = (pointer: string, count: number): Call => ({
        check: "NCCL_CHECK" as const,
        fn,
        args: [pointer, String(count), ncclType(d), String(step.peer), "c.nccl", stream(step)],
      });
      if (t.rows === undefined) return [call(slotPointer(ctx, t.buffer, t.slot), slotElements(d))];
      // All-Scan: one block of rows of every (batch, head)'s d x d state, contiguous within each state: one
      // transfer per state, in one NCCL group (the step's calls are grouped), in the same order on both sides.
      const { batch, heads, headDim } = ctx.sizes;
      const base = slotPointer(ctx, t.buffer, t.slot);
      return Array.from({ length: batch * heads }, (_, bh) =>
        call(`${base} + ${(bh * headDim + t.rows!.start) * headDim}`, t.rows!.count * headDim),
      );
    });
  }
  return handleOp(CODEGEN_HANDLERS, step, ctx);
}

function collectiveCalls(step: Extract<Step, { kind: "collective" }>, ctx: StepContext): Call[] {
  if (step.collective === "alltoall") return alltoallCalls(step, ctx);
  if (step.collective === "reducescatter" && step.placement.copyEngineCandidate)
    return scatterCalls(step, ctx);
  const comm = communicator(step.placement);
  return step.transfers.map(({ send, recv }) => {
    const d = decl(ctx, send);
    const count = String(elementsOf(d));
    const pointers = [`b.${cppIdent(send)}`, `b.${cppIdent(recv)}`];
    switch (step.collective) {
      case "allgather":
        return {
          check: "NCCL_CHECK" as const,
          fn: "ncclAllGather",
          args: [...pointers, count, ncclType(d), comm, stream(step)],
        };
      case "allreduce":
        return {
          check: "NCCL_CHECK" as const,
          fn: "ncclAllReduce",
          args: [...pointers, count, ncclType(d), "ncclSum", comm, stream(step)],
        };
      case "reducescatter": {
        const recvCount = String(elementsOf(decl(ctx, recv)));
        return {
          check: "NCCL_CHECK" as const,
          fn: "ncclReduceScatter",
          args: [...pointers, recvCount, ncclType(d), "ncclSum", comm, stream(step)],
        };
      }
      case "alltoall":
        throw new Error("alltoall is expanded by alltoallCalls");
    }
  });
}

/**
 * A ReduceScatter that may take the copy engines (placement.ts): reduce_scatter.cuh's AlltoAll into the
 * transfer's `slices` and sum in rank order where the program took that path, NCCL's kernel otherwise: one
 * call for all the step's transfers, which groups its NCCL calls itself (the sums follow the AlltoAlls).
 */
function scatterCalls(step: Extract<Step, { kind: "collective" }>, ctx: StepContext): Call[] {
  const transfers = step.transfers.map(
    ({ send, recv, slices }) =>
      `{${buf(send)}, ${buf(recv)}, ${buf(slices!)}, ${elementsOf(decl(ctx, recv))}}`,
  );
  return [
    {
      check: "",
      fn: "lasp::reduce_scatter_sum",
      args: [
        `{${transfers.join(", ")}}`,
        String(step.group.length),
        "c.scatters_on_copy_engines",
        "c.nccl_few_ctas",
        // NCCL's kernel on the default communicator: a candidate is never a few-CTA collective.
        "c.nccl",
        stream(step),
      ],
    },
  ];
}

/** AllToAll as one grouped send and receive per peer: slot r goes to rank r, slot r comes from rank r. */
function alltoallCalls(step: Extract<Step, { kind: "collective" }>, ctx: StepContext): Call[] {
  return step.transfers.flatMap(({ send, recv }) => {
    const d = decl(ctx, send);
    const count = String(slotElements(d));
    return step.group.flatMap((peer, r) => [
      {
        check: "NCCL_CHECK" as const,
        fn: "ncclSend",
        args: [slotPointer(ctx, send, r), count, ncclType(d), String(peer), "c.nccl", stream(step)],
      },
      {
        check: "NCCL_CHECK" as const,
        fn: "ncclRecv",
        args: [
          slotPointer(ctx, recv, r),
          count,
          ncclType(decl(ctx, recv)),
          String(peer),
          "c.nccl",
          stream(step),
        ],
      },
    ]);
  });
}

const buf = (name: string): string => `b.${cppIdent(name)}`;
const launch = (fn: string, args: string[]): Call[] => [{ check: "", fn: `lasp::${fn}`, args }];
const decayTable = (ctx: StepContext): string => `c.tables.k${ctx.kind}Decay`;
const bool = (value: boolean): string => (value ? "true" : "false");
const DIMS = "c.dims";

/**
 * A call taking its operands as the struct `type` (attention_args.cuh), then `args`: each group of fields
 * one line, in the order given; an undefined value (an absent optional operand or workspace) stays unset.
 */
function namedCall(fn: string, type: string, groups: FieldGroup[], args: string[]): Call[] {
  const lines = groups
    .map((group) =>
      Object.entries(group).flatMap(([name, value]) => (value === undefined ? [] : [{ name, value }])),
    )
    .filter((line) => line.length > 0);
  return [{ check: "", fn: `lasp::${fn}`, operands: { type, lines }, args }];
}

/** Piece j's slot of an optional state (P or G), or undefined (the field stays nullptr: no such term). */
const statePointer = (ctx: StepContext, name: string | undefined, j: number): string | undefined =>
  name === undefined ? undefined : slotPointer(ctx, name, j);

/** The step's packed documents (program.cuh's Ctx::docs), set each step; absent without documents. */
const DOCS = "c.docs";

/** The documents of a softmax call: its positions come from the piece maps (or are 0.. for a whole sequence). */
const softmaxDocuments = (ends: string | undefined): FieldGroup => (ends === undefined ? {} : { docs: DOCS });

/** The global position of the rank's local piece j: where its rows sit in the documents. */
const position = (ctx: StepContext, j: number): number => ctx.plan.byRank[ctx.program.rank]![j]!.start;

/**
 * The documents a linear call of piece j reads (operand `ends`), with the piece's global position, and the
 * flag a state step writes; no fields without documents, so `documents none` prints the calls it always did.
 */
function documentFields(ends: string | undefined, at: number, flag?: string): FieldGroup {
  if (ends === undefined) return {};
  return { docs: DOCS, position: String(at), flag };
}

/** The arguments after a linear-attention call's struct: this rank's dims, the decays, the stream. */
const linearArgs = (step: Step, ctx: StepContext): string[] => [DIMS, decayTable(ctx), stream(step)];

/** A piece's prefix (P) or suffix (G) state from the exchanged states, as its mode says. */
function combineCalls(
  step: ComputeStep<"linear.prefix" | "linear.suffix">,
  out: string,
  ctx: StepContext,
): Call[] {
  const j = step.params.piece;
  const s = stream(step);
  const target = slotPointer(ctx, out, j);
  const { gathered, flags, total, own } = step.operands;
  if (step.params.mode === "zero") {
    const d = decl(ctx, out);
    return [
      {
        check: "CUDA_CHECK",
        fn: "cudaMemsetAsync",
        args: [target, "0", `${slotElements(d)} * ${sizeofType(d)}`, s],
      },
    ];
  }
  if (step.params.mode === "others")
    return launch("state_sub", [buf(total!), slotPointer(ctx, own!, j), target, DIMS, s]);
  const slots = decl(ctx, gathered!).slots!;
  const gaps = gapTable(ctx, j, step.op === "linear.prefix");
  // With documents the scan stops at the nearest piece in which a document ends (its flag).
  if (flags !== undefined)
    return launch("linear_document_scan", [
      buf(gathered!),
      buf(flags),
      String(slots),
      gaps,
      target,
      DIMS,
      decayTable(ctx),
      s,
    ]);
  return launch("linear_decayed_sum", [
    buf(gathered!),
    String(slots),
    gaps,
    target,
    DIMS,
    decayTable(ctx),
    s,
  ]);
}

/** One handler per op of the catalogue (schedule/ops.ts): the runtime calls a compute step becomes. */
export const CODEGEN_HANDLERS: OpHandlers<[StepContext], Call[]> = {
  "linear.state": (step, ctx) => {
    const j = step.params.piece;
    const { k, v, ends, m, head, flag } = step.operands;
    return namedCall(
      "linear_state",
      "LinearStateArgs",
      [
        { k: buf(k), v: buf(v) },
        { m: slotPointer(ctx, m, j), head: statePointer(ctx, head, j) },
        { piece: piece(ctx, j) },
        documentFields(ends, position(ctx, j), flag === undefined ? undefined : slotPointer(ctx, flag, j)),
        workspaceFields(step, ctx, j),
      ],
      linearArgs(step, ctx),
    );
  },
  "linear.intra": (step, ctx) => {
    const j = step.params.piece;
    const { q, k, v, ends, o } = step.operands;
    return namedCall(
      "linear_intra",
      "LinearIntraArgs",
      [
        { q: buf(q), k: buf(k), v: buf(v) },
        { o: buf(o) },
        { piece: piece(ctx, j), causal: bool(step.params.causal) },
        documentFields(ends, position(ctx, j)),
        workspaceFields(step, ctx, j),
      ],
      linearArgs(step, ctx),
    );
  },
  "linear.prefix": (step, ctx) => combineCalls(step, step.operands.p, ctx),
  "linear.suffix": (step, ctx) => combineCalls(step, step.operands.g, ctx),
  "linear.forward_fused": (step, ctx) => {
    const j = step.params.piece;
    const { q, k, v, p, after, ends, o } = step.operands;
    return namedCall(
      "linear_forward_fused",
      "LinearForwardFusedArgs",
      [
        { q: buf(q), k: buf(k), v: buf(v), p: statePointer(ctx, p, j), after: statePointer(ctx, after, j) },
        { o: buf(o) },
        { piece: piece(ctx, j), causal: bool(step.params.causal) },
        documentFields(ends, position(ctx, j)),
        workspaceFields(step, ctx, j),
      ],
      linearArgs(step, ctx),
    );
  },
  "linear.backward_fused": (step, ctx) => {
    const j = step.params.piece;
    const { q, k, v, dout, p, after, g, before, ends, dq, dk, dv } = step.operands;
    return namedCall(
      "linear_backward_fused",
      "LinearBackwardFusedArgs",
      [
        { q: buf(q), k: buf(k), v: buf(v), dout: buf(dout) },
        {
          p: statePointer(ctx, p, j),
          after: statePointer(ctx, after, j),
          g: statePointer(ctx, g, j),
          before: statePointer(ctx, before, j),
        },
        { dq: buf(dq), dk: buf(dk), dv: buf(dv) },
        { piece: piece(ctx, j), causal: bool(step.params.causal) },
        documentFields(ends, position(ctx, j)),
        workspaceFields(step, ctx, j),
      ],
      linearArgs(step, ctx),
    );
  },
  host: (step) => {
    const work = {
      q_projection: "HostWork::kQProjection",
      o_weight_grad: "HostWork::kOWeightGrad",
      q_grads: "HostWork::kQGrads",
    }[step.params.work];
    return [{ check: "", fn: "run_host", args: ["run", work, smsLeft(step.placement)] }];
  },
  "linear.inter": (step, ctx) => {
    const j = step.params.piece;
    const { q, p, after, ends, o } = step.operands;
    return namedCall(
      "linear_inter",
      "LinearInterArgs",
      [
        { q: buf(q), p: slotPointer(ctx, p, j), after: statePointer(ctx, after, j) },
        { o: buf(o) },
        { piece: piece(ctx, j) },
        documentFields(ends, position(ctx, j)),
      ],
      linearArgs(step, ctx),
    );
  },
  "linear.ring_forward": (step, ctx) => {
    const { p, m, next } = step.operands;
    return ringCalls(step, [p, m, next], ctx);
  },
  "linear.ring_backward": (step, ctx) => {
    const { g, dm, previous } = step.operands;
    return ringCalls(step, [g, dm, previous], ctx);
  },
  "linear.grad_state": (step, ctx) => {
    const j = step.params.piece;
    const { q, dout, ends, dm, tail, flag } = step.operands;
    return namedCall(
      "linear_grad_state",
      "LinearGradStateArgs",
      [
        { q: buf(q), dout: buf(dout) },
        { dm: slotPointer(ctx, dm, j), tail: statePointer(ctx, tail, j) },
        { piece: piece(ctx, j) },
        documentFields(ends, position(ctx, j), flag === undefined ? undefined : slotPointer(ctx, flag, j)),
        workspaceFields(step, ctx, j),
      ],
      linearArgs(step, ctx),
    );
  },
  "linear.intra_backward": (step, ctx) => {
    const j = step.params.piece;
    const { q, k, v, dout, ends, dq, dk, dv } = step.operands;
    return namedCall(
      "linear_intra_backward",
      "LinearIntraBackwardArgs",
      [
        { q: buf(q), k: buf(k), v: buf(v), dout: buf(dout) },
        { dq: buf(dq), dk: buf(dk), dv: buf(dv) },
        { piece: piece(ctx, j), causal: bool(step.params.causal) },
        documentFields(ends, position(ctx, j)),
        workspaceFields(step, ctx, j),
      ],
      linearArgs(step, ctx),
    );
  },
  "linear.dq_inter": (step, ctx) => {
    const j = step.params.piece;
    const { dout, p, after, ends, dq } = step.operands;
    return namedCall(
      "linear_dq_inter",
      "LinearDqInterArgs",
      [
        { dout: buf(dout), p: slotPointer(ctx, p, j), after: statePointer(ctx, after, j) },
        { dq: buf(dq) },
        { piece: piece(ctx, j) },
        documentFields(ends, position(ctx, j)),
      ],
      linearArgs(step, ctx),
    );
  },
  "linear.dkdv_inter": (step, ctx) => {
    const j = step.params.piece;
    const { k, v, g, before, ends, dk, dv } = step.operands;
    return namedCall(
      "linear_dkdv_inter",
      "LinearDkdvInterArgs",
      [
        { k: buf(k), v: buf(v), g: slotPointer(ctx, g, j), before: statePointer(ctx, before, j) },
        { dk: buf(dk), dv: buf(dv) },
        { piece: piece(ctx, j) },
        documentFields(ends, position(ctx, j)),
      ],
      linearArgs(step, ctx),
    );
  },
  accumulate: (step, ctx) => {
    const { src, dst } = step.operands;
    const d = decl(ctx, src);
    // Ulysses' bf16 dK, dV partials of replicated kv heads; otherwise fp32 states.
    if (d.dtype === "bf16")
      return launch("sum_slices_bf16", [
        buf(src),
        String(d.slots ?? 1),
        String(slotElements(d)),
        buf(dst),
        stream(step),
      ]);
    return launch("state_sum", [buf(src), String(d.slots ?? 1), buf(dst), DIMS, stream(step)]);
  },
  copy: (step, ctx) => {
    const from = step.params.from ?? 0;
    const to = step.params.to ?? 0;
    const s = stream(step);
    return step.operands.src.map((src, i) => {
      const dst = step.operands.dst[i]!;
      const d = decl(ctx, src);
      const target = decl(ctx, dst);
      if (d.dtype !== target.dtype) {
        if (d.dtype !== "fp32" || target.dtype !== "bf16")
          throw new UnsupportedOp(`a copy from ${d.dtype} to ${target.dtype} is not generated`);
        return {
          check: "" as const,
          fn: "lasp::cast_to_bf16",
          args: [slotPointer(ctx, src, from), slotPointer(ctx, dst, to), String(slotElements(d)), s],
        };
      }
      const rows = step.params.rows;
      if (rows !== undefined) {
        // All-Scan's turn: one block of rows of every d x d state: B x H runs of rows x d floats, a state apart.
        const { batch, heads, headDim } = ctx.sizes;
        const offset = rows.start * headDim;
        const pitch = `${headDim * headDim} * ${sizeofType(d)}`;
        return {
          check: "CUDA_CHECK" as const,
          fn: "cudaMemcpy2DAsync",
          args: [
            `${slotPointer(ctx, dst, to)} + ${offset}`,
            pitch,
            `${slotPointer(ctx, src, from)} + ${offset}`,
            pitch,
            `${rows.count * headDim} * ${sizeofType(d)}`,
            String(batch * heads),
            "cudaMemcpyDeviceToDevice",
            s,
          ],
        };
      }
      return {
        check: "CUDA_CHECK" as const,
        fn: "cudaMemcpyAsync",
        args: [
          slotPointer(ctx, dst, to),
          slotPointer(ctx, src, from),
          `${slotElements(d)} * ${sizeofType(d)}`,
          "cudaMemcpyDeviceToDevice",
          s,
        ],
      };
    });
  },
  fill_zero: (step, ctx) =>
    step.operands.dst.map((name) => {
      const d = decl(ctx, name);
      return {
        check: "CUDA_CHECK" as const,
        fn: "cudaMemsetAsync",
        args: [buf(name), "0", `${elementsOf(d)} * ${sizeofType(d)}`, stream(step)],
      };
    }),
  "softmax.block": (step, ctx) => {
    const { source, causal } = step.params;
    const kvSlot = step.params.slot ?? source;
    const { q, k, v, ends, o, lse } = step.operands;
    return namedCall(
      "softmax_block_forward",
      "SoftmaxBlockArgs",
      [
        { q: buf(q), k: slotPointer(ctx, k, kvSlot), v: slotPointer(ctx, v, kvSlot) },
        { o: slotPointer(ctx, o, source), lse: slotPointer(ctx, lse, source) },
        { q_map: pieceMapOf(ctx.program.rank), k_map: pieceMapOf(source), causal: bool(causal) },
        softmaxDocuments(ends),
      ],
      [softmaxDims(ctx), stream(step)],
    );
  },
  "softmax.merge": (step, ctx) => {
    const { sources } = step.params;
    const { parts, partLse, o, lse } = step.operands;
    const [B, L, H, d] = decl(ctx, o).shape as [number, number, number, number];
    return namedCall(
      "softmax_merge",
      "SoftmaxMergeArgs",
      [
        {
          parts: buf(parts),
          part_lse: buf(partLse),
          sources: `lasp::SlotList{${sources.length}, {${sources.join(", ")}}}`,
        },
        { o: buf(o), lse: buf(lse) },
        { batch: String(B), rows: String(L), heads: String(H), head_dim: String(d) },
      ],
      [stream(step)],
    );
  },
  "softmax.block_backward": (step, ctx) => {
    const { source, causal } = step.params;
    const kvSlot = step.params.slot ?? source;
    const { q, k, v, o, lse, dout, ends, dq, dk, dv } = step.operands;
    return namedCall(
      "softmax_block_backward",
      "SoftmaxBlockBackwardArgs",
      [
        { q: buf(q), k: slotPointer(ctx, k, kvSlot), v: slotPointer(ctx, v, kvSlot) },
        { o: buf(o), lse: buf(lse), dout: buf(dout) },
        { dq: buf(dq), dk: slotPointer(ctx, dk, kvSlot), dv: slotPointer(ctx, dv, kvSlot) },
        { q_map: pieceMapOf(ctx.program.rank), k_map: pieceMapOf(source), causal: bool(causal) },
        softmaxDocuments(ends),
      ],
      [softmaxDims(ctx), stream(step)],
    );
  },
  "softmax.gathered": (step, ctx) => {
    const { q, k, v, ends, o, lse } = step.operands;
    return namedCall(
      "softmax_gathered_forward",
      "SoftmaxGatheredArgs",
      [
        { q: buf(q), k: buf(k), v: buf(v) },
        { o: buf(o), lse: buf(lse) },
        gatheredFields(ctx, step),
        softmaxDocuments(ends),
      ],
      [gatheredSoftmaxDims(ctx.sizes, ctx.plan, ctx.program.rank, decl(ctx, k)), stream(step)],
    );
  },
  "softmax.gathered_backward": (step, ctx) => {
    const { q, k, v, o, lse, dout, ends, dq, dk, dv } = step.operands;
    return namedCall(
      "softmax_gathered_backward",
      "SoftmaxGatheredBackwardArgs",
      [
        { q: buf(q), k: buf(k), v: buf(v) },
        { o: buf(o), lse: buf(lse), dout: buf(dout) },
        { dq: buf(dq), dk: buf(dk), dv: buf(dv) },
        gatheredFields(ctx, step),
        softmaxDocuments(ends),
      ],
      [gatheredSoftmaxDims(ctx.sizes, ctx.plan, ctx.program.rank, decl(ctx, k)), stream(step)],
    );
  },
  order: (step, ctx) => orderCalls(step, ctx),
  "softmax.full": (step, ctx) => {
    const { q, k, v, ends, o, lse } = step.operands;
    return namedCall(
      "softmax_whole_forward",
      "SoftmaxFullArgs",
      [
        { q: buf(q), k: buf(k), v: buf(v) },
        { o: buf(o), lse: buf(lse) },
        { causal: bool(step.params.causal) },
        softmaxDocuments(ends),
      ],
      [fullSoftmaxDims(ctx, step), stream(step)],
    );
  },
  "softmax.full_backward": (step, ctx) => {
    const { q, k, v, o, lse, dout, ends, dq, dk, dv } = step.operands;
    return namedCall(
      "softmax_whole_backward",
      "SoftmaxFullBackwardArgs",
      [
        { q: buf(q), k: buf(k), v: buf(v) },
        { o: buf(o), lse: buf(lse), dout: buf(dout) },
        { dq: buf(dq), dk: buf(dk), dv: buf(dv) },
        { causal: bool(step.params.causal) },
        softmaxDocuments(ends),
      ],
      [fullSoftmaxDims(ctx, step), stream(step)],
    );
  },
  "linear.full": (step, ctx) => {
    const { q, k, v, ends, o } = step.operands;
    return namedCall(
      "linear_intra",
      "LinearIntraArgs",
      [
        { q: buf(q), k: buf(k), v: buf(v) },
        { o: buf(o) },
        { piece: `lasp::Piece{0, ${ctx.sizes.seqLen}}`, causal: bool(step.params.causal) },
        documentFields(ends, 0),
      ],
      [fullLinearDims(ctx, step.params), headDecay(ctx, step.params), stream(step)],
    );
  },
  "linear.full_backward": (step, ctx) => {
    const { q, k, v, dout, ends, dq, dk, dv } = step.operands;
    return namedCall(
      "linear_intra_backward",
      "LinearIntraBackwardArgs",
      [
        { q: buf(q), k: buf(k), v: buf(v), dout: buf(dout) },
        { dq: buf(dq), dk: buf(dk), dv: buf(dv) },
        { piece: `lasp::Piece{0, ${ctx.sizes.seqLen}}`, causal: bool(step.params.causal) },
        documentFields(ends, 0),
      ],
      [fullLinearDims(ctx, step.params), headDecay(ctx, step.params), stream(step)],
    );
  },
  pack: (step, ctx) => movementCalls(step, ctx),
  unpack: (step, ctx) => movementCalls(step, ctx),
};

/** LASP-1's hand-on (forward) or hand-back (backward): out = lam^C state + own, all slots of piece j. */
function ringCalls(
  step: ComputeStep<"linear.ring_forward" | "linear.ring_backward">,
  [state, own, out]: [string, string, string],
  ctx: StepContext,
): Call[] {
  const j = step.params.piece;
  const length = ctx.plan.byRank[ctx.program.rank]![j]!.length;
  const rows = step.params.rows;
  const operands = [
    slotPointer(ctx, state, j),
    slotPointer(ctx, own, j),
    String(length),
    slotPointer(ctx, out, j),
    DIMS,
    decayTable(ctx),
  ];
  // With documents the carry is 0 in a batch row whose piece holds an end: the step reads the documents.
  if (step.operands.ends !== undefined)
    return launch("linear_document_ring_step", [
      ...operands,
      DOCS,
      String(position(ctx, j)),
      String(rows?.start ?? 0),
      String(rows?.count ?? ctx.sizes.headDim),
      stream(step),
    ]);
  // All-Scan: the same hand-on over one block of each state's rows.
  if (rows !== undefined)
    return launch("linear_ring_step_rows", [
      ...operands,
      String(rows.start),
      String(rows.count),
      stream(step),
    ]);
  return launch("linear_ring_step", [...operands, stream(step)]);
}

/** The piece map of a sequence-parallel rank (program.cuh defines kPieceMaps before the steps). */
const pieceMapOf = (rank: number): string => `kPieceMaps[${rank}]`;

/** Softmax dimensions of a block step: this rank's queries against one rank's keys (program.cuh). */
const softmaxDims = (ctx: StepContext): string => softmaxDimsName(ctx.kind);

/** The fields of a gathered call after its buffers: the rank's pieces and the keys they can see. */
function gatheredFields(
  ctx: StepContext,
  step: ComputeStep<"softmax.gathered" | "softmax.gathered_backward">,
): FieldGroup {
  return {
    q_map: pieceMapOf(ctx.program.rank),
    key_rows: String(step.params.keyRows),
    causal: bool(step.params.causal),
  };
}

/** This rank's queries against the whole sequence's keys in global order (k [B, S, Hkv, d]). */
export function gatheredSoftmaxDims(
  sizes: ScheduleSizes,
  plan: LayoutPlan,
  rank: number,
  k: Pick<BufferDecl, "shape">,
): string {
  const { batch, heads, headDim } = sizes;
  const [, kRows, kvHeads] = k.shape as [number, number, number];
  const qRows = plan.byRank[rank]!.reduce((sum, p) => sum + p.length, 0);
  return softmaxDimsLiteral({ batch, qRows, kRows, heads, kvHeads, headDim });
}

/**
 * LASP-2H's reordering as strided copies: each piece of each rank's slot (B runs of its rows, one per batch
 * entry) to its global rows, positions [0, rows) only; back to the slots, the rows at positions >= rows
 * are cleared instead. Offsets in elements, pitches and widths in bytes.
 */
function orderCalls(step: ComputeStep<"order">, ctx: StepContext): Call[] {
  const { to, rows } = step.params;
  const calls: Call[] = [];
  step.operands.src.forEach((src, i) => {
    const dst = step.operands.dst[i]!;
    const [slotsBuf, seqBuf] = to === "global" ? [src, dst] : [dst, src];
    const slots = decl(ctx, slotsBuf);
    const seq = decl(ctx, seqBuf);
    const [B, N, heads, d] = seq.shape as [number, number, number, number];
    const L = slots.shape[2]!;
    const size = sizeofType(seq);
    const row = heads * d;
    for (let s = 0; s < ctx.plan.ranks; s++) {
      let local = 0;
      for (const p of ctx.plan.byRank[s]!) {
        const kept = Math.max(0, Math.min(p.length, rows - p.start));
        const at = (name: string, n: number) => (n === 0 ? buf(name) : `${buf(name)} + ${n}`);
        const slotRow = (r: number) => at(slotsBuf, s * slotElements(slots) + r * row);
        const slotAt = slotRow(local);
        const seqAt = at(seqBuf, p.start * row);
        const [slotPitch, seqPitch] = [`${L * row} * ${size}`, `${N * row} * ${size}`];
        if (kept > 0)
          calls.push({
            check: "CUDA_CHECK",
            fn: "cudaMemcpy2DAsync",
            args: [
              ...(to === "global"
                ? [seqAt, seqPitch, slotAt, slotPitch]
                : [slotAt, slotPitch, seqAt, seqPitch]),
              `${kept * row} * ${size}`,
              String(B),
              "cudaMemcpyDeviceToDevice",
              stream(step),
            ],
          });
        if (to === "ranks" && kept < p.length)
          calls.push({
            check: "CUDA_CHECK",
            fn: "cudaMemset2DAsync",
            args: [
              slotRow(local + kept),
              slotPitch,
              "0",
              `${(p.length - kept) * row} * ${size}`,
              String(B),
              stream(step),
            ],
          });
        local += p.length;
      }
    }
  });
  return calls;
}

/** A lasp::SoftmaxDims initialiser for a whole-sequence step (softmax.full and its backward). */
export function fullSoftmaxDims(ctx: Pick<StepContext, "sizes">, step: ComputeStep): string {
  if (step.op !== "softmax.full" && step.op !== "softmax.full_backward")
    throw new Error(`${step.op} is not a whole-sequence softmax step`);
  const { batch, seqLen, headDim } = ctx.sizes;
  const { heads, kvHeads } = step.params;
  return softmaxDimsLiteral({ batch, qRows: seqLen, kRows: seqLen, heads, kvHeads, headDim });
}

function fullLinearDims(ctx: StepContext, shard: HeadShard): string {
  const { batch, seqLen, headDim } = ctx.sizes;
  return `lasp::LinearDims{${batch}, ${seqLen}, ${shard.heads}, ${headDim}}`;
}

/** The decay table from this shard's first head on. */
function headDecay(ctx: StepContext, shard: HeadShard): string {
  const table = decayTable(ctx);
  return shard.headStart === 0 ? table : `${table} + ${shard.headStart}`;
}

/**
 * Ulysses data movement as strided copies (cudaMemcpy2DAsync): every copy moves a run of rows, each row a
 * contiguous group of heads, from one buffer's row pitch to another's. Rows are token rows; a rank's pieces
 * are runs of rows at their global positions. Offsets are in elements, pitches and widths in bytes.
 */
function movementCalls(step: ComputeStep<"pack" | "unpack">, ctx: StepContext): Call[] {
  const W = ctx.plan.ranks;
  const { batch: B, seqLen: N, headDim: d } = ctx.sizes;
  const layout = step.params.layout;
  const calls: Call[] = [];
  const copy2d = (
    dst: string,
    dstOffset: number,
    dstHeads: number,
    src: string,
    srcOffset: number,
    srcHeads: number,
    heads: number,
    rows: number,
  ): void => {
    const e = 2; // bf16
    calls.push({
      check: "CUDA_CHECK",
      fn: "cudaMemcpy2DAsync",
      args: [
        dstOffset === 0 ? `b.${cppIdent(dst)}` : `b.${cppIdent(dst)} + ${dstOffset}`,
        String(dstHeads * d * e),
        srcOffset === 0 ? `b.${cppIdent(src)}` : `b.${cppIdent(src)} + ${srcOffset}`,
        String(srcHeads * d * e),
        String(heads * d * e),
        String(rows),
        "cudaMemcpyDeviceToDevice",
        stream(step),
      ],
    });
  };
  const headsOf = (name: string): number => {
    const shape = decl(ctx, name).shape;
    return shape[shape.length - 2]!;
  };
  const { packed, parts } = step.operands;
  const packedDecl = decl(ctx, packed);
  const slotSize = slotElements(packedDecl);
  const S = headsOf(packed);
  const L = packedDecl.shape[2]!;
  for (let r = 0; r < W; r++) {
    let offset = 0; // heads of the packed row before this part
    for (const [i, part] of parts.entries()) {
      const Hx = headsOf(part);
      const R = step.params.replicas?.[i] ?? 1;
      if (layout === "heads" && R > 1) {
        // A kv head R ranks share: destination r gets head floor(r / R) (pack); source r's partial of it goes
        // to slot r mod R of the part, at that head (unpack, for the accumulate after it).
        const head = Math.floor(r / R) * d;
        if (step.op === "pack") copy2d(packed, r * slotSize + offset * d, S, part, head, Hx, 1, B * L);
        else {
          const at = (r % R) * slotElements(decl(ctx, part)) + head;
          copy2d(part, at, Hx, packed, r * slotSize + offset * d, S, 1, B * L);
        }
        offset += 1;
        continue;
      }
      const shardHeads = layout === "heads" ? Hx / W : Hx;
      if (layout === "heads") {
        // A head shard of every local row: one copy per rank and part.
        if (step.op === "pack")
          copy2d(packed, r * slotSize + offset * d, S, part, r * shardHeads * d, Hx, shardHeads, B * L);
        else copy2d(part, r * shardHeads * d, Hx, packed, r * slotSize + offset * d, S, shardHeads, B * L);
      } else {
        // Rank r's rows of a whole-sequence buffer: one copy per batch entry and piece.
        for (let bi = 0; bi < B; bi++) {
          let local = 0;
          for (const p of ctx.plan.byRank[r]!) {
            const packedAt = r * slotSize + ((bi * L + local) * S + offset) * d;
            const fullAt = (bi * N + p.start) * Hx * d;
            if (step.op === "pack") copy2d(packed, packedAt, S, part, fullAt, Hx, Hx, p.length);
            else copy2d(part, fullAt, Hx, packed, packedAt, S, Hx, p.length);
            local += p.length;
          }
        }
      }
      offset += shardHeads;
    }
  }
  return calls;
}
