// The kernel side of lasp calibrate (kernels.h): the timing helper, a streaming kernel for HBM, and lasp's
// own attention kernels (the runtime headers the generated programs use, copied under lasp/) with cuDNN's
// fused attention beside them where the build found cuDNN, LASP-2H's gathered calls included.
#include "kernels.h"

#include <algorithm>  // sort, max
#include <cmath>      // ceil
#include <cstdio>     // snprintf
#include <vector>     // the times

#include "lasp/check.cuh"              // CUDA_CHECK, LAUNCH_CHECK
#include "lasp/linear_attention.cuh"   // linear_state, linear_forward_fused, their backward
#include "lasp/softmax_attention.cuh"  // softmax_block_forward, softmax_full_backward
#include "lasp/softmax_whole.cuh"      // cuDNN's fused attention (LASP_WITH_CUDNN), its shapes
#include "lasp/softmax_gathered.cuh"   // LASP-2H's gathered calls, with the backend named

namespace calib {

using lasp::bf16;

namespace {

float median_of(std::vector<float> times) {
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

float median_ms(const std::function<void()>& issue, cudaStream_t s, int warmup, int runs) {
  for (int i = 0; i < warmup; ++i) issue();
  CUDA_CHECK(cudaStreamSynchronize(s));
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  std::vector<float> times;
  for (int i = 0; i < runs; ++i) {
    CUDA_CHECK(cudaEventRecord(a, s));
    issue();
    CUDA_CHECK(cudaEventRecord(b, s));
    CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    times.push_back(ms);
  }
  CUDA_CHECK(cudaEventDestroy(a));
  CUDA_CHECK(cudaEventDestroy(b));
  return median_of(times);
}

float sustained_ms(const std::function<void()>& issue, cudaStream_t s, float batch_ms, int runs) {
  // The batch size from one call's time (a short median), then the untimed batch and the timed ones.
  const float one = std::max(median_ms(issue, s, 1, 3), 1e-3f);
  const int calls = std::max(1, (int)std::ceil(batch_ms / one));
  auto batch = [&] {
    for (int i = 0; i < calls; ++i) issue();
  };
  return median_ms(batch, s, 1, runs) / (float)calls;
}

__global__ void fill_kernel(bf16* p, size_t n, unsigned seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    unsigned h = (unsigned)i * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    p[i] = __float2bfloat16((float)(h & 0xFFFF) / 65536.0f - 0.5f);
  }
}

void fill_bf16(void* p, size_t n, unsigned seed, cudaStream_t s) {
  fill_kernel<<<1024, 256, 0, s>>>(static_cast<bf16*>(p), n, seed);
  LAUNCH_CHECK();
}

// 16-byte accesses, a grid-stride loop over a grid that fills every SM (BabelStream's form).
__global__ void copy_kernel(const float4* a, float4* b, size_t n4) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x)
    b[i] = a[i];
}

__global__ void add_kernel(const float4* a, const float4* b, float4* c, size_t n4) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) {
    float4 x = a[i], y = b[i];
    c[i] = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
  }
}

float time_stream(bool add, size_t bytes, cudaStream_t s, int warmup, int runs) {
  const size_t n4 = bytes / sizeof(float4);
  float4 *a, *b, *c;
  CUDA_CHECK(cudaMalloc(&a, bytes));
  CUDA_CHECK(cudaMalloc(&b, bytes));
  CUDA_CHECK(cudaMalloc(&c, bytes));
  CUDA_CHECK(cudaMemsetAsync(a, 0, bytes, s));
  CUDA_CHECK(cudaMemsetAsync(b, 0, bytes, s));
  int device = 0, sms = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const unsigned grid = (unsigned)sms * 8;
  const float ms = median_ms(
      [&] {
        if (add) add_kernel<<<grid, 256, 0, s>>>(a, b, c, n4);
        else copy_kernel<<<grid, 256, 0, s>>>(a, b, n4);
        LAUNCH_CHECK();
      },
      s, warmup, runs);
  CUDA_CHECK(cudaFree(a));
  CUDA_CHECK(cudaFree(b));
  CUDA_CHECK(cudaFree(c));
  return ms;
}

namespace {

// Device buffers of one benchmark, freed together.
struct Buffers {
  std::vector<void*> held;
  template <typename T>
  T* get(size_t n, cudaStream_t s, unsigned seed = 0) {
    void* p = nullptr;
    CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)));
    held.push_back(p);
    if (seed != 0) fill_bf16(p, n * sizeof(T) / sizeof(bf16), seed, s);
    else CUDA_CHECK(cudaMemsetAsync(p, 0, n * sizeof(T), s));
    return static_cast<T*>(p);
  }
  ~Buffers() {
    cudaDeviceSynchronize();
    for (void* p : held) cudaFree(p);
  }
};

}  // namespace

