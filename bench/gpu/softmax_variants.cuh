// Softmax attention kernel variants that only the benchmarks select (as llm.c keeps its kernel versions in
// dev/cuda/), beside the shipped kernels of templates/runtime/softmax_attention.cuh, which holds the default path
// and its real fallbacks only. The harnesses (softmax_kernels.cu, cudnn_attention_test.cu) call the three
// functions at the end instead of the public ones: with the settings at their defaults those ARE the public
// functions; otherwise they run the chosen shipped kernel or a variant kept here.
//
// Modes, by the numbers SOFTMAX_NOTES.md and bench/results use (head_dim 128; head_dim 64 always runs mma.sync):
//   forward   0 mma.sync          shipped (SoftmaxForwardKernel::mma_sync, the fallback before Hopper)
//             1 plain wgmma       here (fwd_wgmma_kernel: no intra-warpgroup overlap)
//             2 plain wgmma       here, with V's two descriptor offsets swapped (a probe: wrong on H100)
//             3 pipelined wgmma   shipped (SoftmaxForwardKernel::wgmma_pipelined, the fallback without tensor maps)
//             4 warp-specialized  shipped default (SoftmaxForwardKernel::warp_specialized: 2 K/V stages)
//             5 warp-specialized  here, with 3 K/V stages
//   backward  0 mma.sync, 1 wgmma, 2 warp-specialized (all shipped; 2 the default, 1 its fallback; the mode 3 of
//             SOFTMAX_NOTES.md v9, S^T and dP^T waited for apart, is part of mode 2 since v10)
// and two settings of the wgmma kernels, both 0 in the product: pingpong() (forward modes 4 and 5: FA3's
// ping-pong turns between the consumer warpgroups) and dq_vec4() (backward mode 1: 16-byte dQ atomics where
// dq_acc is 16-byte aligned; mode 2 adds dQ with TMA reduce-adds, no atomics). Modes 4 and 5 take mode 3 where no
// tensor map can be made, backward mode 2 mode 1, as the product does. (Mode 2 with 8-byte atomics, the default
// before 2026-12-06, is in git history: bench/results/2026-12-06-softmax-bwd-tma-dq.md.)
//
// Why they are not shipped (measurements in SOFTMAX_NOTES.md): the plain wgmma forward is 1.3-1.7x slower than
// the pipelined and warp-specialized ones (v5, v7); 3 stages were no faster than 2 (run 7); ping-pong turns and
// 16-byte dQ atomics were no faster on H100 (runs 7 and 8).
#pragma once
#include "../../templates/runtime/softmax_attention.cuh"

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace lasp {
namespace smx {

constexpr int wg_smem_bytes() { return (kWgBM * 128 + 4 * kWgBN * 128) * 2 + 1024; }

// Forward mode 1 (and 2): the wgmma forward of v3, before FA3's intra-warpgroup overlap. Each tile: S = Q K^T,
// wait, softmax, O += P V, wait, with one CTA barrier per tile (the two warpgroups in lockstep). K/V
// double-buffered with cp.async.
template <bool CAUSAL, bool OUT_F32>
__global__ void __launch_bounds__(kWgThreads, 1)
    fwd_wgmma_kernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
                     const __nv_bfloat16* __restrict__ v, SoftmaxDims dm, PieceMap qmap, PieceMap kmap,
                     float* __restrict__ o_part, float* __restrict__ lse, __nv_bfloat16* __restrict__ o_out,
                     float scale_log2, uint32_t v_lbo, uint32_t v_sbo) {
  constexpr int D = 128, BM = kWgBM, BN = kWgBN, NT = kWgThreads;
  extern __shared__ __align__(1024) unsigned char smem_wg[];
  // 1024-byte alignment of the tiles (the swizzle pattern is a function of the address).
  unsigned char* base = smem_wg + ((1024 - (smem_addr(smem_wg) & 1023)) & 1023);
  __nv_bfloat16* sQ = reinterpret_cast<__nv_bfloat16*>(base);
  __nv_bfloat16* sK = sQ + BM * D;      // [2][BN*D]
  __nv_bfloat16* sV = sK + 2 * BN * D;  // [2][BN*D]
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

  int n_end = dm.k_rows, n_full = dm.k_rows;
  if (CAUSAL) {
    n_end = count_le(kmap, dm.k_rows, pos_of(qmap, m0 + qvalid - 1));
    n_full = count_le(kmap, dm.k_rows, pos_of(qmap, m0));
  }
  const int n_tiles = (n_end + BN - 1) / BN;

  load_rows_sw128<BM, NT>(sQ, qg, qstride, qvalid, tid);
  if (n_tiles > 0) {
    load_rows_sw128<BN, NT>(sK, kg, kstride, min(BN, dm.k_rows), tid);
    load_rows_sw128<BN, NT>(sV, vg, kstride, min(BN, dm.k_rows), tid);
  }
  cp_commit();

  float o[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) o[i] = 0.f;
  float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f};
  const uint32_t qaddr = smem_addr(sQ) + wg * 64 * 128;  // this warpgroup's 64 rows (128 bytes each)

  for (int it = 0; it < n_tiles; ++it) {
    const int n0 = it * BN;
    cp_wait<0>();
    fence_proxy_async();  // cp.async writes -> visible to the tensor cores' (async proxy) reads
    __syncthreads();
    if (it + 1 < n_tiles) {
      const int st = (it + 1) & 1, nn = n0 + BN;
      load_rows_sw128<BN, NT>(sK + st * BN * D, kg + (size_t)nn * kstride, kstride, min(BN, dm.k_rows - nn), tid);
      load_rows_sw128<BN, NT>(sV + st * BN * D, vg + (size_t)nn * kstride, kstride, min(BN, dm.k_rows - nn), tid);
    }
    cp_commit();
    const uint32_t kaddr = smem_addr(sK + (it & 1) * BN * D), vaddr = smem_addr(sV + (it & 1) * BN * D);

    float s[64];
    reg_fence(s);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk)
      wgmma_ss(s, gmma_desc(qaddr + (kk >> 2) * BM * 128 + (kk & 3) * 32, 16, 1024),
               gmma_desc(kaddr + (kk >> 2) * BN * 128 + (kk & 3) * 32, 16, 1024), kk > 0);
    wg_commit();
    wg_wait<0>();
    reg_fence(s);

    // s[4j + 2hh + e]: row wg*64 + 16*wq + g + 8*hh, column n0 + 8j + 2tq + e.
    const bool masked = n0 + BN > n_full;
    if (masked) {
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int qp = pos_of(qmap, m0 + wg * 64 + 16 * wq + g + 8 * hh);
#pragma unroll
        for (int j = 0; j < 16; ++j)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int c = n0 + 8 * j + 2 * tq + e;
            const bool vis = c < dm.k_rows && (!CAUSAL || pos_of(kmap, c) <= qp);
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
      const float alpha = ex2(mrow[hh] - bse);
      mrow[hh] = mx;
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        s[4 * j + 2 * hh] = ex2(s[4 * j + 2 * hh] - bse);
        s[4 * j + 2 * hh + 1] = ex2(s[4 * j + 2 * hh + 1] - bse);
        sum += s[4 * j + 2 * hh] + s[4 * j + 2 * hh + 1];
      }
      lrow[hh] = lrow[hh] * alpha + sum;
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        o[4 * j + 2 * hh] *= alpha;
        o[4 * j + 2 * hh + 1] *= alpha;
      }
    }
    uint32_t pa[8][4];
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) {
      pa[kk][0] = pack2(s[8 * kk + 0], s[8 * kk + 1]);
      pa[kk][1] = pack2(s[8 * kk + 2], s[8 * kk + 3]);
      pa[kk][2] = pack2(s[8 * kk + 4], s[8 * kk + 5]);
      pa[kk][3] = pack2(s[8 * kk + 6], s[8 * kk + 7]);
    }
    reg_fence(o);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) wgmma_rs(o, pa[kk], gmma_desc(vaddr + kk * 16 * 128, v_lbo, v_sbo), 1);
    wg_commit();
    wg_wait<0>();
    reg_fence(o);
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

