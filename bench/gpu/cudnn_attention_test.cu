// Checks and timings of the cuDNN fused-attention backend (templates/runtime/cudnn_attention.cuh) against a
// float64 CPU reference and against our own kernels (templates/runtime/softmax_attention.cuh).
//
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -DLASP_WITH_CUDNN -Itemplates/runtime \
//        -I$CUDNN/include -o cudnn_attention_test bench/gpu/cudnn_attention_test.cu -L$CUDNN/lib -l:libcudnn.so.9
//   ./cudnn_attention_test [--seed N] [--checks-only | --bench-only] [--runs N] [--tokens N ...]
//                          [--pingpong 0|1] [--dq-vec4 0|1]   (our kernels' settings; default: the product's)
//   (bench/gpu/run_cudnn.sh finds cuDNN, builds, runs this and PyTorch's SDPA in one go.)
//
// Our kernels take a minute to compile, so the file can also be built in two parts (run_cudnn.sh's OURS_OBJ):
//   -DLASP_CUDNN_TEST_PART=1 -c  -> an object with only our kernels' wrappers (no cuDNN needed: build it anywhere)
//   -DLASP_CUDNN_TEST_PART=2     -> everything else, linked with that object.
//
// Checks (fresh random normal inputs, outputs poisoned with NaN first, NaN fails): cudnn_sdpa_forward (o, lse)
// and cudnn_sdpa_backward (dq, dk, dv; fed with the forward's own o and lse, as a training step does) against
// a float64 CPU reference of the same formulas, over: causal with q_rows == k_rows and with q_rows < k_rows
// (bottom-right), non-causal, GQA 16/8 and 4/1 and none, head_dim 64 and 128, batch 2 taken as a sub-range of
// the rows of larger buffers (batch stride > rows*heads*d; the rows around it must keep their poison), ragged
// row counts (1000 x 1100). Error: ||got - ref|| / ||ref|| per tensor (bf16 operands: pass below 1e-2), lse by
// max |got - ref| (pass below 1e-3). Also: cudnn_sdpa_supported() says no (and does not exit) for shapes the
// backend cannot take, and at the timing shapes cuDNN and our kernels agree.
//
// Timings: causal, batch 1, d 128: 16 heads (kv 16) at each --tokens (default 16384 65536), and the 1B-hybrid
// softmax layer (16 heads, 8 kv heads) at 16384. Median of --runs (default 10) after 2 warm-ups, CUDA events
// around each call on the default stream. FLOPs 4*N*N*H*d/2 forward, 2.5x that backward; fwd+bwd is the sum of
// the two medians. Lines starting with CUDNN / OURS are read by run_cudnn.sh; a markdown table comes last.
#include "check.cuh"
#include "types.cuh"

#ifndef LASP_CUDNN_TEST_PART
#define LASP_CUDNN_TEST_PART 0
#endif

#include <cuda_bf16.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

using lasp::bf16;
using lasp::SoftmaxDims;

// Our kernels behind plain functions, so that the cuDNN part can be built without compiling them again.
void ours_forward(const bf16* q, const bf16* k, const bf16* v, const SoftmaxDims& d, float* lse, bf16* o);
void ours_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* o, const float* lse, const bf16* dout,
                   const SoftmaxDims& d, bf16* dq, bf16* dk, bf16* dv);
void ours_settings(int* fwd_mode, int* bwd_mode, int* pingpong, int* dq_vec4);
void ours_set(int pingpong, int dq_vec4);  // -1 keeps the product's setting

