// Linear attention kernels for one piece of a rank's tokens (the chunk algorithm of ALGORITHMS.md).
//
// What is computed. Per (batch, head), rows i, j of one piece of C tokens, decay lam in (0, 1] per head:
//   causal intra   o_i  = sum_{j<=i} lam^(i-j) (q_i . k_j) v_j      (token-exact mask, no 64-row leaks)
//   state          M    = sum_j lam^(C-1-j) k_j^T v_j               (fp32 d x d, what LASP-2 gathers)
//   inter          o_i += lam^(i+1) q_i P                           (P: the prefix of earlier pieces)
// and the backward of each. Activations are bf16 [batch][tokens][heads][d], states fp32 [batch][heads][d][d].
//
// Design choices (numbers are for the target case: 16 heads x 128, 16K..64K tokens, one H100):
// - Bandwidth, not arithmetic, bounds these kernels: a pass over one activation tensor moves 2*N*H*d bytes
//   while the 64-token chunk algorithm does ~6*d FLOPs per byte moved. So every kernel streams its tiles
//   through shared memory once with cp.async (16-byte, coalesced, 2-3 stages deep) and keeps states on chip.
// - No per-64-token-block state is ever written to HBM. A piece is cut into segments (a few per head, so
//   that batch*heads*segments fills the 132 SMs once); a first kernel computes each segment's decayed state
//   (K^T V of the segment) into a small fp32 workspace, a scan turns those into exclusive prefixes (the same
//   recurrence LASP-2 uses across ranks: P_{s+1} = lam^len P_s + M_s), and one fused kernel per segment walks
//   its 64-token blocks in order with the running state in registers, computing the intra-block product and
//   the inter-block term Q S together. The backward walks twice: forward for dq (state V^T K), backward for
//   dk and dv together (one suffix state R = sum lam^.. q^T do serves both).
// - Tensor cores through mma.sync m16n8k16 (bf16 in, fp32 accumulate) fed by ldmatrix from XOR-swizzled
//   tiles (conflict-free, 16-byte aligned for cp.async). The running state lives in the accumulator layout of
//   S^T; that layout is exactly the B-operand layout of S, so Q S needs no shared-memory round trip.
//   One warp owns 16 columns of the state, so a CTA has d/16 warps (8 for d=128, 4 for d=64).
// - Precision: states and every accumulation are fp32. The walk feeds its running state to the tensor cores
//   as bf16 (like the 64x64 score tile); the inter kernels, which are memory-bound, split P into bf16 hi + lo
//   parts and do two products, which keeps P's 16 leading bits (fp32-grade arithmetic at no extra time).
// - Decay powers are exp2f(n * log2(lam)) for the exact exponent n (never a product of powers, never a
//   division), so lam^n for n up to 10^6 and beyond underflows cleanly to 0 and never overflows to inf/NaN.
// - Workspace (segment states, a few MB) comes from the stream-ordered allocator (cudaMallocAsync and
//   cudaFreeAsync on the caller's stream): no API change, safe when pieces run on several streams, and the
//   pool keeps the memory, so after the first step the allocation costs about a microsecond.
// - Host launchers are asynchronous on the given stream and check every launch. The file includes only the
//   CUDA toolkit; it uses types.cuh for LinearDims and Piece when that file sits beside it. Like model.cuh,
//   the definitions are not `inline`: include this file in one translation unit (kernels.cu).
// - Measured (H100 SXM, 16 heads x 128, 64K tokens, bench/results/2026-11-26-linear-kernels-h100.md): every
//   kernel streams at 2.5-2.8 TB/s of the 3.0 TB/s a device copy reaches, so the API's own traffic is the
//   limit: the inter calls re-read and re-write whole activation tensors, and each walk re-reads k, v (or
//   q, do) once more for its segment states. linear_forward_fused / linear_backward_fused (end of file) take
//   P and G up front and save the inter passes (-35% time for the per-rank forward + backward).
// - Shared segment states (overloads at the end of the file): linear_state / linear_grad_state can leave their
//   per-segment aggregates in a caller-owned fp32 workspace (linear_state_workspace_bytes), and the walks of
//   linear_intra, linear_intra_backward and the fused pair then start from them instead of re-reading k, v
//   (or q, do): the forward's (k, v) aggregates serve the forward walk and, transposed, the backward's dq
//   walk; the (q, do) ones the dk/dv walk. Both sides cut the piece by one plan (plan_shared).
// - Packed documents (the Args calls' `docs`, `position`; docs/DOCUMENTS.md "Inside a piece", "Across pieces"):
//   key j reaches query i iff no document ends in [j, i-1] (j >= first[i], iff last[j] >= i), a decay of 0
//   across an end. Every kernel that needs it takes a template bool DOCS; without documents the DOCS = false
//   instantiations are today's code, chosen on the host, and the Args calls then run exactly the old path.
//   With them: the score tiles get the same-document mask; a state is kept at a block (or segment) boundary
//   e as "the tokens whose document continues past e", so it restarts (factor 0 instead of lam^len) after a
//   block or segment that holds an end and keeps only the tokens after that end (forward, last[j] >= e), or
//   the queries up to its first end (reverse, first[i] <= e); a row reads it only when its document crosses e.
//   The scans become affine the same way, the state from other ranks (P, G) enters only where no end lies
//   between the piece's edge and the segment, and the inter kernels zero the rows the contract masks. The
//   per-block tests read first/last at the block's edges (uniform over the CTA; block_reach, block_tail,
//   block_head), the score tiles first[i] per row; the dk/dv walk, whose registers are full, stages last[]
//   of its block with the tiles, the forward walk first[] and the two edge ints the same way (no global load
//   left between its block's __syncthreads and the products), and the segment-state kernel zeroes the masked
//   token rows of its staged tile (only at a block with an end) so that its MMA loop stays as it is. Pieces
//   are whole 64-token blocks (check_piece), so no block is ever partial.
// - Bidirectional layers with documents (lam = 1; docs/DOCUMENTS.md "Bidirectional linear attention (lam = 1)"):
//   a row sees its whole document inside the piece, B(x, y, z)_i = sum_{j same doc} (x_i . y_j) z_j,
//   computed as the causal document walk above (j <= i, diagonal included) followed by walk_reverse_kernel, its
//   mirror (j > i), which adds into the same output. The state from other pieces comes in two parts: `p` /
//   `before` (the earlier pieces' tails) reach the rows of the piece's first document (i <= f: first[i] <=
//   position), `after` / `g` (the later pieces' heads) the rows of its last one (i > l: last[i] >= position + C);
//   the latter is fused into the reverse walk as its starting suffix, the former is an inter pass (apply mode 3).
//   The state call adds the head (first document's part) beside m, the grad-state call the tail beside dm. The
//   document-free kernels (DOCS = false) compile to the same PTX as before, and so do the causal DOCS ones except
//   apply_state_kernel's, which gained mode 3 (one more comparison at the CTA's start).
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <type_traits>

#include "types.cuh"
#include "attention_args.cuh"
#include "check.cuh"
#include "mma.cuh"

namespace lasp {
namespace detail {

using namespace ptx;  // smem_addr, ldsm4, ldsm4t, mma, pack2, swz (mma.cuh)

constexpr int kBlock = 64;  // tokens per block of the chunk algorithm

// ---------------------------------------------------------------------------------------------------------
// PTX helpers
// ---------------------------------------------------------------------------------------------------------
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(smem)), "l"(gmem));
}
// 4 bytes (the documents' int rows, which need no 16-byte alignment).
__device__ __forceinline__ void cp_async4(void* smem, const void* gmem) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(smem_addr(smem)), "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
// Two packed bf16 values, each scaled in fp32.
__device__ __forceinline__ uint32_t scale2(uint32_t x, float s0, float s1) {
  float2 f = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&x));
  return pack2(f.x * s0, f.y * s1);
}

// ---------------------------------------------------------------------------------------------------------
// Shared-memory tiles, swizzled as swz<LD> (mma.cuh) lays them out.
// ---------------------------------------------------------------------------------------------------------
// Lane address for ldmatrix.x4, pattern 1: a 16x16 tile at (r0, c0) with lanes 0-15 on rows r0..r0+15 at
// column c0 and lanes 16-31 at c0+8. Non-transposed it gives an A fragment of a [m][k] tile; transposed
// it gives the B fragments of two n8 tiles of a [k][n] tile.
template <int LD>
__device__ __forceinline__ uint32_t frag_p1(const __nv_bfloat16* tile, int r0, int c0, int lane) {
  return smem_addr(tile + swz<LD>(r0 + (lane & 15), c0 + ((lane >> 4) << 3)));
}
// Pattern 2: lanes 0-7 rows r0.., col c0; 8-15 rows r0.., col c0+8; 16-23 rows r0+8.., col c0; 24-31 rows
// r0+8.., col c0+8. Non-transposed it gives the B fragments of two n8 tiles of a [n][k] tile (r0 = n0);
// transposed it gives an A fragment of a [k][m] tile (r0 = k0, c0 = m0).
template <int LD>
__device__ __forceinline__ uint32_t frag_p2(const __nv_bfloat16* tile, int r0, int c0, int lane) {
  return smem_addr(tile + swz<LD>(r0 + (lane & 7) + ((lane >> 4) << 3), c0 + (((lane >> 3) & 1) << 3)));
}

// Copy 64 rows x D of one head (row pitch `stride` elements) into a swizzled tile, 16 bytes per cp.async.
template <int D, int NT>
__device__ __forceinline__ void load_tile(__nv_bfloat16* s, const __nv_bfloat16* g, size_t stride, int tid) {
  constexpr int CH = D / 8;
  static_assert((kBlock * CH) % NT == 0, "tile chunks must divide among the threads");
#pragma unroll
  for (int it = 0; it < kBlock * CH / NT; ++it) {
    int i = tid + it * NT, r = i / CH, c = (i % CH) * 8;
    cp_async16(s + swz<D>(r, c), g + r * stride + c);
  }
}
template <int D, int NT>
__device__ __forceinline__ void store_tile(__nv_bfloat16* g, const __nv_bfloat16* s, size_t stride, int tid) {
  constexpr int CH = D / 8;
#pragma unroll
  for (int it = 0; it < kBlock * CH / NT; ++it) {
    int i = tid + it * NT, r = i / CH, c = (i % CH) * 8;
    *reinterpret_cast<int4*>(g + r * stride + c) = *reinterpret_cast<const int4*>(s + swz<D>(r, c));
  }
}

// log2 of the head's decay; 0 means no decay (lam == nullptr or lam == 1).
__device__ __forceinline__ float head_log2_decay(const float* lam, int h) { return lam ? log2f(lam[h]) : 0.f; }
// lam^n, computed from the exact exponent: underflows to 0 for huge n, never inf or NaN (lam in (0, 1]).
__device__ __forceinline__ float decay_pow(float log2lam, float n) { return exp2f(n * log2lam); }

// ---------------------------------------------------------------------------------------------------------
// Warp-level pieces of the walks (and the segment states), written once. A thread holds rows g, g + 8 and
// columns 2tq, 2tq + 1 of each m16n8 accumulator (g = lane / 4, tq = lane % 4); a running state S^T (this
// warp's 16 rows x D) is float[D / 8][4]. Each kernel compiles to the same PTX as with these pieces written
// out in place (bench/gpu/compare-kernel-ptx.sh); a piece that changed any kernel's code stayed inline.
// ---------------------------------------------------------------------------------------------------------
template <int N>
__device__ __forceinline__ void zero_acc(float (&a)[N][4]) {
#pragma unroll
  for (int t = 0; t < N; ++t) a[t][0] = a[t][1] = a[t][2] = a[t][3] = 0.f;
}
template <int N>
__device__ __forceinline__ void scale_acc(float (&a)[N][4], float c) {
#pragma unroll
  for (int t = 0; t < N; ++t)
#pragma unroll
    for (int e = 0; e < 4; ++e) a[t][e] *= c;
}
// The token (k index) of element e of this thread's A fragment in k-chunk kc: 16kc + 2tq + {0, 1, 8, 9}.
__device__ __forceinline__ int a_token(int kc, int tq, int e) { return 16 * kc + 2 * tq + (e & 1) + ((e >> 1) << 3); }
// A weight per token on an A fragment whose k index is the token (w[e] for a_token(kc, tq, e)): diag(w) ahead of
// the product, in the bf16 operand, so the MMA loop stays as it is.
__device__ __forceinline__ void scale_a_tokens(uint32_t (&a)[4], const float (&w)[4]) {
  a[0] = scale2(a[0], w[0], w[1]);
  a[1] = scale2(a[1], w[0], w[1]);
  a[2] = scale2(a[2], w[2], w[3]);
  a[3] = scale2(a[3], w[2], w[3]);
}
// Two fp32 values as a bf16 pair at (r, c), (r, c + 1) of a swizzled tile.
template <int LD>
__device__ __forceinline__ void put_pair(__nv_bfloat16* s, int r, int c, float lo, float hi) {
  *reinterpret_cast<uint32_t*>(s + swz<LD>(r, c)) = pack2(lo, hi);
}
// The state S^T in accumulator layout from an fp32 [D][D] buffer M = S: S^T[vs + g (+8)][8t + 2tq (+1)].
template <int D>
__device__ __forceinline__ void load_state(float (&S)[D / 8][4], const float* M, int vs, int g, int tq) {
#pragma unroll
  for (int t = 0; t < D / 8; ++t) {
    int kr = 8 * t + 2 * tq;
    S[t][0] = M[kr * D + vs + g];
    S[t][1] = M[(kr + 1) * D + vs + g];
    S[t][2] = M[kr * D + vs + g + 8];
    S[t][3] = M[(kr + 1) * D + vs + g + 8];
  }
}
// One warp's 16 x CW piece of a 64 x 64 score tile: acc = A[r0..r0+15] B[c0..c0+CW-1]^T over the D columns of
// two [64][D] tiles (B's rows are the n index, so both fragments load untransposed).
template <int D, int CW>
__device__ __forceinline__ void score_mma(float (&acc)[CW / 8][4], const __nv_bfloat16* ta, const __nv_bfloat16* tb,
                                          int r0, int c0, int lane) {
  zero_acc(acc);
#pragma unroll
  for (int kc = 0; kc < D / 16; ++kc) {
    uint32_t a[4];
    ldsm4(a, frag_p1<D>(ta, r0, 16 * kc, lane));
#pragma unroll
    for (int np = 0; np < CW / 16; ++np) {
      uint32_t bb[4];
      ldsm4(bb, frag_p2<D>(tb, c0 + 16 * np, 16 * kc, lane));
      mma(acc[2 * np], a, bb[0], bb[1]);
      mma(acc[2 * np + 1], a, bb[2], bb[3]);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Packed documents (types.cuh's Documents). A DocRow is one batch row's arrays, indexed by global position.
// For the 64-token block of global positions [g0, g0 + 64) (blocks never cross a piece's end):
//   block_reach(g0)  last[g0] - g0: local rows ii <= it have first[i] <= g0 (no end in [g0, i-1]); it is
//                    >= 64 iff no end lies in the block, so `< 64` means a state carried across it restarts
//   block_tail(g0)   the first local row jj with last[j] >= g0 + 64 (no end in [j, g0 + 63]), 64 if none
//   block_head(g0)   last[g0 - 1] - g0: local rows ii <= it have first[i] < g0 (no end in [g0 - 1, i - 1]),
//                    -1 at the sequence's start (no state from before position 0)
// ---------------------------------------------------------------------------------------------------------
struct DocRow {
  const int* ends;
  const int* first;
  const int* last;
};
__device__ __forceinline__ DocRow doc_row(const Documents& docs, int b) {
  const size_t o = (size_t)b * docs.seq_len;
  return {docs.ends + o, docs.first + o, docs.last + o};
}
__device__ __forceinline__ int block_reach(const DocRow& r, int g0) { return __ldg(r.last + g0) - g0; }
__device__ __forceinline__ int block_tail(const DocRow& r, int g0) {
  // An end on the block's last token cuts everything; else first[g0 + 63] is one past the block's last end.
  return __ldg(r.ends + g0 + kBlock - 1) != 0 ? kBlock : max(__ldg(r.first + g0 + kBlock - 1) - g0, 0);
}
__device__ __forceinline__ int block_head(const DocRow& r, int g0) {
  return g0 > 0 ? __ldg(r.last + g0 - 1) - g0 : -1;
}

// ---------------------------------------------------------------------------------------------------------
// Segment states: M_s = sum_{j in segment s} w_j x_j^T y_j (fp32 [D][D], M[x][y]), w_j = lam^(end-1-j)
// (forward, the state that flows to later tokens) or lam^(j-start+1) (reverse, the state that flows back to
// earlier tokens; the +1 makes the piece's total exactly dM = sum_i lam^(i+1) q_i^T do_i). Warp w owns M^T[16w..16w+15][0..D) as mma accumulators; per 64-token block it adds
// Y^T diag(w) X (the weights ride on the A fragments) after scaling by lam^64.
// grid (count, batch*heads); segment index = seg_first + blockIdx.x; output slot (bh * out_nseg + seg).
// DOCS: the aggregate of what crosses the segment's edge. Forward: only tokens j with last[j] >= the segment's
// end (after its last end); reverse: only queries i with first[i] <= its start (up to its first end). Per
// block that is a restart (factor 0) at a block with an end and a token mask (block_tail / block_reach).
// ---------------------------------------------------------------------------------------------------------
template <int D, bool REVERSE, bool DOCS>
__global__ void __launch_bounds__(D * 2, 2)
    segment_state_kernel(const __nv_bfloat16* __restrict__ x, const __nv_bfloat16* __restrict__ y,
                         float* __restrict__ out, int T, int H, int piece_off, int piece_len, int seg_len,
                         int seg_first, int out_nseg, const float* __restrict__ lam, float out_scale_pow,
                         Documents docs, int position) {
  constexpr int NW = D / 16, NT = NW * 32, STAGES = 3, TILE = kBlock * D;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __nv_bfloat16* sx = reinterpret_cast<__nv_bfloat16*>(smem_raw);
  __nv_bfloat16* sy = sx + STAGES * TILE;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, tq = lane & 3;
  const int bh = blockIdx.y, b = bh / H, h = bh % H;
  const int seg = seg_first + blockIdx.x;
  const int start = seg * seg_len, nb = min(seg_len, piece_len - start) / kBlock;
  const size_t stride = (size_t)H * D;
  const __nv_bfloat16* xg = x + (((size_t)b * T + piece_off + start) * H + h) * D;
  const __nv_bfloat16* yg = y + (((size_t)b * T + piece_off + start) * H + h) * D;
  const float l2 = head_log2_decay(lam, h);
  const bool decay = l2 != 0.f;
  const float lam64 = decay_pow(l2, 64.f);
  const int ys = warp * 16;

  // Weights of this thread's A-fragment columns (tokens 16kc + 2tq + {0, 1, 8, 9}).
  float wt[4][4];
#pragma unroll
  for (int kc = 0; kc < 4; ++kc)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      int jj = a_token(kc, tq, e);
      wt[kc][e] = decay_pow(l2, (float)(REVERSE ? jj + 1 : kBlock - 1 - jj));
    }

  float acc[D / 8][4];
  zero_acc(acc);
  DocRow dr{};
  if constexpr (DOCS) dr = doc_row(docs, b);

  // Reverse segments walk their blocks last to first so that the running sum needs only lam^64 steps.
  auto load = [&](int step, int stage) {
    int blk = REVERSE ? nb - 1 - step : step;
    load_tile<D, NT>(sx + stage * TILE, xg + (size_t)blk * kBlock * stride, stride, tid);
    load_tile<D, NT>(sy + stage * TILE, yg + (size_t)blk * kBlock * stride, stride, tid);
  };
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < nb) load(s, s);
    cp_async_commit();
  }
  for (int step = 0; step < nb; ++step) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();  // this block's tiles have landed; everyone is done with the stage refilled below
    {
      int nxt = step + STAGES - 1;
      if (nxt < nb) load(nxt, nxt % STAGES);
      cp_async_commit();
    }
    const __nv_bfloat16* tx = sx + (step % STAGES) * TILE;
    const __nv_bfloat16* ty = sy + (step % STAGES) * TILE;
    if constexpr (DOCS) {
      // Forward: only tokens jj >= lo count (their document crosses the block's end); reverse: jj <= hi (their
      // document began at or before the block's start). Both are the whole block unless an end lies in it; then
      // the sum restarts and the other rows of this stage's Y tile are zeroed (rare, and it keeps the MMA loop
      // and its registers as they are without documents; the CTA takes the branch together).
      const int g0 = position + start + (REVERSE ? nb - 1 - step : step) * kBlock;
      int lo = 0, hi = kBlock - 1;
      if constexpr (REVERSE) hi = block_reach(dr, g0);  // < 64 iff an end lies in the block (63: on its last token)
      else lo = block_tail(dr, g0);                      // > 0 iff an end lies in the block
      if (REVERSE ? hi < kBlock : lo > 0) {
        constexpr int CH = D / 8;
        __nv_bfloat16* yz = sy + (step % STAGES) * TILE;
#pragma unroll
        for (int it = 0; it < kBlock * CH / NT; ++it) {
          const int i = tid + it * NT, r = i / CH, c = (i % CH) * 8;
          if (r < lo || r > hi) *reinterpret_cast<int4*>(yz + swz<D>(r, c)) = make_int4(0, 0, 0, 0);
        }
        zero_acc(acc);
        __syncthreads();  // the zeroed rows are visible to every warp's ldmatrix
      } else if (decay) {
        scale_acc(acc, lam64);
      }
    } else if (decay) {
      scale_acc(acc, lam64);
    }
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) {
      uint32_t a[4];
      ldsm4t(a, frag_p2<D>(ty, 16 * kc, ys, lane));  // A = Y^T slice: [m = y dim][k = token]
      if (decay) scale_a_tokens(a, wt[kc]);
#pragma unroll
      for (int np = 0; np < D / 16; ++np) {
        uint32_t bb[4];
        ldsm4t(bb, frag_p1<D>(tx, 16 * kc, 16 * np, lane));  // B = X: [k = token][n = x dim]
        mma(acc[2 * np], a, bb[0], bb[1]);
        mma(acc[2 * np + 1], a, bb[2], bb[3]);
      }
    }
  }
  cp_async_wait<0>();

  const float sc = out_scale_pow != 0.f ? decay_pow(l2, out_scale_pow) : 1.f;
  float* o = out + ((size_t)bh * out_nseg + seg) * D * D;
