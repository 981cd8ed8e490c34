// The one-rank stand-in for NCCL (templates/runtime/nccl_one_rank.cuh), which one-GPU programs build against:
// its pairing of sends and receives, its groups and its refusals, run on the host by
// test/nccl-one-rank-harness.cpp (compiled by nvcc's host compiler, linked with the CUDA runtime; no call it
// makes here reaches a GPU). The copies themselves ran on an H100: bench/results/2026-12-06-one-rank-without-nccl-h100.md.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe } from "vitest";
import { itWithNvcc, nvcc } from "./nvcc.js";

describe("the one-rank stand-in for NCCL", () => {
  itWithNvcc(
    "pairs sends with receives in order at a group's end, copies nothing in place, and refuses what one rank cannot do",
    async ({ expect }) => {
      const dir = mkdtempSync(join(tmpdir(), "lasp-one-rank-host-"));
      copyFileSync(resolve("test/nccl-one-rank-harness.cpp"), join(dir, "harness.cpp"));
      const build = await nvcc(
        dir,
        ["-std=c++17", "-x", "c++", `-I${resolve("templates/runtime")}`, "harness.cpp", "-o", "harness"],
        { outputs: ["harness"] },
      );
      expect(build.stderr).not.toMatch(/error/);
      expect(build.status).toBe(0);
      const run = (mode: string) => {
        const r = spawnSync(join(dir, "harness"), [mode], { encoding: "utf8" });
        return { lines: r.stdout.trim().split("\n"), err: r.stderr, status: r.status };
      };
      // ncclSuccess 0, ncclInvalidArgument 4, ncclInvalidUsage 5, as NCCL numbers them.
      const ranks = run("ranks");
      expect(ranks.lines).toEqual(["init 1 of 2 5"]);
      expect(ranks.err).toBe(
        "lasp: this program was built without NCCL (lasp/nccl_one_rank.cuh), so it runs as one rank; it was started as rank 1 of 2 (several GPUs need NCCL at build time)\n",
      );
      const peer = run("peer");
      expect(peer.lines).toEqual(["init 0 of 1 0", "send to 1 4", "destroy 0"]);
      expect(peer.err).toBe("lasp (one rank, no NCCL): a send or receive names rank 1 of 1\n");
      const sizes = run("sizes");
      expect(sizes.lines).toEqual(["init 0 of 1 0", "group 0", "send 4 0", "recv 8 0", "end 5", "destroy 5"]);
      expect(sizes.err).toContain("lasp (one rank, no NCCL): a send of 16 bytes meets a receive of 32\n");
      // Nested groups pair at the outermost end; 4 floats meet 2 doubles (16 bytes each); outside a group a
      // receive waits for its send; the split communicator goes away with nothing left over.
      const pairs = run("pairs");
      expect(pairs.status).toBe(0);
      expect(pairs.lines.every((line) => line.endsWith(" 0"))).toBe(true);
      expect(pairs.lines).toHaveLength(12);
      expect(pairs.err).toBe("");
      const unpaired = run("unpaired");
      expect(unpaired.lines).toEqual(["init 0 of 1 0", "send 0", "destroy 5"]);
      expect(unpaired.err).toBe("lasp (one rank, no NCCL): 1 sends and 0 receives were never paired\n");
      const groups = run("groups");
      expect(groups.lines).toEqual([
        "init 0 of 1 0",
        "end without start 5",
        "allreduce in place 0",
        "allgather in place 0",
        "reducescatter in place 0",
        "nothing to copy 0",
        "destroy 0",
      ]);
      expect(groups.err).toBe("lasp (one rank, no NCCL): a group ended that was never started\n");
    },
    120_000,
  );
});
