// Train mode's fp32 master weights, held as two 16-bit halves: the bf16 weights the model computes with (the
// high half, rounded) and a plane of low halves, so the master costs 2 bytes per parameter more than the
// weights instead of 4, and AdamW moves 2 bytes fewer per parameter and step.
//
// Design choices:
// - Exact: a master value's 32 bits are (hi << 16) + lo, hi the bf16 weight's bits, lo a signed 16-bit
//   remainder; any fp32 value goes in and comes back bit for bit (master_join(master_split(w)) == w).
// - hi is the master rounded to nearest, ties away from zero: the bit pattern plus 0x8000, cut to 16 bits
//   (a carry into the exponent is the correct rounding up). Ties to even, as __float2bfloat16_rn rounds, cannot
//   be undone from 16 remaining bits: both neighbours of a tie would be even-hi codes with the same remainder.
//   So the compute weights differ from round-to-nearest-even only on exact ties (low 16 bits exactly 0x8000).
// - lo = bits - (hi << 16) lies in [-32768, 32767]; kept as its two's complement in uint16_t.
// - Non-finite masters never reach here (a non-finite gradient norm stops the run before the update); the
//   arithmetic is on unsigned integers, defined for every pattern, exact for every finite one.
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "check.cuh"
#include "master_bits.cuh"  // high, low, join: the halves' bit arithmetic
#include "types.cuh"  // bf16

namespace lasp {

namespace master_weights {

__host__ __device__ inline uint32_t float_bits(float w) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(w);
#else
  uint32_t u;
  std::memcpy(&u, &w, 4);
  return u;
#endif
}

__host__ __device__ inline float bits_float(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float w;
  std::memcpy(&w, &u, 4);
  return w;
#endif
}

__host__ __device__ inline uint16_t bf16_bits(bf16 h) {
  __nv_bfloat16_raw raw = h;
  return raw.x;
}

__host__ __device__ inline bf16 bits_bf16(uint16_t u) {
  __nv_bfloat16_raw raw;
  raw.x = u;
  return bf16(raw);
}

}  // namespace master_weights

// The master value of weight `hi` and remainder `lo`.
__host__ __device__ inline float master_join(bf16 hi, uint16_t lo) {
  return master_weights::bits_float(master_bits::join(master_weights::bf16_bits(hi), lo));
}

// The compute weight (w rounded to bf16, ties away from zero) and the remainder that gives w back.
__host__ __device__ inline void master_split(float w, bf16* hi, uint16_t* lo) {
  const uint32_t bits = master_weights::float_bits(w);
  const uint16_t high = master_bits::high(bits);
  *hi = master_weights::bits_bf16(high);
  *lo = master_bits::low(bits, high);
}

namespace master_weights {

constexpr int kThreads = 256;

inline int grid_for(size_t n) {
  const size_t blocks = (n + kThreads - 1) / kThreads;
  const size_t cap = 132 * 16;
  return (int)(blocks < 1 ? 1 : blocks < cap ? blocks : cap);
}

__global__ void join_kernel(const bf16* __restrict__ hi, const uint16_t* __restrict__ lo,
                            float* __restrict__ out, size_t n) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    out[i] = master_join(hi[i], lo[i]);
}

__global__ void split_kernel(const float* __restrict__ in, bf16* __restrict__ hi,
                             uint16_t* __restrict__ lo, size_t n) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    master_split(in[i], hi + i, lo + i);
}

}  // namespace master_weights

// (Defined here for kernels.cu; main.cu's code calls them through kernels.h.)
// out[i] = the fp32 master of weights[i] and low[i] (a checkpoint's `master` tensor), on stream s.
void master_to_f32(const bf16* weights, const uint16_t* low, float* out, size_t n, cudaStream_t s) {
  if (n == 0) return;
  master_weights::join_kernel<<<master_weights::grid_for(n), master_weights::kThreads, 0, s>>>(weights, low, out, n);
  LAUNCH_CHECK();
}

// weights[i], low[i] = the halves of the fp32 master in[i] (a resumed checkpoint's), on stream s.
void master_from_f32(const float* in, bf16* weights, uint16_t* low, size_t n, cudaStream_t s) {
  if (n == 0) return;
  master_weights::split_kernel<<<master_weights::grid_for(n), master_weights::kThreads, 0, s>>>(in, weights, low, n);
  LAUNCH_CHECK();
}

}  // namespace lasp
