// Softmax (flash) attention kernels for LASP-2H, ring attention and Ulysses (ALGORITHMS.md, "Standard
// (softmax) attention layers").
//
// What is computed. Per (batch, query head h), kv head h / (heads / kv_heads), scale = 1/sqrt(d):
//   forward   o_i = sum_j P_ij v_j / sum_j P_ij,  P_ij = exp(scale q_i.k_j) over the visible keys j,
//             lse_i = log sum_j exp(scale q_i.k_j)          (-inf and o_i = 0 when row i sees no key)
//   backward  P = exp(scale q.k - lse), delta_i = rowsum(dout_i * o_i), dS = P * (dout.v - delta),
//             dq += scale dS k, dk += scale dS^T q, dv += P^T dout   (o and lse are the FINAL ones)
// Visibility: causal compares GLOBAL positions, pos(k_j) <= pos(q_i), through the PieceMaps (up to two
// pieces, monotonic). With packed documents (Documents, types.cuh) a query also sees only its own document:
// first[pos(q_i)] <= pos(k_j), and bidirectionally pos(k_j) <= last[pos(q_i)]. Activations are bf16
// [batch][rows][heads][d], d = 64 or 128; statistics fp32.
//
// Design choices:
// - The default path and its fallbacks only, named by SoftmaxForwardKernel / SoftmaxBackwardKernel. d = 128
//   (the target) runs on Hopper warpgroup MMAs (wgmma, sm_90a): FlashAttention-3-style math on
//   128-byte-swizzled shared tiles, warp-specialized (fwd_ws_kernel, bwd_ws_kernel), falling back to the cp.async
//   wgmma kernels where no tensor map can be made. d = 64, and every head dim before Hopper, runs the
//   FlashAttention-2-style mma.sync m16n8k16 kernels fed by ldmatrix from XOR-swizzled tiles. The kernels
//   without warp specialization stream tiles through shared memory with cp.async, double buffered (triple for
//   V in the pipelined forward), zero-filled past the last row. Variants only the benchmarks select (the plain
//   wgmma forward, 3 K/V stages, ping-pong turns, 16-byte dQ atomics) live in bench/gpu/softmax_variants.cuh.
// - Warp specialization (d = 128, default): a producer warpgroup (setmaxnreg 24; one thread or warp works) loads
//   tiles with TMA bulk tensor copies into a ring of stages guarded by full/empty mbarriers, two consumer
//   warpgroups (setmaxnreg 240) do the math below. Tensor maps are encoded on the host for every call (driver
//   entry point, no -lcuda, nothing enqueued: graph capture records them in the kernel's parameters); where one
//   cannot be made (no keys, a pointer not 16-byte aligned) the call takes the cp.async kernel.
// - Forward (d = 128, fwd_wgmma_pipe_kernel): a CTA of two warpgroups owns 128 query rows of one head and walks
//   128-key tiles: S = Q K^T (both operands in shared memory), the online softmax in registers in the log2
//   domain (scale*log2e folded into one multiply, ex2.approx), O += P V with P straight from the accumulator
//   registers. The next tile's S is issued together with the current P V and its softmax runs while P V is
//   still in flight (FA3's intra-warpgroup overlap). The mma.sync forward (d = 64) uses 4 warps x 32 rows and
//   64-key tiles.
// - Backward (d = 128, bwd_wgmma_kernel): a CTA owns 128 keys of one KV head (two warpgroups x 64 keys) and
//   walks every 64-row query tile of every query head of its group, so dK/dV sum over the group in registers
//   and are written once, without atomics. S^T = K Q^T and dP^T = V dO^T give P^T and dS^T directly in the
//   A-fragment layout for dV += P^T dO and dK += dS^T Q; dS^T goes through shared memory once for dQ = dS K,
//   which the warp-specialized kernel adds to the fp32 dq accumulator with one TMA reduce-add per tile (staged
//   in shared memory, FlashAttention-3's path) and the fallbacks with 8-byte float2 atomics. delta =
//   rowsum(dout*o) comes from a small prep kernel. The mma.sync backward (d = 64) has the same structure with
//   8 warps x 16 keys.
// - Masking costs nothing on tiles that do not need it. Maps are monotonic, so a tile's first and last rows
//   bound its positions, and the visible keys of a query tile are a prefix [0, n_end) of the key block whose
//   first n_full keys are visible to every row of the tile: the key loop stops at n_end (masked tiles are
//   never touched) and only tiles past n_full evaluate per-element positions (a tile may straddle the
//   boundary between a rank's two pieces, so positions are per row / per column). The backward classifies
//   query tiles the same way from the key side (tiles before the first visible query row are skipped).
// - Documents are a separate instantiation of each kernel (an optional trailing Documents argument, has_docs):
//   calls without them run exactly the code they ran before (checked: the same PTX and registers; the launchers
//   instantiate the path without documents first, as nvcc otherwise compiles two backward kernels differently).
//   With them the same ranges come from the documents: first / last are nondecreasing, so a query tile at
//   positions p_lo..p_hi reaches keys [first[p_lo], causal ? p_hi : last[p_hi]] only, and every row sees
//   [first[p_hi], causal ? p_lo : last[p_lo]]; the key loop walks just the tiles of the first range (a tile no
//   row reaches is neither loaded nor multiplied: packed documents of length L cost about N L / 2 scores, not
//   N^2 / 2) and masks per element outside the second. The backward mirrors it from the key side (key j
//   reaches queries [causal ? j : first[j], last[j]]). Exact for contiguous positions; a tile across a zigzag
//   gap gets a superset (never loses a key). The forward reads a row's first / last only in masked tiles (the
//   wgmma consumers have no registers to hold them), the backward holds its two keys'. A row left without keys
//   in a block keeps o = 0, lse = -inf (the merge's neutral element), and its backward P = 0.
// - Heavy tiles first: forward CTAs are numbered so that the last query tiles (most visible keys, causal)
//   start first; backward CTAs so that the first key tiles (most visible queries) start first. The grid's
//   x dimension is batch*heads, so the heaviest tile of every head is dispatched before any lighter one.
// - A row that sees no key keeps max = -inf; the exponent base is then 0 (not -inf), so every exp2 is 0 and
//   nothing becomes NaN; the output is 0 and lse -inf. In the backward an lse of -inf is read as +inf (P = 0).
//   P is rounded to bf16 once and that copy feeds both dV and dS (as the tensor cores see it).
// - Workspaces (delta, and the fp32 dq of the whole-sequence backward) are allocated lazily per device, kept
//   and grown (cudaFree + cudaMalloc only when a larger size is needed: never in steady state, and never
//   while a CUDA graph is being captured if the first call ran before capture). They are shared by all calls
//   on a device: calls that use them must be ordered (one stream, or events).
// - Like the other kernel headers the host functions are not `inline`: include this file in one translation
//   unit (kernels.cu). It needs only the CUDA toolkit and types.cuh (SoftmaxDims, PieceMap). Build for
//   sm_90a (wgmma); the launchers raise the dynamic shared-memory limit of each kernel they launch.
// - Measured (batch 1, 16 heads x 128, causal, 16K / 64K tokens): the forward runs at 0.89-0.98x of SDPA's
//   cuDNN path, forward and backward together at 0.81-0.86x (H100 and H200,
//   bench/results/2026-12-06-softmax-bwd-tma-dq.md): the backward is the gap. Every version's notes:
//   bench/gpu/SOFTMAX_NOTES.md. Resources: fwd_ws 384 threads, 168 registers at entry (consumers up to 240),
//   161 KB shared memory, 1 CTA per SM; bwd_ws the same threads and registers, 226 KB; fwd_wgmma_pipe 239-255
//   registers, 193 KB; bwd_wgmma 235-255 registers, 145 KB.
#pragma once
#include <cuda.h>  // CUtensorMap and its enums only; the encoder comes through cudaGetDriverEntryPoint (no -lcuda)
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <type_traits>

#include "types.cuh"
#include "attention_args.cuh"
#include "check.cuh"
#include "mma.cuh"
#include "hopper.cuh"

namespace lasp {

// SoftmaxDims and PieceMap come from types.cuh.

// The kernel a pass runs (head_dim 128; head_dim 64 always runs mma_sync). The default is warp_specialized on
// Hopper and mma_sync elsewhere (smx::default_forward_kernel / default_backward_kernel); a warp-specialized call
// whose tensor maps cannot be made (no keys, a pointer not 16-byte aligned, no driver entry point) takes the
// wgmma kernel without specialization instead. The benchmark harness names the others to check them.
enum class SoftmaxForwardKernel {
  warp_specialized,  // fwd_ws_kernel: TMA producer warp, 2 K/V stages, two consumer warpgroups (sm_90a)
  wgmma_pipelined,   // fwd_wgmma_pipe_kernel: cp.async tiles, intra-warpgroup overlap (sm_90a)
  mma_sync,          // fwd_kernel: mma.sync m16n8k16, any GPU from sm_80 on
};
enum class SoftmaxBackwardKernel {
  warp_specialized,  // bwd_ws_kernel: TMA producer warp, double-buffered dS^T, dQ by TMA reduce-add (sm_90a)
  wgmma,             // bwd_wgmma_kernel: cp.async tiles (sm_90a)
  mma_sync,          // bwd_kernel: mma.sync m16n8k16, any GPU from sm_80 on
};

namespace smx {

using namespace ptx;     // smem_addr, ldsm4, ldsm4t, mma, pack2, swz (mma.cuh)
using namespace hopper;  // mbarriers, wgmma descriptors and fences, tensor maps (hopper.cuh)

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// ---------------------------------------------------------------------------------------------------------
// PTX helpers
// ---------------------------------------------------------------------------------------------------------
// 16-byte copy; src_bytes 0 fills the destination with zeros and reads nothing.
__device__ __forceinline__ void cp16(void* smem, const void* gmem, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem),
               "r"(src_bytes));
}
__device__ __forceinline__ void cp4(void* smem, const void* gmem) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(smem_addr(smem)), "l"(gmem));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// dQ accumulation: vector float atomics exist from sm_90 on; older GPUs (a build with ARCH=80 runs the
// mma.sync kernels there) add the lanes one by one.
__device__ __forceinline__ void atomic_add2(float* dst, float a, float b) {
#if __CUDA_ARCH__ >= 900
  atomicAdd(reinterpret_cast<float2*>(dst), make_float2(a, b));
#else
  atomicAdd(dst, a);
  atomicAdd(dst + 1, b);
#endif
}
__device__ __forceinline__ void atomic_add4(float* dst, float4 v) {
#if __CUDA_ARCH__ >= 900
  atomicAdd(reinterpret_cast<float4*>(dst), v);
#else
  atomic_add2(dst, v.x, v.y);
  atomic_add2(dst + 2, v.z, v.w);
#endif
}
template <int N>
__device__ __forceinline__ void cp_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
__device__ __forceinline__ float ex2(float x) {  // 2^x; ex2.approx(-inf) = 0
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Tiles are swizzled as swz<LD> (mma.cuh) lays them out. ldmatrix.x4 lane addresses. p1: lanes 0-15 rows r0+0..15 at c0, lanes 16-31 the same rows at c0+8.
//   non-trans: A fragment of a [m][k] tile; trans: B fragments of two n8 tiles of a [k][n] tile.
// p2: lanes 0-7 rows r0.. at c0, 8-15 rows r0.. at c0+8, 16-23 rows r0+8.. at c0, 24-31 rows r0+8.. at c0+8.
//   non-trans: B fragments of two n8 tiles of a [n][k] tile; trans: A fragment of a [k][m] tile.
// r0 is a multiple of 8 and c0 of 16 (compile-time in the unrolled loops). The address is computed as the
// lane's address at (0, 0) with c0 applied by an XOR on address bits 4-6 (the swizzled chunk) plus a
// constant: tiles are 128-byte aligned, so (chunk(c0) | lane bit) ^ (row % 8) == lane chunk ^ chunk(c0).
// That keeps one base register per tile instead of one address per (row, column) step.
template <int LD>
__device__ __forceinline__ uint32_t tile_at(uint32_t base, int r0, int c0) {
  const int ch = c0 >> 3;  // even
  return ((base ^ (uint32_t)((ch & 7) << 4)) + (uint32_t)((ch >> 3) << 7)) + (uint32_t)(r0 * LD * 2);
}
template <int LD>
__device__ __forceinline__ uint32_t p1(const __nv_bfloat16* t, int r0, int c0, int lane) {
  const uint32_t base = smem_addr(t) + 2u * (uint32_t)swz<LD>(lane & 15, (lane >> 4) << 3);
  return tile_at<LD>(base, r0, c0);
}
template <int LD>
__device__ __forceinline__ uint32_t p2(const __nv_bfloat16* t, int r0, int c0, int lane) {
  const uint32_t base = smem_addr(t) + 2u * (uint32_t)swz<LD>((lane & 7) + ((lane >> 4) << 3), ((lane >> 3) & 1) << 3);
  return tile_at<LD>(base, r0, c0);
}

// ROWS x D rows of one head (row pitch `stride` elements) into a swizzled tile; rows >= valid become 0.
template <int ROWS, int D, int NT>
__device__ __forceinline__ void load_rows(__nv_bfloat16* s, const __nv_bfloat16* g, size_t stride, int valid,
                                          int tid) {
  constexpr int CH = D / 8;
  static_assert((ROWS * CH) % NT == 0, "tile chunks must divide among the threads");
#pragma unroll
  for (int it = 0; it < ROWS * CH / NT; ++it) {
    int i = tid + it * NT, r = i / CH, c = (i % CH) * 8;
    bool ok = r < valid;
    cp16(s + swz<D>(r, c), ok ? g + (size_t)r * stride + c : g, ok ? 16 : 0);
  }
}

// Global position of local row r (monotonic maps, count 0 = identity).
__device__ __forceinline__ int pos_of(const PieceMap& m, int r) {
  if (m.count == 0) return r;
  if (m.count == 1 || r < m.local_offset[1]) return m.global_start[0] + (r - m.local_offset[0]);
  return m.global_start[1] + (r - m.local_offset[1]);
}
// Number of local rows (of `rows`) whose position is <= p: they are a prefix of the rows.
__device__ __forceinline__ int count_le(const PieceMap& m, int rows, int p) {
  if (m.count == 0) return max(0, min(rows, p + 1));
  int n = max(0, min(m.length[0], p - m.global_start[0] + 1));  // fixed indices: no local-memory copy
  if (m.count > 1) n += max(0, min(m.length[1], p - m.global_start[1] + 1));
  return min(n, rows);
}

// ---------------------------------------------------------------------------------------------------------
// Documents. A kernel takes them as an optional trailing argument, a parameter pack of zero or one Documents:
// without one its parameter list, its code and every launch of it (the benchmarks' too) stay what they were;
// with one it is a separate instantiation (DOCS below) that masks by document and skips the tiles no row reaches.
// ---------------------------------------------------------------------------------------------------------
template <class... Docs>
__host__ __device__ constexpr bool has_docs() {
  static_assert(sizeof...(Docs) <= 1 && (std::is_same<Docs, Documents>::value && ...),
                "the optional trailing kernel argument is one Documents");
  return sizeof...(Docs) == 1;
}
__host__ __device__ __forceinline__ Documents docs_arg() { return Documents{}; }
__host__ __device__ __forceinline__ Documents docs_arg(const Documents& d) { return d; }

// first / last of batch row b (types.cuh), indexed by global position.
struct DocRow {
  const int* first;
  const int* last;
};
__device__ __forceinline__ DocRow doc_row(const Documents& d, int b) {
  return DocRow{d.first + (size_t)b * d.seq_len, d.last + (size_t)b * d.seq_len};
}

// Forward, a query tile whose rows lie at positions p_lo..p_hi (monotonic, maybe with a zigzag gap): the local
// keys [n_begin, n_end) that some row may see, and [f_begin, f_end) that every row sees. first / last are
// nondecreasing, so some row's keys lie in [first[p_lo], causal ? p_hi : last[p_hi]] and every row sees
// [first[p_hi], causal ? p_lo : last[p_lo]]; monotonic key maps turn position ranges into local ones. Exact for
// contiguous rows, a superset (never a needed key lost) across a gap.
template <bool CAUSAL>
__device__ __forceinline__ void doc_key_ranges(const DocRow& r, const PieceMap& kmap, int k_rows, int p_lo, int p_hi,
                                               int& n_begin, int& n_end, int& f_begin, int& f_end) {
  n_begin = count_le(kmap, k_rows, r.first[p_lo] - 1);
  n_end = count_le(kmap, k_rows, CAUSAL ? p_hi : r.last[p_hi]);
  f_begin = count_le(kmap, k_rows, r.first[p_hi] - 1);
  f_end = count_le(kmap, k_rows, CAUSAL ? p_lo : r.last[p_lo]);
}
// Backward, a key tile at positions k_lo..k_hi: the local queries [q_begin, q_end) some key may reach and
// [f_begin, f_end) every key reaches. Key j reaches query i iff i lies in [causal ? j : first[j], last[j]] (same
// document), so some key reaches [causal ? k_lo : first[k_lo], last[k_hi]] and every key [causal ? k_hi :
// first[k_hi], last[k_lo]].
template <bool CAUSAL>
__device__ __forceinline__ void doc_query_ranges(const DocRow& r, const PieceMap& qmap, int q_rows, int k_lo, int k_hi,
                                                 int& q_begin, int& q_end, int& f_begin, int& f_end) {
  q_begin = count_le(qmap, q_rows, (CAUSAL ? k_lo : r.first[k_lo]) - 1);
  q_end = count_le(qmap, q_rows, r.last[k_hi]);
  f_begin = count_le(qmap, q_rows, (CAUSAL ? k_hi : r.first[k_hi]) - 1);
  f_end = count_le(qmap, q_rows, r.last[k_lo]);
}
// Forward: the key positions [lo, hi] that the query at position qp sees (none for a row past the last one,
// `valid` false). Read where a masked tile needs them, not held in registers through the key loop (the wgmma
// kernels have none to spare).
template <bool CAUSAL>
__device__ __forceinline__ void doc_window(const Documents& d, int b, int qp, bool valid, int& lo, int& hi) {
  const size_t i = (size_t)b * d.seq_len + qp;
  lo = valid ? __ldg(d.first + i) : INT_MAX;
  hi = CAUSAL ? qp : valid ? __ldg(d.last + i) : -1;
}
__device__ __forceinline__ bool in_window(int kp, int lo, int hi) { return kp >= lo && kp <= hi; }
// Backward: whether key position kp reaches query position qp, from the key's first and last.
template <bool CAUSAL>
__device__ __forceinline__ bool doc_reaches(int kp, int qp, int kfirst, int klast) {
  return qp <= klast && (CAUSAL ? kp <= qp : kfirst <= qp);
}

// ---------------------------------------------------------------------------------------------------------
// Forward. grid (batch*heads, m_tiles): blockIdx.y = 0 is the LAST query tile (heaviest under causal).
// ---------------------------------------------------------------------------------------------------------
constexpr int kFwdBM = 128, kFwdBN = 64, kFwdThreads = 128;

template <int D>
constexpr int fwd_smem_bytes() {
  return (kFwdBM * D + 4 * kFwdBN * D) * 2;
}

template <int D, bool CAUSAL, bool OUT_F32, class... Docs>
__global__ void __launch_bounds__(kFwdThreads, 2)
    fwd_kernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
               const __nv_bfloat16* __restrict__ v, SoftmaxDims dm, PieceMap qmap, PieceMap kmap,
               float* __restrict__ o_part, float* __restrict__ lse, __nv_bfloat16* __restrict__ o_out,
               float scale_log2, Docs... docs) {
  constexpr int BM = kFwdBM, BN = kFwdBN, NT = kFwdThreads, KT = D / 16;
  constexpr bool DOCS = has_docs<Docs...>();
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __nv_bfloat16* sQ = reinterpret_cast<__nv_bfloat16*>(smem_raw);
  __nv_bfloat16* sK = sQ + BM * D;       // [2][BN][D]
  __nv_bfloat16* sV = sK + 2 * BN * D;   // [2][BN][D]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, tq = lane & 3;
  const int H = dm.heads, HK = dm.kv_heads;
  const int b = blockIdx.x / H, h = blockIdx.x % H, hk = h / (H / HK);
  const int m0 = (gridDim.y - 1 - blockIdx.y) * BM;
  const int qvalid = min(BM, dm.q_rows - m0);
  const size_t qstride = (size_t)H * D, kstride = (size_t)HK * D;
  const __nv_bfloat16* qg = q + (((size_t)b * dm.q_rows + m0) * H + h) * D;
  const __nv_bfloat16* kg = k + ((size_t)b * dm.k_rows * HK + hk) * D;
  const __nv_bfloat16* vg = v + ((size_t)b * dm.k_rows * HK + hk) * D;

  int n_end = dm.k_rows, n_full = dm.k_rows, n_begin = 0, n_full_begin = 0;
  if constexpr (DOCS) {
    doc_key_ranges<CAUSAL>(doc_row(docs_arg(docs...), b), kmap, dm.k_rows, pos_of(qmap, m0),
                           pos_of(qmap, m0 + qvalid - 1), n_begin, n_end, n_full_begin, n_full);
  } else if (CAUSAL) {
    n_end = count_le(kmap, dm.k_rows, pos_of(qmap, m0 + qvalid - 1));
    n_full = count_le(kmap, dm.k_rows, pos_of(qmap, m0));
  }
  // Key tiles kt0, kt0 + BN, ...: from the first one some row sees (documents), else from 0.
  const int kt0 = DOCS ? n_begin / BN * BN : 0;
  const int n_tiles = DOCS ? (n_end > n_begin ? (n_end - kt0 + BN - 1) / BN : 0) : (n_end + BN - 1) / BN;

  load_rows<BM, D, NT>(sQ, qg, qstride, qvalid, tid);
  if (n_tiles > 0) {
    load_rows<BN, D, NT>(sK, kg + (size_t)kt0 * kstride, kstride, min(BN, dm.k_rows - kt0), tid);
    load_rows<BN, D, NT>(sV, vg + (size_t)kt0 * kstride, kstride, min(BN, dm.k_rows - kt0), tid);
  }
  cp_commit();

  float acc[2][D / 8][4];
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int t = 0; t < D / 8; ++t) acc[mt][t][0] = acc[mt][t][1] = acc[mt][t][2] = acc[mt][t][3] = 0.f;
  float mrow[2][2], lrow[2][2];
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      mrow[mt][hh] = -INFINITY;
      lrow[mt][hh] = 0.f;
    }

  for (int it = 0; it < n_tiles; ++it) {
    const int n0 = kt0 + it * BN;
    cp_wait<0>();
    __syncthreads();  // tile `it` landed; everybody is done with the other stage
    if (it + 1 < n_tiles) {
      const int st = (it + 1) & 1, nn = n0 + BN;
      load_rows<BN, D, NT>(sK + st * BN * D, kg + (size_t)nn * kstride, kstride, min(BN, dm.k_rows - nn), tid);
      load_rows<BN, D, NT>(sV + st * BN * D, vg + (size_t)nn * kstride, kstride, min(BN, dm.k_rows - nn), tid);
    }
    cp_commit();
    const __nv_bfloat16* tK = sK + (it & 1) * BN * D;
    const __nv_bfloat16* tV = sV + (it & 1) * BN * D;

    // S = Q K^T: 2 m16 tiles x 8 n8 tiles.
    float s[2][8][4];
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) s[mt][nt][0] = s[mt][nt][1] = s[mt][nt][2] = s[mt][nt][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < KT; ++kk) {
      uint32_t a0[4], a1[4];
      ldsm4(a0, p1<D>(sQ, 32 * warp, 16 * kk, lane));
      ldsm4(a1, p1<D>(sQ, 32 * warp + 16, 16 * kk, lane));
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        uint32_t bb[4];
        ldsm4(bb, p2<D>(tK, 16 * np, 16 * kk, lane));
        mma(s[0][2 * np], a0, bb[0], bb[1]);
        mma(s[0][2 * np + 1], a0, bb[2], bb[3]);
        mma(s[1][2 * np], a1, bb[0], bb[1]);
        mma(s[1][2 * np + 1], a1, bb[2], bb[3]);
      }
    }

    const bool masked = DOCS ? n0 < n_full_begin || n0 + BN > n_full : n0 + BN > n_full;
    if (masked) {
      // This thread's rows: m0 + 32*warp + 16*mt + g + 8*hh; columns n0 + 8*nt + 2*tq + e.
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          const int qp = pos_of(qmap, m0 + 32 * warp + 16 * mt + g + 8 * hh);
          int lo = 0, hi = 0;  // documents: the keys this row sees
          if constexpr (DOCS)
            doc_window<CAUSAL>(docs_arg(docs...), b, qp, 32 * warp + 16 * mt + g + 8 * hh < qvalid, lo, hi);
#pragma unroll
          for (int nt = 0; nt < 8; ++nt)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              const int j = n0 + 8 * nt + 2 * tq + e;
              const bool vis = DOCS ? (j < dm.k_rows) & in_window(pos_of(kmap, j), lo, hi)
                                    : j < dm.k_rows && (!CAUSAL || pos_of(kmap, j) <= qp);
              s[mt][nt][2 * hh + e] = vis ? s[mt][nt][2 * hh + e] * scale_log2 : -INFINITY;
            }
        }
    } else {
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int nt = 0; nt < 8; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) s[mt][nt][e] *= scale_log2;
    }

    // Online softmax (log2 domain).
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        float mx = mrow[mt][hh];
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][2 * hh], s[mt][nt][2 * hh + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float base = mx == -INFINITY ? 0.f : mx;
        const float alpha = ex2(mrow[mt][hh] - base);
        mrow[mt][hh] = mx;
        float sum = 0.f;
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) {
          s[mt][nt][2 * hh] = ex2(s[mt][nt][2 * hh] - base);
          s[mt][nt][2 * hh + 1] = ex2(s[mt][nt][2 * hh + 1] - base);
          sum += s[mt][nt][2 * hh] + s[mt][nt][2 * hh + 1];
        }
        lrow[mt][hh] = lrow[mt][hh] * alpha + sum;
