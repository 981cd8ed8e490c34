// The model's tensors as tables, as llm.c lays out its ParameterTensors and ActivationTensors: each tensor's
// name, shape, element count and offset in its table's one allocation, and for each layer the rows of its
// tensors. The program allocates each table once and points into it; the numbers are all made here.
import type { ResolvedSpec } from "../spec/resolved.js";
import { kvHeadsOf, modelParameters } from "../model/parameters.js";

/** Offsets of separately used tensors are multiples of 128 elements: 256 bytes, cudaMalloc's alignment. */
export const ALIGN_ELEMENTS = 128;

export interface TensorRow {
  /** Row of the table (what LayerRows and ScratchRows hold). */
  index: number;
  name: string;
  /** The shape as stored, row-major (weights [in][out]: the program computes x W). */
  shape: number[];
  elements: number;
  /** Elements from the start of the table's allocation. */
  offset: number;
}

export interface TensorTable {
  rows: TensorRow[];
  /** Elements of the one allocation, padding included. */
  elements: number;
}

/** A layer's tensors: rows of the parameter table (weights) and of the activation table (-1: none). */
export interface LayerRows {
  wq: number;
  wk: number;
  wv: number;
  wo: number;
  /** The layer's input and output (the next layer's input). */
  x: number;
  out: number;
  /** Feature-map inputs kept for the backward pass (linear kinds with a feature map). */
  preQ: number;
  preK: number;
  /** RMSNorm output, the O projection's input (kinds with an output norm). */
  normed: number;
}

/** The backward pass's scratch: rows of the activation table. */
export interface ScratchRows {
  dx: number;
  dxPrev: number;
  dnormed: number;
  y: number;
}

export interface ModelTables {
  parameters: TensorTable;
  activations: TensorTable;
  layers: LayerRows[];
  scratch: ScratchRows;
}

class TableBuilder {
  readonly rows: TensorRow[] = [];
  private end = 0;

  /** Appends a tensor; `packed` places it right after the previous one (a layer's weights stay one block). */
  add(name: string, shape: number[], packed = false): number {
    const elements = shape.reduce((a, b) => a * b, 1);
    const offset = packed ? this.end : Math.ceil(this.end / ALIGN_ELEMENTS) * ALIGN_ELEMENTS;
    this.rows.push({ index: this.rows.length, name, shape, elements, offset });
    this.end = offset + elements;
    return this.rows.length - 1;
  }

  table(): TensorTable {
    return { rows: this.rows, elements: Math.ceil(this.end / ALIGN_ELEMENTS) * ALIGN_ELEMENTS };
  }
}

/**
 * The tables of the attention stack the program runs today. A layer's four weights are one contiguous block
 * (its gradients are summed over the ranks in one collective, and filled as one tensor); blocks and
 * activations start 256-byte aligned.
 */
export function modelTables(spec: ResolvedSpec, rows: number): ModelTables {
  const { model } = spec;
  const { hidden, heads, headDim } = model;
  const params = new TableBuilder();
  // The attention projections of the parameter catalogue, in its order (q, k, v, o per layer), stored as
  // x W operands: the transpose of the PyTorch shape the catalogue gives.
  const attention = modelParameters(model).filter((t) => t.part === "attention");
  const weights = model.layers.map((kind, l) => {
    const of = (proj: string): string => {
      const tensor = attention.find((t) => t.layer === l && t.name.includes(`.${proj}.`));
      if (tensor === undefined) throw new Error(`layer ${l} has no ${proj} in the parameter table`);
      return tensor.name;
    };
    const kv = kvHeadsOf(model, kind) * headDim;
    return {
      wq: params.add(of("q_proj"), [hidden, heads * headDim]),
      wk: params.add(of("k_proj"), [hidden, kv], true),
      wv: params.add(of("v_proj"), [hidden, kv], true),
      wo: params.add(of("o_proj"), [heads * headDim, hidden], true),
    };
  });
  const acts = new TableBuilder();
  const xs = model.layers.map((_, l) => acts.add(`x.${l}`, [rows, hidden]));
  xs.push(acts.add(`x.${model.layers.length}`, [rows, hidden]));
  const layers = model.layers.map((kind, l): LayerRows => {
    const featureMap = kind.type === "linear_attention" && kind.featureMap !== "identity";
    const outputNorm = kind.type === "linear_attention" && kind.outputNorm === "rms";
    const preQ = featureMap ? acts.add(`layers.${l}.pre_q`, [rows, heads * headDim]) : -1;
    const preK = featureMap ? acts.add(`layers.${l}.pre_k`, [rows, heads * headDim]) : -1;
    const normed = outputNorm ? acts.add(`layers.${l}.normed`, [rows, heads * headDim]) : -1;
    return { ...weights[l]!, x: xs[l]!, out: xs[l + 1]!, preQ, preK, normed };
  });
  const scratch: ScratchRows = {
    dx: acts.add("dx", [rows, hidden]),
    dxPrev: acts.add("dx_prev", [rows, hidden]),
    dnormed: acts.add("dnormed", [rows, heads * headDim]),
    y: acts.add("y", [rows, hidden]),
  };
  return { parameters: params.table(), activations: acts.table(), layers, scratch };
}

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
