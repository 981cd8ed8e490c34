// Deterministic random inputs for the kernel harnesses of bench/gpu: x[i] from (seed, i) alone, so any launch
// shape and any GPU draw the same numbers.
#pragma once
#include <cuda_bf16.h>

#include <cstddef>
#include <cstdint>

// splitmix64's finaliser.
__device__ __forceinline__ uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// x[i] = bf16(uniform in [-scale, scale)) from (seed, i).
__global__ void fill_uniform_kernel(__nv_bfloat16* x, size_t n, uint64_t seed, float scale) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const uint64_t z = mix64(seed * 0xD1B54A32D192ED03ull + i);
    const float u = (float)(z >> 40) * (1.f / 16777216.f);
    x[i] = __float2bfloat16_rn((2.f * u - 1.f) * scale);
  }
}
