// The executor's memory: every buffer of a rank as an array of float64 tensors, one per slot (a buffer
// without slots has one). Shapes drop the batch dimension: the executor runs one batch element at a time.
import type { BufferDecl, LayoutPlan, RowBlock } from "../schedule/ir.js";
import { clone, sliceRows, type Tensor, writeRows, zeros } from "../reference/tensor.js";

export type Slots = Tensor[];

/** Shape of one slot of a buffer, without slots and batch. */
export function slotShape(decl: BufferDecl): number[] {
  return decl.shape.slice(decl.slots === undefined ? 1 : 2);
}

export class RankStore {
  private readonly values = new Map<string, Slots>();

  constructor(
    readonly rank: number,
    private readonly decls: Map<string, BufferDecl>,
  ) {}

  decl(name: string): BufferDecl {
    const decl = this.decls.get(name);
    if (decl === undefined) throw new Error(`rank ${this.rank}: no buffer ${name}`);
    return decl;
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  /** All slots of a buffer; reading a buffer nothing wrote is a schedule bug. */
  get(name: string): Slots {
    const value = this.values.get(name);
    if (value === undefined) throw new Error(`rank ${this.rank} reads ${name} before anything wrote it`);
    return value;
  }

  one(name: string, slot = 0): Tensor {
    const value = this.get(name)[slot];
    if (value === undefined)
      throw new Error(`rank ${this.rank} reads slot ${slot} of ${name}, which was never written`);
    return value;
  }

  /** The slots of a buffer for writing, allocated (as zeros) on first use. */
  slots(name: string): Slots {
    let value = this.values.get(name);
    if (value === undefined) {
      const decl = this.decl(name);
      value = Array.from({ length: decl.slots ?? 1 }, () => zeros(slotShape(decl)));
      this.values.set(name, value);
    }
    return value;
  }

  set(name: string, slot: number, tensor: Tensor): void {
    this.slots(name)[slot] = tensor;
  }

  setAll(name: string, tensors: Slots): void {
    this.values.set(name, tensors.map(clone));
  }

  /** Writes one block of state rows (All-Scan) into a slot, keeping its other rows (zeros if unwritten). */
  setRows(name: string, slot: number, rows: RowBlock, block: Tensor): void {
    const updated = clone(this.slots(name)[slot]!);
    writeStateRows(updated, rows, block);
    this.set(name, slot, updated);
  }
}

/** Rows `rows` of every head's state of a [H, dk, dv] tensor, as [H, count, dv]. */
export function stateRows(t: Tensor, rows: RowBlock): Tensor {
  const [H, dk, dv] = t.shape as [number, number, number];
  const out = zeros([H, rows.count, dv]);
  for (let h = 0; h < H; h++) {
    const from = (h * dk + rows.start) * dv;
    out.data.set(t.data.subarray(from, from + rows.count * dv), h * rows.count * dv);
  }
  return out;
}

function writeStateRows(dst: Tensor, rows: RowBlock, block: Tensor): void {
  const [H, dk, dv] = dst.shape as [number, number, number];
  for (let h = 0; h < H; h++)
    dst.data.set(
      block.data.subarray(h * rows.count * dv, (h + 1) * rows.count * dv),
      (h * dk + rows.start) * dv,
    );
}

/** Row offset of local piece j inside a rank's activations. */
export function pieceOffset(plan: LayoutPlan, rank: number, j: number): number {
  return plan.byRank[rank]!.slice(0, j).reduce((sum, p) => sum + p.length, 0);
}

export function pieceRows(t: Tensor, plan: LayoutPlan, rank: number, j: number): Tensor {
  const start = pieceOffset(plan, rank, j);
  return sliceRows(t, start, start + plan.byRank[rank]![j]!.length);
}

export function writePieceRows(dst: Tensor, plan: LayoutPlan, rank: number, j: number, rows: Tensor): void {
  writeRows(dst, pieceOffset(plan, rank, j), rows);
}
