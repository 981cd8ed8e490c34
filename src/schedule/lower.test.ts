import { describe, expect, it } from "vitest";
import type { Layout } from "../spec/resolved.js";
import { PassGraph } from "./graph.js";
import { stepReads } from "./ir.js";
import { checkProgram } from "./invariants.js";
import { planLayout } from "./layout.js";
import { lowerSpec } from "./lower.js";
import { linearKind, softmaxKind, tinySpec } from "./test-specs.js";
import { closedFormVolume } from "./volumes.js";

const RANKS = [1, 2, 3, 4, 8];
const LAYOUTS: Layout[] = ["contiguous", "zigzag"];

describe("layout", () => {
  it("zigzag gives rank r pieces r and 2W-1-r, covering the sequence once", () => {
    const plan = planLayout("zigzag", 4, 64);
    expect(plan.byRank.map((ps) => ps.map((p) => p.index))).toEqual([
      [0, 7],
      [1, 6],
      [2, 5],
      [3, 4],
    ]);
    const covered = plan.pieces.flatMap((p) => Array.from({ length: p.length }, (_, i) => p.start + i));
    expect(covered).toEqual(Array.from({ length: 64 }, (_, i) => i));
  });
});

describe("every strategy lowers to a program that satisfies the invariants", () => {
  for (const W of RANKS) {
    for (const layout of LAYOUTS) {
      for (const linear of ["lasp2", "lasp1", "allscan", "ulysses"] as const) {
        for (const causal of [true, false]) {
          if ((linear === "lasp1" || linear === "allscan") && !causal) continue;
          it(`linear ${linear} W=${W} ${layout} ${causal ? "causal" : "bidirectional"}`, () => {
            const spec = tinySpec({
              ranks: W,
              layout,
              seqLen: 2 * W * 16,
              heads: 8,
              linear,
              layers: [linearKind("L", 8, causal ? 0.9 : 1, causal)],
            });
            expect(checkProgram(lowerSpec(spec, { block: 8 }))).toEqual([]);
          });
        }
      }
      for (const softmax of ["allgather", "ring", "ulysses"] as const) {
        for (const causal of [true, false]) {
          it(`softmax ${softmax} W=${W} ${layout} ${causal ? "causal" : "bidirectional"} GQA`, () => {
            const spec = tinySpec({
              ranks: W,
              layout,
              seqLen: 2 * W * 16,
              heads: 8,
              softmax,
              layers: [softmaxKind("S", W <= 2 ? 2 : W === 8 ? 8 : 4, causal)],
            });
            expect(checkProgram(lowerSpec(spec, { block: 8 }))).toEqual([]);
          });
        }
      }
    }
  }
});

describe("dependent communication steps", () => {
  const depth = (
    linear: "lasp2" | "lasp1" | "allscan",
    W: number,
    layout: Layout,
    scanBlocks = 2,
  ): number[] => {
    const spec = tinySpec({
      ranks: W,
      layout,
      seqLen: 2 * W * 16,
      linear,
      scanBlocks,
      layers: [linearKind("L", 4, 0.9)],
    });
    const program = lowerSpec(spec, { block: 8 });
    return (["forward", "backward"] as const).map((pass) =>
      new PassGraph(program.schedules[0]!.passes[pass]).dependentCommSteps(),
    );
  };
  it("LASP-2 has one collective per pass whatever W, and none with one piece in all", () => {
    for (const W of RANKS) expect(depth("lasp2", W, "contiguous")).toEqual(W === 1 ? [0, 0] : [1, 1]);
    for (const W of RANKS) expect(depth("lasp2", W, "zigzag")).toEqual([1, 1]);
  });
  it("LASP-1 has W-1 dependent hops per pass (2(W-1) with zigzag)", () => {
    for (const W of RANKS) {
      expect(depth("lasp1", W, "contiguous")).toEqual([W - 1, W - 1]);
      expect(depth("lasp1", W, "zigzag")).toEqual([2 * (W - 1), 2 * (W - 1)]);
    }
  });
  it("All-Scan's K blocks fill each pipeline of W-1 hops in K-1 more receives (zigzag's turn starts a second)", () => {
    for (const W of RANKS) {
      for (const K of [1, 2, 4]) {
        const hops = W === 1 ? 0 : W - 1 + K - 1;
        expect(depth("allscan", W, "contiguous", K)).toEqual([hops, hops]);
        expect(depth("allscan", W, "zigzag", K)).toEqual([2 * hops, 2 * hops]);
        const spec = tinySpec({
          ranks: W,
          layout: "zigzag",
          seqLen: 2 * W * 16,
          linear: "allscan",
          scanBlocks: K,
          layers: [linearKind("L", 4, 0.9)],
        });
        const program = lowerSpec(spec, { block: 8 });
        for (const pass of ["forward", "backward"] as const)
          expect(
            closedFormVolume(
              program.schedules[0]!.layer,
              "allscan",
              pass,
              program.layout,
              program.sizes,
              0,
              false,
              K,
            ).dependentSteps,
          ).toBe(2 * hops);
      }
    }
  });
  it("the closed form agrees on the dependent steps", () => {
    const spec = tinySpec({
      ranks: 8,
      layout: "contiguous",
      seqLen: 256,
      linear: "lasp1",
      layers: [linearKind("L", 4, 0.9)],
    });
    const program = lowerSpec(spec, { block: 8 });
    expect(
      closedFormVolume(program.schedules[0]!.layer, "lasp1", "forward", program.layout, program.sizes)
        .dependentSteps,
    ).toBe(7);
  });
});

