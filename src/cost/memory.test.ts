import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { kindBuffers } from "../codegen/view-model.js";
import { lowerSpec } from "../schedule/lower.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { main } from "../cli/main.js";
import { captureIo } from "../cli/test-io.js";
import { gradientBlocks, modelTables } from "../model/tables.js";
import {
  allocations,
  bytesByCategory,
  groupRows,
  tableGroupsOf,
  H100,
  memoryReport,
  memoryShape,
  parseMemorySize,
  programBytes,
  runtimeReserve,
  ONE_GPU_RUNTIME_RESERVE_BYTES,
  RUNTIME_RESERVE_BYTES,
} from "./memory.js";

function spec(source: string): ResolvedSpec {
  const result = checkSource("m.lasp", source);
  if (result.spec === undefined) throw new Error(result.diagnostics.map((d) => d.message).join("\n"));
  return result.spec;
}

const tiny = spec(`model m { vocab 512 hidden 128 ffn 512 heads 2 head_dim 64
  layer L = linear_attention { } stack L }
run { seq_len 128 }`);

describe("the memory model", () => {
  it("counts a tiny one-GPU model byte by byte, as the program allocates it", () => {
    const rows = 128; // batch 1 x 128 tokens on the one rank; hidden = heads x head_dim = 128
    // Parameters (untied, the default), every tensor a multiple of 128 elements, so no padding: the
    // embedding 512 x 128; a layer's two norms, Wq, Wk, Wv, Wo 128 x 128, gate, up, down 512 x 128; the final
    // norm; the LM head 512 x 128.
    const parameters = 512 * 128 + (2 * 128 + 4 * 128 * 128 + 3 * 512 * 128) + 128 + 512 * 128;
    const act = rows * 128 * 2; // one bf16 [rows][128] tensor
    const state = 2 * 64 * 64 * 4; // one fp32 [batch][heads][d][d] state
    const expected = {
      weights: parameters * 2,
      gradients: parameters * 4,
      optimizer: 0,
      activations:
        // the layer's input, mid and normed attention output, the final norm's input; gate_up [rows][1024] and
        // SwiGLU's h [rows][512]
        4 * act +
        rows * 1024 * 2 +
        rows * 512 * 2 +
        // the norms' saved 1/rms (two in the layer, the final one); the token ids and targets
        3 * rows * 4 +
        2 * rows * 4 +
        // q, k, v, o, do kept for the backward
        5 * act,
      workspaces:
        // shared rows: normed, y, dx, dnormed, dattn; ffn [rows][512]; one chunk of logits [128][vocab 512]
        5 * act +
        rows * 512 * 2 +
        128 * 512 * 2 +
        // the norm partials [2 x 128][128] and the losses, fp32
        (256 * 128 + rows) * 4 +
        // the embedding sort's three int arrays and CUB's scratch (estimated), the loss sum and count
        3 * 512 +
        (rows * 8 + 2 ** 20) +
        12 +
        // states m, p, dm, g; dq, dk, dv; the decay table (2 floats)
        4 * state +
        3 * act +
        2 * 4,
      communication: 0,
    };
    const shape = memoryShape(tiny);
    expect(shape.parameters.elements).toBe(parameters);
    expect(bytesByCategory(allocations(shape, 128))).toEqual(expected);
  });

  it("counts the model's tables as the program allocates them: every row once, padding included", () => {
    for (const name of ["linear-llama3-1b-hybrid", "bidirectional-encoder", "tiny-hybrid"]) {
      const s = spec(readFileSync(`examples/${name}.lasp`, "utf8"));
      const shape = memoryShape(s);
      const rows = ((s.run.batch / s.parallel.data) * s.run.seqLen) / s.parallel.sequence;
      const tables = modelTables(s, rows);
      const list = allocations(shape, s.run.seqLen);
      const sum = (prefix: string): number =>
        list.filter((a) => a.what.startsWith(prefix)).reduce((t, a) => t + a.elements * a.count, 0);
      expect(sum("activation ")).toBe(tables.activations.elements);
      expect(sum("statistic ")).toBe(tables.statistics.elements);
      expect(sum("parameter table")).toBe(tables.parameters.elements);
      expect(sum("gradient table")).toBe(tables.parameters.elements);
      const landing = list.find((a) => a.what === "gradient-sum landing buffer");
      if (s.parallel.gpus > 1)
        expect(landing?.elements).toBe(
          Math.max(...gradientBlocks(tables.parameters, tables.layers, tables.head)),
        );
      else expect(landing).toBeUndefined();
    }
  });

  it("interpolates the tables between row counts exactly as modelTables computes them", () => {
    for (const name of ["linear-llama3-1b", "tiny-hybrid", "bidirectional-encoder"]) {
      const s = spec(readFileSync(`examples/${name}.lasp`, "utf8"));
      const groups = tableGroupsOf(s);
      // Below and past the clamps (LM head chunk, norm partials), in several residues modulo 128.
      for (const rows of [64, 1000, 1024, 1088, 4096, 5000 + 64, 65536, 262144, 262144 + 192, 1 << 22])
        expect(groups(rows)).toEqual(groupRows(modelTables(s, rows)));
    }
  });

  it("covers every allocation of allocate_model (runtime/state.cuh)", () => {
    // Nothing typed lists the runtime's calls: read them from the header, so a new one fails here until the
    // model counts it. Each call's target, and the allocations the model counts for it.
    const counted: Record<string, string[]> = {
      weights: ["parameter table"],
      "m.parameter_elements": ["gradient table"],
      "program::kLargestGradientBlock": ["gradient-sum landing buffer"],
      activations: ["activation layers.{l}.input"],
      statistics: ["statistic layers.{l}.input_layernorm.rstd"],
      "st.ids": ["token ids and targets"],
      "st.targets": ["token ids and targets"],
      "st.loss_sum": ["loss sum (fp64) and target count"],
      "st.target_count": ["loss sum (fp64) and target count"],
      sort_workspace: ["embedding sort positions and ids", "embedding sort CUB scratch (an estimate)"],
    };
    const header = readFileSync("templates/runtime/state.cuh", "utf8");
    const body = header.slice(header.indexOf("inline void allocate_model("));
    const end = body.indexOf("\n}\n");
    const calls = [...body.slice(0, end).matchAll(/cudaMalloc\(&([\w.]+),|windows\.\w+\(([\w.:]+) \*/g)].map(
      (m) => m[1] ?? m[2]!,
    );
    expect(calls.sort()).toEqual(Object.keys(counted).sort());
    const s = spec(readFileSync("examples/linear-llama3-1b.lasp", "utf8"));
    const names = allocations(memoryShape(s), s.run.seqLen).map((a) => a.what);
    for (const what of Object.values(counted).flat()) expect(names).toContain(what);
  });

  it("gives lasp inspect --json the weights and gradients of Linear-Llama3-1B (tied) counted by hand", async () => {
    // 128256 x 2048 embedding (also the LM head); per layer two norms, Wq, Wk, Wv, Wo 2048 x 2048 and
    // gate, up, down 8192 x 2048; the final norm. Every tensor a multiple of 128 elements: no padding.
    const perLayer = 2 * 2048 + 4 * 2048 * 2048 + 3 * 8192 * 2048;
    const parameters = 128256 * 2048 + 16 * perLayer + 2048;
    expect(parameters).toBe(1_336_477_696);
    const io = captureIo();
    expect(await main(["inspect", "examples/linear-llama3-1b.lasp", "--json"], io)).toBe(0);
    const json = JSON.parse(io.out) as { memory: { categories: Record<string, number> } };
    expect(json.memory.categories["weights"]).toBe(parameters * 2);
    expect(json.memory.categories["gradients"]).toBe(parameters * 4);
    // The landing buffer: the largest block of gradients, the tied embedding, in fp32.
    expect(json.memory.categories["communication"]).toBeGreaterThanOrEqual(128256 * 2048 * 4);
  });

  it.each([
    "linear-llama3-1b",
    "linear-llama3-1b-hybrid",
    "tiny-baselines",
    "tiny-hybrid",
    "retention-1b",
    "bidirectional-encoder",
  ])("%s: the IR buffers evaluated at the spec's seq_len are those of the program lowered there", (name) => {
    const s = spec(readFileSync(`examples/${name}.lasp`, "utf8"));
    const program = lowerSpec(s);
    const direct = program.schedules.flatMap((schedule) =>
      kindBuffers(schedule).map((b) => [`${schedule.kind}.${b.field}`, b.elements]),
    );
    const modelled = allocations(memoryShape(s), s.run.seqLen)
      .filter((a) => direct.some(([what]) => what === a.what))
      .map((a) => [a.what, a.elements]);
    expect(modelled).toEqual(direct.filter(([, elements]) => (elements as number) > 0));
  });

  it.each([
    ["linear-llama3-1b-hybrid", 80e9],
    ["linear-llama3-1b-hybrid", 141e9],
    ["linear-llama3-8b-hybrid", 80e9],
    ["retention-1b", 24e9],
    ["tiny-hybrid", 16e9],
  ])("%s on %d bytes: the longest seq_len fits and one unit longer does not", (name, memory) => {
    const s = spec(readFileSync(`examples/${name}.lasp`, "utf8"));
    const shape = memoryShape(s);
    const gpu = { ...H100, memory };
    const report = memoryReport(shape, s.run.seqLen, gpu);
    const longest = report.largestSeqLen!;
    expect(longest % shape.unit).toBe(0);
    const reserve = runtimeReserve(s).bytes;
    expect(report.runtimeReserveBytes).toBe(reserve);
    expect(programBytes(shape, longest) + reserve).toBeLessThanOrEqual(memory);
    if (report.limitedBy === "memory")
      expect(programBytes(shape, longest + shape.unit) + reserve).toBeGreaterThan(memory);
    expect(memoryReport(shape, longest, gpu).fits).toBe(true);
  });

  it("reserves less on one GPU (no NCCL linked), and so fits a longer sequence there", () => {
    const eight = spec(readFileSync("examples/linear-llama3-1b.lasp", "utf8"));
    const one = spec(
      readFileSync("examples/linear-llama3-1b.lasp", "utf8").replace(
        /gpus 8  sequence 8  data 1/,
        "gpus 1  sequence 1  data 1",
      ),
    );
    expect(eight.parallel.gpus).toBe(8);
    expect(one.parallel.gpus).toBe(1);
    const eightReport = memoryReport(memoryShape(eight), eight.run.seqLen);
    const oneReport = memoryReport(memoryShape(one), 16384);
    expect(eightReport.runtimeReserveBytes).toBe(RUNTIME_RESERVE_BYTES);
    expect(eightReport.runtimeReserveWhat).toBe("CUDA context, NCCL, cuBLAS");
    expect(oneReport.runtimeReserveBytes).toBe(ONE_GPU_RUNTIME_RESERVE_BYTES);
    expect(oneReport.runtimeReserveWhat).toBe("CUDA context, cuBLAS");
    expect(oneReport.totalBytes - oneReport.programBytes).toBe(ONE_GPU_RUNTIME_RESERVE_BYTES);
    // The same program with the larger reserve would fit fewer tokens.
    const shape = memoryShape(one);
    const longest = oneReport.largestSeqLen!;
    expect(programBytes(shape, longest) + ONE_GPU_RUNTIME_RESERVE_BYTES).toBeLessThanOrEqual(H100.memory);
    expect(programBytes(shape, longest) + RUNTIME_RESERVE_BYTES).toBeGreaterThan(H100.memory);
  });

  it("grows with seq_len, and more memory never allows a shorter sequence", () => {
    const s = spec(readFileSync("examples/linear-llama3-1b-hybrid.lasp", "utf8"));
    const shape = memoryShape(s);
    let previous = 0;
    for (let k = 1; k <= 4096; k *= 2) {
      const bytes = programBytes(shape, k * shape.unit);
      expect(bytes).toBeGreaterThan(previous);
      previous = bytes;
    }
    const longest = [16e9, 40e9, 80e9, 141e9, 192e9].map(
      (memory) => memoryReport(shape, s.run.seqLen, { ...H100, memory }).largestSeqLen ?? 0,
    );
    expect(longest).toEqual([...longest].sort((a, b) => a - b));
    // Where memory is what limits the length, more of it allows a longer sequence.
    expect(longest[0]).toBeLessThan(longest[1]!);
    expect(longest[1]).toBeLessThan(longest[2]!);
  });

  it("counts `recompute none`'s kept norm outputs as activations: two [rows][hidden] bf16 tensors a layer", () => {
    const text = readFileSync("examples/linear-llama3-1b.lasp", "utf8");
    const of = (recompute: string) => spec(text.replace(/(seq_len \S+)/, `$1  recompute ${recompute}`));
    const [kept, made] = [of("none"), of("norms")];
    const seqLen = kept.run.seqLen;
    const rows = seqLen / kept.parallel.sequence;
    const [a, b] = [kept, made].map((s) => memoryReport(memoryShape(s), seqLen));
    expect(a!.categories.activations - b!.categories.activations).toBe(2 * 16 * rows * 2048 * 2);
    expect(a!.categories.workspaces).toBe(b!.categories.workspaces);
    expect(a!.largestSeqLen!).toBeLessThan(b!.largestSeqLen!);
  });

  it("says when no seq_len fits", () => {
    const report = memoryReport(memoryShape(tiny), 128, { ...H100, memory: 1e9 });
    expect(report.fits).toBe(false);
    expect(report.largestSeqLen).toBeUndefined();
  });

  it("reads GPU memory sizes in decimal and binary units", () => {
    expect(parseMemorySize("80GB")).toBe(80e9);
    expect(parseMemorySize("141 GB")).toBe(141e9);
    expect(parseMemorySize("96GiB")).toBe(96 * 2 ** 30);
    expect(parseMemorySize("0.5TB")).toBe(5e11);
    for (const bad of ["80", "80 gigs", "", "-1GB", "0GB"]) expect(parseMemorySize(bad)).toBeUndefined();
  });
});

describe("train mode's optimizer state", () => {
  const train = (parallel: string) =>
    spec(`model m { vocab 512 hidden 128 ffn 512 heads 2 head_dim 64
  layer L = linear_attention { } stack L x 2 }
parallel { ${parallel} }
run { seq_len 1K  mode train }`);

  it("is 10 bytes a parameter on one GPU (replicated: m, v and the masters' low halves), none in bench mode", () => {
    const one = train("gpus 1");
    const shape = memoryShape(one);
    const params = shape.parameters.elements;
    expect(shape.optimizerSharded).toBe(false);
    expect(bytesByCategory(allocations(shape, 1024)).optimizer).toBe(10 * params);
    const bench = memoryShape({ ...one, run: { ...one.run, mode: "bench" } });
    expect(bytesByCategory(allocations(bench, 1024)).optimizer).toBe(0);
  });

  it("is each rank's 1/W of every gradient block with ZeRO-1 on more GPUs, 14 bytes with accumulation", () => {
    const four = train("gpus 4  sequence 4");
    const shape = memoryShape(four);
    expect(shape.optimizerSharded).toBe(true);
    const t = modelTables(four, 1);
    const blocks = gradientBlocks(t.parameters, t.layers, t.head);
    const slices = blocks.reduce((n, b) => n + b / 4, 0);
    expect(shape.optimizerElements).toBe(slices);
    expect(bytesByCategory(allocations(shape, 1024)).optimizer).toBe(10 * slices);
    const accumulating = { ...four, run: { ...four.run, train: { ...four.run.train, accumulate: 4 } } };
    expect(bytesByCategory(allocations(memoryShape(accumulating), 1024)).optimizer).toBe(14 * slices);
  });
});

describe("Ulysses with replicated kv heads", () => {
  it("counts the R slots of dK, dV partials and the send buffers' one kv head per destination", () => {
    // kv_heads 2 over 8 ranks: R = 4 replicas of each kv head, 1 kv head per destination.
    const s = spec(`model m { vocab 512 hidden 1024 ffn 1024 heads 16 head_dim 64
  layer S = softmax_attention { kv_heads 2 } stack S x 2 }
parallel { gpus 8 sequence 8 softmax ulysses }
run { seq_len 8K }`);
    const L = 8192 / 8;
    const found = (what: string) => allocations(memoryShape(s), s.run.seqLen).find((a) => a.what === what);
    for (const name of ["dk_parts", "dv_parts"])
      expect(found(`S.${name}`)).toMatchObject({ elements: 4 * L * 2 * 64, elementBytes: 2 });
    // q's 2 heads, one kv head of k and one of v, for each of the 8 destinations.
    expect(found("S.qkv_send")).toMatchObject({ elements: 8 * L * (2 + 2) * 64, elementBytes: 2 });
  });
});
