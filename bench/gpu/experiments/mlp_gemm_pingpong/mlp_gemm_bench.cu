// Checks and times the ping-pong GEMM of mlp_gemm.cuh against lasp's path today (cuBLAS through
// templates/runtime/blas.cuh, then the SwiGLU kernels of templates/runtime/swiglu.cuh). One H100 run does it all:
//
//   ./mlp_gemm_bench [--check-only | --bench-only] [--shape 1b|8b|all|small] [--cluster 1|2|both] [--seed N]
//
// --cluster: the kernel's CTAs alone (1), in pairs along M that share B through TMA multicast (2), or both
// (default). Small shapes (tiny, odd, wrap) are always checked in check mode; --shape small checks only them.
//
// Checks (fresh random inputs every run, outputs poisoned with 0xFF bytes = bf16 NaN before every run):
//   a) the plain GEMM (bf16 store epilogue), B K-major (X W^T) and B MN-major (DY Wd), against cuBLAS (ulp
//      histogram, relative Frobenius error) and against an fp64 CPU reference on random samples;
//   b) the fused forward: GU against cuBLAS, H bit for bit against swiglu.cuh's swiglu_forward applied to the
//      fused kernel's own GU, H against the unfused baseline, H against fp64;
//   c) the fused backward: dg/du bit for bit against swiglu_backward applied to the plain GEMM's DH (same
//      accumulation order as the fused kernel), against the unfused baseline, against fp64;
//   d) every fused kernel run twice on the same inputs: bit-identical (a race shows up as a difference).
// Timing (METHOD.md): events, 5 warm-ups, median of 20 single runs rotating 3 input sets; "sustained": after
// ~1 s of back-to-back runs, the median of 5 batches of >= 25 ms each. Table last.
// Exit: 0 all checks passed, 1 a check failed, 2 usage / unsupported shape, 3 CUDA error or a hung kernel.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "check.cuh"   // CUDA_CHECK, CUBLAS_CHECK, LAUNCH_CHECK (templates/runtime)
#include "blas.cuh"    // lasp::matmul: lasp's cuBLAS call
#include "swiglu.cuh"  // lasp::swiglu_forward / swiglu_backward: lasp's SwiGLU kernels
#include "mlp_gemm.cuh"

using bf16 = __nv_bfloat16;

// ---------------------------------------------------------------------------------------------------------
// Harness constants
// ---------------------------------------------------------------------------------------------------------
constexpr double kWatchdogSec = 10.0;   // a launch group not done by then: hung (mbarrier deadlock), exit 3
constexpr int kWarmups = 5, kRuns = 20, kSets = 3;
constexpr double kSustainWarmSec = 1.0, kBatchMs = 25.0;
constexpr int kBatches = 5;
constexpr int kSamples = 2048;          // fp64 reference samples per check
constexpr double kRelFp64 = 1e-2;       // ||out - ref|| / ||ref|| against fp64 (bf16 output)
constexpr double kRelClose = 1e-3;      // against cuBLAS / the unfused baseline (accumulation order only)
constexpr double kFracGt1Ulp = 1e-2;    // at most this fraction of elements more than 1 ulp from the baseline

struct Shape {
  std::string name;
  int M, K, F;
};

// ---------------------------------------------------------------------------------------------------------
// Watchdog: every wait polls with a deadline instead of blocking in the driver.
// ---------------------------------------------------------------------------------------------------------
static cudaEvent_t g_sync_event;

static void wait_event(cudaEvent_t e, const char* what) {
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    const cudaError_t r = cudaEventQuery(e);
    if (r == cudaSuccess) return;
    if (r != cudaErrorNotReady) {
      std::fprintf(stderr, "CUDA error %s (%s) while waiting for: %s\n", cudaGetErrorName(r), cudaGetErrorString(r),
                   what);
      std::fflush(stderr);
      _exit(3);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s > kWatchdogSec) {
      std::printf("\nWATCHDOG: '%s' did not finish within %.0f s: a hung kernel (mbarrier deadlock?). Exit 3.\n",
                  what, kWatchdogSec);
      std::fflush(stdout);
      std::fprintf(stderr, "WATCHDOG: '%s' hung\n", what);
      std::fflush(stderr);
      _exit(3);  // no destructors: the context teardown kills the kernel
    }
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}
static void sync_stream(cudaStream_t s, const char* what) {
  CUDA_CHECK(cudaEventRecord(g_sync_event, s));
  wait_event(g_sync_event, what);
}

// ---------------------------------------------------------------------------------------------------------
// Device buffers and helpers
// ---------------------------------------------------------------------------------------------------------
struct Buf {
  bf16* p = nullptr;
  size_t n = 0;
  Buf() = default;
  explicit Buf(size_t count) : n(count) { CUDA_CHECK(cudaMalloc(&p, count * sizeof(bf16))); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  Buf(Buf&& o) noexcept : p(o.p), n(o.n) { o.p = nullptr; }
  ~Buf() {
    if (p) cudaFree(p);
  }
  size_t bytes() const { return n * sizeof(bf16); }
};

__device__ __forceinline__ uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
// x[i] = bf16(N(0, stdv)) from (seed, i) (Box-Muller).
__global__ void fill_normal_kernel(bf16* x, size_t n, uint64_t seed, float stdv) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const uint64_t z = mix64(seed * 0xD1B54A32D192ED03ull + i);
    const float u1 = ((float)(z >> 40) + 0.5f) * (1.f / 16777216.f);  // (0, 1)
    const float u2 = (float)((z >> 16) & 0xFFFFFF) * (1.f / 16777216.f);
    x[i] = __float2bfloat16_rn(sqrtf(-2.f * logf(u1)) * cospif(2.f * u2) * stdv);
  }
}
static void fill_normal(Buf& b, uint64_t seed, float stdv, cudaStream_t s) {
  fill_normal_kernel<<<1024, 256, 0, s>>>(b.p, b.n, seed, stdv);
  LAUNCH_CHECK();
}
static void poison(Buf& b, cudaStream_t s) { CUDA_CHECK(cudaMemsetAsync(b.p, 0xFF, b.bytes(), s)); }
static void copy(Buf& dst, const Buf& src, cudaStream_t s) {
  CUDA_CHECK(cudaMemcpyAsync(dst.p, src.p, src.bytes(), cudaMemcpyDeviceToDevice, s));
}

