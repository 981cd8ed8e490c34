// cuDNN fused attention (SDPA) as an alternative backend of the softmax-attention layers, written against the
// cuDNN backend C API (cudnn_graph.h): no cudnn_frontend. Our kernels (softmax_attention.cuh) stay the
// fallback; the generated program defines LASP_WITH_CUDNN only when CMake finds cuDNN, and without it this
// file is empty (CI has no cuDNN).
//
// Why an operation graph at all: cuDNN's flash-attention engine on Hopper is not called by name; the
// heuristics hand it out for an operation graph of a known shape (the one cudnn_frontend's SDPA node emits),
// and any other graph falls to generic fusion engines or to none. So the graphs below mirror that pattern op
// by op, including its quirks (a multiply by 1.0 in the backward, the data types of the virtual tensors).
//
// Forward graph (cuDNN dims (b, h, s, d); ids: 1 Q, 2 K^T, 3 V, 4 O, 5 Stats, 6 scale, 7 -inf, 8 s_kv,
// 9 s_q; 6-9 are by-value scalars read from host memory at execute time; virtual tensors have ids >= 100):
//   S = Q K^T (matmul, K given as the transposed view b,h,d,s) -> S *= scale
//   causal: row = gen_index(S, axis 2), col = gen_index(S, axis 3), [row += s_kv, row -= s_q when
//           q_rows != k_rows: bottom-right alignment], keep = row >= col, S = keep ? S : -inf
//   M = max_j S, E = exp(S - M), Z = sum_j E, Stats = M + log Z (non-virtual output), P = E / Z (bf16)
//   O = P V
// Backward graph (ids: 1 Q, 2 K^T, 3 V^T, 4 O, 5 Stats, 6 scale, 7 -inf, 8 s_kv, 9 s_q, 10 dO, 11 dQ,
// 12 dK, 13 dV, 14 the scalar 1.0, 15 softmax_sum (fp32 b,h,s_q,1 in our workspace), 16 dQ_accum (fp32
// b,h,s_q,d in our workspace; cuDNN >= 9.6 zeroes it itself)):
//   softmax_sum = (sum_d dO * O) * 1.0
//   S = scale Q K^T, S -= Stats, causal mask as above, E = exp(S)           (E = P, recomputed)
//   dV = reshape(E)^T dO   (GQA: the product per query head, then a sum reduction over the group)
//   dS = (dO V^T - softmax_sum) * E * scale
//   dK = reshape(dS)^T Q   (GQA: likewise reduced), dQ_accum = dS reshape(K^T), dQ = identity(dQ_accum)
//
// Design choices:
// - One cudnnHandle per device, created on first use and kept. Plans are cached per device by everything that
//   changes the graph (direction, shape, strides, causal, scale); building one runs cuDNN's heuristics and may
//   compile kernels (tens to hundreds of ms), so it must happen once, outside timed or captured regions:
//   cudnn_sdpa_supported() builds both plans of a shape.
// - Pointers travel in a variant pack made per call (a few host calls, microseconds); the by-value scalars
//   point into the cached plan, so their addresses stay valid.
// - One workspace per device, grown on demand (cudaFree + cudaMalloc, which synchronise: never in steady
//   state) and kept; it holds the plan's own workspace and, for the backward, softmax_sum and dQ_accum. All
//   calls on a device share it, so they must be ordered (one stream, or events) -- as for the kernels' own
//   workspaces in softmax_attention.cuh.
// - cudnn_sdpa_supported() never exits and prints nothing: every cuDNN status on that path is returned, not
//   checked. The forward/backward calls exit (code 3, with cuDNN's message) when no plan can be made, since
//   the caller was meant to ask first.
// - Not thread-safe (the generated program drives each device from one host thread).
// - Host functions are `inline` so the header may be included by several translation units.
// - lse is cuDNN's stats layout, [batch][heads][q_rows]; our kernels' lse is [batch][q_rows][heads]: a caller
//   that mixes the two backends for one layer must not hand one's lse to the other.
// - cuDNN >= 9.13 also has a dedicated SDPA operation (CUDNN_BACKEND_OPERATION_SDPA_FWD_DESCRIPTOR), forward only;
//   the op-by-op graph serves both passes with one set of conventions, so it is not used.
// - Measured (H100 80GB HBM3, system cuDNN 9.14.0, batch 1, causal, 16 heads x 128; bench/gpu/SOFTMAX_NOTES.md
//   run 8): forward 623 / 622 TFLOP/s at 16K / 64K tokens, backward 552 / 541, fwd+bwd 6.74 / 109.6 ms, i.e.
//   1.37x our kernels' fwd+bwd in the same call; about 1.0x PyTorch SDPA's cuDNN path (an earlier call).
#pragma once
#ifdef LASP_WITH_CUDNN

#include <cuda_runtime.h>
#include <cudnn.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <vector>

#include "check.cuh"
#include "types.cuh"

