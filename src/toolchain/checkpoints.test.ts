import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  CheckpointNotFound,
  checkpointsIn,
  findResumePoint,
  newestCheckpoint,
  runFoldersOf,
  TRAINER_STATE,
  whyNotResumable,
} from "./checkpoints.js";

const made: string[] = [];
const temp = (): string => {
  const dir = mkdtempSync(join(tmpdir(), "lasp-checkpoints-"));
  made.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A checkpoint folder as the program commits it; `complete: false` leaves out trainer_state.json. */
function checkpoint(run: string, name: string, complete = true): string {
  const folder = join(run, "checkpoints", name);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, "model.safetensors"), "weights");
  if (complete) writeFileSync(join(folder, TRAINER_STATE), "{}");
  return folder;
}

/** A run folder with its run.json. */
function runFolder(root: string, name: string, record: object = {}): string {
  const folder = join(root, name);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, "run.json"), JSON.stringify(record));
  return folder;
}

describe("the checkpoints of a run folder", () => {
  it("are the step-N folders holding trainer_state.json, by step; temporary, incomplete and unrelated ones are not", async () => {
    const run = temp();
    checkpoint(run, "step-000100");
    checkpoint(run, "step-001000");
    checkpoint(run, "step-000500");
    checkpoint(run, "step-002000", false); // being written, or cut short
    checkpoint(run, ".tmp-4242"); // a crash's temporary folder, even with its state inside
    checkpoint(run, "step-003000.tmp-77");
    checkpoint(run, "best"); // a user's copy
    writeFileSync(join(run, "checkpoints", "notes.txt"), "mine");
    mkdirSync(join(run, "checkpoints", "step-004000", TRAINER_STATE), { recursive: true }); // not a file
    const found = await checkpointsIn(join(run, "checkpoints"));
    expect(found.map((c) => c.step)).toEqual([100, 500, 1000]);
    expect((await newestCheckpoint(run))?.path).toBe(join(run, "checkpoints", "step-001000"));
  });

  it("is none when the run folder has no checkpoints folder", async () => {
    expect(await newestCheckpoint(temp())).toBeUndefined();
  });
});

describe("--resume DIR", () => {
  const find = (dir: string, cwd: string) =>
    findResumePoint({ dir, specPath: "tiny.lasp", cwd, runsRoot: join(cwd, "runs") });

  it("takes a checkpoint folder as it is, a run folder's newest checkpoint, or a checkpoints folder's", async () => {
    const cwd = temp();
    const run = runFolder(cwd, "runs/tiny-20261205-090307");
    const old = checkpoint(run, "step-000002");
    const newest = checkpoint(run, "step-000004");
    checkpoint(run, "step-000006", false);
    expect(await find("runs/tiny-20261205-090307/checkpoints/step-000002", cwd)).toEqual({
      checkpoint: { path: old, step: 2 },
      runFolder: undefined,
    });
    expect(await find("runs/tiny-20261205-090307", cwd)).toEqual({
      checkpoint: { path: newest, step: 4 },
      runFolder: run,
    });
    expect(await find(join(run, "checkpoints"), cwd)).toEqual({
      checkpoint: { path: newest, step: 4 },
      runFolder: run,
    });
  });

  it("says what is wrong with a folder that holds no complete checkpoint, and changes nothing", async () => {
    const cwd = temp();
    const run = runFolder(cwd, "run");
    checkpoint(run, "step-000006", false);
    const before = readdirSync(join(run, "checkpoints"));
    await expect(find("missing", cwd)).rejects.toThrow(new CheckpointNotFound("missing: no such folder"));
    await expect(find("run/run.json", cwd)).rejects.toThrow(
      "run/run.json is a file, not a checkpoint or run folder",
    );
    await expect(find("run/checkpoints/step-000006", cwd)).rejects.toThrow(
      "run/checkpoints/step-000006 is not a complete checkpoint: it has no trainer_state.json",
    );
    await expect(find("run", cwd)).rejects.toThrow(
      "run holds no complete checkpoint: neither trainer_state.json nor checkpoints/step-N/ with one",
    );
    expect(readdirSync(join(run, "checkpoints"))).toEqual(before);
  });
});

