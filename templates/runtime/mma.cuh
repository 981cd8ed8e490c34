// The PTX that the mma.sync kernels share (linear_attention.cuh, softmax_attention.cuh): shared-memory
// addresses, ldmatrix, the m16n8k16 product of bf16 operands into fp32 accumulators, bf16 packing, and the
// swizzled layout of shared-memory tiles.
#pragma once
#include <cuda_bf16.h>
#include <cstdint>

namespace lasp {
namespace ptx {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void ldsm4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldsm4t(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
// d += a * b for one m16n8k16 tile: bf16 operands, fp32 accumulators.
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

// Shared-memory tiles: row-major bf16 with LD columns, 16-byte chunks XOR-swizzled by (row % 8). ldmatrix
// reads 8 rows x 16 bytes at a time; without the swizzle those 8 rows of a 128- or 256-byte row pitch all
// land in the same 4 banks (an 8-way conflict).
template <int LD>
__device__ __forceinline__ int swz(int r, int c) {
  return r * LD + ((((c >> 3) ^ (r & 7)) << 3) | (c & 7));
}

}  // namespace ptx
}  // namespace lasp
