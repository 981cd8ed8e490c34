// Small kernels around softmax attention: the log-sum-exp merge of partial results (ring attention, split
// key sets), the fp32 -> bf16 cast of accumulated gradients, and rotary position embeddings.
//
// Design choices:
// - softmax_merge is mergeLse of src/reference/softmax-blocks.ts: m = max_p lse_p, w_p = exp(lse_p - m),
//   o = sum_p w_p o_p / sum_p w_p, lse = m + log sum_p w_p. Weights are taken relative to the max (exact 1
//   for the largest partial, nothing overflows) and divided once at the end. A partial whose weight is 0
//   (lse_p = -inf, or far below the max) is skipped without reading its o, so o_part may hold garbage (even
//   NaN) for rows that a block left empty. A row where every listed partial is -inf gets o = 0, lse = -inf.
//   A NaN lse anywhere in a row makes that row NaN (it is a bug upstream and must not be hidden). One warp
//   per (batch, row, head): lane l reads the lse of list entries l and l + 32, the warp reduces max and sum,
//   the weights go through shared memory, and the lanes stride over d (coalesced reads of each partial).
// - cast_to_bf16 rounds to nearest even (__float2bfloat16_rn), 4 elements per thread per step when both
//   pointers allow 16-byte / 8-byte vector access, element by element otherwise.
// - rope_apply is the Llama "rotate half" convention: for e < d/2, with a = pos * inv_freq[e] (theta^(-2e/d),
//   or that scaled as the spec's rope_scaling says: the compiler's table, src/model/rope.ts),
//     x'[e] = x[e] cos a - x[e + d/2] sin a,   x'[e + d/2] = x[e + d/2] cos a + x[e] sin a,
//   and inverse = true rotates by -a (the transpose, hence the backward of the forward: used on dq, dk).
//   pos is the GLOBAL position of the row (rope_global_row: the same rule as lasp::global_row). A local row
//   that no piece of the map covers is left unchanged (a map bug, not a position).
//   Precision: positions reach 1M and theta 500000, so an fp32 angle pos * inv_freq would be off by up to
//   ulp(1e6) = 0.06 rad, and an fp32 inv_freq by 1e6 * 6e-8 = 0.06 rad more (the common fp32 Llama code has
//   exactly these errors at long context). Here inv_freq is the compiler's double,
//   the angle pos * inv_freq is formed and reduced modulo 2 pi in double on the device (a few FP64 ops per
//   (row, e), shared by all heads), and only the reduced angle in [-pi, pi] goes to fp32 sincosf: the angle
//   error is ~1e-7 rad at any position, with or without --use_fast_math (__sincosf is accurate on [-pi, pi]).
//   The rotation itself is fp32 from the bf16 input, rounded once to bf16.
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "types.cuh"
#include "attention_args.cuh"
#include "check.cuh"

