// Experiment: a persistent, warp-specialized "ping-pong" Hopper GEMM (sm_90a: TMA + wgmma) with the MLP's
// SwiGLU in its epilogue. Not part of the shipped runtime; bench/gpu/experiments/mlp_gemm_pingpong/NOTES.md has
// the design, the numbers to expect and what is not verified.
//
// Row-major bf16 everywhere, fp32 accumulation. One kernel template, four uses:
//   Epi::Store,     B K-major  (B [N][K]):  C[M][N] = A B^T           (lasp's matmul(h,false,true,...))
//   Epi::Store,     B MN-major (B [K][N]):  C[M][N] = A B             (lasp's matmul(h,false,false,...))
//   Epi::SwigluFwd, B K-major  (W [2F][K], gate rows then up rows): GU[M][2F] = X W^T and H[M][F] = silu(g) u
//   Epi::SwigluBwd, B MN-major (Wd [K][F]): d = bf16(DY Wd); g, u read from GU; dg, du written in place into GU.
//
// CTA (384 threads, one per SM, grid = SM count, persistent): warpgroup 0 is the producer (setmaxnreg.dec; one
// thread issues the TMA loads of a STAGES-deep ring, full/empty mbarriers), warpgroups 1 and 2 are consumers
// (setmaxnreg.inc) that each own a whole BM x BN output tile (two m64n128k16 wgmma per k16 step, 128 fp32
// accumulators a thread) and take the CTA's tiles alternately. Named barriers 1 and 2 order their mainloops
// (consumer 2's starts when consumer 1's MMAs are all issued and vice versa), so one consumer's epilogue
// (straight from registers to global memory) runs while the other's MMAs run.
//
// The SwiGLU epilogues reproduce templates/runtime/swiglu.cuh bit for bit: every accumulator is rounded to bf16
// first (the value the unfused path would store and read back), then the same float expressions.
#pragma once
#include <cuda.h>  // CUtensorMap and its enums only; the encoder comes through cudaGetDriverEntryPoint (no -lcuda)
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <type_traits>

namespace mlpgemm {

using bf16 = __nv_bfloat16;

// ---------------------------------------------------------------------------------------------------------
// Tile constants (everything else derives from these and the shapes)
// ---------------------------------------------------------------------------------------------------------
constexpr int BM = 128;        // output rows per tile: two m64 wgmma per k16 step
constexpr int BN = 128;        // output columns per tile: wgmma n128
constexpr int BK = 64;         // k per stage: one 128-byte swizzle row of bf16
constexpr int STAGES = 6;      // ring depth: 6 x 32 KB
constexpr int GROUP_M = 8;     // grouped raster: GROUP_M M-tiles walk the N-tiles together (L2 reuse of B)
constexpr int kConsumers = 2;  // ping-pong consumer warpgroups
constexpr int kThreads = 128 * (1 + kConsumers);
constexpr int kProducerRegs = 40, kConsumerRegs = 232;
constexpr int kBoxN = 64;      // B arrives as two TMA boxes of 64 rows (K-major) or 64 columns (MN-major)
constexpr int kOrderBar = 1;   // named barriers kOrderBar + consumer (0 is __syncthreads)
constexpr int kWgmmaK = 16;

constexpr uint32_t kABytes = BM * BK * 2;      // 16 KB
constexpr uint32_t kBBytes = BN * BK * 2;      // 16 KB
constexpr uint32_t kBoxBBytes = kBoxN * BK * 2; // 8 KB
constexpr uint32_t kStageBytes = kABytes + kBBytes;
constexpr int kBarrierBytes = 2 * STAGES * 8;  // full[S], empty[S]
constexpr int kSmemBytes = STAGES * kStageBytes + kBarrierBytes + 1024;  // + alignment slack to 1024 B

static_assert(BK * 2 == 128, "a stage row must be one 128-byte swizzle row");
static_assert(BN == 2 * kBoxN, "B tile = two boxes");
static_assert(BM == 128 && BN == 128, "the consumer code is written for 128 x 128 tiles (2 x m64n128)");
// setmaxnreg moves registers inside the CTA's launch allocation (65536 / 384 rounded down to 8 = 168 a thread):
// the consumers' increase must be covered by the producer's decrease, or setmaxnreg.inc waits forever.
constexpr int kLaunchRegs = 65536 / kThreads / 8 * 8;
static_assert(kProducerRegs * 128 + kConsumerRegs * 128 * kConsumers <= kLaunchRegs * kThreads, "register file");
static_assert(kProducerRegs % 8 == 0 && kConsumerRegs % 8 == 0 && kProducerRegs >= 24 && kConsumerRegs <= 256,
              "setmaxnreg values");
static_assert(kSmemBytes <= 227 * 1024, "shared memory");

enum class Epi : int { Store = 0, SwigluFwd = 1, SwigluBwd = 2 };

struct Params {
  int M, N, K;   // logical product [M][N] over K (SwigluFwd: N = 2F; SwigluBwd: N = F)
  int F;         // ffn width (Swiglu epilogues)
  int ldc;       // Store: row stride of C
  bf16* out;     // Store: C; Swiglu: GU [M][2F] (written by Fwd; read and overwritten by Bwd)
  bf16* h;       // SwigluFwd: H [M][F]
  int num_m, num_n, k_blocks;  // tiles (BM x BN of the logical product) and BK blocks
  int sched_m, total;          // scheduling units: num_m / CM M-units x num_n (CM M-tiles of one N-tile each)
};

// ---------------------------------------------------------------------------------------------------------
// PTX helpers (the wgmma/TMA/mbarrier ones follow templates/runtime/softmax_attention.cuh)
// ---------------------------------------------------------------------------------------------------------
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define MLPG_SM90A 1
#else
#define MLPG_SM90A 0
#endif

__device__ __forceinline__ uint32_t smem_u32(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}
__device__ __forceinline__ float2 unpack_bf16x2(uint32_t v) {
  return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&v));
}

