import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as prettier from "prettier";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatSpec } from "./format.js";
import plugin from "./prettier-plugin.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const examples = readdirSync(join(root, "examples"))
  .filter((name) => name.endsWith(".lasp"))
  .map((name) => ({ name, text: readFileSync(join(root, "examples", name), "utf8") }));

const MESSY =
  "// a spec\nmodel m { vocab 512 hidden 256 // sizes\n layer L = linear_attention{} stack L x 2 }\nrun{seq_len 1K}\n";

const expected = (text: string): string => {
  const result = formatSpec(text);
  if ("diagnostics" in result) throw new Error("fixture does not parse");
  return result.text;
};

describe("the prettier plugin through prettier's API", () => {
  it("declares the language, a parser with locations and a printer", () => {
    expect(plugin.languages?.[0]).toMatchObject({ name: "lasp", parsers: ["lasp"], extensions: [".lasp"] });
    const parser = plugin.parsers?.["lasp"];
    expect(parser?.astFormat).toBe("lasp");
    expect(plugin.printers?.[parser!.astFormat]).toBeDefined();
  });

  it("parses to a root node with locations and the spec's AST", async () => {
    const parser = plugin.parsers!["lasp"]!;
    const ast = await parser.parse(MESSY, {} as never);
    expect(parser.locStart(ast)).toBe(0);
    expect(parser.locEnd(ast)).toBe(MESSY.length);
    expect(ast.spec.blocks.map((b) => b.kind)).toEqual(["model", "run"]);
    // Comments are the formatter's: prettier's own comment handling must not see them.
    expect("comments" in ast).toBe(false);
    expect("comments" in ast.spec).toBe(false);
  });

  it("formats like formatSpec, comments included", async () => {
    const text = await prettier.format(MESSY, { parser: "lasp", plugins: [plugin] });
    expect(text).toBe(expected(MESSY));
    expect(text).toContain("  vocab 512  hidden 256 // sizes\n");
  });

  it("picks the parser from the .lasp extension", async () => {
    const text = await prettier.format(MESSY, { filepath: "spec.lasp", plugins: [plugin] });
    expect(text).toBe(expected(MESSY));
  });

  it.each(examples)("leaves $name unchanged", async ({ text }) => {
    expect(await prettier.format(text, { parser: "lasp", plugins: [plugin] })).toBe(text);
    expect(await prettier.check(text, { parser: "lasp", plugins: [plugin] })).toBe(true);
  });

  it("keeps multi-line block comments as written (no re-indenting, no trimming)", async () => {
    const text = "run {\n  seq_len 1K\n  /* two\n       lines */\n}\n";
    expect(await prettier.format(text, { parser: "lasp", plugins: [plugin] })).toBe(text);
  });

  it("rejects a syntax error with the diagnostic's message and location", async () => {
    const attempt = prettier.format("run {\n  seq_len\n}\n", { parser: "lasp", plugins: [plugin] });
    await expect(attempt).rejects.toThrow(/expected a value/);
    await expect(attempt).rejects.toMatchObject({ loc: { start: { line: 3, column: 1 } } });
  });
});

describe("the prettier plugin through the prettier CLI", () => {
  let dir = "";
  let pluginPath = "";

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "lasp-prettier-"));
    // The plugin as prettier loads it: compiled JavaScript. Built here (only its own imports) so the test
    // never runs a stale dist/; inside node_modules so that `import "prettier"` resolves.
    const out = join(root, "node_modules", ".cache", "lasp-prettier-plugin-test");
    rmSync(out, { recursive: true, force: true });
    execFileSync(
      "npx",
      [
        "tsc",
        "src/format/prettier-plugin.ts",
        ...["--outDir", out, "--rootDir", ".", "--module", "nodenext", "--moduleResolution", "nodenext"],
        ...["--target", "es2022", "--skipLibCheck", "--types", "node"],
      ],
      { cwd: root, stdio: "inherit" },
    );
    pluginPath = join(out, "src", "format", "prettier-plugin.js");
    expect(existsSync(pluginPath)).toBe(true);
  }, 120_000);

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  // The temporary directory is the working directory: the repository's .prettierignore skips *.lasp.
  const prettierCli = (args: string[]): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, [join(root, "node_modules", "prettier", "bin", "prettier.cjs"), ...args], {
      cwd: dir,
      encoding: "utf8",
    });

  it("formats a file with `prettier --plugin ... --write`", () => {
    const file = join(dir, "messy.lasp");
    writeFileSync(file, MESSY);
    const check = prettierCli(["--plugin", pluginPath, "--check", "messy.lasp"]);
    expect(check.status).toBe(1);
    const write = prettierCli(["--plugin", pluginPath, "--write", "messy.lasp"]);
    expect(write.stderr).toBe("");
    expect(write.status).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(expected(MESSY));
    expect(prettierCli(["--plugin", pluginPath, "--check", "messy.lasp"]).status).toBe(0);
  });

  it("reports a syntax error and leaves the file alone", () => {
    const file = join(dir, "broken.lasp");
    writeFileSync(file, "run { seq_len }\n");
    const run = prettierCli(["--plugin", pluginPath, "--write", "broken.lasp"]);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("expected a value");
    expect(readFileSync(file, "utf8")).toBe("run { seq_len }\n");
  });
});
