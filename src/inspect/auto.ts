// What `lasp inspect` says about settings written `auto`: what the planner chose, on which machine profile,
// and the runner-up with the margin (src/plan/auto.ts resolves them).
import type { AutoResolution } from "../spec/resolved.js";
import { MAX_WIDTH, wrap } from "../text/units.js";

export function autoText(auto: AutoResolution, width: number = MAX_WIDTH): string {
  const keys = auto.keys.map((k) => `\`${k} auto\``).join(", ");
  if (auto.chosen === undefined)
    return wrap(`${keys}: not resolved; the defaults are shown.`, width).join("\n");
  const tps = (x: number): string => `${Math.round(x).toLocaleString("en-US")} tokens/s per GPU`;
  const runnerUp =
    auto.runnerUp === undefined
      ? "no other valid choice"
      : `runner-up ${auto.runnerUp.label} at ${tps(auto.runnerUp.tokensPerSecondPerGpu)}, ${((auto.chosen.tokensPerSecondPerGpu / auto.runnerUp.tokensPerSecondPerGpu - 1) * 100).toFixed(1)}% slower`;
  return wrap(
    `${keys}: chose ${auto.chosen.label} (schedules, layout, sequence x data), predicted ${tps(auto.chosen.tokensPerSecondPerGpu)} on the ${auto.chosen.machine} profile; ${runnerUp} (\`lasp plan\` ranks every choice).`,
    width,
  ).join("\n");
}
