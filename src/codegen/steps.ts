// IR steps to C++ calls: which runtime function each op becomes and every argument it gets (buffer slots,
// piece offsets, element counts, gap tables), all computed here so the templates only print them.
import type { BufferDecl, ComputeStep, Step } from "../schedule/ir.js";
import { elementsOf } from "../schedule/context.js";
import { GEMM_SM_MARGIN } from "./communicators.js";
import { cppIdent, softmaxDimsLiteral, softmaxDimsName } from "./names.js";
import type { StepContext } from "./step-context.js";
import { workspaceArgs } from "./workspaces.js";

export type { StepContext, TableSink } from "./step-context.js";

export interface Call {
  /** The checking macro wrapped around the call, or "" for the runtime's own checked launchers. */
  check: "" | "CUDA_CHECK" | "NCCL_CHECK";
  fn: string;
  args: string[];
}

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

function num(step: ComputeStep, key: string): number {
  const value = step.params[key];
  if (typeof value !== "number") throw new Error(`${step.op} needs numeric ${key}`);
  return value;
}

/**
 * Registers a gap table for a decayed sum over the gathered states (rank-major order): gaps[u] is the
 * number of tokens between gathered piece u and the target piece (prefix: u before the target; suffix: u
 * after), or -1 when u does not contribute. Returns the C++ name of the device pointer.
 */
function gapTable(ctx: StepContext, step: ComputeStep): string {
  const j = num(step, "piece");
  const target = ctx.plan.byRank[ctx.program.rank]![j]!;
  const gathered = ctx.plan.byRank.flat(); // rank-major, as the AllGather lays them out
  const gaps = gathered.map((u) => {
    if (step.op === "linear.prefix") {
      const gap = target.start - (u.start + u.length);
      return u.index !== target.index && gap >= 0 ? gap : -1;
    }
    const gap = u.start - (target.start + target.length);
    return u.index !== target.index && gap >= 0 ? gap : -1;
  });
  const name = `k${ctx.kind}_${ctx.pass}_r${ctx.program.rank}_gaps${j}`;
  ctx.tables.push({
    name,
    ctype: "int",
    values: gaps.join(", "),
    count: gaps.length,
    comment: `${step.op === "linear.prefix" ? "prefix" : "suffix"} gaps of rank ${ctx.program.rank}'s piece ${target.index} (-1: not included)`,
  });
  return `c.tables.${name}`;
}

/**
 * SMs a `host` step's GEMM leaves to the collective beside it: GEMM_SM_MARGIN for NCCL's kernel; none when
 * that collective is on the few-CTA communicator and NCCL copies it with the copy engines (decided at run
 * time, comm.cuh).
 */
function smsLeft(id: number, ctx: StepContext): string {
  const partner = ctx.besideCollective.get(id);
  if (partner === undefined) return "0";
  if (ctx.fewCtas.has(partner)) return `c.few_ctas_on_copy_engines ? 0 : ${GEMM_SM_MARGIN}`;
  return String(GEMM_SM_MARGIN);
}

export function stepCalls(step: Step, ctx: StepContext): Call[] {
  if (step.kind === "collective") return collectiveCalls(step, ctx);
  if (step.kind === "send" || step.kind === "recv") {
    return step.transfers.map((t) => {
      const d = decl(ctx, t.buffer);
      return {
        check: "NCCL_CHECK" as const,
        fn: step.kind === "send" ? "ncclSend" : "ncclRecv",
        args: [
          slotPointer(ctx, t.buffer, t.slot),
          String(slotElements(d)),
          ncclType(d),
          String(step.peer),
          "c.nccl",
          stream(step),
        ],
      };
    });
  }
  return computeCalls(step, ctx);
}

