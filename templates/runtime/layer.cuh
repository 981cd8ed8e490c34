// The model's passes around the attention cores: the embedding, each layer's pre-norm block
// (`x = x + Attn(Norm(x))`, then `x = x + MLP(Norm(x))`), the final norm, the LM head and the loss; and their
// backward, which issues each block of weight gradients' sum as soon as the block is complete.
//
// A layer's attention: Q, K, V projections (cuBLAS; K and V over the kv heads) -> feature map (linear
// attention) or rotary embedding at the rows' global positions (softmax attention) -> the attention core on
// the compute and communication streams (the layer kind's schedule, program.cuh) -> output RMSNorm -> O
// projection. Its MLP: SwiGLU, down(silu(gate(x)) * up(x)), gate and up in one product.
//
// Design choices:
// - Weights are stored as PyTorch stores them, [out][in]: a projection is x W^T, its input gradient dy W, its
//   weight gradient dy^T x (fp32: the gradients are summed over ranks and kept for the optimizer in fp32).
// - Each block norm is fused with the residual add before it (norm.cuh): the attention norm of layer l adds
//   layer l-1's MLP output, the MLP norm adds the attention output, the final norm the last MLP output. The
//   residual stream is kept per layer (its input and its value after attention: each norm's input), with the
//   norms' statistics; the norms' outputs are made again in the backward (one pass over a row; `recompute
//   norms`, the default) or kept (`recompute none`: 2 x hidden more bf16 values per token and layer). The MLP
//   keeps gate|up and SwiGLU's output h; with `recompute mlp` it keeps neither and makes both again (one more
//   GEMM per layer for 3 x ffn fewer bf16 values kept per token and layer).
// - A hosted kind's schedule places the Q projection (forward) and dWo (backward) itself, beside the
//   collective they overlap (`host` steps): the layer then leaves them to the core, through HostFn (run.cuh).
// - cuBLAS's Hopper GEMMs hold every SM until they end, so a collective issued beside one would start only
//   after it: a host step that leaves SMs plans its GEMM for that many fewer (cublasSetSmCountTarget).
// - The backward starts from the LM head and loss (lm_head.cuh) on the final norm's output, which the forward
//   leaves in the `normed` scratch: a backward pass directly follows its forward pass.
#pragma once
#include <cuda_runtime.h>  // cudaMemcpyAsync, cudaMemsetAsync, events
#include <cublas_v2.h>     // cublasSetSmCountTarget
#include "blas.cuh"        // matmul
#include "grad_sum.cuh"    // sum_gradients
#include "lm_head.cuh"     // classifier_forward_backward
#include "run.cuh"         // Run, HostWork, HostFn
#include "kernels.h"       // the model's ops: embedding, norms, SwiGLU, feature maps, RoPE, the loss's sum
#include "state.cuh"       // State, LayerKind, LayerDesc