describe("All-Scan", () => {
  const lowered = (linear: "lasp1" | "allscan", scanBlocks: number, layout: Layout = "contiguous") =>
    lowerSpec(
      tinySpec({ ranks: 4, layout, seqLen: 128, linear, scanBlocks, layers: [linearKind("L", 4, 0.9)] }),
      { block: 8 },
    ).schedules[0]!;

  it("sends each state in K blocks of rows on the communication stream, K sends and receives per hop", () => {
    const schedule = lowered("allscan", 4);
    expect(schedule.scanBlocks).toBe(4);
    const rank1 = schedule.passes.forward[1]!;
    const p2p = rank1.steps.filter((s) => s.kind === "send" || s.kind === "recv");
    expect(p2p.map((s) => [s.kind, s.stream, s.transfers[0]!.rows])).toEqual(
      [0, 2, 4, 6].flatMap((start) => [
        ["recv", "comm", { start, count: 2 }],
        ["send", "comm", { start, count: 2 }],
      ]),
    );
    // Each block is a quarter of a state: the four add up to LASP-1's one send.
    const lasp1Send = lowered("lasp1", 1).passes.forward[1]!.steps.find((s) => s.kind === "send")!;
    for (const s of p2p) expect(s.bytes).toBe(lasp1Send.bytes / 4);
    // The hand-on of a block waits for that block alone, not for the blocks behind it.
    const hands = rank1.steps.filter((s) => s.kind === "compute" && s.op === "linear.ring_forward");
    const recvs = p2p.filter((s) => s.kind === "recv");
    hands.forEach((h, n) => {
      expect(h.deps).toContain(recvs[n]!.id);
      for (const later of recvs.slice(n + 1)) expect(h.deps).not.toContain(later.id);
    });
  });

  it("with one block is LASP-1's chain, its ends on the communication stream", () => {
    for (const layout of LAYOUTS) {
      const [scan, ring] = [lowered("allscan", 1, layout), lowered("lasp1", 1, layout)];
      for (const pass of ["forward", "backward"] as const)
        scan.passes[pass].forEach((rp, r) => {
          const other = ring.passes[pass][r]!;
          expect(rp.steps.map((s) => ({ ...s, stream: "any", placement: {} }))).toEqual(
            other.steps.map((s) => ({ ...s, stream: "any", placement: {} })),
          );
          const moved = rp.steps.filter((s, i) => s.stream !== other.steps[i]!.stream);
          expect(moved.every((s) => s.kind === "compute" && s.stream === "comm" && "mode" in s.params)).toBe(
            true,
          );
        });
    }
  });

  it("refuses a block count that does not divide the head dim", () => {
    expect(() => lowered("allscan", 3)).toThrow(/3 blocks do not divide the head dim 8/);
  });
});

