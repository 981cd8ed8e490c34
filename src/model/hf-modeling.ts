// modeling_lasp.py: the transformers classes of lasp's model (templates/hf/), which the program writes beside
// config.json wherever config.json's `auto_map` names them (hf-config.ts), so that
// `AutoModelForCausalLM.from_pretrained(FOLDER, trust_remote_code=True)` loads a checkpoint or saved weights.
// The generated program holds the file's text as a C++ raw string (lasp/hf_files.h).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../io/package-info.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { hfConfig } from "./hf-config.js";

/** The raw string's closing delimiter in lasp/hf_files.h, which the file's text must not contain. */
export const MODELING_DELIMITER = ')py"';

/** The first line of the file: a program replaces a modeling_lasp.py beside its weights only when it has it. */
export const MODELING_MARKER = "# Written by lasp";

let cached: string | undefined;

/** templates/hf/modeling_lasp.py's text. */
export function hfModelingSource(): string {
  if (cached === undefined) {
    const text = readFileSync(join(packageRoot(), "templates", "hf", "modeling_lasp.py"), "utf8");
    if (!text.startsWith(MODELING_MARKER))
      throw new Error(`templates/hf/modeling_lasp.py must start with "${MODELING_MARKER}"`);
    if (text.includes(MODELING_DELIMITER))
      throw new Error(
        `templates/hf/modeling_lasp.py must not contain ${MODELING_DELIMITER} (lasp/hf_files.h's delimiter)`,
      );
    cached = text;
  }
  return cached;
}

/** What the program writes as modeling_lasp.py for this spec: the file where config.json names it, else nothing
 * (a plain Llama is transformers' own LlamaForCausalLM). */
export function hfModelingText(spec: ResolvedSpec): string {
  return hfConfig(spec).auto_map !== undefined ? hfModelingSource() : "";
}
