// One set of numbers: the text, the JSON and the SVG of `lasp inspect` show the same predicted times for the
// same layer, labelled the same way, the weight-gradient sum included.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { main } from "../cli/main.js";
import { captureIo } from "../cli/test-io.js";
import { IR_VERSION } from "../schedule/ir.js";
import type { InspectReport } from "./report.js";
import { formatBytes, formatTime } from "../text/units.js";

beforeEach(() => void vi.stubEnv("COLUMNS", "100"));
afterEach(() => void vi.unstubAllEnvs());

interface Outputs {
  text: string;
  json: InspectReport & { layers: number[]; schedules: { kind: string }[] };
  svg: string;
}

async function inspect(spec: string): Promise<Outputs> {
  const text = captureIo();
  expect(await main(["inspect", spec], text)).toBe(0);
  const json = captureIo();
  expect(await main(["inspect", spec, "--json"], json)).toBe(0);
  const file = join(mkdtempSync(join(tmpdir(), "lasp-report-")), "t.svg");
  const svg = captureIo();
  expect(await main(["inspect", spec, "--svg", file], svg)).toBe(0);
  return { text: text.out, json: JSON.parse(json.out), svg: readFileSync(file, "utf8") };
}

/** The predicted-times row of `kind` and `pass` in the text: [pass time, projection, attention, hidden]. */
function textRow(text: string, kind: string, count: number, pass: "forward" | "backward"): string[] {
  const lines = text.slice(text.indexOf("Predicted per layer")).split("\n");
  const first = lines.findIndex((l) => l.startsWith(`  ${kind} (x${count}) `));
  expect(first, `${kind} in\n${text}`).toBeGreaterThan(0);
  const line = lines[pass === "forward" ? first : first + 1]!;
  const cells = line.trim().split(/\s{2,}/);
  expect(cells).toContain(pass);
  return cells.slice(cells.indexOf(pass) + 1);
}

/** Text of every <text> element of the SVG, entities decoded. */
function svgTexts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) =>
    m[1]!
      .replace(/&apos;/g, "'")
      .replace(/&quot;/g, '"')
      .replace(/&lt;/g, "<")
      .replace(/&gt;/g, ">")
      .replace(/&amp;/g, "&"),
  );
}

describe("lasp inspect: text, JSON and SVG agree", () => {
  for (const spec of [
    "examples/linear-llama3-1b-hybrid.lasp",
    "examples/tiny-hybrid.lasp",
    "examples/tiny-baselines.lasp",
  ]) {
    it(`shows the same pass, projection and attention times and weight-gradient sums for ${spec}`, async () => {
      const { text, json, svg } = await inspect(spec);
      const headers = svgTexts(svg);
      for (const k of json.predictions.kinds) {
        for (const pass of ["forward", "backward"] as const) {
          const p = k[pass];
          expect(p.pass).toBeCloseTo(p.projection + p.attention, 15);
          const [passTime, projection, attention] = textRow(text, k.kind, k.count, pass);
          expect(passTime).toBe(formatTime(p.pass));
          expect(projection).toBe(p.projection > 0 ? formatTime(p.projection) : "none");
          expect(attention).toBe(formatTime(p.attention));
          // Every drawn segment of this kind and pass heads with the same pass time (and its split).
          const layers = json.layers.flatMap((s, i) => (json.schedules[s]!.kind === k.kind ? [i] : []));
          const drawn = headers.filter((h) =>
            layers.some((l) => h.startsWith(`layer ${l} · ${k.kind} (`) && h.endsWith(` · ${pass}`)),
          );
          // The CLI draws the first layer of every kind.
          expect(drawn.length, `${k.kind} ${pass}`).toBeGreaterThan(0);
          for (const header of drawn) {
            const next = headers[headers.indexOf(header) + 1]!;
            expect(next.startsWith(formatTime(p.pass))).toBe(true);
            if (p.projection > 0)
              expect(next).toContain(
                `${formatTime(p.pass)} = ${formatTime(p.projection)} projection + ${formatTime(p.attention)} attention`,
              );
          }
        }
        const sum = k.weightGradientSum;
        expect(sum.bytes).toBe(4 * sum.elements); // fp32 gradients, the layer's whole block
        const words = `${formatTime(sum.time)} (${formatBytes(sum.bytes)} over ${sum.ranks} GPUs)`;
        expect(text.replace(/\n\s+/g, " ")).toContain(`${k.kind}: ${words}`);
        expect(headers.join("\n")).toContain(
          `${k.kind} ${formatTime(sum.time)} (${sum.collective} of ${formatBytes(sum.bytes)} over ${sum.ranks} GPUs)`,
        );
      }
      const step = json.predictions.step;
      expect(text.replace(/\n\s+/g, " ")).toContain(
        `${formatTime(step.passes)} of passes = ${formatTime(step.projection)} projection + ${formatTime(step.attention)} attention; ${formatTime(step.weightGradientSums)} of weight-gradient sums`,
      );
    });
  }

  it("draws LASP-2's projection as a projection, not as data movement", async () => {
    const { svg } = await inspect("examples/linear-llama3-1b-hybrid.lasp");
    const projection = [
      ...svg.matchAll(/<rect class="step"[^>]*fill="([^"]+)"[^>]*><title>([^<]*)<\/title>/g),
    ]
      .filter((m) => m[2]!.includes("host:"))
      .map((m) => m[1]);
    expect(projection.length).toBeGreaterThan(0);
    expect(new Set(projection)).toEqual(new Set(["#2f8f8a"]));
    expect(svg).toContain("layer projection (GEMM)");
  });

  it("keeps the IR's JSON fields and adds the communication table and the predictions", async () => {
    const { json, text } = await inspect("examples/linear-llama3-1b-hybrid.lasp");
    expect(json).toHaveProperty("irVersion", IR_VERSION);
    expect(Object.keys(json)).toEqual(
      expect.arrayContaining([
        "spec",
        "sizes",
        "layout",
        "schedules",
        "layers",
        "communication",
        "predictions",
      ]),
    );
    // Every row of the text's communication table is in the JSON, with the numbers it shows.
    // (linear lasp2, lasp1, allscan, ulysses; softmax allgather, ring, ulysses) x 2 layouts.
    expect(json.communication).toHaveLength(14);
    const chosen = json.communication
      .filter((r) => r.chosen)
      .map((r) => `${r.kind} ${r.strategy} ${r.layout}`);
    expect(chosen).toEqual(["L lasp2 zigzag", "S allgather zigzag"]);
    const ring = json.communication.find((r) => r.strategy === "ring" && r.layout === "contiguous")!;
    expect(ring).toMatchObject({ layers: 4, forward: { collectives: "7 send/recv", dependentSteps: 7 } });
    expect(text).toMatch(
      new RegExp(
        `S \\(x4\\)\\s+ring\\s+contiguous\\s+forward\\s+7 send/recv\\s+${formatBytes(ring.forward.bytesPerRank)}\\s+7`,
      ),
    );
    expect(json.predictions.machine).toContain("H100");
    expect(json.predictions.kinds.map((k) => [k.kind, k.strategy, k.count])).toEqual([
      ["L", "lasp2", 12],
      ["S", "allgather", 4],
    ]);
  });
});
