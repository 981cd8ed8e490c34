// The MLP's two GEMMs that touch SwiGLU, on lasp's own Hopper GEMM with SwiGLU in their epilogues: the gate|up
// product writes h = silu(gate) * up beside gate|up, and the down product's input gradient dh is turned into
// d(gate|up) in its epilogue, in place over gate|up, never written itself. Both replace a cuBLAS GEMM and a pass
// of swiglu.cuh over the whole [rows][ffn] tensors (measurements: bench/results/2026-12-06-mlp-gemm-h200.md;
// the design's notes and the checking harness: bench/gpu/mlp_gemm/). Where it does not apply (not Hopper, a
// program not built for sm_90a, shapes, LASP_MLP_GEMM=cublas) the callers take cuBLAS and swiglu.cuh.
// The plain store also takes the LM head's logits (lm_head.cuh; LASP_HEAD_GEMM): the widest product of the step,
// where it spends fewer joules than cuBLAS's (bench/results/2026-12-07-energy-h100.md).
//
// What it computes (row-major, bf16 storage, fp32 accumulation):
//   Epi::kStore      C[M][N] = A[M][K] op(B); B is [N][K] (K-major, C = A B^T) or [K][N] (MN-major, C = A B)
//                    (the LM head's logits, K-major; and the harness's reference for the fused epilogues).
//   Epi::kSwigluFwd  GU[M][2F] = X W^T with W = [Wgate; Wup] ([2F][K]) and H[M][F] = bf16(g * sigmoid(g) * u),
//                    g, u = the bf16-rounded GU[r][c], GU[r][F + c] (swiglu.cuh's forward_kernel, bit for bit).
//   Epi::kSwigluBwd  d = bf16(DY Wd) (DY [M][K], Wd [K][F], MN-major); with g, u read from GU_in:
//                    s = sigmoid(g), du = d g s, dg = d u s (1 + g (1 - s)) written to GU_out (may be GU_in:
//                    in place, as swiglu.cuh's backward_kernel does); d itself is never written.
//
// Structure (one kernel template for the three epilogues and both B layouts):
// - Persistent: grid = min(SMs, tiles); CTA i takes tiles i, i + grid, ... of a grouped raster (kGroupM
//   M-tiles share each N-tile, so W stays in L2 while a group's rows stream through).
// - 384 threads = 3 warpgroups. Warpgroup 0 gives registers away (setmaxnreg.dec kProducerRegs) and holds
//   three single-thread roles: warp 0 lane 0 is the mainloop producer (TMA loads of A and B k-slices into a ring
//   of Cfg::kStages stages, full/empty mbarriers), warps 1 and 2 lane 0 are the epilogue DMA threads of consumer
//   warpgroups 1 and 2 (TMA stores of the staged outputs; for the backward also the TMA loads of g and u).
//   Warpgroups 1 and 2 (setmaxnreg.inc kConsumerRegs) each compute 64 rows x 256 columns of the 128 x 256 tile
//   with wgmma m64n256k16 (128 fp32 accumulators per thread), BK = 64 (4 wgmma per stage), one wgmma group in
//   flight (wait_group 1) before the previous stage's empty barrier is released.
// - N tile of the fused forward: W rows [n0, n0 + 128) (gate) and [F + n0, F + n0 + 128) (up), two TMA loads
//   into one 256-row B tile, so accumulator column j (gate) and j + 128 (up) sit in the same thread.
// - Epilogue: each consumer warpgroup owns a ring of Cfg::kBoxes shared "boxes" of 64 rows x 64 columns bf16
//   (8 KB, 128-byte swizzle: the layout of a TMA box {64, 64} with SWIZZLE_128B). The consumers write the
//   rounded outputs with stmatrix, fence them for the async proxy and arrive on the box's `filled` barrier; the
//   warpgroup's DMA thread issues the TMA store, waits until the copy engine has read the box
//   (cp.async.bulk.wait_group.read) and hands it back on `ready`. The consumers never wait on bulk groups: they
//   go straight on to the next tile's mainloop, whose first stages the producer has already loaded (it waits
//   only on empty barriers). Backward: a ring unit is 2 boxes (g and u of 64 x 64 outputs); the DMA thread
//   loads them with TMA (completing on `ready`), the consumers read them with ldmatrix, write dg / du back into
//   the same box with stmatrix, and the DMA thread stores the box to GU_out and loads the next chunk into it.
// - Shared memory (Cfg): stages x 48 KB (A 16 KB + B 32 KB) + 2 x boxes x 8 KB + barriers. CfgMain: 3 stages and
//   5 boxes per warpgroup, 144 + 80 KB.
// - Exactness: the forward's and backward's element-wise math is swiglu.cuh's expression, written out the
//   same way (sigmoid(x) = 1.f / (1.f + __expf(-x))); the harness checks it bit for bit against swiglu.cuh's
//   kernels compiled in the same translation unit with the same flags.
// - Host: tensor maps (hopper.cuh's encoder) made for every call, as softmax_attention.cuh's: pointers change.
#pragma once
#include <cuda.h>  // CUtensorMap and its enums only
#include <cuda_runtime.h>
#include <cuda_bf16.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "check.cuh"   // CUDA_CHECK, LASP_EXIT_CODE_FAILURE
#include "hopper.cuh"  // mbarriers, wgmma descriptors and fences, TMA, stmatrix, tensor maps, kernels_run
#include "mma.cuh"     // smem_addr, ldsm4, pack2
#include "types.cuh"   // bf16

