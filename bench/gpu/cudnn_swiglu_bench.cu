// The MLP's gate product with SwiGLU in cuDNN's matmul epilogue (issue 17): can a cuDNN runtime-fusion engine on
// Hopper compute h = silu(X Wgate^T) * U in one kernel (graph A), and how fast is it against what the programs do
// today: one cuBLAS GEMM for gate|up = X [Wgate; Wup]^T (bf16 [M][2N]) and then swiglu.cuh's element-wise
// kernel, which reads both halves and writes h?
//
// Graph A, written against the cuDNN backend C API (cudnn_graph.h, no cudnn_frontend), rank-3 tensors (the
// backend engines take matmuls of rank 3 only: [1, M, K] x [1, K, N] -> [1, M, N]); uids 1 X, 2 Wgate, 3 U, 4 H:
//   C = X Wgate^T   (matmul, fp32 compute; Wgate [N][K] row-major seen as B [1, K, N] with strides {NK, 1, K};
//                    C a virtual tensor)
//   S = swish(C)    (pointwise SWISH_FWD, beta left at its default 1.0: silu)
//   H = S * U       (pointwise MUL with U [1, M, N] from memory; H bf16, the only output)
// U = X Wup^T comes from a plain cuBLAS GEMM first, so the fused path is two kernels (up GEMM, cuDNN gate
// graph) against the baseline's two (gate|up GEMM, element-wise), with the same GEMM FLOPs and one pass less
// over memory: the baseline writes gate (M x N bf16) and reads it back, graph A never stores it.
//
// Variants, each reported (heuristics mode A, then FALLBACK when A offers no configuration that finalizes; the
// failing step and cuDNN's status and message when none does):
//   mm               C = X Wgate^T alone, bf16 out            (diagnostic: cuDNN's plain matmul against cuBLAS)
//   mm_swish         H = swish(X Wgate^T), bf16 out          (diagnostic: a unary epilogue, no extra input)
//   swish_mul        graph A, U bf16                         (what the programs would use)
//   swish_mul_u32    graph A, U fp32 (the up GEMM writes fp32: one more pass of M x N x 2 bytes)
//   sigmoid_mul_mul  graph A with swish spelled out: H = (C * sigmoid(C)) * U, U bf16
//   swish_mul_swap   graph A with the MUL's operands swapped (U as x, S as b)   (only if swish_mul failed)
//   swish_mul_vbf16  graph A with C and S virtual in bf16 instead of fp32      (only if swish_mul failed)
// For every variant that builds, up to --max-plans engine configurations are finalized (runtime-fusion engines
// compile with NVRTC here: tens of ms to seconds each) and timed briefly; the fastest is checked and timed.
//
// Checks: against h computed from an fp32 gate (cuBLAS GEMM with fp32 output, then silu(g) * u in fp32), the
// max |error| over max |reference|, for the baseline (whose gate is rounded to bf16 before silu) and for each
// cuDNN plan; a plan passes under 1e-2. Timings (CUDA events on one stream): the median of --runs single calls
// after --warmup calls, and sustained, the median per-call time over --batches back-to-back batches of at least
// --batch-ms ms (bench/results/2026-12-06-calibrate-sustained-h100.md: single calls between synchronisations
// read ~10% faster than a training step's GEMMs under the power limit), after --heat-ms of the baseline.
//
// Output: per shape, one line per attempt (ATTEMPT ...), per plan (PLAN ...), per check (CHECK ...), then a
// table of ROW lines:
//   ROW <M> <N> <K> <path> <ms> <TFLOP/s> <sustained ms> <sustained TFLOP/s> <speed vs ref> <ref path>
// TFLOP/s counts the GEMM FLOPs of the row (2 M N K per N-wide product: base.total and fused.* count 2 M 2N K);
// the element-wise kernel's row gives GB/s instead. speed = ref ms / ms (sustained), > 1 is faster.
// Exit status: 0 (also when cuDNN supports no variant: a "NOT SUPPORTED" line says so), 1 if an accepted plan
// or the baseline fails its check, 2 usage, 3 a CUDA / cuBLAS / cuDNN call failed.
//
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Itemplates/runtime -I$CUDNN_INC
//        -o /tmp/cudnn_swiglu_bench bench/gpu/cudnn_swiglu_bench.cu -L$CUDNN_LIB -lcudnn -lcublas
//   /tmp/cudnn_swiglu_bench [--shape M N K]... [--runs 20] [--warmup 5] [--batch-ms 25] [--batches 5]
//                           [--heat-ms 1000] [--max-plans 2] [--only VARIANT[,VARIANT]] [--checks-only] [--json]
// (bench/gpu/run_cudnn_swiglu.sh does this on the GPU machine.)
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "check.cuh"
#include "types.cuh"
#include "blas.cuh"
#include "swiglu.cuh"

#include "bench_fill.cuh"

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

using lasp::bf16;

namespace {

// ---------------------------------------------------------------------------------------------------------------
// Options

struct Shape {
  int M, N, K;
};

struct Options {
  std::vector<Shape> shapes;
  int runs = 20, warmup = 5, batches = 5, max_plans = 2;
  float batch_ms = 25.f, heat_ms = 1000.f;
  std::vector<std::string> only;
  bool checks_only = false, json = false;
};

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "cudnn_swiglu_bench: %s\nusage: cudnn_swiglu_bench [--shape M N K]... [--runs N] [--warmup N] "
               "[--batch-ms MS] [--batches N] [--heat-ms MS] [--max-plans N] [--only V[,V]] [--checks-only] "
               "[--json]\n",
               msg);
  std::exit(2);
}

