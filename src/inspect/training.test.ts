import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { EVAL_WINDOWS } from "../codegen/train-constants.js";
import { memoryShape } from "../cost/memory.js";
import { encodeTokenFile, GPT2_FORMAT } from "../data/llmc-format.js";
import { megatronParts } from "../data/test-megatron.js";
import { H100_PROFILE } from "../cost/profile.js";
import { lowerSpec } from "../schedule/lower.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { stepSection } from "./step.js";
import { DOCUMENTS_INDEX_PROBLEM, FOLDER_PROBLEM, trainingSection, trainingText } from "./training.js";

function spec(run: string): ResolvedSpec {
  const result = checkSource(
    "t.lasp",
    `model m { vocab 256 hidden 256 ffn 512 heads 4 head_dim 64
  layer L = linear_attention { decay 0.99 } stack L x 2 }
run { seq_len 1K  batch 4  ${run} }`,
  );
  if (result.spec === undefined) throw new Error(result.diagnostics.map((d) => d.message).join("\n"));
  return result.spec;
}

const section = (s: ResolvedSpec, folder: string) => {
  const step = stepSection(s, lowerSpec(s), H100_PROFILE, 1e9);
  return { step, training: trainingSection(s, step, memoryShape(s).parameters.elements, folder) };
};

