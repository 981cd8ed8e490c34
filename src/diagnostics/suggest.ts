// Hints: the nearest valid word for a misspelling, the list of valid words, the valid range of a number.
import { quote } from "./quote.js";

/** Edits between two words; swapping two neighbouring letters counts as one (`modle` is one from `model`). */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      let best = Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, before[j - 2]! + 1);
      current.push(best);
    }
    before = previous;
    previous = current;
  }
  return previous[b.length]!;
}

/** The closest candidate, if it is close enough to be a plausible misspelling. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  if (word.length > 64) return undefined;
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  // One edit per three letters, and never a rewrite of the whole word (`Q` is not a misspelling of `L`).
  const allowed = Math.max(1, Math.floor(word.length / 3));
  return bestDistance <= allowed && bestDistance < word.length ? best : undefined;
}

/** The most words a list in a hint names; a user's spec may declare thousands of layers. */
const LISTED = 12;

export function listWords(words: readonly string[]): string {
  const quoted = words.slice(0, LISTED).map(quote);
  if (words.length > LISTED) return `${quoted.join(", ")} and ${words.length - LISTED} more`;
  if (quoted.length <= 1) return quoted[0] ?? "";
  return `${quoted.slice(0, -1).join(", ")} or ${quoted[quoted.length - 1]}`;
}

/** "did you mean `hidden`?" when one word is close, else "expected one of ...". */
export function wordHint(word: string, candidates: readonly string[], noun = "valid values"): string {
  const guess = nearest(word, candidates);
  if (guess !== undefined) return `did you mean ${quote(guess)}?`;
  return `${noun}: ${listWords(candidates)}`;
}
