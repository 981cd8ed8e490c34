import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { captureIo } from "./test-io.js";
import { integerFlag, parseNumberText, positiveFlag } from "./number-flag.js";

describe("numbers on the command line are read as a spec reads them", () => {
  it("gives the value a spec's `seq_len` gets for the same text", () => {
    for (const text of ["512K", "1M", "2048", "64k", "1G", "8K"]) {
      const spec = checkSource(
        "t.lasp",
        `model m { vocab 512 hidden 256 ffn 512 heads 4 layer L = linear_attention { } stack L x 1 }\nrun { seq_len ${text} }\n`,
      ).spec;
      expect(spec?.run.seqLen, text).toBe(parseNumberText(text));
    }
    expect(parseNumberText("512K")).toBe(524288);
    expect(parseNumberText("1e-9")).toBe(1e-9);
  });

  it("refuses what a spec would refuse", () => {
    for (const text of ["12Q", "0x10", "", "1,024", "5 K", "K", "1KK", "Infinity"])
      expect(parseNumberText(text), text).toBeUndefined();
  });

  it("integer flags accept sizes and say what is wrong otherwise", () => {
    const io = captureIo();
    expect(integerFlag("--seq-len", "512K", io)).toBe(524288);
    expect(integerFlag("--seq-len", undefined, io)).toBeUndefined();
    expect(io.err).toBe("");
    for (const bad of ["12Q", "0", "1.5", "-4"]) {
      const err = captureIo();
      expect(integerFlag("--seq-len", bad, err), bad).toBeNull();
      expect(err.err).toContain(`--seq-len must be a whole number of at least 1, got ${bad}`);
      expect(err.err).toContain("512K");
    }
    expect(positiveFlag("--tolerance", "1e-9", io)).toBe(1e-9);
    expect(positiveFlag("--tolerance", "-1", io)).toBeNull();
  });
});
