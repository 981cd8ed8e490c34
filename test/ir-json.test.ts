// The IR's JSON (`lasp inspect --json`'s `irVersion`, `spec`, `sizes`, `layout`, `schedules`, `layers`) is
// documented as stable within an irVersion (src/schedule/README.md): these golden files show every change
// to it in review. A change of shape needs IR_VERSION bumped and the README updated; run
// `npx vitest run test/ir-json.test.ts -u` to accept a reviewed change.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import * as prettier from "prettier";
import { describe, expect, it } from "vitest";
import { checkSource } from "../src/check/front-end.js";
import { IR_VERSION } from "../src/schedule/ir.js";
import { lowerSpec } from "../src/schedule/lower.js";

const SPECS = ["tiny-linear", "tiny-hybrid", "tiny-baselines"];

describe("the IR's JSON", () => {
  for (const name of SPECS) {
    it(`of examples/${name}.lasp matches test/ir-json/${name}.json`, async () => {
      const file = `examples/${name}.lasp`;
      const spec = checkSource(file, readFileSync(file, "utf8")).spec;
      if (spec === undefined) throw new Error(`${file} does not check`);
      const program = lowerSpec(spec);
      expect(program.irVersion).toBe(IR_VERSION);
      const golden = resolve(`test/ir-json/${name}.json`);
      // Formatted as `prettier --check .` wants the committed file.
      const options = (await prettier.resolveConfig(golden)) ?? {};
      const text = await prettier.format(JSON.stringify(program), { ...options, filepath: golden });
      await expect(text).toMatchFileSnapshot(golden);
    });
  }
});
