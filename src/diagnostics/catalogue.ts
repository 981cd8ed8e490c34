// Every message `lasp` shows about a spec lives here, under a stable code (like TypeScript's
// diagnosticMessages.json). Codes never change meaning once released: E01xx text, E02xx syntax,
// E03xx structure, E04xx values, E05xx rules of the algorithms, W06xx warnings,
// E07xx what the code generator cannot emit yet.
// test/diagnostics holds one golden case per code.
/** How a diagnostic counts: an error stops the spec (exit 1), a warning is shown and the exit stays 0. */
export type Severity = "error" | "warning";
import { quote } from "./quote.js";

interface Entry<A extends unknown[]> {
  code: string;
  severity: Severity;
  /** A one-line summary, used by `lasp explain` style listings and the grammar docs. */
  title: string;
  message: (...args: A) => string;
}

function entry<A extends unknown[]>(
  code: string,
  severity: Severity,
  title: string,
  message: (...args: A) => string,
): Entry<A> {
  return { code, severity, title, message };
}

/** A word or value in backquotes, cut short so a 10 MB token still gives a one-line message. */
const q = quote;

export const MESSAGES = {
  // E01xx: the text itself
  // `shown` comes from describeCharacters: the characters in backquotes and the names of unusual ones.
  unexpectedCharacters: entry("E0101", "error", "unexpected character", (shown: string, count: number) =>
    count === 1 ? `unexpected character ${shown}` : `unexpected characters ${shown}`,
  ),
  unterminatedString: entry(
    "E0102",
    "error",
    "unterminated string",
    () => "this string is not closed before the end of the line",
  ),
  unterminatedComment: entry("E0103", "error", "unterminated comment", () => "this comment is never closed"),
  malformedNumber: entry("E0104", "error", "malformed number", (text: string, why?: string) =>
    why === undefined ? `malformed number ${q(text)}` : `number ${q(text)} ${why}`,
  ),
  notText: entry("E0105", "error", "not a text file", (why: string) => `this is not a text file: ${why}`),
  tooLarge: entry(
    "E0106",
    "error",
    "spec too large",
    (size: number, limit: number) => `this spec is ${size} characters long; specs are limited to ${limit}`,
  ),
  unquotedPath: entry(
    "E0107",
    "error",
    "path without quotes",
    (text: string) => `${q(text)} looks like a path: a path is a string, in double quotes`,
  ),

  // E02xx: syntax
  syntax: entry("E0201", "error", "syntax error", (message: string) => message),
  unclosed: entry(
    "E0202",
    "error",
    "unclosed bracket",
    (open: string, what: string) => `${q(open)} of ${what} is never closed`,
  ),
  unmatchedClose: entry(
    "E0203",
    "error",
    "unmatched closing bracket",
    (close: string, open: string) => `${q(close)} has no matching ${q(open)}`,
  ),
  emptyFile: entry("E0204", "error", "empty spec", () => "the spec is empty"),
  tooDeep: entry(
    "E0205",
    "error",
    "nested too deeply",
    (limit: number) => `brackets are nested more than ${limit} levels deep here`,
  ),

  // E03xx: structure
  duplicateBlock: entry(
    "E0301",
    "error",
    "duplicate block",
    (block: string) => `the ${q(block)} block is given twice`,
  ),
  missingBlock: entry(
    "E0302",
    "error",
    "missing block",
    (block: string) => `the spec has no ${q(block)} block`,
  ),
  unknownKey: entry(
    "E0303",
    "error",
    "unknown key",
    (key: string, where: string) => `unknown key ${q(key)} in ${where}`,
  ),
  duplicateKey: entry(
    "E0304",
    "error",
    "duplicate key",
    (key: string, where: string) => `${q(key)} is given twice in ${where}`,
  ),
  missingKey: entry(
    "E0305",
    "error",
    "missing key",
    (key: string, where: string) => `${where} needs ${q(key)}`,
  ),
  duplicateLayer: entry(
    "E0306",
    "error",
    "duplicate layer name",
    (name: string) => `layer ${q(name)} is declared twice`,
  ),
  unknownLayerKind: entry(
    "E0307",
    "error",
    "unknown layer kind",
    (kind: string) => `unknown layer kind ${q(kind)}`,
  ),
  undefinedLayer: entry(
    "E0308",
    "error",
    "undefined layer",
    (name: string) => `the stack uses layer ${q(name)}, which is not declared`,
  ),

  // E04xx: values
  wrongType: entry(
    "E0401",
    "error",
    "wrong kind of value",
    (key: string, expected: string, found: string) => `${q(key)} takes ${expected}, found ${found}`,
  ),
  outOfRange: entry(
    "E0402",
    "error",
    "number out of range",
    (key: string, value: string) => `${q(key)} ${value} is out of range`,
  ),
  notInteger: entry(
    "E0403",
    "error",
    "not a whole number",
    (key: string, value: string) => `${q(key)} must be a whole number, found ${value}`,
  ),
  unknownWord: entry(
    "E0404",
    "error",
    "unknown word",
    (key: string, word: string) => `${q(word)} is not a valid ${q(key)}`,
  ),
  listLength: entry(
    "E0405",
    "error",
    "wrong number of values",
    (key: string, expected: number, found: number) =>
      `${q(key)} takes ${expected} numbers, found ${found === 1 ? "1 number" : `${found} numbers`}`,
  ),

  // E05xx: rules the algorithms need
  gpuCount: entry(
    "E0501",
    "error",
    "GPU count mismatch",
    (gpus: number, sequence: number | undefined, data: number) =>
      sequence === undefined
        ? `gpus ${gpus} does not split into data ${data} equal sequence-parallel groups`
        : `gpus ${gpus} is not sequence ${sequence} x data ${data} = ${sequence * data}`,
  ),
  seqLenSplit: entry(
    "E0502",
    "error",
    "sequence does not split evenly",
    (seqLen: number, pieces: number, block: number, padded: number, empty: number, why: string) =>
      `seq_len ${seqLen} does not split into ${pieces} equal pieces of whole ${block}-token blocks (${why}), and padding it to ${padded} would leave ${empty === 1 ? "a piece" : `${empty} pieces`} with no real token`,
  ),
  // E0503 (a piece not a multiple of the kernel block) is retired: such a seq_len is padded (W0612).
  kvHeads: entry(
    "E0504",
    "error",
    "heads not divisible by kv_heads",
    (heads: number, kvHeads: number, layer: string) =>
      `layer ${q(layer)}: heads ${heads} is not divisible by kv_heads ${kvHeads}`,
  ),
  headDim: entry(
    "E0505",
    "error",
    "unsupported head dimension",
    (headDim: number) => `head_dim ${headDim} is not supported by the kernels`,
  ),
  decayLength: entry(
    "E0506",
    "error",
    "decay list length",
    (length: number, heads: number, layer: string) =>
      `layer ${q(layer)}: the decay list has ${length} values but the model has ${heads} heads`,
  ),
  ulyssesHeads: entry(
    "E0507",
    "error",
    "Ulysses head split",
    (what: string, count: number, sequence: number, layer: string) =>
      what === "kv_heads"
        ? `layer ${q(layer)} uses ulysses, but kv_heads ${count} neither is divisible by nor divides sequence ${sequence}`
        : `layer ${q(layer)} uses ulysses, but ${what} ${count} is not divisible by sequence ${sequence}`,
  ),
  lasp1Bidirectional: entry(
    "E0508",
    "error",
    "LASP-1 and All-Scan need causal layers",
    (layer: string, strategy: string) =>
      `layer ${q(layer)} is bidirectional, which the ${strategy === "allscan" ? "allscan chain" : "lasp1 ring"} cannot run`,
  ),
  batchSplit: entry(
    "E0509",
    "error",
    "batch does not split over data-parallel ranks",
    (batch: number, data: number) => `batch ${batch} is not divisible by data ${data}`,
  ),
  headDimDefault: entry(
    "E0510",
    "error",
    "head_dim cannot be derived",
    (hidden: number, heads: number) =>
      `head_dim is not given and hidden ${hidden} is not divisible by heads ${heads}`,
  ),

  bidirectionalDecay: entry(
    "E0511",
    "error",
    "decay on a bidirectional layer",
    (layer: string) => `layer ${q(layer)} is bidirectional, so it cannot decay with distance`,
  ),
  warmupPastSteps: entry(
    "E0512",
    "error",
    "warmup longer than the run",
    (warmup: number, steps: number) => `warmup_steps ${warmup} is more than the run's ${steps} steps`,
  ),
  minLrAboveLr: entry(
    "E0513",
    "error",
    "min_lr above lr",
    (minLr: string, lr: string) => `min_lr ${minLr} is more than lr ${lr}: the schedule would raise the rate`,
  ),
  evalWithoutData: entry(
    "E0514",
    "error",
    "evaluation without eval_data",
    (every: number) => `eval_every ${every} asks for an evaluation, but no \`eval_data\` is given`,
  ),
  indexWithoutDataset: entry(
    "E0515",
    "error",
    "documents index without a dataset",
    () =>
      "`documents index` reads the boundaries from a Megatron dataset's `.idx`, but the data is synthetic",
  ),
  eosWithoutToken: entry(
    "E0516",
    "error",
    "documents eos without eos_token",
    () => "`documents eos` ends a document after each `eos_token`, but no `eos_token` is given",
  ),
  eosOutsideVocab: entry(
    "E0517",
    "error",
    "eos_token outside the vocabulary",
    (token: number, vocab: number) =>
      `eos_token ${token} is not a token of the model: the vocabulary has ids 0 to ${vocab - 1}`,
  ),

  scanBlocksDivide: entry(
    "E0518",
    "error",
    "scan_blocks does not divide head_dim",
    (blocks: number, headDim: number) =>
      `scan_blocks ${blocks} does not divide head_dim ${headDim}: each block must hold whole state rows`,
  ),
  sequenceAuto: entry(
    "E0519",
    "error",
    "`sequence auto` without gpus, or with data",
    (why: string) => `\`sequence auto\` splits \`gpus\` into sequence x data: ${why}`,
  ),
  ropeFreqFactors: entry(
    "E0520",
    "error",
    "rope_high_freq_factor not above rope_low_freq_factor",
    (low: number, high: number) =>
      `rope_high_freq_factor ${high} must be greater than rope_low_freq_factor ${low}: llama3's blend runs between original / high and original / low`,
  ),
  bytesTokenizerVocab: entry(
    "E0521",
    "error",
    "tokenizer bytes with fewer tokens than bytes",
    (vocab: number, encoder: boolean) =>
      encoder
        ? `\`tokenizer bytes\` gives each of the 256 byte values its own token and an encoder's mask token the last id, but the vocabulary has only ${vocab}`
        : `\`tokenizer bytes\` gives each of the 256 byte values its own token, but the vocabulary has only ${vocab}`,
  ),

  // W06xx: warnings (exit code stays 0)
  unusedLayer: entry(
    "W0601",
    "warning",
    "unused layer",
    (name: string) => `layer ${q(name)} is declared but the stack never uses it`,
  ),
  unusedStrategy: entry(
    "W0602",
    "warning",
    "strategy has no effect",
    (key: string, kind: string) => `${q(key)} has no effect: the stack has no ${q(kind)} layer`,
  ),
  notUsedYet: entry(
    "W0603",
    "warning",
    "setting not used by the generated program yet",
    (keys: string, count: number, why: string) =>
      `${keys} ${count === 1 ? "has" : "have"} no effect yet: ${why}`,
  ),
  memoryFit: entry(
    "W0604",
    "warning",
    "does not fit the GPU's memory",
    (seqLen: string, needed: string, gpu: string) =>
      `at seq_len ${seqLen} the generated program needs ${needed} per GPU, more than ${gpu}`,
  ),
  countLimitAhead: entry(
    "W0605",
    "warning",
    "too large for the generated program's 32-bit counts",
    (seqLen: string, what: string, elements: number) =>
      `at seq_len ${seqLen} the generated program's ${what} would hold ${elements} elements, more than its kernels count (2^31 - 1): \`lasp compile\` refuses it`,
  ),
  unusedMaskRate: entry(
    "W0606",
    "warning",
    "mask_rate has no effect",
    (layer: string) =>
      `\`mask_rate\` has no effect: layer ${q(layer)} is causal, so the model trains by next-token prediction`,
  ),
  unusedEvalData: entry(
    "W0607",
    "warning",
    "eval_data has no effect",
    () => "`eval_data` has no effect: `eval_every` is 0, so the run never evaluates",
  ),
  unusedDocumentSetting: entry(
    "W0608",
    "warning",
    "document setting has no effect",
    (key: string, why: string) => `${q(key)} has no effect: ${why}`,
  ),
  documentsLongerThanSequence: entry(
    "W0609",
    "warning",
    "documents longer than the sequence",
    (length: string, seqLen: string) =>
      `the mean document length ${length} is more than seq_len ${seqLen}: most sequences would hold at most one document boundary`,
  ),
  bf16Cancellation: entry(
    "W0610",
    "warning",
    "gradients lost to bf16 rounding",
    (layer: string, featureMap: string, dtype: string) =>
      `layer ${q(layer)} is bidirectional with \`feature_map ${featureMap}\`: every token gets nearly the same output, and the Wq and Wk gradients of the layers after it are lost to ${dtype} rounding (bench/results/2026-12-05-train-mode-h100.md)`,
  ),
  outputNormAtDocumentStarts: entry(
    "W0614",
    "warning",
    "output norm ill-conditioned at document starts",
    (layer: string, dtype: string) =>
      `layer ${q(layer)} is causal with \`output_norm rms\` and packed documents: a document's first token attends to itself alone, o = (q . k) v, and the norm divides that by its size, so where q . k is near 0 its Wq and Wk gradients are up to 1/sqrt(eps) times the others' and set by the last ${dtype} bits of q and k (bench/results/2026-12-05-documents-h100.md)`,
  ),

  unusedRopeSetting: entry(
    "W0615",
    "warning",
    "RoPE setting has no effect",
    (key: string, scaling: string) => `${q(key)} has no effect: \`rope_scaling ${scaling}\` does not read it`,
  ),
  unusedWarmup: entry(
    "W0616",
    "warning",
    "warmup has no effect in train mode",
    (steps: number) =>
      `\`warmup ${steps}\` has no effect in train mode: it sets a benchmark's untimed steps, and training times every step`,
  ),
  unusedScanBlocks: entry(
    "W0611",
    "warning",
    "scan_blocks has no effect",
    (linear: string) =>
      `\`scan_blocks\` has no effect: only \`linear allscan\` splits states into blocks, and linear is ${q(linear)}`,
  ),

  paddedSequence: entry(
    "W0612",
    "warning",
    "seq_len padded",
    (
      seqLen: number,
      padded: number,
      pieces: number,
      block: number,
      why: string,
      padding: number,
      share: string,
    ) =>
      `seq_len ${seqLen} is padded to ${padded}, ${pieces} equal pieces of whole ${block}-token blocks (${why}): its ${padding} padding tokens cost ${share} of every layer's compute`,
  ),
  unverifiedOnGpu: entry(
    "W0613",
    "warning",
    "generated, not yet run on a GPU",
    (what: string, where: string, check: string) =>
      `${what} is generated, but its program has not run on ${where} yet: check it with ${check} before trusting a run`,
  ),

  // E07xx: what the code generator cannot emit yet (compile and run only)
  notGeneratedYet: entry(
    "E0701",
    "error",
    "setting not generated yet",
    (keys: string, why: string) => `${keys} cannot be compiled yet: ${why}`,
  ),
  countLimit: entry(
    "E0702",
    "error",
    "too large for the generated program's 32-bit counts",
    (seqLen: string, what: string, elements: number) =>
      `at seq_len ${seqLen} the generated program's ${what} would hold ${elements} elements per GPU, more than its kernels count (2^31 - 1)`,
  ),
} as const;

type Messages = typeof MESSAGES;
export type MessageName = keyof Messages;
export type MessageArgs<N extends MessageName> = Messages[N] extends Entry<infer A> ? A : never;
export type DiagnosticCode = string;

/** All codes with their titles, in code order. */
export function catalogue(): { code: string; severity: Severity; title: string; name: MessageName }[] {
  return (Object.keys(MESSAGES) as MessageName[])
    .map((name) => ({
      name,
      code: MESSAGES[name].code,
      severity: MESSAGES[name].severity,
      title: MESSAGES[name].title,
    }))
    .sort((a, b) => a.code.localeCompare(b.code));
}
