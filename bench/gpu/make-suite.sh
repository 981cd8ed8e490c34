#!/usr/bin/env bash
# Writes the specs of the GPU suite (bench/gpu/specs/) and compiles each into .gpu-suite/<name>/ with
# `lasp compile`, ready to carry to a GPU machine, where run-suite.sh builds and runs them.
# Usage: make-suite.sh [linear|softmax|bench|model|documents|all] [max GPUs]: which programs go to .gpu-suite/
# (every spec is written either way; bench = every benchmark, weak (b-) and strong (s-) scaling and the whole
# model (m-), no verify programs; model = the m- ones only; documents = the v-doc- and s-doc- ones and the
# s-hyb- twins of the latter), and
# the largest GPU count to compile for (default 4).
set -euo pipefail
cd "$(dirname "$0")/../.."
which=${1:-all}
max_gpus=${2:-4}
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
# verify: every strategy, causal and bidirectional, basic and decayed, head dims 64 and 128, on 1, 2, 4, 8 GPUs
for w in 1 2 4 8; do
  n=$((4096 * w))
  spec "v-lasp2-causal-d128-w$w"    $w lasp2 contiguous true  "decay none"              128 8 1024 $n 2 verify 1
  spec "v-lasp2-decay-zz-d64-w$w"   $w lasp2 zigzag     true  "decay [0.9, 0.95, 0.99, 0.999, 1, 0.8, 0.97, 0.9999]" 64 8 512 $n 2 verify 1
  spec "v-lasp2-bidir-d64-w$w"      $w lasp2 contiguous false "decay none"              64 8 512 $n 2 verify 1
  spec "v-lasp1-decay-d128-w$w"     $w lasp1 contiguous true  "decay 0.99"              128 8 1024 $n 2 verify 1
  spec "v-lasp1-zz-d64-w$w"         $w lasp1 zigzag     true  "decay retention"         64 8 512 $n 2 verify 1
done
# All-Scan (issue 21): the chain in 4 blocks of state rows, contiguous and zigzag, with decay (1 GPU: no chain,
# the program builds and verifies; 2, 4, 8 GPUs)
for w in 1 2 4 8; do
  n=$((4096 * w))
  spec "v-allscan-decay-d128-w$w" $w allscan contiguous true "decay 0.99" 128 8 1024 $n 2 verify 1
  spec "v-allscan-zz-d64-w$w"     $w allscan zigzag     true "decay retention" 64 8 512 $n 2 verify 1
done
# data parallel: 2 sequence-parallel groups of 2 GPUs (world 4)
spec "v-lasp2-dp2-d128-w4" 4 lasp2 zigzag true "decay 0.95" 128 8 1024 8192 2 verify 1
sed -i 's/parallel { gpus 4  sequence 4 /parallel { gpus 4  sequence 2  data 2 /; s/batch 1 /batch 2 /' "$specs/v-lasp2-dp2-d128-w4.lasp"
spec "b-lasp2-dp2-w4" 4 lasp2 contiguous true "decay 0.99" 128 16 2048 32768 4 bench 20
sed -i 's/parallel { gpus 4  sequence 4 /parallel { gpus 4  sequence 2  data 2 /; s/batch 1 /batch 2 /' "$specs/b-lasp2-dp2-w4.lasp"
# bench: the 1B layer shape (16 heads x 128, hidden 2048), 16K tokens per GPU, 4 layers
for w in 1 2 4 8; do
  n=$((16384 * w))
  spec "b-lasp2-w$w" $w lasp2 contiguous true "decay 0.99" 128 16 2048 $n 4 bench 20
  spec "b-lasp1-w$w" $w lasp1 contiguous true "decay 0.99" 128 16 2048 $n 4 bench 20
