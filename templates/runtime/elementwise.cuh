// Element-wise parts of a linear-attention layer: the feature map on q and k, and RMSNorm of the output.
//
// Design choices:
// - Feature maps phi (identity, elu+1, relu, silu) are applied in place to the bf16 q and k after their
//   projections; the backward needs the pre-activation values (x_pre), which the program keeps, and may
//   write dx over dy (the program passes the same buffer for both). Arithmetic is fp32, storage bf16.
// - These are pure bandwidth: each thread moves 16 bytes (8 bf16) per access and the grid strides over the
//   tensor, so one launch covers any size; a scalar tail handles n not divisible by 8.
// - RMSNorm (no weight) normalises each head's d-vector: y = x / sqrt(mean(x^2) + eps). One warp per vector,
//   a warp-shuffle reduction; the backward recomputes the scale from x rather than storing it (d floats of
//   extra reads beat another buffer and another argument):
//   dx = r dy - r^3 x mean(dy * x), r = 1 / sqrt(mean(x^2) + eps). Head dims 64, 128 and 256 hold each lane's
//   elements in registers and take four vectors a warp per turn (the *_held kernels); others loop.
// - sum_slices adds the W slices an AlltoAll gathered for the weight-gradient sum (grad_sum.cuh), fp32 in
//   rank order. sum_slices_bf16 adds Ulysses' bf16 dK, dV partials of a kv head replicated on R ranks
//   (schedule op `accumulate`): fp32 sums in slot (rank) order, rounded to bf16 once, so every run and every
//   rank gets the same bits.
// - scale_add accumulates micro-batches' fp32 gradients (train mode's `accumulate`), one element per thread in
//   a fixed order: deterministic.
// - expand_kv_heads copies a grouped linear layer's kv heads (`kv_heads`) to every query head of their group, as
//   grouped-query softmax attention pairs them (query head h reads kv head h / (heads / kv_heads)), so the
//   schedule and its kernels see one key and value head per query head; sum_kv_head_groups is its backward, each
//   group's gradients summed in fp32 in head order and rounded once (deterministic). bf16 for the program, fp32
//   for verify's oracle.
// - Feature-map codes match the generator (lasp::FeatureMap): 0 identity, 1 elu_plus_one, 2 relu, 3 silu.
#pragma once
#include <cuda_runtime.h>  // launches, streams
#include <cuda_bf16.h>     // __nv_bfloat16, __nv_bfloat162
#include <cstddef>         // size_t
#include <cstdint>         // integer types
#include <cstdio>          // fprintf (bad arguments)
#include <cstdlib>         // exit
#include <cstring>         // memcpy (the head rows' vectors to bf16 pairs)

#include "types.cuh"       // bf16
#include "check.cuh"       // LAUNCH_CHECK

namespace lasp {

enum FeatureMap : int { kIdentity = 0, kEluPlusOne = 1, kRelu = 2, kSilu = 3 };

namespace elementwise {

__device__ __forceinline__ float phi(float x, int map) {
  switch (map) {
    case kEluPlusOne: return x > 0.f ? x + 1.f : __expf(x);
    case kRelu: return x > 0.f ? x : 0.f;
    case kSilu: return x / (1.f + __expf(-x));
    default: return x;
  }
}
// d phi / dx at x.
__device__ __forceinline__ float dphi(float x, int map) {
  switch (map) {
    case kEluPlusOne: return x > 0.f ? 1.f : __expf(x);
    case kRelu: return x > 0.f ? 1.f : 0.f;
    case kSilu: {
      float s = 1.f / (1.f + __expf(-x));
      return s * (1.f + x * (1.f - s));
    }
    default: return 1.f;
  }
}

union Pack8 {
  int4 v;
  __nv_bfloat162 h[4];
};

__global__ void feature_forward_kernel(bf16* __restrict__ x, size_t n, int map) {
  const size_t n8 = n / 8;
  const size_t stride = (size_t)gridDim.x * blockDim.x;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n8; i += stride) {
    Pack8 p;
    p.v = reinterpret_cast<const int4*>(x)[i];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      float2 f = __bfloat1622float2(p.h[u]);
      p.h[u] = __floats2bfloat162_rn(phi(f.x, map), phi(f.y, map));
    }
    reinterpret_cast<int4*>(x)[i] = p.v;
  }
  for (size_t i = n8 * 8 + blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += stride)
    x[i] = __float2bfloat16(phi(__bfloat162float(x[i]), map));
}