int to_int(const char* s) {
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  if (!end || *end || v <= 0 || v > (1L << 30)) usage("expected a positive integer");
  return (int)v;
}

float to_float(const char* s) {
  char* end = nullptr;
  const float v = std::strtof(s, &end);
  if (!end || *end || !(v >= 0.f)) usage("expected a non-negative number");
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) usage(("missing value after " + a).c_str());
      return argv[++i];
    };
    if (a == "--shape") {
      Shape s;
      s.M = to_int(next());
      s.N = to_int(next());
      s.K = to_int(next());
      if (s.N % 8 || s.K % 8) usage("N and K must be multiples of 8");
      o.shapes.push_back(s);
    } else if (a == "--runs") o.runs = to_int(next());
    else if (a == "--warmup") o.warmup = to_int(next());
    else if (a == "--batches") o.batches = to_int(next());
    else if (a == "--max-plans") o.max_plans = to_int(next());
    else if (a == "--batch-ms") o.batch_ms = to_float(next());
    else if (a == "--heat-ms") o.heat_ms = to_float(next());
    else if (a == "--only") {
      std::string list = next();
      size_t p = 0;
      while (p <= list.size()) {
        const size_t q = std::min(list.find(',', p), list.size());
        if (q > p) o.only.push_back(list.substr(p, q - p));
        p = q + 1;
      }
    } else if (a == "--checks-only") o.checks_only = true;
    else if (a == "--json") o.json = true;
    else usage(("unknown argument " + a).c_str());
  }
  if (o.shapes.empty()) o.shapes = {{16384, 8192, 2048}, {16384, 14336, 4096}};
  return o;
}

// ---------------------------------------------------------------------------------------------------------------
// Timing (CUDA events on one stream)

float median_of(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

float median_ms(const std::function<void()>& f, cudaStream_t s, int warmup, int runs) {
  for (int i = 0; i < warmup; ++i) f();
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
    float ms = 0.f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  CUDA_CHECK(cudaEventDestroy(a));
  CUDA_CHECK(cudaEventDestroy(b));
  return median_of(t);
}

// Per-call time of back-to-back batches of at least batch_ms each; the first batch is not timed.
float sustained_ms(const std::function<void()>& f, cudaStream_t s, float one_ms, float batch_ms, int batches) {
  const int calls = std::max(1, (int)std::ceil(batch_ms / std::max(one_ms, 1e-3f)));
  auto batch = [&] {
    for (int i = 0; i < calls; ++i) f();
  };
  return median_ms(batch, s, 1, batches) / (float)calls;
}

void heat(const std::function<void()>& f, cudaStream_t s, float one_ms, float ms) {
  if (ms <= 0.f) return;
  const int calls = std::max(1, (int)std::ceil(ms / std::max(one_ms, 1e-3f)));
  for (int i = 0; i < calls; ++i) f();
  CUDA_CHECK(cudaStreamSynchronize(s));
}

// ---------------------------------------------------------------------------------------------------------------
// Kernels: the fp32 reference's element-wise part, conversions, and the comparison

__device__ __forceinline__ float silu(float x) { return x / (1.f + expf(-x)); }

__global__ void bf16_to_f32_kernel(const bf16* __restrict__ x, float* __restrict__ y, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    y[i] = __bfloat162float(x[i]);
}

// mode 0: ref = g, mode 1: ref = silu(g), mode 2: ref = silu(g) * u; g fp32, u bf16, got bf16, all [n].
// out[0] = max |got - ref| (as float bits), out[1] = max |ref|, out[2] = elements with |d| > 1e-2 |ref| + 1e-3.
__global__ void compare_kernel(const bf16* __restrict__ got, const float* __restrict__ g, const bf16* __restrict__ u,
                               size_t n, int mode, unsigned long long* out) {
  float worst = 0.f, big = 0.f;
  bool nan = false;
  unsigned long long bad = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    float ref = g[i];
    if (mode >= 1) ref = silu(ref);
    if (mode == 2) ref *= __bfloat162float(u[i]);
    const float d = fabsf(__bfloat162float(got[i]) - ref);
    if (!(d <= 1e-2f * fabsf(ref) + 1e-3f)) ++bad;
    if (d != d) nan = true;
    else worst = fmaxf(worst, d);
    big = fmaxf(big, fabsf(ref));
  }
  if (nan) worst = __int_as_float(0x7fc00000);  // above every finite value and infinity as bits
  atomicMax(&out[0], (unsigned long long)__float_as_uint(worst));
  atomicMax(&out[1], (unsigned long long)__float_as_uint(big));
  if (bad) atomicAdd(&out[2], bad);
}

struct CheckResult {
  float max_abs = 0.f, max_ref = 0.f, rel = 0.f;
  unsigned long long outliers = 0;
  bool pass = false;
};

