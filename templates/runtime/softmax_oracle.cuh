// The dense fp32 oracle of verify mode for softmax attention: the masked definition, over every row.
//
//   s_ij = scale q_i . k_j (scale = 1/sqrt(d)),  visible(i, j) = (!causal || j <= i) && doc(j) = doc(i)
//   lse_i = log sum_{j visible} exp(s_ij),  o_i = sum_{j visible} exp(s_ij - lse_i) v_j
// and the gradients of sum_i <o_i, do_i> by the same definition:
//   P_ij = exp(s_ij - lse_i), dP_ij = do_i . v_j, D_i = do_i . o_i (= sum_j P_ij dP_ij),
//   dS_ij = P_ij (dP_ij - D_i), dq_i = scale sum_j dS_ij k_j, dk_j = scale sum_i dS_ij q_i, dv_j = sum_i P_ij do_i,
// where query head h reads kv head h / (heads / kv_heads), and dk, dv of a kv head sum over its query heads.
// Documents (types.cuh, docs/DOCUMENTS.md) are the step's packed documents over the whole sequence, per batch
// row b at [b * docs.seq_len + t]: a query sees the keys of its own document only (causal: first[i] <= j <= i;
// bidirectional: first[i] <= j <= last[i]). docs.any() false: one document.
//
// Design choices:
// - It shares nothing with the fast kernels: no online softmax, no rescaled running sums, no tensor cores, no
//   bf16 intermediates. The forward makes two passes over the visible keys: the first finds each row's exact
//   max score, the second sums exp(s - max) and exp(s - max) v against that fixed max, then divides once.
//   It is O(N^2 d) work (three score-sized products forward, nine backward), fine for verify lengths (16K).
// - Scores are fp32 dot products of the bf16 inputs, kept in log2 units (s * scale * log2 e) so that every
//   exponential is one exp2f: the same accuracy with or without --use_fast_math (exp2f maps to ex2.approx
//   either way, relative error ~2^-22). lse is returned in natural-log units, as the reference defines it.
// - A CTA holds 64 query rows (or 64 key rows for dk, dv) transposed in shared memory, streams 64-row tiles
//   of the other side, computes a 64 x 64 score block as 4 x 4 register blocks from float4 shared loads,
//   keeps its 64 x d outputs in registers (4 rows x d/16 columns a thread) and skips the tiles the causal
//   mask or the documents empty. dk and dv are separate kernels (both accumulators at once would spill at d = 128); each
//   kv-side CTA loops over the query heads of its group, so the group sum needs no atomics.
// - The backward calls the forward internally for lse and o (then D = do . o in fp32), into scratch that is
//   allocated lazily per device, grown when needed and kept for the life of the process.
// - The document mask is its definition: i and j lie in one document iff first[i] == first[j]; `last` only
//   bounds the tiles. first and last are nondecreasing, so 64 rows [r0, r1] need only the columns
//   [first[r0], last[r1]] (clipped to the sequence, and to r1 when causal): packed documents of length D cost
//   about N D scores instead of N^2 / 2. docs.any() false: the kernels get null document pointers and run as
//   without documents.
// - A row with no visible key (impossible for whole-sequence self-attention, kept for generality) gets o = 0,
//   lse = -inf and no gradient.
// - Head dims 64 and 128 (the ones the fast kernels support); anything else exits with a message.
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>

#include "types.cuh"
#include "check.cuh"

