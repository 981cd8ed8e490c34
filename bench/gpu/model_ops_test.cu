// Correctness checks and timings of the model ops outside attention: templates/runtime/embedding.cuh,
// norm.cuh, swiglu.cuh, classifier.cuh and elementwise.cuh's per-head RMS norm (linear attention's output norm).
//
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Itemplates/runtime -Ibench/gpu/harness
//        bench/gpu/model_ops_test.cu -lcublas -o /tmp/model_ops      (bash bench/gpu/run_model_ops.sh does this and runs it)
//   /tmp/model_ops [--seed N] [--checks-only | --bench-only] [--runs N] [--energy SECONDS]
//
// --energy S: each timed op also runs back to back for S seconds on the board's energy counter
// (bench_energy.cuh): joules a call and the mean watts, beside an idle board, a copy and the gate|up GEMM.
//
// Checks (fresh random inputs from the seed, never zeros; outputs poisoned with NaN first, so an unwritten
// element fails): every op against a float64 computation on the CPU written here from the formulas, by
// ||got - ref|| / ||ref|| (bf16 outputs below 1e-2, fp32 accumulations below 1e-3, stated per check), plus
// - embedding: the lookup bit for bit; the backward on ids with many repeats (a hot set) and untouched rows
//   bit for bit unchanged; run twice from the same state, bitwise equal gradients;
// - norms: RMSNorm and LayerNorm, with and without the residual add, dx written and accumulated, hidden sizes
//   of every launch shape (VPT 1, 2, 4; a thread count that is not a power of two); run twice, bitwise equal
//   dx, dweight and dbias;
// - SwiGLU: the fused [rows][2*ffn] layout with an in-place backward, and separate buffers;
// - grad norm: the kernels' sum of squares bit for bit equal to grad_norm_reference (their order on the host);
// - head RMS norm: head dims 64, 128, 256 (the register-held kernels) and 96 (the loop), a row count that is not a
//   multiple of the rows a warp takes, the backward in place (dx = dy);
// - grouped kv heads (a linear layer's `kv_heads`): the copy to every query head bit for bit, each group's
//   gradient sum bit for bit equal to the host's fp32 sum in head order rounded once (bf16), and fp32's;
// - classifier: several chunks with a ragged last one, vocab a multiple of 8 and not, Llama-3's vocab and a large
//   one that is not a multiple of 8, chunks whose logits run on lasp's GEMM (Hopper), ignored targets (-1),
//   dW accumulated and overwritten, the loss-only path, bitwise-equal repeats; at the full shape, the losses
//   of sampled rows against float64.
// Timings at the Linear-Llama3-1B shapes (16K tokens, hidden 2048, ffn 8192, vocab 128256; the gradient norm over
// its 1.6e9 parameters): median of the runs
// after 2 warm-ups with CUDA events (bench_timing.cuh), beside the floor: bytes moved once / the copy
// bandwidth measured here (and FLOPs / the bf16 GEMM rate measured here, for the classifier). A table last;
// exit code 1 on any failed check.
#include "embedding.cuh"
#include "norm.cuh"
#include "swiglu.cuh"
#include "classifier.cuh"
#include "lm_head.cuh"
#include "elementwise.cuh"  // rms_norm_forward / _backward: the attention output's norm per head
#include "grad_norm.cuh"    // the global gradient norm's sum of squares
#include "bench_timing.cuh"
#include "bench_energy.cuh"
#include "adamw.cuh"  // the optimizer step, timed at the 1B size
#include "bench_model_rows.cuh"  // llama_1b_rows

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using lasp::bf16;

// ------------------------------------------------------------------------------------------------------
// Utilities
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
  std::vector<T> host() const {
    std::vector<T> h(n);
    CUDA_CHECK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
  void upload(const std::vector<T>& h) {
    if (h.size() != n) {
      std::fprintf(stderr, "upload: %zu elements into a buffer of %zu\n", h.size(), n);
      std::exit(2);
    }
    CUDA_CHECK(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
};

__host__ __device__ inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// p[i] = scale * u, u uniform in [-1, 1) from (seed, i): large inputs are drawn on the GPU.
template <typename T>
__global__ void fill_kernel(T* p, size_t n, uint64_t seed, float scale) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const float u = (float)(mix64(mix64(seed) ^ i) >> 40) * (2.0f / 16777216.0f) - 1.0f;
    p[i] = (T)(scale * u);
  }
}

template <typename T>
void fill(Dev<T>& d, uint64_t seed, float scale) {
  fill_kernel<T><<<2048, 256>>>(d.p, d.n, seed, scale);
  LAUNCH_CHECK();
  CUDA_CHECK(cudaDeviceSynchronize());
}

static std::vector<double> to_double(const std::vector<bf16>& v) {
  std::vector<double> d(v.size());
  for (size_t i = 0; i < v.size(); ++i) d[i] = (double)__bfloat162float(v[i]);
  return d;
}
static std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

static double round_bf16(double x) { return (double)__bfloat162float(__float2bfloat16((float)x)); }

