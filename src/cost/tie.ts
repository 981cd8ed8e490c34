// How close two predictions must be to count as a tie: choices whose predicted tokens/s differ by less than this
// fraction are ones the model cannot tell apart (its error against measurements is a few percent,
// docs/PLAN.md), so `lasp plan` and `auto` say so instead of naming a winner by a rounding.
export const TIE = 1e-3;

/** Whether a choice predicted at `other` tokens/s ties with the best one's `best`: within TIE below it. */
export function ties(best: number, other: number): boolean {
  return other >= best * (1 - TIE);
}