namespace lasp {
namespace smx_oracle {

constexpr int kTile = 64;  // rows per CTA and rows per streamed tile
constexpr int kThreads = 256;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// dst[c][r] = x[b][row0 + r][hh][c] for r < 64 (0 past the end): a tile of rows, transposed.
template <int D>
__device__ __forceinline__ void load_tile_T(float* dst, const __nv_bfloat16* __restrict__ x, int b, int row0, int n,
                                            int hs, int hh) {
  for (int e = threadIdx.x; e < kTile * D; e += kThreads) {
    int r = e / D, c = e % D;
    dst[c * kTile + r] = row0 + r < n ? __bfloat162float(x[(((size_t)b * n + row0 + r) * hs + hh) * D + c]) : 0.f;
  }
}

// dst[r][c] = x[b][row0 + r][hh][c] (0 past the end): a tile of rows, row-major.
template <int D>
__device__ __forceinline__ void load_tile(float* dst, const __nv_bfloat16* __restrict__ x, int b, int row0, int n,
                                          int hs, int hh) {
  for (int e = threadIdx.x; e < kTile * D; e += kThreads) {
    int r = e / D, c = e % D;
    dst[e] = row0 + r < n ? __bfloat162float(x[(((size_t)b * n + row0 + r) * hs + hh) * D + c]) : 0.f;
  }
}

// s[i][j] = a_(4ty+i) . b_(4tx+j) from the transposed tiles aT, bT ([D][64] each).
template <int D>
__device__ __forceinline__ void dot_block(const float* aT, const float* bT, int ty, int tx, float s[4][4]) {
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) s[i][j] = 0.f;
#pragma unroll 4
  for (int kk = 0; kk < D; ++kk) {
    float4 av = *reinterpret_cast<const float4*>(&aT[kk * kTile + 4 * ty]);
    float4 bv = *reinterpret_cast<const float4*>(&bT[kk * kTile + 4 * tx]);
    const float ar[4] = {av.x, av.y, av.z, av.w}, br[4] = {bv.x, bv.y, bv.z, bv.w};
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) s[i][j] = fmaf(ar[i], br[j], s[i][j]);
  }
}

// acc[i][:] += sum_c wT[c][4ty+i] * w[c][tx*CPT ..] over the 64 columns of a tile (wT: [64 cols][64 rows]).
template <int D>
__device__ __forceinline__ void accumulate(const float* wT, const float* w, int ty, int tx, float acc[4][D / 16]) {
  constexpr int CPT = D / 16;
  for (int c = 0; c < kTile; ++c) {
    float4 sv = *reinterpret_cast<const float4*>(&wT[c * kTile + 4 * ty]);
    const float sr[4] = {sv.x, sv.y, sv.z, sv.w};
#pragma unroll
    for (int j4 = 0; j4 < CPT / 4; ++j4) {
      float4 wv = *reinterpret_cast<const float4*>(&w[c * D + tx * CPT + 4 * j4]);
      const float wr[4] = {wv.x, wv.y, wv.z, wv.w};
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][4 * j4 + j] = fmaf(sr[i], wr[j], acc[i][4 * j4 + j]);
    }
  }
}

// Reductions over the 16 threads (tx) that share a ty: lanes 0-15 and 16-31 of a warp.
__device__ __forceinline__ float max16(float x) {
#pragma unroll
  for (int off = 8; off > 0; off >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, off));
  return x;
}
__device__ __forceinline__ float sum16(float x) {
#pragma unroll
  for (int off = 8; off > 0; off >>= 1) x += __shfl_xor_sync(0xffffffffu, x, off);
  return x;
}

// The batch row's document arrays (null without documents).
__device__ __forceinline__ const int* doc_row(const int* __restrict__ a, int b, int n) {
  return a != nullptr ? a + (size_t)b * n : nullptr;
}

// Whether positions r and c (both in [0, n)) lie in one document (first: the batch row's, null: one document).
__device__ __forceinline__ bool same_doc(const int* __restrict__ first, int r, int c) {
  return first == nullptr || __ldg(first + r) == __ldg(first + c);
}

// The columns [c_begin, c_end) that rows [r0, r1] (r1 < n) may see: causal j <= i (queries' side, rows are
// queries) or j >= i (keys' side, rows are keys: `reverse`), and their documents' range.
__device__ __forceinline__ void column_range(int r0, int r1, int n, bool causal, bool reverse,
                                             const int* __restrict__ first, const int* __restrict__ last,
                                             int& c_begin, int& c_end) {
  c_begin = causal && reverse ? r0 : 0;
  c_end = causal && !reverse ? min(n, r1 + 1) : n;
  if (first != nullptr) {
    c_begin = max(c_begin, __ldg(first + r0));
    c_end = min(c_end, __ldg(last + r1) + 1);  // last is at most n (no end after r1): clipped to n
  }
}

