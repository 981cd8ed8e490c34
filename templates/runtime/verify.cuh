// verify mode: each layer kind's schedule on deterministic inputs against a dense fp32 oracle over the whole
// sequence (the output and dQ, dK, dV), and the weight-gradient sum over every rank.
//
// Design choices:
// - Inputs are a function of the global token position (model.cuh): each rank fills its own rows, and the
//   oracle fills the whole sequence with the same numbers on every rank, then takes the rank's rows of its
//   result (gather_rows). No data moves between ranks except the largest error.
// - Softmax scores get unit variance (q, k ~ N(0, 1), scaled by 1/sqrt(d) inside); linear attention's q and
//   k are scaled down by LayerKind::verify_scale.
// - The error is the largest relative error over the sequence-parallel group; a NaN fails.
#pragma once
#include <cuda_runtime.h>  // device memory, copies
#include "nccl_api.cuh"  // the largest error over the group
#include <cstdint>         // int64_t
#include "grad_sum.cuh"    // gradient_sum_error
#include "kernels.h"       // fill_normal, the oracles, gather_rows, max_rel_err
#include "report.cuh"      // emit, say
#include "run.cuh"         // Run
#include "state.cuh"       // State, LayerKind, KindPasses

namespace lasp {

// The oracle's whole-sequence inputs and results, shared by the kinds.
struct Oracle {
  bf16 *q, *k, *v, *dout;  // [B][N][H d]
  float* ref;              // o, then dq, dk, dv: 3 x [B][N][H d]
  float* ref_local;        // the rank's rows of one of them
  float* errors;           // the four errors, for the reduction over the group
  float* lse;              // log-sum-exp of the softmax oracle [B][N][H]
  size_t full;             // elements of one whole-sequence tensor
};

inline Oracle make_oracle() {
  Oracle o;
  o.full = (size_t)program::kBatch * program::kSeqLen * kQkvWidth;
  CUDA_CHECK(cudaMalloc(&o.q, o.full * sizeof(bf16)));
  CUDA_CHECK(cudaMalloc(&o.k, o.full * sizeof(bf16)));
  CUDA_CHECK(cudaMalloc(&o.v, o.full * sizeof(bf16)));
  CUDA_CHECK(cudaMalloc(&o.dout, o.full * sizeof(bf16)));
  CUDA_CHECK(cudaMalloc(&o.ref, 3 * o.full * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&o.ref_local, kRows * kQkvWidth * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&o.errors, 4 * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&o.lse, (size_t)program::kBatch * program::kSeqLen * program::kHeads * sizeof(float)));
  return o;
}

inline void free_oracle(Oracle& o) {
  for (void* p : {(void*)o.q, (void*)o.k, (void*)o.v, (void*)o.dout, (void*)o.ref, (void*)o.ref_local, (void*)o.errors,
                  (void*)o.lse})
    CUDA_CHECK(cudaFree(p));
  o = Oracle{};
}

// One layer kind's passes on its first layer's buffers against the oracle; emits a `verify` event per
// quantity. Returns whether all four are within program::kTolerance.
template <typename Buffers>
inline bool verify_kind(State& st, Oracle& oracle, const LayerKind& kind, const KindPasses<Buffers>& passes) {
  Buffers& b = passes.sets[0];
  const PieceMap& map = program::kPieceMaps[st.layout.sp_rank];
  const size_t local = kRows * kQkvWidth, full = oracle.full;
  const float tolerance = program::kTolerance;
  LinearDims whole = st.ctx.dims;
  whole.tokens = program::kSeqLen;
  cudaStream_t s = st.ctx.compute;
  const int B = program::kBatch, L = (int)program::kLocalTokens, W = (int)kQkvWidth;
  const int64_t N = program::kSeqLen;  // 64-bit: the sequence may hold 2^31 tokens
  // The width of k and v as the attention sees them: a grouped linear layer's are copied out to every head
  // before its schedule runs (layer.cuh).
  const int KW = kind.expand_kv ? W : kind.kv_width;
  const size_t local_kv = kRows * KW;
  const float in_scale = kind.verify_scale;
  fill_normal(b.q, B, L, W, map, N, st.opt.seed, 11, in_scale, s);
  fill_normal(b.k, B, L, KW, map, N, st.opt.seed, 12, in_scale, s);
  fill_normal(b.v, B, L, KW, map, N, st.opt.seed, 13, 1.0f, s);
  fill_normal(b.do_, B, L, W, map, N, st.opt.seed, 14, 1.0f, s);
  fence_streams(st);
  passes.forward(st.ctx, b, Run{});
  passes.backward(st.ctx, b, Run{});
  join_streams(st);
  fill_normal(oracle.q, B, N, W, program::kWholeSequence, N, st.opt.seed, 11, in_scale, s);
  fill_normal(oracle.k, B, N, KW, program::kWholeSequence, N, st.opt.seed, 12, in_scale, s);
  fill_normal(oracle.v, B, N, KW, program::kWholeSequence, N, st.opt.seed, 13, 1.0f, s);
  fill_normal(oracle.dout, B, N, W, program::kWholeSequence, N, st.opt.seed, 14, 1.0f, s);
  const char* names[4] = {"o", "dq", "dk", "dv"};
  const bf16* got[4] = {b.o, b.dq, b.dk, b.dv};
  const int widths[4] = {W, W, KW, KW};
  float err[4];
  float* ref = oracle.ref;
  if (kind.softmax)
    oracle_softmax_forward(oracle.q, oracle.k, oracle.v, ref, oracle.lse, B, N, program::kHeads, kind.kv_heads, program::kHeadDim, kind.causal, st.ctx.docs, s);
  else
    oracle_linear_forward(oracle.q, oracle.k, oracle.v, ref, whole, st.ctx.tables.*kind.decay, kind.causal, st.ctx.docs, s);
  gather_rows(ref, oracle.ref_local, B, L, W, map, N, s);
  err[0] = max_rel_err(got[0], oracle.ref_local, local, s);
  if (kind.softmax)
    oracle_softmax_backward(oracle.q, oracle.k, oracle.v, oracle.dout, ref, ref + full, ref + 2 * full, B, N, program::kHeads, kind.kv_heads, program::kHeadDim, kind.causal, st.ctx.docs, s);
  else
    oracle_linear_backward(oracle.q, oracle.k, oracle.v, oracle.dout, ref, ref + full, ref + 2 * full, whole, st.ctx.tables.*kind.decay, kind.causal, st.ctx.docs, s);
  for (int g = 1; g < 4; g++) {
    gather_rows(ref + (g - 1) * full, oracle.ref_local, B, L, widths[g], map, N, s);
    err[g] = max_rel_err(got[g], oracle.ref_local, widths[g] == W ? local : local_kv, s);
  }
  // The largest error over the sequence-parallel group.
  CUDA_CHECK(cudaMemcpyAsync(oracle.errors, err, sizeof(err), cudaMemcpyHostToDevice, s));
  NCCL_CHECK(ncclAllReduce(oracle.errors, oracle.errors, 4, ncclFloat32, ncclMax, st.comms.sp, s));
  CUDA_CHECK(cudaMemcpyAsync(err, oracle.errors, sizeof(err), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  bool ok = true;
  for (int g = 0; g < 4; g++) {
    bool good = err[g] <= tolerance && err[g] == err[g];
    ok = ok && good;
    emit("verify", "\"layer\":\"%s\",\"quantity\":\"%s\",\"max_rel_err\":%.3e,\"tolerance\":%.1e,\"ok\":%s", kind.name, names[g], err[g], tolerance, good ? "true" : "false");
  }
  say("verify %s (%s): o %.2e  dq %.2e  dk %.2e  dv %.2e  (tolerance %.0e)\n", kind.name, kind.strategy, err[0], err[1], err[2], err[3], tolerance);
  return ok;
}

// The weight-gradient sum over every rank, on the path the step takes (copy engines or NCCL's AllReduce),
// on the first layer's gradients. Returns whether it is within program::kTolerance.
inline bool verify_gradient_sum(State& st) {
  const LayerWeights& first = st.model.layers[0].w;
  const float tolerance = program::kTolerance;
  const float err = gradient_sum_error(block_start(st.grads, first.attn_norm), block_elements(st.grads, first.attn_norm, first.w_down), st.grad_parts,
                                       st.comms, st.layout.rank, st.layout.world, st.opt.seed, st.ctx.compute);
  const bool good = err <= tolerance;
  emit("verify", "\"layer\":\"weights\",\"quantity\":\"dw_sum\",\"max_rel_err\":%.3e,\"tolerance\":%.1e,\"ok\":%s", err, tolerance, good ? "true" : "false");
  say("verify the weight-gradient sum over %d ranks: %.2e  (tolerance %.0e)\n", st.layout.world, err, tolerance);
  return good;
}

}  // namespace lasp
