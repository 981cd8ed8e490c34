// main.cu's kKinds as records, for tests that read the generated text: each kind is a block of one field a
// line (`value,  // field`), as the template writes it.

/** Each row of main.cu's kKinds, in order: its fields as name -> value (the C++ text of the value). */
export function kindRows(mainCu: string): Record<string, string>[] {
  const start = mainCu.indexOf("static const lasp::LayerKind kKinds[] = {");
  if (start < 0) throw new Error("main.cu has no kKinds table");
  const body = mainCu.slice(start, mainCu.indexOf("\n};", start));
  return body
    .split(/\n {4}\},?/)
    .map((block) =>
      Object.fromEntries(
        [...block.matchAll(/^ {8}(.+),\s+\/\/ (\w+)/gm)].map((m) => [m[2], m[1]] as [string, string]),
      ),
    )
    .filter((row) => Object.keys(row).length > 0);
}