// Forward: one CTA per (64 queries, batch * head). o fp32 [b][n][H][D]; lse (natural log) and lse2 (log2
// units, for the backward) fp32 [b][n][H], either may be null.
template <int D>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
                   const __nv_bfloat16* __restrict__ v, float* __restrict__ o, float* __restrict__ lse,
                   float* __restrict__ lse2, int n, int H, int Hkv, int causal, float scale_log2,
                   const int* __restrict__ doc_first, const int* __restrict__ doc_last) {
  extern __shared__ __align__(16) float sm[];
  float* sqT = sm;                // [D][64] queries^T
  float* skT = sqT + D * kTile;   // [D][64] keys^T of the tile
  float* sv = skT + D * kTile;    // [64][D] values of the tile
  float* spT = sv + kTile * D;    // [64 keys][64 queries] probabilities (unnormalised)
  constexpr int CPT = D / 16;
  const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
  const int b = blockIdx.y / H, h = blockIdx.y % H, g = h / (H / Hkv);
  const int r0 = blockIdx.x * kTile;
  const int* first = doc_row(doc_first, b, n);
  int c_begin, c_end;
  column_range(r0, min(n, r0 + kTile) - 1, n, causal != 0, false, first, doc_row(doc_last, b, n), c_begin, c_end);
  load_tile_T<D>(sqT, q, b, r0, n, H, h);

  // Pass 1: the exact row max of the visible scores (log2 units).
  float m[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
  for (int c0 = c_begin; c0 < c_end; c0 += kTile) {
    __syncthreads();
    load_tile_T<D>(skT, k, b, c0, n, Hkv, g);
    __syncthreads();
    float s[4][4];
    dot_block<D>(sqT, skT, ty, tx, s);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        int r = r0 + 4 * ty + i, c = c0 + 4 * tx + j;
        if (c < n && r < n && (!causal || c <= r) && same_doc(first, r, c)) m[i] = fmaxf(m[i], s[i][j] * scale_log2);
      }
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) m[i] = max16(m[i]);

  // Pass 2: l = sum exp2(s - m), acc = sum exp2(s - m) v, against the fixed max.
  float l[4] = {0.f, 0.f, 0.f, 0.f};
  float acc[4][CPT];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < CPT; ++j) acc[i][j] = 0.f;
  for (int c0 = c_begin; c0 < c_end; c0 += kTile) {
    __syncthreads();
    load_tile_T<D>(skT, k, b, c0, n, Hkv, g);
    load_tile<D>(sv, v, b, c0, n, Hkv, g);
    __syncthreads();
    float s[4][4];
    dot_block<D>(sqT, skT, ty, tx, s);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        int r = r0 + 4 * ty + i, c = c0 + 4 * tx + j;
        bool vis = c < n && r < n && (!causal || c <= r) && same_doc(first, r, c);
        float p = vis ? exp2f(s[i][j] * scale_log2 - m[i]) : 0.f;
        l[i] += p;
        spT[(4 * tx + j) * kTile + 4 * ty + i] = p;
      }
    __syncthreads();
    accumulate<D>(spT, sv, ty, tx, acc);
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    l[i] = sum16(l[i]);
    int r = r0 + 4 * ty + i;
    if (r >= n) continue;
    size_t row = ((size_t)b * n + r) * H + h;
    bool none = m[i] == -INFINITY;  // no visible key: o = 0, lse = -inf
    float inv = none ? 0.f : 1.f / l[i];
    float* orow = o + row * D + tx * CPT;
#pragma unroll
    for (int j = 0; j < CPT; ++j) orow[j] = acc[i][j] * inv;
    if (tx == 0) {
      float l2 = none ? -INFINITY : m[i] + log2f(l[i]);
      if (lse) lse[row] = l2 * kLn2;
      if (lse2) lse2[row] = l2;
    }
  }
}

// delta[row] = do_row . o_row (fp32), one warp per (b, i, h) row.
__global__ void delta_kernel(const __nv_bfloat16* __restrict__ dout, const float* __restrict__ o,
                             float* __restrict__ delta, size_t rows, int D) {
  const int lane = threadIdx.x & 31;
  for (size_t row = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32; row < rows;
       row += (size_t)gridDim.x * blockDim.x / 32) {
    float s = 0.f;
    for (int e = lane; e < D; e += 32) s = fmaf(__bfloat162float(dout[row * D + e]), o[row * D + e], s);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (lane == 0) delta[row] = s;
  }
}

