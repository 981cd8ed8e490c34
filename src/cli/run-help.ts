// The part of `lasp run --help` after the options; its own module so that `lasp --help` loads nothing of
// the toolchain (src/cli/main.ts imports each command's module only when the command runs).

export const RUN_HELP = `
Options after \`--\` go to every rank unchanged, e.g.
  lasp run spec.lasp -- --warmup 2 --seed 7

Train mode (--mode train, the spec's \`mode train\`, or --resume): the ranks
write checkpoints into the run folder's checkpoints/. --resume continues from
one, in a new run folder (the old one is left as it is):
  lasp run spec.lasp --resume             the newest checkpoint of the spec's
                                          newest run (under runs/, or
                                          --run-dir's parent)
  lasp run spec.lasp --resume runs/NAME   that run's newest checkpoint
  lasp run spec.lasp --resume runs/NAME/checkpoints/step-000500
The first Ctrl-C (or a SIGTERM to lasp, as Slurm sends) lets the ranks finish
their step and write a checkpoint (up to 10 minutes); a second one kills them.
--no-checkpoints writes none, not even at the end (a benchmark or a smoke
test: a large model's checkpoint takes tens of seconds and as much disk as its
weights and optimizer state).

Exit codes: 0 ok, 1 spec errors (or the program's verify failed), 2 usage
errors (a missing or bad token file, an -o folder lasp did not write, no
checkpoint to --resume from or one the program would refuse; --dry-run
exits 2 on these too), 3 this machine cannot run it (no GPU,
too few GPUs, no nvcc or cmake), 4 the build failed (the log and a repro
command are printed), 6 training stopped at a non-finite loss or gradient norm
(the last checkpoint is kept), 130 interrupted (in train mode, after writing a
checkpoint when it says so); a rank that fails passes its own exit code
through.
Build cache: .lasp-cache/ in the working directory, or $LASP_CACHE_DIR.
Run folder: runs/<spec name>-<UTC yyyymmdd-hhmmss>/ in the working directory, or
--run-dir (a name that exists gets -2, -3, ...): spec.lasp, run.json,
events.jsonl, stderr.log, checkpoints/ (train mode), and at the end loss.svg
and summary.txt.`;
