import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  chmodSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TEMP_MARK } from "./atomic-write.js";
import {
  checkOwnedFolder,
  MANIFEST,
  manifestText,
  OutputFolderError,
  parseManifest,
  removeOwnedFiles,
  writeOwnedFolder,
} from "./owned-folder.js";
import { fsError } from "./write-error.js";

const folder = (): string => mkdtempSync(join(tmpdir(), "lasp-owned-"));
const read = (path: string): string => readFileSync(path, "utf8");
const program = (extra: Record<string, string> = {}) =>
  new Map(Object.entries({ "main.cu": "main v1", "lasp/a.cuh": "a v1", "build.sh": "echo", ...extra }));

/** Every file under `dir`, relative, sorted. */
function tree(dir: string, prefix = ""): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? tree(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
    )
    .sort();
}

async function refusal(promise: Promise<unknown>): Promise<OutputFolderError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OutputFolderError);
  return error as OutputFolderError;
}

describe("writeOwnedFolder", () => {
  it("creates a missing folder, writes the files and a manifest listing them", async () => {
    const dir = join(folder(), "out", "deep");
    const result = await writeOwnedFolder(dir, program(), {
      mode: (f) => (f.endsWith(".sh") ? 0o755 : undefined),
    });
    expect(tree(dir)).toEqual([MANIFEST, "build.sh", "lasp/a.cuh", "main.cu"]);
    expect(read(join(dir, MANIFEST))).toBe(manifestText(["main.cu", "lasp/a.cuh", "build.sh"]));
    expect(result.written).toEqual(["build.sh", "lasp/a.cuh", "main.cu"]);
    expect(statSync(join(dir, "build.sh")).mode & 0o100).toBe(0o100);
  });

  it("on a second write replaces its files, removes the ones no longer generated, and keeps everything else", async () => {
    const dir = folder();
    await writeOwnedFolder(dir, program({ "lasp/old.cuh": "old", "gone/only.h": "x" }));
    writeFileSync(join(dir, "NOTES.md"), "my notes");
    mkdirSync(join(dir, "build"));
    writeFileSync(join(dir, "build", "CMakeCache.txt"), "cmake's");
    writeFileSync(join(dir, "lasp", "mine.h"), "a user's header beside lasp's");
    writeFileSync(join(dir, "main.cu"), "edited by hand");

    const result = await writeOwnedFolder(dir, program({ "main.cu": "main v2" }));
    expect(read(join(dir, "main.cu"))).toBe("main v2");
    expect(result.removed).toEqual(["gone/only.h", "lasp/old.cuh"]);
    expect(existsSync(join(dir, "gone"))).toBe(false); // emptied by the removal
    expect(read(join(dir, "NOTES.md"))).toBe("my notes");
    expect(read(join(dir, "build", "CMakeCache.txt"))).toBe("cmake's");
    expect(read(join(dir, "lasp", "mine.h"))).toBe("a user's header beside lasp's");
    expect(read(join(dir, MANIFEST))).toBe(manifestText(program().keys()));
  });

  it("leaves unchanged files untouched, so their time stamps stay for an incremental build", async () => {
    const dir = folder();
    await writeOwnedFolder(dir, program());
    const old = new Date(2000, 0, 1);
    utimesSync(join(dir, "lasp", "a.cuh"), old, old);
    const result = await writeOwnedFolder(dir, program({ "main.cu": "main v2" }));
    expect(result.unchanged).toContain("lasp/a.cuh");
    expect(result.written).toEqual(["main.cu"]);
    expect(statSync(join(dir, "lasp", "a.cuh")).mtime.getTime()).toBe(old.getTime());
  });

  it("refuses an empty path", async () => {
    expect((await refusal(writeOwnedFolder("", program()))).problem).toBe("empty-path");
  });

  it("refuses a file and leaves it as it was", async () => {
    const file = join(folder(), "notes.txt");
    writeFileSync(file, "keep me");
    const error = await refusal(writeOwnedFolder(file, program(), { force: true }));
    expect(error.problem).toBe("not-a-folder");
    expect(error.message).toBe(`${file} is a file, not a folder`);
    expect(read(file)).toBe("keep me");
  });

  it("refuses a file, or a link to nothing, where a generated file needs a folder, even with force", async () => {
    for (const make of [
      (at: string) => writeFileSync(at, "the user's"),
      (at: string) => symlinkSync("nowhere", at),
    ]) {
      const dir = folder();
      await writeOwnedFolder(dir, program());
      rmSync(join(dir, "lasp"), { recursive: true });
      make(join(dir, "lasp"));
      const manifest = read(join(dir, MANIFEST));
      for (const force of [false, true]) {
        const error = await refusal(writeOwnedFolder(dir, program({ "lasp/b/c.cuh": "c" }), { force }));
        expect(error.problem).toBe("not-a-folder");
        expect(error.path).toBe(join(dir, "lasp"));
        expect(error.message).toBe(`${join(dir, "lasp")} is a file where a folder is needed`);
      }
      // Refused before anything was claimed or written.
      expect(read(join(dir, MANIFEST))).toBe(manifest);
      expect(lstatSync(join(dir, "lasp")).isDirectory()).toBe(false);
    }
    // A link to a folder is a folder to mkdir: written through.
    const dir = folder();
    const elsewhere = folder();
    symlinkSync(elsewhere, join(dir, "lasp"));
    await writeOwnedFolder(dir, program(), { force: true });
    expect(read(join(elsewhere, "a.cuh"))).toBe("a v1");
  });

  it("refuses a non-empty folder without a manifest and writes nothing there", async () => {
    const dir = folder();
    writeFileSync(join(dir, "main.cu"), "the user's own main.cu");
    const error = await refusal(writeOwnedFolder(dir, program()));
    expect(error.problem).toBe("not-owned");
    expect(error.message).toContain(`has no ${MANIFEST}`);
    expect(tree(dir)).toEqual(["main.cu"]);
    expect(read(join(dir, "main.cu"))).toBe("the user's own main.cu");
  });

  it("writes into an empty folder without a manifest", async () => {
    const dir = folder();
    await writeOwnedFolder(dir, program());
    expect(tree(dir)).toContain(MANIFEST);
  });

  it("with force writes into someone else's folder, replacing files of the same names and deleting nothing", async () => {
    const dir = folder();
    writeFileSync(join(dir, "main.cu"), "the user's");
    writeFileSync(join(dir, "other.cu"), "the user's too");
    const result = await writeOwnedFolder(dir, program(), { force: true });
    expect(result.replacedUnowned).toEqual(["main.cu"]);
    expect(read(join(dir, "main.cu"))).toBe("main v1");
    expect(read(join(dir, "other.cu"))).toBe("the user's too");
    // From now on the folder is lasp's for the files it wrote, and only for them.
    await writeOwnedFolder(dir, new Map([["main.cu", "main v2"]]));
    expect(read(join(dir, "other.cu"))).toBe("the user's too");
    expect(existsSync(join(dir, "lasp"))).toBe(false);
  });

  it("in its own folder, refuses to replace a file it did not write unless forced", async () => {
    const dir = folder();
    await writeOwnedFolder(dir, program());
    writeFileSync(join(dir, "extra.cu"), "the user's extra.cu");
    const error = await refusal(writeOwnedFolder(dir, program({ "extra.cu": "lasp's" })));
    expect(error.problem).toBe("unowned-files");
    expect(error.files).toEqual(["extra.cu"]);
    expect(read(join(dir, "extra.cu"))).toBe("the user's extra.cu");
  });

  it("refuses a manifest naming files outside the folder, and with force deletes nothing it names", async () => {
    const parent = folder();
    const dir = join(parent, "out");
    mkdirSync(dir);
    writeFileSync(join(parent, "precious"), "outside");
    writeFileSync(join(dir, MANIFEST), "main.cu\n../precious\n");
    const error = await refusal(writeOwnedFolder(dir, program()));
    expect(error.problem).toBe("bad-manifest");
    expect(error.message).toContain("line 2 names `../precious`, not a file inside the folder");
    await writeOwnedFolder(dir, new Map([["x.cu", "x"]]), { force: true });
    expect(read(join(parent, "precious"))).toBe("outside");
  });

  it("after a write that fails halfway keeps the old files whole, leaves no temporary file, and recovers", async () => {
    const dir = folder();
    await writeOwnedFolder(dir, program());
    let writes = 0;
    const crashOnSecond = async (handle: FileHandle, contents: string | Uint8Array): Promise<void> => {
      if (++writes === 2) {
        await handle.write(String(contents).slice(0, 2));
        throw fsError("ENOSPC", dir, "no space left on device");
      }
      await handle.writeFile(contents);
    };
    const next = program({ "main.cu": "main v2", "lasp/a.cuh": "a v2", "lasp/new.cuh": "new" });
    const error = await refusal(writeOwnedFolder(dir, next, { write: crashOnSecond }));
    expect(error.problem).toBe("io");
    expect(error.message).toContain("no space left on the device");
    // The manifest (written first) and lasp/a.cuh got through; lasp/new.cuh failed; main.cu was not reached.
    expect(read(join(dir, "lasp", "a.cuh"))).toBe("a v2");
    expect(existsSync(join(dir, "lasp", "new.cuh"))).toBe(false);
    expect(read(join(dir, "main.cu"))).toBe("main v1");
    expect(tree(dir).filter((f) => f.includes(TEMP_MARK))).toEqual([]);
    // The next write needs no force: every file the failed one may have written was claimed first.
    await writeOwnedFolder(dir, next);
    expect(read(join(dir, "main.cu"))).toBe("main v2");
    expect(read(join(dir, MANIFEST))).toBe(manifestText(next.keys()));
  });
});

