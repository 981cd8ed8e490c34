// The checker: AST to resolved spec. It reads every block through the key tables (schema.ts), resolves
// defaults, flattens the stack, and enforces the rules the algorithms need (rules.ts). All independent
// problems are reported in one run; a value that is wrong is left out so rules depending on it stay quiet.
import type {
  Block,
  Ident,
  LayerDecl,
  ModelBlock,
  ModelEntry,
  Setting,
  SpecFile,
  StackDecl,
  StackItem,
} from "../ast/ast.js";
import type { Span } from "../ast/span.js";
import { diagnose, hasErrors, sortDiagnostics, type Diagnostic } from "../diagnostics/diagnostic.js";
import { quote } from "../diagnostics/quote.js";
import { wordHint } from "../diagnostics/suggest.js";
import type {
  Documents,
  DType,
  Recompute,
  RecomputeAuto,
  FeatureMap,
  LayerKind,
  Layout,
  LinearAttentionKind,
  LinearStrategy,
  Mode,
  LrSchedule,
  Norm,
  ResolvedSpec,
  ResolvedTraining,
  RopeScaling,
  SoftmaxStrategy,
  Tokenizer,
} from "../spec/resolved.js";
import { paddedLength, pieceCount } from "../spec/padding.js";
import { lightningDecay, retentionDecay } from "./decay.js";
import { checkRules, type RuleInputs } from "./rules.js";
import {
  LAYER_KINDS,
  LINEAR_KEYS,
  MAX_LAYERS,
  MAX_REPEAT,
  MODEL_KEYS,
  PARALLEL_KEYS,
  RUN_KEYS,
  SOFTMAX_KEYS,
  AUTO,
  AUTO_KEYS,
  type AutoKey,
  type KeyRule,
} from "../spec/schema.js";
import {
  settingValue,
  SettingsReader,
  type DataValue,
  type DecayValue,
  type PathValue,
  type ReadSettings,
  type ReadValue,
} from "./values.js";

export interface CheckResult {
  spec?: ResolvedSpec;
  diagnostics: Diagnostic[];
}

const REQUIRED_BLOCKS = ["model", "run"] as const;

export function checkSpec(ast: SpecFile, file: string): CheckResult {
  return new Checker(ast, file).run();
}

/** A layer kind as declared, before head counts are known. */
interface DeclaredLayer {
  decl: LayerDecl;
  kind: (typeof LAYER_KINDS)[number];
  read: ReadSettings;
}

/** A setting's value: required keys are present once the spec has no errors, the others default by the schema. */
function valueOf<T extends ReadValue>(read: ReadSettings, keys: readonly KeyRule[], key: string): T {
  return settingValue<T>(read, keys, key)!;
}

/** A parallel key that may be `auto`: its default until the planner resolves it (schema.ts's AUTO). */
function strategyOf<T extends string>(read: ReadSettings, key: AutoKey): T {
  const value = valueOf<string>(read, PARALLEL_KEYS, key);
  return (value === AUTO ? PARALLEL_KEYS.find((k) => k.key === key)!.default : value) as T;
}

/** `recompute`, and with `recompute auto` the default until the loader fits it (src/plan/recompute-auto.ts). */
function recomputeOf(read: ReadSettings): { recompute: Recompute; recomputeAuto?: RecomputeAuto } {
  const value = valueOf<Recompute | typeof AUTO>(read, RUN_KEYS, "recompute");
  if (value !== AUTO) return { recompute: value };
  return { recompute: RUN_KEYS.find((k) => k.key === "recompute")!.default as Recompute, recomputeAuto: {} };
}

function autoKeys(read: ReadSettings): AutoKey[] {
  return AUTO_KEYS.filter((key) => valueOf<string>(read, PARALLEL_KEYS, key) === AUTO);
}

class Checker {
  private readonly diagnostics: Diagnostic[] = [];
  private readonly reader = new SettingsReader(this.diagnostics);

