// Packed documents in the `run` block (issue 19): `documents`, `eos_token` and `document_length` resolve to
// ResolvedRun.documents, the combinations that make no sense are reported at the right setting (E0515-E0517,
// W0608, W0609), compile and run warn where the document kernels have not run (W0613: across sequence ranks)
// and where a causal output norm is ill-conditioned at document starts (W0614); verify proves the schedules
// with documents, and inspect counts the softmax work they let the kernels skip.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { withGeneratorNotes } from "../../src/cli/check-command.js";
import { main } from "../../src/cli/main.js";
import { captureIo } from "../../src/cli/test-io.js";
import { checkSource } from "../../src/check/front-end.js";
import { suggestKey } from "../../src/spec/key-homes.js";

const spec = (run: string) => `model m {
  vocab 512  hidden 256  ffn 512  heads 4  head_dim 64
  layer L = linear_attention { }
  stack L x 2
}
run { seq_len 4K  ${run} }
`;
const check = (run: string) => checkSource("d.lasp", spec(run));
const codes = (run: string) => check(run).diagnostics.map((d) => d.code);
/** The one diagnostic of a spec, with its column on the run line (line 6). */
const only = (run: string) => {
  const d = check(run).diagnostics;
  expect(d).toHaveLength(1);
  expect(d[0]!.span.start.line).toBe(6);
  return d[0]!;
};
/** The column where `text` starts on the run line. */
const columnOf = (run: string, text: string) => `run { seq_len 4K  ${run} }`.indexOf(text) + 1;

describe("documents resolve", () => {
  it("to `none` by default, with no diagnostic", () => {
    const result = check("");
    expect(result.diagnostics).toEqual([]);
    expect(result.spec!.run.documents).toEqual({ kind: "none" });
  });

  it("`eos` with synthetic data: the token and the mean length, 2K by default", () => {
    expect(check("documents eos  eos_token 7").spec!.run.documents).toEqual({
      kind: "eos",
      eosToken: 7,
      meanLength: 2048,
    });
    expect(check("documents eos  eos_token 511  document_length 1.5K").spec!.run.documents).toEqual({
      kind: "eos",
      eosToken: 511,
      meanLength: 1536,
    });
  });

  it("`eos` with a token file: no mean length (the file's documents have theirs)", () => {
    const result = check('data "tokens.bin"  documents eos  eos_token 0');
    expect(result.diagnostics).toEqual([]);
    expect(result.spec!.run.documents).toEqual({ kind: "eos", eosToken: 0, meanLength: undefined });
  });

  it("`index` with a dataset", () => {
    const result = check('data "corpus_text_document"  documents index');
    expect(result.diagnostics).toEqual([]);
    expect(result.spec!.run.documents).toEqual({ kind: "index" });
  });
});

describe("bad values are reported at the value", () => {
  it("an unknown word, with the nearest one", () => {
    const d = only("documents eod");
    expect(d.code).toBe("E0404");
    expect(d.span.start.column).toBe(columnOf("documents eod", "eod"));
    expect(d.hint).toBe("did you mean `eos`?");
  });

  it("a token id that is not a whole number from 0", () => {
    expect(codes("documents eos  eos_token -1")).toEqual(["E0402"]);
    expect(codes("documents eos  eos_token 2.5")).toEqual(["E0403"]);
    expect(codes('documents eos  eos_token "50256"')).toEqual(["E0401"]);
  });

  it("a mean length of 0", () => {
    expect(codes("documents eos  eos_token 1  document_length 0")).toEqual(["E0402"]);
  });

  it("a bad value says nothing more: no rule runs on it", () => {
    expect(codes("documents eod  eos_token 5000")).toEqual(["E0404"]);
    expect(codes("documents eos  eos_token 1  document_length 0.5")).toEqual(["E0403"]);
  });
});

