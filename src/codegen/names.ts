// C++ identifiers and literals for generated code: every name the templates print is made here.

/** A C++ identifier from a spec name (layer kinds are already identifiers; keep them readable). */
export function cppIdent(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9_]/g, "_");
  const safe = /^[0-9]/.test(cleaned) ? `_${cleaned}` : cleaned;
  return CPP_KEYWORDS.has(safe) ? `${safe}_` : safe;
}

/** The C++ constant holding a softmax layer kind's lasp::SoftmaxDims. */
export function softmaxDimsName(kind: string): string {
  return `k${kind}_dims`;
}

/** A lasp::SoftmaxDims initialiser (field order of types.cuh). */
export function softmaxDimsLiteral(d: {
  batch: number;
  qRows: number;
  kRows: number;
  heads: number;
  kvHeads: number;
  headDim: number;
}): string {
  return `lasp::SoftmaxDims{${d.batch}, ${d.qRows}, ${d.kRows}, ${d.heads}, ${d.kvHeads}, ${d.headDim}}`;
}

// Buffer and layer names that would collide with C++ (the IR's output gradient is called `do`).
const CPP_KEYWORDS = new Set([
  "do",
  "if",
  "else",
  "for",
  "while",
  "switch",
  "case",
  "default",
  "break",
  "continue",
  "return",
  "int",
  "float",
  "double",
  "char",
  "bool",
  "void",
  "auto",
  "const",
  "static",
  "struct",
  "class",
  "new",
  "delete",
  "this",
  "true",
  "false",
  "template",
  "typename",
  "namespace",
  "using",
  "operator",
  "union",
  "enum",
  "register",
  "volatile",
  "extern",
  "signed",
  "unsigned",
  "short",
  "long",
  "goto",
  "sizeof",
  "public",
  "private",
  "protected",
  "virtual",
  "friend",
  "inline",
  "throw",
  "try",
  "catch",
  "main",
]);

/** A double as C++ reads it back exactly (the shortest round-trip text; integers get a `.0`). */
export function doubleLiteral(value: number): string {
  const text = String(value);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

/** A float literal that round-trips to the same float32 where it matters (9 significant digits). */
export function floatLiteral(value: number): string {
  if (value === 1) return "1.0f";
  if (value === 0) return "0.0f";
  const text = value.toPrecision(9);
  return `${text.includes(".") || text.includes("e") ? text : `${text}.0`}f`;
}