#if LASP_CUDNN_TEST_PART != 2
#include "softmax_variants.cuh"  // the shipped kernels, and the settings only benchmarks change
void ours_forward(const bf16* q, const bf16* k, const bf16* v, const SoftmaxDims& d, float* lse, bf16* o) {
  const lasp::PieceMap id{0, {0, 0}, {0, 0}, {0, 0}};
  lasp::variants::block_forward(q, k, v, d, id, id, true, nullptr, lse, o, 0);
}
void ours_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* o, const float* lse, const bf16* dout,
                   const SoftmaxDims& d, bf16* dq, bf16* dk, bf16* dv) {
  lasp::variants::full_backward(q, k, v, o, lse, dout, d, true, dq, dk, dv, 0);
}
void ours_settings(int* fwd_mode, int* bwd_mode, int* pingpong, int* dq_vec4) {
  *fwd_mode = lasp::variants::fwd_mode();
  *bwd_mode = lasp::variants::bwd_mode();
  *pingpong = lasp::variants::pingpong();
  *dq_vec4 = lasp::variants::dq_vec4();
}
void ours_set(int pingpong, int dq_vec4) {
  if (pingpong >= 0) lasp::variants::pingpong() = pingpong;
  if (dq_vec4 >= 0) lasp::variants::dq_vec4() = dq_vec4;
}
#endif

#if LASP_CUDNN_TEST_PART != 1
#include <cudnn.h>
#include "cudnn_attention.cuh"
#include "bench_timing.cuh"

#ifndef LASP_WITH_CUDNN
#error "build with -DLASP_WITH_CUDNN (and cuDNN's include and lib paths)"
#endif

using lasp::CudnnSdpaShape;

template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) { CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(count, 1) * sizeof(T))); }
  ~Dev() {
    if (p) cudaFree(p);
  }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  void poison() { CUDA_CHECK(cudaMemset(p, 0xFF, std::max<size_t>(n, 1) * sizeof(T))); }  // NaN
  void up(const std::vector<T>& h) { CUDA_CHECK(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice)); }
  std::vector<T> down() const {
    std::vector<T> h(n);
    CUDA_CHECK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
};

static std::mt19937_64 g_rng;
static int g_fail = 0, g_checks = 0;
static double g_max_err[5] = {};  // o, lse (abs), dq, dk, dv over all cases

static double bf(bf16 x) { return (double)__bfloat162float(x); }
static std::vector<bf16> rand_bf16(size_t n) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<bf16> h(n);
  for (auto& x : h) x = __float2bfloat16(nd(g_rng));
  return h;
}
static bool is_poison(bf16 x) {
  uint16_t u;
  std::memcpy(&u, &x, 2);
  return u == 0xFFFF;
}

static void check(bool ok, const char* what, double err, double tol) {
  ++g_checks;
  if (!ok) ++g_fail;
  std::printf("    %-34s %.3e (tol %.0e) %s\n", what, err, tol, ok ? "ok" : "FAILED");
}

