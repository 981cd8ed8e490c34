// Token embedding: the lookup of a rank's tokens, and its backward as a deterministic scatter-add.
//
// Design choices:
// - The table is bf16 [vocab][hidden], row-major; token ids are int32, one per local token (a rank's
//   pieces, in local order). The forward copies rows: a thread per 16 bytes (8 bf16), so hidden must be a
//   multiple of 8 (every real model's is; the host checks and says so). Ids must lie in [0, vocab): the
//   token source guarantees it, the kernels do not check per element.
// - The backward adds dout's rows into an fp32 gradient table (+=, so a tied LM head and the embedding can
//   share one gradient, and both sums happen in fp32). Float atomics would make the result depend on the
//   order blocks run in; instead the (token, position) pairs are sorted by token once per step with CUB's
//   radix sort (stable: positions stay in increasing order within a token), and the block that starts a run
//   of equal tokens sums that token's rows in position order, then adds the sum to the table once. The same
//   ids give the same bits on every run, whatever the scheduling.
// - The sort depends only on the ids, so embedding_sort runs once per step (after the ids are known) and
//   the backward reuses it. Its buffers live in one workspace of embedding_workspace_bytes(tokens, vocab).
// - Rows of tokens that do not occur are never touched.
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cub/device/device_radix_sort.cuh>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "types.cuh"  // bf16, EmbeddingSort
#include "check.cuh"

namespace lasp {

namespace embedding {

union Pack8 {
  int4 v;
  __nv_bfloat162 h[4];
};

inline void require_hidden_multiple_of_8(int hidden, const char* op) {
  if (hidden <= 0 || hidden % 8 != 0) {
    std::fprintf(stderr, "%s: hidden size %d must be a positive multiple of 8 (rows move as 16-byte vectors)\n",
                 op, hidden);
    std::exit(LASP_EXIT_CODE_FAILURE);
  }
}

// The fewest bits that hold every id below vocab: the radix sort reads only those.
inline int id_bits(int vocab) {
  int bits = 1;
  while (bits < 31 && (1 << bits) < vocab) ++bits;
  return bits;
}

// Blocks stride over tokens, threads over a row's 16-byte vectors (no index division).
__global__ void forward_kernel(const int* __restrict__ ids, const bf16* __restrict__ table, bf16* __restrict__ out,
                               int tokens, int hidden) {
  for (int t = blockIdx.x; t < tokens; t += gridDim.x) {
    const int4* row = reinterpret_cast<const int4*>(table + (size_t)ids[t] * hidden);
    int4* dst = reinterpret_cast<int4*>(out + (size_t)t * hidden);
    for (int c = threadIdx.x; c < hidden / 8; c += blockDim.x) dst[c] = row[c];
  }
}

inline int threads_for(int hidden) { return hidden / 8 < 256 ? (hidden / 8 + 31) / 32 * 32 : 256; }

__global__ void iota_kernel(int* __restrict__ pos, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) pos[i] = i;
}

// Block i handles sorted entry i if it starts a run of equal ids: it sums the run's dout rows in position
// order (fp32) and adds the sum to dtable[id] once. Other blocks return at once.
__global__ void backward_kernel(const int* __restrict__ sorted_ids, const int* __restrict__ sorted_pos,
                                const bf16* __restrict__ dout, float* __restrict__ dtable, int tokens, int hidden) {
  const int first = blockIdx.x;
  const int id = sorted_ids[first];
  if (first > 0 && sorted_ids[first - 1] == id) return;
  int end = first + 1;
  while (end < tokens && sorted_ids[end] == id) ++end;
  float* grad = dtable + (size_t)id * hidden;
  for (int c = threadIdx.x; c < hidden / 8; c += blockDim.x) {
    float acc[8] = {};
    for (int k = first; k < end; ++k) {
      Pack8 p;
      p.v = reinterpret_cast<const int4*>(dout + (size_t)sorted_pos[k] * hidden)[c];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const float2 f = __bfloat1622float2(p.h[u]);
        acc[2 * u] += f.x;
        acc[2 * u + 1] += f.y;
      }
    }
    float4* g = reinterpret_cast<float4*>(grad) + 2 * c;
    float4 a = g[0], b = g[1];
    a.x += acc[0], a.y += acc[1], a.z += acc[2], a.w += acc[3];
    b.x += acc[4], b.y += acc[5], b.z += acc[6], b.w += acc[7];
    g[0] = a;
    g[1] = b;
  }
}

inline size_t align256(size_t b) { return (b + 255) / 256 * 256; }

inline size_t cub_temp_bytes(int tokens, int vocab) {
  size_t bytes = 0;
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, (const int*)nullptr, (int*)nullptr, (const int*)nullptr,
                                             (int*)nullptr, tokens, 0, id_bits(vocab)));
  return bytes;
}

}  // namespace embedding


// Bytes of the workspace embedding_sort_view carves (three int arrays and CUB's scratch).
size_t embedding_workspace_bytes(int tokens, int vocab) {
  return 3 * embedding::align256((size_t)tokens * sizeof(int)) + embedding::cub_temp_bytes(tokens, vocab);
}

EmbeddingSort embedding_sort_view(void* workspace, int tokens, int vocab) {
  char* p = static_cast<char*>(workspace);
  const size_t ints = embedding::align256((size_t)tokens * sizeof(int));
  EmbeddingSort s;
  s.positions = reinterpret_cast<int*>(p);
  s.sorted_ids = reinterpret_cast<int*>(p + ints);
  s.sorted_pos = reinterpret_cast<int*>(p + 2 * ints);
  s.cub_temp = p + 3 * ints;
  s.cub_temp_bytes = embedding::cub_temp_bytes(tokens, vocab);
  s.tokens = tokens;
  s.vocab = vocab;
  return s;
}

// out[t][:] = table[ids[t]][:] for the rank's tokens.
void embedding_forward(const int* ids, const bf16* table, bf16* out, int tokens, int hidden, cudaStream_t s) {
  embedding::require_hidden_multiple_of_8(hidden, "embedding_forward");
  if (tokens == 0) return;
  const int blocks = tokens < 132 * 16 ? tokens : 132 * 16;  // enough to fill any Hopper; blocks stride on
  embedding::forward_kernel<<<blocks, embedding::threads_for(hidden), 0, s>>>(ids, table, out, tokens, hidden);
  LAUNCH_CHECK();
}

// Sorts the step's ids once, for embedding_backward.
void embedding_sort(const int* ids, const EmbeddingSort& sort, cudaStream_t s) {
  if (sort.tokens == 0) return;
  embedding::iota_kernel<<<(sort.tokens + 255) / 256, 256, 0, s>>>(sort.positions, sort.tokens);
  LAUNCH_CHECK();
  size_t bytes = sort.cub_temp_bytes;
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(sort.cub_temp, bytes, ids, sort.sorted_ids, sort.positions,
                                             sort.sorted_pos, sort.tokens, 0, embedding::id_bits(sort.vocab), s));
  LAUNCH_CHECK();
}

// dtable[id][:] += sum of dout[t][:] over the tokens t with ids[t] == id, in increasing t; dtable is fp32.
void embedding_backward(const EmbeddingSort& sort, const bf16* dout, float* dtable, int hidden,
                               cudaStream_t s) {
  embedding::require_hidden_multiple_of_8(hidden, "embedding_backward");
  if (sort.tokens == 0) return;
  embedding::backward_kernel<<<sort.tokens, embedding::threads_for(hidden), 0, s>>>(
      sort.sorted_ids, sort.sorted_pos, dout, dtable, sort.tokens, hidden);
  LAUNCH_CHECK();
}

}  // namespace lasp