// The warp-specialized forward with a chosen stage count and ping-pong setting.
template <bool CAUSAL, bool OUT_F32, int STAGES>
void launch_fwd_ws_variant(const CUtensorMap& mq, const CUtensorMap& mk, const CUtensorMap& mv, const SoftmaxDims& d,
                           const PieceMap& qm, const PieceMap& km, float* o_part, float* lse, bf16* o_out, float sl2,
                           int pingpong, cudaStream_t s) {
  const dim3 g2(d.batch * d.heads, (d.q_rows + kWgBM - 1) / kWgBM);
  auto kern = fwd_ws_kernel<CAUSAL, OUT_F32, STAGES>;
  set_smem(kern, ws_smem_bytes<STAGES>());
  kern<<<g2, kWsThreads, ws_smem_bytes<STAGES>(), s>>>(mq, mk, mv, d, qm, km, o_part, lse, o_out, sl2,
                                                        (uint32_t)(kWgBN * 128), 1024u, pingpong);
}

// Forward modes 1, 2, 4 and 5 (d = 128).
template <bool CAUSAL, bool OUT_F32>
void launch_fwd_variant(int mode, int pingpong, const bf16* q, const bf16* k, const bf16* v, const SoftmaxDims& d,
                        const PieceMap& qm, const PieceMap& km, float* o_part, float* lse, bf16* o_out,
                        cudaStream_t s) {
  const float sl2 = kLog2e / std::sqrt(128.f);
  if (mode == 4 || mode == 5) {
    CUtensorMap mq, mk, mv;
    if (!make_forward_maps(&mq, &mk, &mv, q, k, v, d)) {
      launch_fwd<128, CAUSAL>(SoftmaxForwardKernel::wgmma_pipelined, q, k, v, d, qm, km, o_part, lse, o_out, s);
      return;
    }
    if (mode == 4)
      launch_fwd_ws_variant<CAUSAL, OUT_F32, 2>(mq, mk, mv, d, qm, km, o_part, lse, o_out, sl2, pingpong, s);
    else
      launch_fwd_ws_variant<CAUSAL, OUT_F32, 3>(mq, mk, mv, d, qm, km, o_part, lse, o_out, sl2, pingpong, s);
  } else {
    const uint32_t panel = kWgBN * 128, lbo = mode != 2 ? panel : 1024u, sbo = mode != 2 ? 1024u : panel;
    const dim3 g2(d.batch * d.heads, (d.q_rows + kWgBM - 1) / kWgBM);
    auto kern = fwd_wgmma_kernel<CAUSAL, OUT_F32>;
    set_smem(kern, wg_smem_bytes());
    kern<<<g2, kWgThreads, wg_smem_bytes(), s>>>(q, k, v, d, qm, km, o_part, lse, o_out, sl2, lbo, sbo);
  }
  LAUNCH_CHECK();
}