describe("the combinations that make no sense", () => {
  it("E0515: `index` with synthetic data, at `documents`, with a note at `data`", () => {
    const run = "data synthetic  documents index";
    const d = only(run);
    expect(d.code).toBe("E0515");
    expect(d.severity).toBe("error");
    expect(d.span.start.column).toBe(columnOf(run, "documents"));
    expect(d.hint).toContain('`data "corpus_text_document"`');
    expect(d.related!.map((r) => r.span.start.column)).toEqual([columnOf(run, "data")]);
    // Synthetic by default: the hint says so, there is no setting to point at.
    const byDefault = only("documents index");
    expect(byDefault.hint).toMatch(/^data defaults to synthetic/);
    expect(byDefault.related ?? []).toEqual([]);
  });

  it("E0516: `eos` without `eos_token`, at `documents`", () => {
    const d = only('data "t.bin"  documents eos');
    expect(d.code).toBe("E0516");
    expect(d.span.start.column).toBe(columnOf('data "t.bin"  documents eos', "documents"));
    expect(d.hint).toContain("`eos_token 50256`");
  });

  it("E0517: an `eos_token` outside the vocabulary, with a note at `vocab`", () => {
    const run = 'data "t.bin"  documents eos  eos_token 512';
    const d = only(run);
    expect(d.code).toBe("E0517");
    expect(d.message).toBe("eos_token 512 is not a token of the model: the vocabulary has ids 0 to 511");
    expect(d.span.start.column).toBe(columnOf(run, "eos_token"));
    expect(d.related!.map((r) => r.span.start.line)).toEqual([2]);
    expect(codes('data "t.bin"  documents eos  eos_token 511')).toEqual([]);
  });

  it("W0608: `eos_token` without `documents eos`", () => {
    for (const run of [
      "eos_token 5",
      "documents none  eos_token 5",
      'data "d"  documents index  eos_token 5',
    ]) {
      const d = only(run);
      expect(d.code).toBe("W0608");
      expect(d.severity).toBe("warning");
      expect(d.span.start.column).toBe(columnOf(run, "eos_token"));
      expect(d.hint).toBe("remove it, or set `documents eos`");
    }
  });

  it("W0608: `document_length` without documents, or with a token file", () => {
    const none = only("document_length 512");
    expect(none.code).toBe("W0608");
    expect(none.message).toContain("`documents` is `none`");
    const file = only('data "t.bin"  documents eos  eos_token 5  document_length 512');
    expect(file.code).toBe("W0608");
    expect(file.message).toContain("the documents come from the token file");
  });

  it("W0609: a mean length above seq_len, at `document_length`, or at `documents` for the default", () => {
    const run = "documents eos  eos_token 5  document_length 8K";
    const d = only(run);
    expect(d.code).toBe("W0609");
    expect(d.message).toContain("the mean document length 8K is more than seq_len 4K");
    expect(d.span.start.column).toBe(columnOf(run, "document_length"));
    expect(codes("documents eos  eos_token 5  document_length 4K")).toEqual([]);
    // seq_len 1K is below the default 2K.
    const byDefault = checkSource("d.lasp", spec("documents eos  eos_token 5").replace("4K", "1K"));
    expect(byDefault.diagnostics.map((x) => x.code)).toEqual(["W0609"]);
    expect(byDefault.diagnostics[0]!.hint).toBe(
      "document_length defaults to 2K; set a shorter one, for example `document_length 256`",
    );
  });

  it("names from other tools point at the keys", () => {
    expect(suggestKey("eos_token_id", "run").hint).toBe("did you mean `eos_token`?");
    expect(suggestKey("reset_attention_mask", "run").hint).toBe("did you mean `documents`?");
    expect(suggestKey("mean_document_length", "run").hint).toBe("did you mean `document_length`?");
  });
});

