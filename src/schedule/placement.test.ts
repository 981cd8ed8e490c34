// The placement pass: what each collective overlaps, which communicator it takes, and the SMs a GEMM leaves
// beside it, decided once at the end of lowering from the one overlap analysis (overlap.ts).
import { describe, expect, it } from "vitest";
import type { CollectiveStep, ComputeStep, RankProgram } from "./ir.js";
import { lowerSpec } from "./lower.js";
import { Concurrency, overlapPartners } from "./overlap.js";
import { GEMM_SM_MARGIN, SMALL_COLLECTIVE_BYTES, placeSchedule } from "./placement.js";
import { linearKind, softmaxKind, tinySpec } from "./test-specs.js";

const spec = (o: {
  ranks: number;
  linear?: "lasp2" | "lasp1" | "ulysses";
  overlap?: boolean;
  seqLen?: number;
}) =>
  tinySpec({
    ranks: o.ranks,
    layout: "zigzag",
    seqLen: o.seqLen ?? 2 * o.ranks * 16,
    linear: o.linear ?? "lasp2",
    softmax: o.linear === "lasp1" ? "ring" : o.linear === "ulysses" ? "ulysses" : "allgather",
    overlap: o.overlap ?? true,
    layers: [linearKind("L", 4, 0.9), softmaxKind("S", 2)],
  });

const collectives = (rp: RankProgram) => rp.steps.filter((s): s is CollectiveStep => s.kind === "collective");
const computes = (rp: RankProgram) => rp.steps.filter((s): s is ComputeStep => s.kind === "compute");

