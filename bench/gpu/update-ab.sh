#!/usr/bin/env bash
# Train mode's AdamW update beside the next step's forward (runtime/optimizer.cuh, the default on one GPU)
# against the update in the step (LASP_OPTIMIZER=serial), the same binary, in one call on the GPU machine.
#   here:   programs built into $SUITE (default .gpu-update) with their token files in $SUITE/data:
#           bash bench/gpu/make-suite.sh model 1 && bash bench/gpu/make-train-data.sh, then `lasp compile` of
#           bench/gpu/specs/t-tiny-train-w1.lasp and t-linear-1b-w1.lasp into $SUITE/<name> and each one's
#           build.sh line (nvcc here with bench/gpu/nvlibs.sh's -I/-L) into $SUITE/<name>/prog
#   there:  bash bench/gpu/update-ab.sh            (from the repository root; TORCH=1 adds PyTorch's step)
# 1. Exact: t-tiny-train-w1 (examples/tiny-train.lasp) for its 600 steps both ways; every step's loss must be
#    the same bits (the same arithmetic per element, only the order on the GPU moves).
# 2. Speed: t-linear-1b-w1 for $STEPS steps (default 40), serial and overlapped alternately, $ROUNDS rounds
#    (default 2); each run is killed once its last step is reported (the end's 22 GB checkpoint is not the
#    step). Median step time of steps 6 to the last.
#    Then PyTorch's reference model on the overlapped run's last checkpoint (its loss on the run's evaluation
#    windows) and the AdamW kernel against torch.optim.AdamW ($SUITE/adamw_check: bench/gpu/adamw_check.cu's
#    nvcc line, built here).
# 3. TORCH=1: bench/gpu/torch_model.py's Linear-Llama3-1B step with fused AdamW, clipped as lasp's (needs fla:
#    the wheels of .device/wheels installed as run-train.sh's header says).
# Results under $OUT: each run's events and stderr, a table last.
set -uo pipefail
cd "$(dirname "$0")/../.."
export NCCL_NVLS_ENABLE=0
SUITE=${SUITE:-.gpu-update}
OUT=${OUT:-/tmp/lasp-update-ab}
RUNS=${RUNS:-/tmp/lasp-update-runs}  # run folders (checkpoints) stay out of $OUT
STEPS=${STEPS:-40}
ROUNDS=${ROUNDS:-2}
mkdir -p "$OUT"
rm -rf "$RUNS" && mkdir -p "$RUNS"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"