// wgmma shared-memory descriptor, 128-byte swizzle, as two words: the low word (address >> 4 in 14 bits, LBO)
// takes byte offsets >> 4 without a carry (addresses stay under 256 KB).
struct Desc {
  uint32_t lo, hi;
  __device__ __forceinline__ uint64_t at(uint32_t byte_offset) const {
    return ((uint64_t)hi << 32) | (lo + (byte_offset >> 4));
  }
};
__device__ __forceinline__ Desc make_desc(uint32_t saddr, uint32_t lbo, uint32_t sbo) {
  Desc d;
  d.lo = ((saddr & 0x3FFFF) >> 4) | (((lbo >> 4) & 0x3FFF) << 16);
  d.hi = ((sbo >> 4) & 0x3FFF) | (1u << 30);  // bit 62: 128-byte swizzle
  return d;
}

__device__ __forceinline__ void wg_fence() {
#if MLPG_SM90A
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wg_commit() {
#if MLPG_SM90A
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void wg_wait() {
#if MLPG_SM90A
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// Keeps the compiler from moving accumulator reads/writes across the asynchronous wgmma boundaries.
__device__ __forceinline__ void reg_fence(float (&d)[64]) {
#pragma unroll
  for (int i = 0; i < 64; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// D[64 x 128] (+)= A[64 x 16] B[16 x 128], both from shared memory; A K-major; B K-major (TB = 0) or MN-major
// (TB = 1, the transpose-B mode).
template <int TB>
__device__ __forceinline__ void wgmma_m64n128(float (&d)[64], uint64_t da, uint64_t db, int accumulate) {
#if MLPG_SM90A
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
      "}, %64, %65, p, 1, 1, 0, %67;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(da), "l"(db), "r"(accumulate), "n"(TB));
#else
  __trap();
#endif
}

// The first k16 step of a tile: scale-d 0 and the accumulators as outputs only ("=f"), so the previous tile's
// accumulators are dead to the compiler once its epilogue has read them (with "+f" they would stay live through
// the epilogue, which then has 128 registers fewer).
template <int TB>
__device__ __forceinline__ void wgmma_m64n128_init(float (&d)[64], uint64_t da, uint64_t db) {
#if MLPG_SM90A
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
      "}, %64, %65, p, 1, 1, 0, %67;\n}\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3]), "=f"(d[4]), "=f"(d[5]), "=f"(d[6]), "=f"(d[7]),
        "=f"(d[8]), "=f"(d[9]), "=f"(d[10]), "=f"(d[11]), "=f"(d[12]), "=f"(d[13]), "=f"(d[14]), "=f"(d[15]),
        "=f"(d[16]), "=f"(d[17]), "=f"(d[18]), "=f"(d[19]), "=f"(d[20]), "=f"(d[21]), "=f"(d[22]), "=f"(d[23]),
        "=f"(d[24]), "=f"(d[25]), "=f"(d[26]), "=f"(d[27]), "=f"(d[28]), "=f"(d[29]), "=f"(d[30]), "=f"(d[31]),
        "=f"(d[32]), "=f"(d[33]), "=f"(d[34]), "=f"(d[35]), "=f"(d[36]), "=f"(d[37]), "=f"(d[38]), "=f"(d[39]),
        "=f"(d[40]), "=f"(d[41]), "=f"(d[42]), "=f"(d[43]), "=f"(d[44]), "=f"(d[45]), "=f"(d[46]), "=f"(d[47]),
        "=f"(d[48]), "=f"(d[49]), "=f"(d[50]), "=f"(d[51]), "=f"(d[52]), "=f"(d[53]), "=f"(d[54]), "=f"(d[55]),
        "=f"(d[56]), "=f"(d[57]), "=f"(d[58]), "=f"(d[59]), "=f"(d[60]), "=f"(d[61]), "=f"(d[62]), "=f"(d[63])
      : "l"(da), "l"(db), "n"(0), "n"(TB));
#else
  __trap();
#endif
}

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
      "MLPG_WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n"
      "@P1 bra MLPG_DONE;\n"
      "bra MLPG_WAIT;\n"
      "MLPG_DONE:\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}
// 2-d TMA tile load into shared memory, completing `bytes` on the mbarrier; c0 is the inner (contiguous) index.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, uint32_t bar, int c0, int c1) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::
          "r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
}
// 2-d TMA prefetch of a box into L2 (nothing lands in shared memory, no barrier).
__device__ __forceinline__ void tma_prefetch_2d(const CUtensorMap* map, int c0, int c1) {
  asm volatile("cp.async.bulk.prefetch.tensor.2d.L2.global [%0, {%1, %2}];\n" ::"l"(reinterpret_cast<uint64_t>(map)),
               "r"(c0), "r"(c1)
               : "memory");
}
__device__ __forceinline__ void named_sync(int id, int count) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(count) : "memory");
}
__device__ __forceinline__ void named_arrive(int id, int count) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(count) : "memory");
}

