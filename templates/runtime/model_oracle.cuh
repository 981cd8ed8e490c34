// The plain fp32 kernels of verify mode's whole-model oracle (verify_model.cuh runs them, with cuBLAS's fp32
// products between them): the embedding, the block norms, RoPE, the feature maps, the attention output's
// RMSNorm over each head, SwiGLU, cross-entropy, each with its backward; casts; the conditioning probe's
// perturbation; the error reductions.
//
// Design choices:
// - They share nothing with the program's kernels: fp32 in and out (no bf16 storage), one op per kernel, the
//   plainest loop that computes it (a thread per element, per column or per row; a block per row where a
//   row's sum is needed). Correctness over speed: verify's sizes are a few thousand tokens.
// - Sums over a row or over the rows of a column (norm statistics, the norms' weight gradients, softmax) are
//   taken in double: the oracle's own rounding stays far below the bf16 errors it is there to measure.
// - Every gradient is deterministic (no float atomics): a scatter-add by token (the embedding's backward)
//   gives each thread one column and walks the tokens in order.
// - Exponentials are expf/exp, never the fast intrinsics the program's kernels use.
// - The conditioning probe (oracle_perturb) moves q, k, v by about one bf16 rounding with a hash of the
//   element's identity, not a random generator: the backward recomputes each layer's forward and must see the
//   same q, k, v, so the factor is a function of (key, index) alone, the same on every run and every rank.
// - The error reduction returns max |got - ref|, max |ref|, sum (got - ref)^2, sum ref^2 (double) and the
//   count of non-finite elements, from a fixed grid and a fixed final order.
#pragma once
#include <cuda_runtime.h>  // launches, streams
#include <cuda_bf16.h>     // __nv_bfloat16
#include <cmath>           // std::pow
#include <cstddef>         // size_t
#include <cstdint>         // integer types

#include "types.cuh"        // bf16, NormKind
#include "check.cuh"        // CUDA_CHECK, LAUNCH_CHECK
#include "elementwise.cuh"  // FeatureMap codes
#include "softmax_support.cuh"  // RopeFreqs: RoPE's d/2 frequencies, passed to a kernel by value

namespace lasp {

namespace model_oracle {

constexpr int kThreads = 256;
constexpr int kCompareBlocks = 256;

inline unsigned blocks_for(size_t n) {
  size_t b = (n + kThreads - 1) / kThreads;
  if (b < 1) b = 1;
  return (unsigned)(b < 65535 ? b : 65535);
}

// Sum over the block (blockDim.x == kThreads), every thread gets it; a barrier first so back-to-back calls
// do not overwrite what a slower warp still reads.
__device__ inline double block_sum(double v, double* shared) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) shared[threadIdx.x >> 5] = v;
  __syncthreads();
  double s = 0.0;
  for (int w = 0; w < (int)(blockDim.x >> 5); ++w) s += shared[w];
  return s;
}

__device__ inline double block_max(double v, double* shared) {
  for (int off = 16; off > 0; off >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, off));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) shared[threadIdx.x >> 5] = v;
  __syncthreads();
  double m = shared[0];
  for (int w = 1; w < (int)(blockDim.x >> 5); ++w) m = fmax(m, shared[w]);
  return m;
}

__global__ void to_f32_kernel(const bf16* __restrict__ src, float* __restrict__ dst, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    dst[i] = __bfloat162float(src[i]);
}

__global__ void add_kernel(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ out,
                           size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    out[i] = a[i] + b[i];
}

__global__ void embedding_forward_kernel(const int* __restrict__ ids, const float* __restrict__ table,
                                         float* __restrict__ out, int tokens, int hidden) {
  const size_t n = (size_t)tokens * hidden;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    out[i] = table[(size_t)ids[i / hidden] * hidden + i % hidden];
}

// Thread per column: walks the tokens in order, so the sum of each table row is the same on every run.
__global__ void embedding_backward_kernel(const int* __restrict__ ids, const float* __restrict__ dout,
                                          float* __restrict__ dtable, int tokens, int hidden) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= hidden) return;
  for (int t = 0; t < tokens; ++t) dtable[(size_t)ids[t] * hidden + c] += dout[(size_t)t * hidden + c];
}