// Comparison of two bf16 arrays (a = under test, b = reference).
// "Bad" elements (exact checks: bits differ; close checks: a NaN or more than 1 ulp apart) are also located, so
// that a failed check says where it failed without another GPU run: the lowest bad index (stored inverted, so
// that atomicMax finds the minimum and 0 means none) and a map of the bad elements by position inside the
// 128 x 128 output tile (row slab (r % 128) / 16 = m64 half * 4 + warp; column block (c % 128) / 8).
struct Stats {
  unsigned long long n, nan_a, nan_b, bits_ne, ulp0, ulp1, ulp2, ulp3_8, ulp_gt8;
  unsigned long long first_bad_inv;
  unsigned int max_ulp, max_abs_bits;
  double sum_d2, sum_r2;
  unsigned int tile_bad[8][16];
};
__device__ __forceinline__ int ordered(uint16_t x) { return (x & 0x8000) ? -(int)(x & 0x7FFF) : (int)(x & 0x7FFF); }
__device__ __forceinline__ unsigned long long warp_sum(unsigned long long v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ unsigned int warp_max(unsigned int v) {
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_down_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ unsigned long long warp_max(unsigned long long v) {
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_down_sync(0xffffffffu, v, o));
  return v;
}
__global__ void compare_kernel(const uint16_t* __restrict__ a, const uint16_t* __restrict__ b, size_t n,
                               size_t cols, int exact, Stats* st) {
  __shared__ unsigned int tile_bad[8 * 16];
  for (int i = threadIdx.x; i < 8 * 16; i += blockDim.x) tile_bad[i] = 0;
  __syncthreads();
  unsigned long long nan_a = 0, nan_b = 0, ne = 0, u0 = 0, u1 = 0, u2 = 0, u38 = 0, ug = 0, fbi = 0;
  unsigned int mu = 0, mabs = 0;
  double d2 = 0, r2 = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const uint16_t x = a[i], y = b[i];
    ne += x != y;
    const bool xn = (x & 0x7FFF) > 0x7F80, yn = (y & 0x7FFF) > 0x7F80;
    nan_a += xn;
    nan_b += yn;
    unsigned int u = 0;
    if (!(xn || yn)) {
      u = (unsigned int)abs(ordered(x) - ordered(y));
      u0 += u == 0;
      u1 += u == 1;
      u2 += u == 2;
      u38 += u >= 3 && u <= 8;
      ug += u > 8;
      mu = max(mu, u);
      const float fx = __uint_as_float((uint32_t)x << 16), fy = __uint_as_float((uint32_t)y << 16);
      const float d = fabsf(fx - fy);
      if (!(d != d)) mabs = max(mabs, __float_as_uint(d));
      d2 += (double)(fx - fy) * (double)(fx - fy);
      r2 += (double)fy * (double)fy;
    }
    const bool bad = exact ? x != y : (xn || yn || u > 1);
    if (bad) {
      fbi = max(fbi, ~(unsigned long long)i);
      const size_t r = i / cols, c = i - r * cols;
      atomicAdd(&tile_bad[((r & 127) >> 4) * 16 + ((c & 127) >> 3)], 1u);
    }
  }
  fbi = warp_max(fbi);
  if ((threadIdx.x & 31) == 0 && fbi) atomicMax(&st->first_bad_inv, fbi);
  __syncthreads();
  for (int i = threadIdx.x; i < 8 * 16; i += blockDim.x)
    if (tile_bad[i]) atomicAdd(&st->tile_bad[i >> 4][i & 15], tile_bad[i]);
  nan_a = warp_sum(nan_a);
  nan_b = warp_sum(nan_b);
  ne = warp_sum(ne);
  u0 = warp_sum(u0);
  u1 = warp_sum(u1);
  u2 = warp_sum(u2);
  u38 = warp_sum(u38);
  ug = warp_sum(ug);
  mu = warp_max(mu);
  mabs = warp_max(mabs);
  d2 = warp_sum(d2);
  r2 = warp_sum(r2);
  if ((threadIdx.x & 31) == 0) {
    atomicAdd(&st->nan_a, nan_a);
    atomicAdd(&st->nan_b, nan_b);
    atomicAdd(&st->bits_ne, ne);
    atomicAdd(&st->ulp0, u0);
    atomicAdd(&st->ulp1, u1);
    atomicAdd(&st->ulp2, u2);
    atomicAdd(&st->ulp3_8, u38);
    atomicAdd(&st->ulp_gt8, ug);
    atomicMax(&st->max_ulp, mu);
    atomicMax(&st->max_abs_bits, mabs);
    atomicAdd(&st->sum_d2, d2);
    atomicAdd(&st->sum_r2, r2);
  }
}

__global__ void gather_kernel(const bf16* __restrict__ src, const size_t* __restrict__ idx, int n,
                              bf16* __restrict__ out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = src[idx[i]];
}

