import { describe, expect, it } from "vitest";
import { pairedWithPrevious } from "../schedule/p2p-groups.js";
import type { CollectiveKind, RankProgram, Step } from "../schedule/ir.js";
import { lowerSpec } from "../schedule/lower.js";
import { linearKind, softmaxKind, tinySpec, type TinyOptions } from "../schedule/test-specs.js";
import { collectiveTime, computeTime, H100_SXM, p2pTime, type Machine } from "./machine.js";
import { passOrder, simulatePass, simulateProgram, type PassTimeline } from "./simulate.js";

// A toy machine with powers of two, so hand-computed times are exact in floating point.
const TOY: Machine = {
  name: "toy",
  computeFlops: 1024,
  gemmFlops: 2048,
  laspSoftmaxBackwardFlops: 512,
  gatheredAttentionFlops: 1024,
  memoryBandwidth: 512,
  linearKernelBandwidth: 512,
  linkBandwidth: 256,
  linkLatency: 0.5,
};

type Stream = "compute" | "comm";
const compute = (
  id: number,
  flops: number,
  bytes: number,
  deps: number[] = [],
  stream: Stream = "compute",
): Step => ({
  kind: "compute",
  id,
  label: `compute ${id}`,
  stream,
  deps,
  op: "linear.intra",
  operands: { q: "q", k: "k", v: "v", o: "o" },
  params: { piece: 0, causal: true },
  reads: [],
  writes: [],
  flops,
  bytes,
  placement: {},
});
const collective = (
  id: number,
  kind: CollectiveKind,
  key: string,
  group: number[],
  bytes: number,
  deps: number[] = [],
): Step => ({
  kind: "collective",
  id,
  label: `${kind} ${key}`,
  stream: "comm",
  deps,
  collective: kind,
  group,
  key,
  transfers: [{ send: "a", recv: "b" }],
  bytes,
  placement: { communicator: "default", copyEngineCandidate: false },
});
const p2p = (
  id: number,
  kind: "send" | "recv",
  peer: number,
  tag: string,
  bytes: number,
  deps: number[] = [],
): Step => ({
  kind,
  id,
  label: `${kind} ${tag}`,
  stream: "comm",
  deps,
  peer,
  tag,
  transfers: [{ buffer: kind === "send" ? "outgoing" : "incoming", slot: 0 }],
  bytes,
});
const rank = (r: number, steps: Step[]): RankProgram => ({ rank: r, buffers: [], steps });

describe("machine model", () => {
  it("times compute steps with a roofline", () => {
    const step = (op: "linear.intra" | "softmax.block_backward" | "softmax.full_backward", ends = false) =>
      ({ op, operands: ends ? { ends: "doc_ends" } : {} }) as unknown as Parameters<typeof computeTime>[0];
    const at = (s: ReturnType<typeof step>, flops: number, bytes: number) =>
      computeTime({ ...s, flops, bytes }, TOY);
    expect(at(step("linear.intra"), 2048, 512)).toBe(2); // compute-bound
    expect(at(step("linear.intra"), 1024, 2048)).toBe(4); // memory-bound
    // lasp's softmax backward at its own rate: the blocks, and a whole sequence with documents (not cuDNN)
    expect(at(step("softmax.block_backward"), 2048, 512)).toBe(4);
    expect(at(step("softmax.full_backward", true), 2048, 512)).toBe(4);
    expect(at(step("softmax.full_backward"), 2048, 512)).toBe(2);
  });

  it("times collectives with NCCL's ring volumes", () => {
    const W = 8;
    expect(collectiveTime("allgather", 256, W, TOY)).toBe(0.5 + 7);
    expect(collectiveTime("reducescatter", 8 * 256, W, TOY)).toBe(0.5 + 7); // send buffer of W shards
    expect(collectiveTime("allreduce", 1024, W, TOY)).toBe(0.5 + (2 * 1024 * 7) / 8 / 256);
    expect(collectiveTime("alltoall", 1024, W, TOY)).toBe(0.5 + (1024 * 7) / 8 / 256);
    expect(p2pTime(256, TOY)).toBe(1.5);
    expect(collectiveTime("allgather", 256, 1, TOY)).toBe(0);
  });

  it("gives an H100 LASP-2 state gather tens of microseconds", () => {
    // 16 heads of 128 x 128 fp32 states: 1 MiB per rank, gathered over 8 GPUs.
    const t = collectiveTime("allgather", 16 * 128 * 128 * 4, 8, H100_SXM);
    expect(t).toBeGreaterThan(20e-6);
    expect(t).toBeLessThan(60e-6);
  });
});