done
sspec() { # name gpus softmax-strategy linear-strategy layout head_dim heads kv_heads hidden seq_len stack mode steps causal
  cat > "$specs/$1.lasp" <<SPEC
// GPU suite: $1 (written by bench/gpu/make-suite.sh)
model ${1//-/_} {
  vocab 512  hidden $9  ffn 512  heads $7  head_dim $6
  layer L = linear_attention { decay 0.99 }
  layer S = softmax_attention { kv_heads $8  rope_theta 500000  causal ${14} }
  stack ${11}
}
parallel { gpus $2  sequence $2  linear $4  softmax $3  layout $5 }
run { seq_len ${10}  batch 1  dtype bf16  steps ${13}  warmup 3  mode ${12}  seed 7 }
SPEC
}
# softmax verify: allgather, ring, ulysses; contiguous and zigzag; GQA and not; head dims 64 and 128
for w in 1 2 4 8; do
  n=$((4096 * w))
  sspec "v-sm-ag-zz-gqa-d128-w$w"  $w allgather lasp2   zigzag     128 8 2 1024 $n "S x 1" verify 1 true
  sspec "v-sm-ag-ct-d64-w$w"       $w allgather lasp2   contiguous 64  8 8 512  $n "S x 1" verify 1 true
  sspec "v-sm-ag-bidir-d64-w$w"    $w allgather lasp2   contiguous 64  8 4 512  $n "S x 1" verify 1 false
  sspec "v-sm-ring-ct-gqa-d64-w$w" $w ring      lasp1   contiguous 64  8 4 512  $n "S x 1" verify 1 true
  sspec "v-sm-ring-zz-d128-w$w"    $w ring      lasp1   zigzag     128 8 8 1024 $n "S x 1" verify 1 true
  # Ulysses shards kv heads over the ranks: 8 ranks need 8 kv heads (16 query heads keep GQA)
  if [ "$w" -lt 8 ]; then uh=8; ukv=4; else uh=16; ukv=8; fi
  sspec "v-sm-uly-zz-gqa-d128-w$w" $w ulysses   ulysses zigzag     128 $uh $ukv 1024 $n "[L, S] x 1" verify 1 true
  sspec "v-sm-uly-ct-d64-w$w"      $w ulysses   ulysses contiguous 64  8 8 512  $n "[L, S] x 1" verify 1 true
  # the 1B hybrid's layer shapes (16 x 128, 8 kv heads), shrunk to one [L, L, L, S] block
  sspec "v-hyb-1b-w$w"             $w allgather lasp2   zigzag     128 16 8 2048 $((8192 * w)) "[L, L, L, S] x 1" verify 1 true
done
# hybrid bench: the 1B hybrid stack ([L, L, L, S] x 2), 16K tokens per GPU, softmax strategy and layout
for w in 1 2 4 8; do
  n=$((16384 * w))
  sspec "b-hyb-ag-zz-w$w"   $w allgather lasp2 zigzag     128 16 8 2048 $n "[L, L, L, S] x 2" bench 20 true
  sspec "b-hyb-ag-ct-w$w"   $w allgather lasp2 contiguous 128 16 8 2048 $n "[L, L, L, S] x 2" bench 20 true
  sspec "b-hyb-ring-zz-w$w" $w ring      lasp2 zigzag     128 16 8 2048 $n "[L, L, L, S] x 2" bench 20 true
  sspec "b-hyb-uly-zz-w$w"  $w ulysses   lasp2 zigzag     128 16 8 2048 $n "[L, L, L, S] x 2" bench 20 true
done
# strong scaling (issue #7): the same 1B shapes at a fixed global length of 64K tokens on 1, 2, 4, 8 GPUs
for w in 1 2 4 8; do
  spec "s-lasp2-w$w" $w lasp2 contiguous true "decay 0.99" 128 16 2048 65536 4 bench 20
  spec "s-lasp1-w$w" $w lasp1 contiguous true "decay 0.99" 128 16 2048 65536 4 bench 20
  sspec "s-hyb-ag-zz-w$w"   $w allgather lasp2 zigzag 128 16 8 2048 65536 "[L, L, L, S] x 2" bench 20 true
  sspec "s-hyb-ring-zz-w$w" $w ring      lasp2 zigzag 128 16 8 2048 65536 "[L, L, L, S] x 2" bench 20 true
  sspec "s-hyb-uly-zz-w$w"  $w ulysses   lasp2 zigzag 128 16 8 2048 65536 "[L, L, L, S] x 2" bench 20 true
