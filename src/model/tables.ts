// The model's tensors as tables, as llm.c lays out its ParameterTensors and ActivationTensors: each tensor's
// name, shape, element count and offset in its table's one allocation, and for each layer the rows of its
// tensors. The program allocates each table once and points into it (codegen prints the tables); the memory
// model counts the same tables (cost/memory.ts). The numbers are all made here.
import type { ResolvedSpec } from "../spec/resolved.js";
import { kvHeadsOf, modelParameters, type ParameterTensor } from "./parameters.js";

/** Offsets of separately used tensors are multiples of 128 elements: 256 bytes, cudaMalloc's alignment. */
export const ALIGN_ELEMENTS = 128;

export interface TensorRow {
  /** Row of the table (what LayerRows, HeadRows and ScratchRows hold). */
  index: number;
  name: string;
  /** The shape as stored, row-major: PyTorch's, so weights are [out][in] and the program computes x W^T. */
  shape: number[];
  elements: number;
  /** Elements from the start of the table's allocation. */
  offset: number;
  /** Initial values of a weight: normal with this standard deviation, or `value` everywhere when it is 0. */
  initStd: number;
  initValue: number;
}

export interface TensorTable {
  rows: TensorRow[];
  /** Elements of the one allocation, padding included. */
  elements: number;
}

/**
 * A layer's tensors: rows of the parameter table (weights), of the activation table (bf16) and of the
 * statistics table (fp32); -1: none. Its weights, from the first norm to Wdown, are one block (the gradient
 * sum's unit).
 */
export interface LayerRows {
  attnNorm: number;
  attnNormBias: number;
  wq: number;
  wk: number;
  wv: number;
  wo: number;
  mlpNorm: number;
  mlpNormBias: number;
  /** Gate and up back to back: one [2 ffn][hidden] operand for one GEMM. */
  wGate: number;
  wUp: number;
  wDown: number;
  /** The residual stream into the layer, and after its attention branch (the norms' inputs). */
  input: number;
  mid: number;
  /** The block norms' outputs, the attention's and the MLP's input, kept with `recompute none`; else -1: made
   * again in the backward, in the `normed` scratch. */
  attnNormOut: number;
  mlpNormOut: number;
  /** The MLP's gate and up products, [rows][2 ffn] (SwiGLU's input, kept for its backward; with `recompute mlp`
   * one shared row, made again in the backward). */
  gateUp: number;
  /** SwiGLU's output, [rows][ffn] (Wdown's input, kept for its weight gradient); -1 with `recompute mlp`: the
   * `ffn` scratch, made again in the backward. */
  h: number;
  /** Feature-map inputs kept for the backward pass (linear kinds with a feature map). */
  preQ: number;
  preK: number;
  /** The attention output's RMSNorm, the O projection's input (kinds with an output norm). */
  normed: number;
  /** Each block norm's saved statistics (fp32 per row): 1 / rms or 1 / std, and LayerNorm's mean. */
  attnRstd: number;
  attnMean: number;
  mlpRstd: number;
  mlpMean: number;
}

/** The ends of the model: the embedding, the final norm and the LM head (the embedding when tied). */
export interface HeadRows {
  embedding: number;
  finalNorm: number;
  finalNormBias: number;
  lmHead: number;
  /** The residual stream after the last layer (the final norm's input), and the norm's statistics. */
  finalInput: number;
  finalRstd: number;
  finalMean: number;
  /** The last row of the head's gradient block (first row: finalNorm): the untied LM head, else the final norm's. */
  blockLast: number;
}

/** Scratch shared by every layer: rows of the activation table, and `partials`, `losses` of the statistics. */
export interface ScratchRows {
  /** A block norm's output (made again in the backward from the kept residual and statistics, unless kept). */
  normed: number;
  /** A branch's output before the residual add. */
  y: number;
  /** The residual stream's gradient, and the gradient of a norm's output. */
  dx: number;
  dnormed: number;
  /** The gradient of the attention output (heads x head dim wide). */
  dattn: number;
  /** SwiGLU's output h, then its gradient dh ([rows][ffn]). */
  ffn: number;
  /** With `recompute mlp`, the one gate|up every layer uses in turn (each layer's gateUp row); else -1. */
  gateUp: number;
  /** The LM head's logits of one chunk of tokens ([chunk][vocab]). */
  logits: number;
  /** fp32: the norms' weight-gradient partial sums, and each token's loss. */
  partials: number;
  losses: number;
}

