// SwiGLU's element-wise middle: the MLP is down(silu(gate(x)) * up(x)); this file is the part between the
// gate/up products and the down product.
//
// Design choices:
// - gate and up are bf16 [rows][ffn] views with a row stride `ld`: one fused [rows][2*ffn] buffer from one
//   GEMM (gate = buf, up = buf + ffn, ld = 2*ffn) or two separate buffers (ld = ffn). h is [rows][ffn].
// - Forward h = silu(g) * u in fp32, rounded once to bf16. Backward recomputes silu from g instead of saving
//   it (a read of g beats a stored tensor): dg = dh * u * s * (1 + g * (1 - s)), du = dh * silu(g), with
//   s = sigmoid(g). dg and du are written through views of the same shape as gate and up, and may be gate and
//   up themselves: each element is read and then written by the same thread, so the backward can overwrite
//   the forward's buffer in place and the MLP keeps no extra tensor.
// - Pure bandwidth: each thread moves 16 bytes (8 bf16) per access, so ffn and ld must be multiples of 8 (the
//   host says so otherwise); blocks stride over rows, threads over a row's vectors (no index division).
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "types.cuh"
#include "check.cuh"

namespace lasp {

namespace swiglu {

union Pack8 {
  int4 v;
  __nv_bfloat162 h[4];
};

__device__ __forceinline__ void unpack(const Pack8& p, float* f) {
#pragma unroll
  for (int u = 0; u < 4; ++u) {
    const float2 t = __bfloat1622float2(p.h[u]);
    f[2 * u] = t.x;
    f[2 * u + 1] = t.y;
  }
}

__device__ __forceinline__ int4 pack(const float* f) {
  Pack8 p;
#pragma unroll
  for (int u = 0; u < 4; ++u) p.h[u] = __floats2bfloat162_rn(f[2 * u], f[2 * u + 1]);
  return p.v;
}

__device__ __forceinline__ float sigmoid(float x) { return 1.f / (1.f + __expf(-x)); }

__global__ void forward_kernel(const bf16* __restrict__ gate, const bf16* __restrict__ up, size_t ld,
                               bf16* __restrict__ h, size_t rows, int ffn) {
  for (size_t r = blockIdx.x; r < rows; r += gridDim.x)
    for (int c = 8 * threadIdx.x; c < ffn; c += 8 * blockDim.x) {
    Pack8 pg, pu;
    pg.v = *reinterpret_cast<const int4*>(gate + r * ld + c);
    pu.v = *reinterpret_cast<const int4*>(up + r * ld + c);
    float g[8], u[8], o[8];
    unpack(pg, g);
    unpack(pu, u);
#pragma unroll
    for (int e = 0; e < 8; ++e) o[e] = g[e] * sigmoid(g[e]) * u[e];
    *reinterpret_cast<int4*>(h + r * ffn + c) = pack(o);
    }
}

// dgate and dup may alias gate and up (no __restrict__ on those four).
__global__ void backward_kernel(const bf16* gate, const bf16* up, const bf16* __restrict__ dh, bf16* dgate,
                                bf16* dup, size_t ld, size_t rows, int ffn) {
  for (size_t r = blockIdx.x; r < rows; r += gridDim.x)
    for (int c = 8 * threadIdx.x; c < ffn; c += 8 * blockDim.x) {
    Pack8 pg, pu, pd;
    pg.v = *reinterpret_cast<const int4*>(gate + r * ld + c);
    pu.v = *reinterpret_cast<const int4*>(up + r * ld + c);
    pd.v = *reinterpret_cast<const int4*>(dh + r * ffn + c);
    float g[8], u[8], d[8], dg[8], du[8];
    unpack(pg, g);
    unpack(pu, u);
    unpack(pd, d);
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const float s = sigmoid(g[e]);
      du[e] = d[e] * g[e] * s;
      dg[e] = d[e] * u[e] * s * (1.f + g[e] * (1.f - s));
    }
    *reinterpret_cast<int4*>(dgate + r * ld + c) = pack(dg);
    *reinterpret_cast<int4*>(dup + r * ld + c) = pack(du);
    }
}

inline void require_vectors(int ffn, size_t ld, const char* op) {
  if (ffn <= 0 || ffn % 8 != 0 || ld % 8 != 0 || ld < (size_t)ffn) {
    std::fprintf(stderr, "%s: ffn %d and row stride %zu must be positive multiples of 8, stride >= ffn\n", op, ffn,
                 ld);
    std::exit(LASP_EXIT_CODE_FAILURE);
  }
}

inline int grid_for(int rows) {
  const int cap = 132 * 16;  // enough resident blocks to fill any Hopper; blocks stride over the rest
  return rows < cap ? rows : cap;
}

}  // namespace swiglu

// h[r][:] = silu(gate[r][:]) * up[r][:]; gate and up rows are `ld` apart, h rows ffn apart.
void swiglu_forward(const bf16* gate, const bf16* up, size_t ld, bf16* h, int rows, int ffn, cudaStream_t s) {
  swiglu::require_vectors(ffn, ld, "swiglu_forward");
  if (rows == 0) return;
  swiglu::forward_kernel<<<swiglu::grid_for(rows), 256, 0, s>>>(gate, up, ld, h, rows, ffn);
  LAUNCH_CHECK();
}

// dgate, dup from dh (same layout as gate, up; they may be gate and up).
void swiglu_backward(const bf16* gate, const bf16* up, const bf16* dh, bf16* dgate, bf16* dup, size_t ld,
                            int rows, int ffn, cudaStream_t s) {
  swiglu::require_vectors(ffn, ld, "swiglu_backward");
  if (rows == 0) return;
  swiglu::backward_kernel<<<swiglu::grid_for(rows), 256, 0, s>>>(gate, up, dh, dgate, dup, ld,
                                                                                    rows, ffn);
  LAUNCH_CHECK();
}

}  // namespace lasp