// The swiglu.cuh expressions, verbatim (bit-for-bit equality with the unfused kernels depends on it).
__device__ __forceinline__ float sigmoid_ref(float x) { return 1.f / (1.f + __expf(-x)); }

// 4 x 4 transpose of 32-bit values within a quad (lanes 4q .. 4q+3). In: v[jj] is this lane's value of block
// jj. Out: v[s] is lane s's value of block (lane & 3). With v[jj] = the bf16 pair at columns 8 jj + 2 (lane&3)
// of the wgmma accumulator layout, the output is the 8 contiguous bf16 of block (lane & 3): one 16-byte access.
__device__ __forceinline__ void quad_transpose(uint32_t (&v)[4], int lane) {
  const bool a0 = lane & 1, a1 = lane & 2;
  // Exchange with lane ^ 1 the two values whose block index bit 0 differs from the lane's bit 0.
  const uint32_t s0 = a0 ? v[0] : v[1], s1 = a0 ? v[2] : v[3];
  const uint32_t k0 = a0 ? v[1] : v[0], k1 = a0 ? v[3] : v[2];
  const uint32_t r0 = __shfl_xor_sync(0xffffffffu, s0, 1), r1 = __shfl_xor_sync(0xffffffffu, s1, 1);
  // y[b1][x]: block (b1, lane bit 0) of lane ((lane bit 1), x)
  const uint32_t y00 = a0 ? r0 : k0, y01 = a0 ? k0 : r0, y10 = a0 ? r1 : k1, y11 = a0 ? k1 : r1;
  // Exchange with lane ^ 2 the pair whose block bit 1 differs from the lane's bit 1.
  const uint32_t t0 = a1 ? y00 : y10, t1 = a1 ? y01 : y11;
  const uint32_t m0 = a1 ? y10 : y00, m1 = a1 ? y11 : y01;
  const uint32_t q0 = __shfl_xor_sync(0xffffffffu, t0, 2), q1 = __shfl_xor_sync(0xffffffffu, t1, 2);
  v[0] = a1 ? q0 : m0;
  v[1] = a1 ? q1 : m1;
  v[2] = a1 ? m0 : q0;
  v[3] = a1 ? m1 : q1;
}

// Tile t -> (M-tile, N-tile), grouped raster: GROUP_M M-tiles share each N-tile before the next N-tile.
__host__ __device__ __forceinline__ void tile_coords(int t, int num_m, int num_n, int& tm, int& tn) {
  const int per_group = GROUP_M * num_n;
  const int group = t / per_group, first_m = group * GROUP_M;
  const int gsize = min(num_m - first_m, GROUP_M);
  const int r = t - group * per_group;
  tm = first_m + r % gsize;
  tn = r / gsize;
}

// ---------------------------------------------------------------------------------------------------------
// Epilogues. A consumer thread (warp w of its warpgroup, lane = 4 g + tq) holds, for m64 half h and row half
// rs, rows h*64 + 16 w + g + 8 rs and, for each 8-column block j of the 128, columns 8 j + 2 tq + {0, 1} in
// acc[h][4 j + 2 rs + {0, 1}] (the wgmma accumulator layout).
// ---------------------------------------------------------------------------------------------------------
__device__ __forceinline__ void pack_blocks(const float (&a)[64], int j0, int rs, uint32_t (&v)[4]) {
#pragma unroll
  for (int jj = 0; jj < 4; ++jj) v[jj] = pack_bf16x2(a[4 * (j0 + jj) + 2 * rs], a[4 * (j0 + jj) + 2 * rs + 1]);
}

__device__ __forceinline__ void epilogue_store(const float (&acc)[2][64], const Params& p, int tm, int tn, int warp,
                                               int lane) {
  const int g = lane >> 2, tq = lane & 3;
#pragma unroll
  for (int h = 0; h < 2; ++h)
#pragma unroll
    for (int rs = 0; rs < 2; ++rs) {
      const int row = tm * BM + h * 64 + warp * 16 + g + rs * 8;
      bf16* rowp = p.out + (size_t)row * p.ldc + tn * BN;
#pragma unroll
      for (int j0 = 0; j0 < 16; j0 += 4) {
        uint32_t v[4];
        pack_blocks(acc[h], j0, rs, v);
        quad_transpose(v, lane);
        *reinterpret_cast<uint4*>(rowp + 8 * (j0 + tq)) = make_uint4(v[0], v[1], v[2], v[3]);
      }
    }
}