// dq: one CTA per (64 queries, batch * head); streams key tiles. lse2, delta: [b][n][H] (log2 units for lse2).
template <int D>
__global__ void __launch_bounds__(kThreads)
    dq_kernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
              const __nv_bfloat16* __restrict__ v, const __nv_bfloat16* __restrict__ dout,
              const float* __restrict__ lse2, const float* __restrict__ delta, float* __restrict__ dq, int n, int H,
              int Hkv, int causal, float scale_log2, float scale, const int* __restrict__ doc_first,
              const int* __restrict__ doc_last) {
  extern __shared__ __align__(16) float sm[];
  float* sqT = sm;                 // [D][64] queries^T
  float* sdoT = sqT + D * kTile;   // [D][64] dout^T
  float* skT = sdoT + D * kTile;   // [D][64] keys^T of the tile
  float* svT = skT + D * kTile;    // [D][64] values^T of the tile
  float* sk = svT + D * kTile;     // [64][D] keys of the tile
  float* sdsT = sk + kTile * D;    // [64 keys][64 queries] dS
  constexpr int CPT = D / 16;
  const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
  const int b = blockIdx.y / H, h = blockIdx.y % H, g = h / (H / Hkv);
  const int r0 = blockIdx.x * kTile;
  const int* first = doc_row(doc_first, b, n);
  int c_begin, c_end;
  column_range(r0, min(n, r0 + kTile) - 1, n, causal != 0, false, first, doc_row(doc_last, b, n), c_begin, c_end);
  load_tile_T<D>(sqT, q, b, r0, n, H, h);
  load_tile_T<D>(sdoT, dout, b, r0, n, H, h);
  float L[4], Dl[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    int r = r0 + 4 * ty + i;
    size_t row = ((size_t)b * n + (r < n ? r : 0)) * H + h;
    L[i] = r < n ? lse2[row] : -INFINITY;
    Dl[i] = r < n ? delta[row] : 0.f;
  }
  float acc[4][CPT];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < CPT; ++j) acc[i][j] = 0.f;
  for (int c0 = c_begin; c0 < c_end; c0 += kTile) {
    __syncthreads();
    load_tile_T<D>(skT, k, b, c0, n, Hkv, g);
    load_tile_T<D>(svT, v, b, c0, n, Hkv, g);
    load_tile<D>(sk, k, b, c0, n, Hkv, g);
    __syncthreads();
    float p[4][4], dp[4][4];
    dot_block<D>(sqT, skT, ty, tx, p);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        int r = r0 + 4 * ty + i, c = c0 + 4 * tx + j;
        bool vis = c < n && r < n && (!causal || c <= r) && L[i] != -INFINITY && same_doc(first, r, c);
        p[i][j] = vis ? exp2f(p[i][j] * scale_log2 - L[i]) : 0.f;
      }
    dot_block<D>(sdoT, svT, ty, tx, dp);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) sdsT[(4 * tx + j) * kTile + 4 * ty + i] = p[i][j] * (dp[i][j] - Dl[i]);
    __syncthreads();
    accumulate<D>(sdsT, sk, ty, tx, acc);
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    int r = r0 + 4 * ty + i;
    if (r >= n) continue;
    float* out = dq + (((size_t)b * n + r) * H + h) * D + tx * CPT;
#pragma unroll
    for (int j = 0; j < CPT; ++j) out[j] = acc[i][j] * scale;
  }
}