#pragma unroll
  for (int t = 0; t < D / 8; ++t) {
    int xc = 8 * t + 2 * tq, yr = ys + g;
    o[xc * D + yr] = acc[t][0] * sc;
    o[(xc + 1) * D + yr] = acc[t][1] * sc;
    o[xc * D + yr + 8] = acc[t][2] * sc;
    o[(xc + 1) * D + yr + 8] = acc[t][3] * sc;
  }
}

// In place over ws[bh][nseg][dd]: segment aggregates -> exclusive prefixes (forward: state of all earlier
// tokens at the segment's first token) or exclusive suffixes (reverse: state of all later tokens at the
// segment's end), run = lam^len(s) * run + M_s. With `total`, also total[bh] = lam^total_pow * (all of it);
// then every segment has an aggregate. Without it the last (forward) / first (reverse) segment has none.
// `base` (optional, [bh][D][D], read transposed if base_trans) is the state from outside the piece: the
// prefix of earlier ranks P (forward: segment s gets + lam^start_s P) or their gradient G (reverse: + lam^(C -
// end_s) G). That turns the walk's running state into the complete one and fuses the inter term.
// DOCS (segment_state_kernel's masked aggregates): the carry across a segment holding an end is 0, not
// lam^len; base reaches segment s only if no end lies between the piece's edge and the segment (forward: in
// [position - 1, start_s - 1], so P reaches only rows with first[i] < position; reverse: in [end_s, position +
// C - 1], so G reaches only keys with last[j] >= position + C); and the reverse total dM, which counts the
// queries with first[i] <= position, keeps them only if token position - 1 is no end (first[i] < position).
template <bool DOCS>
__global__ void segment_scan_kernel(float* __restrict__ ws, int nseg, int seg_len, int piece_len, int dd, int H,
                                    const float* __restrict__ lam, bool reverse, bool write_prefix,
                                    float* __restrict__ total, float total_pow, const float* __restrict__ base,
                                    bool base_trans, int D, Documents docs, int position) {
  const int bh = blockIdx.y, h = bh % H;
  const int e4 = blockIdx.x * blockDim.x + threadIdx.x;
  if (e4 * 4 >= dd) return;
  const float l2 = head_log2_decay(lam, h);
  DocRow dr{};
  if constexpr (DOCS) dr = doc_row(docs, bh / H);
  float4* seg = reinterpret_cast<float4*>(ws + (size_t)bh * nseg * dd) + e4;
  const size_t step = dd / 4;
  float4 bv = make_float4(0.f, 0.f, 0.f, 0.f);
  if (base != nullptr) {
    const float* bp = base + (size_t)bh * dd;
    const int r = (e4 * 4) / D, c = (e4 * 4) % D;
    bv = base_trans ? make_float4(bp[c * D + r], bp[(c + 1) * D + r], bp[(c + 2) * D + r], bp[(c + 3) * D + r])
                    : reinterpret_cast<const float4*>(bp)[e4];
  }
  float4 run = make_float4(0.f, 0.f, 0.f, 0.f);
  for (int i = 0; i < nseg; ++i) {
    int s = reverse ? nseg - 1 - i : i;
    const int len = min(seg_len, piece_len - s * seg_len);
    float d = decay_pow(l2, (float)len);
    if constexpr (DOCS) {
      const int g0 = position + s * seg_len;
      if (__ldg(dr.last + g0) < g0 + len) d = 0.f;  // an end in the segment: nothing carries across it
    }
    bool has = total != nullptr || (reverse ? s > 0 : s < nseg - 1);
    float4 m = has ? seg[s * step] : make_float4(0.f, 0.f, 0.f, 0.f);
    if (write_prefix) {
      float w = base == nullptr ? 0.f : decay_pow(l2, (float)(reverse ? piece_len - (s * seg_len + len) : s * seg_len));
      if constexpr (DOCS) {
        if (base != nullptr) {
          const int gs = position + s * seg_len, ge = gs + len, gend = position + piece_len;
          const bool reaches = reverse ? ge == gend || __ldg(dr.last + ge) >= gend
                                       : position > 0 && __ldg(dr.last + position - 1) >= gs;
          if (!reaches) w = 0.f;
        }
      }
      seg[s * step] = make_float4(run.x + w * bv.x, run.y + w * bv.y, run.z + w * bv.z, run.w + w * bv.w);
    }
    run = make_float4(d * run.x + m.x, d * run.y + m.y, d * run.z + m.z, d * run.w + m.w);
  }
  if (total) {
    float sc = total_pow != 0.f ? decay_pow(l2, total_pow) : 1.f;
    if constexpr (DOCS) {
      // The run counts queries with first[i] <= position; dM wants first[i] < position: none of them if token
      // position - 1 ends a document (or there is none). The forward total is exactly M (last[j] >= end).
      if (reverse && (position == 0 || __ldg(dr.ends + position - 1) != 0)) sc = 0.f;
    }
    reinterpret_cast<float4*>(total + (size_t)bh * dd)[e4] =
        make_float4(sc * run.x, sc * run.y, sc * run.z, sc * run.w);
  }
}

