// LASP-2 for linear attention (ALGORITHMS.md): per pass, one collective of d x d states, started as soon as
// the piece states exist and overlapped with the intra-piece work. Causal layers AllGather the piece
// states and build a decayed prefix (forward) or suffix (backward) per piece; bidirectional layers need only
// the total, so they AllReduce one state. Zigzag ranks hold two pieces and treat each separately.
// A piece with no other piece to take a state from (the first piece of a causal forward, the last of a
// causal backward, every piece when there is one piece in all) gets no prefix or suffix step and no inter
// step: they would add zero. With one piece in all (one GPU, contiguous) no state is computed or exchanged,
// so the pass is the intra-piece work alone, as a single-GPU program would be.
//
// Two arrangements (LowerOptions.lasp2). `fused` (the default): the collective overlaps a projection of the
// layer (a `host` step: Q = X Wq forward, dWo backward, which the program runs where the step stands), and
// one walk per piece adds the prefix (and suffix) terms inside the intra-piece product, so q, k, v, o and
// their gradients are read once. `split`: the collective overlaps the intra-piece product, and separate
// inter steps add the prefix terms afterwards, re-reading q, o (dO, dQ, K, V, dK, dV).
//
// In `fused`, a piece that takes nothing from the collective (the first causal piece forward, the last one
// backward) still waits for it before its walk. Without the wait that rank's walk would follow the
// projection at once and hold every SM, so its share of the collective would run only after the walk,
// while every other rank's walk waits for that share (measured on 4 x H100: the forward AllGather ended
// 0.18 ms after the projection beside it on the first rank, the backward one 0.28 ms after dWo).
//
// Packed documents (docs/DOCUMENTS.md): every op that attends takes the document ends; the state steps also
// write one flag per piece (a document ends inside: carry 0), gathered in the same grouped AllGather, and
// the prefix and suffix steps run the affine scan over states and flags. A bidirectional layer gathers two
// states per piece (the head and tail documents' parts) instead of reducing one, and builds two scans.
import type { LinearAttentionKind } from "../spec/resolved.js";
import { RankBuilder } from "./builder.js";
import { flagBuffer, piecesOf, stateBytes, states, perRank, type LowerContext } from "./context.js";
import { documentEnds } from "./document-operands.js";
import type { Piece, RankProgram } from "./ir.js";
import { hostStep } from "./host-steps.js";
import { backwardFusedCost, forwardFusedCost, prefixCost } from "./linear-costs.js";
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

export function lowerLasp2(ctx: LowerContext, layer: LinearAttentionKind) {
  return ctx.lasp2 === "split"
    ? perRank(ctx, layer, forward, backward)
    : perRank(ctx, layer, forwardFused, backwardFused);
}

/**
 * The state collective of a pass: AllGather of the piece states (causal) or AllReduce of their sum
 * (bidirectional). Returns its step and the buffer the prefix (suffix) steps read. With documents the
 * pieces' flags travel in the same grouped AllGather (the scan's carries follow from them), and a
 * bidirectional layer gathers each piece's two states (`outs.head` or `outs.tail` beside `own`) instead of
 * reducing one: a document may run into earlier and later pieces alike.
 */
