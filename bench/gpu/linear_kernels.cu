// Correctness checks and timings of the linear-attention kernel library (templates/runtime/*.cuh).
//
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -o linear_kernels bench/gpu/linear_kernels.cu
//   ./linear_kernels [--seed N] [--checks-only | --bench-only] [--dump FILE] [--runs N] [--energy SECONDS]
//
// --energy S: at 16K tokens each timed set also runs back to back for S seconds on the board's energy counter
// (bench_energy.cuh), with the per-head decay and with none: joules a call, the mean watts.
//
// Checks (each on fresh random data, outputs poisoned with NaN first; the rows a call must not touch are
// compared bit for bit afterwards):
// - every API function against a CPU float64 computation that uses the recurrent form (S_i = lam S_{i-1} +
//   k_i^T v_i), a different formulation from both the kernels (chunks) and the oracle (dense masked sum);
// - the intra functions also against the GPU oracle (dense fp32), and the oracle itself against float64;
// - a simulated LASP-2 (and LASP-1) forward + backward over 4 pieces of one sequence, against the oracle
//   over the whole sequence; a 65536-token piece against float64 (all rows) and the oracle (sampled rows);
// - the element-wise file (feature maps, RMSNorm) against float64.
// The error is max|got - ref| / max|ref| over the rows concerned; bf16 outputs pass below 1e-2.
//
// Timings (batch 1, 16 heads x 128, 16K and 64K tokens, causal, per-head decay, one piece of all tokens;
// median of the timed runs after warm-up, CUDA events, a per-call breakdown and the roofline floor):
// - split: the per-rank LASP-2 forward + backward through the generator's API (linear_state, linear_intra,
//   linear_inter; linear_grad_state, linear_intra_backward, linear_dq_inter, linear_dkdv_inter);
// - fused: the same work through linear_forward_fused / linear_backward_fused;
// - intra: linear_intra + linear_intra_backward, the work fla's chunk_simple_gla does (fla_compare.py);
// - split_ws, fused_ws: split and fused through the workspace overloads (the state calls keep their segment
//   aggregates and the walks start from them; every check above also runs through those overloads).
#include "../../templates/runtime/check.cuh"
#include "../../templates/runtime/linear_attention.cuh"
#include "../../templates/runtime/linear_oracle.cuh"
#include "../../templates/runtime/elementwise.cuh"
#include "bench_energy.cuh"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

using lasp::bf16;
using lasp::LinearDims;
using lasp::Piece;

// ------------------------------------------------------------------------------------------------------
// Small utilities
// ------------------------------------------------------------------------------------------------------
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
  void poison() { CUDA_CHECK(cudaMemset(p, 0xFF, n * sizeof(T))); }  // NaN in bf16 and fp32
};

static std::mt19937_64 g_rng;

static float bf16_round(float x) { return __bfloat162float(__float2bfloat16(x)); }

// Uniform in [-1, 1], rounded to bf16 (the host copy holds exactly the device values).
static std::vector<float> random_bf16(size_t n) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = bf16_round(u(g_rng));
  return v;
}
static std::vector<float> random_f32(size_t n, float scale = 1.f) {
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = u(g_rng);
  return v;
}
static void upload(Dev<bf16>& d, const std::vector<float>& h) {
  std::vector<bf16> t(h.size());
  for (size_t i = 0; i < h.size(); ++i) t[i] = __float2bfloat16(h[i]);
  CUDA_CHECK(cudaMemcpy(d.p, t.data(), t.size() * sizeof(bf16), cudaMemcpyHostToDevice));
}
static void upload(Dev<float>& d, const std::vector<float>& h) {
  CUDA_CHECK(cudaMemcpy(d.p, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice));
}
static std::vector<float> download(const Dev<bf16>& d) {
  std::vector<bf16> t(d.n);
  CUDA_CHECK(cudaMemcpy(t.data(), d.p, d.n * sizeof(bf16), cudaMemcpyDeviceToHost));
  std::vector<float> h(d.n);
  for (size_t i = 0; i < d.n; ++i) h[i] = __bfloat162float(t[i]);
  return h;
}
static std::vector<uint16_t> download_bits(const Dev<bf16>& d) {
  std::vector<uint16_t> t(d.n);
  CUDA_CHECK(cudaMemcpy(t.data(), d.p, d.n * sizeof(bf16), cudaMemcpyDeviceToHost));
  return t;
}
static std::vector<float> download(const Dev<float>& d) {
  std::vector<float> h(d.n);
  CUDA_CHECK(cudaMemcpy(h.data(), d.p, d.n * sizeof(float), cudaMemcpyDeviceToHost));
  return h;
}

// Run f(task) for task in [0, n) on all cores.
static void parallel_for(int n, const std::function<void(int)>& f) {
  int workers = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  std::atomic<int> next{0};
  for (int w = 0; w < std::min(workers, n); ++w)
    pool.emplace_back([&] {
      for (int t; (t = next++) < n;) f(t);
    });
  for (auto& t : pool) t.join();
}

// ------------------------------------------------------------------------------------------------------
// The results table
// ------------------------------------------------------------------------------------------------------
struct Row {
  std::string name, config;
  double err_cpu, err_oracle, tol;
  bool ok;
};
static std::vector<Row> g_rows;

static void report(const std::string& name, const std::string& config, double err_cpu, double err_oracle,
                   double tol) {
  auto good = [&](double e) { return e < 0 || (e == e && e < tol); };  // e < 0: not measured
  bool ok = good(err_cpu) && good(err_oracle) && !(err_cpu < 0 && err_oracle < 0);
  g_rows.push_back({name, config, err_cpu, err_oracle, tol, ok});
  char a[32] = "-", b[32] = "-";
  if (err_cpu >= 0) std::snprintf(a, sizeof a, "%.2e", err_cpu);
  if (err_oracle >= 0) std::snprintf(b, sizeof b, "%.2e", err_oracle);
  std::printf("  %-24s %-52s cpu %-9s oracle %-9s %s\n", name.c_str(), config.c_str(), a, b, ok ? "ok" : "FAIL");
  std::fflush(stdout);
}

// max |got - ref| / max |ref| over the selected elements; NaN or inf anywhere gives inf.
struct ErrAcc {
  double md = 0, mr = 0;
  bool bad = false;
  void add(double got, double ref) {
    if (!std::isfinite(got)) bad = true;
    md = std::max(md, std::fabs(got - ref));
    mr = std::max(mr, std::fabs(ref));
  }
  double value() const { return bad ? INFINITY : (mr == 0 ? (md == 0 ? 0 : INFINITY) : md / mr); }
};

// ------------------------------------------------------------------------------------------------------
// Float64 references (recurrent form), per (b, h), over rows [off, off + len) treated as one sequence.
// out_i[p] = sum_x r_i[x] St_i[p][x] with St_i = lam St_{i-1} + s1_i[p] s2_i[x] (forward) or the same from
// the end (reverse); causal=false: St = the sum over all rows, no decay. p runs over [p0, p1) only, so the
// work splits over threads by output column.
// ------------------------------------------------------------------------------------------------------
struct Shape {
  int B, T, H, D;
  size_t idx(int b, int t, int h) const { return (((size_t)b * T + t) * H + h) * D; }
  size_t size() const { return (size_t)B * T * H * D; }
};

static void cpu_scan(const Shape& s, const std::vector<float>& s1, const std::vector<float>& s2,
                     const std::vector<float>& r, std::vector<double>& out, int b, int h, int off, int len,
                     double lam, bool reverse, bool causal, int p0, int p1) {
  const int D = s.D, W = p1 - p0;
  std::vector<double> St((size_t)W * D, 0.0);
  if (!causal) {
    for (int i = 0; i < len; ++i) {
      const float* a = &s1[s.idx(b, off + i, h)];
      const float* c = &s2[s.idx(b, off + i, h)];
      for (int p = 0; p < W; ++p)
        for (int x = 0; x < D; ++x) St[(size_t)p * D + x] += (double)a[p0 + p] * c[x];
    }
  }
  for (int step = 0; step < len; ++step) {
    const int i = reverse ? len - 1 - step : step;
    const size_t row = s.idx(b, off + i, h);
    if (causal) {
      const float* a = &s1[row];
      const float* c = &s2[row];
      for (int p = 0; p < W; ++p) {
        double ap = a[p0 + p];
        double* st = &St[(size_t)p * D];
        for (int x = 0; x < D; ++x) st[x] = lam * st[x] + ap * c[x];
      }
    }
    const float* rr = &r[row];
    for (int p = 0; p < W; ++p) {
      const double* st = &St[(size_t)p * D];
      double acc = 0;
      for (int x = 0; x < D; ++x) acc += rr[x] * st[x];
      out[row + p0 + p] = acc;
    }
  }
}

struct Lams {
  std::vector<float> h;  // per head; empty = no decay
  double at(int head) const { return h.empty() ? 1.0 : (double)h[head]; }
};

