import { describe, expect, it } from "vitest";
import { checkSource } from "../check/front-end.js";
import type { ResolvedSpec } from "../spec/resolved.js";
import { decayRows, gradientBlocks, gradientBlockSpans, modelTables, optimizerSharded } from "./tables.js";

function specOf(source: string): ResolvedSpec {
  const result = checkSource("m.lasp", source);
  if (result.spec === undefined) throw new Error(result.diagnostics.map((d) => d.message).join("\n"));
  return result.spec;
}

const model = (extra: string): ResolvedSpec =>
  specOf(`model m {
  vocab 100  hidden 256  ffn 512  heads 4  head_dim 64 ${extra}
  layer L = linear_attention { }
  stack L x 2
}
parallel { gpus 1 }
run { seq_len 1K }
`);

describe("AdamW's decay table (decayRows)", () => {
  for (const [what, extra] of [
    ["RMSNorm, untied head", ""],
    ["LayerNorm (biases), tied head", "norm layernorm  tie_embeddings true"],
  ] as const) {
    it(`covers the whole parameter allocation back to back (${what})`, () => {
      const { parameters } = modelTables(model(extra), 1024);
      const rows = decayRows(parameters);
      let next = 0;
      for (const row of rows) {
        expect(row.offset).toBe(next);
        expect(row.elements).toBeGreaterThan(0);
        next += row.elements;
      }
      expect(next).toBe(parameters.elements);
      // Neighbours differ: the table is as short as it can be.
      for (let i = 1; i < rows.length; i++) expect(rows[i]!.decay).not.toBe(rows[i - 1]!.decay);
    });

    it(`decays every matrix, the embedding included, and no norm gain, bias or padding (${what})`, () => {
      const { parameters } = modelTables(model(extra), 1024);
      const rows = decayRows(parameters);
      const decayedAt = (e: number): number =>
        rows.find((r) => e >= r.offset && e < r.offset + r.elements)!.decay;
      let decayed = 0;
      for (const t of parameters.rows) {
        const want = t.shape.length === 2 ? 1 : 0;
        expect([t.name, decayedAt(t.offset), decayedAt(t.offset + t.elements - 1)]).toEqual([
          t.name,
          want,
          want,
        ]);
        decayed += want * t.elements;
      }
      expect(decayed).toBe(rows.reduce((n, r) => n + r.decay * r.elements, 0));
      expect(
        parameters.rows.some((t) => t.name === "model.embed_tokens.weight" && t.shape.length === 2),
      ).toBe(true);
    });
  }
});

describe("ZeRO-1's choice (optimizerSharded) over the gradient blocks", () => {
  const blocksOf = (spec: ResolvedSpec) => {
    const t = modelTables(spec, 1024);
    return gradientBlockSpans(t.parameters, t.layers, t.head);
  };

  it("names each block's first element and length, and the blocks do not overlap", () => {
    const t = modelTables(model(""), 1024);
    const blocks = gradientBlockSpans(t.parameters, t.layers, t.head);
    expect(blocks.map((b) => b.elements)).toEqual(gradientBlocks(t.parameters, t.layers, t.head));
    expect(blocks[0]!.offset).toBe(t.parameters.rows[t.layers[0]!.attnNorm]!.offset);
    expect(blocks.at(-1)!.offset).toBe(t.parameters.rows[t.head.embedding]!.offset);
    const sorted = [...blocks].sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < sorted.length; i++)
      expect(sorted[i]!.offset).toBeGreaterThanOrEqual(sorted[i - 1]!.offset + sorted[i - 1]!.elements);
    // Every block starts 256-byte aligned, so every 1/W slice of a multiple of 4 elements is 16-byte aligned.
    for (const b of blocks) expect(b.offset % 128).toBe(0);
  });

  it("shards on more than one GPU when every block splits into slices of a multiple of 4", () => {
    const blocks = blocksOf(model(""));
    expect(optimizerSharded(blocks, 1)).toBe(false);
    for (const gpus of [2, 4, 8]) {
      expect(optimizerSharded(blocks, gpus)).toBe(blocks.every((b) => b.elements % (4 * gpus) === 0));
    }
    expect(optimizerSharded(blocks, 2)).toBe(true);
    // vocab 100 x hidden 256: the embedding's 25,600 elements do not split into 3 x multiples of 4.
    expect(blocks.at(-1)!.elements).toBe(25600);
    expect(optimizerSharded(blocks, 3)).toBe(false);
  });
});