done
# the whole model on one GPU (issue 16's performance goal): the 1B examples at 16K tokens per step, the LM
# head untied as in the PyTorch baseline (bench/gpu/torch_model.py)
mspec() { # name example
  sed -e 's/gpus 8  sequence 8  data 1/gpus 1  sequence 1  data 1/' -e 's/seq_len 256K/seq_len 16K/' \
    -e 's/steps 20 /steps 10 /' -e '/^ *norm /s/tie_embeddings true/tie_embeddings false/' -e "s/^model [a-z0-9_]*/model ${1//-/_}/" \
    -e "1s|^|// GPU suite: $1 (written by bench/gpu/make-suite.sh from examples/$2.lasp)\\n|" "examples/$2.lasp" > "$specs/$1.lasp"
}
mspec m-linear-1b-w1 linear-llama3-1b
mspec m-hybrid-1b-w1 linear-llama3-1b-hybrid
# `recompute mlp`: the longest sequence that fits (memory), and what the extra product costs (time), checked by
# verify on a small model too
sed -e 's/m_linear_1b_w1/m_linear_1b_rc_w1/' -e 's/  steps 10 /  recompute mlp  steps 10 /' "$specs/m-linear-1b-w1.lasp" > "$specs/m-linear-1b-rc-w1.lasp"
# the longest sequences `lasp inspect` predicts fit an 80 GB GPU (issue 16's memory goal), run to show they do
sed -e 's/m_linear_1b_w1/m_linear_1b_long_w1/' -e 's/seq_len 16K/seq_len 49216/' -e 's/steps 10 /steps 3 /' "$specs/m-linear-1b-w1.lasp" > "$specs/m-linear-1b-long-w1.lasp"
sed -e 's/m_linear_1b_rc_w1/m_linear_1b_rc_long_w1/' -e 's/seq_len 16K/seq_len 110016/' -e 's/steps 10 /steps 3 /' "$specs/m-linear-1b-rc-w1.lasp" > "$specs/m-linear-1b-rc-long-w1.lasp"
sed -e 's/v_lasp2_decay_zz_d64_w1/v_lasp2_recompute_d64_w1/' -e 's/  steps 1 /  recompute mlp  steps 1 /' "$specs/v-lasp2-decay-zz-d64-w1.lasp" > "$specs/v-lasp2-recompute-d64-w1.lasp"
# the examples' other model settings: a tied LM head (most examples), and the encoder example's LayerNorm, tied
# head and elu+1 feature map
sed -e 's/v_lasp2_decay_zz_d64_w1/v_tied_d64_w1/' -e 's/head_dim 64$/head_dim 64  tie_embeddings true/' "$specs/v-lasp2-decay-zz-d64-w1.lasp" > "$specs/v-tied-d64-w1.lasp"
sed -e 's/v_lasp2_bidir_d64_w1/v_encoder_ln_d64_w1/' -e 's/head_dim 64$/head_dim 64  norm layernorm  tie_embeddings true/' \
  -e 's/causal false }/causal false  feature_map elu_plus_one }/' "$specs/v-lasp2-bidir-d64-w1.lasp" > "$specs/v-encoder-ln-d64-w1.lasp"
