// Train mode's token files as `lasp run` hands them to the program: the spec's `data` and `eval_data`
// resolved against the spec's folder (the program compiles them in as written, relative to its working
// directory), and the ones that do not exist, with where the spec names them, so the run stops before the build.
import { existsSync } from "node:fs";
import path from "node:path";
import type { SpecFile } from "../ast/ast.js";
import type { Span } from "../ast/span.js";
import type { ResolvedSpec } from "../spec/resolved.js";

export interface MissingTokenFile {
  key: "data" | "eval_data";
  path: string;
  span: Span | undefined;
}

/** A llm.c file, or a Megatron dataset named by its prefix (PREFIX.bin beside PREFIX.idx). */
const present = (file: string): boolean => existsSync(file) || existsSync(`${file}.bin`);

function settingSpan(ast: SpecFile, key: string): Span | undefined {
  for (const block of ast.blocks)
    if (block.kind === "run") return block.settings.find((s) => s.key.name === key)?.span;
  return undefined;
}

export function trainTokenFiles(
  ast: SpecFile,
  spec: ResolvedSpec,
  specFolder: string,
): { args: string[]; missing: MissingTokenFile[] } {
  const args: string[] = [];
  const missing: MissingTokenFile[] = [];
  const files: ["data" | "eval_data", string, { kind: string; path?: string }][] = [
    ["data", "--data", spec.run.data],
    ["eval_data", "--eval-data", spec.run.train.evalData],
  ];
  for (const [key, flag, source] of files) {
    if (source.kind !== "file" || source.path === undefined) continue;
    const file = path.resolve(specFolder, source.path);
    args.push(flag, file);
    if (!present(file)) missing.push({ key, path: file, span: settingSpan(ast, key) });
  }
  return { args, missing };
}