// ||got - ref|| / ||ref||; infinity when any element of got is not finite (unwritten, NaN).
static double rel_err(const std::vector<double>& got, const std::vector<double>& ref) {
  if (got.size() != ref.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
}

static int g_failures = 0;
static int g_checks = 0;

static void check(const std::string& name, double err, double tol) {
  const bool ok = err <= tol;  // NaN and infinity fail
  ++g_checks;
  if (!ok) ++g_failures;
  std::printf("CHECK %-58s err %.3e  tol %.0e  %s\n", name.c_str(), err, tol, ok ? "ok" : "FAIL");
}

static void check_true(const std::string& name, bool ok) {
  ++g_checks;
  if (!ok) ++g_failures;
  std::printf("CHECK %-58s %s\n", name.c_str(), ok ? "ok" : "FAIL");
}

template <typename T>
static bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

struct Timing {
  std::string op, shape;
  double ms, bytes, flops, floor_ms;
  OpEnergy energy;  // joules a call back to back (--energy), else zeros
};
static std::vector<Timing> g_timings;
static double g_copy_bw = 0;     // bytes/s, read + written, measured
static double g_gemm_rate = 0;   // FLOP/s, bf16 GEMM, measured
static double g_nominal_bw = 0;  // bytes/s, the brief's floor (3.0 TB/s H100, 4.8 TB/s H200)
static int g_runs = 20;          // timed calls an op (--runs)
static double g_energy_seconds = 0;  // --energy S: each op also back to back for S seconds on the energy counter
static EnergyMeter* g_meter = nullptr;

// Times op f (median of g_runs calls) and, with --energy, its joules a call back to back.
template <typename F>
static void record(const std::string& op, const std::string& shape, F f, double bytes, double flops) {
  const double ms = time_ms(f, g_runs);
  const double floor_ms = std::max(bytes / g_copy_bw, flops > 0 ? flops / g_gemm_rate : 0.0) * 1e3;
  const OpEnergy e = g_energy_seconds > 0 ? energy_per_call(*g_meter, f, g_energy_seconds) : OpEnergy{};
  g_timings.push_back({op, shape, ms, bytes, flops, floor_ms, e});
  std::printf("TIME %-30s %-28s %8.3f ms  floor %8.3f ms  (%.2fx)", op.c_str(), shape.c_str(), ms, floor_ms,
              floor_ms > 0 ? ms / floor_ms : 0.0);
  if (e.calls > 0) std::printf("  %.4f J a call, %.0f W, %.3f ms back to back", e.joules, e.watts, e.ms);
  std::printf("\n");
}

// ------------------------------------------------------------------------------------------------------
// Embedding
// ------------------------------------------------------------------------------------------------------
// ids: a hot set of 64 tokens for half the positions (many repeats), uniform over the vocabulary otherwise,
// and both ends of the vocabulary present.
static std::vector<int> draw_ids(int tokens, int vocab, std::mt19937_64& rng, bool hot) {
  std::vector<int> ids(tokens);
  std::uniform_int_distribution<int> any(0, vocab - 1), small(0, 63), coin(0, 1);
  for (auto& id : ids) id = hot && coin(rng) ? small(rng) : any(rng);
  if (tokens > 2) ids[1] = vocab - 1, ids[tokens - 1] = 0;
  return ids;
}

static void check_embedding(uint64_t seed, int tokens, int vocab, int hidden) {
  std::mt19937_64 rng(seed);
  const std::string tag = "embedding " + std::to_string(tokens) + "x" + std::to_string(vocab) + "x" +
                          std::to_string(hidden);
  std::vector<int> ids = draw_ids(tokens, vocab, rng, true);
  Dev<int> d_ids(tokens);
  d_ids.upload(ids);
  Dev<bf16> table((size_t)vocab * hidden), out((size_t)tokens * hidden), dout((size_t)tokens * hidden);
  Dev<float> dtable((size_t)vocab * hidden);
  fill(table, seed + 1, 1.0f);
  fill(dout, seed + 2, 1.0f);
  out.poison();
  lasp::embedding_forward(d_ids.p, table.p, out.p, tokens, hidden, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  {
    const std::vector<bf16> t = table.host(), o = out.host();
    bool same = true;
    for (int i = 0; i < tokens && same; ++i)
      same = std::memcmp(&o[(size_t)i * hidden], &t[(size_t)ids[i] * hidden], hidden * sizeof(bf16)) == 0;
    check_true(tag + " forward rows bit for bit", same);
  }
  Dev<char> ws(lasp::embedding_workspace_bytes(tokens, vocab));
  const lasp::EmbeddingSort sort = lasp::embedding_sort_view(ws.p, tokens, vocab);
  std::vector<std::vector<float>> runs;
  for (int run = 0; run < 2; ++run) {
    fill(dtable, seed + 3, 1.0f);  // the same starting gradient both runs: += must keep it
    ws.poison();
    lasp::embedding_sort(d_ids.p, sort, 0);
    lasp::embedding_backward(sort, dout.p, dtable.p, hidden, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    runs.push_back(dtable.host());
  }
  fill(dtable, seed + 3, 1.0f);
  const std::vector<float> init = dtable.host();
  const std::vector<double> g = to_double(dout.host());
  std::vector<double> ref_rows, got_rows;
  std::vector<char> touched(vocab, 0);
  std::vector<std::vector<double>> sum(vocab);
  for (int t = 0; t < tokens; ++t) {
    auto& s = sum[ids[t]];
    if (s.empty()) s.assign(hidden, 0.0);
    for (int h = 0; h < hidden; ++h) s[h] += g[(size_t)t * hidden + h];
    touched[ids[t]] = 1;
  }
  bool untouched_same = true;
  for (int v = 0; v < vocab; ++v) {
    const size_t o = (size_t)v * hidden;
    if (!touched[v]) {
      untouched_same = untouched_same && std::memcmp(&runs[0][o], &init[o], hidden * sizeof(float)) == 0;
      continue;
    }
    for (int h = 0; h < hidden; ++h) {
      ref_rows.push_back(init[o + h] + sum[v][h]);
      got_rows.push_back(runs[0][o + h]);
    }
  }
  check(tag + " backward (fp32 sums)", rel_err(got_rows, ref_rows), 1e-5);
  check_true(tag + " backward leaves other rows bit for bit", untouched_same);
  check_true(tag + " backward twice: bitwise equal", bitwise_equal(runs[0], runs[1]));
}

// ------------------------------------------------------------------------------------------------------
// Norms
// ------------------------------------------------------------------------------------------------------
struct NormRef {
  std::vector<double> x, out, mean, rstd, dx, dw, db;
};

// float64 forward and backward from the bf16 inputs (x after the residual add, rounded as the kernel stores it).
static NormRef norm_reference(lasp::NormKind kind, const std::vector<double>& x0, const std::vector<double>* y,
                              const std::vector<double>& w, const std::vector<double>& b,
                              const std::vector<double>& dout, const std::vector<double>& dx0, bool accumulate,
                              const std::vector<double>& dw0, const std::vector<double>& db0, int rows, int hidden,
                              double eps) {
  NormRef r;
  r.x = x0;
  if (y)
    for (size_t i = 0; i < r.x.size(); ++i) r.x[i] = round_bf16(x0[i] + (*y)[i]);
  r.out.resize(r.x.size());
  r.dx.resize(r.x.size());
  r.mean.assign(rows, 0.0);
  r.rstd.resize(rows);
  r.dw = dw0;
  r.db = db0;
  const bool ln = kind == lasp::kLayerNorm;
  for (int i = 0; i < rows; ++i) {
    const double* xr = &r.x[(size_t)i * hidden];
    double mean = 0, var = 0;
    if (ln) {
      for (int h = 0; h < hidden; ++h) mean += xr[h];
      mean /= hidden;
    }
    for (int h = 0; h < hidden; ++h) var += (xr[h] - mean) * (xr[h] - mean);
    const double rstd = 1.0 / std::sqrt(var / hidden + eps);
    r.mean[i] = mean;
    r.rstd[i] = rstd;
    double mg = 0, mgx = 0;
    std::vector<double> xh(hidden), g(hidden);
    for (int h = 0; h < hidden; ++h) {
      const size_t k = (size_t)i * hidden + h;
      xh[h] = (xr[h] - mean) * rstd;
      r.out[k] = xh[h] * w[h] + (ln ? b[h] : 0.0);
      g[h] = dout[k] * w[h];
      mg += g[h];
      mgx += g[h] * xh[h];
      r.dw[h] += dout[k] * xh[h];
      r.db[h] += dout[k];
    }
    mg = ln ? mg / hidden : 0.0;
    mgx /= hidden;
    for (int h = 0; h < hidden; ++h) {
      const size_t k = (size_t)i * hidden + h;
      r.dx[k] = (accumulate ? dx0[k] : 0.0) + rstd * (g[h] - mg - xh[h] * mgx);
    }
  }
  return r;
}

static void check_norm(uint64_t seed, lasp::NormKind kind, int rows, int hidden, bool residual, bool accumulate) {
  const bool ln = kind == lasp::kLayerNorm;
  const std::string tag = std::string(ln ? "layernorm " : "rmsnorm ") + std::to_string(rows) + "x" +
                          std::to_string(hidden) + (residual ? " +res" : "") + (accumulate ? " acc" : "");
  const size_t n = (size_t)rows * hidden;
  const float eps = 1e-5f;
  Dev<bf16> x(n), y(n), out(n), w(hidden), b(hidden), dout(n), dx(n);
  Dev<float> mean(rows), rstd(rows), dw(hidden), db(hidden);
  Dev<float> scratch(lasp::norm_backward_scratch_bytes(rows, hidden) / sizeof(float));
  fill(x, seed + 1, 2.0f);
  fill(y, seed + 2, 1.0f);
  fill(w, seed + 3, 1.0f);
  fill(b, seed + 4, 0.5f);
  fill(dout, seed + 5, 1.0f);
  fill(dx, seed + 6, 1.0f);
  fill(dw, seed + 7, 1.0f);
  fill(db, seed + 8, 1.0f);
  const auto x0 = to_double(x.host()), y0 = to_double(y.host()), w0 = to_double(w.host()), b0 = to_double(b.host());
  const auto dout0 = to_double(dout.host()), dx0 = to_double(dx.host());
  const auto dw0 = to_double(dw.host()), db0 = to_double(db.host());
  const std::vector<bf16> dx_start = dx.host();
  const std::vector<float> dw_start = dw.host(), db_start = db.host();
  out.poison();
  mean.poison();
  rstd.poison();
  lasp::norm_forward(kind, out.p, ln ? mean.p : nullptr, rstd.p, x.p, residual ? y.p : nullptr, x.p, w.p,
                     ln ? b.p : nullptr,
                     rows, hidden, eps, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  const NormRef ref = norm_reference(kind, x0, residual ? &y0 : nullptr, w0, b0, dout0, dx0, accumulate, dw0, db0,
                                     rows, hidden, eps);
  if (residual) check(tag + " residual x + y", rel_err(to_double(x.host()), ref.x), 1e-6);
  check(tag + " out (bf16)", rel_err(to_double(out.host()), ref.out), 1e-2);
  check(tag + " rstd (fp32)", rel_err(to_double(rstd.host()), ref.rstd), 1e-3);
  if (ln) check(tag + " mean (fp32)", rel_err(to_double(mean.host()), ref.mean), 1e-3);
  std::vector<bf16> dx_runs[2];
  std::vector<float> dw_runs[2], db_runs[2];
  for (int run = 0; run < 2; ++run) {
    if (accumulate)
      dx.upload(dx_start);
    else
      dx.poison();
    dw.upload(dw_start);
    db.upload(db_start);
    scratch.poison();
    lasp::norm_backward(kind, dx.p, accumulate, dw.p, ln ? db.p : nullptr, dout.p, x.p, w.p, ln ? mean.p : nullptr,
                        rstd.p, rows, hidden, scratch.p, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    dx_runs[run] = dx.host();
    dw_runs[run] = dw.host();
    db_runs[run] = db.host();
  }
  check(tag + " dx (bf16)", rel_err(to_double(dx_runs[0]), ref.dx), 1e-2);
  check(tag + " dweight (fp32)", rel_err(to_double(dw_runs[0]), ref.dw), 1e-3);
  if (ln)
    check(tag + " dbias (fp32)", rel_err(to_double(db_runs[0]), ref.db), 1e-3);
  else
    check_true(tag + " dbias untouched", bitwise_equal(db_runs[0], db_start));
  check_true(tag + " backward twice: bitwise equal",
             bitwise_equal(dx_runs[0], dx_runs[1]) && bitwise_equal(dw_runs[0], dw_runs[1]) &&
                 bitwise_equal(db_runs[0], db_runs[1]));
}

// ------------------------------------------------------------------------------------------------------
// SwiGLU
// ------------------------------------------------------------------------------------------------------
// The kernels' fp64 sum of squares against the host's run of their exact order: the same bits.
static void check_grad_norm(uint64_t seed, size_t n) {
  Dev<float> g(n);
  fill(g, seed, 3.0f);
  Dev<double> out(1), scratch(lasp::grad_norm_scratch_bytes(n) / sizeof(double));
  lasp::grad_norm_squared(g.p, n, out.p, scratch.p, lasp::grad_norm_scratch_bytes(n), 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> h = g.host();
  const double ref = lasp::grad_norm_reference(h.data(), n), got = out.host()[0];
  check_true("grad norm " + std::to_string(n) + ": kernel == host order, bit for bit",
             std::memcmp(&ref, &got, sizeof(double)) == 0);
}

// y = x / sqrt(mean(x^2) + eps) per d-vector, and its backward dx = rs dy - rs^3 (x . dy) / d x, in float64.
static void check_head_rms(uint64_t seed, int rows, int d) {
  const std::string tag = "head rms " + std::to_string(rows) + "x" + std::to_string(d);
  const size_t n = (size_t)rows * d;
  const float eps = 1e-6f;
  Dev<bf16> x(n), y(n), dy(n);
  fill(x, seed + 1, 3.0f);
  fill(dy, seed + 2, 1.0f);
  const auto xs = to_double(x.host()), dys = to_double(dy.host());
  std::vector<double> ry(n), rdx(n);
  for (int r = 0; r < rows; ++r) {
    double ss = 0, sd = 0;
    for (int e = 0; e < d; ++e) {
      ss += xs[(size_t)r * d + e] * xs[(size_t)r * d + e];
      sd += xs[(size_t)r * d + e] * dys[(size_t)r * d + e];
    }
    const double rs = 1.0 / std::sqrt(ss / d + eps);
    for (int e = 0; e < d; ++e) {
      const size_t k = (size_t)r * d + e;
      ry[k] = xs[k] * rs;
      rdx[k] = rs * dys[k] - rs * rs * rs * sd / d * xs[k];
    }
  }
  y.poison();
  lasp::rms_norm_forward(x.p, y.p, rows, d, eps, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  check(tag + " forward", rel_err(to_double(y.host()), ry), 1e-2);
  lasp::rms_norm_backward(x.p, dy.p, dy.p, rows, d, eps, 0);  // in place, as the layer calls it
  CUDA_CHECK(cudaDeviceSynchronize());
  check(tag + " backward in place", rel_err(to_double(dy.host()), rdx), 1e-2);
}

// expand_kv_heads: dst[r][h] = src[r][h / group]; sum_kv_head_groups: dst[r][g] = the fp32 sum over the group's
// heads in head order, rounded once. The host does the same in the same order: bit for bit.
template <typename T>
static void check_kv_groups(uint64_t seed, int rows, int kv_heads, int heads, int d) {
  const std::string tag = std::string("kv groups ") + (sizeof(T) == 2 ? "bf16 " : "fp32 ") + std::to_string(rows) +
                          "x" + std::to_string(kv_heads) + "/" + std::to_string(heads) + "x" + std::to_string(d);
  const size_t few = (size_t)rows * kv_heads * d, all = (size_t)rows * heads * d;
  const int group = heads / kv_heads;
  Dev<T> kv(few), wide(all), grads(all), summed(few);
  fill(kv, seed + 1, 2.0f);
  fill(grads, seed + 2, 1.0f);
  wide.poison();
  summed.poison();
  lasp::expand_kv_heads(kv.p, wide.p, rows, kv_heads, heads, d, 0);
  lasp::sum_kv_head_groups(grads.p, summed.p, rows, kv_heads, heads, d, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<T> k = kv.host(), g = grads.host();
  std::vector<T> want_wide(all), want_sum(few);
  for (size_t r = 0; r < (size_t)rows; ++r)
    for (int h = 0; h < heads; ++h)
      for (int e = 0; e < d; ++e) want_wide[(r * heads + h) * d + e] = k[(r * kv_heads + h / group) * d + e];
  for (size_t r = 0; r < (size_t)rows; ++r)
    for (int kvh = 0; kvh < kv_heads; ++kvh)
      for (int e = 0; e < d; ++e) {
        float acc = 0.f;
        for (int j = 0; j < group; ++j) acc += (float)g[(r * heads + (size_t)kvh * group + j) * d + e];
        want_sum[(r * kv_heads + kvh) * d + e] = (T)acc;
      }
  check_true(tag + ": copied out bit for bit", bitwise_equal(wide.host(), want_wide));
  check_true(tag + ": groups summed bit for bit", bitwise_equal(summed.host(), want_sum));
}

static void check_swiglu(uint64_t seed, int rows, int ffn, bool fused) {
  const std::string tag = std::string("swiglu ") + std::to_string(rows) + "x" + std::to_string(ffn) +
                          (fused ? " fused in place" : " separate");
  const size_t ld = fused ? 2 * (size_t)ffn : ffn;
  Dev<bf16> gu((size_t)rows * ld * (fused ? 1 : 2)), h((size_t)rows * ffn), dh((size_t)rows * ffn);
  Dev<bf16> dgu(fused ? 1 : (size_t)rows * ld * 2);
  fill(gu, seed + 1, 4.0f);  // silu's curved part and both tails
  fill(dh, seed + 2, 1.0f);
  bf16* gate = gu.p;
  bf16* up = fused ? gu.p + ffn : gu.p + (size_t)rows * ffn;
  const std::vector<double> all = to_double(gu.host()), d = to_double(dh.host());
  auto at = [&](bool is_up, int r, int j) {
    const size_t base = fused ? (is_up ? ffn : 0) : (is_up ? (size_t)rows * ffn : 0);
    return base + (size_t)r * ld + j;
  };
  std::vector<double> ref_h, ref_dg, ref_du;
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < ffn; ++j) {
      const double g = all[at(false, r, j)], u = all[at(true, r, j)], s = 1.0 / (1.0 + std::exp(-g));
      ref_h.push_back(g * s * u);
      ref_dg.push_back(d[(size_t)r * ffn + j] * u * s * (1.0 + g * (1.0 - s)));
      ref_du.push_back(d[(size_t)r * ffn + j] * g * s);
    }
  h.poison();
  lasp::swiglu_forward(gate, up, ld, h.p, rows, ffn, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  check(tag + " h (bf16)", rel_err(to_double(h.host()), ref_h), 1e-2);
  bf16* dgate = fused ? gate : dgu.p;
  bf16* dup = fused ? up : dgu.p + (size_t)rows * ffn;
  if (!fused) dgu.poison();
  lasp::swiglu_backward(gate, up, dh.p, dgate, dup, ld, rows, ffn, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<double> got = to_double(fused ? gu.host() : dgu.host());
  std::vector<double> got_dg, got_du;
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < ffn; ++j) {
      got_dg.push_back(got[at(false, r, j)]);
      got_du.push_back(got[at(true, r, j)]);
    }
  check(tag + " dgate (bf16)", rel_err(got_dg, ref_dg), 1e-2);
  check(tag + " dup (bf16)", rel_err(got_du, ref_du), 1e-2);
}

// ------------------------------------------------------------------------------------------------------
// Classifier
// ------------------------------------------------------------------------------------------------------
static std::vector<int> draw_targets(int tokens, int vocab, std::mt19937_64& rng, int ignore_percent) {
  std::vector<int> t(tokens);
  std::uniform_int_distribution<int> any(0, vocab - 1), pct(0, 99);
  for (auto& v : t) v = pct(rng) < ignore_percent ? -1 : any(rng);
  t[tokens - 1] = -1;  // the sequence's last token has no target
  if (tokens > 2) t[0] = vocab - 1, t[1] = 0;
  return t;
}

static void check_classifier(cublasHandle_t handle, uint64_t seed, int tokens, int vocab, int hidden, int chunk,
                             bool accumulate) {
  const std::string tag = "classifier " + std::to_string(tokens) + "x" + std::to_string(vocab) + "x" +
                          std::to_string(hidden) + " chunk " + std::to_string(chunk) + (accumulate ? " acc" : "");
  std::mt19937_64 rng(seed);
  const std::vector<int> targets = draw_targets(tokens, vocab, rng, 10);
  int count = 0;
  for (int t : targets) count += t >= 0;
  Dev<int> d_targets(tokens), d_count(1);
  d_targets.upload(targets);
  Dev<bf16> x((size_t)tokens * hidden), w((size_t)vocab * hidden), dx((size_t)tokens * hidden);
  Dev<bf16> logits(lasp::classifier_logits_bytes(chunk, vocab) / sizeof(bf16));
  Dev<float> losses(tokens), dw((size_t)vocab * hidden);
  Dev<double> total(1);
  fill(x, seed + 1, 1.0f);
  fill(w, seed + 2, 6.0f / std::sqrt((float)hidden));  // logits with a standard deviation near 2
  fill(dw, seed + 3, 1.0f);
  const std::vector<float> dw_start = dw.host();
  const auto xd = to_double(x.host()), wd = to_double(w.host());
  // float64: logits, log-sum-exp, loss, dlogits = (softmax - onehot) / count, dx = dlogits W, dW = dlogits^T x.
  std::vector<double> ref_loss(tokens, 0.0), ref_dx((size_t)tokens * hidden, 0.0);
  std::vector<double> ref_dw(dw_start.begin(), dw_start.end());
  if (!accumulate) std::fill(ref_dw.begin(), ref_dw.end(), 0.0);
  double ref_total = 0;
  std::vector<double> z(vocab);
  for (int t = 0; t < tokens; ++t) {
    double m = -INFINITY;
    for (int v = 0; v < vocab; ++v) {
      double s = 0;
      for (int k = 0; k < hidden; ++k) s += xd[(size_t)t * hidden + k] * wd[(size_t)v * hidden + k];
      z[v] = s;
      m = std::max(m, s);
    }
    double se = 0;
    for (int v = 0; v < vocab; ++v) se += std::exp(z[v] - m);
    const double lse = m + std::log(se);
    if (targets[t] < 0) continue;
    ref_loss[t] = lse - z[targets[t]];
    ref_total += ref_loss[t];
    for (int v = 0; v < vocab; ++v) {
      const double g = (std::exp(z[v] - lse) - (v == targets[t] ? 1.0 : 0.0)) / count;
      for (int k = 0; k < hidden; ++k) {
        ref_dx[(size_t)t * hidden + k] += g * wd[(size_t)v * hidden + k];
        ref_dw[(size_t)v * hidden + k] += g * xd[(size_t)t * hidden + k];
      }
    }
  }
  lasp::count_targets(d_targets.p, tokens, d_count.p, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  check_true(tag + " count_targets", d_count.host()[0] == count);
  std::vector<float> loss_runs[2], dw_runs[2];
  std::vector<double> total_runs[2];
  for (int run = 0; run < 2; ++run) {
    losses.poison();
    dx.poison();
    logits.poison();
    if (accumulate)
      dw.upload(dw_start);
    else
      dw.poison();
    lasp::classifier_forward_backward(handle, 0, x.p, w.p, d_targets.p, tokens, vocab, hidden, chunk, 1.0f / count,
                                      logits.p, losses.p, dx.p, dw.p, accumulate);
    lasp::loss_sum(losses.p, tokens, total.p, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    loss_runs[run] = losses.host();
    dw_runs[run] = dw.host();
    total_runs[run] = total.host();
    if (run == 0) check(tag + " dx (bf16)", rel_err(to_double(dx.host()), ref_dx), 1e-2);
  }
  // bf16 logits move each loss by about 2^-9 of a logit; dlogits is a bf16 GEMM operand.
  check(tag + " per-token loss", rel_err(to_double(loss_runs[0]), ref_loss), 5e-3);
  check(tag + " loss sum (fp64)", std::fabs(total_runs[0][0] - ref_total) / ref_total, 2e-3);
  check(tag + " dW (fp32 out, bf16 dlogits)", rel_err(to_double(dw_runs[0]), ref_dw), 1e-2);
  check_true(tag + " twice: bitwise equal loss and dW",
             bitwise_equal(loss_runs[0], loss_runs[1]) && bitwise_equal(dw_runs[0], dw_runs[1]) &&
                 total_runs[0][0] == total_runs[1][0]);
  // The loss-only path: the same losses, dx and dW untouched.
  losses.poison();
  dx.poison();
  const std::vector<bf16> dx_poisoned = dx.host();
  lasp::classifier_forward_backward(handle, 0, x.p, w.p, d_targets.p, tokens, vocab, hidden, chunk, 1.0f / count,
                                    logits.p, losses.p, nullptr, dw.p, accumulate);
  CUDA_CHECK(cudaDeviceSynchronize());
  check_true(tag + " loss only: same losses, dx and dW untouched",
             bitwise_equal(losses.host(), loss_runs[0]) && bitwise_equal(dx.host(), dx_poisoned) &&
                 bitwise_equal(dw.host(), dw_runs[1]));
}

// ------------------------------------------------------------------------------------------------------
// Timings at the Linear-Llama3-1B shapes (plus the full-shape classifier's sampled-row check)
// ------------------------------------------------------------------------------------------------------
static void measure_ceilings(cublasHandle_t handle, int runs) {
  const size_t bytes = (size_t)2 << 30;
  Dev<char> a(bytes), b(bytes);
  CUDA_CHECK(cudaMemset(a.p, 1, bytes));
  const double copy_ms = time_ms([&] { CUDA_CHECK(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice)); }, runs);
  g_copy_bw = 2.0 * bytes / (copy_ms * 1e-3);
  const int n = 8192;
  Dev<bf16> x((size_t)n * n), y((size_t)n * n), z((size_t)n * n);
  fill(x, 91, 1.0f);
  fill(y, 92, 1.0f);
  const double gemm_ms = time_ms([&] { lasp::matmul(handle, false, false, n, n, n, x.p, y.p, z.p); }, runs);
  g_gemm_rate = 2.0 * n * (double)n * n / (gemm_ms * 1e-3);
  std::printf("CEIL copy %.0f GB/s (read + written, 2 GiB); bf16 GEMM 8192^3 %.0f TFLOP/s; nominal floor %.1f TB/s\n",
              g_copy_bw / 1e9, g_gemm_rate / 1e12, g_nominal_bw / 1e12);
}

// A kernel that keeps every SM's clock running with nothing to do: the board's power with the SMs idle at the
// clocks a step leaves them (what a memory-bound op's joules are measured against).
__global__ void sleep_kernel(int micros) {
  for (int i = 0; i < micros; ++i) __nanosleep(1000);
}

static void bench(cublasHandle_t handle, uint64_t seed, int runs) {
  const int N = 16384, H = 2048, F = 8192, V = 128256;
  const std::string nh = "16384x2048";
  {  // what the others are measured against: the SMs idle, a copy, the gate|up GEMM (random operands)
    const int sms = 132;
    record("idle (SMs asleep, 1 ms)", "132 blocks", [&] { sleep_kernel<<<sms, 32>>>(1000); }, 0, 0);
    const size_t bytes = (size_t)2 << 30;
    Dev<char> a(bytes), b(bytes);
    CUDA_CHECK(cudaMemset(a.p, 1, bytes));
    record("copy", "2 GiB", [&] { CUDA_CHECK(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice)); },
           2.0 * bytes, 0);
  }
  {
    const int m = N, n = 2 * F, k = H;
    Dev<bf16> x((size_t)m * k), w((size_t)n * k), y((size_t)m * n);
    fill(x, seed + 30, 1.0f);
    fill(w, seed + 31, 1.0f / 45);
    record("GEMM x W^T (gate|up forward)", "16384x16384x2048",
           [&] { lasp::matmul(handle, false, true, m, n, k, x.p, w.p, y.p); }, 2.0 * (m * (double)k + n * (double)k + m * (double)n),
           2.0 * m * (double)n * k);
  }
  {  // embedding
    std::mt19937_64 rng(seed);
    const std::vector<int> ids = draw_ids(N, V, rng, false);
    std::vector<char> seen(V, 0);
    int unique = 0;
    for (int id : ids) {
      unique += !seen[id];
      seen[id] = 1;
    }
    Dev<int> d_ids(N);
    d_ids.upload(ids);
    Dev<bf16> table((size_t)V * H), out((size_t)N * H), dout((size_t)N * H);
    Dev<float> dtable((size_t)V * H);
    fill(table, seed + 1, 1.0f);
    fill(dout, seed + 2, 1.0f);
    fill(dtable, seed + 3, 1.0f);
    Dev<char> ws(lasp::embedding_workspace_bytes(N, V));
    const lasp::EmbeddingSort sort = lasp::embedding_sort_view(ws.p, N, V);
    const double row = (double)H * sizeof(bf16);
    record("embedding_forward", nh, [&] { lasp::embedding_forward(d_ids.p, table.p, out.p, N, H, 0); },
           2.0 * N * row + N * 4.0, 0);
    record("embedding_sort", "16384 ids", [&] { lasp::embedding_sort(d_ids.p, sort, 0); }, 16.0 * N, 0);
    record("embedding_backward", nh + " " + std::to_string(unique) + " ids",
           [&] { lasp::embedding_backward(sort, dout.p, dtable.p, H, 0); },
           N * row + 2.0 * unique * H * sizeof(float), 0);
  }
  {  // norms
    const size_t n = (size_t)N * H;
    Dev<bf16> x(n), y(n), out(n), w(H), b(H), dout(n), dx(n);
    Dev<float> mean(N), rstd(N), dw(H), db(H);
    Dev<float> scratch(lasp::norm_backward_scratch_bytes(N, H) / sizeof(float));
    fill(x, seed + 4, 2.0f);
    fill(y, seed + 5, 0.01f);  // small, so 22 residual adds in place keep x in range
    fill(w, seed + 6, 1.0f);
    fill(b, seed + 7, 0.5f);
    fill(dout, seed + 8, 1.0f);
    fill(dx, seed + 9, 1.0f);
    const double t = n * sizeof(bf16);
    const double partials = 2.0 * 2 * 1024 * H * sizeof(float);
    for (lasp::NormKind kind : {lasp::kRmsNorm, lasp::kLayerNorm}) {
      const bool ln = kind == lasp::kLayerNorm;
      const std::string name = ln ? "layernorm" : "rmsnorm";
      record(name + "_forward +residual", nh, [&] {
               lasp::norm_forward(kind, out.p, ln ? mean.p : nullptr, rstd.p, x.p, y.p, x.p, w.p, b.p, N, H, 1e-5f, 0);
             },
             4 * t, 0);
      record(name + "_forward", nh, [&] {
               lasp::norm_forward(kind, out.p, ln ? mean.p : nullptr, rstd.p, x.p, nullptr, nullptr, w.p, b.p, N, H, 1e-5f, 0);
             },
             2 * t, 0);
      record(name + "_backward acc", nh, [&] {
               lasp::norm_backward(kind, dx.p, true, dw.p, db.p, dout.p, x.p, w.p, mean.p, rstd.p, N, H, scratch.p, 0);
             },
             4 * t + partials, 0);
    }
  }
  {  // the attention output's RMS norm per head (16 heads x 128)
    const size_t n = (size_t)N * H, heads = (size_t)N * (H / 128);
    Dev<bf16> x(n), y(n), dy(n);
    fill(x, seed + 20, 2.0f);
    fill(dy, seed + 21, 1.0f);
    const double t = n * sizeof(bf16);
    record("head_rms_forward", nh + " d 128", [&] { lasp::rms_norm_forward(x.p, y.p, heads, 128, 1e-6f, 0); },
           2 * t, 0);
    record("head_rms_backward", nh + " d 128", [&] {
             lasp::rms_norm_backward(x.p, dy.p, y.p, heads, 128, 1e-6f, 0);
           },
           3 * t, 0);
  }
  {  // the gradient norm's sum of squares over Linear-Llama3-1B's 1.6e9 fp32 gradients (untied head)
    const size_t n = 1600000000;
    Dev<float> g(n);
    Dev<double> out(1), scratch(lasp::grad_norm_scratch_bytes(n) / sizeof(double));
    fill(g, seed + 16, 1e-3f);
    const size_t sb = lasp::grad_norm_scratch_bytes(n);
    record("grad_norm_squared", "1.6e9 fp32",
           [&] { lasp::grad_norm_squared(g.p, n, out.p, scratch.p, sb, 0); }, 4.0 * n, 0);
  }
  {  // the AdamW step over the 1.6e9 parameters (28 bytes each), with the 1B model's table; the shipped grid
     // (grid_for: 132 x 8 blocks of 256) and others: the same bits by construction (one thread an element, the
     // grid only strides), different joules perhaps
    const std::vector<lasp::DecayRow> rows = llama_1b_rows();
    const size_t n = rows.back().offset + rows.back().elements;
    Dev<bf16> w(n);
    Dev<uint16_t> low(n);
    Dev<float> m(n), v(n), g(n);
    fill(w, seed + 40, 0.05f);
    fill(g, seed + 41, 1e-3f);
    CUDA_CHECK(cudaMemset(low.p, 0, n * sizeof(uint16_t)));
    CUDA_CHECK(cudaMemset(m.p, 0, n * sizeof(float)));
    CUDA_CHECK(cudaMemset(v.p, 0, n * sizeof(float)));
    const lasp::AdamwTable table = lasp::adamw_upload_table(rows, n);
    lasp::AdamwSettings settings{};
    settings.lr = 3e-4;
    settings.beta1 = 0.9;
    settings.beta2 = 0.95;
    settings.eps = 1e-8;
    settings.weight_decay = 0.1;
    settings.clip_scale = 0.5;
    settings.step = 10;
    const lasp::AdamwConstants c = lasp::adamw_step_constants(settings);
    const int shipped = lasp::adamw::grid_for(n);
    for (const auto& launch : std::vector<std::pair<int, int>>{
             {shipped, lasp::adamw::kThreads}, {132, 256}, {264, 256}, {528, 256}, {2112, 256}, {132, 1024}, {264, 512}}) {
      const int blocks = launch.first, threads = launch.second;
      const std::string shape = "1.6e9 " + std::to_string(blocks) + "x" + std::to_string(threads) +
                                (blocks == shipped && threads == lasp::adamw::kThreads ? " (ships)" : "");
      record("adamw_step", shape, [&] {
        lasp::adamw::step_kernel<<<blocks, threads>>>(w.p, low.p, m.p, v.p, g.p, n, table.rows, table.count, c);
        LAUNCH_CHECK();
      }, 28.0 * n, 0);
    }
    CUDA_CHECK(cudaFree(const_cast<lasp::DecayRow*>(table.rows)));
  }
  {  // SwiGLU, the fused [N][2F] layout
    const size_t n = (size_t)N * F;
    Dev<bf16> gu(2 * n), h(n), dh(n), dgu(2 * n);
    fill(gu, seed + 10, 4.0f);
    fill(dh, seed + 11, 1.0f);
    const double t = n * sizeof(bf16);
    const std::string nf = "16384x8192";
    record("swiglu_forward", nf, [&] { lasp::swiglu_forward(gu.p, gu.p + F, 2 * F, h.p, N, F, 0); },
           3 * t, 0);
    record("swiglu_backward", nf, [&] {
             lasp::swiglu_backward(gu.p, gu.p + F, dh.p, dgu.p, dgu.p + F, 2 * F, N, F, 0);
           },
           5 * t, 0);
  }
  {  // classifier
    std::mt19937_64 rng(seed + 12);
    const std::vector<int> targets = draw_targets(N, V, rng, 0);
    Dev<int> d_targets(N);
    d_targets.upload(targets);
    Dev<bf16> x((size_t)N * H), w((size_t)V * H), dx((size_t)N * H);
    Dev<float> losses(N), dw((size_t)V * H);
    Dev<double> total(1);
    fill(x, seed + 13, 1.0f);
    fill(w, seed + 14, 6.0f / std::sqrt((float)H));
    const float inv = 1.0f / (N - 1);
    const double flops = 6.0 * N * (double)V * H;
    const double io = (double)V * H * (2 + 4) + 2.0 * N * H * 2;  // W, dW once; x, dx once
    for (int chunk : {2048, 4096, 8192}) {  // 8192: one fp32 dW pass fewer, 1 GiB more logits
      Dev<bf16> logits(lasp::classifier_logits_bytes(chunk, V) / sizeof(bf16));
      const std::string shape = nh + "x128256 c" + std::to_string(chunk);
      record("classifier fwd+bwd", shape, [&] {
               lasp::classifier_forward_backward(handle, 0, x.p, w.p, d_targets.p, N, V, H, chunk, inv, logits.p,
                                                 losses.p, dx.p, dw.p, false);
             },
             io, flops);
      if (chunk != 4096) continue;
      // The same three GEMMs per chunk without the row kernel: the difference is the softmax kernel's time.
      record("classifier GEMMs only", shape, [&] {
               for (int t0 = 0; t0 < N; t0 += chunk) {
                 lasp::matmul(handle, false, true, chunk, V, H, x.p + (size_t)t0 * H, w.p, logits.p);
                 lasp::matmul(handle, false, false, chunk, H, V, logits.p, w.p, dx.p + (size_t)t0 * H);
                 lasp::matmul(handle, true, false, V, H, chunk, logits.p, x.p + (size_t)t0 * H, dw.p,
                                  t0 > 0 ? 1.f : 0.f);
               }
             },
             io, flops);
      record("classifier loss only", shape, [&] {
               lasp::classifier_forward_backward(handle, 0, x.p, w.p, d_targets.p, N, V, H, chunk, inv, logits.p,
                                                 losses.p, nullptr, nullptr, false);
             },
             (double)V * H * 2 + N * H * 2.0, flops / 3);
      // Full-shape check: sampled rows' losses against float64 (the full reference is too slow for a CPU).
      lasp::classifier_forward_backward(handle, 0, x.p, w.p, d_targets.p, N, V, H, chunk, inv, logits.p, losses.p,
                                        dx.p, dw.p, false);
      lasp::loss_sum(losses.p, N, total.p, 0);
      CUDA_CHECK(cudaDeviceSynchronize());
      const auto xd = to_double(x.host()), wd = to_double(w.host());
      const std::vector<float> got = losses.host();
      std::vector<double> ref_rows, got_rows;
      for (int t : {0, 5001, 16382}) {
        std::vector<double> z(V);
        double m = -INFINITY;
        for (int v = 0; v < V; ++v) {
          double s = 0;
          for (int k = 0; k < H; ++k) s += xd[(size_t)t * H + k] * wd[(size_t)v * H + k];
          z[v] = s;
          m = std::max(m, s);
        }
        double se = 0;
        for (int v = 0; v < V; ++v) se += std::exp(z[v] - m);
        ref_rows.push_back(m + std::log(se) - z[targets[t]]);
        got_rows.push_back(got[t]);
      }
      check("classifier full shape: losses of 3 sampled rows", rel_err(got_rows, ref_rows), 5e-3);
      const std::vector<bf16> dxh = dx.host();
      bool finite = std::isfinite(losses.host()[N - 1]) && losses.host()[N - 1] == 0.f;
      for (size_t i = 0; i < dxh.size() && finite; ++i) finite = std::isfinite(__bfloat162float(dxh[i]));
      check_true("classifier full shape: dx all written, last token loss 0", finite);
      std::printf("INFO full-shape mean loss %.6f over %d targets (log(vocab) = %.4f)\n", total.host()[0] / (N - 1),
                  N - 1, std::log((double)V));
    }
  }
}

// ------------------------------------------------------------------------------------------------------
int main(int argc, char** argv) {
  uint64_t seed = 0;
  bool checks = true, timings = true;
  int runs = 20;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seed" && i + 1 < argc)
      seed = std::stoull(argv[++i]);
    else if (a == "--checks-only")
      timings = false;
    else if (a == "--bench-only")
      checks = false;
    else if (a == "--runs" && i + 1 < argc)
      runs = std::stoi(argv[++i]);
    else if (a == "--energy" && i + 1 < argc && std::atof(argv[i + 1]) > 0)
      g_energy_seconds = std::atof(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--seed N] [--checks-only | --bench-only] [--runs N] [--energy SECONDS]\n",
                   argv[0]);
      return 2;
    }
  }
  if (seed == 0) seed = std::random_device{}();
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  g_nominal_bw = std::strstr(prop.name, "H200") ? 4.8e12 : 3.0e12;
  std::printf("GPU %s, %d SMs; seed %llu (--seed repeats it)\n", prop.name, prop.multiProcessorCount,
              (unsigned long long)seed);
  cublasHandle_t handle;
  CUBLAS_CHECK(cublasCreate(&handle));
  g_runs = runs;
  EnergyMeter meter;
  g_meter = &meter;
  if (g_energy_seconds > 0 && !meter.available()) {
    std::printf("no energy counter here (libnvidia-ml.so.1 or nvmlDeviceGetTotalEnergyConsumption missing): times only\n");
    g_energy_seconds = 0;
  }

  if (checks) {
    check_embedding(seed + 100, 16384, 128256, 2048);
    check_embedding(seed + 110, 333, 1000, 72);  // a thread count that is not a multiple of 32 vectors
    for (lasp::NormKind kind : {lasp::kRmsNorm, lasp::kLayerNorm}) {
      check_norm(seed + 200, kind, 16384, 2048, true, true);  // the 1B shape: VPT 1, 256 threads
      check_norm(seed + 210, kind, 1500, 3072, false, false); // VPT 2, more rows than backward blocks
      check_norm(seed + 220, kind, 100, 8192, true, false);   // VPT 4, the largest hidden size
      check_norm(seed + 230, kind, 37, 520, false, true);     // 65 vectors: 96 threads, a partial warp
    }
    check_swiglu(seed + 300, 16384, 8192, true);
    check_swiglu(seed + 310, 33, 72, false);
    check_classifier(handle, seed + 400, 300, 1000, 256, 128, true);  // 3 chunks, the last of 44 rows
    check_classifier(handle, seed + 410, 77, 1003, 64, 32, false);    // vocab not a multiple of 8
    check_classifier(handle, seed + 420, 70, 128256, 64, 32, true);   // Llama-3's vocab
    check_classifier(handle, seed + 430, 41, 50003, 64, 16, false);   // large, element loads
    // Chunks of 128 tokens: their logits on lasp's GEMM (mlp_gemm.cuh's head_logits_gemm, on Hopper), a ragged
    // last chunk on cuBLAS.
    std::printf("INFO classifier: chunks of 128 x vocab 1024 / 128256 take the logits on %s, %s\n",
                lasp::head_gemm_backend(128, 1024, 256), lasp::head_gemm_backend(128, 128256, 128));
    check_classifier(handle, seed + 440, 300, 1024, 256, 128, false);   // 128 + 128 on it, 44 on cuBLAS
    check_classifier(handle, seed + 450, 256, 128256, 128, 128, true);  // Llama-3's vocab on it
    for (int d : {64, 128, 256, 96}) check_head_rms(seed + 500 + d, 16 * 1000 + 3, d);
    // Llama 3.2-1B's 8 kv heads of 32 at d 64, 1B-hybrid-like 4 of 16 at d 128, and one kv head for all.
    check_kv_groups<bf16>(seed + 700, 1000 + 3, 8, 32, 64);
    check_kv_groups<bf16>(seed + 701, 517, 4, 16, 128);
    check_kv_groups<bf16>(seed + 702, 129, 1, 4, 64);
    check_kv_groups<float>(seed + 703, 517, 4, 16, 128);
    for (size_t n : {(size_t)1000, (size_t)262147, (size_t)40000001}) check_grad_norm(seed + 600 + n % 97, n);
  }
  if (timings) {
    measure_ceilings(handle, runs);
    bench(handle, seed + 500, runs);
  }

  std::printf("\n%d checks, %d failed\n", g_checks, g_failures);
  if (!g_timings.empty()) {
    std::printf("\nfloor = max(bytes moved once / measured copy bandwidth %.0f GB/s, FLOPs / measured GEMM rate %.0f "
                "TFLOP/s); median of %d runs\n\n",
                g_copy_bw / 1e9, g_gemm_rate / 1e12, runs);
    const bool energy = g_energy_seconds > 0;
    std::printf("| op | shape | ms | GB | GB/s | TFLOP/s | floor ms | floor ms at %.1f TB/s | ms / floor |%s\n",
                g_nominal_bw / 1e12, energy ? " J a call | W | ms back to back |" : "");
    std::printf("|---|---|---|---|---|---|---|---|---|%s\n", energy ? "---|---|---|" : "");
    for (const Timing& t : g_timings) {
      const double nominal = std::max(t.bytes / g_nominal_bw, t.flops > 0 ? t.flops / g_gemm_rate : 0.0) * 1e3;
      std::printf("| %s | %s | %.3f | %.3f | %.0f | %s | %.3f | %.3f | %.2f |", t.op.c_str(), t.shape.c_str(), t.ms,
                  t.bytes / 1e9, t.bytes / (t.ms * 1e-3) / 1e9,
                  t.flops > 0 ? std::to_string((int)(t.flops / (t.ms * 1e-3) / 1e12)).c_str() : "-", t.floor_ms,
                  nominal, t.floor_ms > 0 ? t.ms / t.floor_ms : 0.0);
      if (energy) std::printf(" %.4f | %.0f | %.3f |", t.energy.joules, t.energy.watts, t.energy.ms);
      std::printf("\n");
    }
  }
  return g_failures ? 1 : 0;
}
