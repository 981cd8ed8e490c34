// A one-line text picture of a series (the loss per step in `lasp run`'s summary): one block character per
// column, its height the value's place between the series' minimum and maximum. Always Unicode blocks: the
// rest of lasp's terminal output already uses non-ASCII (`–`, `…`, `µs`), every current terminal and CI log
// viewer shows them, and LANG/LC_ALL are often unset where the text is shown (Slurm logs, containers, CI), so
// guessing from them would take the picture away where it reads fine.

const BLOCKS = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"] as const;

/**
 * The series as at most `width` block characters; a longer series is averaged over equal runs of points
 * (the trend is what a sparkline shows). Non-finite values are left out; an empty series gives "".
 */
export function sparkline(values: readonly number[], width = 40): string {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return "";
  const columns = Math.max(1, Math.min(Math.floor(width), finite.length));
  const points: number[] = [];
  for (let c = 0; c < columns; c++) {
    const from = Math.floor((c * finite.length) / columns);
    const to = Math.floor(((c + 1) * finite.length) / columns);
    const run = finite.slice(from, to);
    points.push(run.reduce((a, b) => a + b, 0) / run.length);
  }
  const min = Math.min(...points);
  const max = Math.max(...points);
  // A flat series sits in the middle, neither empty nor full.
  if (max === min) return BLOCKS[3].repeat(points.length);
  return points.map((v) => BLOCKS[Math.round(((v - min) / (max - min)) * (BLOCKS.length - 1))]!).join("");
}
