// Hopper's asynchronous machinery, shared by the kernels built on it (softmax_attention.cuh's warp-specialized
// passes, mlp_gemm.cuh): mbarriers, wgmma descriptors and fences, the async-proxy fence, the tensor-map encoder,
// and whether this process can run them at all (a Hopper GPU and a program built for sm_90a).
#pragma once
#include <cuda.h>  // CUtensorMap and its enums only; the encoder comes through cudaGetDriverEntryPoint (no -lcuda)
#include <cuda_runtime.h>
#include <cstdint>

#include "check.cuh"  // CUDA_CHECK

// The wgmma code exists only in sm_90a device passes. Other passes (a compute_90 PTX pass, which nvcc 13's
// -arch=sm_90a shorthand also runs, or other architectures) get bodies that trap, so the headers still compile
// there; hopper::kernels_run() tells the host which one the GPU got.
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define LASP_HOPPER_WGMMA 1
#else
#define LASP_HOPPER_WGMMA 0
#endif

namespace lasp {
namespace hopper {

// ---- mbarriers (shared-memory addresses from ptx::smem_addr) ----
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred P1;\n"
      "LAB_WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n"
      "@P1 bra DONE;\n"
      "bra LAB_WAIT;\n"
      "DONE:\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}
// After a CTA's mbarrier inits, before any other thread or the TMA unit uses them (cluster scope covers both).
__device__ __forceinline__ void fence_mbar_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

// ---- wgmma operands and ordering ----
__device__ __forceinline__ uint64_t gmma_desc(uint32_t saddr, uint32_t lbo, uint32_t sbo) {
  return (uint64_t)((saddr & 0x3FFFF) >> 4) | ((uint64_t)((lbo >> 4) & 0x3FFF) << 16) |
         ((uint64_t)((sbo >> 4) & 0x3FFF) << 32) | (1ull << 62);  // 128-byte swizzle
}
// gmma_desc as its two 32-bit words, built once per operand: a shared address plus a byte offset stays under
// 256 KB, so the offset only adds to the low word's 14 address bits (no carry), and each MMA's descriptor is one
// add instead of a rebuild.
struct GmmaDesc {
  uint32_t lo, hi;
  __device__ __forceinline__ uint64_t at(uint32_t byte_offset) const {
    return ((uint64_t)hi << 32) | (lo + (byte_offset >> 4));
  }
};
__device__ __forceinline__ GmmaDesc gmma_desc_words(uint32_t saddr, uint32_t lbo, uint32_t sbo) {
  const uint64_t d = gmma_desc(saddr, lbo, sbo);
  return GmmaDesc{(uint32_t)d, (uint32_t)(d >> 32)};
}
__device__ __forceinline__ void wg_fence() {
#if LASP_HOPPER_WGMMA
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wg_commit() {
#if LASP_HOPPER_WGMMA
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
// Waits until at most N of the warpgroup's committed MMA groups are still in flight.
template <int N>
__device__ __forceinline__ void wg_wait() {
#if LASP_HOPPER_WGMMA
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// Generic-proxy writes to shared memory (st.shared, stmatrix) made visible to the copy engine and wgmma.
__device__ __forceinline__ void fence_proxy_async() {
#if LASP_HOPPER_WGMMA
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// ---- TMA: 2-d tiles in and out, bulk groups, L2 hints ----
__device__ __forceinline__ uint64_t policy_evict_first() {
  uint64_t p;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(p));
  return p;
}
__device__ __forceinline__ void prefetch_map(const CUtensorMap* m) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(m)) : "memory");
}
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, uint32_t bar, int c0, int c1) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
          dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
}
__device__ __forceinline__ void tma_load_2d_hint(uint32_t dst, const CUtensorMap* map, uint32_t bar, int c0, int c1,
                                                 uint64_t policy) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1, {%2, "
      "%3}], [%4], %5;\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar), "l"(policy)
      : "memory");
}
__device__ __forceinline__ void tma_store_2d_hint(const CUtensorMap* map, uint32_t src, int c0, int c1,
                                                  uint64_t policy) {
  asm volatile(
      "cp.async.bulk.tensor.2d.global.shared::cta.bulk_group.L2::cache_hint [%0, {%2, %3}], [%1], %4;\n" ::"l"(
          reinterpret_cast<uint64_t>(map)),
      "r"(src), "r"(c0), "r"(c1), "l"(policy)
      : "memory");
}
// Plain bulk copies (no tensor map): `bytes` (a multiple of 16, both addresses 16-byte aligned) from global into
// shared memory, completing on the mbarrier `bar`; and from shared memory out to global, in a bulk group.
__device__ __forceinline__ void bulk_load(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
}
__device__ __forceinline__ void bulk_store(void* dst, uint32_t src, uint32_t bytes) {
  asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;\n" ::"l"(dst), "r"(src), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void bulk_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
// The copy engine has read the shared sources of every committed group (the boxes may be rewritten); of all but
// the newest one.
__device__ __forceinline__ void bulk_wait_read0() { asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory"); }
__device__ __forceinline__ void bulk_wait_read1() { asm volatile("cp.async.bulk.wait_group.read 1;\n" ::: "memory"); }
__device__ __forceinline__ void bulk_wait0() { asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory"); }
// stmatrix m8n8 x4: the mma fragments of 16 rows x 2 n8-blocks into shared memory (8 row addresses per matrix).
__device__ __forceinline__ void stsm4(uint32_t addr, uint32_t r0, uint32_t r1, uint32_t r2, uint32_t r3) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(r0), "r"(r1),
               "r"(r2), "r"(r3)
               : "memory");
}

// ---- tensor maps ----
// cuTensorMapEncodeTiled through the runtime's driver entry point (the program links no libcuda); null when
// the driver does not provide it (then the callers take their kernels without tensor maps).
using TensorMapEncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                          const cuuint64_t*, const cuuint32_t*, const cuuint32_t*,
                                          CUtensorMapInterleave, CUtensorMapSwizzle, CUtensorMapL2promotion,
                                          CUtensorMapFloatOOBfill);