namespace lasp {
namespace mlpg {

using namespace ptx;
using namespace hopper;

// ---------------------------------------------------------------------------------------------------------
// Tile constants (everything below derives from these)
// ---------------------------------------------------------------------------------------------------------
constexpr int kBM = 128;                // CTA tile rows
constexpr int kBN = 256;                // CTA tile columns (fused forward: 128 gate + 128 up)
constexpr int kBK = 64;                 // k-slice per stage: 128 bytes of bf16 = one 128-byte swizzle row
constexpr int kGroupM = 16;             // M-tiles per raster group (default of Params::group_m)
constexpr int kConsumerWGs = 2;         // math warpgroups
constexpr int kThreads = 128 * (1 + kConsumerWGs);
constexpr int kProducerRegs = 40, kConsumerRegs = 232;  // 40 * 128 + 232 * 256 <= 65536
constexpr int kWgRows = kBM / kConsumerWGs;              // 64 rows per consumer warpgroup (one wgmma M)
constexpr int kBoxCols = 64;                             // epilogue box: kWgRows x 64 columns
constexpr int kWgmmaK = 16;
constexpr uint32_t kStageABytes = kBM * kBK * 2;         // 16 KB
constexpr uint32_t kStageBBytes = kBN * kBK * 2;         // 32 KB
constexpr uint32_t kStageBytes = kStageABytes + kStageBBytes;
constexpr uint32_t kBoxBytes = kWgRows * kBoxCols * 2;   // 8 KB
constexpr int kAccRegs = kBN / 2;                        // fp32 accumulators per thread (m64n256: 128)
static_assert(kProducerRegs * 128 + kConsumerRegs * 128 * kConsumerWGs <= 65536, "register file");
static_assert(kBK * 2 == 128 && kBoxCols * 2 == 128, "128-byte swizzle rows");
static_assert(kBN == 256 && kWgRows == 64, "the wgmma wrappers are m64n256k16");

// Shared-memory budget: STAGES mainloop stages (48 KB each) and BOXES epilogue boxes per consumer warpgroup.
template <int STAGES, int BOXES>
struct Cfg {
  static constexpr int kStages = STAGES, kBoxes = BOXES;
  static constexpr uint32_t kEpiBytes = kConsumerWGs * BOXES * kBoxBytes;
  static constexpr int kNumBarriers = 2 * STAGES + 2 * kConsumerWGs * BOXES;
  static constexpr uint32_t kSmemBytes = 1024 /* alignment slack */ + STAGES * kStageBytes + kEpiBytes + 8 * kNumBarriers;
  static_assert(kSmemBytes <= 227 * 1024, "shared memory exceeds a Hopper CTA's 227 KB");
  static_assert(BOXES >= 2, "the backward's ring unit is 2 boxes");
};
using CfgMain = Cfg<3, 5>;  // 144 KB of stages + 80 KB of epilogue boxes

enum class Epi : int { kStore = 0, kSwigluFwd = 1, kSwigluBwd = 2 };

template <Epi E>
struct EpiTraits;
template <>
struct EpiTraits<Epi::kStore> {  // 4 boxes of C per warpgroup and tile
  static constexpr int kUnitBoxes = 1, kUnitsPerTile = kBN / kBoxCols;
};
template <>
struct EpiTraits<Epi::kSwigluFwd> {  // g0, u0, g1, u1, h0, h1 (2 chunks of 64 gate columns)
  static constexpr int kUnitBoxes = 1, kUnitsPerTile = 6;
};
template <>
struct EpiTraits<Epi::kSwigluBwd> {  // 4 chunks of 64 columns, each g and u
  static constexpr int kUnitBoxes = 2, kUnitsPerTile = kBN / kBoxCols;
};

// Kernel parameters: the tensor maps travel by value (__grid_constant__).
struct Params {
  CUtensorMap a;     // A [M][K]: box {kBK, kBM}
  CUtensorMap b;     // K-major B [rows][K]: box {kBK, kBN/2}; MN-major B [K][N]: box {kBoxCols, kBK}
  CUtensorMap out0;  // kStore: C; fwd: GU gate view [M][F] (row stride 2F); bwd: dg view of GU_out
  CUtensorMap out1;  // fwd: GU up view (GU + F); bwd: du view of GU_out
  CUtensorMap out2;  // fwd: H [M][F]
  CUtensorMap in0;   // bwd: g view of GU_in
  CUtensorMap in1;   // bwd: u view of GU_in
  int m_tiles, n_tiles, k_blocks, total_tiles;
  int n_cols;        // output columns the tiles cover (kStore: N; fwd and bwd: F): boxes at or past it are skipped
  int up_row0;       // fwd: first row of the up weights in W (F)
  int group_m;       // M-tiles per raster group
  int max_ctas;      // 0: grid = min(SMs, tiles); else also at most this many CTAs (the harness uses a few CTAs on
                     // the small shapes so that every CTA walks many tiles, partial N tiles among them)
};

// ---------------------------------------------------------------------------------------------------------
// wgmma m64n256k16 (the primitives shared with softmax_attention.cuh are hopper.cuh's)
// ---------------------------------------------------------------------------------------------------------
// Descriptors, 128-byte swizzle. K-major operand: lbo unused (16), sbo = 1024 (8 rows of 128 bytes); a k16 step
// is +32 bytes. MN-major operand (panels of 64 N-elements x rows of k): lbo = the panel stride, sbo = 1024
// (8 k-rows); a k16 step is +16 rows = +2048 bytes.
// Keeps the compiler from moving accumulator reads across the asynchronous wgmma boundaries.
__device__ __forceinline__ void reg_fence(float (&d)[kAccRegs]) {
#pragma unroll
  for (int i = 0; i < kAccRegs; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// m64n256k16, A and B from shared memory. _k_k: both K-major; _k_mn: B MN-major (transposed B).
__device__ __forceinline__ void wgmma_k_k(float (&d)[128], uint64_t da, uint64_t db, int accumulate) {
#if LASP_HOPPER_WGMMA
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
      "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
      "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
      "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
      "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
      "}, %128, %129, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
        "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
        "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
        "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
        "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
        "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
        "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),
        "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),
        "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "l"(da), "l"(db), "r"(accumulate));
#else
  __trap();
#endif
}

__device__ __forceinline__ void wgmma_k_mn(float (&d)[128], uint64_t da, uint64_t db, int accumulate) {
#if LASP_HOPPER_WGMMA
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
      "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
      "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
      "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
      "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
      "}, %128, %129, p, 1, 1, 0, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
        "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
        "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
        "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
        "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
        "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
        "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),
        "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),
        "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "l"(da), "l"(db), "r"(accumulate));
#else
  __trap();
#endif
}


// ---------------------------------------------------------------------------------------------------------
// Element-wise math: swiglu.cuh's expressions, written the same way (checked bit for bit by the harness)
// ---------------------------------------------------------------------------------------------------------
__device__ __forceinline__ float sigmoid(float x) { return 1.f / (1.f + __expf(-x)); }
__device__ __forceinline__ float2 unpack2(uint32_t v) {
  __nv_bfloat162 h = *reinterpret_cast<__nv_bfloat162*>(&v);
  return __bfloat1622float2(h);
}
__device__ __forceinline__ float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }
// h of two adjacent outputs from the accumulators of g and u (rounded to bf16 first: the values GU holds).
__device__ __forceinline__ uint32_t swiglu_fwd2(float ga, float gb, float ua, float ub) {
  const float g0 = round_bf16(ga), g1 = round_bf16(gb), u0 = round_bf16(ua), u1 = round_bf16(ub);
  return pack2(g0 * sigmoid(g0) * u0, g1 * sigmoid(g1) * u1);
}
// dg, du of two adjacent outputs: d from the accumulators (rounded to bf16), g and u from GU (packed bf16 pairs).
__device__ __forceinline__ void swiglu_bwd2(float da, float db, uint32_t gp, uint32_t up, uint32_t& dgp,
                                            uint32_t& dup) {
  const float2 gg = unpack2(gp), uu = unpack2(up);
  const float d[2] = {round_bf16(da), round_bf16(db)}, g[2] = {gg.x, gg.y}, u[2] = {uu.x, uu.y};
  float dg[2], du[2];
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    const float s = sigmoid(g[e]);
    du[e] = d[e] * g[e] * s;
    dg[e] = d[e] * u[e] * s * (1.f + g[e] * (1.f - s));
  }
  dgp = pack2(dg[0], dg[1]);
  dup = pack2(du[0], du[1]);
}

// ---------------------------------------------------------------------------------------------------------
// Epilogue boxes. A consumer warp owns rows 16 wq .. 16 wq + 15 of its warpgroup's 64; its accumulators of
// n8-block j are rows (lane / 4) and (lane / 4 + 8), columns 8 j + 2 (lane % 4) + {0, 1}: exactly the fragments
// of stmatrix / ldmatrix m8n8. One x4 covers 16 rows x 2 n8-blocks: matrix mi (lanes 8 mi .. 8 mi + 7 give its
// row addresses) is rows-half mi & 1, block jj + (mi >> 1). In the 128-byte swizzled box, row r's 16-byte chunk c
// sits at r * 128 + ((c ^ (r % 8)) << 4); lane_off is the lane's address at block 0 and jj (even) is an XOR.
// ---------------------------------------------------------------------------------------------------------
__device__ __forceinline__ uint32_t box_lane_offset(int wq, int lane) {
  const int mi = lane >> 3, rr = lane & 7;
  return (uint32_t)((16 * wq + 8 * (mi & 1) + rr) * 128 + ((((mi >> 1) ^ rr) & 7) << 4));
}
__device__ __forceinline__ uint32_t box_addr(uint32_t box, uint32_t lane_off, int jj) {
  return box + (lane_off ^ (uint32_t)(jj << 4));
}
// The 64 columns of accumulator blocks j0 .. j0 + 7, rounded to bf16, into a box.
template <int J0>
__device__ __forceinline__ void stage_box(const float (&acc)[kAccRegs], uint32_t box, uint32_t lane_off) {
#pragma unroll
  for (int jj = 0; jj < 8; jj += 2) {
    const int j = J0 + jj;
    stsm4(box_addr(box, lane_off, jj), pack2(acc[4 * j], acc[4 * j + 1]), pack2(acc[4 * j + 2], acc[4 * j + 3]),
          pack2(acc[4 * j + 4], acc[4 * j + 5]), pack2(acc[4 * j + 6], acc[4 * j + 7]));
  }
}
// h of gate blocks JG .. JG + 7 and up blocks JU .. JU + 7 into a box.
template <int JG, int JU>
__device__ __forceinline__ void stage_h_box(const float (&acc)[kAccRegs], uint32_t box, uint32_t lane_off) {
#pragma unroll
  for (int jj = 0; jj < 8; jj += 2) {
    uint32_t r[4];
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int g = 4 * (JG + jj + (q >> 1)) + 2 * (q & 1), u = 4 * (JU + jj + (q >> 1)) + 2 * (q & 1);
      r[q] = swiglu_fwd2(acc[g], acc[g + 1], acc[u], acc[u + 1]);
    }
    stsm4(box_addr(box, lane_off, jj), r[0], r[1], r[2], r[3]);
  }
}
// Backward chunk: g box at gbox, u box at ubox, d from accumulator blocks J0 .. J0 + 7; dg, du replace g, u.
template <int J0>
__device__ __forceinline__ void swiglu_bwd_box(const float (&acc)[kAccRegs], uint32_t gbox, uint32_t ubox,
                                               uint32_t lane_off) {
#pragma unroll
  for (int jj = 0; jj < 8; jj += 2) {
    uint32_t g[4], u[4], dg[4], du[4];
    ldsm4(g, box_addr(gbox, lane_off, jj));
    ldsm4(u, box_addr(ubox, lane_off, jj));
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int i = 4 * (J0 + jj + (q >> 1)) + 2 * (q & 1);
      swiglu_bwd2(acc[i], acc[i + 1], g[q], u[q], dg[q], du[q]);
    }
    stsm4(box_addr(gbox, lane_off, jj), dg[0], dg[1], dg[2], dg[3]);
    stsm4(box_addr(ubox, lane_off, jj), du[0], du[1], du[2], du[3]);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Tile order: grouped raster, kGroupM M-tiles per group, M fastest inside a group.
// ---------------------------------------------------------------------------------------------------------
__device__ __forceinline__ void tile_coords(const Params& p, int t, int& mt, int& nt) {
  const int per_group = p.group_m * p.n_tiles;
  const int group = t / per_group, first_m = group * p.group_m;
  const int gm = min(p.m_tiles - first_m, p.group_m);
  const int r = t - group * per_group;
  mt = first_m + r % gm;
  nt = r / gm;
}

// A ring position: slot and phase parity, advanced together.
struct Ring {
  uint32_t slot = 0, phase = 0;
  template <int N>
  __device__ __forceinline__ void next() {
    if (++slot == N) slot = 0, phase ^= 1;
  }
};

// Shared-memory map: [stages: A 16 KB, B 32 KB][boxes: warpgroup 0's, warpgroup 1's][barriers].
template <class C>
struct Smem {
  static constexpr int kStages = C::kStages, kEpiBoxesPerWG = C::kBoxes;
  uint32_t base;  // 1024-aligned
  __device__ __forceinline__ uint32_t a(uint32_t s) const { return base + s * kStageBytes; }
  __device__ __forceinline__ uint32_t b(uint32_t s) const { return base + s * kStageBytes + kStageABytes; }
  __device__ __forceinline__ uint32_t box(int wg, uint32_t i) const {
    return base + kStages * kStageBytes + (wg * kEpiBoxesPerWG + i) * kBoxBytes;
  }
  __device__ __forceinline__ uint32_t bar(int i) const { return base + kStages * kStageBytes + C::kEpiBytes + 8u * i; }
  __device__ __forceinline__ uint32_t full(uint32_t s) const { return bar(s); }
  __device__ __forceinline__ uint32_t empty(uint32_t s) const { return bar(kStages + s); }
  __device__ __forceinline__ uint32_t ready(int wg, uint32_t u) const { return bar(2 * kStages + wg * kEpiBoxesPerWG + u); }
  __device__ __forceinline__ uint32_t filled(int wg, uint32_t u) const {
    return bar(2 * kStages + (kConsumerWGs + wg) * kEpiBoxesPerWG + u);
  }
};

// ---------------------------------------------------------------------------------------------------------
// The roles
// ---------------------------------------------------------------------------------------------------------
// Mainloop producer (one thread): every k-slice of every tile of this CTA into the stage ring.
template <Epi E, bool B_MN, class C>
__device__ __forceinline__ void produce(const Params& p, const Smem<C>& sm) {
  Ring st;
  for (int t = blockIdx.x; t < p.total_tiles; t += gridDim.x) {
    int mt, nt;
    tile_coords(p, t, mt, nt);
    const int m0 = mt * kBM;
    // K-major B: two 128-row halves (fused forward: gate rows and up rows); MN-major B: 4 column panels.
    const int b_row0 = E == Epi::kSwigluFwd ? nt * (kBN / 2) : nt * kBN;
    const int b_row1 = E == Epi::kSwigluFwd ? p.up_row0 + nt * (kBN / 2) : nt * kBN + kBN / 2;
    // B boxes wholly past the output columns (N % 256 == 128) are not loaded: their accumulator columns are
    // never stored, and no byte count depends on how the copy engine treats a box entirely out of bounds.
    const bool half1 = E == Epi::kSwigluFwd || nt * kBN + kBN / 2 < p.n_cols;
    int panels = 0;
#pragma unroll
    for (int q = 0; q < kBN / kBoxCols; ++q) panels += nt * kBN + q * kBoxCols < p.n_cols;
    const uint32_t bytes = B_MN ? kStageABytes + panels * (kBK * kBoxCols * 2)
                                : kStageABytes + (half1 ? kStageBBytes : kStageBBytes / 2);
    for (int kb = 0; kb < p.k_blocks; ++kb) {
      mbar_wait(sm.empty(st.slot), st.phase ^ 1);
      const uint32_t full = sm.full(st.slot);
      mbar_expect_tx(full, bytes);
      tma_load_2d(sm.a(st.slot), &p.a, full, kb * kBK, m0);
      if constexpr (!B_MN) {
        tma_load_2d(sm.b(st.slot), &p.b, full, kb * kBK, b_row0);
        if (half1) tma_load_2d(sm.b(st.slot) + kStageBBytes / 2, &p.b, full, kb * kBK, b_row1);
      } else {
        for (int q = 0; q < panels; ++q)
          tma_load_2d(sm.b(st.slot) + q * (kBK * kBoxCols * 2), &p.b, full, nt * kBN + q * kBoxCols, kb * kBK);
      }
      st.next<C::kStages>();
    }
  }
}

// Epilogue DMA thread of consumer warpgroup wg: TMA stores of its filled boxes (and for the backward the TMA
// loads of g and u, kUnits chunks ahead).
template <Epi E, class C>
__device__ __forceinline__ void epilogue_dma(const Params& p, const Smem<C>& sm, int wg) {
  using T = EpiTraits<E>;
  constexpr int kUnits = C::kBoxes / T::kUnitBoxes;
  const uint64_t pol = policy_evict_first();
  Ring ring;
  if constexpr (E == Epi::kSwigluBwd) {
    // Load cursor: tile lt, chunk lc (chunks past n_cols are skipped; chunk 0 always exists).
    int lt = blockIdx.x, lc = 0;
    auto load_next = [&](uint32_t u) {
      if (lt >= p.total_tiles) return;
      int mt, nt;
      tile_coords(p, lt, mt, nt);
      const int col = nt * kBN + lc * kBoxCols, row = mt * kBM + wg * kWgRows;
      const uint32_t bar = sm.ready(wg, u), box = sm.box(wg, u * T::kUnitBoxes);
      mbar_expect_tx(bar, 2 * kBoxBytes);
      tma_load_2d_hint(box, &p.in0, bar, col, row, pol);
      tma_load_2d_hint(box + kBoxBytes, &p.in1, bar, col, row, pol);
      if (++lc == T::kUnitsPerTile || nt * kBN + lc * kBoxCols >= p.n_cols) lc = 0, lt += gridDim.x;
    };
    for (int u = 0; u < kUnits; ++u) load_next(u);
    for (int t = blockIdx.x; t < p.total_tiles; t += gridDim.x) {
      int mt, nt;
      tile_coords(p, t, mt, nt);
      const int row = mt * kBM + wg * kWgRows;
      for (int c = 0; c < T::kUnitsPerTile; ++c) {
        const int col = nt * kBN + c * kBoxCols;
        if (col >= p.n_cols) break;
        mbar_wait(sm.filled(wg, ring.slot), ring.phase);
        const uint32_t box = sm.box(wg, ring.slot * T::kUnitBoxes);
        tma_store_2d_hint(&p.out0, box, col, row, pol);
        tma_store_2d_hint(&p.out1, box + kBoxBytes, col, row, pol);
        bulk_commit();
        bulk_wait_read0();
        load_next(ring.slot);
        ring.next<kUnits>();
      }
    }
  } else {
    for (int t = blockIdx.x; t < p.total_tiles; t += gridDim.x) {
      int mt, nt;
      tile_coords(p, t, mt, nt);
      const int row = mt * kBM + wg * kWgRows;
      for (int b = 0; b < T::kUnitsPerTile; ++b) {
        const CUtensorMap* map;
        int col;
        if constexpr (E == Epi::kStore) {
          map = &p.out0;
          col = nt * kBN + b * kBoxCols;
          if (col >= p.n_cols) break;
        } else {  // g0 u0 g1 u1 h0 h1
          map = b >= 4 ? &p.out2 : (b & 1) ? &p.out1 : &p.out0;
          col = nt * (kBN / 2) + (b >= 4 ? b - 4 : b >> 1) * kBoxCols;
        }
        mbar_wait(sm.filled(wg, ring.slot), ring.phase);
        tma_store_2d_hint(map, sm.box(wg, ring.slot), col, row, pol);
        bulk_commit();
        bulk_wait_read0();
        mbar_arrive(sm.ready(wg, ring.slot));
        ring.next<kUnits>();
      }
    }
  }
  bulk_wait0();
}

// Consumer warpgroup cw (0 or 1): rows 64 cw .. 64 cw + 63 of every tile.
template <Epi E, bool B_MN, class C>
__device__ __forceinline__ void consume(const Params& p, const Smem<C>& sm, int cw, int wq, int lane) {
  using T = EpiTraits<E>;
  constexpr int kUnits = C::kBoxes / T::kUnitBoxes;
  // Ready barriers of store rings start free (the DMA thread hands boxes back); the backward's complete on loads.
  constexpr uint32_t kReadyFlip = E == Epi::kSwigluBwd ? 0u : 1u;
  const GmmaDesc da = gmma_desc_words(sm.a(0) + cw * kWgRows * 128, 16, 1024);
  const GmmaDesc db = B_MN ? gmma_desc_words(sm.b(0), kBK * kBoxCols * 2, 1024) : gmma_desc_words(sm.b(0), 16, 1024);
  const uint32_t lane_off = box_lane_offset(wq, lane);
  float acc[kAccRegs];
  Ring st, ring;
  for (int t = blockIdx.x; t < p.total_tiles; t += gridDim.x) {
    int mt, nt;
    tile_coords(p, t, mt, nt);
    // ---- mainloop ----
    uint32_t prev = 0;
    for (int kb = 0; kb < p.k_blocks; ++kb) {
      mbar_wait(sm.full(st.slot), st.phase);
      const uint32_t so = st.slot * kStageBytes;
      wg_fence();
#pragma unroll
      for (int kk = 0; kk < kBK / kWgmmaK; ++kk) {
        const int accumulate = (kb | kk) != 0;
        if constexpr (B_MN)
          wgmma_k_mn(acc, da.at(so + kk * 32), db.at(so + kk * kWgmmaK * 128), accumulate);
        else
          wgmma_k_k(acc, da.at(so + kk * 32), db.at(so + kk * 32), accumulate);
      }
      wg_commit();
      if (kb > 0) {
        wg_wait<1>();  // the previous slice's wgmma group is done: its stage may be refilled
        if (lane == 0) mbar_arrive(sm.empty(prev));
      }
      prev = st.slot;
      st.next<C::kStages>();
    }
    wg_wait<0>();
    reg_fence(acc);
    if (lane == 0) mbar_arrive(sm.empty(prev));

    // ---- epilogue ----
    auto begin_unit = [&]() { mbar_wait(sm.ready(cw, ring.slot), ring.phase ^ kReadyFlip); };
    auto end_unit = [&]() {
      fence_proxy_async();  // the stmatrix writes -> visible to the copy engine
      __syncwarp();
      if (lane == 0) mbar_arrive(sm.filled(cw, ring.slot));
      ring.next<kUnits>();
    };
    if constexpr (E == Epi::kStore) {
#pragma unroll
      for (int b = 0; b < T::kUnitsPerTile; ++b) {
        if (nt * kBN + b * kBoxCols >= p.n_cols) break;
        begin_unit();
        const uint32_t box = sm.box(cw, ring.slot);
        if (b == 0) stage_box<0>(acc, box, lane_off);
        if (b == 1) stage_box<8>(acc, box, lane_off);
        if (b == 2) stage_box<16>(acc, box, lane_off);
        if (b == 3) stage_box<24>(acc, box, lane_off);
        end_unit();
      }
    } else if constexpr (E == Epi::kSwigluFwd) {
#pragma unroll
      for (int b = 0; b < T::kUnitsPerTile; ++b) {
        begin_unit();
        const uint32_t box = sm.box(cw, ring.slot);
        if (b == 0) stage_box<0>(acc, box, lane_off);        // g, columns 0..63
        if (b == 1) stage_box<16>(acc, box, lane_off);       // u, columns 0..63
        if (b == 2) stage_box<8>(acc, box, lane_off);        // g, columns 64..127
        if (b == 3) stage_box<24>(acc, box, lane_off);       // u, columns 64..127
        if (b == 4) stage_h_box<0, 16>(acc, box, lane_off);  // h, columns 0..63
        if (b == 5) stage_h_box<8, 24>(acc, box, lane_off);  // h, columns 64..127
        end_unit();
      }
    } else {
#pragma unroll
      for (int c = 0; c < T::kUnitsPerTile; ++c) {
        if (nt * kBN + c * kBoxCols >= p.n_cols) break;
        begin_unit();
        const uint32_t gbox = sm.box(cw, ring.slot * T::kUnitBoxes), ubox = gbox + kBoxBytes;
        if (c == 0) swiglu_bwd_box<0>(acc, gbox, ubox, lane_off);
        if (c == 1) swiglu_bwd_box<8>(acc, gbox, ubox, lane_off);
        if (c == 2) swiglu_bwd_box<16>(acc, gbox, ubox, lane_off);
        if (c == 3) swiglu_bwd_box<24>(acc, gbox, ubox, lane_off);
        end_unit();
      }
    }
  }
}

template <Epi E, bool B_MN, class C>
__global__ void __launch_bounds__(kThreads, 1) gemm_kernel(const __grid_constant__ Params p) {
#if LASP_HOPPER_WGMMA
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const uint32_t raw = smem_addr(smem_raw);
  const Smem<C> sm{raw + ((1024 - (raw & 1023)) & 1023)};
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, wg = warp >> 2;
  if (tid == 0) {
    for (int s = 0; s < C::kStages; ++s) {
      mbar_init(sm.full(s), 1);                       // the producer's arrive.expect_tx (+ bytes)
      mbar_init(sm.empty(s), 4 * kConsumerWGs);       // lane 0 of every consumer warp
    }
    for (int w = 0; w < kConsumerWGs; ++w)
      for (int u = 0; u < C::kBoxes; ++u) {
        mbar_init(sm.ready(w, u), 1);   // the DMA thread (arrive, or arrive.expect_tx + the TMA load's bytes)
        mbar_init(sm.filled(w, u), 4);  // lane 0 of each of the warpgroup's warps
      }
    fence_mbar_init();
  }
  __syncthreads();
  if (wg == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kProducerRegs) : "memory");
    if (lane == 0) {
      if (warp == 0) {
        prefetch_map(&p.a);
        prefetch_map(&p.b);
        produce<E, B_MN, C>(p, sm);
      } else if (warp <= kConsumerWGs) {
        epilogue_dma<E, C>(p, sm, warp - 1);
      }
    }
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegs) : "memory");
    consume<E, B_MN, C>(p, sm, wg - 1, warp & 3, lane);
  }
