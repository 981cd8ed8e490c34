// Renders the templates in templates/ with handlebars: `noEscape` (C++ is not HTML), `strict` (a missing
// field is an error, not an empty string) and `knownHelpersOnly` (templates can only loop and fill in).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import Handlebars from "handlebars";
import { packageRoot } from "../io/package-info.js";

export function templatesDir(): string {
  return join(packageRoot(), "templates");
}

export class Renderer {
  private readonly hb = Handlebars.create();
  private readonly compiled = new Map<string, Handlebars.TemplateDelegate>();

  constructor(private readonly dir: string = templatesDir()) {
    const partials = join(dir, "partials");
    for (const file of readdirSync(partials)) {
      if (file.endsWith(".hbs"))
        this.hb.registerPartial(file.slice(0, -4), readFileSync(join(partials, file), "utf8"));
    }
  }

  render(template: string, view: object): string {
    let fn = this.compiled.get(template);
    if (fn === undefined) {
      const source = readFileSync(join(this.dir, template), "utf8");
      fn = this.hb.compile(source, { noEscape: true, strict: true, knownHelpersOnly: true });
      this.compiled.set(template, fn);
    }
    return fn(view);
  }

  /** A runtime file copied as it is, under the generated-file header. */
  runtime(file: string, view: object): string {
    const header = this.render("partials/header.hbs", view);
    return `${header}${readFileSync(join(this.dir, "runtime", file), "utf8")}`;
  }
}