  constructor(
    private readonly ast: SpecFile,
    private readonly file: string,
  ) {}

  run(): CheckResult {
    const blocks = this.blocks();
    const model = blocks.get("model") as ModelBlock | undefined;
    const parallelBlock = blocks.get("parallel");
    const runBlock = blocks.get("run");

    const modelRead = model
      ? this.reader.read(model.entries.filter(isSetting), MODEL_KEYS, "the `model` block")
      : undefined;
    const declared = model ? this.layers(model) : new Map<string, DeclaredLayer>();
    const stack = model ? this.stack(model, declared) : undefined;

    const parallelRead = this.reader.read(
      parallelBlock?.kind === "parallel" ? parallelBlock.settings : [],
      PARALLEL_KEYS,
      "the `parallel` block",
    );
    const runRead =
      runBlock?.kind === "run" ? this.reader.read(runBlock.settings, RUN_KEYS, "the `run` block") : undefined;
    // Missing keys last: an unknown key in any block may stand for one of them (`hidden_size`).
    if (model && modelRead)
      this.reader.requireKeys(modelRead, MODEL_KEYS, "the `model` block", model.keyword);
    if (runBlock && runRead) this.reader.requireKeys(runRead, RUN_KEYS, "the `run` block", runBlock.keyword);

    const inputs: RuleInputs = {
      model: modelRead,
      parallel: parallelRead,
      parallelKeyword: parallelBlock?.keyword,
      run: runRead,
      declared: [...declared.values()].map((d) => ({ decl: d.decl, kind: d.kind, read: d.read })),
      used: stack?.used ?? new Set(),
      meantRunKey: (key) => this.reader.wasMeant("run", key),
    };
    const resolvedNumbers = checkRules(inputs, this.diagnostics);

    const diagnostics = sortDiagnostics(this.diagnostics);
    if (hasErrors(diagnostics) || !model || !modelRead || !runRead || !stack || !resolvedNumbers) {
      return { diagnostics };
    }
    const { heads, headDim, gpus, sequence, data } = resolvedNumbers;
    const kinds = new Map<string, LayerKind>();
    for (const [name, d] of declared) kinds.set(name, this.resolveKind(name, d, heads));
    const spec: ResolvedSpec = {
      file: this.file,
      model: {
        name: model.name.name,
        vocab: valueOf<number>(modelRead, MODEL_KEYS, "vocab"),
        hidden: valueOf<number>(modelRead, MODEL_KEYS, "hidden"),
        ffn: valueOf<number>(modelRead, MODEL_KEYS, "ffn"),
        heads,
        headDim,
        norm: valueOf<Norm>(modelRead, MODEL_KEYS, "norm"),
        normEps: valueOf<number>(modelRead, MODEL_KEYS, "norm_eps"),
        tieEmbeddings: valueOf<boolean>(modelRead, MODEL_KEYS, "tie_embeddings"),
        maskRate: valueOf<number>(modelRead, MODEL_KEYS, "mask_rate"),
        kinds: [...kinds.values()],
        layers: stack.names.map((name) => kinds.get(name)!),
      },
      parallel: {
        gpus,
        sequence,
        data,
        linear: strategyOf<LinearStrategy>(parallelRead, "linear"),
        softmax: strategyOf<SoftmaxStrategy>(parallelRead, "softmax"),
        layout: strategyOf<Layout>(parallelRead, "layout"),
        overlap: valueOf<boolean>(parallelRead, PARALLEL_KEYS, "overlap"),
        scanBlocks: valueOf<number>(parallelRead, PARALLEL_KEYS, "scan_blocks"),
        ...(autoKeys(parallelRead).length > 0 ? { auto: { keys: autoKeys(parallelRead) } } : {}),
      },
      run: {
        ...padSequence(
          valueOf<number>(runRead, RUN_KEYS, "seq_len"),
          strategyOf<Layout>(parallelRead, "layout"),
          sequence,
        ),
        batch: valueOf<number>(runRead, RUN_KEYS, "batch"),
        dtype: valueOf<DType>(runRead, RUN_KEYS, "dtype"),
        ...recomputeOf(runRead),
        steps: valueOf<number>(runRead, RUN_KEYS, "steps"),
        warmup: valueOf<number>(runRead, RUN_KEYS, "warmup"),
        mode: valueOf<Mode>(runRead, RUN_KEYS, "mode"),
        seed: valueOf<number>(runRead, RUN_KEYS, "seed"),
        lr: valueOf<number>(runRead, RUN_KEYS, "lr"),
        data: valueOf<DataValue>(runRead, RUN_KEYS, "data"),
        tokenizer: valueOf<Tokenizer>(runRead, RUN_KEYS, "tokenizer"),
        documents: resolveDocuments(runRead),
        train: resolveTraining(runRead),
      },
    };
    return { spec, diagnostics };
  }