#ifndef CUDNN_CHECK
#define CUDNN_CHECK(call)                                                                                 \
  do {                                                                                                    \
    cudnnStatus_t lasp_cs_ = (call);                                                                      \
    if (lasp_cs_ != CUDNN_STATUS_SUCCESS) {                                                               \
      std::fprintf(stderr, "cuDNN error %d (%s)\n  at %s:%d\n  in %s\n", (int)lasp_cs_,                   \
                   cudnnGetErrorString(lasp_cs_), __FILE__, __LINE__, #call);                             \
      std::exit(LASP_EXIT_CODE_FAILURE);                                                                  \
    }                                                                                                     \
  } while (0)
#endif

namespace lasp {

// One attention call: q rows against a prefix of keys. Causal is bottom-right aligned:
// query i (0-based within this call) sees key j iff j <= i + (k_rows - q_rows).  (q_rows <= k_rows when causal)
struct CudnnSdpaShape {
  int batch, heads, kv_heads, q_rows, k_rows, head_dim;  // heads % kv_heads == 0; head_dim 64 or 128
  bool causal;
  float scale;                 // softmax scale, usually 1/sqrt(head_dim)
  long long q_batch_stride;    // elements between batches of q, o, dO, dq (rows are dense: row stride heads*head_dim)
  long long kv_batch_stride;   // elements between batches of k, v, dk, dv (row stride kv_heads*head_dim)
};

namespace cudnn_sdpa {

// Owns one backend descriptor.
struct Desc {
  cudnnBackendDescriptor_t d = nullptr;
  Desc() = default;
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;
  ~Desc() {
    if (d) cudnnBackendDestroyDescriptor(d);
  }
};

struct Layout {
  int64_t dim[4];
  int64_t stride[4];
};

// A built (or failed) plan. Everything it was built from stays alive with it: the backend may keep references
// from the plan to the graph's descriptors.
struct Plan {
  bool ok = false;
  cudnnStatus_t status = CUDNN_STATUS_SUCCESS;  // the first failure, when !ok
  char what[160] = {};                          // which step failed
  std::vector<std::unique_ptr<Desc>> keep;
  cudnnBackendDescriptor_t plan = nullptr;
  int64_t plan_workspace = 0;   // bytes the engine asks for
  int64_t softmax_sum_bytes = 0, dq_accum_bytes = 0;  // backward only, placed after the plan's workspace
  // By-value scalars: the variant pack points here at execute time.
  float scale = 1.0f, neg_inf = -std::numeric_limits<float>::infinity(), one = 1.0f;
  int32_t s_kv = 0, s_q = 0;
};

enum Uid : int64_t {
  kQ = 1, kK = 2, kV = 3, kO = 4, kStats = 5, kScale = 6, kNegInf = 7, kSkv = 8, kSq = 9,
  kdO = 10, kdQ = 11, kdK = 12, kdV = 13, kOne = 14, kSoftmaxSum = 15, kdQAccum = 16,
  kFirstVirtual = 100,
};

// Builds one operation graph and its plan. Every call after the first failure does nothing, so the graph code
// reads straight through and the first failing step is what gets reported.
struct Builder {
  Plan& p;
  cudnnHandle_t handle;
  int64_t next_uid = kFirstVirtual;
  std::vector<cudnnBackendDescriptor_t> ops;
  std::map<int64_t, cudnnBackendDescriptor_t> tensors;

  Builder(Plan& plan, cudnnHandle_t h) : p(plan), handle(h) {}

  bool good() const { return p.status == CUDNN_STATUS_SUCCESS; }
  void fail(cudnnStatus_t s, const char* what) {
    if (good() && s != CUDNN_STATUS_SUCCESS) {
      p.status = s;
      std::snprintf(p.what, sizeof(p.what), "%s", what);
    }
  }
  cudnnBackendDescriptor_t make(cudnnBackendDescriptorType_t t, const char* what) {
    if (!good()) return nullptr;
    p.keep.emplace_back(new Desc);
    fail(cudnnBackendCreateDescriptor(t, &p.keep.back()->d), what);
    return p.keep.back()->d;
  }
  void set(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t a, cudnnBackendAttributeType_t t, int64_t n,
           const void* v, const char* what) {
    if (good()) fail(cudnnBackendSetAttribute(d, a, t, n, v), what);
  }
  void finalize(cudnnBackendDescriptor_t d, const char* what) {
    if (good()) fail(cudnnBackendFinalize(d), what);
  }

  // uid 0: a new virtual tensor.
  int64_t tensor(cudnnDataType_t dt, const Layout& l, int64_t uid = 0, bool by_value = false) {
    const bool is_virtual = uid == 0;
    if (is_virtual) uid = next_uid++;
    cudnnBackendDescriptor_t t = make(CUDNN_BACKEND_TENSOR_DESCRIPTOR, "tensor descriptor");
    const int64_t align = 16;
    set(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt, "tensor data type");
    set(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, l.dim, "tensor dims");
    set(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, l.stride, "tensor strides");
    set(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, "tensor uid");
    set(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align, "tensor alignment");
    if (is_virtual) {
      bool v = true;
      set(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &v, "tensor virtual");
    }
    if (by_value) {
      bool v = true;
      set(t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &v, "tensor by value");
    }
    finalize(t, "tensor finalize");
    tensors[uid] = t;
    return uid;
  }
  int64_t scalar(cudnnDataType_t dt, int64_t uid) { return tensor(dt, Layout{{1, 1, 1, 1}, {1, 1, 1, 1}}, uid, true); }
  cudnnBackendDescriptor_t td(int64_t uid) { return good() ? tensors.at(uid) : nullptr; }

  // y = mode(x[, b[, t]]); y is a new virtual tensor unless y_uid names one. Returns y's uid.
  int64_t pointwise(cudnnPointwiseMode_t mode, int64_t x, int64_t b, int64_t t, cudnnDataType_t y_type,
                    const Layout& y_layout, cudnnDataType_t compute = CUDNN_DATA_FLOAT, int64_t axis = -1,
                    int64_t y_uid = 0) {
    const int64_t y = y_uid ? y_uid : tensor(y_type, y_layout);
    cudnnBackendDescriptor_t pw = make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, "pointwise descriptor");
    set(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, "pointwise mode");
    set(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &compute, "pointwise precision");
    if (mode == CUDNN_POINTWISE_GEN_INDEX)
      set(pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis, "pointwise axis");
    finalize(pw, "pointwise finalize");
    cudnnBackendDescriptor_t op = make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, "pointwise op");
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw, "pointwise op desc");
    cudnnBackendDescriptor_t xd = td(x), yd = td(y);
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &xd, "pointwise x");
    if (b) {
      cudnnBackendDescriptor_t bd = td(b);
      set(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &bd, "pointwise b");
    }
    if (t) {
      cudnnBackendDescriptor_t tdd = td(t);
      set(op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tdd, "pointwise t");
    }
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &yd, "pointwise y");
    const float one = 1.0f;
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, 1, &one, "pointwise alpha1");
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1, &one, "pointwise alpha2");
    finalize(op, "pointwise op finalize");
    ops.push_back(op);
    return y;
  }

  int64_t matmul(int64_t a, int64_t b, cudnnDataType_t c_type, const Layout& c_layout, int64_t c_uid = 0) {
    const int64_t c = c_uid ? c_uid : tensor(c_type, c_layout);
    cudnnBackendDescriptor_t mm = make(CUDNN_BACKEND_MATMUL_DESCRIPTOR, "matmul descriptor");
    const cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    set(mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp, "matmul compute type");
    finalize(mm, "matmul finalize");
    cudnnBackendDescriptor_t op = make(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, "matmul op");
    cudnnBackendDescriptor_t ad = td(a), bd = td(b), cd = td(c);
    set(op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &ad, "matmul a");
    set(op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &bd, "matmul b");
    set(op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cd, "matmul c");
    set(op, CUDNN_ATTR_OPERATION_MATMUL_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &mm, "matmul desc");
    finalize(op, "matmul op finalize");
    ops.push_back(op);
    return c;
  }

  int64_t reduction(cudnnReduceTensorOp_t mode, int64_t x, cudnnDataType_t y_type, const Layout& y_layout,
                    int64_t y_uid = 0) {
    const int64_t y = y_uid ? y_uid : tensor(y_type, y_layout);
    cudnnBackendDescriptor_t rd = make(CUDNN_BACKEND_REDUCTION_DESCRIPTOR, "reduction descriptor");
    const cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    set(rd, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp, "reduction compute type");
    set(rd, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &mode, "reduction operator");
    finalize(rd, "reduction finalize");
    cudnnBackendDescriptor_t op = make(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, "reduction op");
    cudnnBackendDescriptor_t xd = td(x), yd = td(y);
    set(op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &rd, "reduction desc");
    set(op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &xd, "reduction x");
    set(op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &yd, "reduction y");
    finalize(op, "reduction op finalize");
    ops.push_back(op);
    return y;
  }

  // A view with other dims/strides over the same elements (the transposes of the backward).
  int64_t reshape(int64_t x, cudnnDataType_t y_type, const Layout& y_layout) {
    const int64_t y = tensor(y_type, y_layout);
    cudnnBackendDescriptor_t op = make(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR, "reshape op");
    cudnnBackendDescriptor_t xd = td(x), yd = td(y);
    set(op, CUDNN_ATTR_OPERATION_RESHAPE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &xd, "reshape x");
    set(op, CUDNN_ATTR_OPERATION_RESHAPE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &yd, "reshape y");
    finalize(op, "reshape op finalize");
    ops.push_back(op);
    return y;
  }

  // The operation graph, then the first engine configuration of heuristics mode A whose plan finalizes. No
  // fallback list: for this graph its engines (if any) would materialise the s_q x s_kv scores.
  void build_plan() {
    if (!good()) return;
    cudnnBackendDescriptor_t graph = make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, "operation graph");
    set(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle, "graph handle");
    set(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, (int64_t)ops.size(), ops.data(),
        "graph ops");
    finalize(graph, "operation graph finalize");
    const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
    cudnnBackendDescriptor_t heur = make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, "heuristics");
    set(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph, "heuristics graph");
    set(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, "heuristics mode");
    finalize(heur, "heuristics finalize");
    int64_t count = 0;
    if (good())
      fail(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                    nullptr), "heuristics result count");
    std::vector<cudnnBackendDescriptor_t> cfgs;
    for (int64_t i = 0; i < count; ++i) cfgs.push_back(make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, "engine config"));
    int64_t got = 0;
    if (good() && count > 0)
      fail(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got,
                                    cfgs.data()), "heuristics results");
    if (!good()) return;
    cudnnStatus_t last = CUDNN_STATUS_NOT_SUPPORTED;
    for (int64_t i = 0; i < got; ++i) {
      p.keep.emplace_back(new Desc);
      Desc& plan = *p.keep.back();
      if ((last = cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan.d)) != CUDNN_STATUS_SUCCESS)
        continue;
      if ((last = cudnnBackendSetAttribute(plan.d, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle)) !=
              CUDNN_STATUS_SUCCESS ||
          (last = cudnnBackendSetAttribute(plan.d, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                           CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfgs[i])) != CUDNN_STATUS_SUCCESS ||
          (last = cudnnBackendFinalize(plan.d)) != CUDNN_STATUS_SUCCESS)
        continue;  // this engine configuration cannot run the graph here; try the next
      int64_t ws = 0, n = 0;
      if ((last = cudnnBackendGetAttribute(plan.d, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n,
                                           &ws)) != CUDNN_STATUS_SUCCESS)
        continue;
      p.plan = plan.d;
      p.plan_workspace = ws;
      p.ok = true;
      return;
    }
    fail(last, got ? "no engine configuration finalizes a plan" : "heuristics offer no engine for this graph");
  }
};

