#!/usr/bin/env bash
# `lasp calibrate` on the GPU machine (issue 20), and its profile's predictions beside bench/results.
#
# Here first (Node for the GPU machine, lasp's runtime dependencies, the built CLI; bench/gpu/README.md):
#   npm ci && npm run build && ../shared/tools/device-node.sh
#   mkdir -p .device-nm && cp package.json package-lock.json .device-nm/ && (cd .device-nm && npm ci --omit=dev --ignore-scripts)
# There, with the device tool carrying .device, .device-nm and dist, on a machine of every GPU of one node
# (4 or 8 H100s: the collectives need two or more; one GPU measures the rest):
#   bash bench/gpu/run-calibrate.sh calibrate
# It writes $OUT/<gpu>-<N>gpu.calibrated.json (the profile), calibrate.log (the progress lines and the summary),
# dry-run.txt (what was built and run) and compare.txt (below). The build takes most of the few minutes.
# Afterwards, here: commit the profile under bench/results/ (a dated name, with a .md saying the machine and
# the command, as every result there), and compare its predictions with the measured steps:
#   bash bench/gpu/run-calibrate.sh compare bench/results/<date>-calibrate-h100x4.json
# which prints, per spec of bench/gpu/specs/ measured in bench/results, the step `lasp plan` predicts with the
# shipped H100 profile and with the calibrated one, beside the measurement (docs/PLAN.md's agreement tables).
set -uo pipefail
cd "$(dirname "$0")/../.."
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
OUT=${OUT:-/tmp/lasp-calibrate}
mkdir -p "$OUT"

lasp() { node bin/lasp.js "$@"; }

# spec | measured step ms (median rank) | where it was measured | what the measured program ran: `model` (the whole
# model) or `blocks` (the attention blocks alone: the programs of 2026-11-26, before issue 16 added the embedding,
# norms, MLP and LM head; compared with the prediction's attention parts)
MEASURED="m-linear-1b-w1 225.6 2026-12-05-whole-model-h100.md model
m-hybrid-1b-w1 263.1 2026-12-05-whole-model-h100.md model
b-lasp2-w1 13.45 2026-11-26-weak-scaling-session5-h100x4.md blocks
b-lasp2-w2 13.915 2026-11-26-weak-scaling-session5-h100x4.md blocks
b-lasp2-w4 14.07 2026-11-26-weak-scaling-session5-h100x4.md blocks
b-lasp1-w1 13.52 2026-11-26-weak-scaling-session5-h100x4.md blocks
b-lasp1-w2 15.21 2026-11-26-weak-scaling-session5-h100x4.md blocks
b-lasp1-w4 15.94 2026-11-26-weak-scaling-session5-h100x4.md blocks
b-hyb-ag-zz-w1 40.46 2026-11-26-weak-scaling-session5-h100x4.md blocks
b-hyb-uly-zz-w2 58.88 2026-11-26-weak-scaling-session5-h100x4.md blocks
b-hyb-uly-zz-w4 89.22 2026-11-26-weak-scaling-session5-h100x4.md blocks
b-hyb-ring-zz-w2 70.37 2026-11-26-weak-scaling-session5-h100x4.md blocks
b-hyb-ring-zz-w4 117.71 2026-11-26-weak-scaling-session5-h100x4.md blocks"

# The spec's predicted step in ms from `lasp inspect --json` (the numbers `lasp plan` ranks by): the whole step
# (`model`), or its attention parts (`blocks`: less the embedding, norms, MLP and LM head).
predicted_ms() { # spec machine model|blocks
  lasp inspect "bench/gpu/specs/$1.lasp" --machine "$2" --json 2>/dev/null |
    node -e 'let t="";process.stdin.on("data",d=>t+=d).on("end",()=>{const s=JSON.parse(t).step,p=s.parts;
      const rest=process.argv[1]==="blocks"?p.embedding+p.norms+p.mlp+p.lm_head_loss:0;
      console.log(((s.total-rest)*1e3).toFixed(2))})' "$3"
}

compare() { # profile
  local profile=$1
  printf '%-18s %-7s %12s %14s %10s  %s\n' spec ran "shipped ms" "calibrated ms" "measured" "measured in bench/results/"
  while read -r spec measured source ran; do
    local shipped calibrated
    shipped=$(predicted_ms "$spec" h100-sxm-80gb "$ran")
    calibrated=$(predicted_ms "$spec" "$profile" "$ran")
    printf '%-18s %-7s %12s %14s %10s  %s\n' "$spec" "$ran" "$shipped" "$calibrated" "$measured" "$source"
  done <<< "$MEASURED"
}

case "${1:-calibrate}" in
  calibrate)
    [ -f .device/env.sh ] && source .device/env.sh
    [ -e node_modules ] || ln -s .device-nm/node_modules node_modules
    { date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; nvcc --version | tail -2; } \
      | tee "$OUT/env.txt"
    gpus=$(nvidia-smi -L | wc -l)
    name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr 'A-Z ' 'a-z-')
    profile="$OUT/$name-${gpus}gpu.calibrated.json"
    lasp calibrate --dry-run --out "$profile" > "$OUT/dry-run.txt" 2>&1
    # The first build compiles lasp's attention kernels at -O3 (about a minute).
    timeout 580 node bin/lasp.js calibrate --out "$profile" 2>&1 | tee "$OUT/calibrate.log"
    status=${PIPESTATUS[0]}
    echo "lasp calibrate exit $status" | tee -a "$OUT/calibrate.log"
    [ "$status" -eq 0 ] && compare "$profile" | tee "$OUT/compare.txt"
    exit "$status"
    ;;
  compare)
    [ $# -eq 2 ] || { echo "usage: $0 compare PROFILE.json" >&2; exit 2; }
    compare "$2"
    ;;
  *)
    echo "usage: $0 [calibrate | compare PROFILE.json]" >&2
    exit 2
    ;;
esac