describe("inspect's training section", () => {
  const folder = mkdtempSync(join(tmpdir(), "lasp-training-"));
  // 10,241 tokens: (10241 - 1) / 1024 = 10 windows of 1K tokens and the one after.
  writeFileSync(join(folder, "train.bin"), encodeTokenFile(GPT2_FORMAT, new Uint16Array(10241)));

  it("counts the run's tokens, its time, the data's windows and reads, and a checkpoint's bytes", () => {
    const s = spec(
      'mode train  steps 50  accumulate 2  data "train.bin"  checkpoint_every 20  keep_checkpoints 2',
    );
    const { step, training } = section(s, folder);
    expect(training).toBeDefined();
    const t = training!;
    expect(t.tokensPerStep).toBe(4 * 1024 * 2);
    expect(t.tokens).toBe(50 * 4 * 1024 * 2);
    expect(t.seconds).toBeCloseTo(50 * step.total, 12);
    expect(t.data).toMatchObject({ kind: "llm.c", tokens: 10241, windows: 10, epochs: (50 * 4 * 2) / 10 });
    expect(t.checkpointBytes).toBe(memoryShape(s).parameters.elements * 14);
    // One GPU: rank 0's host copy is the whole checkpoint.
    expect(t.checkpointHostBytes).toBe(t.checkpointBytes);
    const text = trainingText(t, 400);
    expect(text).toContain("50 x 8,192 tokens = 409,600 tokens");
    expect(text).toContain("10,241 tokens, 10 windows; the run reads it 40.00 times");
    expect(text).toContain("every 20 steps and at the end, the last 2 kept");
  });

  it("says how to make a token file of text named as `data`, and only of text", () => {
    writeFileSync(join(folder, "notes.txt"), "Some notes, written by hand: é\n\tindented\n");
    const text = section(spec('mode train  data "notes.txt"'), folder).training!.data;
    expect(text).toMatchObject({ kind: "unreadable" });
    expect(text.kind === "unreadable" && text.problem).toMatch(
      new RegExp(
        `; it looks like text: \`lasp tokens ${join(folder, "notes.txt")} -o ${join(folder, "notes")}\\.bin\` makes a token file of it$`,
      ),
    );
    writeFileSync(join(folder, "blob.dat"), new Uint8Array([1, 2, 3, 0, 255, 7]));
    const blob = section(spec('mode train  data "blob.dat"'), folder).training!.data;
    expect(blob.kind === "unreadable" && blob.problem).toMatch(/^not an llm\.c token file: 6 bytes/);
    expect(blob.kind === "unreadable" && blob.problem).not.toContain("looks like text");
  });

  it("says that `documents index` cannot read an llm.c file, as lasp run refuses it", () => {
    const refused = section(spec('mode train  data "train.bin"  documents index'), folder).training!;
    expect(refused.data).toEqual({
      path: join(folder, "train.bin"),
      kind: "unreadable",
      problem: DOCUMENTS_INDEX_PROBLEM,
    });
    expect(trainingText(refused, 400)).toContain(`train.bin: ${DOCUMENTS_INDEX_PROBLEM}`);
    expect(section(spec('mode train  data "train.bin"'), folder).training!.data.kind).toBe("llm.c");
  });

  it("says what it cannot count: a missing file, synthetic tokens; nothing outside train mode", () => {
    const missing = section(spec('mode train  data "nothing.bin"'), folder).training!;
    expect(missing.data).toMatchObject({ kind: "missing" });
    expect(trainingText(missing)).toContain("does not exist yet (`lasp tokens FILES... -o");
    expect(section(spec("mode train"), folder).training!.data).toEqual({ kind: "synthetic" });
    expect(section(spec("mode bench"), folder).training).toBeUndefined();
  });

  it("counts `batch` as the step's sequences over every replica, and says where a file holds fewer than a step reads", () => {
    const two = checkSource(
      "t.lasp",
      `model m { vocab 256 hidden 256 ffn 512 heads 4 head_dim 64
  layer L = linear_attention { decay 0.99 } stack L x 2 }
parallel { gpus 4  sequence 2  data 2 }
run { seq_len 1K  batch 4  mode train  accumulate 3  data "train.bin"  eval_data "small.bin" }`,
    ).spec!;
    // batch 4 is 2 sequences on each of the 2 replicas (the program's kBatch 2 x kDataParallel 2).
    // 4,097 tokens: 4 windows; one step reads batch 4 x accumulate 3 = 12, an evaluation batch 4.
    writeFileSync(join(folder, "small.bin"), encodeTokenFile(GPT2_FORMAT, new Uint16Array(4097)));
    const t = section(two, folder).training!;
    // Four GPUs: rank 0 holds the weights and a quarter of the fp32 state.
    const elements = memoryShape(two).parameters.elements;
    expect(t.checkpointHostBytes).toBe(elements * 2 + (elements / 4) * 12);
    expect(trainingText(t, 400)).toContain(
      `written while training goes on from a copy in host memory (${(t.checkpointHostBytes / 1e9).toFixed(2)} GB on rank 0; in place, training waiting, where the host cannot hold the copies or LASP_CHECKPOINT_COPY=none)`,
    );
    expect(t.tokensPerStep).toBe(4 * 3 * 1024);
    expect(t.windowsPerStep).toBe(12);
    expect(t.windowsPerEvalBatch).toBe(4);
    const text = trainingText(t, 400);
    expect(text).toContain("10 x 12,288 tokens");
    expect(text).toContain(
      "train.bin: 10,241 tokens: 10 windows, fewer than the 12 that one step reads (batch 4 x accumulate 3) (the program stops before step 1)",
    );
    expect(text).toContain("small.bin: 4,097 tokens, 4 windows"); // enough for an evaluation batch
  });

  it("reads an llm.c file's size against its header: a truncated file is unreadable, with its sizes", () => {
    const whole = encodeTokenFile(GPT2_FORMAT, new Uint16Array(5000));
    writeFileSync(join(folder, "cut.bin"), whole.subarray(0, whole.length - 10));
    const t = section(spec('mode train  data "cut.bin"'), folder).training!;
    expect(t.data).toMatchObject({ kind: "unreadable" });
    expect(trainingText(t, 400)).toContain(
      `cut.bin: ${whole.length - 10} bytes, but its header counts 5000 tokens of 2 bytes, ${whole.length} bytes with the header (truncated`,
    );
  });

  it("calls a folder named as data a folder, not the system's EISDIR", () => {
    mkdirSync(join(folder, "shards"), { recursive: true });
    const t = section(spec('mode train  data "shards"  eval_data "shards"  eval_every 10'), folder).training!;
    expect(t.data).toEqual({ path: join(folder, "shards"), kind: "unreadable", problem: FOLDER_PROBLEM });
    expect(t.evalData).toMatchObject({ kind: "unreadable", problem: FOLDER_PROBLEM });
    const text = trainingText(t, 400);
    expect(text).toContain("shards: it is a folder, not a token file");
    expect(text).not.toContain("EISDIR");
  });

  it("names the evaluation's windows and the schedule in plain numbers", () => {
    const s = spec(
      'mode train  steps 100  lr 3e-4  warmup_steps 10  data "train.bin"  eval_data "train.bin"  eval_every 25',
    );
    const text = trainingText(section(s, folder).training!, 400);
    // train.bin's 10 windows, cut to whole batches of 4: train.cuh's `evaluate` reads 8, not EVAL_WINDOWS.
    expect(text).toContain(
      "its first 8 windows (whole batches of 4; at most 32) every 25 steps and at the end",
    );
    expect(text).toContain("10 warmup steps to 0.0003, then cosine to 0.00003 at step 100");
    // A file of more than EVAL_WINDOWS windows: the first EVAL_WINDOWS.
    writeFileSync(join(folder, "big.bin"), encodeTokenFile(GPT2_FORMAT, new Uint16Array(40 * 1024 + 1)));
    const big = spec('mode train  steps 100  data "train.bin"  eval_data "big.bin"  eval_every 25');
    expect(trainingText(section(big, folder).training!, 400)).toContain(
      `its first ${EVAL_WINDOWS} windows every 25 steps and at the end`,
    );
    // eval_every 0: the program never opens eval_data (W0607), and inspect says so rather than "every 0 steps".
    const never = trainingText(
      section(spec('mode train  data "train.bin"  eval_data "big.bin"'), folder).training!,
      400,
    );
    expect(never).toContain("big.bin: 40,961 tokens, 40 windows; never read: eval_every is 0");
    expect(never).not.toContain("every 0 steps");
  });
});

