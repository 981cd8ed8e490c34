// One layer of the stack, forward and backward, around its attention core (the layer kind's schedule in
// program.cuh): Q, K, V projections (cuBLAS; K and V over the kv heads) -> feature map (linear attention)
// or rotary embedding at the rows' global positions (softmax attention) -> the attention core on the
// compute and communication streams -> output RMSNorm -> O projection -> residual. The backward pass runs
// the same in reverse and issues the layer's weight-gradient sum as soon as its weight gradients exist.
//
// Design choices:
// - A hosted kind's schedule places the Q projection (forward) and dWo (backward) itself, beside the
//   collective they overlap (`host` steps): the layer then leaves them to the core, through HostFn (run.cuh).
// - cuBLAS's Hopper GEMMs hold every SM until they end, so a collective issued beside one would start only
//   after it: a host step that leaves SMs plans its GEMM for that many fewer (cublasSetSmCountTarget).
// - The weight-gradient sum is issued before the input gradient's GEMMs: the last layer of the backward
//   would otherwise have nothing left to overlap it.
#pragma once
#include <cuda_runtime.h>  // cudaMemcpyAsync, events
#include <cublas_v2.h>     // cublasSetSmCountTarget
#include <utility>         // std::swap
#include "blas.cuh"        // matmul
#include "grad_sum.cuh"    // sum_gradients
#include "run.cuh"         // Run, HostWork, HostFn
#include "kernels.h"       // rope_apply, feature maps, rms_norm, add_inplace, fill_normal
#include "state.cuh"       // State, LayerKind, LayerDesc

