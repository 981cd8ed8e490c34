// How close two predictions must be to count as a tie: choices whose predicted tokens/s differ by less than this
// fraction are ones the model cannot tell apart (its error against measurements is a few percent,
// docs/PLAN.md), so `lasp plan` and `auto` say so instead of naming a winner by a rounding.
export const TIE = 1e-3;