// dk (DK = true) or dv (DK = false): one CTA per (64 keys, batch * kv head); loops over the query heads of
// the group and streams query tiles. Rows are keys j, columns are queries i.
template <int D, bool DK>
__global__ void __launch_bounds__(kThreads)
    dkv_kernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
               const __nv_bfloat16* __restrict__ v, const __nv_bfloat16* __restrict__ dout,
               const float* __restrict__ lse2, const float* __restrict__ delta, float* __restrict__ out, int n, int H,
               int Hkv, int causal, float scale_log2, float scale, const int* __restrict__ doc_first,
               const int* __restrict__ doc_last) {
  extern __shared__ __align__(16) float sm[];
  float* skT = sm;                                  // [D][64] keys^T (rows)
  float* sqT = skT + D * kTile;                     // [D][64] queries^T of the tile
  float* sw = sqT + D * kTile;                      // [64][D] q (DK) or dout (DV) rows of the tile
  float* sxT = sw + kTile * D;                      // [64 queries][64 keys] dS (DK) or P (DV)
  float* sL = sxT + kTile * kTile;                  // [64] lse2 of the tile's queries
  float* sD = sL + kTile;                           // [64] delta of the tile's queries
  float* svT = sD + kTile;                          // [D][64] values^T (rows), DK only
  float* sdoT = svT + D * kTile;                    // [D][64] dout^T of the tile, DK only
  __shared__ int sF[kTile];                         // first[] of the tile's queries (documents)
  constexpr int CPT = D / 16;
  const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
  const int b = blockIdx.y / Hkv, g = blockIdx.y % Hkv, group = H / Hkv;
  const int r0 = blockIdx.x * kTile;
  const int* first = doc_row(doc_first, b, n);
  int c_begin, c_end;  // the queries these keys may reach
  column_range(r0, min(n, r0 + kTile) - 1, n, causal != 0, true, first, doc_row(doc_last, b, n), c_begin, c_end);
  int fr[4];  // first[] of this thread's key rows
#pragma unroll
  for (int i = 0; i < 4; ++i) fr[i] = first != nullptr && r0 + 4 * ty + i < n ? __ldg(first + r0 + 4 * ty + i) : 0;
  load_tile_T<D>(skT, k, b, r0, n, Hkv, g);
  if (DK) load_tile_T<D>(svT, v, b, r0, n, Hkv, g);
  float acc[4][CPT];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < CPT; ++j) acc[i][j] = 0.f;
  for (int h = g * group; h < (g + 1) * group; ++h) {
    for (int c0 = c_begin; c0 < c_end; c0 += kTile) {
      __syncthreads();
      load_tile_T<D>(sqT, q, b, c0, n, H, h);
      load_tile<D>(sw, DK ? q : dout, b, c0, n, H, h);
      if (DK) load_tile_T<D>(sdoT, dout, b, c0, n, H, h);
      if (tid < kTile) {
        int c = c0 + tid;
        size_t row = ((size_t)b * n + (c < n ? c : 0)) * H + h;
        sL[tid] = c < n ? lse2[row] : -INFINITY;
        sD[tid] = c < n ? delta[row] : 0.f;
        sF[tid] = first != nullptr && c < n ? __ldg(first + c) : 0;
      }
      __syncthreads();
      float x[4][4];
      dot_block<D>(skT, sqT, ty, tx, x);
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          int r = r0 + 4 * ty + i, c = c0 + 4 * tx + j;
          float Lc = sL[4 * tx + j];
          bool vis = c < n && r < n && (!causal || r <= c) && Lc != -INFINITY && fr[i] == sF[4 * tx + j];
          x[i][j] = vis ? exp2f(x[i][j] * scale_log2 - Lc) : 0.f;
        }
      if (DK) {
        float dp[4][4];
        dot_block<D>(svT, sdoT, ty, tx, dp);
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) x[i][j] *= dp[i][j] - sD[4 * tx + j];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) sxT[(4 * tx + j) * kTile + 4 * ty + i] = x[i][j];
      __syncthreads();
      accumulate<D>(sxT, sw, ty, tx, acc);
    }
  }
  const float f = DK ? scale : 1.f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    int r = r0 + 4 * ty + i;
    if (r >= n) continue;
    float* o = out + (((size_t)b * n + r) * Hkv + g) * D + tx * CPT;
#pragma unroll
    for (int j = 0; j < CPT; ++j) o[j] = acc[i][j] * f;
  }
}

template <int D>
constexpr int forward_smem() {
  return (3 * D * kTile + kTile * kTile) * (int)sizeof(float);
}
template <int D>
constexpr int dq_smem() {
  return (5 * D * kTile + kTile * kTile) * (int)sizeof(float);
}
template <int D, bool DK>
constexpr int dkv_smem() {
  return ((DK ? 5 : 3) * D * kTile + kTile * kTile + 2 * kTile) * (int)sizeof(float);
}

// The score scale in log2 units, one expression for the forward and the backward, so that the backward's
// exp2(s - lse2) reproduces the forward's rounding of the scaled scores exactly.
inline float scale_log2_of(int d) { return kLog2e / sqrtf((float)d); }

