// `recompute auto`: the first of `none`, `norms`, `mlp` (from keeping the most to keeping the least) whose
// memory, by the memory model at the spec's seq_len, fits the GPU. Keeping more is never slower (the backward
// makes less again), so the choice needs no speed model; where none fits, `mlp` (the least memory), and
// `lasp check`'s W0604 says by how much. The loader fits an 80 GB H100; `lasp run` fits again to the GPUs it
// finds, `lasp inspect` to its --machine or --gpu-memory, `lasp compile` to its --gpu-memory.
import { H100, recomputeFits, type Gpu } from "../cost/memory.js";
import { gigabytes } from "../cost/memory-notes.js";
import { RECOMPUTE_ORDER, type RecomputeAuto, type ResolvedSpec } from "../spec/resolved.js";

/** `again`: fit a spec already resolved to another GPU. */
export function resolveRecomputeAuto(spec: ResolvedSpec, gpu: Gpu = H100, again = false): ResolvedSpec {
  if (spec.run.recomputeAuto === undefined || (spec.run.recomputeAuto.chosen !== undefined && !again))
    return spec;
  const tried = recomputeFits(spec, RECOMPUTE_ORDER, gpu);
  const chosen: RecomputeAuto["chosen"] = { recompute: tried.at(-1)!.recompute, gpuBytes: gpu.memory, tried };
  return { ...spec, run: { ...spec.run, recompute: chosen.recompute, recomputeAuto: { chosen } } };
}

/** `recompute auto` fitted to a GPU of `memory` bytes (run: the smallest found; compile: --gpu-memory), and its line. */
export function refitRecomputeAuto(
  spec: ResolvedSpec,
  memory: number,
): { spec: ResolvedSpec; line?: string } {
  if (spec.run.recomputeAuto === undefined) return { spec };
  const fitted = resolveRecomputeAuto(spec, { ...H100, memory }, true);
  const line = recomputeAutoLine(fitted.run.recomputeAuto!);
  return { spec: fitted, ...(line === undefined ? {} : { line }) };
}

/** What `lasp run` says about the choice: `recompute auto: none (55.4 GB of the 141.0 GB GPU)`. */
export function recomputeAutoLine(auto: RecomputeAuto): string | undefined {
  const chosen = auto.chosen;
  if (chosen === undefined) return undefined;
  const last = chosen.tried.at(-1)!;
  const of = `${gigabytes(last.bytes)} of the ${gigabytes(chosen.gpuBytes)} GPU`;
  return `recompute auto: ${chosen.recompute} (${last.fits ? of : `${of}: does not fit`})`;
}
