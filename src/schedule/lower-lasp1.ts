// LASP-1, the ring baseline (ALGORITHMS.md): the prefix state travels piece to piece in global order,
// P_next = lam^C P + M, one dependent hop per rank boundary; the backward pass runs the chain in reverse
// with G. Causal layers only (the checker rejects bidirectional ones). Zigzag chains go up the ranks and
// back down, so a pass has 2(W-1) dependent hops instead of W-1. Terms that would add zero are left out: the
// first piece's prefix and the last piece's suffix are zero (no inter step), the last piece's state and the
// first piece's gradient state are handed to nobody (not computed). With documents (docs/DOCUMENTS.md) the
// chain is the affine scan one hop at a time: a piece where a document ends hands on its M alone (carry 0).
import type { LinearAttentionKind } from "../spec/resolved.js";
import { RankBuilder } from "./builder.js";
import { piecesOf, stateBytes, states, perRank, type LowerContext } from "./context.js";
import { documentEnds } from "./document-operands.js";
import type { Piece, RankProgram } from "./ir.js";
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
  return perRank(ctx, layer, forward, backward);
}

/** Local index of a piece on its rank. */
function localIndex(ctx: LowerContext, piece: Piece): number {
  return piecesOf(ctx, piece.rank).findIndex((p) => p.index === piece.index);
}

function forward(ctx: LowerContext, layer: LinearAttentionKind, rank: number): RankProgram {
  const b = new RankBuilder(rank);
  const pieces = piecesOf(ctx, rank);
  const all = ctx.plan.pieces;
  const P = pieces.length;
  const { q, k, v, o, m, p } = forwardBuffers(b, ctx, P);
  const next = b.buffer(states(ctx, "p_next", P, "the state each piece hands on: lam^C P + M"));

  const stateIds = stateSteps(b, ctx, layer, k, v, m, (piece) => all[piece.index + 1] !== undefined);
  const intraSteps = pieces.map((piece, j) => intraStep(b, ctx, piece, j, { q, k, v, o }, true));
  // Pieces in global order: the chain visits them in that order on every rank, so no rank waits on itself.
  const handedOn = new Map<number, number>(); // global piece index -> step that produced its P locally
  for (const piece of [...pieces].sort((a, c) => a.index - c.index)) {
    const j = localIndex(ctx, piece);
    let ready: number;
    const previous = all[piece.index - 1];
    if (previous === undefined) {
      ready = b.compute("linear.prefix", `P[${piece.index}] = 0 (first piece)`, { p }, prefixCost(ctx, 0), {
        piece: j,
        mode: "zero",
      });
    } else if (previous.rank === rank) {
      ready = b.compute(
        "copy",
        `P[${piece.index}] = the state piece ${previous.index} hands on`,
        { src: [next], dst: [p] },
        { flops: 0, bytes: 2 * stateBytes(ctx) },
        { from: localIndex(ctx, previous), to: j },
        [handedOn.get(previous.index)!],
        "comm",
      );
    } else {
      ready = b.p2p(
        "recv",
        `recv P[${piece.index}] from rank ${previous.rank}`,
        previous.rank,
        `fwd.${piece.index}`,
        [{ buffer: p, slot: j }],
        [],
      );
    }
    // The hand-on is the ring's critical path: it runs on the communication stream, right after P arrives,
    // so the next rank never waits for this rank's inter product.
    const following = all[piece.index + 1];
    const hand =
      following === undefined
        ? undefined
        : b.compute(
            "linear.ring_forward",
            `hand on lam^C P[${piece.index}] + M[${piece.index}]`,
            { p, m, ...documentEnds(b, ctx), next },
            prefixCost(ctx, 2),
            { piece: j },
            [ready, stateIds[j]!],
            "comm",
          );
    if (following !== undefined && hand !== undefined) {
      handedOn.set(piece.index, hand);
      if (following.rank !== rank) {
        b.p2p(
          "send",
          `send P[${following.index}] to rank ${following.rank}`,
          following.rank,
          `fwd.${following.index}`,
          [{ buffer: next, slot: j }],
          [hand],
        );
      }
    }
    if (previous === undefined) continue; // P = 0
    interStep(b, ctx, piece, j, { q, p, o }, true, [ready, intraSteps[j]!]);
  }
  return b.build();
}

function backward(ctx: LowerContext, layer: LinearAttentionKind, rank: number): RankProgram {
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
  const handedBack = new Map<number, number>();
  for (const piece of [...pieces].sort((a, c) => c.index - a.index)) {
    const j = localIndex(ctx, piece);
    let ready: number;
    const later = all[piece.index + 1];
    if (later === undefined) {
      ready = b.compute("linear.suffix", `G[${piece.index}] = 0 (last piece)`, { g }, prefixCost(ctx, 0), {
        piece: j,
        mode: "zero",
      });
    } else if (later.rank === rank) {
      ready = b.compute(
        "copy",
        `G[${piece.index}] = the state piece ${later.index} hands back`,
        { src: [previousOut], dst: [g] },
        { flops: 0, bytes: 2 * stateBytes(ctx) },
        { from: localIndex(ctx, later), to: j },
        [handedBack.get(later.index)!],
        "comm",
      );
    } else {
      ready = b.p2p(
        "recv",
        `recv G[${piece.index}] from rank ${later.rank}`,
        later.rank,
        `bwd.${piece.index}`,
        [{ buffer: g, slot: j }],
        [],
      );
    }
    // As in the forward pass, the hand-back runs on the communication stream, ahead of dK, dV.
    const earlier = all[piece.index - 1];
    if (earlier !== undefined) {
      const hand = b.compute(
        "linear.ring_backward",
        `hand back lam^C G[${piece.index}] + dM[${piece.index}]`,
        { g, dm, ...documentEnds(b, ctx), previous: previousOut },
        prefixCost(ctx, 2),
        { piece: j },
        [ready, gradSteps[j]!],
        "comm",
      );
      handedBack.set(piece.index, hand);
      if (earlier.rank !== rank) {
        b.p2p(
          "send",
          `send G[${earlier.index}] to rank ${earlier.rank}`,
          earlier.rank,
          `bwd.${earlier.index}`,
          [{ buffer: previousOut, slot: j }],
          [hand],
        );
      }
    }
    if (later === undefined) continue; // G = 0
    dkdvInterStep(b, ctx, piece, j, { k, v, g, dk, dv }, [ready, intraSteps[j]!]);
  }
  return b.build();
}
