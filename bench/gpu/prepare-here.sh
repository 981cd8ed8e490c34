#!/usr/bin/env bash
# Everything the GPU machine's lots need from this machine, on a new checkout (ignored by git, so a new machine
# has none of it): the built CLI, cuDNN/NCCL/cuBLAS headers and link libraries (nvlibs.sh, /tmp/nvroot), the
# suite's token files (make-train-data.sh, .gpu-suite/data), train programs built here (build-specs-here.sh),
# lasp's config.json files for the transformers checks (hf-configs.mjs), flash-linear-attention's wheels for
# PyTorch's side (.device/wheels: the GPU machine has no network) and Node for the GPU machine (.device).
#
#   bash bench/gpu/prepare-here.sh [DIR [SPEC...]]   (default DIR .gpu-h33, specs t-tiny-train-w1 t-linear-1b-keep-w1)
#
# About 6 minutes on 2 cores the first time (the libraries' 1.2 GB download, kernels.o, two programs); each step
# is skipped where its output is there. Then, for example: queue.sh hfck (HFCK_SUITE=DIR), torch1b
# (TORCH1B_A=DIR/t-linear-1b-keep-w1), hffla (HFFLA_CONFIGS=DIR/hf-configs); queue.sh's header lists what each
# lot carries.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-.gpu-h33}
shift || true
specs=("$@")
[ ${#specs[@]} -gt 0 ] || specs=(t-tiny-train-w1 t-linear-1b-keep-w1)
index=(--index-url file:///opt/pypi/simple --extra-index-url file:///opt/pypi-more/simple)
step() { echo "prepare-here: $*" >&2; }

[ -d node_modules ] || { step "npm ci"; npm ci > /dev/null; }
step "npm run build"
npm run build > /dev/null
step "libraries (bench/gpu/nvlibs.sh)"
bash bench/gpu/nvlibs.sh > /dev/null
if [ ! -f .gpu-suite/data/random-128256.bin ]; then
  step "token files (bench/gpu/make-train-data.sh)"
  bash bench/gpu/make-train-data.sh > /dev/null
fi
missing=()
for s in "${specs[@]}"; do [ -x "$dir/$s/prog" ] || missing+=("$s"); done
if [ ${#missing[@]} -gt 0 ]; then
  step "programs ${missing[*]} into $dir (build-specs-here.sh)"
  bash bench/gpu/build-specs-here.sh "$dir" "${missing[@]}"
fi
if [ ! -f "$dir/hf-configs/linear-plain/config.json" ]; then
  step "config.json files into $dir/hf-configs (hf-configs.mjs)"
  node bench/gpu/hf-configs.mjs "$dir/hf-configs" > /dev/null
fi
if ! ls .device/wheels/fla_core-*.whl > /dev/null 2>&1; then
  step "flash-linear-attention's wheels into .device/wheels"
  mkdir -p .device/wheels
  python3 -m pip download -q --no-deps -d .device/wheels "${index[@]}" flash-linear-attention==0.5.2 fla-core==0.5.2 einops
fi
if [ ! -f .device/node.xz ] && [ -x ../shared/tools/device-node.sh ]; then
  step "Node for the GPU machine (.device)"
  ../shared/tools/device-node.sh 2> /dev/null
fi
step "ready: $(du -sh "$dir" | cut -f1) in $dir, $(du -sh .device | cut -f1) in .device"