  /** One block of each kind; duplicates and missing required blocks are reported. */
  private blocks(): Map<string, Block> {
    const found = new Map<string, Block>();
    for (const block of this.ast.blocks) {
      const first = found.get(block.kind);
      if (first) {
        this.diagnostics.push(
          diagnose("duplicateBlock", block.keyword, [block.kind], {
            hint: "merge the two into one block",
            related: [{ span: first.keyword, message: "first given here" }],
          }),
        );
      } else {
        found.set(block.kind, block);
      }
    }
    const end: Span = { start: this.ast.span.end, end: this.ast.span.end };
    for (const kind of REQUIRED_BLOCKS) {
      if (!found.has(kind)) {
        const example =
          kind === "model"
            ? "model NAME { vocab ... hidden ... heads ... stack ... }"
            : "run { seq_len 64K }";
        this.diagnostics.push(diagnose("missingBlock", end, [kind], { hint: `add \`${example}\`` }));
      }
    }
    return found;
  }

  private layers(model: ModelBlock): Map<string, DeclaredLayer> {
    const declared = new Map<string, DeclaredLayer>();
    for (const decl of model.entries.filter((e): e is LayerDecl => e.kind === "layer")) {
      const name = decl.name.name;
      const first = declared.get(name);
      if (first) {
        this.diagnostics.push(
          diagnose("duplicateLayer", decl.name.span, [name], {
            hint: "give each layer kind its own name",
            related: [{ span: first.decl.name.span, message: "first declared here" }],
          }),
        );
        continue;
      }
      const kindName = decl.layerKind.name;
      if (!(LAYER_KINDS as readonly string[]).includes(kindName)) {
        this.diagnostics.push(
          diagnose("unknownLayerKind", decl.layerKind.span, [kindName], {
            hint: wordHint(kindName, LAYER_KINDS, "layer kinds"),
          }),
        );
        continue;
      }
      const kind = kindName as DeclaredLayer["kind"];
      const keys = kind === "linear_attention" ? LINEAR_KEYS : SOFTMAX_KEYS;
      const read = this.reader.read(decl.settings, keys, `layer ${quote(name)} (${kind})`);
      declared.set(name, { decl, kind, read });
    }
    return declared;
  }

