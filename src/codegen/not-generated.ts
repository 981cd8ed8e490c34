// What the language accepts but the generated program does not do yet. A setting the program would ignore
// is never silent: `lasp check` warns at its position (W0603), and `lasp compile` / `lasp run` refuse a
// setting whose program would do something other than what it says (E0701). Each entry leaves this table in
// the commit that gives the setting its effect.
import type { Block, Setting, SpecFile } from "../ast/ast.js";
import { diagnose, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { ResolvedSpec } from "../spec/resolved.js";

/** What a condition may look at: the resolved spec and the other settings of the setting's block. */
interface Context {
  spec: ResolvedSpec | undefined;
  block: Setting[];
}

interface Ignored {
  block: Block["kind"];
  key: string;
  /** Whether this setting's value is ignored (default: any value). */
  when?: (setting: Setting, context: Context) => boolean;
}

interface Reason {
  settings: Ignored[];
  /** Why, for the message: what the program does instead. */
  why: string;
  /** More on the warning, for its hint. */
  hint?: string;
  /** Refused by compile and run: the program would run something else than the spec asks for. */
  refuse?: { hint: string };
}

const isWord = (word: string) => (s: Setting) => s.value.kind === "word" && s.value.name === word;

/** Slots of lasp::SlotList (types.cuh): the key blocks one log-sum-exp merge combines. */
export const MAX_MERGED_SOURCES = 64;

/** More sequence-parallel ranks than one merge combines, in a spec with ring attention (LASP-2H merges none). */
const tooManySources = (_: Setting, { spec }: Context): boolean =>
  spec !== undefined &&
  spec.parallel.softmax === "ring" &&
  spec.parallel.sequence > MAX_MERGED_SOURCES &&
  spec.model.layers.some((l) => l.type === "softmax_attention");

const REASONS: Reason[] = [
  {
    settings: [{ block: "run", key: "dtype", when: (s) => !isWord("bf16")(s) }],
    why: "the generated kernels are bf16 (states and statistics fp32)",
    refuse: { hint: "use `dtype bf16`" },
  },
  {
    settings: [
      { block: "parallel", key: "sequence", when: tooManySources },
      // Without `sequence`, the group size comes from `gpus`.
      {
        block: "parallel",
        key: "gpus",
        when: (s, c) => tooManySources(s, c) && !c.block.some((b) => b.key.name === "sequence"),
      },
    ],
    why: `the generated log-sum-exp merge of ring attention combines at most ${MAX_MERGED_SOURCES} key blocks`,
    refuse: {
      hint: `use at most ${MAX_MERGED_SOURCES} sequence-parallel GPUs (\`data\` can take the others), or \`softmax allgather\``,
    },
  },
];

function settingsOf(block: Block): Setting[] {
  return block.kind === "model"
    ? block.entries.filter((e): e is Setting => e.kind === "setting")
    : block.settings;
}

/** The settings of `ast` that match `wanted`, in source order. */
function find(ast: SpecFile, wanted: Ignored[], spec: ResolvedSpec | undefined): Setting[] {
  return ast.blocks.flatMap((block) => {
    const settings = settingsOf(block);
    return settings.filter((s) =>
      wanted.some(
        (w) =>
          w.block === block.kind && w.key === s.key.name && (w.when?.(s, { spec, block: settings }) ?? true),
      ),
    );
  });
}

/** A setting as the message names it: where the value is what is not generated, with it (`mode train`). */
const named = (s: Setting): string =>
  s.value.kind === "word" && ["mode", "dtype", "documents", "linear"].includes(s.key.name)
    ? `${s.key.name} ${s.value.name}`
    : s.key.name;

export interface NotGeneratedOptions {
  /** For compile and run: settings the program would betray are errors. */
  refuse?: boolean;
  /** A mode given on the command line, which replaces the spec's. */
  modeOverride?: string;
}

/** One diagnostic per reason, at the first setting it names, with a note at each other one. */
export function notGenerated(
  ast: SpecFile,
  options: NotGeneratedOptions = {},
  spec?: ResolvedSpec,
): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const reason of REASONS) {
    const found = find(ast, reason.settings, spec).filter(
      (s) => !(s.key.name === "mode" && options.modeOverride !== undefined),
    );
    if (found.length === 0) continue;
    const [first, ...rest] = found;
    const related = rest.map((s) => ({ span: s.span, message: `\`${named(s)}\` is ignored too` }));
    const keys = found.map((s) => `\`${named(s)}\``).join(", ");
    if (reason.refuse !== undefined && options.refuse === true) {
      out.push(
        diagnose("notGeneratedYet", first!.span, [keys, reason.why], { hint: reason.refuse.hint, related }),
      );
    } else {
      const hint = reason.hint !== undefined ? { hint: reason.hint } : {};
      out.push(diagnose("notUsedYet", first!.span, [keys, found.length, reason.why], { ...hint, related }));
    }
  }
  return out;
}