namespace lasp {

// Q = X Wq of layer l with what follows it on q: RoPE (softmax) or the feature map (linear attention).
template <typename Buffers>
inline void q_projection(State& st, int l, const LayerKind& kind, Buffers& b) {
  const LayerDesc& layer = st.model.layers[l];
  matmul(st.blas, false, false, (int)kRows, (int)kQkvWidth, program::kHidden, st.acts[layer.x], st.params[layer.wq], b.q);
  if (kind.softmax)
    rope_apply(b.q, program::kBatch, program::kLocalTokens, program::kHeads, program::kHeadDim, program::kPieceMaps[st.layout.sp_rank], kind.rope_theta, false, st.ctx.compute);
  if (kind.feature_map != 0) {
    CUDA_CHECK(cudaMemcpyAsync(st.acts[layer.pre_q], b.q, kRows * kQkvWidth * sizeof(bf16), cudaMemcpyDeviceToDevice, st.ctx.compute));
    feature_map_forward(b.q, kRows * kQkvWidth, kind.feature_map, st.ctx.compute);
  }
}

// dWo = attn^T dY of layer l (dY = st.dx; attn = the normed output, or o without the norm).
template <typename Buffers>
inline void o_weight_grad(State& st, int l, const LayerKind& kind, Buffers& b) {
  const LayerDesc& layer = st.model.layers[l];
  bf16* attn = kind.output_norm ? st.acts[layer.normed] : b.o;
  matmul(st.blas, true, false, (int)kQkvWidth, program::kHidden, (int)kRows, attn, st.dx, st.grads[layer.wo]);
}

// What a hosted kind's `host` steps run (Run::host): the projection the step stands for, leaving
// `leave_sms` SMs to the collective beside it.
template <typename Buffers>
inline HostFn host_work(State& st, int l, const LayerKind& kind, Buffers& b) {
  return [&st, l, &kind, &b](HostWork work, int leave_sms) {
    if (leave_sms > 0) CUBLAS_CHECK(cublasSetSmCountTarget(st.blas, st.sms - leave_sms));
    if (work == HostWork::kQProjection) q_projection(st, l, kind, b);
    else o_weight_grad(st, l, kind, b);
    if (leave_sms > 0) CUBLAS_CHECK(cublasSetSmCountTarget(st.blas, 0));
  };
}

// Layer l forward; `core(run)` issues the kind's forward pass on the layer's buffers.
template <typename Buffers, typename Core>
inline void layer_forward(State& st, int l, const LayerKind& kind, Buffers& b, Core core) {
  const int hidden = program::kHidden, width = (int)kQkvWidth, rows = (int)kRows;
  const int kv_width = kind.kv_width;
  const LayerDesc& layer = st.model.layers[l];
  bf16* x = st.acts[layer.x];
  const PieceMap& map = program::kPieceMaps[st.layout.sp_rank];
  if (!kind.hosted) q_projection(st, l, kind, b);
  matmul(st.blas, false, false, rows, kv_width, hidden, x, st.params[layer.wk], b.k);
  matmul(st.blas, false, false, rows, kv_width, hidden, x, st.params[layer.wv], b.v);
  // Rotary embedding at the rows' global positions: the same rotation for any layout and GPU count.
  if (kind.softmax)
    rope_apply(b.k, program::kBatch, program::kLocalTokens, kind.kv_heads, program::kHeadDim, map, kind.rope_theta, false, st.ctx.compute);
  if (kind.feature_map != 0) {
    CUDA_CHECK(cudaMemcpyAsync(st.acts[layer.pre_k], b.k, kRows * kQkvWidth * sizeof(bf16), cudaMemcpyDeviceToDevice, st.ctx.compute));
    feature_map_forward(b.k, kRows * kQkvWidth, kind.feature_map, st.ctx.compute);
  }
  // A hosted kind's schedule calls the Q projection itself, beside the collective of the states it
  // computes from K and V first.
  const auto host = host_work(st, l, kind, b);
  fence_streams(st);
  core(Run{true, true, kind.hosted ? &host : nullptr});
  join_streams(st);
  bf16* attn = b.o;
  if (kind.output_norm) {
    rms_norm_forward(b.o, st.acts[layer.normed], kRows * program::kHeads, program::kHeadDim, program::kNormEps, st.ctx.compute);
    attn = st.acts[layer.normed];
  }
  matmul(st.blas, false, false, rows, hidden, width, attn, st.params[layer.wo], st.y);
  bf16* out = st.acts[layer.out];
  CUDA_CHECK(cudaMemcpyAsync(out, x, kRows * hidden * sizeof(bf16), cudaMemcpyDeviceToDevice, st.ctx.compute));
  add_inplace(out, st.y, kRows * hidden, st.ctx.compute);
}

// Layer l backward, from st.dx (the gradient of its output) to st.dx (the gradient of its input);
// `core(run)` issues the kind's backward pass.
template <typename Buffers, typename Core>
inline void layer_backward(State& st, int l, const LayerKind& kind, Buffers& b, Core core) {
  const int hidden = program::kHidden, width = (int)kQkvWidth, rows = (int)kRows;
  const int kv_width = kind.kv_width;
  const LayerDesc& layer = st.model.layers[l];
  bf16* x = st.acts[layer.x];
  // dy = dx; d(attn) = dy Wo^T; dWo = attn^T dy (a hosted kind's schedule runs it beside its collective)
  matmul(st.blas, false, true, rows, width, hidden, st.dx, st.params[layer.wo], st.dnormed);
  if (!kind.hosted) o_weight_grad(st, l, kind, b);
  if (kind.output_norm) {
    rms_norm_backward(b.o, st.dnormed, b.do_, kRows * program::kHeads, program::kHeadDim, program::kNormEps, st.ctx.compute);
  } else {
    CUDA_CHECK(cudaMemcpyAsync(b.do_, st.dnormed, kRows * kQkvWidth * sizeof(bf16), cudaMemcpyDeviceToDevice, st.ctx.compute));
  }
  const auto host = host_work(st, l, kind, b);
  fence_streams(st);
  core(Run{true, true, kind.hosted ? &host : nullptr});
  join_streams(st);
  if (kind.feature_map != 0) {
    feature_map_backward(st.acts[layer.pre_q], b.dq, b.dq, kRows * kQkvWidth, kind.feature_map, st.ctx.compute);
    feature_map_backward(st.acts[layer.pre_k], b.dk, b.dk, kRows * kQkvWidth, kind.feature_map, st.ctx.compute);
  }
  if (kind.softmax) {
    // The rotation is orthogonal: its backward is the inverse rotation.
    const PieceMap& map = program::kPieceMaps[st.layout.sp_rank];
    rope_apply(b.dq, program::kBatch, program::kLocalTokens, program::kHeads, program::kHeadDim, map, kind.rope_theta, true, st.ctx.compute);
    rope_apply(b.dk, program::kBatch, program::kLocalTokens, kind.kv_heads, program::kHeadDim, map, kind.rope_theta, true, st.ctx.compute);
  }
  matmul(st.blas, true, false, hidden, width, rows, x, b.dq, st.grads[layer.wq]);
  matmul(st.blas, true, false, hidden, kv_width, rows, x, b.dk, st.grads[layer.wk]);
  matmul(st.blas, true, false, hidden, kv_width, rows, x, b.dv, st.grads[layer.wv]);
  // The weight gradients are complete: they are summed over every rank (sequence pieces and data replicas)
  // on their own stream and communicator while the input gradient below and the next layer's backward run.
  CUDA_CHECK(cudaEventRecord(st.grads_ready, st.ctx.compute));
  CUDA_CHECK(cudaStreamWaitEvent(st.grad, st.grads_ready, 0));
  sum_gradients(layer_block(st.grads, layer), layer_block_elements(st.grads, layer), st.grad_parts, st.comms,
                st.layout.rank, st.layout.world, st.grad);
  // dx_prev = dx + dq Wq^T + dk Wk^T + dv Wv^T
  CUDA_CHECK(cudaMemcpyAsync(st.dx_prev, st.dx, kRows * hidden * sizeof(bf16), cudaMemcpyDeviceToDevice, st.ctx.compute));
  matmul(st.blas, false, true, rows, hidden, width, b.dq, st.params[layer.wq], st.dx_prev, 1.0f);
  matmul(st.blas, false, true, rows, hidden, kv_width, b.dk, st.params[layer.wk], st.dx_prev, 1.0f);
  matmul(st.blas, false, true, rows, hidden, kv_width, b.dv, st.params[layer.wv], st.dx_prev, 1.0f);
  std::swap(st.dx, st.dx_prev);
}

// The gradient the backward pass starts from: deterministic, as the inputs (the loss's, once the model
// has its head).
inline void seed_output_gradient(State& st) {
  fill_normal(st.dx, program::kBatch, program::kLocalTokens, program::kHidden, program::kPieceMaps[st.layout.sp_rank],
              program::kSeqLen, st.opt.seed + st.layout.dp_rank, 2, 1.0f, st.ctx.compute);
}

// After the last layer's backward: `layers_done`, when given, is recorded on the compute stream once every
// layer is issued, before the wait for the last weight-gradient sums.
inline void finish_backward(State& st, cudaEvent_t layers_done) {
  join_streams(st);
  if (layers_done != nullptr) CUDA_CHECK(cudaEventRecord(layers_done, st.ctx.compute));
  CUDA_CHECK(cudaEventRecord(st.grads_done, st.grad));
  CUDA_CHECK(cudaStreamWaitEvent(st.ctx.compute, st.grads_done, 0));
}

}  // namespace lasp
