// LASP-2H's gathered attention (issue 18, templates/runtime/softmax_gathered.cuh) on one GPU: every rank of a
// W-rank layout run in turn against the dense fp32 oracle of the whole sequence, then timed beside whole-sequence
// attention.
//
//   bash bench/gpu/run-gathered.sh                       (finds cuDNN, builds, checks, bench, a table last)
//   gathered_check [--seed N] [--tol X] [--l2-tol X] [--lse-tol X] [--quick] [--filter TEXT] [--list]
//   gathered_check --bench [--quick] [--runs N] [--tokens N ...] [--worlds W ...]
// Build (from the repository root; without cuDNN leave out -DLASP_WITH_CUDNN, -I, -L and -lcudnn):
//   nvcc -std=c++17 -O3 --use_fast_math -gencode=arch=compute_90a,code=sm_90a -Itemplates/runtime
//        -DLASP_WITH_CUDNN -I$CUDNN/include -o gathered_check bench/gpu/gathered_check.cu -L$CUDNN/lib -lcudnn
//
// Checks (one line per case and backend: "PASS|FAIL|SKIP name ..."; a summary line "CHECKS n passed, m failed,
// k skipped"; exit 1 on any failure). A case: W ranks, contiguous (rank r holds [rL, (r+1)L), L = N / W) or zigzag
// (halves r and 2W-1-r of size L/2, a PieceMap of count 2), causal or not, heads 16 with 8 or 16 kv heads, head
// dim 64 or 128, batch 1 or 2, N = 2560 (small) or 7168 (medium: pieces and key_rows that are not multiples of
// the 128-row tiles). The (W, layout, causal) product runs twice, the other factors drawn by a pairwise-covering
// rule, flipped in the second pass (--quick: the first pass only, every case small); plus 4 cases with packed
// documents (W 4, both layouts, causal and not), lasp's kernels only; plus 4 cases of W 2 zigzag, causal, batch 1
// (head dim 64 and 128 with 8 and 16 kv heads; medium, --quick small) and 2 with zigzag pieces of unequal length
// ("zigzag-skew96": the first W chunks 96 tokens longer than the last W; W 2 and 4). Random global q, k, v, dO;
// the reference is
// oracle_softmax_forward / _backward (softmax_oracle.cuh) over the whole sequence. For every rank: its query and
// dO rows gathered from the global ones; k, v the global ones with the rows from key_rows on poisoned (NaN), so
// a read of them shows; o, lse, dq, dk, dv poisoned before the calls. The backends: lasp (gathered::forward /
// backward with Backend::kLasp), cudnn (Backend::kCudnn, where built with cuDNN and it supports every rank's
// calls; SKIP otherwise) and program (the program's calls, softmax_gathered_forward / _backward, the backend
// LASP_SOFTMAX_BACKEND and softmax_gathered_backend choose; the lse layout read from that name).
// Compared: o and dq of all ranks put back at their global rows against the oracle's, lse of every row (in the
// backend's own layout) against the oracle's, the sum over ranks of the fp32 dk, dv against the oracle's, and
// every rank's dk, dv rows from key_rows on exactly 0.
// Errors: err = max|got - ref| / max|ref| over the tensor (documents_check's measure for bf16 outputs, --tol,
// default 1e-2) and l2 = ||got - ref|| / ||ref|| (--l2-tol, default 1e-2); lse by max |got - ref| (--lse-tol,
// default 1e-3). Non-finite values fail.
//
// Bench (--bench): causal, batch 1, 16 heads x 128, 8 kv heads, at --tokens (default 16384 65536; --quick 16384)
// and --worlds (default 2 4 8; --quick 2 8), zigzag and contiguous: every rank's softmax_gathered forward,
// backward and fwd+bwd with each backend (median of --runs, default 5, after 2 warm-ups: bench_timing.cuh), and
// the whole sequence through cuDNN (and lasp's kernels) for reference. FLOPs of a rank: 4 d heads batch x its
// causal pairs forward, 2.5x that backward. Per (tokens, W, layout, backend) the table gives the slowest rank's
// times, the throughput of all ranks together (their FLOPs over their summed times) and its ratio to the whole
// sequence's cuDNN throughput (the goal: >= 0.95), and the worst rank's fwd+bwd ratio. Lines "RANK ..." and
// "WHOLE ..." hold every timing.
#include "softmax_gathered.cuh"
#include "softmax_oracle.cuh"
#include "step_documents.cuh"  // DocumentBuffers, upload_documents, draw_document_ends

#include "bench_fill.cuh"    // fill_uniform_kernel
#include "bench_timing.cuh"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

using lasp::bf16;
using lasp::Documents;
using lasp::PieceMap;
using lasp::SoftmaxDims;
using lasp::gathered::Backend;

