// Packed documents in the generated program (docs/DOCUMENTS.md): every call of an op that attends reads the
// step's documents (c.docs) and, for a piece, its global position; the state steps write their piece's flag;
// the prefix and suffix scans stop at flagged pieces (linear_document_scan); LASP-1's chain step reads its
// piece's documents (linear_document_ring_step). Without documents none of it appears.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { lowerSpec } from "../schedule/lower.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { generateProgram } from "./generate.js";
import { namedCallsOf, stepsOf } from "./test-calls.js";
import { buildView, type ProgramView } from "./view-model.js";

const example = (name: string, documents = true): ResolvedSpec => {
  const file = `examples/${name}.lasp`;
  const text = readFileSync(file, "utf8").replace(
    /mode verify {2}seed 1/,
    documents
      ? "mode verify  seed 1  documents eos  eos_token 7  document_length 100"
      : "mode verify  seed 1",
  );
  const spec = checkSource(file, text).spec!;
  expect(spec.run.documents.kind).toBe(documents ? "eos" : "none");
  return spec;
};
const viewOf = (spec: ResolvedSpec): ProgramView =>
  buildView({ spec, program: lowerSpec(spec), compilerVersion: "test" });

describe("the generated program with packed documents", () => {
  it("LASP-2: each piece's calls read the documents at the piece's global position; states write flags", () => {
    const spec = example("tiny-hybrid");
    const view = viewOf(spec);
    const plan = lowerSpec(spec).layout;
    for (const rank of [0, 1]) {
      const pieces = plan.byRank[rank]!;
      const fn = `L_forward_rank${rank}`;
      const states = namedCallsOf(view, fn, "lasp::linear_state");
      expect(states).toHaveLength(pieces.length);
      states.forEach((call, j) => {
        expect(call.fields.docs).toBe("c.docs");
        expect(call.fields.position).toBe(String(pieces[j]!.start));
        expect(call.fields.flag).toBe(j === 0 ? "b.m_flag" : `b.m_flag + ${j * spec.run.batch}`);
      });
      // The walks (the fused one where a piece has a prefix, the intra product where it has none).
      const walks = ["lasp::linear_forward_fused", "lasp::linear_intra"].flatMap((f) =>
        namedCallsOf(view, fn, f),
      );
      expect(
        walks.map((c) => [c.fields.docs, Number(c.fields.position)]).sort((a, b) => +a[1]! - +b[1]!),
      ).toEqual(pieces.map((p) => ["c.docs", p.start]).sort((a, b) => +a[1]! - +b[1]!));
      const back = `L_backward_rank${rank}`;
      expect(namedCallsOf(view, back, "lasp::linear_grad_state").map((c) => c.fields.flag)).toEqual(
        pieces.map((_, j) => (j === 0 ? "b.dm_flag" : `b.dm_flag + ${j * spec.run.batch}`)),
      );
      expect(
        namedCallsOf(view, back, "lasp::linear_backward_fused").every((c) => c.fields.docs === "c.docs"),
      ).toBe(true);
      // The scans: every prefix over the gathered states and their flags.
      const scans = stepsOf(view, fn)
        .flatMap((s) => s.calls)
        .filter((c) => c.fn === "lasp::linear_document_scan");
      expect(scans.length).toBeGreaterThan(0);
      for (const scan of scans) expect(scan.args.slice(0, 2)).toEqual(["b.m_all", "b.m_flag_all"]);
      expect(stepsOf(view, fn).some((s) => s.calls.some((c) => c.fn === "lasp::linear_decayed_sum"))).toBe(
        false,
      );
      // The softmax layer's blocks: the document mask from the step's documents.
      for (const call of namedCallsOf(view, `S_forward_rank${rank}`, "lasp::softmax_block_forward"))
        expect(call.fields.docs).toBe("c.docs");
      for (const call of namedCallsOf(view, `S_backward_rank${rank}`, "lasp::softmax_block_backward"))
        expect(call.fields.docs).toBe("c.docs");
    }
    // doc_ends is the step's (Ctx::docs), not a buffer of a layer.
    for (const kind of view.kinds) expect(kind.buffers.map((b) => b.field)).not.toContain("doc_ends");
    const constants = Object.fromEntries(view.constants.map((c) => [c.name, c.value]));
    expect(constants).toMatchObject({
      kDocuments: "lasp::kEosDocuments",
      kDocumentLength: "100",
      kEosToken: "7",
    });
  });

  it("LASP-1's chain step takes its piece's documents; Ulysses' whole sequence starts at position 0", () => {
    const spec = example("tiny-baselines");
    const view = viewOf(spec);
    const plan = lowerSpec(spec).layout;
    // The ranks between the chain's ends receive a prefix and hand one on.
    for (const rank of [1, 2]) {
      const rings = stepsOf(view, `L_forward_rank${rank}`)
        .flatMap((s) => s.calls)
        .filter((c) => c.fn.startsWith("lasp::linear_") && c.fn.includes("ring_step"));
      expect(rings.length).toBeGreaterThan(0);
      for (const ring of rings) {
        expect(ring.fn).toBe("lasp::linear_document_ring_step");
        // ..., the documents, the piece's position, rows 0..head_dim, the stream.
        expect(ring.args.slice(-5, -1)).toEqual(["c.docs", String(plan.byRank[rank]![0]!.start), "0", "64"]);
      }
    }
    const ulysses: ResolvedSpec = {
      ...spec,
      parallel: { ...spec.parallel, linear: "ulysses", softmax: "ulysses" },
    };
    const u = viewOf(ulysses);
    const full = namedCallsOf(u, "L_forward_rank2", "lasp::linear_intra");
    expect(full.map((c) => [c.fields.docs, c.fields.position])).toEqual([["c.docs", "0"]]);
    expect(namedCallsOf(u, "S_forward_rank2", "lasp::softmax_whole_forward")[0]!.fields.docs).toBe("c.docs");
  });

  it("leaves every call as it was without documents, and the program compiles its documents in", () => {
    for (const name of ["tiny-hybrid", "tiny-baselines"]) {
      const view = viewOf(example(name, false));
      const calls = view.kinds.flatMap((k) =>
        k.passes.flatMap((p) => p.ranks.flatMap((r) => r.steps.flatMap((s) => s.calls))),
      );
      expect(calls.some((c) => c.fn.includes("document"))).toBe(false);
      expect(calls.some((c) => c.operands?.lines.flat().some((f) => f.name === "docs"))).toBe(false);
      expect(Object.fromEntries(view.constants.map((c) => [c.name, c.value])).kDocuments).toBe(
        "lasp::kNoDocuments",
      );
    }
    const files = generateProgram(example("tiny-hybrid"));
    expect(files.get("lasp/program.cuh")).toContain(
      "args.docs = c.docs; args.position = 0; args.flag = b.m_flag;",
    );
    expect(files.has("lasp/step_documents.cuh")).toBe(true);
    expect(files.get("kernels.cu")).toContain('#include "lasp/linear_document_scan.cuh"');
  });
});