inline TensorMapEncodeTiled tensor_map_encoder() {
  static TensorMapEncodeTiled fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult qr = cudaDriverEntryPointSymbolNotFound;
#if CUDART_VERSION >= 12050
    cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &qr);
#else
    cudaError_t e = cudaGetDriverEntryPoint("cuTensorMapEncodeTiled", &p, cudaEnableDefault, &qr);
#endif
    if (e != cudaSuccess || qr != cudaDriverEntryPointSuccess || !p) {
      (void)cudaGetLastError();
      return (TensorMapEncodeTiled) nullptr;
    }
    return reinterpret_cast<TensorMapEncodeTiled>(p);
  }();
  return fn;
}

// ---- can this process run them ----
// Writes whether the device pass the GPU loaded was built for sm_90a (a template: defined in every translation
// unit that includes this header without clashing at the link).
template <int>
__global__ void wgmma_pass_kernel(int* out) {
  *out = LASP_HOPPER_WGMMA;
}
// A Hopper GPU (compute capability 9.0) running an sm_90a pass of this program: once per process, on the device
// of the first call. A program built for sm_90 without the `a` (or for other GPUs) answers false, and the callers
// take their portable kernels instead of trapping.
inline bool kernels_run() {
  static const bool yes = [] {
    int device = 0, major = 0, minor = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
    if (major != 9 || minor != 0) return false;
    int* flag = nullptr;
    int built = 0;
    CUDA_CHECK(cudaMalloc(&flag, sizeof(int)));
    wgmma_pass_kernel<0><<<1, 1>>>(flag);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaMemcpy(&built, flag, sizeof(int), cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaFree(flag));
    return built == 1;
  }();
  return yes;
}

}  // namespace hopper
}  // namespace lasp
