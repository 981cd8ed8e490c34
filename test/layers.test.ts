// The compiler's layering (shared/docs/DESIGN.md): data flows one way, from spec to program, and so do
// imports. Each folder of src/ sits on a floor; a module may import its own floor and the floors below,
// never one above, and no chain of imports (type-only ones included) comes back to where it started.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const FLOORS: string[][] = [
  ["ast", "spec", "diagnostics", "syntax", "io", "text", "grammar", "data"],
  ["check", "format"],
  ["schedule", "reference", "model"],
  ["verify", "cost", "inspect", "codegen", "plan"],
  ["toolchain", "calibrate"],
  ["cli", "grammar-docs"],
];

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");

/** Source files of the compiler (tests excluded: they may reach anywhere). */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "fixtures" ? [] : sources(path);
    return /\.ts$/.test(entry.name) && !/\.test\.ts$|test-[\w-]+\.ts$/.test(entry.name) ? [path] : [];
  });
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"|import\(\s*"(\.[^"]+)"\s*\)/g;

/** Every relative import of every source file, resolved to a file path relative to the root. */
function importGraph(): Map<string, string[]> {
  const files = [...sources(join(root, "src")), ...sources(join(root, "grammar"))];
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    const targets = [...text.matchAll(IMPORT)].map((m) =>
      relative(root, resolve(dirname(file), (m[1] ?? m[2])!)).replace(/\.js$/, ".ts"),
    );
    graph.set(relative(root, file), targets);
  }
  return graph;
}

/** The folder a file belongs to: `src/<folder>/...` or `grammar`. */
const folderOf = (file: string): string => (file.startsWith("grammar/") ? "grammar" : file.split("/")[1]!);
const floorOf = (folder: string): number => FLOORS.findIndex((floor) => floor.includes(folder));

/** Import chains that come back to their start (one per strongly connected component, Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe("the import graph", () => {
  const graph = importGraph();

  it("sees the compiler's modules and their imports", () => {
    expect(graph.size).toBeGreaterThan(50);
    expect(graph.get("src/cli/main.ts")?.length).toBeGreaterThan(3);
  });

  it("puts every folder of src/ on a floor", () => {
    const folders = [...new Set([...graph.keys()].map(folderOf))];
    expect(folders.filter((f) => floorOf(f) < 0)).toEqual([]);
  });

  it("never imports from a floor above", () => {
    const upward: string[] = [];
    for (const [file, targets] of graph) {
      for (const target of targets) {
        if (floorOf(folderOf(target)) > floorOf(folderOf(file))) upward.push(`${file} -> ${target}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it("has no import circle, type-only imports included", () => {
    expect(cycles(graph)).toEqual([]);
  });

  it("finds a circle and an upward import when there is one (the checks can fail)", () => {
    const planted = new Map([
      ["src/check/a.ts", ["src/check/b.ts"]],
      ["src/check/b.ts", ["src/check/a.ts", "src/cli/main.ts"]],
      ["src/cli/main.ts", []],
    ]);
    expect(cycles(planted)).toEqual([["src/check/a.ts", "src/check/b.ts"]]);
    expect(floorOf(folderOf("src/cli/main.ts"))).toBeGreaterThan(floorOf(folderOf("src/check/b.ts")));
  });
});
