// `npm run docs`: rewrites the generated regions of grammar/README.md and grammar/railroad.html from the
// parser, the key tables and the diagnostics catalogue, and the op table of src/schedule/README.md from the
// op catalogue (schedule/ops.ts). `npm run docs:check` (`--check`) writes nothing and
// exits 1 listing the files that are out of date.
import { existsSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as prettier from "prettier";
import { railroadHtml } from "./railroad.js";
import { readmeRegions, replaceRegions } from "./reference.js";
import { OPS_README, opsTable } from "../schedule/ops-doc.js";

export const README = "grammar/README.md";
export const RAILROAD = "grammar/railroad.html";

export interface DocFile {
  /** Relative to the repository root. */
  path: string;
  current: string;
  expected: string;
}

/** The repository root: the nearest folder above this file (in src/ or dist/src/) with a package.json. */
export function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("grammar-docs: no package.json above this file");
    dir = parent;
  }
  return dir;
}

/** Each generated file as it is and as it should be. README is formatted as `prettier --check` wants it. */
export async function docFiles(root: string = repositoryRoot()): Promise<DocFile[]> {
  const read = (path: string): string =>
    existsSync(join(root, path)) ? readFileSync(join(root, path), "utf8") : "";
  const readme = read(README);
  const readmePath = join(root, README);
  const options = (await prettier.resolveConfig(readmePath)) ?? {};
  const expectedReadme = await prettier.format(replaceRegions(readme, readmeRegions()), {
    ...options,
    filepath: readmePath,
  });
  const ops = read(OPS_README);
  const opsPath = join(root, OPS_README);
  const expectedOps = await prettier.format(replaceRegions(ops, { ops: opsTable() }), {
    ...((await prettier.resolveConfig(opsPath)) ?? {}),
    filepath: opsPath,
  });
  return [
    { path: README, current: readme, expected: expectedReadme },
    { path: RAILROAD, current: read(RAILROAD), expected: railroadHtml() },
    { path: OPS_README, current: ops, expected: expectedOps },
  ];
}

async function main(args: string[]): Promise<number> {
  const root = repositoryRoot();
  const stale = (await docFiles(root)).filter((f) => f.current !== f.expected);
  if (args.includes("--check")) {
    for (const file of stale) console.error(`${file.path} is out of date: run \`npm run docs\``);
    return stale.length > 0 ? 1 : 0;
  }
  for (const file of stale) {
    writeFileSync(join(root, file.path), file.expected);
    console.log(`wrote ${file.path}`);
  }
  if (stale.length === 0) console.log("grammar docs are up to date");
  return 0;
}

const entry = process.argv[1];
if (entry !== undefined && existsSync(entry) && import.meta.url === pathToFileURL(realpathSync(entry)).href) {
  process.exitCode = await main(process.argv.slice(2));
}