// Backward mode 1 (d = 128) with 16-byte dQ atomics where dq_acc is 16-byte aligned.
template <bool CAUSAL, bool KV_BF16>
void launch_bwd_vec4(const bf16* q, const bf16* k, const bf16* v, const float* lse, const bf16* dout,
                     const float* delta, const SoftmaxDims& d, const PieceMap& qm, const PieceMap& km, float* dq_acc,
                     float* dk_acc, float* dv_acc, bf16* dk_out, bf16* dv_out, cudaStream_t s) {
  const dim3 grid(d.batch * d.kv_heads, (d.k_rows + kBwdBN - 1) / kBwdBN);
  const float scale = 1.f / std::sqrt(128.f);
  const int vec4 = (reinterpret_cast<uintptr_t>(dq_acc) & 15) == 0 ? 1 : 0;
  auto kw = bwd_wgmma_kernel<CAUSAL, KV_BF16>;
  set_smem(kw, wgb_smem_bytes());
  kw<<<grid, kBwdThreads, wgb_smem_bytes(), s>>>(q, k, v, lse, dout, delta, d, qm, km, dq_acc, dk_acc, dv_acc, dk_out,
                                                 dv_out, scale, scale * kLog2e, vec4);
  LAUNCH_CHECK();
}

}  // namespace smx

