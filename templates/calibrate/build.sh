#!/usr/bin/env bash
# Builds lasp calibrate's microbenchmark program with nvcc alone, for machines without cmake. ARCH overrides
# the target (default 90a).
set -euo pipefail
cd "$(dirname "$0")"
arch=${ARCH:-90a}
cudnn=()
for inc in "${CUDNN_HOME:-/nonexistent}/include" /usr/include /usr/include/x86_64-linux-gnu; do
  [ -f "$inc/cudnn.h" ] || continue
  for lib in "${CUDNN_HOME:-/nonexistent}/lib" "${CUDNN_HOME:-/nonexistent}/lib64" /usr/lib/x86_64-linux-gnu; do
    if [ -e "$lib/libcudnn.so" ]; then cudnn=(-DLASP_WITH_CUDNN "-I$inc" "-L$lib" -lcudnn "-Xlinker" "-rpath=$lib"); break 2; fi
    if [ -e "$lib/libcudnn.so.9" ]; then cudnn=(-DLASP_WITH_CUDNN "-I$inc" "-L$lib" -l:libcudnn.so.9 "-Xlinker" "-rpath=$lib"); break 2; fi
  done
done
# NCCL where nvcc finds its header; without it the program measures one GPU (lasp/nccl_one_rank.cuh stands in;
# the collectives need NCCL).
probe=$(mktemp -d)
printf '#include <nccl.h>\n' > "$probe/nccl_probe.cu"
if nvcc -E "$probe/nccl_probe.cu" -o /dev/null > /dev/null 2>&1; then nccl=(-lnccl); else nccl=(-DLASP_WITHOUT_NCCL); fi
rm -rf "$probe"
nvcc -O3 -std=c++17 --use_fast_math -lineinfo -gencode=arch=compute_${arch},code=sm_${arch} -I. -Ilasp \
  main.cu kernels.cu "${cudnn[@]}" "${nccl[@]}" -lcublas -o lasp_program