#else
  __trap();
#endif
}

// ---------------------------------------------------------------------------------------------------------
// Host
// ---------------------------------------------------------------------------------------------------------
// The callers check the shapes, the alignment and the encoder first (applies()): a failure here is a bug.
[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "lasp_program: the MLP's GEMM (mlp_gemm.cuh): %s\n", what);
  std::exit(LASP_EXIT_CODE_FAILURE);
}

// A 2-d bf16 tensor map: `cols` contiguous elements per row, `rows` rows `ld` elements apart, boxes of
// box_cols x box_rows with the 128-byte swizzle; zeros are read past the edges and stores there are dropped.
inline CUtensorMap make_map(const void* ptr, uint64_t cols, uint64_t rows, uint64_t ld, uint32_t box_cols,
                            uint32_t box_rows) {
  const TensorMapEncodeTiled enc = tensor_map_encoder();
  if (!enc) fail("no cuTensorMapEncodeTiled entry point in this driver");
  if ((reinterpret_cast<uintptr_t>(ptr) & 15) != 0 || (ld * 2) % 16 != 0) fail("tensor not 16-byte aligned");
  CUtensorMap m;
  const cuuint64_t dims[2] = {cols, rows}, strides[1] = {ld * 2};
  const cuuint32_t box[2] = {box_cols, box_rows}, es[2] = {1, 1};
  const CUresult r = enc(&m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(ptr), dims, strides, box, es,
                         CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                         CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    std::fprintf(stderr, "lasp_program: the MLP's GEMM (mlp_gemm.cuh): cuTensorMapEncodeTiled failed (%d) for %llu x "
                 "%llu, ld %llu\n", (int)r, (unsigned long long)rows, (unsigned long long)cols, (unsigned long long)ld);
    std::exit(LASP_EXIT_CODE_FAILURE);
  }
  return m;
}