describe("simulatePass on hand-written programs", () => {
  it("matches a hand-computed two-rank example exactly", () => {
    // rank 0: A (2048 FLOP: 2 s), AllGather of 256 B after A, B after the gather (512 B: 1 s).
    // rank 1: A' (1024 FLOP: 1 s), the same AllGather, C independent of it (1024 FLOP: 1 s).
    // The gather is posted at 1 on rank 1, at 2 on rank 0: it runs 2 .. 2 + 0.5 + 256/256 = 3.5 everywhere.
    const t = simulatePass(
      [
        rank(0, [
          compute(0, 2048, 0),
          collective(1, "allgather", "g", [0, 1], 256, [0]),
          compute(2, 0, 512, [1]),
        ]),
        rank(1, [
          compute(0, 1024, 0),
          collective(1, "allgather", "g", [0, 1], 256, [0]),
          compute(2, 1024, 0),
        ]),
      ],
      TOY,
    );
    expect(t.ranks[0]!.steps).toEqual([
      { posted: 0, start: 0, end: 2 },
      { posted: 2, start: 2, end: 3.5 },
      { posted: 3.5, start: 3.5, end: 4.5 },
    ]);
    expect(t.ranks[1]!.steps).toEqual([
      { posted: 0, start: 0, end: 1 },
      { posted: 1, start: 2, end: 3.5 },
      { posted: 1, start: 1, end: 2 },
    ]);
    expect(t.ranks.map((r) => r.passTime)).toEqual([4.5, 3.5]);
    expect(t.makespan).toBe(4.5);
    // rank 0 computes on [0, 2] and [3.5, 4.5]: the gather [2, 3.5] is fully exposed.
    expect(t.ranks[0]).toMatchObject({ computeTime: 3, commTime: 1.5, exposedComm: 1.5, hiddenComm: 0 });
    // rank 1 holds its comm stream [1, 3.5] (waiting, then gathering) and computes on [0, 2].
    expect(t.ranks[1]).toMatchObject({ computeTime: 2, commTime: 2.5, exposedComm: 1.5, hiddenComm: 1 });
    expect(t.hiddenFraction).toBe(1 / 4);
  });

  it("runs a stream's steps in program order even when a later one is ready first", () => {
    const t = simulatePass(
      [rank(0, [compute(0, 1024, 0), compute(1, 1024, 0), compute(2, 0, 0, [], "comm")])],
      TOY,
    );
    expect(t.ranks[0]!.steps.map((s) => [s.start, s.end])).toEqual([
      [0, 1],
      [1, 2],
      [0, 0],
    ]);
  });

  it("runs a send and the recv issued with it in one group at the same time", () => {
    // Both ranks send (256 B: 0.5 + 1 s) and then receive, each pair in one NCCL group.
    const t = simulatePass(
      [
        rank(0, [p2p(0, "send", 1, "x", 256), p2p(1, "recv", 1, "y", 256)]),
        rank(1, [p2p(0, "send", 0, "y", 256), p2p(1, "recv", 0, "x", 256)]),
      ],
      TOY,
    );
    expect(t.ranks[0]!.steps).toEqual([
      { posted: 0, start: 0, end: 1.5 },
      { posted: 0, start: 0, end: 1.5 },
    ]);
    expect(t.makespan).toBe(1.5); // not 3: the two directions move at once
    // A recv that waits for its send is not grouped with it, so it still follows it.
    const chained = simulatePass(
      [
        rank(0, [p2p(0, "send", 1, "x", 256), p2p(1, "recv", 1, "y", 256, [0])]),
        rank(1, [p2p(0, "send", 0, "y", 256), p2p(1, "recv", 0, "x", 256, [0])]),
      ],
      TOY,
    );
    expect(chained.makespan).toBe(3);
  });

  it("does not let a recv finish before its send has started and the data has moved", () => {
    // rank 0 computes for 4 s, then sends 256 B (0.5 + 1 s); rank 1 posts the recv at 0.
    const t = simulatePass(
      [
        rank(0, [compute(0, 4096, 0), p2p(1, "send", 1, "t", 256, [0])]),
        rank(1, [p2p(0, "recv", 0, "t", 256), compute(1, 1024, 0, [0])]),
      ],
      TOY,
    );
    const send = t.ranks[0]!.steps[1]!;
    const recv = t.ranks[1]!.steps[0]!;
    expect(send).toEqual({ posted: 4, start: 4, end: 5.5 });
    expect(recv).toEqual({ posted: 0, start: 4, end: 5.5 });
    expect(t.ranks[1]!.steps[1]).toEqual({ posted: 5.5, start: 5.5, end: 6.5 });
    // rank 1 waited the whole 5.5 s for its data with nothing to compute.
    expect(t.ranks[1]!.exposedComm).toBe(5.5);
  });

  it("lets a send go ahead of a late recv, whose transfer then starts at the posting", () => {
    const t = simulatePass(
      [
        rank(0, [p2p(0, "send", 1, "t", 256)]),
        rank(1, [compute(0, 3072, 0), p2p(1, "recv", 0, "t", 256, [0])]),
      ],
      TOY,
    );
    expect(t.ranks[0]!.steps[0]).toEqual({ posted: 0, start: 0, end: 1.5 });
    expect(t.ranks[1]!.steps[1]).toEqual({ posted: 3, start: 3, end: 4.5 });
  });

  it("reports a deadlock instead of looping", () => {
    // Each rank receives before it sends: neither send can start.
    const cycle = [
      rank(0, [p2p(0, "recv", 1, "a", 8), p2p(1, "send", 1, "b", 8, [0])]),
      rank(1, [p2p(0, "recv", 0, "b", 8), p2p(1, "send", 0, "a", 8, [0])]),
    ];
    expect(() => simulatePass(cycle, TOY)).toThrow(/deadlock/);
    expect(() => simulatePass([rank(0, [p2p(0, "recv", 1, "x", 8)])], TOY)).toThrow(/no send/);
  });
});

