// Rules that relate several settings: the conditions under which the schedules in ALGORITHMS.md are
// defined (sequence * data == gpus, even pieces of whole kernel blocks, head splits, causal-only LASP-1).
// Each error points at one setting (for a strategy's rule, the setting that chose the strategy) and has a
// note on each other setting it involves, so a user sees both ends of the conflict.
import type { LayerDecl } from "../ast/ast.js";
import type { Span } from "../ast/span.js";
import { diagnose, type Diagnostic, type RelatedNote } from "../diagnostics/diagnostic.js";
import { KERNEL_BLOCK, SUPPORTED_HEAD_DIMS, type Tokenizer } from "../spec/resolved.js";
import { quote } from "../diagnostics/quote.js";
import { paddedLength, pieceCount } from "../spec/padding.js";
import { AUTO, LINEAR_KEYS, PARALLEL_KEYS, RUN_KEYS, SOFTMAX_KEYS } from "../spec/schema.js";
import {
  formatNumber,
  settingValue,
  type DataValue,
  type DecayValue,
  type PathValue,
  type ReadSettings,
} from "./values.js";

export interface RuleInputs {
  model: ReadSettings | undefined;
  parallel: ReadSettings;
  parallelKeyword: Span | undefined;
  run: ReadSettings | undefined;
  declared: { decl: LayerDecl; kind: "linear_attention" | "softmax_attention"; read: ReadSettings }[];
  used: Set<string>;
  /** Whether an unknown key was taken for `key` of the `run` block (`evaluate_every`): see checkTraining. */
  meantRunKey?: (key: string) => boolean;
}

export interface ResolvedNumbers {
  heads: number;
  headDim: number;
  gpus: number;
  sequence: number;
  data: number;
}

/** Checks the cross-setting rules; returns the derived sizes when they are all valid. */
export function checkRules(inputs: RuleInputs, diagnostics: Diagnostic[]): ResolvedNumbers | undefined {
  const heads = num(inputs.model, "heads");
  const headDim = resolveHeadDim(inputs.model, diagnostics);
  const group = resolveGroups(inputs.parallel, diagnostics);
  // `sequence auto`: the split-dependent rules run on each split the planner tries, not on the placeholder.
  const split = group !== undefined && !("auto" in group) ? group : undefined;
  if (split) checkSequenceSplit(inputs, split.sequence, diagnostics);
  if (split) checkBatch(inputs, split.data, diagnostics);
  if (heads !== undefined) checkLayers(inputs, heads, split?.sequence, diagnostics);
  checkScanBlocks(inputs, headDim, diagnostics);
  checkRopeScaling(inputs, diagnostics);
  checkUnusedStrategies(inputs, diagnostics);
  checkUnusedMaskRate(inputs, diagnostics);
  if (inputs.run) checkTraining(inputs.run, diagnostics, inputs.meantRunKey ?? (() => false));
  if (inputs.run) checkDocuments(inputs.run, inputs.model, diagnostics);
  if (inputs.run) checkTokenizer(inputs, inputs.run, diagnostics);
  if (heads === undefined || headDim === undefined || group === undefined) return undefined;
  return { heads, headDim, gpus: group.gpus, sequence: group.sequence, data: group.data };
}

function num(read: ReadSettings | undefined, key: string): number | undefined {
  return read?.values.get(key) as number | undefined;
}

function spanOf(read: ReadSettings | undefined, key: string): Span | undefined {
  return read?.settings.get(key)?.span;
}

/** Notes on the other settings a rule involves; a setting left to its default has nothing to point at. */
function notes(...entries: [Span | undefined, string][]): RelatedNote[] {
  return entries.flatMap(([span, message]) => (span === undefined ? [] : [{ span, message }]));
}

