// The program's events and src/toolchain/PROTOCOL.md agree: every field a runtime header or template emits is
// named in its event's row of the protocol's table (emit() adds `event` and `rank` itself), so a field added to
// the program without its documentation, or an event the table lacks, fails here.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/** The C++ string literals of a format argument, joined: `"a" "b"` -> `ab`. */
const literals = (text: string): string =>
  [...text.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!).join("");

/** Every emit("event", "format" ...) of the templates: event -> the field names its formats write. */
function emittedFields(): Map<string, Set<string>> {
  const files = [
    ...readdirSync("templates/runtime").map((f) => join("templates/runtime", f)),
    ...readdirSync("templates")
      .filter((f) => f.endsWith(".hbs"))
      .map((f) => join("templates", f)),
  ];
  const events = new Map<string, Set<string>>();
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/\bemit\(\s*"([a-z_]+)",((?:\s*"(?:[^"\\]|\\.)*")+)/g)) {
      const fields = events.get(m[1]!) ?? new Set<string>();
      for (const f of literals(m[2]!).matchAll(/\\"([a-z_]+)\\":/g)) fields.add(f[1]!);
      events.set(m[1]!, fields);
    }
  }
  return events;
}

/** PROTOCOL.md's event table: event -> the row's text. */
function protocolRows(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of readFileSync("src/toolchain/PROTOCOL.md", "utf8").split("\n")) {
    const m = /^\|\s*`([a-z_]+)`\s*\|(.*)\|\s*$/.exec(line);
    if (m !== null) rows.set(m[1]!, m[2]!);
  }
  return rows;
}

describe("the program's events (PROTOCOL.md)", () => {
  const emitted = emittedFields();
  const rows = protocolRows();

  it("finds the events the program emits", () => {
    for (const event of ["start", "step", "summary", "verify", "phase", "trace"])
      expect(emitted.has(event)).toBe(true);
    expect(emitted.get("step")).toContain("loss");
  });

  it("documents every event and every field it carries", () => {
    const missing: string[] = [];
    for (const [event, fields] of emitted) {
      const row = rows.get(event);
      if (row === undefined) {
        missing.push(`event ${event}`);
        continue;
      }
      for (const field of fields) if (!row.includes(`\`${field}\``)) missing.push(`${event}.${field}`);
    }
    expect(missing).toEqual([]);
  });
});