/** Checks every timing rule of the model on a simulated pass. */
function checkTimeline(programs: RankProgram[], t: PassTimeline, machine: Machine): void {
  const eps = 1e-12;
  const at = new Map(programs.map((p, i) => [p.rank, i]));
  const pairedByRank = pairedWithPrevious(programs);
  programs.forEach((p, i) => {
    const steps = t.ranks[i]!.steps;
    const last: Record<string, number> = { compute: 0, comm: 0 };
    const paired = pairedByRank[i]!;
    let beforePrevious = 0; // the comm stream's end before the previous step: where a paired step may start
    for (const step of p.steps) {
      const s = steps[step.id]!;
      expect(s.posted).toBeLessThanOrEqual(s.start + eps);
      expect(s.start).toBeLessThanOrEqual(s.end + eps);
      // stream order; a recv issued in one group with its send may start with it
      const free = paired.has(step.id) ? beforePrevious : last[step.stream]!;
      expect(s.posted).toBeGreaterThanOrEqual(free - eps);
      if (step.stream === "comm") beforePrevious = last.comm!;
      last[step.stream] = Math.max(last[step.stream]!, s.end);
      for (const d of step.deps) expect(s.posted).toBeGreaterThanOrEqual(steps[d]!.end - eps);
      if (step.kind === "recv") {
        const sender = programs[at.get(step.peer)!]!;
        const send = sender.steps.find((x) => x.kind === "send" && x.peer === p.rank && x.tag === step.tag)!;
        const sent = t.ranks[at.get(step.peer)!]!.steps[send.id]!;
        expect(s.start).toBeGreaterThanOrEqual(sent.start - eps);
        expect(s.end).toBeGreaterThanOrEqual(sent.start + p2pTime(send.bytes, machine) - eps);
      }
      if (step.kind === "collective") {
        for (const member of step.group) {
          const other = programs[at.get(member)!]!.steps.find(
            (x) => x.kind === "collective" && x.key === step.key,
          )!;
          const o = t.ranks[at.get(member)!]!.steps[other.id]!;
          expect(o.start).toBe(s.start);
          expect(o.end).toBe(s.end);
          expect(s.start).toBeGreaterThanOrEqual(o.posted);
        }
      }
    }
    const r = t.ranks[i]!;
    expect(r.exposedComm + r.hiddenComm).toBeCloseTo(r.commTime, 15);
    expect(r.hiddenComm).toBeLessThanOrEqual(r.computeTime + eps);
  });
}

const LARGE = { heads: 16, headDim: 128 } as const;
const program = (o: Partial<TinyOptions> & { ranks: number }) =>
  lowerSpec(
    tinySpec({
      layout: "contiguous",
      seqLen: o.ranks * 16384,
      layers: [linearKind("L", LARGE.heads, 0.99)],
      ...LARGE,
      ...o,
    }),
    { block: 64 },
  );

