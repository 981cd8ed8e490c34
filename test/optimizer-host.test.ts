// The optimizer's arithmetic (adamw.cuh's element update and decay table, grad_norm.cuh's sum of squares),
// compiled with nvcc into test/optimizer-host-harness.cu and run on the host through the same
// __host__ __device__ functions the kernels run; no kernel runs. The expected values come from a textbook AdamW
// written here in float64 (Loshchilov & Hutter's decoupled decay, Kingma & Ba's bias correction), not from the
// header's formulas.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, type ExpectStatic } from "vitest";
import { itWithNvcc, nvcc, unoptimizedDeviceCode } from "./nvcc.js";

type Run = (
  args: string[],
  input?: string,
  env?: Record<string, string>,
) => { status: number | null; stdout: string; stderr: string };

async function build(): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), "lasp-optimizer-host-"));
  copyFileSync(resolve("test/optimizer-host-harness.cu"), join(dir, "harness.cu"));
  const result = await nvcc(
    dir,
    [
      "-std=c++17",
      "-gencode=arch=compute_90a,code=sm_90a",
      ...unoptimizedDeviceCode(),
      `-I${resolve("templates/runtime")}`,
      "harness.cu",
      "-o",
      "harness",
    ],
    { outputs: ["harness"] },
  );
  if (result.status !== 0) throw new Error(`nvcc failed:\n${result.stderr}`);
  return (args, input, env) => {
    const base = { ...process.env };
    delete base["LASP_ADAMW"];
    const r = spawnSync(join(dir, "harness"), args, { encoding: "utf8", input, env: { ...base, ...env } });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
}

const f32 = (hex: string): number =>
  new DataView(new Uint32Array([parseInt(hex, 16)]).buffer).getFloat32(0, true);
const f64 = (hex: string): number =>
  new DataView(new BigUint64Array([BigInt(`0x${hex}`)]).buffer).getFloat64(0, true);

/** The bits of a float32 value. */
const u32 = (x: number): number => new Uint32Array(new Float32Array([x]).buffer)[0]!;

