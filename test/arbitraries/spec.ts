// fast-check arbitraries of VALID specs, as ASTs: every key comes from the tables in src/spec/schema.ts with a
// value its rule accepts, and the cross-setting rules of src/check/rules.ts hold (gpus = sequence x data,
// seq_len splits into whole kernel blocks, kv_heads divides heads, head_dim 64 or 128, ulysses only where the
// heads split over the sequence ranks, lasp1 only with causal layers, decay only on causal layers, every
// declared layer used, strategies only for kinds in the stack). A spec from here checks without a single diagnostic.
import fc from "fast-check";
import type {
  Block,
  Ident,
  LayerDecl,
  ListValue,
  ModelEntry,
  NumberValue,
  Setting,
  SpecFile,
  StackItem,
  StringValue,
  Value,
  WordValue,
} from "../../src/ast/ast.js";
import type { Span } from "../../src/ast/span.js";
import {
  BOOLEAN_WORDS,
  DECAY_SCHEDULES,
  LAYER_KINDS,
  MAX_LAYERS,
  MODEL_KEYS,
  PARALLEL_KEYS,
  RUN_KEYS,
  LINEAR_KEYS,
  type KeyRule,
} from "../../src/spec/schema.js";
import { KERNEL_BLOCK, SUPPORTED_HEAD_DIMS } from "../../src/spec/resolved.js";

/** Generated nodes carry this span: stripSpans drops spans before any comparison. */
export const NO_SPAN: Span = {
  start: { offset: 0, line: 1, column: 1 },
  end: { offset: 0, line: 1, column: 1 },
};

export const KEYWORDS = ["model", "parallel", "run", "layer", "stack", "x"] as const;

export const ident = (name: string): Ident => ({ kind: "ident", name, span: NO_SPAN });
export const num = (value: number): NumberValue => ({ kind: "number", value, span: NO_SPAN });
export const word = (name: string): WordValue => ({ kind: "word", name, span: NO_SPAN });
export const str = (value: string): StringValue => ({ kind: "string", value, span: NO_SPAN });
export const list = (items: Value[]): ListValue => ({ kind: "list", items, span: NO_SPAN });
export const setting = (key: string, value: Value): Setting => ({
  kind: "setting",
  key: ident(key),
  value,
  span: NO_SPAN,
});

/** A name the lexer reads as one identifier (not a keyword). */
export const nameArb: fc.Arbitrary<string> = fc
  .stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,11}$/)
  .filter((name) => !(KEYWORDS as readonly string[]).includes(name));

/** A string value the lexer can hold: anything but a line break (quotes and backslashes included). */
export const stringValueArb: fc.Arbitrary<string> = fc
  .string({ unit: "binary", maxLength: 24 })
  .map((s) => s.replace(/[\n\r]/g, ""));

/** Any value the grammar accepts (for printer tests; the checker would reject most of them). */
export const valueArb: fc.Arbitrary<Value> = fc.letrec<{ value: Value }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.double({ noNaN: true, noDefaultInfinity: true }).map(num),
    fc.integer().map(num),
    nameArb.map(word),
    stringValueArb.map(str),
    fc.array(tie("value"), { maxLength: 4 }).map(list),
  ),
})).value;

const BOOL_WORDS = Object.keys(BOOLEAN_WORDS);

function rule(keys: readonly KeyRule[], key: string): KeyRule {
  const found = keys.find((k) => k.key === key);
  if (!found) throw new Error(`arbitrary out of date: schema has no key \`${key}\``);
  return found;
}

function intBounds(keys: readonly KeyRule[], key: string): { min: number; max: number } {
  const r = rule(keys, key).rule;
  if (r.type !== "int") throw new Error(`arbitrary out of date: \`${key}\` is not an int`);
  return { min: r.min, max: r.max };
}

function enumWords(keys: readonly KeyRule[], key: string): string[] {
  const r = rule(keys, key).rule;
  if (r.type !== "enum") throw new Error(`arbitrary out of date: \`${key}\` is not an enum`);
  return [...r.words];
}

function divisorsOf(n: number): number[] {
  const out: number[] = [];
  for (let d = 1; d <= n; d++) if (n % d === 0) out.push(d);
  return out;
}

// Builders handed to fc.gen's `g` must be stable functions with few distinct arguments: gen caches one
// arbitrary per builder and arguments (a linear search, deep comparison), and when shrinking replays the
// recorded values only for the same arbitrary. A fresh `() => fc.x()` per call makes every shrink step a
// brand-new random spec, so shrinking never ends; AST arguments make the cache grow without bound.

