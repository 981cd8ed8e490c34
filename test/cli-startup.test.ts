// What each command loads at start (bin/lasp.js, so the built dist/): `lasp --version` and `--help` load
// none of the heavy packages, and `lasp check` only the parser's, so that each command starts in the time its
// own work needs (bench/results/2026-12-05-cli-startup.md). A module-resolution hook records every module.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;

/** Runs `lasp ARGS` and returns its output and the packages and compiler folders of the modules it loaded. */
function loads(args: string[]): { stdout: string; status: number | null; modules: string[]; urls: string[] } {
  const trace = join(mkdtempSync(join(tmpdir(), "lasp-startup-")), "modules.txt");
  const run = spawnSync(
    process.execPath,
    ["--import", join(root, "test", "module-trace", "register.mjs"), join(root, "bin", "lasp.js"), ...args],
    { cwd: root, encoding: "utf8", env: { ...process.env, LASP_MODULE_TRACE: trace, NO_COLOR: "1" } },
  );
  const urls = readFileSync(trace, "utf8").split("\n").filter(Boolean);
  // "node_modules/chevrotain" for a package, "dist/src/codegen" for one of lasp's passes.
  const names = urls.map(
    (url) => url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)|dist\/((?:src\/)?[^/]+)/)?.[0],
  );
  const modules = [...new Set(names.filter((name): name is string => name !== undefined))].sort();
  return { stdout: run.stdout, status: run.status, modules, urls };
}

const HEAVY = [
  "node_modules/chevrotain",
  "node_modules/execa",
  "node_modules/prettier",
  "node_modules/handlebars",
];

describe("starting lasp", () => {
  it("prints the version having loaded only the command line (no parser, generator or toolchain)", () => {
    const run = loads(["--version"]);
    expect(run.stdout).toBe(`${version}\n`);
    expect(run.status).toBe(0);
    for (const heavy of HEAVY) expect(run.modules).not.toContain(heavy);
    expect(run.modules).not.toContain("dist/grammar");
    expect(run.modules).not.toContain("dist/src/codegen");
    expect(run.modules).not.toContain("dist/src/schedule");
    expect(run.modules).toContain("node_modules/commander");
  });

  it("prints the help, every command's included, having loaded none of the heavy packages", () => {
    const run = loads(["--help"]);
    expect(run.stdout).toContain("Usage: lasp");
    expect(run.stdout).toMatch(/^ {2}run /m);
    expect(run.status).toBe(0);
    for (const heavy of HEAVY) expect(run.modules).not.toContain(heavy);
  });

  it("checks a spec with the parser loaded, but no code generator, toolchain or formatter", () => {
    const run = loads(["check", "examples/tiny-linear.lasp"]);
    expect(run.stdout).toMatch(/^ok examples\/tiny-linear\.lasp/);
    expect(run.status).toBe(0);
    // The trace sees what a command loads: check needs chevrotain.
    expect(run.modules).toContain("node_modules/chevrotain");
    // From its single-file build (grammar/chevrotain.ts): the entry is only resolved, to find the bundle,
    // and none of the ~700 modules behind it (its sources, lodash-es) is loaded.
    const chevrotain = run.urls.filter((url) => url.includes("node_modules/chevrotain/"));
    expect(chevrotain).toContainEqual(
      expect.stringMatching(/node_modules\/chevrotain\/lib\/chevrotain\.mjs$/),
    );
    expect(chevrotain.length).toBeLessThanOrEqual(2);
    expect(run.modules).not.toContain("node_modules/lodash-es");
    for (const heavy of HEAVY.slice(1)) expect(run.modules).not.toContain(heavy);
  });
});