// dx may alias dy: each element is read before it is written, by the same thread.
__global__ void feature_backward_kernel(const bf16* __restrict__ x_pre, const bf16* dy, bf16* dx, size_t n, int map) {
  const size_t n8 = n / 8;
  const size_t stride = (size_t)gridDim.x * blockDim.x;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n8; i += stride) {
    Pack8 px, pd;
    px.v = reinterpret_cast<const int4*>(x_pre)[i];
    pd.v = reinterpret_cast<const int4*>(dy)[i];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      float2 fx = __bfloat1622float2(px.h[u]), fd = __bfloat1622float2(pd.h[u]);
      pd.h[u] = __floats2bfloat162_rn(fd.x * dphi(fx.x, map), fd.y * dphi(fx.y, map));
    }
    reinterpret_cast<int4*>(dx)[i] = pd.v;
  }
  for (size_t i = n8 * 8 + blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += stride)
    dx[i] = __float2bfloat16(__bfloat162float(dy[i]) * dphi(__bfloat162float(x_pre[i]), map));
}

__device__ __forceinline__ float warp_sum(float s) {
  for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
  return s;
}

// One warp per d-vector; lanes step over bf16 pairs (d is even).
__global__ void rms_forward_kernel(const bf16* __restrict__ x, bf16* __restrict__ y, size_t rows, int d, float eps) {
  const size_t warps = (size_t)gridDim.x * blockDim.x / 32;
  const int lane = threadIdx.x & 31;
  for (size_t r = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32; r < rows; r += warps) {
    const __nv_bfloat162* xr = reinterpret_cast<const __nv_bfloat162*>(x + r * d);
    __nv_bfloat162* yr = reinterpret_cast<__nv_bfloat162*>(y + r * d);
    float ss = 0.f;
    for (int c = lane; c < d / 2; c += 32) {
      float2 f = __bfloat1622float2(xr[c]);
      ss += f.x * f.x + f.y * f.y;
    }
    const float rs = rsqrtf(warp_sum(ss) / d + eps);
    for (int c = lane; c < d / 2; c += 32) {
      float2 f = __bfloat1622float2(xr[c]);
      yr[c] = __floats2bfloat162_rn(f.x * rs, f.y * rs);
    }
  }
}

__global__ void rms_backward_kernel(const bf16* __restrict__ x, const bf16* dy, bf16* dx, size_t rows, int d,
                                    float eps) {
  const size_t warps = (size_t)gridDim.x * blockDim.x / 32;
  const int lane = threadIdx.x & 31;
  for (size_t r = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32; r < rows; r += warps) {
    const __nv_bfloat162* xr = reinterpret_cast<const __nv_bfloat162*>(x + r * d);
    const __nv_bfloat162* dyr = reinterpret_cast<const __nv_bfloat162*>(dy + r * d);
    __nv_bfloat162* dxr = reinterpret_cast<__nv_bfloat162*>(dx + r * d);
    float ss = 0.f, sd = 0.f;
    for (int c = lane; c < d / 2; c += 32) {
      float2 f = __bfloat1622float2(xr[c]), g = __bfloat1622float2(dyr[c]);
      ss += f.x * f.x + f.y * f.y;
      sd += f.x * g.x + f.y * g.y;
    }
    ss = warp_sum(ss);
    sd = warp_sum(sd);
    const float rs = rsqrtf(ss / d + eps);
    const float k = rs * rs * rs * sd / d;
    __syncwarp();  // every lane has read dy before any lane overwrites it (dx may alias dy)
    for (int c = lane; c < d / 2; c += 32) {
      float2 f = __bfloat1622float2(xr[c]), g = __bfloat1622float2(dyr[c]);
      dxr[c] = __floats2bfloat162_rn(rs * g.x - k * f.x, rs * g.y - k * f.y);
    }
  }
}