CheckResult compare(const bf16* got, const float* g, const bf16* u, size_t n, int mode, cudaStream_t s,
                    unsigned long long* scratch) {
  CUDA_CHECK(cudaMemsetAsync(scratch, 0, 3 * sizeof(unsigned long long), s));
  compare_kernel<<<132 * 8, 256, 0, s>>>(got, g, u, n, mode, scratch);
  LAUNCH_CHECK();
  unsigned long long h[3];
  CUDA_CHECK(cudaMemcpyAsync(h, scratch, sizeof(h), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  CheckResult r;
  const unsigned wb = (unsigned)h[0], rb = (unsigned)h[1];
  std::memcpy(&r.max_abs, &wb, sizeof(float));
  std::memcpy(&r.max_ref, &rb, sizeof(float));
  r.outliers = h[2];
  r.rel = r.max_ref > 0.f ? r.max_abs / r.max_ref : r.max_abs;
  r.pass = r.rel < 1e-2f;  // false for NaN
  return r;
}

// ---------------------------------------------------------------------------------------------------------------
// cuDNN backend graph: rank-3 tensors, matmul and pointwise ops, heuristics, plans. Every call after the first
// failure does nothing, so a graph reads straight through and the first failing step is what gets reported.

struct Desc {
  cudnnBackendDescriptor_t d = nullptr;
  Desc() = default;
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;
  ~Desc() {
    if (d) cudnnBackendDestroyDescriptor(d);
  }
};

struct Layout3 {
  int64_t dim[3];
  int64_t stride[3];
};

enum Uid : int64_t { kX = 1, kW = 2, kU = 3, kH = 4, kFirstVirtual = 100 };

struct PlanInfo {
  cudnnBackendDescriptor_t plan = nullptr;
  int64_t workspace = 0;
  int64_t engine = -1;        // CUDNN_ATTR_ENGINE_GLOBAL_INDEX, -1 unknown
  bool runtime_compiled = false;
  double finalize_ms = 0.0;
  float quick_ms = 0.f;       // a short median, to pick the fastest
  std::string json;
};

struct Graph {
  std::vector<std::unique_ptr<Desc>> keep;  // everything the plans may refer to lives as long as they do
  cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
  std::string what;                         // the failing step
  std::string message;                      // cuDNN's last error string at that step
  cudnnHandle_t handle;
  int64_t next_uid = kFirstVirtual;
  std::vector<cudnnBackendDescriptor_t> ops;
  std::map<int64_t, cudnnBackendDescriptor_t> tensors;
  cudnnBackendDescriptor_t graph = nullptr;
  std::vector<PlanInfo> plans;
  int offered_a = -1, offered_fallback = -1;  // configurations the heuristics offered (-1: not asked)
  int finalized = 0;
  std::string heur_used;

  explicit Graph(cudnnHandle_t h) : handle(h) {}

  bool good() const { return status == CUDNN_STATUS_SUCCESS; }
  void fail(cudnnStatus_t s, const char* step) {
    if (good() && s != CUDNN_STATUS_SUCCESS) {
      status = s;
      what = step;
      char msg[1024] = {};
      cudnnGetLastErrorString(msg, sizeof(msg));
      message = msg;
    }
  }
  cudnnBackendDescriptor_t make(cudnnBackendDescriptorType_t t, const char* step) {
    if (!good()) return nullptr;
    keep.emplace_back(new Desc);
    fail(cudnnBackendCreateDescriptor(t, &keep.back()->d), step);
    return keep.back()->d;
  }
  void set(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t a, cudnnBackendAttributeType_t t, int64_t n,
           const void* v, const char* step) {
    if (good()) fail(cudnnBackendSetAttribute(d, a, t, n, v), step);
  }
  void finalize(cudnnBackendDescriptor_t d, const char* step) {
    if (good()) fail(cudnnBackendFinalize(d), step);
  }
  cudnnBackendDescriptor_t td(int64_t uid) {
    if (!good()) return nullptr;
    auto it = tensors.find(uid);
    return it == tensors.end() ? nullptr : it->second;
  }

  // uid 0: a new virtual tensor.
  int64_t tensor(cudnnDataType_t dt, const Layout3& l, int64_t uid = 0) {
    const bool is_virtual = uid == 0;
    if (is_virtual) uid = next_uid++;
    cudnnBackendDescriptor_t t = make(CUDNN_BACKEND_TENSOR_DESCRIPTOR, "tensor descriptor");
    const int64_t align = 16;
    set(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt, "tensor data type");
    set(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 3, l.dim, "tensor dims");
    set(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 3, l.stride, "tensor strides");
    set(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, "tensor uid");
    set(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align, "tensor alignment");
    if (is_virtual) {
      const bool v = true;
      set(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &v, "tensor virtual");
    }
    finalize(t, "tensor finalize");
    if (good()) tensors[uid] = t;
    return uid;
  }

  // y = mode(x[, b]); y is a new virtual tensor unless y_uid names one. Returns y's uid.
  int64_t pointwise(cudnnPointwiseMode_t mode, int64_t x, int64_t b, cudnnDataType_t y_type, const Layout3& y_layout,
                    int64_t y_uid = 0) {
    const int64_t y = y_uid ? y_uid : tensor(y_type, y_layout);
    cudnnBackendDescriptor_t pw = make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, "pointwise descriptor");
    const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    set(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, "pointwise mode");
    set(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &compute, "pointwise precision");
    // SWISH_FWD's beta stays at its default 1.0: x / (1 + e^-x), silu (cudnn_graph.h, ..._POINTWISE_SWISH_BETA).
    finalize(pw, "pointwise finalize");
    cudnnBackendDescriptor_t op = make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, "pointwise op");
    cudnnBackendDescriptor_t xd = td(x), yd = td(y);
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw, "pointwise op desc");
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &xd, "pointwise x");
    if (b) {
      cudnnBackendDescriptor_t bd = td(b);
      set(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &bd, "pointwise b");
    }
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &yd, "pointwise y");
    finalize(op, "pointwise op finalize");
    if (good()) ops.push_back(op);
    return y;
  }

  int64_t matmul(int64_t a, int64_t b, cudnnDataType_t c_type, const Layout3& c_layout, int64_t c_uid = 0) {
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
    if (good()) ops.push_back(op);
    return c;
  }

  void make_graph() {
    graph = make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, "operation graph");
    set(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle, "graph handle");
    set(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, (int64_t)ops.size(), ops.data(),
        "graph ops");
    finalize(graph, "operation graph finalize");
  }

  // The configurations one heuristics mode offers (none on failure; the status is kept only as a message).
  std::vector<cudnnBackendDescriptor_t> configs(cudnnBackendHeurMode_t mode, int* offered, std::string* note) {
    std::vector<cudnnBackendDescriptor_t> cfgs;
    *offered = 0;
    Desc* heur = new Desc;
    keep.emplace_back(heur);
    cudnnStatus_t st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur->d);
    if (st == CUDNN_STATUS_SUCCESS)
      st = cudnnBackendSetAttribute(heur->d, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                    &graph);
    if (st == CUDNN_STATUS_SUCCESS)
      st = cudnnBackendSetAttribute(heur->d, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    if (st == CUDNN_STATUS_SUCCESS) st = cudnnBackendFinalize(heur->d);
    int64_t count = 0;
    if (st == CUDNN_STATUS_SUCCESS)
      st = cudnnBackendGetAttribute(heur->d, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                    nullptr);
    if (st == CUDNN_STATUS_SUCCESS && count > 0) {
      for (int64_t i = 0; i < count && st == CUDNN_STATUS_SUCCESS; ++i) {
        keep.emplace_back(new Desc);
        st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &keep.back()->d);
        cfgs.push_back(keep.back()->d);
      }
      int64_t got = 0;
      if (st == CUDNN_STATUS_SUCCESS)
        st = cudnnBackendGetAttribute(heur->d, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count,
                                      &got, cfgs.data());
      cfgs.resize(st == CUDNN_STATUS_SUCCESS ? (size_t)got : 0);
    }
    if (st != CUDNN_STATUS_SUCCESS) {
      char msg[1024] = {};
      cudnnGetLastErrorString(msg, sizeof(msg));
      *note = std::string("heuristics status ") + std::to_string((int)st) + " (" + cudnnGetErrorString(st) + ")" +
              (msg[0] ? std::string(": ") + msg : std::string());
    }
    *offered = (int)cfgs.size();
    return cfgs;
  }

  // Engine index and behaviour notes of a configuration; failures leave the defaults.
  static void engine_info(cudnnBackendDescriptor_t cfg, PlanInfo& info) {
    Desc eng;
    if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &eng.d) != CUDNN_STATUS_SUCCESS) return;
    int64_t n = 0;
    if (cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &eng.d) !=
        CUDNN_STATUS_SUCCESS)
      return;
    int64_t idx = -1;
    if (cudnnBackendGetAttribute(eng.d, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &idx) ==
        CUDNN_STATUS_SUCCESS)
      info.engine = idx;
    cudnnBackendBehaviorNote_t notes[CUDNN_BEHAVIOR_NOTE_TYPE_COUNT];
    int64_t nn = 0;
    if (cudnnBackendGetAttribute(eng.d, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                                 CUDNN_BEHAVIOR_NOTE_TYPE_COUNT, &nn, notes) == CUDNN_STATUS_SUCCESS)
      for (int64_t i = 0; i < nn && i < CUDNN_BEHAVIOR_NOTE_TYPE_COUNT; ++i)
        if (notes[i] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION) info.runtime_compiled = true;
  }

  // Plans for up to max_plans configurations of mode A, else of FALLBACK. Sets status when none finalizes.
  void build_plans(int max_plans, bool want_json) {
    make_graph();
    if (!good()) return;
    cudnnStatus_t last = CUDNN_STATUS_NOT_SUPPORTED;
    std::string last_msg;
    const cudnnBackendHeurMode_t modes[2] = {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK};
    for (int m = 0; m < 2 && plans.empty(); ++m) {
      std::string note;
      int offered = 0;
      std::vector<cudnnBackendDescriptor_t> cfgs = configs(modes[m], &offered, &note);
      (m == 0 ? offered_a : offered_fallback) = offered;
      if (!note.empty()) {
        last_msg = note;
        std::printf("  heuristics %s: %s\n", m == 0 ? "A" : "FALLBACK", note.c_str());
      }
      for (cudnnBackendDescriptor_t cfg : cfgs) {
        if ((int)plans.size() >= max_plans) break;
        keep.emplace_back(new Desc);
        Desc& plan = *keep.back();
        const auto t0 = std::chrono::steady_clock::now();
        if ((last = cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan.d)) !=
                CUDNN_STATUS_SUCCESS ||
            (last = cudnnBackendSetAttribute(plan.d, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1,
                                             &handle)) != CUDNN_STATUS_SUCCESS ||
            (last = cudnnBackendSetAttribute(plan.d, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                             CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfg)) != CUDNN_STATUS_SUCCESS ||
            (last = cudnnBackendFinalize(plan.d)) != CUDNN_STATUS_SUCCESS) {
          char msg[1024] = {};
          cudnnGetLastErrorString(msg, sizeof(msg));
          last_msg = msg;
          continue;  // this configuration cannot run the graph here; try the next
        }
        PlanInfo info;
        info.finalize_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        int64_t n = 0;
        if ((last = cudnnBackendGetAttribute(plan.d, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1,
                                             &n, &info.workspace)) != CUDNN_STATUS_SUCCESS)
          continue;
        engine_info(cfg, info);
        if (want_json) {
          int64_t len = 0;
          if (cudnnBackendGetAttribute(plan.d, CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION, CUDNN_TYPE_CHAR, 0,
                                       &len, nullptr) == CUDNN_STATUS_SUCCESS &&
              len > 0) {
            std::vector<char> buf((size_t)len + 1, 0);
            if (cudnnBackendGetAttribute(plan.d, CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION, CUDNN_TYPE_CHAR, len,
                                         &len, buf.data()) == CUDNN_STATUS_SUCCESS)
              info.json.assign(buf.data());
          }
        }
        info.plan = plan.d;
        plans.push_back(info);
        heur_used = m == 0 ? "A" : "FALLBACK";
      }
      finalized = (int)plans.size();
    }
    if (plans.empty()) {
      const bool none = offered_a <= 0 && offered_fallback <= 0;
      fail(none ? CUDNN_STATUS_NOT_SUPPORTED : last,
           none ? "heuristics (A, FALLBACK) offer no engine for this graph"
                : "no engine configuration finalizes a plan (A, FALLBACK)");
      if (!last_msg.empty() && message.empty()) message = last_msg;
    }
  }
};