namespace variants {

inline int mode_of(SoftmaxForwardKernel k) {
  return k == SoftmaxForwardKernel::warp_specialized ? 4 : k == SoftmaxForwardKernel::wgmma_pipelined ? 3 : 0;
}
inline int mode_of(SoftmaxBackwardKernel k) {
  return k == SoftmaxBackwardKernel::warp_specialized ? 2 : k == SoftmaxBackwardKernel::wgmma ? 1 : 0;
}
// The modes the product runs for head_dim 128 on this device.
inline int shipped_fwd_mode() { return mode_of(smx::default_forward_kernel(128)); }
inline int shipped_bwd_mode() { return mode_of(smx::default_backward_kernel(128)); }

// The settings the three functions below run; the product's at first.
inline int& fwd_mode() {
  static int mode = shipped_fwd_mode();
  return mode;
}
inline int& bwd_mode() {
  static int mode = shipped_bwd_mode();
  return mode;
}
inline int& pingpong() {
  static int on = 0;
  return on;
}
inline int& dq_vec4() {
  static int on = 0;
  return on;
}

inline void require_mode(bool ok, const char* what, int mode) {
  if (ok) return;
  std::fprintf(stderr, "softmax_variants: no %s mode %d (forward 0-5, backward 0-2)\n", what, mode);
  std::exit(2);
}
inline SoftmaxForwardKernel shipped_forward(int mode) {
  return mode == 4 ? SoftmaxForwardKernel::warp_specialized
         : mode == 3 ? SoftmaxForwardKernel::wgmma_pipelined
                     : SoftmaxForwardKernel::mma_sync;
}
inline SoftmaxBackwardKernel shipped_backward(int mode) {
  return mode == 2 ? SoftmaxBackwardKernel::warp_specialized
         : mode == 1 ? SoftmaxBackwardKernel::wgmma
                     : SoftmaxBackwardKernel::mma_sync;
}

// lasp::softmax_block_forward with fwd_mode() and pingpong().
inline void block_forward(const bf16* q, const bf16* k, const bf16* v, const SoftmaxDims& d, const PieceMap& qmap,
                          const PieceMap& kmap, bool causal, float* o_part, float* lse, bf16* o_out,
                          cudaStream_t stream) {
  const int mode = fwd_mode(), pp = pingpong();
  require_mode(mode >= 0 && mode <= 5, "forward", mode);
  if (mode == shipped_fwd_mode() && !pp) {
    softmax_block_forward(q, k, v, d, qmap, kmap, causal, o_part, lse, o_out, stream);
    return;
  }
  const bool variant = d.head_dim == 128 && (mode == 1 || mode == 2 || mode == 5 || (mode == 4 && pp));
  if (!variant) {
    smx::block_forward(shipped_forward(mode), q, k, v, d, qmap, kmap, causal, o_part, lse, o_out, stream);
    return;
  }
  smx::check_dims(d, "softmax_block_forward");
  if ((o_part == nullptr) == (o_out == nullptr)) {
    std::fprintf(stderr, "softmax_block_forward: exactly one of o_part and o_out must be given\n");
    std::exit(3);
  }
  if (d.q_rows == 0) return;
  if (causal) {
    if (o_part) smx::launch_fwd_variant<true, true>(mode, pp, q, k, v, d, qmap, kmap, o_part, lse, o_out, stream);
    else smx::launch_fwd_variant<true, false>(mode, pp, q, k, v, d, qmap, kmap, o_part, lse, o_out, stream);
  } else {
    if (o_part) smx::launch_fwd_variant<false, true>(mode, pp, q, k, v, d, qmap, kmap, o_part, lse, o_out, stream);
    else smx::launch_fwd_variant<false, false>(mode, pp, q, k, v, d, qmap, kmap, o_part, lse, o_out, stream);
  }
}

// Whether the backward runs a variant here (16-byte dQ atomics on the wgmma kernel) rather than a shipped kernel.
inline bool backward_variant(const SoftmaxDims& d) { return d.head_dim == 128 && bwd_mode() == 1 && dq_vec4(); }

// lasp::softmax_block_backward with bwd_mode() (0-2) and dq_vec4().
inline void block_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* o, const float* lse,
                           const bf16* dout, const SoftmaxDims& d, const PieceMap& qmap, const PieceMap& kmap,
                           bool causal, float* dq_acc, float* dk_acc, float* dv_acc, cudaStream_t stream) {
  const int mode = bwd_mode();
  require_mode(mode >= 0 && mode <= 2, "backward", mode);
  if (mode == shipped_bwd_mode() && !dq_vec4()) {
    softmax_block_backward(q, k, v, o, lse, dout, d, qmap, kmap, causal, dq_acc, dk_acc, dv_acc, stream);
    return;
  }
  if (!backward_variant(d)) {
    smx::block_backward(shipped_backward(mode), q, k, v, o, lse, dout, d, qmap, kmap, causal, dq_acc, dk_acc, dv_acc,
                        stream);
    return;
  }
  smx::check_dims(d, "softmax_block_backward");
  if (d.q_rows == 0 || d.k_rows == 0) return;
  const float* delta = smx::launch_delta<128>(o, dout, d, stream);
  if (causal)
    smx::launch_bwd_vec4<true, false>(q, k, v, lse, dout, delta, d, qmap, kmap, dq_acc, dk_acc, dv_acc,
                                         nullptr, nullptr, stream);
  else
    smx::launch_bwd_vec4<false, false>(q, k, v, lse, dout, delta, d, qmap, kmap, dq_acc, dk_acc, dv_acc,
                                          nullptr, nullptr, stream);
}