namespace lasp {

namespace smx_support {

constexpr int kMergeWarps = 8;  // rows per 256-thread CTA
constexpr int kMaxRopeHalf = 128;  // d <= 256

// The global position of local row `local` (same rule as lasp::global_row in model.cuh): count 0 means the
// rows are global already; -1 where no piece covers the row.
__host__ __device__ inline int rope_global_row(const PieceMap& m, int local) {
  if (m.count == 0) return local;
#pragma unroll
  for (int i = 0; i < 2; i++) {  // fixed trip count: the struct stays in registers, no stack frame
    if (i < m.count && local >= m.local_offset[i] && local < m.local_offset[i] + m.length[i])
      return m.global_start[i] + (local - m.local_offset[i]);
  }
  return -1;
}

inline unsigned grid_for(size_t work, int per_block) {
  size_t b = (work + per_block - 1) / per_block;
  if (b < 1) b = 1;
  return (unsigned)(b < (1u << 20) ? b : (1u << 20));
}

// rows_total = batch * rows * heads; o_part [slot][rows_total][d], lse_part [slot][rows_total].
__global__ void __launch_bounds__(32 * kMergeWarps)
    merge_kernel(const float* __restrict__ o_part, const float* __restrict__ lse_part, SlotList slots,
                 __nv_bfloat16* __restrict__ o, float* __restrict__ lse, size_t rows_total, int d) {
  __shared__ int s_slot[64];
  __shared__ float s_w[kMergeWarps][64];
  const int count = slots.count;
  for (int i = threadIdx.x; i < count; i += blockDim.x) s_slot[i] = slots.slot[i];
  __syncthreads();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const size_t o_stride = rows_total * (size_t)d;
  for (size_t row = (size_t)blockIdx.x * kMergeWarps + warp; row < rows_total;
       row += (size_t)gridDim.x * kMergeWarps) {
    float l0 = lane < count ? lse_part[(size_t)s_slot[lane] * rows_total + row] : -INFINITY;
    float l1 = lane + 32 < count ? lse_part[(size_t)s_slot[lane + 32] * rows_total + row] : -INFINITY;
    float m = fmaxf(l0, l1);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    if (__any_sync(0xffffffffu, isnan(l0) || isnan(l1))) m = NAN;  // fmaxf would drop it
    __nv_bfloat16* orow = o + row * d;
    if (m == -INFINITY) {  // no partial saw a key: the neutral element
      for (int e = lane; e < d; e += 32) orow[e] = __float2bfloat16_rn(0.f);
      if (lane == 0) lse[row] = -INFINITY;
      continue;
    }
    float w0 = expf(l0 - m), w1 = expf(l1 - m);  // exp(-inf) = 0 for absent or empty partials
    float sum = w0 + w1;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    s_w[warp][lane] = w0;
    s_w[warp][lane + 32] = w1;
    __syncwarp();
    for (int e = lane; e < d; e += 32) {
      float acc = 0.f;
      for (int p = 0; p < count; ++p) {
        float w = s_w[warp][p];
        if (w != 0.f) acc = fmaf(w, o_part[(size_t)s_slot[p] * o_stride + row * d + e], acc);
      }
      orow[e] = __float2bfloat16_rn(acc / sum);
    }
    if (lane == 0) lse[row] = m + logf(sum);
    __syncwarp();  // s_w is rewritten by the next row
  }
}

// dst = bf16(src); vec: 4 at a time (src 16-byte, dst 8-byte aligned), the first threads also do the tail.
__global__ void cast_kernel(const float* __restrict__ src, __nv_bfloat16* __restrict__ dst, size_t n, int vec) {
  const size_t tid = blockIdx.x * (size_t)blockDim.x + threadIdx.x, stride = (size_t)gridDim.x * blockDim.x;
  if (vec) {
    const size_t n4 = n / 4;
    const float4* s4 = reinterpret_cast<const float4*>(src);
    uint2* d4 = reinterpret_cast<uint2*>(dst);
    for (size_t i = tid; i < n4; i += stride) {
      float4 f = s4[i];
      __nv_bfloat162 lo = __floats2bfloat162_rn(f.x, f.y), hi = __floats2bfloat162_rn(f.z, f.w);
      uint2 u;
      u.x = *reinterpret_cast<const unsigned int*>(&lo);
      u.y = *reinterpret_cast<const unsigned int*>(&hi);
      d4[i] = u;
    }
    if (tid < n - 4 * n4) dst[4 * n4 + tid] = __float2bfloat16_rn(src[4 * n4 + tid]);
  } else {
    for (size_t i = tid; i < n; i += stride) dst[i] = __float2bfloat16_rn(src[i]);
  }
}

struct RopeFreqs {
  double inv_freq[kMaxRopeHalf];
};

// One thread per (batch, row, e < d/2), looping over the heads: the angle is computed once per (row, e).
__global__ void rope_kernel(__nv_bfloat16* __restrict__ x, int batch, int rows, int heads, int d, PieceMap map,
                            RopeFreqs freqs, float sign) {
  __shared__ double s_inv[kMaxRopeHalf];
  const int half = d / 2;
  for (int i = threadIdx.x; i < half; i += blockDim.x) s_inv[i] = freqs.inv_freq[i];
  __syncthreads();
  const size_t total = (size_t)batch * rows * half;
  const double two_pi = 6.283185307179586476925286766559;
  for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < total;
       idx += (size_t)gridDim.x * blockDim.x) {
    const int e = (int)(idx % half);
    const size_t br = idx / half;  // b * rows + row
    const int row = (int)(br % rows);
    const int pos = rope_global_row(map, row);
    if (pos < 0) continue;
    double a = (double)pos * s_inv[e];
    a -= rint(a * (1.0 / two_pi)) * two_pi;  // now in [-pi, pi] (up to rounding), error ~1e-16 * |a|
    float sn, cs;
    sincosf((float)a, &sn, &cs);
    sn *= sign;
    __nv_bfloat16* p = x + br * heads * (size_t)d + e;
    for (int h = 0; h < heads; ++h, p += d) {
      float x1 = __bfloat162float(p[0]), x2 = __bfloat162float(p[half]);
      p[0] = __float2bfloat16_rn(x1 * cs - x2 * sn);
      p[half] = __float2bfloat16_rn(x2 * cs + x1 * sn);
    }
  }
}

}  // namespace smx_support