describe("the generated program with a padded seq_len", () => {
  it("reads the padding's documents, knows the real length, and counts real tokens only", () => {
    const spec = example("tiny-hybrid", false);
    const padded = checkSource(
      "p.lasp",
      readFileSync("examples/tiny-hybrid.lasp", "utf8").replace("seq_len 1K", "seq_len 1000"),
    ).spec!;
    expect(padded.run.padding).toBe(24);
    const constants = (s: ResolvedSpec) =>
      Object.fromEntries(viewOf(s).constants.map((c) => [c.name, c.value]));
    expect(constants(padded)).toMatchObject({
      kSeqLen: "1024",
      kRealSeqLen: "1000",
      kStepDocuments: "true",
      kDocuments: "lasp::kNoDocuments",
      kDocumentLength: "0",
      kTokensPerStep: "1000",
    });
    expect(constants(spec)).toMatchObject({
      kRealSeqLen: "1024",
      kStepDocuments: "false",
      kTokensPerStep: "1024",
    });
    const view = viewOf(padded);
    for (const call of namedCallsOf(view, "L_forward_rank0", "lasp::linear_state"))
      expect(call.fields.docs).toBe("c.docs");
  });
});

describe("the generated program with documents in a bidirectional linear layer", () => {
  const encoder = checkSource(
    "e.lasp",
    `model e {
  vocab 512  hidden 256  ffn 512  heads 4  head_dim 64  mask_rate 0.15
  layer E = linear_attention { causal false }
  stack E x 2
}
parallel { gpus 2  linear lasp2  layout zigzag }
run { seq_len 1K  documents eos  eos_token 7  document_length 100 }
`,
  ).spec!;

  it("writes each piece's head (tail) beside its state, and hands the twin scans to the inter terms", () => {
    const view = viewOf(encoder);
    for (const rank of [0, 1]) {
      const fwd = `E_forward_rank${rank}`;
      const back = `E_backward_rank${rank}`;
      const states = namedCallsOf(view, fwd, "lasp::linear_state");
      expect(states.length).toBeGreaterThan(0);
      states.forEach((c, j) =>
        expect(c.fields.head).toBe(j === 0 ? "b.m_head" : `b.m_head + ${j * 4 * 64 * 64}`),
      );
      for (const c of namedCallsOf(view, back, "lasp::linear_grad_state"))
        expect(c.fields.tail).toMatch(/^b\.dm_tail/);
      // Every piece's first document takes the earlier tails (p), its last the later heads (after).
      const forward = ["lasp::linear_forward_fused", "lasp::linear_inter"].flatMap((f) =>
        namedCallsOf(view, fwd, f),
      );
      expect(forward.some((c) => c.fields.p !== undefined && c.fields.after !== undefined)).toBe(true);
      for (const c of forward)
        if (c.fields.after !== undefined) expect(c.fields.after).toMatch(/^b\.p_after/);
      const backward = ["lasp::linear_backward_fused", "lasp::linear_dkdv_inter"].flatMap((f) =>
        namedCallsOf(view, back, f),
      );
      expect(
        backward.some((c) => c.fields.before !== undefined && c.fields.before.startsWith("b.g_before")),
      ).toBe(true);
      // The scans run over the gathered heads and tails with their flags.
      const scans = [fwd, back].flatMap((fn) =>
        stepsOf(view, fn)
          .flatMap((s) => s.calls)
          .filter((c) => c.fn === "lasp::linear_document_scan"),
      );
      expect(new Set(scans.map((c) => c.args[0]))).toEqual(
        new Set(["b.m_all", "b.m_head_all", "b.dm_all", "b.dm_tail_all"]),
      );
    }
  });
});

