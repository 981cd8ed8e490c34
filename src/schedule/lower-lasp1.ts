// LASP-1, the ring baseline (ALGORITHMS.md): the prefix state travels piece to piece in global order,
// P_next = lam^C P + M, one dependent hop per rank boundary; the backward pass runs the chain in reverse
// with G. Causal layers only (the checker rejects bidirectional ones). Zigzag chains go up the ranks and
// back down, so a pass has 2(W-1) dependent hops instead of W-1. Terms that would add zero are left out: the
// first piece's prefix and the last piece's suffix are zero (no inter step), the last piece's state and the
// first piece's gradient state are handed to nobody (not computed). With documents (docs/DOCUMENTS.md) the
// chain is the affine scan one hop at a time: a piece where a document ends hands on its M alone (carry 0).
// All-Scan (lower-allscan.ts) is this chain with each state split into blocks of rows (`ChainBlocks`): the
// step is elementwise, so every block hops and combines on its own and block k+1 travels while block k is
// combined on the next rank. LASP-1 is the chain with one block, the whole state.
import type { LinearAttentionKind } from "../spec/resolved.js";
import { RankBuilder } from "./builder.js";
import { piecesOf, stateBytes, states, perRank, type LowerContext } from "./context.js";
import { documentEnds } from "./document-operands.js";
import type { Piece, RankProgram, RowBlock, Stream } from "./ir.js";
import { prefixCost } from "./linear-costs.js";
import {
  backwardBuffers,
  dkdvInterStep,
  dqInterStep,
  forwardBuffers,
  gradStateSteps,
  interStep,
  intraBackwardStep,
  intraStep,
  stateSteps,
} from "./linear-common.js";

export function lowerLasp1(ctx: LowerContext, layer: LinearAttentionKind) {
  return lowerChain(ctx, layer, [undefined]);
}

/** How a state travels: `undefined` for the whole state (LASP-1), else its blocks of rows in order. */
export type ChainBlocks = readonly (RowBlock | undefined)[];

/**
 * `endsOnComm`: the zero prefix of the first piece and the zero suffix of the last go on the communication
 * stream, so the chain starts without waiting for the intra-piece work queued on the compute stream (All-Scan).
 * LASP-1 keeps them on the compute stream, as its generated programs have them.
 */
export function lowerChain(
  ctx: LowerContext,
  layer: LinearAttentionKind,
  blocks: ChainBlocks,
  endsOnComm = false,
) {
  const stream = endsOnComm ? "comm" : "compute";
  return perRank(
    ctx,
    layer,
    (c, l, rank) => forward(c, l, rank, blocks, stream),
    (c, l, rank) => backward(c, l, rank, blocks, stream),
  );
}

/** Tag and label suffixes and the op params of one block (nothing for the whole state). */
function blockWords(rows: RowBlock | undefined, k: number) {
  return rows === undefined
    ? { tag: "", label: "", params: {} }
    : { tag: `.b${k}`, label: ` rows ${rows.start}..${rows.start + rows.count - 1}`, params: { rows } };
}

/** Local index of a piece on its rank. */
function localIndex(ctx: LowerContext, piece: Piece): number {
  return piecesOf(ctx, piece.rank).findIndex((p) => p.index === piece.index);
}

/**
 * One direction of the chain at one piece, as the forward pass (P, handed on up the pieces) and the backward
 * pass (G, handed back down) both run it: the incoming state ready (zero at the chain's end, copied at a turn
 * inside the rank, else received block by block), then per block the hand-on on the communication stream and its
 * send. Returns the steps that made the incoming state ready and the hand-ons.
 */
interface Link {
  /** `P`/`G`, `M`/`dM`, `on`/`back`, `fwd`/`bwd`: the words of the labels and tags. */
  state: string;
  own: string;
  verb: string;
  tag: string;
  /** The incoming state's buffer and the handed-on state's. */
  incoming: string;
  outgoing: string;
  /** The piece the state comes from and the one it goes to (undefined at the chain's ends). */
  from: Piece | undefined;
  to: Piece | undefined;
  /** The hand-on steps of the pieces already handed on (by global index). */
  handed: Map<number, number[]>;
  /** The zero state at the chain's end (its op is the direction's: prefix or suffix). */
  zero: () => number;
  /** One block's hand-on (ring_forward or ring_backward) on the communication stream. */
  handOn: (label: string, cost: { flops: number; bytes: number }, params: object, ready: number) => number;
}