inline void check_shape(int M, int N, int K, const char* who) {
  if (M <= 0 || N <= 0 || K <= 0 || M % kBM != 0 || K % kBK != 0 || N % (kBN / 2) != 0) {
    std::fprintf(stderr, "lasp_program: %s: M %d, N/F %d, K %d: need M %% %d == 0, K %% %d == 0, N (or F) %% %d == 0\n",
                 who, M, N, K, kBM, kBK, kBN / 2);
    std::exit(LASP_EXIT_CODE_FAILURE);
  }
}

inline void set_grid(Params& p, int M, int n_tiles, int K) {
  p.m_tiles = M / kBM;
  p.n_tiles = n_tiles;
  p.k_blocks = K / kBK;
  p.total_tiles = p.m_tiles * p.n_tiles;
}

// C[M][N] = A[M][K] B^T (B [N][K], b_mn false) or A B (B [K][N], b_mn true).
inline Params prepare_plain(const bf16* A, const bf16* B, bf16* C, int M, int N, int K, bool b_mn) {
  check_shape(M, N, K, "mlpg::prepare_plain");
  Params p{};
  p.a = make_map(A, K, M, K, kBK, kBM);
  p.b = b_mn ? make_map(B, N, K, N, kBoxCols, kBK) : make_map(B, K, N, K, kBK, kBN / 2);
  p.out0 = make_map(C, N, M, N, kBoxCols, kWgRows);
  p.out1 = p.out2 = p.in0 = p.in1 = p.out0;
  set_grid(p, M, (N + kBN - 1) / kBN, K);
  p.n_cols = N;
  p.up_row0 = 0;
  p.group_m = kGroupM;
  return p;
}
// GU[M][2F] = X W^T (W = [Wgate; Wup], [2F][K]) and H[M][F] = swiglu(GU).
inline Params prepare_forward(const bf16* X, const bf16* W, bf16* GU, bf16* H, int M, int F, int K) {
  check_shape(M, F, K, "mlpg::prepare_forward");
  Params p{};
  p.a = make_map(X, K, M, K, kBK, kBM);
  p.b = make_map(W, K, 2 * (uint64_t)F, K, kBK, kBN / 2);
  p.out0 = make_map(GU, F, M, 2 * (uint64_t)F, kBoxCols, kWgRows);
  p.out1 = make_map(GU + F, F, M, 2 * (uint64_t)F, kBoxCols, kWgRows);
  p.out2 = make_map(H, F, M, F, kBoxCols, kWgRows);
  p.in0 = p.in1 = p.out0;
  set_grid(p, M, F / (kBN / 2), K);
  p.n_cols = F;
  p.up_row0 = F;
  p.group_m = kGroupM;
  return p;
}
// d = bf16(DY Wd) (DY [M][K], Wd [K][F]); dg, du from g, u of GU_in into GU_out ([M][2F]; may be GU_in).
inline Params prepare_backward(const bf16* DY, const bf16* Wd, const bf16* GU_in, bf16* GU_out, int M, int F, int K) {
  check_shape(M, F, K, "mlpg::prepare_backward");
  Params p{};
  p.a = make_map(DY, K, M, K, kBK, kBM);
  p.b = make_map(Wd, F, K, F, kBoxCols, kBK);
  p.out0 = make_map(GU_out, F, M, 2 * (uint64_t)F, kBoxCols, kWgRows);
  p.out1 = make_map(GU_out + F, F, M, 2 * (uint64_t)F, kBoxCols, kWgRows);
  p.in0 = make_map(GU_in, F, M, 2 * (uint64_t)F, kBoxCols, kWgRows);
  p.in1 = make_map(GU_in + F, F, M, 2 * (uint64_t)F, kBoxCols, kWgRows);
  p.out2 = p.out0;
  set_grid(p, M, (F + kBN - 1) / kBN, K);
  p.n_cols = F;
  p.up_row0 = 0;
  p.group_m = kGroupM;
  return p;
}