// One block per row: out = (x - mean) * rstd * w (+ b); RMSNorm has mean 0 and rstd over mean(x^2).
__global__ void norm_forward_kernel(int kind, const float* __restrict__ x, const float* __restrict__ w,
                                    const float* __restrict__ b, float* __restrict__ out, float* __restrict__ mean_out,
                                    float* __restrict__ rstd_out, int hidden, float eps) {
  __shared__ double shared[32];
  const float* xr = x + (size_t)blockIdx.x * hidden;
  double mean = 0.0;
  if (kind == kLayerNorm) {
    double s = 0.0;
    for (int c = threadIdx.x; c < hidden; c += blockDim.x) s += xr[c];
    mean = block_sum(s, shared) / hidden;
  }
  double ss = 0.0;
  for (int c = threadIdx.x; c < hidden; c += blockDim.x) ss += (xr[c] - mean) * (xr[c] - mean);
  const double rstd = 1.0 / sqrt(block_sum(ss, shared) / hidden + (double)eps);
  for (int c = threadIdx.x; c < hidden; c += blockDim.x)
    out[(size_t)blockIdx.x * hidden + c] =
        (float)((xr[c] - mean) * rstd * w[c] + (kind == kLayerNorm && b != nullptr ? b[c] : 0.f));
  if (threadIdx.x == 0) {
    mean_out[blockIdx.x] = (float)mean;
    rstd_out[blockIdx.x] = (float)rstd;
  }
}

// One block per row: dx += rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dout * w (RMSNorm: no mean(g)).
__global__ void norm_backward_kernel(int kind, const float* __restrict__ dout, const float* __restrict__ x,
                                     const float* __restrict__ w, const float* __restrict__ mean_in,
                                     const float* __restrict__ rstd_in, float* __restrict__ dx, int hidden) {
  __shared__ double shared[32];
  const size_t row = blockIdx.x;
  const double rstd = rstd_in[row], mean = kind == kLayerNorm ? mean_in[row] : 0.0;
  const float* xr = x + row * hidden;
  const float* dr = dout + row * hidden;
  double sg = 0.0, sgx = 0.0;
  for (int c = threadIdx.x; c < hidden; c += blockDim.x) {
    const double g = (double)dr[c] * w[c];
    sg += g;
    sgx += g * (xr[c] - mean) * rstd;
  }
  const double mean_g = kind == kLayerNorm ? block_sum(sg, shared) / hidden : 0.0;
  const double mean_gx = block_sum(sgx, shared) / hidden;
  for (int c = threadIdx.x; c < hidden; c += blockDim.x) {
    const double g = (double)dr[c] * w[c], xh = (xr[c] - mean) * rstd;
    dx[row * hidden + c] += (float)(rstd * (g - mean_g - xh * mean_gx));
  }
}

// Thread per column: dw += sum over rows of dout * xhat, db += sum of dout (db may be nullptr).
__global__ void norm_weight_grad_kernel(int kind, const float* __restrict__ dout, const float* __restrict__ x,
                                        const float* __restrict__ mean_in, const float* __restrict__ rstd_in,
                                        float* __restrict__ dw, float* __restrict__ db, int rows, int hidden) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= hidden) return;
  double sw = 0.0, sb = 0.0;
  for (int r = 0; r < rows; ++r) {
    const double mean = kind == kLayerNorm ? mean_in[r] : 0.0;
    const double d = dout[(size_t)r * hidden + c];
    sw += d * (x[(size_t)r * hidden + c] - mean) * rstd_in[r];
    sb += d;
  }
  dw[c] += (float)sw;
  if (db != nullptr) db[c] += (float)sb;
}

// Llama's "rotate half" at position n (the row within its sequence), the angle in double; sign -1: inverse.
__global__ void rope_kernel(float* __restrict__ x, int batch, int n, int heads, int d, smx_support::RopeFreqs table,
                            double sign) {
  const int half = d / 2;
  const size_t total = (size_t)batch * n * heads * half;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
    const int e = (int)(i % half);
    const size_t bnh = i / half;  // (b * n + row) * heads + h
    const int pos = (int)((bnh / heads) % n);
    const double a = pos * table.inv_freq[e];
    double sn, cs;
    sincos(a, &sn, &cs);
    sn *= sign;
    float* p = x + bnh * d + e;
    const double x1 = p[0], x2 = p[half];
    p[0] = (float)(x1 * cs - x2 * sn);
    p[half] = (float)(x2 * cs + x1 * sn);
  }
}