// ---------------------------------------------------------------------------------------------------------------
// The variants

enum class Kind { kMatmul, kMatmulSwish, kSwishMul, kSigmoidMulMul };

struct Variant {
  const char* name;
  Kind kind;
  cudnnDataType_t u_type;     // U in memory (the MUL's extra input)
  cudnnDataType_t virt_type;  // the virtual tensors between matmul and the output
  bool swap;                  // MUL(x = U, b = S) instead of MUL(x = S, b = U)
  int only_if_failed;         // index of a variant: tried only when that one found no plan (-1: always)
  const char* what;
};

const Variant kVariants[] = {
    {"mm", Kind::kMatmul, CUDNN_DATA_BFLOAT16, CUDNN_DATA_FLOAT, false, -1, "C = X Wg^T, bf16 out (diagnostic)"},
    {"mm_swish", Kind::kMatmulSwish, CUDNN_DATA_BFLOAT16, CUDNN_DATA_FLOAT, false, -1,
     "H = swish(X Wg^T), no extra input (diagnostic)"},
    {"swish_mul", Kind::kSwishMul, CUDNN_DATA_BFLOAT16, CUDNN_DATA_FLOAT, false, -1,
     "graph A: H = swish(X Wg^T) * U, U bf16"},
    {"swish_mul_u32", Kind::kSwishMul, CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT, false, -1,
     "graph A with U fp32 (the up GEMM writes fp32)"},
    {"sigmoid_mul_mul", Kind::kSigmoidMulMul, CUDNN_DATA_BFLOAT16, CUDNN_DATA_FLOAT, false, -1,
     "graph A as H = (C * sigmoid(C)) * U, U bf16"},
    {"swish_mul_swap", Kind::kSwishMul, CUDNN_DATA_BFLOAT16, CUDNN_DATA_FLOAT, true, 2,
     "graph A with the MUL's operands swapped (U as x)"},
    {"swish_mul_vbf16", Kind::kSwishMul, CUDNN_DATA_BFLOAT16, CUDNN_DATA_BFLOAT16, false, 2,
     "graph A with bf16 virtual tensors"},
};
constexpr int kNumVariants = (int)(sizeof(kVariants) / sizeof(kVariants[0]));

