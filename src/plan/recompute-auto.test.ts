import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { main } from "../cli/main.js";
import { captureIo } from "../cli/test-io.js";
import { H100, memoryReport, memoryShape } from "../cost/memory.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { H100_PROFILE } from "../cost/profile.js";
import { plan } from "./plan.js";
import { resolveRecomputeAuto } from "./recompute-auto.js";

/** Linear-Llama3-1B in train mode on one GPU at `seqLen`, with `recompute` as written. */
const source = (seqLen: string, recompute: string): string =>
  readFileSync("bench/gpu/specs/t-linear-1b-w1.lasp", "utf8").replace(
    "seq_len 16K  batch 1  dtype bf16",
    `seq_len ${seqLen}  batch 1  dtype bf16  recompute ${recompute}`,
  );
const spec = (seqLen: string, recompute: string): ResolvedSpec => {
  const result = checkSource("t.lasp", source(seqLen, recompute));
  if (result.spec === undefined) throw new Error(result.diagnostics.map((d) => d.message).join("\n"));
  return result.spec;
};
const needs = (s: ResolvedSpec): number => memoryReport(memoryShape(s), s.run.seqLen, H100).totalBytes;

describe("recompute auto", () => {
  it("checks as the default until resolved, and leaves a spec without it alone", () => {
    const unresolved = spec("16K", "auto");
    expect(unresolved.run.recompute).toBe("norms");
    expect(unresolved.run.recomputeAuto).toEqual({});
    const fixed = spec("16K", "norms");
    expect(resolveRecomputeAuto(fixed)).toBe(fixed);
  });

  it("keeps the most that fits: none at 16K tokens, mlp at 40K (none and norms do not fit 80 GB)", () => {
    const short = resolveRecomputeAuto(spec("16K", "auto"));
    expect(short.run.recompute).toBe("none");
    expect(short.run.recomputeAuto!.chosen!.tried).toEqual([
      { recompute: "none", bytes: needs(spec("16K", "none")), fits: true },
    ]);
    const long = resolveRecomputeAuto(spec("40K", "auto"));
    expect(long.run.recompute).toBe("mlp");
    const tried = long.run.recomputeAuto!.chosen!.tried;
    expect(tried.map((t) => t.recompute)).toEqual(["none", "norms", "mlp"]);
    for (const t of tried) expect(t.bytes).toBe(needs(spec("40K", t.recompute)));
    expect(tried[1]!.bytes).toBeGreaterThan(H100.memory);
    expect(tried[2]!.bytes).toBeLessThanOrEqual(H100.memory);
    expect(tried.map((t) => t.fits)).toEqual([false, false, true]);
    // Resolved once: a second pass changes nothing.
    expect(resolveRecomputeAuto(long)).toBe(long);
  });

  it("takes the least memory where nothing fits, and lasp inspect says what it chose and why", async () => {
    const huge = resolveRecomputeAuto(spec("200K", "auto"));
    expect(huge.run.recompute).toBe("mlp");
    expect(huge.run.recomputeAuto!.chosen!.tried.at(-1)!.bytes).toBeGreaterThan(H100.memory);
    const file = join(mkdtempSync(join(tmpdir(), "lasp-recompute-")), "t.lasp");
    writeFileSync(file, source("40K", "auto"));
    const io = captureIo();
    expect(await main(["inspect", file], io)).toBe(0);
    const [none, norms, mlp] = ["none", "norms", "mlp"].map((r) => (needs(spec("40K", r)) / 1e9).toFixed(1));
    expect(io.out.replace(/\s+/g, " ")).toContain(
      `\`recompute auto\`: chose \`mlp\`, ${mlp} GB per GPU, which fits the 80.0 GB of the GPU; ` +
        `\`none\` would need ${none} GB, \`norms\` would need ${norms} GB.`,
    );
    const json = captureIo();
    expect(await main(["inspect", file, "--json"], json)).toBe(0);
    expect(JSON.parse(json.out).recomputeAuto.chosen.recompute).toBe("mlp");
    // Fitted again to the GPU the report is for: 141 GB holds every activation at 40K tokens.
    const h200 = captureIo();
    expect(await main(["inspect", file, "--gpu-memory", "141GB"], h200)).toBe(0);
    expect(h200.out.replace(/\s+/g, " ")).toContain(
      `\`recompute auto\`: chose \`none\`, ${none} GB per GPU, which fits the 141.0 GB of the GPU (it keeps every activation).`,
    );
  });

  it("prices each of lasp plan's choices with the recompute that fits it", () => {
    const checked = checkSource("t.lasp", source("40K", "auto"));
    const { rows } = plan({ ast: checked.ast!, file: "t.lasp", spec: checked.spec!, profile: H100_PROFILE });
    // Every choice of one GPU needs more than 80 GB keeping the norms at 40K tokens: each is priced with `mlp`.
    expect(rows.length).toBeGreaterThan(1);
    for (const row of rows) expect(row.fits).toBe(true);
    expect(rows.find((r) => r.own)!.memoryBytes).toBe(needs(spec("40K", "mlp")));
  });
});
