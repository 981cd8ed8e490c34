#!/usr/bin/env bash
# On the GPU machine, from .gpu-suite/ as prebuild.sh left it: compiles every program's main.cu against the
# prebuilt kernels.o (all at once), then runs each program on the GPU count its name ends with (-wN), verify
# programs first; one line per program as it ends. Logs: $OUT/logs.tgz.
set -uo pipefail
cd "$(dirname "$0")"
export NCCL_NVLS_ENABLE=0
OUT=${OUT:-/tmp/lasp-prebuilt}
mkdir -p "$OUT"
nvidia-smi -L
gpus=$(nvidia-smi -L | wc -l)
for d in */; do
  d=${d%/}
  nvcc -O3 -std=c++17 --use_fast_math -gencode=arch=compute_${ARCH:-90a},code=sm_${ARCH:-90a} -I"$d" -I"$d/lasp" \
    "$d/main.cu" kernels.o -lnccl -lcublas -o "$d/prog" > "$OUT/build-$d.log" 2>&1 &
done
wait
for d in $(ls -d v-*/ b-*/ 2>/dev/null); do
  d=${d%/}
  world=${d##*-w}
  [ "$world" -le "$gpus" ] || { echo "$d: needs $world GPUs"; continue; }
  [ -x "$d/prog" ] || { echo "$d: build failed"; tail -3 "$OUT/build-$d.log"; continue; }
  rm -f /tmp/lasp-prebuilt.id
  pids=()
  for ((r = 0; r < world; r++)); do
    timeout "${RANK_TIMEOUT:-120}" "$d/prog" --rank $r --world "$world" --device $r --nccl-id-file /tmp/lasp-prebuilt.id \
      > "$OUT/$d.r$r.out" 2> "$OUT/$d.r$r.err" &
    pids+=($!)
  done
  worst=0
  for p in "${pids[@]}"; do wait "$p" || { c=$?; [ $c -gt $worst ] && worst=$c; }; done
  echo "$d exit $worst $(grep -h 'verify \|median step\|layer kind' "$OUT/$d.r0.err" | tr '\n' ' ' | cut -c1-400)"
done
cd "$OUT" && tar czf logs.tgz ./*.out ./*.err ./build-*.log && rm -f ./*.out ./*.err ./build-*.log
