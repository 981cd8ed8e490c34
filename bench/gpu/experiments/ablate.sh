#!/usr/bin/env bash
# What the 1B train step would gain if a pass were fused away (issue 17): the step timed with some of its
# memory-bound passes skipped (wrong numbers, the same GEMMs), to see what the power-bound step gives back for
# each before writing the fusion. An experiment: never a shipped path.
#   here:   bash bench/gpu/experiments/ablate.sh prepare   (t-linear-1b-w1 into .gpu-ablate, patched, built
#           against .gpu-suite/kernels.o and /tmp/nvroot)
#   there:  bash bench/gpu/experiments/ablate.sh run       (carry .gpu-ablate and .gpu-suite/data)
# Passes (LASP_ABLATE, comma-separated): swiglu_fwd, swiglu_bwd, norms (the backward's two recomputed block
# norms per layer), grad_norm (the gradient norm's pass: the norm taken as 1).
set -uo pipefail
cd "$(dirname "$0")/../../.."
dir=.gpu-ablate
case "${1:-}" in
  prepare)
    rm -rf $dir && mkdir -p $dir
    node bin/lasp.js compile bench/gpu/specs/t-linear-1b-w1.lasp -o $dir/t-linear-1b-w1 > /dev/null || exit 1
    python3 - $dir/t-linear-1b-w1/lasp <<'PY'
import sys
d = sys.argv[1]
def patch(name, pairs):
    p = f"{d}/{name}"
    s = open(p).read()
    for old, new in pairs:
        assert s.count(old) >= 1, (name, old)
        s = s.replace(old, new)
    open(p, "w").write(s)
gate = '''#ifndef LASP_ABLATED
#define LASP_ABLATED
inline bool ablated(const char* pass) {
  const char* v = std::getenv("LASP_ABLATE");
  return v != nullptr && (std::strstr(v, pass) != nullptr || std::strcmp(v, "all") == 0);
}
#endif
'''
patch("layer.cuh", [
    ("namespace lasp {\n", "#include <cstring>\nnamespace lasp {\n" + gate, ),
    ("  swiglu_forward(gate_up, gate_up + ffn, kFfnWidth, h, rows, ffn, st.ctx.compute);",
     "  if (!ablated(\"swiglu_fwd\")) swiglu_forward(gate_up, gate_up + ffn, kFfnWidth, h, rows, ffn, st.ctx.compute);"),
    ("  swiglu_backward(gate_up, gate_up + ffn, st.ffn, gate_up, gate_up + ffn, kFfnWidth, rows, ffn, s);",
     "  if (!ablated(\"swiglu_bwd\")) swiglu_backward(gate_up, gate_up + ffn, st.ffn, gate_up, gate_up + ffn, kFfnWidth, rows, ffn, s);"),
    ("  if (!program::kRecomputeMlp) {\n    part(st, Part::kNorms);\n    block_norm(",
     "  if (!program::kRecomputeMlp && !ablated(\"norms\")) {\n    part(st, Part::kNorms);\n    block_norm("),
    ("  block_norm(st, w.attn_norm, w.attn_norm_bias, layer.s.attn_rstd, layer.s.attn_mean, input, nullptr, nullptr);\n  part(st, Part::kProjections);",
     "  if (!ablated(\"norms\")) block_norm(st, w.attn_norm, w.attn_norm_bias, layer.s.attn_rstd, layer.s.attn_mean, input, nullptr, nullptr);\n  part(st, Part::kProjections);"),
])
patch("optimizer.cuh", [
    ("namespace lasp {\n", "#include <cstring>\nnamespace lasp {\n" + gate, ),
    ("    grad_norm_squared(step_gradients(st, o, sl), sl.elements, o.norms + k, o.scratch, o.scratch_bytes, s);",
     "    static const double one = 1.0 / 4096;\n"
     "    if (ablated(\"grad_norm\")) CUDA_CHECK(cudaMemcpyAsync(o.norms + k, &one, sizeof(double), cudaMemcpyHostToDevice, s));\n"
     "    else grad_norm_squared(step_gradients(st, o, sl), sl.elements, o.norms + k, o.scratch, o.scratch_bytes, s);"),
])
PY
    cp .gpu-suite/kernels.o $dir/
    (cd $dir && nvcc -O3 -std=c++17 --use_fast_math -gencode=arch=compute_90a,code=sm_90a -I/tmp/nvroot/include \
      -It-linear-1b-w1 -It-linear-1b-w1/lasp t-linear-1b-w1/main.cu kernels.o -DLASP_WITHOUT_NCCL \
      -L/tmp/nvroot/lib -lcublas -lcudnn -Xcompiler -pthread -o t-linear-1b-w1/prog) || exit 1
    echo "built $dir/t-linear-1b-w1/prog" ;;
  run)
    OUT=${OUT:-/tmp/lasp-ablate}
    mkdir -p "$OUT"
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
    configs=${CONFIGS:-"none swiglu_fwd swiglu_bwd norms grad_norm all"}
    for round in $(seq "${ROUNDS:-2}"); do
      for c in $configs; do
        rm -rf /tmp/lasp-ablate-runs/$c.$round
        (cd .gpu-suite && LASP_ABLATE=$([ "$c" = none ] || echo "$c") timeout 120 ../$dir/t-linear-1b-w1/prog --rank 0 \
          --world 1 --device 0 --mode train --steps "${STEPS:-40}" --run-dir /tmp/lasp-ablate-runs/$c.$round \
          > "$OUT/$c.$round.jsonl" 2> "$OUT/$c.$round.err")
        echo "$c round $round exit $?"
      done
    done
    python3 - "$OUT" $configs <<'PY'
import json, statistics, sys, glob
out, configs = sys.argv[1], sys.argv[2:]
def median_ms(path):
    ms = [e["ms"] for e in map(json.loads, open(path)) if e["event"] == "step" and e["step"] >= 5]
    return statistics.median(ms) if ms else float("nan")
base = None
print(f"{'skipped':12} {'rounds (ms, median of steps 6-)':36} {'median':>8} {'saved ms':>9}")
for c in configs:
    vals = [median_ms(p) for p in sorted(glob.glob(f"{out}/{c}.*.jsonl"))]
    m = statistics.median(vals)
    base = m if c == "none" else base
    print(f"{c:12} {' '.join(f'{v:.2f}' for v in vals):36} {m:8.2f} {'' if base is None or c == 'none' else f'{base - m:9.2f}'}")
PY
    ;;
  *) echo "usage: ablate.sh prepare|run" >&2; exit 2 ;;
esac
