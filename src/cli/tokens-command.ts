// `lasp tokens FILES... -o OUT`: a byte-level tokenizer (vocabulary 256). Every byte of every file, in the
// order given, is one token, written as llm.c's GPT-2 token file (src/data/llmc-format.ts) that train mode
// and llm.c itself read. No token separates the files: a byte vocabulary has no spare id for llm.c's
// end-of-text token, and any byte chosen as a separator also occurs inside text (README.md, "Token files").
//
// OUT is replaced whole (src/io/atomic-write.ts) and only when it is a token file of this kind, which is what
// `lasp tokens` writes (a valid GPT-2 header and size, every token below 256): the single-file form of
// compile's rule that lasp replaces only what it wrote. Anything else (text, a GPT-2 token file made with
// llm.c's scripts, a mistyped input) is refused with exit 2 unless --force. An input that is tokens already
// (an llm.c file, a Megatron dataset's part) is refused: it belongs in a spec's `data`.
import { existsSync, type Stats } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { dirname } from "node:path";
import {
  decodeHeader,
  encodeByteTokens,
  GPT2_FORMAT,
  MAX_TOKENS,
  TokenFileError,
} from "../data/llmc-format.js";
import { MEGATRON_MAGIC } from "../data/megatron-index.js";
import { findTokenOutOfRange, readTokenFileHeader } from "../data/token-file.js";
import { writeFileAtomic } from "../io/atomic-write.js";
import { describeReadError, errorCode } from "../io/write-error.js";
import { EXIT, type CliIo } from "./io.js";
import { outputFileProblem, sameFile } from "./output-file.js";

export interface TokensOptions {
  out: string;
  force?: boolean;
  /** A held-out file: the last `evalShare` of the tokens go there instead of to `out`. */
  evalOut?: string;
  /** The share of the tokens held out, in (0, 1); default 0.1 with evalOut. */
  evalShare?: string;
}

/** The held-out share without --eval-share: a tenth, as nanoGPT's character-level data splits its text. */
export const DEFAULT_EVAL_SHARE = 0.1;

/** Every token is one byte. */
export const BYTE_VOCAB = 256;

export async function tokensCommand(files: string[], options: TokensOptions, io: CliIo): Promise<number> {
  const share = evalShareOption(options, io);
  if (share === null) return EXIT.usage;
  // The second write would replace the first: the training tokens would be lost, however the path is spelled.
  if (options.evalOut !== undefined && (await sameFile(options.evalOut, options.out))) {
    const spelled = options.evalOut === options.out ? "" : `, spelled ${options.evalOut}`;
    io.stderr(
      `lasp: --eval-out names the same file as -o (${options.out}${spelled}): give the held-out tokens a file of their own\n`,
    );
    return EXIT.usage;
  }
  const chunks = await readInputs(files, io);
  if (chunks === undefined) return EXIT.usage;
  const tokens = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  if (tokens === 0) {
    const which = files.length === 1 ? "the input file is" : `all ${files.length} input files are`;
    io.stderr(`lasp: no tokens to write: ${which} empty\n`);
    return EXIT.usage;
  }
  // The held-out tokens are the stream's last `share`: the training file keeps everything before them.
  const all = concat(chunks);
  const held = share === undefined ? 0 : Math.round(tokens * share);
  if (share !== undefined && (held < 2 || tokens - held < 2)) {
    io.stderr(
      `lasp: --eval-share ${options.evalShare ?? DEFAULT_EVAL_SHARE} of ${tokens} tokens leaves ${tokens - held} to train on and ${held} held out: each file needs 2 tokens at least (a token and its target)\n`,
    );
    return EXIT.usage;
  }
  const outputs: [string, Uint8Array][] = [[options.out, all.subarray(0, tokens - held)]];
  if (options.evalOut !== undefined) outputs.push([options.evalOut, all.subarray(tokens - held)]);
  if (!options.force) {
    for (const [out] of outputs) {
      const notOurs = await whyNotByteTokenFile(out);
      if (notOurs !== undefined) {
        io.stderr(
          `lasp: will not replace ${out}: it is not a token file lasp wrote (${notOurs}); name another file, or add --force to replace it\n`,
        );
        return EXIT.usage;
      }
    }
  }
  for (const [out, part] of outputs) {
    try {
      await writeFileAtomic(out, encodeByteTokens([part]));
    } catch (error) {
      // The temporary file's folder is what fails to open; say which folder is missing, once.
      const problem =
        errorCode(error) === "ENOENT" && out !== ""
          ? `its folder ${dirname(out)} does not exist`
          : outputFileProblem(out, error, "tokens.bin");
      io.stderr(`lasp: cannot write ${out}: ${problem}\n`);
      return EXIT.usage;
    }
    const what =
      outputs.length === 1
        ? `from ${plural(files.length, "file", "files")}`
        : out === options.out
          ? `from ${plural(files.length, "file", "files")}, all but the last ${held} of ${tokens}`
          : `held out: the last ${held} of the ${tokens}`;
    io.stdout(
      `wrote ${out}: ${part.length} tokens ${what} (vocab ${BYTE_VOCAB}, llm.c format v${GPT2_FORMAT.version})\n`,
    );
  }
  io.stdout(`${TOKENS_NEXT}\n`);
  return EXIT.ok;
}

