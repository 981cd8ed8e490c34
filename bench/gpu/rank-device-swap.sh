#!/usr/bin/env bash
# Is a rank's slowness the rank's work or its GPU's? Runs one prebuilt program of .gpu-suite/ (argument 1)
# on all its ranks twice: rank r on GPU r, then rank r on GPU (r + 1) mod W; prints each rank's attention
# computation time per layer kind (the `compute_only_ms` of bench's phase events) with its GPU, and samples
# every GPU's clock, power, temperature and throttle reasons meanwhile ($OUT/gpu-samples.csv).
set -uo pipefail
cd "$(dirname "$0")"
export NCCL_NVLS_ENABLE=0
OUT=${OUT:-/tmp/lasp-swap}
mkdir -p "$OUT"
d=$1
world=${d##*-w}
[ -x "$d/prog" ] || nvcc -O3 -std=c++17 --use_fast_math -gencode=arch=compute_90a,code=sm_90a -I"$d" -I"$d/lasp" \
  "$d/main.cu" kernels.o -lnccl -lcublas -o "$d/prog" || exit 4
nvidia-smi --query-gpu=timestamp,index,clocks.sm,power.draw,temperature.gpu,clocks_throttle_reasons.active \
  --format=csv -lms 500 > "$OUT/gpu-samples.csv" &
sampler=$!
for shift in 0 1; do
  rm -f /tmp/lasp-swap.id
  pids=()
  for ((r = 0; r < world; r++)); do
    dev=$(( (r + shift) % world ))
    "$d/prog" --rank $r --world "$world" --device $dev --nccl-id-file /tmp/lasp-swap.id --json \
      > "$OUT/$d.s$shift.r$r.out" 2> /dev/null &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  for ((r = 0; r < world; r++)); do
    dev=$(( (r + shift) % world ))
    python3 -c "
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get('event') == 'phase' and e['name'].endswith('.comm'):
        print(f\"rank {sys.argv[2]} on GPU {sys.argv[3]}: {e['name'][:-5]} computation {e['compute_only_ms']:.3f} ms\")
    if e.get('event') == 'summary':
        print(f\"rank {sys.argv[2]} on GPU {sys.argv[3]}: step {e['median_ms']:.2f} ms\")
" "$OUT/$d.s$shift.r$r.out" $r $dev
  done
done
kill $sampler
python3 - "$OUT/gpu-samples.csv" <<'PY'
import csv, sys, collections
rows = list(csv.reader(open(sys.argv[1])))[1:]
by = collections.defaultdict(list)
for r in rows:
    if len(r) >= 6: by[r[1].strip()].append(r)
for gpu, rs in sorted(by.items()):
    clk = [float(r[2].split()[0]) for r in rs]; pw = [float(r[3].split()[0]) for r in rs]; t = [float(r[4]) for r in rs]
    reasons = collections.Counter(r[5].strip() for r in rs)
    print(f"GPU {gpu}: SM clock min {min(clk):.0f} median {sorted(clk)[len(clk)//2]:.0f} MHz, power max {max(pw):.0f} W, "
          f"temperature max {max(t):.0f} C, throttle reasons {dict(reasons.most_common(3))}")
PY