inline int sm_count() {
  static int n = [] {
    int dev = 0, v = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev));
    return v;
  }();
  return n;
}

template <Epi E, bool B_MN, class C = CfgMain>
inline cudaError_t launch(const Params& p, cudaStream_t s) {
  static bool attr = false;
  if (!attr) {
    const cudaError_t e = cudaFuncSetAttribute(gemm_kernel<E, B_MN, C>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               (int)C::kSmemBytes);
    if (e != cudaSuccess) return e;
    attr = true;
  }
  if (p.group_m < 1) fail("group_m must be positive");
  int grid = p.total_tiles < sm_count() ? p.total_tiles : sm_count();
  if (p.max_ctas > 0 && grid > p.max_ctas) grid = p.max_ctas;
  gemm_kernel<E, B_MN, C><<<grid, kThreads, C::kSmemBytes, s>>>(p);
  return cudaGetLastError();
}
template <class C = CfgMain>
inline cudaError_t plain(const Params& p, bool b_mn, cudaStream_t s) {
  return b_mn ? launch<Epi::kStore, true, C>(p, s) : launch<Epi::kStore, false, C>(p, s);
}
template <class C = CfgMain>
inline cudaError_t forward(const Params& p, cudaStream_t s) { return launch<Epi::kSwigluFwd, false, C>(p, s); }
template <class C = CfgMain>
inline cudaError_t backward(const Params& p, cudaStream_t s) { return launch<Epi::kSwigluBwd, true, C>(p, s); }