// lasp::softmax_full_backward with bwd_mode() (0-2) and dq_vec4().
inline void full_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* o, const float* lse,
                          const bf16* dout, const SoftmaxDims& d, bool causal, bf16* dq, bf16* dk, bf16* dv,
                          cudaStream_t stream) {
  const int mode = bwd_mode();
  require_mode(mode >= 0 && mode <= 2, "backward", mode);
  if (mode == shipped_bwd_mode() && !dq_vec4()) {
    softmax_full_backward(q, k, v, o, lse, dout, d, causal, dq, dk, dv, stream);
    return;
  }
  if (!backward_variant(d)) {
    smx::full_backward(shipped_backward(mode), q, k, v, o, lse, dout, d, causal, dq, dk, dv, stream);
    return;
  }
  // smx::full_backward's steps around the variant kernel.
  smx::check_dims(d, "softmax_full_backward");
  if (d.q_rows != d.k_rows) {
    std::fprintf(stderr, "softmax_full_backward: q_rows (%d) must equal k_rows (%d)\n", d.q_rows, d.k_rows);
    std::exit(3);
  }
  if (d.q_rows == 0) return;
  const PieceMap id{0, {0, 0}, {0, 0}, {0, 0}};
  const size_t nq = (size_t)d.batch * d.q_rows * d.heads * d.head_dim;
  float* dqw = static_cast<float*>(smx::dq_workspace().get(nq * sizeof(float)));
  CUDA_CHECK(cudaMemsetAsync(dqw, 0, nq * sizeof(float), stream));
  const float* delta = smx::launch_delta<128>(o, dout, d, stream);
  if (causal)
    smx::launch_bwd_vec4<true, true>(q, k, v, lse, dout, delta, d, id, id, dqw, nullptr, nullptr, dk, dv,
                                        stream);
  else
    smx::launch_bwd_vec4<false, true>(q, k, v, lse, dout, delta, d, id, id, dqw, nullptr, nullptr, dk, dv,
                                         stream);
  const size_t n4 = nq / 4;
  smx::f32_to_bf16_kernel<<<(unsigned)((n4 + 255) / 256), 256, 0, stream>>>(dqw, dq, n4);
  LAUNCH_CHECK();
}

}  // namespace variants
}  // namespace lasp