/** What a spec needs to train on these files and leave checkpoints that decode back to text. */
export const TOKENS_NEXT =
  "next: a spec with `vocab 256` trains on it, and with `tokenizer bytes` its checkpoints carry this tokenizer (examples/tiny-train.lasp has both)";

/** --eval-share as a number in (0, 1), undefined without --eval-out, null after saying what is wrong. */
function evalShareOption(options: TokensOptions, io: CliIo): number | undefined | null {
  if (options.evalOut === undefined) {
    if (options.evalShare === undefined) return undefined;
    io.stderr("lasp: --eval-share needs --eval-out FILE, the file the held-out tokens go to\n");
    return null;
  }
  if (options.evalShare === undefined) return DEFAULT_EVAL_SHARE;
  const share = Number(options.evalShare);
  if (!(share > 0 && share < 1)) {
    io.stderr(
      `lasp: --eval-share must be a number above 0 and below 1 (0.05 holds out 5%), got ${options.evalShare}\n`,
    );
    return null;
  }
  return share;
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return all;
}

/** The bytes of every file, or undefined after saying why some cannot be read (all of them named). */
async function readInputs(files: string[], io: CliIo): Promise<Uint8Array[] | undefined> {
  let size = 0;
  let unreadable = false;
  for (const file of files) {
    try {
      const info = await stat(file);
      if (info.isDirectory()) {
        io.stderr(`lasp: cannot read ${file}: it is a folder; name the files in it (e.g. ${file}/*.md)\n`);
        unreadable = true;
      }
      size += info.size;
    } catch (error) {
      io.stderr(`lasp: cannot read ${file}: ${describeReadError(error)}\n`);
      unreadable = true;
    }
  }
  if (unreadable) return undefined;
  // Refused before reading anything: one file's count is an int32.
  if (size > MAX_TOKENS) {
    io.stderr(
      `lasp: the files hold ${size} bytes, more tokens than one llm.c token file counts (${MAX_TOKENS}, an int32); split them over several outputs\n`,
    );
    return undefined;
  }
  const chunks: Uint8Array[] = [];
  for (const file of files) {
    try {
      chunks.push(await readFile(file));
    } catch (error) {
      io.stderr(`lasp: cannot read ${file}: ${describeReadError(error)}\n`);
      return undefined;
    }
    const tokens = alreadyTokens(file, chunks.at(-1)!);
    if (tokens !== undefined) {
      io.stderr(`lasp: ${file} ${tokens}; \`lasp tokens\` reads text\n`);
      return undefined;
    }
  }
  const read = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  if (read > MAX_TOKENS) {
    io.stderr(`lasp: the files grew to ${read} bytes while read, more than one token file counts\n`);
    return undefined;
  }
  return chunks;
}

/**
 * What an input holds when it is tokens already (its bytes would train a model on a header and token ids):
 * an llm.c token file, or either part of a Megatron-LM dataset. Undefined for anything else.
 */
function alreadyTokens(file: string, bytes: Uint8Array): string | undefined {
  try {
    const header = decodeHeader(bytes);
    return `is already an llm.c token file (${header.tokens} ${header.format.name} tokens): name it as \`data\` in a spec`;
  } catch (error) {
    if (!(error instanceof TokenFileError)) throw error;
  }
  const megatron = "name its prefix as `data` in a spec";
  if (Buffer.from(bytes.subarray(0, MEGATRON_MAGIC.length)).toString("latin1") === MEGATRON_MAGIC)
    return `is a Megatron-LM dataset's index: ${megatron}`;
  if (file.endsWith(".bin") && existsSync(`${file.slice(0, -4)}.idx`))
    return `is a Megatron-LM dataset's tokens (${file.slice(0, -4)}.idx is beside it): ${megatron}`;
  return undefined;
}

/**
 * Why `path` may not be replaced without --force; undefined where it is free: missing, or a byte-level token
 * file. Paths that cannot be written at all (a folder, a missing folder) are left to the write to report.
 */
async function whyNotByteTokenFile(path: string): Promise<string | undefined> {
  let info: Stats;
  try {
    info = await stat(path);
  } catch (error) {
    const code = errorCode(error);
    return code === "ENOENT" || code === "ENOTDIR"
      ? undefined
      : `it cannot be read: ${describeReadError(error)}`;
  }
  if (!info.isFile()) return info.isDirectory() ? undefined : "it is not a regular file";
  try {
    const header = await readTokenFileHeader(path);
    if (header.format !== GPT2_FORMAT)
      return `it holds llm.c's ${header.format.name} tokens (uint${8 * header.format.tokenBytes}), not bytes`;
    const beyond = await findTokenOutOfRange(path, header, BYTE_VOCAB);
    if (beyond !== undefined) {
      return `token ${beyond.index} is ${beyond.token}, beyond the byte vocabulary: a GPT-2 token file from llm.c?`;
    }
    return undefined;
  } catch (error) {
    if (error instanceof TokenFileError) return error.message;
    return `it cannot be read: ${describeReadError(error)}`;
  }
}

function plural(count: number, one: string, many: string): string {
  return count === 1 ? `1 ${one}` : `${count} ${many}`;
}