// ---------------------------------------------------------------------------------------------------------
// Options, results
// ---------------------------------------------------------------------------------------------------------
static uint64_t g_seed = 20261218;
static double g_tol = 1e-2, g_l2_tol = 1e-2, g_lse_tol = 1e-3;
static bool g_quick = false, g_list = false;
static std::string g_filter;
static std::string g_bench_backend;  // --backend: the bench times only this one ("" both)
static int g_bench_kv_heads = 8;     // --kv-heads: of the bench's 16 query heads
static int g_pass = 0, g_fail = 0, g_skip = 0;
static double g_plan_s = 0;  // host time in cuDNN's support checks (their first call per shape builds the plans)

static bool selected(const std::string& name) { return g_filter.empty() || name.find(g_filter) != std::string::npos; }

static void report(const char* verdict, const std::string& name, const std::string& detail) {
  if (!std::strcmp(verdict, "PASS")) ++g_pass;
  else if (!std::strcmp(verdict, "FAIL")) ++g_fail;
  else ++g_skip;
  std::printf("%s %s %s\n", verdict, name.c_str(), detail.c_str());
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------------------------
// Device buffers and data
// ---------------------------------------------------------------------------------------------------------
template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  Dev() = default;
  explicit Dev(size_t count) {
    n = count;
    CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(count, 1) * sizeof(T)));
  }
  ~Dev() {
    if (p) cudaFree(p);
  }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  void poison() { CUDA_CHECK(cudaMemsetAsync(p, 0xFF, n * sizeof(T), 0)); }  // NaN, bf16 and fp32
  void zero() { CUDA_CHECK(cudaMemsetAsync(p, 0, n * sizeof(T), 0)); }
};

static void fill_uniform(Dev<bf16>& x, uint64_t salt, float scale) {
  fill_uniform_kernel<<<1024, 256>>>(x.p, x.n, g_seed * 1000003ull + salt, scale);
  LAUNCH_CHECK();
}

__global__ void add_kernel(float* __restrict__ dst, const float* __restrict__ src, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    dst[i] += src[i];
}

// The elements of rows [row0, rows) of x [batch][rows][width] that are not exactly 0 (NaN counts).
__global__ void count_nonzero_kernel(const float* __restrict__ x, int batch, int rows, size_t width, int row0,
                                     unsigned long long* out) {
  const size_t per = (size_t)(rows - row0) * width, n = (size_t)batch * per;
  unsigned long long c = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const size_t b = i / per, j = i % per;
    c += x[(b * rows + row0) * width + j] != 0.f;
  }
  if (c) atomicAdd(out, c);
}

template <typename T>
static std::vector<float> download(const T* p, size_t n) {
  std::vector<T> t(n);
  CUDA_CHECK(cudaMemcpy(t.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
  std::vector<float> h(n);
  for (size_t i = 0; i < n; ++i) {
    if constexpr (std::is_same<T, bf16>::value) h[i] = __bfloat162float(t[i]);
    else h[i] = (float)t[i];
  }
  return h;
}
template <typename T>
static std::vector<float> download(const Dev<T>& d) {
  return download(d.p, d.n);
}

// rows [src_row, src_row + rows) of src ([batch][src_T][width]) to rows from dst_row of dst ([batch][dst_T][width]).
template <typename T>
static void copy_rows(T* dst, int dst_T, int dst_row, const T* src, int src_T, int src_row, int rows, int batch,
                      size_t width) {
  CUDA_CHECK(cudaMemcpy2DAsync(dst + (size_t)dst_row * width, (size_t)dst_T * width * sizeof(T),
                               src + (size_t)src_row * width, (size_t)src_T * width * sizeof(T),
                               (size_t)rows * width * sizeof(T), batch, cudaMemcpyDeviceToDevice, 0));
}

// ---------------------------------------------------------------------------------------------------------
// Layouts
// ---------------------------------------------------------------------------------------------------------
// Rank r of W over N tokens: contiguous [rL, (r+1)L), or zigzag halves r and 2W-1-r of L/2 tokens. skew (zigzag
// only): the first W chunks L/2 + skew tokens long, the last W L/2 - skew, so a rank's two pieces differ.
static PieceMap rank_map(int W, int r, bool zigzag, int N, int skew = 0) {
  const int L = N / W, a = L / 2 + skew, b = L / 2 - skew;
  if (!zigzag) return PieceMap{1, {0, 0}, {r * L, 0}, {L, 0}};
  return PieceMap{2, {0, a}, {r * a, W * a + (W - 1 - r) * b}, {a, b}};
}
static int rows_of(const PieceMap& m) { return m.length[0] + (m.count > 1 ? m.length[1] : 0); }
static int end_of(const PieceMap& m) {
  const int j = m.count - 1;
  return m.global_start[j] + m.length[j];
}
static int key_rows_of(const PieceMap& m, bool causal, int N) { return causal ? end_of(m) : N; }
static int position(const PieceMap& m, int r) {
  return (m.count == 1 || r < m.local_offset[1]) ? m.global_start[0] + r - m.local_offset[0]
                                                  : m.global_start[1] + r - m.local_offset[1];
}
// Query-key pairs the rank computes (causal: every query sees the keys at or before it).
static double causal_pairs(const PieceMap& m) {
  double p = 0;
  for (int j = 0; j < m.count; ++j) {
    const double g = m.global_start[j], len = m.length[j];
    p += len * (g + 1) + len * (len - 1) / 2;
  }
  return p;
}

// ---------------------------------------------------------------------------------------------------------
// Comparisons
// ---------------------------------------------------------------------------------------------------------
struct Err {
  double max_rel = 0, l2 = 0;
  bool finite = true;
  size_t worst = 0;
  float got = 0, ref = 0;
};

static Err compare(const std::vector<float>& got, const std::vector<float>& ref) {
  Err e;
  double md = 0, mr = 0, sd = 0, sr = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i]) || !std::isfinite(ref[i])) {
      if (e.finite) e.worst = i, e.got = got[i], e.ref = ref[i];
      e.finite = false;
      continue;
    }
    const double d = std::fabs((double)got[i] - (double)ref[i]);
    if (d > md && e.finite) e.worst = i, e.got = got[i], e.ref = ref[i];
    md = std::max(md, d);
    mr = std::max(mr, std::fabs((double)ref[i]));
    sd += d * d;
    sr += (double)ref[i] * ref[i];
  }
  e.max_rel = mr > 0 ? md / mr : (md > 0 ? INFINITY : 0.0);
  e.l2 = sr > 0 ? std::sqrt(sd / sr) : (sd > 0 ? INFINITY : 0.0);
  if (!e.finite) e.max_rel = e.l2 = NAN;
  return e;
}

