import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { makeNewFolder, RUN_FILES, RunFolder, runFolderName } from "./run-folder.js";

const made: string[] = [];
const temp = (): string => {
  const dir = mkdtempSync(join(tmpdir(), "lasp-run-folder-"));
  made.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const AT = new Date(Date.UTC(2026, 11, 5, 9, 3, 7));

describe("run folder names", () => {
  it("is the spec's name and the UTC start time, with odd characters replaced", () => {
    expect(runFolderName("examples/tiny-linear.lasp", AT)).toBe("tiny-linear-20261205-090307");
    expect(runFolderName("/x/my model (v2).lasp", AT)).toBe("my_model__v2_-20261205-090307");
    expect(runFolderName(".lasp", AT)).toBe("run-20261205-090307");
  });
});

describe("making a run folder", () => {
  it("makes runs/<name>/ under the working directory by default", async () => {
    const cwd = temp();
    const folder = await RunFolder.create({ specPath: "examples/tiny.lasp", cwd, now: AT });
    expect(folder.path).toBe(join(cwd, "runs", "tiny-20261205-090307"));
    expect(readdirSync(join(cwd, "runs"))).toEqual(["tiny-20261205-090307"]);
  });

  it("never reuses a folder: a taken name, even an empty folder or a file, gets -2, -3, ...", async () => {
    const cwd = temp();
    const first = await RunFolder.create({ specPath: "a.lasp", cwd, now: AT });
    writeFileSync(join(first.path, "notes.txt"), "mine");
    const second = await RunFolder.create({ specPath: "a.lasp", cwd, now: AT });
    writeFileSync(join(cwd, "runs", "a-20261205-090307-3"), "a file of the same name");
    const third = await RunFolder.create({ specPath: "a.lasp", cwd, now: AT });
    expect(second.path).toBe(`${first.path}-2`);
    expect(third.path).toBe(`${first.path}-4`);
    expect(readFileSync(join(first.path, "notes.txt"), "utf8")).toBe("mine");
  });

  it("takes --run-dir relative to the working directory, making its parents, with the same suffix rule", async () => {
    const cwd = temp();
    const a = await RunFolder.create({ specPath: "a.lasp", cwd, dir: "deep/er/mine" });
    expect(a.path).toBe(join(cwd, "deep/er/mine"));
    mkdirSync(join(cwd, "taken"));
    const b = await RunFolder.create({ specPath: "a.lasp", cwd, dir: "taken" });
    expect(b.path).toBe(join(cwd, "taken-2"));
  });

  it("gives two runs started together two folders", async () => {
    const cwd = temp();
    const paths = await Promise.all(
      Array.from({ length: 5 }, () => makeNewFolder(join(cwd, "runs", "same"))),
    );
    expect(new Set(paths).size).toBe(5);
  });

  it("says why when the folder cannot be made", async () => {
    const cwd = temp();
    writeFileSync(join(cwd, "runs"), "a file where the runs folder would go");
    await expect(RunFolder.create({ specPath: "a.lasp", cwd })).rejects.toMatchObject({ code: "EEXIST" });
  });
});

describe("writing a run folder", () => {
  it("appends event and log lines as they come, each on its own line, readable before the run ends", async () => {
    const folder = await RunFolder.create({ specPath: "a.lasp", cwd: temp() });
    folder.appendEvent('{"event":"start","rank":0}');
    expect(readFileSync(folder.file(RUN_FILES.events), "utf8")).toBe('{"event":"start","rank":0}\n');
    folder.appendEvent('{"event":"step","rank":0}\n');
    folder.appendLog("[rank 1] hello");
    folder.close();
    expect(readFileSync(folder.file(RUN_FILES.events), "utf8").split("\n")).toEqual([
      '{"event":"start","rank":0}',
      '{"event":"step","rank":0}',
      "",
    ]);
    expect(readFileSync(folder.file(RUN_FILES.log), "utf8")).toBe("[rank 1] hello\n");
  });

  it("writes whole files, and keeps going when an append fails, remembering why", async () => {
    const folder = await RunFolder.create({ specPath: "a.lasp", cwd: temp() });
    await folder.write(RUN_FILES.summary, "summary\n");
    expect(readFileSync(folder.file(RUN_FILES.summary), "utf8")).toBe("summary\n");
    mkdirSync(folder.file(RUN_FILES.log));
    folder.appendLog("lost");
    folder.appendLog("lost too");
    expect(folder.appendProblem).toContain(`cannot append to ${folder.file(RUN_FILES.log)}`);
    folder.close();
  });
});