describe("invariant checks catch broken programs", () => {
  const spec = tinySpec({
    ranks: 2,
    layout: "contiguous",
    seqLen: 64,
    linear: "lasp1",
    layers: [linearKind("L", 4, 0.9)],
  });
  it("a recv without its send", () => {
    const program = lowerSpec(spec, { block: 8 });
    const forward = program.schedules[0]!.passes.forward;
    forward[0]!.steps = forward[0]!.steps.filter((s) => s.kind !== "send");
    expect(checkProgram(program).join("\n")).toMatch(/never sends it/);
  });
  it("a read before any write", () => {
    const program = lowerSpec(spec, { block: 8 });
    // Rank 1: rank 0's piece comes first and has no inter step.
    const step = program.schedules[0]!.passes.forward[1]!.steps.find(
      (s) => s.kind === "compute" && s.op === "linear.inter",
    )!;
    step.deps = [];
    // Also detach it from the compute stream order by moving it to the front.
    const steps = program.schedules[0]!.passes.forward[1]!.steps;
    steps.splice(steps.indexOf(step), 1);
    steps.unshift(step);
    steps.forEach((s, i) => {
      s.deps = s.deps.map((d) => d);
      s.id = i;
    });
    expect(checkProgram(program).join("\n")).toMatch(/before any step writes it|depends on a later step/);
  });
  it("a collective missing on one rank, and a size mismatch", () => {
    const lasp2 = lowerSpec(
      tinySpec({ ranks: 2, layout: "contiguous", seqLen: 64, layers: [linearKind("L", 4)] }),
      { block: 8 },
    );
    const [r0, r1] = lasp2.schedules[0]!.passes.forward;
    const gather = r1!.steps.find((s) => s.kind === "collective")!;
    if (gather.kind === "collective") gather.bytes += 4;
    expect(checkProgram(lasp2).join("\n")).toMatch(/sends \d+ bytes on rank 0 but \d+ on rank 1/);
    r0!.steps = r0!.steps.filter((s) => s.kind !== "collective");
    expect(checkProgram(lasp2).join("\n")).toMatch(/has ranks 1 but its group is 0,1/);
  });
  it("a collective that would change the element type", () => {
    const program = lowerSpec(
      tinySpec({ ranks: 2, layout: "zigzag", seqLen: 64, layers: [softmaxKind("S", 2)] }),
      { block: 8 },
    );
    expect(checkProgram(program)).toEqual([]);
    const backward = program.schedules[0]!.passes.backward[1]!;
    const sum = backward.buffers.find((b) => b.name === "dk_sum")!;
    sum.dtype = "bf16";
    expect(checkProgram(program).join("\n")).toMatch(/sends fp32 dk_all into bf16 dk_sum/);
  });
  it("copy-engine slices on a collective that is not a ReduceScatter, or naming no buffer", () => {
    const program = lowerSpec(
      tinySpec({ ranks: 2, layout: "zigzag", seqLen: 64, layers: [softmaxKind("S", 2)] }),
      { block: 8 },
    );
    const gather = program.schedules[0]!.passes.forward[0]!.steps.find(
      (s) => s.kind === "collective" && s.collective === "allgather",
    )!;
    if (gather.kind !== "collective") throw new Error("no AllGather");
    gather.transfers[0]!.slices = "k_seq";
    expect(checkProgram(program).join("\n")).toMatch(/names slices k_seq outside a ReduceScatter/);
    gather.transfers[0]!.slices = undefined;
    const scatter = program.schedules[0]!.passes.backward[1]!.steps.find(
      (s) => s.kind === "collective" && s.collective === "reducescatter",
    )!;
    if (scatter.kind !== "collective") throw new Error("no ReduceScatter");
    scatter.transfers[0]!.slices = "nowhere";
    expect(checkProgram(program).join("\n")).toMatch(/uses undeclared buffer nowhere/);
  });
  it("a ReduceScatter whose copy-engine slices are not the send's fp32 size", () => {
    const program = lowerSpec(
      tinySpec({ ranks: 2, layout: "zigzag", seqLen: 64, layers: [softmaxKind("S", 2)] }),
      { block: 8 },
    );
    const backward = program.schedules[0]!.passes.backward[1]!;
    const slices = backward.buffers.find((b) => b.name === "dk_seq")!;
    slices.shape = [...slices.shape];
    slices.shape[slices.shape.length - 1]! /= 2;
    expect(checkProgram(program).join("\n")).toMatch(
      /lands \d+ bytes of fp32 dk_all in \d+ bytes of fp32 dk_seq/,
    );
  });
});

