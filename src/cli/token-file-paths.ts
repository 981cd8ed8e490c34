// Train mode's token files (and, in every mode, `tokenizer "FOLDER"`) as `lasp run` hands them to the program:
// the spec's `data` and `eval_data` resolved against the spec's folder (the program compiles them in as
// written, relative to its working directory), and what is wrong with them, with where the spec names them,
// so the run stops before the build rather than after it: a file that does not exist, an llm.c file whose
// header or size is wrong, a Megatron dataset missing a part or whose index's header or sizes are wrong, one
// with fewer windows than a step (or an evaluation batch) reads, an llm.c file with `documents index`, and ids
// past the vocabulary among an llm.c file's first million. The program checks the same and more (every token
// id; every sequence of Megatron-LM's index) before step 1.
import { existsSync } from "node:fs";
import path from "node:path";
import type { SpecFile } from "../ast/ast.js";
import type { Span } from "../ast/span.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { findTokenOutOfRange, readTokenFileHeader } from "../data/token-file.js";
import { megatronPrefix } from "../data/megatron-index.js";
import { maskedObjective } from "../codegen/view-model.js";
import {
  describeTokenFile,
  DOCUMENTS_INDEX_PROBLEM,
  FOLDER_PROBLEM,
  evalReads,
  stepReads,
  tooFewWindows,
  windowsPerEvalBatch,
  windowsPerOptimizerStep,
} from "../inspect/training.js";

export interface TokenFileProblem {
  key: "data" | "eval_data" | "tokenizer";
  path: string;
  span: Span | undefined;
  /** What is wrong, after "`key`: ". */
  message: string;
  hint: string;
}

/**
 * A llm.c file, or either part of a Megatron dataset (PREFIX.bin, PREFIX.idx): a pair missing its other part
 * is described by describeTokenFile, in the program's words.
 */
const present = (file: string): boolean =>
  existsSync(file) ||
  existsSync(`${file}.bin`) ||
  existsSync(`${file}.idx`) ||
  megatronPrefix(file) !== undefined;

function settingSpan(ast: SpecFile, key: string): Span | undefined {
  for (const block of ast.blocks)
    if (block.kind === "run") return block.settings.find((s) => s.key.name === key)?.span;
  return undefined;
}

export function trainTokenFiles(
  ast: SpecFile,
  spec: ResolvedSpec,
  specFolder: string,
): { args: string[]; problems: TokenFileProblem[] } {
  const args: string[] = [];
  const problems: TokenFileProblem[] = [];
  const real = spec.run.seqLen - spec.run.padding;
  // What each file must hold: one step's windows; one evaluation batch's, where the run evaluates (with
  // eval_every 0 the program never opens eval_data: W0607 says so).
  const evaluates = spec.run.train.evalEvery > 0;
  const files: ["data" | "eval_data", string, { kind: string; path?: string }, number, string, string][] = [
    [
      "data",
      "--data",
      spec.run.data,
      windowsPerOptimizerStep(spec),
      stepReads(spec),
      "train on more text, or lower seq_len, batch or accumulate",
    ],
    [
      "eval_data",
      "--eval-data",
      spec.run.train.evalData,
      evaluates ? windowsPerEvalBatch(spec) : 0,
      evalReads(spec),
      "evaluate on more text, or lower seq_len or batch",
    ],
  ];
  for (const [key, flag, source, need, reads, more] of files) {
    if (source.kind !== "file" || source.path === undefined) continue;
    const file = path.resolve(specFolder, source.path);
    args.push(flag, file);
    const at = { key, path: file, span: settingSpan(ast, key) };
    if (!present(file)) {
      problems.push({
        ...at,
        message: `the token file ${file} does not exist (paths are relative to the spec's folder)`,
        hint: `make one from text with \`lasp tokens FILES... -o ${file}\`, or use llm.c's or Megatron-LM's data scripts`,
      });
      continue;
    }
    if (need === 0) continue;
    const d = describeTokenFile(file, real, 0);
    const megatron = megatronPrefix(file) !== undefined;
    if (d.kind === "unreadable" && d.problem === FOLDER_PROBLEM)
      problems.push({
        ...at,
        message: `${file} is a folder, not a token file`,
        hint: `name the token file in it, or make one from text with \`lasp tokens FILES... -o ${path.join(file, "train.bin")}\``,
      });
    else if (d.kind === "unreadable")
      problems.push({
        ...at,
        // The problem names the file where it is the program's sentence (a Megatron dataset's); an llm.c
        // file's says what is wrong with it.
        message: megatron ? (d.problem ?? "unreadable") : `${file}: ${d.problem ?? "unreadable"}`,
        hint: megatron
          ? "Megatron-LM's tools/preprocess_data.py writes PREFIX.bin and PREFIX.idx together; name an llm.c token file by its own path"
          : "write it with `lasp tokens` or llm.c's data scripts; a Megatron-LM dataset is named by its prefix (PREFIX for PREFIX.bin and PREFIX.idx)",
      });
    // The program refuses `documents index` on an llm.c file before step 1 (it has no index); say it before the build.
    else if (key === "data" && d.kind === "llm.c" && spec.run.documents.kind === "index")
      problems.push({
        ...at,
        message: `${file} is ${DOCUMENTS_INDEX_PROBLEM}`,
        hint: "use `documents eos` with `eos_token N`, the token that ends its documents, or a Megatron dataset (PREFIX.bin and PREFIX.idx)",
      });
    const few = tooFewWindows(d, need, reads);
    if (few !== "")
      problems.push({
        ...at,
        message: `the token file ${file} holds ${d.tokens ?? 0} tokens: ${few}; a window is seq_len ${real} tokens and the one after`,
        hint: more,
      });
  }
  return { args, problems };
}

