import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { laspParser } from "../../grammar/parser.js";
import { LINEAR_KEYS, MODEL_KEYS, PARALLEL_KEYS, RUN_KEYS, SOFTMAX_KEYS } from "../spec/schema.js";
import { catalogue } from "../diagnostics/catalogue.js";
import { numberLiteralValue } from "../syntax/build-ast.js";
import { railroadHtml } from "./railroad.js";
import { allKeys, formatSize, grammarEbnf, regionOf, replaceRegions } from "./reference.js";
import { docFiles, README, repositoryRoot } from "./update.js";

const root = repositoryRoot();
const readme = readFileSync(join(root, README), "utf8");
const ruleNames = Object.keys(laspParser.getGAstProductions());

/** The text of README's `## title` section. */
function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  expect(start, `README has a "## ${title}" section`).toBeGreaterThan(-1);
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end === -1 ? undefined : end);
}

describe("grammar docs", () => {
  it("are up to date with the parser, the key tables and the catalogue", async () => {
    const stale = (await docFiles(root)).filter((f) => f.current !== f.expected).map((f) => f.path);
    expect(stale, `out of date: ${stale.join(", ")}; run \`npm run docs\` and commit the result`).toEqual([]);
  });

  it("write out every parser rule in EBNF, and no other", () => {
    const ebnf = regionOf(section("Grammar"), "grammar");
    const defined = [...ebnf.matchAll(/^(\w+) = /gm)].map((m) => m[1]);
    expect(defined).toEqual(ruleNames);
  });

  it("give the same EBNF as the rule comments in grammar/parser.ts", () => {
    const source = readFileSync(join(root, "grammar/parser.ts"), "utf8");
    const comments = [...source.matchAll(/^\s*\/\/ (\w+ = .*;)$/gm)].map((m) => m[1]);
    const generated = grammarEbnf()
      .split("\n")
      .filter((line) => line.endsWith(";"));
    expect(comments).toEqual(generated);
  });

  it("list every key of every block under its block", () => {
    const keys = regionOf(readme, "keys");
    const tables = new Map(
      keys.split(/^### /m).map((part) => [part.slice(0, part.indexOf("\n")), part] as const),
    );
    expect(allKeys().length).toBe(
      [MODEL_KEYS, LINEAR_KEYS, SOFTMAX_KEYS, PARALLEL_KEYS, RUN_KEYS].reduce((n, t) => n + t.length, 0),
    );
    for (const { heading, key } of allKeys()) {
      expect(tables.get(heading) ?? "", `${key} in ${heading}`).toContain(`| \`${key}\``);
    }
  });

  it("list every diagnostic code, and explain every E05xx rule", () => {
    const table = regionOf(section("Diagnostics"), "diagnostics");
    const rules = section("Rules the checker enforces");
    for (const { code, title } of catalogue()) {
      const escaped = title.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      expect(table).toMatch(new RegExp(`\\| \`${code}\` +\\| \\w+ +\\| ${escaped} +\\|`));
      if (code.startsWith("E05")) expect(rules, code).toContain(`**${code}**`);
    }
  });

  it("write bounds so that a spec may use them as written", () => {
    const bounds = [MODEL_KEYS, LINEAR_KEYS, SOFTMAX_KEYS, PARALLEL_KEYS, RUN_KEYS]
      .flat()
      .flatMap((k) => ("min" in k.rule ? [k.rule.min, k.rule.max] : []));
    for (const n of bounds) expect(numberLiteralValue(formatSize(n)), formatSize(n)).toBe(n);
    expect([65536, 2 ** 24, 2 ** 31, 1e9, 4096, 2 ** 32 - 1].map(formatSize)).toEqual([
      "64K",
      "16M",
      "2G",
      "1e9",
      "4096",
      "4294967295",
    ]);
  });

  it("refuse a README whose markers are missing", () => {
    expect(() => replaceRegions("no markers here", { keys: "x" })).toThrow(/keys:begin/);
    expect(replaceRegions("a <!-- k:begin -->old<!-- k:end --> b", { k: "new" })).toBe(
      "a <!-- k:begin -->\n\nnew\n\n<!-- k:end --> b",
    );
  });
});

describe("railroad page", () => {
  const html = railroadHtml();

  it("loads its scripts and stylesheet from the checkout, not the network", () => {
    const urls = [...html.matchAll(/(?:src|href)='([^']+)'/g)].map((m) => m[1]!);
    expect(urls.length).toBe(5); // diagrams.css and four scripts
    for (const url of urls) {
      expect(url).not.toMatch(/^[a-z]+:/);
      expect(existsSync(join(root, "grammar", url)), `${url} exists relative to grammar/`).toBe(true);
    }
    expect(html).not.toMatch(/https?:/);
  });

  it("draws every parser rule, with terminals as the grammar writes them", () => {
    const grammar = JSON.parse(/window\.serializedGrammar = (\[[\s\S]*?\]);\n<\/script>/.exec(html)![1]!) as {
      name: string;
    }[];
    expect(grammar.map((r) => r.name)).toEqual(ruleNames);
    expect(html).toContain('"label": "layer"');
    expect(html).toContain('"label": "kind"');
    expect(html).not.toContain('"label": "a name"');
  });
});