// The head dims 64, 128, 256: lane l holds elements [V l, V l + V) of a row in registers (d = 32 V), and a warp
// takes R rows per turn, their loads issued before any reduction. The loops above read a row twice, 4 bytes a
// lane, one row per warp in flight: too few bytes in flight to keep memory busy.
template <int V>
struct HeadVec;
template <>
struct HeadVec<2> {
  using T = unsigned int;
};
template <>
struct HeadVec<4> {
  using T = uint2;
};
template <>
struct HeadVec<8> {
  using T = uint4;
};

template <int V>
__device__ __forceinline__ void head_load(const bf16* p, float* f) {
  typename HeadVec<V>::T raw = *reinterpret_cast<const typename HeadVec<V>::T*>(p);
  __nv_bfloat162 h[V / 2];
  memcpy(h, &raw, sizeof(raw));
#pragma unroll
  for (int u = 0; u < V / 2; ++u) {
    const float2 t = __bfloat1622float2(h[u]);
    f[2 * u] = t.x;
    f[2 * u + 1] = t.y;
  }
}

template <int V>
__device__ __forceinline__ void head_store(bf16* p, const float* f) {
  __nv_bfloat162 h[V / 2];
#pragma unroll
  for (int u = 0; u < V / 2; ++u) h[u] = __floats2bfloat162_rn(f[2 * u], f[2 * u + 1]);
  typename HeadVec<V>::T raw;
  memcpy(&raw, h, sizeof(raw));
  *reinterpret_cast<typename HeadVec<V>::T*>(p) = raw;
}

constexpr int kHeadRows = 4;  // rows per warp and turn

template <int V>
__global__ void rms_forward_held_kernel(const bf16* __restrict__ x, bf16* __restrict__ y, size_t rows, float eps) {
  constexpr int d = 32 * V;
  const size_t warps = (size_t)gridDim.x * blockDim.x / 32;
  const int lane = threadIdx.x & 31;
  for (size_t r0 = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32 * kHeadRows; r0 < rows;
       r0 += warps * kHeadRows) {
    float f[kHeadRows][V];
#pragma unroll
    for (int r = 0; r < kHeadRows; ++r)
      if (r0 + r < rows) head_load<V>(x + (r0 + r) * d + V * lane, f[r]);
#pragma unroll
    for (int r = 0; r < kHeadRows; ++r) {
      if (r0 + r >= rows) break;
      float ss = 0.f;
#pragma unroll
      for (int e = 0; e < V; ++e) ss += f[r][e] * f[r][e];
      const float rs = rsqrtf(warp_sum(ss) / d + eps);
#pragma unroll
      for (int e = 0; e < V; ++e) f[r][e] *= rs;
      head_store<V>(y + (r0 + r) * d + V * lane, f[r]);
    }
  }
}

// Each lane writes only the elements of dy it read itself, so dx may be dy.
template <int V>
__global__ void rms_backward_held_kernel(const bf16* __restrict__ x, const bf16* dy, bf16* dx, size_t rows,
                                         float eps) {
  constexpr int d = 32 * V;
  const size_t warps = (size_t)gridDim.x * blockDim.x / 32;
  const int lane = threadIdx.x & 31;
  for (size_t r0 = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32 * kHeadRows; r0 < rows;
       r0 += warps * kHeadRows) {
    float f[kHeadRows][V], g[kHeadRows][V];
#pragma unroll
    for (int r = 0; r < kHeadRows; ++r)
      if (r0 + r < rows) {
        head_load<V>(x + (r0 + r) * d + V * lane, f[r]);
        head_load<V>(dy + (r0 + r) * d + V * lane, g[r]);
      }
#pragma unroll
    for (int r = 0; r < kHeadRows; ++r) {
      if (r0 + r >= rows) break;
      float ss = 0.f, sd = 0.f;
#pragma unroll
      for (int e = 0; e < V; ++e) {
        ss += f[r][e] * f[r][e];
        sd += f[r][e] * g[r][e];
      }
      ss = warp_sum(ss);
      sd = warp_sum(sd);
      const float rs = rsqrtf(ss / d + eps);
      const float k = rs * rs * rs * sd / d;
#pragma unroll
      for (int e = 0; e < V; ++e) g[r][e] = rs * g[r][e] - k * f[r][e];
      head_store<V>(dx + (r0 + r) * d + V * lane, g[r]);
    }
  }
}

