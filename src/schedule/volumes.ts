// Closed-form communication volumes per rank and pass (ALGORITHMS.md, "Communication per layer and rank"),
// written independently of the lowering passes: the invariants compare the lowered steps with these, and
// `lasp inspect` prints them to compare strategies.
import type { LayerKind } from "../spec/resolved.js";
import type { LayoutPlan, Pass, ScheduleSizes } from "./ir.js";

export interface Volume {
  /** Bytes this rank sends into collectives and point-to-point transfers. */
  bytes: number;
  /** Communication steps on the longest dependent chain. */
  dependentSteps: number;
}

export function closedFormVolume(
  kind: LayerKind,
  strategy: string,
  pass: Pass,
  plan: LayoutPlan,
  sizes: ScheduleSizes,
  rank = 0,
  /** Packed documents: LASP-2 gathers one fp32 flag per piece beside its states (two states if bidirectional). */
  documents = false,
  /** All-Scan: the blocks K each state travels in. */
  scanBlocks = 1,
): Volume {
  const W = plan.ranks;
  const P = plan.byRank[0]!.length; // pieces per rank
  const L = plan.byRank[0]!.reduce((s, p) => s + p.length, 0);
  const { batch: B, heads: H, headDim: d, elementBytes: e } = sizes;
  const state = B * H * d * d * 4;
  if (W === 1 && strategy !== "lasp2" && strategy !== "allgather" && strategy !== "ulysses")
    return { bytes: 0, dependentSteps: 0 };
  if (kind.type === "linear_attention") {
    switch (strategy) {
      case "lasp2":
        // One piece in all: no other piece has a state to give, so nothing is exchanged.
        if (plan.pieces.length === 1) return { bytes: 0, dependentSteps: 0 };
        if (documents) return { bytes: P * ((kind.causal ? 1 : 2) * state + B * 4), dependentSteps: 1 };
        return kind.causal ? { bytes: P * state, dependentSteps: 1 } : { bytes: state, dependentSteps: 1 };
      case "lasp1":
      case "allscan": {
        // Hops cross a rank boundary between consecutive pieces; this rank sends at the boundaries it leaves.
        const hops = plan.pieces.slice(0, -1).map((p, i) => [p, plan.pieces[i + 1]!] as const);
        const crossings = hops.filter(([a, b]) => a.rank !== b.rank);
        const senders = crossings.map(([before, after]) => (pass === "forward" ? before.rank : after.rank));
        // All-Scan's K blocks add up to one state; each run of crossings between hand-ons inside a rank
        // (zigzag's turn) is one pipeline, which K blocks fill in K - 1 more receives.
        const runs = hops.filter(
          ([a, b], i) => a.rank !== b.rank && (i === 0 || hops[i - 1]![0].rank === hops[i - 1]![1].rank),
        ).length;
        const K = strategy === "allscan" ? scanBlocks : 1;
        return {
          bytes: senders.filter((r) => r === rank).length * state,
          dependentSteps: crossings.length + runs * (K - 1),
        };
      }
      case "ulysses":
        return { bytes: B * L * 3 * H * d * e + B * L * H * d * e, dependentSteps: 2 };
    }
  } else {
    const Hkv = kind.kvHeads;
    switch (strategy) {
      case "allgather":
        // One rank holds every position: nothing to gather or scatter (lower-allgather.ts).
        if (W === 1) return { bytes: 0, dependentSteps: 0 };
        return pass === "forward"
          ? { bytes: 2 * B * L * Hkv * d * e, dependentSteps: 1 }
          : { bytes: 2 * W * B * L * Hkv * d * 4, dependentSteps: 1 };
      case "ring":
        return pass === "forward"
          ? { bytes: (W - 1) * 2 * B * L * Hkv * d * e, dependentSteps: W - 1 }
          : { bytes: (W - 1) * 2 * B * L * Hkv * d * (e + 4) + 2 * B * L * Hkv * d * 4, dependentSteps: W };
      case "ulysses":
        // Fewer kv heads than ranks: every destination gets one kv head of k and v (W kv heads sent, each
        // replicated on W / Hkv ranks; lower-ulysses.ts), and the gradients come back the same way.
        return { bytes: B * L * (H + 2 * Math.max(Hkv, W)) * d * e + B * L * H * d * e, dependentSteps: 2 };
    }
  }
  throw new Error(`no volume formula for ${strategy} on ${kind.type}`);
}