function resolveHeadDim(model: ReadSettings | undefined, diagnostics: Diagnostic[]): number | undefined {
  const supported = `supported: ${SUPPORTED_HEAD_DIMS.join(" or ")}`;
  const given = num(model, "head_dim");
  if (given !== undefined) {
    if ((SUPPORTED_HEAD_DIMS as readonly number[]).includes(given)) return given;
    diagnostics.push(diagnose("headDim", spanOf(model, "head_dim")!, [given], { hint: supported }));
    return undefined;
  }
  if (model?.settings.has("head_dim")) return undefined; // given but invalid: already reported
  const hidden = num(model, "hidden");
  const heads = num(model, "heads");
  if (hidden === undefined || heads === undefined) return undefined;
  if (hidden % heads !== 0) {
    diagnostics.push(
      diagnose("headDimDefault", spanOf(model, "heads")!, [hidden, heads], {
        hint: `set \`head_dim\` (${supported})`,
        related: notes([spanOf(model, "hidden"), `hidden ${hidden} is set here`]),
      }),
    );
    return undefined;
  }
  const derived = hidden / heads;
  if (!(SUPPORTED_HEAD_DIMS as readonly number[]).includes(derived)) {
    diagnostics.push(
      diagnose("headDim", spanOf(model, "heads")!, [derived], {
        hint: `hidden / heads gives ${derived}; change heads or set \`head_dim\` (${supported})`,
        related: notes([spanOf(model, "hidden"), `hidden ${hidden} is set here`]),
      }),
    );
    return undefined;
  }
  return derived;
}

function resolveGroups(
  parallel: ReadSettings,
  diagnostics: Diagnostic[],
): { gpus: number; sequence: number; data: number; auto?: true } | undefined {
  for (const key of ["gpus", "sequence", "data"]) {
    if (parallel.settings.has(key) && !parallel.values.has(key)) return undefined; // invalid, reported
  }
  const data = settingValue<number>(parallel, PARALLEL_KEYS, "data")!;
  const gpus = num(parallel, "gpus");
  if ((parallel.values.get("sequence") as unknown) === AUTO) return autoGroups(parallel, gpus, diagnostics);
  const sequence = num(parallel, "sequence");
  if (gpus !== undefined && sequence !== undefined) {
    if (gpus !== sequence * data) {
      diagnostics.push(
        diagnose("gpuCount", spanOf(parallel, "gpus")!, [gpus, sequence, data], {
          hint: `set gpus ${sequence * data}, or change sequence or data so that their product is ${gpus}`,
          related: notes(
            [spanOf(parallel, "sequence"), `sequence ${sequence} is set here`],
            [spanOf(parallel, "data"), `data ${data} is set here`],
          ),
        }),
      );
      return undefined;
    }
    return { gpus, sequence, data };
  }
  if (gpus !== undefined) {
    if (gpus % data !== 0) {
      diagnostics.push(
        diagnose("gpuCount", spanOf(parallel, "gpus")!, [gpus, undefined, data], {
          hint: `use a multiple of ${data} for gpus (for example ${Math.max(1, Math.round(gpus / data)) * data}), or a data size that divides ${gpus}`,
          related: notes([spanOf(parallel, "data"), `data ${data} is set here`]),
        }),
      );
      return undefined;
    }
    return { gpus, sequence: gpus / data, data };
  }
  const seq = sequence ?? 1;
  return { gpus: seq * data, sequence: seq, data };
}

/**
 * `sequence auto`: the planner splits `gpus` (which it needs) into sequence x data (so `data` is its to
 * choose). Until then every GPU is sequence-parallel, and the rules that depend on the split are left to each
 * split the planner tries (src/plan/auto.ts checks each as a spec of its own).
 */
function autoGroups(
  parallel: ReadSettings,
  gpus: number | undefined,
  diagnostics: Diagnostic[],
): { gpus: number; sequence: number; data: number; auto: true } | undefined {
  const at = spanOf(parallel, "sequence")!;
  if (gpus === undefined) {
    diagnostics.push(
      diagnose("sequenceAuto", at, ["the spec does not say how many GPUs (`gpus`)"], {
        hint: "add `gpus 8` (or the count you have) to the parallel block",
      }),
    );
    return undefined;
  }
  if (parallel.settings.has("data")) {
    diagnostics.push(
      diagnose(
        "sequenceAuto",
        at,
        [`it chooses \`data\` too, and the spec sets \`data ${num(parallel, "data")}\``],
        {
          hint: `remove \`data\`, or set \`sequence ${gpus / (num(parallel, "data") ?? 1)}\``,
          related: notes([spanOf(parallel, "data"), "`data` is set here"]),
        },
      ),
    );
    return undefined;
  }
  return { gpus, sequence: gpus, data: 1, auto: true };
}

