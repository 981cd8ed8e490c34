// The block norms: RMSNorm and LayerNorm over the hidden size, fused with the residual add, and their
// backward with the weight (and bias) gradients.
//
// Design choices:
// - A pre-norm block computes `sum = x + y; out = norm(sum)`: norm_forward does both in one pass (llm.c's
//   fused_residual_forward), writing the new residual `sum` (bf16; it may be x itself) and out; with
//   y == nullptr it only normalises x (the first block, or a recomputation in the backward). The norm is taken
//   of the residual as rounded to bf16, the value the backward reads. The program keeps each block's residual
//   for the backward, so the sum goes to a tensor of its own rather than over x.
// - RMSNorm: out = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps). LayerNorm: out = (x - mean) * rstd * w + b,
//   rstd = 1 / sqrt(var(x) + eps), the variance taken around the mean in a second sweep over registers (no
//   E[x^2] - E[x]^2 cancellation). Statistics in fp32; rstd (and mean for LayerNorm) are saved per row for
//   the backward, 4 or 8 bytes a row.
// - One block per row, each thread holding VPT 16-byte vectors (8 bf16) of the row in registers: the row is
//   read from memory once, whatever the pass count. Block size and VPT come from hidden (at most 256
//   threads, VPT 1, 2 or 4), so hidden must be a multiple of 8 and at most 8192; the host says so otherwise.
// - Backward: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dout * w (RMSNorm drops the mean(g)
//   term), written over dx or added to it (`accumulate`: the residual stream's gradient, bf16, gathers the
//   block's branch). The weight gradient sum(dout * xhat) and bias gradient sum(dout) over rows must be
//   deterministic: a fixed grid of blocks each sums its rows (in row order) into registers and writes one
//   fp32 partial per column, then a second kernel adds the partials in a fixed order into dw and db (+=). No
//   atomics; the grid size depends only on the row count, so the bits do not depend on the GPU either.
// - Weights and biases are bf16 (as the other parameters); their gradients fp32.
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "types.cuh"  // bf16, NormKind
#include "check.cuh"

namespace lasp {

namespace norm {

constexpr int kMaxThreads = 256;
constexpr int kMaxVpt = 4;
constexpr int kMaxHidden = kMaxThreads * kMaxVpt * 8;
// Blocks of the backward's first pass (fewer when there are fewer rows): several per SM of an H100/H200 so
// the loads of one hide another's reductions; the partials they write are 2 x 1024 x hidden floats, a few
// percent of the rows' bytes at 16K rows.
constexpr int kBackwardBlocks = 1024;

union Pack8 {
  int4 v;
  __nv_bfloat162 h[4];
};

__device__ __forceinline__ void unpack8(const Pack8& x, float* f) {
#pragma unroll
  for (int u = 0; u < 4; ++u) {
    const float2 t = __bfloat1622float2(x.h[u]);
    f[2 * u] = t.x;
    f[2 * u + 1] = t.y;
  }
}

__device__ __forceinline__ void load8(const bf16* p, float* f) {
  Pack8 x;
  x.v = *reinterpret_cast<const int4*>(p);
  unpack8(x, f);
}

__device__ __forceinline__ void store8(bf16* p, const float* f) {
  Pack8 x;
#pragma unroll
  for (int u = 0; u < 4; ++u) x.h[u] = __floats2bfloat162_rn(f[2 * u], f[2 * u + 1]);
  *reinterpret_cast<int4*>(p) = x.v;
}

// Sum over the block; every thread gets the result. `shared` holds 32 floats; a barrier at the start keeps a
// second call from overwriting what the first is still reading.
__device__ __forceinline__ float block_sum(float v, float* shared) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) shared[threadIdx.x >> 5] = v;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  float s = 0.f;
  for (int w = 0; w < warps; ++w) s += shared[w];  // same order in every thread: the same bits everywhere
  return s;
}