// out[i] = sum over p < parts of in[p * slice + i] (fp32), in rank order. `vec`: slice is a multiple of 4 and
// both pointers 16-byte aligned, so each thread moves 4 elements per access.
__global__ void sum_slices_kernel(const float* __restrict__ in, int parts, size_t slice, float* __restrict__ out,
                                  int vec) {
  const size_t stride = (size_t)gridDim.x * blockDim.x;
  const size_t first = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  if (vec) {
    for (size_t i = first; i < slice / 4; i += stride) {
      float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
      for (int p = 0; p < parts; ++p) {
        const float4 x = reinterpret_cast<const float4*>(in + (size_t)p * slice)[i];
        acc.x += x.x;
        acc.y += x.y;
        acc.z += x.z;
        acc.w += x.w;
      }
      reinterpret_cast<float4*>(out)[i] = acc;
    }
    return;
  }
  for (size_t i = first; i < slice; i += stride) {
    float acc = 0.f;
    for (int p = 0; p < parts; ++p) acc += in[(size_t)p * slice + i];
    out[i] = acc;
  }
}

// acc and g may be the same array (a sum scaled in place): no __restrict__.
__global__ void scale_add_kernel(float* acc, const float* g, float alpha, float beta, size_t n) {
  const size_t stride = (size_t)gridDim.x * blockDim.x;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += stride)
    acc[i] = beta == 0.f ? alpha * g[i] : fmaf(alpha, g[i], beta * acc[i]);
}

// out[i] = bf16(sum over p < parts of in[p * slice + i]), summed in fp32 in slot order.
__global__ void sum_slices_bf16_kernel(const bf16* __restrict__ in, int parts, size_t slice, bf16* __restrict__ out) {
  const size_t stride = (size_t)gridDim.x * blockDim.x;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < slice; i += stride) {
    float acc = 0.f;
    for (int p = 0; p < parts; ++p) acc += __bfloat162float(in[(size_t)p * slice + i]);
    out[i] = __float2bfloat16(acc);
  }
}

__device__ inline float as_float(bf16 x) { return __bfloat162float(x); }
__device__ inline float as_float(float x) { return x; }
__device__ inline void store_float(bf16* p, float x) { *p = __float2bfloat16(x); }
__device__ inline void store_float(float* p, float x) { *p = x; }

// dst[r][h][e] = src[r][h / group][e]: one thread per element of dst.
template <typename T>
__global__ void expand_kv_kernel(const T* __restrict__ src, T* __restrict__ dst, size_t rows, int kv_heads, int heads,
                                 int d) {
  const size_t n = rows * heads * d, stride = (size_t)gridDim.x * blockDim.x;
  const int group = heads / kv_heads;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += stride) {
    const int e = (int)(i % d);
    const size_t rh = i / d;
    const int h = (int)(rh % heads);
    const size_t r = rh / heads;
    dst[i] = src[(r * kv_heads + h / group) * d + e];
  }
}

