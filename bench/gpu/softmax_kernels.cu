// Correctness checks and timings of the softmax (flash) attention kernels (templates/runtime/softmax_attention.cuh)
// and of the variants only the benchmarks select (softmax_variants.cuh, whose functions this file calls).
//
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -o softmax_kernels bench/gpu/softmax_kernels.cu
//   ./softmax_kernels [--seed N] [--checks-only | --bench-only] [--runs N] [--tokens N ...]
//                     [--bwd-impl 0|1|2] [--all-impls] [--suite 4:2,5:1,3:1] [--pingpong 0|1] [--dq-vec4 0|1]
//
// d = 128 has several implementations of each pass (the modes of softmax_variants.cuh): mma.sync (mode 0) and
// wgmma (forward mode 1 plain, 3 with the intra-warpgroup overlap, 4 / 5 warp-specialized with a TMA producer,
// 2 / 3 stages; backward mode 1, 2 warp-specialized). With checks on, a probe first runs the forward modes 4, 5,
// 3 and 1 on four small cases (each in a child process with a time limit, so a hang cannot stop the run) and keeps
// the product's default if it is right, else the first that is right (0 if none); backward modes 2 and 1 are
// probed the same way. The whole suite then runs once per (forward, backward) pair of --suite (default
// 4:2,5:1,3:1: the new kernels on every configuration the old ones are checked on), pairs that failed a probe
// counting as failures; --all-impls runs the suite on the mma.sync kernels first as well. --pingpong and --dq-vec4 set the
// warp-specialized forward's ping-pong turns and the backward's 16-byte dQ atomics for the whole run
// (children included). Timings include the mma.sync kernels, every forward mode that passed the probe, mode 4
// with the ping-pong setting flipped, every wgmma backward mode (1, 2) and the other dQ atomic width.
//
// Checks (fresh random normal inputs, outputs poisoned with NaN first, every element checked, NaN fails):
// - softmax_block_forward (bf16 o_out and fp32 o_part) and softmax_block_backward against a CPU float64
//   reference of the same formulas (dense masked sums over global positions), for causal and not, GQA and
//   not, head_dim 64 and 128, identity and two-piece maps (tiles straddling a piece boundary), row counts
//   that are not tile multiples, rows that see no key (lse -inf, o 0, gradients 0);
// - the backward accumulates (+=): the fp32 accumulators start from random values, and two calls on two
//   halves of the keys must equal one call on all of them;
// - softmax_full_backward (bf16 dq, dk, dv) against the same reference;
// - at 16K tokens (the timing shape), sampled rows of o / lse / dq and sampled keys of dk / dv.
// Error: ||got - ref|| / ||ref|| over the tensor (bf16 operands pass below 1e-2); lse by max |got - ref|.
//
// Timings: batch 1, 16 heads x 128 (kv 16), causal, identity maps, median of --runs after warm-up, CUDA
// events; FLOPs 4*N*N*H*d/2 forward, 2.5x that backward. Lines starting with OURS are read by run_softmax.sh.
#include "../../templates/runtime/check.cuh"
#include "softmax_variants.cuh"
#include "bench_timing.cuh"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

using lasp::bf16;
using lasp::PieceMap;
using lasp::SoftmaxDims;

template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  Dev() = default;
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
static int g_fail = 0;

static float bf(bf16 x) { return __bfloat162float(x); }
static std::vector<bf16> rand_bf16(size_t n, float scale = 1.f) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<bf16> h(n);
  for (auto& x : h) x = __float2bfloat16(nd(g_rng) * scale);
  return h;
}
static std::vector<float> rand_f32(size_t n) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> h(n);
  for (auto& x : h) x = nd(g_rng);
  return h;
}
static std::vector<float> to_f(const std::vector<bf16>& h) {
  std::vector<float> f(h.size());
  for (size_t i = 0; i < h.size(); ++i) f[i] = bf(h[i]);
  return f;
}

static int host_pos(const PieceMap& m, int r) {
  if (m.count == 0) return r;
  for (int i = 0; i < m.count; ++i)
    if (r >= m.local_offset[i] && r < m.local_offset[i] + m.length[i]) return m.global_start[i] + r - m.local_offset[i];
  return -1;
}
static PieceMap pieces(std::vector<std::pair<int, int>> p) {  // (global_start, length) in local order
  PieceMap m{(int)p.size(), {0, 0}, {0, 0}, {0, 0}};
  int off = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    m.local_offset[i] = off;
    m.global_start[i] = p[i].first;
    m.length[i] = p[i].second;
    off += p[i].second;
  }
  return m;
}
// The map of local rows [a, b) of m, renumbered from 0.
static PieceMap sub_map(const PieceMap& m, int rows, int a, int b) {
  std::vector<std::pair<int, int>> p;
  if (m.count == 0) return pieces({{a, b - a}});
  for (int i = 0; i < m.count; ++i) {
    int lo = std::max(a, m.local_offset[i]), hi = std::min(b, m.local_offset[i] + m.length[i]);
    if (hi > lo) p.push_back({m.global_start[i] + lo - m.local_offset[i], hi - lo});
  }
  (void)rows;
  return pieces(p);
}