function exchange(
  b: RankBuilder,
  ctx: LowerContext,
  layer: LinearAttentionKind,
  pass: "fwd" | "bwd",
  own: string,
  outs: DocumentOuts,
  after: number[],
): { comm: number; gathered: string; flags?: string; twin?: string } {
  const P = piecesOf(ctx, b.rank).length;
  const total = ctx.plan.pieces.length;
  const [what, noun] = pass === "fwd" ? ["piece states", "states"] : ["piece gradient states", "dM"];
  if (layer.causal || outs.flag !== undefined) {
    const gathered = `${own}_all`;
    const all = b.buffer(states(ctx, gathered, total, `every piece's ${noun}, gathered (rank-major order)`));
    const transfers = [{ send: own, recv: all }];
    const twinOwn = outs.head ?? outs.tail;
    const twin = twinOwn === undefined ? undefined : `${twinOwn}_all`;
    if (twinOwn !== undefined && twin !== undefined) {
      const which = outs.head !== undefined ? "head (first document's)" : "tail (last document's)";
      b.buffer(states(ctx, twin, total, `every piece's ${which} ${noun}, gathered`));
      transfers.push({ send: twinOwn, recv: twin });
    }
    const flags = outs.flag === undefined ? undefined : `${own}_flag_all`;
    if (outs.flag !== undefined && flags !== undefined) {
      b.buffer(flagBuffer(ctx, flags, total, "every piece's flag, gathered"));
      transfers.push({ send: outs.flag, recv: flags });
    }
    const comm = b.collective(
      "allgather",
      `AllGather ${what} (${P} per rank${twin !== undefined ? ", head and tail" : ""})${flags !== undefined ? " and their flags" : ""}`,
      ctx.group,
      `${pass}.states`,
      transfers,
      after,
    );
    return {
      comm,
      gathered,
      ...(flags !== undefined ? { flags } : {}),
      ...(twin !== undefined ? { twin } : {}),
    };
  }
  const sum = b.buffer(states(ctx, `${own}_sum`, 1, `sum of this rank's ${noun}`));
  const acc = b.compute(
    "accumulate",
    `sum this rank's ${what}`,
    { src: own, dst: sum },
    { flops: 0, bytes: (P + 1) * stateBytes(ctx) },
    {},
    after,
  );
  const gathered = `${own}_total`;
  const totalState = b.buffer(states(ctx, gathered, 1, `sum of all pieces' ${noun}`));
  const comm = b.collective(
    "allreduce",
    pass === "fwd" ? "AllReduce the state sum" : "AllReduce the gradient state sum",
    ctx.group,
    `${pass}.states`,
    [{ send: sum, recv: totalState }],
    [acc],
  );
  return { comm, gathered };
}

/** What the state steps write besides M (dM) with documents: the piece flags, and a bidirectional twin. */
interface DocumentOuts {
  flag?: string;
  /** Forward, bidirectional: the state of each piece's first document (M is then its last one's). */
  head?: string;
  /** Backward, bidirectional: the gradient state of each piece's last document (dM is its first one's). */
  tail?: string;
}

/**
 * With documents: the buffers of this rank's piece flags (a document ends inside), which the state steps
 * write and the collective gathers beside the states, and for a bidirectional layer the second state per
 * piece (docs/DOCUMENTS.md); nothing without documents.
 */
function documentOuts(
  b: RankBuilder,
  ctx: LowerContext,
  layer: LinearAttentionKind,
  pass: "fwd" | "bwd",
  own: string,
  P: number,
): DocumentOuts {
  if (ctx.documents === undefined) return {};
  const flag = b.buffer(
    flagBuffer(ctx, `${own}_flag`, P, "1 if a document ends inside the piece: its carry is 0"),
  );
  if (layer.causal) return { flag };
  return pass === "fwd"
    ? {
        head: b.buffer(states(ctx, "m_head", P, "state of each piece's first document (M: its last one's)")),
        flag,
      }
    : {
        tail: b.buffer(states(ctx, "dm_tail", P, "dM of each piece's last document (dm: its first one's)")),
        flag,
      };
}

/** P (prefix) or G (suffix) of one piece from the exchanged states; `terms` > 0 other pieces contribute. */
function combine(
  b: RankBuilder,
  ctx: LowerContext,
  layer: LinearAttentionKind,
  piece: Piece,
  j: number,
  io: {
    gathered: string;
    flags: string | undefined;
    own: string;
    out: string;
    /** Bidirectional with documents: what the scan builds, in words. */
    name?: string;
    what?: string;
  },
  mode: "prefix" | "suffix",
  terms: number,
  comm: number,
): number {
  const [name, which, what] =
    mode === "prefix" ? ["P", "earlier", "piece states"] : ["G", "later", "pieces' dM"];
  const scan = layer.causal || io.flags !== undefined;
  const label =
    io.flags !== undefined
      ? `${io.name ?? name}[${piece.index}] = affine scan of the ${which} ${io.what ?? what} (carry 0 past a boundary)`
      : layer.causal
        ? `${name}[${piece.index}] = decayed sum of the ${terms} ${which} ${what}`
        : `${name}[${piece.index}] = sum of the other ${mode === "prefix" ? "pieces' states" : "pieces' dM"}`;
  const flags = io.flags !== undefined ? { flags: io.flags } : {};
  const from = scan ? { gathered: io.gathered, ...flags } : { total: io.gathered, own: io.own };
  const others = scan ? undefined : ("others" as const);
  return mode === "prefix"
    ? b.compute(
        "linear.prefix",
        label,
        { ...from, p: io.out },
        prefixCost(ctx, terms),
        { piece: j, mode: others ?? mode },
        [comm],
      )
    : b.compute(
        "linear.suffix",
        label,
        { ...from, g: io.out },
        prefixCost(ctx, terms),
        { piece: j, mode: others ?? mode },
        [comm],
      );
}