function chainLink(
  b: RankBuilder,
  ctx: LowerContext,
  rank: number,
  piece: Piece,
  j: number,
  blocks: ChainBlocks,
  l: Link,
): { ready: number[]; hands: number[] } {
  let ready: number[];
  if (l.from === undefined) {
    const zero = l.zero();
    ready = blocks.map(() => zero);
  } else if (l.from.rank === rank) {
    // A hand-on inside the rank (zigzag's turn): each block is copied as soon as it is combined, so the chain's
    // pipeline runs through the turn (one copy of the whole state for LASP-1's single block).
    const from = l.from;
    const handed = l.handed.get(from.index)!;
    ready = blocks.map((rows, n) => {
      const words = blockWords(rows, n);
      const share = rows === undefined ? 1 : rows.count / ctx.sizes.headDim;
      return b.compute(
        "copy",
        `${l.state}[${piece.index}]${words.label} = the state piece ${from.index} hands ${l.verb}`,
        { src: [l.outgoing], dst: [l.incoming] },
        { flops: 0, bytes: 2 * stateBytes(ctx) * share },
        { from: localIndex(ctx, from), to: j, ...words.params },
        [handed[n]!],
        "comm",
      );
    });
  } else {
    ready = [];
  }
  // The hand-on is the chain's critical path: it runs on the communication stream, right after each block of
  // the state arrives, so the next rank never waits for this rank's own products.
  const hands: number[] = [];
  blocks.forEach((rows, n) => {
    const words = blockWords(rows, n);
    if (l.from !== undefined && l.from.rank !== rank) {
      ready.push(
        b.p2p(
          "recv",
          `recv ${l.state}[${piece.index}]${words.label} from rank ${l.from.rank}`,
          l.from.rank,
          `${l.tag}.${piece.index}${words.tag}`,
          [{ buffer: l.incoming, slot: j, ...words.params }],
          [],
        ),
      );
    }
    if (l.to === undefined) return;
    const hand = l.handOn(
      `hand ${l.verb} lam^C ${l.state}[${piece.index}] + ${l.own}[${piece.index}]${words.label}`,
      rows === undefined ? prefixCost(ctx, 2) : blockCost(ctx, rows),
      words.params,
      ready[n]!,
    );
    hands.push(hand);
    if (l.to.rank !== rank) {
      b.p2p(
        "send",
        `send ${l.state}[${l.to.index}]${words.label} to rank ${l.to.rank}`,
        l.to.rank,
        `${l.tag}.${l.to.index}${words.tag}`,
        [{ buffer: l.outgoing, slot: j, ...words.params }],
        [hand],
      );
    }
  });
  if (l.to !== undefined) l.handed.set(piece.index, hands);
  return { ready, hands };
}