// Prefixes (forward) or suffixes (reverse) of groups of segments, from aggregates a state call left behind.
// agg[bh][nf][dd] holds every fine segment's aggregate (fine segment f = tokens [f*fine_len, ...), the last
// possibly shorter; forward weights lam^(end_f-1-j), reverse lam^(j-start_f+1)), and is only read. A walk
// segment s is the fine segments [G s, G s + G): pre[bh][s] gets the state of all earlier tokens at its first
// token (forward) or of all later tokens at its end (reverse), plus the weighted `base` as in
// segment_scan_kernel. Both layouts stay the aggregates' own (base_trans reads base transposed).
// DOCS: as segment_scan_kernel (carry 0 across a fine segment with an end; base gated per walk segment).
template <bool DOCS>
__global__ void group_scan_kernel(const float* __restrict__ agg, int nf, int fine_len, int group,
                                  float* __restrict__ pre, int nw, int piece_len, int dd, int H,
                                  const float* __restrict__ lam, bool reverse, const float* __restrict__ base,
                                  bool base_trans, int D, Documents docs, int position) {
  const int bh = blockIdx.y, h = bh % H;
  const int e4 = blockIdx.x * blockDim.x + threadIdx.x;
  if (e4 * 4 >= dd) return;
  const float l2 = head_log2_decay(lam, h);
  DocRow dr{};
  if constexpr (DOCS) dr = doc_row(docs, bh / H);
  const float4* a = reinterpret_cast<const float4*>(agg + (size_t)bh * nf * dd) + e4;
  float4* o = reinterpret_cast<float4*>(pre + (size_t)bh * nw * dd) + e4;
  const size_t step = dd / 4;
  const int walk_len = group * fine_len;
  float4 bv = make_float4(0.f, 0.f, 0.f, 0.f);
  if (base != nullptr) {
    const float* bp = base + (size_t)bh * dd;
    const int r = (e4 * 4) / D, c = (e4 * 4) % D;
    bv = base_trans ? make_float4(bp[c * D + r], bp[(c + 1) * D + r], bp[(c + 2) * D + r], bp[(c + 3) * D + r])
                    : reinterpret_cast<const float4*>(bp)[e4];
  }
  float4 run = make_float4(0.f, 0.f, 0.f, 0.f);
  // Four aggregates in flight at a time (the loop is latency-bound otherwise). The last one folded in (the
  // last fine segment forward, the first reverse) feeds nothing; it is read and added all the same.
  for (int i0 = 0; i0 < nf; i0 += 4) {
    float4 mm[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int i = i0 + u, f = reverse ? nf - 1 - i : i;
      mm[u] = i < nf ? __ldg(a + (size_t)f * step) : make_float4(0.f, 0.f, 0.f, 0.f);
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int i = i0 + u;
      if (i >= nf) break;
      const int f = reverse ? nf - 1 - i : i;
      const int sw = f / group;
      const bool write = reverse ? (f % group == group - 1 || f == nf - 1) : f % group == 0;
      if (write) {
        float w = 0.f;
        if (base != nullptr)
          w = decay_pow(l2, (float)(reverse ? piece_len - min((sw + 1) * walk_len, piece_len) : sw * walk_len));
        if constexpr (DOCS) {
          if (base != nullptr) {  // base reaches walk segment sw only if no end lies in between
            const int gs = position + sw * walk_len, ge = position + min((sw + 1) * walk_len, piece_len);
            const int gend = position + piece_len;
            const bool reaches = reverse ? ge == gend || __ldg(dr.last + ge) >= gend
                                         : position > 0 && __ldg(dr.last + position - 1) >= gs;
            if (!reaches) w = 0.f;
          }
        }
        o[(size_t)sw * step] = make_float4(run.x + w * bv.x, run.y + w * bv.y, run.z + w * bv.z, run.w + w * bv.w);
      }
      const int flen = min(fine_len, piece_len - f * fine_len);
      float d = decay_pow(l2, (float)flen);
      if constexpr (DOCS) {
        const int g0 = position + f * fine_len;
        if (__ldg(dr.last + g0) < g0 + flen) d = 0.f;  // an end in fine segment f: nothing carries across it
      }
      run = make_float4(d * run.x + mm[u].x, d * run.y + mm[u].y, d * run.z + mm[u].z, d * run.w + mm[u].w);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// The fused forward walk over one segment (also the dq walk of the backward, with q<-do, k<-v, v<-k):
//   per 64-token block starting at row r0, with S = sum_{j<r0 in piece} lam^(r0-1-j) k_j^T v_j on chip:
//   O = (Q K^T o D) V + diag(lam^(ii+1)) Q S,   S <- lam^64 S + K^T diag(lam^(63-jj)) V.
// Warp w owns S^T[16w..16w+15][:] (its 16 columns of S) and the same 16 columns of O; the 64x64 masked
// score tile is computed once by all warps together (warp = 16 rows x 64/(NW/4) columns) through shared
// memory. grid (nseg, batch*heads); prefix[bh][seg] is the segment's exclusive prefix, including the part
// from earlier ranks when the inter term is fused (nullptr: zero).
// DOCS (block at global g0): S holds the tokens j < g0 with last[j] >= g0. The score tile keeps j >= first[i];
// row i reads S only if first[i] < g0 (block_head); then S <- (end in block ? 0 : lam^64 S) + the block's
// tokens jj >= block_tail (their document continues past the block). All of it is read from shared memory:
// first[] of the block's rows and its edge ints ends[g0 + 63], last[g0 - 1] are staged with the tiles
// (2 x 66 ints, 4-byte cp.async like the dk/dv walk's last[]: a row of the arrays need not be 16-byte aligned).
// ---------------------------------------------------------------------------------------------------------
template <int D>
constexpr int walk_forward_smem() {
  return (2 * 3 * kBlock * D + kBlock * kBlock + kBlock * D) * 2;
}
template <int D, bool DOCS>
constexpr int walk_forward_smem_docs() {
  return walk_forward_smem<D>() + (DOCS ? 2 * (kBlock + 2) * (int)sizeof(int) : 0);
}

template <int D, bool DOCS>
__global__ void __launch_bounds__(D * 2, 1)
    walk_forward_kernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
                        const __nv_bfloat16* __restrict__ v, __nv_bfloat16* __restrict__ o,
                        const float* __restrict__ prefix, int T, int H, int piece_off, int piece_len, int seg_len,
                        int nseg, const float* __restrict__ lam, bool prefix_trans, Documents docs, int position) {
  constexpr int NW = D / 16, NT = NW * 32, TILE = kBlock * D;
  constexpr int CW = kBlock * 4 / NW;  // score-tile columns per warp: 32 (d=128) or 64 (d=64)
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __nv_bfloat16* sq = reinterpret_cast<__nv_bfloat16*>(smem_raw);
  __nv_bfloat16* sk = sq + 2 * TILE;
  __nv_bfloat16* sv = sk + 2 * TILE;
  __nv_bfloat16* sa = sv + 2 * TILE;  // [64][64] masked, decayed scores (bf16)
  __nv_bfloat16* so = sa + kBlock * kBlock;
  int* sfirst = reinterpret_cast<int*>(so + TILE);  // DOCS: [2][64] first[] of the staged block's rows
  int* sedge = sfirst + 2 * kBlock;                  // DOCS: [2][2] its ends[g0 + 63], last[g0 - 1]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, tq = lane & 3;
  const int bh = blockIdx.y, b = bh / H, h = bh % H, seg = blockIdx.x;
  const int start = seg * seg_len, nb = min(seg_len, piece_len - start) / kBlock;
  const size_t stride = (size_t)H * D;
  const size_t row0 = (((size_t)b * T + piece_off + start) * H + h) * D;
  const float l2 = head_log2_decay(lam, h);
  const bool decay = l2 != 0.f;
  const float lam64 = decay_pow(l2, 64.f);
  const int vs = warp * 16, rg = warp & 3, cbase = (warp >> 2) * CW;

  float rs[4][2];  // lam^(ii+1) for this thread's output rows ii = 16mt + g (+8)
  float wt[4][4];  // lam^(63-jj) for its A-fragment tokens in the state update
#pragma unroll
  for (int mt = 0; mt < 4; ++mt) {
    rs[mt][0] = decay_pow(l2, (float)(16 * mt + g + 1));
    rs[mt][1] = decay_pow(l2, (float)(16 * mt + g + 9));
  }
#pragma unroll
  for (int kc = 0; kc < 4; ++kc)
#pragma unroll
    for (int e = 0; e < 4; ++e) wt[kc][e] = decay_pow(l2, (float)(kBlock - 1 - a_token(kc, tq, e)));

  float S[D / 8][4];  // S^T[vs + g (+8)][8t + 2tq (+1)]
  if (prefix != nullptr) {
    const float* P = prefix + ((size_t)bh * nseg + seg) * D * D;
    if (prefix_trans) {  // the buffer holds S^T (the dq walk reading the forward's (k, v) states)
#pragma unroll
      for (int t = 0; t < D / 8; ++t) {
        int kr = 8 * t + 2 * tq;
        float2 a = *reinterpret_cast<const float2*>(P + (vs + g) * D + kr);
        float2 c = *reinterpret_cast<const float2*>(P + (vs + g + 8) * D + kr);
        S[t][0] = a.x;
        S[t][1] = a.y;
        S[t][2] = c.x;
        S[t][3] = c.y;
      }
    } else {
      load_state<D>(S, P, vs, g, tq);
    }
  } else {
    zero_acc(S);
  }
  DocRow dr{};
  if constexpr (DOCS) dr = doc_row(docs, b);

  auto load = [&](int blk, int stage) {
    size_t off = row0 + (size_t)blk * kBlock * stride;
    load_tile<D, NT>(sq + stage * TILE, q + off, stride, tid);
    load_tile<D, NT>(sk + stage * TILE, k + off, stride, tid);
    load_tile<D, NT>(sv + stage * TILE, v + off, stride, tid);
    if constexpr (DOCS) {
      // The block's document ints, all inside the piece (last[gb - 1] only after the sequence's start).
      const int gb = position + start + blk * kBlock;
      if (tid < kBlock) cp_async4(sfirst + stage * kBlock + tid, dr.first + gb + tid);
      else if (tid == kBlock) cp_async4(sedge + 2 * stage, dr.ends + gb + kBlock - 1);
      else if (tid == kBlock + 1 && gb > 0) cp_async4(sedge + 2 * stage + 1, dr.last + gb - 1);
    }
  };
  load(0, 0);
  cp_async_commit();
  for (int blk = 0; blk < nb; ++blk) {
    const int cur = blk & 1;
    if (blk + 1 < nb) load(blk + 1, cur ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const __nv_bfloat16* tq_ = sq + cur * TILE;
    const __nv_bfloat16* tk_ = sk + cur * TILE;
    const __nv_bfloat16* tv_ = sv + cur * TILE;
    // DOCS: this block's edges (uniform over the CTA), block_head and block_tail from the staged ints.
    const int* fb = sfirst + cur * kBlock;  // first[] of the block's rows (global positions)
    int g0 = 0, head = 0, tail = 0;
    if constexpr (DOCS) {
      g0 = position + start + blk * kBlock;
      head = g0 > 0 ? sedge[2 * cur + 1] - g0 : -1;
      tail = sedge[2 * cur] != 0 ? kBlock : max(fb[kBlock - 1] - g0, 0);  // > 0 iff an end lies in the block
    }

    // 1. Scores A = (Q K^T) o D for this warp's 16 x CW tile, masked at token granularity, into sa.
    {
      const int r0 = 16 * rg;
      if (cbase <= r0 + 15) {  // the tile has at least one entry on or below the diagonal
        float acc[CW / 8][4];
        score_mma<D, CW>(acc, tq_, tk_, r0, cbase, lane);
        int fi[2] = {0, 0};  // DOCS: first[i] local to the block, for this thread's two rows
        if constexpr (DOCS) {
          fi[0] = fb[r0 + g] - g0;
          fi[1] = fb[r0 + g + 8] - g0;
        }
#pragma unroll
        for (int t = 0; t < CW / 8; ++t)
#pragma unroll
          for (int hh = 0; hh < 2; ++hh) {
            int i = r0 + g + 8 * hh, j = cbase + 8 * t + 2 * tq;
            bool k0 = j <= i, k1 = j + 1 <= i;
            if constexpr (DOCS) {  // same document: j >= first[i]
              k0 = k0 && j >= fi[hh];
              k1 = k1 && j + 1 >= fi[hh];
            }
            float v0 = k0 ? acc[t][2 * hh] * (decay ? decay_pow(l2, (float)(i - j)) : 1.f) : 0.f;
            float v1 = k1 ? acc[t][2 * hh + 1] * (decay ? decay_pow(l2, (float)(i - j - 1)) : 1.f) : 0.f;
            put_pair<kBlock>(sa, i, j, v0, v1);
          }
      }
    }

    // 2. Inter-block term from the running state: O = diag(lam^(ii+1)) Q S[:, vs..vs+15].
    float oacc[4][2][4];
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) oacc[mt][nt][0] = oacc[mt][nt][1] = oacc[mt][nt][2] = oacc[mt][nt][3] = 0.f;
#pragma unroll
    for (int kc = 0; kc < D / 16; ++kc) {
      // The accumulator layout of S^T is the B-fragment layout of S: convert in registers.
      const uint32_t b00 = pack2(S[2 * kc][0], S[2 * kc][1]), b01 = pack2(S[2 * kc + 1][0], S[2 * kc + 1][1]);
      const uint32_t b10 = pack2(S[2 * kc][2], S[2 * kc][3]), b11 = pack2(S[2 * kc + 1][2], S[2 * kc + 1][3]);
#pragma unroll
      for (int mt = 0; mt < 4; ++mt) {
        uint32_t a[4];
        ldsm4(a, frag_p1<D>(tq_, 16 * mt, 16 * kc, lane));
        mma(oacc[mt][0], a, b00, b01);
        mma(oacc[mt][1], a, b10, b11);
      }
    }
    if constexpr (DOCS) {
      // Only rows whose document began before the block read S (rs is 1 without decay).
#pragma unroll
      for (int mt = 0; mt < 4; ++mt) {
        const bool see0 = 16 * mt + g <= head, see1 = 16 * mt + g + 8 <= head;
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
          oacc[mt][nt][0] = see0 ? oacc[mt][nt][0] * rs[mt][0] : 0.f;
          oacc[mt][nt][1] = see0 ? oacc[mt][nt][1] * rs[mt][0] : 0.f;
          oacc[mt][nt][2] = see1 ? oacc[mt][nt][2] * rs[mt][1] : 0.f;
          oacc[mt][nt][3] = see1 ? oacc[mt][nt][3] * rs[mt][1] : 0.f;
        }
      }
    } else if (decay) {
#pragma unroll
      for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
          oacc[mt][nt][0] *= rs[mt][0];
          oacc[mt][nt][1] *= rs[mt][0];
          oacc[mt][nt][2] *= rs[mt][1];
          oacc[mt][nt][3] *= rs[mt][1];
        }
    }
    __syncthreads();  // the score tile is complete

    // 3. Intra-block term: O += A V[:, vs..vs+15], skipping the all-zero tiles above the diagonal.
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) {
      uint32_t bb[4];
      ldsm4t(bb, frag_p1<D>(tv_, 16 * kc, vs, lane));
#pragma unroll
      for (int mt = kc; mt < 4; ++mt) {
        uint32_t a[4];
        ldsm4(a, frag_p1<kBlock>(sa, 16 * mt, 16 * kc, lane));
        mma(oacc[mt][0], a, bb[0], bb[1]);
        mma(oacc[mt][1], a, bb[2], bb[3]);
      }
    }

    // 4. State update: S^T <- lam^64 S^T + V^T diag(lam^(63-jj)) K.
    //    DOCS: S^T <- (end in block ? 0 : lam^64 S^T) + V^T diag([jj >= tail] lam^(63-jj)) K.
    if constexpr (DOCS) {
      if (tail > 0) zero_acc(S);
      else if (decay) scale_acc(S, lam64);
    } else if (decay) {
      scale_acc(S, lam64);
    }
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) {
      uint32_t a[4];
      ldsm4t(a, frag_p2<D>(tv_, 16 * kc, vs, lane));
      if constexpr (DOCS) {
        float w[4];
#pragma unroll
        for (int e = 0; e < 4; ++e) w[e] = a_token(kc, tq, e) >= tail ? wt[kc][e] : 0.f;
        scale_a_tokens(a, w);
      } else if (decay) {
        scale_a_tokens(a, wt[kc]);
      }
#pragma unroll
      for (int np = 0; np < D / 16; ++np) {
        uint32_t bb[4];
        ldsm4t(bb, frag_p1<D>(tk_, 16 * kc, 16 * np, lane));
        mma(S[2 * np], a, bb[0], bb[1]);
        mma(S[2 * np + 1], a, bb[2], bb[3]);
      }
    }

    // 5. Stage O through shared memory for 16-byte coalesced stores.
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
        int r = 16 * mt + g, c = vs + 8 * nt + 2 * tq;
        *reinterpret_cast<uint32_t*>(so + swz<D>(r, c)) = pack2(oacc[mt][nt][0], oacc[mt][nt][1]);
        *reinterpret_cast<uint32_t*>(so + swz<D>(r + 8, c)) = pack2(oacc[mt][nt][2], oacc[mt][nt][3]);
      }
    __syncthreads();
    store_tile<D, NT>(o + row0 + (size_t)blk * kBlock * stride, so, stride, tid);
  }
  cp_async_wait<0>();
}

// ---------------------------------------------------------------------------------------------------------
// The fused backward walk for dk and dv over one segment, last block first, with the suffix state
// R = sum_{i >= e} lam^(i-e+1) q_i^T do_i (e = first row after the block; plus lam^(C-e) G, the gradient
// from later ranks, when that term is fused) on chip:
//   dV = (Q K^T o D)^T dO + diag(lam^(63-jj)) K R,     dK = (dO V^T o D)^T Q + diag(lam^(63-jj)) V R^T,
//   R <- lam^64 R + Q^T diag(lam^(ii+1)) dO.
// (Every exponent is >= 0: lam^(C-e) G stays finite for any lam in (0, 1].)
// Warp w owns R^T[16w..][:] in registers, a bf16 copy of R^T in shared memory serves both products, and the
// two transposed score tiles are built directly (rows j, columns i >= j).
// DOCS (block at global g0; dk_j = sum_{i >= j, first[i] <= j} lam^(i-j) (do_i . v_j) q_i, dv likewise): R
// holds the queries i >= g0 + 64 with first[i] <= g0 + 64. The score tiles keep i <= last[j]; key row jj
// reads R only if last[j] >= g0 + 64 (jj >= block_tail); then R <- (end in block ? 0 : lam^64 R) + the
// block's queries ii <= block_reach (first[i] <= g0: the document of the block's first token). Registers are
// full here, so every document test reads last[] of the block's rows, staged with the tiles (2 x 64 ints).
// ---------------------------------------------------------------------------------------------------------
template <int D>
constexpr int walk_backward_smem() {
  return (2 * 4 * kBlock * D + 2 * kBlock * kBlock + D * D + 2 * kBlock * D) * 2;
}
template <int D, bool DOCS>
constexpr int walk_backward_smem_docs() {
  return walk_backward_smem<D>() + (DOCS ? 2 * kBlock * (int)sizeof(int) : 0);
}