inline void check_shape(const char* what, int batch, int n, int heads, int kv_heads, int d, const Documents& docs) {
  if (docs.any() && (docs.first == nullptr || docs.last == nullptr || docs.seq_len != n)) {
    std::fprintf(stderr, "lasp %s: documents of %d tokens (first %s, last %s) for a sequence of %d tokens\n", what,
                 docs.seq_len, docs.first ? "set" : "null", docs.last ? "set" : "null", n);
    std::exit(3);
  }
  if (batch < 0 || n < 0 || heads < 1 || kv_heads < 1 || heads % kv_heads != 0 || (d != 64 && d != 128) ||
      (long long)batch * heads > 65535) {
    std::fprintf(stderr,
                 "lasp %s: unsupported shape batch %d, n %d, heads %d, kv_heads %d, d %d (need heads %% kv_heads "
                 "== 0, d 64 or 128, batch * heads <= 65535)\n",
                 what, batch, n, heads, kv_heads, d);
    std::exit(3);
  }
}

template <int D>
void forward(const bf16* q, const bf16* k, const bf16* v, float* o, float* lse, float* lse2, int batch, int n,
             int heads, int kv_heads, bool causal, const Documents& docs, cudaStream_t s) {
  // set on every call: the attribute is per device, and verify mode is not timed
  CUDA_CHECK(cudaFuncSetAttribute(forward_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, forward_smem<D>()));
  dim3 grid((n + kTile - 1) / kTile, batch * heads);
  forward_kernel<D><<<grid, kThreads, forward_smem<D>(), s>>>(q, k, v, o, lse, lse2, n, heads, kv_heads, causal ? 1 : 0, scale_log2_of(D),
                                                              docs.any() ? docs.first : nullptr, docs.any() ? docs.last : nullptr);
  LAUNCH_CHECK();
}

template <int D>
void backward(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, const float* lse2, const float* delta,
              float* dq, float* dk, float* dv, int batch, int n, int heads, int kv_heads, bool causal,
              const Documents& docs, cudaStream_t s) {
  const int* first = docs.any() ? docs.first : nullptr;
  const int* last = docs.any() ? docs.last : nullptr;
  const float scale = 1.f / sqrtf((float)D), scale_log2 = scale_log2_of(D);
  const int c = causal ? 1 : 0;
  const int tiles = (n + kTile - 1) / kTile;
  CUDA_CHECK(cudaFuncSetAttribute(dq_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, dq_smem<D>()));
  CUDA_CHECK(cudaFuncSetAttribute(dkv_kernel<D, true>, cudaFuncAttributeMaxDynamicSharedMemorySize, dkv_smem<D, true>()));
  CUDA_CHECK(cudaFuncSetAttribute(dkv_kernel<D, false>, cudaFuncAttributeMaxDynamicSharedMemorySize, dkv_smem<D, false>()));
  dq_kernel<D><<<dim3(tiles, batch * heads), kThreads, dq_smem<D>(), s>>>(q, k, v, dout, lse2, delta, dq, n, heads, kv_heads, c, scale_log2, scale, first, last);
  LAUNCH_CHECK();
  dkv_kernel<D, true><<<dim3(tiles, batch * kv_heads), kThreads, dkv_smem<D, true>(), s>>>(q, k, v, dout, lse2, delta, dk, n, heads, kv_heads, c, scale_log2, scale, first, last);
  LAUNCH_CHECK();
  dkv_kernel<D, false><<<dim3(tiles, batch * kv_heads), kThreads, dkv_smem<D, false>(), s>>>(q, k, v, dout, lse2, delta, dv, n, heads, kv_heads, c, scale_log2, scale, first, last);
  LAUNCH_CHECK();
}

// The backward's own statistics, per device: o (fp32), lse2 and delta; grown on demand, never freed.
struct Scratch {
  float* o = nullptr;
  float* lse2 = nullptr;
  float* delta = nullptr;
  size_t o_cap = 0, rows_cap = 0;
};