static Stats* g_stats_dev = nullptr;
static size_t* g_idx_dev = nullptr;
static bf16* g_gather_dev = nullptr;

// cols: the row length of both arrays (locates bad elements); exact: what counts as bad (see Stats).
static Stats compare(const Buf& a, const Buf& b, cudaStream_t s, const char* what, size_t cols, bool exact) {
  if (a.n != b.n || cols == 0 || a.n % cols != 0) {
    std::fprintf(stderr, "compare %s: sizes differ or do not match the row length\n", what);
    std::exit(2);
  }
  CUDA_CHECK(cudaMemsetAsync(g_stats_dev, 0, sizeof(Stats), s));
  compare_kernel<<<132 * 8, 256, 0, s>>>(reinterpret_cast<const uint16_t*>(a.p),
                                         reinterpret_cast<const uint16_t*>(b.p), a.n, cols, exact ? 1 : 0,
                                         g_stats_dev);
  LAUNCH_CHECK();
  Stats h;
  CUDA_CHECK(cudaMemcpyAsync(&h, g_stats_dev, sizeof(Stats), cudaMemcpyDeviceToHost, s));
  sync_stream(s, what);
  h.n = a.n;
  return h;
}

static std::vector<uint16_t> gather(const Buf& src, const std::vector<size_t>& idx, cudaStream_t s) {
  const int n = (int)idx.size();
  CUDA_CHECK(cudaMemcpyAsync(g_idx_dev, idx.data(), n * sizeof(size_t), cudaMemcpyHostToDevice, s));
  gather_kernel<<<(n + 255) / 256, 256, 0, s>>>(src.p, g_idx_dev, n, g_gather_dev);
  LAUNCH_CHECK();
  std::vector<uint16_t> out(n);
  CUDA_CHECK(cudaMemcpyAsync(out.data(), g_gather_dev, n * sizeof(uint16_t), cudaMemcpyDeviceToHost, s));
  sync_stream(s, "gather");
  return out;
}
static std::vector<uint16_t> to_host(const Buf& b, cudaStream_t s) {
  std::vector<uint16_t> h(b.n);
  CUDA_CHECK(cudaMemcpyAsync(h.data(), b.p, b.bytes(), cudaMemcpyDeviceToHost, s));
  sync_stream(s, "copy to host");
  return h;
}
static inline double bf(uint16_t x) {
  uint32_t u = (uint32_t)x << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return (double)f;
}

// ---------------------------------------------------------------------------------------------------------
// Check bookkeeping
// ---------------------------------------------------------------------------------------------------------
static int g_failed = 0, g_passed = 0;

static void verdict(bool ok, const std::string& name, const std::string& detail) {
  std::printf("  [%s] %-58s %s\n", ok ? "PASS" : "FAIL", name.c_str(), detail.c_str());
  std::fflush(stdout);
  (ok ? g_passed : g_failed)++;
}
static void info(const std::string& name, const std::string& detail) {
  std::printf("  [info] %-58s %s\n", name.c_str(), detail.c_str());
  std::fflush(stdout);
}
static std::string hist_text(const Stats& s) {
  char b[512];
  const double n = (double)s.n;
  const double rel = s.sum_r2 > 0 ? std::sqrt(s.sum_d2 / s.sum_r2) : 0.0;
  float mabs;
  std::memcpy(&mabs, &s.max_abs_bits, 4);
  std::snprintf(b, sizeof b,
                "ulps 0:%.6f 1:%.2e >1:%.2e (2:%llu 3-8:%llu >8:%llu, max %u) differ %.2e rel_fro %.2e max|d| %.3g "
                "NaN %llu/%llu",
                s.ulp0 / n, s.ulp1 / n, (s.ulp2 + s.ulp3_8 + s.ulp_gt8) / n, s.ulp2, s.ulp3_8, s.ulp_gt8, s.max_ulp,
                s.bits_ne / n, rel, mabs, s.nan_a, s.nan_b);
  return b;
}
// After a failed comparison: where it failed. The first bad element (row, column, both values) and the bad
// elements by position inside the 128 x 128 output tile: one line per 16-row slab (m64 half h, warp w of the
// consumer warpgroup), one character per 8-column block: '.' none, digit d: 10^(d-1) <= count < 10^d.
static uint16_t peek(const Buf& b, size_t i, cudaStream_t s) {
  uint16_t v = 0;
  CUDA_CHECK(cudaMemcpyAsync(&v, b.p + i, sizeof v, cudaMemcpyDeviceToHost, s));
  sync_stream(s, "peek");
  return v;
}
static void where(const Stats& st, const Buf& a, const Buf& b, size_t cols, cudaStream_t s) {
  if (st.first_bad_inv == 0) return;
  const size_t i = ~st.first_bad_inv;
  const uint16_t x = peek(a, i, s), y = peek(b, i, s);
  std::printf("         first bad element: row %zu col %zu (tile %zu, %zu; in tile %zu, %zu): got 0x%04x (%g) want "
              "0x%04x (%g)\n",
              i / cols, i % cols, i / cols / 128, i % cols / 128, i / cols % 128, i % cols % 128, x, bf(x), y, bf(y));
  std::printf("         bad elements by place in the 128x128 tile (cols 0..127 in blocks of 8):\n");
  for (int r = 0; r < 8; ++r) {
    char line[17];
    for (int c = 0; c < 16; ++c) {
      const unsigned int v = st.tile_bad[r][c];
      line[c] = v == 0 ? '.' : (char)('0' + std::min(9, 1 + (int)std::floor(std::log10((double)v))));
    }
    line[16] = 0;
    std::printf("           rows %3d-%3d (half %d warp %d) |%s|\n", 16 * r, 16 * r + 15, r / 4, r % 4, line);
  }
  std::fflush(stdout);
}
// Close to a baseline that differs only by accumulation order. cols: the arrays' row length.
static void check_close(const Buf& a, const Buf& b, size_t cols, cudaStream_t s, const std::string& name) {
  const Stats st = compare(a, b, s, name.c_str(), cols, false);
  const double rel = st.sum_r2 > 0 ? std::sqrt(st.sum_d2 / st.sum_r2) : 0.0;
  const double gt1 = (double)(st.ulp2 + st.ulp3_8 + st.ulp_gt8) / (double)st.n;
  const bool ok = st.nan_a == 0 && st.nan_b == 0 && rel < kRelClose && gt1 < kFracGt1Ulp;
  verdict(ok, name, hist_text(st));
  if (!ok) where(st, a, b, cols, s);
}
// Bit for bit.
static void check_exact(const Buf& a, const Buf& b, size_t cols, cudaStream_t s, const std::string& name) {
  const Stats st = compare(a, b, s, name.c_str(), cols, true);
  char d[256];
  std::snprintf(d, sizeof d, "%llu of %llu elements differ (NaN %llu/%llu, max ulp %u)", st.bits_ne, st.n, st.nan_a,
                st.nan_b, st.max_ulp);
  const bool ok = st.bits_ne == 0 && st.nan_a == 0;
  verdict(ok, name, d);
  if (!ok) where(st, a, b, cols, s);
}
static void info_exact(const Buf& a, const Buf& b, size_t cols, cudaStream_t s, const std::string& name) {
  const Stats st = compare(a, b, s, name.c_str(), cols, true);
  char d[256];
  std::snprintf(d, sizeof d, "%llu of %llu elements differ (max ulp %u)", st.bits_ne, st.n, st.max_ulp);
  info(name, d);
}
static void check_fp64(const std::vector<double>& out, const std::vector<double>& ref, const std::string& name) {
  double d2 = 0, r2 = 0, mx = 0;
  size_t nan = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) {
      ++nan;
      continue;
    }
    d2 += (out[i] - ref[i]) * (out[i] - ref[i]);
    r2 += ref[i] * ref[i];
    mx = std::max(mx, std::fabs(out[i] - ref[i]));
  }
  const double rel = r2 > 0 ? std::sqrt(d2 / r2) : 0.0;
  char d[256];
  std::snprintf(d, sizeof d, "%zu samples: rel %.2e (< %.0e), max|d| %.3g, non-finite %zu", out.size(), rel, kRelFp64,
                mx, nan);
  verdict(nan == 0 && rel < kRelFp64 && r2 > 0, name, d);
}