// dst[r][g][e] = the sum over j < group of src[r][g group + j][e], in fp32 in head order.
template <typename T>
__global__ void sum_kv_groups_kernel(const T* __restrict__ src, T* __restrict__ dst, size_t rows, int kv_heads,
                                     int heads, int d) {
  const size_t n = rows * kv_heads * d, stride = (size_t)gridDim.x * blockDim.x;
  const int group = heads / kv_heads;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += stride) {
    const int e = (int)(i % d);
    const size_t rg = i / d;
    const int g = (int)(rg % kv_heads);
    const size_t r = rg / kv_heads;
    const T* first = src + (r * heads + (size_t)g * group) * d + e;
    float acc = 0.f;
    for (int j = 0; j < group; ++j) acc += as_float(first[(size_t)j * d]);
    store_float(dst + i, acc);
  }
}

inline int grid_for(size_t work, int per_block) {
  int dev = 0, sms = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  size_t blocks = (work + per_block - 1) / per_block;
  if (blocks < 1) blocks = 1;
  size_t cap = (size_t)sms * 16;
  return (int)(blocks < cap ? blocks : cap);
}

}  // namespace elementwise

// x = phi(x) in place (bf16, n elements).
void feature_map_forward(bf16* x, size_t n, int feature_map, cudaStream_t s) {
  if (n == 0 || feature_map == kIdentity) return;
  elementwise::feature_forward_kernel<<<elementwise::grid_for(n / 8 + 1, 256), 256, 0, s>>>(x, n, feature_map);
  LAUNCH_CHECK();
}

// dx = dy * phi'(x_pre); dx may be dy.
void feature_map_backward(const bf16* x_pre, const bf16* dy, bf16* dx, size_t n, int feature_map, cudaStream_t s) {
  if (n == 0) return;
  if (feature_map == kIdentity) {
    if (dx != dy) CUDA_CHECK(cudaMemcpyAsync(dx, dy, n * sizeof(bf16), cudaMemcpyDeviceToDevice, s));
    return;
  }
  elementwise::feature_backward_kernel<<<elementwise::grid_for(n / 8 + 1, 256), 256, 0, s>>>(x_pre, dy, dx, n,
                                                                                             feature_map);
  LAUNCH_CHECK();
}

// out = the sum of `parts` consecutive slices of `in` (fp32, `slice` elements each), in rank order.
void sum_slices(const float* in, int parts, size_t slice, float* out, cudaStream_t s) {
  if (slice == 0) return;
  const int vec = slice % 4 == 0 && (uintptr_t)in % 16 == 0 && (uintptr_t)out % 16 == 0 ? 1 : 0;
  elementwise::sum_slices_kernel<<<elementwise::grid_for(vec ? slice / 4 : slice, 256), 256, 0, s>>>(in, parts, slice,
                                                                                                     out, vec);
  LAUNCH_CHECK();
}

// out = the sum of `parts` consecutive slices of `in` (bf16, `slice` elements each), in fp32 in slot order,
// rounded to bf16 once.
void sum_slices_bf16(const bf16* in, int parts, size_t slice, bf16* out, cudaStream_t s) {
  if (slice == 0) return;
  elementwise::sum_slices_bf16_kernel<<<elementwise::grid_for(slice, 256), 256, 0, s>>>(in, parts, slice, out);
  LAUNCH_CHECK();
}

namespace elementwise {
// Both directions take whole groups: kv_heads divides heads.
inline void check_kv_groups(const char* who, int kv_heads, int heads, int d) {
  if (kv_heads >= 1 && heads % kv_heads == 0 && d >= 1) return;
  std::fprintf(stderr, "lasp %s: bad arguments (kv_heads %d, heads %d, d %d)\n", who, kv_heads, heads, d);
  std::exit(3);
}
}  // namespace elementwise

// A grouped linear layer's k or v, [rows][kv_heads][d], to every query head: [rows][heads][d].
template <typename T>
void expand_kv_heads_of(const T* src, T* dst, size_t rows, int kv_heads, int heads, int d, cudaStream_t s) {
  elementwise::check_kv_groups("expand_kv_heads", kv_heads, heads, d);
  if (rows == 0) return;
  elementwise::expand_kv_kernel<<<elementwise::grid_for(rows * heads * d, 256), 256, 0, s>>>(src, dst, rows, kv_heads,
                                                                                           heads, d);
  LAUNCH_CHECK();
}
void expand_kv_heads(const bf16* src, bf16* dst, size_t rows, int kv_heads, int heads, int d, cudaStream_t s) {
  expand_kv_heads_of(src, dst, rows, kv_heads, heads, d, s);
}
void expand_kv_heads(const float* src, float* dst, size_t rows, int kv_heads, int heads, int d, cudaStream_t s) {
  expand_kv_heads_of(src, dst, rows, kv_heads, heads, d, s);
}