// Element i of a [batch][N][heads][D] tensor.
static std::string element(size_t i, int N, int heads, int D) {
  const int e = (int)(i % D);
  i /= D;
  const int h = (int)(i % heads);
  i /= heads;
  char buf[96];
  std::snprintf(buf, sizeof buf, "b%d t%d h%d e%d", (int)(i / N), (int)(i % N), h, e);
  return buf;
}

// ---------------------------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------------------------
struct Case {
  int W;
  bool zigzag, causal;
  int D, Hkv, B, N;
  bool docs;
  int skew = 0;  // zigzag pieces of unequal length (rank_map)
  std::string name() const {
    char buf[160], layout[32];
    std::snprintf(layout, sizeof layout, "%s", zigzag ? "zigzag" : "contiguous");
    if (skew) std::snprintf(layout, sizeof layout, "zigzag-skew%d", skew);
    std::snprintf(buf, sizeof buf, "W%d/%s/%s/d%d/h16kv%d/b%d/N%d%s", W, layout, causal ? "causal" : "bidir", D,
                  Hkv, B, N, docs ? "/documents" : "");
    return buf;
  }
};

constexpr int kHeads = 16, kSmall = 2560, kMedium = 7168;

static std::vector<Case> check_cases() {
  std::vector<Case> v;
  const int worlds[3] = {2, 4, 8};
  for (int pass = 0; pass < (g_quick ? 1 : 2); ++pass)
    for (int w = 0; w < 3; ++w)
      for (int l = 0; l < 2; ++l)
        for (int c = 0; c < 2; ++c) {
          // Pairwise covering: each binary factor a parity of a different sum, all flipped in the second pass.
          const int f = pass;
          Case k;
          k.W = worlds[w], k.zigzag = l == 1, k.causal = c == 0;
          k.D = ((l + c + f) % 2) ? 64 : 128;
          k.Hkv = ((w + c + f) % 2) ? 16 : 8;
          k.B = ((w + l + f) % 2) ? 2 : 1;
          k.N = (!g_quick && (w + l + c + f) % 2) ? kMedium : kSmall;
          k.docs = false;
          v.push_back(k);
        }
  for (int l = 0; l < 2; ++l)
    for (int c = 0; c < 2; ++c) v.push_back(Case{4, l == 1, c == 0, 128, 8, 2, kSmall, true});
  // W 2 zigzag at batch 1 in both head dims, with and without GQA; then zigzag pieces of unequal length.
  const int n = g_quick ? kSmall : kMedium;
  for (int D : {64, 128})
    for (int Hkv : {8, 16}) v.push_back(Case{2, true, true, D, Hkv, 1, n, false});
  v.push_back(Case{2, true, true, 128, 8, 1, kSmall, false, 96});
  v.push_back(Case{4, true, true, 64, 16, 1, kSmall, false, 96});
  return v;
}

// Packed documents for a case: drawn (mean length 300 in batch row 0, 900 in row 1), and in row 0 also ends at
// every rank's piece edges.
static Documents case_documents(const Case& k, lasp::DocumentBuffers& buf) {
  lasp::alloc_documents(buf, k.B, k.N);
  for (int b = 0; b < k.B; ++b) {
    int* ends = buf.ends.data() + (size_t)b * k.N;
    lasp::draw_document_ends(k.N, k.N, b == 0 ? 300 : 900, (uint32_t)(g_seed + 7919u * b), ends);
    for (int r = 0; r < k.W && b == 0; ++r) {
      const PieceMap m = rank_map(k.W, r, k.zigzag, k.N, k.skew);
      for (int j = 0; j < m.count; ++j)
        for (int t : {m.global_start[j] - 1, m.global_start[j], m.global_start[j] + m.length[j] - 1})
          if (t >= 0 && t < k.N) ends[t] = 1;
    }
  }
  Documents d = lasp::upload_documents(buf, 0);
  CUDA_CHECK(cudaDeviceSynchronize());
  return d;
}

