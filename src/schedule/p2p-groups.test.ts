import { describe, expect, it } from "vitest";
import { lowerSpec } from "./lower.js";
import { pairedWithPrevious } from "./p2p-groups.js";
import { linearKind, softmaxKind, tinySpec } from "./test-specs.js";

describe("which send and receive share an NCCL group", () => {
  it("pairs a ring attention rank's send with its receive: every rank sends before it receives", () => {
    const spec = tinySpec({
      ranks: 4,
      layout: "zigzag",
      seqLen: 128,
      softmax: "ring",
      layers: [softmaxKind("S", 4)],
    });
    const pass = lowerSpec(spec, { block: 8 }).schedules[0]!.passes.forward;
    const pairedByRank = pairedWithPrevious(pass);
    for (const [i, program] of pass.entries()) {
      const recvs = program.steps.filter((s) => s.kind === "recv");
      expect(recvs.length).toBe(3);
      const paired = pairedByRank[i]!;
      for (const recv of recvs) expect(paired.has(recv.id)).toBe(true);
    }
  });

  it("keeps apart a send and a receive whose data comes back through other ranks (LASP-1 zigzag)", () => {
    // Rank 0 sends P[1] up the chain and receives P[7] when it comes back down: in one group the receive
    // could hold the send, and the chain would never start.
    const spec = tinySpec({
      ranks: 4,
      layout: "zigzag",
      seqLen: 128,
      linear: "lasp1",
      layers: [linearKind("L", 4, 0.9)],
    });
    for (const passName of ["forward", "backward"] as const) {
      const pass = lowerSpec(spec, { block: 8 }).schedules[0]!.passes[passName];
      const rank0 = pass[0]!;
      const send = rank0.steps.find((s) => s.kind === "send")!;
      const recv = rank0.steps.find((s) => s.kind === "recv")!;
      expect(Math.abs(send.id - recv.id)).toBe(1); // adjacent on the communication stream
      expect(pairedWithPrevious(pass)[0]!.size).toBe(0);
    }
  });
});
