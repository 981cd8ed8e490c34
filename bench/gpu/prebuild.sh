#!/usr/bin/env bash
# Saves device time: compiles the suite's kernels.cu (the same in every program; CUDA toolkit only) here, into
# .gpu-suite/kernels.o, so that bench/gpu/run-prebuilt.sh on the GPU machine only compiles each main.cu
# (in parallel) and links. Run make-suite.sh first. CUDNN_INCLUDE=dir (a directory with cuDNN 9's headers)
# builds the kernels with cuDNN's fused attention (lasp/softmax_whole.cuh); run-prebuilt.sh then links cuDNN.
# Without CUDNN_INCLUDE, the headers of bench/gpu/nvlibs.sh (NVLIBS_DIR, default /tmp/nvroot) are taken where
# they are (said so on the first line); CUDNN_INCLUDE= (set, empty) builds without cuDNN. Headers newer than the
# GPU machine's cuDNN are fine for the backend calls used (bench/gpu/README.md, "Building here").
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${CUDNN_INCLUDE+set}" ] && [ -f "${NVLIBS_DIR:-/tmp/nvroot}/include/cudnn.h" ]; then
  CUDNN_INCLUDE=${NVLIBS_DIR:-/tmp/nvroot}/include
  echo "prebuild: cuDNN $(awk '/#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) /{print $3}' "$CUDNN_INCLUDE/cudnn_version.h" |
    paste -sd.) headers from $CUDNN_INCLUDE (bench/gpu/nvlibs.sh); CUDNN_INCLUDE= builds without cuDNN"
fi
first=$(dirname "$(ls .gpu-suite/*/kernels.cu | head -1)")
nvcc -O3 -std=c++17 --use_fast_math -lineinfo "-gencode=arch=compute_${ARCH:-90a},code=sm_${ARCH:-90a}" \
  ${CUDNN_INCLUDE:+-DLASP_WITH_CUDNN -I"$CUDNN_INCLUDE"} -I"$first" -I"$first/lasp" -c "$first/kernels.cu" \
  -o .gpu-suite/kernels.o
# (grep without -q: see run-prebuilt.sh)
if nm .gpu-suite/kernels.o | grep "U cudnnBackendCreateDescriptor" >/dev/null; then
  echo "kernels.o calls cuDNN: run-prebuilt.sh links the GPU machine's libcudnn"
else
  echo "kernels.o without cuDNN"
fi
cp bench/gpu/run-prebuilt.sh bench/gpu/summarize.py bench/gpu/rank-device-swap.sh .gpu-suite/
echo "wrote .gpu-suite/kernels.o; on the GPU machine: bash .gpu-suite/run-prebuilt.sh"