#pragma unroll
        for (int t = 0; t < D / 8; ++t) {
          acc[mt][t][2 * hh] *= alpha;
          acc[mt][t][2 * hh + 1] *= alpha;
        }
      }

    // O += P V.
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      uint32_t pa[2][4];
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        pa[mt][0] = pack2(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        pa[mt][1] = pack2(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        pa[mt][2] = pack2(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        pa[mt][3] = pack2(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
#pragma unroll
      for (int np = 0; np < D / 16; ++np) {
        uint32_t bb[4];
        ldsm4t(bb, p1<D>(tV, 16 * kk, 16 * np, lane));
        mma(acc[0][2 * np], pa[0], bb[0], bb[1]);
        mma(acc[0][2 * np + 1], pa[0], bb[2], bb[3]);
        mma(acc[1][2 * np], pa[1], bb[0], bb[1]);
        mma(acc[1][2 * np + 1], pa[1], bb[2], bb[3]);
      }
    }
  }
  cp_wait<0>();

  // Normalise and write.
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      float l = lrow[mt][hh];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const int r = 32 * warp + 16 * mt + g + 8 * hh;
      if (r >= qvalid) continue;
      const float inv = l > 0.f ? 1.f / l : 0.f;
      const size_t row = ((size_t)b * dm.q_rows + m0 + r) * H + h;
      if (tq == 0) lse[row] = l > 0.f ? (mrow[mt][hh] + log2f(l)) * kLn2 : -INFINITY;
      if (OUT_F32) {
        float* op = o_part + row * D + 2 * tq;
#pragma unroll
        for (int t = 0; t < D / 8; ++t)
          *reinterpret_cast<float2*>(op + 8 * t) =
              make_float2(acc[mt][t][2 * hh] * inv, acc[mt][t][2 * hh + 1] * inv);
      } else {
        __nv_bfloat16* op = o_out + row * D + 2 * tq;
#pragma unroll
        for (int t = 0; t < D / 8; ++t)
          *reinterpret_cast<uint32_t*>(op + 8 * t) = pack2(acc[mt][t][2 * hh] * inv, acc[mt][t][2 * hh + 1] * inv);
      }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Forward with wgmma (sm_90a), d = 128: FlashAttention-3-style math without warp specialization, the fallback
// of the warp-specialized forward below. A CTA of two warpgroups owns 128 query rows (64 per warpgroup) and
// walks 128-key tiles: S = Q K^T with both operands from shared memory, the online softmax in registers, then
// O += P V with P straight from registers (the wgmma A-fragment layout of a warp's 16 rows is the mma.sync one)
// and V from shared memory (transposed operand). Tiles are stored in the canonical 128-byte-swizzle layout:
// [d/64 panels][rows][64], 16-byte chunk ^= row % 8, 1024-byte aligned, and streamed with cp.async.
// ---------------------------------------------------------------------------------------------------------
constexpr int kWgBM = 128, kWgBN = 128, kWgThreads = 256;

// Element offset of (r, c) in a [c/64][ROWS][64] tile with the 128-byte swizzle.
template <int ROWS>
__device__ __forceinline__ int sw128(int r, int c) {
  return (c >> 6) * ROWS * 64 + r * 64 + ((((c & 63) >> 3) ^ (r & 7)) << 3) + (c & 7);
}
template <int ROWS, int NT>
__device__ __forceinline__ void load_rows_sw128(__nv_bfloat16* s, const __nv_bfloat16* g, size_t stride, int valid,
                                                int tid) {
  constexpr int CH = 16;  // 128 columns
#pragma unroll
  for (int it = 0; it < ROWS * CH / NT; ++it) {
    int i = tid + it * NT, r = i / CH, c = (i % CH) * 8;
    bool ok = r < valid;
    cp16(s + sw128<ROWS>(r, c), ok ? g + (size_t)r * stride + c : g, ok ? 16 : 0);
  }
}
// Keeps the compiler from moving accumulator reads/writes across the asynchronous wgmma boundaries.
__device__ __forceinline__ void reg_fence(float (&d)[64]) {
#pragma unroll
  for (int i = 0; i < 64; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
__device__ __forceinline__ void reg_fence32(float (&d)[32]) {
#pragma unroll
  for (int i = 0; i < 32; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

__device__ __forceinline__ void wgmma_ss(float (&d)[64], uint64_t da, uint64_t db, int accumulate) {
#if LASP_HOPPER_WGMMA
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
      "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(da), "l"(db), "r"(accumulate));
#else
  __trap();
#endif
}
__device__ __forceinline__ void wgmma_rs(float (&d)[64], const uint32_t (&a)[4], uint64_t db, int accumulate) {
#if LASP_HOPPER_WGMMA
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
      "}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate));
#else
  __trap();
#endif
}

// m64n64k16, both operands from shared memory; _t: both operands transposed (MN-major).
__device__ __forceinline__ void wgmma_ss64(float (&d)[32], uint64_t da, uint64_t db, int accumulate) {
#if LASP_HOPPER_WGMMA
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
      "}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(da), "l"(db), "r"(accumulate));
#else
  __trap();
#endif
}
__device__ __forceinline__ void wgmma_ss64_t(float (&d)[32], uint64_t da, uint64_t db, int accumulate) {
#if LASP_HOPPER_WGMMA
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
      "}, %32, %33, p, 1, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(da), "l"(db), "r"(accumulate));
#else
  __trap();
#endif
}

// wgmma_ss64 with scale-d 0 and the accumulators as outputs only: the registers' old values are dead to the
// compiler (with "+f" a tile's retired S^T / dP^T could stay live into the next tile).
__device__ __forceinline__ void wgmma_ss64_init(float (&d)[32], uint64_t da, uint64_t db) {
#if LASP_HOPPER_WGMMA
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
      "}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3]), "=f"(d[4]), "=f"(d[5]), "=f"(d[6]), "=f"(d[7]),
        "=f"(d[8]), "=f"(d[9]), "=f"(d[10]), "=f"(d[11]), "=f"(d[12]), "=f"(d[13]), "=f"(d[14]), "=f"(d[15]),
        "=f"(d[16]), "=f"(d[17]), "=f"(d[18]), "=f"(d[19]), "=f"(d[20]), "=f"(d[21]), "=f"(d[22]), "=f"(d[23]),
        "=f"(d[24]), "=f"(d[25]), "=f"(d[26]), "=f"(d[27]), "=f"(d[28]), "=f"(d[29]), "=f"(d[30]), "=f"(d[31])
      : "l"(da), "l"(db), "n"(0));
#else
  __trap();
#endif
}

// FlashAttention-3's intra-warpgroup overlap: the next tile's S = Q K^T is issued together with the current
// O += P V, the softmax of the new S runs while the P V MMAs are still in flight, and only then O is rescaled.
// V needs three stages (a tile's P V may still be reading its stage when the next tile's prefetch starts); K
// keeps two. v_lbo / v_sbo: the V descriptor's offsets (the launcher passes LBO = panel stride, SBO = 1024 B).
constexpr int wg_pipe_smem_bytes() { return (kWgBM * 128 + 5 * kWgBN * 128) * 2 + 1024; }
__device__ __forceinline__ void keep_alive(const uint32_t (&a)[8][4]) {
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) asm volatile("" ::"r"(a[i][j]) : "memory");
}

template <bool CAUSAL, bool OUT_F32, class... Docs>
__global__ void __launch_bounds__(kWgThreads, 1)
    fwd_wgmma_pipe_kernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
                          const __nv_bfloat16* __restrict__ v, SoftmaxDims dm, PieceMap qmap, PieceMap kmap,
                          float* __restrict__ o_part, float* __restrict__ lse, __nv_bfloat16* __restrict__ o_out,
                          float scale_log2, uint32_t v_lbo, uint32_t v_sbo, Docs... docs) {
  constexpr int D = 128, BM = kWgBM, BN = kWgBN, NT = kWgThreads;
  constexpr bool DOCS = has_docs<Docs...>();
  extern __shared__ __align__(1024) unsigned char smem_wgp[];
  unsigned char* base = smem_wgp + ((1024 - (smem_addr(smem_wgp) & 1023)) & 1023);
  __nv_bfloat16* sQ = reinterpret_cast<__nv_bfloat16*>(base);
  __nv_bfloat16* sK = sQ + BM * D;      // [2][BN*D]
  __nv_bfloat16* sV = sK + 2 * BN * D;  // [3][BN*D]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2, wq = warp & 3;
  const int g = lane >> 2, tq = lane & 3;
  const int H = dm.heads, HK = dm.kv_heads;
  const int b = blockIdx.x / H, h = blockIdx.x % H, hk = h / (H / HK);
  const int m0 = (gridDim.y - 1 - blockIdx.y) * BM;
  const int qvalid = min(BM, dm.q_rows - m0);
  const size_t qstride = (size_t)H * D, kstride = (size_t)HK * D;
  const __nv_bfloat16* qg = q + (((size_t)b * dm.q_rows + m0) * H + h) * D;
  const __nv_bfloat16* kg = k + ((size_t)b * dm.k_rows * HK + hk) * D;
  const __nv_bfloat16* vg = v + ((size_t)b * dm.k_rows * HK + hk) * D;

  int n_end = dm.k_rows, n_full = dm.k_rows, n_begin = 0, n_full_begin = 0;
  if constexpr (DOCS) {
    doc_key_ranges<CAUSAL>(doc_row(docs_arg(docs...), b), kmap, dm.k_rows, pos_of(qmap, m0),
                           pos_of(qmap, m0 + qvalid - 1), n_begin, n_end, n_full_begin, n_full);
  } else if (CAUSAL) {
    n_end = count_le(kmap, dm.k_rows, pos_of(qmap, m0 + qvalid - 1));
    n_full = count_le(kmap, dm.k_rows, pos_of(qmap, m0));
  }
  // Key tiles kt0, kt0 + BN, ...: from the first one some row sees (documents), else from 0.
  const int kt0 = DOCS ? n_begin / BN * BN : 0;
  const int n_tiles = DOCS ? (n_end > n_begin ? (n_end - kt0 + BN - 1) / BN : 0) : (n_end + BN - 1) / BN;

  auto prefetch = [&](int t) {
    const int nn = kt0 + t * BN;
    load_rows_sw128<BN, NT>(sK + (t & 1) * BN * D, kg + (size_t)nn * kstride, kstride, min(BN, dm.k_rows - nn), tid);
    load_rows_sw128<BN, NT>(sV + (t % 3) * BN * D, vg + (size_t)nn * kstride, kstride, min(BN, dm.k_rows - nn), tid);
  };
  load_rows_sw128<BM, NT>(sQ, qg, qstride, qvalid, tid);
  if (n_tiles > 0) prefetch(0);
  cp_commit();

  float o[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) o[i] = 0.f;
  float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f};
  const uint32_t qaddr = smem_addr(sQ) + wg * 64 * 128;
  uint32_t pa[8][4];
  float s[64];

  // S(t) = Q K_t^T is issued (not waited for) by issue_s.
  auto issue_s = [&](int t) {
    const uint32_t kaddr = smem_addr(sK + (t & 1) * BN * D);
    reg_fence(s);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk)
      wgmma_ss(s, gmma_desc(qaddr + (kk >> 2) * BM * 128 + (kk & 3) * 32, 16, 1024),
               gmma_desc(kaddr + (kk >> 2) * BN * 128 + (kk & 3) * 32, 16, 1024), kk > 0);
    wg_commit();
  };
  auto issue_pv = [&](int t) {
    const uint32_t vaddr = smem_addr(sV + (t % 3) * BN * D);
    reg_fence(o);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) wgmma_rs(o, pa[kk], gmma_desc(vaddr + kk * 16 * 128, v_lbo, v_sbo), 1);
    wg_commit();
  };
  // Scale + mask S(t) in place and turn it into exponentials against the new running max; returns the
  // per-row rescale factors for O and l (applied by the caller once the previous P V has retired).
  auto softmax = [&](int t, float (&alpha)[2], float (&sum)[2]) {
    const int n0 = kt0 + t * BN;
    if (DOCS ? n0 < n_full_begin || n0 + BN > n_full : n0 + BN > n_full) {
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int qp = pos_of(qmap, m0 + wg * 64 + 16 * wq + g + 8 * hh);
        int lo = 0, hi = 0;  // documents: the keys this row sees
        if constexpr (DOCS)
          doc_window<CAUSAL>(docs_arg(docs...), b, qp, wg * 64 + 16 * wq + g + 8 * hh < qvalid, lo, hi);
#pragma unroll
        for (int j = 0; j < 16; ++j)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int c = n0 + 8 * j + 2 * tq + e;
            const bool vis = DOCS ? (c < dm.k_rows) & in_window(pos_of(kmap, c), lo, hi)
                                  : c < dm.k_rows && (!CAUSAL || pos_of(kmap, c) <= qp);
            s[4 * j + 2 * hh + e] = vis ? s[4 * j + 2 * hh + e] * scale_log2 : -INFINITY;
          }
      }
    } else {
#pragma unroll
      for (int i = 0; i < 64; ++i) s[i] *= scale_log2;
    }
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      float mx = mrow[hh];
#pragma unroll
      for (int j = 0; j < 16; ++j) mx = fmaxf(mx, fmaxf(s[4 * j + 2 * hh], s[4 * j + 2 * hh + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float bse = mx == -INFINITY ? 0.f : mx;
      alpha[hh] = ex2(mrow[hh] - bse);
      mrow[hh] = mx;
      float sm = 0.f;
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        s[4 * j + 2 * hh] = ex2(s[4 * j + 2 * hh] - bse);
        s[4 * j + 2 * hh + 1] = ex2(s[4 * j + 2 * hh + 1] - bse);
        sm += s[4 * j + 2 * hh] + s[4 * j + 2 * hh + 1];
      }
      sum[hh] = sm;
    }
  };
  auto rescale_and_pack = [&](const float (&alpha)[2], const float (&sum)[2]) {
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      lrow[hh] = lrow[hh] * alpha[hh] + sum[hh];
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        o[4 * j + 2 * hh] *= alpha[hh];
        o[4 * j + 2 * hh + 1] *= alpha[hh];
      }
    }
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) {
      pa[kk][0] = pack2(s[8 * kk + 0], s[8 * kk + 1]);
      pa[kk][1] = pack2(s[8 * kk + 2], s[8 * kk + 3]);
      pa[kk][2] = pack2(s[8 * kk + 4], s[8 * kk + 5]);
      pa[kk][3] = pack2(s[8 * kk + 6], s[8 * kk + 7]);
    }
  };

  if (n_tiles > 0) {
    cp_wait<0>();
    fence_proxy_async();
    __syncthreads();
    if (n_tiles > 1) prefetch(1);
    cp_commit();
    issue_s(0);
    wg_wait<0>();
    reg_fence(s);
    float alpha[2], sum[2];
    softmax(0, alpha, sum);
    rescale_and_pack(alpha, sum);
  }
  for (int t = 1; t < n_tiles; ++t) {
    cp_wait<0>();
    fence_proxy_async();
    __syncthreads();  // tile t landed; every thread's S(t-1) and P V(t-2) have retired
    if (t + 1 < n_tiles) prefetch(t + 1);
    cp_commit();
    issue_s(t);
    issue_pv(t - 1);
#if LASP_HOPPER_WGMMA
    wg_wait<1>();  // S(t) done, P V(t-1) may run on
#endif
    reg_fence(s);
    float alpha[2], sum[2];
    softmax(t, alpha, sum);
    wg_wait<0>();
    reg_fence(o);
    keep_alive(pa);  // P V(t-1) read pa asynchronously: pa's registers stay untouched until here
    rescale_and_pack(alpha, sum);
  }
  if (n_tiles > 0) {
    issue_pv(n_tiles - 1);
    wg_wait<0>();
    reg_fence(o);
    keep_alive(pa);
  }
  cp_wait<0>();