__device__ inline double phi(double x, int map) {
  switch (map) {
    case kEluPlusOne: return x > 0.0 ? x + 1.0 : exp(x);
    case kRelu: return x > 0.0 ? x : 0.0;
    case kSilu: return x / (1.0 + exp(-x));
    default: return x;
  }
}

__device__ inline double dphi(double x, int map) {
  switch (map) {
    case kEluPlusOne: return x > 0.0 ? 1.0 : exp(x);
    case kRelu: return x > 0.0 ? 1.0 : 0.0;
    case kSilu: {
      const double s = 1.0 / (1.0 + exp(-x));
      return s * (1.0 + x * (1.0 - s));
    }
    default: return 1.0;
  }
}

__global__ void feature_forward_kernel(const float* __restrict__ pre, float* __restrict__ out, size_t n, int map) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    out[i] = (float)phi(pre[i], map);
}

// dx may be dy: each element is read, then written, by one thread.
__global__ void feature_backward_kernel(const float* __restrict__ pre, const float* dy, float* dx, size_t n, int map) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    dx[i] = (float)(dy[i] * dphi(pre[i], map));
}

// Thread per d-vector: y = x r, r = 1 / sqrt(mean(x^2) + eps) (no weight).
__global__ void head_rms_forward_kernel(const float* __restrict__ x, float* __restrict__ y, size_t rows, int d,
                                        float eps) {
  for (size_t r = blockIdx.x * (size_t)blockDim.x + threadIdx.x; r < rows; r += (size_t)gridDim.x * blockDim.x) {
    const float* xr = x + r * d;
    double ss = 0.0;
    for (int e = 0; e < d; ++e) ss += (double)xr[e] * xr[e];
    const double rs = 1.0 / sqrt(ss / d + (double)eps);
    for (int e = 0; e < d; ++e) y[r * d + e] = (float)(xr[e] * rs);
  }
}

// dx = r dy - r^3 x mean(dy x); dx may be dy (a thread reads its vector whole before writing it).
__global__ void head_rms_backward_kernel(const float* __restrict__ x, const float* dy, float* dx, size_t rows, int d,
                                         float eps) {
  for (size_t r = blockIdx.x * (size_t)blockDim.x + threadIdx.x; r < rows; r += (size_t)gridDim.x * blockDim.x) {
    const float* xr = x + r * d;
    const float* gr = dy + r * d;
    double ss = 0.0, sd = 0.0;
    for (int e = 0; e < d; ++e) {
      ss += (double)xr[e] * xr[e];
      sd += (double)xr[e] * gr[e];
    }
    const double rs = 1.0 / sqrt(ss / d + (double)eps);
    const double k = rs * rs * rs * sd / d;
    for (int e = 0; e < d; ++e) dx[r * d + e] = (float)(rs * gr[e] - k * xr[e]);
  }
}

__global__ void swiglu_forward_kernel(const float* __restrict__ gate, const float* __restrict__ up,
                                      float* __restrict__ h, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const double g = gate[i];
    h[i] = (float)(g / (1.0 + exp(-g)) * up[i]);
  }
}

__global__ void swiglu_backward_kernel(const float* __restrict__ gate, const float* __restrict__ up,
                                       const float* __restrict__ dh, float* __restrict__ dgate,
                                       float* __restrict__ dup, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const double g = gate[i], s = 1.0 / (1.0 + exp(-g));
    dup[i] = (float)(dh[i] * g * s);
    dgate[i] = (float)(dh[i] * up[i] * s * (1.0 + g * (1.0 - s)));
  }
}

