// Checks of the softmax support kernels against float64 CPU computations in this file:
//   - oracle_softmax_forward (o, lse) and oracle_softmax_backward (dq, dk, dv) of softmax_oracle.cuh, causal
//     and not, GQA (4 query heads on 2 kv heads) and not, head dims 64 and 128, n 96 and 256, batch 2;
//   - softmax_merge: random partials with large lse offsets, a slot list that skips slots (those slots hold
//     NaN, so reading them fails), -inf partials whose o is NaN (must be skipped), a row where every listed
//     partial is -inf (o = 0, lse = -inf exactly), d 64, 80, 128; and an end-to-end merge of CPU partials
//     over three key blocks against the full attention;
//   - rope_apply: a two-piece map ([0,64) + [192,256) of 256), the identity map, positions near 700000 and
//     1M with theta 10000 and 500000, d 64 and 128; forward vs float64, inverse(forward(x)) vs x;
//   - cast_to_bf16: bit-exact against the host rounding, aligned (vector path) and misaligned pointers,
//     odd lengths, infinities, NaN and overflow.
// Inputs are random and never zero (the seed is printed; --seed N repeats it); outputs are poisoned with NaN
// first. Errors are max|got - ref| / max|ref|. One line per check, exit 1 on any failure.
//
//   nvcc -O2 -arch=sm_90a -std=c++17 -o /tmp/softmax_support_test bench/gpu/softmax_support_test.cu
//   /tmp/softmax_support_test [--seed N]
#include "../../templates/runtime/softmax_oracle.cuh"
#include "../../templates/runtime/softmax_support.cuh"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

using lasp::bf16;

static std::mt19937_64 g_rng;
static int g_failures = 0;
static const double kInf = std::numeric_limits<double>::infinity();

static float bf16_round(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

// Uniform magnitude in [0.05, 1] * scale, random sign, rounded to bf16: never zero.
static std::vector<float> random_bf16(size_t n, float scale = 1.f) {
  std::uniform_real_distribution<float> mag(0.05f, 1.f);
  std::bernoulli_distribution sign(0.5);
  std::vector<float> v(n);
  for (auto& x : v) x = bf16_round((sign(g_rng) ? -1.f : 1.f) * mag(g_rng) * scale);
  return v;
}

static std::vector<float> random_uniform(size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) {
    do x = u(g_rng);
    while (x == 0.f);
  }
  return v;
}

template <class T>
struct DevBuf {
  T* p = nullptr;
  size_t n = 0;
  explicit DevBuf(size_t count, size_t extra = 0) : n(count) {
    CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p), (count + extra) * sizeof(T)));
    CUDA_CHECK(cudaMemset(p, 0xFF, (count + extra) * sizeof(T)));  // NaN for float and bf16
  }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
};

static void upload_bf16(bf16* dst, const std::vector<float>& h) {
  std::vector<bf16> t(h.size());
  for (size_t i = 0; i < h.size(); ++i) t[i] = __float2bfloat16_rn(h[i]);
  CUDA_CHECK(cudaMemcpy(dst, t.data(), t.size() * sizeof(bf16), cudaMemcpyHostToDevice));
}
static void upload_f32(float* dst, const std::vector<float>& h) {
  CUDA_CHECK(cudaMemcpy(dst, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice));
}
static std::vector<float> download_f32(const float* src, size_t n) {
  std::vector<float> h(n);
  CUDA_CHECK(cudaMemcpy(h.data(), src, n * sizeof(float), cudaMemcpyDeviceToHost));
  return h;
}
static std::vector<float> download_bf16(const bf16* src, size_t n) {
  std::vector<bf16> t(n);
  CUDA_CHECK(cudaMemcpy(t.data(), src, n * sizeof(bf16), cudaMemcpyDeviceToHost));
  std::vector<float> h(n);
  for (size_t i = 0; i < n; ++i) h[i] = __bfloat162float(t[i]);
  return h;
}

// max|got - ref| / max|ref| over the entries; a non-finite got (or ref) gives inf. ref entries of -inf must
// match exactly (-inf in got) and are left out of the two maxima.
static double rel_err(const std::vector<float>& got, const std::vector<double>& ref) {
  if (got.size() != ref.size()) return kInf;
  double md = 0, mr = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (ref[i] == -kInf) {
      if (!(got[i] == -std::numeric_limits<float>::infinity())) return kInf;
      continue;
    }
    if (!std::isfinite(got[i]) || !std::isfinite(ref[i])) return kInf;
    md = std::max(md, std::fabs((double)got[i] - ref[i]));
    mr = std::max(mr, std::fabs(ref[i]));
  }
  if (mr == 0) return md == 0 ? 0 : kInf;
  return md / mr;
}

