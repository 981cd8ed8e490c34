// `recompute auto`: the first of `none`, `norms`, `mlp` (from keeping the most to keeping the least) whose
// memory, by the memory model at the spec's seq_len, fits the GPU. Keeping more is never slower (the backward
// makes less again), so the choice needs no speed model; where none fits, `mlp` (the least memory), and
// `lasp check`'s W0604 says by how much.
import { H100, memoryReport, memoryShape, type Gpu } from "../cost/memory.js";
import { RECOMPUTE_ORDER, type Recompute, type RecomputeAuto, type ResolvedSpec } from "../spec/resolved.js";

export function resolveRecomputeAuto(spec: ResolvedSpec, gpu: Gpu = H100): ResolvedSpec {
  if (spec.run.recomputeAuto === undefined || spec.run.recomputeAuto.chosen !== undefined) return spec;
  const tried: { recompute: Recompute; bytes: number }[] = [];
  for (const recompute of RECOMPUTE_ORDER) {
    const report = memoryReport(memoryShape(withRecompute(spec, recompute)), spec.run.seqLen, gpu);
    tried.push({ recompute, bytes: report.totalBytes });
    if (report.fits) break;
  }
  const chosen: RecomputeAuto["chosen"] = { recompute: tried.at(-1)!.recompute, gpuBytes: gpu.memory, tried };
  return { ...spec, run: { ...spec.run, recompute: chosen.recompute, recomputeAuto: { chosen } } };
}

function withRecompute(spec: ResolvedSpec, recompute: Recompute): ResolvedSpec {
  return { ...spec, run: { ...spec.run, recompute } };
}
