// Ulysses with fewer kv heads than ranks (issue 18): each kv head is replicated on R = W / kv_heads ranks,
// the forward all-to-all sends every destination its kv head, and the token owner sums the R partial dK, dV
// of each kv head (unpack into R slots, then `accumulate` in slot order). Every such schedule equals the
// dense oracle to 1e-9, with and without packed documents; leaving the sum out (or summing one replica only)
// fails verify; the closed-form volume counts the replicated K, V rows.
import { describe, expect, it } from "vitest";
import { checkProgram } from "../schedule/invariants.js";
import type { ComputeStep, ScheduleProgram } from "../schedule/ir.js";
import { lowerSpec } from "../schedule/lower.js";
import { linearKind, softmaxKind, tinySpec, type TinyOptions } from "../schedule/test-specs.js";
import { closedFormVolume } from "../schedule/volumes.js";
import type { Layout, ResolvedSpec } from "../spec/resolved.js";
import { verifyProgram, verifySpec } from "./verify.js";

const EXACT = 1e-9;
const BLOCK = 4;
const LAYOUTS: Layout[] = ["contiguous", "zigzag"];

const seqLenOf = (W: number, layout: Layout): number => (layout === "zigzag" ? 2 : 1) * W * 2 * BLOCK;

function spec(W: number, kvHeads: number, layout: Layout, causal: boolean, documents: boolean): ResolvedSpec {
  const heads = 2 * W;
  const options: TinyOptions = {
    ranks: W,
    layout,
    seqLen: seqLenOf(W, layout),
    heads,
    headDim: 4,
    softmax: "ulysses",
    layers: [softmaxKind("S", kvHeads, causal)],
  };
  const s = tinySpec(options);
  return documents ? { ...s, run: { ...s.run, documents: { kind: "eos", eosToken: 0, meanLength: 5 } } } : s;
}

describe("Ulysses with replicated kv heads equals the dense oracle", () => {
  for (const kvHeads of [1, 2]) {
    for (const W of [2, 4, 8].filter((w) => w > kvHeads)) {
      for (const layout of LAYOUTS) {
        for (const causal of [true, false]) {
          for (const documents of [false, true]) {
            const name = `kv_heads ${kvHeads}, W=${W}, ${layout}, ${causal ? "causal" : "bidirectional"}${documents ? ", documents" : ""}`;
            it(name, () => {
              const s = spec(W, kvHeads, layout, causal, documents);
              expect(checkProgram(lowerSpec(s, { block: BLOCK }))).toEqual([]);
              const report = verifySpec(s, { block: BLOCK, headDim: 4, heads: 2 * W });
              const kind = report.spec.model.kinds[0]!;
              expect(kind.type === "softmax_attention" && kind.kvHeads).toBe(kvHeads);
              if (documents) expect(report.documents!.boundaries.length).toBeGreaterThan(1);
              expect(report.maxError).toBeLessThan(EXACT);
            });
          }
        }
      }
    }
  }
});

/** The program with `edit` applied to every backward compute step of every rank. */
function editBackward(program: ScheduleProgram, edit: (steps: ComputeStep[]) => void): ScheduleProgram {
  const copy = structuredClone(program);
  for (const schedule of copy.schedules)
    for (const rank of schedule.passes.backward)
      edit(rank.steps.filter((s): s is ComputeStep => s.kind === "compute"));
  return copy;
}