#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    float l = lrow[hh];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int r = wg * 64 + 16 * wq + g + 8 * hh;
    if (r >= qvalid) continue;
    const float inv = l > 0.f ? 1.f / l : 0.f;
    const size_t row = ((size_t)b * dm.q_rows + m0 + r) * H + h;
    if (tq == 0) lse[row] = l > 0.f ? (mrow[hh] + log2f(l)) * kLn2 : -INFINITY;
    if (OUT_F32) {
      float* op = o_part + row * D + 2 * tq;
#pragma unroll
      for (int j = 0; j < 16; ++j)
        *reinterpret_cast<float2*>(op + 8 * j) = make_float2(o[4 * j + 2 * hh] * inv, o[4 * j + 2 * hh + 1] * inv);
    } else {
      __nv_bfloat16* op = o_out + row * D + 2 * tq;
#pragma unroll
      for (int j = 0; j < 16; ++j)
        *reinterpret_cast<uint32_t*>(op + 8 * j) = pack2(o[4 * j + 2 * hh] * inv, o[4 * j + 2 * hh + 1] * inv);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Forward with warp specialization (FlashAttention-3's structure), d = 128, the default on Hopper. A CTA of
// three warpgroups owns 128 query rows: warpgroup 0 is the producer (one thread issues TMA
// bulk tensor copies of Q once and of every K/V tile into a ring of STAGES stages; full barriers complete on
// the copies' byte counts, empty barriers on the arrival of all 256 consumer threads), warpgroups 1 and 2 are
// consumers of 64 rows each with the same math as fwd_wgmma_pipe_kernel (S(t) issued with P V(t-1), softmax
// of S(t) while P V(t-1) runs). setmaxnreg moves registers from the producer (24) to the consumers (240).
// pingpong 1 (FA3's turns; the product passes 0, bench/gpu/softmax_variants.cuh times 1): two named barriers
// make the consumers take turns issuing their MMAs. The tiles land in the same 128-byte-swizzled
// [panel][rows][64] layout as the cp.async kernels (a 64-column box per panel, SWIZZLE_128B), rows past the
// end of the tensor are filled with zeros by the copy engine. Tensor maps are encoded on the host for every
// call (no cache: pointers may change between calls) and passed by value as __grid_constant__ parameters.
// ---------------------------------------------------------------------------------------------------------
constexpr int kWsThreads = 384;
template <int STAGES>
constexpr int ws_smem_bytes() { return (kWgBM * 128 + 2 * STAGES * kWgBN * 128) * 2 + 1024 + 128; }

__device__ __forceinline__ void tma_load_4d(uint32_t dst, const CUtensorMap* map, uint32_t bar, int c0, int c1, int c2,
                                            int c3) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], "
      "[%6];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar)
      : "memory");
}
__device__ __forceinline__ void named_sync(int id) { asm volatile("bar.sync %0, 256;\n" ::"r"(id) : "memory"); }
__device__ __forceinline__ void named_arrive(int id) { asm volatile("bar.arrive %0, 256;\n" ::"r"(id) : "memory"); }

template <bool CAUSAL, bool OUT_F32, int STAGES, class... Docs>
__global__ void __launch_bounds__(kWsThreads, 1)
    fwd_ws_kernel(const __grid_constant__ CUtensorMap tm_q, const __grid_constant__ CUtensorMap tm_k,
                  const __grid_constant__ CUtensorMap tm_v, SoftmaxDims dm, PieceMap qmap, PieceMap kmap,
                  float* __restrict__ o_part, float* __restrict__ lse, __nv_bfloat16* __restrict__ o_out,
                  float scale_log2, uint32_t v_lbo, uint32_t v_sbo, int pingpong, Docs... docs) {
#if LASP_HOPPER_WGMMA
  constexpr int D = 128, BM = kWgBM, BN = kWgBN, S = STAGES;
  constexpr bool DOCS = has_docs<Docs...>();
  constexpr uint32_t TILE = BN * D * 2, QB = BM * D * 2;
  extern __shared__ __align__(1024) unsigned char smem_ws[];
  const uint32_t sq = smem_addr(smem_ws) + ((1024 - (smem_addr(smem_ws) & 1023)) & 1023);
  const uint32_t sk = sq + QB;         // [S][TILE]
  const uint32_t sv = sk + S * TILE;   // [S][TILE]
  const uint32_t bar = sv + S * TILE;  // q_full, k_full[S], v_full[S], k_empty[S], v_empty[S] (8 bytes each)
  const uint32_t q_full = bar;
  auto k_full = [&](int i) { return bar + 8u * (1 + i); };
  auto v_full = [&](int i) { return bar + 8u * (1 + S + i); };
  auto k_empty = [&](int i) { return bar + 8u * (1 + 2 * S + i); };
  auto v_empty = [&](int i) { return bar + 8u * (1 + 3 * S + i); };

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wgi = warp >> 2;
  const int H = dm.heads, HK = dm.kv_heads;
  const int b = blockIdx.x / H, h = blockIdx.x % H, hk = h / (H / HK);
  const int m0 = (gridDim.y - 1 - blockIdx.y) * BM;
  const int qvalid = min(BM, dm.q_rows - m0);
  int n_end = dm.k_rows, n_full = dm.k_rows, n_begin = 0, n_full_begin = 0;
  if constexpr (DOCS) {
    doc_key_ranges<CAUSAL>(doc_row(docs_arg(docs...), b), kmap, dm.k_rows, pos_of(qmap, m0),
                           pos_of(qmap, m0 + qvalid - 1), n_begin, n_end, n_full_begin, n_full);
  } else if (CAUSAL) {
    n_end = count_le(kmap, dm.k_rows, pos_of(qmap, m0 + qvalid - 1));
    n_full = count_le(kmap, dm.k_rows, pos_of(qmap, m0));
  }
  // Key tiles kt0, kt0 + BN, ...: from the first one some row sees (documents), else from 0.
  const int kt0 = DOCS ? n_begin / BN * BN : 0;
  const int n_tiles = DOCS ? (n_end > n_begin ? (n_end - kt0 + BN - 1) / BN : 0) : (n_end + BN - 1) / BN;

  if (tid == 0) {
    mbar_init(q_full, 1);
#pragma unroll
    for (int i = 0; i < S; ++i) {
      mbar_init(k_full(i), 1);
      mbar_init(v_full(i), 1);
      mbar_init(k_empty(i), 256);
      mbar_init(v_empty(i), 256);
    }
    fence_mbar_init();
  }
  __syncthreads();

  if (wgi == 0) {
    // ---- producer ----
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n" ::: "memory");
    if (tid == 0 && n_tiles > 0) {
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&tm_k)) : "memory");
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&tm_v)) : "memory");
      mbar_expect_tx(q_full, QB);
      tma_load_4d(sq, &tm_q, q_full, 0, h, m0, b);
      tma_load_4d(sq + BM * 128, &tm_q, q_full, 64, h, m0, b);
      for (int t = 0; t < n_tiles; ++t) {
        const int st = t % S;
        const uint32_t ph = ((t / S) & 1) ^ 1;  // a fresh barrier counts its (odd) previous phase as complete
        mbar_wait(k_empty(st), ph);
        mbar_expect_tx(k_full(st), TILE);
        const int nn = kt0 + t * BN;
        tma_load_4d(sk + st * TILE, &tm_k, k_full(st), 0, hk, nn, b);
        tma_load_4d(sk + st * TILE + BN * 128, &tm_k, k_full(st), 64, hk, nn, b);
        mbar_wait(v_empty(st), ph);
        mbar_expect_tx(v_full(st), TILE);
        tma_load_4d(sv + st * TILE, &tm_v, v_full(st), 0, hk, nn, b);
        tma_load_4d(sv + st * TILE + BN * 128, &tm_v, v_full(st), 64, hk, nn, b);
      }
    }
  } else {
    // ---- consumers: warpgroup cw = 0, 1 owns rows cw*64 .. cw*64+63 of the tile ----
    asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n" ::: "memory");
    const int cw = wgi - 1, wq = warp & 3, g = lane >> 2, tq = lane & 3;
    const int bar_me = 1 + cw, bar_other = 2 - cw;  // named barriers 1 and 2 (0 is __syncthreads)
    float o[64];
#pragma unroll
    for (int i = 0; i < 64; ++i) o[i] = 0.f;
    float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f};
    const uint32_t qaddr = sq + cw * 64 * 128;
    uint32_t pa[8][4];
    float s[64];

    auto issue_s = [&](int t) {
      const uint32_t kaddr = sk + (t % S) * TILE;
      reg_fence(s);
      wg_fence();
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk)
        wgmma_ss(s, gmma_desc(qaddr + (kk >> 2) * BM * 128 + (kk & 3) * 32, 16, 1024),
                 gmma_desc(kaddr + (kk >> 2) * BN * 128 + (kk & 3) * 32, 16, 1024), kk > 0);
      wg_commit();
    };
    auto issue_pv = [&](int t) {
      const uint32_t vaddr = sv + (t % S) * TILE;
      reg_fence(o);
      wg_fence();
#pragma unroll
      for (int kk = 0; kk < BN / 16; ++kk) wgmma_rs(o, pa[kk], gmma_desc(vaddr + kk * 16 * 128, v_lbo, v_sbo), 1);
      wg_commit();
    };
    auto softmax = [&](int t, float (&alpha)[2], float (&sum)[2]) {
      const int n0 = kt0 + t * BN;
      if (DOCS ? n0 < n_full_begin || n0 + BN > n_full : n0 + BN > n_full) {
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          const int qp = pos_of(qmap, m0 + cw * 64 + 16 * wq + g + 8 * hh);
          int lo = 0, hi = 0;  // documents: the keys this row sees
          if constexpr (DOCS)
            doc_window<CAUSAL>(docs_arg(docs...), b, qp, cw * 64 + 16 * wq + g + 8 * hh < qvalid, lo, hi);
#pragma unroll
          for (int j = 0; j < 16; ++j)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              const int c = n0 + 8 * j + 2 * tq + e;
              const bool vis = DOCS ? (c < dm.k_rows) & in_window(pos_of(kmap, c), lo, hi)
                                    : c < dm.k_rows && (!CAUSAL || pos_of(kmap, c) <= qp);
              s[4 * j + 2 * hh + e] = vis ? s[4 * j + 2 * hh + e] * scale_log2 : -INFINITY;
            }
        }
      } else {
#pragma unroll
        for (int i = 0; i < 64; ++i) s[i] *= scale_log2;
      }
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        float mx = mrow[hh];
#pragma unroll
        for (int j = 0; j < 16; ++j) mx = fmaxf(mx, fmaxf(s[4 * j + 2 * hh], s[4 * j + 2 * hh + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float bse = mx == -INFINITY ? 0.f : mx;
        alpha[hh] = ex2(mrow[hh] - bse);
        mrow[hh] = mx;
        float sm = 0.f;
#pragma unroll
        for (int j = 0; j < 16; ++j) {
          s[4 * j + 2 * hh] = ex2(s[4 * j + 2 * hh] - bse);
          s[4 * j + 2 * hh + 1] = ex2(s[4 * j + 2 * hh + 1] - bse);
          sm += s[4 * j + 2 * hh] + s[4 * j + 2 * hh + 1];
        }
        sum[hh] = sm;
      }
    };
    auto rescale_and_pack = [&](const float (&alpha)[2], const float (&sum)[2]) {
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        lrow[hh] = lrow[hh] * alpha[hh] + sum[hh];
#pragma unroll
        for (int j = 0; j < 16; ++j) {
          o[4 * j + 2 * hh] *= alpha[hh];
          o[4 * j + 2 * hh + 1] *= alpha[hh];
        }
      }
#pragma unroll
      for (int kk = 0; kk < 8; ++kk) {
        pa[kk][0] = pack2(s[8 * kk + 0], s[8 * kk + 1]);
        pa[kk][1] = pack2(s[8 * kk + 2], s[8 * kk + 3]);
        pa[kk][2] = pack2(s[8 * kk + 4], s[8 * kk + 5]);
        pa[kk][3] = pack2(s[8 * kk + 6], s[8 * kk + 7]);
      }
    };

    // Turns t = 0 .. n_tiles: turn t issues S(t) (t < n_tiles) and P V(t-1) (t > 0) while holding the MMA
    // turn (named barrier bar_me), then hands the turn to the other warpgroup (bar_other). Warpgroup 0 goes
    // first (warpgroup 1 arrives once on its barrier up front); warpgroup 1 does not hand over after its last
    // turn, so both barriers see as many arrivals as waits.
    if (n_tiles > 0) {
      if (pingpong && cw == 1) named_arrive(1);
      mbar_wait(q_full, 0);
      mbar_wait(k_full(0), 0);
      if (pingpong) named_sync(bar_me);
      issue_s(0);
      if (pingpong) named_arrive(bar_other);
      wg_wait<0>();
      reg_fence(s);
      mbar_arrive(k_empty(0));
      float alpha[2], sum[2];
      softmax(0, alpha, sum);
      rescale_and_pack(alpha, sum);
    }
    for (int t = 1; t < n_tiles; ++t) {
      mbar_wait(k_full(t % S), (t / S) & 1);
      mbar_wait(v_full((t - 1) % S), ((t - 1) / S) & 1);
      if (pingpong) named_sync(bar_me);
      issue_s(t);
      issue_pv(t - 1);
      if (pingpong) named_arrive(bar_other);
      wg_wait<1>();  // S(t) done, P V(t-1) may run on
      reg_fence(s);
      mbar_arrive(k_empty(t % S));
      float alpha[2], sum[2];
      softmax(t, alpha, sum);
      wg_wait<0>();
      reg_fence(o);
      keep_alive(pa);
      mbar_arrive(v_empty((t - 1) % S));
      rescale_and_pack(alpha, sum);
    }
    if (n_tiles > 0) {
      const int t = n_tiles - 1;
      mbar_wait(v_full(t % S), (t / S) & 1);
      if (pingpong) named_sync(bar_me);
      issue_pv(t);
      if (pingpong && cw == 0) named_arrive(bar_other);
      wg_wait<0>();
      reg_fence(o);
      keep_alive(pa);
      mbar_arrive(v_empty(t % S));
    }

