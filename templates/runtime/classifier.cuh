// Cross-entropy over the LM head's logits, forward and backward, one chunk of tokens at a time: the row kernel
// and the loss's sums. The chunk loop with its GEMMs is lm_head.cuh (it needs cuBLAS; this file only CUDA).
//
// Design choices:
// - The logits of all tokens are never held at once (16K tokens x 128256 x 2 bytes = 4 GiB): the tokens go
//   through in chunks of `chunk` rows. Per chunk: logits = x_chunk W^T (cuBLAS, bf16 in, fp32 accumulation,
//   bf16 out into a [chunk][vocab] buffer), then one kernel per row computes the max and log-sum-exp in fp32
//   (an online softmax over the row, one block per row), the row's loss lse - z[target], and writes
//   dlogits = (softmax - onehot) / count over the logits in place; then dx_chunk = dlogits W and
//   dW += dlogits^T x_chunk (fp32 output, so the sum over chunks and steps' tokens is accumulated in fp32).
//   Bytes per chunk beside the GEMMs: the logits written once, read twice, written once.
// - bf16 logits, as llm.c: the loss moves by about 2^-9 of a logit per token at most and averages out over
//   tokens; the GEMM operand dlogits must be bf16 anyway, and the buffer is half the size of an fp32 one.
// - Targets are int32 per token; -1 means "no target" (the last token of the sequence, unmasked positions of
//   a masked-token objective): loss 0 and a zero gradient row. The loss is the exact mean over all tokens of
//   all ranks, so the gradient scale 1/count is an input: count_targets gives the local count, the caller
//   sums it over ranks (a known number for next-token prediction) before the backward. Per-token losses go to
//   an fp32 array; loss_sum adds them in fp64 in a fixed order (one block), so the reported loss is the same
//   bits on every run.
// - With dx == nullptr only the loss is computed (evaluation): no gradient is written and the backward GEMMs
//   are skipped.
// - The row kernel uses 16-byte loads when vocab is a multiple of 8 (128256 is), element loads otherwise.
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cfloat>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "types.cuh"
#include "check.cuh"

namespace lasp {

namespace classifier {

constexpr int kRowThreads = 1024;

union Pack8 {
  int4 v;
  __nv_bfloat162 h[4];
};

// Merges (max, sum of exp(z - max)) pairs; an empty side (max -inf) leaves the other unchanged.
__device__ __forceinline__ void merge(float& m, float& s, float mo, float so) {
  if (mo == -INFINITY) return;
  if (m == -INFINITY) {
    m = mo;
    s = so;
    return;
  }
  const float mn = fmaxf(m, mo);
  s = s * __expf(m - mn) + so * __expf(mo - mn);
  m = mn;
}

// One block per row of the chunk. Pass 1: the row's max and sum of exponentials (online). Pass 2 (grad): each
// thread rewrites the elements it read, so no element is read after another thread wrote it.
template <bool VEC>
__global__ void __launch_bounds__(kRowThreads)
    softmax_xent_kernel(bf16* logits, const int* __restrict__ targets, float* __restrict__ losses, int vocab,
                        float inv_count, int grad) {
  __shared__ float shared_m[32], shared_s[32];
  bf16* z = logits + (size_t)blockIdx.x * vocab;
  const int target = targets[blockIdx.x];
  // Read before any thread can overwrite it in pass 2 (the reductions below hold barriers).
  const float z_target = (threadIdx.x == 0 && target >= 0) ? __bfloat162float(z[target]) : 0.f;
  float m = -INFINITY, s = 0.f;
  if (VEC) {
    for (int c = threadIdx.x; c < vocab / 8; c += blockDim.x) {
      Pack8 p;
      p.v = reinterpret_cast<const int4*>(z)[c];
      float f[8], mc = -INFINITY;
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const float2 t = __bfloat1622float2(p.h[u]);
        f[2 * u] = t.x;
        f[2 * u + 1] = t.y;
        mc = fmaxf(mc, fmaxf(t.x, t.y));
      }
      float sc = 0.f;
#pragma unroll
      for (int e = 0; e < 8; ++e) sc += __expf(f[e] - mc);
      merge(m, s, mc, sc);
    }
  } else {
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) merge(m, s, __bfloat162float(z[j]), 1.f);
  }
  for (int off = 16; off > 0; off >>= 1) {
    const float mo = __shfl_xor_sync(0xffffffffu, m, off), so = __shfl_xor_sync(0xffffffffu, s, off);
    merge(m, s, mo, so);
  }
  if ((threadIdx.x & 31) == 0) {
    shared_m[threadIdx.x >> 5] = m;
    shared_s[threadIdx.x >> 5] = s;
  }
  __syncthreads();
  m = -INFINITY;
  s = 0.f;
  for (int w = 0; w < (int)(blockDim.x >> 5); ++w) merge(m, s, shared_m[w], shared_s[w]);  // same order everywhere
  const float lse = m + __logf(s);
  if (threadIdx.x == 0) losses[blockIdx.x] = target >= 0 ? lse - z_target : 0.f;
  if (!grad) return;
  const float scale = target >= 0 ? inv_count : 0.f;
  if (VEC) {
    for (int c = threadIdx.x; c < vocab / 8; c += blockDim.x) {
      Pack8 p;
      p.v = reinterpret_cast<const int4*>(z)[c];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const float2 t = __bfloat1622float2(p.h[u]);
        const int j = 8 * c + 2 * u;
        const float g0 = (__expf(t.x - lse) - (j == target ? 1.f : 0.f)) * scale;
        const float g1 = (__expf(t.y - lse) - (j + 1 == target ? 1.f : 0.f)) * scale;
        p.h[u] = __floats2bfloat162_rn(g0, g1);
      }
      reinterpret_cast<int4*>(z)[c] = p.v;
    }
  } else {
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
      const float t = __bfloat162float(z[j]);
      z[j] = __float2bfloat16((__expf(t - lse) - (j == target ? 1.f : 0.f)) * scale);
    }
  }
}

