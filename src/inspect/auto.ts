// What `lasp inspect` says about settings written `auto`: what the planner chose, on which machine profile,
// and the runner-up with the margin (src/plan/auto.ts resolves them).
import { gigabytes } from "../cost/memory-notes.js";
import { TIE, ties } from "../cost/tie.js";
import type { AutoResolution, RecomputeAuto } from "../spec/resolved.js";
import { MAX_WIDTH, wrap } from "../text/units.js";

export function autoText(auto: AutoResolution, width: number = MAX_WIDTH): string {
  const keys = auto.keys.map((k) => `\`${k} auto\``).join(", ");
  if (auto.chosen === undefined)
    return wrap(`${keys}: not resolved; the defaults are shown.`, width).join("\n");
  const tps = (x: number): string => `${Math.round(x).toLocaleString("en-US")} tokens/s per GPU`;
  const best = auto.chosen.tokensPerSecondPerGpu;
  const next = auto.runnerUp;
  const runnerUp =
    next === undefined
      ? "no other valid choice"
      : `runner-up ${next.label} at ${tps(next.tokensPerSecondPerGpu)}, ` +
        (ties(best, next.tokensPerSecondPerGpu)
          ? `within ${TIE * 100}%: a tie the model cannot break, either would do`
          : `${((best / next.tokensPerSecondPerGpu - 1) * 100).toFixed(1)}% slower`);
  return wrap(
    `${keys}: chose ${auto.chosen.label} (schedules, layout, sequence x data), predicted ${tps(auto.chosen.tokensPerSecondPerGpu)} on the ${auto.chosen.machine} profile; ${runnerUp} (\`lasp plan\` ranks every choice).`,
    width,
  ).join("\n");
}

/** `recompute auto`'s choice: what it keeps, the memory it needs of the GPU's, and what keeping more would need. */
export function recomputeAutoText(auto: RecomputeAuto, width: number = MAX_WIDTH): string {
  if (auto.chosen === undefined)
    return wrap("`recompute auto`: not resolved; the default (norms) is shown.", width).join("\n");
  const { chosen } = auto;
  const last = chosen.tried.at(-1)!;
  const passed = chosen.tried
    .slice(0, -1)
    .map((t) => `\`${t.recompute}\` would need ${gigabytes(t.bytes)}`)
    .join(", ");
  return wrap(
    `\`recompute auto\`: chose \`${chosen.recompute}\`, ${gigabytes(last.bytes)} per GPU, ` +
      `${last.fits ? "which fits" : "the least, and still more than"} the ${gigabytes(chosen.gpuBytes)} of the GPU` +
      `${passed === "" ? " (it keeps every activation)" : `; ${passed}`}.`,
    width,
  ).join("\n");
}