template <int D, bool DOCS>
__global__ void __launch_bounds__(D * 2, 1)
    walk_backward_kernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
                         const __nv_bfloat16* __restrict__ v, const __nv_bfloat16* __restrict__ dout,
                         __nv_bfloat16* __restrict__ dk, __nv_bfloat16* __restrict__ dv,
                         const float* __restrict__ suffix, int T, int H, int piece_off, int piece_len, int seg_len,
                         int nseg, const float* __restrict__ lam, Documents docs, int position) {
  constexpr int NW = D / 16, NT = NW * 32, TILE = kBlock * D;
  constexpr int CW = kBlock * 4 / NW;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __nv_bfloat16* sq = reinterpret_cast<__nv_bfloat16*>(smem_raw);
  __nv_bfloat16* sk = sq + 2 * TILE;
  __nv_bfloat16* sv = sk + 2 * TILE;
  __nv_bfloat16* sd = sv + 2 * TILE;
  __nv_bfloat16* sa1 = sd + 2 * TILE;  // (K Q^T o D^T) [j][i]
  __nv_bfloat16* sa2 = sa1 + kBlock * kBlock;  // (V dO^T o D^T) [j][i]
  __nv_bfloat16* srt = sa2 + kBlock * kBlock;  // R^T [v dim][k dim], bf16
  __nv_bfloat16* sok = srt + D * D;
  __nv_bfloat16* sov = sok + TILE;
  int* slast = reinterpret_cast<int*>(sov + TILE);  // DOCS: [2][64] last[] of the staged block's rows
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, tq = lane & 3;
  const int bh = blockIdx.y, b = bh / H, h = bh % H, seg = blockIdx.x;
  const int start = seg * seg_len, nb = min(seg_len, piece_len - start) / kBlock;
  const size_t stride = (size_t)H * D;
  const size_t row0 = (((size_t)b * T + piece_off + start) * H + h) * D;
  const float l2 = head_log2_decay(lam, h);
  const bool decay = l2 != 0.f;
  const float lam64 = decay_pow(l2, 64.f);
  const int vs = warp * 16, rg = warp & 3, cbase = (warp >> 2) * CW;

  float rj[4][2];  // lam^(63-jj) for this thread's rows jj = 16mt + g (+8)
  float wt[4][4];  // lam^(ii+1) for its A-fragment tokens in the R update (DOCS computes them per use)
#pragma unroll
  for (int mt = 0; mt < 4; ++mt) {
    rj[mt][0] = decay_pow(l2, (float)(kBlock - 1 - (16 * mt + g)));
    rj[mt][1] = decay_pow(l2, (float)(kBlock - 1 - (16 * mt + g + 8)));
  }
  if constexpr (!DOCS) {
#pragma unroll
    for (int kc = 0; kc < 4; ++kc)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        wt[kc][e] = decay_pow(l2, (float)(a_token(kc, tq, e) + 1));
  }

  float RT[D / 8][4];  // R^T[vs + g (+8)][8t + 2tq (+1)]
  if (suffix != nullptr) {
    const float* R = suffix + ((size_t)bh * nseg + seg) * D * D;
    load_state<D>(RT, R, vs, g, tq);
  } else {
    zero_acc(RT);
  }

  auto load = [&](int blk, int stage) {
    size_t off = row0 + (size_t)blk * kBlock * stride;
    load_tile<D, NT>(sq + stage * TILE, q + off, stride, tid);
    load_tile<D, NT>(sk + stage * TILE, k + off, stride, tid);
    load_tile<D, NT>(sv + stage * TILE, v + off, stride, tid);
    load_tile<D, NT>(sd + stage * TILE, dout + off, stride, tid);
    if constexpr (DOCS) {
      if (tid < kBlock)
        cp_async4(slast + stage * kBlock + tid,
                  docs.last + (size_t)b * docs.seq_len + position + start + blk * kBlock + tid);
    }
  };
  load(nb - 1, 0);
  cp_async_commit();
  for (int step = 0; step < nb; ++step) {
    const int blk = nb - 1 - step, cur = step & 1;
    if (step + 1 < nb) load(blk - 1, cur ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const __nv_bfloat16* tq_ = sq + cur * TILE;
    const __nv_bfloat16* tk_ = sk + cur * TILE;
    const __nv_bfloat16* tv_ = sv + cur * TILE;
    const __nv_bfloat16* td_ = sd + cur * TILE;
    // DOCS: last[] of this block's rows, local (lb[jj] >= 64: key jj's document continues past the block).
    const int* lb = slast + cur * kBlock;
    const int g0 = DOCS ? position + start + blk * kBlock : 0;

    // a. bf16 copy of R^T (the state of all later tokens) for both products below.
#pragma unroll
    for (int t = 0; t < D / 8; ++t) {
      int c = 8 * t + 2 * tq;
      put_pair<D>(srt, vs + g, c, RT[t][0], RT[t][1]);
      put_pair<D>(srt, vs + g + 8, c, RT[t][2], RT[t][3]);
    }

    // b. Transposed score tiles, rows j = 16rg.., columns i = cbase.., kept where i >= j.
    {
      const int r0 = 16 * rg;
      if (cbase + CW - 1 >= r0) {
        float acc1[CW / 8][4], acc2[CW / 8][4];
#pragma unroll
        for (int t = 0; t < CW / 8; ++t)
#pragma unroll
          for (int e = 0; e < 4; ++e) acc1[t][e] = acc2[t][e] = 0.f;
#pragma unroll
        for (int kc = 0; kc < D / 16; ++kc) {
          uint32_t a1[4], a2[4];
          ldsm4(a1, frag_p1<D>(tk_, r0, 16 * kc, lane));
          ldsm4(a2, frag_p1<D>(tv_, r0, 16 * kc, lane));
#pragma unroll
          for (int np = 0; np < CW / 16; ++np) {
            uint32_t bb[4];
            ldsm4(bb, frag_p2<D>(tq_, cbase + 16 * np, 16 * kc, lane));
            mma(acc1[2 * np], a1, bb[0], bb[1]);
            mma(acc1[2 * np + 1], a1, bb[2], bb[3]);
            ldsm4(bb, frag_p2<D>(td_, cbase + 16 * np, 16 * kc, lane));
            mma(acc2[2 * np], a2, bb[0], bb[1]);
            mma(acc2[2 * np + 1], a2, bb[2], bb[3]);
          }
        }
        int lj[2] = {0, 0};  // DOCS: last[j] local to the block, for this thread's two key rows
        if constexpr (DOCS) {
          lj[0] = lb[r0 + g] - g0;
          lj[1] = lb[r0 + g + 8] - g0;
        }
#pragma unroll
        for (int t = 0; t < CW / 8; ++t)
#pragma unroll
          for (int hh = 0; hh < 2; ++hh) {
            int j = r0 + g + 8 * hh, i = cbase + 8 * t + 2 * tq;
            bool k0 = i >= j, k1 = i + 1 >= j;
            if constexpr (DOCS) {  // same document: i <= last[j]
              k0 = k0 && i <= lj[hh];
              k1 = k1 && i + 1 <= lj[hh];
            }
            float w0 = k0 ? (decay ? decay_pow(l2, (float)(i - j)) : 1.f) : 0.f;
            float w1 = k1 ? (decay ? decay_pow(l2, (float)(i + 1 - j)) : 1.f) : 0.f;
            put_pair<kBlock>(sa1, j, i, acc1[t][2 * hh] * w0, acc1[t][2 * hh + 1] * w1);
            put_pair<kBlock>(sa2, j, i, acc2[t][2 * hh] * w0, acc2[t][2 * hh + 1] * w1);
          }
      }
    }
    __syncthreads();  // srt, sa1, sa2 complete

    // c. Inter-block terms from R, then the intra-block products.
    float dva[4][2][4], dka[4][2][4];
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
      for (int nt = 0; nt < 2; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) dva[mt][nt][e] = dka[mt][nt][e] = 0.f;
#pragma unroll
    for (int kc = 0; kc < D / 16; ++kc) {
      uint32_t br[4], brt[4];
      ldsm4(br, frag_p2<D>(srt, vs, 16 * kc, lane));    // B = R[:, vs..]: [k = k dim][n = v dim]
      ldsm4t(brt, frag_p1<D>(srt, 16 * kc, vs, lane));  // B = R^T[:, vs..]: [k = v dim][n = k dim]
#pragma unroll
      for (int mt = 0; mt < 4; ++mt) {
        uint32_t a[4];
        ldsm4(a, frag_p1<D>(tk_, 16 * mt, 16 * kc, lane));
        mma(dva[mt][0], a, br[0], br[1]);
        mma(dva[mt][1], a, br[2], br[3]);
        ldsm4(a, frag_p1<D>(tv_, 16 * mt, 16 * kc, lane));
        mma(dka[mt][0], a, brt[0], brt[1]);
        mma(dka[mt][1], a, brt[2], brt[3]);
      }
    }
    if constexpr (DOCS) {
      // Only keys whose document continues past the block read R: their row factor lam^(63-jj) (1 without
      // decay), the others 0 (R and K, V are finite, so the product is exactly 0).
#pragma unroll
      for (int mt = 0; mt < 4; ++mt) {
        const float f0 = lb[16 * mt + g] - g0 >= kBlock ? rj[mt][0] : 0.f;
        const float f1 = lb[16 * mt + g + 8] - g0 >= kBlock ? rj[mt][1] : 0.f;
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
          dva[mt][nt][0] *= f0;
          dva[mt][nt][1] *= f0;
          dva[mt][nt][2] *= f1;
          dva[mt][nt][3] *= f1;
          dka[mt][nt][0] *= f0;
          dka[mt][nt][1] *= f0;
          dka[mt][nt][2] *= f1;
          dka[mt][nt][3] *= f1;
        }
      }
    } else if (decay) {
#pragma unroll
      for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
          dva[mt][nt][0] *= rj[mt][0];
          dva[mt][nt][1] *= rj[mt][0];
          dva[mt][nt][2] *= rj[mt][1];
          dva[mt][nt][3] *= rj[mt][1];
          dka[mt][nt][0] *= rj[mt][0];
          dka[mt][nt][1] *= rj[mt][0];
          dka[mt][nt][2] *= rj[mt][1];
          dka[mt][nt][3] *= rj[mt][1];
        }
    }
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) {
      uint32_t bd[4], bq[4];
      ldsm4t(bd, frag_p1<D>(td_, 16 * kc, vs, lane));  // B = dO[:, vs..]: [k = i][n = v dim]
      ldsm4t(bq, frag_p1<D>(tq_, 16 * kc, vs, lane));  // B = Q[:, vs..]:  [k = i][n = k dim]
#pragma unroll
      for (int mt = 0; mt <= kc; ++mt) {
        uint32_t a[4];
        ldsm4(a, frag_p1<kBlock>(sa1, 16 * mt, 16 * kc, lane));
        mma(dva[mt][0], a, bd[0], bd[1]);
        mma(dva[mt][1], a, bd[2], bd[3]);
        ldsm4(a, frag_p1<kBlock>(sa2, 16 * mt, 16 * kc, lane));
        mma(dka[mt][0], a, bq[0], bq[1]);
        mma(dka[mt][1], a, bq[2], bq[3]);
      }
    }

    // d. R^T <- lam^64 R^T + dO^T diag(lam^(ii+1)) Q.
    //    DOCS: R^T <- (end in block ? 0 : lam^64 R^T) + dO^T diag([ii <= reach] lam^(ii+1)) Q.
    const int reach = DOCS ? lb[0] - g0 : 0;  // block_reach: queries ii <= reach have first[i] <= g0
    if constexpr (DOCS) {
      const float c = reach < kBlock ? 0.f : lam64;  // an end in the block: R restarts (R is finite)
      scale_acc(RT, c);
    } else if (decay) {
      scale_acc(RT, lam64);
    }
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) {
      uint32_t a[4];
      ldsm4t(a, frag_p2<D>(td_, 16 * kc, vs, lane));
      if constexpr (DOCS) {
        float w[4];
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int ii = a_token(kc, tq, e);
          w[e] = ii <= reach ? decay_pow(l2, (float)(ii + 1)) : 0.f;
        }
        scale_a_tokens(a, w);
      } else if (decay) {
        scale_a_tokens(a, wt[kc]);
      }
#pragma unroll
      for (int np = 0; np < D / 16; ++np) {
        uint32_t bb[4];
        ldsm4t(bb, frag_p1<D>(tq_, 16 * kc, 16 * np, lane));
        mma(RT[2 * np], a, bb[0], bb[1]);
        mma(RT[2 * np + 1], a, bb[2], bb[3]);
      }
    }

    // e. Stage dK and dV, then 16-byte stores.
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
        int r = 16 * mt + g, c = vs + 8 * nt + 2 * tq;
        put_pair<D>(sov, r, c, dva[mt][nt][0], dva[mt][nt][1]);
        put_pair<D>(sov, r + 8, c, dva[mt][nt][2], dva[mt][nt][3]);
        put_pair<D>(sok, r, c, dka[mt][nt][0], dka[mt][nt][1]);
        put_pair<D>(sok, r + 8, c, dka[mt][nt][2], dka[mt][nt][3]);
      }
    __syncthreads();
    store_tile<D, NT>(dv + row0 + (size_t)blk * kBlock * stride, sov, stride, tid);
    store_tile<D, NT>(dk + row0 + (size_t)blk * kBlock * stride, sok, stride, tid);
  }
  cp_async_wait<0>();
}

// ---------------------------------------------------------------------------------------------------------
// Bidirectional layers with documents (lam = 1): the anti-causal half of the same-document product, ADDED to out:
//   out_i += sum_{j > i in the piece, j <= last[i]} (x_i . y_j) z_j
// walk_forward_kernel<D, true> on (x, y, z) with lam = 1 writes the causal half, diagonal included (first[i] <= j
// <= i); after this kernel out_i = B(x, y, z)_i = sum_{j in the piece, same document as i} (x_i . y_j) z_j.
// The mirror of walk_forward over one segment, last block first, with the suffix state
//   R = sum_{j >= e, first[j] <= e} y_j^T z_j            (e = g0 + 64: the first row after the block)
// on chip as walk_forward keeps S (R^T in the accumulator layout, R[y dim][z dim]); its document tests are
// walk_backward's: the score tile keeps i < j <= last[i]; row i reads R only if last[i] >= e (ii >= block_tail);
// then R <- (end in block ? 0 : R) + Y^T diag([jj <= block_reach]) Z (first[j] <= g0). suffix[bh][seg] is the
// segment's R at its end (reverse segment states + reverse scan, with the state from later pieces when fused),
// nullptr: zero. The old out tile (the causal half) streams in with the tiles, and o = old + new is rounded once.
// ---------------------------------------------------------------------------------------------------------
template <int D>
constexpr int walk_reverse_smem() {
  return (2 * 4 * kBlock * D + kBlock * kBlock + kBlock * D) * 2;
}

template <int D>
__global__ void __launch_bounds__(D * 2, 1)
    walk_reverse_kernel(const __nv_bfloat16* __restrict__ x, const __nv_bfloat16* __restrict__ y,
                        const __nv_bfloat16* __restrict__ z, __nv_bfloat16* __restrict__ out,
                        const float* __restrict__ suffix, int T, int H, int piece_off, int piece_len, int seg_len,
                        int nseg, Documents docs, int position) {
  constexpr int NW = D / 16, NT = NW * 32, TILE = kBlock * D;
  constexpr int CW = kBlock * 4 / NW;  // score-tile columns per warp: 32 (d=128) or 64 (d=64)
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __nv_bfloat16* sx = reinterpret_cast<__nv_bfloat16*>(smem_raw);
  __nv_bfloat16* sy = sx + 2 * TILE;
  __nv_bfloat16* sz = sy + 2 * TILE;
  __nv_bfloat16* sp = sz + 2 * TILE;  // out's tile as the causal walk left it
  __nv_bfloat16* sa = sp + 2 * TILE;  // [64][64] masked scores (bf16), entries j > i only
  __nv_bfloat16* so = sa + kBlock * kBlock;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, tq = lane & 3;
  const int bh = blockIdx.y, b = bh / H, h = bh % H, seg = blockIdx.x;
  const int start = seg * seg_len, nb = min(seg_len, piece_len - start) / kBlock;
  const size_t stride = (size_t)H * D;
  const size_t row0 = (((size_t)b * T + piece_off + start) * H + h) * D;
  const int vs = warp * 16, rg = warp & 3, cbase = (warp >> 2) * CW;

  float S[D / 8][4];  // R^T[vs + g (+8)][8t + 2tq (+1)]
  if (suffix != nullptr) {
    const float* P = suffix + ((size_t)bh * nseg + seg) * D * D;
#pragma unroll
    for (int t = 0; t < D / 8; ++t) {
      int kr = 8 * t + 2 * tq;
      S[t][0] = P[kr * D + vs + g];
      S[t][1] = P[(kr + 1) * D + vs + g];
      S[t][2] = P[kr * D + vs + g + 8];
      S[t][3] = P[(kr + 1) * D + vs + g + 8];
    }
  } else {
#pragma unroll
    for (int t = 0; t < D / 8; ++t) S[t][0] = S[t][1] = S[t][2] = S[t][3] = 0.f;
  }
  const DocRow dr = doc_row(docs, b);

  auto load = [&](int blk, int stage) {
    size_t off = row0 + (size_t)blk * kBlock * stride;
    load_tile<D, NT>(sx + stage * TILE, x + off, stride, tid);
    load_tile<D, NT>(sy + stage * TILE, y + off, stride, tid);
    load_tile<D, NT>(sz + stage * TILE, z + off, stride, tid);
    load_tile<D, NT>(sp + stage * TILE, out + off, stride, tid);
  };
  load(nb - 1, 0);
  cp_async_commit();
  for (int step = 0; step < nb; ++step) {
    const int blk = nb - 1 - step, cur = step & 1;
    if (step + 1 < nb) load(blk - 1, cur ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const __nv_bfloat16* tx_ = sx + cur * TILE;
    const __nv_bfloat16* ty_ = sy + cur * TILE;
    const __nv_bfloat16* tz_ = sz + cur * TILE;
    const __nv_bfloat16* tp_ = sp + cur * TILE;
    // This block's edges (uniform over the CTA).
    const int g0 = position + start + blk * kBlock;
    const int tail = block_tail(dr, g0);    // rows ii >= tail: last[i] >= g0 + 64 (they read R)
    const int reach = block_reach(dr, g0);  // tokens jj <= reach: first[j] <= g0 (they join R); < 64: an end

    // 1. Scores A = X Y^T for this warp's 16 x CW tile, kept where i < j <= last[i], into sa.
    {
      const int r0 = 16 * rg;
      if (cbase + CW - 1 > r0) {  // the tile has at least one entry above the diagonal
        float acc[CW / 8][4];
        score_mma<D, CW>(acc, tx_, ty_, r0, cbase, lane);
        int li[2];  // last[i] local to the block, for this thread's two rows
        li[0] = __ldg(dr.last + g0 + r0 + g) - g0;
        li[1] = __ldg(dr.last + g0 + r0 + g + 8) - g0;
#pragma unroll
        for (int t = 0; t < CW / 8; ++t)
#pragma unroll
          for (int hh = 0; hh < 2; ++hh) {
            const int i = r0 + g + 8 * hh, j = cbase + 8 * t + 2 * tq;
            const bool k0 = j > i && j <= li[hh], k1 = j + 1 > i && j + 1 <= li[hh];
            put_pair<kBlock>(sa, i, j, k0 ? acc[t][2 * hh] : 0.f, k1 ? acc[t][2 * hh + 1] : 0.f);
          }
      }
    }

    // 2. R's term: O = X R[:, vs..vs+15] for the rows whose document continues past the block.
    float oacc[4][2][4];
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) oacc[mt][nt][0] = oacc[mt][nt][1] = oacc[mt][nt][2] = oacc[mt][nt][3] = 0.f;
#pragma unroll
    for (int kc = 0; kc < D / 16; ++kc) {
      // The accumulator layout of R^T is the B-fragment layout of R: convert in registers.
      const uint32_t b00 = pack2(S[2 * kc][0], S[2 * kc][1]), b01 = pack2(S[2 * kc + 1][0], S[2 * kc + 1][1]);
      const uint32_t b10 = pack2(S[2 * kc][2], S[2 * kc][3]), b11 = pack2(S[2 * kc + 1][2], S[2 * kc + 1][3]);
#pragma unroll
      for (int mt = 0; mt < 4; ++mt) {
        uint32_t a[4];
        ldsm4(a, frag_p1<D>(tx_, 16 * mt, 16 * kc, lane));
        mma(oacc[mt][0], a, b00, b01);
        mma(oacc[mt][1], a, b10, b11);
      }
    }
#pragma unroll
    for (int mt = 0; mt < 4; ++mt) {
      const bool see0 = 16 * mt + g >= tail, see1 = 16 * mt + g + 8 >= tail;
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
        oacc[mt][nt][0] = see0 ? oacc[mt][nt][0] : 0.f;
        oacc[mt][nt][1] = see0 ? oacc[mt][nt][1] : 0.f;
        oacc[mt][nt][2] = see1 ? oacc[mt][nt][2] : 0.f;
        oacc[mt][nt][3] = see1 ? oacc[mt][nt][3] : 0.f;
      }
    }
    __syncthreads();  // the score tile is complete

    // 3. Intra-block term: O += A Z[:, vs..vs+15], the tiles on and above the diagonal only (kc >= mt).
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) {
      uint32_t bb[4];
      ldsm4t(bb, frag_p1<D>(tz_, 16 * kc, vs, lane));
#pragma unroll
      for (int mt = 0; mt <= kc; ++mt) {
        uint32_t a[4];
        ldsm4(a, frag_p1<kBlock>(sa, 16 * mt, 16 * kc, lane));
        mma(oacc[mt][0], a, bb[0], bb[1]);
        mma(oacc[mt][1], a, bb[2], bb[3]);
      }
    }

    // 4. State update: R^T <- (end in block ? 0 : R^T) + Z^T diag([jj <= reach]) Y.
    if (reach < kBlock) zero_acc(S);
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) {
      uint32_t a[4];
      ldsm4t(a, frag_p2<D>(tz_, 16 * kc, vs, lane));
      if (reach < kBlock - 1) {  // some of the block's tokens lie after its first end: they stay out of R
        float w[4];
#pragma unroll
        for (int e = 0; e < 4; ++e) w[e] = a_token(kc, tq, e) <= reach ? 1.f : 0.f;
        scale_a_tokens(a, w);
      }
#pragma unroll
      for (int np = 0; np < D / 16; ++np) {
        uint32_t bb[4];
        ldsm4t(bb, frag_p1<D>(ty_, 16 * kc, 16 * np, lane));
        mma(S[2 * np], a, bb[0], bb[1]);
        mma(S[2 * np + 1], a, bb[2], bb[3]);
      }
    }

    // 5. o = old + O (fp32, one rounding), staged through shared memory for 16-byte coalesced stores.
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
        const int r = 16 * mt + g, c = vs + 8 * nt + 2 * tq;
        const float2 p0 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(tp_ + swz<D>(r, c)));
        const float2 p1 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(tp_ + swz<D>(r + 8, c)));
        put_pair<D>(so, r, c, oacc[mt][nt][0] + p0.x, oacc[mt][nt][1] + p0.y);
        put_pair<D>(so, r + 8, c, oacc[mt][nt][2] + p1.x, oacc[mt][nt][3] + p1.y);
      }
    __syncthreads();
    store_tile<D, NT>(out + row0 + (size_t)blk * kBlock * stride, so, stride, tid);
  }
  cp_async_wait<0>();
}

