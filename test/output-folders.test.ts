// How the commands that write treat the paths they are given: `lasp compile -o` owns only what it wrote
// (src/io/owned-folder.ts), `inspect --svg` and `plan --svg` replace one picture lasp wrote whole, `fmt` one
// spec. Through `main(argv, io)`, and through the real binary as an unprivileged user where a read-only folder
// must be real.
import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { main } from "../src/cli/main.js";
import { captureIo } from "../src/cli/test-io.js";
import { MANIFEST } from "../src/io/owned-folder.js";

const root = resolve(import.meta.dirname, "..");
const SPEC = "examples/tiny-linear.lasp";
const isRoot = process.getuid?.() === 0;
const read = (path: string): string => readFileSync(path, "utf8");
const folder = (): string => mkdtempSync(join(tmpdir(), "lasp-out-"));
/** The smallest picture `--svg` takes for one lasp wrote: the root element's mark (src/inspect/svg.ts). */
const OLD_PICTURE = `<svg xmlns="http://www.w3.org/2000/svg" data-written-by="lasp inspect"><title>old</title></svg>\n`;

async function lasp(...argv: string[]) {
  const io = captureIo();
  const exit = await main(argv, io);
  return { exit, out: io.out, err: io.err };
}

describe("lasp compile -o", () => {
  it("refuses an existing file, exit 2, and leaves the file as it was", async () => {
    const file = join(folder(), "notes.txt");
    writeFileSync(file, "keep me");
    const run = await lasp("compile", SPEC, "-o", file);
    expect(run.exit).toBe(2);
    expect(run.err).toContain(`lasp: cannot write the program to ${file}: ${file} is a file, not a folder`);
    expect(read(file)).toBe("keep me");
  });

  it("calls a link to nothing a link, not a file, exit 2", async () => {
    const dir = folder();
    const link = join(dir, "out");
    symlinkSync(join(dir, "missing", "place"), link);
    const run = await lasp("compile", SPEC, "-o", link);
    expect(run.exit).toBe(2);
    expect(run.err).toContain(
      `lasp: cannot write the program to ${link}: ${link} is a link to nothing, not a folder`,
    );
  });

  it("refuses an empty path, exit 2, writing nothing", async () => {
    const run = await lasp("compile", SPEC, "-o", "");
    expect(run.exit).toBe(2);
    expect(run.err).toContain("-o names no folder (the path is empty)");
    expect(run.out).toBe("");
  });

  it("refuses a non-empty folder lasp did not write, exit 2; the user's files survive", async () => {
    const dir = folder();
    writeFileSync(join(dir, "README.md"), "the user's readme");
    const run = await lasp("compile", SPEC, "-o", dir);
    expect(run.exit).toBe(2);
    expect(run.err).toContain(`will not write into ${dir}: it is not empty and has no ${MANIFEST}`);
    expect(run.err).toContain("--force");
    expect(readdirSync(dir)).toEqual(["README.md"]);
    expect(read(join(dir, "README.md"))).toBe("the user's readme");
  });

  it("with --force writes into such a folder, replacing same-named files and deleting nothing else", async () => {
    const dir = folder();
    writeFileSync(join(dir, "README.md"), "the user's readme");
    writeFileSync(join(dir, "plan.txt"), "the user's plan");
    const run = await lasp("compile", SPEC, "-o", dir, "--force");
    expect(run.exit).toBe(0);
    expect(run.out).toContain("replaced (--force) files lasp had not written: README.md");
    expect(read(join(dir, "plan.txt"))).toBe("the user's plan");
    expect(read(join(dir, MANIFEST))).not.toContain("plan.txt");
  });

  it("recompiles into its own folder: replaces its files, removes what is no longer generated, keeps the rest", async () => {
    const dir = join(folder(), "out");
    expect((await lasp("compile", SPEC, "-o", dir)).exit).toBe(0);
    const mainCu = read(join(dir, "main.cu"));
    writeFileSync(join(dir, "main.cu"), "// edited");
    writeFileSync(join(dir, "NOTES.md"), "my notes");
    mkdirSync(join(dir, "build"));
    writeFileSync(join(dir, "build", "lasp_program"), "cmake's output");
    // A file an older lasp generated and this one does not.
    mkdirSync(join(dir, "old"));
    writeFileSync(join(dir, "old", "retired.cuh"), "from an older lasp");
    writeFileSync(join(dir, MANIFEST), `${read(join(dir, MANIFEST))}old/retired.cuh\n`);

    const run = await lasp("compile", SPEC, "-o", dir);
    expect(run.exit).toBe(0);
    expect(run.out).toContain("removed what the program no longer has: old/retired.cuh");
    expect(read(join(dir, "main.cu"))).toBe(mainCu);
    expect(existsSync(join(dir, "old"))).toBe(false);
    expect(read(join(dir, "NOTES.md"))).toBe("my notes");
    expect(read(join(dir, "build", "lasp_program"))).toBe("cmake's output");
    expect(statSync(join(dir, "build.sh")).mode & 0o100).toBe(0o100);
  });

  it("refuses a file where the program needs a folder (DIR/lasp), in words, in its own folder or with --force", async () => {
    const owned = join(folder(), "out");
    expect((await lasp("compile", SPEC, "-o", owned)).exit).toBe(0);
    rmSync(join(owned, "lasp"), { recursive: true });
    const other = folder();
    for (const [dir, force] of [
      [owned, []],
      [other, ["--force"]],
    ] as const) {
      writeFileSync(join(dir, "lasp"), "the user's file");
      const before = readdirSync(dir).sort();
      const run = await lasp("compile", SPEC, "-o", dir, ...force);
      expect(run.exit).toBe(2);
      expect(run.err).toBe(
        `lasp: cannot write the program to ${dir}: ${join(dir, "lasp")} is a file where the program needs a folder; move it away or name another folder with -o\n`,
      );
      expect(readdirSync(dir).sort()).toEqual(before);
      expect(read(join(dir, "lasp"))).toBe("the user's file");
    }
  });

  it("explains --force and the manifest in its --help", async () => {
    const run = await lasp("compile", "--help");
    expect(run.out).toContain("--force");
    expect(run.out).toContain(".lasp-manifest");
    expect(run.out.replace(/\s+/g, " ")).toContain("it never deletes a file lasp did not write");
  });
});