#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      float l = lrow[hh];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const int r = cw * 64 + 16 * wq + g + 8 * hh;
      if (r >= qvalid) continue;
      const float inv = l > 0.f ? 1.f / l : 0.f;
      const size_t row = ((size_t)b * dm.q_rows + m0 + r) * H + h;
      if (tq == 0) lse[row] = l > 0.f ? (mrow[hh] + log2f(l)) * kLn2 : -INFINITY;
      if (OUT_F32) {
        float* op = o_part + row * D + 2 * tq;
#pragma unroll
        for (int j = 0; j < 16; ++j)
          *reinterpret_cast<float2*>(op + 8 * j) = make_float2(o[4 * j + 2 * hh] * inv, o[4 * j + 2 * hh + 1] * inv);
      } else {
        __nv_bfloat16* op = o_out + row * D + 2 * tq;
#pragma unroll
        for (int j = 0; j < 16; ++j)
          *reinterpret_cast<uint32_t*>(op + 8 * j) = pack2(o[4 * j + 2 * hh] * inv, o[4 * j + 2 * hh + 1] * inv);
      }
    }
  }
#else
  __trap();
#endif
}


// ---------------------------------------------------------------------------------------------------------
// delta[b][h][i] = sum_e dout[b][i][h][e] * o[b][i][h][e] (fp32), one warp per (b, i, h).
// ---------------------------------------------------------------------------------------------------------
template <int D>
__global__ void delta_kernel(const __nv_bfloat16* __restrict__ o, const __nv_bfloat16* __restrict__ dout,
                             float* __restrict__ delta, int batch, int rows, int heads) {
  const size_t w = (size_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (w >= (size_t)batch * rows * heads) return;
  constexpr int PER = D / 32;  // 2 or 4 elements per lane
  const __nv_bfloat16* op = o + w * D + lane * PER;
  const __nv_bfloat16* dp = dout + w * D + lane * PER;
  float s = 0.f;
  if constexpr (PER == 4) {
    uint2 a = *reinterpret_cast<const uint2*>(op), c = *reinterpret_cast<const uint2*>(dp);
    float2 a0 = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&a.x));
    float2 a1 = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&a.y));
    float2 c0 = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&c.x));
    float2 c1 = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&c.y));
    s = a0.x * c0.x + a0.y * c0.y + a1.x * c1.x + a1.y * c1.y;
  } else {
    uint32_t a = *reinterpret_cast<const uint32_t*>(op), c = *reinterpret_cast<const uint32_t*>(dp);
    float2 a0 = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&a));
    float2 c0 = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&c));
    s = a0.x * c0.x + a0.y * c0.y;
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
  if (lane == 0) {
    const int hh = (int)(w % heads);
    const size_t bi = w / heads;
    const int i = (int)(bi % rows), bb = (int)(bi / rows);
    delta[((size_t)bb * heads + hh) * rows + i] = s;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Backward. grid (batch*kv_heads, key tiles): blockIdx.y = 0 is the first key tile (heaviest under causal).
// ---------------------------------------------------------------------------------------------------------
constexpr int kBwdBM = 64, kBwdBN = 128, kBwdThreads = 256;

// With documents: the first and last of a thread's two keys at positions kpos (INT_MAX past the last key: then
// INT_MAX / -1, it reaches no query).
template <bool CAUSAL>
__device__ __forceinline__ void key_docs(const Documents& docs, int b, const int (&kpos)[2], int (&kfirst)[2],
                                         int (&klast)[2]) {
  const DocRow dr = doc_row(docs, b);
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    const bool ok = kpos[hh] != INT_MAX;
    klast[hh] = ok ? dr.last[kpos[hh]] : -1;
    kfirst[hh] = CAUSAL ? 0 : ok ? dr.first[kpos[hh]] : INT_MAX;
  }
}

template <int D>
constexpr int bwd_smem_bytes() {
  return (2 * kBwdBN * D + 4 * kBwdBM * D + kBwdBN * kBwdBM) * 2 + 4 * kBwdBM * 4;
}

template <int D, bool CAUSAL, bool KV_BF16, class... Docs>
__global__ void __launch_bounds__(kBwdThreads, 1)
    bwd_kernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
               const __nv_bfloat16* __restrict__ v, const float* __restrict__ lse,
               const __nv_bfloat16* __restrict__ dout, const float* __restrict__ delta, SoftmaxDims dm,
               PieceMap qmap, PieceMap kmap, float* __restrict__ dq_acc, float* __restrict__ dk_acc,
               float* __restrict__ dv_acc, __nv_bfloat16* __restrict__ dk_out, __nv_bfloat16* __restrict__ dv_out,
               float scale, float scale_log2, Docs... docs) {
  constexpr int BM = kBwdBM, BN = kBwdBN, NT = kBwdThreads, KT = D / 16;
  constexpr bool DOCS = has_docs<Docs...>();
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __nv_bfloat16* sK = reinterpret_cast<__nv_bfloat16*>(smem_raw);  // [BN][D]
  __nv_bfloat16* sV = sK + BN * D;                                  // [BN][D]
  __nv_bfloat16* sQ = sV + BN * D;                                  // [2][BM][D]
  __nv_bfloat16* sO = sQ + 2 * BM * D;                              // [2][BM][D]  (dout)
  __nv_bfloat16* sS = sO + 2 * BM * D;                              // [BN][BM]    (dS^T)
  float* sL = reinterpret_cast<float*>(sS + BN * BM);               // [2][BM]     lse
  float* sD = sL + 2 * BM;                                          // [2][BM]     delta
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, tq = lane & 3;
  const int H = dm.heads, HK = dm.kv_heads, G = H / HK;
  const int b = blockIdx.x / HK, hk = blockIdx.x % HK;
  const int n0 = blockIdx.y * BN;
  const int kvalid = min(BN, dm.k_rows - n0);
  const size_t qstride = (size_t)H * D, kstride = (size_t)HK * D;

  int q_start = 0, q_full = 0, q_stop = dm.q_rows, q_full_end = dm.q_rows;
  if constexpr (DOCS) {
    doc_query_ranges<CAUSAL>(doc_row(docs_arg(docs...), b), qmap, dm.q_rows, pos_of(kmap, n0),
                             pos_of(kmap, n0 + kvalid - 1), q_start, q_stop, q_full, q_full_end);
  } else if (CAUSAL) {
    q_start = count_le(qmap, dm.q_rows, pos_of(kmap, n0) - 1);
    q_full = count_le(qmap, dm.q_rows, pos_of(kmap, n0 + kvalid - 1) - 1);
  }
  // Query tiles mt0 .. m_tiles - 1 of every head of the group: from the first one some key reaches, up to the
  // last one some key reaches (documents) or the end.
  const int mt0 = q_start / BM, m_tiles = ((DOCS ? q_stop : dm.q_rows) + BM - 1) / BM;
  const int per_head = q_start >= (DOCS ? q_stop : dm.q_rows) ? 0 : m_tiles - mt0, iters = per_head * G;

  load_rows<BN, D, NT>(sK, k + (((size_t)b * dm.k_rows + n0) * HK + hk) * D, kstride, kvalid, tid);
  load_rows<BN, D, NT>(sV, v + (((size_t)b * dm.k_rows + n0) * HK + hk) * D, kstride, kvalid, tid);

  auto load_q = [&](int itn, int st) {
    const int hg = itn / per_head, m0 = (mt0 + itn % per_head) * BM, h = hk * G + hg;
    const int valid = min(BM, dm.q_rows - m0);
    const size_t off = (((size_t)b * dm.q_rows + m0) * H + h) * D;
    load_rows<BM, D, NT>(sQ + st * BM * D, q + off, qstride, valid, tid);
    load_rows<BM, D, NT>(sO + st * BM * D, dout + off, qstride, valid, tid);
    if (tid < BM) {
      if (tid < valid) {
        cp4(sL + st * BM + tid, lse + ((size_t)b * dm.q_rows + m0 + tid) * H + h);
        cp4(sD + st * BM + tid, delta + ((size_t)b * H + h) * dm.q_rows + m0 + tid);
      } else {
        sL[st * BM + tid] = INFINITY;  // P = 0 for padding rows
        sD[st * BM + tid] = 0.f;
      }
    }
  };
  if (iters > 0) load_q(0, 0);
  cp_commit();

  // This thread's keys: n0 + 16*warp + g + 8*hh.
  int kpos[2], kfirst[2], klast[2];
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    const int j = n0 + 16 * warp + g + 8 * hh;
    kpos[hh] = j < dm.k_rows ? pos_of(kmap, j) : INT_MAX;
  }
  if constexpr (DOCS) key_docs<CAUSAL>(docs_arg(docs...), b, kpos, kfirst, klast);

  float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
  for (int t = 0; t < D / 8; ++t)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[t][e] = dv[t][e] = 0.f;

  for (int it = 0; it < iters; ++it) {
    const int hg = it / per_head, m0 = (mt0 + it % per_head) * BM, h = hk * G + hg;
    cp_wait<0>();
    __syncthreads();
    if (it + 1 < iters) load_q(it + 1, (it + 1) & 1);
    cp_commit();
    const int st = it & 1;
    const __nv_bfloat16* tQ = sQ + st * BM * D;
    const __nv_bfloat16* tO = sO + st * BM * D;
    const float* tL = sL + st * BM;
    const float* tD = sD + st * BM;

    // S^T = K_w Q^T (16 keys x 64 queries).
    float s[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < KT; ++kk) {
      uint32_t a[4];
      ldsm4(a, p1<D>(sK, 16 * warp, 16 * kk, lane));
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        uint32_t bb[4];
        ldsm4(bb, p2<D>(tQ, 16 * np, 16 * kk, lane));
        mma(s[2 * np], a, bb[0], bb[1]);
        mma(s[2 * np + 1], a, bb[2], bb[3]);
      }
    }
    // P^T = exp2(scale_log2 s - lse*log2e), masked where needed.
    // Per-element masks where some key may miss some row (every key reaches rows [q_full, q_full_end)).
    const bool masked =
        DOCS ? m0 < q_full || m0 + BM > q_full_end || kvalid < BN : (CAUSAL && m0 < q_full) || kvalid < BN;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int c = 8 * nt + 2 * tq + e;
        float l = tL[c];
        l = l == -INFINITY ? INFINITY : l * kLog2e;
        int qp = 0;
        if (masked) qp = pos_of(qmap, m0 + c);
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          float p = ex2(s[nt][2 * hh + e] * scale_log2 - l);
          if (masked) {
            const bool vis = DOCS ? doc_reaches<CAUSAL>(kpos[hh], qp, kfirst[hh], klast[hh])
                                  : kpos[hh] != INT_MAX && (!CAUSAL || kpos[hh] <= qp);
            p = vis ? p : 0.f;
          }
          s[nt][2 * hh + e] = p;
        }
      }
    // P^T as bf16 A fragments (the fp32 copy dies here: fewer live registers through dP).
    uint32_t pk[4][4];
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      pk[kk][0] = pack2(s[2 * kk][0], s[2 * kk][1]);
      pk[kk][1] = pack2(s[2 * kk][2], s[2 * kk][3]);
      pk[kk][2] = pack2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      pk[kk][3] = pack2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
    }
    // dV += P^T dO.
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      const uint32_t(&a)[4] = pk[kk];
#pragma unroll
      for (int np = 0; np < D / 16; ++np) {
        uint32_t bb[4];
        ldsm4t(bb, p1<D>(tO, 16 * kk, 16 * np, lane));
        mma(dv[2 * np], a, bb[0], bb[1]);
        mma(dv[2 * np + 1], a, bb[2], bb[3]);
      }
    }
    // dP^T = V_w dO^T.
    float dp[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) dp[nt][0] = dp[nt][1] = dp[nt][2] = dp[nt][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < KT; ++kk) {
      uint32_t a[4];
      ldsm4(a, p1<D>(sV, 16 * warp, 16 * kk, lane));
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        uint32_t bb[4];
        ldsm4(bb, p2<D>(tO, 16 * np, 16 * kk, lane));
        mma(dp[2 * np], a, bb[0], bb[1]);
        mma(dp[2 * np + 1], a, bb[2], bb[3]);
      }
    }
    // dS^T = P^T (dP^T - delta) (P from its bf16 copy, as dV used it); store it (bf16) for dQ.
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      const float2 dl = *reinterpret_cast<const float2*>(tD + 8 * nt + 2 * tq);
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        uint32_t pp = pk[nt >> 1][(nt & 1) * 2 + hh];
        float2 p = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&pp));
        s[nt][2 * hh] = p.x * (dp[nt][2 * hh] - dl.x);
        s[nt][2 * hh + 1] = p.y * (dp[nt][2 * hh + 1] - dl.y);
      }
    }
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh)
        *reinterpret_cast<uint32_t*>(sS + swz<BM>(16 * warp + g + 8 * hh, 8 * nt + 2 * tq)) =
            pack2(s[nt][2 * hh], s[nt][2 * hh + 1]);
    // dK += dS^T Q.
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      uint32_t a[4];
      a[0] = pack2(s[2 * kk][0], s[2 * kk][1]);
      a[1] = pack2(s[2 * kk][2], s[2 * kk][3]);
      a[2] = pack2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      a[3] = pack2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int np = 0; np < D / 16; ++np) {
        uint32_t bb[4];
        ldsm4t(bb, p1<D>(tQ, 16 * kk, 16 * np, lane));
        mma(dk[2 * np], a, bb[0], bb[1]);
        mma(dk[2 * np + 1], a, bb[2], bb[3]);
      }
    }
    __syncthreads();  // dS^T complete
    // dQ = dS K, added to dq_acc: warp w owns query rows 16*(w%4).. and columns (w/4)*D/2 .. +D/2.
    {
      constexpr int DC = D / 2, NQT = DC / 8;
      const int qw = 16 * (warp & 3), c0 = (warp >> 2) * DC;
      float dq[NQT][4];
#pragma unroll
      for (int nt = 0; nt < NQT; ++nt) dq[nt][0] = dq[nt][1] = dq[nt][2] = dq[nt][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < BN / 16; ++kk) {
        uint32_t a[4];
        ldsm4t(a, p2<BM>(sS, 16 * kk, qw, lane));
#pragma unroll
        for (int np = 0; np < DC / 16; ++np) {
          uint32_t bb[4];
          ldsm4t(bb, p1<D>(sK, 16 * kk, c0 + 16 * np, lane));
          mma(dq[2 * np], a, bb[0], bb[1]);
          mma(dq[2 * np + 1], a, bb[2], bb[3]);
        }
      }
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int r = m0 + qw + g + 8 * hh;
        if (r < dm.q_rows) {
          float* dst = dq_acc + (((size_t)b * dm.q_rows + r) * H + h) * D + c0 + 2 * tq;
#pragma unroll
          for (int nt = 0; nt < NQT; ++nt)
            atomic_add2(dst + 8 * nt, dq[nt][2 * hh] * scale, dq[nt][2 * hh + 1] * scale);
        }
      }
    }
  }
  cp_wait<0>();

  // Write (bf16) or accumulate (fp32) this CTA's dK, dV rows.
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    const int j = n0 + 16 * warp + g + 8 * hh;
    if (j >= dm.k_rows) continue;
    const size_t row = (((size_t)b * dm.k_rows + j) * HK + hk) * D + 2 * tq;
