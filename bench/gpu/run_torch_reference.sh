#!/usr/bin/env bash
# On the GPU machine: the PyTorch side of issue 16 in one call. Both self-tests on the GPU (torch_reference.py
# against an independent formulation, with its pass and fail cases; torch_model.py, bf16 with fla and SDPA,
# against torch_reference.py), then, given the program's files, the comparison itself. Logs and the JSON table
# go to $OUT (or /tmp/lasp-torch-reference). fla's source in .fla/ is used when the package is not installed.
#   bash bench/gpu/run_torch_reference.sh [WEIGHTS.safetensors GRADS.safetensors [torch_reference.py options]]
# Exit code: the worst of the steps (0 all passed, 1 a comparison failed, 2 bad input).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/lasp-torch-reference}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
[ -d .fla ] && export PYTHONPATH=".fla${PYTHONPATH:+:$PYTHONPATH}"
worst=0
step() {  # step NAME COMMAND...: runs it, logs it, keeps the worst exit code
  local name=$1
  shift
  echo "== $name"
  "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -gt "$worst" ] && worst=$rc
  echo "== $name: exit $rc"
}
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null; } | tee "$OUT/gpu.txt"
step reference-self-test "$PY" bench/gpu/torch_reference.py --self-test --device cuda
step model-self-test "$PY" bench/gpu/torch_model.py --self-test --device cuda
step model-self-test-compiled "$PY" bench/gpu/torch_model.py --self-test --device cuda --compile-mode default
if [ $# -ge 2 ]; then
  step compare "$PY" bench/gpu/torch_reference.py "$@" --json "$OUT/compare.json"
fi
echo "worst exit code: $worst (logs in $OUT)"
exit "$worst"
