// The cache that compiles each translation unit of the nvcc tests once (test/nvcc-cache.ts), driven by a
// stand-in compiler that counts its runs, so these tests need no CUDA toolkit and run in `npm run test:fast`.
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { createNvcc, pruneNvccCache } from "./nvcc-cache.js";
import { detectNvcc, nvccSkippedByEnv } from "./nvcc-toolchain.js";

// Logs each run beside itself; fails like nvcc when the folder has a fail.cu; otherwise writes -o's file
// (the sources concatenated, executable) and a remark on stderr.
const STAND_IN = `#!/bin/sh
echo run >> "$(dirname "$0")/runs"
out=""; prev=""
for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
if [ -f fail.cu ]; then echo "fail.cu(1): error: identifier is undefined" >&2; exit 2; fi
echo "remark: compiled $*" >&2
if [ -n "$out" ]; then cat *.cu > "$out"; chmod +x "$out"; fi
`;

let base = "";
let compiler = "";
let cacheRoot = "";
const runs = (): number =>
  existsSync(join(base, "runs")) ? readFileSync(join(base, "runs"), "utf8").split("\n").length - 1 : 0;
const runner = () => createNvcc({ command: compiler, cacheRoot, versions: () => "stand-in 1.0" });

/** A new folder holding FILES, as a test writes a generated program before compiling it. */
function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(base, "tu-"));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), "lasp-nvcc-cache-"));
  compiler = join(base, "nvcc");
  writeFileSync(compiler, STAND_IN);
  chmodSync(compiler, 0o755);
  cacheRoot = join(base, "cache");
});

const PROGRAM = { "t.cu": "int main() { return 0; }\n", "lasp/comm.cuh": "// comm\n" };

describe("the nvcc cache of the tests", () => {
  it("compiles a translation unit once: the same files and flags later replay its output and stderr", async () => {
    const first = await runner()(folder(PROGRAM), ["-I.", "t.cu", "-o", "t"], { outputs: ["t"] });
    expect(first).toEqual({ status: 0, stderr: "remark: compiled -I. t.cu -o t\n", cached: false });
    // A later run (a new process: nothing shared but the cache folder), another temporary folder.
    const dir = folder(PROGRAM);
    const again = await runner()(dir, ["-I.", "t.cu", "-o", "t"], { outputs: ["t"] });
    expect(again).toEqual({ ...first, cached: true });
    expect(runs()).toBe(1);
    expect(readFileSync(join(dir, "t"), "utf8")).toBe(PROGRAM["t.cu"]);
    expect(statSync(join(dir, "t")).mode & 0o111).not.toBe(0);
  });

  it("compiles again when a file of the folder, a file of an include folder outside it, or a flag changes", async () => {
    const include = folder({ "nccl.h": "// v1\n" });
    const args = ["-I.", `-I${include}`, "t.cu", "-o", "t"];
    await runner()(folder(PROGRAM), args);
    await runner()(folder({ ...PROGRAM, "lasp/comm.cuh": "// comm, changed\n" }), args);
    expect(runs()).toBe(2);
    writeFileSync(join(include, "nccl.h"), "// v2\n");
    await runner()(folder(PROGRAM), args);
    expect(runs()).toBe(3);
    await runner()(folder(PROGRAM), ["-DNDEBUG", ...args]);
    expect(runs()).toBe(4);
    await runner()(folder(PROGRAM), args);
    expect(runs()).toBe(4);
  });

  it("never stores a failure: it is compiled and reported every time", async () => {
    const broken = { ...PROGRAM, "fail.cu": "int x = y;\n" };
    for (const expected of [1, 2]) {
      const result = await runner()(folder(broken), ["t.cu", "-o", "t"]);
      expect(result.status).toBe(2);
      expect(result.stderr).toContain("error: identifier is undefined");
      expect(result.cached).toBe(false);
      expect(runs()).toBe(expected);
    }
  });

  it("runs one compile for two tests that ask for the same one at once, and gives both its outputs", async () => {
    const nvcc = runner();
    const dirs = [folder(PROGRAM), folder(PROGRAM)];
    const results = await Promise.all(dirs.map((dir) => nvcc(dir, ["t.cu", "-o", "t"], { outputs: ["t"] })));
    expect(runs()).toBe(1);
    expect(results.map((result) => result.status)).toEqual([0, 0]);
    for (const dir of dirs) expect(readFileSync(join(dir, "t"), "utf8")).toBe(PROGRAM["t.cu"]);
  });

  it("drops entries no run has used for 14 days, and keeps the others", async () => {
    await runner()(folder(PROGRAM), ["t.cu", "-o", "a"]);
    await runner()(folder(PROGRAM), ["t.cu", "-o", "b"]);
    const [old, recent] = readdirSorted(cacheRoot);
    const longAgo = new Date(Date.now() - 15 * 86_400_000);
    utimesSync(join(cacheRoot, old!, "result.json"), longAgo, longAgo);
    pruneNvccCache(cacheRoot, 14);
    expect(readdirSorted(cacheRoot)).toEqual([recent]);
  });
});

function readdirSorted(dir: string): string[] {
  return readdirSync(dir).sort();
}

describe("whether the nvcc tests run", () => {
  it("are skipped, saying why, under LASP_SKIP_NVCC=1 (npm run test:fast), and run when it is empty or 0", () => {
    const skipped = detectNvcc({ ...process.env, LASP_SKIP_NVCC: "1" });
    expect(skipped.available).toBe(false);
    expect(skipped.reason).toContain("LASP_SKIP_NVCC");
    expect(nvccSkippedByEnv({ LASP_SKIP_NVCC: "0" })).toBe(false);
    expect(nvccSkippedByEnv({ LASP_SKIP_NVCC: "" })).toBe(false);
    expect(nvccSkippedByEnv({})).toBe(false);
  });

  it("are skipped where nvcc is not on PATH", () => {
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: mkdtempSync(join(tmpdir(), "lasp-no-nvcc-")) };
    delete env["LASP_SKIP_NVCC"];
    const nowhere = detectNvcc(env);
    expect(nowhere).toEqual({ available: false, reason: "nvcc not found on PATH", versions: "" });
  });
});
