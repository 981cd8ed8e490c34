#!/usr/bin/env bash
# On the GPU machine, from .gpu-suite/ as prebuild.sh left it: compiles every program's main.cu against the
# prebuilt kernels.o (all at once; programs already built are kept), then runs each program whose name
# matches SUITE_FILTER (a shell pattern, default every one) on the GPU count its name ends with (-wN), verify
# programs first; one line per program as it ends, the table (summarize.py) last.
# Results: $OUT/table.txt, $OUT/table.json, $OUT/logs.tgz. The environment passes through to every rank,
# so `NCCL_MAX_CTAS=4 OUT=$OUT/cta4 SUITE_FILTER='b-lasp2-*' bash run-prebuilt.sh` runs a variant.
set -uo pipefail
cd "$(dirname "$0")"
export NCCL_NVLS_ENABLE=0
OUT=${OUT:-/tmp/lasp-prebuilt}
LOGS=$(mktemp -d)
mkdir -p "$OUT"
nvidia-smi -L
gpus=$(nvidia-smi -L | wc -l)
# kernels.o built with cuDNN (prebuild.sh with CUDNN_INCLUDE) needs the machine's libcudnn.
libs=(-lcublas)
# (grep without -q reads all of nm's output: with -q, nm dies of SIGPIPE and pipefail makes the test false)
if nm kernels.o 2>/dev/null | grep "U cudnnBackendCreateDescriptor" > /dev/null; then
  libs+=(-L/usr/lib/x86_64-linux-gnu -lcudnn)
  echo "kernels.o uses cuDNN: linking $(ls /usr/lib/x86_64-linux-gnu/libcudnn.so.* 2>/dev/null | head -1)"
fi
for d in */; do
  d=${d%/}
  [ -f "$d/main.cu" ] || continue  # data/, not a program
  [ -x "$d/prog" ] && continue
  # A one-GPU program builds without NCCL, as its build.sh does (lasp/nccl_one_rank.cuh).
  nccl=(-lnccl)
  grep -q -- "-DLASP_WITHOUT_NCCL" "$d/build.sh" && nccl=(-DLASP_WITHOUT_NCCL)
  nvcc -O3 -std=c++17 --use_fast_math -gencode=arch=compute_${ARCH:-90a},code=sm_${ARCH:-90a} -I"$d" -I"$d/lasp" \
    "$d/main.cu" kernels.o "${nccl[@]}" "${libs[@]}" -Xcompiler -pthread -ldl -o "$d/prog" > "$LOGS/build-$d.log" 2>&1 &
done
wait
for d in $(ls -d v-*/ b-*/ s-*/ m-*/ 2>/dev/null); do
  d=${d%/}
  case "$d" in ${SUITE_FILTER:-*}) ;; *) continue ;; esac
  world=${d##*-w}
  [ "$world" -le "$gpus" ] || { echo "$d: needs $world GPUs"; continue; }
  [ -x "$d/prog" ] || { echo "$d: build failed"; tail -3 "$LOGS/build-$d.log"; echo "$d exit 4" >> "$LOGS/exits.txt"; continue; }
  rm -f /tmp/lasp-prebuilt.id
  pids=()
  for ((r = 0; r < world; r++)); do
    timeout "${RANK_TIMEOUT:-120}" "$d/prog" --rank $r --world "$world" --device $r --nccl-id-file /tmp/lasp-prebuilt.id \
      > "$LOGS/$d.r$r.out" 2> "$LOGS/$d.r$r.err" &
    pids+=($!)
  done
  worst=0
  for p in "${pids[@]}"; do wait "$p" || { c=$?; [ $c -gt $worst ] && worst=$c; }; done
  echo "$d exit $worst" >> "$LOGS/exits.txt"
  echo "$d exit $worst $(grep -h 'verify \|median step' "$LOGS/$d.r0.err" | tr '\n' ' ' | cut -c1-200)"
done
python3 summarize.py "$LOGS" > /dev/null && cp "$LOGS/table.txt" "$LOGS/table.json" "$OUT/"
(cd "$LOGS" && tar czf "$OUT/logs.tgz" ./*)
cat "$OUT/table.txt"