// ---------------------------------------------------------------------------------------------------------
// Checks of one shape
// ---------------------------------------------------------------------------------------------------------
static void check_shape(const Shape& sh, cublasHandle_t hb, cudaStream_t s, uint64_t seed,
                        const std::vector<int>& clusters) {
  const int M = sh.M, K = sh.K, F = sh.F, N2 = 2 * F;
  std::printf("\n== checks: %s  M=%d K=%d F=%d  (seed %llu)\n", sh.name.c_str(), M, K, F, (unsigned long long)seed);
  const size_t mk = (size_t)M * K, m2f = (size_t)M * N2, mf = (size_t)M * F;
  Buf X(mk), W((size_t)N2 * K), DY(mk), Wd((size_t)K * F);
  Buf GU_cb(m2f), GU_pl(m2f), GU_f(m2f), T1(m2f), B_cb(m2f), B_ref(m2f), B_f(m2f);
  Buf H_cb(mf), H_f(mf), H_chk(mf), DH_cb(mf), DH_pl(mf), T2(mf);
  const float wstd = 1.f / std::sqrt((float)K);
  fill_normal(X, seed * 8 + 1, 1.f, s);
  fill_normal(W, seed * 8 + 2, wstd, s);
  fill_normal(DY, seed * 8 + 3, 1.f, s);
  fill_normal(Wd, seed * 8 + 4, wstd, s);
  for (Buf* b : {&GU_cb, &GU_pl, &GU_f, &T1, &B_cb, &B_ref, &B_f, &H_cb, &H_f, &H_chk, &DH_cb, &DH_pl, &T2})
    poison(*b, s);

  // Baselines: lasp's calls.
  lasp::matmul(hb, false, true, M, N2, K, X.p, W.p, GU_cb.p);
  lasp::swiglu_forward(GU_cb.p, GU_cb.p + F, N2, H_cb.p, M, F, s);
  lasp::matmul(hb, false, false, M, F, K, DY.p, Wd.p, DH_cb.p);
  sync_stream(s, "cuBLAS baselines");

  // fp64 reference samples (r, c).
  std::mt19937_64 rng(seed ^ 0x5DEECE66DULL);
  std::vector<int> sr(kSamples), sc2(kSamples), scf(kSamples);
  for (int i = 0; i < kSamples; ++i) {
    sr[i] = (int)(rng() % M);
    sc2[i] = (int)(rng() % N2);
    scf[i] = (int)(rng() % F);
  }
  const std::vector<uint16_t> hX = to_host(X, s), hW = to_host(W, s), hDY = to_host(DY, s), hWd = to_host(Wd, s);
  auto dot_xw = [&](int r, int c) {  // sum_k X[r][k] W[c][k]
    double a = 0;
    for (int k = 0; k < K; ++k) a += bf(hX[(size_t)r * K + k]) * bf(hW[(size_t)c * K + k]);
    return a;
  };
  auto dot_dyw = [&](int r, int c) {  // sum_k DY[r][k] Wd[k][c]
    double a = 0;
    for (int k = 0; k < K; ++k) a += bf(hDY[(size_t)r * K + k]) * bf(hWd[(size_t)k * F + c]);
    return a;
  };
  auto sample = [&](const Buf& b, const std::vector<size_t>& idx) {
    const std::vector<uint16_t> v = gather(b, idx, s);
    std::vector<double> d(v.size());
    for (size_t i = 0; i < v.size(); ++i) d[i] = bf(v[i]);
    return d;
  };
  std::vector<size_t> idx_gu(kSamples), idx_g(kSamples), idx_u(kSamples), idx_f(kSamples);
  std::vector<double> ref_gu(kSamples), ref_h(kSamples), ref_g(kSamples), ref_u(kSamples),
      ref_d(kSamples);
  for (int i = 0; i < kSamples; ++i) {
    idx_gu[i] = (size_t)sr[i] * N2 + sc2[i];
    idx_g[i] = (size_t)sr[i] * N2 + scf[i];
    idx_u[i] = (size_t)sr[i] * N2 + F + scf[i];
    idx_f[i] = (size_t)sr[i] * F + scf[i];
    ref_gu[i] = dot_xw(sr[i], sc2[i]);
    ref_g[i] = dot_xw(sr[i], scf[i]);
    ref_u[i] = dot_xw(sr[i], F + scf[i]);
    const double sg = 1.0 / (1.0 + std::exp(-ref_g[i]));
    ref_h[i] = ref_g[i] * sg * ref_u[i];
    ref_d[i] = dot_dyw(sr[i], scf[i]);
  }

  // The unfused backward baseline and the fp64 dg/du references (inputs: GU from the cuBLAS forward).
  copy(B_cb, GU_cb, s);
  lasp::swiglu_backward(B_cb.p, B_cb.p + F, DH_cb.p, B_cb.p, B_cb.p + F, N2, M, F, s);
  sync_stream(s, "swiglu_backward baseline");
  std::vector<double> ref_dg(kSamples), ref_du(kSamples);
  {
    const std::vector<double> g = sample(GU_cb, idx_g), u = sample(GU_cb, idx_u);
    for (int i = 0; i < kSamples; ++i) {
      const double sg = 1.0 / (1.0 + std::exp(-g[i]));
      ref_du[i] = ref_d[i] * g[i] * sg;
      ref_dg[i] = ref_d[i] * u[i] * sg * (1.0 + g[i] * (1.0 - sg));
    }
  }

  for (const int cl : clusters) {
    if ((M / mlpgemm::BM) % cl != 0) {
      info("cluster " + std::to_string(cl), "skipped: M/128 is not a multiple of the cluster size");
      continue;
    }
    const std::string t = cl == 1 ? "" : " [cluster " + std::to_string(cl) + "]";
    // a) plain GEMMs.
    poison(GU_pl, s);
    mlpgemm::gemm(X.p, W.p, GU_pl.p, M, N2, K, false, s, cl);
    LAUNCH_CHECK();
    sync_stream(s, ("plain GEMM, B K-major (X W^T)" + t).c_str());
    check_close(GU_pl, GU_cb, N2, s, "a) plain X W^T vs cuBLAS" + t);
    check_fp64(sample(GU_pl, idx_gu), ref_gu, "a) plain X W^T vs fp64" + t);
    poison(DH_pl, s);
    mlpgemm::gemm(DY.p, Wd.p, DH_pl.p, M, F, K, true, s, cl);
    LAUNCH_CHECK();
    sync_stream(s, ("plain GEMM, B MN-major (DY Wd)" + t).c_str());
    check_close(DH_pl, DH_cb, F, s, "a) plain DY Wd (MN-major B) vs cuBLAS" + t);
    check_fp64(sample(DH_pl, idx_f), ref_d, "a) plain DY Wd vs fp64" + t);

    // b) fused forward.
    poison(GU_f, s);
    poison(H_f, s);
    mlpgemm::swiglu_forward_fused(X.p, W.p, GU_f.p, H_f.p, M, K, F, s, cl);
    LAUNCH_CHECK();
    sync_stream(s, ("fused forward (GEMM + SwiGLU)" + t).c_str());
    check_close(GU_f, GU_cb, N2, s, "b) fused GU vs cuBLAS GU" + t);
    info_exact(GU_f, GU_pl, N2, s, "b) fused GU vs plain GEMM GU (same order: expect 0)" + t);
    poison(H_chk, s);
    lasp::swiglu_forward(GU_f.p, GU_f.p + F, N2, H_chk.p, M, F, s);
    sync_stream(s, "swiglu_forward on the fused GU");
    check_exact(H_f, H_chk, F, s, "b) fused H == swiglu_forward(fused GU)" + t);
    check_close(H_f, H_cb, F, s, "b) fused H vs baseline cuBLAS + swiglu_forward" + t);
    check_fp64(sample(H_f, idx_f), ref_h, "b) fused H vs fp64" + t);
    {
      std::vector<double> g = sample(GU_f, idx_g), u = sample(GU_f, idx_u), gu, gur;
      for (int i = 0; i < kSamples; ++i) {
        gu.push_back(g[i]);
        gu.push_back(u[i]);
        gur.push_back(ref_g[i]);
        gur.push_back(ref_u[i]);
      }
      check_fp64(gu, gur, "b) fused GU (gate and up halves) vs fp64" + t);
    }
    copy(T1, GU_f, s);
    copy(T2, H_f, s);
    poison(GU_f, s);
    poison(H_f, s);
    mlpgemm::swiglu_forward_fused(X.p, W.p, GU_f.p, H_f.p, M, K, F, s, cl);
    LAUNCH_CHECK();
    sync_stream(s, ("fused forward, second run" + t).c_str());
    check_exact(GU_f, T1, N2, s, "d) fused forward run twice: GU identical" + t);
    check_exact(H_f, T2, F, s, "d) fused forward run twice: H identical" + t);

    // c) fused backward, GU from the cuBLAS forward as its input; its reference from this DH_pl.
    copy(B_ref, GU_cb, s);
    lasp::swiglu_backward(B_ref.p, B_ref.p + F, DH_pl.p, B_ref.p, B_ref.p + F, N2, M, F, s);
    sync_stream(s, "swiglu_backward reference");
    auto check_bwd = [&](auto launch_fn, const std::string& tag) {
      copy(B_f, GU_cb, s);
      launch_fn(B_f);
      LAUNCH_CHECK();
      sync_stream(s, ("fused backward" + tag).c_str());
      check_exact(B_f, B_ref, N2, s, "c) fused dg/du == swiglu_backward(GU, plain DH)" + tag);
      check_close(B_f, B_cb, N2, s, "c) fused dg/du vs baseline cuBLAS + swiglu_backward" + tag);
      std::vector<double> out = sample(B_f, idx_g), ou = sample(B_f, idx_u), ref = ref_dg;
      out.insert(out.end(), ou.begin(), ou.end());
      ref.insert(ref.end(), ref_du.begin(), ref_du.end());
      check_fp64(out, ref, "c) fused dg/du vs fp64" + tag);
      copy(T1, GU_cb, s);
      launch_fn(T1);
      LAUNCH_CHECK();
      sync_stream(s, ("fused backward, second run" + tag).c_str());
      check_exact(T1, B_f, N2, s, "d) fused backward run twice: identical" + tag);
    };
    check_bwd([&](Buf& gu) { mlpgemm::swiglu_backward_fused<false>(DY.p, Wd.p, gu.p, M, K, F, s, cl); }, t);
    check_bwd([&](Buf& gu) { mlpgemm::swiglu_backward_fused<true>(DY.p, Wd.p, gu.p, M, K, F, s, cl); },
              t + " [L2 prefetch]");
  }
}

