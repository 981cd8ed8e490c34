// Packed documents (issue 19, docs/DOCUMENTS.md): the document-aware attention kernels against the dense oracles,
// on one GPU, and their cost beside `documents none`.
//
//   bash bench/gpu/run-documents.sh                       (builds into a copy of templates/runtime, checks, bench)
//   documents_check [--seed N] [--tol X] [--doc-tol X] [--quick] [--filter TEXT] [--list]
//   documents_check --bench [--runs N]                    (1 GPU, batch 1, 64K tokens, 16 heads x 128)
// --quick leaves out the 16K-token shape; --filter runs the check groups whose name contains TEXT (a reported
// line's name is its group's plus a suffix: /fwd, /bwd, /intra, /state, ...; e.g. --filter fallback, --filter
// /N768/); --list prints the groups and needs no GPU. Compile with -DDOCUMENTS_CHECK_NO_SCAN to leave out the
// product's scans (linear_document_scan.cuh).
//
// Built as kernels.cu is (run-documents.sh): the generated kernels.h (templates/kernels.h.hbs less its first line)
// and the runtime headers from a copy of templates/runtime/ under lasp/, without cuDNN. LASP_SOFTMAX_BACKEND is
// set to "lasp" before the first call, so softmax_whole_* run lasp's kernels whatever the environment says.
//
// Checks (one line each: "PASS|FAIL name err=... doc_err=..."; exit 1 on any failure):
// - oracle/*: the dense fp32 oracles (linear_oracle.cuh, softmax_oracle.cuh) with and without documents against
//   a float64 CPU computation of the masked definition (200 tokens, ends at a block's first and last token, runs
//   of 1-token documents, an end at the last token), linear with a decay per head, causal and bidirectional,
//   softmax with GQA; and oracle_linear_*_rows against the whole oracle.
// - linear/*: a LASP-2 rank's calls, piece by piece, over 4 pieces of the sequence (each piece in its own
//   rank buffer of 2 pieces' rows, at local offset 0 or C, global position t*C):
//     forward  linear_state (M, flag) -> P by the affine scan below -> linear_forward_fused(p), and separately
//              linear_intra + linear_inter(p);
//     backward linear_grad_state (dM, flag) -> G by the mirrored scan -> linear_backward_fused(p, g), and
//              separately linear_intra_backward + linear_dq_inter(p) + linear_dkdv_inter(g);
//   each without and with the shared workspaces (kv_ws, qdo_ws of linear_state_workspace_bytes); the product's
//   scans (linear_document_scan, linear_document_ring_step) against the host's below; and the whole
//   sequence as one piece (linear.full: intra and its backward, and the fused pair from the state calls'
//   workspaces). o, dq, dk, dv against the oracle over the whole sequence; the flags of both state calls exactly
//   (1.0f iff an end lies in the piece). Decay none (lam = nullptr, i.e. 1) and a decay per head (< 1).
//   Causal with every document case. Bidirectional (no decay: lam = nullptr) with every case too: with
//   `documents none` P and G are the sums of the other pieces' states; with documents (docs/DOCUMENTS.md
//   "Bidirectional linear attention") linear_state also writes the piece's head (its first document's part; M
//   is its last document's part, the tail) and linear_grad_state its gradient tail (dM the gradient head), the
//   host scans them as below into P, after, G, before, and the calls take linear_forward_fused(p, after),
//   linear_inter(p, after), linear_backward_fused(p, after, g, before), linear_dq_inter(p, after),
//   linear_dkdv_inter(g, before) (the fused calls nullptr at the edges, the split ones zeros); the four states
//   of every piece against float64 ones (states, up to 4096 tokens; dM not where it is unread: piece 0 and after
//   an end at the piece's position - 1) and the product's scans of all four (scan/prefix, scan/after,
//   scan/suffix, scan/before).
// - softmax/*: softmax_whole_forward / _backward over the whole sequence; LASP-2H's blocks: 4 ranks of one piece,
//   softmax_block_forward against each rank's keys, softmax_merge of the 4 partials, softmax_block_backward
//   into fp32 accumulators; and zigzag, 2 ranks of 2 pieces (PieceMap count 2). Causal and bidirectional, GQA.
//   These are the product's calls, so the default kernels (on Hopper fwd_ws / bwd_ws at d 128, mma.sync at
//   d 64). The fallbacks at d 128, named through smx::block_forward / block_backward / full_backward, run the
//   whole sequence and the zigzag ranks the same way in the groups .../whole/fallback-wgmma and
//   .../zigzag2/fallback-wgmma (fwd_wgmma_pipe_kernel, bwd_wgmma_kernel) and .../fallback-mma_sync (fwd_kernel,
//   bwd_kernel at d 128), on the sequences of 2048, 768 and 1280 tokens, every document case. (At d 64 every
//   kernel choice runs mma.sync, the default: no fallback to check.)
// Document cases (batch 2, the two rows always different): none (docs.any() false), no-ends (documents given,
// no end anywhere), ends drawn by draw_document_ends (means 40, 100, 700; larger sequences 100, 3000), ends at
// every piece's first token, at every piece's last token (also the sequence's last), runs of consecutive ends
// across a piece's edge and a block's edges, documents shorter than a block, every block's first / last token,
// one row without ends beside one with a few, and (larger pieces) ends around the walk's segment edges.
// Shapes: head dims 64 and 128, 4 heads (softmax: 2 kv heads at d 128, 1 at d 64), pieces of 512 tokens
// (sequence 2048), and for head dim 128 also pieces of 4096 (sequence 16384: several blocks per walk segment).
// Softmax only, pieces of an odd number of 64-token blocks, 192 (sequence 768) and 320 (sequence 1280), head
// dims 64 and 128: a zigzag rank's 128-row query tiles (and the 128-key tiles of the wgmma kernels) straddle its
// two pieces, and blocks4's ranks end in half a tile; their documents add ends at every tile edge of either
// zigzag rank (tile-edges) and documents across rank 0's gap between pieces 0 and 3 (gap).
//
// Errors: err = max|got - ref| / max|ref| over the whole tensor (verify's measure; --tol, default 1e-2, the
// kernel harnesses' bar for bf16 outputs; verify's own is 2e-2), and doc_err = the same per (batch row,
// document), max|got - ref| over the document's rows / max(its max|ref|, 1e-2 max|ref| of the tensor),
// maximised over documents (--doc-tol, default 5e-2): a term lost or leaked in a short document is small beside
// the largest output of a long one, so the global measure alone could miss it (the floor keeps a document
// whose exact result is ~0, e.g. softmax's dq of a 1-token document, from failing on rounding noise). A FAIL
// line names the worst element (batch, position, head, element) with its value and the reference, overall and
// in the worst document. Checks of fp32 results against float64 (oracle/*, scans) use 1e-4 for both.
//
// The prefix scan across pieces (docs/DOCUMENTS.md "Across pieces"), done here on the host in float64 from the
// downloaded states, independently of the product's (linear_document_scan.cuh, checked against it):
//   c_u = 0 if piece u holds an end, else lam_h^C          (lam = nullptr: 1)
//   P_0 = 0,       P_t = c_{t-1} P_{t-1} + M_{t-1}         (forward)
//   G_last = 0,    G_t = c_{t+1} G_{t+1} + dM_{t+1}        (backward)
// with the flags computed on the host from the ends (the kernels' flags are checked separately, exactly).
// Bidirectional with documents (lam = 1, so c_u = 0 or 1): P_t as above from the tails M (linear_state's m),
// after_t the backward form from the heads (head), G_t as above from the gradient heads dM, and before_t the
// forward form from the gradient tails (linear_grad_state's tail). Without documents, P_t and G_t are the sums
// of the other pieces' M and dM.
//
// Bench (--bench): batch 1, 65536 tokens, 16 heads x 128, per-head decay: linear_state, linear_forward_fused,
// linear_backward_fused over the whole sequence as one piece, and softmax_whole_forward / _backward (causal and
// bidirectional), each with documents of mean length 2048 (draw_document_ends) and with none; median of --runs
// (default 15) CUDA-event timings after 3 warm-ups; a table with the ratio docs / none.
#include "lasp/kernels.h"
#include "lasp/linear_attention.cuh"
#include "lasp/linear_oracle.cuh"
#include "lasp/softmax_attention.cuh"
#include "lasp/softmax_whole.cuh"
#include "lasp/softmax_support.cuh"
#include "lasp/softmax_oracle.cuh"
#include "lasp/step_documents.cuh"  // DocumentBuffers, upload_documents (documents.cuh: the host builder)
#ifndef DOCUMENTS_CHECK_NO_SCAN
#include "lasp/linear_document_scan.cuh"
#endif
#include "bench_fill.cuh"  // fill_uniform_kernel (run-documents.sh copies it beside this file)

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

using lasp::bf16;
using lasp::Documents;
using lasp::LinearDims;
using lasp::Piece;
using lasp::PieceMap;
using lasp::SoftmaxDims;

// ---------------------------------------------------------------------------------------------------------
// Options, results
// ---------------------------------------------------------------------------------------------------------
static uint64_t g_seed = 20261207;
static double g_tol = 1e-2, g_doc_tol = 5e-2;
static bool g_quick = false, g_list = false;
static std::string g_filter;
static int g_pass = 0, g_fail = 0;

static bool selected(const std::string& name) {
  return g_filter.empty() || name.find(g_filter) != std::string::npos;
}

static void report(bool ok, const std::string& name, const std::string& detail) {
  (ok ? g_pass : g_fail)++;
  std::printf("%s %s %s\n", ok ? "PASS" : "FAIL", name.c_str(), detail.c_str());
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
  explicit Dev(size_t count) { alloc(count); }
  void alloc(size_t count) {
    release();
    n = count;
    CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(count, 1) * sizeof(T)));
  }
  void release() {
    if (p) CUDA_CHECK(cudaFree(p));
    p = nullptr;
    n = 0;
  }
  ~Dev() {
    if (p) cudaFree(p);
  }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  Dev(Dev&& o) noexcept : p(o.p), n(o.n) {
    o.p = nullptr;
    o.n = 0;
  }
  void poison(cudaStream_t s) { CUDA_CHECK(cudaMemsetAsync(p, 0xFF, n * sizeof(T), s)); }  // NaN, bf16 and fp32
  void zero(cudaStream_t s) { CUDA_CHECK(cudaMemsetAsync(p, 0, n * sizeof(T), s)); }
};

static void fill_uniform(Dev<bf16>& x, uint64_t salt, float scale, cudaStream_t s) {
  fill_uniform_kernel<<<1024, 256, 0, s>>>(x.p, x.n, g_seed * 1000003ull + salt, scale);
  LAUNCH_CHECK();
}