/**
 * A `seq_len` that does not split into equal pieces of whole kernel blocks is padded (spec/padding.ts): a
 * note says how much it costs. Padding that would fill a whole piece stays an error: a rank would hold a piece
 * with no real token, and fewer ranks or another length serve the sequence better.
 */
function checkSequenceSplit(inputs: RuleInputs, sequence: number, diagnostics: Diagnostic[]): void {
  const seqLen = num(inputs.run, "seq_len");
  const layout = settingValue<string>(inputs.parallel, PARALLEL_KEYS, "layout")!;
  if (seqLen === undefined) return;
  const pieces = pieceCount(layout === "zigzag" ? "zigzag" : "contiguous", sequence);
  const padded = paddedLength(seqLen, pieces);
  if (padded === seqLen) return;
  const span = spanOf(inputs.run, "seq_len")!;
  const nearest = nearestMultiples(seqLen, pieces * KERNEL_BLOCK);
  const related = notes(
    [
      spanOf(inputs.parallel, "sequence") ?? spanOf(inputs.parallel, "gpus"),
      `the sequence-parallel size ${sequence} comes from here`,
    ],
    [layout === "zigzag" ? spanOf(inputs.parallel, "layout") : undefined, "zigzag is chosen here"],
  );
  const why =
    layout === "zigzag"
      ? `zigzag gives each of the ${sequence} sequence-parallel ranks two pieces`
      : `one piece per sequence-parallel rank`;
  const padding = padded - seqLen;
  const empty = Math.floor(padding / (padded / pieces));
  if (empty > 0) {
    diagnostics.push(
      diagnose("seqLenSplit", span, [seqLen, pieces, KERNEL_BLOCK, padded, empty, why], {
        hint: `the nearest lengths that need no padding are ${nearest}; or use fewer sequence-parallel ranks`,
        related,
      }),
    );
    return;
  }
  diagnostics.push(
    diagnose(
      "paddedSequence",
      span,
      [seqLen, padded, pieces, KERNEL_BLOCK, why, padding, share(padding, padded)],
      {
        hint: `the padding is a document of its own: no real token attends to it and no loss counts it; the nearest lengths that need no padding are ${nearest}`,
        related,
      },
    ),
  );
}

/** `part` of `whole` as a percentage a reader can compare: one decimal, and never a misleading 0.0%. */
function share(part: number, whole: number): string {
  const percent = (100 * part) / whole;
  return percent < 0.1 ? "under 0.1%" : `${percent.toFixed(1)}%`;
}

function nearestMultiples(value: number, unit: number): string {
  const below = Math.floor(value / unit) * unit;
  const above = below + unit;
  return below > 0 ? `${below} and ${above}` : `${above}`;
}

function checkBatch(inputs: RuleInputs, data: number, diagnostics: Diagnostic[]): void {
  const given = num(inputs.run, "batch");
  const batch = settingValue<number>(inputs.run, RUN_KEYS, "batch")!;
  if (batch % data === 0) return;
  // An omitted batch is the default 1: point at the data size that cannot split it.
  const span = given === undefined ? spanOf(inputs.parallel, "data") : spanOf(inputs.run, "batch");
  if (span === undefined) return;
  const example = Math.ceil(batch / data) * data;
  diagnostics.push(
    diagnose("batchSplit", span, [batch, data], {
      hint:
        given === undefined
          ? `batch defaults to 1; add \`batch ${example}\` to the run block, or use data 1`
          : `use a multiple of ${data}, for example batch ${example}`,
      related: notes([
        given === undefined ? undefined : spanOf(inputs.parallel, "data"),
        `data ${data} is set here`,
      ]),
    }),
  );
}