describe("checkOwnedFolder", () => {
  /** Every path under `dir`, links and folders included, sorted: what a check must leave as it was. */
  const listing = (dir: string): string[] => (readdirSync(dir, { recursive: true }) as string[]).sort();

  it("writes nothing, creates no missing folder, and refuses as writeOwnedFolder then does", async () => {
    const root = folder();
    const at = (name: string): string => join(root, name);
    writeFileSync(at("notes.txt"), "the user's");
    symlinkSync("nowhere", at("dangling"));
    mkdirSync(at("theirs"));
    writeFileSync(at("theirs/main.cu"), "the user's");
    mkdirSync(at("bad"));
    writeFileSync(at("bad/" + MANIFEST), "../outside\n");
    mkdirSync(at("claimed"));
    writeFileSync(at("claimed/" + MANIFEST), manifestText([]));
    writeFileSync(at("claimed/main.cu"), "the user's");
    mkdirSync(at("blocked"));
    writeFileSync(at("blocked/" + MANIFEST), manifestText([]));
    writeFileSync(at("blocked/lasp"), "the user's");
    mkdirSync(at("empty"));
    mkdirSync(at("locked"));
    chmodSync(at("locked"), 0o555);
    // Root writes anywhere (access and mkdir agree on that), so the locked cases only refuse for a user.
    const locked = process.getuid?.() !== 0;
    const cases: [string, boolean, string | undefined][] = [
      ["notes.txt", true, "not-a-folder"],
      ["dangling", true, "not-a-folder"],
      ["notes.txt/out", false, "io"],
      ["theirs", false, "not-owned"],
      ["theirs", true, undefined],
      ["bad", false, "bad-manifest"],
      ["bad", true, undefined],
      ["claimed", false, "unowned-files"],
      ["claimed", true, undefined],
      ["blocked", true, "not-a-folder"],
      ["locked", false, locked ? "not-writable" : undefined],
      ["locked/out", false, locked ? "not-writable" : undefined],
      ["empty", false, undefined],
      ["new/deep", false, undefined],
    ];
    // Every check first, over the whole tree: none of them may change it.
    const before = listing(root);
    const checked = [];
    for (const [name, force] of cases)
      checked.push(await checkOwnedFolder(at(name), program().keys(), { force }));
    expect(listing(root)).toEqual(before);
    expect(existsSync(at("new"))).toBe(false);
    expect(checked.map((e) => e?.problem)).toEqual(cases.map(([, , problem]) => problem));
    // The write refuses the same way (or writes where the check found nothing wrong).
    for (const [i, [name, force]] of cases.entries()) {
      const written = await writeOwnedFolder(at(name), program(), { force }).then(
        () => undefined,
        (e: unknown) => e,
      );
      const expected = checked[i];
      if (expected === undefined) expect(written, name).toBeUndefined();
      else
        expect(written, name).toMatchObject({
          problem: expected.problem,
          path: expected.path,
          message: expected.message,
          files: expected.files,
        });
    }
    chmodSync(at("locked"), 0o755);
  });
});

describe("removeOwnedFiles", () => {
  it("removes what the manifest lists and the folder when nothing else is left", async () => {
    const parent = folder();
    const dir = join(parent, "gen");
    await writeOwnedFolder(dir, program());
    expect(await removeOwnedFiles(dir)).toEqual(["build.sh", "lasp/a.cuh", "main.cu"]);
    expect(existsSync(dir)).toBe(false);
  });

  it("keeps a user's file, and with it the folder", async () => {
    const dir = folder();
    await writeOwnedFolder(dir, program());
    writeFileSync(join(dir, "NOTES.md"), "mine");
    await removeOwnedFiles(dir);
    expect(tree(dir)).toEqual(["NOTES.md"]);
  });
});

describe("parseManifest", () => {
  it("reads the text manifestText writes", () => {
    expect(parseManifest(manifestText(["b/c.h", "a.cu"]))).toEqual(new Set(["a.cu", "b/c.h"]));
  });

  it("rejects absolute paths, `..` and empty parts", () => {
    expect(parseManifest("/etc/passwd\n")).toContain("line 1 names `/etc/passwd`");
    expect(parseManifest("a/../../b\n")).toContain("line 1");
    expect(parseManifest("a//b\n")).toContain("line 1");
  });
});