// Activations [batch][rows][heads][d] as cuDNN (b, h, s, d).
inline Layout bhsd(long long batch_stride, int b, int h, int s, int d) {
  return Layout{{b, h, s, d}, {batch_stride, d, (int64_t)h * d, 1}};
}
// The same memory seen as (b, h, d, s): K^T (and V^T in the backward).
inline Layout bhds(long long batch_stride, int b, int h, int s, int d) {
  return Layout{{b, h, d, s}, {batch_stride, d, 1, (int64_t)h * d}};
}
// A dense virtual (b, h, m, n) tensor.
inline Layout dense(int b, int h, int m, int n) {
  return Layout{{b, h, m, n}, {(int64_t)h * m * n, (int64_t)m * n, n, 1}};
}
// Its transpose (b, h, n, m) over the same elements.
inline Layout dense_t(int b, int h, int m, int n) {
  return Layout{{b, h, n, m}, {(int64_t)h * m * n, (int64_t)m * n, 1, n}};
}

// scores -> scores with invisible keys at -inf (nothing when not causal). The op sequence is the one the
// fused engine expects (cudnn_frontend's diagonal band mask, right bound 0).
inline int64_t causal_mask(Builder& g, const CudnnSdpaShape& s, int64_t scores) {
  if (!s.causal) return scores;
  const Layout sl = dense(s.batch, s.heads, s.q_rows, s.k_rows);
  int64_t row = g.pointwise(CUDNN_POINTWISE_GEN_INDEX, scores, 0, 0, CUDNN_DATA_INT32, sl, CUDNN_DATA_FLOAT, 2);
  const int64_t col = g.pointwise(CUDNN_POINTWISE_GEN_INDEX, scores, 0, 0, CUDNN_DATA_INT32, sl, CUDNN_DATA_FLOAT, 3);
  if (s.q_rows != s.k_rows) {  // bottom-right: row + (s_kv - s_q) >= col
    row = g.pointwise(CUDNN_POINTWISE_ADD, row, kSkv, 0, CUDNN_DATA_INT32, sl, CUDNN_DATA_INT32);
    row = g.pointwise(CUDNN_POINTWISE_SUB, row, kSq, 0, CUDNN_DATA_INT32, sl, CUDNN_DATA_INT32);
  }
  const int64_t keep = g.pointwise(CUDNN_POINTWISE_CMP_GE, row, col, 0, CUDNN_DATA_BOOLEAN, sl, CUDNN_DATA_BOOLEAN);
  return g.pointwise(CUDNN_POINTWISE_BINARY_SELECT, scores, kNegInf, keep, CUDNN_DATA_FLOAT, sl);
}