losses() { python3 -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"] == "step" and "grad_norm" in e: print(e["step"] + 1, repr(e["loss"]))
' "$1"; }

# name program how [flags...]: one run from $SUITE (its data paths are relative to it); how = serial|auto
run() {
  local name=$1 prog=$2 how=$3
  shift 3
  (cd "$SUITE" && LASP_OPTIMIZER=$how timeout "${RUN_TIMEOUT:-200}" "$prog/prog" --rank 0 --world 1 --device 0 \
    --nccl-id-file "$RUNS/$name.id" --mode train --run-dir "$RUNS/$name" "$@" > "$OUT/$name.jsonl" 2> "$OUT/$name.err")
  echo "$name exit $?"
}

# 1. exactness
run tiny-serial t-tiny-train-w1 serial
run tiny-auto t-tiny-train-w1 auto
grep -h '"event":"optimizer"' "$OUT/tiny-auto.jsonl" "$OUT/tiny-serial.jsonl"
join <(losses "$OUT/tiny-serial.jsonl") <(losses "$OUT/tiny-auto.jsonl") > "$OUT/tiny-serial-vs-auto.txt"
echo "tiny, serial vs overlapped: $(wc -l < "$OUT/tiny-serial-vs-auto.txt") steps compared, $(awk '$2 != $3' "$OUT/tiny-serial-vs-auto.txt" | wc -l) differ"
# Issue 17's two checks against PyTorch: its reference model rebuilt from the overlapped run's last checkpoint
# alone gets the run's last evaluation loss on the same windows; the AdamW kernel's steps equal
# torch.optim.AdamW's on the same numbers ($SUITE/adamw_check, built here from bench/gpu/adamw_check.cu).
last=$(ls -d "$RUNS"/tiny-auto/checkpoints/step-* 2> /dev/null | tail -1)
want=$(python3 -c 'import json,sys; print([e for e in map(json.loads, open(sys.argv[1])) if e["event"] == "eval"][-1]["loss"])' "$OUT/tiny-auto.jsonl" 2> /dev/null)
if [ -n "$last" ] && [ -n "$want" ]; then
  timeout 200 python3 bench/gpu/torch_reference.py "$last/model.safetensors" --eval-tokens "$SUITE/data/eval.bin" \
    --seq-len 1024 --windows 32 --expect-loss "$want" --device cuda > "$OUT/tiny-torch-eval.txt" 2>&1
  echo "PyTorch on $(basename "$last") (expect loss $want): exit $?"
  tail -3 "$OUT/tiny-torch-eval.txt"
fi
if [ -x "$SUITE/adamw_check" ]; then
  "$SUITE/adamw_check" "$RUNS/adamw.bin" > "$OUT/adamw-check.txt" 2>&1 &&
    python3 bench/gpu/adamw_torch.py "$RUNS/adamw.bin" --device cuda > "$OUT/adamw-vs-torch.txt" 2>&1
  echo "AdamW vs torch.optim.AdamW: exit $?"
  tail -4 "$OUT/adamw-vs-torch.txt"
fi
rm -rf "$RUNS"/tiny-* "$RUNS/adamw.bin"

# 2. speed: a run is stopped once its last step is in the events
timed() { # name how
  local name=$1 how=$2
  (cd "$SUITE" && exec env LASP_OPTIMIZER="$how" t-linear-1b-w1/prog --rank 0 --world 1 --device 0 \
    --nccl-id-file "$RUNS/$name.id" --mode train --steps "$STEPS" --run-dir "$RUNS/$name" \
    > "$OUT/$name.jsonl" 2> "$OUT/$name.err") &
  local pid=$! last=$((STEPS - 1))
  for _ in $(seq 1800); do
    grep -q "\"step\":$last,\"steps\"" "$OUT/$name.jsonl" 2> /dev/null && break
    kill -0 $pid 2> /dev/null || break
    sleep 0.1
  done
  kill -9 $pid 2> /dev/null
  wait $pid 2> /dev/null
  rm -rf "$RUNS/$name"
}
for r in $(seq "$ROUNDS"); do
  timed "1b-serial-$r" serial
  timed "1b-auto-$r" auto
done

if [ "${TORCH:-0}" = 1 ]; then
  timeout "${TORCH_TIMEOUT:-300}" python3 bench/gpu/torch_model.py --preset linear-llama3-1b --tokens 16384 --steps 10 \
    --warmup 3 --clip-grad-norm 1.0 --json "$OUT/torch.json" > "$OUT/torch.log" 2>&1
  echo "torch exit $?"
  tail -n 6 "$OUT/torch.log"
fi

python3 - "$OUT" "$ROUNDS" <<'PY'
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def steps(name):
    path = os.path.join(out, name + ".jsonl")
    if not os.path.exists(path):
        return []
    rows = []
    for line in open(path):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == "step":
            rows.append(e)
    return rows
print(f"{'run':<14} {'steps':>5} {'median ms':>10} {'tokens/s':>9} {'MFU':>6} {'last loss':>18}")
medians = {"serial": [], "auto": []}
for r in range(1, rounds + 1):
    for how in ("serial", "auto"):
        name = f"1b-{how}-{r}"
        s = steps(name)
        if len(s) < 6:
            print(f"{name:<14} {len(s):>5} (too few steps)")
            continue
        ms = statistics.median(x["ms"] for x in s[5:])
        medians[how].append(ms)
        mfu = statistics.median((x["mfu"] or 0) for x in s[5:])
        print(f"{name:<14} {len(s):>5} {ms:>10.2f} {16384 / ms * 1e3:>9.0f} {100 * mfu:>5.1f}% {s[-1]['loss']!r:>18}")
if medians["serial"] and medians["auto"]:
    a, b = statistics.median(medians["serial"]), statistics.median(medians["auto"])
    print(f"serial {a:.2f} ms, overlapped {b:.2f} ms: {a / b:.3f}x")
torch = os.path.join(out, "torch.json")
if os.path.exists(torch) and medians["auto"]:
    t = json.load(open(torch))
    ms = t.get("step_ms")
    if ms:
        print(f"PyTorch step with fused AdamW {ms:.2f} ms: lasp overlapped {ms / statistics.median(medians['auto']):.3f}x")
PY
