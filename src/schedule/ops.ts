// The catalogue of compute ops: every op of the schedule IR with its named buffer operands, its typed params,
// what it reads and writes, and one line of documentation (src/schedule/README.md's op table is generated
// from it). Consumers (code generator, CPU executor, inspect) keep one handler per op in a table typed by
// `OpHandlers` (ir.ts), so adding an op here without a handler everywhere is a type error.
// This module imports nothing: ir.ts builds its step types on it.

/**
 * A buffer of the rank's program, by name (RankProgram.buffers). With packed documents, the ops that attend
 * take the operand `ends` (the input `doc_ends`: 1 at each token that ends a document); without, they never
 * have it, so `documents none` lowers to exactly the steps it did before.
 */
export type Buf = string;

/** How a piece's prefix (forward) or suffix (backward) state is formed. */
export type CombineMode = "zero" | "others";

/**
 * A block of state rows (All-Scan, docs/ALLSCAN.md): rows `start .. start + count - 1` of every head's dk x dv
 * state. The chain's step is elementwise over the state, so each block travels and combines on its own.
 */
export interface RowBlock {
  start: number;
  count: number;
}

/** The params every whole-sequence (Ulysses) step takes: the head shard it computes. */
export interface HeadShard {
  headStart: number;
  heads: number;
  kvHeadStart: number;
  kvHeads: number;
  causal: boolean;
}

/** Named buffer operands of each op. Optional operands are absent when the step does without them. */
/** A softmax backward's operands: the forward's inputs and outputs, dO, and the three gradients. */
interface SoftmaxBackwardOperands {
  q: Buf;
  k: Buf;
  v: Buf;
  o: Buf;
  lse: Buf;
  dout: Buf;
  ends?: Buf;
  dq: Buf;
  dk: Buf;
  dv: Buf;
}

export interface OpOperands {
  /**
   * With documents: `ends`, and `flag`, which receives 1 in slot `piece` if a document ends inside it;
   * bidirectional, `head` receives the state of the piece's first document (`m` then holds its last one's).
   */
  "linear.state": { k: Buf; v: Buf; ends?: Buf; m: Buf; head?: Buf; flag?: Buf };
  "linear.intra": { q: Buf; k: Buf; v: Buf; ends?: Buf; o: Buf };
  /**
   * `gathered` (mode prefix: every piece's state), or `total` and `own` (mode others); none for zero. With
   * documents, `flags` (every piece's flag, gathered beside the states) turns the prefix into the affine scan.
   */
  "linear.prefix": { gathered?: Buf; flags?: Buf; total?: Buf; own?: Buf; p: Buf };
  /** Bidirectional with documents: `p` reaches the rows of the first document, `after` those of the last. */
  "linear.inter": { q: Buf; p: Buf; after?: Buf; ends?: Buf; o: Buf };
  "linear.ring_forward": { p: Buf; m: Buf; ends?: Buf; next: Buf };
  /** Bidirectional with documents: `dm` is the first document's part, `tail` receives the last one's. */
  "linear.grad_state": { q: Buf; dout: Buf; ends?: Buf; dm: Buf; tail?: Buf; flag?: Buf };
  "linear.intra_backward": {
    q: Buf;
    k: Buf;
    v: Buf;
    dout: Buf;
    ends?: Buf;
    dq: Buf;
    dk: Buf;
    dv: Buf;
  };
  "linear.dq_inter": { dout: Buf; p: Buf; after?: Buf; ends?: Buf; dq: Buf };
  /** As linear.prefix: `gathered` (and `flags` with documents), or `total` and `own`, or none. */
  "linear.suffix": { gathered?: Buf; flags?: Buf; total?: Buf; own?: Buf; g: Buf };
  /** Bidirectional with documents: `before` reaches the rows of the first document, `g` those of the last. */
  "linear.dkdv_inter": { k: Buf; v: Buf; g: Buf; before?: Buf; ends?: Buf; dk: Buf; dv: Buf };
  "linear.ring_backward": { g: Buf; dm: Buf; ends?: Buf; previous: Buf };
  "linear.forward_fused": { q: Buf; k: Buf; v: Buf; p?: Buf; after?: Buf; ends?: Buf; o: Buf };
  "linear.backward_fused": {
    q: Buf;
    k: Buf;
    v: Buf;
    dout: Buf;
    p?: Buf;
    after?: Buf;
    g?: Buf;
    before?: Buf;
    ends?: Buf;
    dq: Buf;
    dk: Buf;
    dv: Buf;
  };
  "linear.full": { q: Buf; k: Buf; v: Buf; ends?: Buf; o: Buf };
  "linear.full_backward": {
    q: Buf;
    k: Buf;
    v: Buf;
    dout: Buf;
    ends?: Buf;
    dq: Buf;
    dk: Buf;
    dv: Buf;
  };
  /** `o` and `lse` receive the block's partial result in slot `source`. */
  "softmax.block": { q: Buf; k: Buf; v: Buf; ends?: Buf; o: Buf; lse: Buf };
  "softmax.merge": { parts: Buf; partLse: Buf; o: Buf; lse: Buf };
  /** dq accumulates; dk, dv receive the block's gradients (slot `slot ?? source` when slotted). */
  "softmax.block_backward": SoftmaxBackwardOperands;
  /** LASP-2H: the rank's queries against the gathered keys in global order (`order`); o, lse final. */
  "softmax.gathered": { q: Buf; k: Buf; v: Buf; ends?: Buf; o: Buf; lse: Buf };
  /** dq overwritten; dk, dv (fp32, global order) overwritten on every row, zero past `keyRows`. */
  "softmax.gathered_backward": SoftmaxBackwardOperands;
  "softmax.full": { q: Buf; k: Buf; v: Buf; ends?: Buf; o: Buf; lse: Buf };
  "softmax.full_backward": SoftmaxBackwardOperands;
  /** `parts` are joined along the head axis into each destination's slot of `packed`. */
  pack: { parts: Buf[]; packed: Buf };
  unpack: { packed: Buf; parts: Buf[] };
  /** `src[i]` (W slots of the ranks' rows) to `dst[i]` (global order), or back (`params.to`). */
  order: { src: Buf[]; dst: Buf[] };
  /** `dst[i]` (slot `to`) = `src[i]` (slot `from`). */
  copy: { src: Buf[]; dst: Buf[] };
  fill_zero: { dst: Buf[] };
  accumulate: { src: Buf; dst: Buf };
  /** q_projection writes `q`; q_grads reads `dq`; o_weight_grad touches no buffer of the attention core. */
  host: { q?: Buf; dq?: Buf };
}

