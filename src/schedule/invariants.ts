// Invariants every lowered program must satisfy, checked in tests on every strategy and layout:
// each recv has its send (same size), each collective has every rank of its group (same kind, same size),
// no step reads a buffer before some step writes it, the happens-before graph is acyclic (no deadlock),
// and the bytes each rank moves equal the closed-form volumes.
import { bytesOf } from "./context.js";
import { PassGraph } from "./graph.js";
import {
  stepReads,
  stepWrites,
  type LayerSchedule,
  type Pass,
  type RankProgram,
  type ScheduleProgram,
} from "./ir.js";
import { closedFormVolume } from "./volumes.js";

export function checkProgram(program: ScheduleProgram): string[] {
  const problems: string[] = [];
  for (const schedule of program.schedules) {
    for (const pass of ["forward", "backward"] as const) {
      const where = `${schedule.kind} (${schedule.strategy}) ${pass}`;
      problems.push(...checkPass(program, schedule, pass).map((p) => `${where}: ${p}`));
    }
  }
  return problems;
}

export function checkPass(program: ScheduleProgram, schedule: LayerSchedule, pass: Pass): string[] {
  const programs = schedule.passes[pass];
  const problems: string[] = [];
  problems.push(...matchPointToPoint(programs), ...matchCollectives(programs));
  const graph = new PassGraph(programs);
  problems.push(...graph.problems);
  const { stuck } = graph.order();
  if (stuck.length > 0)
    problems.push(
      `deadlock: ${stuck.length} steps wait on each other (first: rank ${stuck[0]!.rank} step ${stuck[0]!.step})`,
    );
  else problems.push(...readsAfterWrites(graph));
  for (const rp of programs) {
    const moved = rp.steps.reduce(
      (sum, s) => sum + (s.kind === "collective" || s.kind === "send" ? s.bytes : 0),
      0,
    );
    const expected = closedFormVolume(
      schedule.layer,
      schedule.strategy,
      pass,
      program.layout,
      program.sizes,
      rp.rank,
      program.documents !== undefined,
      schedule.scanBlocks,
    ).bytes;
    if (moved !== expected)
      problems.push(`rank ${rp.rank} moves ${moved} bytes; the closed form says ${expected}`);
  }
  return problems;
}

function matchPointToPoint(programs: RankProgram[]): string[] {
  const problems: string[] = [];
  const sends = new Map<string, number>();
  for (const rp of programs)
    for (const s of rp.steps) if (s.kind === "send") sends.set(`${rp.rank}>${s.peer}:${s.tag}`, s.bytes);
  const matched = new Set<string>();
  for (const rp of programs) {
    for (const s of rp.steps) {
      if (s.kind !== "recv") continue;
      const k = `${s.peer}>${rp.rank}:${s.tag}`;
      const bytes = sends.get(k);
      if (bytes === undefined)
        problems.push(`rank ${rp.rank} receives "${s.tag}" from rank ${s.peer}, which never sends it`);
      else if (bytes !== s.bytes) problems.push(`"${s.tag}": ${bytes} bytes sent but ${s.bytes} received`);
      matched.add(k);
    }
  }
  for (const k of sends.keys()) if (!matched.has(k)) problems.push(`send ${k} has no matching recv`);
  return problems;
}