// ||got - ref|| / ||ref|| (NaN -> inf).
static double rel_err(const std::vector<double>& got, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

struct Case {
  const char* name;
  int B, H, HK, SQ, SK, D;
  bool causal;
  int q_off, q_total;  // the call's q rows are rows [q_off, q_off + SQ) of a q_total-row buffer per batch
  int k_off, k_total;
};

// Float64 reference of one (batch, head): fills o, lse, dq rows of this head and dk, dv of this head (the
// caller sums dk, dv over each kv head's group).
struct Ref {
  std::vector<double> o, lse, dq, dk_h, dv_h;  // dk_h/dv_h: [B][H][SK][D]
};

static void reference(const Case& c, const std::vector<bf16>& q, const std::vector<bf16>& k,
                      const std::vector<bf16>& v, const std::vector<bf16>& dout, double scale, Ref& r) {
  const int B = c.B, H = c.H, HK = c.HK, SQ = c.SQ, SK = c.SK, D = c.D, G = H / HK;
  r.o.assign((size_t)B * SQ * H * D, 0);
  r.dq.assign((size_t)B * SQ * H * D, 0);
  r.lse.assign((size_t)B * H * SQ, 0);
  r.dk_h.assign((size_t)B * H * SK * D, 0);
  r.dv_h.assign((size_t)B * H * SK * D, 0);
  auto qa = [&](int b, int i, int h, int d) { return bf(q[(((size_t)b * c.q_total + c.q_off + i) * H + h) * D + d]); };
  auto doa = [&](int b, int i, int h, int d) { return bf(dout[(((size_t)b * c.q_total + c.q_off + i) * H + h) * D + d]); };
  auto ka = [&](int b, int j, int h, int d) { return bf(k[(((size_t)b * c.k_total + c.k_off + j) * HK + h) * D + d]); };
  auto va = [&](int b, int j, int h, int d) { return bf(v[(((size_t)b * c.k_total + c.k_off + j) * HK + h) * D + d]); };
  auto work = [&](int bh) {
    const int b = bh / H, h = bh % H, hk = h / G;
    std::vector<double> K((size_t)SK * D), V((size_t)SK * D), s(SK), p(SK), dp(SK), qi(D), di(D), oi(D);
    for (int j = 0; j < SK; ++j)
      for (int d = 0; d < D; ++d) K[(size_t)j * D + d] = ka(b, j, hk, d), V[(size_t)j * D + d] = va(b, j, hk, d);
    double* dk = &r.dk_h[(size_t)bh * SK * D];
    double* dv = &r.dv_h[(size_t)bh * SK * D];
    for (int i = 0; i < SQ; ++i) {
      const int n = c.causal ? std::min(SK, i + (SK - SQ) + 1) : SK;  // visible keys: a prefix
      for (int d = 0; d < D; ++d) qi[d] = qa(b, i, h, d), di[d] = doa(b, i, h, d);
      double m = -INFINITY;
      for (int j = 0; j < n; ++j) {
        double acc = 0;
        for (int d = 0; d < D; ++d) acc += qi[d] * K[(size_t)j * D + d];
        s[j] = acc * scale;
        m = std::max(m, s[j]);
      }
      double l = 0;
      for (int j = 0; j < n; ++j) l += std::exp(s[j] - m);
      const double lse = m + std::log(l);
      r.lse[((size_t)b * H + h) * SQ + i] = lse;
      std::fill(oi.begin(), oi.end(), 0.0);
      double delta = 0;
      for (int j = 0; j < n; ++j) {
        p[j] = std::exp(s[j] - lse);
        double acc = 0;
        for (int d = 0; d < D; ++d) oi[d] += p[j] * V[(size_t)j * D + d], acc += di[d] * V[(size_t)j * D + d];
        dp[j] = acc;
        delta += p[j] * acc;
      }
      double* o = &r.o[(((size_t)b * SQ + i) * H + h) * D];
      double* dq = &r.dq[(((size_t)b * SQ + i) * H + h) * D];
      for (int d = 0; d < D; ++d) o[d] = oi[d];
      for (int j = 0; j < n; ++j) {
        const double ds = p[j] * (dp[j] - delta);
        for (int d = 0; d < D; ++d) {
          dq[d] += scale * ds * K[(size_t)j * D + d];
          dk[(size_t)j * D + d] += scale * ds * qi[d];
          dv[(size_t)j * D + d] += p[j] * di[d];
        }
      }
    }
  };
  const int n_bh = B * H;
  const int nt = std::max(1, std::min<int>(n_bh, (int)std::thread::hardware_concurrency()));
  std::vector<std::thread> ts;
  for (int t = 0; t < nt; ++t)
    ts.emplace_back([&, t] {
      for (int bh = t; bh < n_bh; bh += nt) work(bh);
    });
  for (auto& t : ts) t.join();
}

static void run_case(const Case& c) {
  const int B = c.B, H = c.H, HK = c.HK, SQ = c.SQ, SK = c.SK, D = c.D, G = H / HK;
  std::printf("== %s: batch %d, heads %d/%d, q_rows %d, k_rows %d, d %d, %s\n", c.name, B, H, HK, SQ, SK, D,
              c.causal ? "causal (bottom-right)" : "non-causal");
  const double scale = 1.0 / std::sqrt((double)D);
  CudnnSdpaShape s{B, H, HK, SQ, SK, D, c.causal, (float)scale, (long long)c.q_total * H * D,
                   (long long)c.k_total * HK * D};
  const auto t0 = std::chrono::steady_clock::now();
  const bool sup = lasp::cudnn_sdpa_supported(s);
  const double build_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!sup) {
    std::printf("    cudnn_sdpa_supported: no (plan build %.0f ms) -- FAILED\n", build_ms);
    for (int dir = 0; dir < 2; ++dir) {
      const lasp::cudnn_sdpa::Plan* p = lasp::cudnn_sdpa::get_plan(dir, s);
      if (p)
        std::printf("    %s plan: %s (%s: %s)\n", dir ? "backward" : "forward", p->ok ? "ok" : "failed",
                    p->ok ? "-" : p->what, cudnnGetErrorString(p->status));
    }
    char msg[1024] = {};
    cudnnGetLastErrorString(msg, sizeof(msg));
    std::printf("    cuDNN's last error: %s\n", msg);
    ++g_fail, ++g_checks;
    return;
  }
  std::printf("    plans built in %.0f ms\n", build_ms);
  const size_t nq = (size_t)B * c.q_total * H * D, nk = (size_t)B * c.k_total * HK * D;
  auto hq = rand_bf16(nq), hk = rand_bf16(nk), hv = rand_bf16(nk), hdo = rand_bf16(nq);
  Dev<bf16> q(nq), k(nk), v(nk), dout(nq), o(nq), dq(nq), dk(nk), dv(nk);
  Dev<float> lse((size_t)B * H * SQ);
  q.up(hq), k.up(hk), v.up(hv), dout.up(hdo);
  o.poison(), dq.poison(), dk.poison(), dv.poison(), lse.poison();
  const size_t qo = (size_t)c.q_off * H * D, ko = (size_t)c.k_off * HK * D;
  lasp::cudnn_sdpa_forward(s, q.p + qo, k.p + ko, v.p + ko, o.p + qo, lse.p, 0);
  lasp::cudnn_sdpa_backward(s, q.p + qo, k.p + ko, v.p + ko, o.p + qo, dout.p + qo, lse.p, dq.p + qo, dk.p + ko,
                            dv.p + ko, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  auto go = o.down(), gdq = dq.down(), gdk = dk.down(), gdv = dv.down();
  auto glse = lse.down();

  Ref r;
  reference(c, hq, hk, hv, hdo, scale, r);
  // Gather the call's rows, and count touched elements outside them.
  long long touched = 0;
  auto gather = [&](const std::vector<bf16>& g, int total, int off, int rows, int heads) {
    std::vector<double> out((size_t)B * rows * heads * D);
    for (int b = 0; b < B; ++b)
      for (int i = 0; i < total; ++i)
        for (size_t e = 0; e < (size_t)heads * D; ++e) {
          const bf16 x = g[((size_t)b * total + i) * heads * D + e];
          if (i >= off && i < off + rows) out[(((size_t)b * rows) + (i - off)) * heads * D + e] = bf(x);
          else touched += !is_poison(x);
        }
    return out;
  };
  auto o64 = gather(go, c.q_total, c.q_off, SQ, H), dq64 = gather(gdq, c.q_total, c.q_off, SQ, H);
  auto dk64 = gather(gdk, c.k_total, c.k_off, SK, HK), dv64 = gather(gdv, c.k_total, c.k_off, SK, HK);
  std::vector<double> dk_ref((size_t)B * SK * HK * D, 0), dv_ref((size_t)B * SK * HK * D, 0);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int j = 0; j < SK; ++j)
        for (int d = 0; d < D; ++d) {
          const size_t src = (((size_t)b * H + h) * SK + j) * D + d;
          const size_t dst = (((size_t)b * SK + j) * HK + h / G) * D + d;
          dk_ref[dst] += r.dk_h[src], dv_ref[dst] += r.dv_h[src];
        }
  double lse_err = 0;
  for (size_t i = 0; i < glse.size(); ++i) {
    const double e = std::fabs((double)glse[i] - r.lse[i]);
    lse_err = std::isfinite(e) ? std::max(lse_err, e) : INFINITY;
  }
  const double errs[5] = {rel_err(o64, r.o), lse_err, rel_err(dq64, r.dq), rel_err(dk64, dk_ref),
                          rel_err(dv64, dv_ref)};
  const char* names[5] = {"o (rel)", "lse (max abs)", "dq (rel)", "dk (rel)", "dv (rel)"};
  for (int t = 0; t < 5; ++t) {
    const double tol = t == 1 ? 1e-3 : 1e-2;
    check(errs[t] < tol, names[t], errs[t], tol);
    g_max_err[t] = std::max(g_max_err[t], errs[t]);
  }
  if (c.q_total != SQ || c.k_total != SK) check(touched == 0, "elements written outside the rows", (double)touched, 0);
}