#pragma unroll
    for (int t = 0; t < D / 8; ++t) {
      const float k0 = dk[t][2 * hh] * scale, k1 = dk[t][2 * hh + 1] * scale;
      const float v0 = dv[t][2 * hh], v1 = dv[t][2 * hh + 1];
      if (KV_BF16) {
        *reinterpret_cast<uint32_t*>(dk_out + row + 8 * t) = pack2(k0, k1);
        *reinterpret_cast<uint32_t*>(dv_out + row + 8 * t) = pack2(v0, v1);
      } else {
        float2* pk = reinterpret_cast<float2*>(dk_acc + row + 8 * t);
        float2* pv = reinterpret_cast<float2*>(dv_acc + row + 8 * t);
        float2 ok = *pk, ov = *pv;
        *pk = make_float2(ok.x + k0, ok.y + k1);
        *pv = make_float2(ov.x + v0, ov.y + v1);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Backward with wgmma (sm_90a), d = 128. Same CTA work and the same thread <-> element mapping as bwd_kernel
// (128 keys, 8 warps = 2 warpgroups of 64 keys; warp w owns keys 16w..16w+15), so the element-wise code is
// identical; the five GEMMs become warpgroup MMAs on 128-byte-swizzled tiles:
//   S^T = K Q^T, dP^T = V dO^T   m64n64k16, A = K/V rows (K-major), B = Q/dO (K-major)
//   dV += P^T dO, dK += dS^T Q    m64n128k16, A = P^T / dS^T from registers, B = dO/Q (MN-major)
//   dQ = dS K                     m64n64k16, A = dS from the dS^T tile (MN-major), B = K (MN-major);
//                                 warpgroup g computes columns 64g..64g+63 of the 64 x 128 dQ tile.
// ---------------------------------------------------------------------------------------------------------
constexpr int wgb_smem_bytes() { return (2 * kBwdBN * 128 + 4 * kBwdBM * 128 + kBwdBN * kBwdBM) * 2 + 4 * kBwdBM * 4 + 1024; }

// The steps of one query tile, shared by bwd_wgmma_kernel and bwd_ws_kernel (their 256 math threads: warp w owns
// keys 16w..16w+15 of the CTA's 128, warpgroup wg = w / 4 the dQ columns 64wg..64wg+63). Forced inline, so each
// kernel compiles to what it did with the steps written out.
constexpr uint32_t kBwdKPanel = kBwdBN * 128, kBwdQPanel = kBwdBM * 128;  // bytes per 64-column panel

// A consumer warpgroup's MMA operands as descriptor words: k / v its 64 keys of K and V (K-major: the A of S^T and
// dP^T), kt its dQ columns' panel of K (MN-major: dQ's B), sT the dS^T tile (MN-major: dQ's A), and per query tile
// q / o (K-major: the B of S^T, dP^T) and qt / ot (MN-major: the B of dK, dV) of the stage's Q and dO.
struct BwdDescs {
  GmmaDesc k, v, kt, q, o, qt, ot, sT;
};
__device__ __forceinline__ void bwd_key_descs(BwdDescs& d, uint32_t kaddr, uint32_t vaddr, int wg) {
  d.k = gmma_desc_words(kaddr + wg * 64 * 128, 16, 1024);
  d.v = gmma_desc_words(vaddr + wg * 64 * 128, 16, 1024);
  d.kt = gmma_desc_words(kaddr + wg * kBwdKPanel, kBwdKPanel, 1024);
}
__device__ __forceinline__ void bwd_tile_descs(BwdDescs& d, uint32_t qaddr, uint32_t oaddr, uint32_t saddr) {
  d.q = gmma_desc_words(qaddr, 16, 1024);
  d.o = gmma_desc_words(oaddr, 16, 1024);
  d.qt = gmma_desc_words(qaddr, kBwdQPanel, 1024);
  d.ot = gmma_desc_words(oaddr, kBwdQPanel, 1024);
  d.sT = gmma_desc_words(saddr, 1024 * 8, 1024);
}

// S^T = K_wg Q^T (a = d.k, b = d.q) or dP^T = V_wg dO^T (d.v, d.o), 64 keys x 64 queries per warpgroup: issued as
// one commit group.
__device__ __forceinline__ void bwd_issue_scores(float (&s)[32], const GmmaDesc& a, const GmmaDesc& b) {
  constexpr int D = 128;
  wg_fence();
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    const uint32_t ko = (kk >> 2) * kBwdKPanel + (kk & 3) * 32, qo = (kk >> 2) * kBwdQPanel + (kk & 3) * 32;
    if (kk == 0) wgmma_ss64_init(s, a.at(ko), b.at(qo));
    else wgmma_ss64(s, a.at(ko), b.at(qo), 1);
  }
  wg_commit();
}
// Both, waited for.
__device__ __forceinline__ void bwd_scores(float (&s)[32], float (&dp)[32], const BwdDescs& d) {
  bwd_issue_scores(s, d.k, d.q);
  bwd_issue_scores(dp, d.v, d.o);
  wg_wait<0>();
  reg_fence32(s);
  reg_fence32(dp);
}

// The tile's lse as the probabilities' exponent wants it: log2 units, +inf where the row's lse is -inf (a row that
// sees no key) and for padding rows, so P = 0 there. Written into shared memory by whoever loads the tile.
__device__ __forceinline__ float bwd_lse_log2(float lse) { return lse == -INFINITY ? INFINITY : lse * kLog2e; }

// P^T (s[4nt + 2hh + e]: key 16*warp + g + 8hh, query m0 + 8nt + 2tq + e) rounded to bf16 into pk (A fragments of
// dV += P^T dO). tL: the tile's lse in log2 units (bwd_lse_log2); MASKED: per-element masks, needed only where some
// key may miss some row (the diagonal and edge tiles: kpos the positions of the thread's two keys, INT_MAX past
// the end, kfirst / klast their documents', read with DOCS only).
template <bool CAUSAL, bool DOCS, bool MASKED>
__device__ __forceinline__ void bwd_probs_p(float (&s)[32], const float* tL, int m0, const PieceMap& qmap,
                                            const int (&kpos)[2], const int (&kfirst)[2], const int (&klast)[2],
                                            float scale_log2, int tq, uint32_t (&pk)[4][4]) {
#pragma unroll
  for (int nt = 0; nt < 8; ++nt) {
    const float2 l2 = *reinterpret_cast<const float2*>(tL + 8 * nt + 2 * tq);
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const float l = e ? l2.y : l2.x;
      int qp = 0;
      if (MASKED) qp = pos_of(qmap, m0 + 8 * nt + 2 * tq + e);
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        float p = ex2(s[4 * nt + 2 * hh + e] * scale_log2 - l);
        if (MASKED) {
          const bool vis = DOCS ? doc_reaches<CAUSAL>(kpos[hh], qp, kfirst[hh], klast[hh])
                                : kpos[hh] != INT_MAX && (!CAUSAL || kpos[hh] <= qp);
          p = vis ? p : 0.f;
        }
        s[4 * nt + 2 * hh + e] = p;
      }
    }
  }
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    pk[kk][0] = pack2(s[8 * kk + 0], s[8 * kk + 1]);
    pk[kk][1] = pack2(s[8 * kk + 2], s[8 * kk + 3]);
    pk[kk][2] = pack2(s[8 * kk + 4], s[8 * kk + 5]);
    pk[kk][3] = pack2(s[8 * kk + 6], s[8 * kk + 7]);
  }
}

// dS^T = P^T (dP^T - delta) from the bf16 P^T in pk (as dV uses it) into dsk (A fragments of dK += dS^T Q) and into
// the swizzled dS^T tile sS (for dQ = dS K), fenced for the tensor cores. tD: the tile's delta. The tile's rows are
// 128 bytes and swz puts the thread's 16-byte chunk nt of row 16 warp + g + 8 hh at chunk nt ^ g, so each store's
// address is a per-thread base XOR nt << 4.
__device__ __forceinline__ void bwd_probs_ds(const float (&dp)[32], const float* tD, __nv_bfloat16* sS, int warp,
                                             int g, int tq, const uint32_t (&pk)[4][4], uint32_t (&dsk)[4][4]) {
  const uint32_t row = smem_addr(sS) + (uint32_t)(16 * warp + g) * 128 + 4 * tq;
#pragma unroll
  for (int nt = 0; nt < 8; ++nt) {
    const float2 dl = *reinterpret_cast<const float2*>(tD + 8 * nt + 2 * tq);
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      uint32_t pp = pk[nt >> 1][(nt & 1) * 2 + hh];
      float2 p = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&pp));
      const uint32_t w = pack2(p.x * (dp[4 * nt + 2 * hh] - dl.x), p.y * (dp[4 * nt + 2 * hh + 1] - dl.y));
      dsk[nt >> 1][(nt & 1) * 2 + hh] = w;
      const uint32_t a = ((row + hh * 8 * 128) ^ ((uint32_t)g << 4)) ^ ((uint32_t)nt << 4);
      asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(a), "r"(w) : "memory");
    }
  }
  fence_proxy_async();  // dS^T stores -> visible to the dQ wgmma after the caller's barrier
}

// Both steps; the per-element masks only where the tile needs them (the unmasked copy has no position compares).
template <bool CAUSAL, bool DOCS>
__device__ __forceinline__ void bwd_probs(float (&s)[32], const float (&dp)[32], const float* tL, const float* tD,
                                          bool masked, int m0, const PieceMap& qmap, const int (&kpos)[2],
                                          const int (&kfirst)[2], const int (&klast)[2], float scale_log2,
                                          __nv_bfloat16* sS, int warp, int g, int tq, uint32_t (&pk)[4][4],
                                          uint32_t (&dsk)[4][4]) {
  if (masked)
    bwd_probs_p<CAUSAL, DOCS, true>(s, tL, m0, qmap, kpos, kfirst, klast, scale_log2, tq, pk);
  else
    bwd_probs_p<CAUSAL, DOCS, false>(s, tL, m0, qmap, kpos, kfirst, klast, scale_log2, tq, pk);
  bwd_probs_ds(dp, tD, sS, warp, g, tq, pk, dsk);
}

// dV += P^T dO and dK += dS^T Q (64 keys x 128 per warpgroup; B MN-major: LBO = panel, SBO = 8 rows), committed and
// left in flight across the caller's barrier and the dQ MMAs (bwd_dq keeps pk / dsk alive until they retire).
__device__ __forceinline__ void bwd_issue_dv_dk(float (&dv)[64], float (&dk)[64], const uint32_t (&pk)[4][4],
                                                const uint32_t (&dsk)[4][4], const BwdDescs& d) {
  constexpr int BM = kBwdBM;
  reg_fence(dv);
  reg_fence(dk);
  wg_fence();
#pragma unroll
  for (int kk = 0; kk < BM / 16; ++kk) wgmma_rs(dv, pk[kk], d.ot.at(kk * 16 * 128), 1);
#pragma unroll
  for (int kk = 0; kk < BM / 16; ++kk) wgmma_rs(dk, dsk[kk], d.qt.at(kk * 16 * 128), 1);
  wg_commit();
}

// bwd_ws_kernel's order (FlashAttention-3's): dV += P^T dO before the warpgroups meet, then dQ = dS K and
// dK += dS^T Q, each its own commit group, so dQ can be waited for (wg_wait<1>) and staged while dK still runs.
__device__ __forceinline__ void bwd_issue_dv(float (&dv)[64], const uint32_t (&pk)[4][4], const BwdDescs& d) {
  reg_fence(dv);
  wg_fence();
#pragma unroll
  for (int kk = 0; kk < kBwdBM / 16; ++kk) wgmma_rs(dv, pk[kk], d.ot.at(kk * 16 * 128), 1);
  wg_commit();
}
__device__ __forceinline__ void bwd_issue_dq(float (&dq)[32], const BwdDescs& d) {
  wg_fence();
#pragma unroll
  for (int kk = 0; kk < kBwdBN / 16; ++kk) wgmma_ss64_t(dq, d.sT.at(kk * 16 * 128), d.kt.at(kk * 16 * 128), kk > 0);
  wg_commit();
}
__device__ __forceinline__ void bwd_issue_dk(float (&dk)[64], const uint32_t (&dsk)[4][4], const BwdDescs& d) {
  reg_fence(dk);
  wg_fence();
#pragma unroll
  for (int kk = 0; kk < kBwdBM / 16; ++kk) wgmma_rs(dk, dsk[kk], d.qt.at(kk * 16 * 128), 1);
  wg_commit();
}
// Keeps an MMA's register operand alive (unchanged, its registers not reused) up to here: after the wait that
// retires the MMA reading it.
__device__ __forceinline__ void keep_operand(const uint32_t (&a)[4][4]) {
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) asm volatile("" ::"r"(a[i][j]) : "memory");
}

// dQ[:, 64wg..64wg+63] = dS K: A = dS (MN-major view of the dS^T tile, d.sT), B = K columns of panel wg
// (MN-major, d.kt). Waits for every MMA in flight, the dV / dK ones included.
__device__ __forceinline__ void bwd_dq(float (&dq)[32], float (&dv)[64], float (&dk)[64], const uint32_t (&pk)[4][4],
                                       const uint32_t (&dsk)[4][4], const BwdDescs& d) {
  reg_fence32(dq);
  bwd_issue_dq(dq, d);
  wg_wait<0>();
  reg_fence32(dq);
  reg_fence(dv);
  reg_fence(dk);
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) asm volatile("" ::"r"(pk[i][j]), "r"(dsk[i][j]) : "memory");
}