/** A float in (0, 1], the range of norm_eps, lr and decay values. */
const unitFloat = (): fc.Arbitrary<number> =>
  fc.oneof(
    fc.double({ min: 0, max: 1, minExcluded: true, noNaN: true }),
    fc.constantFrom(1, 0.5, 0.99, 1e-5, 3e-4),
  );
/** A float in (0, 1), the range of each of `betas`. */
const openUnitFloat = (): fc.Arbitrary<number> =>
  fc.oneof(
    fc.double({ min: 0, max: 1, minExcluded: true, maxExcluded: true, noNaN: true }),
    fc.constantFrom(0.9, 0.95),
  );
const permutationArb = (length: number): fc.Arbitrary<number[]> =>
  fc.shuffledSubarray(
    Array.from({ length }, (_, i) => i),
    { minLength: length, maxLength: length },
  );
const headsArb = (max: number): fc.Arbitrary<number> =>
  fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constantFrom(96, 128, 256, 512, max));
const layerNamesArb = (): fc.Arbitrary<string[]> => fc.uniqueArray(nameArb, { minLength: 1, maxLength: 4 });
const modelNameArb = (): fc.Arbitrary<string> => nameArb;
const ropeThetaArb = (): fc.Arbitrary<number> =>
  fc.oneof(fc.double({ min: 0, max: 1e12, minExcluded: true, noNaN: true }), fc.constantFrom(10000, 500000));
/** How many units of (pieces x kernel block) a seq_len holds: mostly small, sometimes up to the maximum. */
const seqLenUnitsArb = (max: number): fc.Arbitrary<number> =>
  fc.oneof(fc.integer({ min: 1, max: Math.min(64, max) }), fc.integer({ min: 1, max }));
const pathArb = (): fc.Arbitrary<string> => stringValueArb;

interface LayerPlan {
  name: string;
  kind: (typeof LAYER_KINDS)[number];
  causal: boolean;
  kvHeads: number;
  settings: Setting[];
}

function flatSize(items: readonly StackItem[]): number {
  let total = 0;
  for (const item of items) {
    const inner = item.target.kind === "group" ? flatSize(item.target.items) : 1;
    total += inner * (item.repeat?.value ?? 1);
  }
  return total;
}

function withoutRepeats(items: StackItem[]): StackItem[] {
  return items.map((item) => {
    const target =
      item.target.kind === "group"
        ? { ...item.target, items: withoutRepeats(item.target.items) }
        : item.target;
    return { kind: "item", target, span: NO_SPAN };
  });
}

function usedNames(items: readonly StackItem[], into: Set<string>): Set<string> {
  for (const item of items) {
    if (item.target.kind === "group") usedNames(item.target.items, into);
    else into.add(item.target.name);
  }
  return into;
}