describe("the IR of replicated kv heads", () => {
  const W = 4;
  const s = spec(W, 2, "zigzag", true, false);
  const program = lowerSpec(s, { block: BLOCK });
  const schedule = program.schedules[0]!;

  it("rank r reads kv head floor(r / R), one kv head per rank", () => {
    for (const rp of schedule.passes.forward) {
      const attend = rp.steps.find((x) => x.kind === "compute" && x.op === "softmax.full") as
        ComputeStep<"softmax.full"> | undefined;
      expect(attend!.params).toMatchObject({ kvHeadStart: Math.floor(rp.rank / 2), kvHeads: 1 });
      const pack = rp.steps.find((x) => x.kind === "compute" && x.op === "pack") as ComputeStep<"pack">;
      expect(pack.params.replicas).toEqual([1, 2, 2]);
    }
  });

  it("the token owner sums the R partials of dK and dV with accumulate, after the unpack into slots", () => {
    for (const rp of schedule.passes.backward) {
      const sums = rp.steps.filter(
        (x) => x.kind === "compute" && x.op === "accumulate",
      ) as ComputeStep<"accumulate">[];
      expect(sums.map((x) => x.operands)).toEqual([
        { src: "dk_parts", dst: "dk" },
        { src: "dv_parts", dst: "dv" },
      ]);
      expect(rp.buffers.find((b) => b.name === "dk_parts")).toMatchObject({
        slots: 2,
        dtype: program.sizes.dtype,
      });
    }
  });

  it("runs exact as lowered", () => {
    expect(verifyProgram(s, program, BLOCK, 3).maxError).toBeLessThan(EXACT);
  });

  it("leaving out the sum (dK, dV straight from one replica's slot) fails verify", () => {
    const broken = editBackward(program, (steps) => {
      for (const step of steps)
        if (step.op === "accumulate") {
          const sum = step as unknown as ComputeStep<"copy">;
          sum.op = "copy";
          sum.operands = {
            src: [(step as ComputeStep<"accumulate">).operands.src],
            dst: [step.operands.dst as string],
          };
          sum.params = { from: 0 };
        }
    });
    const report = verifyProgram(s, broken, BLOCK, 3);
    expect(report.rows[0]!.errors.dk).toBeGreaterThan(1e-3);
    expect(report.rows[0]!.errors.dv).toBeGreaterThan(1e-3);
    expect(report.rows[0]!.errors.dq).toBeLessThan(EXACT);
  });

  it("without the sum steps at all, dK is read before anything wrote it", () => {
    const broken = structuredClone(program);
    for (const rp of broken.schedules[0]!.passes.backward)
      rp.steps = rp.steps.filter((x) => !(x.kind === "compute" && x.op === "accumulate"));
    expect(() => verifyProgram(s, broken, BLOCK, 3)).toThrow(/reads dk before anything wrote it/);
  });

  it("linear Ulysses is unchanged: no replicas, no sum", () => {
    const linear = lowerSpec(
      tinySpec({
        ranks: W,
        layout: "zigzag",
        seqLen: seqLenOf(W, "zigzag"),
        heads: W,
        linear: "ulysses",
        layers: [linearKind("L", W)],
      }),
      { block: BLOCK },
    );
    for (const pass of [linear.schedules[0]!.passes.forward, linear.schedules[0]!.passes.backward])
      for (const rp of pass)
        for (const step of rp.steps) {
          expect(step.kind === "compute" && step.op === "accumulate").toBe(false);
          if (step.kind === "compute" && (step.op === "pack" || step.op === "unpack"))
            expect(step.params.replicas).toBeUndefined();
        }
  });
});

describe("the all-to-all bytes count the replicated K, V", () => {
  for (const [W, kvHeads] of [
    [4, 1],
    [4, 2],
    [8, 2],
    [8, 4],
  ] as const) {
    it(`W=${W}, kv_heads ${kvHeads}: B L (H + 2 max(Hkv, W)) d e + B L H d e per pass`, () => {
      const s = spec(W, kvHeads, "contiguous", true, false);
      const program = lowerSpec(s, { block: BLOCK });
      const { batch: B, heads: H, headDim: d, elementBytes: e } = program.sizes;
      const L = s.run.seqLen / W;
      const want = B * L * (H + 2 * Math.max(kvHeads, W)) * d * e + B * L * H * d * e;
      const kind = s.model.kinds[0]!;
      for (const pass of ["forward", "backward"] as const) {
        expect(closedFormVolume(kind, "ulysses", pass, program.layout, program.sizes).bytes).toBe(want);
        for (const rp of program.schedules[0]!.passes[pass]) {
          const sent = rp.steps.reduce((sum, x) => sum + (x.kind === "collective" ? x.bytes : 0), 0);
          expect(sent).toBe(want);
        }
      }
    });
  }
});