function matchCollectives(programs: RankProgram[]): string[] {
  const problems: string[] = [];
  const byKey = new Map<
    string,
    { rank: number; kind: string; bytes: number; group: number[]; recvBytes: number }[]
  >();
  for (const rp of programs) {
    for (const s of rp.steps) {
      if (s.kind !== "collective") continue;
      const recvDecls = s.transfers.map((t) => rp.buffers.find((b) => b.name === t.recv));
      for (const t of s.transfers) {
        const send = rp.buffers.find((b) => b.name === t.send);
        const recv = rp.buffers.find((b) => b.name === t.recv);
        // NCCL moves one element type per call: a cast is a step of its own.
        if (send !== undefined && recv !== undefined && send.dtype !== recv.dtype)
          problems.push(
            `rank ${rp.rank} step ${s.id} ("${s.key}") sends ${send.dtype} ${t.send} into ${recv.dtype} ${t.recv}`,
          );
        if (t.slices !== undefined) {
          // The copy-engine form lands every rank's slice there (an AlltoAll of the send) and sums them in fp32.
          // (Undeclared buffers are reported by readsAfterWrites.)
          const slices = rp.buffers.find((b) => b.name === t.slices);
          if (s.collective !== "reducescatter")
            problems.push(
              `rank ${rp.rank} step ${s.id} ("${s.key}") names slices ${t.slices} outside a ReduceScatter`,
            );
          else if (
            send !== undefined &&
            slices !== undefined &&
            (slices.dtype !== "fp32" || send.dtype !== "fp32" || bytesOf(slices) !== bytesOf(send))
          )
            problems.push(
              `rank ${rp.rank} step ${s.id} ("${s.key}") lands ${bytesOf(send)} bytes of ${send.dtype} ${t.send} in ${bytesOf(slices)} bytes of ${slices.dtype} ${t.slices}`,
            );
        }
      }
      const list = byKey.get(s.key) ?? [];
      list.push({
        rank: rp.rank,
        kind: s.collective,
        bytes: s.bytes,
        group: s.group,
        recvBytes: recvDecls.every((d) => d !== undefined)
          ? recvDecls.reduce((sum, d) => sum + bytesOf(d!), 0)
          : -1,
      });
      byKey.set(s.key, list);
    }
  }
  for (const [key, members] of byKey) {
    const first = members[0]!;
    const ranks = members.map((m) => m.rank).sort((a, b) => a - b);
    if (ranks.join(",") !== [...first.group].sort((a, b) => a - b).join(","))
      problems.push(
        `collective "${key}" has ranks ${ranks.join(",")} but its group is ${first.group.join(",")}`,
      );
    for (const m of members) {
      if (m.kind !== first.kind)
        problems.push(
          `collective "${key}" is ${first.kind} on rank ${first.rank} but ${m.kind} on rank ${m.rank}`,
        );
      if (m.bytes !== first.bytes)
        problems.push(
          `collective "${key}" sends ${first.bytes} bytes on rank ${first.rank} but ${m.bytes} on rank ${m.rank}`,
        );
    }
    const W = first.group.length;
    const expectedRecv =
      first.kind === "allgather"
        ? first.bytes * W
        : first.kind === "reducescatter"
          ? first.bytes / W
          : first.bytes;
    for (const m of members) {
      if (m.recvBytes !== expectedRecv)
        problems.push(
          `collective "${key}" on rank ${m.rank}: receive buffer of ${m.recvBytes} bytes, expected ${expectedRecv}`,
        );
    }
  }
  return problems;
}

function readsAfterWrites(graph: PassGraph): string[] {
  const problems: string[] = [];
  for (const rp of graph.programs) {
    const inputs = new Set(rp.buffers.filter((b) => b.input).map((b) => b.name));
    const declared = new Set(rp.buffers.map((b) => b.name));
    for (const step of rp.steps) {
      const reads = stepReads(step);
      const writes = stepWrites(step);
      for (const name of [...reads, ...writes])
        if (!declared.has(name))
          problems.push(`rank ${rp.rank} step ${step.id} uses undeclared buffer ${name}`);
      for (const name of reads) {
        if (inputs.has(name)) continue;
        if (!writtenBefore(graph, rp.rank, step.id, name))
          problems.push(
            `rank ${rp.rank} step ${step.id} (${step.label}) reads ${name} before any step writes it`,
          );
      }
    }
  }
  return problems;
}

/** Whether some step that writes `buffer` on `rank` happens before step `id`. */
function writtenBefore(graph: PassGraph, rank: number, id: number, buffer: string): boolean {
  const seen = new Set<string>();
  const stack = [...graph.predsOf({ rank, step: id })];
  while (stack.length > 0) {
    const node = stack.pop()!;
    const k = `${node.rank}:${node.step}`;
    if (seen.has(k)) continue;
    seen.add(k);
    if (node.rank === rank) {
      const step = graph.step(node);
      const writes = stepWrites(step);
      if (writes.includes(buffer)) return true;
    }
    stack.push(...graph.predsOf(node));
  }
  return false;
}
