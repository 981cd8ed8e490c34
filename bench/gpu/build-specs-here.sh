#!/usr/bin/env bash
# Builds train/bench programs of bench/gpu/specs here, ready to carry to the GPU machine (build-here.sh checks
# that everything compiles; this makes the binaries a lot runs): each spec compiled by `lasp compile`
# into DIR/NAME, one kernels.o for all (kernels.cu is the same in every program), and each DIR/NAME/prog linked
# against bench/gpu/nvlibs.sh's cuBLAS and cuDNN (the GPU machine has the same libraries; NCCL is left out: one
# rank). From the repository root, after `npm run build` and `bash bench/gpu/nvlibs.sh`:
#   bash bench/gpu/build-specs-here.sh .gpu-ship t-linear-1b-w1 t-linear-8bshape-w1 t-tiny-train-w1 t-linear-1b-keep-w1
# NAME is a spec in bench/gpu/specs/. About 90 s for kernels.o and 15 s a program on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 2 ] || { echo "usage: build-specs-here.sh DIR NAME..." >&2; exit 2; }
dir=$1
shift
nv=${NVLIBS_DIR:-/tmp/nvroot}
[ -f "$nv/include/cudnn.h" ] || { echo "build-specs-here: no cuDNN headers in $nv: run bash bench/gpu/nvlibs.sh" >&2; exit 3; }
arch="-gencode=arch=compute_${ARCH:-90a},code=sm_${ARCH:-90a}"
mkdir -p "$dir"
for name in "$@"; do node bin/lasp.js compile "bench/gpu/specs/$name.lasp" -o "$dir/$name" > /dev/null; done
first=$dir/$1
nvcc -O3 -std=c++17 --use_fast_math -lineinfo "$arch" -DLASP_WITH_CUDNN -I"$nv/include" -I"$first" -I"$first/lasp" \
  -c "$first/kernels.cu" -o "$dir/kernels.o"
for name in "$@"; do
  (cd "$dir" && nvcc -O3 -std=c++17 --use_fast_math "$arch" -I"$nv/include" -I"$name" -I"$name/lasp" "$name/main.cu" \
    kernels.o -DLASP_WITHOUT_NCCL -L"$nv/lib" -lcublas -lcudnn -Xcompiler -pthread -ldl -o "$name/prog")
  echo "built $dir/$name/prog"
done