inline void common_scalars(Builder& g, Plan& p, const CudnnSdpaShape& s) {
  p.scale = s.scale;
  p.s_kv = s.k_rows;
  p.s_q = s.q_rows;
  g.scalar(CUDNN_DATA_FLOAT, kScale);
  if (s.causal) {
    g.scalar(CUDNN_DATA_FLOAT, kNegInf);
    if (s.q_rows != s.k_rows) {
      g.scalar(CUDNN_DATA_INT32, kSkv);
      g.scalar(CUDNN_DATA_INT32, kSq);
    }
  }
}

inline void build_forward(Plan& p, cudnnHandle_t h, const CudnnSdpaShape& s) {
  Builder g(p, h);
  const int B = s.batch, H = s.heads, HK = s.kv_heads, SQ = s.q_rows, SK = s.k_rows, D = s.head_dim;
  g.tensor(CUDNN_DATA_BFLOAT16, bhsd(s.q_batch_stride, B, H, SQ, D), kQ);
  g.tensor(CUDNN_DATA_BFLOAT16, bhds(s.kv_batch_stride, B, HK, SK, D), kK);
  g.tensor(CUDNN_DATA_BFLOAT16, bhsd(s.kv_batch_stride, B, HK, SK, D), kV);
  g.tensor(CUDNN_DATA_BFLOAT16, bhsd(s.q_batch_stride, B, H, SQ, D), kO);
  const Layout stats{{B, H, SQ, 1}, {(int64_t)H * SQ, SQ, 1, 1}};
  g.tensor(CUDNN_DATA_FLOAT, stats, kStats);
  common_scalars(g, p, s);

  const Layout sl = dense(B, H, SQ, SK);
  int64_t x = g.matmul(kQ, kK, CUDNN_DATA_FLOAT, sl);
  x = g.pointwise(CUDNN_POINTWISE_MUL, x, kScale, 0, CUDNN_DATA_FLOAT, sl);
  x = causal_mask(g, s, x);
  const int64_t m = g.reduction(CUDNN_REDUCE_TENSOR_MAX, x, CUDNN_DATA_FLOAT, stats);
  const int64_t e0 = g.pointwise(CUDNN_POINTWISE_SUB, x, m, 0, CUDNN_DATA_FLOAT, sl);
  const int64_t e = g.pointwise(CUDNN_POINTWISE_EXP, e0, 0, 0, CUDNN_DATA_FLOAT, sl);
  const int64_t z = g.reduction(CUDNN_REDUCE_TENSOR_ADD, e, CUDNN_DATA_FLOAT, stats);
  const int64_t lz = g.pointwise(CUDNN_POINTWISE_LOG, z, 0, 0, CUDNN_DATA_FLOAT, stats);
  g.pointwise(CUDNN_POINTWISE_ADD, m, lz, 0, CUDNN_DATA_FLOAT, stats, CUDNN_DATA_FLOAT, -1, kStats);
  // P in the I/O type: the engine feeds the second GEMM with bf16 operands.
  const int64_t pr = g.pointwise(CUDNN_POINTWISE_DIV, e, z, 0, CUDNN_DATA_BFLOAT16, sl);
  g.matmul(pr, kV, CUDNN_DATA_BFLOAT16, Layout{}, kO);
  g.build_plan();
}