// dq_acc[rows m0.., head h] += scale dQ with 8-byte atomics, or 16-byte ones when dq_vec4 (0 in the product;
// bench/gpu/softmax_variants.cuh times 1: lane pairs (tq, tq^1) swap halves so each lane holds 4 consecutive
// columns of one row).
__device__ __forceinline__ void bwd_add_dq(const float (&dq)[32], float* dq_acc, int dq_vec4, const SoftmaxDims& dm,
                                           int b, int h, int m0, int warp, int wg, int g, int tq, float scale) {
  constexpr int D = 128;
  const int H = dm.heads;
  if (dq_vec4) {
    const bool odd = tq & 1;
    const int r = m0 + 16 * (warp & 3) + g + (odd ? 8 : 0);
    float* dst = dq_acc + (((size_t)b * dm.q_rows + r) * H + h) * D + wg * 64 + 4 * (tq >> 1);
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      const float a0 = dq[4 * nt] * scale, a1 = dq[4 * nt + 1] * scale;
      const float b0 = dq[4 * nt + 2] * scale, b1 = dq[4 * nt + 3] * scale;
      const float r0 = __shfl_xor_sync(0xffffffffu, odd ? a0 : b0, 1);
      const float r1 = __shfl_xor_sync(0xffffffffu, odd ? a1 : b1, 1);
      if (r < dm.q_rows)
        atomic_add4(dst + 8 * nt, odd ? make_float4(r0, r1, b0, b1) : make_float4(a0, a1, r0, r1));
    }
  } else {
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int r = m0 + 16 * (warp & 3) + g + 8 * hh;
      if (r < dm.q_rows) {
        float* dst = dq_acc + (((size_t)b * dm.q_rows + r) * H + h) * D + wg * 64 + 2 * tq;
#pragma unroll
        for (int nt = 0; nt < 8; ++nt)
          atomic_add2(dst + 8 * nt, dq[4 * nt + 2 * hh] * scale, dq[4 * nt + 2 * hh + 1] * scale);
      }
    }
  }
}

// The thread's two keys' dK (times scale) and dV: written as bf16 (KV_BF16) or added to the fp32 accumulators.
template <bool KV_BF16>
__device__ __forceinline__ void bwd_store_dk_dv(const float (&dk)[64], const float (&dv)[64], const SoftmaxDims& dm,
                                                int b, int hk, int n0, int warp, int g, int tq, float scale,
                                                float* dk_acc, float* dv_acc, __nv_bfloat16* dk_out,
                                                __nv_bfloat16* dv_out) {
  constexpr int D = 128;
  const int HK = dm.kv_heads;
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    const int j = n0 + 16 * warp + g + 8 * hh;
    if (j >= dm.k_rows) continue;
    const size_t row = (((size_t)b * dm.k_rows + j) * HK + hk) * D + 2 * tq;
#pragma unroll
    for (int t = 0; t < D / 8; ++t) {
      const float k0 = dk[4 * t + 2 * hh] * scale, k1 = dk[4 * t + 2 * hh + 1] * scale;
      const float v0 = dv[4 * t + 2 * hh], v1 = dv[4 * t + 2 * hh + 1];
      if (KV_BF16) {
        *reinterpret_cast<uint32_t*>(dk_out + row + 8 * t) = pack2(k0, k1);
        *reinterpret_cast<uint32_t*>(dv_out + row + 8 * t) = pack2(v0, v1);
      } else {
        float2* pk2 = reinterpret_cast<float2*>(dk_acc + row + 8 * t);
        float2* pv2 = reinterpret_cast<float2*>(dv_acc + row + 8 * t);
        float2 ok = *pk2, ov = *pv2;
        *pk2 = make_float2(ok.x + k0, ok.y + k1);
        *pv2 = make_float2(ov.x + v0, ov.y + v1);
      }
    }
  }
}

template <bool CAUSAL, bool KV_BF16, class... Docs>
__global__ void __launch_bounds__(kBwdThreads, 1)
    bwd_wgmma_kernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
                     const __nv_bfloat16* __restrict__ v, const float* __restrict__ lse,
                     const __nv_bfloat16* __restrict__ dout, const float* __restrict__ delta, SoftmaxDims dm,
                     PieceMap qmap, PieceMap kmap, float* __restrict__ dq_acc, float* __restrict__ dk_acc,
                     float* __restrict__ dv_acc, __nv_bfloat16* __restrict__ dk_out,
                     __nv_bfloat16* __restrict__ dv_out, float scale, float scale_log2, int dq_vec4, Docs... docs) {
  constexpr int D = 128, BM = kBwdBM, BN = kBwdBN, NT = kBwdThreads;
  constexpr bool DOCS = has_docs<Docs...>();
  extern __shared__ __align__(1024) unsigned char smem_wgb[];
  unsigned char* base = smem_wgb + ((1024 - (smem_addr(smem_wgb) & 1023)) & 1023);
  __nv_bfloat16* sK = reinterpret_cast<__nv_bfloat16*>(base);  // [2 panels][BN][64]
  __nv_bfloat16* sV = sK + BN * D;                              // [2 panels][BN][64]
  __nv_bfloat16* sQ = sV + BN * D;                              // [2 stages][2 panels][BM][64]
  __nv_bfloat16* sO = sQ + 2 * BM * D;                          // [2 stages][2 panels][BM][64] (dout)
  __nv_bfloat16* sS = sO + 2 * BM * D;                          // [BN][BM] dS^T (one 64-wide panel)
  float* sL = reinterpret_cast<float*>(sS + BN * BM);           // [2][BM]
  float* sD = sL + 2 * BM;                                      // [2][BM]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2, g = lane >> 2, tq = lane & 3;
  const int H = dm.heads, HK = dm.kv_heads, G = H / HK;
  const int b = blockIdx.x / HK, hk = blockIdx.x % HK;
  const int n0 = blockIdx.y * BN;
  const int kvalid = min(BN, dm.k_rows - n0);
  const size_t qstride = (size_t)H * D, kstride = (size_t)HK * D;

  int q_start = 0, q_full = 0, q_stop = dm.q_rows, q_full_end = dm.q_rows;
  if constexpr (DOCS) {
    doc_query_ranges<CAUSAL>(doc_row(docs_arg(docs...), b), qmap, dm.q_rows, pos_of(kmap, n0),
                             pos_of(kmap, n0 + kvalid - 1), q_start, q_stop, q_full, q_full_end);
  } else if (CAUSAL) {
    q_start = count_le(qmap, dm.q_rows, pos_of(kmap, n0) - 1);
    q_full = count_le(qmap, dm.q_rows, pos_of(kmap, n0 + kvalid - 1) - 1);
  }
  // Query tiles mt0 .. m_tiles - 1 of every head of the group: from the first one some key reaches, up to the
  // last one some key reaches (documents) or the end.
  const int mt0 = q_start / BM, m_tiles = ((DOCS ? q_stop : dm.q_rows) + BM - 1) / BM;
  const int per_head = q_start >= (DOCS ? q_stop : dm.q_rows) ? 0 : m_tiles - mt0, iters = per_head * G;

  load_rows_sw128<BN, NT>(sK, k + (((size_t)b * dm.k_rows + n0) * HK + hk) * D, kstride, kvalid, tid);
  load_rows_sw128<BN, NT>(sV, v + (((size_t)b * dm.k_rows + n0) * HK + hk) * D, kstride, kvalid, tid);

  auto load_q = [&](int itn, int st) {
    const int hg = itn / per_head, m0 = (mt0 + itn % per_head) * BM, h = hk * G + hg;
    const int valid = min(BM, dm.q_rows - m0);
    const size_t off = (((size_t)b * dm.q_rows + m0) * H + h) * D;
    load_rows_sw128<BM, NT>(sQ + st * BM * D, q + off, qstride, valid, tid);
    load_rows_sw128<BM, NT>(sO + st * BM * D, dout + off, qstride, valid, tid);
    if (tid < BM) {
      if (tid < valid) {
        cp4(sL + st * BM + tid, lse + ((size_t)b * dm.q_rows + m0 + tid) * H + h);
        cp4(sD + st * BM + tid, delta + ((size_t)b * H + h) * dm.q_rows + m0 + tid);
      } else {
        sL[st * BM + tid] = INFINITY;
        sD[st * BM + tid] = 0.f;
      }
    }
  };
  if (iters > 0) load_q(0, 0);
  cp_commit();

  int kpos[2], kfirst[2], klast[2];
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    const int j = n0 + 16 * warp + g + 8 * hh;
    kpos[hh] = j < dm.k_rows ? pos_of(kmap, j) : INT_MAX;
  }
  if constexpr (DOCS) key_docs<CAUSAL>(docs_arg(docs...), b, kpos, kfirst, klast);

  float dk[64], dv[64];  // [16 n8 tiles][4]
#pragma unroll
  for (int i = 0; i < 64; ++i) dk[i] = dv[i] = 0.f;
  BwdDescs ds;
  bwd_key_descs(ds, smem_addr(sK), smem_addr(sV), wg);

  for (int it = 0; it < iters; ++it) {
    const int hg = it / per_head, m0 = (mt0 + it % per_head) * BM, h = hk * G + hg;
    cp_wait<0>();
    if (tid < BM) sL[(it & 1) * BM + tid] = bwd_lse_log2(sL[(it & 1) * BM + tid]);  // the row this thread copied
    fence_proxy_async();
    __syncthreads();
    if (it + 1 < iters) load_q(it + 1, (it + 1) & 1);
    cp_commit();
    const int st = it & 1;
    bwd_tile_descs(ds, smem_addr(sQ + st * BM * D), smem_addr(sO + st * BM * D), smem_addr(sS));
    const float* tL = sL + st * BM;
    const float* tD = sD + st * BM;

    float s[32], dp[32];
    bwd_scores(s, dp, ds);
    // Per-element masks where some key may miss some row (every key reaches rows [q_full, q_full_end)).
    const bool masked =
        DOCS ? m0 < q_full || m0 + BM > q_full_end || kvalid < BN : (CAUSAL && m0 < q_full) || kvalid < BN;
    uint32_t pk[4][4], dsk[4][4];
    bwd_probs<CAUSAL, DOCS>(s, dp, tL, tD, masked, m0, qmap, kpos, kfirst, klast, scale_log2, sS, warp, g, tq, pk,
                            dsk);
    bwd_issue_dv_dk(dv, dk, pk, dsk, ds);
    __syncthreads();  // dS^T complete (each thread fenced its stores)
    float dq[32];
    bwd_dq(dq, dv, dk, pk, dsk, ds);
    bwd_add_dq(dq, dq_acc, dq_vec4, dm, b, h, m0, warp, wg, g, tq, scale);
  }
  cp_wait<0>();
  bwd_store_dk_dv<KV_BF16>(dk, dv, dm, b, hk, n0, warp, g, tq, scale, dk_acc, dv_acc, dk_out, dv_out);
}

// The same backward with warp specialization (the default on Hopper): a producer warpgroup loads K/V once and
// every query tile's Q and dO with TMA bulk tensor copies (64-row boxes) plus its lse and delta (plain loads by
// warp 0's 32 lanes) into a ring of kWsbStages stages with full/empty mbarriers; two consumer warpgroups
// (setmaxnreg 240) run the math of bwd_wgmma_kernel (the shared steps above). The dS^T tile is double-buffered,
// so the consumers meet once per query tile (named barrier 3, dS^T complete before dQ = dS K).
// A tile's MMAs in FlashAttention-3's order, each its own commit group: S^T, dP^T (P^T's exponentials run while
// dP^T does), dV, then after the barrier dQ and dK (dQ staged while dK runs). The per-element masks only on the
// tiles that need them, the lse pre-scaled by the producer, the MMA descriptors built once (GmmaDesc): 41% fewer
// instructions and a 1.12-1.28x faster backward than without (bench/results/2026-12-06-softmax-bwd-diet.md).
// dQ (FlashAttention-3's path): each consumer warpgroup stores its scaled 64 x 64 dQ into a shared tile and
// signals dq_full; one thread of the producer warpgroup (warp 1) adds the tile into dq_acc with one TMA
// reduce-add (cp.reduce.async.bulk.tensor) and hands the buffer back (dq_empty) once the copy engine has read it.
// Double-buffered across query tiles; no per-thread atomics on the consumers (1.15-1.28x the backward's speed of
// 8-byte atomics on an H100: bench/results/2026-12-06-softmax-bwd-tma-dq.md).
// dQ tile (per warpgroup, 16 KB, 1024-byte aligned): [64 rows][2 halves][32 fp32], the box of a 5-d map over
// dq_acc viewed as [batch][rows][heads][4 quarters][32] with SWIZZLE_128B: the 16-byte chunk c of half-row
// (r, half) sits at chunk c ^ ((2r + half) & 7), so a half warp's float2 stores hit 16 distinct bank pairs.
constexpr int kWsbStages = 2;
constexpr uint32_t kWsbDqTile = kBwdBM * 64 * 4;  // one warpgroup's dQ tile (bytes)
constexpr int wsb_smem_bytes() {
  return (2 * kBwdBN * 128 + 2 * kWsbStages * kBwdBM * 128 + 2 * kBwdBN * kBwdBM) * 2 + 2 * 2 * (int)kWsbDqTile +
         2 * kWsbStages * kBwdBM * 4 + 1024 + 128;
}
static_assert(wsb_smem_bytes() <= 227 * 1024, "bwd_ws_kernel's shared memory exceeds a Hopper CTA's 227 KB");

__device__ __forceinline__ void tma_reduce_add_5d(const CUtensorMap* map, uint32_t src, int c0, int c1, int c2, int c3,
                                                  int c4) {
#if LASP_HOPPER_WGMMA
  asm volatile(
      "cp.reduce.async.bulk.tensor.5d.global.shared::cta.add.tile.bulk_group [%0, {%2, %3, %4, %5, %6}], [%1];\n" ::"l"(
          reinterpret_cast<uint64_t>(map)),
      "r"(src), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(c4)
      : "memory");
#endif
}
__device__ __forceinline__ void bulk_commit() {
#if LASP_HOPPER_WGMMA
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void bulk_wait_read0() {  // the shared sources of every committed group were read
#if LASP_HOPPER_WGMMA
  asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void bulk_wait0() {  // every committed group complete (its global writes done)
#if LASP_HOPPER_WGMMA
  asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory");
#endif
}

// Stores scale * dQ (bwd_dq's fragment: dq[4nt + 2hh + e] is row 16 (warp & 3) + g + 8hh, column 8nt + 2tq + e of
// this warpgroup's 64) into the swizzled tile at `tile`. With u = (tq >> 1) + 2 (g & 3) the chunk is
// u ^ (2 (nt & 3) + (nt >> 2)): one XOR with a constant per store.
__device__ __forceinline__ void bwd_stage_dq(const float (&dq)[32], uint32_t tile, int warp, int g, int tq,
                                             float scale) {
  const uint32_t base = tile + (16 * (warp & 3) + g) * 256 + (tq & 1) * 8;
  const uint32_t u16 = (uint32_t)((tq >> 1) + 2 * (g & 3)) << 4;
#pragma unroll
  for (int hh = 0; hh < 2; ++hh)
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      const uint32_t k16 = (uint32_t)(2 * (nt & 3) + (nt >> 2)) << 4;
      const uint32_t a = base + (u16 ^ k16) + hh * 8 * 256 + (nt >> 2) * 128;
      asm volatile("st.shared.v2.f32 [%0], {%1, %2};\n" ::"r"(a), "f"(dq[4 * nt + 2 * hh] * scale),
                   "f"(dq[4 * nt + 2 * hh + 1] * scale)
                   : "memory");
    }
}

// bwd_ws_kernel's mbarriers, 8 bytes each from `bar`: kv_full, full[S], empty[S] (the Q/dO ring), dq_full[2][2],
// dq_empty[2][2] (the dQ tiles, per buffer and consumer warpgroup).
struct WsbBarriers {
  uint32_t bar;
  __device__ uint32_t kv_full() const { return bar; }
  __device__ uint32_t full(int i) const { return bar + 8u * (1 + i); }
  __device__ uint32_t empty(int i) const { return bar + 8u * (1 + kWsbStages + i); }
  __device__ uint32_t dq_full(int buf, int w) const { return bar + 8u * (1 + 2 * kWsbStages + 2 * buf + w); }
  __device__ uint32_t dq_empty(int buf, int w) const { return bar + 8u * (5 + 2 * kWsbStages + 2 * buf + w); }
  // By one thread, before the CTA's first barrier.
  __device__ void init() const {
    mbar_init(kv_full(), 1);
#pragma unroll
    for (int i = 0; i < kWsbStages; ++i) {
      mbar_init(full(i), 32);  // the producer warp's 32 lanes (lane 0 with the byte count)
      mbar_init(empty(i), 256);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      mbar_init(dq_full(i >> 1, i & 1), 4);   // lane 0 of each of the warpgroup's 4 warps
      mbar_init(dq_empty(i >> 1, i & 1), 1);  // the reducer thread
    }
    fence_mbar_init();
  }
};

// The producer warp of bwd_ws_kernel (lane `lane` of warp 0): K and V of the key block once, then every query
// tile's Q, dO (TMA) and lse, delta (plain loads) into the ring. Tile it is head h, rows (mt0 + mi) * BM..:
// counted, not divided (24 registers here).
__device__ __forceinline__ void wsb_produce(const WsbBarriers& br, const CUtensorMap* tm_q, const CUtensorMap* tm_do,
                                            const CUtensorMap* tm_k, const CUtensorMap* tm_v, uint32_t kaddr,
                                            uint32_t vaddr, uint32_t qbase, uint32_t obase, float* sL, float* sD,
                                            const float* __restrict__ lse, const float* __restrict__ delta,
                                            const SoftmaxDims& dm, int b, int hk, int n0, int G, int mt0,
                                            int per_head, int iters, int lane) {
  constexpr int D = 128, BM = kBwdBM, BN = kBwdBN, S = kWsbStages;
  constexpr uint32_t KPANEL = BN * 128, QPANEL = BM * 128;  // bytes per 64-column panel
  constexpr uint32_t KVB = 2 * BN * D * 2, QT = BM * D * 2;  // K+V bytes; one Q (or dO) tile
  const int H = dm.heads;
  if (lane == 0) {
    mbar_expect_tx(br.kv_full(), KVB);
    tma_load_4d(kaddr, tm_k, br.kv_full(), 0, hk, n0, b);
    tma_load_4d(kaddr + KPANEL, tm_k, br.kv_full(), 64, hk, n0, b);
    tma_load_4d(vaddr, tm_v, br.kv_full(), 0, hk, n0, b);
    tma_load_4d(vaddr + KPANEL, tm_v, br.kv_full(), 64, hk, n0, b);
  }
  int h = hk * G, mi = 0;
  for (int it = 0; it < iters; ++it) {
    const int st = it % S, m0 = (mt0 + mi) * BM;
    mbar_wait(br.empty(st), ((it / S) & 1) ^ 1);
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int r = lane + 32 * hh;
      float l = INFINITY, dl = 0.f;  // padding rows: P = 0
      if (m0 + r < dm.q_rows) {
        l = lse[((size_t)b * dm.q_rows + m0 + r) * H + h];
        dl = delta[((size_t)b * H + h) * dm.q_rows + m0 + r];
      }
      sL[st * BM + r] = bwd_lse_log2(l);
      sD[st * BM + r] = dl;
    }
    if (lane == 0) {
      mbar_expect_tx(br.full(st), 2 * QT);
      const uint32_t qa = qbase + st * QT, oa = obase + st * QT;
      tma_load_4d(qa, tm_q, br.full(st), 0, h, m0, b);
      tma_load_4d(qa + QPANEL, tm_q, br.full(st), 64, h, m0, b);
      tma_load_4d(oa, tm_do, br.full(st), 0, h, m0, b);
      tma_load_4d(oa + QPANEL, tm_do, br.full(st), 64, h, m0, b);
    } else {
      mbar_arrive(br.full(st));
    }
    if (++mi == per_head) mi = 0, ++h;
  }
}

