// The kernel side of lasp calibrate (kernels.h): the timing helper, a streaming kernel for HBM, and lasp's
// own attention kernels (the runtime headers the generated programs use, copied under lasp/) with cuDNN's
// fused attention beside them where the build found cuDNN.
#include "kernels.h"

#include <algorithm>  // sort, max
#include <cmath>      // ceil
#include <cstdio>     // snprintf
#include <vector>     // the times

#include "lasp/check.cuh"              // CUDA_CHECK, LAUNCH_CHECK
#include "lasp/linear_attention.cuh"   // linear_state, linear_forward_fused, their backward
#include "lasp/softmax_attention.cuh"  // softmax_block_forward, softmax_full_backward
#include "lasp/softmax_whole.cuh"      // cuDNN's fused attention (LASP_WITH_CUDNN), its shapes

namespace calib {

using lasp::bf16;

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
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
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

bool time_softmax(bool backward, bool cudnn, int tokens, int heads, int kv_heads, int head_dim, bool causal,
                  cudaStream_t s, int warmup, int runs, float* ms, const char** why) {
  const lasp::SoftmaxDims d{1, tokens, tokens, heads, kv_heads, head_dim};
#ifdef LASP_WITH_CUDNN
  const lasp::CudnnSdpaShape shape = lasp::whole::shape_of(d, causal);
  if (cudnn && !lasp::cudnn_sdpa_supported(shape)) {
    *why = "cuDNN cannot run this shape on this GPU";
    return false;
  }
#else
  if (cudnn) {
    *why = "built without cuDNN (set CUDNN_HOME where it is installed)";
    return false;
  }
#endif
  const size_t nq = (size_t)tokens * heads * head_dim, nkv = (size_t)tokens * kv_heads * head_dim;
  Buffers buf;
  bf16 *q = buf.get<bf16>(nq, s, 5), *k = buf.get<bf16>(nkv, s, 6), *v = buf.get<bf16>(nkv, s, 7);
  bf16 *dout = buf.get<bf16>(nq, s, 8), *o = buf.get<bf16>(nq, s), *dq = buf.get<bf16>(nq, s);
  bf16 *dk = buf.get<bf16>(nkv, s), *dv = buf.get<bf16>(nkv, s);
  float* lse = buf.get<float>((size_t)tokens * heads, s);
  const lasp::PieceMap identity{0, {0, 0}, {0, 0}, {0, 0}};
  auto forward = [&] {
#ifdef LASP_WITH_CUDNN
    if (cudnn) {
      lasp::cudnn_sdpa_forward(shape, q, k, v, o, lse, s);
      return;
    }
#endif
    lasp::softmax_block_forward(q, k, v, d, identity, identity, causal, nullptr, lse, o, s);
  };
  auto backward_pass = [&] {
#ifdef LASP_WITH_CUDNN
    if (cudnn) {
      lasp::cudnn_sdpa_backward(shape, q, k, v, o, dout, lse, dq, dk, dv, s);
      return;
    }
#endif
    lasp::softmax_full_backward(q, k, v, o, lse, dout, d, causal, dq, dk, dv, s);
  };
  if (backward) {
    forward();  // o and lse of the same backend: the backward reads them
    *ms = median_ms(backward_pass, s, warmup, runs);
  } else {
    *ms = median_ms(forward, s, warmup, runs);
  }
  return true;
}

}  // namespace calib