/** Typed params of each op. `piece` is the local piece index of the rank. */
/** The layer's own work a `host` step stands for: Q = X Wq, dWo, or dQ's GEMMs (dWq and dX += dQ Wq). */
export type HostWork = "q_projection" | "o_weight_grad" | "q_grads";

export interface OpParams {
  "linear.state": { piece: number };
  "linear.intra": { piece: number; causal: boolean };
  "linear.prefix": { piece: number; mode: "prefix" | CombineMode };
  "linear.inter": { piece: number };
  /** `rows`: All-Scan combines one block of state rows (the rest of `next` is left as it is). */
  "linear.ring_forward": { piece: number; rows?: RowBlock };
  "linear.grad_state": { piece: number };
  "linear.intra_backward": { piece: number; causal: boolean };
  "linear.dq_inter": { piece: number };
  "linear.suffix": { piece: number; mode: "suffix" | CombineMode };
  "linear.dkdv_inter": { piece: number };
  "linear.ring_backward": { piece: number; rows?: RowBlock };
  "linear.forward_fused": { piece: number; causal: boolean };
  "linear.backward_fused": { piece: number; causal: boolean };
  "linear.full": HeadShard;
  "linear.full_backward": HeadShard;
  /** `slot`: the ring's double-buffer slot of k, v; without it, the source rank's slot of gathered k, v. */
  "softmax.block": { source: number; slot?: number; causal: boolean };
  /** The slots of the partials to merge, in merge order. */
  "softmax.merge": { sources: number[] };
  "softmax.block_backward": { source: number; slot?: number; causal: boolean };
  /** Keys [0, keyRows) of the global-order buffer are all any of the rank's queries can see. */
  "softmax.gathered": { causal: boolean; keyRows: number };
  "softmax.gathered_backward": { causal: boolean; keyRows: number };
  "softmax.full": HeadShard;
  "softmax.full_backward": HeadShard;
  /**
   * `replicas` (Ulysses with fewer kv heads than ranks; absent otherwise): one per part, how many ranks share
   * each of its heads. A part with `R > 1` (k, v: H_kv = W / R heads) gives destination `d` its head
   * `floor(d / R)` with layout `heads`, instead of a shard of H_x / W heads.
   */
  pack: { layout: "heads" | "tokens"; replicas?: number[] };
  /**
   * `replicas` as for pack: with layout `heads`, a part with `R > 1` has R slots (dK, dV partials of its
   * kv heads), and source `s`'s head lands in slot `s mod R`, head `floor(s / R)`: an `accumulate` sums them.
   */
  unpack: { layout: "heads" | "sequence"; replicas?: number[] };
  /** Slots of the source and destination buffers (0 when absent). */
  /** `rows`: All-Scan's turn copies one block of every state's rows (a state buffer's slots only). */
  /** `global`: positions [0, rows) from the ranks' slots; `ranks`: every slot row, zero at positions >= rows. */
  order: { to: "global" | "ranks"; rows: number };
  copy: { from?: number; to?: number; rows?: RowBlock };
  fill_zero: Record<string, never>;
  accumulate: Record<string, never>;
  host: { work: HostWork };
}