# the feature map (elu+1) causal and bidirectional, over 2 and 3 layers, and LayerNorm with a tied head alone:
# which of the encoder example's settings its verify depends on
sed -e 's/v_lasp2_decay_zz_d64_w1/v_elu_causal_d64_w1/' -e 's/causal true }/causal true  feature_map elu_plus_one }/' "$specs/v-lasp2-decay-zz-d64-w1.lasp" > "$specs/v-elu-causal-d64-w1.lasp"
sed -e 's/v_lasp2_bidir_d64_w1/v_elu_bidir_d64_w1/' -e 's/causal false }/causal false  feature_map elu_plus_one }/' "$specs/v-lasp2-bidir-d64-w1.lasp" > "$specs/v-elu-bidir-d64-w1.lasp"
sed -e 's/v_elu_bidir_d64_w1/v_elu_bidir_3l_d64_w1/' -e 's/stack L x 2/stack L x 3/' "$specs/v-elu-bidir-d64-w1.lasp" > "$specs/v-elu-bidir-3l-d64-w1.lasp"
# ... and what the elu+1 failure depends on: the states' growth without decay (causal too) and the length
sed -e 's/v_elu_causal_d64_w1/v_elu_causal_nodecay_d64_w1/' -e 's/decay \[[^]]*\]/decay none/' "$specs/v-elu-causal-d64-w1.lasp" > "$specs/v-elu-causal-nodecay-d64-w1.lasp"
sed -e 's/v_elu_bidir_d64_w1/v_elu_bidir_256_d64_w1/' -e 's/seq_len 4096/seq_len 256/' "$specs/v-elu-bidir-d64-w1.lasp" > "$specs/v-elu-bidir-256-d64-w1.lasp"
sed -e 's/v_elu_bidir_d64_w1/v_elu_bidir_1k_d64_w1/' -e 's/seq_len 4096/seq_len 1024/' "$specs/v-elu-bidir-d64-w1.lasp" > "$specs/v-elu-bidir-1k-d64-w1.lasp"
sed -e 's/v_lasp2_bidir_d64_w1/v_ln_bidir_tied_d64_w1/' -e 's/head_dim 64$/head_dim 64  norm layernorm  tie_embeddings true/' "$specs/v-lasp2-bidir-d64-w1.lasp" > "$specs/v-ln-bidir-tied-d64-w1.lasp"
# packed documents (issue 19): every strategy and layout with documents of mean length 100 (some shorter than a
# 64-token block, some across pieces and ranks), checked against the oracle with the document mask; and the
# 64K strong-scaling hybrid with documents of mean 2K beside its `documents none` twin (bench: the softmax layers'
# time falls with the skipped blocks, the linear layers' stays)
docs() { # source-spec new-name mean
  sed -e "s/^model ${1//-/_}/model ${2//-/_}/" -e "s/mode \([a-z]*\)  seed 7 }/mode \1  seed 7  documents eos  eos_token 1  document_length $3 }/" \
    -e "1s|.*|// GPU suite: $2 (written by bench/gpu/make-suite.sh from $1)|" "$specs/$1.lasp" > "$specs/$2.lasp"
}
for w in 1 2 4 8; do
  docs "v-lasp2-decay-zz-d64-w$w"   "v-doc-lasp2-zz-d64-w$w" 100
  docs "v-lasp2-causal-d128-w$w"    "v-doc-lasp2-ct-d128-w$w" 100
  docs "v-lasp2-bidir-d64-w$w"      "v-doc-lasp2-bidir-d64-w$w" 100
  docs "v-lasp1-decay-d128-w$w"     "v-doc-lasp1-ct-d128-w$w" 100
  docs "v-sm-ag-zz-gqa-d128-w$w"    "v-doc-sm-ag-zz-gqa-d128-w$w" 100
  docs "v-sm-ag-bidir-d64-w$w"      "v-doc-sm-ag-bidir-d64-w$w" 100
  docs "v-sm-ring-zz-d128-w$w"      "v-doc-sm-ring-zz-d128-w$w" 100
  docs "v-sm-uly-zz-gqa-d128-w$w"   "v-doc-sm-uly-zz-gqa-d128-w$w" 100
  docs "v-hyb-1b-w$w"               "v-doc-hyb-1b-w$w" 700