// ---------------------------------------------------------------------------------------------------------
// Timing
// ---------------------------------------------------------------------------------------------------------
struct Timed {
  std::string shape, dir, name;
  double flops, ms, sus_ms;
  bool baseline;
};

// run(set) enqueues one call on input set `set`; restore() (may be empty) puts the in-place inputs back,
// outside the timed regions.
static Timed time_op(const std::string& shape, const std::string& dir, const std::string& name, double flops,
                     bool baseline, cudaStream_t s, const std::function<void(int)>& run,
                     const std::function<void()>& restore) {
  const std::string what = shape + " " + dir + " " + name;
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  int k = 0;
  if (restore) restore();
  for (int i = 0; i < kWarmups; ++i) run(k++ % kSets);
  LAUNCH_CHECK();
  sync_stream(s, what.c_str());
  std::vector<float> t;
  for (int i = 0; i < kRuns; ++i) {
    CUDA_CHECK(cudaEventRecord(a, s));
    run(k++ % kSets);
    CUDA_CHECK(cudaEventRecord(b, s));
    LAUNCH_CHECK();
    wait_event(b, what.c_str());
    float ms;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  std::sort(t.begin(), t.end());
  const double med = t[t.size() / 2];
  // Sustained: ~1 s of back-to-back batches, then 5 timed batches of >= 25 ms.
  const int n = std::max(1, (int)std::ceil(kBatchMs / std::max(med, 1e-3)));
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < kSustainWarmSec) {
    if (restore) restore();
    for (int i = 0; i < n; ++i) run(k++ % kSets);
    LAUNCH_CHECK();
    sync_stream(s, what.c_str());
  }
  std::vector<float> bt;
  for (int r = 0; r < kBatches; ++r) {
    if (restore) restore();
    CUDA_CHECK(cudaEventRecord(a, s));
    for (int i = 0; i < n; ++i) run(k++ % kSets);
    CUDA_CHECK(cudaEventRecord(b, s));
    LAUNCH_CHECK();
    wait_event(b, what.c_str());
    float ms;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    bt.push_back(ms / n);
  }
  std::sort(bt.begin(), bt.end());
  const double sus = bt[bt.size() / 2];
  std::printf("  %-4s %-40s median %8.4f ms (min %.4f max %.4f)  sustained %8.4f ms (batches of %d: %.4f .. %.4f)\n",
              dir.c_str(), name.c_str(), med, t.front(), t.back(), sus, n, bt.front(), bt.back());
  std::fflush(stdout);
  CUDA_CHECK(cudaEventDestroy(a));
  CUDA_CHECK(cudaEventDestroy(b));
  return Timed{shape, dir, name, flops, med, sus, baseline};
}