  /** Flattens the stack to layer names, checking names and repeat counts. */
  private stack(
    model: ModelBlock,
    declared: Map<string, DeclaredLayer>,
  ): { names: string[]; used: Set<string> } | undefined {
    const stacks = model.entries.filter((e): e is StackDecl => e.kind === "stack");
    if (stacks.length === 0) {
      if (this.reader.wasMeant("model", "stack")) return undefined; // `num_hidden_layers 16`: reported
      this.diagnostics.push(
        diagnose("missingKey", model.keyword, ["stack", "the `model` block"], {
          hint: "add it, for example `stack [L, L, L, S] x 4`",
        }),
      );
      return undefined;
    }
    for (const extra of stacks.slice(1)) {
      this.diagnostics.push(
        diagnose(
          "duplicateKey",
          {
            start: extra.span.start,
            end: {
              ...extra.span.start,
              offset: extra.span.start.offset + 5,
              column: extra.span.start.column + 5,
            },
          },
          ["stack", "the `model` block"],
          {
            hint: "keep one of them",
            related: [{ span: stacks[0]!.span, message: "first given here" }],
          },
        ),
      );
    }
    const used = new Set<string>();
    let ok = true;
    const expand = (items: readonly StackItem[]): string[] => {
      const out: string[] = [];
      for (const item of items) {
        const inner =
          item.target.kind === "group"
            ? expand(item.target.items)
            : this.stackName(item.target, declared, used);
        if (inner === undefined) {
          ok = false;
          continue;
        }
        const repeat = item.repeat
          ? this.reader.number("x", item.repeat, { type: "int", min: 1, max: MAX_REPEAT })
          : 1;
        if (repeat === undefined) {
          ok = false;
          continue;
        }
        for (let r = 0; r < repeat && out.length <= MAX_LAYERS; r++) out.push(...inner);
      }
      return out;
    };
    const names = expand(stacks[0]!.items);
    if (names.length > MAX_LAYERS) {
      this.diagnostics.push(
        diagnose("outOfRange", stacks[0]!.span, ["stack", `of more than ${MAX_LAYERS} layers`], {
          hint: `valid: 1 to ${MAX_LAYERS} layers`,
        }),
      );
      return undefined;
    }
    for (const [name, d] of declared) {
      if (!used.has(name))
        this.diagnostics.push(
          diagnose("unusedLayer", d.decl.name.span, [name], { hint: "use it in `stack` or remove it" }),
        );
    }
    return ok ? { names, used } : undefined;
  }

  private stackName(
    name: Ident,
    declared: Map<string, DeclaredLayer>,
    used: Set<string>,
  ): string[] | undefined {
    if (!declared.has(name.name)) {
      // A layer whose declaration failed (unknown kind, duplicate) is already reported; say nothing more.
      const failedDecl = this.ast.blocks.some(
        (b) => b.kind === "model" && b.entries.some((e) => e.kind === "layer" && e.name.name === name.name),
      );
      if (!failedDecl) {
        this.diagnostics.push(
          diagnose("undefinedLayer", name.span, [name.name], {
            hint:
              declared.size > 0
                ? wordHint(name.name, [...declared.keys()], "declared layers")
                : "declare it with `layer NAME = linear_attention { }`",
          }),
        );
      }
      return undefined;
    }
    used.add(name.name);
    return [name.name];
  }

  private resolveKind(name: string, d: DeclaredLayer, heads: number): LayerKind {
    const v = d.read.values;
    if (d.kind === "softmax_attention") {
      return {
        type: "softmax_attention",
        name,
        kvHeads: (v.get("kv_heads") as number | undefined) ?? heads,
        ropeTheta: valueOf<number>(d.read, SOFTMAX_KEYS, "rope_theta"),
        ropeScaling: resolveRopeScaling(d.read),
        causal: valueOf<boolean>(d.read, SOFTMAX_KEYS, "causal"),
      };
    }
    const decay = valueOf<DecayValue>(d.read, LINEAR_KEYS, "decay");
    const kvHeads = v.get("kv_heads") as number | undefined;
    return {
      type: "linear_attention",
      name,
      // Only a grouped layer says so: `kv_heads` equal to heads is the same layer (and checkpoint) as none.
      ...(kvHeads !== undefined && kvHeads !== heads ? { kvHeads } : {}),
      decay: resolveDecay(decay, heads),
      featureMap: valueOf<FeatureMap>(d.read, LINEAR_KEYS, "feature_map"),
      outputNorm: valueOf<"rms" | "none">(d.read, LINEAR_KEYS, "output_norm"),
      causal: valueOf<boolean>(d.read, LINEAR_KEYS, "causal"),
    };
  }
}