export interface ModelTables {
  parameters: TensorTable;
  activations: TensorTable;
  statistics: TensorTable;
  layers: LayerRows[];
  head: HeadRows;
  scratch: ScratchRows;
  /** Tokens per chunk of the LM head and loss (the logits of one chunk are held at a time). */
  classifierChunk: number;
}

class TableBuilder {
  readonly rows: TensorRow[] = [];
  private end = 0;

  /** Appends a tensor; `packed` places it right after the previous one (q, k, v and gate, up stay one operand). */
  add(name: string, shape: number[], packed = false, initStd = 0, initValue = 0): number {
    const elements = shape.reduce((a, b) => a * b, 1);
    const offset = packed ? this.end : Math.ceil(this.end / ALIGN_ELEMENTS) * ALIGN_ELEMENTS;
    this.rows.push({ index: this.rows.length, name, shape, elements, offset, initStd, initValue });
    this.end = offset + elements;
    return this.rows.length - 1;
  }

  table(): TensorTable {
    return { rows: this.rows, elements: Math.ceil(this.end / ALIGN_ELEMENTS) * ALIGN_ELEMENTS };
  }
}

/**
 * Bytes of one chunk's logits at most: the LM head's chunk is the largest multiple of 128 tokens within it. Each
 * chunk reads and writes the head's fp32 gradient once (1 GB at vocab 128256 x hidden 2048), so fewer, larger
 * chunks move less: 4096 tokens at that vocab.
 */
export const LOGITS_BUDGET_BYTES = 1024 * 1024 * 1024;

/** Tokens per chunk of the LM head and loss: a multiple of 128 whose bf16 logits fit the budget, at most `rows`. */
export function classifierChunk(rows: number, vocab: number): number {
  const fit = Math.max(128, Math.floor(LOGITS_BUDGET_BYTES / (vocab * 2) / 128) * 128);
  return Math.min(rows, fit);
}

/** Rows of fp32 partial sums norm_backward writes: two per block of its first pass (runtime/norm.cuh). */
export const normPartialRows = (rows: number): number => 2 * Math.min(rows, 1024);

/**
 * The model's tables. Weights in the parameter catalogue's order and shapes (Hugging Face's, so the table is
 * the safetensors file), each 256-byte aligned except q, k, v and gate, up, which are packed into one operand
 * each; a layer's weights, first norm to Wdown, are one block. Initial weights: normal with 1/sqrt(fan in)
 * (the embedding 1/sqrt(hidden)), norm weights 1 and biases 0.
 */