function checkLayers(
  inputs: RuleInputs,
  heads: number,
  sequence: number | undefined,
  diagnostics: Diagnostic[],
): void {
  const linear = settingValue<string>(inputs.parallel, PARALLEL_KEYS, "linear")!;
  const softmax = settingValue<string>(inputs.parallel, PARALLEL_KEYS, "softmax")!;
  for (const { decl, kind, read } of inputs.declared) {
    const name = decl.name.name;
    const used = inputs.used.has(name);
    if (kind === "softmax_attention") {
      const kvHeads = num(read, "kv_heads") ?? heads;
      if (read.settings.has("kv_heads") && !read.values.has("kv_heads")) continue;
      if (heads % kvHeads !== 0) {
        diagnostics.push(
          diagnose("kvHeads", spanOf(read, "kv_heads") ?? decl.name.span, [heads, kvHeads, name], {
            hint: `kv_heads must divide heads: ${divisors(heads).join(", ")}`,
            related: notes([spanOf(inputs.model, "heads"), `heads ${heads} is set here`]),
          }),
        );
        continue;
      }
      if (used && softmax === "ulysses" && sequence !== undefined) {
        checkUlysses(
          inputs,
          name,
          [
            ["heads", heads, spanOf(inputs.model, "heads")],
            ["kv_heads", kvHeads, spanOf(read, "kv_heads")],
          ],
          sequence,
          "softmax",
          diagnostics,
          // Grouped-query attention with fewer kv heads than ranks: each kv head is replicated on
          // sequence / kv_heads ranks (lower-ulysses.ts), so a sequence size that kv_heads divides works too.
          "kv_heads",
        );
      }
      continue;
    }
    const linearKv = num(read, "kv_heads");
    if (linearKv !== undefined && heads % linearKv !== 0)
      diagnostics.push(
        diagnose("kvHeads", spanOf(read, "kv_heads")!, [heads, linearKv, name], {
          hint: `kv_heads must divide heads: ${divisors(heads).join(", ")}`,
          related: notes([spanOf(inputs.model, "heads"), `heads ${heads} is set here`]),
        }),
      );
    const decay = read.values.get("decay") as DecayValue | undefined;
    if (decay?.kind === "list" && decay.values.length !== heads) {
      diagnostics.push(
        diagnose("decayLength", spanOf(read, "decay")!, [decay.values.length, heads, name], {
          hint: `give ${heads} values, one per head, or one value for all heads`,
        }),
      );
    }
    const causal = settingValue<boolean>(read, LINEAR_KEYS, "causal")!;
    const decays =
      decay === undefined
        ? []
        : decay.kind === "fixed"
          ? [decay.value]
          : decay.kind === "list"
            ? decay.values
            : decay.name === "none"
              ? []
              : [0];
    if (!causal && decays.some((x) => x !== 1)) {
      diagnostics.push(
        diagnose("bidirectionalDecay", spanOf(read, "decay")!, [name], {
          hint: "a decay weighs keys by how far back they are, which needs the causal order: remove `decay` or set `causal true`",
          related: notes([spanOf(read, "causal"), `layer ${quote(name)} is made bidirectional here`]),
        }),
      );
    }
    if (used && !causal && (linear === "lasp1" || linear === "allscan")) {
      // The strategy is the choice to revisit: the error is on `linear lasp1` (or `allscan`: a chain carries a
      // prefix, but every bidirectional token needs the whole sum), the layer gets a note.
      diagnostics.push(
        diagnose(
          "lasp1Bidirectional",
          spanOf(inputs.parallel, "linear") ?? inputs.parallelKeyword!,
          [name, linear],
          {
            hint: "use `linear lasp2`, which runs bidirectional layers with one AllReduce",
            related: notes([spanOf(read, "causal"), `layer ${quote(name)} is made bidirectional here`]),
          },
        ),
      );
    }
    if (used && linear === "ulysses" && sequence !== undefined) {
      checkUlysses(
        inputs,
        name,
        [["heads", heads, spanOf(inputs.model, "heads")]],
        sequence,
        "linear",
        diagnostics,
      );
    }
  }
}

function checkUlysses(
  inputs: RuleInputs,
  layer: string,
  counts: [string, number, Span | undefined][],
  sequence: number,
  strategyKey: string,
  diagnostics: Diagnostic[],
  /** The count that may also divide the sequence size (its heads are then replicated). */
  replicable?: string,
): void {
  for (const [what, count, countSpan] of counts) {
    const replicated = what === replicable && sequence % count === 0;
    if (count % sequence !== 0 && !replicated) {
      const span = spanOf(inputs.parallel, strategyKey) ?? inputs.parallelKeyword!;
      const hint =
        what === replicable
          ? `Ulysses splits the kv heads over the ranks or replicates each on sequence / ${what} ranks; use a sequence size that divides ${count} or that ${count} divides, or another strategy`
          : `Ulysses gives each rank ${what} / sequence heads; use a sequence size that divides ${count}, or another strategy`;
      diagnostics.push(
        diagnose("ulyssesHeads", span, [what, count, sequence, layer], {
          hint,
          related: notes(
            [countSpan, `${what} ${count} is set here`],
            [
              spanOf(inputs.parallel, "sequence") ?? spanOf(inputs.parallel, "gpus"),
              `the sequence-parallel size ${sequence} comes from here`,
            ],
          ),
        }),
      );
      return;
    }
  }
}

