#!/usr/bin/env bash
# Writes the specs of the GPU suite (bench/gpu/specs/) and compiles each into .gpu-suite/<name>/ with
# `lasp compile`, ready to carry to a GPU machine, where run-suite.sh builds and runs them.
set -euo pipefail
cd "$(dirname "$0")/../.."
specs=bench/gpu/specs
rm -rf "$specs" .gpu-suite && mkdir -p "$specs" .gpu-suite
spec() { # name gpus strategy layout causal decay head_dim heads hidden seq_len layers mode steps
  cat > "$specs/$1.lasp" <<SPEC
// GPU suite: $1 (written by bench/gpu/make-suite.sh)
model ${1//-/_} {
  vocab 512  hidden $9  ffn 512  heads $8  head_dim $7
  layer L = linear_attention { $6  causal $5 }
  stack L x ${11}
}
parallel { gpus $2  sequence $2  linear $3  layout $4 }
run { seq_len ${10}  batch 1  dtype bf16  steps ${13}  warmup 3  mode ${12}  seed 7 }
SPEC
}
# verify: every strategy, causal and bidirectional, basic and decayed, head dims 64 and 128, on 1, 2, 4 GPUs
for w in 1 2 4; do
  n=$((4096 * w))
  spec "v-lasp2-causal-d128-w$w"    $w lasp2 contiguous true  "decay none"              128 8 1024 $n 2 verify 1
  spec "v-lasp2-decay-zz-d64-w$w"   $w lasp2 zigzag     true  "decay [0.9, 0.95, 0.99, 0.999, 1, 0.8, 0.97, 0.9999]" 64 8 512 $n 2 verify 1
  spec "v-lasp2-bidir-d64-w$w"      $w lasp2 contiguous false "decay none"              64 8 512 $n 2 verify 1
  spec "v-lasp1-decay-d128-w$w"     $w lasp1 contiguous true  "decay 0.99"              128 8 1024 $n 2 verify 1
  spec "v-lasp1-zz-d64-w$w"         $w lasp1 zigzag     true  "decay retention"         64 8 512 $n 2 verify 1
done
# data parallel: 2 sequence-parallel groups of 2 GPUs (world 4)
spec "v-lasp2-dp2-d128-w4" 4 lasp2 zigzag true "decay 0.95" 128 8 1024 8192 2 verify 1
sed -i 's/parallel { gpus 4  sequence 4 /parallel { gpus 4  sequence 2  data 2 /; s/batch 1 /batch 2 /' "$specs/v-lasp2-dp2-d128-w4.lasp"
spec "b-lasp2-dp2-w4" 4 lasp2 contiguous true "decay 0.99" 128 16 2048 32768 4 bench 20
sed -i 's/parallel { gpus 4  sequence 4 /parallel { gpus 4  sequence 2  data 2 /; s/batch 1 /batch 2 /' "$specs/b-lasp2-dp2-w4.lasp"
# bench: the 1B layer shape (16 heads x 128, hidden 2048), 16K tokens per GPU, 4 layers
for w in 1 2 4; do
  n=$((16384 * w))
  spec "b-lasp2-w$w" $w lasp2 contiguous true "decay 0.99" 128 16 2048 $n 4 bench 20
  spec "b-lasp1-w$w" $w lasp1 contiguous true "decay 0.99" 128 16 2048 $n 4 bench 20
done
for f in "$specs"/*.lasp; do
  name=$(basename "$f" .lasp)
  node bin/lasp.js compile "$f" -o ".gpu-suite/$name" > /dev/null
done
ls .gpu-suite | wc -l