/** What both backward arrangements start from: the rank's pieces and buffers, and which pieces have a P. */
function backwardStart(ctx: LowerContext, layer: LinearAttentionKind, rank: number) {
  const b = new RankBuilder(rank);
  const pieces = piecesOf(ctx, rank);
  const total = ctx.plan.pieces.length;
  // The forward pass wrote a prefix for every piece that has earlier pieces (all of them if bidirectional).
  const hasPrefix = (index: number) => total > 1 && (!layer.causal || index > 0);
  const savedPrefix = pieces.some((piece) => hasPrefix(piece.index));
  return { b, pieces, total, hasPrefix, ...backwardBuffers(b, ctx, pieces.length, savedPrefix) };
}

/**
 * Bidirectional layers with documents: the buffer of each piece's second scan (`p_after`, the suffix scan of
 * the later pieces' head states, forward; `g_before`, the prefix scan of the earlier pieces' tail dM,
 * backward), declared as the forward pass wrote it (`saved`) or as a pass's own; undefined otherwise.
 */
function secondScan(
  b: RankBuilder,
  ctx: LowerContext,
  layer: LinearAttentionKind,
  name: "p_after" | "g_before",
  saved = false,
): string | undefined {
  if (ctx.documents === undefined || layer.causal) return undefined;
  const P = piecesOf(ctx, b.rank).length;
  const doc =
    name === "p_after"
      ? "F of each piece: the later pieces' head states, for its last document"
      : "the earlier pieces' tail dM, for each piece's first document";
  return b.buffer(states(ctx, name, P, doc, saved));
}

function forwardFused(ctx: LowerContext, layer: LinearAttentionKind, rank: number): RankProgram {
  const b = new RankBuilder(rank);
  const pieces = piecesOf(ctx, rank);
  const total = ctx.plan.pieces.length;
  const { q, k, v, o, m, p } = forwardBuffers(b, ctx, pieces.length);
  if (total === 1) {
    const host = hostStep(b, ctx, "q_projection", q, []);
    intraStep(b, ctx, pieces[0]!, 0, { q, k, v, o }, layer.causal, [host]);
    return b.build();
  }
  const outs = documentOuts(b, ctx, layer, "fwd", m, pieces.length);
  const pAfter = secondScan(b, ctx, layer, "p_after");
  const stateIds = stateSteps(b, ctx, layer, k, v, m, undefined, outs) as number[];
  const exchanged = exchange(b, ctx, layer, "fwd", m, outs, stateIds);
  const { comm } = exchanged;
  const host = hostStep(b, ctx, "q_projection", q, ctx.overlap ? [] : [comm]);
  pieces.forEach((piece, j) => {
    const terms = layer.causal ? piece.index : total - 1;
    if (terms === 0) {
      intraStep(b, ctx, piece, j, { q, k, v, o }, layer.causal, [host, comm]);
      return;
    }
    const scans = forwardScans(b, ctx, layer, piece, j, exchanged, { m, p, pAfter }, terms);
    b.compute(
      "linear.forward_fused",
      `O[${piece.index}] = intra-piece product + ${layer.causal ? "lam^(i+1) " : ""}Q P (one walk)`,
      { q, k, v, p, ...(pAfter !== undefined ? { after: pAfter } : {}), ...documentEnds(b, ctx), o },
      forwardFusedCost(ctx, piece.length, true),
      { piece: j, causal: layer.causal },
      [host, ...scans],
    );
  });
  return b.build();
}

/** A scan's output and its name where a piece has two (bidirectional layers with documents). */
interface ScanNames {
  name: string;
  what: string;
}