bool produces_h(Kind k) { return k == Kind::kSwishMul || k == Kind::kSigmoidMulMul; }

void build_variant(Graph& g, const Variant& v, const Shape& s, int max_plans, bool json) {
  const int64_t M = s.M, N = s.N, K = s.K;
  const Layout3 x_l{{1, M, K}, {M * K, K, 1}};
  const Layout3 w_l{{1, K, N}, {N * K, 1, K}};  // Wg [N][K] row-major as B [K][N]
  const Layout3 c_l{{1, M, N}, {M * N, N, 1}};
  const int64_t x = g.tensor(CUDNN_DATA_BFLOAT16, x_l, kX);
  const int64_t w = g.tensor(CUDNN_DATA_BFLOAT16, w_l, kW);
  switch (v.kind) {
    case Kind::kMatmul:
      g.matmul(x, w, CUDNN_DATA_BFLOAT16, c_l, g.tensor(CUDNN_DATA_BFLOAT16, c_l, kH));
      break;
    case Kind::kMatmulSwish: {
      const int64_t c = g.matmul(x, w, v.virt_type, c_l);
      g.pointwise(CUDNN_POINTWISE_SWISH_FWD, c, 0, CUDNN_DATA_BFLOAT16, c_l, g.tensor(CUDNN_DATA_BFLOAT16, c_l, kH));
      break;
    }
    case Kind::kSwishMul:
    case Kind::kSigmoidMulMul: {
      const int64_t u = g.tensor(v.u_type, c_l, kU);
      const int64_t h = g.tensor(CUDNN_DATA_BFLOAT16, c_l, kH);
      const int64_t c = g.matmul(x, w, v.virt_type, c_l);
      int64_t act;
      if (v.kind == Kind::kSwishMul) {
        act = g.pointwise(CUDNN_POINTWISE_SWISH_FWD, c, 0, v.virt_type, c_l);
      } else {
        const int64_t sg = g.pointwise(CUDNN_POINTWISE_SIGMOID_FWD, c, 0, v.virt_type, c_l);
        act = g.pointwise(CUDNN_POINTWISE_MUL, c, sg, v.virt_type, c_l);
      }
      if (v.swap) g.pointwise(CUDNN_POINTWISE_MUL, u, act, CUDNN_DATA_BFLOAT16, c_l, h);
      else g.pointwise(CUDNN_POINTWISE_MUL, act, u, CUDNN_DATA_BFLOAT16, c_l, h);
      break;
    }
  }
  g.build_plans(max_plans, json);
}