// Tile columns 0..63 are gate columns tn*64 + c, 64..127 the matching up columns F + tn*64 + c.
__device__ __forceinline__ void epilogue_swiglu_fwd(const float (&acc)[2][64], const Params& p, int tm, int tn,
                                                    int warp, int lane) {
  const int g = lane >> 2, tq = lane & 3;
  const size_t ld = 2 * (size_t)p.F;
#pragma unroll
  for (int h = 0; h < 2; ++h)
#pragma unroll
    for (int rs = 0; rs < 2; ++rs) {
      const int row = tm * BM + h * 64 + warp * 16 + g + rs * 8;
      bf16* gup = p.out + (size_t)row * ld;
      bf16* hp = p.h + (size_t)row * p.F;
#pragma unroll
      for (int j0 = 0; j0 < 8; j0 += 4) {
        uint32_t gv[4], uv[4], hv[4];
        pack_blocks(acc[h], j0, rs, gv);
        pack_blocks(acc[h], 8 + j0, rs, uv);
        quad_transpose(gv, lane);
        quad_transpose(uv, lane);
        const int col = tn * (BN / 2) + 8 * (j0 + tq);
        *reinterpret_cast<uint4*>(gup + col) = make_uint4(gv[0], gv[1], gv[2], gv[3]);
        *reinterpret_cast<uint4*>(gup + p.F + col) = make_uint4(uv[0], uv[1], uv[2], uv[3]);
#pragma unroll
        for (int s = 0; s < 4; ++s) {
          const float2 gg = unpack_bf16x2(gv[s]), uu = unpack_bf16x2(uv[s]);
          const float o0 = gg.x * sigmoid_ref(gg.x) * uu.x;
          const float o1 = gg.y * sigmoid_ref(gg.y) * uu.y;
          hv[s] = pack_bf16x2(o0, o1);
        }
        *reinterpret_cast<uint4*>(hp + col) = make_uint4(hv[0], hv[1], hv[2], hv[3]);
      }
    }
}

// d = bf16(acc) at DH column tn*128 + c; g, u = GU[row][col], GU[row][F + col]; dg, du written there.
// Per m64 half: the accumulators are packed to bf16 and transposed first (64 registers -> 32), then the 16 loads
// (2 rows x 4 blocks x g/u) are all issued before any math, one round trip per half.
__device__ __forceinline__ void epilogue_swiglu_bwd(const float (&acc)[2][64], const Params& p, int tm, int tn,
                                                    int warp, int lane) {
  const int g = lane >> 2, tq = lane & 3;
  const size_t ld = 2 * (size_t)p.F;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    uint32_t dv[2][4][4];
#pragma unroll
    for (int rs = 0; rs < 2; ++rs)
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        pack_blocks(acc[h], 4 * b, rs, dv[rs][b]);
        quad_transpose(dv[rs][b], lane);
      }
    uint4 gl[2][4], ul[2][4];
#pragma unroll
    for (int rs = 0; rs < 2; ++rs) {
      const int row = tm * BM + h * 64 + warp * 16 + g + rs * 8;
      const bf16* gup = p.out + (size_t)row * ld + tn * BN;
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        gl[rs][b] = *reinterpret_cast<const uint4*>(gup + 8 * (4 * b + tq));
        ul[rs][b] = *reinterpret_cast<const uint4*>(gup + p.F + 8 * (4 * b + tq));
      }
    }
#pragma unroll
    for (int rs = 0; rs < 2; ++rs) {
      const int row = tm * BM + h * 64 + warp * 16 + g + rs * 8;
      bf16* gup = p.out + (size_t)row * ld + tn * BN;
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        const uint32_t gw[4] = {gl[rs][b].x, gl[rs][b].y, gl[rs][b].z, gl[rs][b].w};
        const uint32_t uw[4] = {ul[rs][b].x, ul[rs][b].y, ul[rs][b].z, ul[rs][b].w};
        uint32_t dgw[4], duw[4];
#pragma unroll
        for (int s = 0; s < 4; ++s) {
          const float2 dd = unpack_bf16x2(dv[rs][b][s]), gg = unpack_bf16x2(gw[s]), uu = unpack_bf16x2(uw[s]);
          float dgo[2], duo[2];
          const float d2[2] = {dd.x, dd.y}, g2[2] = {gg.x, gg.y}, u2[2] = {uu.x, uu.y};
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float sg = sigmoid_ref(g2[e]);
            duo[e] = d2[e] * g2[e] * sg;
            dgo[e] = d2[e] * u2[e] * sg * (1.f + g2[e] * (1.f - sg));
          }
          dgw[s] = pack_bf16x2(dgo[0], dgo[1]);
          duw[s] = pack_bf16x2(duo[0], duo[1]);
        }
        *reinterpret_cast<uint4*>(gup + 8 * (4 * b + tq)) = make_uint4(dgw[0], dgw[1], dgw[2], dgw[3]);
        *reinterpret_cast<uint4*>(gup + p.F + 8 * (4 * b + tq)) = make_uint4(duw[0], duw[1], duw[2], duw[3]);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// The kernel. B_MN: B is [K][N] (N contiguous, wgmma transpose-B); else [N][K]. PREFETCH (SwigluBwd only): the