describe("simulatePass on lowered schedules", () => {
  for (const layout of ["contiguous", "zigzag"] as const) {
    for (const [name, layer, strategy] of [
      ["lasp2", linearKind("L", 16, 0.99), { linear: "lasp2" }],
      ["lasp2 bidirectional", linearKind("L", 16, 1, false), { linear: "lasp2" }],
      ["lasp1", linearKind("L", 16, 0.99), { linear: "lasp1" }],
      ["allscan", linearKind("L", 16, 0.99), { linear: "allscan", scanBlocks: 4 }],
      ["ulysses linear", linearKind("L", 16, 0.99), { linear: "ulysses" }],
      ["allgather", softmaxKind("S", 8), { softmax: "allgather" }],
      ["ring", softmaxKind("S", 8), { softmax: "ring" }],
      ["ulysses softmax", softmaxKind("S", 8), { softmax: "ulysses" }],
    ] as const) {
      it(`keeps every timing rule: ${name}, ${layout}, W=4`, () => {
        const p = program({ ranks: 4, layout, layers: [layer], ...strategy });
        for (const pass of ["forward", "backward"] as const) {
          const programs = p.schedules[0]!.passes[pass];
          checkTimeline(programs, simulatePass(programs, H100_SXM), H100_SXM);
        }
      });
    }
  }

  it("LASP-2 with overlap on exposes no more communication than with overlap off", () => {
    for (const layout of ["contiguous", "zigzag"] as const) {
      for (const W of [2, 4, 8]) {
        const on = simulateProgram(program({ ranks: W, layout, overlap: true }), H100_SXM);
        const off = simulateProgram(program({ ranks: W, layout, overlap: false }), H100_SXM);
        for (const pass of ["forward", "backward"] as const) {
          const a = on.kinds[0]![pass];
          const b = off.kinds[0]![pass];
          expect(a.exposedComm).toBeLessThanOrEqual(b.exposedComm);
          expect(a.makespan).toBeLessThanOrEqual(b.makespan);
        }
        // At these sizes the state gather hides entirely behind the intra-piece work, and is not hidden at all
        // without overlap.
        expect(on.hiddenFraction).toBeGreaterThan(0.99);
        expect(off.hiddenFraction).toBeLessThan(0.01);
      }
    }
  });

  it("LASP-1's makespan grows with W while LASP-2's stays nearly flat at the same local length", () => {
    const makespans = (linear: "lasp1" | "lasp2") =>
      [2, 4, 8, 16].map((W) => {
        const t = simulateProgram(program({ ranks: W, linear }), H100_SXM).kinds[0]!;
        return t.forward.makespan + t.backward.makespan;
      });
    const lasp1 = makespans("lasp1");
    const lasp2 = makespans("lasp2");
    for (let i = 1; i < lasp1.length; i++) expect(lasp1[i]!).toBeGreaterThan(lasp1[i - 1]!);
    // Each doubling of W adds W/2 or more dependent hops of at least the link latency each way.
    expect(lasp1[3]! - lasp1[0]!).toBeGreaterThan(2 * 14 * H100_SXM.linkLatency);
    // From W = 4 on (at W = 2 both ranks hold an end piece, which has no prefix or no suffix to add).
    expect(lasp2[3]! / lasp2[1]!).toBeLessThan(1.02);
    expect(lasp2[0]!).toBeLessThan(lasp2[1]!);
    // And LASP-2 beats LASP-1 once the chain is long.
    expect(lasp2[3]!).toBeLessThan(lasp1[3]!);
  });
});