float time_linear(bool backward, int tokens, int heads, int head_dim, bool causal, cudaStream_t s, int warmup,
                  int runs) {
  const lasp::LinearDims dims{1, tokens, heads, head_dim};
  const lasp::Piece piece{0, tokens};
  const size_t act = (size_t)tokens * heads * head_dim, state = (size_t)heads * head_dim * head_dim;
  Buffers buf;
  bf16 *q = buf.get<bf16>(act, s, 1), *k = buf.get<bf16>(act, s, 2), *v = buf.get<bf16>(act, s, 3);
  bf16 *dout = buf.get<bf16>(act, s, 4), *o = buf.get<bf16>(act, s), *dq = buf.get<bf16>(act, s);
  bf16 *dk = buf.get<bf16>(act, s), *dv = buf.get<bf16>(act, s);
  // P and G: the earlier ranks' states, zero here (the kernels' work does not depend on their values).
  float *M = buf.get<float>(state, s), *P = buf.get<float>(state, s), *G = buf.get<float>(state, s);
  return median_ms(
      [&] {
        if (backward) {
          lasp::linear_grad_state(q, dout, piece, M, dims, nullptr, s);
          lasp::linear_backward_fused(q, k, v, dout, P, G, piece, dq, dk, dv, dims, nullptr, causal, s);
        } else {
          lasp::linear_state(k, v, piece, M, dims, nullptr, s);
          lasp::linear_forward_fused(q, k, v, P, piece, o, dims, nullptr, causal, s);
        }
      },
      s, warmup, runs);
}

const char* cudnn_version() {
#ifdef LASP_WITH_CUDNN
  static char name[32];
  const size_t v = cudnnGetVersion();
  std::snprintf(name, sizeof name, "%zu.%zu.%zu", v / 10000, (v / 100) % 100, v % 100);
  return name;
#else
  return nullptr;
#endif
}

namespace {

// One sequence (batch 1) on one GPU: its inputs (the same values for every benchmark of its shape) and what the
// passes write, dk and dv bf16 as the whole-sequence backward writes them.
struct WholeSequence {
  lasp::SoftmaxDims d;
  bool causal;
  bf16 *q, *k, *v, *dout, *o, *dq, *dk, *dv;
  float* lse;
};

WholeSequence whole_sequence(Buffers& buf, const lasp::SoftmaxDims& d, bool causal, cudaStream_t s) {
  const size_t nq = (size_t)d.q_rows * d.heads * d.head_dim, nkv = (size_t)d.k_rows * d.kv_heads * d.head_dim;
  WholeSequence w{d, causal};
  w.q = buf.get<bf16>(nq, s, 5), w.k = buf.get<bf16>(nkv, s, 6), w.v = buf.get<bf16>(nkv, s, 7);
  w.dout = buf.get<bf16>(nq, s, 8), w.o = buf.get<bf16>(nq, s), w.dq = buf.get<bf16>(nq, s);
  w.dk = buf.get<bf16>(nkv, s), w.dv = buf.get<bf16>(nkv, s);
  w.lse = buf.get<float>((size_t)d.q_rows * d.heads, s);
  return w;
}

// The passes over the whole sequence: cuDNN's fused attention (where built with it), or lasp's kernels.
void whole_forward(bool cudnn, const WholeSequence& w, cudaStream_t s) {
#ifdef LASP_WITH_CUDNN
  if (cudnn) return lasp::cudnn_sdpa_forward(lasp::whole::shape_of(w.d, w.causal), w.q, w.k, w.v, w.o, w.lse, s);
#else
  (void)cudnn;
#endif
  const lasp::PieceMap identity{0, {0, 0}, {0, 0}, {0, 0}};
  lasp::softmax_block_forward(w.q, w.k, w.v, w.d, identity, identity, w.causal, nullptr, w.lse, w.o, s);
}

void whole_backward(bool cudnn, const WholeSequence& w, cudaStream_t s) {
#ifdef LASP_WITH_CUDNN
  if (cudnn)
    return lasp::cudnn_sdpa_backward(lasp::whole::shape_of(w.d, w.causal), w.q, w.k, w.v, w.o, w.dout, w.lse, w.dq,
                                     w.dk, w.dv, s);
#else
  (void)cudnn;
#endif
  lasp::softmax_full_backward(w.q, w.k, w.v, w.o, w.lse, w.dout, w.d, w.causal, w.dq, w.dk, w.dv, s);
}

}  // namespace

