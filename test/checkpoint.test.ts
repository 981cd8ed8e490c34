// templates/runtime/checkpoint.cuh's host logic, compiled with g++ (no CUDA needed) into
// test/checkpoint-harness.cpp. The folders are inspected here with Node's own file functions and
// trainer_state.json with JSON.parse, so the layout is checked against what the header documents, not itself.
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { whyNotResumable } from "../src/toolchain/checkpoints.js";
import { buildHarness, gxx } from "./host-harness.js";

const dir = mkdtempSync(join(tmpdir(), "lasp-checkpoint-"));
const harness = join(dir, "harness");
const HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

function run(...args: (string | number)[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(
    harness,
    args.map((a) => String(a)),
    { encoding: "utf8" },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}

let runs = 0;
/** A fresh run folder. */
function runFolder(): string {
  const folder = join(dir, `run-${++runs}`);
  mkdirSync(folder);
  return folder;
}

/** Writes a whole checkpoint of `step` through the harness; its stdout. */
function write(runDir: string, step: number, world = 1, keep = 0, hash = HASH): string {
  const r = run("write", runDir, step, world, keep, hash);
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return r.stdout;
}

const ls = (folder: string): string[] => readdirSync(folder).sort();

/** The harness's "key value" lines as an object. */
function fields(stdout: string): Record<string, string> {
  return Object.fromEntries(
    stdout
      .trim()
      .split("\n")
      .map((l) => [l.slice(0, l.indexOf(" ")), l.slice(l.indexOf(" ") + 1)]),
  );
}

/** A trainer_state.json as the header writes it, to be varied by the error tests. */
function stateObject(): Record<string, unknown> {
  return {
    format_version: 1,
    step: 7,
    tokens_seen: 28672,
    data_position: 14,
    seed: 1234,
    rng_state: "fedcba9876543217",
    world_size: 2,
    lr_schedule: { kind: "cosine", lr: 0.0003, min_lr: 0.00003, warmup_steps: 10, total_steps: 1000 },
    lasp_version: "0.1.0",
    spec_hash: HASH,
  };
}

describe.skipIf(!gxx)("checkpoint.cuh (host side, compiled with g++)", () => {
  beforeAll(() => {
    const build = buildHarness("checkpoint-harness.cpp", harness);
    expect(build.stderr).toBe("");
    expect(build.status).toBe(0);
  }, 60_000);

  it("writes a checkpoint folder of the documented layout, and nothing else", () => {
    const runDir = runFolder();
    expect(write(runDir, 5)).toBe(`wrote ${runDir}/checkpoints/step-000005\n`);
    expect(ls(runDir)).toEqual(["checkpoints"]);
    expect(ls(join(runDir, "checkpoints"))).toEqual(["step-000005"]);
    const folder = join(runDir, "checkpoints", "step-000005");
    expect(ls(folder)).toEqual([
      "config.json",
      "model.safetensors",
      "modeling_lasp.py",
      "optimizer-rank-0-of-1.safetensors",
      "trainer_state.json",
    ]);
    expect(readFileSync(join(folder, "config.json"), "utf8")).toBe(
      '{"model_type": "llama", "hidden_size": 3}\n',
    );
    expect(readFileSync(join(folder, "modeling_lasp.py"), "utf8")).toBe("# Written by lasp\n");
    const model = readFileSync(join(folder, "model.safetensors"));
    const n = Number(model.readBigUInt64LE(0));
    expect(JSON.parse(model.subarray(8, 8 + n).toString("utf8"))).toEqual({
      __metadata__: { format: "pt" },
      "model.embed_tokens.weight": { dtype: "BF16", shape: [4, 3], data_offsets: [0, 24] },
    });
    expect(JSON.parse(readFileSync(join(folder, "trainer_state.json"), "utf8"))).toEqual({
      format_version: 1,
      step: 5,
      tokens_seen: 5 * 4096,
      data_position: 10,
      seed: 1234,
      rng_state: (0xfedcba9876543210n ^ 5n).toString(16),
      world_size: 1,
      lr_schedule: { kind: "cosine", lr: 3e-4, min_lr: 3e-5, warmup_steps: 10, total_steps: 1000 },
      lasp_version: "0.1.0",
      spec_hash: HASH,
    });
  });

  it("reads back what it wrote: the trainer state, the weights and the rank's shard", () => {
    const runDir = runFolder();
    write(runDir, 12);
    const r = run("resume", join(runDir, "checkpoints", "step-000012"), HASH, 1, 0);
    expect(r.stderr).toBe("");
    const state = fields(r.stdout);
    expect(state).toMatchObject({ step: "12", tokens_seen: "49152", data_position: "24", world_size: "1" });
    expect(state["rng_state"]).toBe((0xfedcba9876543210n ^ 12n).toString(16));
    expect(Number(state["lr"])).toBe(3e-4);
    expect(Number(state["min_lr"])).toBe(3e-5);
  });

  it("collects one optimizer shard per rank, written by separate processes, and reads each back", () => {
    const runDir = runFolder();
    write(runDir, 3, 4);
    const folder = join(runDir, "checkpoints", "step-000003");
    expect(ls(folder).filter((f) => f.startsWith("optimizer-"))).toEqual(
      [0, 1, 2, 3].map((r) => `optimizer-rank-${r}-of-4.safetensors`),
    );
    for (const rank of [0, 1, 2, 3])
      expect(run("resume", folder, HASH, 4, rank)).toMatchObject({ status: 0, stderr: "" });
    const shards = [0, 1, 2, 3].map((r) =>
      readFileSync(join(folder, `optimizer-rank-${r}-of-4.safetensors`)),
    );
    expect(new Set(shards.map((b) => b.toString("hex"))).size).toBe(4);
  });

  it("refuses to commit before every rank's shard is there, and publishes nothing", () => {
    const runDir = runFolder();
    const r = run("no-shard", runDir, 9, 3);
    expect(r).toMatchObject({
      status: 1,
      stderr:
        `cannot commit the checkpoint ${runDir}/checkpoints/step-000009: the optimizer shard of rank 2 ` +
        "(optimizer-rank-2-of-3.safetensors) is missing; every rank writes its shard before rank 0 commits",
    });
    expect(ls(join(runDir, "checkpoints")).filter((n) => !n.includes(".tmp-"))).toEqual([]);
    expect(run("latest", runDir)).toMatchObject({
      status: 1,
      stderr: `no checkpoint to resume from: ${runDir}/checkpoints holds no complete step-NNNNNN folder`,
    });
  });

  it("leaves a temporary folder when interrupted; latest ignores it and the next write removes it", () => {
    const runDir = runFolder();
    write(runDir, 5);
    const begun = run("begin", runDir, 7);
    expect(begun.status).toBe(0);
    const temp = begun.stdout.trim().replace(/^temp /, "");
    expect(temp).toMatch(new RegExp(`^${runDir}/checkpoints/step-000007\\.tmp-\\d+$`));
    expect(existsSync(temp)).toBe(true);
    expect(run("latest", runDir).stdout).toBe(`latest ${runDir}/checkpoints/step-000005 step 5\n`);
    // A temporary folder of a live process (this one) and folders that only look temporary are kept.
    const live = join(runDir, "checkpoints", `step-000008.tmp-${process.pid}`);
    const lookalikes = ["step-000008.tmp-notes", "step-x.tmp-1", "notes.tmp-1"].map((n) =>
      join(runDir, "checkpoints", n),
    );
    for (const f of [live, ...lookalikes]) mkdirSync(f);
    // A checkpoint moved aside for a replacement by a process that died before deleting it: stale too.
    const aside = `${temp.replace("step-000007", "step-000004")}.old`;
    mkdirSync(aside);
    writeFileSync(join(aside, "trainer_state.json"), "{}");
    const lines = write(runDir, 10).trim().split("\n");
    expect(lines[0]).toBe(`wrote ${runDir}/checkpoints/step-000010`);
    expect(lines.slice(1).sort()).toEqual([`stale ${aside}`, `stale ${temp}`]);
    expect(existsSync(temp)).toBe(false);
    expect(existsSync(aside)).toBe(false);
    for (const f of [live, ...lookalikes]) expect(existsSync(f)).toBe(true);
    expect(run("latest", runDir).stdout).toBe(`latest ${runDir}/checkpoints/step-000010 step 10\n`);
  });

  it("keeps the newest K checkpoints and deletes only step-DIGITS folders holding trainer_state.json", () => {
    const runDir = runFolder();
    const root = join(runDir, "checkpoints");
    mkdirSync(root);
    writeFileSync(join(root, "README.txt"), "my notes");
    mkdirSync(join(root, "step-notes"));
    writeFileSync(join(root, "step-notes", "trainer_state.json"), "{}");
    mkdirSync(join(root, "step-000001"));
    writeFileSync(join(root, "step-000001", "mine.txt"), "a user's folder with a step's name");
    // A link with a step's name, to a folder outside that holds a trainer state: neither is touched.
    const outside = join(runDir, "elsewhere");
    mkdirSync(outside);
    writeFileSync(join(outside, "trainer_state.json"), "{}");
    symlinkSync(outside, join(root, "step-000000"));
    for (const step of [2, 3, 4]) write(runDir, step, 2, 2);
    expect(ls(root)).toEqual([
      "README.txt",
      "step-000000",
      "step-000001",
      "step-000003",
      "step-000004",
      "step-notes",
    ]);
    expect(write(runDir, 5, 2, 2)).toBe(`wrote ${root}/step-000005\nremoved ${root}/step-000003\n`);
    expect(ls(root)).toEqual([
      "README.txt",
      "step-000000",
      "step-000001",
      "step-000004",
      "step-000005",
      "step-notes",
    ]);
    expect(ls(outside)).toEqual(["trainer_state.json"]);
    expect(ls(join(root, "step-notes"))).toEqual(["trainer_state.json"]);
    expect(ls(join(root, "step-000001"))).toEqual(["mine.txt"]);
  });

  it("never deletes the checkpoint just written, even when older than the kept ones", () => {
    const runDir = runFolder();
    const root = join(runDir, "checkpoints");
    for (const step of [20, 30]) write(runDir, step, 1, 2);
    expect(write(runDir, 10, 1, 2)).toBe(`wrote ${root}/step-000010\nremoved ${root}/step-000020\n`);
    expect(ls(root)).toEqual(["step-000010", "step-000030"]);
  });

  it("replaces a checkpoint of the same step whole (a run resumed from an older one)", () => {
    const runDir = runFolder();
    write(runDir, 4, 1, 0, "old-spec");
    write(runDir, 4, 2, 0, HASH);
    const folder = join(runDir, "checkpoints", "step-000004");
    expect(ls(join(runDir, "checkpoints"))).toEqual(["step-000004"]);
    expect(ls(folder)).toContain("optimizer-rank-1-of-2.safetensors");
    expect(ls(folder)).not.toContain("optimizer-rank-0-of-1.safetensors");
    expect(run("resume", folder, HASH, 2, 1).status).toBe(0);
  });

  it("refuses to replace a folder of the step's name that is not a checkpoint", () => {
    const runDir = runFolder();
    const folder = join(runDir, "checkpoints", "step-000004");
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, "mine.txt"), "a user's file");
    expect(run("write", runDir, 4, 1, 0, HASH)).toMatchObject({
      status: 1,
      stderr:
        `cannot commit the checkpoint ${folder}: ${folder} exists and is not a checkpoint ` +
        "(no trainer_state.json); move it away",
    });
    expect(ls(folder)).toEqual(["mine.txt"]);
  });

  it("finds the highest step by number, skipping incomplete checkpoints with the reason", () => {
    const runDir = runFolder();
    const root = join(runDir, "checkpoints");
    for (const step of [999999, 1000000, 2]) write(runDir, step);
    expect(ls(root)).toEqual(["step-000002", "step-1000000", "step-999999"]);
    // Newer, but incomplete: a model missing, and a trainer state of another step.
    mkdirSync(join(root, "step-2000000"));
    writeFileSync(
      join(root, "step-2000000", "trainer_state.json"),
      JSON.stringify({ ...stateObject(), step: 2000000, world_size: 1 }),
    );
    mkdirSync(join(root, "step-3000000"));
    writeFileSync(join(root, "step-3000000", "trainer_state.json"), JSON.stringify(stateObject()));
    expect(run("latest", runDir)).toEqual({
      status: 0,
      stdout:
        `latest ${root}/step-1000000 step 1000000\n` +
        `skipped ${root}/step-3000000/trainer_state.json is of step 7, not 3000000\n` +
        `skipped ${root}/step-2000000 lacks model.safetensors\n`,
      stderr: "",
    });
    expect(run("latest", join(dir, "no-such-run")).stderr).toBe(
      `no checkpoint to resume from: ${dir}/no-such-run/checkpoints does not exist`,
    );
  });

  it("refuses to resume a checkpoint of another spec, or one that lacks a shard, saying which", () => {
    const runDir = runFolder();
    write(runDir, 6, 4);
    const folder = join(runDir, "checkpoints", "step-000006");
    expect(run("resume", folder, "0123abcd", 4, 0)).toMatchObject({
      status: 1,
      stderr: `cannot resume from ${folder}: it was written for another model (model hash ${HASH}, this run's is 0123abcd)`,
    });
    // Another number of ranks resumes it (the program re-shards the state: optimizer_slices.cuh).
    expect(run("resume", folder, HASH, 4, 3)).toMatchObject({ status: 0, stderr: "" });
    rmSync(join(folder, "optimizer-rank-3-of-4.safetensors"));
    expect(run("resume", folder, HASH, 4, 0)).toMatchObject({
      status: 1,
      stderr: `cannot resume from ${folder}: it lacks optimizer-rank-3-of-4.safetensors`,
    });
    expect(run("resume", join(runDir, "nothing"), HASH, 4, 0).stderr).toBe(
      `cannot resume from ${runDir}/nothing: no such folder`,
    );
  });

  it("round-trips trainer_state.json exactly: 64-bit counts, the RNG state, reals without a short form", () => {
    const file = join(dir, "state.json");
    expect(run("state-write", file)).toMatchObject({ status: 0, stderr: "" });
    const text = readFileSync(file, "utf8");
    expect(text).toContain('"tokens_seen": 18446744073709551615,');
    expect(text).toContain('"min_lr": 0.30000000000000004,');
    expect(text).toContain('"lr": 0.0003,');
    const parsed = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(Object.keys(stateObject()));
    expect(parsed["lr_schedule"]).toEqual({
      kind: "linear",
      lr: 3e-4,
      min_lr: 0.1 + 0.2,
      warmup_steps: 10,
      total_steps: 1000,
    });
    const back = fields(run("state-read", file).stdout);
    expect(back).toMatchObject({
      step: "123",
      tokens_seen: "18446744073709551615",
      rng_state: (0xfedcba9876543210n ^ 123n).toString(16),
      world_size: "4",
      kind: "linear",
      spec_hash: HASH,
    });
    expect(Number(back["min_lr"])).toBe(0.1 + 0.2);
  });

  it("reads a trainer_state.json written elsewhere: keys in another order, other spacing", () => {
    const file = join(dir, "other-order.json");
    const s = stateObject();
    const reordered = Object.fromEntries(Object.entries(s).reverse());
    writeFileSync(file, JSON.stringify(reordered));
    expect(fields(run("state-read", file).stdout)).toMatchObject({
      step: "7",
      world_size: "2",
      lr: "0.00029999999999999997",
    });
  });

  describe("refuses a bad trainer_state.json, naming the file and the key", () => {
    const cases: [string, (s: Record<string, unknown>) => unknown, string][] = [
      ["a missing key", (s) => ({ ...s, step: undefined }), ' lacks "step" (a whole number)'],
      [
        "a missing nested key",
        (s) => ({ ...s, lr_schedule: { kind: "cosine", lr: 1e-3, warmup_steps: 1, total_steps: 2 } }),
        ' lacks "lr_schedule.min_lr" (a number of at least 0)',
      ],
      [
        "a string for a number",
        (s) => ({ ...s, step: "12" }),
        ': "step" should be a whole number, found the string "12"',
      ],
      [
        "a fraction for a count",
        (s) => ({ ...s, data_position: 1.5 }),
        ': "data_position" should be a whole number, found 1.5',
      ],
      ["a negative count", (s) => ({ ...s, seed: -1 }), ': "seed" should be a whole number, found -1'],
      [
        "zero ranks",
        (s) => ({ ...s, world_size: 0 }),
        ': "world_size" should be a whole number of at least 1, found 0',
      ],
      [
        "a short RNG state",
        (s) => ({ ...s, rng_state: "abc" }),
        ': "rng_state" should be a string of 16 hexadecimal digits, found the string "abc"',
      ],
      [
        "a control character in a string",
        (s) => ({ ...s, rng_state: "ab\ncd" }),
        ': "rng_state" should be a string of 16 hexadecimal digits, found the string "ab\\u000acd"',
      ],
      [
        "an unknown schedule kind",
        (s) => ({ ...s, lr_schedule: { ...(s["lr_schedule"] as object), kind: "exp" } }),
        ': "lr_schedule.kind" should be "cosine", "linear" or "constant", found the string "exp"',
      ],
      [
        "a negative learning rate",
        (s) => ({ ...s, lr_schedule: { ...(s["lr_schedule"] as object), lr: -0.1 } }),
        ': "lr_schedule.lr" should be a number of at least 0, found -0.1',
      ],
      [
        "an empty spec hash",
        (s) => ({ ...s, spec_hash: "" }),
        ': "spec_hash" should be a non-empty string, found the string ""',
      ],
      [
        "an object for a string",
        (s) => ({ ...s, lasp_version: {} }),
        ': "lasp_version" should be a non-empty string, found an object',
      ],
      ["an unknown key", (s) => ({ ...s, epoch: 3 }), ' has an unknown key "epoch"'],
      [
        "an unknown nested key",
        (s) => ({ ...s, lr_schedule: { ...(s["lr_schedule"] as object), beta1: 0.9 } }),
        ' has an unknown key "lr_schedule.beta1"',
      ],
      [
        "another format version",
        (s) => ({ ...s, format_version: 2 }),
        " has format_version 2; this program reads 1",
      ],
      ["not an object", () => [1, 2], " should hold a JSON object, found an array"],
    ];
    // What JSON.stringify cannot write: edits of the header's text.
    const written = JSON.stringify(stateObject());
    const deep = "[".repeat(32) + "0" + "]".repeat(32);
    const edits: [string, (text: string) => string, string][] = [
      ["a key given twice", (t) => t.replace('"step":7,', '"step":7,"step":8,'), ' has "step" twice'],
      [
        "a schedule key given twice",
        (t) => t.replace('"lr":0.0003,', '"lr":0.0003,"lr":0.1,'),
        ' has "lr_schedule.lr" twice',
      ],
      [
        "a key twice, after a key of another type",
        (t) => t.replace('"step":7,', '"step":"7",').replace('"seed":1234,', '"seed":1234,"seed":1,'),
        ': "step" should be a whole number, found the string "7"',
      ],
      [
        "a key twice, the second of another type",
        (t) => t.replace('"step":7,', '"step":7,"step":5.0,'),
        ' has "step" twice',
      ],
      [
        "a whole number with a fraction of 0",
        (t) => t.replace('"step":7,', '"step":5.0,'),
        ': "step" should be a whole number, found 5.0',
      ],
      [
        "a whole number with an exponent",
        (t) => t.replace('"step":7,', '"step":1e3,'),
        ': "step" should be a whole number, found 1e3',
      ],
      [
        "a whole number with a sign",
        (t) => t.replace('"step":7,', '"step":-0,'),
        ': "step" should be a whole number, found -0',
      ],
      [
        "a count past 64 bits",
        (t) => t.replace('"step":7,', '"step":18446744073709551616,'),
        ': "step" should be a whole number, found 18446744073709551616',
      ],
      [
        "a value nested too deep",
        (t) => t.replace('"lasp_version":"0.1.0"', `"lasp_version":${deep}`),
        ` is not valid JSON: values nested too deep at byte ${written.indexOf('"lasp_version"') + 15 + 32}`,
      ],
    ];
    const texts: [string, string, string][] = [
      ...cases.map(([name, change, message]): [string, string, string] => [
        name,
        JSON.stringify(change(stateObject())),
        message,
      ]),
      ...edits.map(([name, edit, message]): [string, string, string] => [name, edit(written), message]),
    ];
    for (const [name, text, message] of texts) {
      it(name, async () => {
        expect(text).not.toBe(written);
        const file = join(dir, `bad-${name.replace(/ /g, "-")}.json`);
        writeFileSync(file, text);
        expect(run("state-read", file)).toEqual({ status: 1, stdout: "", stderr: file + message });
        // lasp run's check before the build says the same.
        const folder = join(dir, `bad-checkpoint-${name.replace(/ /g, "-")}`);
        mkdirSync(folder, { recursive: true });
        writeFileSync(join(folder, "trainer_state.json"), text);
        expect(await whyNotResumable(folder, HASH)).toBe(join(folder, "trainer_state.json") + message);
      });
    }

    it("lasp run's check before the build accepts the checkpoint the header writes", async () => {
      const runDir = runFolder();
      write(runDir, 9, 2);
      const folder = join(runDir, "checkpoints", "step-000009");
      expect(await whyNotResumable(folder, HASH)).toBeUndefined();
      expect(await whyNotResumable(folder, "0123abcd")).toBe(
        `it was written for another model (model hash ${HASH}, this run's is 0123abcd)`,
      );
    });

    it("accepts what the program accepts: a count of 2^64 - 1, a real with an exponent, a tab in a string", async () => {
      const edits: [(text: string) => string, Record<string, string>][] = [
        [(t) => t.replace('"step":7,', '"step":18446744073709551615,'), { step: "18446744073709551615" }],
        [(t) => t.replace('"lr":0.0003,', '"lr":1e-3,'), { lr: "0.001" }],
        [(t) => t.replace('"lasp_version":"0.1.0"', '"lasp_version":"0.1\t0"'), { lasp_version: "0.1\t0" }],
      ];
      for (const [k, [edit, read]] of edits.entries()) {
        const text = edit(JSON.stringify(stateObject()));
        const folder = join(dir, `accepted-${k}`);
        mkdirSync(folder);
        writeFileSync(join(folder, "trainer_state.json"), text);
        const r = run("state-read", join(folder, "trainer_state.json"));
        expect(r).toMatchObject({ status: 0, stderr: "" });
        expect(fields(r.stdout)).toMatchObject(read);
        // lasp run's check goes on to what comes next: the weights.
        expect(await whyNotResumable(folder, HASH)).toBe("it lacks model.safetensors");
      }
    });

    it("text that is not JSON, with where", () => {
      const file = join(dir, "broken.json");
      writeFileSync(file, '{"format_version": 1, "step": 7,}');
      expect(run("state-read", file).stderr).toBe(
        `${file} is not valid JSON: expected a key in quotes at byte 32`,
      );
      writeFileSync(file, '{"format_version": 1} trailing');
      expect(run("state-read", file).stderr).toBe(
        `${file} is not valid JSON: text after the object at byte 22`,
      );
      writeFileSync(file, "");
      expect(run("state-read", file).stderr).toBe(`${file} is not valid JSON: expected a value at byte 0`);
    });
  });

  describe("checkpoint_writer.cuh: the same checkpoint written by a thread while training goes on", () => {
    it("commits only once every rank's shard is there, and writes what the synchronous path writes", () => {
      const background = runFolder();
      const r = run("background", background, 7, 3, 0, HASH);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      // Rank 0's job was still waiting (nothing published) while ranks 1 and 2 had not written.
      expect(r.stdout).toBe(`waiting 1\nearly 0\nbusy 0\nwrote ${background}/checkpoints/step-000007\n`);
      const direct = runFolder();
      write(direct, 7, 3);
      const folder = (run: string): string => join(run, "checkpoints", "step-000007");
      expect(ls(folder(background))).toEqual(ls(folder(direct)));
      for (const file of ls(folder(direct)))
        expect(
          readFileSync(join(folder(background), file)).equals(readFileSync(join(folder(direct), file))),
          file,
        ).toBe(true);
      for (const rank of [0, 1, 2])
        expect(run("resume", folder(background), HASH, 3, rank)).toMatchObject({ status: 0, stderr: "" });
    });

    it("runs one job after another on one writer, with keep_checkpoints applied by each commit", () => {
      const runDir = runFolder();
      expect(run("background-sequence", runDir)).toEqual({
        status: 0,
        stdout:
          `wrote ${runDir}/checkpoints/step-000010\nwrote ${runDir}/checkpoints/step-000020\n` +
          `removed ${runDir}/checkpoints/step-000010\n`,
        stderr: "",
      });
      expect(ls(join(runDir, "checkpoints"))).toEqual(["step-000020"]);
    });

    it("writes in place on the caller's thread from sources, the same files, and the thread again after", () => {
      const runDir = runFolder();
      expect(run("in-place-sequence", runDir)).toEqual({
        status: 0,
        stdout: `busy 1\nwrote ${runDir}/checkpoints/step-000010\nwrote ${runDir}/checkpoints/step-000020\nbusy 0\n`,
        stderr: "",
      });
      const direct = runFolder();
      write(direct, 10, 1, 2, "h");
      write(direct, 20, 1, 2, "h");
      for (const step of ["step-000010", "step-000020"]) {
        const ours = join(runDir, "checkpoints", step);
        const theirs = join(direct, "checkpoints", step);
        expect(ls(ours)).toEqual(ls(theirs));
        for (const file of ls(theirs))
          expect(readFileSync(join(ours, file)).equals(readFileSync(join(theirs, file))), file).toBe(true);
      }
    });

    it("abandons a commit that waits for a shard when told to stop, and publishes nothing", () => {
      const runDir = runFolder();
      const r = run("abandon", runDir, 5);
      expect(r).toMatchObject({
        status: 1,
        stderr: `the checkpoint ${runDir}/checkpoints/step-000005 was abandoned waiting for the optimizer shard of rank 1`,
      });
      const left = ls(join(runDir, "checkpoints"));
      expect(left).toHaveLength(1);
      expect(left[0]).toMatch(/^step-000005\.tmp-\d+$/);
      expect(run("latest", runDir).status).toBe(1);
    });

    it("stops waiting for a shard when the temporary folder disappears, and says so", () => {
      const runDir = runFolder();
      const r = run("background-vanish", runDir, 8);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(
          `^cannot commit the checkpoint ${runDir}/checkpoints/step-000008: ${runDir}/checkpoints/step-000008\\.tmp-\\d+ ` +
            "disappeared while waiting for the optimizer shard of rank 1$",
        ),
      );
      expect(run("latest", runDir).status).toBe(1);
    });

    it("gives the writing error back to the caller instead of exiting from its thread", () => {
      const runDir = runFolder();
      expect(run("background-missing", runDir, 4)).toEqual({
        status: 1,
        stdout: "",
        stderr:
          `cannot write the optimizer shard of rank 0: ${runDir}/checkpoints/step-000004.tmp-1 does not exist ` +
          "(rank 0 creates it in begin, before every rank writes)",
      });
      expect(existsSync(join(runDir, "checkpoints"))).toBe(false);
    });
  });
});