template <typename T>
static std::vector<float> download(const T* p, size_t n, cudaStream_t s) {
  std::vector<T> t(n);
  CUDA_CHECK(cudaMemcpyAsync(t.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  std::vector<float> h(n);
  for (size_t i = 0; i < n; ++i) {
    if constexpr (std::is_same<T, bf16>::value) h[i] = __bfloat162float(t[i]);
    else h[i] = (float)t[i];
  }
  return h;
}
template <typename T>
static std::vector<float> download(const Dev<T>& d, cudaStream_t s) {
  return download(d.p, d.n, s);
}

static void upload_f32(float* dst, const std::vector<float>& h, cudaStream_t s) {
  CUDA_CHECK(cudaMemcpyAsync(dst, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice, s));
  CUDA_CHECK(cudaStreamSynchronize(s));  // h may go out of scope
}
static void upload_bf16(bf16* dst, const std::vector<float>& h, cudaStream_t s) {
  std::vector<bf16> t(h.size());
  for (size_t i = 0; i < h.size(); ++i) t[i] = __float2bfloat16_rn(h[i]);
  CUDA_CHECK(cudaMemcpyAsync(dst, t.data(), t.size() * sizeof(bf16), cudaMemcpyHostToDevice, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
}

// rows [src_row, src_row + rows) of src ([batch][src_T][width]) to rows from dst_row of dst ([batch][dst_T][width]).
template <typename T>
static void copy_rows(T* dst, int dst_T, int dst_row, const T* src, int src_T, int src_row, int rows, int batch,
                      size_t width, cudaStream_t s) {
  CUDA_CHECK(cudaMemcpy2DAsync(dst + (size_t)dst_row * width, (size_t)dst_T * width * sizeof(T),
                               src + (size_t)src_row * width, (size_t)src_T * width * sizeof(T),
                               (size_t)rows * width * sizeof(T), batch, cudaMemcpyDeviceToDevice, s));
}

// ---------------------------------------------------------------------------------------------------------
// Documents: the cases
// ---------------------------------------------------------------------------------------------------------
struct DocCase {
  std::string name;
  bool any = false;       // false: documents none (Documents{}), ends all 0
  std::vector<int> ends;  // [batch][N]
};

static DocCase doc_none(int B, int N) {
  DocCase c;
  c.name = "none";
  c.ends.assign((size_t)B * N, 0);
  return c;
}

// Ends given per batch row as lists of positions (those outside [0, N) are dropped).
static DocCase doc_lists(const std::string& name, int B, int N, const std::vector<std::vector<int>>& rows) {
  DocCase c;
  c.name = name;
  c.any = true;
  c.ends.assign((size_t)B * N, 0);
  for (int b = 0; b < B; ++b)
    for (int t : rows[b % rows.size()])
      if (t >= 0 && t < N) c.ends[(size_t)b * N + t] = 1;
  return c;
}

static DocCase doc_drawn(int B, int N, int mean, uint32_t seed) {
  DocCase c;
  c.name = "drawn" + std::to_string(mean);
  c.any = true;
  c.ends.assign((size_t)B * N, 0);
  for (int b = 0; b < B; ++b) lasp::draw_document_ends(N, N, mean, seed + 7919u * (uint32_t)b, &c.ends[(size_t)b * N]);
  return c;
}

static std::vector<int> range_step(int from, int to, int step) {
  std::vector<int> v;
  for (int t = from; t < to; t += step) v.push_back(t);
  return v;
}
static std::vector<int> join(std::vector<int> a, const std::vector<int>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The hand-made cases for a sequence of 4 pieces of C tokens (C a multiple of 64, at least 192).
static std::vector<DocCase> hand_cases(int B, int N, int C) {
  std::vector<DocCase> v;
  v.push_back(doc_lists("no-ends", B, N, {{}, {}}));
  v.push_back(doc_lists("piece-first", B, N, {{0, C, 2 * C, 3 * C}, {2 * C, 3 * C}}));
  v.push_back(doc_lists("piece-last", B, N, {{C - 1, 2 * C - 1, 3 * C - 1, N - 1}, {C - 1, 3 * C - 1}}));
  v.push_back(doc_lists("consecutive", B, N,
                        {join({C - 2, C - 1, C, C + 1}, range_step(2 * C + 30, 2 * C + 36, 1)),
                         join(join({63, 64, 65, 3 * C - 1, 3 * C}, range_step(100, 141, 1)), {N - 3, N - 2, N - 1})}));
  v.push_back(doc_lists("short", B, N,
                        {join(range_step(C / 2, C + C / 2, 17), range_step(2 * C + 100, 2 * C + 200, 5)),
                         range_step(30, N, 31)}));
  v.push_back(doc_lists("block-edges", B, N, {range_step(63, N, 64), range_step(0, N, 64)}));
  v.push_back(doc_lists("one-row", B, N, {{}, {C + 100, 3 * C + 7}}));
  return v;
}

// Zigzag ranks (rank 0 pieces 0 and 3, rank 1 pieces 1 and 2, C tokens each, at local rows 0 and C) whose C is
// an odd multiple of 64, so the 128-row tiles straddle the rank's two pieces: ends at the global positions of
// every tile edge (local rows 127 and 128, 255 and 256, ...) of rank 0 (batch row 0) and of rank 1 (batch row 1);
// and documents across rank 0's gap (pieces 0 and 3 are not adjacent): row 0 one document from C/2 + 1 to
// 3C + C/2 (every row of rank 0's straddling tile in it, rank 1's pieces inside it), row 1 one from C - 29 to
// 3C + 20 with both ends inside rank 0's straddling tile (C >= 192), then another end further in piece 3.
static std::vector<DocCase> zigzag_cases(int B, int N, int C) {
  auto global = [&](int rank, int r) { return r < C ? (rank ? C : 0) + r : (rank ? 2 * C : 3 * C) + (r - C); };
  std::vector<int> e0, e1;
  for (int r = 128; r < 2 * C; r += 128)
    for (int x : {r - 1, r}) {
      e0.push_back(global(0, x));
      e1.push_back(global(1, x));
    }
  std::vector<DocCase> v;
  v.push_back(doc_lists("tile-edges", B, N, {e0, e1}));
  v.push_back(doc_lists("gap", B, N, {{C / 2, 3 * C + C / 2}, {C - 30, 3 * C + 20, 3 * C + 100}}));
  return v;
}

// The walk's segments at pieces of 4096 tokens are 128 or 256 tokens (plan_shared): ends around their edges.
static DocCase doc_segment_edges(int B, int N) {
  std::vector<int> a, b;
  for (int t = 128; t < N; t += 256) a.push_back(t - 1);
  for (int t = 256; t < N; t += 512) {
    b.push_back(t);
    b.push_back(t + 1);
  }
  return doc_lists("segment-edges", B, N, {a, b});
}

// The device view of a case (none: Documents{}); the buffers live in `buf`.
static Documents upload_case(const DocCase& c, int B, int N, lasp::DocumentBuffers& buf, cudaStream_t s) {
  if (!c.any) return Documents{};
  lasp::alloc_documents(buf, B, N);
  buf.ends = c.ends;
  Documents d = lasp::upload_documents(buf, s);
  CUDA_CHECK(cudaStreamSynchronize(s));
  return d;
}

// first[] of every token (host), for the per-document error.
static std::vector<int> firsts_of(const DocCase& c, int B, int N) {
  std::vector<int> first((size_t)B * N), last((size_t)B * N);
  lasp::document_ranges(c.ends.data(), B, N, first.data(), last.data());
  return first;
}

// The document of every token counted from the ends alone (the number of ends before it), for the CPU
// references: independent of document_ranges, which the kernels' and oracles' first[] and last[] come from.
static std::vector<int> doc_ids(const DocCase& c, int B, int N) {
  std::vector<int> id;
  if (!c.any) return id;
  id.resize((size_t)B * N);
  for (int b = 0; b < B; ++b) {
    int n = 0;
    for (int t = 0; t < N; ++t) {
      id[(size_t)b * N + t] = n;
      n += c.ends[(size_t)b * N + t] != 0;
    }
  }
  return id;
}

static int count_docs(const DocCase& c, int B, int N) {
  int n = 0;
  for (int b = 0; b < B; ++b) {
    int e = 0;
    for (int t = 0; t < N - 1; ++t) e += c.ends[(size_t)b * N + t] != 0;
    n += e + 1;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------------------------------------
struct Cmp {
  double err = 0, doc_err = 0;
  size_t worst = 0;  // element of the largest |got - ref| (or the first non-finite one)
  float got = 0, ref = 0;
  size_t doc_worst = 0;  // element of the largest |got - ref| in the document of the largest doc_err
  float doc_got = 0, doc_ref = 0;
};

// Per document, errors are relative to max(the document's max|ref|, kDocFloor * the tensor's max|ref|).
constexpr double kDocFloor = 1e-2;

// got and ref [B][N][width]; first [B][N] (the documents; empty: one per batch row).
static Cmp compare(const std::vector<float>& got, const std::vector<float>& ref, int B, int N, size_t width,
                   const std::vector<int>& first) {
  Cmp c;
  double md = 0, mr = 0;
  bool bad = false;
  for (size_t i = 0; i < ref.size(); ++i) {
    double d = std::fabs((double)got[i] - (double)ref[i]);
    if (!std::isfinite(got[i]) || !std::isfinite(ref[i])) {
      if (!bad) {
        c.worst = i;
        c.got = got[i];
        c.ref = ref[i];
      }
      bad = true;
      continue;
    }
    if (d > md && !bad) {
      c.worst = i;
      c.got = got[i];
      c.ref = ref[i];
    }
    md = std::max(md, d);
    mr = std::max(mr, std::fabs((double)ref[i]));
  }
  if (bad) {
    c.err = c.doc_err = NAN;
    return c;
  }
  c.err = mr > 0 ? md / mr : (md > 0 ? INFINITY : 0.0);
  // per (batch row, document)
  for (int b = 0; b < B; ++b) {
    int t = 0;
    while (t < N) {
      int e = t;
      if (first.empty()) e = N;
      else
        while (e < N && first[(size_t)b * N + e] == first[(size_t)b * N + t]) ++e;
      double dd = 0, dr = 0;
      size_t wi = ((size_t)b * N + t) * width;
      for (size_t i = ((size_t)b * N + t) * width; i < ((size_t)b * N + e) * width; ++i) {
        const double d = std::fabs((double)got[i] - (double)ref[i]);
        if (d > dd) wi = i;
        dd = std::max(dd, d);
        dr = std::max(dr, std::fabs((double)ref[i]));
      }
      dr = std::max(dr, kDocFloor * mr);  // a document whose reference is ~0 (cancellation) is not held to noise
      double r = dr > 0 ? dd / dr : (dd > 0 ? INFINITY : 0.0);
      if (r > c.doc_err) {
        c.doc_err = r;
        c.doc_worst = wi;
        c.doc_got = got[wi];
        c.doc_ref = ref[wi];
      }
      t = e;
    }
  }
  return c;
}

static std::string element(size_t i, float got, float ref, int N, int heads, int D) {
  const int e = (int)(i % D);
  i /= D;
  const int h = (int)(i % heads);
  i /= heads;
  const int t = (int)(i % N);
  const int b = (int)(i / N);
  char buf[160];
  std::snprintf(buf, sizeof buf, "b%d t%d h%d e%d: got %.6g ref %.6g", b, t, h, e, got, ref);
  return buf;
}

// The worst element overall and the worst of the worst document.
static std::string where(const Cmp& c, int N, int heads, int D) {
  std::string w = " [worst " + element(c.worst, c.got, c.ref, N, heads, D);
  if (c.doc_err == c.doc_err) w += "; worst document's worst " + element(c.doc_worst, c.doc_got, c.doc_ref, N, heads, D);
  return w + "]";
}

// One line for several quantities of one call sequence: ok iff every err <= tol and doc_err <= doc_tol.
struct Quantity {
  const char* name;
  std::vector<float> got;
  const std::vector<float>* ref;
  int heads;  // of this tensor (kv heads for softmax's dk, dv)
};

static void check_quantities(const std::string& name, std::vector<Quantity> qs, int B, int N, int D,
                             const std::vector<int>& first, double tol = -1, double doc_tol = -1) {
  if (tol < 0) tol = g_tol;
  if (doc_tol < 0) doc_tol = g_doc_tol;
  bool ok = true;
  double worst_err = 0, worst_doc = 0;
  std::string detail, fails;
  for (auto& q : qs) {
    Cmp c = compare(q.got, *q.ref, B, N, (size_t)q.heads * D, first);
    bool good = c.err <= tol && c.doc_err <= doc_tol;  // NaN fails
    ok = ok && good;
    if (!(c.err <= worst_err)) worst_err = c.err;
    if (!(c.doc_err <= worst_doc)) worst_doc = c.doc_err;
    char buf[96];
    std::snprintf(buf, sizeof buf, " %s %.2e/%.2e", q.name, c.err, c.doc_err);
    detail += buf;
    if (!good) fails += std::string(" ") + q.name + where(c, N, q.heads, D);
  }
  char head[96];
  std::snprintf(head, sizeof head, "err=%.3e doc_err=%.3e (tol %.0e/%.0e;", worst_err, worst_doc, tol, doc_tol);
  report(ok, name, std::string(head) + detail + ")" + fails);
}

// ---------------------------------------------------------------------------------------------------------
// CPU float64 references of the masked definitions (the oracles' own check)
// ---------------------------------------------------------------------------------------------------------
// Linear: q, k, v, dout [B][N][H][D]; lam per head (empty: none); doc [B][N] the document ids (empty: one).
static void cpu_linear(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                       const std::vector<float>& dout, int B, int N, int H, int D, const std::vector<float>& lam,
                       bool causal, const std::vector<int>& doc, std::vector<float>& o, std::vector<float>& dq,
                       std::vector<float>& dk, std::vector<float>& dv) {
  const size_t n = (size_t)B * N * H * D;
  std::vector<double> O(n, 0), DQ(n, 0), DK(n, 0), DV(n, 0);
  auto at = [&](int b, int t, int h) { return (((size_t)b * N + t) * H + h) * D; };
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) {
          if (causal && j > i) continue;
          if (!doc.empty() && doc[(size_t)b * N + i] != doc[(size_t)b * N + j]) continue;
          const double w = causal && !lam.empty() ? std::pow((double)lam[h], (double)(i - j)) : 1.0;
          const size_t qi = at(b, i, h), kj = at(b, j, h);
          double s = 0, dp = 0;
          for (int e = 0; e < D; ++e) {
            s += (double)q[qi + e] * k[kj + e];
            dp += (double)dout[qi + e] * v[kj + e];
          }
          for (int e = 0; e < D; ++e) {
            O[qi + e] += w * s * v[kj + e];
            DQ[qi + e] += w * dp * k[kj + e];
            DK[kj + e] += w * dp * q[qi + e];
            DV[kj + e] += w * s * dout[qi + e];
          }
        }
  o.assign(O.begin(), O.end());
  dq.assign(DQ.begin(), DQ.end());
  dk.assign(DK.begin(), DK.end());
  dv.assign(DV.begin(), DV.end());
}

// Softmax: q, dout [B][N][H][D], k, v [B][N][Hkv][D]; lse [B][N][H] (natural log).
static void cpu_softmax(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                        const std::vector<float>& dout, int B, int N, int H, int Hkv, int D, bool causal,
                        const std::vector<int>& doc, std::vector<float>& o, std::vector<float>& lse,
                        std::vector<float>& dq, std::vector<float>& dk, std::vector<float>& dv) {
  const double sc = 1.0 / std::sqrt((double)D);
  std::vector<double> O((size_t)B * N * H * D, 0), L((size_t)B * N * H, 0), DQ(O.size(), 0),
      DK((size_t)B * N * Hkv * D, 0), DV(DK.size(), 0);
  auto qa = [&](int b, int t, int h) { return (((size_t)b * N + t) * H + h) * D; };
  auto ka = [&](int b, int t, int g) { return (((size_t)b * N + t) * Hkv + g) * D; };
  std::vector<double> s(N), p(N), dp(N);
  std::vector<char> vis(N);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      const int g = h / (H / Hkv);
      for (int i = 0; i < N; ++i) {
        double m = -INFINITY;
        for (int j = 0; j < N; ++j) {
          vis[j] = (!causal || j <= i) && (doc.empty() || doc[(size_t)b * N + i] == doc[(size_t)b * N + j]);
          if (!vis[j]) continue;
          double d = 0, d2 = 0;
          for (int e = 0; e < D; ++e) {
            d += (double)q[qa(b, i, h) + e] * k[ka(b, j, g) + e];
            d2 += (double)dout[qa(b, i, h) + e] * v[ka(b, j, g) + e];
          }
          s[j] = sc * d;
          dp[j] = d2;
          m = std::max(m, s[j]);
        }
        const size_t row = ((size_t)b * N + i) * H + h;
        if (m == -INFINITY) {
          L[row] = -INFINITY;
          continue;
        }
        double sum = 0;
        for (int j = 0; j < N; ++j)
          if (vis[j]) sum += std::exp(s[j] - m);
        const double l = m + std::log(sum);
        L[row] = l;
        double delta = 0;
        for (int j = 0; j < N; ++j) {
          p[j] = vis[j] ? std::exp(s[j] - l) : 0.0;
          delta += p[j] * (vis[j] ? dp[j] : 0.0);
          if (vis[j])
            for (int e = 0; e < D; ++e) O[qa(b, i, h) + e] += p[j] * v[ka(b, j, g) + e];
        }
        for (int j = 0; j < N; ++j) {
          if (!vis[j]) continue;
          const double ds = sc * p[j] * (dp[j] - delta);
          for (int e = 0; e < D; ++e) {
            DQ[qa(b, i, h) + e] += ds * k[ka(b, j, g) + e];
            DK[ka(b, j, g) + e] += ds * q[qa(b, i, h) + e];
            DV[ka(b, j, g) + e] += p[j] * dout[qa(b, i, h) + e];
          }
        }
      }
    }
  o.assign(O.begin(), O.end());
  lse.assign(L.begin(), L.end());
  dq.assign(DQ.begin(), DQ.end());
  dk.assign(DK.begin(), DK.end());
  dv.assign(DV.begin(), DV.end());
}

static std::vector<float> random_bf16_host(size_t n, float scale, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = __bfloat162float(__float2bfloat16_rn(u(rng)));
  return v;
}

static void oracle_self_checks(cudaStream_t s) {
  const int B = 2, N = 200, H = 4, Hkv = 2;
  std::vector<DocCase> cases;
  cases.push_back(doc_none(B, N));
  cases.push_back(doc_lists("no-ends", B, N, {{}, {}}));
  cases.push_back(doc_lists("hand", B, N,
                            {join({0, 63, 64, 150, N - 1}, range_step(100, 105, 1)), {31, 127, 128, 190}}));
  cases.push_back(doc_drawn(B, N, 12, 77u));
  if (g_list) {
    for (int D : {64, 128})
      for (const DocCase& dc : cases) {
        for (const char* m : {"causal/nodecay", "causal/decay", "bidir/nodecay"}) {
          const std::string name = "oracle/linear/d" + std::to_string(D) + "/" + m + "/" + dc.name;
          if (selected(name)) std::printf("%s\n%s/rows\n", name.c_str(), name.c_str());
        }
        for (const char* m : {"causal", "bidir"}) {
          const std::string name = "oracle/softmax/d" + std::to_string(D) + "/" + m + "/gqa" + std::to_string(H) +
                                   "x" + std::to_string(Hkv) + "/" + dc.name;
          if (selected(name)) std::printf("%s\n%s/lse\n", name.c_str(), name.c_str());
        }
      }
    return;
  }
  std::mt19937_64 rng(g_seed);
  const std::vector<float> lam_h = {0.995f, 0.97f, 0.9f, 0.6f};
  Dev<float> lam(H);
  upload_f32(lam.p, lam_h, s);
  for (int D : {64, 128}) {
    const size_t nq = (size_t)B * N * H * D, nk = (size_t)B * N * Hkv * D;
    auto q = random_bf16_host(nq, 1.f, rng), k = random_bf16_host(nq, 1.f, rng), v = random_bf16_host(nq, 1.f, rng),
         dout = random_bf16_host(nq, 1.f, rng);
    auto sq = random_bf16_host(nq, 2.f, rng), sk = random_bf16_host(nk, 2.f, rng), sv = random_bf16_host(nk, 1.f, rng);
    Dev<bf16> dq_(nq), dk_(nq), dv_(nq), ddo(nq), dsk(nk), dsv(nk), dsq(nq);
    upload_bf16(dq_.p, q, s);
    upload_bf16(dk_.p, k, s);
    upload_bf16(dv_.p, v, s);
    upload_bf16(ddo.p, dout, s);
    upload_bf16(dsq.p, sq, s);
    upload_bf16(dsk.p, sk, s);
    upload_bf16(dsv.p, sv, s);
    Dev<float> o(nq), gq(nq), gk(nq), gv(nq), lse((size_t)B * N * H);
    for (const DocCase& dc : cases) {
      lasp::DocumentBuffers buf;
      const Documents docs = upload_case(dc, B, N, buf, s);
      const std::vector<int> first = dc.any ? firsts_of(dc, B, N) : std::vector<int>{};
      const std::vector<int> ids = doc_ids(dc, B, N);  // the CPU's mask
      for (int causal = 1; causal >= 0; --causal)
        for (int use_lam = 0; use_lam < 2; ++use_lam) {
          const std::string name = "oracle/linear/d" + std::to_string(D) + "/" + (causal ? "causal" : "bidir") +
                                   (use_lam ? "/decay" : "/nodecay") + "/" + dc.name;
          if (!causal && use_lam) continue;  // the bidirectional oracle has no decay
          if (!selected(name)) continue;
          const LinearDims dims{B, N, H, D};
          const float* lamp = use_lam ? lam.p : nullptr;
          o.poison(s);
          gq.poison(s);
          gk.poison(s);
          gv.poison(s);
          lasp::oracle_linear_forward(dq_.p, dk_.p, dv_.p, o.p, dims, lamp, causal, docs, s);
          lasp::oracle_linear_backward(dq_.p, dk_.p, dv_.p, ddo.p, gq.p, gk.p, gv.p, dims, lamp, causal, docs, s);
          std::vector<float> ro, rq, rk, rv;
          cpu_linear(q, k, v, dout, B, N, H, D, use_lam ? lam_h : std::vector<float>{}, causal, ids, ro, rq, rk, rv);
          check_quantities(name, {{"o", download(o, s), &ro, H}, {"dq", download(gq, s), &rq, H},
                                  {"dk", download(gk, s), &rk, H}, {"dv", download(gv, s), &rv, H}},
                           B, N, D, first, 1e-4, 1e-4);
          // The rows variant against the whole oracle's rows.
          const std::vector<int> rows_h = {0, 5, 31, 32, 63, 64, 65, 100, 102, 104, 105, 127, 128, 150, 151, 199};
          const int nr = (int)rows_h.size();
          Dev<int> rows(nr);
          CUDA_CHECK(cudaMemcpyAsync(rows.p, rows_h.data(), nr * sizeof(int), cudaMemcpyHostToDevice, s));
          const size_t per = (size_t)nr * B * H * D;
          Dev<float> rr(4 * per);
          rr.poison(s);
          lasp::oracle_linear_forward_rows(dq_.p, dk_.p, dv_.p, rows.p, nr, rr.p, dims, lamp, causal, docs, s);
          lasp::oracle_linear_backward_rows(dq_.p, dk_.p, dv_.p, ddo.p, rows.p, nr, rr.p + per, rr.p + 2 * per,
                                            rr.p + 3 * per, dims, lamp, causal, docs, s);
          std::vector<float> got = download(rr, s);
          const std::vector<float>* full[4] = {&ro, &rq, &rk, &rv};
          std::vector<Quantity> qs;
          std::vector<std::vector<float>> refs(4);
          for (int g = 0; g < 4; ++g) {
            refs[g].resize(per);
            for (int u = 0; u < nr; ++u)
              for (int b = 0; b < B; ++b)
                for (size_t x = 0; x < (size_t)H * D; ++x)
                  refs[g][((size_t)u * B + b) * H * D + x] = (*full[g])[(((size_t)b * N + rows_h[u]) * H) * D + x];
          }
          const char* qn[4] = {"o", "dq", "dk", "dv"};
          for (int g = 0; g < 4; ++g)
            qs.push_back({qn[g], std::vector<float>(got.begin() + g * per, got.begin() + (g + 1) * per), &refs[g], H});
          // [u][b][h][d] read as B' = 1 batch row of nr * B "positions"
          check_quantities(name + "/rows", qs, 1, nr * B, D, {}, 1e-4, 1e-4);
        }
      for (int causal = 1; causal >= 0; --causal) {
        const std::string name = "oracle/softmax/d" + std::to_string(D) + "/" + (causal ? "causal" : "bidir") +
                                 "/gqa" + std::to_string(H) + "x" + std::to_string(Hkv) + "/" + dc.name;
        if (!selected(name)) continue;
        Dev<float> sk_g(nk), sv_g(nk);
        o.poison(s);
        lse.poison(s);
        gq.poison(s);
        sk_g.poison(s);
        sv_g.poison(s);
        lasp::oracle_softmax_forward(dsq.p, dsk.p, dsv.p, o.p, lse.p, B, N, H, Hkv, D, causal, docs, s);
        lasp::oracle_softmax_backward(dsq.p, dsk.p, dsv.p, ddo.p, gq.p, sk_g.p, sv_g.p, B, N, H, Hkv, D, causal, docs,
                                      s);
        std::vector<float> ro, rl, rq, rk, rv;
        cpu_softmax(sq, sk, sv, dout, B, N, H, Hkv, D, causal, ids, ro, rl, rq, rk, rv);
        check_quantities(name, {{"o", download(o, s), &ro, H}, {"dq", download(gq, s), &rq, H},
                                {"dk", download(sk_g, s), &rk, Hkv}, {"dv", download(sv_g, s), &rv, Hkv}},
                         B, N, D, first, 1e-4, 1e-4);
        check_quantities(name + "/lse", {{"lse", download(lse, s), &rl, H}}, B, N, 1, first, 1e-4, 1e-4);
      }
      lasp::free_documents(buf);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Linear attention: LASP-2 piece by piece
// ---------------------------------------------------------------------------------------------------------
// The decays of a check: none (nullptr) or one per head below 1.
static std::vector<float> head_decays(int H) {
  static const float table[8] = {0.9995f, 0.99f, 0.97f, 0.9f, 0.999f, 0.995f, 0.98f, 0.95f};
  std::vector<float> v(H);
  for (int h = 0; h < H; ++h) v[h] = table[h % 8];
  return v;
}

// The affine scans of docs/DOCUMENTS.md over W pieces of C tokens, in float64 on the host. states[t] and the
// result [B][H][D][D]; flags[t][b] whether piece t holds an end; lam empty: no decay. Forward (reverse false):
// out[0] = 0, out[t] = c_{t-1} out[t-1] + states[t-1]. Backward (reverse true): out[W-1] = 0,
// out[t] = c_{t+1} out[t+1] + states[t+1]. Bidirectional without documents (sum_others): out[t] =
// sum_{u != t} states[u]; with documents the same forward / backward scans with lam empty (c = 0 or 1), of the
// tails (P, before) and of the heads (after, G).
static std::vector<std::vector<float>> scan_states(const std::vector<std::vector<float>>& states,
                                                   const std::vector<std::vector<int>>& flags, int B, int H, int D,
                                                   int C, const std::vector<float>& lam, bool reverse,
                                                   bool sum_others) {
  const int W = (int)states.size();
  const size_t dd = (size_t)D * D, n = (size_t)B * H * dd;
  std::vector<std::vector<double>> acc(W, std::vector<double>(n, 0.0));
  if (sum_others) {
    for (int t = 0; t < W; ++t)
      for (int u = 0; u < W; ++u)
        if (u != t)
          for (size_t i = 0; i < n; ++i) acc[t][i] += states[u][i];
  } else {
    for (int step = 1; step < W; ++step) {
      const int t = reverse ? W - 1 - step : step, from = reverse ? t + 1 : t - 1;
      for (int b = 0; b < B; ++b)
        for (int h = 0; h < H; ++h) {
          const double c = flags[from][b] ? 0.0 : (lam.empty() ? 1.0 : std::pow((double)lam[h], (double)C));
          const size_t base = ((size_t)b * H + h) * dd;
          for (size_t i = base; i < base + dd; ++i) acc[t][i] = c * acc[from][i] + states[from][i];
        }
    }
  }
  std::vector<std::vector<float>> out(W, std::vector<float>(n));
  for (int t = 0; t < W; ++t)
    for (size_t i = 0; i < n; ++i) out[t][i] = (float)acc[t][i];
  return out;
}

#ifndef DOCUMENTS_CHECK_NO_SCAN
// The product's scans (linear_document_scan.cuh) against the host's: LASP-2's gathered form (the decayed sum cut
// at the nearest flagged piece, with the kernels' flags gathered as [W][batch]) for every piece, and LASP-1's
// chain (linear_document_ring_step, the backward's in two halves of rows). Fp32 against float64: tol 1e-4.
static void check_product_scans(const std::string& name, const std::vector<Dev<float>>& states,
                                const std::vector<Dev<float>>& flags, const std::vector<std::vector<float>>& want,
                                bool reverse, const LinearDims& ld, const float* lam, const Documents& docs,
                                const std::vector<int>& position, int C, cudaStream_t s) {
  const int W = (int)states.size(), B = ld.batch, D = ld.head_dim;
  const size_t SS = (size_t)ld.batch * ld.heads * D * D;
  Dev<float> gathered((size_t)W * SS), gflags((size_t)W * B), out(SS), chain((size_t)W * SS);
  Dev<int> gaps(W);
  for (int u = 0; u < W; ++u) {
    CUDA_CHECK(cudaMemcpyAsync(gathered.p + u * SS, states[u].p, SS * sizeof(float), cudaMemcpyDeviceToDevice, s));
    CUDA_CHECK(cudaMemcpyAsync(gflags.p + (size_t)u * B, flags[u].p, B * sizeof(float), cudaMemcpyDeviceToDevice, s));
  }
  std::vector<Quantity> qs;
  std::vector<std::string> names(2 * W);
  for (int t = 0; t < W; ++t) {
    std::vector<int> g(W);
    for (int u = 0; u < W; ++u) g[u] = reverse ? (u > t ? (u - t - 1) * C : -1) : (u < t ? (t - 1 - u) * C : -1);
    CUDA_CHECK(cudaMemcpyAsync(gaps.p, g.data(), W * sizeof(int), cudaMemcpyHostToDevice, s));
    out.poison(s);
    lasp::linear_document_scan(gathered.p, gflags.p, W, gaps.p, out.p, ld, lam, s);
    names[t] = (reverse ? "G" : "P") + std::to_string(t);
    qs.push_back({names[t].c_str(), download(out, s), &want[t], 1});
  }
  check_quantities(name + "/gathered", qs, 1, 1, (int)SS, {}, 1e-4, 1e-4);
  // The chain: forward P_{t+1} = c_t P_t + M_t from piece 0; backward G_{t-1} = c_t G_t + dM_t from the last.
  qs.clear();
  chain.poison(s);
  for (int step = 0; step + 1 < W; ++step) {
    const int t = reverse ? W - 1 - step : step, to = reverse ? t - 1 : t + 1;
    const float* in = step == 0 ? nullptr : chain.p + (size_t)t * SS;
    if (reverse)
      for (int half = 0; half < 2; ++half)
        lasp::linear_document_ring_step(in, states[t].p, C, chain.p + (size_t)to * SS, ld, lam, docs, position[t],
                                        half * D / 2, D / 2, s);
    else
      lasp::linear_document_ring_step(in, states[t].p, C, chain.p + (size_t)to * SS, ld, lam, docs, position[t], 0, D,
                                      s);
  }
  std::vector<float> all = download(chain, s);
  for (int step = 0; step + 1 < W; ++step) {
    const int to = reverse ? W - 2 - step : step + 1;
    names[W + to] = (reverse ? "G" : "P") + std::to_string(to);
    qs.push_back({names[W + to].c_str(), std::vector<float>(all.begin() + to * SS, all.begin() + (to + 1) * SS),
                  &want[to], 1});
  }
  check_quantities(name + "/chain", qs, 1, 1, (int)SS, {}, 1e-4, 1e-4);
}
#endif

// The bidirectional states are checked against the host's (group .../states) up to this sequence length: the
// float64 sums cost B N H D^2 per pair of inputs (8.6e9 at 16K tokens, d 128: seconds a case).
constexpr int kStateCheckMaxN = 4096;

// A piece's head and tail states in float64 (docs/DOCUMENTS.md "Bidirectional linear attention"): of the piece
// [pos, pos + C) and batch row b, with f its first end (C - 1 if none) and l its last (-1 if none), local,
//   head = sum_{i <= f} x_i^T y_i   (its first document's part)
//   tail = sum_{j > l} x_j^T y_j    (its last document's part; without an end both are the whole piece)
// x, y [B][N][H][D] (the whole sequence); head, tail [B][H][D][D]. The ends from the case alone.
static void host_head_tail(const std::vector<float>& x, const std::vector<float>& y, const DocCase& dc, int B,
                           int N, int H, int D, int pos, int C, std::vector<float>& head, std::vector<float>& tail) {
  const size_t dd = (size_t)D * D;
  std::vector<double> hd((size_t)B * H * dd, 0.0), tl(hd.size(), 0.0);
  for (int b = 0; b < B; ++b) {
    int f = C - 1, l = -1;
    for (int i = 0; i < C; ++i)
      if (dc.any && dc.ends[(size_t)b * N + pos + i]) {
        f = std::min(f, i);
        l = i;
      }
    for (int i = 0; i < C; ++i)
      for (int h = 0; h < H; ++h) {
        const size_t r = (((size_t)b * N + pos + i) * H + h) * D, base = ((size_t)b * H + h) * dd;
        for (double* acc : {i <= f ? hd.data() : nullptr, i > l ? tl.data() : nullptr}) {
          if (!acc) continue;
          for (int e = 0; e < D; ++e) {
            const double xe = x[r + e];
            double* row = acc + base + (size_t)e * D;
            for (int g = 0; g < D; ++g) row[g] += xe * y[r + g];
          }
        }
      }
  }
  head.assign(hd.begin(), hd.end());
  tail.assign(tl.begin(), tl.end());
}

static void linear_suite(const DocCase& dc, int B, int N, int H, int D, bool use_lam, bool causal, cudaStream_t s) {
  const int W = 4, C = N / W;
  const std::string tag = "linear/d" + std::to_string(D) + "/N" + std::to_string(N) + "/" +
                          (causal ? "causal" : "bidir") + (use_lam ? "/decay" : "/nodecay") + "/" + dc.name;
  // Bidirectional with documents (docs/DOCUMENTS.md "Bidirectional linear attention"): the state calls also
  // write the heads and gradient tails, and four scans feed p, after (forward) and g, before (backward).
  const bool bidocs = !causal && dc.any;
  std::vector<std::string> variants = {"full"};
  for (const char* ws : {"", "ws/"}) {
    std::vector<std::string> v = {"fused-fwd", "split-fwd", "fused-bwd", "split-bwd"};
    // the flags and the product's scans with documents only; the bidirectional ones' four states and scans
    if (bidocs) v.insert(v.begin(), {"scan/after", "scan/before"});
    if (dc.any) v.insert(v.begin(), {"flags", "scan/prefix", "scan/suffix"});
    if (bidocs && N <= kStateCheckMaxN) v.insert(v.begin(), "states");
    for (const std::string& x : v) variants.push_back(ws + x);
  }
  bool any = false;
  for (const std::string& v : variants) {
    if (g_list && selected(tag + "/" + v)) std::printf("%s/%s\n", tag.c_str(), v.c_str());
    any = any || selected(tag + "/" + v);
  }
  if (!any || g_list) return;
  std::printf("# %s: %d documents over %d rows\n", tag.c_str(), dc.any ? count_docs(dc, B, N) : B, B);

  lasp::DocumentBuffers dbuf;
  const Documents docs = upload_case(dc, B, N, dbuf, s);
  const std::vector<int> first = dc.any ? firsts_of(dc, B, N) : std::vector<int>{};
  const std::vector<float> lam_h = use_lam ? head_decays(H) : std::vector<float>{};
  Dev<float> lam_d(H);
  if (use_lam) upload_f32(lam_d.p, lam_h, s);
  const float* lam = use_lam ? lam_d.p : nullptr;

  // The whole sequence and the oracle over it.
  const size_t HD = (size_t)H * D, nG = (size_t)B * N * HD;
  Dev<bf16> q(nG), k(nG), v(nG), dO(nG);
  fill_uniform(q, 1, 1.f, s);
  fill_uniform(k, 2, 1.f, s);
  fill_uniform(v, 3, 1.f, s);
  fill_uniform(dO, 4, 1.f, s);
  const LinearDims gd{B, N, H, D};
  std::vector<float> ro, rdq, rdk, rdv;
  {
    Dev<float> a(nG), b(nG), c(nG), d(nG);
    lasp::oracle_linear_forward(q.p, k.p, v.p, a.p, gd, lam, causal, docs, s);
    lasp::oracle_linear_backward(q.p, k.p, v.p, dO.p, b.p, c.p, d.p, gd, lam, causal, docs, s);
    ro = download(a, s);
    rdq = download(b, s);
    rdk = download(c, s);
    rdv = download(d, s);
  }
  auto check4 = [&](const std::string& name, const Dev<bf16>* o, const Dev<bf16>* gq, const Dev<bf16>* gk,
                    const Dev<bf16>* gv) {
    std::vector<Quantity> qs;
    if (o) qs.push_back({"o", download(*o, s), &ro, H});
    if (gq) qs.push_back({"dq", download(*gq, s), &rdq, H});
    if (gk) qs.push_back({"dk", download(*gk, s), &rdk, H});
    if (gv) qs.push_back({"dv", download(*gv, s), &rdv, H});
    check_quantities(name, std::move(qs), B, N, D, first);
  };
  const size_t SS = (size_t)B * H * D * D;

  // Expected flags per piece and batch row: an end in [t*C, t*C + C - 1].
  auto expected_flags = [&](int pos, int len) {
    std::vector<int> f(B, 0);
    if (dc.any)
      for (int b = 0; b < B; ++b)
        for (int t = pos; t < pos + len; ++t) f[b] |= dc.ends[(size_t)b * N + t] != 0;
    return f;
  };
  auto check_flags = [&](const std::string& name, const std::vector<std::vector<float>>& got,
                         const std::vector<std::vector<int>>& want) {
    bool ok = true;
    std::string detail = "got/want:";
    for (size_t t = 0; t < got.size(); ++t) {
      detail += " [";
      for (int b = 0; b < B; ++b) {
        ok = ok && got[t][b] == (want[t][b] ? 1.f : 0.f);  // NaN (never written) fails
        char buf[32];
        std::snprintf(buf, sizeof buf, "%s%g/%d", b ? " " : "", got[t][b], want[t][b]);
        detail += buf;
      }
      detail += "]";
    }
    report(ok, name, detail);
  };

  Dev<bf16> go(nG), gdq(nG), gdk(nG), gdv(nG);  // results gathered into the global layout

  // ---- linear.full: the whole sequence as one piece at position 0.
  if (selected(tag + "/full")) {
    const Piece whole{0, N};
    const size_t wsb = lasp::linear_state_workspace_bytes(gd, N);
    Dev<float> kv_ws(wsb / sizeof(float) + 1), qdo_ws(wsb / sizeof(float) + 1), M(SS), dM(SS), flag(B), gflag(B);
    Dev<bf16> o(nG), dq(nG), dk(nG), dv(nG);
    o.poison(s);
    lasp::LinearIntraArgs ia;
    ia.q = q.p, ia.k = k.p, ia.v = v.p, ia.o = o.p, ia.piece = whole, ia.docs = docs, ia.position = 0;
    ia.causal = causal;
    lasp::linear_intra(ia, gd, lam, s);
    dq.poison(s), dk.poison(s), dv.poison(s);
    lasp::LinearIntraBackwardArgs ib;
    ib.q = q.p, ib.k = k.p, ib.v = v.p, ib.dout = dO.p, ib.dq = dq.p, ib.dk = dk.p, ib.dv = dv.p, ib.piece = whole;
    ib.docs = docs, ib.position = 0, ib.causal = causal;
    lasp::linear_intra_backward(ib, gd, lam, s);
    check4(tag + "/full/intra", &o, &dq, &dk, &dv);
    // the fused pair from the state calls' workspaces (P, G none)
    flag.poison(s), gflag.poison(s), o.poison(s), dq.poison(s), dk.poison(s), dv.poison(s);
    lasp::LinearStateArgs sa;
    sa.k = k.p, sa.v = v.p, sa.m = M.p, sa.piece = whole, sa.docs = docs, sa.position = 0;
    sa.flag = dc.any ? flag.p : nullptr, sa.kv_ws = kv_ws.p;
    lasp::linear_state(sa, gd, lam, s);
    lasp::LinearForwardFusedArgs fa;
    fa.q = q.p, fa.k = k.p, fa.v = v.p, fa.p = nullptr, fa.o = o.p, fa.piece = whole, fa.docs = docs;
    fa.position = 0, fa.causal = causal, fa.kv_ws = kv_ws.p;
    lasp::linear_forward_fused(fa, gd, lam, s);
    lasp::LinearGradStateArgs ga;
    ga.q = q.p, ga.dout = dO.p, ga.dm = dM.p, ga.piece = whole, ga.docs = docs, ga.position = 0;
    ga.flag = dc.any ? gflag.p : nullptr, ga.qdo_ws = qdo_ws.p;
    lasp::linear_grad_state(ga, gd, lam, s);
    lasp::LinearBackwardFusedArgs ba;
    ba.q = q.p, ba.k = k.p, ba.v = v.p, ba.dout = dO.p, ba.p = nullptr, ba.g = nullptr, ba.dq = dq.p, ba.dk = dk.p;
    ba.dv = dv.p, ba.piece = whole, ba.docs = docs, ba.position = 0, ba.causal = causal, ba.kv_ws = kv_ws.p;
    ba.qdo_ws = qdo_ws.p;
    lasp::linear_backward_fused(ba, gd, lam, s);
    check4(tag + "/full/ws-fused", &o, &dq, &dk, &dv);
    if (dc.any) check_flags(tag + "/full/flags", {download(flag, s), download(gflag, s)},
                            {expected_flags(0, N), expected_flags(0, N)});
  }

  // ---- LASP-2: 4 pieces, each in a rank buffer of 2C rows at local offset (t % 2) * C, position t * C.
  const int T = 2 * C;
  const LinearDims ld{B, T, H, D};
  const size_t nL = (size_t)B * T * HD;
  std::vector<Dev<bf16>> qL, kL, vL, doL, oL, dqL, dkL, dvL;
  for (int t = 0; t < W; ++t) {
    qL.emplace_back(nL), kL.emplace_back(nL), vL.emplace_back(nL), doL.emplace_back(nL);
    oL.emplace_back(nL), dqL.emplace_back(nL), dkL.emplace_back(nL), dvL.emplace_back(nL);
  }
  std::vector<Piece> piece(W);
  std::vector<int> position(W);
  std::vector<std::vector<int>> want_flags(W);
  for (int t = 0; t < W; ++t) {
    piece[t] = Piece{(t % 2) * C, C};
    position[t] = t * C;
    want_flags[t] = expected_flags(t * C, C);
    // the rows outside the piece: other (finite) values, which a call must not read
    int salt = 100 + 4 * t;
    for (Dev<bf16>* x : {&qL[t], &kL[t], &vL[t], &doL[t]}) fill_uniform(*x, salt++, 1.f, s);
    copy_rows(qL[t].p, T, piece[t].offset, q.p, N, position[t], C, B, HD, s);
    copy_rows(kL[t].p, T, piece[t].offset, k.p, N, position[t], C, B, HD, s);
    copy_rows(vL[t].p, T, piece[t].offset, v.p, N, position[t], C, B, HD, s);
    copy_rows(doL[t].p, T, piece[t].offset, dO.p, N, position[t], C, B, HD, s);
  }
  auto gather = [&](std::vector<Dev<bf16>>& local, Dev<bf16>& global) {
    global.poison(s);
    for (int t = 0; t < W; ++t) copy_rows(global.p, N, position[t], local[t].p, T, piece[t].offset, C, B, HD, s);
  };
  const size_t wsb = lasp::linear_state_workspace_bytes(ld, C);
  // Bidirectional with documents also: Hd the heads (linear_state's head), dT the gradient tails
  // (linear_grad_state's tail), A the suffix scans of the heads (after), Bf the prefix scans of dT (before).
  std::vector<Dev<float>> M, dM, P, G, kv_ws, qdo_ws, flag, gflag, Hd, dT, A, Bf;
  for (int t = 0; t < W; ++t) {
    M.emplace_back(SS), dM.emplace_back(SS), P.emplace_back(SS), G.emplace_back(SS);
    kv_ws.emplace_back(wsb / sizeof(float) + 1), qdo_ws.emplace_back(wsb / sizeof(float) + 1);
    flag.emplace_back(B), gflag.emplace_back(B);
    if (bidocs) Hd.emplace_back(SS), dT.emplace_back(SS), A.emplace_back(SS), Bf.emplace_back(SS);
  }
  // The host's states of the bidirectional pieces (group states): M and the gradient tail are the pieces'
  // tails, the head and dM their heads, of (k, v) and (q, dout).
  std::vector<std::vector<float>> want_m(W), want_head(W), want_dm(W), want_tail(W);
  if (bidocs && N <= kStateCheckMaxN && (selected(tag + "/states") || selected(tag + "/ws/states"))) {
    const std::vector<float> qh = download(q, s), kh = download(k, s), vh = download(v, s), doh = download(dO, s);
    for (int t = 0; t < W; ++t) {
      host_head_tail(kh, vh, dc, B, N, H, D, t * C, C, want_head[t], want_m[t]);
      host_head_tail(qh, doh, dc, B, N, H, D, t * C, C, want_dm[t], want_tail[t]);
    }
  }

  for (int ws = 0; ws < 2; ++ws) {
    const std::string vt = tag + (ws ? "/ws/" : "/");
    bool want = false;
    for (const char* x : {"states", "flags", "scan/prefix", "scan/suffix", "scan/after", "scan/before", "fused-fwd",
                          "split-fwd", "fused-bwd", "split-bwd"})
      want = want || selected(vt + x);
    if (!want) continue;
    // Forward states and flags.
    for (int t = 0; t < W; ++t) {
      M[t].poison(s), flag[t].poison(s);
      if (bidocs) Hd[t].poison(s);
      lasp::LinearStateArgs a;
      a.k = kL[t].p, a.v = vL[t].p, a.m = M[t].p, a.piece = piece[t], a.docs = docs, a.position = position[t];
      a.head = bidocs ? Hd[t].p : nullptr;
      a.flag = dc.any ? flag[t].p : nullptr;
      a.kv_ws = ws ? kv_ws[t].p : nullptr;
      lasp::linear_state(a, ld, lam, s);
    }
    std::vector<std::vector<float>> Mh(W), Hh(W), got_flags(W);
    for (int t = 0; t < W; ++t) {
      Mh[t] = download(M[t], s);
      if (bidocs) Hh[t] = download(Hd[t], s);
      if (dc.any) got_flags[t] = download(flag[t], s);
    }
    // P: causal, the affine prefix scan of M; bidirectional without documents, the sum of the other pieces' M;
    // with documents, the prefix scan of the tails (M, carry 0 across a piece with an end, else 1) and `after`
    // the suffix scan of the heads with the same carries.
    const auto Ph = scan_states(Mh, want_flags, B, H, D, C, lam_h, false, !causal && !dc.any);
    for (int t = 0; t < W; ++t) upload_f32(P[t].p, Ph[t], s);
    std::vector<std::vector<float>> Ah;
    if (bidocs) {
      Ah = scan_states(Hh, want_flags, B, H, D, C, lam_h, true, false);
      for (int t = 0; t < W; ++t) upload_f32(A[t].p, Ah[t], s);
    }
#ifndef DOCUMENTS_CHECK_NO_SCAN
    if (dc.any && selected(vt + "scan/prefix"))
      check_product_scans(vt + "scan/prefix", M, flag, Ph, false, ld, lam, docs, position, C, s);
    if (bidocs && selected(vt + "scan/after"))
      check_product_scans(vt + "scan/after", Hd, flag, Ah, true, ld, lam, docs, position, C, s);
#endif
    // Fused forward (causal, bidirectional with documents: piece 0 gets no prefix, p = nullptr; the last piece
    // no `after`).
    if (selected(vt + "fused-fwd")) {
      for (int t = 0; t < W; ++t) {
        oL[t].poison(s);
        lasp::LinearForwardFusedArgs a;
        a.q = qL[t].p, a.k = kL[t].p, a.v = vL[t].p, a.p = ((causal || dc.any) && t == 0) ? nullptr : P[t].p;
        a.after = (bidocs && t < W - 1) ? A[t].p : nullptr;
        a.o = oL[t].p, a.piece = piece[t], a.docs = docs, a.position = position[t], a.causal = causal;
        a.kv_ws = ws ? kv_ws[t].p : nullptr;
        lasp::linear_forward_fused(a, ld, lam, s);
      }
      gather(oL, go);
      check4(vt + "fused-fwd", &go, nullptr, nullptr, nullptr);
    }
    // Split forward: intra, then inter with P (and `after`; piece 0's P and the last piece's `after` are zeros:
    // the term adds nothing).
    if (selected(vt + "split-fwd")) {
      for (int t = 0; t < W; ++t) {
        oL[t].poison(s);
        lasp::LinearIntraArgs a;
        a.q = qL[t].p, a.k = kL[t].p, a.v = vL[t].p, a.o = oL[t].p, a.piece = piece[t], a.docs = docs;
        a.position = position[t], a.causal = causal, a.kv_ws = ws ? kv_ws[t].p : nullptr;
        lasp::linear_intra(a, ld, lam, s);
        lasp::LinearInterArgs b;
        b.q = qL[t].p, b.p = P[t].p, b.after = bidocs ? A[t].p : nullptr, b.o = oL[t].p, b.piece = piece[t];
        b.docs = docs, b.position = position[t];
        lasp::linear_inter(b, ld, lam, s);
      }
      gather(oL, go);
      check4(vt + "split-fwd", &go, nullptr, nullptr, nullptr);
    }
    // Backward states and flags.
    for (int t = 0; t < W; ++t) {
      dM[t].poison(s), gflag[t].poison(s);
      if (bidocs) dT[t].poison(s);
      lasp::LinearGradStateArgs a;
      a.q = qL[t].p, a.dout = doL[t].p, a.dm = dM[t].p, a.piece = piece[t], a.docs = docs, a.position = position[t];
      a.tail = bidocs ? dT[t].p : nullptr;
      a.flag = dc.any ? gflag[t].p : nullptr;
      a.qdo_ws = ws ? qdo_ws[t].p : nullptr;
      lasp::linear_grad_state(a, ld, lam, s);
    }
    std::vector<std::vector<float>> dMh(W), dTh(W), got_gflags(W);
    for (int t = 0; t < W; ++t) {
      dMh[t] = download(dM[t], s);
      if (bidocs) dTh[t] = download(dT[t], s);
      if (dc.any) got_gflags[t] = download(gflag[t], s);
    }
    if (dc.any && selected(vt + "flags")) {
      check_flags(vt + "flags/state", got_flags, want_flags);
      check_flags(vt + "flags/grad_state", got_gflags, want_flags);
    }
    // The bidirectional states against the host's. dM at piece 0, or after an end at the piece's position - 1,
    // may be the head or 0 (the causal kernel's dM; no row of the previous piece reads it): not compared there.
    if (bidocs && N <= kStateCheckMaxN && selected(vt + "states")) {
      std::vector<std::vector<float>> dm_ref(W);
      std::vector<std::string> names;
      for (int t = 0; t < W; ++t) {
        dm_ref[t] = want_dm[t];
        for (int b = 0; b < B; ++b)
          if (t == 0 || dc.ends[(size_t)b * N + t * C - 1])
            std::copy(dMh[t].begin() + b * SS / B, dMh[t].begin() + (b + 1) * SS / B, dm_ref[t].begin() + b * SS / B);
        for (const char* x : {"m", "head", "dm", "tail"}) names.push_back(x + std::to_string(t));
      }
      std::vector<Quantity> qs;
      for (int t = 0; t < W; ++t) {
        qs.push_back({names[4 * t].c_str(), Mh[t], &want_m[t], 1});
        qs.push_back({names[4 * t + 1].c_str(), Hh[t], &want_head[t], 1});
        qs.push_back({names[4 * t + 2].c_str(), dMh[t], &dm_ref[t], 1});
        qs.push_back({names[4 * t + 3].c_str(), dTh[t], &want_tail[t], 1});
      }
      check_quantities(vt + "states", std::move(qs), 1, 1, (int)SS, {}, 1e-3, 1e-3);
    }
    // G: causal, the affine suffix scan of dM; bidirectional without documents, the sum of the others' dM;
    // with documents, the suffix scan of the gradient heads (dM) and `before` the prefix scan of the gradient
    // tails, carries as forward.
    const auto Gh = scan_states(dMh, want_flags, B, H, D, C, lam_h, true, !causal && !dc.any);
    for (int t = 0; t < W; ++t) upload_f32(G[t].p, Gh[t], s);
    std::vector<std::vector<float>> Bh;
    if (bidocs) {
      Bh = scan_states(dTh, want_flags, B, H, D, C, lam_h, false, false);
      for (int t = 0; t < W; ++t) upload_f32(Bf[t].p, Bh[t], s);
    }
#ifndef DOCUMENTS_CHECK_NO_SCAN
    if (dc.any && selected(vt + "scan/suffix"))
      check_product_scans(vt + "scan/suffix", dM, gflag, Gh, true, ld, lam, docs, position, C, s);
    if (bidocs && selected(vt + "scan/before"))
      check_product_scans(vt + "scan/before", dT, gflag, Bh, false, ld, lam, docs, position, C, s);
#endif
    // Fused backward (causal, bidirectional with documents: piece 0 gets no P and no `before`, the last piece
    // no G and no `after`).
    if (selected(vt + "fused-bwd")) {
      for (int t = 0; t < W; ++t) {
        dqL[t].poison(s), dkL[t].poison(s), dvL[t].poison(s);
        lasp::LinearBackwardFusedArgs a;
        a.q = qL[t].p, a.k = kL[t].p, a.v = vL[t].p, a.dout = doL[t].p;
        a.p = ((causal || dc.any) && t == 0) ? nullptr : P[t].p;
        a.g = ((causal || dc.any) && t == W - 1) ? nullptr : G[t].p;
        a.after = (bidocs && t < W - 1) ? A[t].p : nullptr;
        a.before = (bidocs && t > 0) ? Bf[t].p : nullptr;
        a.dq = dqL[t].p, a.dk = dkL[t].p, a.dv = dvL[t].p, a.piece = piece[t], a.docs = docs;
        a.position = position[t], a.causal = causal;
        a.kv_ws = ws ? kv_ws[t].p : nullptr, a.qdo_ws = ws ? qdo_ws[t].p : nullptr;
        lasp::linear_backward_fused(a, ld, lam, s);
      }
      gather(dqL, gdq), gather(dkL, gdk), gather(dvL, gdv);
      check4(vt + "fused-bwd", nullptr, &gdq, &gdk, &gdv);
    }
    // Split backward: intra_backward, then dq_inter with P (and `after`) and dkdv_inter with G (and `before`),
    // zeros where none.
    if (selected(vt + "split-bwd")) {
      for (int t = 0; t < W; ++t) {
        dqL[t].poison(s), dkL[t].poison(s), dvL[t].poison(s);
        lasp::LinearIntraBackwardArgs a;
        a.q = qL[t].p, a.k = kL[t].p, a.v = vL[t].p, a.dout = doL[t].p, a.dq = dqL[t].p, a.dk = dkL[t].p;
        a.dv = dvL[t].p, a.piece = piece[t], a.docs = docs, a.position = position[t], a.causal = causal;
        a.kv_ws = ws ? kv_ws[t].p : nullptr, a.qdo_ws = ws ? qdo_ws[t].p : nullptr;
        lasp::linear_intra_backward(a, ld, lam, s);
        lasp::LinearDqInterArgs b;
        b.dout = doL[t].p, b.p = P[t].p, b.after = bidocs ? A[t].p : nullptr, b.dq = dqL[t].p, b.piece = piece[t];
        b.docs = docs, b.position = position[t];
        lasp::linear_dq_inter(b, ld, lam, s);
        lasp::LinearDkdvInterArgs c;
        c.k = kL[t].p, c.v = vL[t].p, c.g = G[t].p, c.before = bidocs ? Bf[t].p : nullptr, c.dk = dkL[t].p;
        c.dv = dvL[t].p, c.piece = piece[t], c.docs = docs, c.position = position[t];
        lasp::linear_dkdv_inter(c, ld, lam, s);
      }
      gather(dqL, gdq), gather(dkL, gdk), gather(dvL, gdv);
      check4(vt + "split-bwd", nullptr, &gdq, &gdk, &gdv);
    }
  }
  CUDA_CHECK(cudaStreamSynchronize(s));
  lasp::free_documents(dbuf);
}

// ---------------------------------------------------------------------------------------------------------
// Softmax attention: whole sequence, LASP-2H blocks (contiguous and zigzag)
// ---------------------------------------------------------------------------------------------------------
static PieceMap map_of(int count, int lo0, int g0, int len0, int lo1 = 0, int g1 = 0, int len1 = 0) {
  PieceMap m{count, {lo0, lo1}, {g0, g1}, {len0, len1}};
  return m;
}

// The kernels a softmax group runs: the product's calls (softmax_block_forward / _backward, softmax_whole_*:
// the default kernels, on Hopper the warp-specialized ones at d 128), or a fallback named through
// smx::block_forward / block_backward / full_backward (the overloads that take the kernel).
struct SoftmaxKernels {
  const char* name;  // the group's suffix ("" for the product's calls)
  bool product;
  lasp::SoftmaxForwardKernel fwd;
  lasp::SoftmaxBackwardKernel bwd;
};
static const SoftmaxKernels kProductKernels{"", true, lasp::SoftmaxForwardKernel::warp_specialized,
                                            lasp::SoftmaxBackwardKernel::warp_specialized};
// d 128 only: at d 64 every choice runs the mma.sync kernels, the default.
static const SoftmaxKernels kFallbackKernels[] = {
    {"/fallback-wgmma", false, lasp::SoftmaxForwardKernel::wgmma_pipelined, lasp::SoftmaxBackwardKernel::wgmma},
    {"/fallback-mma_sync", false, lasp::SoftmaxForwardKernel::mma_sync, lasp::SoftmaxBackwardKernel::mma_sync},
};

// fallbacks: also the whole sequence and the zigzag ranks through each of kFallbackKernels (d 128).
static void softmax_suite(const DocCase& dc, int B, int N, int H, int Hkv, int D, bool causal, bool fallbacks,
                          cudaStream_t s) {
  const std::string tag = "softmax/d" + std::to_string(D) + "/N" + std::to_string(N) + "/" +
                          (causal ? "causal" : "bidir") + "/gqa" + std::to_string(H) + "x" + std::to_string(Hkv) +
                          "/" + dc.name;
  fallbacks = fallbacks && D == 128;
  std::vector<std::string> groups = {"whole", "blocks4", "zigzag2"};
  if (fallbacks)
    for (const char* g : {"whole", "zigzag2"})
      for (const SoftmaxKernels& kc : kFallbackKernels) groups.push_back(std::string(g) + kc.name);
  bool any = false;
  for (const std::string& v : groups) {
    if (g_list && selected(tag + "/" + v)) std::printf("%s/%s\n", tag.c_str(), v.c_str());
    any = any || selected(tag + "/" + v);
  }
  if (!any || g_list) return;
  std::printf("# %s: %d documents over %d rows\n", tag.c_str(), dc.any ? count_docs(dc, B, N) : B, B);

  lasp::DocumentBuffers dbuf;
  const Documents docs = upload_case(dc, B, N, dbuf, s);
  const std::vector<int> first = dc.any ? firsts_of(dc, B, N) : std::vector<int>{};
  const size_t HD = (size_t)H * D, KD = (size_t)Hkv * D, nq = (size_t)B * N * HD, nk = (size_t)B * N * KD;
  Dev<bf16> q(nq), k(nk), v(nk), dO(nq);
  fill_uniform(q, 11, 2.f, s);
  fill_uniform(k, 12, 2.f, s);
  fill_uniform(v, 13, 1.f, s);
  fill_uniform(dO, 14, 1.f, s);
  std::vector<float> ro, rdq, rdk, rdv;
  {
    Dev<float> a(nq), b(nq), c(nk), d(nk);
    lasp::oracle_softmax_forward(q.p, k.p, v.p, a.p, nullptr, B, N, H, Hkv, D, causal, docs, s);
    lasp::oracle_softmax_backward(q.p, k.p, v.p, dO.p, b.p, c.p, d.p, B, N, H, Hkv, D, causal, docs, s);
    ro = download(a, s);
    rdq = download(b, s);
    rdk = download(c, s);
    rdv = download(d, s);
  }

  // ---- The whole sequence on one rank (lasp's kernels: LASP_SOFTMAX_BACKEND=lasp), or a fallback's: its
  // forward with identity maps into bf16 o, and smx::full_backward (the dk, dv-in-bf16 instantiation).
  auto whole = [&](const std::string& name, const SoftmaxKernels& kc) {
    if (!selected(name)) return;
    const SoftmaxDims sd{B, N, N, H, Hkv, D};
    Dev<bf16> o(nq), dq(nq), dk(nk), dv(nk);
    Dev<float> lse((size_t)B * N * H);
    o.poison(s), lse.poison(s);
    if (kc.product) {
      lasp::SoftmaxFullArgs fa;
      fa.q = q.p, fa.k = k.p, fa.v = v.p, fa.o = o.p, fa.lse = lse.p, fa.causal = causal, fa.docs = docs;
      lasp::softmax_whole_forward(fa, sd, s);
    } else {
      const PieceMap id{0, {0, 0}, {0, 0}, {0, 0}};
      lasp::smx::block_forward(kc.fwd, q.p, k.p, v.p, sd, id, id, causal, nullptr, lse.p, o.p, s, docs);
    }
    check_quantities(name + "/fwd", {{"o", download(o, s), &ro, H}}, B, N, D, first);
    dq.poison(s), dk.poison(s), dv.poison(s);
    if (kc.product) {
      lasp::SoftmaxFullBackwardArgs ba;
      ba.q = q.p, ba.k = k.p, ba.v = v.p, ba.o = o.p, ba.lse = lse.p, ba.dout = dO.p, ba.dq = dq.p, ba.dk = dk.p;
      ba.dv = dv.p, ba.causal = causal, ba.docs = docs;
      lasp::softmax_whole_backward(ba, sd, s);
    } else {
      lasp::smx::full_backward(kc.bwd, q.p, k.p, v.p, o.p, lse.p, dO.p, sd, causal, dq.p, dk.p, dv.p, s, docs);
    }
    check_quantities(name + "/bwd",
                     {{"dq", download(dq, s), &rdq, H}, {"dk", download(dk, s), &rdk, Hkv},
                      {"dv", download(dv, s), &rdv, Hkv}},
                     B, N, D, first);
  };
  whole(tag + "/whole", kProductKernels);

  // ---- LASP-2H: every rank's queries against every rank's keys (the gathered blocks), merged; the backward
  // adds each block's gradients into the query rank's dq and the key rank's dk, dv accumulators.
  auto ranks = [&](const std::string& name, const std::vector<PieceMap>& maps, int rows, const SoftmaxKernels& kc) {
    if (!selected(name)) return;
    const int R = (int)maps.size();
    const size_t lq = (size_t)B * rows * HD, lk = (size_t)B * rows * KD, lrow = (size_t)B * rows * H;
    std::vector<Dev<bf16>> qL, kL, vL, doL, oL;
    std::vector<Dev<float>> parts, plse, lse, dq, dk, dv;
    for (int r = 0; r < R; ++r) {
      qL.emplace_back(lq), kL.emplace_back(lk), vL.emplace_back(lk), doL.emplace_back(lq), oL.emplace_back(lq);
      parts.emplace_back((size_t)R * lq), plse.emplace_back((size_t)R * lrow), lse.emplace_back(lrow);
      dq.emplace_back(lq), dk.emplace_back(lk), dv.emplace_back(lk);
    }
    for (int r = 0; r < R; ++r)
      for (int i = 0; i < maps[r].count; ++i) {
        const PieceMap& m = maps[r];
        copy_rows(qL[r].p, rows, m.local_offset[i], q.p, N, m.global_start[i], m.length[i], B, HD, s);
        copy_rows(kL[r].p, rows, m.local_offset[i], k.p, N, m.global_start[i], m.length[i], B, KD, s);
        copy_rows(vL[r].p, rows, m.local_offset[i], v.p, N, m.global_start[i], m.length[i], B, KD, s);
        copy_rows(doL[r].p, rows, m.local_offset[i], dO.p, N, m.global_start[i], m.length[i], B, HD, s);
      }
    const SoftmaxDims sd{B, rows, rows, H, Hkv, D};
    lasp::SlotList slots{R, {}};
    for (int u = 0; u < R; ++u) slots.slot[u] = u;
    for (int r = 0; r < R; ++r) {
      parts[r].poison(s), plse[r].poison(s), oL[r].poison(s), lse[r].poison(s);
      for (int u = 0; u < R; ++u) {
        lasp::SoftmaxBlockArgs a;
        a.q = qL[r].p, a.k = kL[u].p, a.v = vL[u].p, a.o = parts[r].p + (size_t)u * lq;
        a.lse = plse[r].p + (size_t)u * lrow, a.o_out = nullptr, a.q_map = maps[r], a.k_map = maps[u];
        a.causal = causal, a.docs = docs;
        if (kc.product) lasp::softmax_block_forward(a, sd, s);
        else
          lasp::smx::block_forward(kc.fwd, a.q, a.k, a.v, sd, a.q_map, a.k_map, causal, a.o, a.lse, nullptr, s, docs);
      }
      lasp::SoftmaxMergeArgs m;
      m.parts = parts[r].p, m.part_lse = plse[r].p, m.sources = slots, m.o = oL[r].p, m.lse = lse[r].p;
      m.batch = B, m.rows = rows, m.heads = H, m.head_dim = D;
      lasp::softmax_merge(m, s);
    }
    Dev<bf16> go(nq);
    go.poison(s);
    for (int r = 0; r < R; ++r)
      for (int i = 0; i < maps[r].count; ++i)
        copy_rows(go.p, N, maps[r].global_start[i], oL[r].p, rows, maps[r].local_offset[i], maps[r].length[i], B, HD,
                  s);
    check_quantities(name + "/fwd", {{"o", download(go, s), &ro, H}}, B, N, D, first);
    for (int r = 0; r < R; ++r) dq[r].zero(s), dk[r].zero(s), dv[r].zero(s);
    for (int r = 0; r < R; ++r)
      for (int u = 0; u < R; ++u) {
        lasp::SoftmaxBlockBackwardArgs a;
        a.q = qL[r].p, a.k = kL[u].p, a.v = vL[u].p, a.o = oL[r].p, a.lse = lse[r].p, a.dout = doL[r].p;
        a.dq = dq[r].p, a.dk = dk[u].p, a.dv = dv[u].p, a.q_map = maps[r], a.k_map = maps[u], a.causal = causal;
        a.docs = docs;
        if (kc.product) lasp::softmax_block_backward(a, sd, s);
        else
          lasp::smx::block_backward(kc.bwd, a.q, a.k, a.v, a.o, a.lse, a.dout, sd, a.q_map, a.k_map, causal, a.dq,
                                    a.dk, a.dv, s, docs);
      }
    Dev<float> gq(nq), gk(nk), gv(nk);
    gq.poison(s), gk.poison(s), gv.poison(s);
    for (int r = 0; r < R; ++r)
      for (int i = 0; i < maps[r].count; ++i) {
        const PieceMap& m = maps[r];
        copy_rows(gq.p, N, m.global_start[i], dq[r].p, rows, m.local_offset[i], m.length[i], B, HD, s);
        copy_rows(gk.p, N, m.global_start[i], dk[r].p, rows, m.local_offset[i], m.length[i], B, KD, s);
        copy_rows(gv.p, N, m.global_start[i], dv[r].p, rows, m.local_offset[i], m.length[i], B, KD, s);
      }
    check_quantities(name + "/bwd",
                     {{"dq", download(gq, s), &rdq, H}, {"dk", download(gk, s), &rdk, Hkv},
                      {"dv", download(gv, s), &rdv, Hkv}},
                     B, N, D, first);
  };
  const int C = N / 4;
  const std::vector<PieceMap> zigzag = {map_of(2, 0, 0, C, C, 3 * C, C), map_of(2, 0, C, C, C, 2 * C, C)};
  ranks(tag + "/blocks4", {map_of(1, 0, 0, C), map_of(1, 0, C, C), map_of(1, 0, 2 * C, C), map_of(1, 0, 3 * C, C)}, C,
        kProductKernels);
  ranks(tag + "/zigzag2", zigzag, 2 * C, kProductKernels);
  if (fallbacks)
    for (const SoftmaxKernels& kc : kFallbackKernels) {
      whole(tag + "/whole" + kc.name, kc);
      ranks(tag + "/zigzag2" + kc.name, zigzag, 2 * C, kc);
    }
  CUDA_CHECK(cudaStreamSynchronize(s));
  lasp::free_documents(dbuf);
}

// ---------------------------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------------------------
static void run_checks(cudaStream_t s) {
  oracle_self_checks(s);
  const int B = 2, H = 4;
  struct Shape {
    int N;
    std::vector<DocCase> cases;
    std::vector<int> dims;  // head dims
    bool linear;            // false: softmax only
    bool fallbacks;         // softmax's fallback kernels too (d 128)
  };
  std::vector<Shape> shapes;
  {
    const int N = 2048, C = N / 4;
    Shape sh{N, {}, {64, 128}, true, true};
    sh.cases.push_back(doc_none(B, N));
    for (auto& c : hand_cases(B, N, C)) sh.cases.push_back(c);
    sh.cases.push_back(doc_drawn(B, N, 40, 101u));
    sh.cases.push_back(doc_drawn(B, N, 100, 202u));
    sh.cases.push_back(doc_drawn(B, N, 700, 303u));
    shapes.push_back(std::move(sh));
  }
  if (!g_quick) {
    const int N = 16384, C = N / 4;
    Shape sh{N, {}, {128}, true, false};
    sh.cases.push_back(doc_none(B, N));
    sh.cases.push_back(doc_drawn(B, N, 100, 404u));
    sh.cases.push_back(doc_drawn(B, N, 3000, 505u));
    sh.cases.push_back(doc_segment_edges(B, N));
    auto hc = hand_cases(B, N, C);
    for (auto& c : hc)
      if (c.name == "piece-first" || c.name == "consecutive" || c.name == "short") sh.cases.push_back(c);
    shapes.push_back(std::move(sh));
  }
  // Softmax only: pieces of an odd number of 64-token blocks (192, 320), so zigzag's 128-row tiles straddle a
  // rank's two pieces and a contiguous rank ends in half a tile.
  {
    const int N = 768, C = N / 4;
    Shape sh{N, {}, {64, 128}, false, true};
    sh.cases.push_back(doc_none(B, N));
    for (auto& c : hand_cases(B, N, C)) sh.cases.push_back(c);
    for (auto& c : zigzag_cases(B, N, C)) sh.cases.push_back(c);
    sh.cases.push_back(doc_drawn(B, N, 40, 606u));
    sh.cases.push_back(doc_drawn(B, N, 100, 707u));
    shapes.push_back(std::move(sh));
  }
  {
    const int N = 1280, C = N / 4;
    Shape sh{N, {}, {64, 128}, false, true};
    sh.cases.push_back(doc_none(B, N));
    for (auto& c : hand_cases(B, N, C))
      if (c.name == "no-ends" || c.name == "piece-first" || c.name == "piece-last" || c.name == "consecutive")
        sh.cases.push_back(c);
    for (auto& c : zigzag_cases(B, N, C)) sh.cases.push_back(c);
    sh.cases.push_back(doc_drawn(B, N, 100, 808u));
    shapes.push_back(std::move(sh));
  }
  for (const Shape& sh : shapes)
    for (int D : sh.dims)
      for (const DocCase& dc : sh.cases) {
        if (sh.linear) {
          for (int use_lam = 0; use_lam < 2; ++use_lam) linear_suite(dc, B, sh.N, H, D, use_lam, true, s);
          linear_suite(dc, B, sh.N, H, D, false, false, s);  // bidirectional: no decay
        }
        const int Hkv = D == 128 ? 2 : 1;
        for (int causal = 1; causal >= 0; --causal) softmax_suite(dc, B, sh.N, H, Hkv, D, causal, sh.fallbacks, s);
      }
}

// ---------------------------------------------------------------------------------------------------------
// The bench
// ---------------------------------------------------------------------------------------------------------
template <typename F>
static float median_ms(F f, int warm, int runs, cudaStream_t s) {
  for (int i = 0; i < warm; ++i) f();
  CUDA_CHECK(cudaStreamSynchronize(s));
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  std::vector<float> t;
  for (int i = 0; i < runs; ++i) {
    CUDA_CHECK(cudaEventRecord(a, s));
    f();
    CUDA_CHECK(cudaEventRecord(b, s));
    CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  CUDA_CHECK(cudaEventDestroy(a));
  CUDA_CHECK(cudaEventDestroy(b));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

static void run_bench(int runs, cudaStream_t s) {
  const int B = 1, N = 65536, H = 16, D = 128, mean = 2048;
  const size_t n = (size_t)B * N * H * D;
  Dev<bf16> q(n), k(n), v(n), dO(n), o(n), dq(n), dk(n), dv(n);
  fill_uniform(q, 21, 1.f, s);
  fill_uniform(k, 22, 1.f, s);
  fill_uniform(v, 23, 1.f, s);
  fill_uniform(dO, 24, 1.f, s);
  std::vector<float> lam_h(H);
  for (int h = 0; h < H; ++h) lam_h[h] = (float)(1.0 - std::exp2(-(5.0 + 5.0 * h / (H - 1))));  // 0.969 .. 0.999
  Dev<float> lam(H), M((size_t)B * H * D * D), flag(B), lse((size_t)B * N * H);
  upload_f32(lam.p, lam_h, s);
  DocCase dc = doc_drawn(B, N, mean, 2048u);
  lasp::DocumentBuffers dbuf;
  const Documents with = upload_case(dc, B, N, dbuf, s), none{};
  const LinearDims dims{B, N, H, D};
  const Piece whole{0, N};
  const SoftmaxDims sd{B, N, N, H, H, D};

  cudaDeviceProp prop;
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  std::printf("GPU %s (%d SMs, cc %d.%d)\n", prop.name, prop.multiProcessorCount, prop.major, prop.minor);
  std::printf("bench: batch %d, %d tokens, %d heads x %d, per-head decay, %d documents (mean length %d) vs none; "
              "median of %d runs after 3 warm-ups; softmax backend %s\n",
              B, N, H, D, count_docs(dc, B, N), mean, runs, lasp::softmax_whole_backend(sd, true, false));

  struct Op {
    const char* name;
    std::function<void(const Documents&)> run;
    std::function<void(const Documents&)> prepare;  // untimed, before the timing (the forward of a backward)
  };
  auto softmax_fwd = [&](bool causal) {
    return [&, causal](const Documents& docs) {
      lasp::SoftmaxFullArgs a;
      a.q = q.p, a.k = k.p, a.v = v.p, a.o = o.p, a.lse = lse.p, a.causal = causal, a.docs = docs;
      lasp::softmax_whole_forward(a, sd, s);
    };
  };
  auto softmax_bwd = [&](bool causal) {
    return [&, causal](const Documents& docs) {
      lasp::SoftmaxFullBackwardArgs a;
      a.q = q.p, a.k = k.p, a.v = v.p, a.o = o.p, a.lse = lse.p, a.dout = dO.p, a.dq = dq.p, a.dk = dk.p;
      a.dv = dv.p, a.causal = causal, a.docs = docs;
      lasp::softmax_whole_backward(a, sd, s);
    };
  };
  std::vector<Op> ops = {
      {"linear_state (M, flag)",
       [&](const Documents& docs) {
         lasp::LinearStateArgs a;
         a.k = k.p, a.v = v.p, a.m = M.p, a.piece = whole, a.docs = docs, a.position = 0;
         a.flag = docs.any() ? flag.p : nullptr;
         lasp::linear_state(a, dims, lam.p, s);
       },
       nullptr},
      {"linear_forward_fused",
       [&](const Documents& docs) {
         lasp::LinearForwardFusedArgs a;
         a.q = q.p, a.k = k.p, a.v = v.p, a.p = nullptr, a.o = o.p, a.piece = whole, a.docs = docs, a.position = 0;
         a.causal = true;
         lasp::linear_forward_fused(a, dims, lam.p, s);
       },
       nullptr},
      {"linear_backward_fused",
       [&](const Documents& docs) {
         lasp::LinearBackwardFusedArgs a;
         a.q = q.p, a.k = k.p, a.v = v.p, a.dout = dO.p, a.p = nullptr, a.g = nullptr, a.dq = dq.p, a.dk = dk.p;
         a.dv = dv.p, a.piece = whole, a.docs = docs, a.position = 0, a.causal = true;
         lasp::linear_backward_fused(a, dims, lam.p, s);
       },
       nullptr},
      {"softmax_whole_forward causal", softmax_fwd(true), nullptr},
      {"softmax_whole_backward causal", softmax_bwd(true), softmax_fwd(true)},
      {"softmax_whole_forward bidir", softmax_fwd(false), nullptr},
      {"softmax_whole_backward bidir", softmax_bwd(false), softmax_fwd(false)},
  };
  std::printf("\n| op | none ms | docs ms | docs / none |\n|---|---|---|---|\n");
  for (const Op& op : ops) {
    float ms[2];
    for (int w = 0; w < 2; ++w) {
      const Documents& docs = w ? with : none;
      if (op.prepare) op.prepare(docs);
      ms[w] = median_ms([&] { op.run(docs); }, 3, runs, s);
    }
    std::printf("| %s | %.3f | %.3f | %.3f |\n", op.name, ms[0], ms[1], ms[1] / ms[0]);
    std::fflush(stdout);
  }
  CUDA_CHECK(cudaStreamSynchronize(s));
  lasp::free_documents(dbuf);
}

// ---------------------------------------------------------------------------------------------------------
static int usage() {
  std::fprintf(stderr,
               "usage: documents_check [--seed N] [--tol X] [--doc-tol X] [--quick] [--filter TEXT] [--list]\n"
               "       documents_check --bench [--runs N]\n");
  return 2;
}

int main(int argc, char** argv) {
  bool bench = false;
  int runs = 15;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* x = nullptr;
    if (a == "--bench") bench = true;
    else if (a == "--quick") g_quick = true;
    else if (a == "--list") g_list = true;
    else if (a == "--seed" && (x = next())) g_seed = std::strtoull(x, nullptr, 10);
    else if (a == "--tol" && (x = next())) g_tol = std::atof(x);
    else if (a == "--doc-tol" && (x = next())) g_doc_tol = std::atof(x);
    else if (a == "--filter" && (x = next())) g_filter = x;
    else if (a == "--runs" && (x = next())) runs = std::max(1, std::atoi(x));
    else return usage();
  }
  // lasp's own softmax kernels for the whole-sequence calls, never cuDNN (softmax_backend.cuh reads this once).
  setenv("LASP_SOFTMAX_BACKEND", "lasp", 1);
  if (g_list) {
    cudaStream_t s = nullptr;
    run_checks(s);
    return 0;
  }
  CUDA_CHECK(cudaSetDevice(0));
  cudaStream_t s;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  {
    const SoftmaxDims probe{1, 64, 64, 1, 1, 128};
    const char* backend = lasp::softmax_whole_backend(probe, true, false);
    if (std::strcmp(backend, "lasp") != 0) {
      std::printf("FAIL softmax_whole_backend is %s, not lasp\n", backend);
      return 1;
    }
  }
  if (bench) {
    run_bench(runs, s);
    return 0;
  }
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("documents_check: GPU %s, seed %llu, tol %.0e, doc_tol %.0e%s%s%s\n", prop.name,
              (unsigned long long)g_seed, g_tol, g_doc_tol, g_quick ? ", quick" : "",
              g_filter.empty() ? "" : ", filter ", g_filter.c_str());
  run_checks(s);
  CUDA_CHECK(cudaStreamSynchronize(s));
  std::printf("documents_check: %d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