/**
 * A piece's scans in one direction: the main one (`first`: the forward's prefix P, the backward's suffix G) and,
 * with bidirectional documents, its twin over the other end's states (`p_after`, `g_before`) in the other
 * direction. Their step ids.
 */
function scans(
  b: RankBuilder,
  ctx: LowerContext,
  layer: LinearAttentionKind,
  piece: Piece,
  j: number,
  exchanged: ReturnType<typeof exchange>,
  { own, out, twinOut }: { own: string; out: string; twinOut: string | undefined },
  terms: number,
  first: "prefix" | "suffix",
  names: { main: ScanNames; twin: ScanNames },
): number[] {
  const { comm, gathered, flags, twin } = exchanged;
  const main = twinOut !== undefined ? names.main : {};
  const step = combine(b, ctx, layer, piece, j, { gathered, flags, own, out, ...main }, first, terms, comm);
  if (twinOut === undefined || twin === undefined) return [step];
  const io = { gathered: twin, flags, own, out: twinOut, ...names.twin };
  return [step, combine(b, ctx, layer, piece, j, io, first === "prefix" ? "suffix" : "prefix", terms, comm)];
}

/** The forward scans of a piece: P, and with bidirectional documents F (`p_after`). Their step ids. */
function forwardScans(
  b: RankBuilder,
  ctx: LowerContext,
  layer: LinearAttentionKind,
  piece: Piece,
  j: number,
  exchanged: ReturnType<typeof exchange>,
  { m, p, pAfter }: { m: string; p: string; pAfter: string | undefined },
  terms: number,
): number[] {
  return scans(b, ctx, layer, piece, j, exchanged, { own: m, out: p, twinOut: pAfter }, terms, "prefix", {
    main: { name: "P", what: "pieces' tail states" },
    twin: { name: "F", what: "pieces' head states" },
  });
}

/** The backward scans of a piece: G, and with bidirectional documents `g_before`. Undefined if none. */
function backwardScans(
  b: RankBuilder,
  ctx: LowerContext,
  layer: LinearAttentionKind,
  piece: Piece,
  j: number,
  exchanged: ReturnType<typeof exchange>,
  { dm, g, gBefore }: { dm: string; g: string; gBefore: string | undefined },
  terms: number,
): number[] | undefined {
  if (terms === 0) return undefined;
  return scans(b, ctx, layer, piece, j, exchanged, { own: dm, out: g, twinOut: gBefore }, terms, "suffix", {
    main: { name: "G", what: "pieces' head dM" },
    twin: { name: "G_before", what: "pieces' tail dM" },
  });
}

function backwardFused(ctx: LowerContext, layer: LinearAttentionKind, rank: number): RankProgram {
  const { b, pieces, total, hasPrefix, q, k, v, dout, p, dq, dk, dv, dm, g } = backwardStart(
    ctx,
    layer,
    rank,
  );
  const io = { q, k, v, dout, dq, dk, dv };
  if (total === 1) {
    const host = hostStep(b, ctx, "o_weight_grad", q, []);
    intraBackwardStep(b, ctx, pieces[0]!, 0, io, layer.causal, [host]);
    return b.build();
  }
  const pAfter = secondScan(b, ctx, layer, "p_after", true);
  const gBefore = secondScan(b, ctx, layer, "g_before");
  const outs = documentOuts(b, ctx, layer, "bwd", dm, pieces.length);
  const gradSteps = gradStateSteps(b, ctx, layer, q, dout, dm, undefined, outs) as number[];
  const exchanged = exchange(b, ctx, layer, "bwd", dm, outs, gradSteps);
  const { comm } = exchanged;
  const host = hostStep(b, ctx, "o_weight_grad", q, ctx.overlap ? [] : [comm]);
  pieces.forEach((piece, j) => {
    const prefix = hasPrefix(piece.index);
    const terms = layer.causal ? total - 1 - piece.index : total - 1;
    const scans = backwardScans(b, ctx, layer, piece, j, exchanged, { dm, g, gBefore }, terms);
    if (!prefix && scans === undefined) {
      intraBackwardStep(b, ctx, piece, j, io, layer.causal, [host, comm]);
      return;
    }
    const terms_ = [prefix ? "dO P^T" : "", scans !== undefined ? "G" : ""]
      .filter((t) => t !== "")
      .join(", ");
    b.compute(
      "linear.backward_fused",
      `dQ, dK, dV[${piece.index}] inside the piece + the ${terms_} terms (one walk)`,
      {
        q,
        k,
        v,
        dout,
        ...(prefix ? { p, ...(pAfter !== undefined ? { after: pAfter } : {}) } : {}),
        ...(scans !== undefined ? { g, ...(gBefore !== undefined ? { before: gBefore } : {}) } : {}),
        ...documentEnds(b, ctx),
        dq,
        dk,
        dv,
      },
      backwardFusedCost(ctx, piece.length, prefix, scans !== undefined),
      { piece: j, causal: layer.causal },
      scans !== undefined ? [host, ...scans] : [host, comm],
    );
  });
  return b.build();
}