template <int VPT>
__global__ void __launch_bounds__(kMaxThreads)
    forward_kernel(int kind, bf16* __restrict__ out, float* __restrict__ mean_out, float* __restrict__ rstd_out,
                   const bf16* x, const bf16* __restrict__ y, bf16* sum_out, const bf16* __restrict__ w,
                   const bf16* __restrict__ b, int hidden, float eps) {
  // x and sum_out may be one tensor: each thread reads its elements of x before it writes them.
  __shared__ float shared[32];
  const size_t row = blockIdx.x;
  const int vecs = hidden / 8;
  const bf16* xr = x + row * hidden;
  float v[VPT][8];
  float sum = 0.f;
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int c = threadIdx.x + k * blockDim.x;
    if (c >= vecs) continue;
    load8(xr + 8 * c, v[k]);
    if (y != nullptr) {
      float a[8];
      load8(y + row * hidden + 8 * c, a);
#pragma unroll
      for (int e = 0; e < 8; ++e) v[k][e] = __bfloat162float(__float2bfloat16(v[k][e] + a[e]));
      store8(sum_out + row * hidden + 8 * c, v[k]);
    }
#pragma unroll
    for (int e = 0; e < 8; ++e) sum += kind == kLayerNorm ? v[k][e] : v[k][e] * v[k][e];
  }
  sum = block_sum(sum, shared);
  float mean = 0.f, rstd;
  if (kind == kLayerNorm) {
    mean = sum / hidden;
    float var = 0.f;
#pragma unroll
    for (int k = 0; k < VPT; ++k) {
      if (threadIdx.x + k * blockDim.x >= vecs) continue;
#pragma unroll
      for (int e = 0; e < 8; ++e) var += (v[k][e] - mean) * (v[k][e] - mean);
    }
    rstd = rsqrtf(block_sum(var, shared) / hidden + eps);
  } else {
    rstd = rsqrtf(sum / hidden + eps);
  }
  if (threadIdx.x == 0) {
    rstd_out[row] = rstd;
    if (mean_out != nullptr) mean_out[row] = mean;
  }
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int c = threadIdx.x + k * blockDim.x;
    if (c >= vecs) continue;
    float wf[8], bf[8] = {}, o[8];
    load8(w + 8 * c, wf);
    if (kind == kLayerNorm && b != nullptr) load8(b + 8 * c, bf);
#pragma unroll
    for (int e = 0; e < 8; ++e) o[e] = (v[k][e] - mean) * rstd * wf[e] + bf[e];
    store8(out + row * hidden + 8 * c, o);
  }
}