function forward(
  ctx: LowerContext,
  layer: LinearAttentionKind,
  rank: number,
  blocks: ChainBlocks,
  zeroStream: Stream,
): RankProgram {
  const b = new RankBuilder(rank);
  const pieces = piecesOf(ctx, rank);
  const all = ctx.plan.pieces;
  const P = pieces.length;
  const { q, k, v, o, m, p } = forwardBuffers(b, ctx, P);
  const next = b.buffer(states(ctx, "p_next", P, "the state each piece hands on: lam^C P + M"));

  const stateIds = stateSteps(b, ctx, layer, k, v, m, (piece) => all[piece.index + 1] !== undefined);
  const intraSteps = pieces.map((piece, j) => intraStep(b, ctx, piece, j, { q, k, v, o }, true));
  // Pieces in global order: the chain visits them in that order on every rank, so no rank waits on itself.
  const handedOn = new Map<number, number[]>(); // global piece index -> steps that produced its P locally
  for (const piece of [...pieces].sort((a, c) => a.index - c.index)) {
    const j = localIndex(ctx, piece);
    const { ready } = chainLink(b, ctx, rank, piece, j, blocks, {
      state: "P",
      own: "M",
      verb: "on",
      tag: "fwd",
      incoming: p,
      outgoing: next,
      from: all[piece.index - 1],
      to: all[piece.index + 1],
      handed: handedOn,
      zero: () =>
        b.compute(
          "linear.prefix",
          `P[${piece.index}] = 0 (first piece)`,
          { p },
          prefixCost(ctx, 0),
          { piece: j, mode: "zero" },
          [],
          zeroStream,
        ),
      handOn: (label, cost, params, ready) =>
        b.compute(
          "linear.ring_forward",
          label,
          { p, m, ...documentEnds(b, ctx), next },
          cost,
          { piece: j, ...params },
          [ready, stateIds[j]!],
          "comm",
        ),
    });
    if (all[piece.index - 1] === undefined) continue; // P = 0
    interStep(b, ctx, piece, j, { q, p, o }, true, [...ready, intraSteps[j]!]);
  }
  return b.build();
}

function backward(
  ctx: LowerContext,
  layer: LinearAttentionKind,
  rank: number,
  blocks: ChainBlocks,
  zeroStream: Stream,
): RankProgram {
  const b = new RankBuilder(rank);
  const pieces = piecesOf(ctx, rank);
  const all = ctx.plan.pieces;
  const P = pieces.length;
  const { q, k, v, dout, p, dq, dk, dv, dm, g } = backwardBuffers(b, ctx, P);
  const previousOut = b.buffer(
    states(ctx, "g_prev", P, "the gradient state each piece hands back: lam^C G + dM"),
  );

  const gradSteps = gradStateSteps(b, ctx, layer, q, dout, dm, (piece) => piece.index > 0);
  const intraSteps = pieces.map((piece, j) => {
    const intra = intraBackwardStep(b, ctx, piece, j, { q, k, v, dout, dq, dk, dv }, true);
    if (piece.index > 0) dqInterStep(b, ctx, piece, j, { dout, p, dq }, [intra]); // P = 0 for the first
    return intra;
  });
  // Pieces in reverse global order; as in the forward pass, the hand-back runs ahead of dK, dV.
  const handedBack = new Map<number, number[]>();
  for (const piece of [...pieces].sort((a, c) => c.index - a.index)) {
    const j = localIndex(ctx, piece);
    const { ready } = chainLink(b, ctx, rank, piece, j, blocks, {
      state: "G",
      own: "dM",
      verb: "back",
      tag: "bwd",
      incoming: g,
      outgoing: previousOut,
      from: all[piece.index + 1],
      to: all[piece.index - 1],
      handed: handedBack,
      zero: () =>
        b.compute(
          "linear.suffix",
          `G[${piece.index}] = 0 (last piece)`,
          { g },
          prefixCost(ctx, 0),
          { piece: j, mode: "zero" },
          [],
          zeroStream,
        ),
      handOn: (label, cost, params, ready) =>
        b.compute(
          "linear.ring_backward",
          label,
          { g, dm, ...documentEnds(b, ctx), previous: previousOut },
          cost,
          { piece: j, ...params },
          [ready, gradSteps[j]!],
          "comm",
        ),
    });
    if (all[piece.index + 1] === undefined) continue; // G = 0
    dkdvInterStep(b, ctx, piece, j, { k, v, g, dk, dv }, [...ready, intraSteps[j]!]);
  }
  return b.build();
}

/** The hand-on of one block of rows: that share of a two-term weighted sum of states. */
function blockCost(ctx: LowerContext, rows: RowBlock): { flops: number; bytes: number } {
  const whole = prefixCost(ctx, 2);
  const share = rows.count / ctx.sizes.headDim;
  return { flops: whole.flops * share, bytes: whole.bytes * share };
}