namespace lasp {

constexpr size_t kFfnWidth = 2 * (size_t)program::kFfn;  // the gate|up operand's row

// out = norm(x) with a block norm's weights (rows of kParameters) and statistics (rows of kStatistics); with
// y, first sum = x + y (the residual add), and out = norm(sum).
inline void block_norm(State& st, bf16* out, int weight, int bias, int rstd, int mean, const bf16* x, const bf16* y,
                       bf16* sum) {
  norm_forward(program::kNorm, out, st.stats[mean], st.stats[rstd], x, y, sum, st.params[weight],
               st.params[bias], (int)kRows, program::kHidden, program::kNormEps, st.ctx.compute);
}

// The backward of block_norm on x, from the gradient of its output in st.dnormed: adds to the residual
// stream's gradient st.dx (over it when `first`) and writes the norm's weight (and bias) gradients.
inline void block_norm_backward(State& st, int weight, int bias, int rstd, int mean, const bf16* x, bool first) {
  CUDA_CHECK(cudaMemsetAsync(st.grads[weight], 0, st.grads.elements(weight) * sizeof(float), st.ctx.compute));
  if (bias >= 0) CUDA_CHECK(cudaMemsetAsync(st.grads[bias], 0, st.grads.elements(bias) * sizeof(float), st.ctx.compute));
  norm_backward(program::kNorm, st.dx, !first, st.grads[weight], st.grads[bias], st.dnormed, x, st.params[weight],
                st.stats[mean], st.stats[rstd], (int)kRows, program::kHidden, st.partials, st.ctx.compute);
}

// A layer's block norms' outputs: kept (`recompute none`), or the st.normed scratch, made again in the backward.
inline bf16* attn_norm_out(State& st, const LayerDesc& layer) {
  return layer.a.attn_norm_out >= 0 ? st.acts[layer.a.attn_norm_out] : st.normed;
}
inline bf16* mlp_norm_out(State& st, const LayerDesc& layer) {
  return layer.a.mlp_norm_out >= 0 ? st.acts[layer.a.mlp_norm_out] : st.normed;
}

// gate|up = m [Wgate; Wup]^T (m = Norm(mid)) and h = silu(gate) * up: one GEMM with SwiGLU in its epilogue
// where lasp's kernel runs (mlp_gemm.cuh), else cuBLAS and swiglu.cuh's pass.
inline void gate_up_swiglu(State& st, const LayerWeights& w, const bf16* m, bf16* gate_up, bf16* h, cudaStream_t s) {
  const int rows = (int)kRows, ffn = program::kFfn, hidden = program::kHidden;
  if (mlp_gemm_forward(m, st.params[w.w_gate], gate_up, h, rows, ffn, hidden, s)) return;
  matmul(st.blas, false, true, rows, 2 * ffn, hidden, m, st.params[w.w_gate], gate_up);
  swiglu_forward(gate_up, gate_up + ffn, kFfnWidth, h, rows, ffn, s);
}
// dh = dY Wdown, then gate|up := d(gate|up) from dh and the gate|up it holds: dh stays in the GEMM's epilogue
// where lasp's kernel runs, else it goes through st.ffn to swiglu.cuh's backward.
inline void down_grad_swiglu(State& st, const LayerWeights& w, bf16* gate_up, cudaStream_t s) {
  const int rows = (int)kRows, ffn = program::kFfn, hidden = program::kHidden;
  if (mlp_gemm_backward(st.dx, st.params[w.w_down], gate_up, rows, ffn, hidden, s)) return;
  matmul(st.blas, false, false, rows, ffn, hidden, st.dx, st.params[w.w_down], st.ffn);
  swiglu_backward(gate_up, gate_up + ffn, st.ffn, gate_up, gate_up + ffn, kFfnWidth, rows, ffn, s);
}

// Sums the gradient block of rows first..last over every rank on the gradient stream, once the compute
// stream has written it (one rank: nothing to sum).
inline void sum_block(State& st, int first, int last) {
  if (st.layout.world == 1) return;
  CUDA_CHECK(cudaEventRecord(st.grads_ready, st.ctx.compute));
  CUDA_CHECK(cudaStreamWaitEvent(st.grad, st.grads_ready, 0));
  sum_gradients(block_start(st.grads, first), block_elements(st.grads, first, last), st.grad_parts, st.comms,
                st.layout.rank, st.layout.world, st.grad, st.gather_gradients);
}

// Q = Norm(x) Wq^T of layer l with what follows it on q: RoPE (softmax) or the feature map (linear attention).
template <typename Buffers>
inline void q_projection(State& st, int l, const LayerKind& kind, Buffers& b) {
  const LayerDesc& layer = st.model.layers[l];
  matmul(st.blas, false, true, (int)kRows, (int)kQkvWidth, program::kHidden, attn_norm_out(st, layer), st.params[layer.w.wq],
         b.q);
  if (kind.softmax)
    rope_apply(b.q, program::kBatch, program::kLocalTokens, program::kHeads, program::kHeadDim, program::kPieceMaps[st.layout.sp_rank], kind.rope_inv_freq, false, st.ctx.compute);
  if (kind.feature_map != 0) {
    CUDA_CHECK(cudaMemcpyAsync(st.acts[layer.a.pre_q], b.q, kRows * kQkvWidth * sizeof(bf16), cudaMemcpyDeviceToDevice, st.ctx.compute));
    feature_map_forward(b.q, kRows * kQkvWidth, kind.feature_map, st.ctx.compute);
  }
}

// dWo = dY^T attn of layer l (dY = st.dx; attn = the normed output, or o without the norm).
template <typename Buffers>
inline void o_weight_grad(State& st, int l, const LayerKind& kind, Buffers& b) {
  const LayerDesc& layer = st.model.layers[l];
  const bf16* attn = kind.output_norm ? st.acts[layer.a.normed] : b.o;
  matmul(st.blas, true, false, program::kHidden, (int)kQkvWidth, (int)kRows, st.dx, attn, st.grads[layer.w.wo]);
}

// dQ's share of layer l's backward, once the attention has written b.dq: back through RoPE (softmax) or the
// feature map, dWq = dQ^T a, and the input gradient's first term d(a) = dQ Wq (st.dnormed; the K and V terms
// are added to it after the attention). a = Norm(x) is in attn_norm_out.
template <typename Buffers>
inline void q_grads(State& st, int l, const LayerKind& kind, Buffers& b) {
  const LayerDesc& layer = st.model.layers[l];
  const int hidden = program::kHidden, width = (int)kQkvWidth, rows = (int)kRows;
  if (kind.feature_map != 0)
    feature_map_backward(st.acts[layer.a.pre_q], b.dq, b.dq, kRows * kQkvWidth, kind.feature_map, st.ctx.compute);
  if (kind.softmax)  // the rotation is orthogonal: its backward is the inverse rotation
    rope_apply(b.dq, program::kBatch, program::kLocalTokens, program::kHeads, program::kHeadDim, program::kPieceMaps[st.layout.sp_rank], kind.rope_inv_freq, true, st.ctx.compute);
  matmul(st.blas, true, false, width, hidden, rows, b.dq, attn_norm_out(st, layer), st.grads[layer.w.wq]);
  matmul(st.blas, false, false, rows, hidden, width, b.dq, st.params[layer.w.wq], st.dnormed);
}

// What a hosted kind's `host` steps run (Run::host): the projection the step stands for, leaving
// `leave_sms` SMs to the collective beside it.
template <typename Buffers>
inline HostFn host_work(State& st, int l, const LayerKind& kind, Buffers& b) {
  return [&st, l, &kind, &b](HostWork work, int leave_sms) {
    if (leave_sms > 0) CUBLAS_CHECK(cublasSetSmCountTarget(st.blas, st.sms - leave_sms));
    if (work == HostWork::kQProjection) q_projection(st, l, kind, b);
    else if (work == HostWork::kOWeightGrad) o_weight_grad(st, l, kind, b);
    else q_grads(st, l, kind, b);
    if (leave_sms > 0) CUBLAS_CHECK(cublasSetSmCountTarget(st.blas, 0));
  };
}

// The embedding of the step's tokens: layer 0's input.
inline void embed(State& st) {
  part(st, Part::kEmbedding);
  embedding_forward(st.ids, st.params[st.model.head.embedding], st.acts[st.model.layers[0].a.input], (int)kRows,
                    program::kHidden, st.ctx.compute);
}

// Layer l forward, from its input (layer 0: the embedding; else the previous layer's mid and its MLP output
// in st.y, added here) to its MLP output in st.y; `core(run)` issues the kind's attention on its buffers.
template <typename Buffers, typename Core>
inline void layer_forward(State& st, int l, const LayerKind& kind, Buffers& b, Core core) {
  const int hidden = program::kHidden, width = (int)kQkvWidth, rows = (int)kRows, ffn = program::kFfn;
  const int kv_width = kind.kv_width;
  const LayerDesc& layer = st.model.layers[l];
  const LayerWeights& w = layer.w;
  bf16* input = st.acts[layer.a.input];
  bf16* a = attn_norm_out(st, layer);
  part(st, Part::kNorms);
  if (l == 0) block_norm(st, a, w.attn_norm, w.attn_norm_bias, layer.s.attn_rstd, layer.s.attn_mean, input, nullptr, nullptr);
  else block_norm(st, a, w.attn_norm, w.attn_norm_bias, layer.s.attn_rstd, layer.s.attn_mean, st.acts[st.model.layers[l - 1].a.mid], st.y, input);
  // Attention on a = Norm(x).
  part(st, Part::kProjections);
  if (!kind.hosted) q_projection(st, l, kind, b);
  // A grouped linear layer (kv_heads < heads) projects its kv heads into st.dattn (free until the backward;
  // two of them take at most the width of one q) and copies them out to every query head of b.k, b.v below.
  bf16* k = kind.expand_kv ? st.dattn : b.k;
  bf16* v = kind.expand_kv ? st.dattn + kRows * kv_width : b.v;
  matmul(st.blas, false, true, rows, kv_width, hidden, a, st.params[w.wk], k);
  matmul(st.blas, false, true, rows, kv_width, hidden, a, st.params[w.wv], v);
  // Rotary embedding at the rows' global positions: the same rotation for any layout and GPU count.
  const PieceMap& map = program::kPieceMaps[st.layout.sp_rank];
  if (kind.softmax)
    rope_apply(b.k, program::kBatch, program::kLocalTokens, kind.kv_heads, program::kHeadDim, map, kind.rope_inv_freq, false, st.ctx.compute);
  if (kind.feature_map != 0) {
    CUDA_CHECK(cudaMemcpyAsync(st.acts[layer.a.pre_k], k, kRows * kv_width * sizeof(bf16), cudaMemcpyDeviceToDevice, st.ctx.compute));
    feature_map_forward(k, kRows * kv_width, kind.feature_map, st.ctx.compute);
  }
  if (kind.expand_kv) {
    expand_kv_heads(k, b.k, kRows, kind.kv_heads, program::kHeads, program::kHeadDim, st.ctx.compute);
    expand_kv_heads(v, b.v, kRows, kind.kv_heads, program::kHeads, program::kHeadDim, st.ctx.compute);
  }
  // A hosted kind's schedule calls the Q projection itself, beside the collective of the states it
  // computes from K and V first.
  const auto host = host_work(st, l, kind, b);
  part(st, Part::kAttention);
  fence_streams(st);
  core(Run{true, true, kind.hosted ? &host : nullptr});
  join_streams(st);
  part(st, Part::kProjections);
  const bf16* attn = b.o;
  if (kind.output_norm) {
    rms_norm_forward(b.o, st.acts[layer.a.normed], kRows * program::kHeads, program::kHeadDim, program::kNormEps, st.ctx.compute);
    attn = st.acts[layer.a.normed];
  }
  matmul(st.blas, false, true, rows, hidden, width, attn, st.params[w.wo], st.y);
  // mid = x + attention; the MLP on Norm(mid): gate|up = m [Wgate; Wup]^T, h = silu(gate) * up, y = h Wdown^T.
  bf16* gate_up = st.acts[layer.a.gate_up];
  bf16* m = mlp_norm_out(st, layer);
  part(st, Part::kNorms);
  block_norm(st, m, w.mlp_norm, w.mlp_norm_bias, layer.s.mlp_rstd, layer.s.mlp_mean, input, st.y, st.acts[layer.a.mid]);
  part(st, Part::kMlp);
  bf16* h = layer.a.h >= 0 ? st.acts[layer.a.h] : st.ffn;
  gate_up_swiglu(st, w, m, gate_up, h, st.ctx.compute);
  matmul(st.blas, false, true, rows, hidden, ffn, h, st.params[w.w_down], st.y);
}

// After the last layer: the final norm of the residual stream (mid of the last layer + its MLP output), into
// st.normed, where the LM head reads it.
inline void final_norm(State& st) {
  const HeadDesc& h = st.model.head;
  const LayerDesc& last = st.model.layers[st.model.layer_count - 1];
  part(st, Part::kNorms);
  block_norm(st, st.normed, h.final_norm, h.final_norm_bias, h.final_rstd, h.final_mean, st.acts[last.a.mid], st.y,
             st.acts[h.final_input]);
}

// The LM head and the loss on the final norm's output, and their backward down to the residual stream's
// gradient in st.dx; the step's summed loss in st.loss_sum (over every rank). Starts the backward pass.
inline void head_backward(State& st) {
  const HeadDesc& h = st.model.head;
  cudaStream_t s = st.ctx.compute;
  part(st, Part::kHead);
  // The embedding's gradient is added to (the scatter, and a tied head's products before it): from zero.
  if (h.lm_head != h.embedding)
    CUDA_CHECK(cudaMemsetAsync(st.grads[h.embedding], 0, st.grads.elements(h.embedding) * sizeof(float), s));
  classifier_forward_backward(st.blas, s, st.normed, st.params[h.lm_head], st.targets, (int)kRows, program::kVocab,
                              program::kHidden, program::kClassifierChunk, st.inv_count, st.logits, st.losses,
                              st.dnormed, st.grads[h.lm_head], false);
  loss_sum(st.losses, (int)kRows, st.loss_sum, s);
  if (st.layout.world > 1) NCCL_CHECK(ncclAllReduce(st.loss_sum, st.loss_sum, 1, ncclFloat64, ncclSum, st.comms.world, s));
  part(st, Part::kNorms);
  block_norm_backward(st, h.final_norm, h.final_norm_bias, h.final_rstd, h.final_mean, st.acts[h.final_input], true);
  sum_block(st, h.final_norm, h.block_last);
}

// Evaluation: the LM head and the loss alone on the final norm's output (no gradient), the summed loss in
// st.loss_sum over every rank.
inline void head_loss(State& st) {
  const HeadDesc& h = st.model.head;
  cudaStream_t s = st.ctx.compute;
  classifier_forward_backward(st.blas, s, st.normed, st.params[h.lm_head], st.targets, (int)kRows, program::kVocab,
                              program::kHidden, program::kClassifierChunk, st.inv_count, st.logits, st.losses,
                              nullptr, nullptr, false);
  loss_sum(st.losses, (int)kRows, st.loss_sum, s);
  if (st.layout.world > 1) NCCL_CHECK(ncclAllReduce(st.loss_sum, st.loss_sum, 1, ncclFloat64, ncclSum, st.comms.world, s));
}

// Layer l backward, from st.dx (the gradient of its output) to st.dx (the gradient of its input);
// `core(run)` issues the kind's backward pass.
template <typename Buffers, typename Core>
inline void layer_backward(State& st, int l, const LayerKind& kind, Buffers& b, Core core) {
  const int hidden = program::kHidden, width = (int)kQkvWidth, rows = (int)kRows, ffn = program::kFfn;
  const int kv_width = kind.kv_width;
  const LayerDesc& layer = st.model.layers[l];
  const LayerWeights& w = layer.w;
  cudaStream_t s = st.ctx.compute;
  bf16* input = st.acts[layer.a.input];
  bf16* mid = st.acts[layer.a.mid];
  bf16* gate_up = st.acts[layer.a.gate_up];
  // The MLP: (with `recompute mlp`, m = Norm(mid), gate|up = m [Wgate; Wup]^T and h from gate|up again;)
  // dWdown = dY^T h; dh = dY Wdown; d(gate|up) over gate|up; m = Norm(mid) again (unless just made or kept);
  // d[Wgate; Wup] = d(gate|up)^T m; dm = d(gate|up) [Wgate; Wup]; then the norm's backward into dx.
  bf16* h = layer.a.h >= 0 ? st.acts[layer.a.h] : st.ffn;  // -1 exactly with `recompute mlp`: made again here
  bf16* m = mlp_norm_out(st, layer);
  const bool remake_m = layer.a.mlp_norm_out < 0;
  if (program::kRecomputeMlp) {
    part(st, Part::kNorms);
    block_norm(st, m, w.mlp_norm, w.mlp_norm_bias, layer.s.mlp_rstd, layer.s.mlp_mean, mid, nullptr, nullptr);
    part(st, Part::kMlp);
    gate_up_swiglu(st, w, m, gate_up, h, s);
  }
  part(st, Part::kMlp);
  matmul(st.blas, true, false, hidden, ffn, rows, st.dx, h, st.grads[w.w_down]);
  down_grad_swiglu(st, w, gate_up, s);
  if (!program::kRecomputeMlp && remake_m) {
    part(st, Part::kNorms);
    block_norm(st, m, w.mlp_norm, w.mlp_norm_bias, layer.s.mlp_rstd, layer.s.mlp_mean, mid, nullptr, nullptr);
  }
  part(st, Part::kMlp);
  matmul(st.blas, true, false, 2 * ffn, hidden, rows, gate_up, m, st.grads[w.w_gate]);
  matmul(st.blas, false, false, rows, hidden, 2 * ffn, gate_up, st.params[w.w_gate], st.dnormed);
  part(st, Part::kNorms);
  block_norm_backward(st, w.mlp_norm, w.mlp_norm_bias, layer.s.mlp_rstd, layer.s.mlp_mean, mid, false);
  // The attention: a = Norm(x) again, unless kept (the Q, K, V weight gradients read it); dY = dx;
  // d(attn) = dY Wo; dWo = dY^T attn (a hosted kind's schedule runs it beside its collective).
  bf16* a = attn_norm_out(st, layer);
  if (layer.a.attn_norm_out < 0)
    block_norm(st, a, w.attn_norm, w.attn_norm_bias, layer.s.attn_rstd, layer.s.attn_mean, input, nullptr, nullptr);
  part(st, Part::kProjections);
  matmul(st.blas, false, false, rows, width, hidden, st.dx, st.params[w.wo], st.dattn);
  if (!kind.hosted) o_weight_grad(st, l, kind, b);
  if (kind.output_norm) {
    rms_norm_backward(b.o, st.dattn, b.do_, kRows * program::kHeads, program::kHeadDim, program::kNormEps, s);
  } else {
    CUDA_CHECK(cudaMemcpyAsync(b.do_, st.dattn, kRows * kQkvWidth * sizeof(bf16), cudaMemcpyDeviceToDevice, s));
  }
  const auto host = host_work(st, l, kind, b);
  part(st, Part::kAttention);
  fence_streams(st);
  core(Run{true, true, kind.hosted ? &host : nullptr});
  join_streams(st);
  part(st, Part::kProjections);
  // dQ's GEMMs (dWq, da = dq Wq), unless the schedule ran them beside its collective.
  if (!kind.hosts_q_grads) q_grads(st, l, kind, b);
  // A grouped linear layer: each group's dk, dv summed into its kv head (st.dattn is free again: the schedule
  // has read d(attn) from b.do_).
  bf16* dk = kind.expand_kv ? st.dattn : b.dk;
  bf16* dv = kind.expand_kv ? st.dattn + kRows * kv_width : b.dv;
  if (kind.expand_kv) {
    sum_kv_head_groups(b.dk, dk, kRows, kind.kv_heads, program::kHeads, program::kHeadDim, s);
    sum_kv_head_groups(b.dv, dv, kRows, kind.kv_heads, program::kHeads, program::kHeadDim, s);
  }
  if (kind.feature_map != 0)
    feature_map_backward(st.acts[layer.a.pre_k], dk, dk, kRows * kv_width, kind.feature_map, s);
  if (kind.softmax)
    rope_apply(b.dk, program::kBatch, program::kLocalTokens, kind.kv_heads, program::kHeadDim, program::kPieceMaps[st.layout.sp_rank], kind.rope_inv_freq, true, s);
  matmul(st.blas, true, false, kv_width, hidden, rows, dk, a, st.grads[w.wk]);
  matmul(st.blas, true, false, kv_width, hidden, rows, dv, a, st.grads[w.wv]);
  // da = dq Wq + dk Wk + dv Wv, then the norm's backward into dx.
  matmul(st.blas, false, false, rows, hidden, kv_width, dk, st.params[w.wk], st.dnormed, 1.0f);
  matmul(st.blas, false, false, rows, hidden, kv_width, dv, st.params[w.wv], st.dnormed, 1.0f);
  part(st, Part::kNorms);
  block_norm_backward(st, w.attn_norm, w.attn_norm_bias, layer.s.attn_rstd, layer.s.attn_mean, input, false);
  // The layer's weight gradients are complete: they are summed over every rank (sequence pieces and data
  // replicas) on their own stream while the next layer's backward runs.
  sum_block(st, w.attn_norm, w.w_down);
}

// After layer 0's backward: the embedding's gradient (a deterministic scatter-add of dx by token; with a tied
// head, added to the head's), summed over every rank; then the compute stream waits for every sum.
// `layers_done`, when given, is recorded on the compute stream once every layer is issued, before the wait.
inline void finish_backward(State& st, cudaEvent_t layers_done) {
  const HeadDesc& h = st.model.head;
  part(st, Part::kEmbedding);
  embedding_backward(st.sort, st.dx, st.grads[h.embedding], program::kHidden, st.ctx.compute);
  sum_block(st, h.embedding, h.embedding);
  join_streams(st);
  if (layers_done != nullptr) CUDA_CHECK(cudaEventRecord(layers_done, st.ctx.compute));
  part(st, Part::kGradientWait);
  CUDA_CHECK(cudaEventRecord(st.grads_done, st.grad));
  CUDA_CHECK(cudaStreamWaitEvent(st.ctx.compute, st.grads_done, 0));
}

// The step's loss: the mean over every target of every rank (waits for the step).
inline double step_loss(State& st) {
  double sum = 0;
  CUDA_CHECK(cudaMemcpyAsync(&sum, st.loss_sum, sizeof(double), cudaMemcpyDeviceToHost, st.ctx.compute));
  CUDA_CHECK(cudaStreamSynchronize(st.ctx.compute));
  return st.target_total > 0 ? sum / st.target_total : 0.0;
}

}  // namespace lasp