describe("what the backward makes again (`recompute`)", () => {
  const run = (recompute: string): ResolvedSpec =>
    specOf(`model m {
  vocab 100  hidden 256  ffn 512  heads 4  head_dim 64
  layer L = linear_attention { }
  stack L x 2
}
parallel { gpus 1 }
run { seq_len 1K${recompute === "" ? "" : `  recompute ${recompute}`} }
`);
  const rowsOf = (recompute: string) => {
    const t = modelTables(run(recompute), 1024);
    return t.layers.map((l) => ({
      attn: l.attnNormOut >= 0 ? t.activations.rows[l.attnNormOut] : undefined,
      mlp: l.mlpNormOut >= 0 ? t.activations.rows[l.mlpNormOut] : undefined,
      h: l.h,
      count: t.activations.rows.length,
    }));
  };

  it("keeps both block norms' outputs per layer only with `recompute none`, [rows][hidden] each", () => {
    expect(run("").run.recompute).toBe("norms");
    const kept = rowsOf("none");
    for (const [l, layer] of kept.entries()) {
      expect(layer.attn).toMatchObject({ name: `layers.${l}.attn_norm_out`, shape: [1024, 256] });
      expect(layer.mlp).toMatchObject({ name: `layers.${l}.mlp_norm_out`, shape: [1024, 256] });
    }
    for (const recompute of ["", "norms", "mlp"]) {
      for (const layer of rowsOf(recompute)) expect([layer.attn, layer.mlp]).toEqual([undefined, undefined]);
    }
    // Two rows more per layer than `norms`; `mlp` drops h per layer (and shares one gate|up).
    expect(kept[0]!.count - rowsOf("norms")[0]!.count).toBe(2 * 2);
    expect(rowsOf("mlp").every((l) => l.h === -1)).toBe(true);
  });
});

describe("the tables' cost in the layers", () => {
  // check, inspect and compile build the tables a few dozen times (the memory model's seq_len search), so a
  // search of the parameter catalogue per weight made them quadratic in the layers (32 s at 768 layers).
  const SEARCHES = [
    "find",
    "findIndex",
    "findLast",
    "findLastIndex",
    "filter",
    "indexOf",
    "includes",
    "some",
  ];
  const scannedBy = (build: () => void): number => {
    const proto = Array.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
    const saved = SEARCHES.map((name) => proto[name]!);
    let scanned = 0;
    SEARCHES.forEach((name, i) => {
      proto[name] = function (this: unknown[], ...args: unknown[]) {
        scanned += this.length;
        return saved[i]!.apply(this, args);
      };
    });
    try {
      build();
    } finally {
      SEARCHES.forEach((name, i) => (proto[name] = saved[i]!));
    }
    return scanned;
  };

  it("searches arrays for at most a few elements per tensor (no search of the catalogue per weight)", () => {
    const spec = specOf(`model m {
  vocab 100  hidden 256  ffn 512  heads 4  head_dim 64  norm layernorm
  layer L = linear_attention { }
  stack L x 128
}
parallel { gpus 1 }
run { seq_len 1K }
`);
    let tables: ReturnType<typeof modelTables> | undefined;
    const scanned = scannedBy(() => (tables = modelTables(spec, 1024)));
    // 128 layers: 1,412 weights; a search per weight scans about a million catalogue entries.
    expect(tables!.parameters.rows.length).toBe(128 * 11 + 4);
    expect(scanned).toBeLessThanOrEqual(tables!.parameters.rows.length + tables!.activations.rows.length);
  });
});
