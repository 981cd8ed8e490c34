// What `lasp run` says about the spec's token files before the build, for the cases a user meets first.
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { trainTokenFiles } from "./token-file-paths.js";

const folder = mkdtempSync(join(tmpdir(), "lasp-token-paths-"));

function problems(run: string) {
  const result = checkSource(
    "t.lasp",
    `model m { vocab 256 hidden 256 ffn 512 heads 4 head_dim 64
  layer L = linear_attention { decay 0.99 } stack L x 2 }
run { mode train  seq_len 1K  batch 4  ${run} }`,
  );
  if (result.spec === undefined) throw new Error(result.diagnostics.map((d) => d.message).join("\n"));
  return trainTokenFiles(result.ast!, result.spec, folder).problems;
}

describe("the token files lasp run checks", () => {
  it("calls a folder named as data or eval_data a folder, with the setting and a file that would do", () => {
    mkdirSync(join(folder, "shards"), { recursive: true });
    const found = problems('data "shards"  eval_data "shards"  eval_every 10');
    expect(found.map((p) => p.key)).toEqual(["data", "eval_data"]);
    for (const p of found) {
      expect(p.message).toBe(`${join(folder, "shards")} is a folder, not a token file`);
      expect(p.hint).toBe(
        `name the token file in it, or make one from text with \`lasp tokens FILES... -o ${join(folder, "shards", "train.bin")}\``,
      );
      expect(p.span).toBeDefined();
      expect(`${p.message} ${p.hint}`).not.toContain("EISDIR");
    }
  });
});