static void bench_shape(const Shape& sh, cublasHandle_t hb, cudaStream_t s, uint64_t seed, const std::vector<int>& clusters,
                        std::vector<Timed>& rows) {
  const int M = sh.M, K = sh.K, F = sh.F, N2 = 2 * F;
  std::printf("\n== timing: %s  M=%d K=%d F=%d  (%d input sets rotated)\n", sh.name.c_str(), M, K, F, kSets);
  const size_t mk = (size_t)M * K, m2f = (size_t)M * N2, mf = (size_t)M * F;
  std::vector<Buf> X, W, DY, Wd, GU, H, GUb, DH;
  const float wstd = 1.f / std::sqrt((float)K);
  for (int i = 0; i < kSets; ++i) {
    X.emplace_back(mk);
    W.emplace_back((size_t)N2 * K);
    DY.emplace_back(mk);
    Wd.emplace_back((size_t)K * F);
    GU.emplace_back(m2f);
    H.emplace_back(mf);
    GUb.emplace_back(m2f);
    DH.emplace_back(mf);
    fill_normal(X[i], seed * 64 + 8 * i + 1, 1.f, s);
    fill_normal(W[i], seed * 64 + 8 * i + 2, wstd, s);
    fill_normal(DY[i], seed * 64 + 8 * i + 3, 1.f, s);
    fill_normal(Wd[i], seed * 64 + 8 * i + 4, wstd, s);
    poison(H[i], s);
    poison(DH[i], s);
    lasp::matmul(hb, false, true, M, N2, K, X[i].p, W[i].p, GU[i].p);  // the forward's GU: the backward's input
  }
  // The backward overwrites its GU in place: each timed sequence starts from the forward's GU again.
  Buf GU0[kSets] = {Buf(m2f), Buf(m2f), Buf(m2f)};
  for (int i = 0; i < kSets; ++i) copy(GU0[i], GU[i], s);
  sync_stream(s, "timing inputs");
  const double ffw = 2.0 * M * (double)N2 * K, fbw = 2.0 * M * (double)F * K;
  const std::string nm = sh.name;
  auto restore = [&]() {
    for (int i = 0; i < kSets; ++i) copy(GUb[i], GU0[i], s);
  };

  rows.push_back(time_op(nm, "fwd", "cuBLAS GEMM alone", ffw, false, s,
                         [&](int i) { lasp::matmul(hb, false, true, M, N2, K, X[i].p, W[i].p, GU[i].p); }, nullptr));
  rows.push_back(time_op(nm, "fwd", "cuBLAS + swiglu_forward (baseline)", ffw, true, s,
                         [&](int i) {
                           lasp::matmul(hb, false, true, M, N2, K, X[i].p, W[i].p, GU[i].p);
                           lasp::swiglu_forward(GU[i].p, GU[i].p + F, N2, H[i].p, M, F, s);
                         },
                         nullptr));
  for (const int cl : clusters) {
    if ((M / mlpgemm::BM) % cl != 0) continue;
    const std::string t = cl == 1 ? "" : " [cluster 2]";
    rows.push_back(time_op(nm, "fwd", "ping-pong plain GEMM" + t, ffw, false, s,
                           [&](int i) { mlpgemm::gemm(X[i].p, W[i].p, GU[i].p, M, N2, K, false, s, cl); }, nullptr));
    rows.push_back(time_op(
        nm, "fwd", "ping-pong fused GEMM + SwiGLU" + t, ffw, false, s,
        [&](int i) { mlpgemm::swiglu_forward_fused(X[i].p, W[i].p, GU[i].p, H[i].p, M, K, F, s, cl); }, nullptr));
  }
  rows.push_back(time_op(nm, "bwd", "cuBLAS GEMM alone", fbw, false, s,
                         [&](int i) { lasp::matmul(hb, false, false, M, F, K, DY[i].p, Wd[i].p, DH[i].p); }, nullptr));
  rows.push_back(time_op(nm, "bwd", "cuBLAS + swiglu_backward (baseline)", fbw, true, s,
                         [&](int i) {
                           lasp::matmul(hb, false, false, M, F, K, DY[i].p, Wd[i].p, DH[i].p);
                           lasp::swiglu_backward(GUb[i].p, GUb[i].p + F, DH[i].p, GUb[i].p, GUb[i].p + F, N2, M, F,
                                                 s);
                         },
                         restore));
  for (const int cl : clusters) {
    if ((M / mlpgemm::BM) % cl != 0) continue;
    const std::string t = cl == 1 ? "" : " [cluster 2]";
    rows.push_back(time_op(nm, "bwd", "ping-pong plain GEMM (MN-major B)" + t, fbw, false, s,
                           [&](int i) { mlpgemm::gemm(DY[i].p, Wd[i].p, DH[i].p, M, F, K, true, s, cl); }, nullptr));
    rows.push_back(time_op(
        nm, "bwd", "ping-pong fused GEMM + SwiGLU bwd" + t, fbw, false, s,
        [&](int i) { mlpgemm::swiglu_backward_fused<false>(DY[i].p, Wd[i].p, GUb[i].p, M, K, F, s, cl); }, restore));
    rows.push_back(time_op(
        nm, "bwd", "ping-pong fused + L2 prefetch of g/u" + t, fbw, false, s,
        [&](int i) { mlpgemm::swiglu_backward_fused<true>(DY[i].p, Wd[i].p, GUb[i].p, M, K, F, s, cl); }, restore));
  }
}

