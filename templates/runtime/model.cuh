// The deterministic inputs and initial weights, and the rows of whole-sequence tensors.
//
// Inputs are a function of (seed, tensor, batch, GLOBAL token position, head, element), never of the rank:
// every GPU count generates the same global sequence and each rank takes its own pieces, so runs on 1, 2 or
// 8 GPUs compute the same numbers and the verify oracle can rebuild the whole sequence on any rank.
#pragma once
#include <cuda_bf16.h>  // __nv_bfloat16
#include <cstdint>      // uint64_t, int64_t
#include "check.cuh"    // LAUNCH_CHECK
#include "types.cuh"    // PieceMap

namespace lasp {

__host__ __device__ inline int global_row(const PieceMap& m, int local) {
  if (m.count == 0) return local;  // rows are already global (weights, whole sequences)
  for (int i = 0; i < m.count; i++) {
    if (local >= m.local_offset[i] && local < m.local_offset[i] + m.length[i]) {
      return m.global_start[i] + (local - m.local_offset[i]);
    }
  }
  return -1;
}

__device__ inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A standard normal from two hashed uniforms (Box-Muller), keyed by the element's global identity.
__device__ inline float hashed_normal(uint64_t seed, uint64_t salt, uint64_t index) {
  uint64_t a = splitmix64(seed * 0x100000001B3ull ^ splitmix64(salt * 0x9E37ull + index));
  float u1 = ((a >> 40) + 1) * (1.0f / 16777217.0f);
  float u2 = ((a >> 16) & 0xFFFFFF) * (1.0f / 16777216.0f);
  return sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
}

// x[b][row][h][e] for the rank's rows; global_rows is the length of the whole sequence (64-bit: it may be 2^31).
// bf16 or fp32 elements: the same normal, rounded to the type.
template <typename T>
__global__ void fill_normal_kernel(T* x, int batch, int rows, int width, PieceMap map, int64_t global_rows,
                                   uint64_t seed, uint64_t salt, float scale) {
  size_t n = (size_t)batch * rows * width;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    size_t e = i % width;
    size_t row = (i / width) % rows;
    size_t b = i / ((size_t)width * rows);
    size_t g = (size_t)global_row(map, (int)row);
    uint64_t index = ((uint64_t)b * global_rows + g) * width + e;
    x[i] = (T)(scale * hashed_normal(seed, salt, index));
  }
}

inline int fill_blocks(size_t n) { return (int)((n + 255) / 256 < 65535 ? (n + 255) / 256 : 65535); }

void fill_normal(__nv_bfloat16* x, int batch, int rows, int width, const PieceMap& map, int64_t global_rows,
                        uint64_t seed, uint64_t salt, float scale, cudaStream_t stream) {
  fill_normal_kernel<<<fill_blocks((size_t)batch * rows * width), 256, 0, stream>>>(x, batch, rows, width, map,
                                                                                   global_rows, seed, salt, scale);
  LAUNCH_CHECK();
}

void fill_normal(float* x, int batch, int rows, int width, const PieceMap& map, int64_t global_rows, uint64_t seed,
                 uint64_t salt, float scale, cudaStream_t stream) {
  fill_normal_kernel<<<fill_blocks((size_t)batch * rows * width), 256, 0, stream>>>(x, batch, rows, width, map,
                                                                                   global_rows, seed, salt, scale);
  LAUNCH_CHECK();
}

__global__ void fill_constant_kernel(__nv_bfloat16* x, size_t n, float value) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    x[i] = __float2bfloat16(value);
}

// x[0..n) = value (norm weights start at 1, biases at 0).
void fill_constant(__nv_bfloat16* x, size_t n, float value, cudaStream_t stream) {
  fill_constant_kernel<<<fill_blocks(n), 256, 0, stream>>>(x, n, value);
  LAUNCH_CHECK();
}

// out[b][local][..] = full[b][global_row(local)][..]: the rank's rows of a whole-sequence fp32 tensor.
__global__ void gather_rows_kernel(const float* full, float* out, int batch, int rows, int width, PieceMap map,
                                   int64_t global_rows) {
  size_t n = (size_t)batch * rows * width;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    size_t e = i % width;
    size_t row = (i / width) % rows;
    size_t b = i / ((size_t)width * rows);
    out[i] = full[((size_t)b * global_rows + global_row(map, (int)row)) * width + e];
  }
}

void gather_rows(const float* full, float* out, int batch, int rows, int width, const PieceMap& map,
                        int64_t global_rows, cudaStream_t stream) {
  gather_rows_kernel<<<fill_blocks((size_t)batch * rows * width), 256, 0, stream>>>(full, out, batch, rows, width, map, global_rows);
  LAUNCH_CHECK();
}

}  // namespace lasp