/**
 * `tokenizer "FOLDER"` as `lasp run` hands it to the program (`--tokenizer`, resolved against the spec's folder),
 * and what is wrong with it: a folder that is not there or holds neither tokenizer.json nor tokenizer.model
 * (the program checks the same before step 1).
 */
export function tokenizerFolder(
  ast: SpecFile,
  spec: ResolvedSpec,
  specFolder: string,
): { args: string[]; problems: TokenFileProblem[] } {
  const tokenizer = spec.run.tokenizer;
  if (tokenizer.kind !== "folder") return { args: [], problems: [] };
  const folder = path.resolve(specFolder, tokenizer.path);
  const at = { key: "tokenizer" as const, path: folder, span: settingSpan(ast, "tokenizer") };
  const problems: TokenFileProblem[] = [];
  if (!existsSync(path.join(folder, "tokenizer.json")) && !existsSync(path.join(folder, "tokenizer.model")))
    problems.push({
      ...at,
      message: existsSync(folder)
        ? `${folder} holds no tokenizer.json or tokenizer.model`
        : `the folder ${folder} does not exist (paths are relative to the spec's folder)`,
      // `tokenizer "bytes"` names a folder called bytes; the word, unquoted, is the byte tokenizer.
      hint:
        (tokenizer.path === "bytes" || tokenizer.path === "none") && !existsSync(folder)
          ? `write the word without quotes: \`tokenizer ${tokenizer.path}\` (in quotes it names a folder)`
          : "name a Hugging Face model's folder (it has tokenizer.json), `tokenizer bytes` for `lasp tokens` files, or `tokenizer none`",
    });
  return { args: ["--tokenizer", folder], problems };
}

/** Tokens of `data` that `tokenizer bytes` looks at before the build: the first million. */
export const BYTES_CHECKED = 1 << 20;

/**
 * `tokenizer bytes` with an llm.c `data` file whose first tokens are not all bytes: those tokens come from another
 * tokenizer, and the checkpoints would carry the wrong one. Undefined when it fits, or there is nothing to read.
 */
export async function bytesTokenizerMismatch(
  ast: SpecFile,
  spec: ResolvedSpec,
  specFolder: string,
): Promise<TokenFileProblem | undefined> {
  const data = spec.run.data;
  if (spec.run.tokenizer.kind !== "bytes" || data.kind !== "file") return undefined;
  const file = path.resolve(specFolder, data.path);
  let header;
  try {
    header = await readTokenFileHeader(file);
  } catch {
    return undefined; // a Megatron dataset (its .bin has no llm.c header), or a file trainTokenFiles reports
  }
  const beyond = await findTokenOutOfRange(file, header, 256, BYTES_CHECKED, BYTES_CHECKED);
  if (beyond === undefined) return undefined;
  return {
    key: "tokenizer",
    path: file,
    span: settingSpan(ast, "tokenizer"),
    message: `\`tokenizer bytes\` writes a byte tokenizer, but token ${beyond.index} of ${file} is ${beyond.token}, not a byte: the data comes from another tokenizer`,
    hint: 'name that tokenizer\'s Hugging Face folder (`tokenizer "gpt2"`), or `tokenizer none`',
  };
}

/**
 * The first token of an llm.c `data` or `eval_data` file, among its first million, that the model has no row
 * for (vocab, or vocab - 1 for an encoder, whose last id is the mask): the program checks every token before
 * step 1, after the build; this catches a file of another tokenizer (GPT-2's ids with `vocab 256`) before it.
 * Undefined when those fit, or there is nothing to read (a Megatron dataset, or a file trainTokenFiles reports).
 */
export async function tokensOutsideVocab(
  ast: SpecFile,
  spec: ResolvedSpec,
  specFolder: string,
): Promise<TokenFileProblem | undefined> {
  const masked = maskedObjective(spec);
  const limit = masked ? spec.model.vocab - 1 : spec.model.vocab;
  const files: ["data" | "eval_data", { kind: string; path?: string }][] = [["data", spec.run.data]];
  if (spec.run.train.evalEvery > 0) files.push(["eval_data", spec.run.train.evalData]);
  for (const [key, source] of files) {
    if (source.kind !== "file" || source.path === undefined) continue;
    const file = path.resolve(specFolder, source.path);
    let header;
    try {
      header = await readTokenFileHeader(file);
    } catch {
      continue;
    }
    const beyond = await findTokenOutOfRange(file, header, limit, BYTES_CHECKED, BYTES_CHECKED);
    if (beyond === undefined) continue;
    return {
      key,
      path: file,
      span: settingSpan(ast, key),
      message:
        `token ${beyond.index} of ${file} is ${beyond.token}, outside the vocabulary [0, ${limit})` +
        (masked ? " (masked-token prediction keeps id vocab - 1 for the mask)" : "") +
        `: the file's tokenizer has more ids than \`vocab ${spec.model.vocab}\``,
      hint: `set \`vocab\` to the tokenizer's size (at least ${beyond.token + 1}${masked ? ", and one more for the mask" : ""}), or use a file of the model's tokenizer`,
    };
  }
  return undefined;
}