/** `scan_blocks` splits All-Scan's states by rows: it must divide head_dim, and means nothing to other strategies. */
function checkScanBlocks(inputs: RuleInputs, headDim: number | undefined, diagnostics: Diagnostic[]): void {
  const span = spanOf(inputs.parallel, "scan_blocks");
  if (span === undefined || invalid(inputs.parallel, "scan_blocks")) return;
  const blocks = num(inputs.parallel, "scan_blocks")!;
  const linear = settingValue<string>(inputs.parallel, PARALLEL_KEYS, "linear")!;
  // `linear auto` may choose allscan, so the setting counts there.
  if (linear !== "allscan" && linear !== "auto") {
    diagnostics.push(
      diagnose("unusedScanBlocks", span, [linear], {
        hint: "remove the setting, or use `linear allscan`",
        related: notes([spanOf(inputs.parallel, "linear"), `linear ${linear} is set here`]),
      }),
    );
  }
  if (headDim !== undefined && headDim % blocks !== 0) {
    diagnostics.push(
      diagnose("scanBlocksDivide", span, [blocks, headDim], {
        hint: `use a divisor of ${headDim}: ${divisors(headDim).join(", ")}`,
        related: notes([spanOf(inputs.model, "head_dim"), `head_dim ${headDim} is set here`]),
      }),
    );
  }
}

/** What each `rope_scaling` reads: `linear` its factor, `llama3` all four; a setting the choice ignores is said. */
const ROPE_SETTINGS = {
  none: [],
  linear: ["rope_factor"],
  llama3: ["rope_factor", "rope_low_freq_factor", "rope_high_freq_factor", "rope_original_max_positions"],
} as const;
const ROPE_NEEDED: Record<keyof typeof ROPE_SETTINGS, readonly string[]> = {
  none: [],
  linear: ["rope_factor"],
  llama3: ["rope_factor", "rope_original_max_positions"],
};
const ROPE_EXAMPLES: Record<string, string> = { rope_factor: "32", rope_original_max_positions: "8192" };

function checkRopeScaling(inputs: RuleInputs, diagnostics: Diagnostic[]): void {
  for (const { decl, kind, read } of inputs.declared) {
    if (kind !== "softmax_attention" || invalid(read, "rope_scaling")) continue;
    const scaling = settingValue<keyof typeof ROPE_SETTINGS>(read, SOFTMAX_KEYS, "rope_scaling")!;
    const reads: readonly string[] = ROPE_SETTINGS[scaling];
    const at = spanOf(read, "rope_scaling");
    for (const key of ROPE_SETTINGS.llama3) {
      const span = spanOf(read, key);
      if (span !== undefined && !reads.includes(key))
        diagnostics.push(
          diagnose("unusedRopeSetting", span, [key, scaling], {
            hint: scaling === "none" ? "remove it, or set `rope_scaling llama3`" : "remove it",
            related: notes([at, `rope_scaling ${scaling} is set here`]),
          }),
        );
    }
    for (const key of ROPE_NEEDED[scaling]) {
      if (read.settings.has(key)) continue;
      diagnostics.push(
        diagnose("missingKey", at ?? decl.name.span, [key, `\`rope_scaling ${scaling}\``], {
          hint: `add it to layer ${quote(decl.name.name)}, for example \`${key} ${ROPE_EXAMPLES[key]}\``,
        }),
      );
    }
    if (scaling !== "llama3") continue;
    const low = settingValue<number>(read, SOFTMAX_KEYS, "rope_low_freq_factor")!;
    const high = settingValue<number>(read, SOFTMAX_KEYS, "rope_high_freq_factor")!;
    if (high > low || invalid(read, "rope_low_freq_factor") || invalid(read, "rope_high_freq_factor"))
      continue;
    diagnostics.push(
      diagnose(
        "ropeFreqFactors",
        spanOf(read, "rope_high_freq_factor") ?? spanOf(read, "rope_low_freq_factor")!,
        [low, high],
        {
          hint: "Llama 3.1 to 3.3 use rope_low_freq_factor 1 and rope_high_freq_factor 4",
          related: notes([spanOf(read, "rope_low_freq_factor"), `rope_low_freq_factor ${low} is set here`]),
        },
      ),
    );
  }
}

