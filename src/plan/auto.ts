// `linear auto`, `softmax auto`, `layout auto`: the checker leaves the keys' defaults and lists the keys; this
// picks, among the choices that keep every other setting of the spec (its GPUs, split, seq_len and the keys
// not written `auto`), the one `lasp plan` ranks first on the machine profile, and records the runner-up and
// the margin for `lasp inspect` to show.
import type { SpecFile } from "../ast/ast.js";
import { H100_PROFILE, type MachineProfile } from "../cost/profile.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { plan, type Choice } from "./plan.js";
import { variant } from "./variants.js";

export function resolveAuto(
  ast: SpecFile,
  file: string,
  spec: ResolvedSpec,
  profile: MachineProfile = H100_PROFILE,
): ResolvedSpec {
  const auto = spec.parallel.auto;
  if (auto === undefined || auto.chosen !== undefined) return spec;
  const p = spec.parallel;
  const fixed = (key: "linear" | "softmax" | "layout", value: string | undefined): boolean =>
    auto.keys.includes(key) || value === undefined || value === p[key];
  // All-Scan's blocked chain has not run on a GPU yet (W0613): `auto` picks only what has.
  const keep = (c: Choice): boolean =>
    c.linear !== "allscan" &&
    c.sequence === p.sequence &&
    c.data === p.data &&
    fixed("linear", c.linear) &&
    fixed("softmax", c.softmax) &&
    fixed("layout", c.layout);
  const rows = plan({ ast, file, spec, profile, keep }).rows;
  const [best, next] = rows;
  // The spec with its defaults checked clean, so there is at least that choice; keep it if nothing else is.
  if (best === undefined) return spec;
  const chosen = variant(ast, file, {
    parallel: {
      ...(best.choice.linear === undefined ? {} : { linear: best.choice.linear }),
      ...(best.choice.softmax === undefined ? {} : { softmax: best.choice.softmax }),
      layout: best.choice.layout,
    },
  });
  if (!("spec" in chosen)) return spec;
  return {
    ...chosen.spec,
    parallel: {
      ...chosen.spec.parallel,
      auto: {
        keys: auto.keys,
        chosen: {
          label: best.label,
          tokensPerSecondPerGpu: best.tokensPerSecondPerGpu,
          machine: profile.name,
        },
        ...(next === undefined
          ? {}
          : { runnerUp: { label: next.label, tokensPerSecondPerGpu: next.tokensPerSecondPerGpu } }),
      },
    },
  };
}