describe("lasp inspect --svg", () => {
  it("refuses a folder, exit 2, naming a file that would work", async () => {
    const dir = folder();
    const run = await lasp("inspect", SPEC, "--svg", dir);
    expect(run.exit).toBe(2);
    expect(run.err).toContain(
      `lasp: cannot write ${dir}: it is a folder, not a file; name a file, e.g. ${join(dir, "timeline.svg")}`,
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  it("refuses an empty path, exit 2", async () => {
    const run = await lasp("inspect", SPEC, "--svg", "");
    expect(run.exit).toBe(2);
    expect(run.err).toContain("the path is empty; name a file, e.g. timeline.svg");
  });

  it("replaces a picture lasp wrote whole, its own or plan's", async () => {
    const file = join(folder(), "t.svg");
    writeFileSync(file, OLD_PICTURE);
    expect((await lasp("inspect", SPEC, "--svg", file)).exit).toBe(0);
    const picture = read(file);
    expect(picture).toContain('data-written-by="lasp inspect"');
    expect(picture).not.toContain("<title>old</title>");
    expect((await lasp("plan", SPEC, "--svg", file)).exit).toBe(0);
    expect(read(file)).toContain('data-written-by="lasp plan"');
    expect((await lasp("inspect", SPEC, "--svg", file)).exit).toBe(0);
    expect(read(file)).toBe(picture);
  });

  it("refuses a file lasp did not write, exit 2, keeping it; --force replaces it", async () => {
    const dir = folder();
    // Text, an SVG from elsewhere, and one that only mentions the mark below its root element.
    const others = [
      "my notes\n",
      `<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>\n`,
      `<svg xmlns="http://www.w3.org/2000/svg"><desc>data-written-by="lasp inspect"</desc></svg>\n`,
    ];
    for (const [i, contents] of others.entries()) {
      const file = join(dir, `other-${i}.svg`);
      writeFileSync(file, contents);
      for (const command of ["inspect", "plan"]) {
        const run = await lasp(command, SPEC, "--svg", file);
        expect(run.exit).toBe(2);
        expect(run.err).toBe(
          `lasp: will not replace ${file}: it is not a picture lasp wrote; name another file, or add --force to replace it\n`,
        );
        expect(run.out).toBe("");
        expect(read(file)).toBe(contents);
      }
    }
    const file = join(dir, "other-0.svg");
    expect((await lasp("plan", SPEC, "--svg", file, "--force")).exit).toBe(0);
    expect(read(file)).toContain('data-written-by="lasp plan"');
    writeFileSync(file, "my notes\n");
    expect((await lasp("inspect", SPEC, "--svg", file, "--force")).exit).toBe(0);
    expect(read(file)).toContain('data-written-by="lasp inspect"');
    expect(readdirSync(dir).sort()).toEqual(["other-0.svg", "other-1.svg", "other-2.svg"]);
  });

  it("never replaces the spec it reads, however spelled, even with --force", async () => {
    const dir = folder();
    const spec = join(dir, "t.lasp");
    const text = read(SPEC);
    writeFileSync(spec, text);
    symlinkSync("t.lasp", join(dir, "link.svg"));
    const spellings = [spec, `${dir}/./t.lasp`, relative(process.cwd(), spec), join(dir, "link.svg")];
    for (const svg of spellings) {
      for (const force of [[], ["--force"]]) {
        const run = await lasp("inspect", spec, "--svg", svg, ...force);
        expect(run.exit).toBe(2);
        expect(run.err).toBe(
          `lasp: will not replace ${svg}: it is the spec being read (--force does not change that); name another file, e.g. timeline.svg\n`,
        );
        const planned = await lasp("plan", spec, "--svg", svg, ...force);
        expect(planned.exit).toBe(2);
        expect(planned.err).toContain("it is the spec being read (--force does not change that)");
        expect(planned.err).toContain("e.g. plan.svg");
      }
    }
    expect(read(spec)).toBe(text);
    expect(lstatSync(join(dir, "link.svg")).isSymbolicLink()).toBe(true);
  });

  it("lists --force in inspect's and plan's --help", async () => {
    for (const command of ["inspect", "plan"]) {
      const run = await lasp(command, "--help");
      expect(run.out).toContain("--force");
      expect(run.out.replace(/\s+/g, " ")).toContain("not a picture lasp wrote (never the spec)");
    }
  });
});

describe("lasp fmt", () => {
  it("keeps the file's mode and a symbolic link a link", async () => {
    const dir = folder();
    const spec = join(dir, "spec.lasp");
    writeFileSync(spec, "run{ seq_len 1K }");
    chmodSync(spec, 0o640);
    symlinkSync("spec.lasp", join(dir, "link.lasp"));
    const run = await lasp("fmt", join(dir, "link.lasp"));
    expect(run.exit).toBe(0);
    expect(read(spec)).toBe("run {\n  seq_len 1K\n}\n");
    expect(statSync(spec).mode & 0o777).toBe(0o640);
    expect(lstatSync(join(dir, "link.lasp")).isSymbolicLink()).toBe(true);
  });
});

// The real binary; as root it runs as `nobody`, since chmod does not stop root and a 0555 folder must.
describe("the real binary", () => {
  const nobody = 65534;
  beforeAll(() => {
    if (!existsSync(join(root, "dist", "src", "cli", "main.js"))) {
      execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });
    }
  }, 180_000);

  /** A folder the binary cannot write to: as root it runs as nobody, who does not own the 0555 folder. */
  const readOnly = async (): Promise<string> => {
    const parent = folder();
    chmodSync(parent, 0o755);
    const dir = join(parent, "ro");
    expect((await lasp("compile", SPEC, "-o", dir)).exit).toBe(0);
    writeFileSync(join(dir, "t.svg"), OLD_PICTURE);
    chmodSync(dir, 0o555);
    return dir;
  };
  const bin = (args: string[], cwd = root) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
    delete env["FORCE_COLOR"];
    return spawnSync(process.execPath, [join(root, "bin", "lasp.js"), ...args], {
      cwd,
      env,
      encoding: "utf8",
      ...(isRoot ? { uid: nobody, gid: nobody } : {}),
    });
  };

  it("refuses the current folder like any other folder it did not write", () => {
    const cwd = folder();
    chmodSync(cwd, 0o755);
    writeFileSync(join(cwd, "project.txt"), "the user's");
    const run = bin(["compile", join(root, SPEC), "-o", "."], cwd);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`will not write into .: it is not empty`);
    expect(readdirSync(cwd)).toEqual(["project.txt"]);
  });

  it("says `not writable` for compile -o, exit 2, and changes nothing", async () => {
    const dir = await readOnly();
    const before = readdirSync(dir);
    for (const out of [dir, join(dir, "new")]) {
      const run = bin(["compile", SPEC, "-o", out]);
      expect(run.status).toBe(2);
      expect(run.stderr).toContain(`${dir} is not writable (permission denied)`);
      expect(run.stderr).not.toMatch(/no such file|EBUSY|EACCES/);
    }
    expect(readdirSync(dir)).toEqual(before);
  });

  it("says `not writable` for inspect --svg, exit 2, and keeps the old picture", async () => {
    const dir = await readOnly();
    const existing = bin(["inspect", SPEC, "--svg", join(dir, "t.svg")]);
    expect(existing.status).toBe(2);
    // The file, the folder or both refuse, depending on who owns them; either way it says so.
    expect(existing.stderr).toMatch(
      /^lasp: cannot write \S+t\.svg: (\S+ is )?not writable \(permission denied\); name a place you can write to\n$/,
    );
    expect(read(join(dir, "t.svg"))).toBe(OLD_PICTURE);
    const fresh = bin(["inspect", SPEC, "--svg", join(dir, "new.svg")]);
    expect(fresh.status).toBe(2);
    expect(fresh.stderr).toContain(`: ${dir} is not writable (permission denied)`);
    expect(existsSync(join(dir, "new.svg"))).toBe(false);
  });
});