function checkUnusedStrategies(inputs: RuleInputs, diagnostics: Diagnostic[]): void {
  for (const [key, kind] of [
    ["linear", "linear_attention"],
    ["softmax", "softmax_attention"],
  ] as const) {
    const span = spanOf(inputs.parallel, key);
    if (span === undefined || !inputs.parallel.values.has(key)) continue;
    const usedKinds = inputs.declared.filter((d) => inputs.used.has(d.decl.name.name)).map((d) => d.kind);
    if (inputs.used.size > 0 && !usedKinds.includes(kind)) {
      diagnostics.push(diagnose("unusedStrategy", span, [key, kind], { hint: "remove the setting" }));
    }
  }
}

/** `mask_rate` acts only on an all-bidirectional stack (masked-token prediction); one causal layer makes it next-token. */
function checkUnusedMaskRate(inputs: RuleInputs, diagnostics: Diagnostic[]): void {
  const span = spanOf(inputs.model, "mask_rate");
  if (span === undefined || !inputs.model!.values.has("mask_rate")) return;
  // `used` holds the stack's layers in the order they first appear, so the note is on the first causal one.
  const causal = [...inputs.used]
    .map((name) => inputs.declared.find((d) => d.decl.name.name === name))
    .find((d) => d !== undefined && causalOf(d));
  if (causal === undefined) return;
  const name = causal.decl.name.name;
  const causalSpan = spanOf(causal.read, "causal");
  diagnostics.push(
    diagnose("unusedMaskRate", span, [name], {
      hint: "remove the setting, or make every layer `causal false`",
      related: [
        causalSpan === undefined
          ? { span: causal.decl.name.span, message: `layer ${quote(name)} is causal by default` }
          : { span: causalSpan, message: `layer ${quote(name)} is made causal here` },
      ],
    }),
  );
}

/** Whether a layer is causal; a `causal` given but invalid is already reported and counts as not. */
function causalOf(d: RuleInputs["declared"][number]): boolean {
  if (d.read.settings.has("causal") && !d.read.values.has("causal")) return false;
  return settingValue<boolean>(d.read, d.kind === "linear_attention" ? LINEAR_KEYS : SOFTMAX_KEYS, "causal")!;
}

/** A key given with a value that was invalid (already reported): rules that need it stay quiet. */
function invalid(read: ReadSettings, key: string): boolean {
  return read.settings.has(key) && !read.values.has(key);
}

/** The key's value as written (`3e-4`), or as its default reads. */
function shown(read: ReadSettings, key: string): string {
  const setting = read.settings.get(key);
  const text = setting?.value.kind === "number" ? setting.value.text : undefined;
  return formatNumber(
    settingValue<number>(read, RUN_KEYS, key)!,
    text ?? RUN_KEYS.find((k) => k.key === key)?.default,
  );
}

/**
 * The training settings that relate to each other: the schedule fits in the run, evaluation has data. A key
 * that an unknown key was taken for (`evaluate_every 50`, "did you mean `eval_every`?") counts as wrong, not
 * as its default: the unknown key's error is the one mistake, and a rule about the default would repeat it.
 */