// ---------------------------------------------------------------------------------------------------------
// out_i (+)= s_i * x_i op(S) for the rows of a piece; op(S) = S or S^T (fp32 [bh][D][D]), s_i = 1,
// lam^(i+1) or lam^(C-1-i) (scale_mode 0, 1, 2; i local to the piece). The inter terms of LASP-2 and the
// bidirectional products. Memory-bound, so P is split into bf16 hi + lo and multiplied twice (fp32-grade).
// 8 warps; warp w computes rows 16(w%4).. and columns (w/4)*D/2.. of each 64-row block.
// grid (chunks, batch*heads); each CTA streams `blocks_per_cta` consecutive blocks, 3 stages deep.
// DOCS (scale_mode 1 or 2, the inter terms): rows the state does not reach get 0 (out unchanged when
// accumulating). Mode 1 (P, from earlier pieces): rows with first[i] < position, i.e. i <= block_head at the
// piece's start. Mode 2 (G, from later pieces): rows with last[j] >= position + C (no end in [j, position + C -
// 1]): none if the piece's last token ends a document, else those from first[position + C - 1] on.
// Mode 3 (DOCS only, bidirectional, no decay: s_i = 1): the rows of the piece's first document, first[i] <=
// position (no end in [position, i - 1]), i.e. i <= block_reach at the piece's start (all rows without an end).
// ---------------------------------------------------------------------------------------------------------
template <int D>
constexpr int apply_smem() {
  return (2 * D * D + 3 * 2 * kBlock * D) * 2;
}

template <int D, bool TRANS, bool DOCS>
__global__ void __launch_bounds__(256, 1)
    apply_state_kernel(const __nv_bfloat16* __restrict__ x, const float* __restrict__ S,
                       __nv_bfloat16* __restrict__ out, int T, int H, int piece_off, int piece_len,
                       int blocks_per_cta, const float* __restrict__ lam, int scale_mode, bool accumulate,
                       Documents docs, int position) {
  constexpr int NT = 256, STAGES = 3, TILE = kBlock * D, CWA = D / 2;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __nv_bfloat16* shi = reinterpret_cast<__nv_bfloat16*>(smem_raw);  // B operand [k][n], high bf16 part
  __nv_bfloat16* slo = shi + D * D;                                  // low part: S - hi
  __nv_bfloat16* sx = slo + D * D;                                   // [STAGES][TILE]
  __nv_bfloat16* so = sx + STAGES * TILE;                            // [STAGES][TILE]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, tq = lane & 3;
  const int bh = blockIdx.y, b = bh / H, h = bh % H;
  const int nbk = piece_len / kBlock;
  const int blk0 = blockIdx.x * blocks_per_cta, nb = min(blocks_per_cta, nbk - blk0);
  if (nb <= 0) return;
  const size_t stride = (size_t)H * D;
  const size_t row0 = (((size_t)b * T + piece_off + (size_t)blk0 * kBlock) * H + h) * D;
  const float l2 = head_log2_decay(lam, h);
  const int r0 = 16 * (warp & 3), cb = (warp >> 2) * CWA;
  int row_lo = 0, row_hi = piece_len - 1;  // DOCS: the piece's rows (local) the state reaches
  if constexpr (DOCS) {
    const DocRow dr = doc_row(docs, b);
    const int ge = position + piece_len - 1;  // the piece's last token (piece_len > 0 here)
    if (scale_mode == 1) row_hi = block_head(dr, position);
    else if (scale_mode == 2) row_lo = __ldg(dr.ends + ge) != 0 ? piece_len : __ldg(dr.first + ge) - position;
    else if (scale_mode == 3) row_hi = block_reach(dr, position);
  }

  auto load = [&](int step, int stage) {
    size_t off = row0 + (size_t)step * kBlock * stride;
    load_tile<D, NT>(sx + stage * TILE, x + off, stride, tid);
    if (accumulate) load_tile<D, NT>(so + stage * TILE, out + off, stride, tid);
  };
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < nb) load(s, s);
    cp_async_commit();
  }
  // The state, converted once per CTA while the first tiles are in flight.
  const float* Sg = S + (size_t)bh * D * D;
  for (int e = tid * 4; e < D * D; e += NT * 4) {
    float4 f = *reinterpret_cast<const float4*>(Sg + e);
    const float fv[4] = {f.x, f.y, f.z, f.w};
    const int r = e / D, c = e % D;
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      __nv_bfloat16 hi = __float2bfloat16_rn(fv[u]);
      __nv_bfloat16 lo = __float2bfloat16_rn(fv[u] - __bfloat162float(hi));
      int off = TRANS ? swz<D>(c + u, r) : swz<D>(r, c + u);  // B[k][n] = S[k][n] or S[n][k]
      shi[off] = hi;
      slo[off] = lo;
    }
  }

  for (int step = 0; step < nb; ++step) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    {
      int nxt = step + STAGES - 1;
      if (nxt < nb) load(nxt, nxt % STAGES);
      cp_async_commit();
    }
    const __nv_bfloat16* tx = sx + (step % STAGES) * TILE;
    __nv_bfloat16* to = so + (step % STAGES) * TILE;
    float acc[CWA / 8][4];
#pragma unroll
    for (int t = 0; t < CWA / 8; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.f;
#pragma unroll
    for (int kc = 0; kc < D / 16; ++kc) {
      uint32_t a[4];
      ldsm4(a, frag_p1<D>(tx, r0, 16 * kc, lane));
#pragma unroll
      for (int np = 0; np < CWA / 16; ++np) {
        uint32_t bh4[4], bl4[4];
        ldsm4t(bh4, frag_p1<D>(shi, 16 * kc, cb + 16 * np, lane));
        ldsm4t(bl4, frag_p1<D>(slo, 16 * kc, cb + 16 * np, lane));
        mma(acc[2 * np], a, bh4[0], bh4[1]);
        mma(acc[2 * np + 1], a, bh4[2], bh4[3]);
        mma(acc[2 * np], a, bl4[0], bl4[1]);
        mma(acc[2 * np + 1], a, bl4[2], bl4[3]);
      }
    }
    const int i0 = (blk0 + step) * kBlock + r0 + g;  // local row in the piece
    float s0 = 1.f, s1 = 1.f;
    if (scale_mode == 1) {
      s0 = decay_pow(l2, (float)(i0 + 1));
      s1 = decay_pow(l2, (float)(i0 + 9));
    } else if (scale_mode == 2) {
      s0 = decay_pow(l2, (float)(piece_len - 1 - i0));
      s1 = decay_pow(l2, (float)(piece_len - 9 - i0));
    }
    bool in0 = true, in1 = true;
    if constexpr (DOCS) {
      in0 = i0 >= row_lo && i0 <= row_hi;
      in1 = i0 + 8 >= row_lo && i0 + 8 <= row_hi;
    }
#pragma unroll
    for (int t = 0; t < CWA / 8; ++t) {
      int c = cb + 8 * t + 2 * tq;
      uint32_t* p0 = reinterpret_cast<uint32_t*>(to + swz<D>(r0 + g, c));
      uint32_t* p1 = reinterpret_cast<uint32_t*>(to + swz<D>(r0 + g + 8, c));
      float v0 = acc[t][0] * s0, v1 = acc[t][1] * s0, v2 = acc[t][2] * s1, v3 = acc[t][3] * s1;
      if constexpr (DOCS) {
        v0 = in0 ? v0 : 0.f;
        v1 = in0 ? v1 : 0.f;
        v2 = in1 ? v2 : 0.f;
        v3 = in1 ? v3 : 0.f;
      }
      if (accumulate) {
        float2 o0 = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(p0));
        float2 o1 = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(p1));
        v0 += o0.x;
        v1 += o0.y;
        v2 += o1.x;
        v3 += o1.y;
      }
      *p0 = pack2(v0, v1);
      *p1 = pack2(v2, v3);
    }
    __syncthreads();
    store_tile<D, NT>(out + row0 + (size_t)step * kBlock * stride, to, stride, tid);
  }
  cp_async_wait<0>();
}

// ---------------------------------------------------------------------------------------------------------
// Element-wise state arithmetic over n = batch*heads*d*d floats (float4 at a time; d*d is a multiple of 4).
// ---------------------------------------------------------------------------------------------------------
__global__ void decayed_sum_kernel(const float* __restrict__ states, int count, const int* __restrict__ gaps,
                                   float* __restrict__ out, size_t n4, int dd, int H, const float* __restrict__ lam) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) {
    const int h = (int)((i * 4 / dd) % H);
    const float l2 = head_log2_decay(lam, h);
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int u = 0; u < count; ++u) {
      int gap = gaps[u];
      if (gap < 0) continue;
      float w = decay_pow(l2, (float)gap);
      float4 s = reinterpret_cast<const float4*>(states)[(size_t)u * n4 + i];
      acc.x += w * s.x;
      acc.y += w * s.y;
      acc.z += w * s.z;
      acc.w += w * s.w;
    }
    reinterpret_cast<float4*>(out)[i] = acc;
  }
}

__global__ void ring_step_kernel(const float* __restrict__ in, const float* __restrict__ M, int C,
                                 float* __restrict__ out, size_t n4, int dd, int H, const float* __restrict__ lam) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) {
    float4 m = reinterpret_cast<const float4*>(M)[i];
    if (in != nullptr) {
      const float w = decay_pow(head_log2_decay(lam, (int)((i * 4 / dd) % H)), (float)C);
      float4 a = reinterpret_cast<const float4*>(in)[i];
      m = make_float4(w * a.x + m.x, w * a.y + m.y, w * a.z + m.z, w * a.w + m.w);
    }
    reinterpret_cast<float4*>(out)[i] = m;
  }
}

// ring_step_kernel over one block of state rows (All-Scan): rows [row0, row0 + rows) of every (batch, head)'s
// d x d state; element i of the block is row row0 + (i / d) % rows of state i / (rows d).
__global__ void ring_step_rows_kernel(const float* __restrict__ in, const float* __restrict__ M, int C,
                                      float* __restrict__ out, size_t n, int d, int H, int row0, int rows,
                                      const float* __restrict__ lam) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const size_t per_state = (size_t)rows * d;
    const size_t bh = i / per_state, within = i % per_state;
    const size_t at = (bh * d + row0) * d + within;  // the block's rows are contiguous in each state
    float m = M[at];
    if (in != nullptr) m = decay_pow(head_log2_decay(lam, (int)(bh % H)), (float)C) * in[at] + m;
    out[at] = m;
  }
}

__global__ void state_sub_kernel(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ out,
                                 size_t n4) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) {
    float4 x = reinterpret_cast<const float4*>(a)[i], y = reinterpret_cast<const float4*>(b)[i];
    reinterpret_cast<float4*>(out)[i] = make_float4(x.x - y.x, x.y - y.y, x.z - y.z, x.w - y.w);
  }
}

__global__ void state_sum_kernel(const float* __restrict__ states, int count, float* __restrict__ out, size_t n4) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) {
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int u = 0; u < count; ++u) {
      float4 s = reinterpret_cast<const float4*>(states)[(size_t)u * n4 + i];
      acc.x += s.x;
      acc.y += s.y;
      acc.z += s.z;
      acc.w += s.w;
    }
    reinterpret_cast<float4*>(out)[i] = acc;
  }
}

// Bidirectional documents: total[bh] = the reverse segment aggregates ws[bh][0..nseg) (segment_state_kernel<D,
// true, true> with lam = 1: segment s keeps its tokens with first[i] <= its start) run from the last segment to the
// first, restarting after a segment that holds an end: sum_{i : first[i] <= position} x_i^T y_i, the piece's first
// document's part (i <= f). segment_scan_kernel's reverse total is the causal dM (first[i] < position), which is
// zero when the piece begins a document; this one is the contract's head (and bidirectional dm) in every case.
__global__ void doc_head_total_kernel(const float* __restrict__ ws, int nseg, int seg_len, int piece_len, int dd,
                                      int H, Documents docs, int position, float* __restrict__ total) {
  const int bh = blockIdx.y;
  const int e4 = blockIdx.x * blockDim.x + threadIdx.x;
  if (e4 * 4 >= dd) return;
  const DocRow dr = doc_row(docs, bh / H);
  const float4* seg = reinterpret_cast<const float4*>(ws + (size_t)bh * nseg * dd) + e4;
  const size_t step = dd / 4;
  float4 run = make_float4(0.f, 0.f, 0.f, 0.f);
  for (int s = nseg - 1; s >= 0; --s) {
    const int g0 = position + s * seg_len, len = min(seg_len, piece_len - s * seg_len);
    const float4 m = seg[s * step];
    if (__ldg(dr.last + g0) < g0 + len) run = m;  // an end in segment s: nothing after it reaches its start
    else run = make_float4(run.x + m.x, run.y + m.y, run.z + m.z, run.w + m.w);
  }
  reinterpret_cast<float4*>(total + (size_t)bh * dd)[e4] = run;
}

// ---------------------------------------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------------------------------------
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "lasp linear attention: %s\n", what);
    std::exit(3);
  }
}

inline void check_dims(const LinearDims& d) {
  require(d.head_dim == 64 || d.head_dim == 128, "head_dim must be 64 or 128");
  require(d.batch > 0 && d.heads > 0 && d.tokens >= 0, "batch and heads must be positive");
}
inline void check_piece(const LinearDims& d, const Piece& p) {
  check_dims(d);
  require(p.offset >= 0 && p.length >= 0 && p.offset + p.length <= d.tokens, "piece outside the rank's rows");
  require(p.length % kBlock == 0, "piece length must be a multiple of 64");
}

// One device per process (the generated programs run one rank per process): the SM count is read once.
// LASP_SM_RESERVE=N sizes the grids for N fewer SMs: the kernels fill the GPU in one wave, and a collective
// launched beside them can only start on SMs they leave free.
inline int num_sms() {
  static int n = [] {
    int dev = 0, v = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev));
    const char* reserve = std::getenv("LASP_SM_RESERVE");
    int r = reserve != nullptr ? std::atoi(reserve) : 0;
    return std::max(1, v - std::max(0, std::min(r, v - 1)));
  }();
  return n;
}

