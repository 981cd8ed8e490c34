// The compiler's own version, read from package.json (found by walking up, so it works from src/ and dist/).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, "package.json");
    if (
      existsSync(candidate) &&
      (JSON.parse(readFileSync(candidate, "utf8")) as { name?: string }).name === "lasp"
    ) {
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error("lasp: cannot find its own package.json");
    dir = parent;
  }
}

export function version(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string })
    .version;
}