function checkTraining(run: ReadSettings, diagnostics: Diagnostic[], meant: (key: string) => boolean): void {
  const wrong = (key: string) => invalid(run, key) || meant(key);
  // `warmup` is a benchmark's (its untimed steps); a training spec that sets it most likely meant warmup_steps.
  const warmupGiven = run.settings.has("warmup") ? num(run, "warmup") : undefined;
  if (
    warmupGiven !== undefined &&
    warmupGiven > 0 &&
    !wrong("mode") &&
    settingValue<string>(run, RUN_KEYS, "mode") === "train"
  ) {
    diagnostics.push(
      diagnose("unusedWarmup", spanOf(run, "warmup")!, [warmupGiven], {
        hint: `\`warmup_steps ${warmupGiven}\` warms the learning rate up over ${warmupGiven} optimizer steps; or remove \`warmup\``,
      }),
    );
  }
  const steps = settingValue<number>(run, RUN_KEYS, "steps")!;
  const warmup = num(run, "warmup_steps");
  if (warmup !== undefined && !wrong("steps") && warmup > steps) {
    diagnostics.push(
      diagnose("warmupPastSteps", spanOf(run, "warmup_steps")!, [warmup, steps], {
        hint: run.settings.has("steps")
          ? `use at most ${steps} warmup steps, or more steps`
          : `steps defaults to ${steps}; add \`steps\` to the run block, or use fewer warmup steps`,
        related: notes([spanOf(run, "steps"), `steps ${steps} is set here`]),
      }),
    );
  }
  const minLr = num(run, "min_lr");
  const lr = settingValue<number>(run, RUN_KEYS, "lr")!;
  // `lr_schedule constant` never reads min_lr (the program's lr_schedule::check skips it too).
  const constant = !wrong("lr_schedule") && settingValue<string>(run, RUN_KEYS, "lr_schedule") === "constant";
  if (minLr !== undefined && !wrong("lr") && !constant && minLr > lr) {
    diagnostics.push(
      diagnose("minLrAboveLr", spanOf(run, "min_lr")!, [shown(run, "min_lr"), shown(run, "lr")], {
        hint: run.settings.has("lr")
          ? "min_lr is the rate the schedule decays to: use a value at most lr"
          : `lr defaults to ${shown(run, "lr")}; use a smaller min_lr, or set \`lr\``,
        related: notes([spanOf(run, "lr"), `lr ${shown(run, "lr")} is set here`]),
      }),
    );
  }
  if (wrong("eval_every") || wrong("eval_data")) return;
  const every = settingValue<number>(run, RUN_KEYS, "eval_every")!;
  const evalData = settingValue<PathValue>(run, RUN_KEYS, "eval_data")!;
  if (every > 0 && evalData.kind === "none") {
    diagnostics.push(
      diagnose("evalWithoutData", spanOf(run, "eval_every")!, [every], {
        hint: 'add held-out tokens, for example `eval_data "val.bin"`, or remove `eval_every`',
        related: notes([spanOf(run, "eval_data"), "`eval_data` is `none` here"]),
      }),
    );
  }
  if (every === 0 && evalData.kind === "file") {
    diagnostics.push(
      diagnose("unusedEvalData", spanOf(run, "eval_data")!, [], {
        hint: "add `eval_every N` to evaluate every N steps, or remove `eval_data`",
        related: notes([spanOf(run, "eval_every"), "`eval_every 0` is set here"]),
      }),
    );
  }
}

/** `tokenizer bytes` needs a token for each byte value, and an encoder one more: its mask token, the last id. */
function checkTokenizer(inputs: RuleInputs, run: ReadSettings, diagnostics: Diagnostic[]): void {
  if (invalid(run, "tokenizer") || settingValue<Tokenizer>(run, RUN_KEYS, "tokenizer")!.kind !== "bytes")
    return;
  const vocab = num(inputs.model, "vocab");
  const layers = [...inputs.used].map((name) => inputs.declared.find((d) => d.decl.name.name === name));
  const encoder = layers.length > 0 && layers.every((d) => d !== undefined && !causalOf(d));
  const least = encoder ? 257 : 256;
  if (vocab === undefined || vocab >= least) return;
  diagnostics.push(
    diagnose("bytesTokenizerVocab", spanOf(run, "tokenizer")!, [vocab, encoder], {
      hint: encoder
        ? "set `vocab 257` (or more): the 256 bytes and the mask token, or `tokenizer none`"
        : "set `vocab 256` (or more), as a model trained on `lasp tokens` files has, or `tokenizer none`",
      related: notes([spanOf(inputs.model, "vocab"), `vocab ${vocab} is set here`]),
    }),
  );
}