describe("the attention calls' named operands", () => {
  /** Each struct of templates/runtime/attention_args.cuh and the names of its members. */
  const structs = (): Map<string, Set<string>> => {
    const text = readFileSync("templates/runtime/attention_args.cuh", "utf8");
    const out = new Map<string, Set<string>>();
    for (const m of text.matchAll(/struct (\w+) \{\n([\s\S]*?)\n\};/g)) {
      const members = [...m[2]!.matchAll(/^\s+[^/\n][^\n]*?[\s*](\w+)\s*(?:=|\{|;)/gm)].map((x) => x[1]!);
      out.set(m[1]!, new Set(members));
    }
    return out;
  };

  it("are members of their structs, for every example and the document variants (main.cu would not compile)", () => {
    const known = structs();
    expect(known.get("LinearStateArgs")).toEqual(
      new Set(["k", "v", "m", "piece", "docs", "position", "flag", "head", "kv_ws"]),
    );
    const specs = [
      ...["tiny-linear", "tiny-hybrid", "tiny-baselines", "tiny-documents", "bidirectional-encoder"].map(
        (n) => example(n === "tiny-documents" ? "tiny-hybrid" : n, n === "tiny-documents"),
      ),
      checkSource(
        "e.lasp",
        `model e {
  vocab 512  hidden 256  ffn 512  heads 4  head_dim 64  mask_rate 0.15
  layer E = linear_attention { causal false }
  stack E x 2
}
parallel { gpus 2  layout zigzag }
run { seq_len 1K  documents eos  eos_token 7  document_length 100 }
`,
      ).spec!,
    ];
    for (const spec of specs) {
      const calls = viewOf(spec).kinds.flatMap((k) =>
        k.passes.flatMap((p) => p.ranks.flatMap((r) => r.steps.flatMap((s) => s.calls))),
      );
      for (const call of calls) {
        if (call.operands === undefined) continue;
        const members = known.get(call.operands.type);
        expect(members, call.operands.type).toBeDefined();
        for (const field of call.operands.lines.flat())
          expect(members!.has(field.name), `${call.operands.type}.${field.name}`).toBe(true);
      }
    }
  });
});