// Stream-ordered scratch for segment states. The default pool is told to keep freed memory, so the
// allocation after the first step is a pointer bump, not a cudaMalloc.
struct Scratch {
  float* ptr = nullptr;
  cudaStream_t stream;
  Scratch(size_t floats, cudaStream_t s) : stream(s) {
    static bool pool_ready = [] {
      int dev = 0;
      cudaMemPool_t pool;
      CUDA_CHECK(cudaGetDevice(&dev));
      CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, dev));
      uint64_t keep = UINT64_MAX;
      CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
      return true;
    }();
    (void)pool_ready;
    if (floats > 0) CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&ptr), floats * sizeof(float), s));
  }
  ~Scratch() {
    if (ptr != nullptr) CUDA_CHECK(cudaFreeAsync(ptr, stream));
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

struct SegPlan {
  int nseg;
  int seg_len;
};
// Segments per head so that batch*heads*segments CTAs fill the GPU about once (more segments only add
// state traffic and scan work); every segment a whole number of 64-token blocks, the last possibly shorter.
inline SegPlan plan_segments(int bh, int piece_len, int ctas_per_sm) {
  const int nblocks = piece_len / kBlock;
  int nseg = std::max(1, std::min(num_sms() * ctas_per_sm / bh, nblocks));
  const int per = (nblocks + nseg - 1) / nseg;
  nseg = (nblocks + per - 1) / per;
  return {nseg, per * kBlock};
}

// The plan shared by a state call and the walk that consumes its aggregates. The state call cuts the piece
// into `fine` segments exactly as it always has (plan_segments at 2 CTAs per SM); the walk takes `group`
// consecutive fine segments per CTA, as few as fill the GPU once at 1 CTA per SM. It depends only on
// batch*heads, the piece length and the SM count (read once per process), so producer and consumer always
// agree on it; the workspace holds every fine aggregate: fine.nseg * batch*heads * d*d floats.
struct SharedPlan {
  SegPlan fine;
  int group;
  SegPlan walk;
};
inline SharedPlan plan_shared(int bh, int piece_len) {
  const SegPlan f = plan_segments(bh, piece_len, 2);
  const int target = std::max(1, std::min(num_sms() / bh, piece_len / kBlock));
  const int g = (f.nseg + target - 1) / target;
  return {f, g, {(f.nseg + g - 1) / g, g * f.seg_len}};
}

template <typename Kernel>
inline void allow_smem(Kernel kernel, int bytes) {
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
}

// A piece's documents as the launchers pass them on: docs.any() false runs the DOCS = false kernels, which are
// the code without documents.
struct PieceDocs {
  Documents docs{};
  int position = 0;  // global position of the piece's first row
  bool any() const { return docs.any(); }
};

// With documents: the arrays are there and the piece lies inside the sequence they describe. `call` names the
// API call in the message. Causal and bidirectional layers both take documents.
inline void check_documents(const PieceDocs& pd, const Piece& p, const char* call) {
  if (!pd.any()) return;
  char what[256];
  std::snprintf(what, sizeof what, "%s: documents without first/last arrays", call);
  require(pd.docs.first != nullptr && pd.docs.last != nullptr, what);
  std::snprintf(what, sizeof what, "%s: piece at position %d (+%d rows) outside the documents' %d tokens", call,
                pd.position, p.length, pd.docs.seq_len);
  require(pd.position >= 0 && (long long)pd.position + p.length <= pd.docs.seq_len, what);
}

// Segment states for segments seg_first .. seg_first+count-1 into out[bh][out_nseg].
template <int D>
void launch_segment_states(const bf16* x, const bf16* y, float* out, int out_nseg, int seg_first, int count,
                           bool reverse, SegPlan plan, const LinearDims& d, const Piece& p, const float* lam,
                           float scale_pow, cudaStream_t s, const PieceDocs& pd = {}) {
  if (count <= 0) return;
  constexpr int smem = 3 * 2 * kBlock * D * 2;
  dim3 grid(count, d.batch * d.heads);
  auto run = [&](auto rev, auto docs) {
    constexpr bool R = decltype(rev)::value, DOCS = decltype(docs)::value;
    static bool once = (allow_smem(segment_state_kernel<D, R, DOCS>, smem), true);
    (void)once;
    segment_state_kernel<D, R, DOCS><<<grid, D * 2, smem, s>>>(x, y, out, d.tokens, d.heads, p.offset, p.length,
                                                               plan.seg_len, seg_first, out_nseg, lam, scale_pow,
                                                               pd.docs, pd.position);
    LAUNCH_CHECK();
  };
  using T = std::true_type;
  using F = std::false_type;
  if (reverse) {
    if (pd.any()) run(T{}, T{});
    else run(T{}, F{});
  } else {
    if (pd.any()) run(F{}, T{});
    else run(F{}, F{});
  }
}

inline void launch_scan(float* ws, SegPlan plan, const LinearDims& d, const Piece& p, const float* lam,
                        bool reverse, bool write_prefix, float* total, float total_pow, cudaStream_t s,
                        const float* base = nullptr, bool base_trans = false, const PieceDocs& pd = {}) {
  const int dd = d.head_dim * d.head_dim;
  dim3 grid((dd / 4 + 255) / 256, d.batch * d.heads);
  if (pd.any())
    segment_scan_kernel<true><<<grid, 256, 0, s>>>(ws, plan.nseg, plan.seg_len, p.length, dd, d.heads, lam, reverse,
                                                   write_prefix, total, total_pow, base, base_trans, d.head_dim,
                                                   pd.docs, pd.position);
  else
    segment_scan_kernel<false><<<grid, 256, 0, s>>>(ws, plan.nseg, plan.seg_len, p.length, dd, d.heads, lam,
                                                    reverse, write_prefix, total, total_pow, base, base_trans,
                                                    d.head_dim, pd.docs, pd.position);
  LAUNCH_CHECK();
}

inline void launch_group_scan(const float* agg, const SharedPlan& sp, float* pre, const LinearDims& d,
                              const Piece& p, const float* lam, bool reverse, const float* base, bool base_trans,
                              const PieceDocs& pd, cudaStream_t s) {
  const int dd = d.head_dim * d.head_dim;
  dim3 grid((dd / 4 + 255) / 256, d.batch * d.heads);
  if (pd.any())
    group_scan_kernel<true><<<grid, 256, 0, s>>>(agg, sp.fine.nseg, sp.fine.seg_len, sp.group, pre, sp.walk.nseg,
                                                 p.length, dd, d.heads, lam, reverse, base, base_trans, d.head_dim,
                                                 pd.docs, pd.position);
  else
    group_scan_kernel<false><<<grid, 256, 0, s>>>(agg, sp.fine.nseg, sp.fine.seg_len, sp.group, pre, sp.walk.nseg,
                                                  p.length, dd, d.heads, lam, reverse, base, base_trans, d.head_dim,
                                                  pd.docs, pd.position);
  LAUNCH_CHECK();
}

// out[bh] = sum_j w_j x_j^T y_j over the whole piece, times lam^scale_pow; w_j = lam^(C-1-j) (forward) or
// lam^(j+1) (reverse). Segments run in parallel, then one scan combines them.
// With `keep` (the caller's workspace of plan_shared(...).fine.nseg states per head), the segment aggregates
// are written there and left in place for a later walk (plan_shared's fine plan is this plan).
// With documents: M (forward) keeps the tokens with last[j] >= position + C, dM (reverse) the queries with
// first[i] < position; the total always comes from the scan, which applies the latter.
template <int D>
void state_total(const bf16* x, const bf16* y, const Piece& p, float* out, const LinearDims& d, const float* lam,
                 bool reverse, float scale_pow, cudaStream_t s, float* keep = nullptr, const PieceDocs& pd = {}) {
  const int bh = d.batch * d.heads;
  if (p.length == 0) {
    CUDA_CHECK(cudaMemsetAsync(out, 0, (size_t)bh * D * D * sizeof(float), s));
    return;
  }
  const SegPlan plan = plan_segments(bh, p.length, 2);
  if (keep != nullptr) {
    launch_segment_states<D>(x, y, keep, plan.nseg, 0, plan.nseg, reverse, plan, d, p, lam, 0.f, s, pd);
    launch_scan(keep, plan, d, p, lam, reverse, false, out, scale_pow, s, nullptr, false, pd);
    return;
  }
  if (plan.nseg == 1 && !pd.any()) {
    launch_segment_states<D>(x, y, out, 1, 0, 1, reverse, plan, d, p, lam, scale_pow, s);
    return;
  }
  Scratch ws((size_t)plan.nseg * bh * D * D, s);
  launch_segment_states<D>(x, y, ws.ptr, plan.nseg, 0, plan.nseg, reverse, plan, d, p, lam, 0.f, s, pd);
  launch_scan(ws.ptr, plan, d, p, lam, reverse, false, out, scale_pow, s, nullptr, false, pd);
}

// flag[b] = 1 if a document ends inside the piece [position, position + len), else 0 (linear.state's m_flag,
// linear.grad_state's dm_flag: the carry across the piece is 0 instead of lam^len).
__global__ void piece_flag_kernel(Documents docs, int position, int len, int batch, float* __restrict__ flag) {
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= batch) return;
  const int* last = docs.last + (size_t)b * docs.seq_len;
  flag[b] = len > 0 && last[position] < position + len ? 1.f : 0.f;
}

inline void launch_piece_flag(const PieceDocs& pd, const Piece& p, int batch, float* flag, cudaStream_t s) {
  if (!pd.any() || flag == nullptr) return;
  piece_flag_kernel<<<(batch + 127) / 128, 128, 0, s>>>(pd.docs, pd.position, p.length, batch, flag);
  LAUNCH_CHECK();
}

template <int D, bool TRANS>
void launch_apply(const bf16* x, const float* S, bf16* out, const LinearDims& d, const Piece& p, const float* lam,
                  int scale_mode, bool accumulate, cudaStream_t s, const PieceDocs& pd = {}) {
  const int bh = d.batch * d.heads, nbk = p.length / kBlock;
  if (nbk == 0) return;
  const int chunks = std::max(1, std::min(nbk, num_sms() / bh));
  const int per = (nbk + chunks - 1) / chunks;
  constexpr int smem = apply_smem<D>();
  dim3 grid((nbk + per - 1) / per, bh);
  if (pd.any()) {
    require(scale_mode >= 1 && scale_mode <= 3, "documents apply to the inter terms (scale modes 1, 2, 3) only");
    static bool once = (allow_smem(apply_state_kernel<D, TRANS, true>, smem), true);
    (void)once;
    apply_state_kernel<D, TRANS, true><<<grid, 256, smem, s>>>(x, S, out, d.tokens, d.heads, p.offset, p.length,
                                                               per, lam, scale_mode, accumulate, pd.docs,
                                                               pd.position);
  } else {
    static bool once = (allow_smem(apply_state_kernel<D, TRANS, false>, smem), true);
    (void)once;
    apply_state_kernel<D, TRANS, false><<<grid, 256, smem, s>>>(x, S, out, d.tokens, d.heads, p.offset, p.length,
                                                                per, lam, scale_mode, accumulate, pd.docs,
                                                                pd.position);
  }
  LAUNCH_CHECK();
}

// The fused walks with or without documents, one launch each.
template <int D>
void launch_walk_forward(const bf16* q, const bf16* k, const bf16* v, bf16* o, const float* prefix, int nseg,
                         int seg_len, const LinearDims& d, const Piece& p, const float* lam, bool prefix_trans,
                         const PieceDocs& pd, cudaStream_t s) {
  const dim3 grid(nseg, d.batch * d.heads);
  if (pd.any()) {
    constexpr int smem = walk_forward_smem_docs<D, true>();
    static bool once = (allow_smem(walk_forward_kernel<D, true>, smem), true);
    (void)once;
    walk_forward_kernel<D, true><<<grid, D * 2, smem, s>>>(q, k, v, o, prefix, d.tokens, d.heads, p.offset,
                                                           p.length, seg_len, nseg, lam, prefix_trans, pd.docs,
                                                           pd.position);
  } else {
    constexpr int smem = walk_forward_smem<D>();
    static bool once = (allow_smem(walk_forward_kernel<D, false>, smem), true);
    (void)once;
    walk_forward_kernel<D, false><<<grid, D * 2, smem, s>>>(q, k, v, o, prefix, d.tokens, d.heads, p.offset,
                                                            p.length, seg_len, nseg, lam, prefix_trans, pd.docs,
                                                            pd.position);
  }
  LAUNCH_CHECK();
}

template <int D>
void launch_walk_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, bf16* dk, bf16* dv,
                          const float* suffix, int nseg, int seg_len, const LinearDims& d, const Piece& p,
                          const float* lam, const PieceDocs& pd, cudaStream_t s) {
  const dim3 grid(nseg, d.batch * d.heads);
  if (pd.any()) {
    constexpr int smem = walk_backward_smem_docs<D, true>();
    static bool once = (allow_smem(walk_backward_kernel<D, true>, smem), true);
    (void)once;
    walk_backward_kernel<D, true><<<grid, D * 2, smem, s>>>(q, k, v, dout, dk, dv, suffix, d.tokens, d.heads,
                                                            p.offset, p.length, seg_len, nseg, lam, pd.docs,
                                                            pd.position);
  } else {
    constexpr int smem = walk_backward_smem<D>();
    static bool once = (allow_smem(walk_backward_kernel<D, false>, smem), true);
    (void)once;
    walk_backward_kernel<D, false><<<grid, D * 2, smem, s>>>(q, k, v, dout, dk, dv, suffix, d.tokens, d.heads,
                                                             p.offset, p.length, seg_len, nseg, lam, pd.docs,
                                                             pd.position);
  }
  LAUNCH_CHECK();
}

// base: the state from earlier ranks (P, or P^T with base_trans) whose inter term is fused; may be nullptr.
template <int D>
void walk_forward(const bf16* q, const bf16* k, const bf16* v, bf16* o, const LinearDims& d, const Piece& p,
                  const float* lam, const float* base, bool base_trans, cudaStream_t s, const PieceDocs& pd = {}) {
  const int bh = d.batch * d.heads;
  const SegPlan plan = plan_segments(bh, p.length, 1);
  const bool prefixed = plan.nseg > 1 || base != nullptr;
  Scratch ws(prefixed ? (size_t)plan.nseg * bh * D * D : 0, s);
  if (plan.nseg > 1)
    launch_segment_states<D>(k, v, ws.ptr, plan.nseg, 0, plan.nseg - 1, false, plan, d, p, lam, 0.f, s, pd);
  if (prefixed) launch_scan(ws.ptr, plan, d, p, lam, false, true, nullptr, 0.f, s, base, base_trans, pd);
  launch_walk_forward<D>(q, k, v, o, ws.ptr, plan.nseg, plan.seg_len, d, p, lam, false, pd, s);
}

// The same walk from aggregates a state call left in `agg` (plan_shared): no segment-state pass, only the
// group scan. agg_trans: agg holds the transpose of this walk's state (the dq walk, q <- do, k <- v, v <- k,
// reading the forward's (k, v) aggregates); the prefixes then stay transposed and the walk reads them so.
// With documents the aggregates must come from a state call with the same documents and position.
template <int D>
void walk_forward_shared(const bf16* q, const bf16* k, const bf16* v, bf16* o, const LinearDims& d, const Piece& p,
                         const float* lam, const float* base, bool base_trans, const float* agg, bool agg_trans,
                         cudaStream_t s, const PieceDocs& pd = {}) {
  const int bh = d.batch * d.heads, dd = D * D;
  const SharedPlan sp = plan_shared(bh, p.length);
  const bool prefixed = sp.walk.nseg > 1 || base != nullptr;
  Scratch ws(prefixed ? (size_t)sp.walk.nseg * bh * dd : 0, s);
  if (prefixed) launch_group_scan(agg, sp, ws.ptr, d, p, lam, false, base, base_trans != agg_trans, pd, s);
  launch_walk_forward<D>(q, k, v, o, ws.ptr, sp.walk.nseg, sp.walk.seg_len, d, p, lam, agg_trans, pd, s);
}

// base: G, the gradient state from later ranks whose dk/dv inter terms are fused; may be nullptr.
template <int D>
void walk_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, bf16* dk, bf16* dv,
                   const LinearDims& d, const Piece& p, const float* lam, const float* base, cudaStream_t s,
                   const PieceDocs& pd = {}) {
  const int bh = d.batch * d.heads;
  const SegPlan plan = plan_segments(bh, p.length, 1);
  const bool prefixed = plan.nseg > 1 || base != nullptr;
  Scratch ws(prefixed ? (size_t)plan.nseg * bh * D * D : 0, s);
  if (plan.nseg > 1)
    launch_segment_states<D>(q, dout, ws.ptr, plan.nseg, 1, plan.nseg - 1, true, plan, d, p, lam, 0.f, s, pd);
  if (prefixed) launch_scan(ws.ptr, plan, d, p, lam, true, true, nullptr, 0.f, s, base, false, pd);
  launch_walk_backward<D>(q, k, v, dout, dk, dv, ws.ptr, plan.nseg, plan.seg_len, d, p, lam, pd, s);
}

// The dk/dv walk from the (q, do) aggregates linear_grad_state left in `agg` (plan_shared).
template <int D>
void walk_backward_shared(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, bf16* dk, bf16* dv,
                          const LinearDims& d, const Piece& p, const float* lam, const float* base, const float* agg,
                          cudaStream_t s, const PieceDocs& pd = {}) {
  const int bh = d.batch * d.heads, dd = D * D;
  const SharedPlan sp = plan_shared(bh, p.length);
  const bool prefixed = sp.walk.nseg > 1 || base != nullptr;
  Scratch ws(prefixed ? (size_t)sp.walk.nseg * bh * dd : 0, s);
  if (prefixed) launch_group_scan(agg, sp, ws.ptr, d, p, lam, true, base, false, pd, s);
  launch_walk_backward<D>(q, k, v, dout, dk, dv, ws.ptr, sp.walk.nseg, sp.walk.seg_len, d, p, lam, pd, s);
}

// ---- Bidirectional layers with documents (lam = 1: every call below passes lam = nullptr to the kernels).

template <int D>
void launch_walk_reverse(const bf16* x, const bf16* y, const bf16* z, bf16* out, const float* suffix, int nseg,
                         int seg_len, const LinearDims& d, const Piece& p, const PieceDocs& pd, cudaStream_t s) {
  constexpr int smem = walk_reverse_smem<D>();
  static bool once = (allow_smem(walk_reverse_kernel<D>, smem), true);
  (void)once;
  walk_reverse_kernel<D><<<dim3(nseg, d.batch * d.heads), D * 2, smem, s>>>(
      x, y, z, out, suffix, d.tokens, d.heads, p.offset, p.length, seg_len, nseg, pd.docs, pd.position);
  LAUNCH_CHECK();
}

// out_i += sum_{j > i, same document} (x_i . y_j) z_j [+ (last[i] >= position + C) x_i base]: the reverse walk,
// its segment suffixes as walk_backward builds them (reverse segment states of (y, z), reverse scan), base (the
// later pieces' state, R's layout [y dim][z dim], or its transpose with base_trans) fused into them by the scan,
// which lets it reach only the segments with no end between them and the piece's end.
template <int D>
void walk_reverse(const bf16* x, const bf16* y, const bf16* z, bf16* out, const LinearDims& d, const Piece& p,
                  const float* base, bool base_trans, const PieceDocs& pd, cudaStream_t s) {
  const int bh = d.batch * d.heads;
  const SegPlan plan = plan_segments(bh, p.length, 1);
  const bool suffixed = plan.nseg > 1 || base != nullptr;
  Scratch ws(suffixed ? (size_t)plan.nseg * bh * D * D : 0, s);
  if (plan.nseg > 1)
    launch_segment_states<D>(y, z, ws.ptr, plan.nseg, 1, plan.nseg - 1, true, plan, d, p, nullptr, 0.f, s, pd);
  if (suffixed) launch_scan(ws.ptr, plan, d, p, nullptr, true, true, nullptr, 0.f, s, base, base_trans, pd);
  launch_walk_reverse<D>(x, y, z, out, ws.ptr, plan.nseg, plan.seg_len, d, p, pd, s);
}

