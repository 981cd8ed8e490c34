// The bit arithmetic of an fp32 master weight held in two 16-bit halves (master_weights.cuh says why): plain C++
// on unsigned integers, for the optimizer's kernels and for the host code that reads an fp32 checkpoint into
// masters (safetensors.cuh), which the tests compile without CUDA's headers.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define LASP_MASTER_BITS_FN __host__ __device__ inline
#else
#define LASP_MASTER_BITS_FN inline
#endif

namespace lasp {
namespace master_bits {

// The high half of a value's bits: the value rounded to bf16, to nearest with ties away from zero.
LASP_MASTER_BITS_FN uint16_t high(uint32_t bits) { return static_cast<uint16_t>((bits + 0x8000u) >> 16); }

// The signed remainder (two's complement) that gives the bits back with high half `hi`.
LASP_MASTER_BITS_FN uint16_t low(uint32_t bits, uint16_t hi) {
  return static_cast<uint16_t>(bits - (static_cast<uint32_t>(hi) << 16));
}

// The bits of the value whose halves are hi and lo.
LASP_MASTER_BITS_FN uint32_t join(uint16_t hi, uint16_t lo) {
  return (static_cast<uint32_t>(hi) << 16) + static_cast<uint32_t>(static_cast<int32_t>(static_cast<int16_t>(lo)));
}

}  // namespace master_bits
}  // namespace lasp