export type ComputeOp = keyof OpOperands & keyof OpParams;

export interface OpEntry<O extends ComputeOp> {
  /** Names of the buffer operands (optional ones included), in the order the README lists them. */
  operands: readonly (keyof OpOperands[O] & string)[];
  /** Names of the params (optional ones included). */
  params: readonly (keyof OpParams[O] & string)[];
  /** One line for the README's op table (markdown). */
  doc: string;
  /** Buffers the op reads and writes, for graph analysis (read-after-write, liveness, memory traffic). */
  io(operands: OpOperands[O]): { reads: Buf[]; writes: Buf[] };
}

const present = (...names: (Buf | undefined)[]): Buf[] => names.filter((n): n is Buf => n !== undefined);

/** Every op, in the order the README lists them. */
export const OPS: { [O in ComputeOp]: OpEntry<O> } = {
  "linear.state": {
    operands: ["k", "v", "ends", "m", "head", "flag"],
    params: ["piece"],
    doc: "`M = sum_j lam^(C-1-j) k_j^T v_j` of piece `piece`; with `ends`, over the tokens after its last boundary, `flag` = 1 if it has one, and (bidirectional) `head` over those up to its first",
    io: (o) => ({ reads: present(o.k, o.v, o.ends), writes: present(o.m, o.head, o.flag) }),
  },
  "linear.intra": {
    operands: ["q", "k", "v", "ends", "o"],
    params: ["piece", "causal"],
    doc: "the masked product inside the piece (chunk algorithm; with `ends`, a state reset at each boundary)",
    io: (o) => ({ reads: present(o.q, o.k, o.v, o.ends), writes: [o.o] }),
  },
  "linear.prefix": {
    operands: ["gathered", "flags", "total", "own", "p"],
    params: ["piece", "mode"],
    doc: "`P` of a piece: `mode` `prefix` (decayed sum of earlier gathered states; with `flags`, the affine scan `P = c P + M`, `c = 0` past a boundary), `others` (total minus own, bidirectional) or `zero`",
    io: (o) => ({ reads: present(o.gathered, o.flags, o.total, o.own), writes: [o.p] }),
  },
  "linear.inter": {
    operands: ["q", "p", "after", "ends", "o"],
    params: ["piece"],
    doc: "`O += lam^(i+1) q_i P` (with `ends`, only up to the piece's first boundary; bidirectional, `+ q_i after` past its last)",
    io: (o) => ({ reads: present(o.q, o.p, o.after, o.ends, o.o), writes: [o.o] }),
  },
  "linear.ring_forward": {
    operands: ["p", "m", "ends", "next"],
    params: ["piece", "rows"],
    doc: "LASP-1 and All-Scan: `P_next = lam^C P + M` (with `ends`, `0 P + M` past a boundary; with `rows`, one block of state rows)",
    io: (o) => ({ reads: present(o.p, o.m, o.ends), writes: [o.next] }),
  },
  "linear.grad_state": {
    operands: ["q", "dout", "ends", "dm", "tail", "flag"],
    params: ["piece"],
    doc: "`dM = sum_i lam^(i+1) q_i^T do_i`; with `ends`, over the queries up to the first boundary, `flag`, and (bidirectional) `tail` over those after the last",
    io: (o) => ({ reads: present(o.q, o.dout, o.ends), writes: present(o.dm, o.tail, o.flag) }),
  },
  "linear.intra_backward": {
    operands: ["q", "k", "v", "dout", "ends", "dq", "dk", "dv"],
    params: ["piece", "causal"],
    doc: "dQ, dK, dV inside the piece",
    io: (o) => ({ reads: present(o.q, o.k, o.v, o.dout, o.ends), writes: [o.dq, o.dk, o.dv] }),
  },
  "linear.dq_inter": {
    operands: ["dout", "p", "after", "ends", "dq"],
    params: ["piece"],
    doc: "`dq_i += lam^(i+1) do_i P^T` (with `ends`, up to the first boundary; bidirectional, `after` past the last)",
    io: (o) => ({ reads: present(o.dout, o.p, o.after, o.ends, o.dq), writes: [o.dq] }),
  },
  "linear.suffix": {
    operands: ["gathered", "flags", "total", "own", "g"],
    params: ["piece", "mode"],
    doc: "`G` of a piece: `suffix` (with `flags`, the affine scan), `others` or `zero`",
    io: (o) => ({ reads: present(o.gathered, o.flags, o.total, o.own), writes: [o.g] }),
  },
  "linear.dkdv_inter": {
    operands: ["k", "v", "g", "before", "ends", "dk", "dv"],
    params: ["piece"],
    doc: "`dk_j += lam^(C-1-j) v_j G^T`, `dv_j += lam^(C-1-j) k_j G` (with `ends`, after the last boundary; bidirectional, `before` up to the first)",
    io: (o) => ({ reads: present(o.k, o.v, o.g, o.before, o.ends, o.dk, o.dv), writes: [o.dk, o.dv] }),
  },
  "linear.ring_backward": {
    operands: ["g", "dm", "ends", "previous"],
    params: ["piece", "rows"],
    doc: "LASP-1 and All-Scan: `G_prev = lam^C G + dM` (with `ends`, `0 G + dM` past a boundary; with `rows`, one block of state rows)",
    io: (o) => ({ reads: present(o.g, o.dm, o.ends), writes: [o.previous] }),
  },
  "linear.forward_fused": {
    operands: ["q", "k", "v", "p", "after", "ends", "o"],
    params: ["piece", "causal"],
    doc: "LASP-2 (fused): `linear.intra` with `+ lam^(i+1) q_i P` added inside the walk when operand `p` is given",
    io: (o) => ({ reads: present(o.q, o.k, o.v, o.p, o.after, o.ends), writes: [o.o] }),
  },
  "linear.backward_fused": {
    operands: ["q", "k", "v", "dout", "p", "after", "g", "before", "ends", "dq", "dk", "dv"],
    params: ["piece", "causal"],
    doc: "LASP-2 (fused): `linear.intra_backward` with the P (operand `p`) and G (operand `g`) terms inside the walks",
    io: (o) => ({
      reads: present(o.q, o.k, o.v, o.dout, o.p, o.after, o.g, o.before, o.ends),
      writes: [o.dq, o.dk, o.dv],
    }),
  },
  "linear.full": {
    operands: ["q", "k", "v", "ends", "o"],
    params: ["headStart", "heads", "kvHeadStart", "kvHeads", "causal"],
    doc: "Ulysses: whole-sequence linear attention on a head shard (with `ends`, per document)",
    io: (o) => ({ reads: present(o.q, o.k, o.v, o.ends), writes: [o.o] }),
  },
  "linear.full_backward": {
    operands: ["q", "k", "v", "dout", "ends", "dq", "dk", "dv"],
    params: ["headStart", "heads", "kvHeadStart", "kvHeads", "causal"],
    doc: "Ulysses: its backward",
    io: (o) => ({ reads: present(o.q, o.k, o.v, o.dout, o.ends), writes: [o.dq, o.dk, o.dv] }),
  },
  "softmax.block": {
    operands: ["q", "k", "v", "ends", "o", "lse"],
    params: ["source", "slot", "causal"],
    doc: "flash attention of the rank's queries against one source rank's keys (global positions; with `ends`, the document mask, skipping a block no query's document reaches)",
    io: (o) => ({ reads: present(o.q, o.k, o.v, o.ends), writes: [o.o, o.lse] }),
  },
  "softmax.merge": {
    operands: ["parts", "partLse", "o", "lse"],
    params: ["sources"],
    doc: "log-sum-exp merge of the partials in the slots `params.sources`",
    io: (o) => ({ reads: [o.parts, o.partLse], writes: [o.o, o.lse] }),
  },
  "softmax.block_backward": {
    operands: ["q", "k", "v", "o", "lse", "dout", "ends", "dq", "dk", "dv"],
    params: ["source", "slot", "causal"],
    doc: "dQ, and dK, dV of one source block, from the merged `o` and `lse`",
    io: (o) => ({
      reads: present(o.q, o.k, o.v, o.o, o.lse, o.dout, o.ends, o.dq, o.dk, o.dv),
      writes: [o.dq, o.dk, o.dv],
    }),
  },
  "softmax.gathered": {
    operands: ["q", "k", "v", "ends", "o", "lse"],
    params: ["causal", "keyRows"],
    doc: "LASP-2H: flash attention of the rank's queries against the gathered keys in global order, positions [0, `params.keyRows`) (with `ends`, the document mask); `o` and `lse` final, no merge",
    io: (o) => ({ reads: present(o.q, o.k, o.v, o.ends), writes: [o.o, o.lse] }),
  },
  "softmax.gathered_backward": {
    operands: ["q", "k", "v", "o", "lse", "dout", "ends", "dq", "dk", "dv"],
    params: ["causal", "keyRows"],
    doc: "LASP-2H: its backward; dK, dV of every gathered position in fp32 (zero past `params.keyRows`)",
    io: (o) => ({ reads: present(o.q, o.k, o.v, o.o, o.lse, o.dout, o.ends), writes: [o.dq, o.dk, o.dv] }),
  },
  "softmax.full": {
    operands: ["q", "k", "v", "ends", "o", "lse"],
    params: ["headStart", "heads", "kvHeadStart", "kvHeads", "causal"],
    doc: "Ulysses: whole-sequence softmax attention on a head shard (with `ends`, the document mask)",
    io: (o) => ({ reads: present(o.q, o.k, o.v, o.ends), writes: [o.o, o.lse] }),
  },
  "softmax.full_backward": {
    operands: ["q", "k", "v", "o", "lse", "dout", "ends", "dq", "dk", "dv"],
    params: ["headStart", "heads", "kvHeadStart", "kvHeads", "causal"],
    doc: "Ulysses: its backward",
    io: (o) => ({ reads: present(o.q, o.k, o.v, o.o, o.lse, o.dout, o.ends), writes: [o.dq, o.dk, o.dv] }),
  },
  pack: {
    operands: ["parts", "packed"],
    params: ["layout", "replicas"],
    doc: "Ulysses data movement before an all-to-all (`params.layout`: `heads`, `tokens`); with `replicas` (kv heads fewer than ranks), a part whose heads `R` ranks share sends head `floor(d / R)` to destination `d`",
    io: (o) => ({ reads: o.parts, writes: [o.packed] }),
  },
  unpack: {
    operands: ["packed", "parts"],
    params: ["layout", "replicas"],
    doc: "Ulysses data movement after an all-to-all (`params.layout`: `heads`, `sequence`); with `replicas`, source `s`'s head of a part whose heads `R` ranks share goes to slot `s mod R`, head `floor(s / R)` (partials for an `accumulate`)",
    io: (o) => ({ reads: [o.packed], writes: o.parts }),
  },
  order: {
    operands: ["src", "dst"],
    params: ["to", "rows"],
    doc: "LASP-2H data movement: gathered K, V from the ranks' slots into global token order (`params.to` `global`, positions [0, `params.rows`)), or fp32 dK, dV in global order back to the ranks' slots (`ranks`, zero at positions >= `params.rows`)",
    io: (o) => ({ reads: o.src, writes: o.dst }),
  },
  copy: {
    operands: ["src", "dst"],
    params: ["from", "to", "rows"],
    doc: "`dst[i][params.to] = src[i][params.from]`, converted to the written buffer's dtype (fp32 sums to bf16 gradients); with `rows`, that block of every state's rows only",
    io: (o) => ({ reads: o.src, writes: o.dst }),
  },
  fill_zero: {
    operands: ["dst"],
    params: [],
    doc: "clear every slot of the `dst` buffers",
    io: (o) => ({ reads: [], writes: o.dst }),
  },
  accumulate: {
    operands: ["src", "dst"],
    params: [],
    doc: "`dst = sum of the slots of src`, in slot order (fp32 states; bf16 dK, dV partials of replicated kv heads summed in fp32, rounded once)",
    io: (o) => ({ reads: [o.src], writes: [o.dst] }),
  },
  host: {
    operands: ["q", "dq"],
    params: ["work"],
    doc: "the layer's own work placed for a collective to overlap: `params.work` `q_projection` (writes `q`), `o_weight_grad` (dWo) or `q_grads` (reads `dq`: dWq and the input gradient's dQ term)",
    io: (o) => ({ reads: present(o.dq), writes: present(o.q) }),
  },
};

export const COMPUTE_OPS = Object.keys(OPS) as ComputeOp[];

/** What an op with these operands reads and writes: the one place the flat lists are computed. */
export function opIo<O extends ComputeOp>(op: O, operands: OpOperands[O]): { reads: Buf[]; writes: Buf[] } {
  return (OPS[op] as OpEntry<O>).io(operands);
}