describe("--resume alone", () => {
  const find = (cwd: string, specPath = join(cwd, "tiny.lasp")) =>
    findResumePoint({ dir: undefined, specPath, cwd, runsRoot: join(cwd, "runs") });

  it("orders the spec's run folders newest first, by run.json's start or the name's time, then suffix", async () => {
    const cwd = temp();
    const root = join(cwd, "runs");
    runFolder(root, "tiny-20261205-090307");
    runFolder(root, "tiny-20261205-090307-2");
    runFolder(root, "tiny-20261204-235959");
    // A --run-dir of the user's, recognised by its run.json, started last.
    runFolder(root, "mine", { started: "2026-12-06T00:00:00.000Z", spec: { path: join(cwd, "tiny.lasp") } });
    runFolder(root, "other-20261207-000000"); // another spec
    runFolder(root, "tiny-big-20261207-000000"); // another spec whose name starts the same
    writeFileSync(join(root, "tiny-20261208-000000"), "a file, not a run folder");
    expect(await runFoldersOf(root, join(cwd, "tiny.lasp"))).toEqual(
      ["mine", "tiny-20261205-090307-2", "tiny-20261205-090307", "tiny-20261204-235959"].map((n) =>
        join(root, n),
      ),
    );
  });

  it("takes the newest checkpoint of the newest run folder of the spec that has one", async () => {
    const cwd = temp();
    const root = join(cwd, "runs");
    const older = runFolder(root, "tiny-20261205-090000");
    checkpoint(older, "step-000010");
    const resumed = runFolder(root, "tiny-20261205-100000");
    checkpoint(resumed, "step-000020");
    checkpoint(resumed, "step-000030");
    // The newest run stopped before its first checkpoint (only a half-written one).
    checkpoint(runFolder(root, "tiny-20261205-110000"), "step-000040", false);
    expect(await find(cwd)).toEqual({
      checkpoint: { path: join(resumed, "checkpoints", "step-000030"), step: 30 },
      runFolder: resumed,
    });
  });

  it("says where it looked when there is nothing to resume", async () => {
    const cwd = temp();
    await expect(find(cwd)).rejects.toThrow(
      `no run folders to resume from: ${join(cwd, "runs")} does not exist`,
    );
    mkdirSync(join(cwd, "runs"));
    await expect(find(cwd, "examples/tiny.lasp")).rejects.toThrow(
      `no run folder of examples/tiny.lasp in ${join(cwd, "runs")} (folders named tiny-<UTC time>)`,
    );
    checkpoint(runFolder(join(cwd, "runs"), "tiny-20261205-110000"), "step-000040", false);
    runFolder(join(cwd, "runs"), "tiny-20261205-120000");
    await expect(find(cwd, "examples/tiny.lasp")).rejects.toThrow(
      `none of the 2 run folders of examples/tiny.lasp in ${join(cwd, "runs")} has a complete checkpoint (checkpoints/step-N/ with trainer_state.json)`,
    );
  });
});

