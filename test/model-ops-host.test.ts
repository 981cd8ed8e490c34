// The host-side decisions of the model's runtime headers, compiled with nvcc into test/model-ops-host-harness.cu
// and run without a GPU: the norms' block shapes (one 16-byte vector per thread and pass, at most 256 threads),
// their backward's scratch, SwiGLU's grid, the LM head's chunk of tokens, and the messages of the refusals.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe } from "vitest";
import { itWithNvcc, nvcc, unoptimizedDeviceCode } from "./nvcc.js";

describe("the model ops' host logic (norm.cuh, swiglu.cuh, mlp_gemm.cuh, lm_head.cuh)", () => {
  itWithNvcc(
    "decides launch shapes, scratch and chunks as documented, and refuses shapes the kernels cannot take",
    async ({ expect }) => {
      const dir = mkdtempSync(join(tmpdir(), "lasp-ops-host-"));
      copyFileSync(resolve("test/model-ops-host-harness.cu"), join(dir, "harness.cu"));
      const build = await nvcc(
        dir,
        [
          "-std=c++17",
          "-gencode=arch=compute_90a,code=sm_90a",
          ...unoptimizedDeviceCode(),
          `-I${resolve("templates/runtime")}`,
          `-I${resolve("bench/gpu/harness")}`,
          `-I${resolve("src/codegen/fixtures/host-api")}`,
          "harness.cu",
          "-o",
          "harness",
        ],
        { outputs: ["harness"] },
      );
      expect(build.stderr).not.toMatch(/error/);
      expect(build.status).toBe(0);
      const run = (...args: string[]) => spawnSync(join(dir, "harness"), args, { encoding: "utf8" });
      const withChoice = (choice: string | undefined, ...args: string[]) => {
        const env = { ...process.env };
        delete env["LASP_MLP_GEMM"];
        delete env["LASP_HEAD_GEMM"];
        if (choice !== undefined)
          env[args[0] === "mlp-backend" ? "LASP_MLP_GEMM" : "LASP_HEAD_GEMM"] = choice;
        return spawnSync(join(dir, "harness"), args, { encoding: "utf8", env });
      };
      const shapes = run("shapes");
      expect(shapes.status).toBe(0);
      expect(shapes.stdout.split("\n")).toEqual([
        // hidden / 8 vectors over at most 256 threads: 1, 2 or 4 per thread (3 rounds up to 4), warps whole.
        "norm 8: 32 threads x 1 vectors",
        "norm 64: 32 threads x 1 vectors",
        "norm 512: 64 threads x 1 vectors",
        "norm 2048: 256 threads x 1 vectors",
        "norm 2056: 160 threads x 2 vectors",
        "norm 4096: 256 threads x 2 vectors",
        "norm 6144: 192 threads x 4 vectors",
        "norm 8192: 256 threads x 4 vectors",
        // Two fp32 partials per column for each of at most 1024 blocks (fewer rows, fewer blocks).
        `norm scratch 16384x2048: ${2 * 1024 * 2048 * 4}`,
        `norm scratch 100x64: ${2 * 100 * 64 * 4}`,
        "swiglu grid 10: 10, 100000: 2112",
        // 256 MiB of bf16 logits at vocab 128256 hold 1046 tokens: 1024 as a multiple of 128; at least 128.
        "chunk 256MiB 128256 16384: 1024",
        "chunk 1MiB 128256 16384: 128",
        "chunk 256MiB 512 100: 100",
        `logits 1024 128256: ${1024 * 128256 * 2}`,
        "",
      ]);
      const norm = run("refuse-norm", "2050");
      expect(norm.status).toBe(3);
      expect(norm.stderr).toBe(
        "norm_forward: hidden size 2050 must be a positive multiple of 8 and at most 8192\n",
      );
      expect(run("refuse-norm", "8200").stderr).toContain("hidden size 8200 must be");
      const swiglu = run("refuse-swiglu", "100");
      expect(swiglu.status).toBe(3);
      expect(swiglu.stderr).toContain(
        "swiglu_forward: ffn 100 and row stride 200 must be positive multiples of 8",
      );
      // LASP_MLP_GEMM: cublas asks nothing of the GPU; auto takes cuBLAS for a shape the kernel's tiles do not
      // cover (before asking for a GPU); lasp there stops with the reason; an unknown word stops with the choices.
      expect(withChoice("cublas", "mlp-backend", "16384", "8192", "2048").stdout).toBe("cublas\n");
      expect(withChoice(undefined, "mlp-backend", "16320", "8192", "2048").stdout).toBe("cublas\n");
      expect(withChoice("auto", "mlp-backend", "16384", "8000", "2048").stdout).toBe("cublas\n");
      const insist = withChoice("lasp", "mlp-backend", "16384", "8192", "2080");
      expect(insist.status).toBe(2);
      expect(insist.stderr).toBe(
        "lasp_program: LASP_MLP_GEMM=lasp, but lasp's MLP GEMM cannot run 16384 tokens x hidden 2080 x ffn 8192 " +
          "here: it needs tokens per rank % 128 == 0, hidden % 64 == 0 and ffn % 128 == 0 (auto or cublas run " +
          "cuBLAS and swiglu.cuh)\n",
      );
      const unknown = withChoice("fast", "mlp-backend", "16384", "8192", "2048");
      expect(unknown.status).toBe(2);
      expect(unknown.stderr).toBe(
        "lasp_program: LASP_MLP_GEMM=fast is not a choice (auto, lasp or cublas)\n",
      );
      // LASP_HEAD_GEMM, the LM head's logits on the same GEMM: the same words, a chunk's shape (the vocab a
      // multiple of 128: Llama 3's 128256 is); a ragged last chunk leaves to cuBLAS without asking the GPU.
      expect(withChoice("cublas", "head-backend", "4096", "128256", "2048").stdout).toBe("cublas\n");
      expect(withChoice(undefined, "head-backend", "4096", "50257", "768").stdout).toBe("cublas\n");
      expect(withChoice("auto", "head-backend", "1000", "128256", "2048").stdout).toBe("cublas\n");
      expect(withChoice(undefined, "head-logits", "1000", "128256", "2048").stdout).toBe("cuBLAS\n");
      expect(withChoice("cublas", "head-logits", "4096", "128256", "2048").stdout).toBe("cuBLAS\n");
      const insistHead = withChoice("lasp", "head-backend", "4096", "50257", "768");
      expect(insistHead.status).toBe(2);
      expect(insistHead.stderr).toBe(
        "lasp_program: LASP_HEAD_GEMM=lasp, but lasp's GEMM cannot run the LM head's logits over 4096 tokens x " +
          "hidden 768 x vocab 50257 here: it needs chunks of tokens % 128 == 0, hidden % 64 == 0 and vocab % 128 " +
          "== 0 (auto or cublas run cuBLAS)\n",
      );
      const unknownHead = withChoice("yes", "head-backend", "4096", "128256", "2048");
      expect(unknownHead.status).toBe(2);
      expect(unknownHead.stderr).toBe(
        "lasp_program: LASP_HEAD_GEMM=yes is not a choice (auto, lasp or cublas)\n",
      );
    },
    180_000,
  );
});