// producer asks L2 for the tile's g and u boxes (tmC) when it starts loading the tile, so the epilogue's loads
// hit L2. CM: CTAs per cluster along M (1, or 2: the pair computes M-tiles 2i and 2i+1 of one N-tile, each CTA
// loads one of the two B boxes and multicasts it to both, halving B's L2 -> SM traffic; a stage is free again
// only when the consumers of both CTAs released it, so the empty barriers count both CTAs' consumer warps).
// ---------------------------------------------------------------------------------------------------------
__device__ __forceinline__ uint32_t cluster_rank() {
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
}
__device__ __forceinline__ void cluster_sync_all() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}
__device__ __forceinline__ uint32_t map_to_rank(uint32_t local, uint32_t rank) {
  uint32_t r;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(r) : "r"(local), "r"(rank));
  return r;
}
__device__ __forceinline__ void mbar_arrive_cluster(uint32_t cluster_addr) {
  asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];\n" ::"r"(cluster_addr) : "memory");
}
__device__ __forceinline__ void tma_load_2d_multicast(uint32_t dst, const CUtensorMap* map, uint32_t bar, int c0,
                                                      int c1, uint16_t mask) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [%0], [%1, "
      "{%2, %3}], [%4], %5;\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar), "h"(mask)
      : "memory");
}

