// Naming the characters a spec cannot hold. An invisible character (U+200B, a byte order mark in the middle
// of a line) or a look-alike (Greek capital alpha for `A`, a curly quote for `"`) shows as nothing useful
// between backquotes, so messages give its code point and name, and hints say what to type instead.

interface Known {
  name: string;
  /** The ASCII character it is mistaken for, when it is a look-alike. */
  looksLike?: string;
}

/** Characters users paste by accident, with their Unicode names. */
const KNOWN: Record<number, Known> = {
  0x00a0: { name: "NO-BREAK SPACE", looksLike: " " },
  0x00ad: { name: "SOFT HYPHEN" },
  0x00d7: { name: "MULTIPLICATION SIGN", looksLike: "x" },
  0x2002: { name: "EN SPACE", looksLike: " " },
  0x2003: { name: "EM SPACE", looksLike: " " },
  0x2009: { name: "THIN SPACE", looksLike: " " },
  0x200b: { name: "ZERO WIDTH SPACE" },
  0x200c: { name: "ZERO WIDTH NON-JOINER" },
  0x200d: { name: "ZERO WIDTH JOINER" },
  0x200e: { name: "LEFT-TO-RIGHT MARK" },
  0x200f: { name: "RIGHT-TO-LEFT MARK" },
  0x2010: { name: "HYPHEN", looksLike: "-" },
  0x2011: { name: "NON-BREAKING HYPHEN", looksLike: "-" },
  0x2012: { name: "FIGURE DASH", looksLike: "-" },
  0x2013: { name: "EN DASH", looksLike: "-" },
  0x2014: { name: "EM DASH", looksLike: "-" },
  0x2018: { name: "LEFT SINGLE QUOTATION MARK", looksLike: "'" },
  0x2019: { name: "RIGHT SINGLE QUOTATION MARK", looksLike: "'" },
  0x201c: { name: "LEFT DOUBLE QUOTATION MARK", looksLike: '"' },
  0x201d: { name: "RIGHT DOUBLE QUOTATION MARK", looksLike: '"' },
  0x201e: { name: "DOUBLE LOW-9 QUOTATION MARK", looksLike: '"' },
  0x2028: { name: "LINE SEPARATOR" },
  0x2029: { name: "PARAGRAPH SEPARATOR" },
  0x202f: { name: "NARROW NO-BREAK SPACE", looksLike: " " },
  0x2060: { name: "WORD JOINER" },
  0x2212: { name: "MINUS SIGN", looksLike: "-" },
  0x3000: { name: "IDEOGRAPHIC SPACE", looksLike: " " },
  0xfeff: { name: "ZERO WIDTH NO-BREAK SPACE (byte order mark)" },
  0xff1d: { name: "FULLWIDTH EQUALS SIGN", looksLike: "=" },
  0xff0c: { name: "FULLWIDTH COMMA", looksLike: "," },
  0xff3b: { name: "FULLWIDTH LEFT SQUARE BRACKET", looksLike: "[" },
  0xff3d: { name: "FULLWIDTH RIGHT SQUARE BRACKET", looksLike: "]" },
  0xff5b: { name: "FULLWIDTH LEFT CURLY BRACKET", looksLike: "{" },
  0xff5d: { name: "FULLWIDTH RIGHT CURLY BRACKET", looksLike: "}" },
};

// Greek and Cyrillic letters drawn like Latin ones.
const GREEK_CAPITALS: [number, string, string][] = [
  [0x0391, "ALPHA", "A"],
  [0x0392, "BETA", "B"],
  [0x0395, "EPSILON", "E"],
  [0x0396, "ZETA", "Z"],
  [0x0397, "ETA", "H"],
  [0x0399, "IOTA", "I"],
  [0x039a, "KAPPA", "K"],
  [0x039c, "MU", "M"],
  [0x039d, "NU", "N"],
  [0x039f, "OMICRON", "O"],
  [0x03a1, "RHO", "P"],
  [0x03a4, "TAU", "T"],
  [0x03a5, "UPSILON", "Y"],
  [0x03a7, "CHI", "X"],
];
for (const [code, letter, latin] of GREEK_CAPITALS)
  KNOWN[code] = { name: `GREEK CAPITAL LETTER ${letter}`, looksLike: latin };
