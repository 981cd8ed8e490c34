// `linear auto`, `softmax auto`, `layout auto`, `sequence auto`: the checker leaves the keys' defaults (for
// `sequence`, every GPU sequence-parallel) and lists the keys; this picks, among the choices that keep every other
// setting of the spec (its GPUs, seq_len, its split unless `sequence auto`, and the keys not written `auto`), the
// one `lasp plan` ranks first on the machine profile, and records the runner-up and the margin for `lasp
// inspect` to show. `sequence auto` with no split the checker accepts is an error (AutoUnresolved).
import type { SpecFile } from "../ast/ast.js";
import { H100_PROFILE, type MachineProfile } from "../cost/profile.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { plan, type Choice } from "./plan.js";
import { variant } from "./variants.js";

/** `sequence auto` and no split of the GPUs checks clean: the message says why the first one was refused. */
export class AutoUnresolved extends Error {}

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
  const split = auto.keys.includes("sequence");
  const keep = (c: Choice): boolean =>
    c.linear !== "allscan" &&
    (split || (c.sequence === p.sequence && c.data === p.data)) &&
    fixed("linear", c.linear) &&
    fixed("softmax", c.softmax) &&
    fixed("layout", c.layout);
  const planned = plan({ ast, file, spec, profile, keep });
  // Nor, among the choices that fit, what else W0613 flags (LASP-2H's gathered call over several ranks, Ulysses
  // with replicated kv heads, documents over several ranks): ranked after the others, not left out, so that a
  // spec fixing one of them still resolves its other keys, and a choice that fits beats one that does not.
  const ranked = [...planned.rows].sort(
    (a, b) => Number(b.fits) - Number(a.fits) || Number(a.unverified) - Number(b.unverified),
  );
  const [best, next] = ranked;
  if (best === undefined && split) {
    const first = planned.skipped[0];
    throw new AutoUnresolved(
      `no split of ${p.gpus} GPUs checks clean${first === undefined ? "" : ` (${first.label}: ${first.reason})`}`,
    );
  }
  // The spec with its defaults checked clean, so there is at least that choice; keep it if nothing else is.
  if (best === undefined) return spec;
  const chosen = variant(ast, file, {
    parallel: {
      ...(split ? { sequence: best.choice.sequence, data: best.choice.data } : {}),
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