// ---------------------------------------------------------------------------------------------------------
// The program's choices: LASP_MLP_GEMM (the MLP's two products with SwiGLU epilogues) and LASP_HEAD_GEMM (the LM
// head's logits, plain) = auto (the default: this kernel where it applies), lasp (insist: exit 2 where it cannot
// run), cublas (cuBLAS, and swiglu.cuh for the MLP: to compare or to rule the kernel out).
// ---------------------------------------------------------------------------------------------------------
enum class Choice { kAuto, kLasp, kCublas };
inline Choice read_choice(const char* variable) {
  const char* v = std::getenv(variable);
  if (v == nullptr || *v == '\0' || std::strcmp(v, "auto") == 0) return Choice::kAuto;
  if (std::strcmp(v, "lasp") == 0) return Choice::kLasp;
  if (std::strcmp(v, "cublas") == 0) return Choice::kCublas;
  std::fprintf(stderr, "lasp_program: %s=%s is not a choice (auto, lasp or cublas)\n", variable, v);
  std::exit(2);
}
inline Choice requested() {
  static const Choice choice = read_choice("LASP_MLP_GEMM");
  return choice;
}
inline Choice head_requested() {
  static const Choice choice = read_choice("LASP_HEAD_GEMM");
  return choice;
}
// Why this GPU cannot run the kernel, or nullptr where it can.
inline const char* gpu_unfit() {
  if (!kernels_run()) return "it needs a Hopper GPU (compute capability 9.0) and a program built for sm_90a";
  if (tensor_map_encoder() == nullptr) return "the driver has no cuTensorMapEncodeTiled";
  return nullptr;
}
// Why the kernel cannot take this shape here, or nullptr where it can (the shape first: it needs no GPU).
inline const char* unfit(int rows, int ffn, int hidden) {
  if (rows % kBM != 0 || hidden % kBK != 0 || ffn % (kBN / 2) != 0)
    return "it needs tokens per rank % 128 == 0, hidden % 64 == 0 and ffn % 128 == 0";
  return gpu_unfit();
}
// The same for the LM head's logits over a chunk of `rows` tokens.
inline const char* head_unfit(int rows, int vocab, int hidden) {
  if (rows % kBM != 0 || hidden % kBK != 0 || vocab % (kBN / 2) != 0)
    return "it needs chunks of tokens % 128 == 0, hidden % 64 == 0 and vocab % 128 == 0";
  return gpu_unfit();
}

}  // namespace mlpg

