// grammar/railroad.html: railroad diagrams of the `.lasp` grammar, drawn from the parser itself by chevrotain's
// createSyntaxDiagramsCode. Chevrotain's default page loads its scripts from unpkg.com; ours loads the copy
// that `npm ci` puts in node_modules/chevrotain/diagrams/ (the same UMD scripts and stylesheet, which set
// browser globals as plain <script> tags), so the page works offline from a checkout.
import { createSyntaxDiagramsCode } from "../../grammar/chevrotain.js";
import { grammarProductions, terminalText, type Production } from "./reference.js";

/** Where grammar/railroad.html finds chevrotain's diagram scripts: the checkout's node_modules. */
export const DIAGRAMS_BASE = "../node_modules/chevrotain/diagrams/";

const HEADER = `
<h1 style="font-family: sans-serif">The <code>.lasp</code> grammar</h1>
<p style="font-family: sans-serif">
  Railroad diagrams of every rule of <code>grammar/parser.ts</code>, generated from the parser
  (<code>npm run docs</code>); <a href="README.md">README.md</a> is the language reference.
  Rounded boxes are tokens: keywords and signs as written, and the placeholders <i>name</i>, <i>kind</i>,
  <i>key</i>, <i>word</i>, <i>number</i> and <i>string</i>. Square boxes are rules: click one to jump to its
  diagram; hovering over a rule's title marks where it is used.
</p>
`;

// Shown until the scripts replace the contents of the diagrams <div>: it stays when they are missing.
const missing = (resourceBase: string): string => `<p style="font-family: sans-serif">The diagrams need
  chevrotain's scripts from <code>${resourceBase}</code>: run <code>npm ci</code> in the checkout and reload.</p>`;

export function railroadHtml(resourceBase: string = DIAGRAMS_BASE): string {
  const grammar = grammarProductions().map(relabel);
  const html = createSyntaxDiagramsCode(grammar, { resourceBase, css: `${resourceBase}diagrams.css` });
  return replaceOnce(
    replaceOnce(html, '<meta charset="utf-8">', '<meta charset="utf-8">\n<title>The .lasp grammar</title>'),
    '<div id="diagrams" align="center"></div>',
    `${HEADER}<div id="diagrams" align="center">${missing(resourceBase)}</div>`,
  )
    .replace(/[ \t]+$/gm, "")
    .trimStart();
}

/** Terminals drawn as the grammar writes them (`layer`, `{`, `name`) instead of their message labels. */
function relabel(p: Production): Production {
  const out: Production = { ...p };
  if (p.type === "Terminal") out.label = terminalText(p).text;
  if (p.definition) out.definition = p.definition.map(relabel);
  if (p.separator) out.separator = relabel(p.separator);
  return out;
}

function replaceOnce(text: string, anchor: string, replacement: string): string {
  if (!text.includes(anchor)) {
    throw new Error(`grammar-docs: chevrotain's diagram page no longer contains ${JSON.stringify(anchor)}`);
  }
  return text.replace(anchor, () => replacement);
}