static void print_table(const std::vector<Timed>& rows, const char* device) {
  std::printf("\n== results (%s): TFLOP/s = 2 M N K / time (N = 2F forward, F backward); saved = baseline - row\n",
              device);
  std::printf("%-8s %-4s %-40s | %9s %8s %9s | %9s %8s %9s\n", "shape", "dir", "variant", "ms", "TFLOP/s", "saved",
              "sust. ms", "TFLOP/s", "saved");
  std::string last;
  for (size_t i = 0; i < rows.size(); ++i) {
    const Timed& r = rows[i];
    double base = 0, base_s = 0;
    for (const Timed& q : rows)
      if (q.baseline && q.shape == r.shape && q.dir == r.dir) {
        base = q.ms;
        base_s = q.sus_ms;
      }
    const std::string key = r.shape + r.dir;
    if (!last.empty() && key != last) std::printf("\n");
    last = key;
    std::printf("%-8s %-4s %-40s | %9.4f %8.1f %+9.4f | %9.4f %8.1f %+9.4f\n", r.shape.c_str(), r.dir.c_str(),
                r.name.c_str(), r.ms, r.flops / (r.ms * 1e-3) / 1e12, base - r.ms, r.sus_ms,
                r.flops / (r.sus_ms * 1e-3) / 1e12, base_s - r.sus_ms);
  }
}