// Its backward: the gradients of each group of query heads summed into their kv head (fp32, head order).
template <typename T>
void sum_kv_head_groups_of(const T* src, T* dst, size_t rows, int kv_heads, int heads, int d, cudaStream_t s) {
  elementwise::check_kv_groups("sum_kv_head_groups", kv_heads, heads, d);
  if (rows == 0) return;
  elementwise::sum_kv_groups_kernel<<<elementwise::grid_for(rows * kv_heads * d, 256), 256, 0, s>>>(
      src, dst, rows, kv_heads, heads, d);
  LAUNCH_CHECK();
}
void sum_kv_head_groups(const bf16* src, bf16* dst, size_t rows, int kv_heads, int heads, int d, cudaStream_t s) {
  sum_kv_head_groups_of(src, dst, rows, kv_heads, heads, d, s);
}
void sum_kv_head_groups(const float* src, float* dst, size_t rows, int kv_heads, int heads, int d, cudaStream_t s) {
  sum_kv_head_groups_of(src, dst, rows, kv_heads, heads, d, s);
}

// acc = beta acc + alpha g (fp32, n elements): a micro-batch's gradients into the step's; beta 0 overwrites acc
// (whatever it held, NaN included); g may be acc.
void scale_add(float* acc, const float* g, float alpha, float beta, size_t n, cudaStream_t s) {
  if (n == 0) return;
  elementwise::scale_add_kernel<<<elementwise::grid_for(n, 256), 256, 0, s>>>(acc, g, alpha, beta, n);
  LAUNCH_CHECK();
}

// y = x / sqrt(mean(x^2) + eps) over each of `rows` vectors of d elements (rows = batch*tokens*heads).
void rms_norm_forward(const bf16* x, bf16* y, size_t rows, int d, float eps, cudaStream_t s) {
  if (rows == 0) return;
  const int grid = elementwise::grid_for(rows, 8 * elementwise::kHeadRows);
  if (d == 64) elementwise::rms_forward_held_kernel<2><<<grid, 256, 0, s>>>(x, y, rows, eps);
  else if (d == 128) elementwise::rms_forward_held_kernel<4><<<grid, 256, 0, s>>>(x, y, rows, eps);
  else if (d == 256) elementwise::rms_forward_held_kernel<8><<<grid, 256, 0, s>>>(x, y, rows, eps);
  else elementwise::rms_forward_kernel<<<elementwise::grid_for(rows, 8), 256, 0, s>>>(x, y, rows, d, eps);
  LAUNCH_CHECK();
}

// dx for y = rms_norm(x) given dy; dx may be dy.
void rms_norm_backward(const bf16* x, const bf16* dy, bf16* dx, size_t rows, int d, float eps, cudaStream_t s) {
  if (rows == 0) return;
  const int grid = elementwise::grid_for(rows, 8 * elementwise::kHeadRows);
  if (d == 64) elementwise::rms_backward_held_kernel<2><<<grid, 256, 0, s>>>(x, dy, dx, rows, eps);
  else if (d == 128) elementwise::rms_backward_held_kernel<4><<<grid, 256, 0, s>>>(x, dy, dx, rows, eps);
  else if (d == 256) elementwise::rms_backward_held_kernel<8><<<grid, 256, 0, s>>>(x, dy, dx, rows, eps);
  else elementwise::rms_backward_kernel<<<elementwise::grid_for(rows, 8), 256, 0, s>>>(x, dy, dx, rows, d, eps);
  LAUNCH_CHECK();
}

}  // namespace lasp