// o over the piece (as its own sequence).
static std::vector<double> cpu_forward(const Shape& s, const std::vector<float>& q, const std::vector<float>& k,
                                       const std::vector<float>& v, Piece p, const Lams& lam, bool causal) {
  std::vector<double> o(s.size(), 0.0);
  const int parts = 8, P = s.D / parts;
  parallel_for(s.B * s.H * parts, [&](int t) {
    int part = t % parts, bh = t / parts, b = bh / s.H, h = bh % s.H;
    // o_i[vd] = sum_kd q_i[kd] S^T[vd][kd], S^T += v[vd] k[kd]
    cpu_scan(s, v, k, q, o, b, h, p.offset, p.length, lam.at(h), false, causal, part * P, part * P + P);
  });
  return o;
}

struct Grads {
  std::vector<double> dq, dk, dv;
};
static Grads cpu_backward(const Shape& s, const std::vector<float>& q, const std::vector<float>& k,
                          const std::vector<float>& v, const std::vector<float>& dout, Piece p, const Lams& lam,
                          bool causal) {
  Grads g{std::vector<double>(s.size(), 0.0), std::vector<double>(s.size(), 0.0),
          std::vector<double>(s.size(), 0.0)};
  const int parts = 8, P = s.D / parts;
  parallel_for(3 * s.B * s.H * parts, [&](int t) {
    int part = t % parts, rest = t / parts, which = rest % 3, bh = rest / 3, b = bh / s.H, h = bh % s.H;
    int p0 = part * P, p1 = p0 + P;
    double l = lam.at(h);
    if (which == 0)  // dq_i[kd] = sum_vd do_i[vd] S[kd][vd], S += k[kd] v[vd]
      cpu_scan(s, k, v, dout, g.dq, b, h, p.offset, p.length, l, false, causal, p0, p1);
    else if (which == 1)  // dk_j[kd] = sum_vd v_j[vd] R[kd][vd], R += q[kd] do[vd] (from the end)
      cpu_scan(s, q, dout, v, g.dk, b, h, p.offset, p.length, l, true, causal, p0, p1);
    else  // dv_j[vd] = sum_kd k_j[kd] R^T[vd][kd], R^T += do[vd] q[kd]
      cpu_scan(s, dout, q, k, g.dv, b, h, p.offset, p.length, l, true, causal, p0, p1);
  });
  return g;
}

// state[b][h][x][y] = sum_{j in piece} w_j x_j^T y_j, w_j = lam^wexp(j).
static std::vector<double> cpu_state(const Shape& s, const std::vector<float>& x, const std::vector<float>& y,
                                     Piece p, const Lams& lam, const std::function<double(int, int)>& wexp) {
  const int D = s.D;
  std::vector<double> out((size_t)s.B * s.H * D * D, 0.0);
  parallel_for(s.B * s.H, [&](int bh) {
    int b = bh / s.H, h = bh % s.H;
    double l = lam.at(h);
    double* o = &out[(size_t)bh * D * D];
    for (int j = 0; j < p.length; ++j) {
      double w = std::pow(l, wexp(j, p.length));
      const float* a = &x[s.idx(b, p.offset + j, h)];
      const float* c = &y[s.idx(b, p.offset + j, h)];
      for (int r = 0; r < D; ++r) {
        double ar = w * a[r];
        for (int cc = 0; cc < D; ++cc) o[(size_t)r * D + cc] += ar * c[cc];
      }
    }
  });
  return out;
}

// out_i = base_i + w_i x_i op(S) over the piece; w_i = lam^wexp(i).
static std::vector<double> cpu_apply(const Shape& s, const std::vector<float>& x, const std::vector<float>& S,
                                     bool trans, const std::vector<float>& base, Piece p, const Lams& lam,
                                     const std::function<double(int, int)>& wexp) {
  const int D = s.D;
  std::vector<double> out(base.begin(), base.end());
  parallel_for(s.B * s.H, [&](int bh) {
    int b = bh / s.H, h = bh % s.H;
    const float* St = &S[(size_t)bh * D * D];
    for (int i = 0; i < p.length; ++i) {
      double w = std::pow(lam.at(h), wexp(i, p.length));
      size_t row = s.idx(b, p.offset + i, h);
      for (int n = 0; n < D; ++n) {
        double acc = 0;
        for (int kk = 0; kk < D; ++kk) acc += (double)x[row + kk] * (trans ? St[(size_t)n * D + kk] : St[(size_t)kk * D + n]);
        out[row + n] += w * acc;
      }
    }
  });
  return out;
}

// Error of a bf16 device tensor against a float64 reference over the rows of the piece; the other rows must
// still hold `outside` (bit for bit).
static double err_piece(const Dev<bf16>& got, const std::vector<double>& ref, const Shape& s, Piece p,
                        const std::vector<uint16_t>& outside, bool* untouched) {
  std::vector<float> g = download(got);
  std::vector<uint16_t> bits = download_bits(got);
  ErrAcc e;
  bool same = true;
  for (int b = 0; b < s.B; ++b)
    for (int t = 0; t < s.T; ++t)
      for (int h = 0; h < s.H; ++h) {
        size_t r = s.idx(b, t, h);
        bool in = t >= p.offset && t < p.offset + p.length;
        for (int d = 0; d < s.D; ++d) {
          if (in)
            e.add(g[r + d], ref[r + d]);
          else if (bits[r + d] != outside[r + d])
            same = false;
        }
      }
  if (untouched) *untouched = same;
  return e.value();
}
static double err_state(const Dev<float>& got, const std::vector<double>& ref) {
  std::vector<float> g = download(got);
  ErrAcc e;
  for (size_t i = 0; i < ref.size(); ++i) e.add(g[i], ref[i]);
  return e.value();
}

// The piece's rows copied into a contiguous [B][len][H][D] tensor (for the oracle, which sees whole rows).
template <typename T>
static void copy_piece(T* dst, const T* src, const Shape& s, Piece p) {
  size_t row = (size_t)s.H * s.D * sizeof(T);
  CUDA_CHECK(cudaMemcpy2D(dst, p.length * row, src + (size_t)p.offset * s.H * s.D, (size_t)s.T * row,
                          p.length * row, s.B, cudaMemcpyDeviceToDevice));
}

static std::string cfg(const Shape& s, Piece p, bool decay, bool causal) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "B%d T%d H%d D%d piece[%d,+%d) %s %s", s.B, s.T, s.H, s.D, p.offset, p.length,
                causal ? "causal" : "bidir", decay ? "decay" : "nodecay");
  return buf;
}

static Lams make_lams(int H, bool decay) {
  Lams l;
  if (!decay) return l;
  // Per-head decays from strong to weak (RetNet style), plus one extreme head.
  for (int h = 0; h < H; ++h) l.h.push_back((float)(1.0 - std::exp2(-4.0 - 3.0 * h)));
  if (H >= 3) l.h[H - 1] = 0.05f;
  return l;
}

// ------------------------------------------------------------------------------------------------------
// Checks
// ------------------------------------------------------------------------------------------------------
struct Problem {
  Shape s;
  std::vector<float> q, k, v, dout;
  Dev<bf16> dq_, dk_, dv_, ddo;
  Dev<float> dlam;
  Lams lam;
  Problem(Shape sh, bool decay)
      : s(sh), q(random_bf16(sh.size())), k(random_bf16(sh.size())), v(random_bf16(sh.size())),
        dout(random_bf16(sh.size())), dq_(sh.size()), dk_(sh.size()), dv_(sh.size()), ddo(sh.size()),
        dlam(sh.H), lam(make_lams(sh.H, decay)) {
    upload(dq_, q);
    upload(dk_, k);
    upload(dv_, v);
    upload(ddo, dout);
    if (decay) upload(dlam, lam.h);
  }
  const float* lam_ptr() const { return lam.h.empty() ? nullptr : dlam.p; }
  LinearDims dims() const { return {s.B, s.T, s.H, s.D}; }
};

static double rel_gpu(const Dev<bf16>& got_piece, const Dev<float>& ref, size_t n) {
  return lasp::max_rel_err(got_piece.p, ref.p, n, 0);
}