// ---------------------------------------------------------------------------------------------------------
// float64 reference
// ---------------------------------------------------------------------------------------------------------
struct Ref {
  std::vector<double> o, lse, dq, dk, dv;
};
template <typename F>
static void parallel_for(int n, F f) {
  int nt = std::max(1, std::min<int>(n, (int)std::thread::hardware_concurrency()));
  std::vector<std::thread> th;
  for (int t = 0; t < nt; ++t)
    th.emplace_back([&, t] {
      for (int i = t; i < n; i += nt) f(i);
    });
  for (auto& x : th) x.join();
}
static void ref_forward(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                        const SoftmaxDims& d, const PieceMap& qm, const PieceMap& km, bool causal, Ref& r) {
  const int B = d.batch, NQ = d.q_rows, NK = d.k_rows, H = d.heads, HK = d.kv_heads, D = d.head_dim, G = H / HK;
  const double sc = 1.0 / std::sqrt((double)D);
  r.o.assign((size_t)B * NQ * H * D, 0.0);
  r.lse.assign((size_t)B * NQ * H, -INFINITY);
  parallel_for(B * H, [&](int bh) {
    int b = bh / H, h = bh % H, hk = h / G;
    std::vector<double> s(NK);
    for (int i = 0; i < NQ; ++i) {
      const float* qi = &q[(((size_t)b * NQ + i) * H + h) * D];
      int qp = host_pos(qm, i);
      double mx = -INFINITY;
      for (int j = 0; j < NK; ++j) {
        if (causal && host_pos(km, j) > qp) {
          s[j] = -INFINITY;
          continue;
        }
        const float* kj = &k[(((size_t)b * NK + j) * HK + hk) * D];
        double a = 0;
        for (int e = 0; e < D; ++e) a += (double)qi[e] * kj[e];
        s[j] = a * sc;
        mx = std::max(mx, s[j]);
      }
      if (mx == -INFINITY) continue;
      double l = 0;
      double* oi = &r.o[(((size_t)b * NQ + i) * H + h) * D];
      for (int j = 0; j < NK; ++j) {
        if (s[j] == -INFINITY) continue;
        double p = std::exp(s[j] - mx);
        l += p;
        const float* vj = &v[(((size_t)b * NK + j) * HK + hk) * D];
        for (int e = 0; e < D; ++e) oi[e] += p * vj[e];
      }
      for (int e = 0; e < D; ++e) oi[e] /= l;
      r.lse[((size_t)b * NQ + i) * H + h] = mx + std::log(l);
    }
  });
}
// Backward given o (bf16 values) and lse (fp32) as the kernels take them.
static void ref_backward(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                         const std::vector<float>& o, const std::vector<float>& lse, const std::vector<float>& dout,
                         const SoftmaxDims& d, const PieceMap& qm, const PieceMap& km, bool causal, Ref& r) {
  const int B = d.batch, NQ = d.q_rows, NK = d.k_rows, H = d.heads, HK = d.kv_heads, D = d.head_dim, G = H / HK;
  const double sc = 1.0 / std::sqrt((double)D);
  r.dq.assign((size_t)B * NQ * H * D, 0.0);
  r.dk.assign((size_t)B * NK * HK * D, 0.0);
  r.dv.assign((size_t)B * NK * HK * D, 0.0);
  parallel_for(B * HK, [&](int bhk) {
    int b = bhk / HK, hk = bhk % HK;
    for (int h = hk * G; h < hk * G + G; ++h)
      for (int i = 0; i < NQ; ++i) {
        size_t qi = ((size_t)b * NQ + i) * H + h;
        double L = lse[qi];
        if (L == -INFINITY) continue;
        int qp = host_pos(qm, i);
        double delta = 0;
        for (int e = 0; e < D; ++e) delta += (double)dout[qi * D + e] * o[qi * D + e];
        for (int j = 0; j < NK; ++j) {
          if (causal && host_pos(km, j) > qp) continue;
          size_t kj = ((size_t)b * NK + j) * HK + hk;
          double s = 0, dp = 0;
          for (int e = 0; e < D; ++e) {
            s += (double)q[qi * D + e] * k[kj * D + e];
            dp += (double)dout[qi * D + e] * v[kj * D + e];
          }
          double p = std::exp(s * sc - L), ds = p * (dp - delta);
          for (int e = 0; e < D; ++e) {
            r.dq[qi * D + e] += sc * ds * k[kj * D + e];
            r.dk[kj * D + e] += sc * ds * q[qi * D + e];
            r.dv[kj * D + e] += p * dout[qi * D + e];
          }
        }
      }
  });
}

static double rel_err(const std::vector<double>& got, const std::vector<double>& ref, bool* nan = nullptr) {
  double num = 0, den = 0;
  bool bad = false;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) bad = true;
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  if (nan) *nan = bad;
  if (bad) return INFINITY;
  if (den == 0) return num == 0 ? 0 : INFINITY;  // reference all zero: got must be exactly zero
  return std::sqrt(num / den);
}
template <typename T>
static std::vector<double> to_d(const std::vector<T>& h) {
  std::vector<double> r(h.size());
  for (size_t i = 0; i < h.size(); ++i) {
    if constexpr (std::is_same<T, bf16>::value) r[i] = bf(h[i]);
    else r[i] = h[i];
  }
  return r;
}
static void report(const std::string& name, double err, double tol = 1e-2) {
  bool ok = err < tol;
  if (!ok) ++g_fail;
  std::printf("  %-58s %.3e  %s\n", name.c_str(), err, ok ? "ok" : "FAIL");
}
// lse: -inf exactly where the reference is -inf, else max abs difference.
static double lse_err(const std::vector<float>& got, const std::vector<double>& ref) {
  double m = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (ref[i] == -INFINITY) {
      if (got[i] != -INFINITY) return INFINITY;
    } else {
      if (!std::isfinite(got[i])) return INFINITY;
      m = std::max(m, std::fabs(got[i] - ref[i]));
    }
  }
  return m;
}

