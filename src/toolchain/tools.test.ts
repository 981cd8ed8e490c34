import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findTools, nvccFallbacks, parseVersion, which } from "./tools.js";

let root: string;

async function fakeTool(dir: string, name: string, output: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, name);
  await writeFile(file, `#!/bin/sh\necho '${output}'\n`);
  await chmod(file, 0o755);
  return file;
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "lasp-tools-test-"));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("finding nvcc and cmake", () => {
  it("reads the versions that nvcc and cmake print", () => {
    expect(
      parseVersion(
        "nvcc: NVIDIA (R) Cuda compiler driver\nCuda compilation tools, release 13.0, V13.0.88\nBuild cuda_13.0",
      ),
    ).toBe("13.0.88");
    expect(parseVersion("cmake version 3.25.1\n\nCMake suite maintained and supported by Kitware")).toBe(
      "3.25.1",
    );
    expect(parseVersion("something else")).toBeUndefined();
  });

  it("finds both on PATH with their versions", async () => {
    const bin = path.join(root, "bin");
    const nvcc = await fakeTool(bin, "nvcc", "Cuda compilation tools, release 12.8, V12.8.93");
    const cmake = await fakeTool(bin, "cmake", "cmake version 3.31.6");
    expect(await findTools({ env: { PATH: `/nonexistent:${bin}` } })).toEqual({
      nvcc: { path: nvcc, version: "12.8.93" },
      cmake: { path: cmake, version: "3.31.6" },
    });
  });

  it("looks for nvcc in CUDA_HOME and /usr/local/cuda when it is not on PATH", async () => {
    const cuda = path.join(root, "cuda");
    const nvcc = await fakeTool(path.join(cuda, "bin"), "nvcc", "release 12.4, V12.4.131");
    const tools = await findTools({ env: { PATH: "/nonexistent", CUDA_HOME: cuda } });
    expect(tools.nvcc).toEqual({ path: nvcc, version: "12.4.131" });
    expect(tools.cmake).toBeUndefined();
    expect(nvccFallbacks({})).toEqual(["/usr/local/cuda/bin/nvcc"]);
  });

  it("skips files that are not executable", async () => {
    const dir = path.join(root, "noexec");
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "cmake"), "not a program");
    expect(await which("cmake", { PATH: dir })).toBeUndefined();
  });
});
