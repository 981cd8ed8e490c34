#!/usr/bin/env bash
# Train mode (issue 17), in one call on the GPU machine, from the repository root:
#   here:   bash bench/gpu/make-suite.sh all 4 && bash bench/gpu/make-train-data.sh && bash bench/gpu/prebuild.sh
#   there:  bash bench/gpu/run-train.sh [tiny|resume|reshard|inplace|signal|multi|adamw|1b|ckpt1b|all]  (all: one GPU's, not multi, not ckpt1b)
# tiny:   t-tiny-train-w1 (examples/tiny-train.lasp) for its 600 steps: the loss curve, evaluation, checkpoints;
#         then PyTorch evaluates the last checkpoint on the same windows (torch_reference.py --eval-tokens).
# resume: the same run resumed from its step-400 checkpoint: the losses of steps 401-600 must be the same bits.
# reshard: the same run's step-400 checkpoint rewritten as 2 ranks would have written it (reshard_checkpoint.py:
#         replicated, then ZeRO-1) and resumed on 1 GPU: the losses of steps 401-600 must be the same bits.
# inplace: the same run with LASP_CHECKPOINT_COPY=none (checkpoints written in place, straight from the GPU): the
#         same losses and the same checkpoint files as the background writer's, and a resume from its step-400
#         checkpoint; then an unknown LASP_CHECKPOINT_COPY value must stop the program with its sentence (exit 2).
# signal: the same run stopped by SIGTERM after a few seconds (exit 5 and a checkpoint), resumed from that
#         checkpoint to the end: the losses after it must be the same bits as the uninterrupted run's.
# multi:  t-tiny-train-w2 and -w4 (sequence parallel over 2 and 4 GPUs) on the same data as -w1: the losses
#         step by step beside 1 GPU's (the same windows; sums in another order, so close, not the same bits); then
#         the 2-GPU run's step-400 checkpoint resumed on 1 GPU (its optimizer state re-sharded), beside the 2-GPU run.
# adamw:  the program's AdamW kernel against torch.optim.AdamW on the same numbers (adamw_check.cu, adamw_torch.py).
# 1b:     t-linear-1b-w1, Linear-Llama3-1B at 16K tokens for 100 steps from a random token file (the optimizer
#         step included), beside bench/gpu/torch_model.py's training step with fused AdamW, the gradients clipped
#         to the global norm 1.0 first as lasp's are (PRESETS=none: skip).
# ckpt1b: t-linear-1b-ck-w1, Linear-Llama3-1B for 120 steps with a checkpoint at step 60 written in the background
#         and the last one at 120: how long training stood still for each, and the steps' time before the
#         background write, while it runs, and after it.
# Results under $OUT: each run's events (JSONL) and stderr, a table last.
set -uo pipefail
cd "$(dirname "$0")/../.."
export NCCL_NVLS_ENABLE=0
OUT=${OUT:-/tmp/lasp-train}
RUNS=${RUNS:-/tmp/lasp-train-runs}  # run folders (checkpoints) stay out of $OUT: large
mkdir -p "$OUT" "$RUNS"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
suite=${SUITE:-.gpu-suite}  # SUITE=dir: programs built elsewhere (their data/ beside them)
# Build every program not built yet (run-prebuilt.sh compiles them all in parallel; the filter runs none).
[ -x $suite/t-tiny-train-w1/prog ] || (cd $suite && SUITE_FILTER=none OUT=$OUT/build bash run-prebuilt.sh > "$OUT/build.log" 2>&1)
run() { # name program-dir run-dir [flags...]: runs a program from .gpu-suite (its data paths are relative to it)
  local name=$1 prog=$2 dir=$3
  shift 3
  (cd $suite && timeout "${RUN_TIMEOUT:-300}" "$prog/prog" --rank 0 --world 1 --device 0 --nccl-id-file "$RUNS/$name.id" \
    --mode train --run-dir "$RUNS/$name" "$@" > "$OUT/$name.jsonl" 2> "$OUT/$name.err")
  local code=$?
  echo "$name exit $code"
  return $code
}
losses() { python3 -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"] == "step" and "grad_norm" in e: print(e["step"] + 1, repr(e["loss"]))
' "$1"; }
same_after() { # name-a name-b first-step: the losses of steps >= first-step in both runs, compared as text
  join <(losses "$OUT/$1.jsonl" | awk -v f=$3 '$1 >= f') <(losses "$OUT/$2.jsonl" | awk -v f=$3 '$1 >= f') > "$OUT/$1-vs-$2.txt"
  local n=$(wc -l < "$OUT/$1-vs-$2.txt") differ=$(awk '$2 != $3' "$OUT/$1-vs-$2.txt" | wc -l)
  echo "$1 vs $2 from step $3: $n steps compared, $differ differ"
}
mode=${1:-all}
# reshard after resume in the same $OUT and $RUNS uses that tiny run
if [ "$mode" = tiny ] || [ "$mode" = all ] || [ "$mode" = resume ] || [ "$mode" = signal ] ||
  { { [ "$mode" = reshard ] || [ "$mode" = inplace ]; } && [ ! -s "$OUT/tiny.jsonl" ]; }; then
  run tiny t-tiny-train-w1 "$OUT/tiny"
  grep -h "eval at\|trained\|checkpoint of" "$OUT/tiny.err" | tail -12
  # PyTorch rebuilds the model from the last checkpoint alone and evaluates the same windows (TORCH_EVAL=0: not)
  if [ "${TORCH_EVAL:-1}" != 0 ]; then
    want=$(python3 -c 'import json,sys; print([e for e in map(json.loads, open(sys.argv[1])) if e["event"] == "eval"][-1]["loss"])' "$OUT/tiny.jsonl")
    timeout 200 python3 bench/gpu/torch_reference.py "$RUNS/tiny/checkpoints/step-000600/model.safetensors" \
      --eval-tokens $suite/data/eval.bin --seq-len 1024 --windows 32 --expect-loss "$want" --device cuda 2>&1 | tee "$OUT/tiny-torch-eval.txt"
  fi
fi
if [ "$mode" = resume ] || [ "$mode" = all ]; then
  run resumed t-tiny-train-w1 "$OUT/resumed" --resume "$RUNS/tiny/checkpoints/step-000400"
  same_after tiny resumed 401
fi
if [ "$mode" = reshard ] || [ "$mode" = all ]; then
  # The step-400 checkpoint rewritten as 2 ranks would have written it (replicated, then ZeRO-1), resumed on
  # this one GPU: the program re-shards the state, so the losses must be the uninterrupted run's bits.
  for layout in replicated zero1; do
    rm -rf "$RUNS/step-400-$layout-w2"
    python3 bench/gpu/reshard_checkpoint.py "$RUNS/tiny/checkpoints/step-000400" "$RUNS/step-400-$layout-w2" \
      --world 2 --layout $layout --main-cu $suite/t-tiny-train-w1/main.cu
    run "from-$layout-w2" t-tiny-train-w1 "$OUT/from-$layout-w2" --resume "$RUNS/step-400-$layout-w2"
    grep -h "re-sharded" "$OUT/from-$layout-w2.err"
    same_after tiny "from-$layout-w2" 401
  done
fi
if [ "$mode" = inplace ] || [ "$mode" = all ]; then
  LASP_CHECKPOINT_COPY=none run inplace t-tiny-train-w1 "$OUT/inplace"
  grep -h "in place\|checkpoint of" "$OUT/inplace.err" | head -4
  same_after tiny inplace 1
  for f in model.safetensors config.json trainer_state.json optimizer-rank-0-of-1.safetensors; do
    cmp -s "$RUNS/tiny/checkpoints/step-000400/$f" "$RUNS/inplace/checkpoints/step-000400/$f" &&
      echo "step-400 $f: the same bytes as the background writer's" || echo "step-400 $f: DIFFERS"
  done
  run resumed-inplace t-tiny-train-w1 "$OUT/resumed-inplace" --resume "$RUNS/inplace/checkpoints/step-000400"
  same_after tiny resumed-inplace 401
  LASP_CHECKPOINT_COPY=pinned run bad-copy t-tiny-train-w1 "$OUT/bad-copy"
  grep -h "LASP_CHECKPOINT_COPY" "$OUT/bad-copy.err"
fi
if [ "$mode" = signal ] || [ "$mode" = all ]; then
  (cd $suite && exec t-tiny-train-w1/prog --rank 0 --world 1 --device 0 --nccl-id-file "$RUNS/stopped.id" --mode train \
    --run-dir "$RUNS/stopped" > "$OUT/stopped.jsonl" 2> "$OUT/stopped.err") &
  pid=$!
  # SIGTERM once step SIGNAL_AT is done (between two checkpoints): the run must finish its step, write a
  # checkpoint of it and exit 5
  for _ in $(seq 600); do
    grep -q "\"step\":$((${SIGNAL_AT:-300} - 1)),\"steps\"" "$OUT/stopped.jsonl" 2> /dev/null && break
    sleep 0.05
  done
  kill -TERM $pid
  wait $pid
  echo "stopped exit $? (5: stopped by a signal after a checkpoint)"
  last=$(ls -d "$RUNS"/stopped/checkpoints/step-* 2> /dev/null | tail -1)
  echo "its last checkpoint: $last"
  if [ -n "$last" ]; then
    run continued t-tiny-train-w1 "$OUT/continued" --resume "$last"
    same_after tiny continued $((10#${last##*step-} + 1))
  fi
fi
if [ "$mode" = multi ]; then
  [ -s "$OUT/tiny.jsonl" ] || run tiny t-tiny-train-w1 "$OUT/tiny"
  gpus=$(nvidia-smi -L | wc -l)
  for w in 2 4; do
    [ "$w" -le "$gpus" ] || { echo "tiny-w$w: needs $w GPUs"; continue; }
    rm -f "$RUNS/tiny-w$w.id"
    pids=()
    for ((r = 0; r < w; r++)); do
      (cd $suite && timeout "${RUN_TIMEOUT:-300}" t-tiny-train-w$w/prog --rank $r --world $w --device $r \
        --nccl-id-file "$RUNS/tiny-w$w.id" --mode train --run-dir "$RUNS/tiny-w$w" > "$OUT/tiny-w$w.r$r.jsonl" \
        2> "$OUT/tiny-w$w.r$r.err") &
      pids+=($!)
    done
    worst=0
    for p in "${pids[@]}"; do wait "$p" || { c=$?; [ $c -gt $worst ] && worst=$c; }; done
    echo "tiny-w$w exit $worst"
    cp "$OUT/tiny-w$w.r0.jsonl" "$OUT/tiny-w$w.jsonl"
    python3 - "$OUT/tiny.jsonl" "$OUT/tiny-w$w.jsonl" <<'PY'
import json, sys
def losses(path):
    return {e["step"] + 1: e["loss"] for e in map(json.loads, open(path)) if e["event"] == "step" and "grad_norm" in e}
def evals(path):
    return {e["step"]: e["loss"] for e in map(json.loads, open(path)) if e["event"] == "eval"}
a, b = losses(sys.argv[1]), losses(sys.argv[2])
common = sorted(set(a) & set(b))
rel = {s: abs(a[s] - b[s]) / abs(a[s]) for s in common}
for upto in (1, 10, 100, len(common)):
    within = [rel[s] for s in common if s <= upto]
    if within:
        print(f"  steps 1-{upto}: largest relative loss difference to 1 GPU {max(within):.2e}")
ea, eb = evals(sys.argv[1]), evals(sys.argv[2])
print("  eval losses (1 GPU / this):", ", ".join(f"{s}: {ea[s]:.4f} / {eb[s]:.4f}" for s in sorted(set(ea) & set(eb))))
PY
  done
  # A checkpoint of 2 GPUs (ZeRO-1 where the spec shards the optimizer) resumed on 1 GPU: the state re-sharded,
  # the losses of steps 401-600 near the 2-GPU run's (sums in another order: close, not the same bits).
  if [ -d "$RUNS/tiny-w2/checkpoints/step-000400" ]; then
    run from-w2 t-tiny-train-w1 "$OUT/from-w2" --resume "$RUNS/tiny-w2/checkpoints/step-000400"
    grep -h "re-sharded" "$OUT/from-w2.err"
    python3 - "$OUT/tiny-w2.jsonl" "$OUT/from-w2.jsonl" <<'PY'
import json, sys
def losses(path):
    return {e["step"] + 1: e["loss"] for e in map(json.loads, open(path)) if e["event"] == "step" and "grad_norm" in e}
a, b = losses(sys.argv[1]), losses(sys.argv[2])
common = sorted(s for s in set(a) & set(b) if s > 400)
print(f"  2-GPU checkpoint resumed on 1 GPU: steps {common[0]}-{common[-1]}, largest relative loss difference "
      f"{max(abs(a[s] - b[s]) / abs(a[s]) for s in common):.2e}" if common else "  no steps after 400 to compare")
PY
  fi
fi
if [ "$mode" = adamw ] || [ "$mode" = all ]; then
  nvcc -O3 -std=c++17 "-gencode=arch=compute_${ARCH:-90a},code=sm_${ARCH:-90a}" -Itemplates/runtime bench/gpu/adamw_check.cu \
    -o "$RUNS/adamw_check" && "$RUNS/adamw_check" "$RUNS/adamw.bin" && python3 bench/gpu/adamw_torch.py "$RUNS/adamw.bin" |
    tee "$OUT/adamw-vs-torch.txt"
fi
if [ "$mode" = 1b ] || [ "$mode" = all ]; then
  run linear-1b t-linear-1b-w1 "$OUT/linear-1b"
  tail -3 "$OUT/linear-1b.err"
  for preset in ${PRESETS:-linear-llama3-1b}; do
    [ "$preset" = none ] && continue
    # clipped to the global norm 1.0 before AdamW, as t-linear-1b-w1's step is (grad_clip's default)
    timeout "${TORCH_TIMEOUT:-420}" python3 bench/gpu/torch_model.py --preset "$preset" --tokens 16384 --steps "${TORCH_STEPS:-10}" \
      --warmup 3 --clip-grad-norm 1.0 --json "$OUT/torch-$preset.json" > "$OUT/torch-$preset.log" 2>&1
    echo "torch $preset exit $?"
    tail -n 6 "$OUT/torch-$preset.log"
  done
fi
if [ "$mode" = ckpt1b ]; then
  run linear-1b-ck t-linear-1b-ck-w1 "$OUT/linear-1b-ck"
  grep -h "checkpoint\|trained" "$OUT/linear-1b-ck.err"
  python3 - "$OUT/linear-1b-ck.jsonl" <<'PY'
import json, statistics, sys
events = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
steps = {e["step"] + 1: e["ms"] for e in events if e["event"] == "step"}
for e in events:
    if e["event"] == "checkpoint":
        print(f"checkpoint of step {e['step']}: {e['ms'] / 1e3:.1f} s in all, training paused {e.get('paused_ms', e['ms']) / 1e3:.2f} s"
              f" ({'background' if e.get('background') else 'waited for'})")
# The background write of step 60's checkpoint ends at the step after which its `checkpoint` event comes.
after, done = None, None
for e in events:
    if e["event"] == "step":
        after = e["step"] + 1
    if e["event"] == "checkpoint" and e.get("background"):
        done = after
def med(a, b):
    v = [steps[s] for s in range(a, b + 1) if s in steps]
    return f"{statistics.median(v):.2f} ms over {len(v)} steps" if v else "-"
print(f"steps 11-60 (before): {med(11, 60)}")
if done:
    print(f"steps 61-{done} (the write in flight): {med(61, done)}")
    print(f"steps {done + 1}-120 (after): {med(done + 1, 120)}")
PY
fi
ls -R "$RUNS" > "$OUT/run-folders.txt"
python3 - "$OUT" <<'PY'
import json, os, sys, statistics
out = sys.argv[1]
print(f"{'run':<12} {'steps':>6} {'first loss':>10} {'last loss':>10} {'eval loss':>10} {'median ms':>10} {'tokens/s':>10} {'MFU':>7} {'GiB':>6}")
for name in ["tiny", "resumed", "from-replicated-w2", "from-zero1-w2", "stopped", "continued", "linear-1b", "linear-1b-ck"]:
    path = os.path.join(out, name + ".jsonl")
    if not os.path.exists(path):
        continue
    steps, evals, gib = [], [], "-"
    for line in open(path):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e["event"] == "step":
            steps.append(e)
        if e["event"] == "eval":
            evals.append(e)
        if e["event"] == "trained" and "peak_mem_bytes" in e:
            gib = f"{e['peak_mem_bytes'] / 2**30:.1f}"
    if not steps:
        print(f"{name:<12} no steps")
        continue
    ms = statistics.median(s["ms"] for s in steps[1:] or steps)
    mfu = statistics.median((s["mfu"] or 0) for s in steps[1:] or steps)
    ev = f"{evals[-1]['loss']:.4f}" if evals else "-"
    print(f"{name:<12} {len(steps):>6} {steps[0]['loss']:>10.4f} {steps[-1]['loss']:>10.4f} {ev:>10} {ms:>10.2f} "
          f"{statistics.median(s['tokens_per_s'] for s in steps[1:] or steps):>10.0f} {100 * mfu:>6.1f}% {gib:>6}")
PY
