import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { H100_SXM } from "../cost/machine.js";
import type { ScheduleProgram } from "../schedule/ir.js";
import { lowerSpec } from "../schedule/lower.js";
import { linearKind, softmaxKind, tinySpec } from "../schedule/test-specs.js";
import { esc, timelineSvg } from "./svg.js";

interface Element {
  name: string;
  attrs: Record<string, string>;
  children: Element[];
  text: string;
}

/**
 * A small XML parser, strict enough for tests: one root, balanced tags, quoted attributes without `<`, text
 * and attribute values whose `&` starts a known entity. Throws on anything else.
 */
function parseXml(source: string): Element {
  const body = source.replace(/^<\?xml[^?]*\?>\s*/, "");
  const token = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[A-Za-z][\w:.-]*="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  const entity = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/;
  const root: Element = { name: "#root", attrs: {}, children: [], text: "" };
  const stack = [root];
  let at = 0;
  while (at < body.length) {
    token.lastIndex = at;
    const m = token.exec(body);
    if (m === null) throw new Error(`malformed XML at ${at}: ${body.slice(at, at + 60)}`);
    at = token.lastIndex;
    const top = stack[stack.length - 1]!;
    const [, close, name, attrText, selfClose, text] = m;
    if (text !== undefined) {
      if (entity.test(text)) throw new Error(`bad entity in text: ${text.slice(0, 60)}`);
      if (text.trim() !== "" && top === root) throw new Error("text outside the root element");
      top.text += text;
      continue;
    }
    if (close) {
      if (top.name !== name) throw new Error(`</${name}> closes <${top.name}>`);
      stack.pop();
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of (attrText ?? "").matchAll(/([A-Za-z][\w:.-]*)="([^"]*)"/g)) {
      if (a[1]! in attrs) throw new Error(`duplicate attribute ${a[1]} on <${name}>`);
      if (entity.test(a[2]!)) throw new Error(`bad entity in attribute ${a[1]}`);
      attrs[a[1]!] = a[2]!;
    }
    const element: Element = { name: name!, attrs, children: [], text: "" };
    if (top === root && root.children.length > 0) throw new Error("more than one root element");
    top.children.push(element);
    if (!selfClose) stack.push(element);
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1]!.name}>`);
  if (root.children.length !== 1) throw new Error("no root element");
  return root.children[0]!;
}

function all(e: Element, name: string, className?: string): Element[] {
  const here = e.name === name && (className === undefined || e.attrs["class"] === className) ? [e] : [];
  return [...here, ...e.children.flatMap((c) => all(c, name, className))];
}

function example(file: string): ScheduleProgram {
  const spec = checkSource(file, readFileSync(file, "utf8")).spec;
  if (spec === undefined) throw new Error(`${file} does not check`);
  return lowerSpec(spec);
}

/** Steps drawn: every step of every selected rank in every pass of every selected layer. */
function stepCount(program: ScheduleProgram, layers: number[], ranks: number[]): number {
  let count = 0;
  for (const entry of layers) {
    const schedule = program.schedules[program.layers[entry]!]!;
    for (const pass of ["forward", "backward"] as const)
      for (const p of schedule.passes[pass]) if (ranks.includes(p.rank)) count += p.steps.length;
  }
  return count;
}

describe("the XML checker", () => {
  it("accepts well-formed XML and rejects what is not", () => {
    expect(parseXml(`<?xml version="1.0"?><a x="1"><b/>t &amp; u<c>v</c></a>`).children).toHaveLength(2);
    for (const bad of [
      `<a><b></a>`,
      `<a>`,
      `<a x=1/>`,
      `<a>&nbsp;</a>`,
      `<a/><b/>`,
      `<a>x < y</a>`,
      `<a x="1" x="2"/>`,
    ])
      expect(() => parseXml(bad), bad).toThrow();
  });
});

describe("timelineSvg", () => {
  const hybrid = example("examples/linear-llama3-1b-hybrid.lasp");

  it("draws the 1B hybrid at 8 ranks and 4 layers as well-formed SVG", () => {
    const layers = [0, 1, 2, 3];
    const svg = timelineSvg(hybrid, { layers, machine: H100_SXM });
    const root = parseXml(svg);
    expect(root.name).toBe("svg");
    expect(root.attrs["width"]).toBe("1600");
    const ranks = [0, 1, 2, 3, 4, 5, 6, 7];
    // One lane per rank and stream (repeated in every row of segments), in rank order, compute first.
    const lanes = all(root, "rect", "lane").map((r) => `${r.attrs["data-rank"]} ${r.attrs["data-stream"]}`);
    const expected = ranks.flatMap((r) => [`${r} compute`, `${r} comm`]);
    expect([...new Set(lanes)]).toEqual(expected);
    expect(lanes.length % expected.length).toBe(0);
    expect(lanes.slice(0, expected.length)).toEqual(expected);
    // One rectangle per step, each with a tooltip.
    const steps = all(root, "rect", "step");
    expect(steps).toHaveLength(stepCount(hybrid, layers, ranks));
    for (const s of steps) {
      const titles = s.children.filter((c) => c.name === "title");
      expect(titles).toHaveLength(1);
      expect(titles[0]!.text).toMatch(/rank \d+ · layer \d+ (forward|backward) · step \d+/);
      expect(titles[0]!.text).toMatch(/→/);
    }
    // Layer headers name every pass, forward up the stack then backward down it.
    const headers = all(root, "text")
      .map((t) => t.text)
      .filter((t) => /^layer \d+ · /.test(t));
    expect(headers.map((h) => h.replace(/^layer (\d+) · .* · (\w+)$/, "$1 $2"))).toEqual([
      "0 forward",
      "1 forward",
      "2 forward",
      "3 forward",
      "3 backward",
      "2 backward",
      "1 backward",
      "0 backward",
    ]);
    expect(svg).toContain("AllGather");
  });

  it("shows only the ranks asked for, and every layer by default", () => {
    const program = example("examples/tiny-baselines.lasp");
    const root = parseXml(timelineSvg(program, { ranks: [1, 3], machine: H100_SXM }));
    const lanes = new Set(
      all(root, "rect", "lane").map((r) => `${r.attrs["data-rank"]} ${r.attrs["data-stream"]}`),
    );
    expect([...lanes]).toEqual(["1 compute", "1 comm", "3 compute", "3 comm"]);
    const layers = program.layers.map((_, i) => i);
    expect(all(root, "rect", "step")).toHaveLength(stepCount(program, layers, [1, 3]));
    // The LASP-1 chain's sends and recvs are drawn, recvs with their waiting time.
    expect(all(root, "rect", "wait").length).toBeGreaterThan(0);
  });

  it("escapes labels for XML", () => {
    const program = lowerSpec(
      tinySpec({
        ranks: 2,
        layout: "contiguous",
        seqLen: 64,
        layers: [linearKind("L", 4, 0.9), softmaxKind("S", 2)],
      }),
      { block: 8 },
    );
    const step = program.schedules[0]!.passes.forward[0]!.steps[0]!;
    step.label = `a < b & "c" > 'd'`;
    const svg = timelineSvg(program, { width: 3000 });
    const root = parseXml(svg);
    const titles = all(root, "title").map((t) => t.text);
    expect(titles.some((t) => t.includes(esc(`a < b & "c" > 'd'`)))).toBe(true);
    expect(esc(`<&>"'`)).toBe("&lt;&amp;&gt;&quot;&apos;");
  });

  it("uses one time scale when the passes are comparable and one per pass otherwise", () => {
    const tiny = lowerSpec(
      tinySpec({ ranks: 2, layout: "contiguous", seqLen: 64, layers: [linearKind("L", 4)] }),
      {
        block: 8,
      },
    );
    expect(timelineSvg(tiny)).toContain("share one time scale");
    expect(timelineSvg(hybrid, { layers: [0, 3] })).toContain("its own time scale");
    expect(timelineSvg(hybrid, { layers: [0, 3], scale: "shared" })).toContain("share one time scale");
  });

  it("rejects layers and ranks that do not exist", () => {
    expect(() => timelineSvg(hybrid, { layers: [99] })).toThrow(/no layer 99/);
    expect(() => timelineSvg(hybrid, { ranks: [8] })).toThrow(/no rank 8/);
  });
});