// ---------------------------------------------------------------------------------------------------------------
// Buffers and the run

template <typename T>
struct DevBuf {
  T* p = nullptr;
  size_t n = 0;
  DevBuf() = default;
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  void alloc(size_t count) {
    if (p) CUDA_CHECK(cudaFree(p));
    CUDA_CHECK(cudaMalloc(&p, count * sizeof(T)));
    n = count;
  }
  ~DevBuf() {
    if (p) cudaFree(p);
  }
};

struct Row {
  std::string path, ref;
  float ms = 0.f, sus = 0.f;
  double flops = 0.0, bytes = 0.0;  // flops > 0: TFLOP/s columns; else bytes > 0: GB/s
};

void print_rows(const Shape& s, const std::vector<Row>& rows) {
  std::printf("\n| path | ms | TFLOP/s (or GB/s) | sustained ms | sustained TFLOP/s (or GB/s) | speed vs ref "
              "(sustained) | ref |\n|---|---|---|---|---|---|---|\n");
  for (const Row& r : rows) {
    float ref_sus = 0.f;
    for (const Row& q : rows)
      if (q.path == r.ref) ref_sus = q.sus;
    const double rate = r.flops > 0 ? r.flops / (r.ms * 1e9) : r.bytes / (r.ms * 1e6);
    const double rate_s = r.flops > 0 ? r.flops / (r.sus * 1e9) : r.bytes / (r.sus * 1e6);
    const char* unit = r.flops > 0 ? "" : " GB/s";
    const double speed = ref_sus > 0.f && r.sus > 0.f ? ref_sus / r.sus : NAN;
    std::printf("| %s | %.3f | %.0f%s | %.3f | %.0f%s | %.3f | %s |\n", r.path.c_str(), r.ms, rate, unit, r.sus,
                rate_s, unit, speed, r.ref.c_str());
  }
  std::printf("\n");
  for (const Row& r : rows) {
    float ref_sus = 0.f;
    for (const Row& q : rows)
      if (q.path == r.ref) ref_sus = q.sus;
    const double rate = r.flops > 0 ? r.flops / (r.ms * 1e9) : r.bytes / (r.ms * 1e6);
    const double rate_s = r.flops > 0 ? r.flops / (r.sus * 1e9) : r.bytes / (r.sus * 1e6);
    std::printf("ROW %d %d %d %s %.4f %.1f %.4f %.1f %.4f %s\n", s.M, s.N, s.K, r.path.c_str(), r.ms, rate, r.sus,
                rate_s, ref_sus > 0.f && r.sus > 0.f ? ref_sus / r.sus : NAN, r.ref.c_str());
  }
}

bool wanted(const Options& o, const char* name) {
  if (o.only.empty()) return true;
  for (const std::string& n : o.only)
    if (n == name) return true;
  return false;
}

