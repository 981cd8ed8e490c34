// The command line through `main(argv, io)`, with captured output, and the real binary once.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../src/cli/main.js";
import type { CliIo } from "../src/cli/io.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const example = (name: string): string => join(root, "examples", name);
const ESC = "\u001b[";

interface Run {
  exit: number;
  stdout: string;
  stderr: string;
}

async function lasp(argv: string[], color = false): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), color };
  const exit = await main(argv, io);
  return { exit, stdout, stderr };
}

let dir = "";
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

const GOOD = `model m {
  vocab 512  hidden 256  ffn 512  heads 4
  layer L = linear_attention { }
  stack L x 2
}
run { seq_len 1K }
`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "lasp-cli-test-"));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("lasp check", () => {
  it("prints `ok FILE` and exits 0 for a good spec", async () => {
    const path = example("tiny-linear.lasp");
    const run = await lasp(["check", path]);
    expect(run.exit).toBe(0);
    // The program runs the whole model: vocab, ffn and the norm all take effect, nothing to warn about.
    expect(run.stdout).toBe(`ok ${path}\n`);
    expect(run.stderr).toBe("");
  });

  it("checks every example", async () => {
    const paths = ["tiny-linear.lasp", "tiny-hybrid.lasp", "linear-llama3-1b-hybrid.lasp"].map(example);
    const run = await lasp(["check", ...paths]);
    expect(run.exit).toBe(0);
    // The hybrids warn (W0613) until LASP-2H's gathered call has run on several GPUs.
    const warned = (p: string) => (p.includes("hybrid") ? " (1 warning)" : "");
    expect(run.stdout).toBe(paths.map((p) => `ok ${p}${warned(p)}\n`).join(""));
    expect(run.stderr.match(/warning\[W0613\]: `softmax allgather`/g)).toHaveLength(2);
  });

  it("prints diagnostics to stderr and exits 1 for a bad spec", async () => {
    const path = file("bad.lasp", GOOD.replace("hidden 256", "hiden 256"));
    const run = await lasp(["check", path]);
    expect(run.exit).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain(`${path}:2:`);
    expect(run.stderr).toContain("error[E0303]: unknown key `hiden` in the `model` block");
    expect(run.stderr).toContain("did you mean `hidden`?");
    expect(run.stderr).not.toContain(ESC);
  });

  it("counts warnings but exits 0", async () => {
    const path = file("warn.lasp", GOOD.replace("stack L", "layer S = softmax_attention { }\n  stack L"));
    const run = await lasp(["check", path]);
    expect(run.exit).toBe(0);
    expect(run.stdout).toBe(`ok ${path} (1 warning)\n`);
    expect(run.stderr).toContain("warning[W0601]");
  });

  it("reports a missing file clearly and exits 2", async () => {
    const path = join(dir, "does-not-exist.lasp");
    const run = await lasp(["check", path]);
    expect(run.exit).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toBe(`lasp: cannot read ${path}: no such file\n`);
  });

  it("reports a directory clearly and exits 2", async () => {
    const run = await lasp(["check", dir]);
    expect(run.exit).toBe(2);
    expect(run.stderr).toContain(`cannot read ${dir}: it is a folder, not a spec file`);
  });

  it("reports a binary file as not text", async () => {
    const path = join(dir, "binary.lasp");
    writeFileSync(path, new Uint8Array([0x6d, 0x00, 0x01, 0xff]));
    const run = await lasp(["check", path]);
    expect(run.exit).toBe(1);
    expect(run.stderr).toContain("error[E0105]");
  });

  it("reports every file's independent errors in one run", async () => {
    const first = file(
      "first.lasp",
      GOOD.replace("hidden 256", "hidden 256  norm rmsnorm").replace("seq_len 1K", "seq_len 1K  dtype bf17"),
    );
    const second = file("second.lasp", GOOD.replace("heads 4", "heads 4  heads 8"));
    const good = file("good.lasp", GOOD);
    const run = await lasp(["check", first, good, second]);
    expect(run.exit).toBe(1);
    expect(run.stdout).toBe(`ok ${good}\n`);
    expect(run.stderr).toContain(`${first}:2:`);
    expect(run.stderr).toContain("`rmsnorm` is not a valid `norm`");
    expect(run.stderr).toContain(`${first}:6:`);
    expect(run.stderr).toContain("`bf17` is not a valid `dtype`");
    expect(run.stderr).toContain(`${second}:2:`);
    expect(run.stderr).toContain("`heads` is given twice in the `model` block");
    // In the order given on the command line.
    expect(run.stderr.indexOf(first)).toBeLessThan(run.stderr.indexOf(second));
  });

  it("a missing file among bad ones still exits 2, and the others are still checked", async () => {
    const bad = file("bad2.lasp", GOOD.replace("ffn 512", "ffn 0"));
    const run = await lasp(["check", join(dir, "nope.lasp"), bad]);
    expect(run.exit).toBe(2);
    expect(run.stderr).toContain("no such file");
    expect(run.stderr).toContain("error[E0402]");
  });

  it("colours diagnostics only when io.color is true", async () => {
    const path = file("colour.lasp", GOOD.replace("heads 4", "heads 4.5"));
    const plain = await lasp(["check", path], false);
    const coloured = await lasp(["check", path], true);
    expect(plain.exit).toBe(1);
    expect(coloured.exit).toBe(1);
    expect(plain.stderr).not.toContain(ESC);
    expect(coloured.stderr).toContain(ESC);
    expect(coloured.stderr.replace(/\u001b\[[0-9;]*m/g, "")).toBe(plain.stderr);
  });

  it("never colours `ok` lines", async () => {
    const run = await lasp(["check", example("tiny-linear.lasp")], true);
    expect(run.stdout).not.toContain(ESC);
  });
});

describe("usage", () => {
  it("with no arguments prints help and exits 2", async () => {
    const run = await lasp([]);
    expect(run.exit).toBe(2);
    expect(run.stdout + run.stderr).toContain("Usage: lasp");
  });

  it("an unknown option exits 2 and points at --help", async () => {
    const run = await lasp(["--frobnicate"]);
    expect(run.exit).toBe(2);
    expect(run.stderr).toContain("unknown option '--frobnicate'");
    expect(run.stderr).toContain("lasp --help");
  });

  it("an unknown option of check exits 2", async () => {
    const run = await lasp(["check", "--frobnicate", example("tiny-linear.lasp")]);
    expect(run.exit).toBe(2);
    expect(run.stderr).toContain("unknown option '--frobnicate'");
  });

  it("an unknown command exits 2", async () => {
    const run = await lasp(["frobnicate"]);
    expect(run.exit).toBe(2);
    expect(run.stderr).toContain("unknown command 'frobnicate'");
  });

  it("a command's usage error points to that command's help, exit 2", async () => {
    const run = await lasp(["tokens", "README.md"]);
    expect(run.exit).toBe(2);
    expect(run.stderr).toContain(
      "required option '-o, --out <file>' not specified\n(run `lasp help tokens` for usage)",
    );
    const unknown = await lasp(["frobnicate"]);
    expect(unknown.stderr).toContain("(run `lasp --help` for usage)");
  });

  it("help for an unknown command says it is unknown, not the whole help, and exits 2", async () => {
    const run = await lasp(["help", "frobnicate"]);
    expect(run.exit).toBe(2);
    expect(run.stderr).toContain("unknown command 'frobnicate'");
    expect(run.stderr).not.toContain("Usage:");
    const known = await lasp(["help", "check"]);
    expect(known.exit).toBe(0);
    expect(known.stdout).toContain("Usage: lasp check");
  });

  it("check without files exits 2", async () => {
    const run = await lasp(["check"]);
    expect(run.exit).toBe(2);
    expect(run.stderr).toContain("missing required argument");
  });

  it.each([["--version"], ["-V"]])("%s prints the package.json version", async (flag) => {
    const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
    const run = await lasp([flag]);
    expect(run).toEqual({ exit: 0, stdout: `${version}\n`, stderr: "" });
  });

  it("--help mentions examples and exit codes", async () => {
    const run = await lasp(["--help"]);
    expect(run.exit).toBe(0);
    expect(run.stdout).toContain("Examples:");
    expect(run.stdout).toContain("lasp check examples/");
    expect(run.stdout).toContain("Exit codes");
    expect(run.stdout).toContain("NO_COLOR");
  });
});

describe("--lasp2: LASP-2's arrangement", () => {
  const spec = () =>
    file(
      "two.lasp",
      `model m { vocab 64 hidden 256 ffn 64 heads 4 head_dim 64
  layer L = linear_attention { decay 0.9 }
  stack L x 1 }
parallel { gpus 2 linear lasp2 }
run { seq_len 2K }
`,
    );

  it("inspect shows the fused arrangement by default and the split one when asked", async () => {
    const fused = await lasp(["inspect", spec(), "--rank", "1"]);
    expect(fused.exit).toBe(0);
    expect(fused.stdout).toContain("Q = X Wq (the layer's projection)");
    expect(fused.stdout).not.toContain("O[1] += lam^(i+1) Q P");
    const split = await lasp(["inspect", spec(), "--rank", "1", "--lasp2", "split"]);
    expect(split.exit).toBe(0);
    expect(split.stdout).toContain("O[1] += lam^(i+1) Q P");
    expect(split.stdout).not.toContain("Q = X Wq");
  });

  it("compile writes the split program's inter calls, and verify checks it exactly", async () => {
    const out = join(dir, "split-program");
    const compiled = await lasp(["compile", spec(), "-o", out, "--lasp2", "split"]);
    expect(compiled.exit).toBe(0);
    const cuh = readFileSync(join(out, "lasp", "program.cuh"), "utf8");
    expect(cuh).toContain("lasp::linear_inter(");
    expect(cuh).not.toContain("run_host(run, HostWork");
    const verified = await lasp(["verify", spec(), "--lasp2", "split"]);
    expect(verified.exit).toBe(0);
    expect(verified.stdout).toMatch(/^ok: max relative error/m);
  });

  it("any other value is a usage error that names the choices, and nothing is written", async () => {
    const out = join(dir, "never-written");
    for (const command of [["inspect"], ["verify"], ["compile", "-o", out]]) {
      const run = await lasp([command[0]!, spec(), ...command.slice(1), "--lasp2", "fast"]);
      expect(run.exit).toBe(2);
      expect(run.stderr).toContain("--lasp2 must be fused or split, got fast");
    }
    expect(existsSync(out)).toBe(false);
  });
});

describe("the real binary", () => {
  beforeAll(() => {
    if (!existsSync(join(root, "dist", "src", "cli", "main.js"))) {
      execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });
    }
  }, 180_000);

  const bin = (args: string[]) => {
    // FORCE_COLOR (vitest may set it) would make node warn that it overrides NO_COLOR.
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
    delete env["FORCE_COLOR"];
    return spawnSync(process.execPath, [join(root, "bin", "lasp.js"), ...args], {
      cwd: root,
      env,
      encoding: "utf8",
    });
  };

  it("checks an example, exit 0", () => {
    const run = bin(["check", "examples/tiny-linear.lasp"]);
    expect(run.stderr).toBe("");
    expect(run.stdout).toBe("ok examples/tiny-linear.lasp\n");
    expect(run.status).toBe(0);
  });

  it("reports a bad spec without colour under NO_COLOR, exit 1", () => {
    const path = file("bin-bad.lasp", GOOD.replace("ffn 512", "ffn 512.5"));
    const run = bin(["check", path]);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("error[E0403]");
    expect(run.stderr).not.toContain(ESC);
  });

  it("stops quietly when the reader closes the pipe early (`lasp inspect ... | head`)", () => {
    // `head -c 1` reads one byte and exits while lasp still writes the rest of a long schedule.
    const run = spawnSync(
      "sh",
      [
        "-c",
        `"${process.execPath}" bin/lasp.js inspect examples/linear-llama3-8b-hybrid.lasp --json | head -c 1`,
      ],
      { cwd: root, encoding: "utf8" },
    );
    expect(run.stdout).toBe("{");
    expect(run.stderr).not.toMatch(/EPIPE|Error|at /);
    expect(run.status).toBe(0);
  });
});