describe("a checkpoint the program would resume from", () => {
  const HASH = "0123456789abcdef";
  /** trainer_state.json as checkpoint.cuh's trainer_state_json writes it, with `change` applied. */
  const state = (change: (s: Record<string, unknown>) => void = () => undefined): string => {
    const s: Record<string, unknown> = {
      format_version: 1,
      step: 200,
      tokens_seen: 819200,
      data_position: 400,
      seed: 1,
      rng_state: "9e3779b97f4a7c15",
      world_size: 2,
      lr_schedule: { kind: "cosine", lr: 0.0003, min_lr: 3e-5, warmup_steps: 20, total_steps: 600 },
      lasp_version: "0.1.0",
      spec_hash: HASH,
    };
    change(s);
    return JSON.stringify(s, null, 2) + "\n";
  };
  /** A committed checkpoint of 2 ranks whose trainer_state.json is `text`. */
  const folder = (text: string): string => {
    const dir = join(temp(), "step-000200");
    mkdirSync(dir);
    for (const name of [
      "model.safetensors",
      "config.json",
      "optimizer-rank-0-of-2.safetensors",
      "optimizer-rank-1-of-2.safetensors",
    ])
      writeFileSync(join(dir, name), "");
    writeFileSync(join(dir, TRAINER_STATE), text);
    return dir;
  };
  const why = (text: string) => {
    const dir = folder(text);
    return whyNotResumable(dir, HASH, "ckpt");
  };

  it("is one whose trainer_state.json holds the program's keys and this model's hash, beside every file it reads", async () => {
    expect(await why(state())).toBeUndefined();
    // A seed above 2^53 is a whole number still (the program reads 64 bits exactly).
    expect(await why(state().replace('"seed": 1,', '"seed": 18446744073709551615,'))).toBeUndefined();
  });

  it("is not one whose trainer_state.json is not JSON or not the program's, naming the file and the key", async () => {
    expect(await why("garbage\n")).toMatch(/^ckpt\/trainer_state.json is not valid JSON: .*garbage /);
    expect(await why('{"step": 200}\n')).toBe(
      'ckpt/trainer_state.json lacks "format_version" (a whole number)',
    );
    expect(await why(state((s) => (s["format_version"] = 2)))).toBe(
      "ckpt/trainer_state.json has format_version 2; this program reads 1",
    );
    expect(await why(state((s) => delete s["data_position"]))).toBe(
      'ckpt/trainer_state.json lacks "data_position" (a whole number)',
    );
    expect(await why(state((s) => (s["step"] = "200")))).toBe(
      'ckpt/trainer_state.json: "step" should be a whole number, found the string "200"',
    );
    expect(await why(state((s) => (s["world_size"] = 0)))).toBe(
      'ckpt/trainer_state.json: "world_size" should be a whole number of at least 1, found 0',
    );
    expect(await why(state((s) => (s["rng_state"] = 12)))).toBe(
      'ckpt/trainer_state.json: "rng_state" should be a string of 16 hexadecimal digits, found 12',
    );
    expect(await why(state((s) => (s["lr_schedule"] = { kind: "step" })))).toBe(
      'ckpt/trainer_state.json: "lr_schedule.kind" should be "cosine", "linear" or "constant", found the string "step"',
    );
    expect(await why(state((s) => delete (s["lr_schedule"] as Record<string, unknown>)["total_steps"]))).toBe(
      'ckpt/trainer_state.json lacks "lr_schedule.total_steps" (a whole number)',
    );
    expect(await why(state((s) => (s["notes"] = "mine")))).toBe(
      'ckpt/trainer_state.json has an unknown key "notes"',
    );
    expect(await why("[1, 2]")).toBe("ckpt/trainer_state.json should hold a JSON object, found an array");
  });

  it("is not another model's, nor one that lacks the weights or a rank's optimizer shard", async () => {
    expect(await why(state((s) => (s["spec_hash"] = "fedcba9876543210")))).toBe(
      "it was written for another model (model hash fedcba9876543210, this run's is 0123456789abcdef)",
    );
    const dir = folder(state());
    rmSync(join(dir, "optimizer-rank-1-of-2.safetensors"));
    expect(await whyNotResumable(dir, HASH)).toBe("it lacks optimizer-rank-1-of-2.safetensors");
    rmSync(join(dir, "model.safetensors"));
    expect(await whyNotResumable(dir, HASH)).toBe("it lacks model.safetensors");
    // A world of 3 needs the shards of 3 ranks, named for 3.
    expect(await why(state((s) => (s["world_size"] = 3)))).toBe("it lacks optimizer-rank-0-of-3.safetensors");
  });
});
