// chevrotain, from the single-file build its package ships (lib/chevrotain.mjs), the same version and code as
// the package entry (lib/src/api.js). The entry loads about 700 modules (chevrotain's sources and lodash-es):
// a third of a second on every `lasp` command that parses; the bundle takes 20 ms. Where the bundle cannot be
// found (another layout of the package, a runner without import.meta.resolve), the entry is used.
import type * as Chevrotain from "chevrotain";

async function load(): Promise<typeof Chevrotain> {
  try {
    const entry = import.meta.resolve("chevrotain");
    return (await import(new URL("../chevrotain.mjs", entry).href)) as typeof Chevrotain;
  } catch {
    return import("chevrotain");
  }
}

const chevrotain = await load();

export const { createToken, createSyntaxDiagramsCode, CstParser, EOF, Lexer } = chevrotain;