// out = B(x, y, z) [+ the base term]: out_i = sum_{j in the piece, same document} (x_i . y_j) z_j, as the causal
// document walk (j <= i, out overwritten) and then the reverse walk (j > i, added).
template <int D>
void bidir_doc_product(const bf16* x, const bf16* y, const bf16* z, bf16* out, const float* base, bool base_trans,
                       const LinearDims& d, const Piece& p, const PieceDocs& pd, cudaStream_t s) {
  walk_forward<D>(x, y, z, out, d, p, nullptr, nullptr, false, s, pd);
  walk_reverse<D>(x, y, z, out, d, p, base, base_trans, pd, s);
}

// out[bh] = sum_{i <= f} x_i^T y_i: the piece's first document's part (head of (k, v); dm of (q, do)).
template <int D>
void doc_head_state(const bf16* x, const bf16* y, const Piece& p, float* out, const LinearDims& d,
                    const PieceDocs& pd, cudaStream_t s) {
  const int bh = d.batch * d.heads, dd = D * D;
  if (p.length == 0) {
    CUDA_CHECK(cudaMemsetAsync(out, 0, (size_t)bh * dd * sizeof(float), s));
    return;
  }
  const SegPlan plan = plan_segments(bh, p.length, 2);
  if (plan.nseg == 1) {  // one segment: its aggregate is the head already
    launch_segment_states<D>(x, y, out, 1, 0, 1, true, plan, d, p, nullptr, 0.f, s, pd);
    return;
  }
  Scratch ws((size_t)plan.nseg * bh * dd, s);
  launch_segment_states<D>(x, y, ws.ptr, plan.nseg, 0, plan.nseg, true, plan, d, p, nullptr, 0.f, s, pd);
  doc_head_total_kernel<<<dim3((dd / 4 + 255) / 256, bh), 256, 0, s>>>(ws.ptr, plan.nseg, plan.seg_len, p.length, dd,
                                                                       d.heads, pd.docs, pd.position, out);
  LAUNCH_CHECK();
}

// out may be a (bidir_state adds in place), so neither is __restrict__.
__global__ void state_add_kernel(const float* a, const float* __restrict__ b, float* out, size_t n4) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) {
    float4 x = reinterpret_cast<const float4*>(a)[i], y = reinterpret_cast<const float4*>(b)[i];
    reinterpret_cast<float4*>(out)[i] = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
  }
}

inline int grid_for(size_t n4) {
  size_t blocks = (n4 + 255) / 256;
  return (int)std::min<size_t>(std::max<size_t>(blocks, 1), (size_t)num_sms() * 8);
}

// Bidirectional pieces: the plain sum of x^T y over the piece, plus `extra` (a state from other ranks) if given.
// With `agg` (undecayed aggregates a state call with lam == nullptr left behind) the sum is taken from them.
template <int D>
void bidir_state(const bf16* x, const bf16* y, const Piece& p, float* out, const LinearDims& d, const float* extra,
                 cudaStream_t s, const float* agg = nullptr) {
  if (agg != nullptr)
    launch_scan(const_cast<float*>(agg), plan_segments(d.batch * d.heads, p.length, 2), d, p, nullptr, false, false,
                out, 0.f, s);  // write_prefix false: agg is only read
  else
    state_total<D>(x, y, p, out, d, nullptr, false, 0.f, s);
  if (extra != nullptr) {
    const size_t n4 = (size_t)d.batch * d.heads * D * D / 4;
    state_add_kernel<<<grid_for(n4), 256, 0, s>>>(out, extra, out, n4);
    LAUNCH_CHECK();
  }
}

// o = intra-piece attention (+ the inter term of P when P != nullptr, fused into the same pass).
// kv_ws: the (k, v) aggregates of linear_state (nullptr: recompute). Bidirectional pieces use them only when
// lam == nullptr (their sum must be undecayed; with a decay table the state call's lam would have weighted them).
// pd: the piece's documents. after (bidirectional with documents only): the later pieces' heads, for the rows
// of the piece's last document.
template <int D>
void intra_forward(const bf16* q, const bf16* k, const bf16* v, const float* P, const Piece& p, bf16* o,
                   const LinearDims& d, const float* lam, bool causal, cudaStream_t s, const float* kv_ws = nullptr,
                   const PieceDocs& pd = {}, const float* after = nullptr) {
  if (p.length == 0) return;
  if (causal) {
    if (kv_ws != nullptr)
      walk_forward_shared<D>(q, k, v, o, d, p, lam, P, false, kv_ws, false, s, pd);
    else
      walk_forward<D>(q, k, v, o, d, p, lam, P, false, s, pd);
    return;
  }
  if (pd.any()) {
    // Bidirectional with documents (lam = 1): o_i = sum_{j same doc} (q_i . k_j) v_j + [i > l] q_i after (fused
    // into the reverse walk, R = k^T v: after's own layout) + [i <= f] q_i P (an inter pass: the forward walk's
    // fused P would reach first[i] < position, not first[i] <= position). kv_ws is not used: the state call of a
    // bidirectional layer keeps no aggregates, and the walks recompute theirs.
    bidir_doc_product<D>(q, k, v, o, after, false, d, p, pd, s);
    if (P != nullptr) launch_apply<D, false>(q, P, o, d, p, nullptr, 3, true, s, pd);
    return;
  }
  // Bidirectional: o_i = q_i (sum_j k_j^T v_j over the piece [+ P]), no decay.
  Scratch m((size_t)d.batch * d.heads * D * D, s);
  bidir_state<D>(k, v, p, m.ptr, d, P, s, lam == nullptr ? kv_ws : nullptr);
  launch_apply<D, false>(q, m.ptr, o, d, p, nullptr, 0, false, s);
}

// dq, dk, dv of the piece (+ the inter terms of P and G when given, fused into the same passes).
// kv_ws / qdo_ws: the aggregates of linear_state (k, v) and linear_grad_state (q, do), either may be nullptr.
// after, before (bidirectional with documents only): the later pieces' heads for dq's last-document rows, the
// earlier pieces' gradient tails for dk's and dv's first-document rows (P: dq's first document, G: dk's, dv's last).
template <int D>
void intra_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, const float* P, const float* G,
                    const Piece& p, bf16* dq, bf16* dk, bf16* dv, const LinearDims& d, const float* lam, bool causal,
                    cudaStream_t s, const float* kv_ws = nullptr, const float* qdo_ws = nullptr,
                    const PieceDocs& pd = {}, const float* after = nullptr, const float* before = nullptr) {
  if (p.length == 0) return;
  if (causal) {
    // dq_i = sum_{j<=i} lam^(i-j) (do_i . v_j) k_j [+ lam^(i+1) do_i P^T]: the forward walk with q <- do,
    // k <- v, v <- k, whose state is S^T (so P enters transposed; the (k, v) aggregates hold S, read transposed).
    // Its document masks depend on the positions only, so they are the forward's.
    if (kv_ws != nullptr)
      walk_forward_shared<D>(dout, v, k, dq, d, p, lam, P, true, kv_ws, true, s, pd);
    else
      walk_forward<D>(dout, v, k, dq, d, p, lam, P, true, s, pd);
    if (qdo_ws != nullptr)
      walk_backward_shared<D>(q, k, v, dout, dk, dv, d, p, lam, G, qdo_ws, s, pd);
    else
      walk_backward<D>(q, k, v, dout, dk, dv, d, p, lam, G, s, pd);
    return;
  }
  if (pd.any()) {
    // Bidirectional with documents (lam = 1): three same-document products B(x, y, z)_i = sum_{j same doc}
    // (x_i . y_j) z_j, each with its state terms; the [i > l] one rides in the reverse walk (R = y^T z: after^T for
    // dq, G^T for dk, G for dv), the [i <= f] one is an inter pass. kv_ws / qdo_ws are not used (recomputed).
    //   dq = B(do, v, k) + [i <= f] do P^T      + [i > l] do after^T
    //   dk = B(v, do, q) + [j <= f] v before^T + [j > l] v G^T
    //   dv = B(k, q, do) + [j <= f] k before   + [j > l] k G
    bidir_doc_product<D>(dout, v, k, dq, after, true, d, p, pd, s);
    if (P != nullptr) launch_apply<D, true>(dout, P, dq, d, p, nullptr, 3, true, s, pd);
    bidir_doc_product<D>(v, dout, q, dk, G, true, d, p, pd, s);
    if (before != nullptr) launch_apply<D, true>(v, before, dk, d, p, nullptr, 3, true, s, pd);
    bidir_doc_product<D>(k, q, dout, dv, G, false, d, p, pd, s);
    if (before != nullptr) launch_apply<D, false>(k, before, dv, d, p, nullptr, 3, true, s, pd);
    return;
  }
  // Bidirectional: M = K^T V [+ P], R = Q^T dO [+ G]; dq = dO M^T, dk = V R^T, dv = K R.
  const size_t dd = (size_t)d.batch * d.heads * D * D;
  Scratch m(2 * dd, s);
  bidir_state<D>(k, v, p, m.ptr, d, P, s, lam == nullptr ? kv_ws : nullptr);
  bidir_state<D>(q, dout, p, m.ptr + dd, d, G, s, lam == nullptr ? qdo_ws : nullptr);
  launch_apply<D, true>(dout, m.ptr, dq, d, p, nullptr, 0, false, s);
  launch_apply<D, true>(v, m.ptr + dd, dk, d, p, nullptr, 0, false, s);
  launch_apply<D, false>(k, m.ptr + dd, dv, d, p, nullptr, 0, false, s);
}

}  // namespace detail

// =========================================================================================================
// The API (asynchronous on `s`; see kernels.h)
// =========================================================================================================

// M = sum_j lam^(C-1-j) k_j^T v_j over the piece (C = p.length, j local).
void linear_state(const bf16* k, const bf16* v, Piece p, float* M, LinearDims dims, const float* lam,
                  cudaStream_t s) {
  detail::check_piece(dims, p);
  with_head_dim(dims.head_dim, [&](auto D) { detail::state_total<D>(k, v, p, M, dims, lam, false, 0.f, s); });
}

// Causal: o_i = sum_{j<=i in piece} lam^(i-j) (q_i.k_j) v_j. Bidirectional: o_i = q_i sum_j k_j^T v_j.
// Overwrites the piece's rows of o.
void linear_intra(const bf16* q, const bf16* k, const bf16* v, Piece p, bf16* o, LinearDims dims, const float* lam,
                  bool causal, cudaStream_t s) {
  detail::check_piece(dims, p);
  with_head_dim(dims.head_dim, [&](auto D) {
    detail::intra_forward<D>(q, k, v, nullptr, p, o, dims, lam, causal, s);
  });
}

// o_i += lam^(i+1) q_i P.
void linear_inter(const bf16* q, const float* P, Piece p, bf16* o, LinearDims dims, const float* lam,
                  cudaStream_t s) {
  detail::check_piece(dims, p);
  with_head_dim(dims.head_dim, [&](auto D) {
    detail::launch_apply<D, false>(q, P, o, dims, p, lam, 1, true, s);
  });
}

// out = sum_u [gaps[u] >= 0] lam^gaps[u] states[u]; gaps is a device array of `count` ints.
void linear_decayed_sum(const float* states, int count, const int* gaps, float* out, LinearDims dims,
                        const float* lam, cudaStream_t s) {
  detail::check_dims(dims);
  const int dd = dims.head_dim * dims.head_dim;
  const size_t n4 = (size_t)dims.batch * dims.heads * dd / 4;
  detail::decayed_sum_kernel<<<detail::grid_for(n4), 256, 0, s>>>(states, count, gaps, out, n4, dd, dims.heads,
                                                                  lam);
  LAUNCH_CHECK();
}

// out = lam^C in + M (in == nullptr: out = M).
void linear_ring_step(const float* in, const float* M, int C, float* out, LinearDims dims, const float* lam,
                      cudaStream_t s) {
  detail::check_dims(dims);
  const int dd = dims.head_dim * dims.head_dim;
  const size_t n4 = (size_t)dims.batch * dims.heads * dd / 4;
  detail::ring_step_kernel<<<detail::grid_for(n4), 256, 0, s>>>(in, M, C, out, n4, dd, dims.heads, lam);
  LAUNCH_CHECK();
}

// linear_ring_step over rows [row0, row0 + rows) of every head's state only (All-Scan's blocks); the other rows
// of out are left as they are.
void linear_ring_step_rows(const float* in, const float* M, int C, float* out, LinearDims dims, const float* lam,
                           int row0, int rows, cudaStream_t s) {
  detail::check_dims(dims);
  if (row0 < 0 || rows < 1 || row0 + rows > dims.head_dim) {
    std::fprintf(stderr, "linear_ring_step_rows: rows [%d, %d) outside a state of %d rows\n", row0, row0 + rows,
                 dims.head_dim);
    std::exit(LASP_EXIT_CODE_FAILURE);
  }
  const size_t n = (size_t)dims.batch * dims.heads * rows * dims.head_dim;
  detail::ring_step_rows_kernel<<<detail::grid_for(n / 4 + 1), 256, 0, s>>>(in, M, C, out, n, dims.head_dim,
                                                                            dims.heads, row0, rows, lam);
  LAUNCH_CHECK();
}

// out = a - b.
void state_sub(const float* a, const float* b, float* out, LinearDims dims, cudaStream_t s) {
  detail::check_dims(dims);
  const size_t n4 = (size_t)dims.batch * dims.heads * dims.head_dim * dims.head_dim / 4;
  detail::state_sub_kernel<<<detail::grid_for(n4), 256, 0, s>>>(a, b, out, n4);
  LAUNCH_CHECK();
}

// out = the sum of `count` consecutive states.
void state_sum(const float* states, int count, float* out, LinearDims dims, cudaStream_t s) {
  detail::check_dims(dims);
  const size_t n4 = (size_t)dims.batch * dims.heads * dims.head_dim * dims.head_dim / 4;
  detail::state_sum_kernel<<<detail::grid_for(n4), 256, 0, s>>>(states, count, out, n4);
  LAUNCH_CHECK();
}

// dM = sum_i lam^(i+1) q_i^T do_i.
void linear_grad_state(const bf16* q, const bf16* dout, Piece p, float* dM, LinearDims dims, const float* lam,
                       cudaStream_t s) {
  detail::check_piece(dims, p);
  with_head_dim(dims.head_dim, [&](auto D) {
    detail::state_total<D>(q, dout, p, dM, dims, lam, true, 0.f, s);
  });
}

// Overwrites the piece's rows of dq, dk, dv with the intra-piece gradients.
void linear_intra_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, Piece p, bf16* dq,
                           bf16* dk, bf16* dv, LinearDims dims, const float* lam, bool causal, cudaStream_t s) {
  detail::check_piece(dims, p);
  with_head_dim(dims.head_dim, [&](auto D) {
    detail::intra_backward<D>(q, k, v, dout, nullptr, nullptr, p, dq, dk, dv, dims, lam, causal, s);
  });
}

// dq_i += lam^(i+1) do_i P^T.
void linear_dq_inter(const bf16* dout, const float* P, Piece p, bf16* dq, LinearDims dims, const float* lam,
                     cudaStream_t s) {
  detail::check_piece(dims, p);
  with_head_dim(dims.head_dim, [&](auto D) {
    detail::launch_apply<D, true>(dout, P, dq, dims, p, lam, 1, true, s);
  });
}