function forward(ctx: LowerContext, layer: LinearAttentionKind, rank: number): RankProgram {
  const b = new RankBuilder(rank);
  const pieces = piecesOf(ctx, rank);
  const total = ctx.plan.pieces.length;
  const { q, k, v, o, m, p } = forwardBuffers(b, ctx, pieces.length);
  if (total === 1) {
    intraStep(b, ctx, pieces[0]!, 0, { q, k, v, o }, layer.causal);
    return b.build();
  }
  const outs = documentOuts(b, ctx, layer, "fwd", m, pieces.length);
  const pAfter = secondScan(b, ctx, layer, "p_after");
  const stateIds = stateSteps(b, ctx, layer, k, v, m, undefined, outs) as number[];
  const exchanged = exchange(b, ctx, layer, "fwd", m, outs, stateIds);
  const intraSteps = pieces.map((piece, j) =>
    intraStep(b, ctx, piece, j, { q, k, v, o }, layer.causal, ctx.overlap ? [] : [exchanged.comm]),
  );
  pieces.forEach((piece, j) => {
    const terms = layer.causal ? piece.index : total - 1;
    if (terms === 0) return;
    const scans = forwardScans(b, ctx, layer, piece, j, exchanged, { m, p, pAfter }, terms);
    const io = { q, p, ...(pAfter !== undefined ? { after: pAfter } : {}), o };
    interStep(b, ctx, piece, j, io, layer.causal, [...scans, intraSteps[j]!]);
  });
  return b.build();
}

function backward(ctx: LowerContext, layer: LinearAttentionKind, rank: number): RankProgram {
  const { b, pieces, total, hasPrefix, q, k, v, dout, p, dq, dk, dv, dm, g } = backwardStart(
    ctx,
    layer,
    rank,
  );
  const io = { q, k, v, dout, dq, dk, dv };
  if (total === 1) {
    intraBackwardStep(b, ctx, pieces[0]!, 0, io, layer.causal);
    return b.build();
  }
  const pAfter = secondScan(b, ctx, layer, "p_after", true);
  const gBefore = secondScan(b, ctx, layer, "g_before");
  const outs = documentOuts(b, ctx, layer, "bwd", dm, pieces.length);
  const gradSteps = gradStateSteps(b, ctx, layer, q, dout, dm, undefined, outs) as number[];
  const exchanged = exchange(b, ctx, layer, "bwd", dm, outs, gradSteps);
  pieces.forEach((piece, j) => {
    const intra = intraBackwardStep(b, ctx, piece, j, io, layer.causal, ctx.overlap ? [] : [exchanged.comm]);
    // P of the first causal piece is empty: the forward pass wrote none, and dO P^T would add zero.
    if (hasPrefix(piece.index)) {
      const dqIo = { dout, p, ...(pAfter !== undefined ? { after: pAfter } : {}), dq };
      dqInterStep(b, ctx, piece, j, dqIo, [intra]);
    }
    const terms = layer.causal ? total - 1 - piece.index : total - 1;
    const scans = backwardScans(b, ctx, layer, piece, j, exchanged, { dm, g, gBefore }, terms);
    if (scans === undefined) return;
    const dkdvIo = { k, v, g, ...(gBefore !== undefined ? { before: gBefore } : {}), dk, dv };
    dkdvInterStep(b, ctx, piece, j, dkdvIo, [...scans, intra]);
  });
  return b.build();
}