static void report(const std::string& name, double err, double tol) {
  bool ok = err <= tol;  // NaN fails
  if (!ok) ++g_failures;
  std::printf("%-78s maxrel %.3e  tol %.0e  %s\n", name.c_str(), err, tol, ok ? "PASS" : "FAIL");
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------------------------
// Softmax attention in float64 (the definitions of src/reference/oracle.ts and softmax-blocks.ts).

struct Shape {
  int B, N, H, Hkv, D;
  bool causal;
};

static size_t qi(const Shape& s, int b, int i, int h) { return (((size_t)b * s.N + i) * s.H + h) * s.D; }
static size_t ki(const Shape& s, int b, int j, int g) { return (((size_t)b * s.N + j) * s.Hkv + g) * s.D; }

// o [B][N][H][D], lse [B][N][H] over the keys j in [k0, k1) (all keys by default); a row with no visible key
// gets o = 0, lse = -inf (attendBlock's partial).
static void cpu_forward(const Shape& s, const std::vector<float>& q, const std::vector<float>& k,
                        const std::vector<float>& v, std::vector<double>& o, std::vector<double>& lse, int k0 = 0,
                        int k1 = -1) {
  if (k1 < 0) k1 = s.N;
  const double sc = 1.0 / std::sqrt((double)s.D);
  o.assign((size_t)s.B * s.N * s.H * s.D, 0.0);
  lse.assign((size_t)s.B * s.N * s.H, 0.0);
  std::vector<double> sj(s.N);
  for (int b = 0; b < s.B; ++b)
    for (int i = 0; i < s.N; ++i)
      for (int h = 0; h < s.H; ++h) {
        const int g = h / (s.H / s.Hkv);
        double m = -kInf;
        for (int j = k0; j < k1; ++j) {
          if (s.causal && j > i) {
            sj[j] = -kInf;
            continue;
          }
          double d = 0;
          for (int e = 0; e < s.D; ++e) d += (double)q[qi(s, b, i, h) + e] * k[ki(s, b, j, g) + e];
          sj[j] = sc * d;
          m = std::max(m, sj[j]);
        }
        size_t row = ((size_t)b * s.N + i) * s.H + h;
        if (m == -kInf) {
          lse[row] = -kInf;
          continue;
        }
        double sum = 0;
        for (int j = k0; j < k1; ++j) sum += std::exp(sj[j] - m);
        double l = m + std::log(sum);
        lse[row] = l;
        for (int j = k0; j < k1; ++j) {
          if (sj[j] == -kInf) continue;
          double p = std::exp(sj[j] - l);
          for (int e = 0; e < s.D; ++e) o[qi(s, b, i, h) + e] += p * v[ki(s, b, j, g) + e];
        }
      }
}

// softmaxAttentionBackward: D_i from P and dP, dS = P (dP - D).
static void cpu_backward(const Shape& s, const std::vector<float>& q, const std::vector<float>& k,
                         const std::vector<float>& v, const std::vector<float>& dout, std::vector<double>& dq,
                         std::vector<double>& dk, std::vector<double>& dv) {
  std::vector<double> o, lse;
  cpu_forward(s, q, k, v, o, lse);
  const double sc = 1.0 / std::sqrt((double)s.D);
  dq.assign(q.size(), 0.0);
  dk.assign(k.size(), 0.0);
  dv.assign(v.size(), 0.0);
  std::vector<double> p(s.N), dp(s.N);
  for (int b = 0; b < s.B; ++b)
    for (int i = 0; i < s.N; ++i)
      for (int h = 0; h < s.H; ++h) {
        const int g = h / (s.H / s.Hkv);
        const double l = lse[((size_t)b * s.N + i) * s.H + h];
        if (l == -kInf) continue;
        double Dsum = 0;
        for (int j = 0; j < s.N; ++j) {
          bool vis = !s.causal || j <= i;
          double d1 = 0, d2 = 0;
          if (vis)
            for (int e = 0; e < s.D; ++e) {
              d1 += (double)q[qi(s, b, i, h) + e] * k[ki(s, b, j, g) + e];
              d2 += (double)dout[qi(s, b, i, h) + e] * v[ki(s, b, j, g) + e];
            }
          p[j] = vis ? std::exp(sc * d1 - l) : 0.0;
          dp[j] = vis ? d2 : 0.0;
          Dsum += p[j] * dp[j];
        }
        for (int j = 0; j < s.N; ++j) {
          if (p[j] == 0) continue;
          double ds = sc * p[j] * (dp[j] - Dsum);
          for (int e = 0; e < s.D; ++e) {
            dq[qi(s, b, i, h) + e] += ds * k[ki(s, b, j, g) + e];
            dk[ki(s, b, j, g) + e] += ds * q[qi(s, b, i, h) + e];
            dv[ki(s, b, j, g) + e] += p[j] * dout[qi(s, b, i, h) + e];
          }
        }
      }
}

static void check_oracle(const Shape& s, cudaStream_t st) {
  const size_t nq = (size_t)s.B * s.N * s.H * s.D, nk = (size_t)s.B * s.N * s.Hkv * s.D;
  const size_t nrow = (size_t)s.B * s.N * s.H;
  auto q = random_bf16(nq, 2.f), k = random_bf16(nk, 2.f), v = random_bf16(nk), dout = random_bf16(nq);
  DevBuf<bf16> dq_in(nq), dk_in(nk), dv_in(nk), ddo(nq);
  upload_bf16(dq_in.p, q);
  upload_bf16(dk_in.p, k);
  upload_bf16(dv_in.p, v);
  upload_bf16(ddo.p, dout);
  DevBuf<float> o(nq), lse(nrow), gq(nq), gk(nk), gv(nk);
  lasp::oracle_softmax_forward(dq_in.p, dk_in.p, dv_in.p, o.p, lse.p, s.B, s.N, s.H, s.Hkv, s.D, s.causal, st);
  lasp::oracle_softmax_backward(dq_in.p, dk_in.p, dv_in.p, ddo.p, gq.p, gk.p, gv.p, s.B, s.N, s.H, s.Hkv, s.D,
                                s.causal, st);
  CUDA_CHECK(cudaStreamSynchronize(st));
  std::vector<double> ro, rl, rq, rk, rv;
  cpu_forward(s, q, k, v, ro, rl);
  cpu_backward(s, q, k, v, dout, rq, rk, rv);
  char tag[160];
  std::snprintf(tag, sizeof tag, "oracle %s B%d N%d H%d/%d d%d", s.causal ? "causal" : "bidir ", s.B, s.N, s.H,
                s.Hkv, s.D);
  const double tol = 1e-4;  // fp32 against float64
  report(std::string(tag) + " o", rel_err(download_f32(o.p, nq), ro), tol);
  report(std::string(tag) + " lse", rel_err(download_f32(lse.p, nrow), rl), tol);
  report(std::string(tag) + " dq", rel_err(download_f32(gq.p, nq), rq), tol);
  report(std::string(tag) + " dk", rel_err(download_f32(gk.p, nk), rk), tol);
  report(std::string(tag) + " dv", rel_err(download_f32(gv.p, nk), rv), tol);
}

// ---------------------------------------------------------------------------------------------------------
// softmax_merge

// mergeLse in float64 over the listed slots; o_part [slot][rows_total][d], lse_part [slot][rows_total].
static void cpu_merge(const std::vector<float>& o_part, const std::vector<float>& lse_part,
                      const std::vector<int>& list, size_t rows_total, int d, std::vector<double>& o,
                      std::vector<double>& lse) {
  o.assign(rows_total * d, 0.0);
  lse.assign(rows_total, 0.0);
  for (size_t r = 0; r < rows_total; ++r) {
    double m = -kInf;
    for (int sl : list) m = std::max(m, (double)lse_part[sl * rows_total + r]);
    if (m == -kInf) {
      lse[r] = -kInf;
      continue;
    }
    double sum = 0;
    for (int sl : list) {
      double w = std::exp((double)lse_part[sl * rows_total + r] - m);
      sum += w;
      if (w != 0)
        for (int e = 0; e < d; ++e) o[r * d + e] += w * o_part[(sl * rows_total + r) * d + e];
    }
    for (int e = 0; e < d; ++e) o[r * d + e] /= sum;
    lse[r] = m + std::log(sum);
  }
}

static lasp::SlotList make_list(const std::vector<int>& list) {
  lasp::SlotList sl{};
  sl.count = (int)list.size();
  for (size_t i = 0; i < list.size(); ++i) sl.slot[i] = list[i];
  return sl;
}

static void check_merge_random(int batch, int rows, int heads, int d, cudaStream_t st) {
  const int stored = 6;
  const std::vector<int> list = {5, 0, 2, 3};  // skips slots 1 and 4, out of order
  const size_t rt = (size_t)batch * rows * heads;
  const float nan = std::numeric_limits<float>::quiet_NaN(), ninf = -std::numeric_limits<float>::infinity();
  auto o_part = random_uniform(stored * rt * d, -2.f, 2.f);
  auto lse_part = random_uniform(stored * rt, -3.f, 40.f);
  for (size_t r = 0; r < rt; ++r) {
    for (int sl : {1, 4}) {  // never listed: poison
      lse_part[sl * rt + r] = nan;
      for (int e = 0; e < d; ++e) o_part[(sl * rt + r) * d + e] = nan;
    }
    if (r % 5 == 0) {  // an empty partial: its o must not be read
      lse_part[2 * rt + r] = ninf;
      for (int e = 0; e < d; ++e) o_part[(2 * rt + r) * d + e] = nan;
    }
    if (r % 7 == 3) lse_part[3 * rt + r] = lse_part[5 * rt + r];  // a tie for the max
  }
  // batch 0, row 3: every listed partial empty
  for (int h = 0; h < heads; ++h) {
    size_t r = (size_t)3 * heads + h;
    for (int sl : list) {
      lse_part[sl * rt + r] = ninf;
      for (int e = 0; e < d; ++e) o_part[(sl * rt + r) * d + e] = nan;
    }
  }
  DevBuf<float> dop(o_part.size()), dlp(lse_part.size()), lse(rt);
  DevBuf<bf16> o(rt * d);
  upload_f32(dop.p, o_part);
  upload_f32(dlp.p, lse_part);
  lasp::softmax_merge(dop.p, dlp.p, make_list(list), o.p, lse.p, batch, rows, heads, d, st);
  CUDA_CHECK(cudaStreamSynchronize(st));
  std::vector<double> ro, rl;
  cpu_merge(o_part, lse_part, list, rt, d, ro, rl);
  auto go = download_bf16(o.p, rt * d);
  auto gl = download_f32(lse.p, rt);
  char tag[160];
  std::snprintf(tag, sizeof tag, "merge random B%d rows%d H%d d%d slots {5,0,2,3} of 6", batch, rows, heads, d);
  report(std::string(tag) + " o", rel_err(go, ro), 6e-3);  // bf16 rounding: up to 2^-8 of the value
  report(std::string(tag) + " lse", rel_err(gl, rl), 1e-5);
  double bad = 0;  // the all-empty row: o exactly 0, lse exactly -inf
  for (int h = 0; h < heads; ++h) {
    size_t r = (size_t)3 * heads + h;
    if (!(gl[r] == ninf)) bad = kInf;
    for (int e = 0; e < d; ++e)
      if (!(go[r * d + e] == 0.f)) bad = kInf;
  }
  report(std::string(tag) + " all -inf row: o = 0, lse = -inf", bad, 0);
}

// Partials of causal attention over three key blocks, merged, against the full attention.
static void check_merge_blocks(cudaStream_t st) {
  Shape s{2, 128, 4, 2, 64, true};
  const size_t nq = (size_t)s.B * s.N * s.H * s.D, nk = (size_t)s.B * s.N * s.Hkv * s.D, rt = (size_t)s.B * s.N * s.H;
  auto q = random_bf16(nq, 2.f), k = random_bf16(nk, 2.f), v = random_bf16(nk);
  const int cuts[4] = {0, 40, 96, 128};
  std::vector<float> o_part(3 * nq), lse_part(3 * rt);
  for (int p = 0; p < 3; ++p) {
    std::vector<double> o, l;
    cpu_forward(s, q, k, v, o, l, cuts[p], cuts[p + 1]);
    for (size_t i = 0; i < nq; ++i) o_part[p * nq + i] = (float)o[i];
    for (size_t i = 0; i < rt; ++i) lse_part[p * rt + i] = (float)l[i];
  }
  std::vector<double> ro, rl;
  cpu_forward(s, q, k, v, ro, rl);
  DevBuf<float> dop(o_part.size()), dlp(lse_part.size()), lse(rt);
  DevBuf<bf16> o(nq);
  upload_f32(dop.p, o_part);
  upload_f32(dlp.p, lse_part);
  lasp::softmax_merge(dop.p, dlp.p, make_list({2, 0, 1}), o.p, lse.p, s.B, s.N, s.H, s.D, st);
  CUDA_CHECK(cudaStreamSynchronize(st));
  report("merge of 3 causal key blocks [0,40)+[40,96)+[96,128) vs full attention o", rel_err(download_bf16(o.p, nq), ro),
         6e-3);
  report("merge of 3 causal key blocks [0,40)+[40,96)+[96,128) vs full attention lse",
         rel_err(download_f32(lse.p, rt), rl), 1e-5);
}

// ---------------------------------------------------------------------------------------------------------
// rope_apply

static int map_row(const lasp::PieceMap& m, int local) {
  if (m.count == 0) return local;
  for (int i = 0; i < m.count; i++)
    if (local >= m.local_offset[i] && local < m.local_offset[i] + m.length[i])
      return m.global_start[i] + (local - m.local_offset[i]);
  return -1;
}

static std::vector<double> cpu_rope(const std::vector<float>& x, int batch, int rows, int heads, int d,
                                    const lasp::PieceMap& map, double theta, bool inverse) {
  std::vector<double> y(x.size());
  const int half = d / 2;
  for (int b = 0; b < batch; ++b)
    for (int r = 0; r < rows; ++r) {
      const double pos = map_row(map, r);
      for (int h = 0; h < heads; ++h)
        for (int e = 0; e < half; ++e) {
          double a = pos * std::pow(theta, -2.0 * e / d);
          double c = std::cos(a), sn = inverse ? -std::sin(a) : std::sin(a);
          size_t base = (((size_t)b * rows + r) * heads + h) * d;
          double x1 = x[base + e], x2 = x[base + e + half];
          y[base + e] = x1 * c - x2 * sn;
          y[base + e + half] = x2 * c + x1 * sn;
        }
    }
  return y;
}

static void check_rope(const char* what, int batch, int rows, int heads, int d, const lasp::PieceMap& map,
                       float theta, cudaStream_t st) {
  const size_t n = (size_t)batch * rows * heads * d;
  auto x = random_bf16(n);
  DevBuf<bf16> dx(n);
  upload_bf16(dx.p, x);
  // The program's table for an unscaled base (src/model/rope.ts); cpu_rope forms each frequency itself.
  std::vector<double> inv_freq(d / 2);
  for (int e = 0; e < d / 2; ++e) inv_freq[e] = std::pow((double)theta, -2.0 * e / d);
  lasp::rope_apply(dx.p, batch, rows, heads, d, map, inv_freq.data(), false, st);
  CUDA_CHECK(cudaStreamSynchronize(st));
  auto y = download_bf16(dx.p, n);
  char tag[160];
  std::snprintf(tag, sizeof tag, "rope %s B%d rows%d H%d d%d theta %g", what, batch, rows, heads, d, (double)theta);
  report(std::string(tag) + " forward", rel_err(y, cpu_rope(x, batch, rows, heads, d, map, theta, false)), 6e-3);
  lasp::rope_apply(dx.p, batch, rows, heads, d, map, inv_freq.data(), true, st);
  CUDA_CHECK(cudaStreamSynchronize(st));
  auto z = download_bf16(dx.p, n);
  report(std::string(tag) + " inverse", rel_err(z, cpu_rope(y, batch, rows, heads, d, map, theta, true)), 6e-3);
  std::vector<double> xd(x.begin(), x.end());
  report(std::string(tag) + " inverse(forward(x)) vs x", rel_err(z, xd), 1.2e-2);  // two bf16 roundings
}

static lasp::PieceMap make_map(int count, int l0, int g0, int n0, int l1 = 0, int g1 = 0, int n1 = 0) {
  lasp::PieceMap m{};
  m.count = count;
  m.local_offset[0] = l0;
  m.global_start[0] = g0;
  m.length[0] = n0;
  m.local_offset[1] = l1;
  m.global_start[1] = g1;
  m.length[1] = n1;
  return m;
}

// ---------------------------------------------------------------------------------------------------------
// cast_to_bf16

static void check_cast(size_t n, size_t src_off, size_t dst_off, cudaStream_t st) {
  auto h = random_uniform(n, -1000.f, 1000.f);
  for (size_t i = 0; i < n; i += 97) h[i] *= std::ldexp(1.f, (int)(i % 200) - 100);  // a wide exponent range
  if (n > 8) {
    h[1] = std::numeric_limits<float>::infinity();
    h[2] = -std::numeric_limits<float>::infinity();
    h[3] = std::numeric_limits<float>::quiet_NaN();
    h[4] = 3.4e38f;         // rounds to inf in bf16
    h[5] = 1.00390625f;     // 1 + 2^-8: a tie, rounds to even (1)
    h[6] = 1.01171875f;     // 1 + 3 * 2^-8: a tie, rounds to even (1 + 2^-6)
    h[n - 1] = -7.5e-30f;   // small
  }
  DevBuf<float> src(n, src_off);
  DevBuf<bf16> dst(n, dst_off);
  upload_f32(src.p + src_off, h);
  lasp::cast_to_bf16(src.p + src_off, dst.p + dst_off, n, st);
  CUDA_CHECK(cudaStreamSynchronize(st));
  std::vector<bf16> got(n);
  CUDA_CHECK(cudaMemcpy(got.data(), dst.p + dst_off, n * sizeof(bf16), cudaMemcpyDeviceToHost));
  size_t mismatches = 0;
  double md = 0, mr = 0;
  for (size_t i = 0; i < n; ++i) {
    bf16 ref = __float2bfloat16_rn(h[i]);
    uint16_t a, b;
    std::memcpy(&a, &got[i], 2);
    std::memcpy(&b, &ref, 2);
    float fa = __bfloat162float(got[i]), fb = __bfloat162float(ref);
    bool same = a == b || (std::isnan(fa) && std::isnan(fb));
    if (!same) ++mismatches;
    if (std::isfinite(fb)) {
      md = std::max(md, std::isfinite(fa) ? std::fabs((double)fa - fb) : kInf);
      mr = std::max(mr, std::fabs((double)fb));
    }
  }
  char tag[160];
  std::snprintf(tag, sizeof tag, "cast_to_bf16 n %zu src+%zu dst+%zu (%zu mismatching bits)", n, src_off, dst_off,
                mismatches);
  report(tag, mismatches ? std::max(md / mr, 1.0) : md / mr, 0);
}

int main(int argc, char** argv) {
  uint64_t seed = std::random_device{}();
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--seed") && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
  }
  g_rng.seed(seed);
  int dev = 0;
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  std::printf("softmax support checks on %s, seed %llu\n", prop.name, (unsigned long long)seed);
  cudaStream_t st;
  CUDA_CHECK(cudaStreamCreate(&st));

  for (int causal : {1, 0})
    for (int kv : {2, 4})
      for (int d : {64, 128})
        for (int n : {96, 256}) check_oracle(Shape{2, n, 4, kv, d, causal != 0}, st);

  check_merge_random(2, 37, 3, 64, st);
  check_merge_random(2, 37, 3, 80, st);
  check_merge_random(1, 50, 4, 128, st);
  check_merge_blocks(st);

  check_rope("pieces [0,64)->0 + [64,128)->192", 2, 128, 3, 128, make_map(2, 0, 0, 64, 64, 192, 64), 10000.f, st);
  check_rope("identity map", 2, 256, 2, 64, make_map(0, 0, 0, 0), 10000.f, st);
  check_rope("piece at 700000", 1, 64, 3, 128, make_map(1, 0, 700000, 64), 500000.f, st);
  check_rope("piece at 700000", 1, 64, 2, 128, make_map(1, 0, 700000, 64), 10000.f, st);
  check_rope("pieces [0,32)->999000 + [32,64)->5", 2, 64, 2, 64, make_map(2, 0, 999000, 32, 32, 5, 32), 500000.f,
             st);

  check_cast((1u << 20) + 3, 0, 0, st);
  check_cast(1001, 1, 0, st);
  check_cast(1001, 0, 1, st);
  check_cast(3, 0, 0, st);

  CUDA_CHECK(cudaStreamDestroy(st));
  std::printf("%s: %d failing check(s)\n", g_failures ? "FAIL" : "PASS", g_failures);
  return g_failures ? 1 : 0;
}