struct Case {
  std::string name;
  int B, NQ, NK, H, HK, D;
  bool causal;
  PieceMap qm, km;
};

static void run_case(const Case& c) {
  std::printf("case %s: batch %d, q %d, k %d, heads %d/%d, d %d, %s\n", c.name.c_str(), c.B, c.NQ, c.NK, c.H, c.HK,
              c.D, c.causal ? "causal" : "full");
  SoftmaxDims d{c.B, c.NQ, c.NK, c.H, c.HK, c.D};
  const size_t nq = (size_t)c.B * c.NQ * c.H * c.D, nk = (size_t)c.B * c.NK * c.HK * c.D, nl = (size_t)c.B * c.NQ * c.H;
  auto hq = rand_bf16(nq, 1.5f), hk = rand_bf16(nk), hv = rand_bf16(nk), hdo = rand_bf16(nq);
  Dev<bf16> q(nq), k(nk), v(nk), dout(nq), o(nq);
  q.up(hq), k.up(hk), v.up(hv), dout.up(hdo);
  auto fq = to_f(hq), fk = to_f(hk), fv = to_f(hv), fdo = to_f(hdo);
  Ref r;
  ref_forward(fq, fk, fv, d, c.qm, c.km, c.causal, r);

  Dev<float> lse(nl), opart(nq);
  // fp32 o_part
  opart.poison(), lse.poison();
  lasp::variants::block_forward(q.p, k.p, v.p, d, c.qm, c.km, c.causal, opart.p, lse.p, nullptr, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  report("forward o_part (fp32)", rel_err(to_d(opart.down()), r.o));
  report("forward lse (o_part call), max abs", lse_err(lse.down(), r.lse));
  // bf16 o_out
  o.poison(), lse.poison();
  lasp::variants::block_forward(q.p, k.p, v.p, d, c.qm, c.km, c.causal, nullptr, lse.p, o.p, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  auto ho = o.down();
  auto hl = lse.down();
  report("forward o_out (bf16)", rel_err(to_d(ho), r.o));
  report("forward lse (o_out call), max abs", lse_err(hl, r.lse));

  // Backward against the reference, o/lse from our forward (the same inputs for both).
  ref_backward(fq, fk, fv, to_f(ho), hl, fdo, d, c.qm, c.km, c.causal, r);
  auto init_q = rand_f32(nq), init_k = rand_f32(nk), init_v = rand_f32(nk);
  Dev<float> dq(nq), dk(nk), dv(nk);
  dq.up(init_q), dk.up(init_k), dv.up(init_v);
  lasp::variants::block_backward(q.p, k.p, v.p, o.p, lse.p, dout.p, d, c.qm, c.km, c.causal, dq.p, dk.p, dv.p, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  auto gq = dq.down(), gk = dk.down(), gv = dv.down();
  std::vector<double> aq(nq), ak(nk), av(nk);
  for (size_t i = 0; i < nq; ++i) aq[i] = (double)gq[i] - init_q[i];
  for (size_t i = 0; i < nk; ++i) ak[i] = (double)gk[i] - init_k[i], av[i] = (double)gv[i] - init_v[i];
  report("block backward dq (+= onto random fp32)", rel_err(aq, r.dq));
  report("block backward dk (+= onto random fp32)", rel_err(ak, r.dk));
  report("block backward dv (+= onto random fp32)", rel_err(av, r.dv));

  // Two calls on two halves of the keys == one call on all keys (and the reference).
  if (c.NK >= 2) {
    const int kh = c.NK / 2 + 7 < c.NK ? c.NK / 2 + 7 : c.NK / 2;
    SoftmaxDims d1 = d, d2 = d;
    d1.k_rows = kh, d2.k_rows = c.NK - kh;
    PieceMap km1 = sub_map(c.km, c.NK, 0, kh), km2 = sub_map(c.km, c.NK, kh, c.NK);
    const size_t row = (size_t)c.HK * c.D;
    std::vector<bf16> k1((size_t)c.B * kh * row), v1(k1.size()), k2((size_t)c.B * (c.NK - kh) * row), v2(k2.size());
    for (int b = 0; b < c.B; ++b) {
      std::copy(hk.begin() + (size_t)b * c.NK * row, hk.begin() + ((size_t)b * c.NK + kh) * row, k1.begin() + (size_t)b * kh * row);
      std::copy(hv.begin() + (size_t)b * c.NK * row, hv.begin() + ((size_t)b * c.NK + kh) * row, v1.begin() + (size_t)b * kh * row);
      std::copy(hk.begin() + ((size_t)b * c.NK + kh) * row, hk.begin() + (size_t)(b + 1) * c.NK * row,
                k2.begin() + (size_t)b * (c.NK - kh) * row);
      std::copy(hv.begin() + ((size_t)b * c.NK + kh) * row, hv.begin() + (size_t)(b + 1) * c.NK * row,
                v2.begin() + (size_t)b * (c.NK - kh) * row);
    }
    Dev<bf16> K1(k1.size()), V1(v1.size()), K2(k2.size()), V2(v2.size());
    K1.up(k1), V1.up(v1), K2.up(k2), V2.up(v2);
    Dev<float> dq2(nq), dk1(k1.size()), dv1(k1.size()), dk2(k2.size()), dv2(k2.size());
    CUDA_CHECK(cudaMemset(dq2.p, 0, nq * 4));
    CUDA_CHECK(cudaMemset(dk1.p, 0, k1.size() * 4));
    CUDA_CHECK(cudaMemset(dv1.p, 0, k1.size() * 4));
    CUDA_CHECK(cudaMemset(dk2.p, 0, k2.size() * 4));
    CUDA_CHECK(cudaMemset(dv2.p, 0, k2.size() * 4));
    lasp::variants::block_backward(q.p, K1.p, V1.p, o.p, lse.p, dout.p, d1, c.qm, km1, c.causal, dq2.p, dk1.p, dv1.p, 0);
    lasp::variants::block_backward(q.p, K2.p, V2.p, o.p, lse.p, dout.p, d2, c.qm, km2, c.causal, dq2.p, dk2.p, dv2.p, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    auto s1k = dk1.down(), s1v = dv1.down(), s2k = dk2.down(), s2v = dv2.down();
    std::vector<double> sk(nk), sv(nk);
    for (int b = 0; b < c.B; ++b)
      for (size_t e = 0; e < (size_t)c.NK * row; ++e) {
        size_t j = e / row;
        size_t dst = (size_t)b * c.NK * row + e;
        if ((int)j < kh) sk[dst] = s1k[(size_t)b * kh * row + e], sv[dst] = s1v[(size_t)b * kh * row + e];
        else sk[dst] = s2k[(size_t)b * (c.NK - kh) * row + e - (size_t)kh * row],
             sv[dst] = s2v[(size_t)b * (c.NK - kh) * row + e - (size_t)kh * row];
      }
    report("two half-key calls: dq vs one call", rel_err(to_d(dq2.down()), aq), 1e-4);
    report("two half-key calls: dk vs one call", rel_err(sk, ak), 1e-4);
    report("two half-key calls: dv vs one call", rel_err(sv, av), 1e-4);
    report("two half-key calls: dq vs reference", rel_err(to_d(dq2.down()), r.dq));
  }

  if (c.NQ == c.NK && c.qm.count == 0 && c.km.count == 0) {
    Dev<bf16> bq(nq), bk(nk), bv(nk);
    bq.poison(), bk.poison(), bv.poison();
    lasp::variants::full_backward(q.p, k.p, v.p, o.p, lse.p, dout.p, d, c.causal, bq.p, bk.p, bv.p, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    report("full backward dq (bf16)", rel_err(to_d(bq.down()), r.dq));
    report("full backward dk (bf16)", rel_err(to_d(bk.down()), r.dk));
    report("full backward dv (bf16)", rel_err(to_d(bv.down()), r.dv));
  }
}

// Large shape: sampled rows against float64 (forward o/lse, dq rows, dk/dv keys).
static void sampled_check(int N) {
  const int B = 1, H = 16, D = 128;
  std::printf("case sampled %d tokens: batch 1, heads 16/16, d 128, causal (32 sampled rows / keys, 2 heads)\n", N);
  SoftmaxDims d{B, N, N, H, H, D};
  const size_t n = (size_t)N * H * D;
  auto hq = rand_bf16(n, 1.5f), hk = rand_bf16(n), hv = rand_bf16(n), hdo = rand_bf16(n);
  Dev<bf16> q(n), k(n), v(n), dout(n), o(n), dq(n), dk(n), dv(n);
  Dev<float> lse((size_t)N * H);
  q.up(hq), k.up(hk), v.up(hv), dout.up(hdo);
  o.poison(), lse.poison(), dq.poison(), dk.poison(), dv.poison();
  PieceMap id{0, {0, 0}, {0, 0}, {0, 0}};
  lasp::variants::block_forward(q.p, k.p, v.p, d, id, id, true, nullptr, lse.p, o.p, 0);
  lasp::variants::full_backward(q.p, k.p, v.p, o.p, lse.p, dout.p, d, true, dq.p, dk.p, dv.p, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  auto ho = o.down(), gq = dq.down(), gk = dk.down(), gv = dv.down();
  auto hl = lse.down();
  auto F = [](bf16 x) { return (double)bf(x); };
  const double sc = 1.0 / std::sqrt((double)D);
  std::vector<double> go, ro, rl, gl, gdq, rdq, gdk, rdk, gdv, rdv;
  std::vector<int> rows;
  for (int t = 0; t < 32; ++t) rows.push_back(t == 0 ? 0 : t == 1 ? N - 1 : (int)(g_rng() % N));
  // delta for all rows of the two heads (needed by dk/dv)
  const int heads[2] = {0, H - 1};
  for (int h : heads) {
    std::vector<double> delta(N);
    for (int i = 0; i < N; ++i) {
      double s = 0;
      for (int e = 0; e < D; ++e) s += F(hdo[((size_t)i * H + h) * D + e]) * F(ho[((size_t)i * H + h) * D + e]);
      delta[i] = s;
    }
    auto score = [&](int i, int j) {
      double s = 0;
      for (int e = 0; e < D; ++e) s += F(hq[((size_t)i * H + h) * D + e]) * F(hk[((size_t)j * H + h) * D + e]);
      return s * sc;
    };
    auto dpf = [&](int i, int j) {
      double s = 0;
      for (int e = 0; e < D; ++e) s += F(hdo[((size_t)i * H + h) * D + e]) * F(hv[((size_t)j * H + h) * D + e]);
      return s;
    };
    for (int i : rows) {  // forward row i and dq row i
      std::vector<double> s(i + 1);
      double mx = -INFINITY;
      for (int j = 0; j <= i; ++j) mx = std::max(mx, s[j] = score(i, j));
      double l = 0;
      std::vector<double> oi(D, 0.0), dqi(D, 0.0);
      for (int j = 0; j <= i; ++j) {
        double p = std::exp(s[j] - mx);
        l += p;
        for (int e = 0; e < D; ++e) oi[e] += p * F(hv[((size_t)j * H + h) * D + e]);
      }
      double L = mx + std::log(l);
      rl.push_back(L), gl.push_back(hl[(size_t)i * H + h]);
      for (int e = 0; e < D; ++e) ro.push_back(oi[e] / l), go.push_back(F(ho[((size_t)i * H + h) * D + e]));
      const double Lk = hl[(size_t)i * H + h];
      for (int j = 0; j <= i; ++j) {
        double p = std::exp(s[j] - Lk), ds = p * (dpf(i, j) - delta[i]);
        for (int e = 0; e < D; ++e) dqi[e] += sc * ds * F(hk[((size_t)j * H + h) * D + e]);
      }
      for (int e = 0; e < D; ++e) rdq.push_back(dqi[e]), gdq.push_back(F(gq[((size_t)i * H + h) * D + e]));
    }
    for (int j : rows) {  // dk, dv of key j: queries i >= j
      std::vector<double> dkj(D, 0.0), dvj(D, 0.0);
      for (int i = j; i < N; ++i) {
        double p = std::exp(score(i, j) - (double)hl[(size_t)i * H + h]);
        double ds = p * (dpf(i, j) - delta[i]);
        for (int e = 0; e < D; ++e) {
          dkj[e] += sc * ds * F(hq[((size_t)i * H + h) * D + e]);
          dvj[e] += p * F(hdo[((size_t)i * H + h) * D + e]);
        }
      }
      for (int e = 0; e < D; ++e) {
        rdk.push_back(dkj[e]), gdk.push_back(F(gk[((size_t)j * H + h) * D + e]));
        rdv.push_back(dvj[e]), gdv.push_back(F(gv[((size_t)j * H + h) * D + e]));
      }
    }
  }
  report("sampled forward o (bf16)", rel_err(go, ro));
  double lm = 0;
  for (size_t i = 0; i < rl.size(); ++i) lm = std::max(lm, std::fabs(gl[i] - rl[i]));
  report("sampled forward lse, max abs", lm);
  report("sampled full backward dq", rel_err(gdq, rdq));
  report("sampled full backward dk", rel_err(gdk, rdk));
  report("sampled full backward dv", rel_err(gdv, rdv));
  // every element written, none NaN
  size_t bad = 0;
  for (auto* vec : {&ho, &gq, &gk, &gv})
    for (auto x : *vec) bad += !std::isfinite(bf(x));
  for (auto x : hl) bad += !std::isfinite(x);
  report("all outputs finite (no poison left), count", (double)bad, 0.5);
}


// Forward-only error of the current d=128 forward implementation on a few cases (the wgmma probe).
static double probe_fwd(const Case& c) {
  SoftmaxDims d{c.B, c.NQ, c.NK, c.H, c.HK, c.D};
  const size_t nq = (size_t)c.B * c.NQ * c.H * c.D, nk = (size_t)c.B * c.NK * c.HK * c.D, nl = (size_t)c.B * c.NQ * c.H;
  auto hq = rand_bf16(nq, 1.5f), hk = rand_bf16(nk), hv = rand_bf16(nk);
  Dev<bf16> q(nq), k(nk), v(nk), o(nq);
  Dev<float> lse(nl), op(nq);
  q.up(hq), k.up(hk), v.up(hv);
  Ref r;
  ref_forward(to_f(hq), to_f(hk), to_f(hv), d, c.qm, c.km, c.causal, r);
  o.poison(), lse.poison(), op.poison();
  lasp::variants::block_forward(q.p, k.p, v.p, d, c.qm, c.km, c.causal, nullptr, lse.p, o.p, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  double e = std::max(rel_err(to_d(o.down()), r.o), lse_err(lse.down(), r.lse));
  lasp::variants::block_forward(q.p, k.p, v.p, d, c.qm, c.km, c.causal, op.p, lse.p, nullptr, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  return std::max(e, rel_err(to_d(op.down()), r.o));
}
static double probe_mode(int mode) {
  PieceMap id{0, {0, 0}, {0, 0}, {0, 0}};
  std::vector<Case> cs = {
      {"p1", 2, 200, 200, 4, 2, 128, true, id, id},
      {"p2", 1, 300, 300, 2, 2, 128, false, id, id},
      {"p3", 1, 310, 260, 8, 2, 128, true, pieces({{100, 200}, {700, 110}}), pieces({{0, 150}, {650, 110}})},
      {"p4", 1, 700, 700, 2, 1, 128, true, id, id},
  };
  lasp::variants::fwd_mode() = mode;
  double e = 0;
  for (auto& c : cs) e = std::max(e, probe_fwd(c));
  return e;
}
// Backward probe (child process): the whole run_case on two cases with forward mode 3 and backward mode `mode`.
static void run_case(const Case& c);
static double probe_bwd_mode(int mode) {
  PieceMap id{0, {0, 0}, {0, 0}, {0, 0}};
  lasp::variants::fwd_mode() = 3;
  lasp::variants::bwd_mode() = mode;
  run_case({"bp1", 2, 300, 300, 4, 2, 128, true, id, id});
  run_case({"bp2", 1, 310, 260, 8, 2, 128, true, pieces({{100, 200}, {700, 110}}), pieces({{0, 150}, {650, 110}})});
  return g_fail ? INFINITY : 0.0;
}
static bool run_probe_child(const char* self, const char* flag, int mode) {
  std::string cmd = std::string("timeout 30 ") + self + " " + flag + " " + std::to_string(mode) + " --pingpong " +
                    std::to_string(lasp::variants::pingpong()) + " --dq-vec4 " + std::to_string(lasp::variants::dq_vec4());
  FILE* f = popen(cmd.c_str(), "r");
  double e = INFINITY;
  char line[512];
  while (f && fgets(line, sizeof line, f)) {
    double x;
    if (std::sscanf(line, "PROBE %lf", &x) == 1) e = x;
  }
  int rc = f ? pclose(f) : -1;
  if (rc != 0) e = INFINITY;
  std::printf("probe %s %d: max error %.3e %s (child rc %d)\n", flag, mode, e, e < 1e-2 ? "ok" : "wrong", rc);
  std::fflush(stdout);
  return e < 1e-2;
}

// Each mode is probed in a child process (popen of this binary) with a time limit: a kernel that hangs or
// faults shows as "wrong" instead of ending the run.
static std::vector<int> g_probe_ok, g_bwd_probe_ok;
static int probe_wgmma(const char* self) {
  int chosen = 0;
  for (int mode : {4, 5, 3, 1}) {  // 4/5 warp-specialized, 3 = intra-warpgroup overlap, 1 = plain wgmma
    if (run_probe_child(self, "--probe-mode", mode)) {
      g_probe_ok.push_back(mode);
      if (chosen == 0) chosen = mode;
    }
  }
  for (int mode : {2, 1})
    if (run_probe_child(self, "--probe-bwd", mode)) g_bwd_probe_ok.push_back(mode);
  if (std::find(g_probe_ok.begin(), g_probe_ok.end(), lasp::variants::shipped_fwd_mode()) != g_probe_ok.end())
    chosen = lasp::variants::shipped_fwd_mode();  // the product's default when it is right
  lasp::variants::fwd_mode() = chosen;
  std::printf("WGMMA forward mode used: %d (0 = mma.sync)\n", chosen);
  std::fflush(stdout);
  return chosen;
}
static bool probe_ok(int mode) { return std::find(g_probe_ok.begin(), g_probe_ok.end(), mode) != g_probe_ok.end(); }
static bool bwd_probe_ok(int mode) {
  return std::find(g_bwd_probe_ok.begin(), g_bwd_probe_ok.end(), mode) != g_bwd_probe_ok.end();
}
static void checks() {
  PieceMap id{0, {0, 0}, {0, 0}, {0, 0}};
  std::vector<Case> cs = {
      {"gqa-d128-causal-200", 2, 200, 200, 4, 2, 128, true, id, id},
      {"gqa-d64-causal-200", 2, 200, 200, 4, 2, 64, true, id, id},
      {"mha16-d128-full-200", 1, 200, 200, 16, 16, 128, false, id, id},
      {"mha16-d64-causal-333", 1, 333, 333, 16, 16, 64, true, id, id},
      {"mha-d128-causal-256", 1, 256, 256, 2, 2, 128, true, id, id},
      {"zigzag q[0,256)+[768,1024) k[256,512)+[512,768) causal", 1, 512, 512, 4, 2, 128, true,
       pieces({{0, 256}, {768, 256}}), pieces({{256, 256}, {512, 256}})},
      {"straddle q[100,300)+[700,810) k[0,150)+[650,760) d64", 2, 310, 260, 4, 1, 64, true,
       pieces({{100, 200}, {700, 110}}), pieces({{0, 150}, {650, 110}})},
      {"straddle q[100,300)+[700,810) k[0,150)+[650,760) d128", 1, 310, 260, 8, 2, 128, true,
       pieces({{100, 200}, {700, 110}}), pieces({{0, 150}, {650, 110}})},
      {"gqa-d128-full-1000x1100 (ring of K/V stages wraps, non-causal)", 1, 1000, 1100, 8, 2, 128, false, id, id},
      {"zigzag 4 ranks rank 1 d128 GQA q[256,512)+[1536,1792) k 0..2048 causal", 1, 512, 2048, 4, 1, 128, true,
       pieces({{256, 256}, {1536, 256}}), id},
      {"no keys (k_rows 0) d128", 1, 100, 0, 4, 2, 128, true, id, id},
      {"all-future keys q[0,100) k[500,600) causal", 1, 100, 100, 4, 2, 128, true, pieces({{0, 100}}),
       pieces({{500, 100}})},
      {"two-piece full (non-causal) d128", 1, 300, 190, 4, 4, 128, false, pieces({{0, 150}, {850, 150}}),
       pieces({{150, 100}, {600, 90}})},
      {"q later than k (causal, all visible) d64", 1, 130, 70, 4, 4, 64, true, pieces({{1000, 130}}),
       pieces({{10, 70}})},
  };
  for (auto& c : cs) run_case(c);
  sampled_check(16384);
}

// ---------------------------------------------------------------------------------------------------------
// Timings
// ---------------------------------------------------------------------------------------------------------

static void bench(int N, int runs) {
  const int B = 1, H = 16, D = 128;
  SoftmaxDims d{B, N, N, H, H, D};
  const size_t n = (size_t)B * N * H * D;
  Dev<bf16> q(n), k(n), v(n), dout(n), o(n), dq(n), dk(n), dv(n);
  Dev<float> lse((size_t)B * N * H), fq(n), fk(n), fv(n);
  q.up(rand_bf16(n)), k.up(rand_bf16(n)), v.up(rand_bf16(n)), dout.up(rand_bf16(n));
  PieceMap id{0, {0, 0}, {0, 0}, {0, 0}};
  const double fwd_flop = 4.0 * N * (double)N * H * D / 2, bwd_flop = 2.5 * fwd_flop;
  const int mode = lasp::variants::fwd_mode();
  lasp::variants::fwd_mode() = 0;
  float tm = time_ms([&] { lasp::variants::block_forward(q.p, k.p, v.p, d, id, id, true, nullptr, lse.p, o.p, 0); }, runs);
  float t1 = NAN;
  if (mode != 0 && mode != 1) {  // the plain wgmma forward too, for the comparison
    lasp::variants::fwd_mode() = 1;
    t1 = time_ms([&] { lasp::variants::block_forward(q.p, k.p, v.p, d, id, id, true, nullptr, lse.p, o.p, 0); }, runs);
  }
  float tmode[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
  for (int m : {3, 4, 5})
    if (m != mode && (g_probe_ok.empty() || probe_ok(m))) {
      lasp::variants::fwd_mode() = m;
      tmode[m] = time_ms([&] { lasp::variants::block_forward(q.p, k.p, v.p, d, id, id, true, nullptr, lse.p, o.p, 0); }, runs);
    }
  float tpp = NAN;  // the warp-specialized forward (mode 4) with the ping-pong setting flipped
  const int pp = lasp::variants::pingpong();
  if (g_probe_ok.empty() || probe_ok(4)) {
    lasp::variants::fwd_mode() = 4;
    lasp::variants::pingpong() = !pp;
    tpp = time_ms([&] { lasp::variants::block_forward(q.p, k.p, v.p, d, id, id, true, nullptr, lse.p, o.p, 0); }, runs);
    lasp::variants::pingpong() = pp;
  }
  lasp::variants::fwd_mode() = mode;
  float tf = time_ms([&] { lasp::variants::block_forward(q.p, k.p, v.p, d, id, id, true, nullptr, lse.p, o.p, 0); }, runs);
  float tfp = time_ms([&] { lasp::variants::block_forward(q.p, k.p, v.p, d, id, id, true, fq.p, lse.p, nullptr, 0); }, runs);
  lasp::variants::block_forward(q.p, k.p, v.p, d, id, id, true, nullptr, lse.p, o.p, 0);
  float tb = time_ms([&] { lasp::variants::full_backward(q.p, k.p, v.p, o.p, lse.p, dout.p, d, true, dq.p, dk.p, dv.p, 0); }, runs);
  CUDA_CHECK(cudaMemset(fq.p, 0, n * 4));
  CUDA_CHECK(cudaMemset(fk.p, 0, n * 4));
  CUDA_CHECK(cudaMemset(fv.p, 0, n * 4));
  // The other dQ atomic width, on the one kernel that has atomics (mode 1; mode 2 adds dQ with TMA reduce-adds).
  const int vec4 = lasp::variants::dq_vec4();
  const int bmode = lasp::variants::bwd_mode();
  lasp::variants::dq_vec4() = !vec4;
  lasp::variants::bwd_mode() = 1;
  float tb2 = time_ms([&] { lasp::variants::full_backward(q.p, k.p, v.p, o.p, lse.p, dout.p, d, true, dq.p, dk.p, dv.p, 0); }, runs);
  lasp::variants::dq_vec4() = vec4;
  lasp::variants::bwd_mode() = 0;
  float tbm = time_ms([&] { lasp::variants::full_backward(q.p, k.p, v.p, o.p, lse.p, dout.p, d, true, dq.p, dk.p, dv.p, 0); }, runs);
  float tbmode[3] = {NAN, NAN, NAN};
  for (int m : {1, 2})
    if (m != bmode && (g_bwd_probe_ok.empty() || bwd_probe_ok(m))) {
      lasp::variants::bwd_mode() = m;
      tbmode[m] = time_ms([&] { lasp::variants::full_backward(q.p, k.p, v.p, o.p, lse.p, dout.p, d, true, dq.p, dk.p, dv.p, 0); }, runs);
    }
  lasp::variants::bwd_mode() = bmode;
  float tbb = time_ms([&] {
    lasp::variants::block_backward(q.p, k.p, v.p, o.p, lse.p, dout.p, d, id, id, true, fq.p, fk.p, fv.p, 0);
  }, runs);
  auto tfl = [](double flop, float ms) { return flop / (ms * 1e-3) / 1e12; };
  std::printf("OURS fwd %d %.3f %.1f\n", N, tf, tfl(fwd_flop, tf));
  std::printf("OURS fwd_f32 %d %.3f %.1f\n", N, tfp, tfl(fwd_flop, tfp));
  std::printf("OURS fwd_mma %d %.3f %.1f\n", N, tm, tfl(fwd_flop, tm));
  if (mode != 0 && mode != 1) std::printf("OURS fwd_wgmma_plain %d %.3f %.1f\n", N, t1, tfl(fwd_flop, t1));
  for (int m : {3, 4, 5})
    if (!std::isnan(tmode[m])) std::printf("OURS fwd_m%d %d %.3f %.1f\n", m, N, tmode[m], tfl(fwd_flop, tmode[m]));
  if (!std::isnan(tpp))
    std::printf("OURS fwd_m4_%s %d %.3f %.1f\n", pp ? "nopingpong" : "pingpong", N, tpp, tfl(fwd_flop, tpp));
  std::printf("OURS fwd_mode %d %d 0\n", N, mode);
  std::printf("OURS bwd_full %d %.3f %.1f\n", N, tb, tfl(bwd_flop, tb));
  std::printf("OURS bwd_block %d %.3f %.1f\n", N, tbb, tfl(bwd_flop, tbb));
  std::printf("OURS bwd_mma %d %.3f %.1f\n", N, tbm, tfl(bwd_flop, tbm));
  std::printf("OURS bwd_m1_dq%s %d %.3f %.1f\n", vec4 ? "8B" : "16B", N, tb2, tfl(bwd_flop, tb2));
  std::printf("OURS bwd_mode %d %d 0\n", N, bmode);
  for (int m : {1, 2})
    if (!std::isnan(tbmode[m])) std::printf("OURS bwd_m%d %d %.3f %.1f\n", m, N, tbmode[m], tfl(bwd_flop, tbmode[m]));
  std::printf("OURS fwdbwd %d %.3f %.1f\n", N, tf + tb, tfl(fwd_flop + bwd_flop, tf + tb));
  std::fflush(stdout);
}

int main(int argc, char** argv) {
  uint64_t seed = std::random_device{}();
  bool do_checks = true, do_bench = true;
  int runs = 10, bwd_mode = -1;
  bool all_impls = false;
  std::vector<int> tokens;
  std::vector<std::pair<int, int>> suite = {{4, 2}, {5, 1}, {3, 1}};  // (forward mode, backward mode)
  int probe_fwd_only = -1, probe_bwd_only = -1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seed" && i + 1 < argc) seed = std::stoull(argv[++i]);
    else if (a == "--checks-only") do_bench = false;
    else if (a == "--bench-only") do_checks = false;
    else if (a == "--runs" && i + 1 < argc) runs = std::stoi(argv[++i]);
    else if (a == "--tokens" && i + 1 < argc) tokens.push_back(std::stoi(argv[++i]));
    else if (a == "--bwd-impl" && i + 1 < argc) bwd_mode = std::stoi(argv[++i]);
    else if (a == "--all-impls") all_impls = true;
    else if (a == "--pingpong" && i + 1 < argc) lasp::variants::pingpong() = std::stoi(argv[++i]);
    else if (a == "--dq-vec4" && i + 1 < argc) lasp::variants::dq_vec4() = std::stoi(argv[++i]);
    else if (a == "--probe-mode" && i + 1 < argc) probe_fwd_only = std::stoi(argv[++i]);
    else if (a == "--probe-bwd" && i + 1 < argc) probe_bwd_only = std::stoi(argv[++i]);
    else if (a == "--suite" && i + 1 < argc) {
      suite.clear();
      std::string l = argv[++i];
      for (size_t p = 0; p < l.size();) {
        size_t q = l.find(',', p);
        if (q == std::string::npos) q = l.size();
        std::string item = l.substr(p, q - p);
        size_t c = item.find(':');
        suite.push_back({std::stoi(item.substr(0, c)), c == std::string::npos ? 1 : std::stoi(item.substr(c + 1))});
        p = q + 1;
      }
    } else {
      std::fprintf(stderr,
                   "usage: %s [--seed N] [--checks-only | --bench-only] [--runs N] [--tokens N ...] [--bwd-impl 0|1|2] "
                   "[--all-impls] [--suite 4:2,5:1,3:1] [--pingpong 0|1] [--dq-vec4 0|1]\n",
                   argv[0]);
      return 2;
    }
  }
  if (tokens.empty()) tokens = {16384, 65536};
  g_rng.seed(seed);
  if (probe_fwd_only >= 0) {  // children of probe_wgmma
    std::printf("PROBE %.6e\n", probe_mode(probe_fwd_only));
    return 0;
  }
  if (probe_bwd_only >= 0) {
    std::printf("PROBE %.6e\n", probe_bwd_mode(probe_bwd_only));
    return 0;
  }
  if (do_checks) probe_wgmma(argv[0]);
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s, %d SMs, seed %llu\n", prop.name, prop.multiProcessorCount, (unsigned long long)seed);
  const int header_bwd = lasp::variants::bwd_mode();
  if (bwd_mode < 0) bwd_mode = !do_checks || bwd_probe_ok(header_bwd) ? header_bwd : bwd_probe_ok(1) ? 1 : 0;
  int mode = lasp::variants::fwd_mode();  // set by the probe when checks run
  if (do_checks) {
    if (all_impls) {  // the whole suite on the mma.sync kernels first
      lasp::variants::fwd_mode() = 0;
      lasp::variants::bwd_mode() = 0;
      std::printf("== checks with the mma.sync kernels\n");
      checks();
    }
    bool chosen_checked = false;
    for (auto [fm, bm] : suite) {
      if (!probe_ok(fm) || !bwd_probe_ok(bm)) {
        std::printf("== forward mode %d / backward mode %d failed a probe: suite not run (counted as a failure)\n", fm, bm);
        ++g_fail;
        continue;
      }
      lasp::variants::fwd_mode() = fm;
      lasp::variants::bwd_mode() = bm;
      std::printf("== checks with forward mode %d, backward mode %d (d = 128; d = 64 always mma.sync)\n", fm, bm);
      checks();
      chosen_checked |= fm == mode && bm == bwd_mode;
    }
    if (!chosen_checked) {
      lasp::variants::fwd_mode() = mode;
      lasp::variants::bwd_mode() = bwd_mode;
      std::printf("== checks with forward mode %d, backward mode %d (d = 128; d = 64 always mma.sync)\n", mode, bwd_mode);
      checks();
    }
    lasp::variants::fwd_mode() = mode;
    std::printf("CHECKS %s (%d failed)\n", g_fail ? "FAILED" : "passed", g_fail);
    std::fflush(stdout);
  }
  lasp::variants::bwd_mode() = bwd_mode;
  if (do_bench)
    for (int N : tokens) bench(N, runs);
  return g_fail ? 1 : 0;
}
