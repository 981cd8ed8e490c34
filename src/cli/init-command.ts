// `lasp init SPEC --from-hf CONFIG`: a new spec whose model is a Hugging Face config's (src/model/hf-import.ts),
// on `--gpus` GPUs at `--seq-len` tokens, in train mode with `recompute auto`: a starting point to edit. The
// spec is checked before it is written, written atomically, and never over a file that is there.
import { existsSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { checkSource } from "../check/front-end.js";
import { hasErrors } from "../diagnostics/diagnostic.js";
import { renderDiagnostics } from "../diagnostics/render.js";
import { formatSpec } from "../format/format.js";
import { writeFileAtomic } from "../io/atomic-write.js";
import { errorCode } from "../io/write-error.js";
import { HfImportError, importHfConfig, type LayerChoice } from "../model/hf-import.js";
import { describeIoError } from "./check-command.js";
import { EXIT, type CliIo } from "./io.js";
import { integerFlag } from "./number-flag.js";
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

/** The model's name from the spec's file name: letters, digits and underscores, starting with a letter. */
function modelName(file: string): string {
  const base = path.basename(file, ".lasp").replace(/[^A-Za-z0-9_]/g, "_");
  return /^[A-Za-z]/.test(base) ? base : `m_${base}`;
}

export async function initCommand(file: string, options: InitOptions, io: CliIo): Promise<number> {
  const choice = layerChoice(options.layers, io);
  if (choice === null) return EXIT.usage;
  const gpus = integerFlag("--gpus", options.gpus, io, 1, 4096);
  if (gpus === null) return EXIT.usage;
  const seqLen = options.seqLen ?? "8K";
  if (!/^\d+[KM]?$/.test(seqLen)) {
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
    const why = error instanceof SyntaxError ? `not JSON (${error.message})` : describeIoError(error);
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
    io.stderr(renderDiagnostics(file, text, checked.diagnostics, { color: false }) + "\n");
    io.stderr(`lasp: the spec made from ${source} does not check (above); it was not written\n`);
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
  io.stdout(`wrote ${file}: ${imported.layers} layers of ${layers}; next: lasp inspect ${file}\n`);
  return EXIT.ok;
}
