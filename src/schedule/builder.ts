// Builds one rank's program step by step. Lowering passes describe what happens; the builder numbers
// steps, records dependencies and keeps the buffer table.
import type {
  BufferDecl,
  CollectiveKind,
  CollectiveStep,
  CollectiveTransfer,
  ComputeOp,
  ComputeStep,
  P2PStep,
  P2PTransfer,
  RankProgram,
  Stream,
} from "./ir.js";
import { bytesOf } from "./context.js";
import { opIo, type OpOperands, type OpParams } from "./ops.js";

export class RankBuilder {
  private readonly program: RankProgram;

  constructor(rank: number) {
    this.program = { rank, buffers: [], steps: [] };
  }

  get rank(): number {
    return this.program.rank;
  }

  buffer(decl: BufferDecl): string {
    if (!this.program.buffers.some((b) => b.name === decl.name)) this.program.buffers.push(decl);
    return decl.name;
  }

  /** A compute step; its reads and writes are derived from the named operands by the op catalogue. */
  compute<O extends ComputeOp>(
    op: O,
    label: string,
    operands: OpOperands[O],
    cost: { flops: number; bytes: number },
    params: OpParams[O],
    deps: number[] = [],
    stream: Stream = "compute",
  ): number {
    const id = this.program.steps.length;
    const step = {
      kind: "compute" as const,
      id,
      label,
      stream,
      deps: unique(deps),
      op,
      operands,
      params,
      ...opIo(op, operands),
      ...cost,
      placement: {},
    };
    this.program.steps.push(step as ComputeStep);
    return id;
  }

  collective(
    collective: CollectiveKind,
    label: string,
    group: number[],
    key: string,
    transfers: CollectiveTransfer[],
    deps: number[],
  ): number {
    const id = this.program.steps.length;
    const bytes = transfers.reduce((sum, t) => sum + bytesOf(this.decl(t.send)), 0);
    const step: CollectiveStep = {
      kind: "collective",
      id,
      label,
      stream: "comm",
      deps: unique(deps),
      collective,
      group,
      key,
      transfers,
      bytes,
      // Decided by the placement pass (placement.ts) once the whole program stands.
      placement: { communicator: "default", copyEngineCandidate: false },
    };
    this.program.steps.push(step);
    return id;
  }

  p2p(
    kind: "send" | "recv",
    label: string,
    peer: number,
    tag: string,
    transfers: P2PTransfer[],
    deps: number[],
  ): number {
    const id = this.program.steps.length;
    const bytes = transfers.reduce((sum, t) => {
      const decl = this.decl(t.buffer);
      // A block of rows is that share of every head's dk x dv state (the next-to-last dimension).
      const share = t.rows === undefined ? 1 : t.rows.count / decl.shape[decl.shape.length - 2]!;
      return sum + (bytesOf(decl) / decl.shape[0]!) * share;
    }, 0);
    const step: P2PStep = {
      kind,
      id,
      label,
      stream: "comm",
      deps: unique(deps),
      peer,
      tag,
      transfers,
      bytes,
    };
    this.program.steps.push(step);
    return id;
  }

  private decl(name: string): BufferDecl {
    const decl = this.program.buffers.find((b) => b.name === name);
    if (decl === undefined) throw new Error(`buffer ${name} used before it is declared`);
    return decl;
  }

  build(): RankProgram {
    return this.program;
  }
}

function unique(deps: number[]): number[] {
  return [...new Set(deps)].sort((a, b) => a - b);
}