template <Epi EPI, bool B_MN, bool PREFETCH, int CM>
__global__ void __launch_bounds__(kThreads, 1)
    gemm_kernel(const __grid_constant__ CUtensorMap tmA, const __grid_constant__ CUtensorMap tmB,
                const __grid_constant__ CUtensorMap tmC, const Params p) {
  static_assert(CM == 1 || CM == BN / kBoxN, "a cluster of CM CTAs shares B: one box per CTA");
#if MLPG_SM90A
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const uint32_t base = (smem_u32(smem_raw) + 1023u) & ~1023u;  // the same offset in every CTA of a cluster
  const uint32_t bars = base + STAGES * kStageBytes;
  auto full = [&](int i) { return bars + 8u * i; };
  auto empty = [&](int i) { return bars + 8u * (STAGES + i); };

  const int tid = threadIdx.x, wgi = tid >> 7;
  const int KT = p.k_blocks;
  const int rank = CM > 1 ? (int)cluster_rank() : 0;
  // Scheduling units: tiles (CM = 1) or pairs of M-tiles of one N-tile (CM = 2), p.sched_m x p.num_n of them.
  const int unit0 = (int)blockIdx.x / CM, units_step = (int)gridDim.x / CM;

  if (tid == 0) {
#pragma unroll
    for (int i = 0; i < STAGES; ++i) {
      mbar_init(full(i), 1);        // the producer's expect_tx arrival (+ the TMA bytes, from every CTA's multicast)
      mbar_init(empty(i), 4 * CM);  // one arrival per consumer warp of every CTA of the cluster
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  if constexpr (CM > 1) cluster_sync_all();  // the peer's barriers exist before any multicast or remote arrival
  else __syncthreads();

  if (wgi == 0) {
    // ---------------- producer ----------------
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kProducerRegs) : "memory");
    if (tid == 0) {
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&tmA)) : "memory");
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&tmB)) : "memory");
      int st = 0;
      uint32_t ph = 0;
      for (int u = unit0; u < p.total; u += units_step) {
        int sm, tn;
        tile_coords(u, p.sched_m, p.num_n, sm, tn);
        const int m0 = (sm * CM + rank) * BM;
        // B boxes: K-major rows (b0, b1) of B, or MN-major columns (b0, b1).
        int b0, b1;
        if constexpr (EPI == Epi::SwigluFwd) {
          b0 = tn * kBoxN;
          b1 = p.F + tn * kBoxN;
        } else {
          b0 = tn * BN;
          b1 = tn * BN + kBoxN;
        }
        if constexpr (PREFETCH && EPI == Epi::SwigluBwd) {
          tma_prefetch_2d(&tmC, tn * BN, m0);
          tma_prefetch_2d(&tmC, p.F + tn * BN, m0);
        }
        for (int kb = 0; kb < KT; ++kb) {
          mbar_wait(empty(st), ph ^ 1);  // a fresh barrier counts its (odd) previous phase as complete
          const uint32_t sa = base + st * kStageBytes, sb = sa + kABytes;
          mbar_expect_tx(full(st), kStageBytes);
          tma_load_2d(sa, &tmA, full(st), kb * BK, m0);
          if constexpr (CM == 1) {
            if constexpr (B_MN) {
              tma_load_2d(sb, &tmB, full(st), b0, kb * BK);
              tma_load_2d(sb + kBoxBBytes, &tmB, full(st), b1, kb * BK);
            } else {
              tma_load_2d(sb, &tmB, full(st), kb * BK, b0);
              tma_load_2d(sb + kBoxBBytes, &tmB, full(st), kb * BK, b1);
            }
          } else {
            const int bb = rank == 0 ? b0 : b1;
            const uint16_t mask = (uint16_t)((1u << CM) - 1u);
            if constexpr (B_MN)
              tma_load_2d_multicast(sb + rank * kBoxBBytes, &tmB, full(st), bb, kb * BK, mask);
            else
              tma_load_2d_multicast(sb + rank * kBoxBBytes, &tmB, full(st), kb * BK, bb, mask);
          }
          if (++st == STAGES) {
            st = 0;
            ph ^= 1;
          }
        }
      }
    }
  } else {
    // ---------------- consumers ----------------
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegs) : "memory");
    const int c = wgi - 1;
    const int lane = tid & 31, warp = (tid >> 5) & 3;
    const int ntiles = unit0 < p.total ? (p.total - unit0 + units_step - 1) / units_step : 0;
    // B descriptor: K-major (SBO = 8 rows x 128 B) or MN-major (LBO = the second 64-column box, SBO = 8 k-rows).
    constexpr uint32_t kBLbo = B_MN ? kBoxBBytes : 16u;
    constexpr uint32_t kBStepK = B_MN ? kWgmmaK * 128u : kWgmmaK * 2u;  // bytes per k16 step in B
    constexpr uint32_t kAStepK = kWgmmaK * 2u;                         // A is K-major
    auto release = [&](int stage) {  // this warp no longer reads `stage` (its MMAs on it are complete)
      if (lane == 0) {
        if constexpr (CM == 1) {
          mbar_arrive(empty(stage));
        } else {
#pragma unroll
          for (int r = 0; r < CM; ++r) mbar_arrive_cluster(map_to_rank(empty(stage), (uint32_t)r));
        }
      }
    };
    float acc[2][64];

    for (int j = c; j < ntiles; j += kConsumers) {
      int sm, tn;
      tile_coords(unit0 + j * units_step, p.sched_m, p.num_n, sm, tn);
      const int tm = sm * CM + rank;
      const uint32_t it0 = (uint32_t)j * (uint32_t)KT;
      int st = (int)(it0 % STAGES);
      uint32_t ph = (it0 / STAGES) & 1u;
      if (j > 0) named_sync(kOrderBar + c, 256);  // my turn: the other consumer's MMAs are all issued

      // One k-block: wait for its stage, issue its 8 MMAs, retire the previous k-block's and release its stage.
      // The tile's first k-block is issued apart (FIRST: its first k16 step overwrites the accumulators), so that
      // no path carries the previous tile's accumulators into this tile's MMAs.
      int prev = -1;
      auto kblock = [&](auto first) {
        mbar_wait(full(st), ph);
        const uint32_t sa = base + st * kStageBytes, sb = sa + kABytes;
        const Desc da = make_desc(sa, 16u, 1024u), db = make_desc(sb, kBLbo, 1024u);
        if constexpr (!decltype(first)::value) {
          reg_fence(acc[0]);
          reg_fence(acc[1]);
        }
        wg_fence();
        if constexpr (decltype(first)::value) {
          wgmma_m64n128_init<B_MN ? 1 : 0>(acc[0], da.at(0), db.at(0));
          wgmma_m64n128_init<B_MN ? 1 : 0>(acc[1], da.at(64 * 128), db.at(0));
        } else {
          wgmma_m64n128<B_MN ? 1 : 0>(acc[0], da.at(0), db.at(0), 1);
          wgmma_m64n128<B_MN ? 1 : 0>(acc[1], da.at(64 * 128), db.at(0), 1);
        }
#pragma unroll
        for (int kk = 1; kk < BK / kWgmmaK; ++kk) {
          wgmma_m64n128<B_MN ? 1 : 0>(acc[0], da.at(kk * kAStepK), db.at(kk * kBStepK), 1);
          wgmma_m64n128<B_MN ? 1 : 0>(acc[1], da.at(64 * 128 + kk * kAStepK), db.at(kk * kBStepK), 1);
        }
        wg_commit();
        wg_wait<1>();  // the previous k-block's MMAs are done: its stage goes back to the producer(s)
        if (prev >= 0) release(prev);
        prev = st;
        if (++st == STAGES) {
          st = 0;
          ph ^= 1;
        }
      };
      kblock(std::true_type{});
      for (int kb = 1; kb < KT; ++kb) kblock(std::false_type{});
      if (j + 1 < ntiles) named_arrive(kOrderBar + (1 - c), 256);  // the other consumer's turn
      wg_wait<0>();
      reg_fence(acc[0]);
      reg_fence(acc[1]);
      release(prev);

      if constexpr (EPI == Epi::Store) epilogue_store(acc, p, tm, tn, warp, lane);
      else if constexpr (EPI == Epi::SwigluFwd) epilogue_swiglu_fwd(acc, p, tm, tn, warp, lane);
      else epilogue_swiglu_bwd(acc, p, tm, tn, warp, lane);
    }
  }
  // Nobody leaves while a peer may still multicast into this CTA's shared memory or arrive on its barriers.
  if constexpr (CM > 1) {
    __syncwarp();  // the producer warp's lanes reconverge (barrier.cluster is .aligned)
    cluster_sync_all();
  }
#else
  __trap();
#endif
}

// ---------------------------------------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------------------------------------
using TensorMapEncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                          const cuuint64_t*, const cuuint32_t*, const cuuint32_t*,
                                          CUtensorMapInterleave, CUtensorMapSwizzle, CUtensorMapL2promotion,
                                          CUtensorMapFloatOOBfill);
