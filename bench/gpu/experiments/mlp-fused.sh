#!/usr/bin/env bash
# The A/B of mlp-fused.patch (SwiGLU in the epilogues of lasp's own MLP GEMMs: mlp_gemm_coop, or mlp_gemm_pingpong
# with PP_CLUSTER 1 or 2): two verify programs of each patched build, then Linear-Llama3-1B's train step, base and
# patched builds alternating. Programs are generated and patched here and built there (sources travel, not
# binaries: three arms of binaries would pass the device tool's 64 MiB).
#   here:  bash bench/gpu/experiments/mlp-fused.sh prepare     # .gpu-mlp/{base,coop,pp}; CHECK=1 also compiles
#                                                              # each arm's 1B program here (/tmp/nvroot)
#   there: bash bench/gpu/experiments/mlp-fused.sh run         # carry .gpu-mlp .gpu-suite/kernels.o .gpu-suite/data
set -uo pipefail
cd "$(dirname "$0")/../../.."
exp=bench/gpu/experiments
arms=(base coop pp)
verify=(v-hyb-1b-w1 v-lasp2-causal-d128-w1)
case "${1:-}" in
prepare)
  set -e
  rm -rf .gpu-mlp
  for arm in "${arms[@]}"; do
    mkdir -p ".gpu-mlp/$arm"
    cp bench/gpu/run-prebuilt.sh bench/gpu/summarize.py bench/gpu/rank-device-swap.sh ".gpu-mlp/$arm/"
    progs=(t-linear-1b-w1)
    [ "$arm" = base ] || progs+=("${verify[@]}")
    for p in "${progs[@]}"; do
      node bin/lasp.js compile "bench/gpu/specs/$p.lasp" -o ".gpu-mlp/$arm/$p" > /dev/null
      [ "$arm" = base ] && continue
      sed "s|templates/runtime/|$p/lasp/|g" $exp/mlp-fused.patch | patch -s -d ".gpu-mlp/$arm" -p1
      if [ "$arm" = coop ]; then
        cp $exp/mlp_gemm_coop/coop_gemm.cuh ".gpu-mlp/$arm/$p/lasp/"
      else
        cp $exp/mlp_gemm_pingpong/mlp_gemm.cuh ".gpu-mlp/$arm/$p/lasp/"
        sed -i "s|^#pragma once|#pragma once\n#define LASP_MLP_PINGPONG ${PP_CLUSTER:-1}|" ".gpu-mlp/$arm/$p/lasp/mlp_fused.cuh"
      fi
    done
  done
  if [ "${CHECK:-0}" = 1 ]; then
    for arm in "${arms[@]}"; do
      d=.gpu-mlp/$arm/t-linear-1b-w1
      nvcc -O3 -std=c++17 --use_fast_math -gencode=arch=compute_90a,code=sm_90a -I/tmp/nvroot/include -I$d \
        -I$d/lasp -c $d/main.cu -o /tmp/mlp-fused-$arm.o && echo "$arm: compiles"
    done
  fi
  du -sh .gpu-mlp
  ;;
run)
  export NCCL_NVLS_ENABLE=0
  OUT=${OUT:-/tmp/lasp-mlp-fused}
  mkdir -p "$OUT"
  for arm in "${arms[@]}"; do
    cp .gpu-suite/kernels.o ".gpu-mlp/$arm/"
    (cd ".gpu-mlp/$arm" && SUITE_FILTER=none OUT="$OUT/build-$arm" bash run-prebuilt.sh > "$OUT/build-$arm.log" 2>&1) &
  done
  wait
  for arm in coop pp; do
    (cd ".gpu-mlp/$arm" && SUITE_FILTER='v-*' OUT="$OUT/verify-$arm" timeout 120 bash run-prebuilt.sh 2>&1 | grep " exit " | sed "s/^/$arm: /")
  done
  for round in $(seq "${ROUNDS:-2}"); do
    for arm in "${arms[@]}"; do
      (cd .gpu-suite && timeout 120 "../.gpu-mlp/$arm/t-linear-1b-w1/prog" --rank 0 --world 1 --device 0 --mode train \
        --steps "${STEPS:-25}" --run-dir "/tmp/lasp-mlp-runs/$arm.$round" > "$OUT/$arm.$round.jsonl" 2> "$OUT/$arm.$round.err")
      echo "$arm round $round exit $? ($(grep -h mlp_fused "$OUT/$arm.$round.err" | head -1))"
    done
  done
  python3 - "$OUT" "${arms[@]}" <<'PY'
import glob, json, statistics, sys
out, arms = sys.argv[1], sys.argv[2:]
def steps(path):
    return [e for e in map(json.loads, open(path)) if e["event"] == "step"]
base = None
print(f"{'arm':6} {'rounds (ms, median of steps 6-)':34} {'median':>8} {'vs base':>8}  losses of steps 1-3")
for arm in arms:
    runs = sorted(glob.glob(f"{out}/{arm}.*.jsonl"))
    meds = [statistics.median([e["ms"] for e in steps(p) if e["step"] >= 5] or [float("nan")]) for p in runs]
    m = statistics.median(meds)
    base = m if arm == "base" else base
    first = [f"{e['loss']:.6f}" for e in steps(runs[0])[:3]] if runs else []
    print(f"{arm:6} {' '.join(f'{v:.2f}' for v in meds):34} {m:8.2f} {base / m if base else float('nan'):8.3f}  {' '.join(first)}")
PY
  ;;
*)
  echo "usage: mlp-fused.sh prepare|run" >&2
  exit 2
  ;;
esac