// One block per row: losses[r] = lse - z[target] (0 without a target), and the row overwritten by
// (softmax - onehot) * inv_count (0 without a target). lse in double.
__global__ void xent_kernel(float* __restrict__ logits, const int* __restrict__ targets, float* __restrict__ losses,
                            int vocab, float inv_count) {
  __shared__ double shared[32];
  float* z = logits + (size_t)blockIdx.x * vocab;
  const int target = targets[blockIdx.x];
  double m = -INFINITY;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) m = fmax(m, (double)z[j]);
  m = block_max(m, shared);
  double s = 0.0;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) s += exp(z[j] - m);
  const double lse = m + log(block_sum(s, shared));
  const double z_target = target >= 0 ? (double)z[target] : 0.0;
  __syncthreads();  // every thread has read z[target] before any overwrites it
  if (threadIdx.x == 0) losses[blockIdx.x] = target >= 0 ? (float)(lse - z_target) : 0.f;
  const double scale = target >= 0 ? inv_count : 0.0;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x)
    z[j] = (float)((exp(z[j] - lse) - (j == target ? 1.0 : 0.0)) * scale);
}

// splitmix64's finaliser: a bijection of 64 bits whose every output bit depends on every input bit.
__device__ inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// x[i] *= 1 + 2^-8 u, u in [-1, 1) from 24 bits of a hash of (key, i).
__global__ void perturb_kernel(float* __restrict__ x, size_t n, uint64_t key) {
  constexpr uint64_t kSalt = 0x5EED0F0AC1E5ull;  // fixed: the probe is the same on every run
  const uint64_t stream = mix64(key ^ kSalt);
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const double u = (double)(mix64(stream + i) >> 40) * 0x1p-23 - 1.0;
    x[i] = (float)(x[i] * (1.0 + u * 0x1p-8));
  }
}

// Block j: partial[j] = {max |got - ref|, max |ref|, sum (got - ref)^2, sum ref^2, non-finite count}.
__global__ void compare_kernel(const float* __restrict__ got, const float* __restrict__ ref, size_t n,
                               double* __restrict__ partial) {
  __shared__ double shared[32];
  double me = 0.0, mr = 0.0, se = 0.0, sr = 0.0, bad = 0.0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const double g = got[i], r = ref[i];
    if (!isfinite(g) || !isfinite(r)) {
      bad += 1.0;
      continue;
    }
    const double e = fabs(g - r);
    me = fmax(me, e);
    mr = fmax(mr, fabs(r));
    se += e * e;
    sr += r * r;
  }
  me = block_max(me, shared);
  mr = block_max(mr, shared);
  se = block_sum(se, shared);
  sr = block_sum(sr, shared);
  bad = block_sum(bad, shared);
  if (threadIdx.x == 0) {
    double* p = partial + (size_t)blockIdx.x * 5;
    p[0] = me;
    p[1] = mr;
    p[2] = se;
    p[3] = sr;
    p[4] = bad;
  }
}

// One thread: the blocks' partials in block order.
__global__ void compare_final_kernel(const double* __restrict__ partial, int blocks, double* __restrict__ out) {
  double r[5] = {0.0, 0.0, 0.0, 0.0, 0.0};
  for (int j = 0; j < blocks; ++j) {
    const double* p = partial + (size_t)j * 5;
    r[0] = fmax(r[0], p[0]);
    r[1] = fmax(r[1], p[1]);
    r[2] += p[2];
    r[3] += p[3];
    r[4] += p[4];
  }
  for (int k = 0; k < 5; ++k) out[k] = r[k];
}

}  // namespace model_oracle

// dst = fp32(src), n elements.
void oracle_to_f32(const bf16* src, float* dst, size_t n, cudaStream_t s) {
  if (n == 0) return;
  model_oracle::to_f32_kernel<<<model_oracle::blocks_for(n), model_oracle::kThreads, 0, s>>>(src, dst, n);
  LAUNCH_CHECK();
}

// out = a + b, n elements (out may be a or b).
void oracle_add(const float* a, const float* b, float* out, size_t n, cudaStream_t s) {
  if (n == 0) return;
  model_oracle::add_kernel<<<model_oracle::blocks_for(n), model_oracle::kThreads, 0, s>>>(a, b, out, n);
  LAUNCH_CHECK();
}

// out[t][:] = table[ids[t]][:].
void oracle_embedding_forward(const int* ids, const float* table, float* out, int tokens, int hidden, cudaStream_t s) {
  const size_t n = (size_t)tokens * hidden;
  if (n == 0) return;
  model_oracle::embedding_forward_kernel<<<model_oracle::blocks_for(n), model_oracle::kThreads, 0, s>>>(
      ids, table, out, tokens, hidden);
  LAUNCH_CHECK();
}

