#!/usr/bin/env bash
# On a GPU machine: builds every program of .gpu-suite/ (written by make-suite.sh) and runs it, the verify
# programs on 1, 2 and 4 GPUs and the bench programs, one process per GPU. Logs under $OUT; a table last.
# kernels.cu is the same in every program but for its header comment, so it is compiled once.
set -uo pipefail
cd "$(dirname "$0")/../.."
export NCCL_NVLS_ENABLE=0
# Logs go to a scratch folder; $OUT (the device tool's return folder) gets the table and one tarball.
RESULTS=${OUT:-/tmp/lasp-results}
OUT=/tmp/lasp-suite
rm -rf "$OUT" && mkdir -p "$OUT" "$RESULTS"
ARCH=${ARCH:-90a}
NVCC=(nvcc -O3 -std=c++17 --use_fast_math -lineinfo "-gencode=arch=compute_${ARCH},code=sm_${ARCH}")
gpus=$(nvidia-smi -L | wc -l)
nvidia-smi -L > "$OUT/gpus.txt"
first=$(ls .gpu-suite | head -1)
start=$(date +%s)
"${NVCC[@]}" -I".gpu-suite/$first" -I".gpu-suite/$first/lasp" -c ".gpu-suite/$first/kernels.cu" -o /tmp/kernels.o \
  > "$OUT/build-kernels.log" 2>&1 || { tail -30 "$OUT/build-kernels.log"; exit 4; }
for d in .gpu-suite/*/; do
  name=$(basename "$d")
  # A one-GPU program builds without NCCL, as its build.sh does (lasp/nccl_one_rank.cuh).
  define=() link=(-lnccl)
  grep -q -- "-DLASP_WITHOUT_NCCL" "$d/build.sh" 2> /dev/null && define=(-DLASP_WITHOUT_NCCL) link=()
  ( "${NVCC[@]}" "${define[@]}" -I"$d" -I"$d/lasp" -c "$d/main.cu" -o "/tmp/$name.o" &&
    "${NVCC[@]}" "/tmp/$name.o" /tmp/kernels.o "${link[@]}" -lcublas -o "$d/lasp_program" ) > "$OUT/build-$name.log" 2>&1 &
done
wait
echo "built in $(( $(date +%s) - start )) s" | tee "$OUT/build-time.txt"

run_program() { # dir world -> writes $OUT/<name>.r<rank>.{out,err}, returns the worst exit code
  local dir=$1 world=$2 name worst=0 pids=()
  name=$(basename "$dir")
  if [ ! -x "$dir/lasp_program" ]; then echo "$name: no binary (see build-$name.log)"; return 4; fi
  rm -f /tmp/lasp-nccl.id
  for ((r = 0; r < world; r++)); do
    timeout "${RANK_TIMEOUT:-120}" "$dir/lasp_program" --rank $r --world "$world" --device $r --nccl-id-file /tmp/lasp-nccl.id \
      > "$OUT/$name.r$r.out" 2> "$OUT/$name.r$r.err" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || { c=$?; [ $c -gt $worst ] && worst=$c; }; done
  return $worst
}

for d in .gpu-suite/${SUITE_FILTER:-}*/; do
  name=$(basename "$d")
  world=${name##*-w}
  if [ "$world" -gt "$gpus" ]; then echo "$name: needs $world GPUs, have $gpus" >> "$OUT/skipped.txt"; continue; fi
  run_program "$d" "$world"
  echo "$name exit $?" >> "$OUT/exits.txt"
done

# lasp run itself, end to end on this machine (needs .device/ and .device-nm/ carried; see bench/gpu/README.md)
if [ -z "${SUITE_FILTER:-}" ] && [ -f .device/env.sh ] && [ -d .device-nm/node_modules ]; then
  source .device/env.sh
  [ -e node_modules ] || ln -s .device-nm/node_modules node_modules
  timeout 400 node bin/lasp.js run examples/tiny-hybrid.lasp > "$OUT/lasp-run-verify.txt" 2>&1
  echo "lasp run tiny-hybrid verify exit $?" >> "$OUT/lasp-run-verify.txt"
  timeout 200 node bin/lasp.js run examples/tiny-linear.lasp --mode bench --steps 10 > "$OUT/lasp-run-bench.txt" 2>&1
  echo "lasp run tiny-linear bench exit $?" >> "$OUT/lasp-run-bench.txt"
  tail -n 4 "$OUT/lasp-run-verify.txt" "$OUT/lasp-run-bench.txt"
fi

python3 bench/gpu/summarize.py "$OUT"
cp "$OUT/table.txt" "$RESULTS/" 2>/dev/null
tar czf "$RESULTS/suite-logs.tgz" -C "$OUT" .