inline TensorMapEncodeTiled tensor_map_encoder() {
  static TensorMapEncodeTiled fn = [] {
    void* ptr = nullptr;
    cudaDriverEntryPointQueryResult qr = cudaDriverEntryPointSymbolNotFound;
#if CUDART_VERSION >= 12050
    cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &ptr, 12000, cudaEnableDefault, &qr);
#else
    cudaError_t e = cudaGetDriverEntryPoint("cuTensorMapEncodeTiled", &ptr, cudaEnableDefault, &qr);
#endif
    if (e != cudaSuccess || qr != cudaDriverEntryPointSuccess || !ptr) {
      (void)cudaGetLastError();
      return (TensorMapEncodeTiled) nullptr;
    }
    return reinterpret_cast<TensorMapEncodeTiled>(ptr);
  }();
  return fn;
}

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "mlp_gemm: %s\n", what);
  std::exit(2);
}

// Row-major bf16 [rows][cols] as a 2-d tensor map with boxes of box_rows x box_cols; false if it cannot be made.
inline bool try_make_map(CUtensorMap* m, const void* ptr, uint64_t rows, uint64_t cols, uint32_t box_rows,
                         uint32_t box_cols, bool swizzle128) {
  const TensorMapEncodeTiled enc = tensor_map_encoder();
  if (!enc || (reinterpret_cast<uintptr_t>(ptr) & 15) != 0) return false;
  const cuuint64_t dims[2] = {cols, rows};
  const cuuint64_t strides[1] = {cols * 2};
  const cuuint32_t box[2] = {box_cols, box_rows}, es[2] = {1, 1};
  return enc(m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(ptr), dims, strides, box, es,
             CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle128 ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_NONE,
             CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}
inline CUtensorMap make_map(const void* ptr, uint64_t rows, uint64_t cols, uint32_t box_rows, uint32_t box_cols,
                            bool swizzle128) {
  if (!tensor_map_encoder()) fail("cuTensorMapEncodeTiled is not available from the driver");
  if ((reinterpret_cast<uintptr_t>(ptr) & 15) != 0) fail("operand pointer not 16-byte aligned");
  CUtensorMap m;
  if (!try_make_map(&m, ptr, rows, cols, box_rows, box_cols, swizzle128)) {
    std::fprintf(stderr, "mlp_gemm: cuTensorMapEncodeTiled failed for [%llu][%llu] box %u x %u\n",
                 (unsigned long long)rows, (unsigned long long)cols, box_rows, box_cols);
    std::exit(2);
  }
  return m;
}

inline int sm_count() {
  static int n = [] {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) !=
                                                  cudaSuccess)
      fail("cannot query the SM count");
    return v;
  }();
  return n;
}

// Largest number of co-resident clusters of CM CTAs for this kernel (1 CTA per SM).
template <class Kern>
inline int max_clusters(Kern kern, int cm) {
  if (cm == 1) return sm_count();
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(cm * sm_count(), 1, 1);
  cfg.blockDim = dim3(kThreads, 1, 1);
  cfg.dynamicSmemBytes = kSmemBytes;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = cm;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  int n = 0;
  if (cudaOccupancyMaxActiveClusters(&n, kern, &cfg) != cudaSuccess || n <= 0)
    fail("cudaOccupancyMaxActiveClusters failed or found no room for a cluster");
  return n;
}

template <Epi EPI, bool B_MN, bool PREFETCH, int CM>
inline void launch_cm(const CUtensorMap& ta, const CUtensorMap& tb, const CUtensorMap& tc, Params p,
                      cudaStream_t s) {
  auto kern = gemm_kernel<EPI, B_MN, PREFETCH, CM>;
  static int clusters = 0;  // once per instantiation (and device: the harness uses one)
  if (clusters == 0) {
    if (cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes) != cudaSuccess)
      fail("cudaFuncSetAttribute(MaxDynamicSharedMemorySize) failed");
    clusters = max_clusters(kern, CM);
  }
  if (p.num_m % CM != 0) fail("cluster variant: the number of 128-row M-tiles must be a multiple of the cluster");
  p.sched_m = p.num_m / CM;
  p.total = p.sched_m * p.num_n;
  const int units = p.total < clusters ? p.total : clusters;  // persistent: one CTA (cluster) per SM (pair)
  if (units <= 0) return;
  if constexpr (CM == 1) {
    kern<<<units, kThreads, kSmemBytes, s>>>(ta, tb, tc, p);
  } else {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(CM * units, 1, 1);
    cfg.blockDim = dim3(kThreads, 1, 1);
    cfg.dynamicSmemBytes = kSmemBytes;
    cfg.stream = s;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = CM;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    const cudaError_t e = cudaLaunchKernelEx(&cfg, kern, ta, tb, tc, p);
    if (e != cudaSuccess) {
      std::fprintf(stderr, "mlp_gemm: cluster launch failed: %s\n", cudaGetErrorString(e));
      std::exit(3);
    }
  }
}

// cluster: 1 (default) or 2 (CTA pairs along M sharing B through TMA multicast).
template <Epi EPI, bool B_MN, bool PREFETCH>
inline void launch(const CUtensorMap& ta, const CUtensorMap& tb, const CUtensorMap& tc, const Params& p,
                   int cluster, cudaStream_t s) {
  if (cluster == 2) launch_cm<EPI, B_MN, PREFETCH, 2>(ta, tb, tc, p, s);
  else if (cluster == 1) launch_cm<EPI, B_MN, PREFETCH, 1>(ta, tb, tc, p, s);
  else fail("cluster size must be 1 or 2");
}

