// `lasp verify` says what a passing comparison did not check (ranks that hold padding alone, grouped-query
// attention the reduced heads could not keep), shows kv heads, and bounds the sizes that make it slow.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "./main.js";
import { captureIo } from "./test-io.js";

const LINEAR = "examples/tiny-linear.lasp";
const HYBRID = "examples/tiny-hybrid.lasp";

describe("lasp verify warnings", () => {
  it("warns when a simulated rank holds only padding, in the text and the JSON", async () => {
    const io = captureIo();
    expect(await main(["verify", LINEAR, "--seq-len", "8"], io)).toBe(0);
    expect(io.err).toContain("lasp: warning: simulated rank 1 of 2 holds only padding: the 8 real tokens");
    expect(io.err).toContain("use a --seq-len that fills every piece, a multiple of 16");
    const json = captureIo();
    expect(await main(["verify", LINEAR, "--seq-len", "8", "--json"], json)).toBe(0);
    const parsed = JSON.parse(json.out) as { warnings?: string[] };
    expect(parsed.warnings).toHaveLength(1);
    expect(parsed.warnings![0]).toContain("rank 1 of 2 holds only padding");
  });

  it("names every rank that holds only padding, for zigzag and for more ranks", async () => {
    // Zigzag on 2 ranks: 4 pieces of 8; the 8 real tokens fill piece 0 (rank 0), rank 1 holds pieces 1 and 2.
    const zigzag = captureIo();
    expect(await main(["verify", HYBRID, "--seq-len", "8"], zigzag)).toBe(0);
    expect(zigzag.err).toContain("simulated rank 1 of 2 holds only padding");
    expect(zigzag.err).toContain("a multiple of 32 (one block of 8 tokens per piece)");
    // 4 ranks, 33 real tokens padded to 64: pieces of 16, so rank 3 starts at 48, past the real tokens.
    const dir = mkdtempSync(join(tmpdir(), "lasp-verify-ranks-"));
    const spec = join(dir, "four.lasp");
    writeFileSync(spec, readFileSync(LINEAR, "utf8").replace("gpus 2  sequence 2", "gpus 4  sequence 4"));
    const four = captureIo();
    expect(await main(["verify", spec, "--seq-len", "33"], four)).toBe(0);
    expect(four.out).toContain("4 simulated ranks");
    expect(four.err).toContain("simulated rank 3 of 4 holds only padding: the 33 real tokens");
    // 9 real tokens padded to 32: pieces of 8, so ranks 2 and 3 hold padding alone.
    const two = captureIo();
    expect(await main(["verify", spec, "--seq-len", "9"], two)).toBe(0);
    expect(two.err).toContain("simulated ranks 2, 3 of 4 hold only padding");
  });

  it("does not warn where every rank holds a real token, padded or not", async () => {
    for (const seqLen of ["16", "9"]) {
      const io = captureIo();
      expect(await main(["verify", LINEAR, "--seq-len", seqLen], io), seqLen).toBe(0);
      expect(io.err, seqLen).toBe("");
    }
    const json = captureIo();
    expect(await main(["verify", LINEAR, "--json"], json)).toBe(0);
    expect(JSON.parse(json.out)).not.toHaveProperty("warnings");
  });

  it("says when --heads turns grouped-query attention off, and shows kv heads in the header", async () => {
    const own = captureIo();
    expect(await main(["verify", HYBRID], own)).toBe(0);
    expect(own.out).toContain("2 simulated ranks, zigzag, seq_len 64, 4 heads (S: 2 kv heads) x 8, float64");
    expect(own.err).toBe("");
    const three = captureIo();
    expect(await main(["verify", HYBRID, "--heads", "3"], three)).toBe(0);
    expect(three.out).toContain(", 3 heads x 8, float64");
    expect(three.err).toContain(
      "lasp: warning: --heads 3 cannot keep S's grouped-query attention (the spec's 4 heads share 2 kv heads): S ran 3 kv heads, one per query head",
    );
    expect(three.err).toContain("use a --heads that is a multiple of 2");
    // A multiple of the group keeps it grouped: no warning.
    const six = captureIo();
    expect(await main(["verify", HYBRID, "--heads", "6"], six)).toBe(0);
    expect(six.out).toContain("6 heads (S: 3 kv heads) x 8");
    expect(six.err).toBe("");
  });

  it("bounds --heads, --head-dim and --block, naming the flag and the limit, before any work", async () => {
    for (const [flag, value, limit] of [
      ["--heads", "1M", "256"],
      ["--head-dim", "1K", "256"],
      ["--block", "1M", "64"],
    ] as const) {
      const io = captureIo();
      expect(await main(["verify", HYBRID, flag, value], io), flag).toBe(2);
      expect(io.err).toMatch(
        new RegExp(`^lasp: ${flag} \\d+ is more than a schedule check needs.*use at most ${limit}\\n$`),
      );
      expect(io.out).toBe("");
    }
    // The limits themselves run.
    expect(await main(["verify", LINEAR, "--head-dim", "256"], captureIo())).toBe(0);
  });
});