// Block j sums rows j, j + gridDim.x, ... (in that order) of dout * xhat and dout into partial[j][hidden] and
// partial[gridDim.x + j][hidden], and writes each row's dx. The next row's x, dout (and dx when accumulating)
// are loaded while this row's sums wait on their barriers: a block holds one row at a time, so without that
// the loads and the reductions take turns.
// LN: LayerNorm (the mean's terms and the bias gradient), else RMSNorm. Four blocks of RMSNorm's VPT 1 fit an
// SM (64 registers; LayerNorm's would spill): the grid has more blocks than fit at once, and with three the
// last wave ran part-empty.
template <int VPT, bool LN>
__global__ void __launch_bounds__(kMaxThreads, VPT == 1 && !LN ? 4 : 1)
    backward_kernel(bf16* dx, int accumulate, float* __restrict__ partial, const bf16* __restrict__ dout,
                    const bf16* __restrict__ x, const bf16* __restrict__ w, const float* __restrict__ mean_in,
                    const float* __restrict__ rstd_in, int rows, int hidden) {
  __shared__ float shared[32];
  const int vecs = hidden / 8;
  float dw[VPT][8] = {}, db[LN ? VPT : 1][8] = {};
  Pack8 next_x[VPT], next_d[VPT], next_prev[VPT];
  auto fetch = [&](int row) {
    if (row >= rows) return;
#pragma unroll
    for (int k = 0; k < VPT; ++k) {
      const int c = threadIdx.x + k * blockDim.x;
      if (c >= vecs) continue;
      const size_t at = (size_t)row * hidden + 8 * c;
      next_x[k].v = *reinterpret_cast<const int4*>(x + at);
      next_d[k].v = *reinterpret_cast<const int4*>(dout + at);
      if (accumulate) next_prev[k].v = *reinterpret_cast<const int4*>(dx + at);
    }
  };
  fetch(blockIdx.x);
  for (int row = blockIdx.x; row < rows; row += gridDim.x) {
    const float rstd = rstd_in[row];
    const float mean = LN ? mean_in[row] : 0.f;
    float xh[VPT][8], g[VPT][8], prev[VPT][8] = {};
    float sum_g = 0.f, sum_gx = 0.f;
#pragma unroll
    for (int k = 0; k < VPT; ++k) {
      const int c = threadIdx.x + k * blockDim.x;
      if (c >= vecs) continue;
      float d[8], wf[8];
      load8(w + 8 * c, wf);  // from L1: the weights are the same for every row
      unpack8(next_x[k], xh[k]);
      unpack8(next_d[k], d);
      if (accumulate) unpack8(next_prev[k], prev[k]);
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        xh[k][e] = (xh[k][e] - mean) * rstd;
        g[k][e] = d[e] * wf[e];
        dw[k][e] += d[e] * xh[k][e];
        if constexpr (LN) db[k][e] += d[e];
        sum_g += g[k][e];
        sum_gx += g[k][e] * xh[k][e];
      }
    }
    fetch(row + gridDim.x);
    const float mean_gx = block_sum(sum_gx, shared) / hidden;
    const float mean_g = LN ? block_sum(sum_g, shared) / hidden : 0.f;
#pragma unroll
    for (int k = 0; k < VPT; ++k) {
      const int c = threadIdx.x + k * blockDim.x;
      if (c >= vecs) continue;
      float o[8];
#pragma unroll
      for (int e = 0; e < 8; ++e) o[e] = prev[k][e] + rstd * (g[k][e] - mean_g - xh[k][e] * mean_gx);
      store8(dx + (size_t)row * hidden + 8 * c, o);
    }
  }
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int c = threadIdx.x + k * blockDim.x;
    if (c >= vecs) continue;
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      partial[(size_t)blockIdx.x * hidden + 8 * c + e] = dw[k][e];
      if constexpr (LN) partial[((size_t)gridDim.x + blockIdx.x) * hidden + 8 * c + e] = db[k][e];
    }
  }
}

// dw[h] += sum over the blocks' partials of column h; db likewise from the second half. A block of 32 x 32
// threads takes 32 columns: thread (tx, ty) sums partials ty, ty + 32, ... of column tx (independent loads in
// flight, not one long chain), then row ty == 0 adds the 32 sums in ty order: a fixed order, the same bits on
// every run.
__global__ void __launch_bounds__(1024) reduce_partials_kernel(const float* __restrict__ partial, int blocks,
                                                               int hidden, float* __restrict__ dw,
                                                               float* __restrict__ db) {
  __shared__ float sw_part[32][33], sb_part[32][33];
  const int h = blockIdx.x * 32 + threadIdx.x;
  float sw = 0.f, sb = 0.f;
  if (h < hidden) {
#pragma unroll 8
    for (int j = threadIdx.y; j < blocks; j += 32) {
      sw += partial[(size_t)j * hidden + h];
      if (db != nullptr) sb += partial[((size_t)blocks + j) * hidden + h];
    }
  }
  sw_part[threadIdx.y][threadIdx.x] = sw;
  sb_part[threadIdx.y][threadIdx.x] = sb;
  __syncthreads();
  if (threadIdx.y != 0 || h >= hidden) return;
  for (int y = 1; y < 32; ++y) {
    sw += sw_part[y][threadIdx.x];
    sb += sb_part[y][threadIdx.x];
  }
  dw[h] += sw;
  if (db != nullptr) db[h] += sb;
}

struct Launch {
  int threads;
  int vpt;
};