// Returns false when a check failed.
bool run_shape(const Options& o, const Shape& s, cudnnHandle_t dnn, cublasHandle_t blas, cudaStream_t st,
               int* supported_variants) {
  const int M = s.M, N = s.N, K = s.K;
  const size_t mk = (size_t)M * K, nk = (size_t)N * K, mn = (size_t)M * N;
  std::printf("\n==== shape M %d N %d K %d (X [M][K], Wgate|Wup [2N][K], h [M][N])\n", M, N, K);
  bool ok = true;

  DevBuf<bf16> X, Wcat, GU, H, U, Hc;
  DevBuf<float> Gf, Uf;
  DevBuf<unsigned long long> scratch;
  X.alloc(mk);
  Wcat.alloc(2 * nk);
  GU.alloc(2 * mn);
  H.alloc(mn);
  U.alloc(mn);
  Hc.alloc(mn);
  Gf.alloc(mn);
  scratch.alloc(3);
  const bf16* Wg = Wcat.p;
  const bf16* Wu = Wcat.p + nk;

  // X ~ U[-1, 1], W ~ U[-3/sqrt(K), 3/sqrt(K)]: gate and up entries of variance about 1.
  fill_uniform_kernel<<<1024, 256, 0, st>>>(X.p, mk, 11, 1.f);
  LAUNCH_CHECK();
  fill_uniform_kernel<<<1024, 256, 0, st>>>(Wcat.p, 2 * nk, 12, 3.f / std::sqrt((float)K));
  LAUNCH_CHECK();

  // The baseline and its pieces.
  auto base_gemm = [&] { lasp::matmul(blas, false, true, M, 2 * N, K, X.p, Wcat.p, GU.p); };
  auto base_ew = [&] { lasp::swiglu_forward(GU.p, GU.p + N, (size_t)2 * N, H.p, M, N, st); };
  auto base_total = [&] {
    base_gemm();
    base_ew();
  };
  auto up_gemm = [&] { lasp::matmul(blas, false, true, M, N, K, X.p, Wu, U.p); };
  auto gate_gemm = [&] { lasp::matmul(blas, false, true, M, N, K, X.p, Wg, Hc.p); };  // cuBLAS twin of "mm"

  // Reference: fp32 gate, then up in bf16 (as both paths use it).
  lasp::matmul(blas, false, true, M, N, K, X.p, Wg, Gf.p);
  up_gemm();
  base_total();
  CUDA_CHECK(cudaStreamSynchronize(st));
  {
    const CheckResult r = compare(H.p, Gf.p, U.p, mn, 2, st, scratch.p);
    std::printf("CHECK %d %d %d base max_abs %.3e max_ref %.3e rel %.3e outliers %llu %s\n", M, N, K, r.max_abs,
                r.max_ref, r.rel, r.outliers, r.pass ? "PASS" : "FAIL");
    ok = ok && r.pass;
  }

  // cuDNN variants.
  struct Built {
    const Variant* v;
    std::unique_ptr<Graph> g;
    int best = -1;
  };
  std::vector<Built> built;
  bool found[kNumVariants] = {};
  DevBuf<unsigned char> ws;
  for (int vi = 0; vi < kNumVariants; ++vi) {
    const Variant& v = kVariants[vi];
    if (!wanted(o, v.name)) continue;
    if (v.only_if_failed >= 0 && found[v.only_if_failed]) {
      std::printf("ATTEMPT %d %d %d %s skipped (%s built)\n", M, N, K, v.name, kVariants[v.only_if_failed].name);
      continue;
    }
    if (v.u_type == CUDNN_DATA_FLOAT && !Uf.p) {
      Uf.alloc(mn);
      bf16_to_f32_kernel<<<1024, 256, 0, st>>>(U.p, Uf.p, mn);
      LAUNCH_CHECK();
    }
    auto g = std::make_unique<Graph>(dnn);
    const auto t0 = std::chrono::steady_clock::now();
    build_variant(*g, v, s, o.max_plans, o.json);
    const double build_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!g->good()) {
      std::printf("ATTEMPT %d %d %d %s REJECTED at \"%s\": cuDNN status %d (%s)%s%s  [offered A %d, FALLBACK %d; "
                  "%.0f ms] -- %s\n",
                  M, N, K, v.name, g->what.c_str(), (int)g->status, cudnnGetErrorString(g->status),
                  g->message.empty() ? "" : ": ", g->message.c_str(), g->offered_a, g->offered_fallback, build_ms,
                  v.what);
      continue;
    }
    found[vi] = true;
    std::printf("ATTEMPT %d %d %d %s ACCEPTED: %d plan(s) from heuristics %s (offered A %d, FALLBACK %d; %.0f ms) "
                "-- %s\n",
                M, N, K, v.name, g->finalized, g->heur_used.c_str(), g->offered_a, g->offered_fallback, build_ms,
                v.what);
    built.push_back({&v, std::move(g), -1});
  }

  // Execute helper: the variant pack for one plan.
  auto execute = [&](const Built& b, const PlanInfo& p) {
    std::vector<int64_t> uids = {kX, kW, kH};
    std::vector<void*> ptrs = {X.p, const_cast<bf16*>(Wg), Hc.p};
    if (produces_h(b.v->kind)) {
      uids.push_back(kU);
      ptrs.push_back(b.v->u_type == CUDNN_DATA_FLOAT ? (void*)Uf.p : (void*)U.p);
    }
    void* wsp = ws.p;
    Desc vp;
    CUDNN_CHECK(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp.d));
    CUDNN_CHECK(cudnnBackendSetAttribute(vp.d, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64,
                                         (int64_t)uids.size(), uids.data()));
    CUDNN_CHECK(cudnnBackendSetAttribute(vp.d, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR,
                                         (int64_t)ptrs.size(), ptrs.data()));
    CUDNN_CHECK(cudnnBackendSetAttribute(vp.d, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &wsp));
    CUDNN_CHECK(cudnnBackendFinalize(vp.d));
    CUDNN_CHECK(cudnnBackendExecute(dnn, p.plan, vp.d));
  };

  // Plans: workspace, a short timing each, the fastest checked.
  for (Built& b : built) {
    for (size_t i = 0; i < b.g->plans.size(); ++i) {
      PlanInfo& p = b.g->plans[i];
      if ((size_t)p.workspace > ws.n) ws.alloc((size_t)p.workspace);
      p.quick_ms = median_ms([&] { execute(b, p); }, st, 2, 5);
      std::printf("PLAN %d %d %d %s #%zu engine %lld%s workspace %lld finalize %.0f ms quick %.3f ms\n", M, N, K,
                  b.v->name, i, (long long)p.engine, p.runtime_compiled ? " (runtime compiled)" : "",
                  (long long)p.workspace, p.finalize_ms, p.quick_ms);
      if (o.json && !p.json.empty()) std::printf("  json: %.600s\n", p.json.c_str());
      if (b.best < 0 || p.quick_ms < b.g->plans[(size_t)b.best].quick_ms) b.best = (int)i;
    }
    const PlanInfo& p = b.g->plans[(size_t)b.best];
    CUDA_CHECK(cudaMemsetAsync(Hc.p, 0, mn * sizeof(bf16), st));
    execute(b, p);
    const int mode = b.v->kind == Kind::kMatmul ? 0 : b.v->kind == Kind::kMatmulSwish ? 1 : 2;
    const CheckResult r = compare(Hc.p, Gf.p, U.p, mn, mode, st, scratch.p);
    std::printf("CHECK %d %d %d cudnn.%s (plan #%d) max_abs %.3e max_ref %.3e rel %.3e outliers %llu %s\n", M, N, K,
                b.v->name, b.best, r.max_abs, r.max_ref, r.rel, r.outliers, r.pass ? "PASS" : "FAIL");
    ok = ok && r.pass;
  }
  int n_h = 0;
  for (const Built& b : built) n_h += produces_h(b.v->kind) ? 1 : 0;
  *supported_variants += n_h;
  if (n_h == 0)
    std::printf("NOT SUPPORTED %d %d %d: no graph-A variant (matmul -> swish -> mul with U) found an engine on this "
                "GPU / cuDNN %zu\n",
                M, N, K, cudnnGetVersion());
  if (o.checks_only) return ok;

  // Timings. Heat first (the baseline, --heat-ms), then every path: single calls, then sustained batches.
  const double f1 = 2.0 * M * (double)N * K;
  std::vector<Row> rows;
  auto time_row = [&](const std::string& path, const std::string& ref, double flops, double bytes,
                      const std::function<void()>& f) {
    Row r;
    r.path = path;
    r.ref = ref;
    r.flops = flops;
    r.bytes = bytes;
    r.ms = median_ms(f, st, o.warmup, o.runs);
    r.sus = sustained_ms(f, st, r.ms, o.batch_ms, o.batches);
    rows.push_back(r);
  };
  const float one = median_ms(base_total, st, 2, 3);
  heat(base_total, st, one, o.heat_ms);
  time_row("base.total", "base.total", 2 * f1, 0, base_total);
  time_row("base.gemm_gu", "base.total", 2 * f1, 0, base_gemm);
  time_row("base.swiglu", "base.total", 0, 3.0 * mn * sizeof(bf16), base_ew);
  time_row("cublas.gemm_up", "cublas.gemm_up", f1, 0, up_gemm);
  time_row("cublas.gemm_gate", "cublas.gemm_up", f1, 0, gate_gemm);
  for (const Built& b : built) {
    const PlanInfo& p = b.g->plans[(size_t)b.best];
    const std::string name = b.v->name;
    auto graph_only = [&] { execute(b, p); };
    time_row("cudnn." + name, "cublas.gemm_up", f1, 0, graph_only);
    if (produces_h(b.v->kind)) {
      std::function<void()> total;
      if (b.v->u_type == CUDNN_DATA_FLOAT)
        total = [&] {
          lasp::matmul(blas, false, true, M, N, K, X.p, Wu, Uf.p);
          execute(b, p);
        };
      else
        total = [&] {
          up_gemm();
          execute(b, p);
        };
      time_row("fused." + name, "base.total", 2 * f1, 0, total);
    }
  }
  print_rows(s, rows);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  int cuda_rt = 0;
  CUDA_CHECK(cudaRuntimeGetVersion(&cuda_rt));
  int cublas_ver = 0;
  std::printf("device %s (sm_%d%d, %d SMs), CUDA runtime %d, cuDNN %zu (headers %d), ", prop.name, prop.major,
              prop.minor, prop.multiProcessorCount, cuda_rt, cudnnGetVersion(), CUDNN_VERSION);
  cudaStream_t st;
  CUDA_CHECK(cudaStreamCreate(&st));
  cublasHandle_t blas;
  CUBLAS_CHECK(cublasCreate(&blas));
  CUBLAS_CHECK(cublasGetVersion(blas, &cublas_ver));
  std::printf("cuBLAS %d\n", cublas_ver);
  CUBLAS_CHECK(cublasSetStream(blas, st));
  cudnnHandle_t dnn;
  CUDNN_CHECK(cudnnCreate(&dnn));
  CUDNN_CHECK(cudnnSetStream(dnn, st));
  std::printf("runs %d after %d warm-ups; sustained: %d batches of >= %.0f ms after %.0f ms of heat; up to %d plans "
              "per variant\n",
              o.runs, o.warmup, o.batches, o.batch_ms, o.heat_ms, o.max_plans);

  bool ok = true;
  int supported = 0;
  for (const Shape& s : o.shapes) ok = run_shape(o, s, dnn, blas, st, &supported) && ok;

  if (supported == 0)
    std::printf("\nNOT SUPPORTED: cuDNN %zu built no matmul+swish+mul graph on %s; only the baseline was timed\n",
                cudnnGetVersion(), prop.name);
  std::printf("\n%s\n", ok ? "ALL CHECKS PASS" : "SOME CHECKS FAILED");
  CUDNN_CHECK(cudnnDestroy(dnn));
  CUBLAS_CHECK(cublasDestroy(blas));
  CUDA_CHECK(cudaStreamDestroy(st));
  return ok ? 0 : 1;
}