/** `rope_scaling` and its settings; the rules (rules.ts) have made sure those it needs are given. */
function resolveRopeScaling(read: ReadSettings): RopeScaling {
  const type = valueOf<RopeScaling["type"]>(read, SOFTMAX_KEYS, "rope_scaling");
  if (type === "none") return { type };
  const factor = settingValue<number>(read, SOFTMAX_KEYS, "rope_factor") ?? 1;
  if (type === "linear") return { type, factor };
  return {
    type,
    factor,
    lowFreqFactor: valueOf<number>(read, SOFTMAX_KEYS, "rope_low_freq_factor"),
    highFreqFactor: valueOf<number>(read, SOFTMAX_KEYS, "rope_high_freq_factor"),
    originalMaxPositions: settingValue<number>(read, SOFTMAX_KEYS, "rope_original_max_positions") ?? 1,
  };
}

function isSetting(entry: ModelEntry): entry is Setting {
  return entry.kind === "setting";
}

/** The length every pass computes on: `seq_len` padded to equal pieces of whole blocks (rules.ts notes it). */
function padSequence(seqLen: number, layout: Layout, sequence: number): { seqLen: number; padding: number } {
  const padded = paddedLength(seqLen, pieceCount(layout, sequence));
  return { seqLen: padded, padding: padded - seqLen };
}

/** The document boundaries; the rules (rules.ts) have made sure `eos` has its token. */
function resolveDocuments(run: ReadSettings): Documents {
  const kind = valueOf<Documents["kind"]>(run, RUN_KEYS, "documents");
  if (kind !== "eos") return { kind };
  const synthetic = valueOf<DataValue>(run, RUN_KEYS, "data").kind === "synthetic";
  return {
    kind,
    eosToken: valueOf<number>(run, RUN_KEYS, "eos_token"),
    meanLength: synthetic ? valueOf<number>(run, RUN_KEYS, "document_length") : undefined,
  };
}

/** The training settings, with the defaults derived from other keys: warmup from steps, min_lr from lr. */
function resolveTraining(run: ReadSettings): ResolvedTraining {
  const steps = valueOf<number>(run, RUN_KEYS, "steps");
  const lr = valueOf<number>(run, RUN_KEYS, "lr");
  const betas = valueOf<number[]>(run, RUN_KEYS, "betas");
  return {
    betas: [betas[0]!, betas[1]!],
    adamEps: valueOf<number>(run, RUN_KEYS, "adam_eps"),
    weightDecay: valueOf<number>(run, RUN_KEYS, "weight_decay"),
    warmupSteps: settingValue<number>(run, RUN_KEYS, "warmup_steps") ?? Math.floor(steps / 100),
    lrSchedule: valueOf<LrSchedule>(run, RUN_KEYS, "lr_schedule"),
    minLr: settingValue<number>(run, RUN_KEYS, "min_lr") ?? lr / 10,
    gradClip: valueOf<number>(run, RUN_KEYS, "grad_clip"),
    accumulate: valueOf<number>(run, RUN_KEYS, "accumulate"),
    checkpointEvery: valueOf<number>(run, RUN_KEYS, "checkpoint_every"),
    keepCheckpoints: valueOf<number>(run, RUN_KEYS, "keep_checkpoints"),
    evalData: valueOf<PathValue>(run, RUN_KEYS, "eval_data"),
    evalEvery: valueOf<number>(run, RUN_KEYS, "eval_every"),
  };
}

function resolveDecay(decay: DecayValue, heads: number): LinearAttentionKind["decay"] {
  switch (decay.kind) {
    case "fixed":
      return { schedule: "fixed", perHead: Array(heads).fill(decay.value) };
    case "list":
      return { schedule: "list", perHead: decay.values };
    case "schedule":
      if (decay.name === "retention") return { schedule: "retention", perHead: retentionDecay(heads) };
      if (decay.name === "lightning") return { schedule: "lightning", perHead: lightningDecay(heads) };
      return { schedule: "none", perHead: Array(heads).fill(1) };
  }
}