// One block of 1024 threads: thread i sums elements i, i + 1024, ... in fp64, then a fixed tree.
__global__ void __launch_bounds__(1024) loss_sum_kernel(const float* __restrict__ losses, int n, double* out) {
  __shared__ double part[1024];
  double s = 0.0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s += losses[i];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if ((int)threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = part[0];
}

__global__ void __launch_bounds__(1024) count_targets_kernel(const int* __restrict__ targets, int n, int* out) {
  __shared__ int part[1024];
  int c = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) c += targets[i] >= 0;
  part[threadIdx.x] = c;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if ((int)threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = part[0];
}

}  // namespace classifier

// For each of `rows` rows of logits [rows][vocab] (bf16) with targets[rows] (-1: none): losses[r] = lse - z[target]
// (0 without a target), and with grad the row overwritten by (softmax - onehot) * inv_count (0 without a target).
void classifier_rows(bf16* logits, const int* targets, float* losses, int rows, int vocab, float inv_count, bool grad,
                     cudaStream_t s) {
  if (rows <= 0) return;
  if (vocab % 8 == 0)
    classifier::softmax_xent_kernel<true><<<rows, classifier::kRowThreads, 0, s>>>(logits, targets, losses, vocab,
                                                                                    inv_count, grad);
  else
    classifier::softmax_xent_kernel<false><<<rows, classifier::kRowThreads, 0, s>>>(logits, targets, losses, vocab,
                                                                                     inv_count, grad);
  LAUNCH_CHECK();
}

// *out = the sum of losses[0..n) in fp64, the same bits on every run.
void loss_sum(const float* losses, int n, double* out, cudaStream_t s) {
  classifier::loss_sum_kernel<<<1, 1024, 0, s>>>(losses, n, out);
  LAUNCH_CHECK();
}

// *out = the number of targets >= 0 among targets[0..n).
void count_targets(const int* targets, int n, int* out, cudaStream_t s) {
  classifier::count_targets_kernel<<<1, 1024, 0, s>>>(targets, n, out);
  LAUNCH_CHECK();
}

}  // namespace lasp