// dk_j += lam^(C-1-j) v_j G^T ;  dv_j += lam^(C-1-j) k_j G.
void linear_dkdv_inter(const bf16* k, const bf16* v, const float* G, Piece p, bf16* dk, bf16* dv, LinearDims dims,
                       const float* lam, cudaStream_t s) {
  detail::check_piece(dims, p);
  with_head_dim(dims.head_dim, [&](auto D) {
    detail::launch_apply<D, true>(v, G, dk, dims, p, lam, 2, true, s);
    detail::launch_apply<D, false>(k, G, dv, dims, p, lam, 2, true, s);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Fused variants (LASP-2 fused, the generator's default). When the schedule can wait for P (forward) or
// P and G (backward) before the intra pass, these do intra + inter in one pass over the activations:
//   linear_forward_fused  = linear_intra + linear_inter                                   (o overwritten)
//   linear_backward_fused = linear_intra_backward + linear_dq_inter + linear_dkdv_inter   (dq, dk, dv overwritten)
// The cross-rank state only changes the walk's starting state, so this saves the inter kernels' whole
// read-modify-write passes (3 activation tensors forward, 9 backward). P or G may be nullptr (zero).
// In LASP-2 the wait costs one all-gather of a d x d state per head (about a megabyte), far less than the
// passes saved at long sequence lengths; LASP-1 should keep the split form, which overlaps its ring.
// ---------------------------------------------------------------------------------------------------------
void linear_forward_fused(const bf16* q, const bf16* k, const bf16* v, const float* P, Piece p, bf16* o,
                          LinearDims dims, const float* lam, bool causal, cudaStream_t s) {
  detail::check_piece(dims, p);
  with_head_dim(dims.head_dim, [&](auto D) {
    detail::intra_forward<D>(q, k, v, P, p, o, dims, lam, causal, s);
  });
}

void linear_backward_fused(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, const float* P,
                           const float* G, Piece p, bf16* dq, bf16* dk, bf16* dv, LinearDims dims, const float* lam,
                           bool causal, cudaStream_t s) {
  detail::check_piece(dims, p);
  with_head_dim(dims.head_dim, [&](auto D) {
    detail::intra_backward<D>(q, k, v, dout, P, G, p, dq, dk, dv, dims, lam, causal, s);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Shared segment states (the generator passes them whenever a kind runs a state walk). Every causal walk needs the states of
// its segments; linear_state and linear_grad_state compute exactly those aggregates on the way to M and dM.
// These overloads keep them in a caller-owned fp32 workspace, so the walks skip their own segment-state
// pass (one read of k and v, or q and do, per walk: 5.25 activation tensors of the per-rank fwd + bwd).
//
//   size_t bytes = linear_state_workspace_bytes(dims, piece.length);   // host, no device work
//     = nseg * batch * heads * head_dim^2 * 4, nseg = the state call's segment count for this piece (0 for an
//       empty piece); at most ceil(2 * SMs / (batch*heads)) and piece.length / 64 segments per head.
//   kv:  linear_state(k, v, p, M, dims, lam, s, kv_ws);                 writes M and kv_ws
//        linear_intra(q, k, v, p, o, dims, lam, causal, s, kv_ws)  or  linear_forward_fused(..., s, kv_ws)
//   qdo: linear_grad_state(q, do, p, dM, dims, lam, s, qdo_ws);         writes dM and qdo_ws
//        linear_intra_backward(q, k, v, do, p, dq, dk, dv, dims, lam, causal, s, kv_ws, qdo_ws)
//     or linear_backward_fused(..., s, kv_ws, qdo_ws)   (kv_ws serves the dq walk, qdo_ws the dk/dv walk)
//
// Rules:
// - Ordering: the state call must come before the consumer on the same stream (or the consumer's stream must
//   wait for an event recorded after it). The consumer only reads the workspace, so one kv_ws can serve the
//   forward walk and later the backward's dq walk; it must not be overwritten in between (another piece or
//   layer needs its own workspace).
// - Validity: a workspace describes one (k, v) or (q, do) pair, one piece (offset and length), one dims and
//   one lam table; a consumer must be given the same ones (same contents of k, v, q, do and lam, too).
//   Bidirectional consumers use a workspace only when lam == nullptr (a bidirectional layer's states are
//   undecayed sums, and the state call must then have had lam == nullptr too); with a lam table they
//   recompute and ignore it.
// - The segment plan (plan_shared) depends only on batch*heads, piece.length and the device's SM count
//   (read once per process, LASP_SM_RESERVE included), so producer and consumer in one process always cut
//   the piece the same way; the walk merges consecutive state segments, never splits them.
// - A null workspace is always allowed: the producer then keeps nothing, and a consumer recomputes (it
//   behaves exactly as the overload without the argument). The workspace size must be at least `bytes`.
// ---------------------------------------------------------------------------------------------------------
size_t linear_state_workspace_bytes(LinearDims dims, int piece_length) {
  detail::check_dims(dims);
  detail::require(piece_length >= 0 && piece_length % detail::kBlock == 0, "piece length must be a multiple of 64");
  if (piece_length == 0) return 0;
  const int bh = dims.batch * dims.heads;
  return (size_t)detail::plan_shared(bh, piece_length).fine.nseg * bh * dims.head_dim * dims.head_dim *
         sizeof(float);
}

void linear_state(const bf16* k, const bf16* v, Piece p, float* M, LinearDims dims, const float* lam,
                  cudaStream_t s, float* kv_ws) {
  detail::check_piece(dims, p);
  with_head_dim(dims.head_dim, [&](auto D) {
    detail::state_total<D>(k, v, p, M, dims, lam, false, 0.f, s, kv_ws);
  });
}

void linear_grad_state(const bf16* q, const bf16* dout, Piece p, float* dM, LinearDims dims, const float* lam,
                       cudaStream_t s, float* qdo_ws) {
  detail::check_piece(dims, p);
  with_head_dim(dims.head_dim, [&](auto D) {
    detail::state_total<D>(q, dout, p, dM, dims, lam, true, 0.f, s, qdo_ws);
  });
}

void linear_intra(const bf16* q, const bf16* k, const bf16* v, Piece p, bf16* o, LinearDims dims, const float* lam,
                  bool causal, cudaStream_t s, const float* kv_ws) {
  detail::check_piece(dims, p);
  with_head_dim(dims.head_dim, [&](auto D) {
    detail::intra_forward<D>(q, k, v, nullptr, p, o, dims, lam, causal, s, kv_ws);
  });
}

void linear_intra_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, Piece p, bf16* dq,
                           bf16* dk, bf16* dv, LinearDims dims, const float* lam, bool causal, cudaStream_t s,
                           const float* kv_ws, const float* qdo_ws) {
  detail::check_piece(dims, p);
  with_head_dim(dims.head_dim, [&](auto D) {
    detail::intra_backward<D>(q, k, v, dout, nullptr, nullptr, p, dq, dk, dv, dims, lam, causal, s, kv_ws, qdo_ws);
  });
}

void linear_forward_fused(const bf16* q, const bf16* k, const bf16* v, const float* P, Piece p, bf16* o,
                          LinearDims dims, const float* lam, bool causal, cudaStream_t s, const float* kv_ws) {
  detail::check_piece(dims, p);
  with_head_dim(dims.head_dim, [&](auto D) {
    detail::intra_forward<D>(q, k, v, P, p, o, dims, lam, causal, s, kv_ws);
  });
}

void linear_backward_fused(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, const float* P,
                           const float* G, Piece p, bf16* dq, bf16* dk, bf16* dv, LinearDims dims, const float* lam,
                           bool causal, cudaStream_t s, const float* kv_ws, const float* qdo_ws) {
  detail::check_piece(dims, p);
  with_head_dim(dims.head_dim, [&](auto D) {
    detail::intra_backward<D>(q, k, v, dout, P, G, p, dq, dk, dv, dims, lam, causal, s, kv_ws, qdo_ws);
  });
}

// ---------------------------------------------------------------------------------------------------------
// The program's calls (kernels.h): the same entry points taking their operands as one named struct
// (attention_args.cuh); an unset workspace is nullptr, which the overloads above read as "recompute".
// Without documents (a.docs.any() false) each is exactly the overload above. With them, row r of the piece is
// global position a.position + r and every term takes the document mask of docs/DOCUMENTS.md; a workspace then
// holds masked aggregates, so its producer and consumer must be given the same documents and position. The
// state calls also write a.flag (when set).
// Bidirectional layers with documents (lam = 1; the lam table, nullptr or 1s, is not read): the calls with
// `causal` take causal == false; the others know them by their bidirectional operand (head, tail, after,
// before), which a causal call never sets. f is the piece's first end (its last row if none), l its last (-1):
//   linear_state       m = sum_{j > l} k_j^T v_j, head = sum_{i <= f} k_i^T v_i
//   linear_grad_state  dm = sum_{i <= f} q_i^T do_i, tail = sum_{j > l} q_j^T do_j
//   linear_intra       o_i = sum_{j in the piece, same document} (q_i . k_j) v_j         (also linear.full)
//   linear_inter       o_i += [i <= f] q_i p + [i > l] q_i after
//   linear_forward_fused   intra + inter
//   linear_intra_backward  the exact gradients of intra (three same-document products)
//   linear_dq_inter    dq_i += [i <= f] do_i p^T + [i > l] do_i after^T
//   linear_dkdv_inter  dk_j += [j <= f] v_j before^T + [j > l] v_j g^T, dv_j += [j <= f] k_j before + [j > l] k_j g
//   linear_backward_fused  intra_backward + dq_inter + dkdv_inter
// Every state operand may be nullptr (no such term); an inter call without its bidirectional operand (after,
// before) runs the causal masks (p: first[i] < position, which differs from i <= f only where the gathered scan
// makes p zero anyway). The workspaces kv_ws / qdo_ws are ignored by these calls (neither written nor read): the
// bidirectional document walks recompute their segment states.
// ---------------------------------------------------------------------------------------------------------
void linear_state(const LinearStateArgs& a, LinearDims dims, const float* lam, cudaStream_t s) {
  if (!a.docs.any()) return linear_state(a.k, a.v, a.piece, a.m, dims, lam, s, a.kv_ws);
  // M = sum over the tokens after the piece's last end (last[j] >= position + C); flag: an end in the piece.
  const detail::PieceDocs pd{a.docs, a.position};
  detail::check_piece(dims, a.piece);
  detail::check_documents(pd, a.piece, "linear_state");
  with_head_dim(dims.head_dim, [&](auto D) {
    if (a.head != nullptr) {  // bidirectional: m (the same M with lam = 1) and head (first[i] <= position)
      detail::state_total<D>(a.k, a.v, a.piece, a.m, dims, nullptr, false, 0.f, s, nullptr, pd);
      detail::doc_head_state<D>(a.k, a.v, a.piece, a.head, dims, pd, s);
    } else {
      detail::state_total<D>(a.k, a.v, a.piece, a.m, dims, lam, false, 0.f, s, a.kv_ws, pd);
    }
  });
  detail::launch_piece_flag(pd, a.piece, dims.batch, a.flag, s);
}

void linear_intra(const LinearIntraArgs& a, LinearDims dims, const float* lam, cudaStream_t s) {
  if (!a.docs.any()) return linear_intra(a.q, a.k, a.v, a.piece, a.o, dims, lam, a.causal, s, a.kv_ws);
  const detail::PieceDocs pd{a.docs, a.position};
  detail::check_piece(dims, a.piece);
  detail::check_documents(pd, a.piece, "linear_intra");
  with_head_dim(dims.head_dim, [&](auto D) {
    detail::intra_forward<D>(a.q, a.k, a.v, nullptr, a.piece, a.o, dims, lam, a.causal, s, a.kv_ws, pd);
  });
}

void linear_inter(const LinearInterArgs& a, LinearDims dims, const float* lam, cudaStream_t s) {
  if (!a.docs.any()) return linear_inter(a.q, a.p, a.piece, a.o, dims, lam, s);
  // Causal: only the rows with first[i] < position (their document began in an earlier piece) see P.
  const detail::PieceDocs pd{a.docs, a.position};
  detail::check_piece(dims, a.piece);
  detail::check_documents(pd, a.piece, "linear_inter");
  with_head_dim(dims.head_dim, [&](auto D) {
    if (a.after != nullptr) {  // bidirectional: [i <= f] q_i p (mode 3) + [i > l] q_i after (mode 2, lam = 1)
      if (a.p != nullptr) detail::launch_apply<D, false>(a.q, a.p, a.o, dims, a.piece, nullptr, 3, true, s, pd);
      detail::launch_apply<D, false>(a.q, a.after, a.o, dims, a.piece, nullptr, 2, true, s, pd);
    } else {
      detail::launch_apply<D, false>(a.q, a.p, a.o, dims, a.piece, lam, 1, true, s, pd);
    }
  });
}

void linear_forward_fused(const LinearForwardFusedArgs& a, LinearDims dims, const float* lam, cudaStream_t s) {
  if (!a.docs.any()) return linear_forward_fused(a.q, a.k, a.v, a.p, a.piece, a.o, dims, lam, a.causal, s, a.kv_ws);
  const detail::PieceDocs pd{a.docs, a.position};
  detail::check_piece(dims, a.piece);
  detail::check_documents(pd, a.piece, "linear_forward_fused");
  detail::require(!a.causal || a.after == nullptr, "linear_forward_fused: `after` is a bidirectional layer's operand");
  with_head_dim(dims.head_dim, [&](auto D) {
    detail::intra_forward<D>(a.q, a.k, a.v, a.p, a.piece, a.o, dims, lam, a.causal, s, a.kv_ws, pd, a.after);
  });
}

void linear_grad_state(const LinearGradStateArgs& a, LinearDims dims, const float* lam, cudaStream_t s) {
  if (!a.docs.any()) return linear_grad_state(a.q, a.dout, a.piece, a.dm, dims, lam, s, a.qdo_ws);
  // Causal: dM = sum over the queries before the piece's first end whose document began earlier (first[i] <
  // position).
  const detail::PieceDocs pd{a.docs, a.position};
  detail::check_piece(dims, a.piece);
  detail::check_documents(pd, a.piece, "linear_grad_state");
  with_head_dim(dims.head_dim, [&](auto D) {
    if (a.tail != nullptr) {  // bidirectional: dm = sum_{i <= f} (first[i] <= position), tail = sum_{j > l}
      detail::doc_head_state<D>(a.q, a.dout, a.piece, a.dm, dims, pd, s);
      detail::state_total<D>(a.q, a.dout, a.piece, a.tail, dims, nullptr, false, 0.f, s, nullptr, pd);
    } else {
      detail::state_total<D>(a.q, a.dout, a.piece, a.dm, dims, lam, true, 0.f, s, a.qdo_ws, pd);
    }
  });
  detail::launch_piece_flag(pd, a.piece, dims.batch, a.flag, s);
}

void linear_intra_backward(const LinearIntraBackwardArgs& a, LinearDims dims, const float* lam, cudaStream_t s) {
  if (!a.docs.any())
    return linear_intra_backward(a.q, a.k, a.v, a.dout, a.piece, a.dq, a.dk, a.dv, dims, lam, a.causal, s, a.kv_ws,
                                 a.qdo_ws);
  const detail::PieceDocs pd{a.docs, a.position};
  detail::check_piece(dims, a.piece);
  detail::check_documents(pd, a.piece, "linear_intra_backward");
  with_head_dim(dims.head_dim, [&](auto D) {
    detail::intra_backward<D>(a.q, a.k, a.v, a.dout, nullptr, nullptr, a.piece, a.dq, a.dk, a.dv, dims, lam,
                              a.causal, s, a.kv_ws, a.qdo_ws, pd);
  });
}

void linear_dq_inter(const LinearDqInterArgs& a, LinearDims dims, const float* lam, cudaStream_t s) {
  if (!a.docs.any()) return linear_dq_inter(a.dout, a.p, a.piece, a.dq, dims, lam, s);
  const detail::PieceDocs pd{a.docs, a.position};
  detail::check_piece(dims, a.piece);
  detail::check_documents(pd, a.piece, "linear_dq_inter");
  with_head_dim(dims.head_dim, [&](auto D) {
    if (a.after != nullptr) {  // bidirectional: [i <= f] do_i p^T + [i > l] do_i after^T
      if (a.p != nullptr) detail::launch_apply<D, true>(a.dout, a.p, a.dq, dims, a.piece, nullptr, 3, true, s, pd);
      detail::launch_apply<D, true>(a.dout, a.after, a.dq, dims, a.piece, nullptr, 2, true, s, pd);
    } else {
      detail::launch_apply<D, true>(a.dout, a.p, a.dq, dims, a.piece, lam, 1, true, s, pd);
    }
  });
}

void linear_dkdv_inter(const LinearDkdvInterArgs& a, LinearDims dims, const float* lam, cudaStream_t s) {
  if (!a.docs.any()) return linear_dkdv_inter(a.k, a.v, a.g, a.piece, a.dk, a.dv, dims, lam, s);
  // Causal: only the keys after the piece's last end (last[j] >= position + C) see G.
  const detail::PieceDocs pd{a.docs, a.position};
  detail::check_piece(dims, a.piece);
  detail::check_documents(pd, a.piece, "linear_dkdv_inter");
  with_head_dim(dims.head_dim, [&](auto D) {
    if (a.before != nullptr) {  // bidirectional: [j <= f] (v_j before^T, k_j before) + [j > l] (v_j g^T, k_j g)
      detail::launch_apply<D, true>(a.v, a.before, a.dk, dims, a.piece, nullptr, 3, true, s, pd);
      detail::launch_apply<D, false>(a.k, a.before, a.dv, dims, a.piece, nullptr, 3, true, s, pd);
      if (a.g != nullptr) {
        detail::launch_apply<D, true>(a.v, a.g, a.dk, dims, a.piece, nullptr, 2, true, s, pd);
        detail::launch_apply<D, false>(a.k, a.g, a.dv, dims, a.piece, nullptr, 2, true, s, pd);
      }
    } else {
      detail::launch_apply<D, true>(a.v, a.g, a.dk, dims, a.piece, lam, 2, true, s, pd);
      detail::launch_apply<D, false>(a.k, a.g, a.dv, dims, a.piece, lam, 2, true, s, pd);
    }
  });
}

void linear_backward_fused(const LinearBackwardFusedArgs& a, LinearDims dims, const float* lam, cudaStream_t s) {
  if (!a.docs.any())
    return linear_backward_fused(a.q, a.k, a.v, a.dout, a.p, a.g, a.piece, a.dq, a.dk, a.dv, dims, lam, a.causal, s,
                                 a.kv_ws, a.qdo_ws);
  const detail::PieceDocs pd{a.docs, a.position};
  detail::check_piece(dims, a.piece);
  detail::check_documents(pd, a.piece, "linear_backward_fused");
  detail::require(!a.causal || (a.after == nullptr && a.before == nullptr),
                  "linear_backward_fused: `after` and `before` are a bidirectional layer's operands");
  with_head_dim(dims.head_dim, [&](auto D) {
    detail::intra_backward<D>(a.q, a.k, a.v, a.dout, a.p, a.g, a.piece, a.dq, a.dk, a.dv, dims, lam, a.causal, s,
                              a.kv_ws, a.qdo_ws, pd, a.after, a.before);
  });
}

}  // namespace lasp