// The dQ reducer of bwd_ws_kernel (one thread of warp 1): both halves of tile it into dq_acc rows m0.. of head h
// (rows past q_rows are clipped by the copy engine), then the buffer back once it has been read.
__device__ __forceinline__ void wsb_reduce_dq(const WsbBarriers& br, const CUtensorMap* tm_dq, uint32_t dqbase, int b,
                                              int hk, int G, int mt0, int per_head, int iters) {
  int h = hk * G, mi = 0;
  for (int it = 0; it < iters; ++it) {
    const int buf = it & 1, m0 = (mt0 + mi) * kBwdBM;
#pragma unroll
    for (int w = 0; w < 2; ++w) {
      mbar_wait(br.dq_full(buf, w), (it >> 1) & 1);
      tma_reduce_add_5d(tm_dq, dqbase + (2 * buf + w) * kWsbDqTile, 0, 2 * w, h, m0, b);
      bulk_commit();
    }
    bulk_wait_read0();
    mbar_arrive(br.dq_empty(buf, 0));
    mbar_arrive(br.dq_empty(buf, 1));
    if (++mi == per_head) mi = 0, ++h;
  }
  bulk_wait0();
}

// A consumer warpgroup hands tile it's dQ to the reducer: waits until the reduce of tile it - 2 has read the
// buffer, stores scale * dQ, fences the stores for the copy engine (async proxy), one arrival per warp.
__device__ __forceinline__ void wsb_hand_dq(const WsbBarriers& br, const float (&dq)[32], uint32_t dqbase, int it,
                                            int wg, int warp, int g, int tq, int lane, float scale) {
  const int buf = it & 1;
  mbar_wait(br.dq_empty(buf, wg), ((it >> 1) & 1) ^ 1);
  bwd_stage_dq(dq, dqbase + (2 * buf + wg) * kWsbDqTile, warp, g, tq, scale);
  fence_proxy_async();
  __syncwarp();
  if (lane == 0) mbar_arrive(br.dq_full(buf, wg));
}

template <bool CAUSAL, bool KV_BF16, class... Docs>
__global__ void __launch_bounds__(kWsThreads, 1)
    bwd_ws_kernel(const __grid_constant__ CUtensorMap tm_q, const __grid_constant__ CUtensorMap tm_do,
                  const __grid_constant__ CUtensorMap tm_k, const __grid_constant__ CUtensorMap tm_v,
                  const __grid_constant__ CUtensorMap tm_dq, const float* __restrict__ lse,
                  const float* __restrict__ delta, SoftmaxDims dm, PieceMap qmap, PieceMap kmap,
                  float* __restrict__ dk_acc, float* __restrict__ dv_acc, __nv_bfloat16* __restrict__ dk_out,
                  __nv_bfloat16* __restrict__ dv_out, float scale, float scale_log2, Docs... docs) {
#if LASP_HOPPER_WGMMA
  constexpr int D = 128, BM = kBwdBM, BN = kBwdBN, S = kWsbStages;
  constexpr bool DOCS = has_docs<Docs...>();
  constexpr uint32_t QT = BM * D * 2;  // one Q (or dO) tile
  extern __shared__ __align__(1024) unsigned char smem_wsb[];
  unsigned char* base = smem_wsb + ((1024 - (smem_addr(smem_wsb) & 1023)) & 1023);
  const uint32_t kaddr = smem_addr(base);        // [2 panels][BN][64]
  const uint32_t vaddr = kaddr + BN * D * 2;     // [2 panels][BN][64]
  const uint32_t qbase = vaddr + BN * D * 2;     // [S][2 panels][BM][64]
  const uint32_t obase = qbase + S * QT;         // [S][2 panels][BM][64] (dout)
  __nv_bfloat16* sS = reinterpret_cast<__nv_bfloat16*>(base + 2 * BN * D * 2 + 2 * S * QT);  // [2][BN][BM] dS^T
  const uint32_t dqbase = smem_addr(sS + 2 * BN * BM);  // [2 buffers][2 warpgroups] dQ tiles (1024-aligned)
  float* sL = reinterpret_cast<float*>(sS + 2 * BN * BM) + 2 * 2 * kWsbDqTile / 4;  // [S][BM]
  float* sD = sL + S * BM;                                                          // [S][BM]
  const WsbBarriers br{smem_addr(sD + S * BM)};

  const int tid = threadIdx.x, lane = tid & 31, wgi = tid >> 7;
  const int H = dm.heads, HK = dm.kv_heads, G = H / HK;
  const int b = blockIdx.x / HK, hk = blockIdx.x % HK;
  const int n0 = blockIdx.y * BN;
  const int kvalid = min(BN, dm.k_rows - n0);

  int q_start = 0, q_full = 0, q_stop = dm.q_rows, q_full_end = dm.q_rows;
  if constexpr (DOCS) {
    doc_query_ranges<CAUSAL>(doc_row(docs_arg(docs...), b), qmap, dm.q_rows, pos_of(kmap, n0),
                             pos_of(kmap, n0 + kvalid - 1), q_start, q_stop, q_full, q_full_end);
  } else if (CAUSAL) {
    q_start = count_le(qmap, dm.q_rows, pos_of(kmap, n0) - 1);
    q_full = count_le(qmap, dm.q_rows, pos_of(kmap, n0 + kvalid - 1) - 1);
  }
  // Query tiles mt0 .. m_tiles - 1 of every head of the group: from the first one some key reaches, up to the
  // last one some key reaches (documents) or the end.
  const int mt0 = q_start / BM, m_tiles = ((DOCS ? q_stop : dm.q_rows) + BM - 1) / BM;
  const int per_head = q_start >= (DOCS ? q_stop : dm.q_rows) ? 0 : m_tiles - mt0, iters = per_head * G;

  if (tid == 0) br.init();
  __syncthreads();

  if (wgi == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n" ::: "memory");
    if (tid < 32 && iters > 0)
      wsb_produce(br, &tm_q, &tm_do, &tm_k, &tm_v, kaddr, vaddr, qbase, obase, sL, sD, lse, delta, dm, b, hk, n0, G,
                  mt0, per_head, iters, lane);
    else if (tid == 32 && iters > 0)
      wsb_reduce_dq(br, &tm_dq, dqbase, b, hk, G, mt0, per_head, iters);
  } else {
    // ---- consumers: the 256 threads of warpgroups 1-2 take the roles of bwd_wgmma_kernel's 256 threads ----
    asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n" ::: "memory");
    // wg broadcast from lane 0: the compiler then knows it is warp-uniform and keeps the MMA descriptors in
    // uniform registers.
    const int ctid = tid - 128, warp = ctid >> 5, wg = __shfl_sync(0xffffffffu, warp >> 2, 0), g = lane >> 2,
              tq = lane & 3;
    int kpos[2], kfirst[2], klast[2];
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int j = n0 + 16 * warp + g + 8 * hh;
      kpos[hh] = j < dm.k_rows ? pos_of(kmap, j) : INT_MAX;
    }
    if constexpr (DOCS) key_docs<CAUSAL>(docs_arg(docs...), b, kpos, kfirst, klast);
    float dk[64], dv[64];  // [16 n8 tiles][4]
#pragma unroll
    for (int i = 0; i < 64; ++i) dk[i] = dv[i] = 0.f;
    BwdDescs ds;
    bwd_key_descs(ds, kaddr, vaddr, wg);
    if (iters > 0) mbar_wait(br.kv_full(), 0);

    for (int it = 0, mi = 0; it < iters; ++it, mi = mi + 1 == per_head ? 0 : mi + 1) {
      const int m0 = (mt0 + mi) * BM;
      const int st = it % S;
      mbar_wait(br.full(st), (it / S) & 1);
      __nv_bfloat16* tS = sS + (it & 1) * BN * BM;
      bwd_tile_descs(ds, qbase + st * QT, obase + st * QT, smem_addr(tS));

      float s[32], dp[32];
      bwd_issue_scores(s, ds.k, ds.q);
      bwd_issue_scores(dp, ds.v, ds.o);
      // Per-element masks where some key may miss some row (every key reaches rows [q_full, q_full_end)).
      const bool masked =
          DOCS ? m0 < q_full || m0 + BM > q_full_end || kvalid < BN : (CAUSAL && m0 < q_full) || kvalid < BN;
      uint32_t pk[4][4], dsk[4][4];
      wg_wait<1>();  // S^T retired: P^T's exponentials run while dP^T's MMAs do
      reg_fence32(s);
      if (masked)
        bwd_probs_p<CAUSAL, DOCS, true>(s, sL + st * BM, m0, qmap, kpos, kfirst, klast, scale_log2, tq, pk);
      else
        bwd_probs_p<CAUSAL, DOCS, false>(s, sL + st * BM, m0, qmap, kpos, kfirst, klast, scale_log2, tq, pk);
      wg_wait<0>();
      reg_fence32(dp);
      bwd_probs_ds(dp, sD + st * BM, tS, warp, g, tq, pk, dsk);
      bwd_issue_dv(dv, pk, ds);
      named_sync(3);  // both warpgroups' dS^T rows are stored
      float dq[32];
      bwd_issue_dq(dq, ds);
      bwd_issue_dk(dk, dsk, ds);
      wg_wait<1>();  // dV and dQ retired; dK runs on while dQ is staged
      reg_fence32(dq);
      keep_operand(pk);
      wsb_hand_dq(br, dq, dqbase, it, wg, warp, g, tq, lane, scale);
      wg_wait<0>();
      reg_fence(dv);
      reg_fence(dk);
      keep_operand(dsk);
      mbar_arrive(br.empty(st));  // Q, dO, lse and delta of this stage are no longer read
    }
    bwd_store_dk_dv<KV_BF16>(dk, dv, dm, b, hk, n0, warp, g, tq, scale, dk_acc, dv_acc, dk_out, dv_out);
  }
#else
  __trap();
#endif
}

// fp32 -> bf16, 4 elements per thread (n % 4 == 0).
__global__ void f32_to_bf16_kernel(const float* __restrict__ in, __nv_bfloat16* __restrict__ out, size_t n4) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n4) return;
  float4 x = reinterpret_cast<const float4*>(in)[i];
  uint2 y = make_uint2(pack2(x.x, x.y), pack2(x.z, x.w));
  reinterpret_cast<uint2*>(out)[i] = y;
}

// ---------------------------------------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------------------------------------
// A lazily allocated, grown and kept device buffer per device (never freed in steady state).
struct Workspace {
  void* ptr[64] = {};
  size_t bytes[64] = {};
  void* get(size_t need) {
    int dev = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    if (dev < 0 || dev >= 64) {
      std::fprintf(stderr, "softmax_attention: device %d out of range\n", dev);
      std::exit(3);
    }
    if (bytes[dev] < need) {
      if (ptr[dev]) CUDA_CHECK(cudaFree(ptr[dev]));  // synchronises: only while growing
      size_t sz = need + need / 8;
      CUDA_CHECK(cudaMalloc(&ptr[dev], sz));
      bytes[dev] = sz;
    }
    return ptr[dev];
  }
};
inline Workspace& delta_workspace() {
  static Workspace w;
  return w;
}
inline Workspace& dq_workspace() {
  static Workspace w;
  return w;
}

inline void check_dims(const SoftmaxDims& d, const char* who) {
  if ((d.head_dim != 64 && d.head_dim != 128) || d.batch <= 0 || d.q_rows < 0 || d.k_rows < 0 ||
      d.heads <= 0 || d.kv_heads <= 0 || d.heads % d.kv_heads != 0) {
    std::fprintf(stderr, "%s: unsupported dims (batch %d, q_rows %d, k_rows %d, heads %d, kv_heads %d, d %d)\n",
                 who, d.batch, d.q_rows, d.k_rows, d.heads, d.kv_heads, d.head_dim);
    std::exit(3);
  }
}

// With documents: the arrays must be there and cover every position the kernels index them with (the maps'
// positions of rows 0 .. rows - 1; pos_of is increasing on each piece, so its ends bound it).
inline bool positions_within(const PieceMap& m, int rows, int seq_len) {
  if (rows <= 0) return true;
  auto pos = [&](int r) {  // pos_of on the host
    if (m.count == 0) return r;
    if (m.count == 1 || r < m.local_offset[1]) return m.global_start[0] + (r - m.local_offset[0]);
    return m.global_start[1] + (r - m.local_offset[1]);
  };
  int ends[4] = {0, rows - 1, rows - 1, rows - 1};
  if (m.count > 1) {
    ends[2] = std::min(std::max(m.local_offset[1] - 1, 0), rows - 1);
    ends[3] = std::min(std::max(m.local_offset[1], 0), rows - 1);
  }
  for (int r : ends)
    if (pos(r) < 0 || pos(r) >= seq_len) return false;
  return true;
}
inline void check_docs(const Documents& docs, const SoftmaxDims& d, const PieceMap& qmap, const PieceMap& kmap,
                       const char* who) {
  if (!docs.any()) return;
  if (docs.first == nullptr || docs.last == nullptr || docs.seq_len <= 0 ||
      !positions_within(qmap, d.q_rows, docs.seq_len) || !positions_within(kmap, d.k_rows, docs.seq_len)) {
    std::fprintf(stderr, "%s: documents without first / last, or a row position outside their %d positions\n", who,
                 docs.seq_len);
    std::exit(3);
  }
}

template <typename K>
inline void set_smem(K kernel, int bytes) {
  // Once per kernel instantiation and device is enough, but the call is cheap; keep it simple and safe.
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
}