// One variant of the calls: a named backend, or the program's choice (program == true).
struct Variant {
  const char* name;
  bool program;
  Backend backend;
};

static bool cudnn_supported_all(const Case& k, bool* all) {
#ifdef LASP_WITH_CUDNN
  const auto t0 = std::chrono::steady_clock::now();
  bool ok = true;
  for (int r = 0; r < k.W; ++r) {
    const PieceMap m = rank_map(k.W, r, k.zigzag, k.N, k.skew);
    const SoftmaxDims d{k.B, rows_of(m), k.N, kHeads, k.Hkv, k.D};
    ok = ok && lasp::gathered::cudnn_supported(d, m, key_rows_of(m, k.causal, k.N), k.causal);
  }
  g_plan_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  *all = ok;
  return true;
#else
  (void)k;
  *all = false;
  return false;
#endif
}

static void run_case(const Case& k) {
  const std::string tag = k.name();
  std::vector<Variant> variants = {{"lasp", false, Backend::kLasp}, {"cudnn", false, Backend::kCudnn},
                                   {"program", true, Backend::kLasp}};
  if (k.docs) variants.erase(variants.begin() + 1);
  const char* env = std::getenv("LASP_SOFTMAX_BACKEND");
  const bool insist_cudnn = env != nullptr && std::strcmp(env, "cudnn") == 0;
  bool any = false;
  for (const Variant& v : variants) {
    if (g_list && selected(tag + "/" + v.name)) std::printf("%s/%s\n", tag.c_str(), v.name);
    any = any || selected(tag + "/" + v.name);
  }
  if (!any || g_list) return;

  const int B = k.B, N = k.N, H = kHeads, Hkv = k.Hkv, D = k.D;
  const size_t HD = (size_t)H * D, KD = (size_t)Hkv * D, nq = (size_t)B * N * HD, nk = (size_t)B * N * KD;
  lasp::DocumentBuffers dbuf;
  const Documents docs = k.docs ? case_documents(k, dbuf) : Documents{};
  Dev<bf16> q(nq), kk(nk), v(nk), dO(nq);
  fill_uniform(q, 11, 2.f);
  fill_uniform(kk, 12, 2.f);
  fill_uniform(v, 13, 1.f);
  fill_uniform(dO, 14, 1.f);
  std::vector<float> ro, rlse, rdq, rdk, rdv;
  {
    Dev<float> o(nq), lse((size_t)B * N * H), dq(nq), dk(nk), dv(nk);
    lasp::oracle_softmax_forward(q.p, kk.p, v.p, o.p, lse.p, B, N, H, Hkv, D, k.causal, docs, 0);
    lasp::oracle_softmax_backward(q.p, kk.p, v.p, dO.p, dq.p, dk.p, dv.p, B, N, H, Hkv, D, k.causal, docs, 0);
    ro = download(o), rlse = download(lse), rdq = download(dq), rdk = download(dk), rdv = download(dv);
  }

  bool cudnn_all = false;
  const bool cudnn_built = !k.docs && cudnn_supported_all(k, &cudnn_all);
  const int L = N / k.W;
  Dev<bf16> qL((size_t)B * L * HD), doL((size_t)B * L * HD), oL((size_t)B * L * HD), dqL((size_t)B * L * HD);
  Dev<bf16> kR(nk), vR(nk);
  Dev<float> lseL((size_t)B * L * H), dkL(nk), dvL(nk), sum_dk(nk), sum_dv(nk);
  Dev<bf16> go(nq), gdq(nq);
  Dev<unsigned long long> bad(1);

  for (const Variant& var : variants) {
    const std::string name = tag + "/" + var.name;
    if (!selected(name)) continue;
    if (var.program && k.docs && insist_cudnn) {  // the program would stop (exit 2): nothing to check
      report("SKIP", name, "(LASP_SOFTMAX_BACKEND=cudnn: the program stops with documents)");
      continue;
    }
    if (!var.program && var.backend == Backend::kCudnn && !cudnn_all) {
      report("SKIP", name, cudnn_built ? "(cuDNN cannot run some rank's calls on this GPU)" : "(built without cuDNN)");
      continue;
    }
    go.poison(), gdq.poison(), sum_dk.zero(), sum_dv.zero(), bad.zero();
    std::vector<float> glse((size_t)B * N * H, NAN);
    std::string chosen;
    for (int r = 0; r < k.W; ++r) {
      const PieceMap m = rank_map(k.W, r, k.zigzag, N, k.skew);
      const int rows = rows_of(m), key_rows = key_rows_of(m, k.causal, N);
      const SoftmaxDims d{B, rows, N, H, Hkv, D};
      for (int j = 0; j < m.count; ++j) {
        copy_rows(qL.p, rows, m.local_offset[j], q.p, N, m.global_start[j], m.length[j], B, HD);
        copy_rows(doL.p, rows, m.local_offset[j], dO.p, N, m.global_start[j], m.length[j], B, HD);
      }
      CUDA_CHECK(cudaMemcpyAsync(kR.p, kk.p, nk * sizeof(bf16), cudaMemcpyDeviceToDevice, 0));
      CUDA_CHECK(cudaMemcpyAsync(vR.p, v.p, nk * sizeof(bf16), cudaMemcpyDeviceToDevice, 0));
      if (key_rows < N)  // the rows no query of this rank sees: garbage the calls must not read
        for (bf16* x : {kR.p, vR.p})
          CUDA_CHECK(cudaMemset2DAsync(x + (size_t)key_rows * KD, (size_t)N * KD * sizeof(bf16), 0xFF,
                                       (size_t)(N - key_rows) * KD * sizeof(bf16), B, 0));
      oL.poison(), lseL.poison(), dqL.poison(), dkL.poison(), dvL.poison();

      lasp::SoftmaxGatheredArgs fa;
      fa.q = qL.p, fa.k = kR.p, fa.v = vR.p, fa.o = oL.p, fa.lse = lseL.p, fa.q_map = m, fa.key_rows = key_rows;
      fa.causal = k.causal, fa.docs = docs;
      lasp::SoftmaxGatheredBackwardArgs ba;
      ba.q = qL.p, ba.k = kR.p, ba.v = vR.p, ba.o = oL.p, ba.lse = lseL.p, ba.dout = doL.p, ba.dq = dqL.p;
      ba.dk = dkL.p, ba.dv = dvL.p, ba.q_map = m, ba.key_rows = key_rows, ba.causal = k.causal, ba.docs = docs;
      bool cudnn_layout = var.backend == Backend::kCudnn;
      if (var.program) {
        const char* b = lasp::softmax_gathered_backend(d, m, key_rows, k.causal, docs.any());
        cudnn_layout = std::strncmp(b, "cudnn", 5) == 0;
        if (chosen.find(b) == std::string::npos) chosen += std::string(chosen.empty() ? "" : ",") + b;
        lasp::softmax_gathered_forward(fa, d, 0);
        lasp::softmax_gathered_backward(ba, d, 0);
      } else {
        lasp::gathered::forward(var.backend, fa, d, 0);
        lasp::gathered::backward(var.backend, ba, d, 0);
      }
      for (int j = 0; j < m.count; ++j) {
        copy_rows(go.p, N, m.global_start[j], oL.p, rows, m.local_offset[j], m.length[j], B, HD);
        copy_rows(gdq.p, N, m.global_start[j], dqL.p, rows, m.local_offset[j], m.length[j], B, HD);
      }
      const std::vector<float> l = download(lseL);
      for (int b = 0; b < B; ++b)
        for (int i = 0; i < rows; ++i)
          for (int h = 0; h < H; ++h)
            glse[((size_t)b * N + position(m, i)) * H + h] =
                cudnn_layout ? l[((size_t)b * H + h) * rows + i] : l[((size_t)b * rows + i) * H + h];
      add_kernel<<<1024, 256>>>(sum_dk.p, dkL.p, nk);
      add_kernel<<<1024, 256>>>(sum_dv.p, dvL.p, nk);
      LAUNCH_CHECK();
      if (key_rows < N) {
        count_nonzero_kernel<<<1024, 256>>>(dkL.p, B, N, KD, key_rows, bad.p);
        count_nonzero_kernel<<<1024, 256>>>(dvL.p, B, N, KD, key_rows, bad.p);
        LAUNCH_CHECK();
      }
    }
    CUDA_CHECK(cudaDeviceSynchronize());

    struct Q {
      const char* name;
      Err e;
      int heads;
    };
    std::vector<Q> qs = {{"o", compare(download(go), ro), H},
                         {"dq", compare(download(gdq), rdq), H},
                         {"dk", compare(download(sum_dk), rdk), Hkv},
                         {"dv", compare(download(sum_dv), rdv), Hkv}};
    double lse_err = 0;
    bool lse_finite = true;
    size_t lse_worst = 0;
    for (size_t i = 0; i < glse.size(); ++i) {
      if (!std::isfinite(glse[i]) || !std::isfinite(rlse[i])) {
        if (lse_finite) lse_worst = i;
        lse_finite = false;
        continue;
      }
      const double e = std::fabs((double)glse[i] - rlse[i]);
      if (e > lse_err && lse_finite) lse_worst = i;
      lse_err = std::max(lse_err, e);
    }
    const unsigned long long nonzero = (unsigned long long)download(bad)[0];

    bool ok = lse_finite && lse_err <= g_lse_tol && nonzero == 0;
    std::string detail, fails;
    char buf[256];
    for (const Q& x : qs) {
      const bool good = x.e.max_rel <= g_tol && x.e.l2 <= g_l2_tol;  // NaN fails
      ok = ok && good;
      std::snprintf(buf, sizeof buf, " %s %.2e/%.2e", x.name, x.e.max_rel, x.e.l2);
      detail += buf;
      if (!good) {
        std::snprintf(buf, sizeof buf, " [%s worst %s: got %.6g ref %.6g]", x.name,
                      element(x.e.worst, N, x.heads, D).c_str(), x.e.got, x.e.ref);
        fails += buf;
      }
    }
    std::snprintf(buf, sizeof buf, " lse %.2e", lse_finite ? lse_err : NAN);
    detail += buf;
    if (!(lse_finite && lse_err <= g_lse_tol)) {
      const size_t i = lse_worst;
      std::snprintf(buf, sizeof buf, " [lse worst b%d t%d h%d: got %.6g ref %.6g]", (int)(i / H / N),
                    (int)(i / H % N), (int)(i % H), glse[i], rlse[i]);
      fails += buf;
    }
    if (nonzero) {
      std::snprintf(buf, sizeof buf, " [%llu dk/dv elements past key_rows are not 0]", nonzero);
      fails += buf;
    }
    if (!chosen.empty()) detail += " backend " + chosen;
    std::snprintf(buf, sizeof buf, "(max err/l2; tol %.0e/%.0e, lse %.0e abs):", g_tol, g_l2_tol, g_lse_tol);
    report(ok ? "PASS" : "FAIL", name, buf + detail + fails);
  }
  if (k.docs) lasp::free_documents(dbuf);
}