export function modelTables(spec: ResolvedSpec, rows: number): ModelTables {
  const { model } = spec;
  const { hidden, heads, headDim, ffn, vocab } = model;
  const width = heads * headDim;
  const layerNorm = model.norm === "layernorm";
  const params = new TableBuilder();
  const catalogue = modelParameters(model);
  // By name, once: a search of the catalogue per weight made a table quadratic in the layers.
  const byName = new Map<string, ParameterTensor>();
  for (const t of catalogue) if (!byName.has(t.name)) byName.set(t.name, t);
  const named = (name: string): ParameterTensor => {
    const tensor = byName.get(name);
    if (tensor === undefined) throw new Error(`the parameter catalogue has no ${name}`);
    return tensor;
  };
  const weight = (name: string, packed = false): number => {
    const t = named(name);
    // A matrix [out][in]: std 1/sqrt(in); the embedding [vocab][hidden]: 1/sqrt(hidden); norms: 1, biases 0.
    const std = t.shape.length === 2 ? 1 / Math.sqrt(t.shape[1]!) : 0;
    return params.add(t.name, t.shape, packed, std, name.endsWith(".bias") ? 0 : 1);
  };
  const normRows = (prefix: string): [number, number] => [
    weight(`${prefix}.weight`),
    layerNorm ? weight(`${prefix}.bias`, true) : -1,
  ];
  const embedding = weight("model.embed_tokens.weight");
  const layerWeights = model.layers.map((_, l) => {
    const p = `model.layers.${l}`;
    const [attnNorm, attnNormBias] = normRows(`${p}.input_layernorm`);
    const wq = weight(`${p}.self_attn.q_proj.weight`);
    const wk = weight(`${p}.self_attn.k_proj.weight`, true);
    const wv = weight(`${p}.self_attn.v_proj.weight`, true);
    const wo = weight(`${p}.self_attn.o_proj.weight`);
    const [mlpNorm, mlpNormBias] = normRows(`${p}.post_attention_layernorm`);
    const wGate = weight(`${p}.mlp.gate_proj.weight`);
    const wUp = weight(`${p}.mlp.up_proj.weight`, true);
    const wDown = weight(`${p}.mlp.down_proj.weight`);
    return { attnNorm, attnNormBias, wq, wk, wv, wo, mlpNorm, mlpNormBias, wGate, wUp, wDown };
  });
  const [finalNorm, finalNormBias] = normRows("model.norm");
  const lmHead = model.tieEmbeddings ? embedding : weight("lm_head.weight");
  if (params.rows.length !== catalogue.length)
    throw new Error("the parameter table misses catalogue tensors");

  const acts = new TableBuilder();
  const stats = new TableBuilder();
  const normStats = (prefix: string): [number, number] => [
    stats.add(`${prefix}.rstd`, [rows]),
    layerNorm ? stats.add(`${prefix}.mean`, [rows]) : -1,
  ];
  // `recompute mlp`: gate|up is made again in the backward pass, so the layers share one.
  const sharedGateUp = spec.run.recompute === "mlp" ? acts.add("gate_up", [rows, 2 * ffn]) : -1;
  const layers = model.layers.map((kind, l): LayerRows => {
    const featureMap = kind.type === "linear_attention" && kind.featureMap !== "identity";
    const outputNorm = kind.type === "linear_attention" && kind.outputNorm === "rms";
    const p = `layers.${l}`;
    const input = acts.add(`${p}.input`, [rows, hidden]);
    const mid = acts.add(`${p}.mid`, [rows, hidden]);
    const keepNorms = spec.run.recompute === "none";
    const attnNormOut = keepNorms ? acts.add(`${p}.attn_norm_out`, [rows, hidden]) : -1;
    const mlpNormOut = keepNorms ? acts.add(`${p}.mlp_norm_out`, [rows, hidden]) : -1;
    const gateUp = sharedGateUp >= 0 ? sharedGateUp : acts.add(`${p}.gate_up`, [rows, 2 * ffn]);
    const h = sharedGateUp >= 0 ? -1 : acts.add(`${p}.h`, [rows, ffn]);
    const preQ = featureMap ? acts.add(`${p}.pre_q`, [rows, width]) : -1;
    const preK = featureMap ? acts.add(`${p}.pre_k`, [rows, kvHeadsOf(model, kind) * headDim]) : -1;
    const normed = outputNorm ? acts.add(`${p}.normed`, [rows, width]) : -1;
    const [attnRstd, attnMean] = normStats(`${p}.input_layernorm`);
    const [mlpRstd, mlpMean] = normStats(`${p}.post_attention_layernorm`);
    return {
      ...layerWeights[l]!,
      input,
      mid,
      attnNormOut,
      mlpNormOut,
      gateUp,
      h,
      preQ,
      preK,
      normed,
      attnRstd,
      attnMean,
      mlpRstd,
      mlpMean,
    };
  });
  const finalInput = acts.add("final.input", [rows, hidden]);
  const [finalRstd, finalMean] = normStats("final.norm");
  const chunk = classifierChunk(rows, vocab);
  const scratch: ScratchRows = {
    normed: acts.add("normed", [rows, hidden]),
    y: acts.add("y", [rows, hidden]),
    dx: acts.add("dx", [rows, hidden]),
    dnormed: acts.add("dnormed", [rows, hidden]),
    dattn: acts.add("dattn", [rows, width]),
    ffn: acts.add("ffn", [rows, ffn]),
    gateUp: sharedGateUp,
    logits: acts.add("logits", [chunk, vocab]),
    partials: stats.add("norm_partials", [normPartialRows(rows), hidden]),
    losses: stats.add("losses", [rows]),
  };
  return {
    parameters: params.table(),
    activations: acts.table(),
    statistics: stats.table(),
    layers,
    head: {
      embedding,
      finalNorm,
      finalNormBias,
      lmHead,
      finalInput,
      finalRstd,
      finalMean,
      blockLast: lmHead !== embedding ? lmHead : finalNormBias >= 0 ? finalNormBias : finalNorm,
    },
    scratch,
    classifierChunk: chunk,
  };
}

