// Numbers given to command-line flags are read as a spec reads them: the same token (grammar/tokens.ts) and the
// same value (512K = 524288, 1e-9), so `--seq-len 512K` means what `seq_len 512K` means.
import { NumberLiteral } from "../../grammar/tokens.js";
import { numberLiteralValue } from "../syntax/build-ast.js";
import type { CliIo } from "./io.js";

const WHOLE_TOKEN = new RegExp(`^(?:${(NumberLiteral.PATTERN as RegExp).source})$`);

const FORMS =
  "numbers are written as in a spec: 2048, 512K, 0.99 or 1e-5 (K, M and G multiply by 1024, 1024² and 1024³)";

/** The value of `text` read as a spec's number literal, or undefined when a spec would not accept it. */
export function parseNumberText(text: string): number | undefined {
  return WHOLE_TOKEN.test(text) ? numberLiteralValue(text) : undefined;
}

/**
 * A whole-number flag from `min` to `max`: undefined when not given, null (after saying why on stderr) when
 * the text is not such a number.
 */
export function integerFlag(
  flag: string,
  text: string | undefined,
  io: CliIo,
  min = 1,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined | null {
  if (text === undefined) return undefined;
  const value = parseNumberText(text.trim());
  if (value === undefined || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    io.stderr(`lasp: ${flag} must be a whole number ${range}, got ${text}; ${FORMS}\n`);
    return null;
  }
  return value;
}

/** A positive number flag (a tolerance): undefined when not given, null (after saying why) when invalid. */
export function positiveFlag(flag: string, text: string | undefined, io: CliIo): number | undefined | null {
  if (text === undefined) return undefined;
  const value = parseNumberText(text.trim());
  if (value === undefined || !(value > 0)) {
    io.stderr(`lasp: ${flag} must be a positive number, got ${text}; ${FORMS}\n`);
    return null;
  }
  return value;
}
