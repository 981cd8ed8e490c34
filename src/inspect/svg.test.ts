import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import { main } from "../cli/main.js";
import { captureIo } from "../cli/test-io.js";
import type { ScheduleProgram } from "../schedule/ir.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { lowerSpec } from "../schedule/lower.js";
import { linearKind, softmaxKind, tinySpec } from "../schedule/test-specs.js";
import { formatTime } from "../text/units.js";
import { inspectNumbers, type InspectReport } from "./report.js";
import { esc, LASP_SVG, timelineSvg, type TimelineOptions } from "./svg.js";

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

interface Lowered {
  spec: ResolvedSpec;
  program: ScheduleProgram;
}

function example(file: string): Lowered {
  const spec = checkSource(file, readFileSync(file, "utf8")).spec;
  if (spec === undefined) throw new Error(`${file} does not check`);
  return { spec, program: lowerSpec(spec) };
}

/** The picture of `lowered` on the default (H100) profile, from the numbers the text and JSON show. */
function svgOf({ spec, program }: Lowered, options: TimelineOptions = {}): string {
  return timelineSvg(program, inspectNumbers(spec, program), options);
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
    const svg = svgOf(hybrid, { layers });
    const root = parseXml(svg);
    expect(root.name).toBe("svg");
    expect(root.attrs["width"]).toBe("1600");
    // The mark by which `--svg` later knows the file for one lasp wrote and may replace.
    expect(root.attrs["data-written-by"]).toBe("lasp inspect");
    expect(LASP_SVG.test(svg)).toBe(true);
    expect(LASP_SVG.test(svg.replace(" data-written-by=", " data-made-by="))).toBe(false);
    const ranks = [0, 1, 2, 3, 4, 5, 6, 7];
    // One lane per rank and stream (repeated in every row of segments), in rank order, compute first.
    const lanes = all(root, "rect", "lane").map((r) => `${r.attrs["data-rank"]} ${r.attrs["data-stream"]}`);
    const expected = ranks.flatMap((r) => [`${r} compute`, `${r} comm`]);
    expect([...new Set(lanes)]).toEqual(expected);
    expect(lanes.length % expected.length).toBe(0);
    expect(lanes.slice(0, expected.length)).toEqual(expected);
    // One rectangle per step, each with a tooltip.
    const steps = all(root, "rect", "step");
    expect(steps).toHaveLength(stepCount(hybrid.program, layers, ranks));
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
    const tiny = example("examples/tiny-baselines.lasp");
    const program = tiny.program;
    const root = parseXml(svgOf(tiny, { ranks: [1, 3] }));
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
    const spec = tinySpec({
      ranks: 2,
      layout: "contiguous",
      seqLen: 64,
      layers: [linearKind("L", 4, 0.9), softmaxKind("S", 2)],
    });
    const program = lowerSpec(spec, { block: 8 });
    const step = program.schedules[0]!.passes.forward[0]!.steps[0]!;
    step.label = `a < b & "c" > 'd'`;
    const svg = svgOf({ spec, program }, { width: 3000 });
    const root = parseXml(svg);
    const titles = all(root, "title").map((t) => t.text);
    expect(titles.some((t) => t.includes(esc(`a < b & "c" > 'd'`)))).toBe(true);
    expect(esc(`<&>"'`)).toBe("&lt;&amp;&gt;&quot;&apos;");
  });

  it("uses one time scale when the passes are comparable and one per pass otherwise", () => {
    const spec = tinySpec({ ranks: 2, layout: "contiguous", seqLen: 64, layers: [linearKind("L", 4)] });
    const tiny = { spec, program: lowerSpec(spec, { block: 8 }) };
    expect(svgOf(tiny)).toContain("share one time scale");
    expect(svgOf(hybrid, { layers: [0, 3] })).toContain("its own time scale");
    expect(svgOf(hybrid, { layers: [0, 3], scale: "shared" })).toContain("share one time scale");
  });

  it("writes the same times as the text and --json of the same inspect (any machine profile)", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "lasp-svg-")), "t.svg");
    const args = ["inspect", "examples/linear-llama3-8b-hybrid.lasp", "--machine", "a100-sxm-40gb"];
    const io = captureIo();
    expect(await main([...args, "--svg", file, "--json"], io)).toBe(0);
    const json = JSON.parse(io.out) as InspectReport;
    const text = captureIo();
    expect(await main(args, text)).toBe(0);
    const root = parseXml(readFileSync(file, "utf8"));
    const lines = all(root, "text").map((t) => t.text);
    const headers = lines.flatMap((t, i) => (/^layer \d+ · /.test(t) ? [[t, lines[i + 1]!]] : []));
    expect(headers.length).toBeGreaterThan(0);
    expect(headers.some(([, times]) => times!.includes(" projection + "))).toBe(true);
    for (const [head, times] of headers) {
      const [, kindName, pass] = /^layer \d+ · (\S+) .* · (forward|backward)$/.exec(head!)!;
      const kind = json.predictions.kinds.find((k) => k.kind === kindName)!;
      const p = kind[pass as "forward" | "backward"];
      const projection =
        p.projection > 0
          ? ` = ${formatTime(p.projection)} projection + ${formatTime(p.attention)} attention`
          : "";
      const hidden =
        p.comm > 0 ? ` · comm ${Math.round(100 * p.hiddenFraction)}% hidden` : " · no communication";
      const sum =
        pass === "backward" ? ` · then a ${formatTime(kind.weightGradientSum.time)} weight-gradient sum` : "";
      // A narrow segment drops the tail of its line (fit), never changes a number.
      expect(`${formatTime(p.pass)}${projection}${hidden}${sum}`.startsWith(times!)).toBe(true);
      expect(times!.startsWith(`${formatTime(p.pass)}`)).toBe(true);
      // The text's table shows the same pass time, projection and attention.
      expect(text.out).toMatch(
        new RegExp(
          `${pass}\\s+${formatTime(p.pass)}\\s+${p.projection > 0 ? formatTime(p.projection) : "none"}\\s+${formatTime(p.attention)}`,
        ),
      );
    }
    // The weight-gradient sums over every GPU (sequence x data), as the text has them.
    const gradients = lines.find((t) => t.startsWith("weight-gradient sum after"))!;
    for (const k of json.predictions.kinds) {
      expect(k.weightGradientSum.ranks).toBe(16);
      expect(gradients).toContain(`${k.kind} ${formatTime(k.weightGradientSum.time)} (AllReduce`);
      expect(text.out).toContain(`${k.kind}: ${formatTime(k.weightGradientSum.time)}`);
    }
    expect(lines.some((t) => t.includes(json.predictions.machine))).toBe(true);
  });

  it("rejects layers and ranks that do not exist", () => {
    expect(() => svgOf(hybrid, { layers: [99] })).toThrow(/no layer 99/);
    expect(() => svgOf(hybrid, { ranks: [8] })).toThrow(/no rank 8/);
  });
});