// Tensor map of x [batch][rows][heads][128] bf16: boxes of box_rows rows x 64 columns of one head, 128-byte
// swizzle, zeros past the last row. Host-only work (no device call, nothing enqueued: fine during graph
// capture; the map travels by value in the kernel's parameters). False when it cannot be made.
inline bool make_tile_map(CUtensorMap* m, const void* ptr, int batch, int rows, int heads, int box_rows = 128) {
  const TensorMapEncodeTiled enc = tensor_map_encoder();
  if (!enc || (reinterpret_cast<uintptr_t>(ptr) & 15) != 0 || rows <= 0 || batch <= 0) return false;
  const cuuint64_t dims[4] = {128, (cuuint64_t)heads, (cuuint64_t)rows, (cuuint64_t)batch};
  const cuuint64_t strides[3] = {256, (cuuint64_t)heads * 256, (cuuint64_t)rows * heads * 256};
  const cuuint32_t box[4] = {64, 1, (cuuint32_t)box_rows, 1}, es[4] = {1, 1, 1, 1};
  return enc(m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 4, const_cast<void*>(ptr), dims, strides, box, es,
             CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
             CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// The three maps of the forward (Q, K, V; 128-row boxes); false when one cannot be made.
inline bool make_forward_maps(CUtensorMap* mq, CUtensorMap* mk, CUtensorMap* mv, const bf16* q, const bf16* k,
                              const bf16* v, const SoftmaxDims& d) {
  return make_tile_map(mq, q, d.batch, d.q_rows, d.heads) && make_tile_map(mk, k, d.batch, d.k_rows, d.kv_heads) &&
         make_tile_map(mv, v, d.batch, d.k_rows, d.kv_heads);
}
// The four maps of the backward (Q, dO: 64-row boxes; K, V: 128-row boxes); false when one cannot be made.
inline bool make_backward_maps(CUtensorMap* mq, CUtensorMap* mdo, CUtensorMap* mk, CUtensorMap* mv, const bf16* q,
                               const bf16* dout, const bf16* k, const bf16* v, const SoftmaxDims& d) {
  return make_tile_map(mq, q, d.batch, d.q_rows, d.heads, kBwdBM) &&
         make_tile_map(mdo, dout, d.batch, d.q_rows, d.heads, kBwdBM) &&
         make_tile_map(mk, k, d.batch, d.k_rows, d.kv_heads, kBwdBN) &&
         make_tile_map(mv, v, d.batch, d.k_rows, d.kv_heads, kBwdBN);
}

// Tensor map of dq_acc [batch][rows][heads][128] fp32 for the backward's dQ reduce-add: viewed as
// [batch][rows][heads][4][32] (5-d, dense) with boxes of 64 rows x 2 quarters (64 columns) x 32 of one head,
// SWIZZLE_128B (bwd_ws_kernel's dQ tile layout). False when it cannot be made.
inline bool make_dq_acc_map(CUtensorMap* m, const float* ptr, int batch, int rows, int heads) {
  const TensorMapEncodeTiled enc = tensor_map_encoder();
  if (!enc || (reinterpret_cast<uintptr_t>(ptr) & 15) != 0 || rows <= 0 || batch <= 0) return false;
  const cuuint64_t dims[5] = {32, 4, (cuuint64_t)heads, (cuuint64_t)rows, (cuuint64_t)batch};
  const cuuint64_t strides[4] = {128, 512, (cuuint64_t)heads * 512, (cuuint64_t)rows * heads * 512};
  const cuuint32_t box[5] = {32, 2, 1, (cuuint32_t)kBwdBM, 1}, es[5] = {1, 1, 1, 1, 1};
  return enc(m, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 5, const_cast<float*>(ptr), dims, strides, box, es,
             CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_NONE,
             CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// The default kernels: warp-specialized for d = 128 on Hopper, mma.sync otherwise. The device is read once per
// process (per pass), on the device of the first call.
inline SoftmaxForwardKernel default_forward_kernel(int head_dim) {
  if (head_dim != 128) return SoftmaxForwardKernel::mma_sync;
  return hopper::kernels_run() ? SoftmaxForwardKernel::warp_specialized : SoftmaxForwardKernel::mma_sync;
}
inline SoftmaxBackwardKernel default_backward_kernel(int head_dim) {
  if (head_dim != 128) return SoftmaxBackwardKernel::mma_sync;
  return hopper::kernels_run() ? SoftmaxBackwardKernel::warp_specialized : SoftmaxBackwardKernel::mma_sync;
}

// The warp-specialized forward takes 2 K/V stages and issues its consumers' MMAs without turns (pingpong 0):
// neither 3 stages nor FA3's ping-pong turns were faster on H100 (bench/gpu/SOFTMAX_NOTES.md, v7 and run 8).
constexpr int kFwdWsStages = 2;
// docs: nothing (the kernels without documents) or one Documents (their document-masked instantiations).
template <bool CAUSAL, bool OUT_F32, class... Docs>
void launch_fwd_ws(const CUtensorMap& mq, const CUtensorMap& mk, const CUtensorMap& mv, const SoftmaxDims& d,
                   const PieceMap& qm, const PieceMap& km, float* o_part, float* lse, bf16* o_out, float sl2,
                   cudaStream_t s, Docs... docs) {
  const dim3 g2(d.batch * d.heads, (d.q_rows + kWgBM - 1) / kWgBM);
  auto kern = fwd_ws_kernel<CAUSAL, OUT_F32, kFwdWsStages, Docs...>;
  set_smem(kern, ws_smem_bytes<kFwdWsStages>());
  kern<<<g2, kWsThreads, ws_smem_bytes<kFwdWsStages>(), s>>>(mq, mk, mv, d, qm, km, o_part, lse, o_out, sl2,
                                                              (uint32_t)(kWgBN * 128), 1024u, 0, docs...);
}
template <bool CAUSAL, bool OUT_F32, class... Docs>
void launch_fwd_pipe(const bf16* q, const bf16* k, const bf16* v, const SoftmaxDims& d, const PieceMap& qm,
                     const PieceMap& km, float* o_part, float* lse, bf16* o_out, float sl2, cudaStream_t s,
                     Docs... docs) {
  const dim3 g2(d.batch * d.heads, (d.q_rows + kWgBM - 1) / kWgBM);
  auto kern = fwd_wgmma_pipe_kernel<CAUSAL, OUT_F32, Docs...>;
  set_smem(kern, wg_pipe_smem_bytes());
  kern<<<g2, kWgThreads, wg_pipe_smem_bytes(), s>>>(q, k, v, d, qm, km, o_part, lse, o_out, sl2,
                                                     (uint32_t)(kWgBN * 128), 1024u, docs...);
}

template <int D, bool CAUSAL, class... Docs>
void launch_fwd(SoftmaxForwardKernel kernel, const bf16* q, const bf16* k, const bf16* v, const SoftmaxDims& d,
                const PieceMap& qm, const PieceMap& km, float* o_part, float* lse, bf16* o_out, cudaStream_t s,
                Docs... docs) {
  const float sl2 = kLog2e / std::sqrt((float)D);
  if (D == 128 && kernel == SoftmaxForwardKernel::warp_specialized) {
    CUtensorMap mq, mk, mv;
    if (make_forward_maps(&mq, &mk, &mv, q, k, v, d)) {
      if (o_part) launch_fwd_ws<CAUSAL, true>(mq, mk, mv, d, qm, km, o_part, lse, o_out, sl2, s, docs...);
      else launch_fwd_ws<CAUSAL, false>(mq, mk, mv, d, qm, km, o_part, lse, o_out, sl2, s, docs...);
      LAUNCH_CHECK();
      return;
    }
    kernel = SoftmaxForwardKernel::wgmma_pipelined;
  }
  if (D == 128 && kernel == SoftmaxForwardKernel::wgmma_pipelined) {
    if (o_part) launch_fwd_pipe<CAUSAL, true>(q, k, v, d, qm, km, o_part, lse, o_out, sl2, s, docs...);
    else launch_fwd_pipe<CAUSAL, false>(q, k, v, d, qm, km, o_part, lse, o_out, sl2, s, docs...);
    LAUNCH_CHECK();
    return;
  }
  const dim3 grid(d.batch * d.heads, (d.q_rows + kFwdBM - 1) / kFwdBM);
  const int smem = fwd_smem_bytes<D>();
  if (o_part) {
    auto kern = fwd_kernel<D, CAUSAL, true, Docs...>;
    set_smem(kern, smem);
    kern<<<grid, kFwdThreads, smem, s>>>(q, k, v, d, qm, km, o_part, lse, o_out, sl2, docs...);
  } else {
    auto kern = fwd_kernel<D, CAUSAL, false, Docs...>;
    set_smem(kern, smem);
    kern<<<grid, kFwdThreads, smem, s>>>(q, k, v, d, qm, km, o_part, lse, o_out, sl2, docs...);
  }
  LAUNCH_CHECK();
}

template <int D>
float* launch_delta(const bf16* o, const bf16* dout, const SoftmaxDims& d, cudaStream_t s) {
  const size_t rows = (size_t)d.batch * d.q_rows * d.heads;
  float* delta = static_cast<float*>(delta_workspace().get(std::max<size_t>(rows, 1) * sizeof(float)));
  if (rows > 0) {
    const int wpb = 8;
    delta_kernel<D><<<(unsigned)((rows + wpb - 1) / wpb), wpb * 32, 0, s>>>(o, dout, delta, d.batch, d.q_rows,
                                                                            d.heads);
    LAUNCH_CHECK();
  }
  return delta;
}

// The wgmma backward kernels add dQ with 8-byte atomics (dq_vec4 0): the 16-byte ones were no faster on H100
// (bench/gpu/SOFTMAX_NOTES.md, v6 to run 8).
template <int D, bool CAUSAL, bool KV_BF16, class... Docs>
void launch_bwd(SoftmaxBackwardKernel kernel, const bf16* q, const bf16* k, const bf16* v, const float* lse,
                const bf16* dout, const float* delta, const SoftmaxDims& d, const PieceMap& qm, const PieceMap& km,
                float* dq_acc, float* dk_acc, float* dv_acc, bf16* dk_out, bf16* dv_out, cudaStream_t s,
                Docs... docs) {
  const dim3 grid(d.batch * d.kv_heads, (d.k_rows + kBwdBN - 1) / kBwdBN);
  const float scale = 1.f / std::sqrt((float)D);
  if (D == 128 && kernel == SoftmaxBackwardKernel::warp_specialized) {
    CUtensorMap mq, mdo, mk, mv, mdq;
    if (make_backward_maps(&mq, &mdo, &mk, &mv, q, dout, k, v, d) &&
        make_dq_acc_map(&mdq, dq_acc, d.batch, d.q_rows, d.heads)) {
      auto kw = bwd_ws_kernel<CAUSAL, KV_BF16, Docs...>;
      set_smem(kw, wsb_smem_bytes());
      kw<<<grid, kWsThreads, wsb_smem_bytes(), s>>>(mq, mdo, mk, mv, mdq, lse, delta, d, qm, km, dk_acc, dv_acc,
                                                    dk_out, dv_out, scale, scale * kLog2e, docs...);
      LAUNCH_CHECK();
      return;
    }
    kernel = SoftmaxBackwardKernel::wgmma;
  }
  if (D == 128 && kernel == SoftmaxBackwardKernel::wgmma) {
    auto kw = bwd_wgmma_kernel<CAUSAL, KV_BF16, Docs...>;
    set_smem(kw, wgb_smem_bytes());
    kw<<<grid, kBwdThreads, wgb_smem_bytes(), s>>>(q, k, v, lse, dout, delta, d, qm, km, dq_acc, dk_acc, dv_acc,
                                                   dk_out, dv_out, scale, scale * kLog2e, 0, docs...);
    LAUNCH_CHECK();
    return;
  }
  const int smem = bwd_smem_bytes<D>();
  auto kern = bwd_kernel<D, CAUSAL, KV_BF16, Docs...>;
  set_smem(kern, smem);
  kern<<<grid, kBwdThreads, smem, s>>>(q, k, v, lse, dout, delta, d, qm, km, dq_acc, dk_acc, dv_acc, dk_out, dv_out,
                                       scale, scale * kLog2e, docs...);
  LAUNCH_CHECK();
}

// The public functions below with the kernel named (the harness in bench/gpu/ checks the fallbacks this way).
// docs.any(): the document-masked kernels (docs' arrays read at the maps' global positions).
inline void block_forward(SoftmaxForwardKernel kernel, const bf16* q, const bf16* k, const bf16* v,
                          const SoftmaxDims& d, const PieceMap& qmap, const PieceMap& kmap, bool causal,
                          float* o_part, float* lse, bf16* o_out, cudaStream_t stream,
                          const Documents& docs = Documents{}) {
  check_dims(d, "softmax_block_forward");
  if ((o_part == nullptr) == (o_out == nullptr)) {
    std::fprintf(stderr, "softmax_block_forward: exactly one of o_part and o_out must be given\n");
    std::exit(3);
  }
  if (d.q_rows == 0) return;
  check_docs(docs, d, qmap, kmap, "softmax_block_forward");
  with_head_dim(d.head_dim, [&](auto D) {
    auto run = [&](auto... dc) {
      if (causal) launch_fwd<D, true>(kernel, q, k, v, d, qmap, kmap, o_part, lse, o_out, stream, dc...);
      else launch_fwd<D, false>(kernel, q, k, v, d, qmap, kmap, o_part, lse, o_out, stream, dc...);
    };
    if (!docs.any()) run();  // instantiated first, so the kernels without documents compile as they always did
    else run(docs);
  });
}

inline void block_backward(SoftmaxBackwardKernel kernel, const bf16* q, const bf16* k, const bf16* v, const bf16* o,
                           const float* lse, const bf16* dout, const SoftmaxDims& d, const PieceMap& qmap,
                           const PieceMap& kmap, bool causal, float* dq_acc, float* dk_acc, float* dv_acc,
                           cudaStream_t stream, const Documents& docs = Documents{}) {
  check_dims(d, "softmax_block_backward");
  if (d.q_rows == 0 || d.k_rows == 0) return;
  check_docs(docs, d, qmap, kmap, "softmax_block_backward");
  with_head_dim(d.head_dim, [&](auto D) {
    const float* delta = launch_delta<D>(o, dout, d, stream);
    auto run = [&](auto... dc) {
      if (causal)
        launch_bwd<D, true, false>(kernel, q, k, v, lse, dout, delta, d, qmap, kmap, dq_acc, dk_acc, dv_acc, nullptr,
                                   nullptr, stream, dc...);
      else
        launch_bwd<D, false, false>(kernel, q, k, v, lse, dout, delta, d, qmap, kmap, dq_acc, dk_acc, dv_acc,
                                    nullptr, nullptr, stream, dc...);
    };
    if (!docs.any()) run();  // instantiated first, so the kernels without documents compile as they always did
    else run(docs);
  });
}

inline void full_backward(SoftmaxBackwardKernel kernel, const bf16* q, const bf16* k, const bf16* v, const bf16* o,
                          const float* lse, const bf16* dout, const SoftmaxDims& d, bool causal, bf16* dq, bf16* dk,
                          bf16* dv, cudaStream_t stream, const Documents& docs = Documents{}) {
  check_dims(d, "softmax_full_backward");
  if (d.q_rows != d.k_rows) {
    std::fprintf(stderr, "softmax_full_backward: q_rows (%d) must equal k_rows (%d)\n", d.q_rows, d.k_rows);
    std::exit(3);
  }
  if (d.q_rows == 0) return;
  const PieceMap id{0, {0, 0}, {0, 0}, {0, 0}};
  check_docs(docs, d, id, id, "softmax_full_backward");
  const size_t nq = (size_t)d.batch * d.q_rows * d.heads * d.head_dim;
  float* dqw = static_cast<float*>(dq_workspace().get(nq * sizeof(float)));
  CUDA_CHECK(cudaMemsetAsync(dqw, 0, nq * sizeof(float), stream));
  with_head_dim(d.head_dim, [&](auto D) {
    const float* delta = launch_delta<D>(o, dout, d, stream);
    auto run = [&](auto... dc) {
      if (causal)
        launch_bwd<D, true, true>(kernel, q, k, v, lse, dout, delta, d, id, id, dqw, nullptr, nullptr, dk, dv, stream,
                                  dc...);
      else
        launch_bwd<D, false, true>(kernel, q, k, v, lse, dout, delta, d, id, id, dqw, nullptr, nullptr, dk, dv,
                                   stream, dc...);
    };
    if (!docs.any()) run();  // instantiated first, so the kernels without documents compile as they always did
    else run(docs);
  });
  const size_t n4 = nq / 4;
  f32_to_bf16_kernel<<<(unsigned)((n4 + 255) / 256), 256, 0, stream>>>(dqw, dq, n4);
  LAUNCH_CHECK();
}

}  // namespace smx

// docs (optional): packed documents of the rows' global positions (types.cuh); docs.any() false: none.
void softmax_block_forward(const bf16* q, const bf16* k, const bf16* v, const SoftmaxDims& d,
                           const PieceMap& qmap, const PieceMap& kmap, bool causal, float* o_part, float* lse,
                           bf16* o_out, cudaStream_t stream, const Documents& docs = Documents{}) {
  smx::block_forward(smx::default_forward_kernel(d.head_dim), q, k, v, d, qmap, kmap, causal, o_part, lse, o_out,
                     stream, docs);
}

void softmax_block_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* o, const float* lse,
                            const bf16* dout, const SoftmaxDims& d, const PieceMap& qmap, const PieceMap& kmap,
                            bool causal, float* dq_acc, float* dk_acc, float* dv_acc, cudaStream_t stream,
                            const Documents& docs = Documents{}) {
  smx::block_backward(smx::default_backward_kernel(d.head_dim), q, k, v, o, lse, dout, d, qmap, kmap, causal, dq_acc,
                      dk_acc, dv_acc, stream, docs);
}

void softmax_full_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* o, const float* lse,
                           const bf16* dout, const SoftmaxDims& d, bool causal, bf16* dq, bf16* dk, bf16* dv,
                           cudaStream_t stream, const Documents& docs = Documents{}) {
  smx::full_backward(smx::default_backward_kernel(d.head_dim), q, k, v, o, lse, dout, d, causal, dq, dk, dv, stream,
                     docs);
}

// The program's calls (kernels.h): the same, operands as one named struct (attention_args.cuh).
void softmax_block_forward(const SoftmaxBlockArgs& a, const SoftmaxDims& d, cudaStream_t s) {
  softmax_block_forward(a.q, a.k, a.v, d, a.q_map, a.k_map, a.causal, a.o, a.lse, a.o_out, s, a.docs);
}

void softmax_block_backward(const SoftmaxBlockBackwardArgs& a, const SoftmaxDims& d, cudaStream_t s) {
  softmax_block_backward(a.q, a.k, a.v, a.o, a.lse, a.dout, d, a.q_map, a.k_map, a.causal, a.dq, a.dk, a.dv, s,
                         a.docs);
}

}  // namespace lasp
