#!/usr/bin/env bash
# LASP-2 bench at 1 and 4 GPUs with the chunk kernels' grids sized for 0, 8 and 16 fewer SMs
# (LASP_SM_RESERVE), to see whether leaving SMs to NCCL lets the state AllGather overlap.
cd "$(dirname "$0")/../.."
for r in ${RESERVES:-0 8 16}; do
  echo "== LASP_SM_RESERVE=$r"
  for w in 1 4; do LASP_SM_RESERVE=$r SUITE_FILTER=b-lasp2-w$w bash bench/gpu/run-suite.sh 2>&1 | grep -v "^built"; done
done