// k_view_type: the data type of the reshaped K that feeds dQ = dS K. cudnn_frontend leaves it at the
// intermediate type (fp32); if an engine rejects that, the builder retries with bf16 (see get_plan).
inline void build_backward(Plan& p, cudnnHandle_t h, const CudnnSdpaShape& s, cudnnDataType_t k_view_type) {
  Builder g(p, h);
  const int B = s.batch, H = s.heads, HK = s.kv_heads, SQ = s.q_rows, SK = s.k_rows, D = s.head_dim;
  g.tensor(CUDNN_DATA_BFLOAT16, bhsd(s.q_batch_stride, B, H, SQ, D), kQ);
  g.tensor(CUDNN_DATA_BFLOAT16, bhds(s.kv_batch_stride, B, HK, SK, D), kK);
  g.tensor(CUDNN_DATA_BFLOAT16, bhds(s.kv_batch_stride, B, HK, SK, D), kV);
  g.tensor(CUDNN_DATA_BFLOAT16, bhsd(s.q_batch_stride, B, H, SQ, D), kO);
  g.tensor(CUDNN_DATA_BFLOAT16, bhsd(s.q_batch_stride, B, H, SQ, D), kdO);
  g.tensor(CUDNN_DATA_BFLOAT16, bhsd(s.q_batch_stride, B, H, SQ, D), kdQ);
  g.tensor(CUDNN_DATA_BFLOAT16, bhsd(s.kv_batch_stride, B, HK, SK, D), kdK);
  g.tensor(CUDNN_DATA_BFLOAT16, bhsd(s.kv_batch_stride, B, HK, SK, D), kdV);
  const Layout stats{{B, H, SQ, 1}, {(int64_t)H * SQ, SQ, 1, 1}};
  g.tensor(CUDNN_DATA_FLOAT, stats, kStats);
  g.tensor(CUDNN_DATA_FLOAT, stats, kSoftmaxSum);
  g.tensor(CUDNN_DATA_FLOAT, dense(B, H, SQ, D), kdQAccum);
  common_scalars(g, p, s);
  g.scalar(CUDNN_DATA_FLOAT, kOne);
  p.softmax_sum_bytes = (int64_t)B * H * SQ * 4;
  p.dq_accum_bytes = (int64_t)B * H * SQ * D * 4;

  // softmax_sum = rowsum(dO * O) (the virtual product keeps the activations' row order)
  const Layout doo{{B, H, SQ, D}, {(int64_t)H * SQ * D, (int64_t)SQ * D, (int64_t)H * D, 1}};
  int64_t x = g.pointwise(CUDNN_POINTWISE_MUL, kdO, kO, 0, CUDNN_DATA_FLOAT, doo);
  x = g.reduction(CUDNN_REDUCE_TENSOR_ADD, x, CUDNN_DATA_FLOAT, stats);
  g.pointwise(CUDNN_POINTWISE_MUL, x, kOne, 0, CUDNN_DATA_FLOAT, stats, CUDNN_DATA_FLOAT, -1, kSoftmaxSum);

  // P = exp(scale Q K^T - Stats), masked
  const Layout sl = dense(B, H, SQ, SK), slt = dense_t(B, H, SQ, SK);
  x = g.matmul(kQ, kK, CUDNN_DATA_FLOAT, sl);
  x = g.pointwise(CUDNN_POINTWISE_MUL, x, kScale, 0, CUDNN_DATA_FLOAT, sl);
  x = g.pointwise(CUDNN_POINTWISE_SUB, x, kStats, 0, CUDNN_DATA_FLOAT, sl);
  x = causal_mask(g, s, x);
  const int64_t pe = g.pointwise(CUDNN_POINTWISE_EXP, x, 0, 0, CUDNN_DATA_FLOAT, sl);

  // dV = P^T dO (GQA: per query head, then summed over each kv head's group)
  const int64_t pt = g.reshape(pe, CUDNN_DATA_BFLOAT16, slt);
  if (H == HK) {
    g.matmul(pt, kdO, CUDNN_DATA_BFLOAT16, Layout{}, kdV);
  } else {
    const int64_t dvf = g.matmul(pt, kdO, CUDNN_DATA_BFLOAT16, dense(B, H, SK, D));
    g.reduction(CUDNN_REDUCE_TENSOR_ADD, dvf, CUDNN_DATA_BFLOAT16, Layout{}, kdV);
  }

  // dS = (dO V^T - softmax_sum) * P * scale
  x = g.matmul(kdO, kV, CUDNN_DATA_FLOAT, sl);
  x = g.pointwise(CUDNN_POINTWISE_SUB, x, kSoftmaxSum, 0, CUDNN_DATA_FLOAT, sl);
  x = g.pointwise(CUDNN_POINTWISE_MUL, x, pe, 0, CUDNN_DATA_FLOAT, sl);
  const int64_t ds = g.pointwise(CUDNN_POINTWISE_MUL, x, kScale, 0, CUDNN_DATA_FLOAT, sl);

  // dK = dS^T Q
  const int64_t dst = g.reshape(ds, CUDNN_DATA_BFLOAT16, slt);
  if (H == HK) {
    g.matmul(dst, kQ, CUDNN_DATA_BFLOAT16, Layout{}, kdK);
  } else {
    const int64_t dkf = g.matmul(dst, kQ, CUDNN_DATA_BFLOAT16, dense(B, H, SK, D));
    g.reduction(CUDNN_REDUCE_TENSOR_ADD, dkf, CUDNN_DATA_BFLOAT16, Layout{}, kdK);
  }

  // dQ = dS K, accumulated in fp32 by the engine, then cast
  const int64_t kv = g.reshape(kK, k_view_type, bhsd(s.kv_batch_stride, B, HK, SK, D));
  g.matmul(ds, kv, CUDNN_DATA_FLOAT, Layout{}, kdQAccum);
  g.pointwise(CUDNN_POINTWISE_IDENTITY, kdQAccum, 0, 0, CUDNN_DATA_BFLOAT16, Layout{}, CUDNN_DATA_FLOAT, -1, kdQ);
  g.build_plan();
}

