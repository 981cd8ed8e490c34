// A layer kind's own buffers as one table (program.cuh): where each lives and its offset in its block. The
// model's tensors are src/model/tables.ts.
/** Where a layer kind's buffer lives (lasp::BufferHome, runtime/buffers.cuh). */
export type BufferHome = "kLayer" | "kShared" | "kLayerWindow" | "kSharedWindow";

/** What the buffer table needs to know of a buffer (view-model.ts's BufferView has it). */
export interface BufferNeeds {
  field: string;
  ctype: "bf16" | "float";
  elements: number;
  perLayer: boolean;
  window: boolean;
}

export interface BufferRow {
  field: string;
  ctype: "bf16" | "float";
  elements: number;
  home: BufferHome;
  /** Bytes from the start of its block (0 for windows). */
  offset: number;
}

export interface BufferTable {
  rows: BufferRow[];
  /** Bytes of a layer's own block and of the kind's shared scratch block. */
  layerBytes: number;
  sharedBytes: number;
}

const BYTES = { bf16: 2, float: 4 } as const;
const ALIGN_BYTES = 256;

/**
 * A layer kind's buffers as one table: per-layer buffers in one block per layer, shared scratch in one block
 * for the kind, collective windows on their own; offsets 256-byte aligned, in the buffers' order.
 */
export function bufferTable(buffers: readonly BufferNeeds[]): BufferTable {
  const ends = { kLayer: 0, kShared: 0 };
  const align = (n: number): number => Math.ceil(n / ALIGN_BYTES) * ALIGN_BYTES;
  const rows = buffers.map((b): BufferRow => {
    const home: BufferHome = b.window
      ? b.perLayer
        ? "kLayerWindow"
        : "kSharedWindow"
      : b.perLayer
        ? "kLayer"
        : "kShared";
    if (home !== "kLayer" && home !== "kShared") return { ...pick(b), home, offset: 0 };
    const offset = align(ends[home]);
    ends[home] = offset + b.elements * BYTES[b.ctype];
    return { ...pick(b), home, offset };
  });
  return { rows, layerBytes: align(ends.kLayer), sharedBytes: align(ends.kShared) };
}

const pick = (b: BufferNeeds) => ({ field: b.field, ctype: b.ctype, elements: b.elements });