inline Params make_params(int M, int N, int K) {
  Params p{};
  p.M = M;
  p.N = N;
  p.K = K;
  p.num_m = M / BM;
  p.num_n = N / BN;
  p.k_blocks = K / BK;
  p.sched_m = p.num_m;
  p.total = p.num_m * p.num_n;
  return p;
}

inline void require(bool ok, const char* what) {
  if (!ok) fail(what);
}

// C[M][N] = A[M][K] B^T, B [N][K] (b_mn false) or C = A B, B [K][N] (b_mn true). M % 128, N % 128, K % 64.
inline void gemm(const bf16* A, const bf16* B, bf16* C, int M, int N, int K, bool b_mn, cudaStream_t s,
                 int cluster = 1) {
  require(M > 0 && N > 0 && K > 0, "gemm: M, N, K must be positive");
  require(M % BM == 0, "gemm: M must be a multiple of 128");
  require(N % BN == 0, "gemm: N must be a multiple of 128");
  require(K % BK == 0, "gemm: K must be a multiple of 64");
  require((reinterpret_cast<uintptr_t>(C) & 15) == 0, "gemm: C not 16-byte aligned");
  Params p = make_params(M, N, K);
  p.out = C;
  p.ldc = N;
  const CUtensorMap ta = make_map(A, M, K, BM, BK, true);
  if (b_mn) {
    const CUtensorMap tb = make_map(B, K, N, BK, kBoxN, true);
    launch<Epi::Store, true, false>(ta, tb, tb, p, cluster, s);
  } else {
    const CUtensorMap tb = make_map(B, N, K, kBoxN, BK, true);
    launch<Epi::Store, false, false>(ta, tb, tb, p, cluster, s);
  }
}

// GU[M][2F] = X W^T (W [2F][K]: gate rows, then up rows) and H[M][F] = bf16(g * sigmoid(g) * u) from GU's bf16.
inline void swiglu_forward_fused(const bf16* X, const bf16* W, bf16* GU, bf16* H, int M, int K, int F,
                                 cudaStream_t s, int cluster = 1) {
  require(M > 0 && K > 0 && F > 0, "swiglu_forward_fused: M, K, F must be positive");
  require(M % BM == 0, "swiglu_forward_fused: M must be a multiple of 128");
  require(K % BK == 0, "swiglu_forward_fused: K must be a multiple of 64");
  require(F % 128 == 0, "swiglu_forward_fused: F must be a multiple of 128");
  require((reinterpret_cast<uintptr_t>(GU) & 15) == 0 && (reinterpret_cast<uintptr_t>(H) & 15) == 0,
          "swiglu_forward_fused: outputs not 16-byte aligned");
  Params p = make_params(M, 2 * F, K);
  p.F = F;
  p.out = GU;
  p.h = H;
  const CUtensorMap ta = make_map(X, M, K, BM, BK, true);
  const CUtensorMap tb = make_map(W, 2 * (uint64_t)F, K, kBoxN, BK, true);
  launch<Epi::SwigluFwd, false, false>(ta, tb, tb, p, cluster, s);
}

// d = bf16(DY Wd) (DY [M][K], Wd [K][F]); with g = GU[r][c], u = GU[r][F+c]: GU[r][c] = dg, GU[r][F+c] = du.
template <bool PREFETCH = false>
inline void swiglu_backward_fused(const bf16* DY, const bf16* Wd, bf16* GU, int M, int K, int F, cudaStream_t s,
                                  int cluster = 1) {
  require(M > 0 && K > 0 && F > 0, "swiglu_backward_fused: M, K, F must be positive");
  require(M % BM == 0, "swiglu_backward_fused: M must be a multiple of 128");
  require(K % BK == 0, "swiglu_backward_fused: K must be a multiple of 64");
  require(F % 128 == 0, "swiglu_backward_fused: F must be a multiple of 128");
  require((reinterpret_cast<uintptr_t>(GU) & 15) == 0, "swiglu_backward_fused: GU not 16-byte aligned");
  Params p = make_params(M, F, K);
  p.F = F;
  p.out = GU;
  const CUtensorMap ta = make_map(DY, M, K, BM, BK, true);
  const CUtensorMap tb = make_map(Wd, K, F, BK, kBoxN, true);
  if constexpr (PREFETCH) {
    CUtensorMap tc;  // the L2 prefetch boxes of g and u: [128 rows][128 columns], no swizzle
    if (try_make_map(&tc, GU, M, 2 * (uint64_t)F, BM, BN, false)) {
      launch<Epi::SwigluBwd, true, true>(ta, tb, tc, p, cluster, s);
      return;
    }
    static bool said = false;
    if (!said) std::fprintf(stderr, "mlp_gemm: no tensor map for the g/u prefetch: running without it\n");
    said = true;
  }
  launch<Epi::SwigluBwd, true, false>(ta, tb, tb, p, cluster, s);
}

}  // namespace mlpgemm