struct DeviceState {
  cudnnHandle_t handle = nullptr;
  bool handle_failed = false;
  std::map<std::array<long long, 13>, std::unique_ptr<Plan>> plans;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

// Never destroyed: at exit the CUDA context may already be gone when static destructors would release plans
// and buffers, so the handles, plans and workspaces live as long as the process.
inline DeviceState& device_state(int dev) {
  static auto* states = new std::map<int, DeviceState>;
  return (*states)[dev];
}

inline int current_device() {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return -1;
  return dev;
}

// Shapes the graph cannot express or the engine is known not to take, checked before asking cuDNN.
inline bool shape_ok(const CudnnSdpaShape& s) {
  if (s.batch <= 0 || s.heads <= 0 || s.kv_heads <= 0 || s.heads % s.kv_heads != 0) return false;
  if (s.head_dim != 64 && s.head_dim != 128) return false;
  if (s.q_rows <= 0 || s.k_rows <= 0) return false;
  if (s.causal && s.q_rows > s.k_rows) return false;  // bottom-right needs s_q <= s_kv
  const long long q_row = (long long)s.heads * s.head_dim, kv_row = (long long)s.kv_heads * s.head_dim;
  // TMA loads need 16-byte strides: 8 bf16 elements.
  if (s.q_batch_stride % 8 != 0 || s.kv_batch_stride % 8 != 0) return false;
  if (s.batch > 1 && (s.q_batch_stride < q_row * s.q_rows || s.kv_batch_stride < kv_row * s.k_rows)) return false;
  return true;
}

// 0 = forward, 1 = backward. Returns the cached plan, building it on first use (ok false if it cannot be built).
inline Plan* get_plan(int dir, const CudnnSdpaShape& s) {
  const int dev = current_device();
  if (dev < 0) return nullptr;
  DeviceState& st = device_state(dev);
  if (!st.handle) {
    if (st.handle_failed) return nullptr;
    if (cudnnCreate(&st.handle) != CUDNN_STATUS_SUCCESS) {
      st.handle = nullptr;
      st.handle_failed = true;
      return nullptr;
    }
  }
  uint32_t scale_bits;
  std::memcpy(&scale_bits, &s.scale, 4);
  const std::array<long long, 13> key{dir, s.batch, s.heads, s.kv_heads, s.q_rows, s.k_rows, s.head_dim,
                                      s.causal ? 1 : 0, (long long)scale_bits, s.q_batch_stride, s.kv_batch_stride,
                                      0, 0};
  auto it = st.plans.find(key);
  if (it != st.plans.end()) return it->second.get();
  std::unique_ptr<Plan> p(new Plan);
  if (dir == 0) {
    build_forward(*p, st.handle, s);
  } else {
    build_backward(*p, st.handle, s, CUDNN_DATA_FLOAT);
    if (!p->ok) {  // see build_backward: the one type the public graph leaves open
      std::unique_ptr<Plan> q(new Plan);
      build_backward(*q, st.handle, s, CUDNN_DATA_BFLOAT16);
      if (q->ok) p = std::move(q);
    }
  }
  Plan* raw = p.get();
  st.plans[key] = std::move(p);
  return raw;
}

inline Plan* plan_or_die(int dir, const CudnnSdpaShape& s, const char* who) {
  Plan* p = shape_ok(s) ? get_plan(dir, s) : nullptr;
  if (!p || !p->ok) {
    char msg[512] = {};
    cudnnGetLastErrorString(msg, sizeof(msg));
    std::fprintf(stderr,
                 "%s: no cuDNN plan for batch %d heads %d/%d q_rows %d k_rows %d d %d causal %d (%s: %s; %s)\n",
                 who, s.batch, s.heads, s.kv_heads, s.q_rows, s.k_rows, s.head_dim, (int)s.causal,
                 p ? p->what : (shape_ok(s) ? "no cuDNN handle" : "shape not supported"),
                 p ? cudnnGetErrorString(p->status) : "-", msg);
    std::exit(LASP_EXIT_CODE_FAILURE);
  }
  return p;
}

inline void* workspace(size_t bytes) {
  DeviceState& st = device_state(current_device());
  if (st.workspace_bytes < bytes) {
    if (st.workspace) CUDA_CHECK(cudaFree(st.workspace));  // synchronises: only while growing
    const size_t sz = bytes + bytes / 8 + 256;
    CUDA_CHECK(cudaMalloc(&st.workspace, sz));
    st.workspace_bytes = sz;
  }
  return st.workspace;
}

inline size_t align256(int64_t n) { return ((size_t)n + 255) & ~(size_t)255; }

inline void execute(const Plan& p, cudaStream_t stream, const int64_t* uids, void* const* ptrs, int n, void* ws) {
  DeviceState& st = device_state(current_device());
  CUDNN_CHECK(cudnnSetStream(st.handle, stream));
  Desc vp;
  CUDNN_CHECK(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp.d));
  CUDNN_CHECK(cudnnBackendSetAttribute(vp.d, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids));
  CUDNN_CHECK(cudnnBackendSetAttribute(vp.d, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs));
  CUDNN_CHECK(cudnnBackendSetAttribute(vp.d, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws));
  CUDNN_CHECK(cudnnBackendFinalize(vp.d));
  CUDNN_CHECK(cudnnBackendExecute(st.handle, p.plan, vp.d));
}