KNOWN[0x03bf] = { name: "GREEK SMALL LETTER OMICRON", looksLike: "o" };
const CYRILLIC: [number, string, string][] = [
  [0x0410, "CAPITAL LETTER A", "A"],
  [0x0412, "CAPITAL LETTER VE", "B"],
  [0x0415, "CAPITAL LETTER IE", "E"],
  [0x041a, "CAPITAL LETTER KA", "K"],
  [0x041c, "CAPITAL LETTER EM", "M"],
  [0x041d, "CAPITAL LETTER EN", "H"],
  [0x041e, "CAPITAL LETTER O", "O"],
  [0x0420, "CAPITAL LETTER ER", "P"],
  [0x0421, "CAPITAL LETTER ES", "C"],
  [0x0422, "CAPITAL LETTER TE", "T"],
  [0x0425, "CAPITAL LETTER HA", "X"],
  [0x0430, "SMALL LETTER A", "a"],
  [0x0435, "SMALL LETTER IE", "e"],
  [0x043e, "SMALL LETTER O", "o"],
  [0x0440, "SMALL LETTER ER", "p"],
  [0x0441, "SMALL LETTER ES", "c"],
  [0x0443, "SMALL LETTER U", "y"],
  [0x0445, "SMALL LETTER HA", "x"],
];
for (const [code, letter, latin] of CYRILLIC) KNOWN[code] = { name: `CYRILLIC ${letter}`, looksLike: latin };

/** Characters with nothing to see: format characters, separators other than the space, controls. */
const INVISIBLE = /^[\p{Cf}\p{Zs}\p{Zl}\p{Zp}\p{Cc}]$/u;

export const CURLY_OPENING_QUOTES = "\u201c\u201e\u2018";
export const CURLY_CLOSING_QUOTES = "\u201d\u201c\u2019";

function codePointText(char: string): string {
  return `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** `U+0391 GREEK CAPITAL LETTER ALPHA`, or `U+00E9` for a character without a name here. */
export function nameChar(char: string): string {
  const known = KNOWN[char.codePointAt(0)!];
  return known === undefined ? codePointText(char) : `${codePointText(char)} ${known.name}`;
}

/** At most this many characters are shown and named: a run of junk needs only its start. */
const SHOWN = 20; // callers pass at most 64 UTF-16 units, so a longer run shows its cut
const NAMED = 3;

/**
 * How a run of unexpected characters is shown: the characters in backquotes where they can be seen, with
 * the code points and names of the non-ASCII ones; only the names where nothing can be seen.
 */
export function describeCharacters(text: string): string {
  const chars = [...text];
  const shownChars = chars.slice(0, SHOWN);
  const visible = shownChars.filter((c) => !INVISIBLE.test(c) && c !== " ");
  const unusual = [...new Set(shownChars.filter((c) => c.codePointAt(0)! > 0x7e))];
  const names = unusual.slice(0, NAMED).map(nameChar).join(", ") + (unusual.length > NAMED ? ", …" : "");
  if (visible.length === 0) return names; // only invisible characters: their names say what they are
  const quoted = `\`${printableChars(shownChars).join("")}${chars.length > SHOWN ? "…" : ""}\``;
  return unusual.length === 0 ? quoted : `${quoted} (${names})`;
}

/** Invisible characters inside backquotes are written as their code points, so nothing is hidden. */
function printableChars(chars: readonly string[]): string[] {
  return chars.map((c) => (INVISIBLE.test(c) && c !== " " ? `<${codePointText(c)}>` : c));
}

/** What to type instead, when the run is a look-alike, an invisible character or curly quotes. */
export function characterHint(text: string): string | undefined {
  const chars = [...text];
  const first = chars[0]!;
  const last = chars[chars.length - 1]!;
  if (CURLY_OPENING_QUOTES.includes(first) && chars.length > 1 && CURLY_CLOSING_QUOTES.includes(last)) {
    return `write it with straight quotes: "${chars.slice(1, -1).join("").slice(0, 40)}"`;
  }
  const known = chars.map((c) => KNOWN[c.codePointAt(0)!]);
  if (known.every((k) => k?.looksLike === '"' || k?.looksLike === "'")) {
    return 'strings take straight double quotes: `"`';
  }
  if (known.every((k) => k?.looksLike === " "))
    return "it looks like a space but is not one: type a plain space";
  if (known.every((k) => k?.looksLike !== undefined)) {
    const latin = known.map((k) => k!.looksLike).join("");
    return `it looks like \`${latin}\` but is not ASCII: type \`${latin}\` instead`;
  }
  if (first === "\uFEFF") return "a byte order mark belongs only at the very start of a file: delete it";
  if (chars.every((c) => INVISIBLE.test(c))) return "an invisible character, probably pasted: delete it";
  return undefined;
}