static void checks() {
  const Case cs[] = {
      {"causal square, GQA 16/8, d128", 1, 16, 8, 256, 256, 128, true, 0, 256, 0, 256},
      {"causal bottom-right q<k, GQA 4/1, d128", 1, 4, 1, 128, 384, 128, true, 0, 128, 0, 384},
      {"causal bottom-right q<k, no GQA, d64", 1, 4, 4, 192, 320, 64, true, 0, 192, 0, 320},
      {"non-causal, no GQA, d64", 1, 4, 4, 200, 300, 64, false, 0, 200, 0, 300},
      {"non-causal, GQA 4/1, d128", 1, 4, 1, 256, 128, 128, false, 0, 256, 0, 128},
      {"batch 2 sub-range rows, causal, GQA 8/2, d64", 2, 8, 2, 256, 256, 64, true, 100, 600, 37, 400},
      {"batch 2 sub-range rows, q<k causal, no GQA, d128", 2, 4, 4, 200, 300, 128, true, 64, 333, 10, 320},
      {"ragged 1000 x 1100 causal, GQA 16/8, d128", 1, 16, 8, 1000, 1100, 128, true, 0, 1000, 0, 1100},
      {"ragged 1000 x 1100 non-causal, GQA 4/1, d64", 1, 4, 1, 1000, 1100, 64, false, 0, 1000, 0, 1100},
      {"ragged 1000 x 1000 causal, no GQA, d128", 1, 4, 4, 1000, 1000, 128, true, 0, 1000, 0, 1000},
  };
  for (const Case& c : cs) run_case(c);
  // A second run of the first shape: the cached plan with new pointers and fresh inputs.
  run_case(cs[0]);

  std::printf("== shapes the backend must refuse (cudnn_sdpa_supported false, no exit)\n");
  const float sc = 0.125f;
  const CudnnSdpaShape bad[] = {
      {1, 4, 4, 256, 128, 128, true, sc, 256 * 4 * 128, 128 * 4 * 128},  // causal with q_rows > k_rows
      {1, 4, 4, 128, 128, 96, false, sc, 128 * 4 * 96, 128 * 4 * 96},    // head_dim 96
      {1, 6, 4, 128, 128, 128, false, sc, 128 * 6 * 128, 128 * 4 * 128}, // heads % kv_heads != 0
      {1, 4, 4, 0, 128, 128, false, sc, 0, 128 * 4 * 128},               // no rows
  };
  for (const auto& s : bad) {
    const bool sup = lasp::cudnn_sdpa_supported(s);
    check(!sup, "refused", sup ? 1.0 : 0.0, 0);
  }
}