/** bf16 bits of a float32 value, round to nearest even (finite values). */
function bf16Bits(x: number): number {
  const u = u32(x);
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** bf16 bits of a float32 value, round to nearest, ties away from zero (master_weights.cuh's compute weight). */
function bf16BitsAway(x: number): number {
  return ((u32(x) + 0x8000) >>> 16) & 0xffff;
}

/** A small deterministic generator (xorshift32) of float32 values in (-scale, scale). */
function values(count: number, seed: number, scale: number): number[] {
  let s = seed >>> 0 || 1;
  return Array.from({ length: count }, () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return Math.fround(((s / 2 ** 32) * 2 - 1) * scale);
  });
}

interface Hyper {
  beta1: number;
  beta2: number;
  eps: number;
  wd: number;
}
interface Step {
  lr: number;
  clip: number;
  t: number;
  grad: number[];
}

/** AdamW in float64: m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t), w -= lr (m_hat / (sqrt(v_hat) + eps) + wd w). */
function adamw64(w: number[], m: number[], v: number[], decay: boolean[], h: Hyper, step: Step): void {
  for (let i = 0; i < w.length; ++i) {
    const g = step.grad[i]! * step.clip;
    m[i] = h.beta1 * m[i]! + (1 - h.beta1) * g;
    v[i] = h.beta2 * v[i]! + (1 - h.beta2) * g * g;
    const mHat = m[i]! / (1 - h.beta1 ** step.t);
    const vHat = v[i]! / (1 - h.beta2 ** step.t);
    const decayTerm = decay[i] ? h.wd * w[i]! : 0;
    w[i] = w[i]! - step.lr * (mHat / (Math.sqrt(vHat) + h.eps) + decayTerm);
  }
}

describe("the optimizer's arithmetic on the host (adamw.cuh, grad_norm.cuh)", () => {
  itWithNvcc(
    "AdamW steps match a float64 AdamW, decay follows the table, and the launchers refuse bad input",
    async ({ expect }) => {
      const run = await build();
      checkAdamw(run, expect);
      checkMasterHalves(run, expect);
      checkTables(run, expect);
      checkRefusals(run, expect);
      checkNorm(run, expect);
    },
    180_000,
  );
});

function checkAdamw(run: Run, expect: ExpectStatic): void {
  // 11 elements: rows [0,5) decayed, [5,9) not, [9,11) decayed; rows cross the vectors of 4 and the last 3
  // elements are the kernel's tail. Elements 1 and 6 start identical, so only the decay tells them apart.
  const n = 11;
  const rows = [
    [0, 5, 1],
    [5, 4, 0],
    [9, 2, 1],
  ] as const;
  const decay = Array.from({ length: n }, (_, i) => i < 5 || i >= 9);
  const h: Hyper = { beta1: 0.9, beta2: 0.95, eps: 1e-8, wd: 0.1 };
  const w = values(n, 7, 0.5);
  const m = values(n, 11, 1e-3);
  const v = values(n, 13, 1e-6).map((x) => Math.fround(Math.abs(x)));
  w[6] = w[1]!;
  m[6] = m[1]!;
  v[6] = v[1]!;
  // t from 1 (full bias correction), the lr of a warmup then a decay, clip scales below 1 on two steps; the
  // grads of elements 1 and 6 equal too; one gradient 0 (only the moments' decay moves that element).
  const steps: Step[] = [
    { lr: 1e-3, clip: 1, t: 1, grad: values(n, 17, 1) },
    { lr: 2e-3, clip: 0.5, t: 2, grad: values(n, 19, 2) },
    { lr: 3e-3, clip: 1, t: 3, grad: values(n, 23, 0.1) },
    { lr: 2.5e-3, clip: 0.25, t: 4, grad: values(n, 29, 4) },
    { lr: 1e-3, clip: 1, t: 5, grad: values(n, 31, 1) },
  ];
  for (const s of steps) s.grad[6] = s.grad[1]!;
  steps[2]!.grad[3] = 0;
  const input = [
    `${n} ${steps.length} ${h.beta1} ${h.beta2} ${h.eps} ${h.wd}`,
    `rows ${rows.length} ${rows.map((r) => r.join(",")).join(" ")}`,
    ...w.map((_, i) => `${w[i]} ${m[i]} ${v[i]}`),
    ...steps.flatMap((s) => [`${s.lr} ${s.clip} ${s.t}`, s.grad.join(" ")]),
  ].join("\n");
  const r = run(["adamw"], input);
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  const lines = r.stdout.trim().split("\n");
  expect(lines).toHaveLength(n * steps.length);
  const [w64, m64, v64] = [[...w], [...m], [...v]];
  let worst = 0;
  const gmax = new Array<number>(n).fill(0);
  steps.forEach((s, k) => {
    adamw64(w64, m64, v64, decay, h, s);
    for (let i = 0; i < n; ++i) {
      const [wh, mh, vh, bh] = lines[k * n + i]!.split(" ");
      const [w32, m32, v32] = [f32(wh!), f32(mh!), f32(vh!)];
      // Tolerance: float32 rounds each of the ~10 operations of a step, an error of a few 2^-24 relative that
      // five steps add up; 2^-20 (1e-6), the bound the issue sets against torch.optim.AdamW, holds with margin.
      // It is relative to the value for w and v (v sums squares: no cancellation), and for m to the largest
      // clipped gradient so far: m averages gradients of both signs, so it can cancel to near 0 while its
      // rounding error stays of the gradients' size.
      gmax[i] = Math.max(gmax[i]!, Math.abs(s.grad[i]! * s.clip));
      for (const [name, got, want, scale] of [
        ["w", w32, w64[i]!, Math.abs(w64[i]!)],
        ["m", m32, m64[i]!, gmax[i]!],
        ["v", v32, v64[i]!, v64[i]!],
      ] as const) {
        const rel = Math.abs(got - want) / scale;
        worst = Math.max(worst, rel);
        expect(rel, `step ${s.t} element ${i} ${name}: ${got} vs ${want}`).toBeLessThanOrEqual(2 ** -20);
      }
      // The bf16 compute weight is the fp32 master rounded to nearest (ties away from zero; no tie here, so
      // also to nearest even), and the master came back whole from it and its low half (the line's w).
      expect(parseInt(bh!, 16), `bf16 of step ${s.t} element ${i}`).toBe(bf16BitsAway(w32));
      expect(parseInt(bh!, 16), `bf16 of step ${s.t} element ${i}`).toBe(bf16Bits(w32));
    }
    // Decay is the only difference between elements 1 and 6: decayed 1 shrinks toward 0 more.
    const w1 = f32(lines[k * n + 1]!.split(" ")[0]!);
    const w6 = f32(lines[k * n + 6]!.split(" ")[0]!);
    expect(Math.abs(w1)).toBeLessThan(Math.abs(w6));
  });
  expect(worst).toBeGreaterThan(0); // float32 did round somewhere: the comparison is not vacuous
  // The per-step constants, rounded once from double: 1 - beta1^t etc. at t = 1 and t = 10.
  for (const t of [1, 10]) {
    const c = run(["constants", "1e-3", "0.9", "0.95", "1e-8", "0.1", "0.5", String(t)]);
    expect(c.status).toBe(0);
    const got = c.stdout.trim().split(" ").map(f32);
    expect(got).toEqual(
      [
        0.5,
        1 - 0.9,
        0.95,
        1 - 0.95,
        1 - 1e-3 * 0.1,
        1e-3 / (1 - 0.9 ** t),
        Math.sqrt(1 - 0.95 ** t),
        1e-8,
      ].map(Math.fround),
    );
  }
}

function checkMasterHalves(run: Run, expect: ExpectStatic): void {
  // The fp32 master in two halves: every value comes back bit for bit, the high half is the value rounded to
  // nearest with ties away from zero. Cases: zeros, a bf16 value (low half 0), just below and above a tie, the
  // ties of an even and an odd high half (away from zero both), a negative tie, a rounding that carries into the
  // exponent, the largest value that rounds to a finite bf16 and the largest fp32 (its high half infinity, as
  // round to nearest even gives too: it still comes back), subnormals, and random values.
  const cases = [
    0x00000000,
    0x80000000,
    0x3f800000,
    0x3f807fff,
    0x3f808001,
    0x3f808000,
    0x3f818000,
    0xbf808000,
    0x3fffffff,
    0x7f7f7fff,
    0x7f7fffff,
    0x00000001,
    0x807fffff,
    0x00008000,
    ...values(64, 41, 3).map(u32),
  ];
  const r = run(["master", ...cases.map((u) => u.toString(16))]);
  expect(r.status).toBe(0);
  const lines = r.stdout.trim().split("\n");
  expect(lines).toHaveLength(cases.length);
  let ties = 0;
  cases.forEach((u, i) => {
    const [hi, lo, joined] = lines[i]!.split(" ").map((h) => parseInt(h, 16));
    const x = new Float32Array(new Uint32Array([u]).buffer)[0]!;
    expect(joined, `0x${u.toString(16)} comes back`).toBe(u);
    expect(hi, `0x${u.toString(16)}'s high half`).toBe(bf16BitsAway(x));
    // The low half is the signed remainder: hi << 16 plus it gives the value back.
    expect(((hi! << 16) + ((lo! << 16) >> 16)) >>> 0).toBe(u);
    if ((u & 0xffff) === 0x8000) ties++;
    else expect(hi, `0x${u.toString(16)} rounds to nearest`).toBe(bf16Bits(x));
  });
  expect(ties).toBe(4); // the four exact ties among the fixed cases
  // Ties go away from zero: 1.00390625 + half an ulp of bf16 rounds up from an even high half too.
  expect(lines[5]!.split(" ")[0]).toBe("3f81");
  expect(lines[7]!.split(" ")[0]).toBe("bf81");
}

function checkTables(run: Run, expect: ExpectStatic): void {
  // A global table of 3 tensors cut to the shard [10, 50): the split tensors keep their flags, offsets re-based.
  expect(run(["shard-table", "10", "50", "0,20,1", "20,8,0", "28,100,1"]).stdout).toBe(
    "0,10,1 10,8,0 18,22,1 | ok\n",
  );
  // A shard inside one tensor, and one past a tensor that ends at its start.
  expect(run(["shard-table", "30", "40", "0,20,1", "20,8,0", "28,100,1"]).stdout).toBe("0,10,1 | ok\n");
  expect(run(["shard-table", "20", "28", "0,20,1", "20,8,0", "28,100,1"]).stdout).toBe("0,8,0 | ok\n");
  expect(run(["check-table", "10", "0,4,1", "4,6,0"]).stdout).toBe("ok\n");
  expect(run(["check-table", "10", "0,4,1", "5,5,0"]).stdout).toBe(
    "decay table row 1 starts at 5, expected 4 (rows must be back to back)\n",
  );
  expect(run(["check-table", "10", "0,4,1", "4,0,0", "4,6,1"]).stdout).toBe("decay table row 1 is empty\n");
  expect(run(["check-table", "12", "0,4,1", "4,6,0"]).stdout).toBe(
    "decay table covers 10 elements, the shard has 12\n",
  );
  // The Hopper path's tile flag: a tile inside one row takes its flag (the last row's too); one that reaches into
  // the next row, even by one element, gets -1 (each element's own row); one that ends where a row ends does not.
  const table = ["0,20,1", "20,8,0", "28,100,1"];
  expect(run(["range-decay", "0", "20", ...table]).stdout).toBe("1\n");
  expect(run(["range-decay", "20", "8", ...table]).stdout).toBe("0\n");
  expect(run(["range-decay", "0", "21", ...table]).stdout).toBe("-1\n");
  expect(run(["range-decay", "12", "10", ...table]).stdout).toBe("-1\n");
  expect(run(["range-decay", "40", "88", ...table]).stdout).toBe("1\n");
}

function checkRefusals(run: Run, expect: ExpectStatic): void {
  const refusals: [string, string][] = [
    ["step", "adamw: step 0 must be at least 1 (bias correction counts from 1)"],
    ["beta", "adamw: betas 0.9, 1 must be between 0 and 1 (exclusive)"],
    ["clip", "adamw: clip scale 0 must be in (0, 1] (a non-finite norm stops the run first)"],
    ["lr", "adamw: lr -1 must be finite and at least 0"],
    ["table-size", "adamw: the decay table covers 60 elements, the shard has 64"],
    ["null", "adamw: weights, low, m, v and grad must all be given"],
    [
      "align",
      "adamw: m, v and grad must be 16-byte aligned, weights and low 8-byte aligned (a shard starting at a multiple of 4 elements)",
    ],
    ["upload", "adamw: decay table row 1 starts at 40, expected 32 (rows must be back to back)"],
  ];
  for (const [what, message] of refusals) {
    const r = run(["refuse-adamw", what]);
    expect(r.status, what).toBe(3);
    expect(r.stderr).toBe(message + "\n");
  }
  // LASP_ADAMW: auto (or unset) takes the Hopper path where it runs, plain keeps the vectorised kernel; another
  // word stops with the choices.
  expect(run(["adamw-choice"]).stdout).toBe("auto\n");
  expect(run(["adamw-choice"], undefined, { LASP_ADAMW: "auto" }).stdout).toBe("auto\n");
  expect(run(["adamw-choice"], undefined, { LASP_ADAMW: "plain" }).stdout).toBe("plain\n");
  const unknown = run(["adamw-choice"], undefined, { LASP_ADAMW: "bulk" });
  expect(unknown.status).toBe(2);
  expect(unknown.stderr).toBe("lasp_program: LASP_ADAMW=bulk is not a choice (auto or plain)\n");
  const scratch = run(["refuse-norm", "scratch"]);
  expect(scratch.status).toBe(3);
  expect(scratch.stderr).toBe("grad_norm_squared: scratch of 8 bytes, 1048576 elements need 8192\n");
  expect(run(["refuse-norm", "null"]).stderr).toBe("grad_norm_squared: x, out and scratch must be given\n");
}

function checkNorm(run: Run, expect: ExpectStatic): void {
  const norm = (x: number[]): [number, number, number] => {
    const r = run(["norm"], `${x.length}\n${x.join(" ")}\n`);
    expect(r.status).toBe(0);
    const [blocks, bytes, sum] = r.stdout.trim().split(" ");
    return [Number(blocks), Number(bytes), f64(sum!)];
  };
  // Multiples of 1/8 below 64: every square and partial sum is exact in double, so any order gives the
  // exact sum; the blocks are one per 256 elements, at most 1024 (a function of n alone).
  const exact = Array.from({ length: 1000 }, (_, i) => ((i * 37) % 509) / 8 - 31);
  expect(norm(exact)).toEqual([4, 32, exact.reduce((s, x) => s + x * x, 0)]);
  expect(norm([])).toEqual([1, 8, 0]);
  expect(norm([3])).toEqual([1, 8, 9]);
  // 300000 values over 1024 blocks (each thread strides over several): within 1e-12 of a float64 sum, the
  // difference of summation order alone.
  const many = values(300_000, 3, 1e-2);
  const [blocks, bytes, sum] = norm(many);
  expect([blocks, bytes]).toEqual([1024, 8192]);
  const want = many.reduce((s, x) => s + x * x, 0);
  expect(Math.abs(sum - want) / want).toBeLessThan(1e-12);
}