// The oracle over the piece (as its own sequence) vs our bf16 outputs for those rows.
static void oracle_piece_errors(Problem& P, Piece p, bool causal, const Dev<bf16>* outs[4], double err[4],
                                bool backward) {
  const Shape& s = P.s;
  Shape ps{s.B, p.length, s.H, s.D};
  size_t n = ps.size();
  Dev<bf16> q(n), k(n), v(n), d(n), got(n);
  Dev<float> ref(3 * n);
  copy_piece(q.p, P.dq_.p, s, p);
  copy_piece(k.p, P.dk_.p, s, p);
  copy_piece(v.p, P.dv_.p, s, p);
  copy_piece(d.p, P.ddo.p, s, p);
  LinearDims pd{ps.B, ps.T, ps.H, ps.D};
  if (!backward) {
    lasp::oracle_linear_forward(q.p, k.p, v.p, ref.p, pd, P.lam_ptr(), causal, 0);
    copy_piece(got.p, outs[0]->p, s, p);
    err[0] = rel_gpu(got, ref, n);
  } else {
    lasp::oracle_linear_backward(q.p, k.p, v.p, d.p, ref.p, ref.p + n, ref.p + 2 * n, pd, P.lam_ptr(), causal, 0);
    for (int g = 0; g < 3; ++g) {
      copy_piece(got.p, outs[g + 1]->p, s, p);
      err[g + 1] = lasp::max_rel_err(got.p, ref.p + g * n, n, 0);
    }
  }
}

