#!/usr/bin/env bash
# Saves device time: compiles the suite's kernels.cu (the same in every program; CUDA toolkit only) here, into
# .gpu-suite/kernels.o, so that bench/gpu/run-prebuilt.sh on the GPU machine only compiles each main.cu
# (in parallel) and links. Run make-suite.sh first. CUDNN_INCLUDE=dir (a directory with cuDNN 9's headers)
# builds the kernels with cuDNN's fused attention (lasp/softmax_whole.cuh); run-prebuilt.sh then links cuDNN.
set -euo pipefail
cd "$(dirname "$0")/../.."
first=$(dirname "$(ls .gpu-suite/*/kernels.cu | head -1)")
nvcc -O3 -std=c++17 --use_fast_math -lineinfo "-gencode=arch=compute_${ARCH:-90a},code=sm_${ARCH:-90a}" \
  ${CUDNN_INCLUDE:+-DLASP_WITH_CUDNN -I"$CUDNN_INCLUDE"} -I"$first" -I"$first/lasp" -c "$first/kernels.cu" \
  -o .gpu-suite/kernels.o
cp bench/gpu/run-prebuilt.sh bench/gpu/summarize.py bench/gpu/rank-device-swap.sh .gpu-suite/
echo "wrote .gpu-suite/kernels.o; on the GPU machine: bash .gpu-suite/run-prebuilt.sh"