describe("LASP-2 adds no zero terms", () => {
  const lowered = (W: number, layout: Layout, lasp2: "fused" | "split", causal = true) => {
    const spec = tinySpec({
      ranks: W,
      layout,
      seqLen: 2 * W * 16,
      linear: "lasp2",
      layers: [linearKind("L", 4, causal ? 0.9 : 1, causal)],
    });
    return lowerSpec(spec, { block: 8, lasp2 }).schedules[0]!;
  };
  const opsOf = (W: number, layout: Layout, lasp2: "fused" | "split", causal = true) => {
    const schedule = lowered(W, layout, lasp2, causal);
    return (pass: "forward" | "backward", rank: number) =>
      schedule.passes[pass][rank]!.steps.map((s) => (s.kind === "compute" ? s.op : s.kind));
  };

  it("runs one GPU's single piece as the intra-piece work alone, causal or not", () => {
    for (const causal of [true, false]) {
      const split = opsOf(1, "contiguous", "split", causal);
      expect(split("forward", 0)).toEqual(["linear.intra"]);
      expect(split("backward", 0)).toEqual(["linear.intra_backward"]);
      // Fused: the projection the program would run anyway, then the walk.
      const fused = opsOf(1, "contiguous", "fused", causal);
      expect(fused("forward", 0)).toEqual(["host", "linear.intra"]);
      expect(fused("backward", 0)).toEqual(["host", "linear.intra_backward"]);
    }
  });

  it("gives the first causal piece no prefix and the last no suffix, and keeps both in between (split)", () => {
    const of = opsOf(4, "contiguous", "split");
    expect(of("forward", 0)).not.toContain("linear.inter");
    expect(of("backward", 0)).not.toContain("linear.dq_inter");
    expect(of("backward", 0)).toContain("linear.dkdv_inter");
    expect(of("forward", 3)).toContain("linear.inter");
    expect(of("backward", 3)).toContain("linear.dq_inter");
    expect(of("backward", 3)).not.toContain("linear.dkdv_inter");
    for (const rank of [1, 2]) {
      expect(of("forward", rank).filter((o) => o === "linear.inter")).toHaveLength(1);
      expect(of("backward", rank)).toEqual(expect.arrayContaining(["linear.dq_inter", "linear.dkdv_inter"]));
    }
    // Every rank still joins the one AllGather per pass: the others need its state.
    for (const rank of [0, 1, 2, 3])
      expect(of("forward", rank).filter((o) => o === "collective")).toHaveLength(1);
  });

  it("fuses exactly the nonzero terms into each piece's walk", () => {
    const schedule = lowered(4, "contiguous", "fused");
    const walk = (pass: "forward" | "backward", rank: number) =>
      schedule.passes[pass][rank]!.steps.find(
        (s) => s.kind === "compute" && s.op.startsWith("linear.") && /intra|fused/.test(s.op),
      )!;
    expect(walk("forward", 0)).toMatchObject({ op: "linear.intra" });
    for (const rank of [1, 2, 3])
      expect(walk("forward", rank)).toMatchObject({ op: "linear.forward_fused", operands: { p: "p" } });
    // The optional operands say which terms the walk adds: P (dO P^T) and G.
    const terms = (rank: number) => {
      const step = walk("backward", rank);
      if (step.kind !== "compute" || step.op !== "linear.backward_fused") throw new Error("not fused");
      return { p: step.operands.p, g: step.operands.g };
    };
    expect(terms(0)).toEqual({ p: undefined, g: "g" });
    expect(terms(1)).toEqual({ p: "p", g: "g" });
    expect(terms(3)).toEqual({ p: "p", g: undefined });
    expect(stepReads(walk("backward", 3))).toEqual(["q", "k", "v", "do", "p"]);
  });

  it("overlaps the state collective with the projection, and the walk waits for both (fused)", () => {
    const schedule = lowered(4, "zigzag", "fused");
    for (const pass of ["forward", "backward"] as const) {
      const steps = schedule.passes[pass][1]!.steps;
      const comm = steps.find((s) => s.kind === "collective")!;
      const host = steps.find((s) => s.kind === "compute" && s.op === "host")!;
      expect(host.deps).not.toContain(comm.id);
      expect(host.id).toBeGreaterThan(comm.id);
      for (const s of steps.filter((s) => s.kind === "compute" && s.op.endsWith("_fused"))) {
        expect(s.deps).toContain(host.id);
        // ... and the prefix or suffix built from the collective's states
        expect(s.deps.some((d) => steps[d]!.deps.includes(comm.id))).toBe(true);
      }
    }
  });

  it("makes every walk wait for the collective, also where a piece takes nothing from it (fused)", () => {
    // The first causal piece forward and the last backward add no state term, but their walks would
    // otherwise hold every SM while the other ranks wait for this rank's share of the collective.
    for (const layout of ["contiguous", "zigzag"] as const) {
      const schedule = lowered(4, layout, "fused");
      for (const pass of ["forward", "backward"] as const) {
        for (const program of schedule.passes[pass]) {
          const comm = program.steps.find((s) => s.kind === "collective")!;
          const walks = program.steps.filter(
            (s) => s.kind === "compute" && s.op.startsWith("linear.") && /intra|fused/.test(s.op),
          );
          expect(walks.length).toBeGreaterThan(0);
          for (const walk of walks) {
            const direct = walk.deps.includes(comm.id);
            const throughStates = walk.deps.some((d) => program.steps[d]!.deps.includes(comm.id));
            expect(direct || throughStates).toBe(true);
          }
        }
      }
    }
    // The split arrangement keeps them free: there the collective overlaps those walks.
    const split = lowered(4, "contiguous", "split");
    const first = split.passes.forward[0]!;
    const comm = first.steps.find((s) => s.kind === "collective")!;
    const intra = first.steps.find((s) => s.kind === "compute" && s.op === "linear.intra")!;
    expect(intra.deps).not.toContain(comm.id);
  });

  it("keeps the exchange on one GPU with two zigzag pieces: the second needs the first's state", () => {
    for (const lasp2 of ["fused", "split"] as const) {
      const of = opsOf(1, "zigzag", lasp2);
      expect(of("forward", 0)).toEqual(expect.arrayContaining(["linear.state", "collective"]));
      const inter = lasp2 === "split" ? "linear.inter" : "linear.forward_fused";
      expect(of("forward", 0).filter((o) => o === inter)).toHaveLength(1);
    }
  });
});