// The by-value scalars a plan's graph declared (see common_scalars).
inline int scalar_pack(Plan& p, const CudnnSdpaShape& s, int64_t* uids, void** ptrs) {
  int n = 0;
  uids[n] = kScale, ptrs[n++] = &p.scale;
  if (s.causal) {
    uids[n] = kNegInf, ptrs[n++] = &p.neg_inf;
    if (s.q_rows != s.k_rows) {
      uids[n] = kSkv, ptrs[n++] = &p.s_kv;
      uids[n] = kSq, ptrs[n++] = &p.s_q;
    }
  }
  return n;
}

}  // namespace cudnn_sdpa

// Whether the backend can run this shape on this device (cuDNN loaded, sm_90, an engine supports the graph).
// Builds and caches the plans; never exits; prints nothing.
inline bool cudnn_sdpa_supported(const CudnnSdpaShape& s) {
  if (!cudnn_sdpa::shape_ok(s)) return false;
  // From 9.6 on cuDNN clears the backward's dQ accumulator itself (the graph leaves it to the engine); the
  // backend was checked on 9.14.
  if (cudnnGetVersion() < 90600) return false;
  const int dev = cudnn_sdpa::current_device();
  if (dev < 0) return false;
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess)
    return false;
  if (major != 9 || minor != 0) return false;  // checked and timed on Hopper only
  cudnn_sdpa::Plan* f = cudnn_sdpa::get_plan(0, s);
  if (!f || !f->ok) return false;
  cudnn_sdpa::Plan* b = cudnn_sdpa::get_plan(1, s);
  return b && b->ok;
}

