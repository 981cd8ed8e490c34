// `npm run generate`: writes generated/<example>/ for every example the code generator supports;
// `npm run generate:check` (`--check`) exits 1 and names what is stale instead of writing.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { checkSource } from "../check/front-end.js";
import { packageRoot } from "../io/package-info.js";
import { MANIFEST, manifestText, removeOwnedFiles } from "../io/owned-folder.js";
import { CodegenLimitation, generateProgram, writeProgram } from "./generate.js";

export interface GeneratedExample {
  example: string;
  dir: string;
  files?: Map<string, string>;
  /** Why the example has no generated program yet. */
  limitation?: string;
}

/** The generated program of every example, keyed by the example's file name without `.lasp`. */
export function generateExamples(root = packageRoot()): GeneratedExample[] {
  const examples = join(root, "examples");
  return readdirSync(examples)
    .filter((f) => f.endsWith(".lasp"))
    .sort()
    .map((file) => {
      const name = file.slice(0, -".lasp".length);
      const path = `examples/${file}`;
      const checked = checkSource(path, readFileSync(join(examples, file), "utf8"));
      if (checked.spec === undefined) throw new Error(`${path} does not check clean`);
      const dir = join(root, "generated", name);
      try {
        return { example: name, dir, files: generateProgram(checked.spec) };
      } catch (error) {
        if (error instanceof CodegenLimitation) return { example: name, dir, limitation: error.message };
        throw error;
      }
    });
}

/** Files under `dir` (relative paths), for comparing with a generated map. */
function listFiles(dir: string, prefix = ""): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? listFiles(join(dir, entry.name), `${prefix}${entry.name}/`)
      : [`${prefix}${entry.name}`],
  );
}

/** Differences between the committed generated/ tree and what the generator produces now. */
export function staleFiles(root = packageRoot()): string[] {
  const stale: string[] = [];
  for (const ex of generateExamples(root)) {
    const committed = listFiles(ex.dir);
    if (ex.files === undefined) {
      if (committed.length > 0) stale.push(`${relative(root, ex.dir)}/ (the example no longer generates)`);
      continue;
    }
    // The manifest writeProgram leaves is committed too, so a fresh clone recompiles into generated/ cleanly.
    const expected = new Map([...ex.files, [MANIFEST, manifestText(ex.files.keys())]]);
    for (const [path, contents] of expected) {
      const file = join(ex.dir, path);
      if (!existsSync(file) || readFileSync(file, "utf8") !== contents) stale.push(relative(root, file));
    }
    for (const path of committed)
      if (!expected.has(path)) stale.push(`${relative(root, join(ex.dir, path))} (no longer generated)`);
  }
  return stale;
}

async function main(): Promise<void> {
  const root = packageRoot();
  if (process.argv.includes("--check")) {
    const stale = staleFiles(root);
    if (stale.length > 0) {
      process.stderr.write(
        `generated/ is out of date; run \`npm run generate\`:\n${stale.map((s) => `  ${s}`).join("\n")}\n`,
      );
      process.exitCode = 1;
    }
    return;
  }
  for (const ex of generateExamples(root)) {
    if (ex.files === undefined) {
      await removeOwnedFiles(ex.dir);
      process.stderr.write(`skipped ${ex.example}: ${ex.limitation}\n`);
      continue;
    }
    // generated/ is the generator's own tree; force also covers folders written before manifests existed.
    await writeProgram(ex.dir, ex.files, { force: true });
    process.stderr.write(`wrote ${relative(root, ex.dir)}/ (${ex.files.size} files)\n`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href)
  await main();