bool time_softmax(bool backward, bool cudnn, int tokens, int heads, int kv_heads, int head_dim, bool causal,
                  cudaStream_t s, int warmup, int runs, float* ms, const char** why) {
  const lasp::SoftmaxDims d{1, tokens, tokens, heads, kv_heads, head_dim};
#ifdef LASP_WITH_CUDNN
  if (cudnn && !lasp::cudnn_sdpa_supported(lasp::whole::shape_of(d, causal))) {
    *why = "cuDNN cannot run this shape on this GPU";
    return false;
  }
#else
  if (cudnn) {
    *why = "built without cuDNN (set CUDNN_HOME where it is installed)";
    return false;
  }
#endif
  Buffers buf;
  const WholeSequence w = whole_sequence(buf, d, causal, s);
  if (backward) {
    whole_forward(cudnn, w, s);  // o and lse of the same backend: the backward reads them
    *ms = median_ms([&] { whole_backward(cudnn, w, s); }, s, warmup, runs);
  } else {
    *ms = median_ms([&] { whole_forward(cudnn, w, s); }, s, warmup, runs);
  }
  return true;
}

namespace {

// One rank's gathered calls (softmax_gathered.cuh): its pieces of the sequence, its dims (its query rows
// against every key row) and the keys its queries may see.
struct RankShape {
  lasp::SoftmaxDims d;
  lasp::PieceMap pieces;
  int key_rows;
};

// Rank r of `ranks` over a sequence of ranks x rank_tokens: contiguous [r L, (r+1) L), or zigzag halves r and
// 2W-1-r of L/2 tokens (LASP-2H's layouts, as bench/gpu/gathered_check.cu's rank_map). Causal queries see the
// keys up to the end of their last piece; the others every key.
RankShape rank_shape(int r, int ranks, int rank_tokens, bool zigzag, int heads, int kv_heads, int head_dim,
                     bool causal) {
  const int L = rank_tokens, h = L / 2, sequence = ranks * L;
  const lasp::PieceMap m = zigzag ? lasp::PieceMap{2, {0, h}, {r * h, (2 * ranks - 1 - r) * h}, {h, h}}
                                  : lasp::PieceMap{1, {0, 0}, {r * L, 0}, {L, 0}};
  const int end = m.global_start[m.count - 1] + m.length[m.count - 1];
  return RankShape{lasp::SoftmaxDims{1, L, sequence, heads, kv_heads, head_dim}, m, causal ? end : sequence};
}

// Why cuDNN cannot run the whole sequence or some rank's calls, nullptr where it can run them all. Asking builds
// their plans (seconds, once per shape): outside the timed runs.
const char* why_not_cudnn(const lasp::SoftmaxDims& whole, bool causal, const std::vector<RankShape>& ranks) {
#ifdef LASP_WITH_CUDNN
  if (!lasp::cudnn_sdpa_supported(lasp::whole::shape_of(whole, causal)))
    return "cuDNN cannot run the whole sequence's shape on this GPU";
  for (const RankShape& r : ranks)
    if (!lasp::gathered::cudnn_supported(r.d, r.pieces, r.key_rows, causal))
      return "cuDNN cannot run some rank's gathered calls on this GPU";
  return nullptr;
#else
  (void)whole, (void)causal, (void)ranks;
  return "built without cuDNN (set CUDNN_HOME where it is installed)";
#endif
}

// A rank's calls over the whole sequence's k, v: its query and dO rows are its pieces' rows of the sequence's,
// gathered in order (as LASP-2H holds them); dk, dv fp32 over every key row, shared by the ranks (each
// backward overwrites them, as each rank's own buffers would be).
struct RankCall {
  lasp::SoftmaxDims d;
  lasp::SoftmaxGatheredArgs forward;
  lasp::SoftmaxGatheredBackwardArgs backward;
};

RankCall rank_call(Buffers& buf, const RankShape& r, const WholeSequence& w, float* dk, float* dv, cudaStream_t s) {
  const size_t width = (size_t)r.d.heads * r.d.head_dim, rows = (size_t)r.d.q_rows;
  bf16 *q = buf.get<bf16>(rows * width, s), *dout = buf.get<bf16>(rows * width, s);
  bf16 *o = buf.get<bf16>(rows * width, s), *dq = buf.get<bf16>(rows * width, s);
  float* lse = buf.get<float>(rows * r.d.heads, s);
  for (int j = 0; j < r.pieces.count; ++j) {
    const size_t to = (size_t)r.pieces.local_offset[j] * width, from = (size_t)r.pieces.global_start[j] * width;
    const size_t bytes = (size_t)r.pieces.length[j] * width * sizeof(bf16);
    CUDA_CHECK(cudaMemcpyAsync(q + to, w.q + from, bytes, cudaMemcpyDeviceToDevice, s));
    CUDA_CHECK(cudaMemcpyAsync(dout + to, w.dout + from, bytes, cudaMemcpyDeviceToDevice, s));
  }
  RankCall c{r.d, {}, {}};
  lasp::SoftmaxGatheredArgs& f = c.forward;
  f.q = q, f.k = w.k, f.v = w.v, f.o = o, f.lse = lse, f.q_map = r.pieces, f.key_rows = r.key_rows;
  f.causal = w.causal;
  lasp::SoftmaxGatheredBackwardArgs& b = c.backward;
  b.q = q, b.k = w.k, b.v = w.v, b.o = o, b.lse = lse, b.dout = dout, b.dq = dq, b.dk = dk, b.dv = dv;
  b.q_map = r.pieces, b.key_rows = r.key_rows, b.causal = w.causal;
  return c;
}

// Medians of two calls timed alternately, run by run: a drift of the clocks reaches both alike.
void interleaved_medians(const std::function<void()>& a, const std::function<void()>& b, cudaStream_t s, int warmup,
                         int runs, float* a_ms, float* b_ms) {
  for (int i = 0; i < warmup; ++i) a(), b();
  CUDA_CHECK(cudaStreamSynchronize(s));
  cudaEvent_t e[3];
  for (cudaEvent_t& x : e) CUDA_CHECK(cudaEventCreate(&x));
  std::vector<float> ta, tb;
  for (int i = 0; i < runs; ++i) {
    CUDA_CHECK(cudaEventRecord(e[0], s));
    a();
    CUDA_CHECK(cudaEventRecord(e[1], s));
    b();
    CUDA_CHECK(cudaEventRecord(e[2], s));
    CUDA_CHECK(cudaEventSynchronize(e[2]));
    float x = 0, y = 0;
    CUDA_CHECK(cudaEventElapsedTime(&x, e[0], e[1]));
    CUDA_CHECK(cudaEventElapsedTime(&y, e[1], e[2]));
    ta.push_back(x), tb.push_back(y);
  }
  for (cudaEvent_t x : e) CUDA_CHECK(cudaEventDestroy(x));
  *a_ms = median_of(ta), *b_ms = median_of(tb);
}

}  // namespace