done
for w in 1 2 4 8; do docs "v-allscan-zz-d64-w$w" "v-doc-allscan-zz-d64-w$w" 100; done
# the causal linear ones again with `output_norm none` (W0614: with the norm, a document's first token makes the
# Wq and Wk gradients ill-conditioned, so verify compares them within the oracle's own spread; without it, strictly)
for f in "$specs"/v-doc-lasp*.lasp "$specs"/v-doc-allscan-*.lasp "$specs"/v-doc-hyb-*.lasp "$specs"/v-doc-sm-uly-*.lasp; do
  name=$(basename "$f" .lasp)
  case "$name" in *bidir*) continue ;; esac
  twin=${name%-w*}-nn-w${name##*-w}
  sed -e "s/^model ${name//-/_}/model ${twin//-/_}/" -e 's/linear_attention { /linear_attention { output_norm none  /' \
    -e "1s|.*|// GPU suite: $twin (written by bench/gpu/make-suite.sh from $name)|" "$f" > "$specs/$twin.lasp"
done
# a padded seq_len (the padding a document of its own, no loss on it), with and without packed documents
sed -e 's/v_doc_lasp2_zz_d64_w1/v_doc_pad_lasp2_zz_d64_w1/' -e 's/seq_len 4096/seq_len 4000/' \
  -e "1s|.*|// GPU suite: v-doc-pad-lasp2-zz-d64-w1 (written by bench/gpu/make-suite.sh from v-doc-lasp2-zz-d64-w1)|" \
  "$specs/v-doc-lasp2-zz-d64-w1.lasp" > "$specs/v-doc-pad-lasp2-zz-d64-w1.lasp"
sed -e 's/v_doc_lasp2_bidir_d64_w1/v_doc_pad_lasp2_bidir_d64_w1/' -e 's/seq_len 4096/seq_len 4000/' \
  -e "1s|.*|// GPU suite: v-doc-pad-lasp2-bidir-d64-w1 (written by bench/gpu/make-suite.sh from v-doc-lasp2-bidir-d64-w1)|" \
  "$specs/v-doc-lasp2-bidir-d64-w1.lasp" > "$specs/v-doc-pad-lasp2-bidir-d64-w1.lasp"
sed -e 's/v_hyb_1b_w1/v_doc_pad_hyb_1b_w1/' -e 's/seq_len 8192/seq_len 8000/' \
  -e "1s|.*|// GPU suite: v-doc-pad-hyb-1b-w1 (written by bench/gpu/make-suite.sh from v-hyb-1b-w1)|" \
  "$specs/v-hyb-1b-w1.lasp" > "$specs/v-doc-pad-hyb-1b-w1.lasp"
# The hybrid with Llama 3's RoPE scaling over an original 2048 positions: at 8K tokens the blended band
# (wavelengths 512 to 2048) turns many times, so a wrong frequency table shows against PyTorch's own
sed -e 's/v_hyb_1b_w1/v_hyb_rope_w1/' \
  -e 's/rope_theta 500000  causal true/rope_theta 500000  rope_scaling llama3  rope_factor 32  rope_original_max_positions 2048  causal true/' \
  -e "1s|.*|// GPU suite: v-hyb-rope-w1 (written by bench/gpu/make-suite.sh from v-hyb-1b-w1)|" \
  "$specs/v-hyb-1b-w1.lasp" > "$specs/v-hyb-rope-w1.lasp"
# ... and with grouped key/value heads in its linear layers (a GQA checkpoint linearized: 4 kv heads of 16,
# copied out to every query head; elu+1 on q and k so the feature map's backward reads the grouped pre_k)
sed -e 's/v_hyb_1b_w1/v_hyb_gqa_w1/' \
  -e 's/layer L = linear_attention { decay 0.99 }/layer L = linear_attention { decay 0.99  kv_heads 4  feature_map elu_plus_one }/' \
  -e "1s|.*|// GPU suite: v-hyb-gqa-w1 (written by bench/gpu/make-suite.sh from v-hyb-1b-w1)|" \
  "$specs/v-hyb-1b-w1.lasp" > "$specs/v-hyb-gqa-w1.lasp"
docs "s-hyb-ag-zz-w1" "s-doc-hyb-ag-zz-w1" 2048
docs "s-hyb-uly-zz-w1" "s-doc-hyb-uly-zz-w1" 2048
# train mode (issue 17): the tiny example from token files (run-train.sh makes them), and Linear-Llama3-1B from
# a synthetic token file at 16K tokens per step, 100 steps, a checkpoint at the end
sed -e 's/^model tiny_train/model t_tiny_train_w1/' -e "1s|^|// GPU suite: t-tiny-train-w1 (written by bench/gpu/make-suite.sh from examples/tiny-train.lasp)\\n|" \
  examples/tiny-train.lasp > "$specs/t-tiny-train-w1.lasp"
# ... and on 2 and 4 GPUs (sequence parallel, LASP-2, zigzag on 4): the same data, so the losses must agree with 1 GPU's
for w in 2 4; do
  sed -e "s/^model t_tiny_train_w1/model t_tiny_train_w$w/" -e "s/gpus 1  sequence 1/gpus $w  sequence $w/" \
    -e "s/t-tiny-train-w1/t-tiny-train-w$w/" "$specs/t-tiny-train-w1.lasp" > "$specs/t-tiny-train-w$w.lasp"
done
sed -i 's/  linear lasp2$/  linear lasp2  layout zigzag/' "$specs/t-tiny-train-w4.lasp"
sed -e 's/m_linear_1b_w1/t_linear_1b_w1/' -e 's/steps 10  warmup 3  mode bench/steps 100  mode train  data "data\/random-128256.bin"  warmup_steps 10/' \
  "$specs/m-linear-1b-w1.lasp" > "$specs/t-linear-1b-w1.lasp"
# ... and with a checkpoint written in the background at step 60 of 120 (run-train.sh ckpt1b)
sed -e 's/t_linear_1b_w1/t_linear_1b_ck_w1/' -e 's/steps 100  mode train/steps 120  mode train/' \
  -e 's/warmup_steps 10  seed 0/warmup_steps 10  seed 0\n  checkpoint_every 60  keep_checkpoints 1/' \
  "$specs/t-linear-1b-w1.lasp" > "$specs/t-linear-1b-ck-w1.lasp"
# ... and four layers of Llama-3-8B's shape (hidden 4096, ffn 14336), to time the MLP GEMM's choice
# (LASP_MLP_GEMM) at the 8B shape on one GPU (env-ab.sh): the whole 8B model's training state does not fit
sed -e 's/t_linear_1b_w1/t_linear_8bshape_w1/' -e 's/hidden 2048  ffn 8192  heads 16/hidden 4096  ffn 14336  heads 32/' \
  -e 's/stack L x 16/stack L x 4/' "$specs/t-linear-1b-w1.lasp" > "$specs/t-linear-8bshape-w1.lasp"
# ... and with the block norms' outputs kept (`recompute none`) against made again (the default), for an A/B of
# two programs (env-ab.sh PROG_B=): the same losses bit for bit, 2 GiB more
sed -e 's/t_linear_1b_w1/t_linear_1b_keep_w1/' -e 's/seq_len 16K  batch 1  dtype bf16$/seq_len 16K  batch 1  dtype bf16  recompute none/' \
  "$specs/t-linear-1b-w1.lasp" > "$specs/t-linear-1b-keep-w1.lasp"
# ... and the 1B hybrid (a softmax layer in four) trained the same way, beside PyTorch's hybrid step (queue.sh torch1b
# with TORCH1B_PRESET=hybrid); one GPU holds one piece, so the layout is contiguous
sed -e 's/m_hybrid_1b_w1/t_hybrid_1b_keep_w1/' -e 's/  layout zigzag/  layout contiguous/' \
  -e 's/steps 10  warmup 3  mode bench/steps 100  mode train  data "data\/random-128256.bin"  warmup_steps 10/' \
  -e 's/seq_len 16K  batch 1  dtype bf16$/seq_len 16K  batch 1  dtype bf16  recompute none/' \
  "$specs/m-hybrid-1b-w1.lasp" > "$specs/t-hybrid-1b-keep-w1.lasp"
for f in "$specs"/*.lasp; do
  name=$(basename "$f" .lasp)
  [ "${name##*-w}" -le "$max_gpus" ] || continue
  case "$which:$name" in
    linear:v-sm-* | linear:v-hyb-* | linear:b-hyb-* | linear:s-hyb-* | linear:m-* | softmax:v-lasp* | softmax:b-lasp* | softmax:s-lasp* | softmax:m-*) continue ;;
    linear:v-doc-sm-* | linear:v-doc-hyb-* | linear:s-doc-* | softmax:v-doc-lasp* | softmax:v-doc-allscan-*) continue ;;
    bench:v-* | bench:t-* | model:[vbst]-*) continue ;;
    # documents: the v-doc- programs, and the 64K hybrids with documents beside their twins without
    documents:v-doc-* | documents:s-doc-* | documents:s-hyb-ag-zz-w1 | documents:s-hyb-uly-zz-w1) ;;
    documents:*) continue ;;
  esac
  node bin/lasp.js compile "$f" -o ".gpu-suite/$name" > /dev/null 2>&1 ||
    { node bin/lasp.js compile "$f" -o ".gpu-suite/$name"; exit 1; }
done
ls .gpu-suite | wc -l