// o (bf16 [batch][rows][heads][d], normalised) and lse (fp32 [batch][rows][heads]) from the partials listed in
// `slots`: o_part fp32 [slot][batch][rows][heads][d], lse_part fp32 [slot][batch][rows][heads].
void softmax_merge(const float* o_part, const float* lse_part, SlotList slots, bf16* o, float* lse, int batch,
                   int rows, int heads, int d, cudaStream_t s) {
  if (slots.count < 0 || slots.count > 64 || batch < 0 || rows < 0 || heads < 0 || d < 1) {
    std::fprintf(stderr, "lasp softmax_merge: bad arguments (count %d, batch %d, rows %d, heads %d, d %d)\n",
                 slots.count, batch, rows, heads, d);
    std::exit(3);
  }
  const size_t rows_total = (size_t)batch * rows * heads;
  if (rows_total == 0) return;
  smx_support::merge_kernel<<<smx_support::grid_for(rows_total, smx_support::kMergeWarps), 32 * smx_support::kMergeWarps, 0, s>>>(o_part, lse_part, slots, o, lse, rows_total, d);
  LAUNCH_CHECK();
}

// The program's call (kernels.h): the same, operands as one named struct (attention_args.cuh).
void softmax_merge(const SoftmaxMergeArgs& a, cudaStream_t s) {
  softmax_merge(a.parts, a.part_lse, a.sources, a.o, a.lse, a.batch, a.rows, a.heads, a.head_dim, s);
}

// dst[i] = bf16(src[i]) (round to nearest even) for i < n.
void cast_to_bf16(const float* src, bf16* dst, size_t n, cudaStream_t s) {
  if (n == 0) return;
  const int vec = ((uintptr_t)src % 16 == 0 && (uintptr_t)dst % 8 == 0) ? 1 : 0;
  smx_support::cast_kernel<<<smx_support::grid_for(vec ? n / 4 + 1 : n, 256), 256, 0, s>>>(src, dst, n, vec);
  LAUNCH_CHECK();
}

// Rotary embedding in place on x bf16 [batch][rows][heads][d] at the rows' global positions (map), by the d/2
// inverse frequencies inv_freq (host memory); inverse rotates back (the backward, for dq and dk). d even, at
// most 256.
void rope_apply(bf16* x, int batch, int rows, int heads, int d, const PieceMap& map, const double* inv_freq,
                bool inverse, cudaStream_t s) {
  if (d < 2 || d % 2 != 0 || d / 2 > smx_support::kMaxRopeHalf || inv_freq == nullptr || batch < 0 || rows < 0 ||
      heads < 0 || map.count < 0 || map.count > 2) {
    std::fprintf(stderr, "lasp rope_apply: bad arguments (d %d, inv_freq %p, batch %d, rows %d, heads %d, pieces %d)\n",
                 d, (const void*)inv_freq, batch, rows, heads, map.count);
    std::exit(3);
  }
  const size_t total = (size_t)batch * rows * (d / 2);
  if (total == 0 || heads == 0) return;
  smx_support::RopeFreqs f{};
  for (int e = 0; e < d / 2; ++e) f.inv_freq[e] = inv_freq[e];
  smx_support::rope_kernel<<<smx_support::grid_for(total, 256), 256, 0, s>>>(x, batch, rows, heads, d, map, f, inverse ? -1.f : 1.f);
  LAUNCH_CHECK();
}

}  // namespace lasp
