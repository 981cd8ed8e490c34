// The part of `lasp run --help` after the options; its own module so that `lasp --help` loads nothing of
// the toolchain (src/cli/main.ts imports each command's module only when the command runs).

export const RUN_HELP = `
Options after \`--\` go to every rank unchanged, e.g.
  lasp run spec.lasp -- --warmup 2 --seed 7

Exit codes: 0 ok, 1 spec errors (or the program's verify failed), 2 usage
errors, 3 this machine cannot run it (no GPU, too few GPUs, no nvcc or cmake),
4 the build failed (the log and a repro command are printed), 130 interrupted;
a rank that fails passes its own exit code through.
Build cache: .lasp-cache/ in the working directory, or $LASP_CACHE_DIR.
Run folder: runs/<spec name>-<UTC yyyymmdd-hhmmss>/ in the working directory, or
--run-dir (a name that exists gets -2, -3, ...): spec.lasp, run.json,
events.jsonl, stderr.log, and at the end loss.svg and summary.txt.`;