describe("LASP-1 adds no zero terms", () => {
  const ops = (W: number, layout: Layout) => {
    const spec = tinySpec({
      ranks: W,
      layout,
      seqLen: 2 * W * 16,
      linear: "lasp1",
      layers: [linearKind("L", 4, 0.9)],
    });
    const schedule = lowerSpec(spec, { block: 8 }).schedules[0]!;
    return (pass: "forward" | "backward", rank: number) =>
      schedule.passes[pass][rank]!.steps.map((s) => (s.kind === "compute" ? s.op : s.kind));
  };
  it("runs one GPU's single piece without states or inter steps", () => {
    const of = ops(1, "contiguous");
    for (const pass of ["forward", "backward"] as const) {
      const steps = of(pass, 0);
      for (const op of [
        "linear.state",
        "linear.grad_state",
        "linear.inter",
        "linear.dq_inter",
        "linear.dkdv_inter",
      ])
        expect(steps).not.toContain(op);
    }
    expect(of("forward", 0)).toContain("linear.intra");
    expect(of("backward", 0)).toContain("linear.intra_backward");
  });
  it("computes only the states some piece is handed, and the inter steps of nonzero prefixes and suffixes", () => {
    const of = ops(3, "contiguous");
    expect(of("forward", 0)).toEqual(expect.arrayContaining(["linear.state", "send"]));
    expect(of("forward", 0)).not.toContain("linear.inter");
    expect(of("forward", 2)).not.toContain("linear.state");
    expect(of("forward", 2)).toContain("linear.inter");
    expect(of("backward", 0)).not.toContain("linear.grad_state");
    expect(of("backward", 0)).not.toContain("linear.dq_inter");
    expect(of("backward", 0)).toContain("linear.dkdv_inter");
    expect(of("backward", 2)).toContain("linear.grad_state");
    expect(of("backward", 2)).not.toContain("linear.dkdv_inter");
    expect(of("backward", 1)).toEqual(
      expect.arrayContaining(["linear.grad_state", "linear.dq_inter", "linear.dkdv_inter"]),
    );
    expect(of("forward", 1)).toEqual(expect.arrayContaining(["linear.state", "linear.inter"]));
  });
});

describe("LASP-2H on one GPU", () => {
  it("is plain flash attention over the whole sequence: no gather, merge or scatter, any layout", () => {
    for (const layout of ["contiguous", "zigzag"] as const) {
      const spec = tinySpec({
        ranks: 1,
        layout,
        seqLen: 64,
        softmax: "allgather",
        layers: [softmaxKind("S", 2, true)],
      });
      const schedule = lowerSpec(spec, { block: 8 }).schedules[0]!;
      const ops = (pass: "forward" | "backward") =>
        schedule.passes[pass][0]!.steps.map((s) => (s.kind === "compute" ? s.op : s.kind));
      expect(ops("forward")).toEqual(["softmax.full"]);
      expect(ops("backward")).toEqual(["softmax.full_backward"]);
      expect(schedule.passes.forward[0]!.steps[0]).toMatchObject({
        params: { headStart: 0, heads: spec.model.heads, kvHeadStart: 0, kvHeads: 2, causal: true },
      });
    }
  });
});