describe("placement", () => {
  it("puts LASP-2's Q projection and dWo beside the state gather, on few CTAs, leaving SMs to it", () => {
    const linear = lowerSpec(spec({ ranks: 4 })).schedules[0]!;
    for (const pass of ["forward", "backward"] as const)
      for (const rp of linear.passes[pass]) {
        const [gather] = collectives(rp);
        expect(gather!.placement).toEqual({ communicator: "few_ctas", copyEngineCandidate: false });
        const host = computes(rp).find((s) => s.op === "host")!;
        expect(host.placement).toEqual({
          overlaps: gather!.id,
          smMargin: { kernels: GEMM_SM_MARGIN, copyEngines: 0 },
        });
        // No other step is placed beside it.
        expect(computes(rp).filter((s) => s.placement.overlaps !== undefined)).toEqual([host]);
      }
  });

  it("puts split LASP-2's gather beside the first intra-piece walk, with no SM margin (no GEMM)", () => {
    const linear = lowerSpec(spec({ ranks: 2 }), { lasp2: "split" }).schedules[0]!;
    const rp = linear.passes.forward[1]!;
    const partner = computes(rp).find((s) => s.placement.overlaps !== undefined)!;
    expect(partner.op).toBe("linear.intra");
    expect(partner.placement).toEqual({ overlaps: collectives(rp)[0]!.id });
  });

  it("places nothing beside the collectives of one rank: they move no data, a GEMM keeps every SM", () => {
    for (const linear of ["lasp2", "lasp1", "ulysses"] as const) {
      const program = lowerSpec(spec({ ranks: 1, linear }));
      for (const schedule of program.schedules)
        for (const rp of [...schedule.passes.forward, ...schedule.passes.backward]) {
          for (const c of collectives(rp))
            expect(c.placement).toEqual({ communicator: "default", copyEngineCandidate: false });
          for (const s of computes(rp)) expect(s.placement).toEqual({});
        }
    }
    // LASP-2 on two ranks places its Q projection beside its state gather.
    const two = lowerSpec(spec({ ranks: 2 }));
    const placed = two.schedules.flatMap((s) =>
      [...s.passes.forward, ...s.passes.backward].flatMap(computes),
    );
    expect(placed.some((s) => s.placement.overlaps !== undefined)).toBe(true);
    // One rank's LASP-2 still gathers its state (an identity the program runs as NCCL's local copy).
    const one = lowerSpec(spec({ ranks: 1 })).schedules[0]!.passes.forward[0]!;
    expect(collectives(one).length).toBeGreaterThan(0);
  });

  it("places nothing beside a collective that every computation waits for (overlap off)", () => {
    const program = lowerSpec(spec({ ranks: 2, overlap: false }));
    for (const schedule of program.schedules)
      for (const rp of [...schedule.passes.forward, ...schedule.passes.backward]) {
        for (const c of collectives(rp))
          expect(c.placement).toEqual({ communicator: "default", copyEngineCandidate: false });
        for (const s of computes(rp)) expect(s.placement).toEqual({});
      }
  });

  it("makes large K/V gathers and the dK/dV ReduceScatter beside attention copy-engine candidates, never an all-to-all", () => {
    // 64K tokens over 2 ranks of 2 kv heads x 8: 32K x 2 x 8 x 4 bytes = 2 MiB... too small: widen the heads.
    const big = tinySpec({
      ranks: 2,
      layout: "contiguous",
      seqLen: 64 * 1024,
      heads: 16,
      headDim: 128,
      layers: [softmaxKind("S", 8)],
    });
    const softmax = lowerSpec(big).schedules[0]!;
    const [gather] = collectives(softmax.passes.forward[0]!);
    expect(gather!.bytes).toBeGreaterThan(SMALL_COLLECTIVE_BYTES);
    expect(gather!.placement).toEqual({ communicator: "default", copyEngineCandidate: true });
    // The ReduceScatter names where its slices land (the global-order gradients, the send's size, free by then).
    const [scatter] = collectives(softmax.passes.backward[0]!);
    expect(scatter!.collective).toBe("reducescatter");
    expect(scatter!.transfers.map((t) => t.slices)).toEqual(["dk_seq", "dv_seq"]);
    expect(scatter!.placement).toEqual({ communicator: "default", copyEngineCandidate: true });
    // Without slices a ReduceScatter needs NCCL's kernel: not a candidate.
    const bare = {
      ...softmax,
      passes: {
        ...softmax.passes,
        backward: softmax.passes.backward.map((rp) => ({
          ...rp,
          steps: rp.steps.map((st) =>
            st.kind === "collective"
              ? { ...st, transfers: st.transfers.map(({ send, recv }) => ({ send, recv })) }
              : st,
          ),
        })),
      },
    };
    for (const c of collectives(placeSchedule(bare.passes).backward[0]!))
      expect(c.placement.copyEngineCandidate).toBe(false);
    const ulysses = lowerSpec(spec({ ranks: 2, linear: "ulysses" }));
    for (const schedule of ulysses.schedules)
      for (const rp of schedule.passes.forward)
        for (const c of collectives(rp))
          expect(c.placement).toEqual({ communicator: "default", copyEngineCandidate: false });
  });

  it("gives each collective the first later computation beside it, and no computation two collectives", () => {
    for (const linear of ["lasp2", "lasp1", "ulysses"] as const) {
      const program = lowerSpec(spec({ ranks: 4, linear }));
      for (const schedule of program.schedules)
        for (const pass of ["forward", "backward"] as const) {
          const programs = schedule.passes[pass];
          const concurrency = new Concurrency(programs);
          for (const rp of programs) {
            const partners = overlapPartners(concurrency, rp);
            for (const s of computes(rp)) expect(s.placement.overlaps).toBe(partners.get(s.id));
            for (const [computation, collective] of partners) {
              const node = (step: number) => ({ rank: rp.rank, step });
              expect(concurrency.concurrent(node(collective), node(computation))).toBe(true);
              // No earlier computation after the collective could have run beside it.
              for (const s of computes(rp).filter((s) => s.id > collective && s.id < computation))
                expect(s.stream !== "compute" || !concurrency.concurrent(node(collective), node(s.id))).toBe(
                  true,
                );
            }
          }
        }
    }
  });
});
