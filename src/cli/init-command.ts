// `lasp init SPEC --from-hf CONFIG`: a new spec whose model is a Hugging Face config's (src/model/hf-import.ts),
// on `--gpus` GPUs at `--seq-len` tokens, in train mode with `recompute auto`: a starting point to edit. The
// spec is checked before it is written, written atomically, and never over a file that is there.
import { existsSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { Identifier, laspLexer, NumberLiteral } from "../../grammar/tokens.js";
import type { Span } from "../ast/span.js";
import { checkSource } from "../check/front-end.js";
import { hasErrors, type Diagnostic } from "../diagnostics/diagnostic.js";
import { renderDiagnostics } from "../diagnostics/render.js";
import { formatSpec } from "../format/format.js";
import { writeFileAtomic } from "../io/atomic-write.js";
import { describeReadError, errorCode } from "../io/write-error.js";
import { HfImportError, importHfConfig, type LayerChoice } from "../model/hf-import.js";
import { shellQuote } from "../text/shell-text.js";
import { EXIT, type CliIo } from "./io.js";
import { integerFlag, parseNumberText } from "./number-flag.js";
import { outputFileProblem } from "./output-file.js";

export interface InitOptions {
  fromHf: string;
  layers?: string;
  gpus?: string;
  seqLen?: string;
}

/** `--layers`: as-is (default), linear, or hybrid:K; null after saying why. */
function layerChoice(text: string | undefined, io: CliIo): LayerChoice | null {
  if (text === undefined || text === "softmax") return { kind: "as-is" };
  if (text === "linear") return { kind: "linear" };
  const hybrid = /^hybrid:(\d+)$/.exec(text);
  if (hybrid !== null) return { kind: "hybrid", every: Number(hybrid[1]) };
  io.stderr(
    `lasp: --layers must be softmax (the config's layers), linear (every layer linear attention) or hybrid:K (one softmax layer in K), got ${text}\n`,
  );
  return null;
}

/**
 * The model's name from the spec's file name: letters, digits and underscores, starting with a letter, and
 * prefixed `m_` where the spec's lexer would not read it as a name (`8b`, or a keyword such as `model`).
 */
function modelName(file: string): string {
  const base = path.basename(file, ".lasp").replace(/[^A-Za-z0-9_]/g, "_");
  const { tokens } = laspLexer.tokenize(base);
  const isName = /^[A-Za-z]/.test(base) && tokens.length === 1 && tokens[0]!.tokenType === Identifier;
  return isName ? base : `m_${base}`;
}

/** A flag that became a setting of the spec, and where that setting is in the spec's text. */
interface FlagSetting {
  flag: string;
  /** The value as the spec writes it. */
  value: string;
  given: boolean;
  start: number;
  end: number;
}

/** Where each flag's setting (`gpus 4`, `seq_len 8K`) is: the key followed by its number, found by the lexer. */
function flagSettings(text: string, flags: { flag: string; key: string; given: boolean }[]): FlagSetting[] {
  const { tokens } = laspLexer.tokenize(text);
  return flags.flatMap(({ flag, key, given }) => {
    const at = tokens.findIndex((t, i) => t.image === key && tokens[i + 1]?.tokenType === NumberLiteral);
    if (at < 0) return [];
    const value = tokens[at + 1]!;
    return [{ flag, value: value.image, given, start: tokens[at]!.startOffset, end: value.endOffset! + 1 }];
  });
}

/**
 * The spec is not written, so a problem with a flag's setting is the flag's: said as `lasp: --gpus 4096: ...`
 * with the checker's words, and without a line of a file that does not exist. Undefined when the diagnostic
 * (its span and its notes) touches no flag's setting: then it is the config's problem.
 */
function flagProblem(diagnostic: Diagnostic, settings: FlagSetting[]): string | undefined {
  const spans: Span[] = [diagnostic.span, ...(diagnostic.related ?? []).map((r) => r.span)];
  const touches = (s: FlagSetting): boolean =>
    spans.some(
      (span) => span.start.offset < s.end && Math.max(span.end.offset, span.start.offset + 1) > s.start,
    );
  const flags = settings.filter(touches);
  if (flags.length === 0) return undefined;
  // Flags the user gave first: those are the ones to change.
  const named = [...flags.filter((s) => s.given), ...flags.filter((s) => !s.given)]
    .map((s) => `${s.flag} ${s.value}${s.given ? "" : " (the default)"}`)
    .join(" with ");
  return `lasp: ${named}: ${diagnostic.message}${diagnostic.hint === undefined ? "" : `; ${diagnostic.hint}`}\n`;
}

export async function initCommand(file: string, options: InitOptions, io: CliIo): Promise<number> {
  const choice = layerChoice(options.layers, io);
  if (choice === null) return EXIT.usage;
  const gpus = integerFlag("--gpus", options.gpus, io, 1, 4096);
  if (gpus === null) return EXIT.usage;
  const seqLen = (options.seqLen ?? "8K").trim();
  // Read by the spec lexer's rules (2G, 1.5K): the text goes into the spec as written.
  if (parseNumberText(seqLen) === undefined) {
    io.stderr(`lasp: --seq-len must be a token count as a spec writes it (8192, 8K, 1M), got ${seqLen}\n`);
    return EXIT.usage;
  }
  if (!file.endsWith(".lasp")) {
    io.stderr(`lasp: ${file}: a spec's name ends in .lasp\n`);
    return EXIT.usage;
  }
  // Refused before any work, and again if the file appears while the spec is made (the write never replaces).
  const taken = (): number => {
    io.stderr(`lasp: will not replace ${file}: it exists; name a new file\n`);
    return EXIT.usage;
  };
  if (existsSync(file)) return taken();
  const source =
    existsSync(options.fromHf) && statSync(options.fromHf).isDirectory()
      ? path.join(options.fromHf, "config.json")
      : options.fromHf;
  let config: unknown;
  try {
    config = JSON.parse(await readFile(source, "utf8"));
  } catch (error) {
    const why = error instanceof SyntaxError ? `not JSON (${error.message})` : describeReadError(error);
    io.stderr(`lasp: --from-hf: cannot read ${source}: ${why}\n`);
    return EXIT.usage;
  }
  let imported;
  try {
    imported = importHfConfig(config, modelName(file), choice);
  } catch (error) {
    if (!(error instanceof HfImportError)) throw error;
    io.stderr(`lasp: --from-hf ${source}: ${error.message}\n`);
    return EXIT.usage;
  }
  const layers =
    imported.softmax === imported.layers
      ? "softmax attention"
      : imported.softmax === 0
        ? "linear attention"
        : `${imported.layers - imported.softmax} linear and ${imported.softmax} softmax attention`;
  // The config's folder holds its tokenizer: checkpoints carry it (`tokenizer "FOLDER"`, relative to the spec).
  const hfFolder = path.dirname(path.resolve(source));
  const hasTokenizer = ["tokenizer.json", "tokenizer.model"].some((f) => existsSync(path.join(hfFolder, f)));
  const tokenizer = hasTokenizer
    ? [`  tokenizer ${JSON.stringify(path.relative(path.dirname(path.resolve(file)), hfFolder) || ".")}`]
    : [];
  const raw = [
    `// Written by \`lasp init --from-hf ${source}\`: the config's model, ${imported.layers} layers of ${layers}.`,
    ...imported.notes.map((n) => `// Note: ${n}`),
    "// Its weights load with `lasp run THIS.lasp --load-weights FOLDER` where every tensor's shape is the spec's.",
    imported.model,
    "",
    "parallel {",
    `  gpus ${gpus ?? 1}`,
    "}",
    "",
    "run {",
    `  seq_len ${seqLen}  batch 1  dtype bf16  recompute auto`,
    "  steps 100  mode train",
    ...tokenizer,
    "}",
    "",
  ].join("\n");
  // In `lasp fmt`'s layout, so that the file is as the formatter would leave it.
  const formatted = formatSpec(raw);
  const text = "text" in formatted ? formatted.text : raw;
  const checked = checkSource(file, text);
  if (hasErrors(checked.diagnostics)) {
    const settings = flagSettings(text, [
      { flag: "--gpus", key: "gpus", given: options.gpus !== undefined },
      { flag: "--seq-len", key: "seq_len", given: options.seqLen !== undefined },
    ]);
    const errors = checked.diagnostics.filter((d) => d.severity === "error");
    const ofFlags = errors.map((d) => flagProblem(d, settings));
    for (const said of ofFlags) if (said !== undefined) io.stderr(said);
    const ofConfig = errors.filter((_, i) => ofFlags[i] === undefined);
    if (ofConfig.length > 0) {
      io.stderr(renderDiagnostics(file, text, ofConfig, { color: false }) + "\n");
      io.stderr(`lasp: the spec made from ${source} does not check (above); it was not written\n`);
    }
    return EXIT.usage;
  }
  try {
    await writeFileAtomic(file, text, { createOnly: true });
  } catch (error) {
    if (errorCode(error) === "EEXIST") return taken();
    io.stderr(`lasp: cannot write ${file}: ${outputFileProblem(file, error, "model.lasp")}\n`);
    return EXIT.usage;
  }
  for (const note of imported.notes) io.stderr(`lasp: note: ${note}\n`);
  io.stdout(
    `wrote ${file}: ${imported.layers} layers of ${layers}; next: lasp inspect ${shellQuote(file)}\n`,
  );
  return EXIT.ok;
}
