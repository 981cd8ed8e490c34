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
    const previous = all[piece.index - 1];
    // One step per block that makes that block of P ready (all of them when P arrives whole).
    let ready: number[];
    if (previous === undefined) {
      const zero = b.compute(
        "linear.prefix",
        `P[${piece.index}] = 0 (first piece)`,
        { p },
        prefixCost(ctx, 0),
        {
          piece: j,
          mode: "zero",
        },
        [],
        zeroStream,
      );
      ready = blocks.map(() => zero);
    } else if (previous.rank === rank) {
      // A hand-on inside the rank (zigzag's turn) copies the whole state once every block of it is combined.
      const copy = b.compute(
        "copy",
        `P[${piece.index}] = the state piece ${previous.index} hands on`,
        { src: [next], dst: [p] },
        { flops: 0, bytes: 2 * stateBytes(ctx) },
        { from: localIndex(ctx, previous), to: j },
        handedOn.get(previous.index)!,
        "comm",
      );
      ready = blocks.map(() => copy);
    } else {
      ready = [];
    }
    // The hand-on is the chain's critical path: it runs on the communication stream, right after each block
    // of P arrives, so the next rank never waits for this rank's inter product.
    const following = all[piece.index + 1];
    const hands: number[] = [];
    blocks.forEach((rows, n) => {
      const words = blockWords(rows, n);
      if (previous !== undefined && previous.rank !== rank) {
        ready.push(
          b.p2p(
            "recv",
            `recv P[${piece.index}]${words.label} from rank ${previous.rank}`,
            previous.rank,
            `fwd.${piece.index}${words.tag}`,
            [{ buffer: p, slot: j, ...words.params }],
            [],
          ),
        );
      }
      if (following === undefined) return;
      const hand = b.compute(
        "linear.ring_forward",
        `hand on lam^C P[${piece.index}] + M[${piece.index}]${words.label}`,
        { p, m, ...documentEnds(b, ctx), next },
        rows === undefined ? prefixCost(ctx, 2) : blockCost(ctx, rows),
        { piece: j, ...words.params },
        [ready[n]!, stateIds[j]!],
        "comm",
      );
      hands.push(hand);
      if (following.rank !== rank) {
        b.p2p(
          "send",
          `send P[${following.index}]${words.label} to rank ${following.rank}`,
          following.rank,
          `fwd.${following.index}${words.tag}`,
          [{ buffer: next, slot: j, ...words.params }],
          [hand],
        );
      }
    });
    if (following !== undefined) handedOn.set(piece.index, hands);
    if (previous === undefined) continue; // P = 0
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
  const handedBack = new Map<number, number[]>();
  for (const piece of [...pieces].sort((a, c) => c.index - a.index)) {
    const j = localIndex(ctx, piece);
    const later = all[piece.index + 1];
    let ready: number[];
    if (later === undefined) {
      const zero = b.compute(
        "linear.suffix",
        `G[${piece.index}] = 0 (last piece)`,
        { g },
        prefixCost(ctx, 0),
        {
          piece: j,
          mode: "zero",
        },
        [],
        zeroStream,
      );
      ready = blocks.map(() => zero);
    } else if (later.rank === rank) {
      const copy = b.compute(
        "copy",
        `G[${piece.index}] = the state piece ${later.index} hands back`,
        { src: [previousOut], dst: [g] },
        { flops: 0, bytes: 2 * stateBytes(ctx) },
        { from: localIndex(ctx, later), to: j },
        handedBack.get(later.index)!,
        "comm",
      );
      ready = blocks.map(() => copy);
    } else {
      ready = [];
    }
    // As in the forward pass, the hand-back runs on the communication stream, ahead of dK, dV.
    const earlier = all[piece.index - 1];
    const hands: number[] = [];
    blocks.forEach((rows, n) => {
      const words = blockWords(rows, n);
      if (later !== undefined && later.rank !== rank) {
        ready.push(
          b.p2p(
            "recv",
            `recv G[${piece.index}]${words.label} from rank ${later.rank}`,
            later.rank,
            `bwd.${piece.index}${words.tag}`,
            [{ buffer: g, slot: j, ...words.params }],
            [],
          ),
        );
      }
      if (earlier === undefined) return;
      const hand = b.compute(
        "linear.ring_backward",
        `hand back lam^C G[${piece.index}] + dM[${piece.index}]${words.label}`,
        { g, dm, ...documentEnds(b, ctx), previous: previousOut },
        rows === undefined ? prefixCost(ctx, 2) : blockCost(ctx, rows),
        { piece: j, ...words.params },
        [ready[n]!, gradSteps[j]!],
        "comm",
      );
      hands.push(hand);
      if (earlier.rank !== rank) {
        b.p2p(
          "send",
          `send G[${earlier.index}]${words.label} to rank ${earlier.rank}`,
          earlier.rank,
          `bwd.${earlier.index}${words.tag}`,
          [{ buffer: previousOut, slot: j, ...words.params }],
          [hand],
        );
      }
    });
    if (earlier !== undefined) handedBack.set(piece.index, hands);
    if (later === undefined) continue; // G = 0
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