/** Valid specs as ASTs (spans are NO_SPAN, comments empty). */
export const validSpecArb: fc.Arbitrary<SpecFile> = fc.gen().map((g): SpecFile => {
  const bool = (): boolean => g(fc.boolean);
  const int = (min: number, max: number): number => g(fc.integer, { min, max });
  // Choices go through indices, so gen's cache (keyed by the builder's arguments) stays small.
  const pick = <T>(values: readonly T[]): T => values[int(0, values.length - 1)]!;
  const shuffle = <T>(values: T[]): T[] => g(permutationArb, values.length).map((i) => values[i]!);

  // --- model sizes
  const headDim = pick(SUPPORTED_HEAD_DIMS);
  const headsMax = intBounds(MODEL_KEYS, "heads").max;
  const heads = g(headsArb, headsMax);
  const hiddenBounds = intBounds(MODEL_KEYS, "hidden");
  // Without head_dim the checker derives it as hidden / heads, which must then be 64 or 128.
  const giveHeadDim = heads * headDim > hiddenBounds.max || bool();
  const hidden = giveHeadDim ? int(hiddenBounds.min, hiddenBounds.max) : heads * headDim;

  const vocab = int(intBounds(MODEL_KEYS, "vocab").min, intBounds(MODEL_KEYS, "vocab").max);
  const modelSettings: Setting[] = [
    setting("vocab", num(vocab)),
    setting("hidden", num(hidden)),
    setting("ffn", num(int(intBounds(MODEL_KEYS, "ffn").min, intBounds(MODEL_KEYS, "ffn").max))),
    setting("heads", num(heads)),
  ];
  if (giveHeadDim) modelSettings.push(setting("head_dim", num(headDim)));
  if (bool()) modelSettings.push(setting("norm", word(pick(enumWords(MODEL_KEYS, "norm")))));
  if (bool()) modelSettings.push(setting("norm_eps", num(g(unitFloat))));

  // --- layers
  const names = g(layerNamesArb);
  const layers: LayerPlan[] = names.map((name) => {
    const kind = pick(LAYER_KINDS);
    const settings: Setting[] = [];
    let causal = true;
    let kvHeads = heads;
    const causalSetting = (): void => {
      if (!bool()) return;
      const w = pick(BOOL_WORDS);
      causal = BOOLEAN_WORDS[w]!;
      settings.push(setting("causal", word(w)));
    };
    if (kind === "linear_attention") {
      causalSetting();
      if (bool()) {
        // A bidirectional layer cannot decay (E0511): only `none` or decays of exactly 1.
        const decayValue = (): number => (causal ? g(unitFloat) : 1);
        const choice = int(0, heads <= 16 ? 2 : 1);
        const decay =
          choice === 0
            ? word(causal ? pick(DECAY_SCHEDULES) : "none")
            : choice === 1
              ? num(decayValue())
              : list(Array.from({ length: heads }, () => num(decayValue())));
        settings.push(setting("decay", decay));
      }
      if (bool()) settings.push(setting("feature_map", word(pick(enumWords(LINEAR_KEYS, "feature_map")))));
      if (bool()) settings.push(setting("output_norm", word(pick(enumWords(LINEAR_KEYS, "output_norm")))));
    } else {
      if (bool()) {
        kvHeads = pick(divisorsOf(heads));
        settings.push(setting("kv_heads", num(kvHeads)));
      }
      if (bool()) {
        settings.push(setting("rope_theta", num(g(ropeThetaArb))));
      }
      causalSetting();
    }
    return { name, kind, causal, kvHeads, settings: shuffle(settings) };
  });
  const layerDecls: LayerDecl[] = layers.map((l) => ({
    kind: "layer",
    name: ident(l.name),
    layerKind: ident(l.kind),
    settings: l.settings,
    span: NO_SPAN,
  }));

  // --- stack: nested groups and repeats; every declared layer appears somewhere
  const stackItems = (depth: number): StackItem[] =>
    Array.from({ length: int(1, 3) }, (): StackItem => {
      const target =
        depth < 3 && int(0, 3) === 0
          ? { kind: "group" as const, items: stackItems(depth + 1), span: NO_SPAN }
          : ident(pick(names));
      const item: StackItem = { kind: "item", target, span: NO_SPAN };
      if (bool()) item.repeat = num(int(1, 4));
      return item;
    });
  let items = stackItems(0);
  const used = usedNames(items, new Set());
  for (const name of names)
    if (!used.has(name)) items.push({ kind: "item", target: ident(name), span: NO_SPAN });
  if (flatSize(items) > MAX_LAYERS) items = withoutRepeats(items);

  const modelEntries: ModelEntry[] = shuffle<ModelEntry>([
    ...modelSettings,
    ...layerDecls,
    { kind: "stack", items, span: NO_SPAN },
  ]);
  const modelName = g(modelNameArb);

  // --- parallel: choose sequence and data first, gpus = sequence x data
  const hasParallel = bool();
  const hasData = hasParallel && bool();
  const data = hasData ? int(1, 8) : 1;
  const maxGpus = intBounds(PARALLEL_KEYS, "gpus").max;
  const sequenceChoice = pick([1, 2, 3, 4, 8, 16, 64, 256].filter((s) => s * data <= maxGpus));
  const hasGpus = hasParallel && bool();
  const hasSequence = hasParallel && bool();
  // With neither gpus nor sequence the checker takes sequence 1.
  const sequence = hasGpus || hasSequence ? sequenceChoice : 1;
  const parallelSettings: Setting[] = [];
  if (hasGpus) parallelSettings.push(setting("gpus", num(sequence * data)));
  if (hasSequence) parallelSettings.push(setting("sequence", num(sequence)));
  if (hasData) parallelSettings.push(setting("data", num(data)));
  const linearLayers = layers.filter((l) => l.kind === "linear_attention");
  const softmaxLayers = layers.filter((l) => l.kind === "softmax_attention");
  let zigzag = false;
  if (hasParallel) {
    if (linearLayers.length > 0 && bool()) {
      const allowed = ["lasp2"];
      if (linearLayers.every((l) => l.causal)) allowed.push("lasp1");
      if (heads % sequence === 0) allowed.push("ulysses");
      parallelSettings.push(setting("linear", word(pick(allowed))));
    }
    if (softmaxLayers.length > 0 && bool()) {
      const allowed = ["allgather", "ring"];
      if (heads % sequence === 0 && softmaxLayers.every((l) => l.kvHeads % sequence === 0)) {
        allowed.push("ulysses");
      }
      parallelSettings.push(setting("softmax", word(pick(allowed))));
    }
    if (bool()) {
      const layout = pick(enumWords(PARALLEL_KEYS, "layout"));
      zigzag = layout === "zigzag";
      parallelSettings.push(setting("layout", word(layout)));
    }
    if (bool()) parallelSettings.push(setting("overlap", word(pick(BOOL_WORDS))));
  }

  // --- run: seq_len in whole kernel blocks per piece, batch a multiple of data
  const seqLenMax = intBounds(RUN_KEYS, "seq_len").max;
  const unit = (zigzag ? 2 : 1) * sequence * KERNEL_BLOCK;
  const seqLen = unit * g(seqLenUnitsArb, Math.floor(seqLenMax / unit));
  const runSettings: Setting[] = [setting("seq_len", num(seqLen))];
  // batch defaults to 1, which splits over data 1 only
  if (data > 1 || bool())
    runSettings.push(
      setting("batch", num(data * int(1, Math.floor(intBounds(RUN_KEYS, "batch").max / data)))),
    );
  if (bool()) runSettings.push(setting("dtype", word(pick(enumWords(RUN_KEYS, "dtype")))));
  if (bool())
    runSettings.push(
      setting("steps", num(int(intBounds(RUN_KEYS, "steps").min, intBounds(RUN_KEYS, "steps").max))),
    );
  const mode = bool() ? pick(enumWords(RUN_KEYS, "mode")) : undefined;
  if (mode !== undefined) runSettings.push(setting("mode", word(mode)));
  // `warmup` (a benchmark's untimed steps) in a training spec is a warning (W0616).
  if (mode !== "train" && bool())
    runSettings.push(
      setting("warmup", num(int(intBounds(RUN_KEYS, "warmup").min, intBounds(RUN_KEYS, "warmup").max))),
    );
  if (bool())
    runSettings.push(
      setting("seed", num(int(intBounds(RUN_KEYS, "seed").min, intBounds(RUN_KEYS, "seed").max))),
    );
  if (bool()) runSettings.push(setting("lr", num(g(unitFloat))));
  const dataFile = bool();
  if (dataFile || bool()) runSettings.push(setting("data", dataFile ? str(g(pathArb)) : word("synthetic")));
  // Documents: `index` only with a token file, `eos` with a token of the vocabulary, and a mean length (which
  // only synthetic data reads) no longer than the sequence: the default 2K is longer than short sequences.
  const documents = pick(dataFile ? ["", "none", "eos", "index"] : ["", "none", "eos"]);
  if (documents !== "") runSettings.push(setting("documents", word(documents)));
  if (documents === "eos") {
    runSettings.push(setting("eos_token", num(int(0, vocab - 1))));
    if (!dataFile && (seqLen < 2048 || bool()))
      runSettings.push(setting("document_length", num(int(1, seqLen))));
  }
  // Training settings; the rules between them hold by leaving out warmup_steps and min_lr (their defaults
  // follow steps and lr) and by giving eval_data and eval_every together.
  if (bool()) runSettings.push(setting("betas", list([num(g(openUnitFloat)), num(g(openUnitFloat))])));
  if (bool()) runSettings.push(setting("adam_eps", num(g(unitFloat))));
  if (bool()) runSettings.push(setting("weight_decay", num(g(unitFloat))));
  if (bool()) runSettings.push(setting("lr_schedule", word(pick(enumWords(RUN_KEYS, "lr_schedule")))));
  for (const key of ["accumulate", "checkpoint_every", "keep_checkpoints"]) {
    if (bool())
      runSettings.push(setting(key, num(int(intBounds(RUN_KEYS, key).min, intBounds(RUN_KEYS, key).max))));
  }
  if (bool()) {
    runSettings.push(setting("eval_data", str(g(pathArb))));
    runSettings.push(setting("eval_every", num(int(1, intBounds(RUN_KEYS, "eval_every").max))));
  }

  const blocks: Block[] = [
    { kind: "model", name: ident(modelName), entries: modelEntries, keyword: NO_SPAN, span: NO_SPAN },
    { kind: "run", settings: shuffle(runSettings), keyword: NO_SPAN, span: NO_SPAN },
  ];
  if (hasParallel) {
    blocks.push({ kind: "parallel", settings: shuffle(parallelSettings), keyword: NO_SPAN, span: NO_SPAN });
  }
  return { kind: "spec", blocks: shuffle(blocks), comments: [], span: NO_SPAN };
});