/**
 * Elements of each block of weight gradients the program sums in one collective (runtime/state.cuh): each
 * layer's, first norm to Wdown; the final norm with the untied LM head; the embedding (with the tied head).
 */
export function gradientBlocks(table: TensorTable, layers: LayerRows[], head: HeadRows): number[] {
  return gradientBlockSpans(table, layers, head).map((b) => b.elements);
}

/** A block of weight gradients: its first element in the parameter allocation and its elements. */
export interface GradientBlock {
  offset: number;
  elements: number;
}

/** gradientBlocks with where each block starts: the layers', the head's, the embedding's. */
export function gradientBlockSpans(table: TensorTable, layers: LayerRows[], head: HeadRows): GradientBlock[] {
  const span = (first: number, last: number): GradientBlock => ({
    offset: table.rows[first]!.offset,
    elements: table.rows[last]!.offset + table.rows[last]!.elements - table.rows[first]!.offset,
  });
  return [
    ...layers.map((l) => span(l.attnNorm, l.wDown)),
    span(head.finalNorm, head.blockLast),
    span(head.embedding, head.embedding),
  ];
}

/**
 * Whether train mode shards AdamW's state over the ranks (ZeRO-1: runtime/optimizer.cuh): on more than one GPU,
 * when every gradient block splits into `gpus` equal slices of a multiple of 4 elements (the AdamW kernel's
 * 16-byte vectors; a block starts 256-byte aligned, so every slice does). Otherwise every rank keeps the whole
 * state (replicated).
 */
export function optimizerSharded(blocks: readonly GradientBlock[], gpus: number): boolean {
  return gpus > 1 && blocks.every((b) => b.elements % (4 * gpus) === 0);
}

/** A run of the flat parameter buffer that AdamW decays (1) or not (0): runtime/adamw.cuh's DecayRow. */
export interface DecayRow {
  offset: number;
  elements: number;
  decay: 0 | 1;
}

/**
 * Weight decay over the whole parameter allocation, back to back from 0 to its end: every matrix decays (the
 * embedding and LM head included, as Megatron-LM, Llama and llm.c do), norm gains and biases do not, nor the
 * alignment padding between tensors (its gradient is 0, so it stays 0 either way). Neighbours with the same
 * flag are merged, so the table has a few rows per layer.
 */
export function decayRows(table: TensorTable): DecayRow[] {
  const rows: DecayRow[] = [];
  const push = (offset: number, elements: number, decay: 0 | 1): void => {
    if (elements === 0) return;
    const last = rows.at(-1);
    if (last !== undefined && last.decay === decay) last.elements += elements;
    else rows.push({ offset, elements, decay });
  };
  let end = 0;
  for (const row of table.rows) {
    push(end, row.offset - end, 0);
    push(row.offset, row.elements, row.shape.length === 2 ? 1 : 0);
    end = row.offset + row.elements;
  }
  push(end, table.elements - end, 0);
  return rows;
}