describe("the program stops attention at documents; run on one GPU, not yet across ranks", () => {
  const notes = (run: string, refuse: boolean, source = spec(run)) =>
    withGeneratorNotes(checkSource("d.lasp", source), { refuse }).diagnostics.map((d) => d.code);
  const encoder = (run: string) =>
    spec(run).replace("linear_attention { }", "linear_attention { causal false  feature_map identity }");
  const unnormed = (run: string) =>
    spec(run).replace("linear_attention { }", "linear_attention { output_norm none }");
  const ranks = (source: string, n: number) => source.replace("\nrun {", `\nparallel { gpus ${n} }\nrun {`);

  it("on one GPU nothing is unverified; over sequence ranks check, compile and run warn (W0613) at `documents`", () => {
    const run = "documents eos  eos_token 5";
    expect(notes(run, false, unnormed(run))).toEqual([]);
    expect(notes(run, true, ranks(unnormed(run), 2))).toEqual(["W0613"]);
    const warned = withGeneratorNotes(checkSource("d.lasp", ranks(unnormed(run), 2)), {
      refuse: true,
    }).diagnostics;
    expect(warned.map((d) => [d.code, d.span.start.line, d.span.start.column])).toEqual([
      ["W0613", 7, columnOf(run, "documents")],
    ]);
    expect(warned[0]!.message).toBe(
      "`documents eos` over 2 sequence ranks is generated, but its program has not run on more than one GPU yet: check it with `lasp run --mode verify` before trusting a run",
    );
    expect(notes('data "d"  documents index', true, ranks(unnormed('data "d"  documents index'), 4))).toEqual(
      ["W0613"],
    );
    expect(notes("documents none", true, ranks(spec("documents none"), 2))).toEqual([]);
  });

  it("warns (W0614) at a causal layer's output norm: a document's first token is ill-conditioned under it", () => {
    const run = "documents eos  eos_token 5";
    const warned = withGeneratorNotes(check(run), { refuse: true }).diagnostics;
    expect(warned.map((d) => [d.code, d.span.start.line])).toEqual([["W0614", 3]]);
    expect(warned[0]!.message).toMatch(/^layer `L` is causal with `output_norm rms` and packed documents:/);
    expect(notes(run, true, spec(run).replace("{ }", "{ output_norm rms }"))).toEqual(["W0614"]);
    // Not without documents, with an fp32 run, or in a bidirectional layer (every token sees its whole document).
    expect(notes("", true)).toEqual([]);
    expect(notes(`${run}  dtype fp32`, false)).not.toContain("W0614");
    expect(notes(run, true, encoder(run))).toEqual([]);
  });

  it("takes documents in a bidirectional linear layer too, warning only across ranks", () => {
    const run = "documents eos  eos_token 5  document_length 1K";
    expect(notes(run, true, encoder(run))).toEqual([]);
    expect(notes(run, true, ranks(encoder(run), 2))).toEqual(["W0613"]);
  });

  const write = (run: string, source = spec): string => {
    const file = join(mkdtempSync(join(tmpdir(), "lasp-documents-")), "docs.lasp");
    writeFileSync(file, source(run).replace("4K", "1K"));
    return file;
  };

  it("lasp compile writes a bidirectional linear model with documents over 2 ranks, saying that is unrun", async () => {
    const file = write("documents eos  eos_token 5  document_length 256", (run) => ranks(encoder(run), 2));
    const out = join(dirname(file), "out");
    const io = captureIo();
    expect(await main(["compile", file, "-o", out], io)).toBe(0);
    expect(io.err).toContain(`${file}:7:19: warning[W0613]: \`documents eos\` over 2 sequence ranks`);
    expect(readFileSync(join(out, "lasp/program.cuh"), "utf8")).toMatch(
      /causal = false;[^\n]*\n\s*args.docs = c.docs;/,
    );
  });

  it("lasp verify checks the documents; lasp inspect says which documents its costs assume for a token file", async () => {
    const file = write("documents eos  eos_token 5  document_length 256");
    const verify = captureIo();
    expect(await main(["verify", file], verify)).toBe(0);
    expect(verify.err).not.toContain("note");
    expect(verify.out).toMatch(/^documents eos: \d+ documents of mean length \d+ drawn from seed/m);
    // Synthetic data: the costs are of the documents the program draws; no note.
    const inspect = captureIo();
    expect(await main(["inspect", file, "--json"], inspect)).toBe(0);
    expect(inspect.err).not.toContain("note");
    const fromFile = captureIo();
    expect(
      await main(["inspect", write('data "tokens.bin"  documents eos  eos_token 5'), "--json"], fromFile),
    ).toBe(0);
    expect(fromFile.err).toContain(
      "lasp: note: the costs inspect shows for `documents eos` assume documents of mean length 2048 tokens drawn from the seed",
    );
    const plain = captureIo();
    expect(await main(["verify", write("")], plain)).toBe(0);
    expect(plain.err).not.toContain("documents");
  });
});