// o: bf16 like q; lse: fp32 [batch][heads][q_rows] (natural-log log-sum-exp of the scaled scores, the
// "stats" output), both overwritten.
inline void cudnn_sdpa_forward(const CudnnSdpaShape& s, const bf16* q, const bf16* k, const bf16* v, bf16* o,
                               float* lse, cudaStream_t stream) {
  cudnn_sdpa::Plan& p = *cudnn_sdpa::plan_or_die(0, s, "cudnn_sdpa_forward");
  int64_t uids[16];
  void* ptrs[16];
  int n = cudnn_sdpa::scalar_pack(p, s, uids, ptrs);
  uids[n] = cudnn_sdpa::kQ, ptrs[n++] = const_cast<bf16*>(q);
  uids[n] = cudnn_sdpa::kK, ptrs[n++] = const_cast<bf16*>(k);
  uids[n] = cudnn_sdpa::kV, ptrs[n++] = const_cast<bf16*>(v);
  uids[n] = cudnn_sdpa::kO, ptrs[n++] = o;
  uids[n] = cudnn_sdpa::kStats, ptrs[n++] = lse;
  void* ws = cudnn_sdpa::workspace(cudnn_sdpa::align256(p.plan_workspace));
  cudnn_sdpa::execute(p, stream, uids, ptrs, n, ws);
}

// dq like q, dk/dv like k/v (bf16), overwritten (GQA: dk/dv summed over the heads that share a kv head).
inline void cudnn_sdpa_backward(const CudnnSdpaShape& s, const bf16* q, const bf16* k, const bf16* v, const bf16* o,
                                const bf16* dout, const float* lse, bf16* dq, bf16* dk, bf16* dv,
                                cudaStream_t stream) {
  cudnn_sdpa::Plan& p = *cudnn_sdpa::plan_or_die(1, s, "cudnn_sdpa_backward");
  const size_t ws_plan = cudnn_sdpa::align256(p.plan_workspace);
  const size_t ws_sum = cudnn_sdpa::align256(p.softmax_sum_bytes);
  char* ws = static_cast<char*>(cudnn_sdpa::workspace(ws_plan + ws_sum + cudnn_sdpa::align256(p.dq_accum_bytes)));
  int64_t uids[20];
  void* ptrs[20];
  int n = cudnn_sdpa::scalar_pack(p, s, uids, ptrs);
  uids[n] = cudnn_sdpa::kOne, ptrs[n++] = &p.one;
  uids[n] = cudnn_sdpa::kQ, ptrs[n++] = const_cast<bf16*>(q);
  uids[n] = cudnn_sdpa::kK, ptrs[n++] = const_cast<bf16*>(k);
  uids[n] = cudnn_sdpa::kV, ptrs[n++] = const_cast<bf16*>(v);
  uids[n] = cudnn_sdpa::kO, ptrs[n++] = const_cast<bf16*>(o);
  uids[n] = cudnn_sdpa::kdO, ptrs[n++] = const_cast<bf16*>(dout);
  uids[n] = cudnn_sdpa::kStats, ptrs[n++] = const_cast<float*>(lse);
  uids[n] = cudnn_sdpa::kdQ, ptrs[n++] = dq;
  uids[n] = cudnn_sdpa::kdK, ptrs[n++] = dk;
  uids[n] = cudnn_sdpa::kdV, ptrs[n++] = dv;
  uids[n] = cudnn_sdpa::kSoftmaxSum, ptrs[n++] = ws + ws_plan;
  uids[n] = cudnn_sdpa::kdQAccum, ptrs[n++] = ws + ws_plan + ws_sum;
  cudnn_sdpa::execute(p, stream, uids, ptrs, n, ws);
}

}  // namespace lasp

#endif  // LASP_WITH_CUDNN