// dtable[ids[t]][:] += dout[t][:] for every t, in token order.
void oracle_embedding_backward(const int* ids, const float* dout, float* dtable, int tokens, int hidden,
                               cudaStream_t s) {
  if (tokens == 0 || hidden == 0) return;
  model_oracle::embedding_backward_kernel<<<(hidden + model_oracle::kThreads - 1) / model_oracle::kThreads,
                                            model_oracle::kThreads, 0, s>>>(ids, dout, dtable, tokens, hidden);
  LAUNCH_CHECK();
}

// out = norm(x) * w (+ b) over rows of `hidden`; saves mean (0 for RMSNorm) and rstd per row.
void oracle_norm_forward(NormKind kind, const float* x, const float* w, const float* b, float* out, float* mean,
                         float* rstd, int rows, int hidden, float eps, cudaStream_t s) {
  if (rows == 0) return;
  model_oracle::norm_forward_kernel<<<rows, model_oracle::kThreads, 0, s>>>(kind, x, w, b, out, mean, rstd, hidden,
                                                                             eps);
  LAUNCH_CHECK();
}

// dx += the norm's input gradient from dout (x, mean, rstd: what oracle_norm_forward read and saved).
void oracle_norm_backward(NormKind kind, const float* dout, const float* x, const float* w, const float* mean,
                          const float* rstd, float* dx, int rows, int hidden, cudaStream_t s) {
  if (rows == 0) return;
  model_oracle::norm_backward_kernel<<<rows, model_oracle::kThreads, 0, s>>>(kind, dout, x, w, mean, rstd, dx,
                                                                              hidden);
  LAUNCH_CHECK();
}

// dw += sum over rows of dout * xhat; db += sum of dout (LayerNorm's bias; nullptr skips it).
void oracle_norm_weight_grad(NormKind kind, const float* dout, const float* x, const float* mean, const float* rstd,
                             float* dw, float* db, int rows, int hidden, cudaStream_t s) {
  if (hidden == 0) return;
  model_oracle::norm_weight_grad_kernel<<<(hidden + model_oracle::kThreads - 1) / model_oracle::kThreads,
                                          model_oracle::kThreads, 0, s>>>(kind, dout, x, mean, rstd, dw,
                                                                          kind == kLayerNorm ? db : nullptr, rows,
                                                                          hidden);
  LAUNCH_CHECK();
}

// Rotary embedding in place on x fp32 [batch][n][heads][d], position = the row within its sequence (whole
// sequences), by the d/2 inverse frequencies inv_freq (host memory, d <= 256); inverse rotates back (the
// backward).
void oracle_rope(float* x, int batch, int n, int heads, int d, const double* inv_freq, bool inverse, cudaStream_t s) {
  const size_t total = (size_t)batch * n * heads * (d / 2);
  if (total == 0) return;
  if (d / 2 > smx_support::kMaxRopeHalf || inv_freq == nullptr) {
    std::fprintf(stderr, "lasp oracle_rope: bad arguments (d %d, inv_freq %p)\n", d, (const void*)inv_freq);
    std::exit(3);
  }
  smx_support::RopeFreqs table{};
  for (int e = 0; e < d / 2; ++e) table.inv_freq[e] = inv_freq[e];
  model_oracle::rope_kernel<<<model_oracle::blocks_for(total), model_oracle::kThreads, 0, s>>>(
      x, batch, n, heads, d, table, inverse ? -1.0 : 1.0);
  LAUNCH_CHECK();
}

// out = phi(pre) (lasp::FeatureMap codes).
void oracle_feature_map_forward(const float* pre, float* out, size_t n, int feature_map, cudaStream_t s) {
  if (n == 0) return;
  model_oracle::feature_forward_kernel<<<model_oracle::blocks_for(n), model_oracle::kThreads, 0, s>>>(pre, out, n,
                                                                                                       feature_map);
  LAUNCH_CHECK();
}