inline Scratch& scratch(size_t o_elems, size_t rows) {
  static Scratch per_device[64];
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= 64) {
    std::fprintf(stderr, "lasp softmax oracle: device %d out of range\n", dev);
    std::exit(3);
  }
  Scratch& sc = per_device[dev];
  if (o_elems > sc.o_cap || rows > sc.rows_cap) {
    CUDA_CHECK(cudaDeviceSynchronize());  // earlier calls may still be reading the old buffers
    if (sc.o) CUDA_CHECK(cudaFree(sc.o));
    if (sc.lse2) CUDA_CHECK(cudaFree(sc.lse2));
    if (sc.delta) CUDA_CHECK(cudaFree(sc.delta));
    sc.o_cap = o_elems > sc.o_cap ? o_elems : sc.o_cap;
    sc.rows_cap = rows > sc.rows_cap ? rows : sc.rows_cap;
    CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&sc.o), sc.o_cap * sizeof(float)));
    CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&sc.lse2), sc.rows_cap * sizeof(float)));
    CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&sc.delta), sc.rows_cap * sizeof(float)));
  }
  return sc;
}

}  // namespace smx_oracle

// o fp32 [batch][n][heads][d] and lse fp32 [batch][n][heads] (natural log; may be null) of softmax attention
// over the whole sequence (positions 0..n-1). q [batch][n][heads][d], k, v [batch][n][kv_heads][d] bf16. docs
// over the same n positions (docs.any() false: one document).
void oracle_softmax_forward(const bf16* q, const bf16* k, const bf16* v, float* o, float* lse, int batch, int n,
                            int heads, int kv_heads, int d, bool causal, const Documents& docs, cudaStream_t s) {
  smx_oracle::check_shape("oracle_softmax_forward", batch, n, heads, kv_heads, d, docs);
  if (batch == 0 || n == 0) return;
  if (d == 64)
    smx_oracle::forward<64>(q, k, v, o, lse, nullptr, batch, n, heads, kv_heads, causal, docs, s);
  else
    smx_oracle::forward<128>(q, k, v, o, lse, nullptr, batch, n, heads, kv_heads, causal, docs, s);
}

// dq fp32 [batch][n][heads][d], dk, dv fp32 [batch][n][kv_heads][d] (summed over each kv head's query heads)
// of sum <o, dout>, by the definition. Computes its own lse and delta (forward into kept scratch).
void oracle_softmax_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, float* dq, float* dk,
                             float* dv, int batch, int n, int heads, int kv_heads, int d, bool causal,
                             const Documents& docs, cudaStream_t s) {
  smx_oracle::check_shape("oracle_softmax_backward", batch, n, heads, kv_heads, d, docs);
  if (batch == 0 || n == 0) return;
  const size_t rows = (size_t)batch * n * heads;
  smx_oracle::Scratch& sc = smx_oracle::scratch(rows * d, rows);
  if (d == 64)
    smx_oracle::forward<64>(q, k, v, sc.o, nullptr, sc.lse2, batch, n, heads, kv_heads, causal, docs, s);
  else
    smx_oracle::forward<128>(q, k, v, sc.o, nullptr, sc.lse2, batch, n, heads, kv_heads, causal, docs, s);
  {
    size_t blocks = (rows + 7) / 8;
    smx_oracle::delta_kernel<<<(unsigned)(blocks < 65535 ? blocks : 65535), 256, 0, s>>>(dout, sc.o, sc.delta, rows, d);
    LAUNCH_CHECK();
  }
  if (d == 64)
    smx_oracle::backward<64>(q, k, v, dout, sc.lse2, sc.delta, dq, dk, dv, batch, n, heads, kv_heads, causal, docs, s);
  else
    smx_oracle::backward<128>(q, k, v, dout, sc.lse2, sc.delta, dq, dk, dv, batch, n, heads, kv_heads, causal, docs, s);
}

// Without documents: the bench harnesses' calls (bench/gpu/*.cu include this file directly).
void oracle_softmax_forward(const bf16* q, const bf16* k, const bf16* v, float* o, float* lse, int batch, int n,
                            int heads, int kv_heads, int d, bool causal, cudaStream_t s) {
  oracle_softmax_forward(q, k, v, o, lse, batch, n, heads, kv_heads, d, causal, Documents{}, s);
}

void oracle_softmax_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, float* dq, float* dk,
                             float* dv, int batch, int n, int heads, int kv_heads, int d, bool causal,
                             cudaStream_t s) {
  oracle_softmax_backward(q, k, v, dout, dq, dk, dv, batch, n, heads, kv_heads, d, causal, Documents{}, s);
}

}  // namespace lasp
