// The global gradient norm's partial: the sum of squares of one rank's fp32 gradient range (its ZeRO-1 shard,
// or the whole buffer when the update is replicated). The caller adds the ranks' partials (one double each)
// and takes the clip factor from the total (lr_schedule.cuh clip_factor), so the norm is exact over all shards.
//
// Design choices:
// - Deterministic: the grid depends only on the element count (at most kMaxBlocks blocks of kThreads), never on
//   the GPU; thread t of block b sums elements b * kThreads + t, then every grid's width further, in index
//   order; each block adds its threads' sums in a fixed tree (the warp's xor butterfly, then the warps in
//   order) into one partial; a second kernel of one warp adds the partials in a fixed order. No atomics: the
//   same gradients give the same bits on every run and every card.
// - fp64 from the first square on: a shard of 10^9 elements summed in fp32 would lose the small squares to the
//   large; the reads (4 bytes an element) bound the kernel long before the fp64 adds do.
// - Scalar coalesced loads: alignment-free, so any range of the flat buffer works; consecutive threads read
//   consecutive words, which is what the memory system needs.
// - The per-thread sums and the tree are `__host__ __device__` helpers, and `grad_norm_reference` runs the
//   kernels' exact order on the host, so a host test checks the arithmetic without a GPU.
#pragma once
#include <cuda_runtime.h>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "check.cuh"

namespace lasp {

namespace grad_norm {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 1024;
constexpr int kWarps = kThreads / 32;

// Blocks of the first pass: one per kThreads elements, at most kMaxBlocks; a function of n alone.
__host__ __device__ inline int blocks_for(size_t n) {
  const size_t b = (n + kThreads - 1) / kThreads;
  return b < 1 ? 1 : b > (size_t)kMaxBlocks ? kMaxBlocks : (int)b;
}

// Sum of x[i]^2 (in fp64) for i = first, first + stride, ... below n, in that order. Four loads are issued
// before their squares are added (still in index order): one load in flight per thread left the kernel at
// three quarters of the memory's rate.
__host__ __device__ inline double strided_squares(const float* x, size_t n, size_t first, size_t stride) {
  double s = 0.0;
  size_t i = first;
  for (; i + 3 * stride < n; i += 4 * stride) {
    const double v0 = x[i], v1 = x[i + stride], v2 = x[i + 2 * stride], v3 = x[i + 3 * stride];
    s = fma(v0, v0, s);
    s = fma(v1, v1, s);
    s = fma(v2, v2, s);
    s = fma(v3, v3, s);
  }
  for (; i < n; i += stride) {
    const double v = x[i];
    s = fma(v, v, s);
  }
  return s;
}

// Sum of p[i] for i = first, first + stride, ... below n, in that order.
__host__ __device__ inline double strided_sum(const double* p, size_t n, size_t first, size_t stride) {
  double s = 0.0;
  for (size_t i = first; i < n; i += stride) s += p[i];
  return s;
}

// What lane 0 holds after the xor butterfly over 32 lanes' values (each lane adds its partner's to its own).
inline double warp_tree_host(double lanes[32]) {
  for (int off = 16; off > 0; off >>= 1)
    for (int l = 0; l < off; ++l) lanes[l] = lanes[l] + lanes[l + off];
  return lanes[0];
}

__device__ __forceinline__ double warp_tree(double v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

__global__ void __launch_bounds__(kThreads) partial_kernel(const float* __restrict__ x, size_t n,
                                                           double* __restrict__ partials) {
  __shared__ double warps[kWarps];
  const double s = warp_tree(strided_squares(x, n, (size_t)blockIdx.x * kThreads + threadIdx.x,
                                             (size_t)gridDim.x * kThreads));
  if ((threadIdx.x & 31) == 0) warps[threadIdx.x >> 5] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    double b = 0.0;
    for (int w = 0; w < kWarps; ++w) b += warps[w];
    partials[blockIdx.x] = b;
  }
}

__global__ void total_kernel(const double* __restrict__ partials, int blocks, double* __restrict__ out) {
  const double s = warp_tree(strided_sum(partials, blocks, threadIdx.x, 32));
  if (threadIdx.x == 0) *out = s;
}

}  // namespace grad_norm

// Scratch of the first pass: one double per block.
size_t grad_norm_scratch_bytes(size_t n) { return (size_t)grad_norm::blocks_for(n) * sizeof(double); }

// The kernels' sum on the host, in their exact order (for tests; a reference, not a fallback).
inline double grad_norm_reference(const float* x, size_t n) {
  const int blocks = grad_norm::blocks_for(n);
  std::vector<double> partials(blocks);
  for (int b = 0; b < blocks; ++b) {
    double warps[grad_norm::kWarps];
    for (int w = 0; w < grad_norm::kWarps; ++w) {
      double lanes[32];
      for (int l = 0; l < 32; ++l)
        lanes[l] = grad_norm::strided_squares(x, n, (size_t)b * grad_norm::kThreads + w * 32 + l,
                                              (size_t)blocks * grad_norm::kThreads);
      warps[w] = grad_norm::warp_tree_host(lanes);
    }
    double s = 0.0;
    for (int w = 0; w < grad_norm::kWarps; ++w) s += warps[w];
    partials[b] = s;
  }
  double lanes[32];
  for (int l = 0; l < 32; ++l) lanes[l] = grad_norm::strided_sum(partials.data(), blocks, l, 32);
  return grad_norm::warp_tree_host(lanes);
}

// *out (device, one double) = sum of x[i]^2 over the n elements of x, on stream s. `scratch` holds
// grad_norm_scratch_bytes(n).
void grad_norm_squared(const float* x, size_t n, double* out, double* scratch, size_t scratch_bytes,
                       cudaStream_t s) {
  if (out == nullptr || scratch == nullptr || (n > 0 && x == nullptr)) {
    std::fprintf(stderr, "grad_norm_squared: x, out and scratch must be given\n");
    std::exit(LASP_EXIT_CODE_FAILURE);
  }
  if (scratch_bytes < grad_norm_scratch_bytes(n)) {
    std::fprintf(stderr, "grad_norm_squared: scratch of %zu bytes, %zu elements need %zu\n", scratch_bytes, n,
                 grad_norm_scratch_bytes(n));
    std::exit(LASP_EXIT_CODE_FAILURE);
  }
  const int blocks = grad_norm::blocks_for(n);
  grad_norm::partial_kernel<<<blocks, grad_norm::kThreads, 0, s>>>(x, n, scratch);
  LAUNCH_CHECK();
  grad_norm::total_kernel<<<1, 32, 0, s>>>(scratch, blocks, out);
  LAUNCH_CHECK();
}

}  // namespace lasp
