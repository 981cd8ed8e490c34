// main.cu's struct tables as records, for tests that read the generated text: kKinds, HeadDesc and ScratchRows
// are blocks of one field a line (`value,  // field ...`), as the template writes them.

/** The blocks of one field a line that follow `opener` in `text` up to the table's end: name -> value. */
function fieldBlocks(text: string, opener: string, end: string): Record<string, string>[] {
  const start = text.indexOf(opener);
  if (start < 0) throw new Error(`main.cu has no ${opener}`);
  const body = text.slice(start + opener.length, text.indexOf(end, start));
  return body
    .split(/\n {4}\},?/)
    .map((block) =>
      Object.fromEntries(
        [...block.matchAll(/^ {8}(.+),\s+\/\/ (\w+)/gm)].map((m) => [m[2], m[1]] as [string, string]),
      ),
    )
    .filter((row) => Object.keys(row).length > 0);
}

/** Each row of main.cu's kKinds, in order: its fields as name -> value (the C++ text of the value). */
export function kindRows(mainCu: string): Record<string, string>[] {
  return fieldBlocks(mainCu, "static const lasp::LayerKind kKinds[] = {", "\n};");
}

/** kModel's HeadDesc or ScratchRows: its fields as name -> value. */
export function modelField(mainCu: string, type: "HeadDesc" | "ScratchRows"): Record<string, string> {
  const [row] = fieldBlocks(mainCu, `lasp::${type}{`, "\n    },");
  if (row === undefined) throw new Error(`main.cu's kModel has no ${type}`);
  return row;
}

/** The members of `struct name { ... };` in a C++ header, in order (comments dropped; `int a, b;` is a, b). */
export function structMembers(header: string, name: string): string[] {
  const start = header.indexOf(`struct ${name} {`);
  if (start < 0) throw new Error(`no struct ${name}`);
  const body = header.slice(header.indexOf("{", start) + 1, header.indexOf("\n};", start));
  return body
    .replace(/\/\/[^\n]*/g, "")
    .split(";")
    .map((d) => d.trim())
    .filter((d) => d.length > 0)
    .flatMap((d) =>
      d.split(",").map((part, i) =>
        i === 0
          ? part
              .trim()
              .split(/[\s*&]+/)
              .pop()!
          : part.trim(),
      ),
    );
}
