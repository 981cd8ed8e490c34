// `lasp fmt <files...>`: formats specs in place (src/format/STYLE_GUIDE.md); `--check` only lists the files
// that are not formatted. A file with syntax errors gets the diagnostics `lasp check` prints and is left as it
// is; an unreadable file is a usage error. A file is replaced whole (src/io/atomic-write.ts), keeping its mode.
import { readFile } from "node:fs/promises";
import { decodeSpec } from "../syntax/decode.js";
import { formatSpec } from "../format/format.js";
import { writeFileAtomic } from "../io/atomic-write.js";
import { describeWriteFailure } from "../io/write-error.js";
import { describeIoError, reportDiagnostics } from "./check-command.js";
import { EXIT, type CliIo } from "./io.js";

export interface FmtOptions {
  check?: boolean;
}

export async function fmtCommand(files: string[], options: FmtOptions, io: CliIo): Promise<number> {
  let exit: number = EXIT.ok;
  const fail = (code: number): void => {
    if (code === EXIT.usage || exit === EXIT.ok) exit = code;
  };
  const unformatted: string[] = [];
  for (const file of files) {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(file);
    } catch (error) {
      io.stderr(`lasp: cannot read ${file}: ${describeIoError(error)}\n`);
      fail(EXIT.usage);
      continue;
    }
    const decoded = decodeSpec(bytes);
    if (!decoded.ok) {
      reportDiagnostics({ file, source: decoded.text, diagnostics: [decoded.diagnostic] }, io);
      fail(EXIT.specErrors);
      continue;
    }
    const result = formatSpec(decoded.text);
    if ("diagnostics" in result) {
      reportDiagnostics({ file, source: decoded.text, diagnostics: result.diagnostics }, io);
      fail(EXIT.specErrors);
      continue;
    }
    // Compared with the bytes: a byte-order mark or CRLF line ends count as unformatted.
    if (Buffer.from(result.text, "utf8").equals(bytes)) continue;
    if (options.check) {
      unformatted.push(file);
      io.stdout(`${file}\n`);
      fail(EXIT.specErrors);
      continue;
    }
    try {
      await writeFileAtomic(file, result.text);
    } catch (error) {
      io.stderr(`lasp: cannot write ${file}: ${describeWriteFailure(file, error)}\n`);
      fail(EXIT.usage);
      continue;
    }
    io.stdout(`formatted ${file}\n`);
  }
  if (unformatted.length > 0) {
    const count = unformatted.length === 1 ? "1 file is" : `${unformatted.length} files are`;
    io.stderr(`${count} not formatted; \`lasp fmt FILES\` formats them in place\n`);
  }
  return exit;
}