// dx = dy * phi'(pre); dx may be dy.
void oracle_feature_map_backward(const float* pre, const float* dy, float* dx, size_t n, int feature_map,
                                 cudaStream_t s) {
  if (n == 0) return;
  model_oracle::feature_backward_kernel<<<model_oracle::blocks_for(n), model_oracle::kThreads, 0, s>>>(
      pre, dy, dx, n, feature_map);
  LAUNCH_CHECK();
}

// y = x / sqrt(mean(x^2) + eps) over each of `rows` d-vectors (the attention output's norm, each head).
void oracle_head_rms_forward(const float* x, float* y, size_t rows, int d, float eps, cudaStream_t s) {
  if (rows == 0) return;
  model_oracle::head_rms_forward_kernel<<<model_oracle::blocks_for(rows), model_oracle::kThreads, 0, s>>>(x, y, rows,
                                                                                                          d, eps);
  LAUNCH_CHECK();
}

// dx for y = the head norm of x, given dy; dx may be dy.
void oracle_head_rms_backward(const float* x, const float* dy, float* dx, size_t rows, int d, float eps,
                              cudaStream_t s) {
  if (rows == 0) return;
  model_oracle::head_rms_backward_kernel<<<model_oracle::blocks_for(rows), model_oracle::kThreads, 0, s>>>(
      x, dy, dx, rows, d, eps);
  LAUNCH_CHECK();
}

// h = silu(gate) * up, n elements.
void oracle_swiglu_forward(const float* gate, const float* up, float* h, size_t n, cudaStream_t s) {
  if (n == 0) return;
  model_oracle::swiglu_forward_kernel<<<model_oracle::blocks_for(n), model_oracle::kThreads, 0, s>>>(gate, up, h, n);
  LAUNCH_CHECK();
}

// dgate, dup from dh.
void oracle_swiglu_backward(const float* gate, const float* up, const float* dh, float* dgate, float* dup, size_t n,
                            cudaStream_t s) {
  if (n == 0) return;
  model_oracle::swiglu_backward_kernel<<<model_oracle::blocks_for(n), model_oracle::kThreads, 0, s>>>(gate, up, dh,
                                                                                                       dgate, dup, n);
  LAUNCH_CHECK();
}

// Cross-entropy of `rows` rows of fp32 logits [rows][vocab] against targets (-1: none): losses[r], and each
// row overwritten by its gradient (softmax - onehot) * inv_count.
void oracle_xent_rows(float* logits, const int* targets, float* losses, int rows, int vocab, float inv_count,
                      cudaStream_t s) {
  if (rows == 0) return;
  model_oracle::xent_kernel<<<rows, model_oracle::kThreads, 0, s>>>(logits, targets, losses, vocab, inv_count);
  LAUNCH_CHECK();
}

// x[i] *= 1 + 2^-8 u(key, i), u in [-1, 1) a fixed hash: q, k or v moved by about one bf16 rounding, the same
// for the same key and index on every call (verify's conditioning probe).
void oracle_perturb(float* x, size_t n, uint64_t key, cudaStream_t s) {
  if (n == 0) return;
  model_oracle::perturb_kernel<<<model_oracle::blocks_for(n), model_oracle::kThreads, 0, s>>>(x, n, key);
  LAUNCH_CHECK();
}

// out[5] (host) = {max |got - ref|, max |ref|, sum (got - ref)^2, sum ref^2, non-finite elements} over n
// elements; synchronises `s`.
void oracle_compare(const float* got, const float* ref, size_t n, double* out, cudaStream_t s) {
  double* partial = nullptr;
  const size_t partial_bytes = (model_oracle::kCompareBlocks * 5 + 5) * sizeof(double);
  CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&partial), partial_bytes, s));
  double* result = partial + model_oracle::kCompareBlocks * 5;
  model_oracle::compare_kernel<<<model_oracle::kCompareBlocks, model_oracle::kThreads, 0, s>>>(got, ref, n, partial);
  LAUNCH_CHECK();
  model_oracle::compare_final_kernel<<<1, 1, 0, s>>>(partial, model_oracle::kCompareBlocks, result);
  LAUNCH_CHECK();
  CUDA_CHECK(cudaMemcpyAsync(out, result, 5 * sizeof(double), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaFreeAsync(partial, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
}

}  // namespace lasp