/**
 * Document boundaries: `index` needs a dataset (the `.idx` itself is only read by the program), `eos` a token
 * of the vocabulary; the settings of another kind of boundary are reported as having no effect.
 */
function checkDocuments(run: ReadSettings, model: ReadSettings | undefined, diagnostics: Diagnostic[]): void {
  if (invalid(run, "documents")) return;
  const kind = settingValue<string>(run, RUN_KEYS, "documents")!;
  const documentsNote = notes([spanOf(run, "documents"), `\`documents ${kind}\` is set here`]);
  const data = invalid(run, "data") ? undefined : settingValue<DataValue>(run, RUN_KEYS, "data")!;
  if (kind === "index" && data?.kind === "synthetic") {
    diagnostics.push(
      diagnose("indexWithoutDataset", spanOf(run, "documents")!, [], {
        hint: run.settings.has("data")
          ? 'give a Megatron dataset, for example `data "corpus_text_document"` (its .bin and .idx), or use `documents eos`'
          : 'data defaults to synthetic; give a Megatron dataset, for example `data "corpus_text_document"`, or use `documents eos`',
        related: notes([spanOf(run, "data"), "`data synthetic` is set here"]),
      }),
    );
  }
  if (kind === "eos" && !run.settings.has("eos_token")) {
    diagnostics.push(
      diagnose("eosWithoutToken", spanOf(run, "documents")!, [], {
        hint: "add the id of the token that ends each document, for example `eos_token 50256` (GPT-2's `<|endoftext|>`)",
      }),
    );
  }
  const token = num(run, "eos_token");
  if (token !== undefined && kind !== "eos") {
    diagnostics.push(
      diagnose(
        "unusedDocumentSetting",
        spanOf(run, "eos_token")!,
        [
          "eos_token",
          kind === "none"
            ? "`documents` is `none`, so no token ends a document"
            : "`documents index` takes the boundaries from the dataset's `.idx`",
        ],
        { hint: "remove it, or set `documents eos`", related: documentsNote },
      ),
    );
  }
  const vocab = num(model, "vocab");
  if (token !== undefined && kind === "eos" && vocab !== undefined && token >= vocab) {
    diagnostics.push(
      diagnose("eosOutsideVocab", spanOf(run, "eos_token")!, [token, vocab], {
        hint: `use the id your tokenizer gives its end-of-document token, below ${vocab}`,
        related: notes([spanOf(model, "vocab"), `vocab ${vocab} is set here`]),
      }),
    );
  }
  if (invalid(run, "document_length")) return;
  if (run.settings.has("document_length")) {
    const why =
      kind === "none"
        ? "`documents` is `none`, so there are no documents to draw"
        : data?.kind === "file"
          ? "the documents come from the token file, with their own lengths"
          : undefined; // `index` with synthetic data: reported above
    if (why !== undefined) {
      diagnostics.push(
        diagnose("unusedDocumentSetting", spanOf(run, "document_length")!, ["document_length", why], {
          hint:
            kind === "none"
              ? "remove it, or set `documents eos` to draw synthetic documents of this mean length"
              : "remove it: the mean length only shapes synthetic data",
          related:
            kind === "none" ? documentsNote : notes([spanOf(run, "data"), "the token file is set here"]),
        }),
      );
      return;
    }
  }
  const seqLen = num(run, "seq_len");
  const length = settingValue<number>(run, RUN_KEYS, "document_length")!;
  if (kind === "eos" && data?.kind === "synthetic" && seqLen !== undefined && length > seqLen) {
    const given = run.settings.has("document_length");
    diagnostics.push(
      diagnose(
        "documentsLongerThanSequence",
        spanOf(run, given ? "document_length" : "documents")!,
        [shown(run, "document_length"), shown(run, "seq_len")],
        {
          hint: given
            ? "use a document_length below seq_len, so that each sequence packs several documents"
            : `document_length defaults to ${shown(run, "document_length")}; set a shorter one, for example \`document_length ${Math.max(1, Math.floor(seqLen / 4))}\``,
          related: notes([spanOf(run, "seq_len"), `seq_len ${shown(run, "seq_len")} is set here`]),
        },
      ),
    );
  }
}

function divisors(n: number): number[] {
  const out: number[] = [];
  for (let d = 1; d <= n; d++) if (n % d === 0) out.push(d);
  return out;
}