describe("output fits the terminal, and flags read numbers as specs do", () => {
  /** Runs lasp with COLUMNS set (or unset), restoring it after. */
  async function withColumns(columns: string | undefined, argv: string[]): Promise<Run> {
    const saved = process.env["COLUMNS"];
    if (columns === undefined) delete process.env["COLUMNS"];
    else process.env["COLUMNS"] = columns;
    try {
      return await lasp(argv);
    } finally {
      if (saved === undefined) delete process.env["COLUMNS"];
      else process.env["COLUMNS"] = saved;
    }
  }
  const widest = (text: string): number => Math.max(...text.split("\n").map((l) => [...l].length));

  for (const columns of [undefined, "80"]) {
    const limit = columns === undefined ? 100 : Number(columns);
    it(`inspect's text has no line over ${limit} columns with COLUMNS ${columns ?? "unset"}`, async () => {
      for (const spec of [
        "linear-llama3-1b-hybrid.lasp",
        "tiny-baselines.lasp",
        "linear-llama3-8b-hybrid.lasp",
      ]) {
        const run = await withColumns(columns, ["inspect", example(spec), "--rank", "1"]);
        expect(run.exit).toBe(0);
        expect(widest(run.stdout), spec).toBeLessThanOrEqual(limit);
        // Wrapping keeps every table: the predictions and the weight-gradient sums are still there.
        expect(run.stdout).toContain("Predicted per layer");
        expect(run.stdout).toContain("weight-gradient sum");
      }
    });

    it(`--help has no line over ${limit} columns with COLUMNS ${columns ?? "unset"}`, async () => {
      for (const argv of [["--help"], ["inspect", "--help"], ["verify", "--help"], ["run", "--help"]]) {
        const run = await withColumns(columns, argv);
        expect(run.exit).toBe(0);
        expect(widest(run.stdout), argv.join(" ")).toBeLessThanOrEqual(limit);
      }
      // Every command's help, whoever wrote it, stays within 100 columns.
      for (const command of ["check", "fmt", "compile", "tokens", "calibrate"]) {
        const run = await withColumns(columns, [command, "--help"]);
        expect(widest(run.stdout), command).toBeLessThanOrEqual(100);
      }
    });
  }

  it("verify accepts --seq-len 1K as a spec's seq_len 1K", async () => {
    const run = await lasp(["verify", example("tiny-hybrid.lasp"), "--seq-len", "1K"]);
    expect(run.exit).toBe(0);
    expect(run.stdout).toContain("seq_len 1024");
    // Every column of the table has a name, the verdict's too.
    expect(run.stdout).toMatch(/layer kind\s+type\s+strategy\s+o\s+dq\s+dk\s+dv\s+result\n/);
  });

  it("verify reads --seq-len 512K as 524288 tokens (and then checks it against the oracle's limit)", async () => {
    // 524288 tokens are more than the dense oracle runs in minutes: the flag itself was read.
    const run = await lasp(["verify", example("tiny-hybrid.lasp"), "--seq-len", "512K"]);
    expect(run.exit).toBe(2);
    expect(run.stderr).toContain("--seq-len 524288 is more than the float64 oracle runs in minutes");
    expect(run.stderr).not.toContain("must be a whole number");
  });

  it("verify refuses a number a spec would not accept, with exit 2 and the forms that work", async () => {
    for (const bad of ["512Q", "-512", "0x200"]) {
      const run = await lasp(["verify", example("tiny-hybrid.lasp"), "--seq-len", bad]);
      expect(run.exit, bad).toBe(2);
      expect(run.stdout).toBe("");
      expect(run.stderr).toContain(`lasp: --seq-len must be a whole number of at least 1, got ${bad}`);
      expect(run.stderr).toContain("512K");
      expect(run.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