inline Launch launch_for(int hidden, const char* op) {
  if (hidden <= 0 || hidden % 8 != 0 || hidden > kMaxHidden) {
    std::fprintf(stderr, "%s: hidden size %d must be a positive multiple of 8 and at most %d\n", op, hidden,
                 kMaxHidden);
    std::exit(LASP_EXIT_CODE_FAILURE);
  }
  const int vecs = hidden / 8;
  int vpt = (vecs + kMaxThreads - 1) / kMaxThreads;
  if (vpt == 3) vpt = 4;  // instantiated for 1, 2 and 4
  const int threads = ((vecs + vpt - 1) / vpt + 31) / 32 * 32;
  return {threads, vpt};
}

inline int backward_blocks(int rows) { return rows < kBackwardBlocks ? rows : kBackwardBlocks; }

}  // namespace norm

// Bytes of fp32 scratch norm_backward needs for the weight and bias partial sums.
size_t norm_backward_scratch_bytes(int rows, int hidden) {
  return 2 * (size_t)norm::backward_blocks(rows) * hidden * sizeof(float);
}

// With y: sum = x + y (bf16; sum may be x), then out = norm(sum) * w (+ b). Without y: out = norm(x) * w (+ b),
// and sum is not touched (may be nullptr). Saves rstd[rows] and, for LayerNorm, mean[rows] (may be nullptr for
// RMSNorm). bias is LayerNorm's only.
void norm_forward(NormKind kind, bf16* out, float* mean, float* rstd, const bf16* x, const bf16* y, bf16* sum,
                         const bf16* weight, const bf16* bias, int rows, int hidden, float eps, cudaStream_t s) {
  const norm::Launch l = norm::launch_for(hidden, "norm_forward");
  if ((kind == kLayerNorm && mean == nullptr) || (y != nullptr && sum == nullptr)) {
    std::fprintf(stderr, "norm_forward: %s\n", y != nullptr && sum == nullptr ? "a residual add needs a tensor for the sum"
                                                                            : "LayerNorm needs a buffer for the row means");
    std::exit(LASP_EXIT_CODE_FAILURE);
  }
  if (rows == 0) return;
  auto kernel = l.vpt == 1 ? norm::forward_kernel<1> : l.vpt == 2 ? norm::forward_kernel<2> : norm::forward_kernel<4>;
  kernel<<<rows, l.threads, 0, s>>>(kind, out, mean, rstd, x, y, sum, weight, bias, hidden, eps);
  LAUNCH_CHECK();
}

// dx = d norm / dx applied to dout (accumulate: dx += that); dweight += sum(dout * xhat), dbias += sum(dout)
// (dbias only for LayerNorm; nullptr skips it). x, mean and rstd are what norm_forward read and saved.
// scratch holds norm_backward_scratch_bytes(rows, hidden).
void norm_backward(NormKind kind, bf16* dx, bool accumulate, float* dweight, float* dbias, const bf16* dout,
                          const bf16* x, const bf16* weight, const float* mean, const float* rstd, int rows,
                          int hidden, float* scratch, cudaStream_t s) {
  const norm::Launch l = norm::launch_for(hidden, "norm_backward");
  if (rows == 0) return;
  const int blocks = norm::backward_blocks(rows);
  const bool ln = kind == kLayerNorm;
  auto kernel = l.vpt == 1 ? (ln ? norm::backward_kernel<1, true> : norm::backward_kernel<1, false>)
                : l.vpt == 2 ? (ln ? norm::backward_kernel<2, true> : norm::backward_kernel<2, false>)
                             : (ln ? norm::backward_kernel<4, true> : norm::backward_kernel<4, false>);
  kernel<<<blocks, l.threads, 0, s>>>(dx, accumulate, scratch, dout, x, weight, mean, rstd, rows, hidden);
  LAUNCH_CHECK();
  norm::reduce_partials_kernel<<<(hidden + 31) / 32, dim3(32, 32), 0, s>>>(scratch, blocks, hidden, dweight,
                                                                            ln ? dbias : nullptr);
  LAUNCH_CHECK();
}

}  // namespace lasp