// "lasp" where the MLP's SwiGLU GEMMs run on this kernel, "cublas" where on cuBLAS and swiglu.cuh; the first call
// reads the GPU and LASP_MLP_GEMM (exit 2 where `lasp` cannot be honoured, naming why).
const char* mlp_gemm_backend(int rows, int ffn, int hidden) {
  const mlpg::Choice choice = mlpg::requested();
  if (choice == mlpg::Choice::kCublas) return "cublas";
  const char* why = mlpg::unfit(rows, ffn, hidden);
  if (why != nullptr && choice == mlpg::Choice::kLasp) {
    std::fprintf(stderr, "lasp_program: LASP_MLP_GEMM=lasp, but lasp's MLP GEMM cannot run %d tokens x hidden %d x ffn %d "
                 "here: %s (auto or cublas run cuBLAS and swiglu.cuh)\n", rows, hidden, ffn, why);
    std::exit(2);
  }
  return why == nullptr ? "lasp" : "cublas";
}

bool mlp_gemm_forward(const bf16* x, const bf16* w_gate_up, bf16* gate_up, bf16* h, int rows, int ffn, int hidden,
                      cudaStream_t s) {
  if (std::strcmp(mlp_gemm_backend(rows, ffn, hidden), "lasp") != 0) return false;
  CUDA_CHECK(mlpg::forward(mlpg::prepare_forward(x, w_gate_up, gate_up, h, rows, ffn, hidden), s));
  return true;
}