describe("inspect's training section on a Megatron dataset", () => {
  const folder = mkdtempSync(join(tmpdir(), "lasp-megatron-"));
  const write = (name: string, parts: { bin?: Buffer; idx?: Buffer }) => {
    if (parts.bin !== undefined) writeFileSync(join(folder, `${name}.bin`), parts.bin);
    if (parts.idx !== undefined) writeFileSync(join(folder, `${name}.idx`), parts.idx);
  };
  const data = (name: string) => section(spec(`mode train  data "${name}"`), folder).training!.data;

  it("counts its tokens and windows from the index, named by prefix, PREFIX.bin or PREFIX.idx", () => {
    write("corpus", megatronParts(10241));
    for (const name of ["corpus", "corpus.bin", "corpus.idx"]) {
      expect(data(name), name).toMatchObject({ kind: "Megatron", tokens: 10241, windows: 10 });
    }
    const text = trainingText(section(spec('mode train  steps 5  data "corpus"'), folder).training!, 400);
    expect(text).toContain(
      "corpus (a Megatron-LM dataset): 10,241 tokens, 10 windows; the run reads it 2.00 times",
    );
  });

  it("says what the program would refuse: a part missing, a bad header, sizes that disagree", () => {
    const { bin, idx } = megatronParts(2000);
    write("lonely", { bin });
    write("orphan", { idx });
    const cases: [string, { bin?: Buffer; idx?: Buffer } | undefined, string][] = [
      [
        "lonely",
        undefined,
        `the Megatron dataset ${join(folder, "lonely")} has no index: ${join(folder, "lonely")}.idx is missing`,
      ],
      [
        "lonely.bin",
        undefined,
        `not an llm.c token file (nor a Megatron dataset: there is no ${join(folder, "lonely")}.idx beside it)`,
      ],
      [
        "orphan",
        undefined,
        `the Megatron dataset ${join(folder, "orphan")} has no data: ${join(folder, "orphan")}.bin is missing`,
      ],
      [
        "magic",
        { bin, idx: Buffer.concat([Buffer.from("XX"), idx.subarray(2)]) },
        'is not a Megatron index: it does not start with "MMIDIDX\\0\\0"',
      ],
      [
        "short",
        { bin, idx: idx.subarray(0, 20) },
        "is truncated: 20 bytes, too short for the 34-byte header",
      ],
      [
        "float",
        { bin, idx: Buffer.concat([idx.subarray(0, 17), Buffer.from([7]), idx.subarray(18)]) },
        "has dtype code 7 (byte 17: float32, not token ids)",
      ],
      [
        "cut",
        { bin, idx: idx.subarray(0, idx.length - 8) },
        "is truncated: its header announces 1 sequences and 2 document indices",
      ],
      [
        "long",
        { bin: Buffer.alloc(4002), idx },
        `${join(folder, "long")}.bin is longer than its index says: ${join(folder, "long")}.idx describes 2000 tokens (4000 bytes), the file has 4002`,
      ],
    ];
    for (const [name, parts, problem] of cases) {
      if (parts !== undefined) write(name, parts);
      const d = data(name);
      expect(d.kind, name).toBe("unreadable");
      expect((d as { problem?: string }).problem, name).toContain(problem);
    }
  });
});