static void run_checks() {
  for (const Case& k : check_cases()) run_case(k);
}

// ---------------------------------------------------------------------------------------------------------
// The bench
// ---------------------------------------------------------------------------------------------------------
struct Times {
  double fwd = 0, bwd = 0, fb = 0;  // ms
};

struct Row {
  int N, W;
  std::string layout, backend;
  Times slowest;         // the slowest rank's (each pass on its own)
  Times sum;             // summed over ranks
  double flops_fwd = 0;  // summed over ranks (backward 2.5x, fwd+bwd 3.5x)
  double worst_fb_rate = INFINITY;  // the lowest rank fwd+bwd throughput, FLOP/ms
};

static void bench(const std::vector<int>& tokens, const std::vector<int>& worlds, int runs) {
  const int B = 1, H = 16, Hkv = g_bench_kv_heads, D = 128;
  const size_t HD = (size_t)H * D, KD = (size_t)Hkv * D;
  std::vector<Row> rows;
  std::vector<std::pair<int, std::pair<Times, Times>>> wholes;  // N -> (cuDNN, lasp); cuDNN NaN where absent
  for (int N : tokens) {
    const size_t nq = (size_t)B * N * HD, nk = (size_t)B * N * KD;
    Dev<bf16> q(nq), k(nk), v(nk), dO(nq);
    fill_uniform(q, 21, 2.f);
    fill_uniform(k, 22, 2.f);
    fill_uniform(v, 23, 1.f);
    fill_uniform(dO, 24, 1.f);
    const double whole_fwd = 4.0 * D * H * B * ((double)N * (N + 1) / 2);

    // The whole sequence on one GPU.
    Times wc{NAN, NAN, NAN}, wl{NAN, NAN, NAN};
    {
      const SoftmaxDims d{B, N, N, H, Hkv, D};
      Dev<bf16> o(nq), dq(nq), dk(nk), dv(nk);
      Dev<float> lse((size_t)B * N * H);
#ifdef LASP_WITH_CUDNN
      const lasp::CudnnSdpaShape s = lasp::whole::shape_of(d, true);
      if (g_bench_backend != "lasp" && lasp::cudnn_sdpa_supported(s)) {
        auto f = [&] { lasp::cudnn_sdpa_forward(s, q.p, k.p, v.p, o.p, lse.p, 0); };
        auto b = [&] { lasp::cudnn_sdpa_backward(s, q.p, k.p, v.p, o.p, dO.p, lse.p, dq.p, dk.p, dv.p, 0); };
        f();
        wc.fwd = time_ms(f, runs), wc.bwd = time_ms(b, runs), wc.fb = time_ms([&] { f(), b(); }, runs);
      }
#endif
      const PieceMap id{0, {0, 0}, {0, 0}, {0, 0}};
      auto f = [&] {
        lasp::smx::block_forward(lasp::smx::default_forward_kernel(D), q.p, k.p, v.p, d, id, id, true, nullptr,
                                 lse.p, o.p, 0);
      };
      auto b = [&] {
        lasp::smx::full_backward(lasp::smx::default_backward_kernel(D), q.p, k.p, v.p, o.p, lse.p, dO.p, d, true,
                                 dq.p, dk.p, dv.p, 0);
      };
      if (g_bench_backend != "cudnn") {
        f();
        wl.fwd = time_ms(f, runs), wl.bwd = time_ms(b, runs), wl.fb = time_ms([&] { f(), b(); }, runs);
      }
      for (auto [name, t] : {std::make_pair("cudnn", wc), std::make_pair("lasp", wl)})
        std::printf("WHOLE %d %s fwd %.3f bwd %.3f fwdbwd %.3f ms  (%.0f / %.0f / %.0f TFLOP/s)\n", N, name, t.fwd,
                    t.bwd, t.fb, whole_fwd / t.fwd * 1e-9, 2.5 * whole_fwd / t.bwd * 1e-9,
                    3.5 * whole_fwd / t.fb * 1e-9);
      std::fflush(stdout);
      wholes.push_back({N, {wc, wl}});
    }

    for (int W : worlds) {
      const int L = N / W;
      Dev<bf16> qL((size_t)B * L * HD), doL((size_t)B * L * HD), oL((size_t)B * L * HD), dqL((size_t)B * L * HD);
      Dev<float> lseL((size_t)B * L * H), dkL(nk), dvL(nk);
      for (bool zigzag : {true, false}) {
        Case c{W, zigzag, true, D, Hkv, B, N, false};
        bool cudnn_all = false;
        cudnn_supported_all(c, &cudnn_all);
        for (Backend backend : {Backend::kLasp, Backend::kCudnn}) {
          const char* bname = backend == Backend::kLasp ? "lasp" : "cudnn";
          if (!g_bench_backend.empty() && g_bench_backend != bname) continue;
          if (backend == Backend::kCudnn && !cudnn_all) {
            std::printf("RANK %d %d %s cudnn: not run (%s)\n", N, W, zigzag ? "zigzag" : "contiguous",
#ifdef LASP_WITH_CUDNN
                        "cuDNN cannot run some rank's calls"
#else
                        "built without cuDNN"
#endif
            );
            continue;
          }
          Row row{N, W, zigzag ? "zigzag" : "contiguous", bname, {}, {}, 0, INFINITY};
          for (int r = 0; r < W; ++r) {
            const PieceMap m = rank_map(W, r, zigzag, N);
            const int qr = rows_of(m), key_rows = key_rows_of(m, true, N);
            const SoftmaxDims d{B, qr, N, H, Hkv, D};
            for (int j = 0; j < m.count; ++j) {
              copy_rows(qL.p, qr, m.local_offset[j], q.p, N, m.global_start[j], m.length[j], B, HD);
              copy_rows(doL.p, qr, m.local_offset[j], dO.p, N, m.global_start[j], m.length[j], B, HD);
            }
            lasp::SoftmaxGatheredArgs fa;
            fa.q = qL.p, fa.k = k.p, fa.v = v.p, fa.o = oL.p, fa.lse = lseL.p, fa.q_map = m, fa.key_rows = key_rows;
            lasp::SoftmaxGatheredBackwardArgs ba;
            ba.q = qL.p, ba.k = k.p, ba.v = v.p, ba.o = oL.p, ba.lse = lseL.p, ba.dout = doL.p, ba.dq = dqL.p;
            ba.dk = dkL.p, ba.dv = dvL.p, ba.q_map = m, ba.key_rows = key_rows;
            auto f = [&] { lasp::gathered::forward(backend, fa, d, 0); };
            auto b = [&] { lasp::gathered::backward(backend, ba, d, 0); };
            f();
            Times t;
            t.fwd = time_ms(f, runs), t.bwd = time_ms(b, runs), t.fb = time_ms([&] { f(), b(); }, runs);
            const double fl = 4.0 * D * H * B * causal_pairs(m);
            std::printf("RANK %d %d %s %s %d pairs %.0f fwd %.3f bwd %.3f fwdbwd %.3f ms  (%.0f / %.0f / %.0f "
                        "TFLOP/s)\n",
                        N, W, row.layout.c_str(), bname, r, causal_pairs(m), t.fwd, t.bwd, t.fb,
                        fl / t.fwd * 1e-9, 2.5 * fl / t.bwd * 1e-9, 3.5 * fl / t.fb * 1e-9);
            std::fflush(stdout);
            row.slowest.fwd = std::max(row.slowest.fwd, t.fwd);
            row.slowest.bwd = std::max(row.slowest.bwd, t.bwd);
            row.slowest.fb = std::max(row.slowest.fb, t.fb);
            row.sum.fwd += t.fwd, row.sum.bwd += t.bwd, row.sum.fb += t.fb;
            row.flops_fwd += fl;
            row.worst_fb_rate = std::min(row.worst_fb_rate, 3.5 * fl / t.fb);
          }
          rows.push_back(row);
        }
      }
    }
  }

  const bool whole_cudnn = !wholes.empty() && !std::isnan(wholes[0].second.first.fb);
  std::printf("\nbench: causal, batch %d, %d heads x %d, %d kv heads; per-rank medians of %d runs; TFLOP/s of all "
              "ranks together (FLOPs / summed times); vs whole = that / the whole sequence's %s TFLOP/s; "
              "cuDNN plans: %.1f s of support checks\n",
              B, H, D, Hkv, runs, whole_cudnn ? "cuDNN" : "lasp (no cuDNN here)", g_plan_s);
  std::printf("| tokens | W | layout | backend | fwd ms (slowest rank) | bwd ms | fwd+bwd ms | fwd TFLOP/s | bwd TFLOP/s "
              "| fwd+bwd TFLOP/s | vs whole fwd | vs whole bwd | vs whole fwd+bwd | worst rank fwd+bwd vs whole |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& [N, w] : wholes) {
    const double fl = 4.0 * D * H * B * ((double)N * (N + 1) / 2);
    const Times& c = whole_cudnn ? w.first : w.second;
    for (auto [name, t] : {std::make_pair("cudnn", w.first), std::make_pair("lasp", w.second)})
      if (!std::isnan(t.fb))
        std::printf("| %d | 1 | whole | %s | %.3f | %.3f | %.3f | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f | - |\n", N,
                    name, t.fwd, t.bwd, t.fb, fl / t.fwd * 1e-9, 2.5 * fl / t.bwd * 1e-9, 3.5 * fl / t.fb * 1e-9,
                    c.fwd / t.fwd, c.bwd / t.bwd, c.fb / t.fb);
    for (const Row& r : rows) {
      if (r.N != N) continue;
      const double rf = r.flops_fwd / r.sum.fwd, rb = 2.5 * r.flops_fwd / r.sum.bwd, rfb = 3.5 * r.flops_fwd / r.sum.fb;
      const double cf = fl / c.fwd, cb = 2.5 * fl / c.bwd, cfb = 3.5 * fl / c.fb;
      std::printf("| %d | %d | %s | %s | %.3f | %.3f | %.3f | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f |\n", N,
                  r.W, r.layout.c_str(), r.backend.c_str(), r.slowest.fwd, r.slowest.bwd, r.slowest.fb, rf * 1e-9,
                  rb * 1e-9, rfb * 1e-9, rf / cf, rb / cb, rfb / cfb, r.worst_fb_rate / cfb);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
static int usage(const char* self) {
  std::fprintf(stderr,
               "usage: %s [--seed N] [--tol X] [--l2-tol X] [--lse-tol X] [--quick] [--filter TEXT] [--list]\n"
               "       %s --bench [--quick] [--runs N] [--tokens N ...] [--worlds W ...] [--backend lasp|cudnn]\n"
               "               [--kv-heads 1|2|4|8|16]\n",
               self, self);
  return 2;
}

int main(int argc, char** argv) {
  bool do_bench = false;
  int runs = 5;
  std::vector<int> tokens, worlds;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    auto ints = [&](std::vector<int>& out) {
      while (i + 1 < argc && argv[i + 1][0] != '-') out.push_back(std::atoi(argv[++i]));
      return !out.empty();
    };
    const char* x = nullptr;
    if (a == "--bench") do_bench = true;
    else if (a == "--quick") g_quick = true;
    else if (a == "--list") g_list = true;
    else if (a == "--seed" && (x = next())) g_seed = std::strtoull(x, nullptr, 10);
    else if (a == "--tol" && (x = next())) g_tol = std::atof(x);
    else if (a == "--l2-tol" && (x = next())) g_l2_tol = std::atof(x);
    else if (a == "--lse-tol" && (x = next())) g_lse_tol = std::atof(x);
    else if (a == "--filter" && (x = next())) g_filter = x;
    else if (a == "--runs" && (x = next())) runs = std::max(1, std::atoi(x));
    else if (a == "--backend" && (x = next()) && (std::string(x) == "lasp" || std::string(x) == "cudnn"))
      g_bench_backend = x;
    else if (a == "--kv-heads" && (x = next()) && std::atoi(x) > 0 && 16 % std::atoi(x) == 0)
      g_bench_kv_heads = std::atoi(x);
    else if (a == "--tokens" && ints(tokens)) continue;
    else if (a == "--worlds" && ints(worlds)) continue;
    else return usage(argv[0]);
  }
  for (int W : worlds)
    for (int N : tokens)
      if (W < 1 || N % (2 * W) != 0) {
        std::fprintf(stderr, "--tokens %d is not a multiple of 2 x --worlds %d\n", N, W);
        return 2;
      }
  if (g_list) {
    for (const Case& k : check_cases()) run_case(k);
    return 0;
  }
  int dev = 0;
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  std::printf("GPU %s (sm_%d%d), cuDNN %s, LASP_SOFTMAX_BACKEND=%s, seed %llu\n", prop.name, prop.major, prop.minor,
#ifdef LASP_WITH_CUDNN
              lasp::backend::cudnn_version_name(),
#else
              "not built in",
#endif
              std::getenv("LASP_SOFTMAX_BACKEND") ? std::getenv("LASP_SOFTMAX_BACKEND") : "(unset)",
              (unsigned long long)g_seed);
  if (do_bench) {
    if (tokens.empty()) tokens = g_quick ? std::vector<int>{16384} : std::vector<int>{16384, 65536};
    if (worlds.empty()) worlds = g_quick ? std::vector<int>{2, 8} : std::vector<int>{2, 4, 8};
    bench(tokens, worlds, g_quick ? std::min(runs, 3) : runs);
    return 0;
  }
  const auto t0 = std::chrono::steady_clock::now();
  run_checks();
  std::printf("CHECKS %d passed, %d failed, %d skipped (%.0f s; cuDNN support checks %.1f s)\n", g_pass, g_fail,
              g_skip, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), g_plan_s);
  return g_fail ? 1 : 0;
}
