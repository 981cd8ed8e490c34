// `lasp fmt` through `main(argv, io)`, with captured output.
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CliIo } from "../src/cli/io.js";
import { main } from "../src/cli/main.js";

interface Run {
  exit: number;
  stdout: string;
  stderr: string;
}

async function lasp(argv: string[]): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), color: false };
  const exit = await main(argv, io);
  return { exit, stdout, stderr };
}

const FORMATTED = `// a spec
model m {
  vocab 512  hidden 256  ffn 512  heads 4 // sizes
  layer L = linear_attention { }
  stack L x 2
}

run {
  seq_len 1K
}
`;
const MESSY =
  "// a spec\nmodel m { vocab 512 hidden 256 ffn 512 heads 4 // sizes\n layer L=linear_attention{} stack L x 2 }\nrun{ seq_len 1K }";
const BROKEN = "model m {\n  vocab 512\n  hidden\n}\n";

let dir = "";
let count = 0;
const file = (text: string | Buffer): string => {
  const path = join(dir, `spec-${++count}.lasp`);
  writeFileSync(path, text);
  return path;
};
const read = (path: string): string => readFileSync(path, "utf8");

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "lasp-fmt-test-"));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("lasp fmt", () => {
  it("rewrites unformatted files in place and prints which changed", async () => {
    const messy = file(MESSY);
    const tidy = file(FORMATTED);
    const before = statSync(tidy).mtimeMs;
    const run = await lasp(["fmt", messy, tidy]);
    expect(run).toEqual({ exit: 0, stdout: `formatted ${messy}\n`, stderr: "" });
    expect(read(messy)).toBe(FORMATTED);
    expect(read(tidy)).toBe(FORMATTED);
    expect(statSync(tidy).mtimeMs).toBe(before);
  });

  it("is a no-op the second time", async () => {
    const messy = file(MESSY);
    await lasp(["fmt", messy]);
    expect(await lasp(["fmt", messy])).toEqual({ exit: 0, stdout: "", stderr: "" });
  });

  it("formats files with semantic errors (only syntax matters)", async () => {
    const path = file("run{hiden 3}");
    const run = await lasp(["fmt", path]);
    expect(run.exit).toBe(0);
    expect(read(path)).toBe("run {\n  hiden 3\n}\n");
  });

  it("counts CRLF line ends and a byte-order mark as unformatted", async () => {
    const crlf = file(FORMATTED.replace(/\n/g, "\r\n"));
    const bom = file(`\uFEFF${FORMATTED}`);
    expect((await lasp(["fmt", "--check", crlf, bom])).stdout).toBe(`${crlf}\n${bom}\n`);
    await lasp(["fmt", crlf, bom]);
    expect(read(crlf)).toBe(FORMATTED);
    expect(read(bom)).toBe(FORMATTED);
  });
});

describe("lasp fmt --check", () => {
  it("exits 0 and prints nothing when every file is formatted", async () => {
    expect(await lasp(["fmt", "--check", file(FORMATTED), file(FORMATTED)])).toEqual({
      exit: 0,
      stdout: "",
      stderr: "",
    });
  });

  it("lists the unformatted files, exits 1 and changes nothing", async () => {
    const messy = file(MESSY);
    const tidy = file(FORMATTED);
    const run = await lasp(["fmt", "--check", messy, tidy]);
    expect(run.exit).toBe(1);
    expect(run.stdout).toBe(`${messy}\n`);
    expect(run.stderr).toContain("1 file is not formatted");
    expect(read(messy)).toBe(MESSY);
  });
});

describe("lasp fmt on files it cannot format", () => {
  it("prints a syntax error exactly as `lasp check` does, leaves the file untouched, exits 1", async () => {
    const broken = file(BROKEN);
    const fmt = await lasp(["fmt", broken]);
    const check = await lasp(["check", broken]);
    expect(fmt.exit).toBe(1);
    expect(fmt.stdout).toBe("");
    expect(fmt.stderr).toBe(check.stderr);
    expect(fmt.stderr).toContain(
      `${broken}:4:1: error[E0201]: expected a value for \`hidden\` but found \`}\``,
    );
    expect(read(broken)).toBe(BROKEN);
    expect((await lasp(["fmt", "--check", broken])).stderr).toBe(check.stderr);
  });

  it("still formats the other files", async () => {
    const broken = file(BROKEN);
    const messy = file(MESSY);
    const run = await lasp(["fmt", broken, messy]);
    expect(run.exit).toBe(1);
    expect(run.stdout).toBe(`formatted ${messy}\n`);
    expect(read(messy)).toBe(FORMATTED);
    expect(read(broken)).toBe(BROKEN);
  });

  it("reports a file that is not text as `lasp check` does", async () => {
    const binary = file(Buffer.from([0x6d, 0x00, 0xff]));
    const fmt = await lasp(["fmt", binary]);
    expect(fmt.exit).toBe(1);
    expect(fmt.stderr).toBe((await lasp(["check", binary])).stderr);
  });

  it("exits 2 for a missing file or a directory, after formatting the rest", async () => {
    const messy = file(MESSY);
    const missing = join(dir, "missing.lasp");
    const run = await lasp(["fmt", missing, dir, messy]);
    expect(run.exit).toBe(2);
    expect(run.stderr).toContain(`lasp: cannot read ${missing}: no such file`);
    expect(run.stderr).toContain(`lasp: cannot read ${dir}: it is a folder, not a spec file`);
    expect(read(messy)).toBe(FORMATTED);
  });

  it("exits 2 when a file is readable but not writable", async () => {
    if (process.getuid?.() === 0) return; // root writes anyway
    const messy = file(MESSY);
    chmodSync(messy, 0o444);
    const run = await lasp(["fmt", messy]);
    expect(run.exit).toBe(2);
    expect(run.stderr).toContain(`lasp: cannot write ${messy}: not writable (permission denied)`);
    expect(read(messy)).toBe(MESSY);
  });

  it("exits 2 without files", async () => {
    expect((await lasp(["fmt"])).exit).toBe(2);
  });
});

describe("lasp --help", () => {
  it("lists fmt", async () => {
    const run = await lasp(["--help"]);
    expect(run.stdout).toContain("fmt [options] <files...>");
    expect(run.stdout).toContain("lasp fmt --check examples/*.lasp");
  });
});
