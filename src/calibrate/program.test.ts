// The microbenchmark program's files and, where nvcc is, its compile: the kernels translation unit for sm_90a
// (CUDA toolkit only), and main.cu against the stand-in NCCL and cuBLAS headers of src/codegen/fixtures.
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { itWithNvcc, mainHostObject, nvcc, unoptimizedDeviceCode } from "../../test/nvcc.js";
import { calibrateProgram } from "./program.js";

const files = calibrateProgram("0.0.0-test");

function writeProgram(): string {
  const dir = mkdtempSync(join(tmpdir(), "lasp-calibrate-nvcc-"));
  for (const [name, text] of files) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

describe("the microbenchmark program's files", () => {
  it("holds every header its sources include", () => {
    for (const [name, text] of files) {
      const folder = name.includes("/") ? `${dirname(name)}/` : "";
      for (const [, include] of text.matchAll(/^#include "([^"]+)"/gm)) {
        const found = files.has(`${folder}${include}`) || files.has(include!);
        expect(found, `${name} includes ${include}`).toBe(true);
      }
    }
  });

  // build.sh asks nvcc whether it finds nccl.h (a preprocessor run): with it the program links NCCL, without
  // it the program measures one GPU against lasp/nccl_one_rank.cuh. A stand-in nvcc answers and records.
  it("builds with NCCL where nvcc finds nccl.h, and without it for one GPU", () => {
    for (const found of [true, false]) {
      const dir = writeProgram();
      const bin = join(dir, "fake-bin");
      mkdirSync(bin);
      const nvccScript = join(bin, "nvcc");
      writeFileSync(
        nvccScript,
        '#!/bin/sh\nfor a in "$@"; do [ "$a" = -E ] && exit "$FAKE_NCCL_EXIT"; done\necho "$@" >> "$FAKE_LOG"\n',
        { mode: 0o755 },
      );
      const log = join(dir, "nvcc.log");
      execFileSync("bash", ["build.sh"], {
        cwd: dir,
        env: {
          ...process.env,
          PATH: `${bin}:${process.env["PATH"]}`,
          FAKE_NCCL_EXIT: found ? "0" : "1",
          FAKE_LOG: log,
        },
      });
      const command = readFileSync(log, "utf8");
      expect(command).toContain("main.cu kernels.cu");
      if (found) {
        expect(command).toContain("-lnccl");
        expect(command).not.toContain("LASP_WITHOUT_NCCL");
      } else {
        expect(command).toContain("-DLASP_WITHOUT_NCCL");
        expect(command).not.toContain("-lnccl");
      }
    }
  });

  it("names lasp's version in every source, so that a new lasp builds anew", () => {
    for (const name of ["main.cu", "kernels.cu", "CMakeLists.txt", "build.sh"])
      expect(files.get(name), name).toContain("lasp 0.0.0-test calibrate");
    expect(files.get("build.sh")!.startsWith("#!/usr/bin/env bash\n")).toBe(true);
  });
});

describe("compiling the microbenchmark program", () => {
  const kernels = [
    "-std=c++17",
    "-I.",
    "-Ilasp",
    ...unoptimizedDeviceCode(),
    // PTX, not sm_90a's SASS: its kernels are the program's (the same instantiations, checked on 2026-12-08 by
    // their PTX entries: all but its fill, copy and add kernels), which ptxas assembles once, in
    // codegen.test.ts's sm_90a pass; ptxas here took half of this compile (12 of 26 s).
    "-gencode=arch=compute_90a,code=compute_90a",
  ];
  itWithNvcc(
    "compiles kernels.cu for compute_90a and main.cu against the stand-in headers; main's calib:: calls are defined",
    async ({ expect }) => {
      const dir = writeProgram();
      const fixtures = resolve("src/codegen/fixtures/host-api");
      const [k, m] = await Promise.all([
        nvcc(dir, [...kernels, "-c", "kernels.cu", "-o", "kernels.o"], { outputs: ["kernels.o"] }),
        nvcc(dir, mainHostObject(fixtures), { outputs: ["main.o"] }),
      ]);
      expect(k.stderr).not.toMatch(/error/);
      expect([k.status, m.status]).toEqual([0, 0]);
      const symbols = (args: string[]) =>
        execFileSync("nm", ["-C", ...args], { cwd: dir, encoding: "utf8" })
          .split("\n")
          .map((line) => line.replace(/^\s*([0-9a-f]+\s+)?\S\s+/, ""))
          .filter((name) => name.startsWith("calib::"));
      const needed = symbols(["--undefined-only", "main.o"]);
      const defined = new Set(symbols(["--defined-only", "kernels.o"]));
      expect(needed.length).toBeGreaterThanOrEqual(5);
      expect(needed.filter((name) => !defined.has(name))).toEqual([]);
    },
    300_000,
  );
});