// Oracle vs float64 (validates the oracle itself).
static void check_oracle(Shape s, bool decay, bool causal) {
  Problem P(s, decay);
  Piece whole{0, s.T};
  size_t n = s.size();
  Dev<float> o(n), g(3 * n);
  o.poison();
  g.poison();
  lasp::oracle_linear_forward(P.dq_.p, P.dk_.p, P.dv_.p, o.p, P.dims(), P.lam_ptr(), causal, 0);
  lasp::oracle_linear_backward(P.dq_.p, P.dk_.p, P.dv_.p, P.ddo.p, g.p, g.p + n, g.p + 2 * n, P.dims(),
                               P.lam_ptr(), causal, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  auto ro = cpu_forward(s, P.q, P.k, P.v, whole, P.lam, causal);
  auto rg = cpu_backward(s, P.q, P.k, P.v, P.dout, whole, P.lam, causal);
  std::vector<float> ho = download(o), hg = download(g);
  ErrAcc e[4];
  for (size_t i = 0; i < n; ++i) {
    e[0].add(ho[i], ro[i]);
    e[1].add(hg[i], rg.dq[i]);
    e[2].add(hg[n + i], rg.dk[i]);
    e[3].add(hg[2 * n + i], rg.dv[i]);
  }
  std::string c = cfg(s, whole, decay, causal);
  report("oracle fwd (fp32)", c, e[0].value(), -1, 1e-4);
  double eb = std::max({e[1].value(), e[2].value(), e[3].value()});
  report("oracle bwd (fp32)", c, eb, -1, 1e-4);
}

static void check_piece_functions(Shape s, Piece p, bool decay) {
  Problem P(s, decay);
  const LinearDims dims = P.dims();
  const float* lam = P.lam_ptr();
  const size_t n = s.size(), nst = (size_t)s.B * s.H * s.D * s.D;
  std::string cz = cfg(s, p, decay, true);
  // Workspaces for the shared segment states, and the plan they follow (state segments / walk segments).
  const size_t ws_bytes = lasp::linear_state_workspace_bytes(dims, p.length);
  Dev<float> kv_ws(ws_bytes / sizeof(float)), qdo_ws(ws_bytes / sizeof(float));
  std::string ws_note;
  {
    auto sp = lasp::detail::plan_shared(s.B * s.H, p.length);
    ws_note = " ws " + std::to_string(sp.fine.nseg) + "->" + std::to_string(sp.walk.nseg);
  }

  // linear_state and linear_grad_state
  {
    Dev<float> M(nst), dM(nst);
    M.poison();
    dM.poison();
    lasp::linear_state(P.dk_.p, P.dv_.p, p, M.p, dims, lam, 0);
    lasp::linear_grad_state(P.dq_.p, P.ddo.p, p, dM.p, dims, lam, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    auto rM = cpu_state(s, P.k, P.v, p, P.lam, [](int j, int C) { return (double)(C - 1 - j); });
    auto rdM = cpu_state(s, P.q, P.dout, p, P.lam, [](int j, int) { return (double)(j + 1); });
    report("linear_state", cz, err_state(M, rM), -1, 1e-2);
    report("linear_grad_state", cz, err_state(dM, rdM), -1, 1e-2);
    // The overloads that keep their segment aggregates in a workspace (poisoned first): same totals.
    M.poison();
    dM.poison();
    kv_ws.poison();
    qdo_ws.poison();
    lasp::linear_state(P.dk_.p, P.dv_.p, p, M.p, dims, lam, 0, kv_ws.p);
    lasp::linear_grad_state(P.dq_.p, P.ddo.p, p, dM.p, dims, lam, 0, qdo_ws.p);
    CUDA_CHECK(cudaDeviceSynchronize());
    report("linear_state (ws)", cz + ws_note, err_state(M, rM), -1, 1e-2);
    report("linear_grad_state (ws)", cz + ws_note, err_state(dM, rdM), -1, 1e-2);
  }
  for (int causal = 1; causal >= 0; --causal) {
    std::string c = cfg(s, p, decay, causal);
    Dev<bf16> o(n), dq(n), dk(n), dv(n);
    o.poison();
    dq.poison();
    dk.poison();
    dv.poison();
    std::vector<uint16_t> poison_bits(n, 0xFFFF);
    lasp::linear_intra(P.dq_.p, P.dk_.p, P.dv_.p, p, o.p, dims, lam, causal, 0);
    lasp::linear_intra_backward(P.dq_.p, P.dk_.p, P.dv_.p, P.ddo.p, p, dq.p, dk.p, dv.p, dims, lam, causal, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    auto ro = cpu_forward(s, P.q, P.k, P.v, p, P.lam, causal);
    auto rg = cpu_backward(s, P.q, P.k, P.v, P.dout, p, P.lam, causal);
    const char* names[2][4] = {
        {"linear_intra o", "linear_intra_bwd dq", "linear_intra_bwd dk", "linear_intra_bwd dv"},
        {"linear_intra o (ws)", "linear_intra_bwd dq (ws)", "linear_intra_bwd dk (ws)", "linear_intra_bwd dv (ws)"}};
    for (int with_ws = 0; with_ws < 2; ++with_ws) {
      if (with_ws) {  // the same calls fed with the workspaces written above (same k, v, q, do, piece, lam)
        o.poison();
        dq.poison();
        dk.poison();
        dv.poison();
        lasp::linear_intra(P.dq_.p, P.dk_.p, P.dv_.p, p, o.p, dims, lam, causal, 0, kv_ws.p);
        lasp::linear_intra_backward(P.dq_.p, P.dk_.p, P.dv_.p, P.ddo.p, p, dq.p, dk.p, dv.p, dims, lam, causal, 0,
                                    kv_ws.p, qdo_ws.p);
        CUDA_CHECK(cudaDeviceSynchronize());
      }
      bool u[4];
      double ec[4] = {err_piece(o, ro, s, p, poison_bits, &u[0]), err_piece(dq, rg.dq, s, p, poison_bits, &u[1]),
                      err_piece(dk, rg.dk, s, p, poison_bits, &u[2]), err_piece(dv, rg.dv, s, p, poison_bits, &u[3])};
      const Dev<bf16>* outs[4] = {&o, &dq, &dk, &dv};
      double eo[4];
      oracle_piece_errors(P, p, causal, outs, eo, false);
      oracle_piece_errors(P, p, causal, outs, eo, true);
      std::string cc = c + (with_ws ? ws_note : "");
      for (int g = 0; g < 4; ++g)
        report(names[with_ws][g], cc + (u[g] ? "" : " WROTE OUTSIDE"), u[g] ? ec[g] : INFINITY, eo[g], 1e-2);
    }
  }
  // The inter functions: random P, G, and random prior contents of o, dq, dk, dv.
  {
    auto hP = random_f32(nst, 8.f), hG = random_f32(nst, 8.f);
    Dev<float> dP(nst), dG(nst);
    upload(dP, hP);
    upload(dG, hG);
    auto base_o = random_bf16(n), base_dk = random_bf16(n), base_dv = random_bf16(n), base_dq = random_bf16(n);
    Dev<bf16> o(n), dq(n), dk(n), dv(n);
    upload(o, base_o);
    upload(dq, base_dq);
    upload(dk, base_dk);
    upload(dv, base_dv);
    auto bits_o = download_bits(o), bits_dq = download_bits(dq), bits_dk = download_bits(dk),
         bits_dv = download_bits(dv);
    lasp::linear_inter(P.dq_.p, dP.p, p, o.p, dims, lam, 0);
    lasp::linear_dq_inter(P.ddo.p, dP.p, p, dq.p, dims, lam, 0);
    lasp::linear_dkdv_inter(P.dk_.p, P.dv_.p, dG.p, p, dk.p, dv.p, dims, lam, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    auto ip1 = [](int i, int) { return (double)(i + 1); };
    auto cm1 = [](int j, int C) { return (double)(C - 1 - j); };
    auto ro = cpu_apply(s, P.q, hP, false, base_o, p, P.lam, ip1);
    auto rq = cpu_apply(s, P.dout, hP, true, base_dq, p, P.lam, ip1);
    auto rk = cpu_apply(s, P.v, hG, true, base_dk, p, P.lam, cm1);
    auto rv = cpu_apply(s, P.k, hG, false, base_dv, p, P.lam, cm1);
    bool u[4];
    double e[4] = {err_piece(o, ro, s, p, bits_o, &u[0]), err_piece(dq, rq, s, p, bits_dq, &u[1]),
                   err_piece(dk, rk, s, p, bits_dk, &u[2]), err_piece(dv, rv, s, p, bits_dv, &u[3])};
    const char* names[4] = {"linear_inter", "linear_dq_inter", "linear_dkdv_inter dk", "linear_dkdv_inter dv"};
    for (int g = 0; g < 4; ++g) report(names[g], cz + (u[g] ? "" : " WROTE OUTSIDE"), u[g] ? e[g] : INFINITY, -1, 1e-2);

    // The fused variants: intra + inter of P (forward), intra + inter of P and G (backward), one pass.
    for (int causal = 1; causal >= 0; --causal) {
      std::string c = cfg(s, p, decay, causal) + " fused";
      std::vector<float> zero(n, 0.f);
      Lams none;
      const Lams& l = causal ? P.lam : none;  // bidirectional: no decay anywhere
      auto ez = [](int, int) { return 0.0; };
      auto io = cpu_forward(s, P.q, P.k, P.v, p, P.lam, causal);
      auto ig = cpu_backward(s, P.q, P.k, P.v, P.dout, p, P.lam, causal);
      auto xo = cpu_apply(s, P.q, hP, false, zero, p, l, causal ? std::function<double(int, int)>(ip1) : ez);
      auto xq = cpu_apply(s, P.dout, hP, true, zero, p, l, causal ? std::function<double(int, int)>(ip1) : ez);
      auto xk = cpu_apply(s, P.v, hG, true, zero, p, l, causal ? std::function<double(int, int)>(cm1) : ez);
      auto xv = cpu_apply(s, P.k, hG, false, zero, p, l, causal ? std::function<double(int, int)>(cm1) : ez);
      for (size_t i = 0; i < n; ++i) {
        io[i] += xo[i];
        ig.dq[i] += xq[i];
        ig.dk[i] += xk[i];
        ig.dv[i] += xv[i];
      }
      const char* fn[2][4] = {{"forward_fused o", "backward_fused dq", "backward_fused dk", "backward_fused dv"},
                              {"forward_fused o (ws)", "backward_fused dq (ws)", "backward_fused dk (ws)",
                               "backward_fused dv (ws)"}};
      for (int with_ws = 0; with_ws < 2; ++with_ws) {
        o.poison();
        dq.poison();
        dk.poison();
        dv.poison();
        if (with_ws) {
          lasp::linear_forward_fused(P.dq_.p, P.dk_.p, P.dv_.p, dP.p, p, o.p, dims, lam, causal, 0, kv_ws.p);
          lasp::linear_backward_fused(P.dq_.p, P.dk_.p, P.dv_.p, P.ddo.p, dP.p, dG.p, p, dq.p, dk.p, dv.p, dims, lam,
                                      causal, 0, kv_ws.p, qdo_ws.p);
        } else {
          lasp::linear_forward_fused(P.dq_.p, P.dk_.p, P.dv_.p, dP.p, p, o.p, dims, lam, causal, 0);
          lasp::linear_backward_fused(P.dq_.p, P.dk_.p, P.dv_.p, P.ddo.p, dP.p, dG.p, p, dq.p, dk.p, dv.p, dims, lam,
                                      causal, 0);
        }
        CUDA_CHECK(cudaDeviceSynchronize());
        std::vector<uint16_t> poison_bits(n, 0xFFFF);
        double f[4] = {err_piece(o, io, s, p, poison_bits, &u[0]), err_piece(dq, ig.dq, s, p, poison_bits, &u[1]),
                       err_piece(dk, ig.dk, s, p, poison_bits, &u[2]), err_piece(dv, ig.dv, s, p, poison_bits, &u[3])};
        std::string cc = c + (with_ws ? ws_note : "");
        for (int g = 0; g < 4; ++g)
          report(fn[with_ws][g], cc + (u[g] ? "" : " WROTE OUTSIDE"), u[g] ? f[g] : INFINITY, -1, 1e-2);
      }
    }
  }
}

static void check_state_ops(int D, bool decay) {
  const int B = 2, H = 3, count = 5;
  const size_t nst = (size_t)B * H * D * D;
  Lams lam = make_lams(H, decay);
  Dev<float> dlam(H);
  if (decay) upload(dlam, lam.h);
  const float* lp = decay ? dlam.p : nullptr;
  LinearDims dims{B, 1024, H, D};
  auto hs = random_f32(count * nst), ha = random_f32(nst), hb = random_f32(nst);
  std::vector<int> gaps = {0, -1, 1000000, 3, 65536};
  Dev<float> ds(count * nst), da(nst), db(nst), out(nst);
  Dev<int> dg(count);
  upload(ds, hs);
  upload(da, ha);
  upload(db, hb);
  CUDA_CHECK(cudaMemcpy(dg.p, gaps.data(), count * sizeof(int), cudaMemcpyHostToDevice));
  char c[96];
  std::snprintf(c, sizeof c, "B%d H%d D%d count %d %s", B, H, D, count, decay ? "decay" : "nodecay");
  auto head_of = [&](size_t i) { return (int)((i / ((size_t)D * D)) % H); };
  {
    out.poison();
    lasp::linear_decayed_sum(ds.p, count, dg.p, out.p, dims, lp, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<double> ref(nst, 0.0);
    for (size_t i = 0; i < nst; ++i)
      for (int u = 0; u < count; ++u)
        if (gaps[u] >= 0) ref[i] += std::pow(lam.at(head_of(i)), gaps[u]) * hs[u * nst + i];
    report("linear_decayed_sum", std::string(c) + " gaps 0,-1,1e6,3,65536", err_state(out, ref), -1, 1e-5);
  }
  for (int with_in = 0; with_in < 2; ++with_in) {
    const int C = 1000000;
    out.poison();
    lasp::linear_ring_step(with_in ? da.p : nullptr, db.p, C, out.p, dims, lp, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<double> ref(nst);
    for (size_t i = 0; i < nst; ++i) ref[i] = hb[i] + (with_in ? std::pow(lam.at(head_of(i)), C) * ha[i] : 0.0);
    report("linear_ring_step", std::string(c) + (with_in ? " C=1e6" : " in=null"), err_state(out, ref), -1, 1e-5);
    // A short step too, where the decayed term matters.
    out.poison();
    lasp::linear_ring_step(da.p, db.p, 7, out.p, dims, lp, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    for (size_t i = 0; i < nst; ++i) ref[i] = hb[i] + std::pow(lam.at(head_of(i)), 7) * ha[i];
    if (with_in) report("linear_ring_step", std::string(c) + " C=7", err_state(out, ref), -1, 1e-5);
  }
  {
    out.poison();
    lasp::state_sub(da.p, db.p, out.p, dims, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<double> ref(nst);
    for (size_t i = 0; i < nst; ++i) ref[i] = (double)ha[i] - hb[i];
    report("state_sub", c, err_state(out, ref), -1, 1e-6);
    out.poison();
    lasp::state_sum(ds.p, count, out.p, dims, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    for (size_t i = 0; i < nst; ++i) {
      ref[i] = 0;
      for (int u = 0; u < count; ++u) ref[i] += hs[u * nst + i];
    }
    report("state_sum", c, err_state(out, ref), -1, 1e-6);
  }
}

// LASP-2 (and LASP-1) simulated on one GPU: W pieces of one sequence, each treated as a rank's local chunk
// (its own piece), states exchanged through device buffers, compared with the oracle over the sequence.
// mode 0: split, 1: LASP-1 ring, 2: fused, 3: split with workspaces, 4: fused with workspaces (the state calls
// keep their segment aggregates per piece; the forward's serve the forward walk and the backward's dq walk).
// With workspaces every call of a bidirectional layer gets lam == nullptr (the workspace contract).
static void check_composition(Shape s, int W, bool decay, bool causal, int mode) {
  const bool ring = mode == 1, fused = mode == 2 || mode == 4, use_ws = mode >= 3;
  Problem P(s, decay);
  const LinearDims dims = P.dims();
  const float* lam = use_ws && !causal ? nullptr : P.lam_ptr();
  const int C = s.T / W;
  const size_t wsn = lasp::linear_state_workspace_bytes(dims, C) / sizeof(float);
  Dev<float> kv_all(W * wsn), qdo_all(W * wsn);
  kv_all.poison();
  qdo_all.poison();
  auto kv = [&](int t) { return use_ws ? kv_all.p + t * wsn : nullptr; };
  auto qdo = [&](int t) { return use_ws ? qdo_all.p + t * wsn : nullptr; };
  const size_t n = s.size(), nst = (size_t)s.B * s.H * s.D * s.D;
  Dev<bf16> o(n), dq(n), dk(n), dv(n);
  o.poison();
  dq.poison();
  dk.poison();
  dv.poison();
  Dev<float> M(W * nst), dM(W * nst), Pt(W * nst), Gt(W * nst), total(nst);
  Dev<int> gaps(W * W);
  for (int t = 0; t < W; ++t) {
    Piece p{t * C, C};
    // A bidirectional layer has no decay: its states are plain sums (lam is ignored by intra only).
    lasp::linear_state(P.dk_.p, P.dv_.p, p, M.p + t * nst, dims, causal ? lam : nullptr, 0, kv(t));
    if (!fused) lasp::linear_intra(P.dq_.p, P.dk_.p, P.dv_.p, p, o.p, dims, lam, causal, 0, kv(t));
  }
  // Prefixes (causal) or the others' sum (bidirectional).
  std::vector<int> hg(W * W), hr(W * W);
  for (int t = 0; t < W; ++t)
    for (int u = 0; u < W; ++u) {
      hg[t * W + u] = u < t ? C * (t - 1 - u) : -1;  // P_t = sum_{u<t} lam^(C(t-1-u)) M_u
      hr[t * W + u] = u > t ? C * (u - 1 - t) : -1;  // G_t = sum_{u>t} lam^(C(u-1-t)) dM_u
    }
  Dev<int> rgaps(W * W);
  CUDA_CHECK(cudaMemcpy(gaps.p, hg.data(), hg.size() * sizeof(int), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(rgaps.p, hr.data(), hr.size() * sizeof(int), cudaMemcpyHostToDevice));
  if (causal) {
    if (ring) {  // LASP-1: P_1 = M_0, P_t = lam^C P_{t-1} + M_{t-1}
      CUDA_CHECK(cudaMemset(Pt.p, 0, nst * sizeof(float)));
      for (int t = 1; t < W; ++t)
        lasp::linear_ring_step(t == 1 ? nullptr : Pt.p + (t - 1) * nst, M.p + (t - 1) * nst, C, Pt.p + t * nst,
                               dims, lam, 0);
    } else {
      for (int t = 0; t < W; ++t) lasp::linear_decayed_sum(M.p, W, gaps.p + t * W, Pt.p + t * nst, dims, lam, 0);
    }
  } else {
    lasp::state_sum(M.p, W, total.p, dims, 0);
    for (int t = 0; t < W; ++t) lasp::state_sub(total.p, M.p + t * nst, Pt.p + t * nst, dims, 0);
  }
  for (int t = 0; t < W; ++t) {
    if (fused)
      lasp::linear_forward_fused(P.dq_.p, P.dk_.p, P.dv_.p, Pt.p + t * nst, Piece{t * C, C}, o.p, dims, lam, causal,
                                 0, kv(t));
    else
      lasp::linear_inter(P.dq_.p, Pt.p + t * nst, Piece{t * C, C}, o.p, dims, causal ? lam : nullptr, 0);
  }
  // Backward.
  for (int t = 0; t < W; ++t) {
    Piece p{t * C, C};
    lasp::linear_grad_state(P.dq_.p, P.ddo.p, p, dM.p + t * nst, dims, causal ? lam : nullptr, 0, qdo(t));
    if (!fused)
      lasp::linear_intra_backward(P.dq_.p, P.dk_.p, P.dv_.p, P.ddo.p, p, dq.p, dk.p, dv.p, dims, lam, causal, 0,
                                  kv(t), qdo(t));
  }
  if (causal) {
    if (ring) {  // G_{W-1} = 0, G_t = lam^C G_{t+1} + dM_{t+1}
      CUDA_CHECK(cudaMemset(Gt.p + (W - 1) * nst, 0, nst * sizeof(float)));
      for (int t = W - 2; t >= 0; --t)
        lasp::linear_ring_step(t == W - 2 ? nullptr : Gt.p + (t + 1) * nst, dM.p + (t + 1) * nst, C,
                               Gt.p + t * nst, dims, lam, 0);
    } else {
      for (int t = 0; t < W; ++t) lasp::linear_decayed_sum(dM.p, W, rgaps.p + t * W, Gt.p + t * nst, dims, lam, 0);
    }
  } else {
    lasp::state_sum(dM.p, W, total.p, dims, 0);
    for (int t = 0; t < W; ++t) lasp::state_sub(total.p, dM.p + t * nst, Gt.p + t * nst, dims, 0);
  }
  for (int t = 0; t < W; ++t) {
    Piece p{t * C, C};
    const float* l = causal ? lam : nullptr;
    if (fused) {
      lasp::linear_backward_fused(P.dq_.p, P.dk_.p, P.dv_.p, P.ddo.p, Pt.p + t * nst, Gt.p + t * nst, p, dq.p, dk.p,
                                  dv.p, dims, lam, causal, 0, kv(t), qdo(t));
    } else {
      lasp::linear_dq_inter(P.ddo.p, Pt.p + t * nst, p, dq.p, dims, l, 0);
      lasp::linear_dkdv_inter(P.dk_.p, P.dv_.p, Gt.p + t * nst, p, dk.p, dv.p, dims, l, 0);
    }
  }
  CUDA_CHECK(cudaDeviceSynchronize());
  Dev<float> ref(3 * n);
  lasp::oracle_linear_forward(P.dq_.p, P.dk_.p, P.dv_.p, ref.p, dims, lam, causal, 0);
  double eo = lasp::max_rel_err(o.p, ref.p, n, 0);
  lasp::oracle_linear_backward(P.dq_.p, P.dk_.p, P.dv_.p, P.ddo.p, ref.p, ref.p + n, ref.p + 2 * n, dims, lam,
                               causal, 0);
  double eg[3] = {lasp::max_rel_err(dq.p, ref.p, n, 0), lasp::max_rel_err(dk.p, ref.p + n, n, 0),
                  lasp::max_rel_err(dv.p, ref.p + 2 * n, n, 0)};
  Piece whole{0, s.T};
  auto ro = cpu_forward(s, P.q, P.k, P.v, whole, P.lam, causal);
  auto rg = cpu_backward(s, P.q, P.k, P.v, P.dout, whole, P.lam, causal);
  std::vector<uint16_t> none;
  std::string c = cfg(s, whole, decay, causal) + (ring ? " LASP-1 W=" : fused ? " LASP-2 fused W=" : " LASP-2 W=") +
                  std::to_string(W) + (use_ws ? " ws" : "");
  report("composed o", c, err_piece(o, ro, s, whole, none, nullptr), eo, 1e-2);
  report("composed dq", c, err_piece(dq, rg.dq, s, whole, none, nullptr), eg[0], 1e-2);
  report("composed dk", c, err_piece(dk, rg.dk, s, whole, none, nullptr), eg[1], 1e-2);
  report("composed dv", c, err_piece(dv, rg.dv, s, whole, none, nullptr), eg[2], 1e-2);
}

// One long piece: float64 over every row, the oracle over sampled rows (it is O(N^2 d)).
static void check_long(Shape s, Piece p, bool decay) {
  Problem P(s, decay);
  const LinearDims dims = P.dims();
  const size_t n = s.size();
  Dev<bf16> o(n), dq(n), dk(n), dv(n);
  o.poison();
  dq.poison();
  dk.poison();
  dv.poison();
  lasp::linear_intra(P.dq_.p, P.dk_.p, P.dv_.p, p, o.p, dims, P.lam_ptr(), true, 0);
  lasp::linear_intra_backward(P.dq_.p, P.dk_.p, P.dv_.p, P.ddo.p, p, dq.p, dk.p, dv.p, dims, P.lam_ptr(), true, 0);
  // The same through the workspace overloads (state calls first), into a second set of outputs.
  Dev<bf16> o2(n), dq2(n), dk2(n), dv2(n);
  o2.poison();
  dq2.poison();
  dk2.poison();
  dv2.poison();
  {
    const size_t wsn = lasp::linear_state_workspace_bytes(dims, p.length) / sizeof(float);
    const size_t nst = (size_t)s.B * s.H * s.D * s.D;
    Dev<float> kv_ws(wsn), qdo_ws(wsn), M(nst), dM(nst);
    kv_ws.poison();
    qdo_ws.poison();
    lasp::linear_state(P.dk_.p, P.dv_.p, p, M.p, dims, P.lam_ptr(), 0, kv_ws.p);
    lasp::linear_intra(P.dq_.p, P.dk_.p, P.dv_.p, p, o2.p, dims, P.lam_ptr(), true, 0, kv_ws.p);
    lasp::linear_grad_state(P.dq_.p, P.ddo.p, p, dM.p, dims, P.lam_ptr(), 0, qdo_ws.p);
    lasp::linear_intra_backward(P.dq_.p, P.dk_.p, P.dv_.p, P.ddo.p, p, dq2.p, dk2.p, dv2.p, dims, P.lam_ptr(), true,
                                0, kv_ws.p, qdo_ws.p);
    CUDA_CHECK(cudaDeviceSynchronize());
  }
  auto ro = cpu_forward(s, P.q, P.k, P.v, p, P.lam, true);
  auto rg = cpu_backward(s, P.q, P.k, P.v, P.dout, p, P.lam, true);
  std::vector<uint16_t> poison_bits(n, 0xFFFF);
  bool u[4], u2[4];
  double ec[4] = {err_piece(o, ro, s, p, poison_bits, &u[0]), err_piece(dq, rg.dq, s, p, poison_bits, &u[1]),
                  err_piece(dk, rg.dk, s, p, poison_bits, &u[2]), err_piece(dv, rg.dv, s, p, poison_bits, &u[3])};
  double ec2[4] = {err_piece(o2, ro, s, p, poison_bits, &u2[0]), err_piece(dq2, rg.dq, s, p, poison_bits, &u2[1]),
                   err_piece(dk2, rg.dk, s, p, poison_bits, &u2[2]), err_piece(dv2, rg.dv, s, p, poison_bits, &u2[3])};
  // Sampled rows: the first and last 64 of the piece, 64 random ones between.
  Shape ps{s.B, p.length, s.H, s.D};
  Dev<bf16> q(ps.size()), k(ps.size()), v(ps.size()), d(ps.size());
  copy_piece(q.p, P.dq_.p, s, p);
  copy_piece(k.p, P.dk_.p, s, p);
  copy_piece(v.p, P.dv_.p, s, p);
  copy_piece(d.p, P.ddo.p, s, p);
  std::vector<int> rows;
  for (int i = 0; i < 64; ++i) rows.push_back(i), rows.push_back(p.length - 64 + i);
  std::uniform_int_distribution<int> ur(64, p.length - 65);
  for (int i = 0; i < 64; ++i) rows.push_back(ur(g_rng));
  const int nr = (int)rows.size();
  Dev<int> drows(nr);
  CUDA_CHECK(cudaMemcpy(drows.p, rows.data(), nr * sizeof(int), cudaMemcpyHostToDevice));
  const size_t per = (size_t)nr * s.B * s.H * s.D;
  Dev<float> ref(4 * per);
  LinearDims pd{ps.B, ps.T, ps.H, ps.D};
  lasp::oracle_linear_forward_rows(q.p, k.p, v.p, drows.p, nr, ref.p, pd, P.lam_ptr(), true, 0);
  lasp::oracle_linear_backward_rows(q.p, k.p, v.p, d.p, drows.p, nr, ref.p + per, ref.p + 2 * per, ref.p + 3 * per,
                                    pd, P.lam_ptr(), true, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<float> hr = download(ref);
  const Dev<bf16>* outs[8] = {&o, &dq, &dk, &dv, &o2, &dq2, &dk2, &dv2};
  double eo[8];
  for (int g = 0; g < 8; ++g) {
    std::vector<float> got = download(*outs[g]);
    ErrAcc e;
    for (int r = 0; r < nr; ++r)
      for (int b = 0; b < s.B; ++b)
        for (int h = 0; h < s.H; ++h)
          for (int dd = 0; dd < s.D; ++dd)
            e.add(got[s.idx(b, p.offset + rows[r], h) + dd], hr[(g % 4) * per + (((size_t)r * s.B + b) * s.H + h) * s.D + dd]);
    eo[g] = e.value();
  }
  std::string c = cfg(s, p, decay, true);
  auto sp = lasp::detail::plan_shared(s.B * s.H, p.length);
  std::string cw = c + " ws " + std::to_string(sp.fine.nseg) + "->" + std::to_string(sp.walk.nseg);
  const char* names[4] = {"long intra o", "long intra_bwd dq", "long intra_bwd dk", "long intra_bwd dv"};
  for (int g = 0; g < 4; ++g) report(names[g], c + (u[g] ? "" : " WROTE OUTSIDE"), u[g] ? ec[g] : INFINITY, eo[g], 1e-2);
  const char* names2[4] = {"long intra o (ws)", "long intra_bwd dq (ws)", "long intra_bwd dk (ws)",
                           "long intra_bwd dv (ws)"};
  for (int g = 0; g < 4; ++g)
    report(names2[g], cw + (u2[g] ? "" : " WROTE OUTSIDE"), u2[g] ? ec2[g] : INFINITY, eo[4 + g], 1e-2);
}

static void check_elementwise() {
  const size_t rows = 3 * 257, d = 128, n = rows * d + 5;  // odd tail on purpose
  auto hx = random_f32(n, 3.f);
  for (auto& x : hx) x = bf16_round(x);
  auto hdy = random_bf16(n);
  Dev<bf16> x(n), y(n), dy(n), dx(n);
  const char* names[4] = {"identity", "elu_plus_one", "relu", "silu"};
  for (int map = 0; map < 4; ++map) {
    upload(x, hx);
    upload(dy, hdy);
    dx.poison();
    lasp::feature_map_backward(x.p, dy.p, dx.p, n, map, 0);
    Dev<bf16> fx(n);
    upload(fx, hx);
    lasp::feature_map_forward(fx.p, n, map, 0);
    // In-place backward (dx == dy), as the generated program calls it.
    Dev<bf16> inplace(n);
    upload(inplace, hdy);
    lasp::feature_map_backward(x.p, inplace.p, inplace.p, n, map, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    auto gf = download(fx), gb = download(dx), gi = download(inplace);
    ErrAcc ef, eb, ei;
    for (size_t i = 0; i < n; ++i) {
      double xv = hx[i], f, df;
      switch (map) {
        case 1: f = xv > 0 ? xv + 1 : std::exp(xv); df = xv > 0 ? 1 : std::exp(xv); break;
        case 2: f = xv > 0 ? xv : 0; df = xv > 0 ? 1 : 0; break;
        case 3: { double sg = 1 / (1 + std::exp(-xv)); f = xv * sg; df = sg * (1 + xv * (1 - sg)); } break;
        default: f = xv; df = 1;
      }
      ef.add(gf[i], f);
      eb.add(gb[i], hdy[i] * df);
      ei.add(gi[i], hdy[i] * df);
    }
    report(std::string("feature_map fwd ") + names[map], "n=" + std::to_string(n), ef.value(), -1, 1e-2);
    report(std::string("feature_map bwd ") + names[map], "n=" + std::to_string(n) + " (and dx==dy)",
           std::max(eb.value(), ei.value()), -1, 1e-2);
  }
  for (int dd : {64, 128}) {
    const size_t nn = rows * dd;
    std::vector<float> a(hx.begin(), hx.begin() + nn), g(hdy.begin(), hdy.begin() + nn);
    Dev<bf16> xa(nn), ya(nn), ga(nn), da(nn);
    upload(xa, a);
    upload(ga, g);
    ya.poison();
    da.poison();
    const float eps = 1e-6f;
    lasp::rms_norm_forward(xa.p, ya.p, rows, dd, eps, 0);
    lasp::rms_norm_backward(xa.p, ga.p, da.p, rows, dd, eps, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    auto gy = download(ya), gd = download(da);
    ErrAcc ey, ed;
    for (size_t r = 0; r < rows; ++r) {
      double ss = 0, sd = 0;
      for (int c = 0; c < dd; ++c) ss += (double)a[r * dd + c] * a[r * dd + c], sd += (double)a[r * dd + c] * g[r * dd + c];
      double rs = 1 / std::sqrt(ss / dd + eps);
      for (int c = 0; c < dd; ++c) {
        ey.add(gy[r * dd + c], a[r * dd + c] * rs);
        ed.add(gd[r * dd + c], rs * g[r * dd + c] - rs * rs * rs * a[r * dd + c] * sd / dd);
      }
    }
    report("rms_norm fwd", "rows=" + std::to_string(rows) + " d=" + std::to_string(dd), ey.value(), -1, 1e-2);
    report("rms_norm bwd", "rows=" + std::to_string(rows) + " d=" + std::to_string(dd), ed.value(), -1, 1e-2);
  }
}

// ------------------------------------------------------------------------------------------------------
// Timing
// ------------------------------------------------------------------------------------------------------
static double g_energy_seconds = 0;          // --energy S (0: times only)
static const EnergyMeter* g_meter = nullptr;  // the board's counter, with --energy

struct Timing {
  int tokens;
  double total_ms, spread_ms;
  std::vector<double> part_ms;
};

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : (v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]));
}

// Median time of a sequence of calls (after warm-up), with a per-call breakdown from events between calls,
// and the total measured separately with events only at the ends.
static Timing time_calls(int tokens, const std::vector<std::function<void()>>& calls, cudaStream_t st, int runs) {
  const int nc = (int)calls.size();
  std::vector<cudaEvent_t> ev(nc + 1);
  for (auto& e : ev) CUDA_CHECK(cudaEventCreate(&e));
  for (int w = 0; w < 5; ++w)
    for (auto& c : calls) c();
  CUDA_CHECK(cudaStreamSynchronize(st));
  std::vector<std::vector<double>> parts(nc);
  for (int r = 0; r < runs; ++r) {
    CUDA_CHECK(cudaEventRecord(ev[0], st));
    for (int i = 0; i < nc; ++i) {
      calls[i]();
      CUDA_CHECK(cudaEventRecord(ev[i + 1], st));
    }
    CUDA_CHECK(cudaEventSynchronize(ev[nc]));
    for (int i = 0; i < nc; ++i) {
      float ms;
      CUDA_CHECK(cudaEventElapsedTime(&ms, ev[i], ev[i + 1]));
      parts[i].push_back(ms);
    }
  }
  std::vector<double> plain;
  for (int r = 0; r < runs; ++r) {
    CUDA_CHECK(cudaEventRecord(ev[0], st));
    for (auto& c : calls) c();
    CUDA_CHECK(cudaEventRecord(ev[1], st));
    CUDA_CHECK(cudaEventSynchronize(ev[1]));
    float ms;
    CUDA_CHECK(cudaEventElapsedTime(&ms, ev[0], ev[1]));
    plain.push_back(ms);
  }
  Timing t{};
  t.tokens = tokens;
  t.total_ms = median(plain);
  std::sort(plain.begin(), plain.end());
  t.spread_ms = plain[plain.size() * 9 / 10] - plain[plain.size() / 10];
  for (int i = 0; i < nc; ++i) t.part_ms.push_back(median(parts[i]));
  for (auto& e : ev) CUDA_CHECK(cudaEventDestroy(e));
  return t;
}

// The three call sets timed at each length (B1 H16 D128, causal, per-head decay), one piece = all tokens:
//   split: the LASP-2 per-rank forward + backward with the generator's API (7 calls);
//   fused: the same with the fused variants (4 calls: state, forward_fused, grad_state, backward_fused);
//   intra: linear_intra + linear_intra_backward only, which is exactly what fla's chunk_simple_gla computes.
// FLOPs (2*m*n*k per product, full 64x64 score tiles) and bytes (each call reading its inputs and writing its
// outputs once; T = one bf16 activation tensor), per head and token, d = 128:
//   split 26 d^2 + 16*64 d FLOPs, 27 T;  fused 18 d^2 + 16*64 d, 18 T;  intra 14 d^2 + 16*64 d, 11 T.
constexpr int kSets = 5;  // split, fused, intra, split_ws, fused_ws
static void time_all(int tokens, int runs, const char* const* set_names, std::vector<Timing>* out) {
  const int B = 1, H = 16, D = 128;
  Shape s{B, tokens, H, D};
  const size_t n = s.size(), nst = (size_t)B * H * D * D;
  Dev<bf16> q(n), k(n), v(n), dout(n), o(n), dq(n), dk(n), dv(n);
  upload(q, random_bf16(n));  // random data, never zeros (METHOD.md)
  upload(k, random_bf16(n));
  upload(v, random_bf16(n));
  upload(dout, random_bf16(n));
  Dev<float> M(nst), dM(nst), P(nst), G(nst), lam(H);
  upload(P, random_f32(nst));
  upload(G, random_f32(nst));
  std::vector<float> hl;
  for (int h = 0; h < H; ++h) hl.push_back((float)(1.0 - std::exp2(-5.0 - 0.5 * h)));
  upload(lam, hl);
  const float* lamp = lam.p;  // the calls' decay; nullptr (decay none) for the energy rows
  const LinearDims dims{B, tokens, H, D};
  const Piece p{0, tokens};
  cudaStream_t st;
  CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  std::vector<std::function<void()>> split = {
      [&] { lasp::linear_state(k.p, v.p, p, M.p, dims, lamp, st); },
      [&] { lasp::linear_intra(q.p, k.p, v.p, p, o.p, dims, lamp, true, st); },
      [&] { lasp::linear_inter(q.p, P.p, p, o.p, dims, lamp, st); },
      [&] { lasp::linear_grad_state(q.p, dout.p, p, dM.p, dims, lamp, st); },
      [&] { lasp::linear_intra_backward(q.p, k.p, v.p, dout.p, p, dq.p, dk.p, dv.p, dims, lamp, true, st); },
      [&] { lasp::linear_dq_inter(dout.p, P.p, p, dq.p, dims, lamp, st); },
      [&] { lasp::linear_dkdv_inter(k.p, v.p, G.p, p, dk.p, dv.p, dims, lamp, st); },
  };
  std::vector<std::function<void()>> fused = {
      [&] { lasp::linear_state(k.p, v.p, p, M.p, dims, lamp, st); },
      [&] { lasp::linear_forward_fused(q.p, k.p, v.p, P.p, p, o.p, dims, lamp, true, st); },
      [&] { lasp::linear_grad_state(q.p, dout.p, p, dM.p, dims, lamp, st); },
      [&] { lasp::linear_backward_fused(q.p, k.p, v.p, dout.p, P.p, G.p, p, dq.p, dk.p, dv.p, dims, lamp, true, st); },
  };
  std::vector<std::function<void()>> intra = {
      [&] { lasp::linear_intra(q.p, k.p, v.p, p, o.p, dims, lamp, true, st); },
      [&] { lasp::linear_intra_backward(q.p, k.p, v.p, dout.p, p, dq.p, dk.p, dv.p, dims, lamp, true, st); },
  };
  // The same two sets with the shared segment states (workspace overloads).
  const size_t wsn = lasp::linear_state_workspace_bytes(dims, p.length) / sizeof(float);
  Dev<float> kv_ws(wsn), qdo_ws(wsn);
  std::vector<std::function<void()>> split_ws = {
      [&] { lasp::linear_state(k.p, v.p, p, M.p, dims, lamp, st, kv_ws.p); },
      [&] { lasp::linear_intra(q.p, k.p, v.p, p, o.p, dims, lamp, true, st, kv_ws.p); },
      [&] { lasp::linear_inter(q.p, P.p, p, o.p, dims, lamp, st); },
      [&] { lasp::linear_grad_state(q.p, dout.p, p, dM.p, dims, lamp, st, qdo_ws.p); },
      [&] {
        lasp::linear_intra_backward(q.p, k.p, v.p, dout.p, p, dq.p, dk.p, dv.p, dims, lamp, true, st, kv_ws.p,
                                    qdo_ws.p);
      },
      [&] { lasp::linear_dq_inter(dout.p, P.p, p, dq.p, dims, lamp, st); },
      [&] { lasp::linear_dkdv_inter(k.p, v.p, G.p, p, dk.p, dv.p, dims, lamp, st); },
  };
  std::vector<std::function<void()>> fused_ws = {
      [&] { lasp::linear_state(k.p, v.p, p, M.p, dims, lamp, st, kv_ws.p); },
      [&] { lasp::linear_forward_fused(q.p, k.p, v.p, P.p, p, o.p, dims, lamp, true, st, kv_ws.p); },
      [&] { lasp::linear_grad_state(q.p, dout.p, p, dM.p, dims, lamp, st, qdo_ws.p); },
      [&] {
        lasp::linear_backward_fused(q.p, k.p, v.p, dout.p, P.p, G.p, p, dq.p, dk.p, dv.p, dims, lamp, true, st,
                                    kv_ws.p, qdo_ws.p);
      },
  };
  const std::vector<std::function<void()>>* sets[kSets] = {&split, &fused, &intra, &split_ws, &fused_ws};
  for (int i = 0; i < kSets; ++i) {
    out[i].push_back(time_calls(tokens, *sets[i], st, runs));
    const Timing& t = out[i].back();
    std::printf("tokens %6d %-6s total %.3f ms (p10-p90 spread %.3f):", tokens, set_names[i], t.total_ms,
                t.spread_ms);
    for (double ms : t.part_ms) std::printf(" %.3f", ms);
    std::printf("\n");
  }
  // --energy S: each set back to back on the board's energy counter, with the per-head decay as timed and with
  // none (Linear-Llama3-1B's layers), at the 1B step's 16K tokens: what a layer's attention core costs the
  // power-bound step in joules.
  if (g_energy_seconds > 0 && tokens == 16384)
    for (const float* decay : {(const float*)lam.p, (const float*)nullptr}) {
      lamp = decay;
      for (int i = 0; i < kSets; ++i) {
        const OpEnergy e = energy_per_call(*g_meter, [&] { for (auto& c : *sets[i]) c(); }, g_energy_seconds);
        std::printf("ENERGY %-8s tokens %d decay %-8s %.4f J a call, %.0f W, %.3f ms a call back to back\n",
                    set_names[i], tokens, decay ? "per-head" : "none", e.joules, e.watts, e.ms);
      }
    }
  CUDA_CHECK(cudaStreamDestroy(st));
}

// A small case for fla_compare.py: inputs and our intra-only outputs (one piece = the whole sequence).
static void dump_case(const char* path) {
  Shape s{1, 1024, 4, 128};
  Problem P(s, true);
  const size_t n = s.size();
  Dev<bf16> o(n), dq(n), dk(n), dv(n);
  Piece whole{0, s.T};
  lasp::linear_intra(P.dq_.p, P.dk_.p, P.dv_.p, whole, o.p, P.dims(), P.lam_ptr(), true, 0);
  lasp::linear_intra_backward(P.dq_.p, P.dk_.p, P.dv_.p, P.ddo.p, whole, dq.p, dk.p, dv.p, P.dims(), P.lam_ptr(),
                              true, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  FILE* f = std::fopen(path, "wb");
  if (!f) {
    std::perror(path);
    std::exit(3);
  }
  int hdr[4] = {s.B, s.T, s.H, s.D};
  std::fwrite(hdr, sizeof hdr, 1, f);
  std::fwrite(P.lam.h.data(), sizeof(float), s.H, f);
  for (auto* t : {&P.q, &P.k, &P.v, &P.dout}) std::fwrite(t->data(), sizeof(float), n, f);
  for (auto* t : {&o, &dq, &dk, &dv}) {
    auto h = download(*t);
    std::fwrite(h.data(), sizeof(float), n, f);
  }
  std::fclose(f);
  std::printf("wrote %s (B1 T1024 H4 D128, causal, per-head decay)\n", path);
}

int main(int argc, char** argv) {
  uint64_t seed = (uint64_t)std::chrono::high_resolution_clock::now().time_since_epoch().count();
  bool checks = true, bench = true;
  const char* dump = nullptr;
  int runs = 30;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seed" && i + 1 < argc) seed = std::stoull(argv[++i]);
    else if (a == "--checks-only") bench = false;
    else if (a == "--bench-only") checks = false;
    else if (a == "--dump" && i + 1 < argc) dump = argv[++i];
    else if (a == "--runs" && i + 1 < argc) runs = std::stoi(argv[++i]);
    else if (a == "--energy" && i + 1 < argc && std::atof(argv[i + 1]) > 0) g_energy_seconds = std::atof(argv[++i]);
    else {
      std::fprintf(stderr,
                   "usage: %s [--seed N] [--checks-only | --bench-only] [--dump FILE] [--runs N] [--energy SECONDS]\n",
                   argv[0]);
      return 2;
    }
  }
  g_rng.seed(seed);
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs, L2 %d MB; seed %llu\n", prop.name, prop.multiProcessorCount,
              prop.l2CacheSize >> 20, (unsigned long long)seed);
  if (dump) dump_case(dump);
  EnergyMeter meter;
  g_meter = &meter;
  if (g_energy_seconds > 0 && !meter.available()) {
    std::printf("no energy counter here (libnvidia-ml.so.1 or nvmlDeviceGetTotalEnergyConsumption missing): times only\n");
    g_energy_seconds = 0;
  }

  bool all_ok = true;
  if (checks) {
    auto t0 = std::chrono::steady_clock::now();
    std::printf("\n== correctness (error = max|got-ref|/max|ref|; cpu = float64 recurrent form, oracle = GPU dense fp32)\n");
    for (int D : {64, 128})
      for (int decay = 0; decay < 2; ++decay)
        for (int causal = 1; causal >= 0; --causal) check_oracle(Shape{2, 384, 2, D}, decay, causal);
    for (int D : {64, 128})
      for (int decay = 0; decay < 2; ++decay) {
        Shape s{2, 1024, 3, D};
        for (Piece p : {Piece{0, 1024}, Piece{192, 640}, Piece{960, 64}}) check_piece_functions(s, p, decay);
      }
    // A longer piece at an odd offset with many segments per head.
    check_piece_functions(Shape{2, 3072, 2, 128}, Piece{320, 2560}, true);
    // 50 heads: on 132 SMs the state call cuts 5 segments, the walk merges them 3 + 2 (uneven groups).
    check_piece_functions(Shape{1, 768, 50, 64}, Piece{64, 640}, true);
    check_piece_functions(Shape{1, 768, 50, 128}, Piece{128, 640}, false);
    for (int D : {64, 128})
      for (int decay = 0; decay < 2; ++decay) check_state_ops(D, decay);
    for (int D : {64, 128}) {
      check_composition(Shape{2, 1024, 2, D}, 4, true, true, 0);
      check_composition(Shape{2, 1024, 2, D}, 4, false, true, 0);
      check_composition(Shape{2, 1024, 2, D}, 4, true, false, 0);
      check_composition(Shape{2, 1024, 2, D}, 4, true, true, 2);
      check_composition(Shape{2, 1024, 2, D}, 4, true, true, 3);
      check_composition(Shape{2, 1024, 2, D}, 4, true, true, 4);
      check_composition(Shape{2, 1024, 2, D}, 4, true, false, 3);
    }
    check_composition(Shape{2, 1024, 2, 128}, 4, false, true, 3);
    check_composition(Shape{2, 1024, 2, 128}, 4, true, false, 4);
    // 16 (batch, head) pairs and 1024-token pieces: 16 state segments per head, merged in pairs by the walks.
    check_composition(Shape{2, 4096, 8, 64}, 4, true, true, 3);
    check_composition(Shape{2, 4096, 8, 128}, 4, true, true, 4);
    check_composition(Shape{2, 1024, 2, 128}, 4, true, false, 2);
    check_composition(Shape{2, 1024, 2, 128}, 4, true, true, 1);
    check_long(Shape{1, 65536, 2, 128}, Piece{0, 65536}, true);
    check_long(Shape{1, 65536, 2, 128}, Piece{384, 65152}, false);
    check_long(Shape{1, 65536, 2, 64}, Piece{0, 65536}, true);
    check_elementwise();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    int bad = 0;
    double worst = 0;
    for (auto& r : g_rows) {
      if (!r.ok) ++bad;
      if (r.tol >= 1e-2) worst = std::max({worst, r.err_cpu, r.err_oracle});
    }
    std::printf("\n== %zu checks, %d failed, worst bf16 error %.2e (tolerance 1e-2), %.1f s\n", g_rows.size(), bad,
                worst, secs);
    all_ok = bad == 0;
  }
  if (bench) {
    std::printf("\n== timing: B1 H16 D128, causal, per-head decay, one piece of all tokens, median of %d runs\n", runs);
    std::printf("split = state, intra, inter, grad_state, intra_backward, dq_inter, dkdv_inter (per-call ms follow)\n");
    std::printf("fused = state, forward_fused, grad_state, backward_fused;  intra = intra, intra_backward (= fla's work)\n");
    std::printf("split_ws, fused_ws = split, fused with the workspace overloads (shared segment states)\n");
    const char* names[kSets] = {"split", "fused", "intra", "split_ws", "fused_ws"};
    const double flop_d2[kSets] = {26, 18, 14, 26, 18}, tensors[kSets] = {27, 18, 11, 27, 18};
    std::vector<Timing> ts[kSets];
    for (int tokens : {16384, 65536}) {
      auto fp = lasp::detail::plan_segments(16, tokens, 1), sp = lasp::detail::plan_segments(16, tokens, 2);
      auto sh = lasp::detail::plan_shared(16, tokens);
      std::printf("tokens %d: walk segments %d x %d tokens, state segments %d x %d tokens; shared plan: %d x %d "
                  "state segments, walk %d x %d, workspace %.1f MB per (k, v) or (q, do)\n",
                  tokens, fp.nseg, fp.seg_len, sp.nseg, sp.seg_len, sh.fine.nseg, sh.fine.seg_len, sh.walk.nseg,
                  sh.walk.seg_len, lasp::linear_state_workspace_bytes(LinearDims{1, tokens, 16, 128}, tokens) / 1e6);
      time_all(tokens, runs, names, ts);
    }
    std::printf("\nOURS_TABLE set tokens ms gflop gbytes floor_flop_ms floor_bytes_ms (790 TFLOP/s, 3.0 TB/s)\n");
    for (int i = 0; i < kSets; ++i)
      for (auto& t : ts[i]) {
        const double NH = (double)t.tokens * 16, D = 128;
        const double flops = NH * (flop_d2[i] * D * D + 16.0 * 64 * D), bytes = tensors[i] * NH * D * 2;
        std::printf("OURS %s %d %.4f %.1f %.3f %.4f %.4f\n", names[i], t.tokens, t.total_ms, flops / 1e9, bytes / 1e9,
                    flops / 790e12 * 1e3, bytes / 3.0e12 * 1e3);
      }
  }
  return all_ok ? 0 : 1;
}