bool time_gathered(bool cudnn, int rank_tokens, int ranks, bool zigzag, int heads, int kv_heads, int head_dim,
                   bool causal, cudaStream_t s, int warmup, int runs, GatheredTimes* times, const char** why) {
  const int sequence = ranks * rank_tokens;
  const lasp::SoftmaxDims whole{1, sequence, sequence, heads, kv_heads, head_dim};
  std::vector<RankShape> shapes;
  for (int r = 0; r < ranks; ++r)
    shapes.push_back(rank_shape(r, ranks, rank_tokens, zigzag, heads, kv_heads, head_dim, causal));
  const char* no_cudnn = cudnn ? why_not_cudnn(whole, causal, shapes) : nullptr;
  if (no_cudnn != nullptr) {
    *why = no_cudnn;
    return false;
  }

  Buffers buf;
  const WholeSequence w = whole_sequence(buf, whole, causal, s);
  const size_t nkv = (size_t)sequence * kv_heads * head_dim;
  float *dk = buf.get<float>(nkv, s), *dv = buf.get<float>(nkv, s);
  std::vector<RankCall> calls;
  for (const RankShape& r : shapes) calls.push_back(rank_call(buf, r, w, dk, dv, s));
  const lasp::gathered::Backend backend = cudnn ? lasp::gathered::Backend::kCudnn : lasp::gathered::Backend::kLasp;
  auto gathered = [&] {
    for (const RankCall& c : calls) {
      lasp::gathered::forward(backend, c.forward, c.d, s);
      lasp::gathered::backward(backend, c.backward, c.d, s);
    }
  };
  auto whole_passes = [&] {
    whole_forward(cudnn, w, s);
    whole_backward(cudnn, w, s);
  };
  // Once untimed whatever --warmup says: the calls' scratch buffers grow on their first use (cudaMalloc).
  gathered();
  whole_passes();
  interleaved_medians(gathered, whole_passes, s, warmup, runs, &times->gathered_ms, &times->whole_ms);
  return true;
}

}  // namespace calib