bool mlp_gemm_backward(const bf16* dy, const bf16* w_down, bf16* gate_up, int rows, int ffn, int hidden,
                       cudaStream_t s) {
  if (std::strcmp(mlp_gemm_backend(rows, ffn, hidden), "lasp") != 0) return false;
  CUDA_CHECK(mlpg::backward(mlpg::prepare_backward(dy, w_down, gate_up, gate_up, rows, ffn, hidden), s));
  return true;
}

// "lasp" where the LM head's logits over chunks of `rows` tokens run on this kernel's plain store, "cublas" where
// on cuBLAS; the first call reads LASP_HEAD_GEMM (exit 2 where `lasp` cannot be honoured, naming why).
const char* head_gemm_backend(int rows, int vocab, int hidden) {
  const mlpg::Choice choice = mlpg::head_requested();
  if (choice == mlpg::Choice::kCublas) return "cublas";
  const char* why = mlpg::head_unfit(rows, vocab, hidden);
  if (why != nullptr && choice == mlpg::Choice::kLasp) {
    std::fprintf(stderr, "lasp_program: LASP_HEAD_GEMM=lasp, but lasp's GEMM cannot run the LM head's logits over "
                 "%d tokens x hidden %d x vocab %d here: %s (auto or cublas run cuBLAS)\n", rows, hidden, vocab, why);
    std::exit(2);
  }
  return why == nullptr ? "lasp" : "cublas";
}

// logits[rows][vocab] = x[rows][hidden] W^T (W [vocab][hidden]); false (nothing done) where the chunk goes to
// cuBLAS: the backend says so, or this chunk (a ragged last one) or its buffers (16-byte alignment) do not fit.
bool head_logits_gemm(const bf16* x, const bf16* w, bf16* logits, int rows, int vocab, int hidden, cudaStream_t s) {
  if (mlpg::head_requested() == mlpg::Choice::kCublas || mlpg::head_unfit(rows, vocab, hidden) != nullptr)
    return false;
  for (const void* p : {(const void*)x, (const void*)w, (const void*)logits})
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  CUDA_CHECK(mlpg::plain(mlpg::prepare_plain(x, w, logits, rows, vocab, hidden, false), false, s));
  return true;
}

}  // namespace lasp