describe("All-Scan's chain", () => {
  // From rank 0's first send to rank W-1's last receive: the chain's latency.
  const chainSpan = (W: number, K: number, machine: Machine): number => {
    const forward = program({ ranks: W, linear: "allscan", scanBlocks: K }).schedules[0]!.passes.forward;
    const t = simulatePass(forward, machine);
    const first = forward[0]!.steps.find((s) => s.kind === "send")!;
    const last = forward[W - 1]!.steps.filter((s) => s.kind === "recv").at(-1)!;
    return t.ranks[W - 1]!.steps[last.id]!.end - t.ranks[0]!.steps[first.id]!.start;
  };
  const state = 1 * LARGE.heads * LARGE.headDim * LARGE.headDim * 4;

  it("pipelines its K blocks: about tau + (W-1) tau / K where the link's bandwidth dominates", () => {
    const wide = { ...H100_SXM, linkLatency: 0, linkBandwidth: 10e9 }; // a state takes 105 us on the link
    const tau = p2pTime(state, wide);
    for (const W of [4, 8]) {
      for (const K of [1, 2, 4, 8]) {
        // W - 1 hops of the first block, then K - 1 more blocks behind it.
        const ideal = tau + ((W - 2) * tau) / K;
        const span = chainSpan(W, K, wide);
        // Above it only by the hand-ons, memory-bound sums of a block of states (about 1%).
        expect(span).toBeGreaterThanOrEqual(ideal * (1 - 1e-9));
        expect(span).toBeLessThan(ideal * 1.02);
      }
      expect(chainSpan(W, 4, wide)).toBeLessThan(0.55 * chainSpan(W, 1, wide)); // (1 + (W-2)/4) / (W-1) <= 1/2
    }
  });

  it("pays the link latency per block and hop: (W + K - 2) (alpha + s / (K bw)) on H100's NVLink", () => {
    for (const W of [4, 8]) {
      for (const K of [1, 2, 4]) {
        const model = (W - 1 + K - 1) * p2pTime(state / K, H100_SXM);
        const span = chainSpan(W, K, H100_SXM);
        expect(span).toBeGreaterThanOrEqual(model * (1 - 1e-9));
        expect(span).toBeLessThan(model * 1.08); // the hand-ons, up to 1 us each
      }
    }
    // At 1 MiB states NVLink's 10 us latency outweighs the pipelining: K = 4 is slower than K = 1 at W = 4.
    expect(chainSpan(4, 4, H100_SXM)).toBeGreaterThan(chainSpan(4, 1, H100_SXM));
  });

  it("starts at once: rank 0 hands on its state without waiting for its intra-piece work", () => {
    const forward = program({ ranks: 4, linear: "allscan", scanBlocks: 2 }).schedules[0]!.passes.forward;
    const t = simulatePass(forward, H100_SXM);
    const send = forward[0]!.steps.find((s) => s.kind === "send")!;
    const intra = forward[0]!.steps.find((s) => s.kind === "compute" && s.op === "linear.intra")!;
    expect(t.ranks[0]!.steps[send.id]!.start).toBeLessThan(t.ranks[0]!.steps[intra.id]!.end);
  });
});

describe("simulateProgram", () => {
  it("adds the passes of every layer of the stack", () => {
    const L = linearKind("L", 16, 0.99);
    const S = softmaxKind("S", 8);
    const spec = tinySpec({ ranks: 4, layout: "zigzag", seqLen: 4 * 16384, ...LARGE, layers: [L, S] });
    spec.model.layers = [L, L, S];
    const p = lowerSpec(spec, { block: 64 });
    const t = simulateProgram(p, H100_SXM);
    expect(t.kinds.map((k) => [k.kind, k.count])).toEqual([
      ["L", 2],
      ["S", 1],
    ]);
    const pass = (i: number) => t.kinds[i]!.forward.attentionTime + t.kinds[i]!.backward.attentionTime;
    expect(t.stepTime).toBeCloseTo(2 * pass(0) + pass(1), 15);
    // LASP-2 and LASP-2H place the Q projection and dWo inside their passes (beside the state exchange, the
    // K/V AllGather and the dK/dV ReduceScatter); they are not attention time.
    for (const pass of ["forward", "backward"] as const)
      for (const kind of t.kinds) {
        const l = kind[pass];
        expect(l.projectionTime).toBeGreaterThan(0);
        expect(l.attentionTime).toBeCloseTo(l.makespan - l.projectionTime, 15);
      }
    expect(t.exposedComm + t.hiddenComm).toBeCloseTo(t.commTime, 12);
    expect(t.hiddenFraction).toBeGreaterThan(0);
    expect(t.hiddenFraction).toBeLessThanOrEqual(1);
  });

  it("orders a step's passes forward up the stack and backward down it", () => {
    expect(passOrder([0, 1, 2])).toEqual([
      { layer: 0, pass: "forward" },
      { layer: 1, pass: "forward" },
      { layer: 2, pass: "forward" },
      { layer: 2, pass: "backward" },
      { layer: 1, pass: "backward" },
      { layer: 0, pass: "backward" },
    ]);
  });
});