// Normal(0, 1) bf16 on the device (hash of the index, Box-Muller): the timing shapes hold up to 4 x 134M
// values, which would take the CPU tens of seconds to draw.
__global__ void randn_kernel(bf16* x, size_t n, unsigned long long seed) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  auto mix = [](unsigned long long z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  const unsigned long long h = mix(seed * 0x2545F4914F6CDD1Dull + i);
  const float u1 = ((h >> 40) + 1) * (1.0f / 16777217.0f), u2 = ((h >> 16) & 0xFFFFFF) * (1.0f / 16777216.0f);
  x[i] = __float2bfloat16(sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2));
}
static void randn(Dev<bf16>& x) {
  randn_kernel<<<(unsigned)((x.n + 255) / 256), 256>>>(x.p, x.n, g_rng());
  LAUNCH_CHECK();
}


// ||a - b|| / ||b|| between two device results (bf16 or fp32).
template <typename T>
static double dev_rel_diff(const Dev<T>& a, const Dev<T>& b) {
  auto ha = a.down(), hb = b.down();
  double num = 0, den = 0;
  for (size_t i = 0; i < ha.size(); ++i) {
    double x, y;
    if constexpr (std::is_same_v<T, float>) x = ha[i], y = hb[i];
    else x = bf(ha[i]), y = bf(hb[i]);
    if (!std::isfinite(x) || !std::isfinite(y)) return INFINITY;
    num += (x - y) * (x - y);
    den += y * y;
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

struct Timing {
  int N, H, HK;
  float cf, cb, of, ob;
};

static Timing bench(int N, int H, int HK, int runs, bool do_checks) {
  const int D = 128;
  const size_t nq = (size_t)N * H * D, nk = (size_t)N * HK * D;
  Dev<bf16> q(nq), k(nk), v(nk), dout(nq), o_c(nq), dq_c(nq), dk_c(nk), dv_c(nk), o_o(nq), dq_o(nq), dk_o(nk),
      dv_o(nk);
  Dev<float> lse_c((size_t)H * N), lse_o((size_t)H * N);
  randn(q), randn(k), randn(v), randn(dout);
  CudnnSdpaShape s{1, H, HK, N, N, D, true, 1.0f / std::sqrt((float)D), (long long)nq, (long long)nk};
  const auto t0 = std::chrono::steady_clock::now();
  if (!lasp::cudnn_sdpa_supported(s)) {
    std::printf("CUDNNERR %d %d %d: cudnn_sdpa_supported false\n", N, H, HK);
    ++g_fail;
    return Timing{N, H, HK, NAN, NAN, NAN, NAN};
  }
  const double build_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  SoftmaxDims d{1, N, N, H, HK, D};
  Timing t{N, H, HK, 0, 0, 0, 0};
  t.cf = time_ms([&] { lasp::cudnn_sdpa_forward(s, q.p, k.p, v.p, o_c.p, lse_c.p, 0); }, runs);
  t.cb = time_ms([&] {
    lasp::cudnn_sdpa_backward(s, q.p, k.p, v.p, o_c.p, dout.p, lse_c.p, dq_c.p, dk_c.p, dv_c.p, 0);
  }, runs);
  t.of = time_ms([&] { ours_forward(q.p, k.p, v.p, d, lse_o.p, o_o.p); }, runs);
  t.ob = time_ms([&] { ours_backward(q.p, k.p, v.p, o_o.p, lse_o.p, dout.p, d, dq_o.p, dk_o.p, dv_o.p); }, runs);
  CUDA_CHECK(cudaDeviceSynchronize());
  const double fl = 4.0 * N * (double)N * H * D / 2, bl = 2.5 * fl;
  auto tf = [](double flop, float ms) { return flop / (ms * 1e-3) / 1e12; };
  std::printf("CUDNN fwd %d %d %d %.3f %.1f\n", N, H, HK, t.cf, tf(fl, t.cf));
  std::printf("CUDNN bwd %d %d %d %.3f %.1f\n", N, H, HK, t.cb, tf(bl, t.cb));
  std::printf("CUDNN fwdbwd %d %d %d %.3f %.1f\n", N, H, HK, t.cf + t.cb, tf(fl + bl, t.cf + t.cb));
  std::printf("OURS fwd %d %d %d %.3f %.1f\n", N, H, HK, t.of, tf(fl, t.of));
  std::printf("OURS bwd %d %d %d %.3f %.1f\n", N, H, HK, t.ob, tf(bl, t.ob));
  std::printf("OURS fwdbwd %d %d %d %.3f %.1f\n", N, H, HK, t.of + t.ob, tf(fl + bl, t.of + t.ob));
  std::printf("    plans built in %.0f ms\n", build_ms);
  if (do_checks) {  // the same inputs through both implementations: they must agree
    std::printf("== cuDNN vs our kernels at %d tokens, heads %d/%d\n", N, H, HK);
    const char* names[5] = {"o", "lse", "dq", "dk", "dv"};
    // Our kernels keep lse as [batch][rows][heads], cuDNN's stats are [batch][heads][rows].
    double lse_diff = 0;
    {
      auto c = lse_c.down(), o = lse_o.down();
      double num = 0, den = 0;
      for (int h = 0; h < H; ++h)
        for (int i = 0; i < N; ++i) {
          const double x = c[(size_t)h * N + i], y = o[(size_t)i * H + h];
          num += (x - y) * (x - y), den += y * y;
        }
      lse_diff = std::isfinite(num) ? std::sqrt(num / std::max(den, 1e-300)) : INFINITY;
    }
    const double e[5] = {dev_rel_diff(o_c, o_o), lse_diff, dev_rel_diff(dq_c, dq_o),
                         dev_rel_diff(dk_c, dk_o), dev_rel_diff(dv_c, dv_o)};
    for (int i = 0; i < 5; ++i) {
      char what[64];
      std::snprintf(what, sizeof(what), "%s agreement (rel)", names[i]);
      check(e[i] < 2e-2, what, e[i], 2e-2);
    }
  }
  return t;
}

int main(int argc, char** argv) {
  unsigned long long seed = 1234;
  int runs = 10, pingpong = -1, dq_vec4 = -1;
  bool do_checks = true, do_bench = true;
  std::vector<int> tokens;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seed" && i + 1 < argc) seed = std::stoull(argv[++i]);
    else if (a == "--runs" && i + 1 < argc) runs = std::stoi(argv[++i]);
    else if (a == "--pingpong" && i + 1 < argc) pingpong = std::stoi(argv[++i]);
    else if (a == "--dq-vec4" && i + 1 < argc) dq_vec4 = std::stoi(argv[++i]);
    else if (a == "--checks-only") do_bench = false;
    else if (a == "--bench-only") do_checks = false;
    else if (a == "--tokens") {
      while (i + 1 < argc && argv[i + 1][0] != '-') tokens.push_back(std::stoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--seed N] [--checks-only | --bench-only] [--runs N] [--tokens N ...] "
                   "[--pingpong 0|1] [--dq-vec4 0|1]\n",
                   argv[0]);
      return 2;
    }
  }
  if (tokens.empty()) tokens = {16384, 65536};
  g_rng.seed(seed);
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  ours_set(pingpong, dq_vec4);
  int fm, bm, pp, v4;
  ours_settings(&fm, &bm, &pp, &v4);
  std::printf("device %s, %d SMs; cuDNN %zu (headers %d.%d.%d); our kernels: forward mode %d (ping-pong %d), "
              "backward mode %d (16-byte dQ atomics %d); seed %llu\n",
              prop.name, prop.multiProcessorCount, cudnnGetVersion(), CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL, fm,
              pp, bm, v4, seed);
  std::fflush(stdout);
  if (do_checks) checks();
  std::vector<Timing> ts;
  if (do_bench) {
    for (int N : tokens) ts.push_back(bench(N, 16, 16, runs, do_checks));
    ts.push_back(bench(16384, 16, 8, runs, do_checks));
  }
  if (do_checks) {
    std::printf("max errors vs float64: o %.2e, lse %.2e (abs), dq %.2e, dk %.2e, dv %.2e\n", g_max_err[0],
                g_max_err[1], g_max_err[2], g_max_err[3], g_max_err[4]);
    std::printf("CHECKS %s (%d failed of %d)\n", g_fail ? "FAILED" : "passed", g_fail, g_checks);
  }
  if (!ts.empty()) {
    std::printf("\n| tokens | heads (kv) | pass | cuDNN backend ms | TFLOP/s | our kernel ms | TFLOP/s | cuDNN / ours speed |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    for (const Timing& t : ts) {
      const double fl = 4.0 * t.N * (double)t.N * t.H * 128 / 2, bl = 2.5 * fl;
      const struct { const char* p; double c, o, f; } rows[3] = {
          {"fwd", t.cf, t.of, fl}, {"bwd", t.cb, t.ob, bl}, {"fwd+bwd", t.cf + t.cb, t.of + t.ob, fl + bl}};
      for (const auto& r : rows)
        std::printf("| %d | %d (%d) | %s | %.2f | %.0f | %.2f | %.0f | %.2f |\n", t.N, t.H, t.HK, r.p, r.c,
                    r.f / (r.c * 1e-3) / 1e12, r.o, r.f / (r.o * 1e-3) / 1e12, r.o / r.c);
    }
  }
  return g_fail ? 1 : 0;
}
#endif  // LASP_CUDNN_TEST_PART != 1