// ---------------------------------------------------------------------------------------------------------
int main(int argc, char** argv) {
  const auto t_start = std::chrono::steady_clock::now();
  bool do_check = true, do_bench = true;
  std::string shape_arg = "all", cluster_arg = "both";
  uint64_t seed = (uint64_t)std::chrono::system_clock::now().time_since_epoch().count() & 0xFFFFFFFFull;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--check-only") do_bench = false;
    else if (a == "--bench-only") do_check = false;
    else if (a == "--shape" && i + 1 < argc) shape_arg = argv[++i];
    else if (a == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--cluster" && i + 1 < argc) cluster_arg = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--check-only | --bench-only] [--shape 1b|8b|all|small] [--cluster 1|2|both] "
                   "[--seed N]\n",
                   argv[0]);
      return 2;
    }
  }
  std::vector<int> clusters;
  if (cluster_arg == "1") clusters = {1};
  else if (cluster_arg == "2") clusters = {2};
  else if (cluster_arg == "both") clusters = {1, 2};
  else {
    std::fprintf(stderr, "--cluster must be 1, 2 or both\n");
    return 2;
  }
  if (!do_check && !do_bench) {
    std::fprintf(stderr, "--check-only and --bench-only exclude each other\n");
    return 2;
  }
  const Shape s1b{"1b", 16384, 2048, 8192}, s8b{"8b", 16384, 4096, 14336};
  // Small shapes (checks only): one tile and one k-block; fewer k-blocks than stages with partial M groups;
  // several tiles per CTA, odd and even counts, a partial last M group.
  const std::vector<Shape> smalls = {{"tiny", 128, 64, 128}, {"odd", 1280, 320, 640}, {"wrap", 2304, 1024, 1408}};
  std::vector<Shape> shapes;
  if (shape_arg == "1b") shapes = {s1b};
  else if (shape_arg == "8b") shapes = {s8b};
  else if (shape_arg == "all") shapes = {s1b, s8b};
  else if (shape_arg != "small") {
    std::fprintf(stderr, "--shape must be 1b, 8b, all or small\n");
    return 2;
  }
  for (const Shape& sh : shapes)
    if (sh.M % 128 || sh.K % 64 || sh.F % 128) {
      std::fprintf(stderr, "shape %s: need M %% 128 == 0, K %% 64 == 0, F %% 128 == 0\n", sh.name.c_str());
      return 2;
    }

  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  int clock_khz = 0, mem_khz = 0;
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, dev);
  cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, dev);
  std::printf("device: %s, sm_%d%d, %d SMs, max SM clock %.0f MHz, L2 %.0f MB, %.1f GB; seed %llu\n", prop.name,
              prop.major, prop.minor, prop.multiProcessorCount, clock_khz / 1e3, prop.l2CacheSize / 1048576.0,
              prop.totalGlobalMem / 1073741824.0, (unsigned long long)seed);
  if (prop.major != 9 || prop.minor != 0) {
    std::fprintf(stderr, "needs a Hopper GPU (sm_90a); this is sm_%d%d\n", prop.major, prop.minor);
    return 2;
  }
  std::printf("kernel: BM %d BN %d BK %d, %d stages, GROUP_M %d, %d threads, %d B dynamic smem, grid = min(SMs, "
              "tiles)\n",
              mlpgemm::BM, mlpgemm::BN, mlpgemm::BK, mlpgemm::STAGES, mlpgemm::GROUP_M, mlpgemm::kThreads,
              mlpgemm::kSmemBytes);

  cudaStream_t s;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  CUDA_CHECK(cudaEventCreate(&g_sync_event));
  cublasHandle_t hb;
  CUBLAS_CHECK(cublasCreate(&hb));
  CUBLAS_CHECK(cublasSetStream(hb, s));
  CUDA_CHECK(cudaMalloc(&g_stats_dev, sizeof(Stats)));
  CUDA_CHECK(cudaMalloc(&g_idx_dev, kSamples * 2 * sizeof(size_t)));
  CUDA_CHECK(cudaMalloc(&g_gather_dev, kSamples * 2 * sizeof(bf16)));

  if (do_check) {
    uint64_t k = 0;
    for (const Shape& sh : smalls) check_shape(sh, hb, s, seed + 1000 * ++k, clusters);
    for (const Shape& sh : shapes) check_shape(sh, hb, s, seed + 1000 * ++k, clusters);
    std::printf("\nchecks: %d passed, %d failed\n", g_passed, g_failed);
  }
  std::vector<Timed> rows;
  if (do_bench)
    for (const Shape& sh : shapes) bench_shape(sh, hb, s, seed, clusters, rows);
  if (!rows.empty()) print_table(rows, prop.name);
  std::printf("\nelapsed %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count());
  if (do_check) std::printf("\n%s: %d checks passed, %d failed\n", g_failed ? "FAIL" : "PASS", g_passed, g_failed);

  CUBLAS_CHECK(cublasDestroy(hb));
  CUDA_CHECK(cudaStreamDestroy(s));
  return g_failed ? 1 : 0;
}
