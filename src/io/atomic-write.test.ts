import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TEMP_MARK, writeFileAtomic } from "./atomic-write.js";
import { describeWriteError, describeWriteFailure, fsError } from "./write-error.js";

const isRoot = process.getuid?.() === 0;
const folder = (): string => mkdtempSync(join(tmpdir(), "lasp-atomic-"));
const temporaries = (dir: string): string[] => readdirSync(dir).filter((f) => f.includes(TEMP_MARK));

describe("writeFileAtomic", () => {
  it("writes a new file and leaves no temporary file", async () => {
    const dir = folder();
    await writeFileAtomic(join(dir, "a.txt"), "hello\n");
    expect(readFileSync(join(dir, "a.txt"), "utf8")).toBe("hello\n");
    expect(readdirSync(dir)).toEqual(["a.txt"]);
  });

  it("replaces an existing file and keeps its mode", async () => {
    const dir = folder();
    const file = join(dir, "spec.lasp");
    writeFileSync(file, "old");
    chmodSync(file, 0o640);
    await writeFileAtomic(file, "new");
    expect(readFileSync(file, "utf8")).toBe("new");
    expect(statSync(file).mode & 0o777).toBe(0o640);
  });

  it("gives a file the mode asked for", async () => {
    const file = join(folder(), "build.sh");
    await writeFileAtomic(file, "#!/bin/sh\n", { mode: 0o755 });
    expect(statSync(file).mode & 0o111).not.toBe(0);
  });

  it("writes through a symbolic link by default, so the link stays a link", async () => {
    const dir = folder();
    writeFileSync(join(dir, "real.lasp"), "old");
    symlinkSync("real.lasp", join(dir, "link.lasp"));
    await writeFileAtomic(join(dir, "link.lasp"), "new");
    expect(readlinkSync(join(dir, "link.lasp"))).toBe("real.lasp");
    expect(readFileSync(join(dir, "real.lasp"), "utf8")).toBe("new");
  });

  it("with followLinks false replaces the link and never touches the file it points to", async () => {
    const dir = folder();
    writeFileSync(join(dir, "users.txt"), "mine");
    symlinkSync("users.txt", join(dir, "README.md"));
    await writeFileAtomic(join(dir, "README.md"), "lasp's", { followLinks: false });
    expect(lstatSync(join(dir, "README.md")).isSymbolicLink()).toBe(false);
    expect(readFileSync(join(dir, "README.md"), "utf8")).toBe("lasp's");
    expect(readFileSync(join(dir, "users.txt"), "utf8")).toBe("mine");
  });

  it("leaves the old file whole and no temporary file when the write fails halfway (a crash, a full disk)", async () => {
    const dir = folder();
    const file = join(dir, "main.cu");
    writeFileSync(file, "old contents");
    const failing = async (handle: import("node:fs/promises").FileHandle, contents: string | Uint8Array) => {
      await handle.write(String(contents).slice(0, 3));
      throw fsError("ENOSPC", file, "no space left on device");
    };
    await expect(writeFileAtomic(file, "new contents", { write: failing })).rejects.toMatchObject({
      code: "ENOSPC",
    });
    expect(readFileSync(file, "utf8")).toBe("old contents");
    expect(temporaries(dir)).toEqual([]);
  });

  it("with createOnly writes a new file, and leaves one that is there as it was", async () => {
    const dir = folder();
    await writeFileAtomic(join(dir, "new.txt"), "mine\n", { createOnly: true });
    expect(readFileSync(join(dir, "new.txt"), "utf8")).toBe("mine\n");
    await expect(
      writeFileAtomic(join(dir, "new.txt"), "other\n", { createOnly: true }),
    ).rejects.toMatchObject({
      code: "EEXIST",
    });
    expect(readFileSync(join(dir, "new.txt"), "utf8")).toBe("mine\n");
    expect(readdirSync(dir)).toEqual(["new.txt"]);
    // A file made by someone else while lasp writes its temporary one: theirs stays, no temporary file is left.
    const raced = join(dir, "raced.txt");
    const write = async (file: FileHandle, contents: string | Uint8Array) => {
      await file.writeFile(contents);
      writeFileSync(raced, "theirs\n");
    };
    await expect(writeFileAtomic(raced, "mine\n", { createOnly: true, write })).rejects.toMatchObject({
      code: "EEXIST",
    });
    expect(readFileSync(raced, "utf8")).toBe("theirs\n");
    expect(temporaries(dir)).toEqual([]);
  });

  it("refuses a folder and an empty path", async () => {
    const dir = folder();
    mkdirSync(join(dir, "sub"));
    await expect(writeFileAtomic(join(dir, "sub"), "x")).rejects.toMatchObject({ code: "EISDIR" });
    await expect(writeFileAtomic("", "x")).rejects.toMatchObject({ code: "ENOENT" });
    expect(readdirSync(join(dir, "sub"))).toEqual([]);
  });

  it.skipIf(isRoot)("keeps a read-only file read-only (a rename would ignore its permissions)", async () => {
    const file = join(folder(), "ro.lasp");
    writeFileSync(file, "old");
    chmodSync(file, 0o444);
    await expect(writeFileAtomic(file, "new")).rejects.toMatchObject({ code: "EACCES" });
    expect(readFileSync(file, "utf8")).toBe("old");
  });

  it.skipIf(isRoot)("names the folder when the folder is what is not writable", async () => {
    const dir = folder();
    const file = join(dir, "spec.lasp");
    writeFileSync(file, "old");
    chmodSync(dir, 0o555);
    const error = await writeFileAtomic(file, "new").catch((e: unknown) => e);
    chmodSync(dir, 0o755);
    expect(describeWriteFailure(file, error)).toBe(`${dir} is not writable (permission denied)`);
    expect(readFileSync(file, "utf8")).toBe("old");
  });
});

describe("describeWriteError", () => {
  it("says `not writable` for a read-only folder or file system, never `no such file` or EBUSY", () => {
    for (const code of ["EACCES", "EPERM", "EROFS"]) {
      const words = describeWriteError(fsError(code, "/x", "refused"));
      expect(words).toMatch(/^not writable \(/);
      expect(words).not.toMatch(/no such file|EBUSY|EACCES|EROFS/);
    }
    expect(describeWriteError(fsError("EROFS", "/x", "refused"))).toBe(
      "not writable (read-only file system)",
    );
  });

  it("puts a full disk and a busy mount point in words", () => {
    expect(describeWriteError(fsError("ENOSPC", "/x", "full"))).toBe("no space left on the device");
    expect(describeWriteError(fsError("EBUSY", "/x", "busy"))).not.toContain("EBUSY");
  });

  it("names the folder when the failing path is not the file itself", () => {
    const error = fsError("EROFS", "/mnt/ro", "refused");
    expect(describeWriteFailure("/mnt/ro/a.svg", error)).toBe(
      "/mnt/ro is not writable (read-only file system)",
    );
    expect(describeWriteFailure("/mnt/ro", error)).toBe("not writable (read-only file system)");
  });
});