function collectiveCalls(step: Extract<Step, { kind: "collective" }>, ctx: StepContext): Call[] {
  if (step.collective === "alltoall") return alltoallCalls(step, ctx);
  const comm = ctx.fewCtas.has(step.id)
    ? "c.nccl_few_ctas"
    : ctx.copyCandidates.has(step.id)
      ? "c.few_ctas_on_copy_engines ? c.nccl_few_ctas : c.nccl"
      : "c.nccl";
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

function computeCalls(step: ComputeStep, ctx: StepContext): Call[] {
  const s = stream(step);
  const lam = `c.tables.k${ctx.kind}Decay`;
  const dims = "c.dims";
  const r = step.reads.map((n) => `b.${cppIdent(n)}`);
  const w = step.writes.map((n) => `b.${cppIdent(n)}`);
  const slot = (name: string, j: number): string => slotPointer(ctx, name, j);
  const launch = (fn: string, args: string[]): Call[] => [{ check: "", fn: `lasp::${fn}`, args }];
  const causal = step.params["causal"] === false ? "false" : "true";
  switch (step.op) {
    case "linear.state": {
      const j = num(step, "piece");
      const ws = workspaceArgs(step, ctx, j);
      return launch("linear_state", [
        r[0]!,
        r[1]!,
        piece(ctx, j),
        slot(step.writes[0]!, j),
        dims,
        lam,
        s,
        ...ws,
      ]);
    }
    case "linear.intra": {
      const j = num(step, "piece");
      const ws = workspaceArgs(step, ctx, j);
      return launch("linear_intra", [r[0]!, r[1]!, r[2]!, piece(ctx, j), w[0]!, dims, lam, causal, s, ...ws]);
    }
    case "linear.prefix":
    case "linear.suffix": {
      const j = num(step, "piece");
      const out = slot(step.writes[0]!, j);
      const mode = step.params["mode"];
      if (mode === "zero") {
        const d = decl(ctx, step.writes[0]!);
        return [
          {
            check: "CUDA_CHECK",
            fn: "cudaMemsetAsync",
            args: [out, "0", `${slotElements(d)} * ${sizeofType(d)}`, s],
          },
        ];
      }
      if (mode === "others") return launch("state_sub", [r[0]!, slot(step.reads[1]!, j), out, dims, s]);
      const gathered = decl(ctx, step.reads[0]!).slots!;
      return launch("linear_decayed_sum", [r[0]!, String(gathered), gapTable(ctx, step), out, dims, lam, s]);
    }
    case "linear.forward_fused": {
      const j = num(step, "piece");
      const prefix = step.params["prefix"] === true ? slot(step.reads[3]!, j) : "nullptr";
      return launch("linear_forward_fused", [
        r[0]!,
        r[1]!,
        r[2]!,
        prefix,
        piece(ctx, j),
        w[0]!,
        dims,
        lam,
        causal,
        s,
        ...workspaceArgs(step, ctx, j),
      ]);
    }
    case "linear.backward_fused": {
      const j = num(step, "piece");
      const states = step.reads.slice(4);
      const prefix = step.params["prefix"] === true ? slot(states.shift()!, j) : "nullptr";
      const suffix = step.params["suffix"] === true ? slot(states.shift()!, j) : "nullptr";
      return launch("linear_backward_fused", [
        ...r.slice(0, 4),
        prefix,
        suffix,
        piece(ctx, j),
        ...w,
        dims,
        lam,
        causal,
        s,
        ...workspaceArgs(step, ctx, j),
      ]);
    }
    case "host": {
      const work =
        step.params["work"] === "q_projection" ? "HostWork::kQProjection" : "HostWork::kOWeightGrad";
      return [{ check: "", fn: "run_host", args: ["run", work, smsLeft(step.id, ctx)] }];
    }
    case "linear.inter": {
      const j = num(step, "piece");
      return launch("linear_inter", [r[0]!, slot(step.reads[1]!, j), piece(ctx, j), w[0]!, dims, lam, s]);
    }
    case "linear.ring_forward":
    case "linear.ring_backward": {
      const j = num(step, "piece");
      const length = ctx.plan.byRank[ctx.program.rank]![j]!.length;
      return launch("linear_ring_step", [
        slot(step.reads[0]!, j),
        slot(step.reads[1]!, j),
        String(length),
        slot(step.writes[0]!, j),
        dims,
        lam,
        s,
      ]);
    }
    case "linear.grad_state": {
      const j = num(step, "piece");
      return launch("linear_grad_state", [
        r[0]!,
        r[1]!,
        piece(ctx, j),
        slot(step.writes[0]!, j),
        dims,
        lam,
        s,
        ...workspaceArgs(step, ctx, j),
      ]);
    }
    case "linear.intra_backward": {
      const j = num(step, "piece");
      return launch("linear_intra_backward", [
        r[0]!,
        r[1]!,
        r[2]!,
        r[3]!,
        piece(ctx, j),
        w[0]!,
        w[1]!,
        w[2]!,
        dims,
        lam,
        causal,
        s,
        ...workspaceArgs(step, ctx, j),
      ]);
    }
    case "linear.dq_inter": {
      const j = num(step, "piece");
      return launch("linear_dq_inter", [r[0]!, slot(step.reads[1]!, j), piece(ctx, j), w[0]!, dims, lam, s]);
    }
    case "linear.dkdv_inter": {
      const j = num(step, "piece");
      return launch("linear_dkdv_inter", [
        r[0]!,
        r[1]!,
        slot(step.reads[2]!, j),
        piece(ctx, j),
        w[0]!,
        w[1]!,
        dims,
        lam,
        s,
      ]);
    }
    case "add":
      return step.writes.map((name, i) => {
        const d = decl(ctx, name);
        if (d.dtype !== "bf16") throw new UnsupportedOp(`an add into ${d.dtype} is not generated`);
        return {
          check: "" as const,
          fn: "lasp::add_to_bf16",
          args: [r[2 * i]!, r[2 * i + 1]!, w[i]!, String(elementsOf(d)), s],
        };
      });
    case "accumulate": {
      const d = decl(ctx, step.reads[0]!);
      return launch("state_sum", [r[0]!, String(d.slots ?? 1), w[0]!, dims, s]);
    }
    case "copy": {
      const from = typeof step.params["from"] === "number" ? step.params["from"] : 0;
      const to = typeof step.params["to"] === "number" ? step.params["to"] : 0;
      return step.reads.map((src, i) => {
        const d = decl(ctx, src);
        const target = decl(ctx, step.writes[i]!);
        if (d.dtype !== target.dtype) {
          if (d.dtype !== "fp32" || target.dtype !== "bf16")
            throw new UnsupportedOp(`a copy from ${d.dtype} to ${target.dtype} is not generated`);
          return {
            check: "" as const,
            fn: "lasp::cast_to_bf16",
            args: [slot(src, from), slot(step.writes[i]!, to), String(slotElements(d)), s],
          };
        }
        return {
          check: "CUDA_CHECK" as const,
          fn: "cudaMemcpyAsync",
          args: [
            slot(step.writes[i]!, to),
            slot(src, from),
            `${slotElements(d)} * ${sizeofType(d)}`,
            "cudaMemcpyDeviceToDevice",
            s,
          ],
        };
      });
    }
    case "fill_zero":
      return step.writes.map((name) => {
        const d = decl(ctx, name);
        return {
          check: "CUDA_CHECK" as const,
          fn: "cudaMemsetAsync",
          args: [`b.${cppIdent(name)}`, "0", `${elementsOf(d)} * ${sizeofType(d)}`, s],
        };
      });
    case "softmax.block": {
      const source = num(step, "source");
      const kvSlot = blockSlot(step);
      return launch("softmax_block_forward", [
        r[0]!,
        slot(step.reads[1]!, kvSlot),
        slot(step.reads[2]!, kvSlot),
        softmaxDims(ctx),
        pieceMapOf(ctx.program.rank),
        pieceMapOf(source),
        causal,
        slot(step.writes[0]!, source),
        slot(step.writes[1]!, source),
        "nullptr",
        s,
      ]);
    }
    case "softmax.merge": {
      const sources = String(step.params["sources"]).split(",").map(Number);
      const [B, L, H, d] = decl(ctx, step.writes[0]!).shape as [number, number, number, number];
      return launch("softmax_merge", [
        r[0]!,
        r[1]!,
        `lasp::SlotList{${sources.length}, {${sources.join(", ")}}}`,
        w[0]!,
        w[1]!,
        String(B),
        String(L),
        String(H),
        String(d),
        s,
      ]);
    }
    case "softmax.block_backward": {
      const source = num(step, "source");
      const kvSlot = blockSlot(step);
      return launch("softmax_block_backward", [
        r[0]!,
        slot(step.reads[1]!, kvSlot),
        slot(step.reads[2]!, kvSlot),
        r[3]!,
        r[4]!,
        r[5]!,
        softmaxDims(ctx),
        pieceMapOf(ctx.program.rank),
        pieceMapOf(source),
        causal,
        w[0]!,
        slot(step.writes[1]!, kvSlot),
        slot(step.writes[2]!, kvSlot),
        s,
      ]);
    }
    case "softmax.full":
      return launch("softmax_whole_forward", [
        r[0]!,
        r[1]!,
        r[2]!,
        fullSoftmaxDims(ctx, step),
        causal,
        w[1]!,
        w[0]!,
        s,
      ]);
    case "softmax.full_backward":
      return launch("softmax_whole_backward", [
        ...r.slice(0, 6),
        fullSoftmaxDims(ctx, step),
        causal,
        w[0]!,
        w[1]!,
        w[2]!,
        s,
      ]);
    case "linear.full":
      return launch("linear_intra", [
        r[0]!,
        r[1]!,
        r[2]!,
        `lasp::Piece{0, ${ctx.sizes.seqLen}}`,
        w[0]!,
        fullLinearDims(ctx, step),
        headDecay(ctx, step),
        causal,
        s,
      ]);
    case "linear.full_backward":
      return launch("linear_intra_backward", [
        ...r.slice(0, 4),
        `lasp::Piece{0, ${ctx.sizes.seqLen}}`,
        w[0]!,
        w[1]!,
        w[2]!,
        fullLinearDims(ctx, step),
        headDecay(ctx, step),
        causal,
        s,
      ]);
    case "pack":
    case "unpack":
      return movementCalls(step, ctx);
    default:
      throw new UnsupportedOp(
        `the ${step.op} step is not generated yet (${ctx.schedule.strategy} on ${ctx.schedule.layer.type})`,
      );
  }
}

/** The piece map of a sequence-parallel rank (program.cuh defines kPieceMaps before the steps). */
const pieceMapOf = (rank: number): string => `kPieceMaps[${rank}]`;

/** Softmax dimensions of a block step: this rank's queries against one rank's keys (program.cuh). */
const softmaxDims = (ctx: StepContext): string => softmaxDimsName(ctx.kind);

/**
 * The slot of a key/value block's buffers: the ring's double-buffer slot, else the source rank's slot of
 * the gathered buffers (a buffer without slots, such as the rank's own keys, ignores it).
 */
function blockSlot(step: ComputeStep): number {
  return typeof step.params["slot"] === "number" ? step.params["slot"] : num(step, "source");
}

/** A lasp::SoftmaxDims initialiser for a whole-sequence step (softmax.full and its backward). */
export function fullSoftmaxDims(ctx: Pick<StepContext, "sizes">, step: ComputeStep): string {
  const { batch, seqLen, headDim } = ctx.sizes;
  const heads = num(step, "heads");
  const kvHeads = num(step, "kvHeads");
  return softmaxDimsLiteral({ batch, qRows: seqLen, kRows: seqLen, heads, kvHeads, headDim });
}

function fullLinearDims(ctx: StepContext, step: ComputeStep): string {
  const { batch, seqLen, headDim } = ctx.sizes;
  return `lasp::LinearDims{${batch}, ${seqLen}, ${num(step, "heads")}, ${headDim}}`;
}

/** The decay table from this shard's first head on. */
function headDecay(ctx: StepContext, step: ComputeStep): string {
  const start = num(step, "headStart");
  const table = `c.tables.k${ctx.kind}Decay`;
  return start === 0 ? table : `${table} + ${start}`;
}

/**
 * Ulysses data movement as strided copies (cudaMemcpy2DAsync): every copy moves a run of rows, each row a
 * contiguous group of heads, from one buffer's row pitch to another's. Rows are token rows; a rank's pieces
 * are runs of rows at their global positions. Offsets are in elements, pitches and widths in bytes.
 */
function movementCalls(step: ComputeStep, ctx: StepContext): Call[] {
  const W = ctx.plan.ranks;
  const { batch: B, seqLen: N, headDim: d } = ctx.sizes;
  const layout = step.params["layout"];
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
  const packed = step.op === "pack" ? step.writes[0]! : step.reads[0]!;
  const packedDecl = decl(ctx, packed);
  const slotSize = slotElements(packedDecl);
  const S = headsOf(packed);
  const L = packedDecl.shape[2]!;
  const parts = step.op === "pack" ? step.reads : step.writes;
  for (let r = 0; r < W; r++) {
    let offset = 0; // heads of the packed row before this part
    for (const part of parts) {
      const Hx = headsOf(part);
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
