// The dense fp32 oracle of verify mode: linear attention by its masked definition, over every row.
//
//   causal         o_i = sum_{j <= i, doc(j) = doc(i)} lam^(i-j) (q_i . k_j) v_j
//   bidirectional  o_i = sum_{j, doc(j) = doc(i)} (q_i . k_j) v_j
// and the gradients by the same definition (dq_i = sum_{j<=i} lam^(i-j) (do_i . v_j) k_j,
// dk_j = sum_{i>=j} lam^(i-j) (do_i . v_j) q_i, dv_j = sum_{i>=j} lam^(i-j) (q_i . k_j) do_i, every sum over
// the pairs of one document). Documents (types.cuh, docs/DOCUMENTS.md) are the step's packed documents over the
// whole sequence, per batch row b at [b * docs.seq_len + t]; docs.any() false: one document (nothing masked).
//
// Design choices:
// - It shares nothing with the fast kernels: no chunks, no states, no tensor cores, no bf16 intermediates.
//   Every score is an fp32 dot product and every decay lam^(i-j) is computed from its own exponent. It is
//   O(N^2 d) work, which is fine for the sequence lengths verify mode uses.
// - One kernel serves all four outputs: out_r = sum_c mask(r, c) (a_r . b_c) w_c with a forward mask
//   (c <= r), a reverse mask (c >= r) or none, times the document mask. A CTA holds 64 query rows in shared
//   memory, streams 64-row tiles of b and w, keeps its 64 x d outputs in registers (4 x 4 register blocks,
//   float4 shared loads), and skips the tiles that the mask empties.
// - The document mask is its definition: (r, c) is a pair iff r and c lie in one document, i.e.
//   first[r] == first[c] (first: the document's first token, types.cuh); `last` only bounds the tiles. It
//   holds in every mode, bidirectional included. Skipping uses that first and last are nondecreasing: a CTA of
//   rows [r0, r1] needs only the columns [first[r0], last[r1]] (clipped to the sequence), so packed documents of
//   length D cost about N D instead of N^2 / 2 pairs. docs.any() false: the kernel's document pointers are null and it runs as without documents.
// - max_rel_err reduces on the GPU (max |got - ref| and max |ref| as ordered float bits, so a NaN or an inf
//   anywhere wins the max and fails the check) and returns to the host: it synchronises the stream.
// - Extra entry points compute selected rows only (oracle_linear_*_rows), for checks of very long pieces
//   where the whole O(N^2 d) product would take too long; with documents as an overload (docs before the
//   stream), without them as before.
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "types.cuh"
#include "check.cuh"

namespace lasp {
namespace oracle {

enum Mask { kForward = 0, kReverse = 1, kNone = 2 };
constexpr int kTile = 64;  // query rows per CTA and key rows per tile
constexpr int kThreads = 256;

// The weight of (row r, column c): 0 outside the mask, else lam^|r - c| (1 without decay).
__device__ __forceinline__ float mask_weight(int r, int c, int mode, float log2lam) {
  if (mode == kNone) return 1.f;
  int gap = mode == kForward ? r - c : c - r;
  if (gap < 0) return 0.f;
  return exp2f((float)gap * log2lam);
}

// Whether r and c (both in [0, T)) lie in one document: `first` is the batch row's first[] (types.cuh's
// Documents), nullptr for no documents.
__device__ __forceinline__ bool same_document(const int* __restrict__ first, int r, int c) {
  return first == nullptr || __ldg(first + r) == __ldg(first + c);
}

// The columns [c_begin, c_end) that rows [r0, r1] (r1 < T) may reach through the mode's mask and the documents
// (first and last of the batch row, nondecreasing; null: none).
__device__ __forceinline__ void column_range(int r0, int r1, int T, int mode, const int* __restrict__ first,
                                             const int* __restrict__ last, int& c_begin, int& c_end) {
  c_begin = 0;
  c_end = T;
  if (mode == kForward) c_end = min(T, r1 + 1);
  if (mode == kReverse) c_begin = r0;
  if (first != nullptr) {
    c_begin = max(c_begin, __ldg(first + r0));
    c_end = min(c_end, __ldg(last + r1) + 1);  // last is at most T (no end after r1): clipped to T
  }
}

// 64 rows of out per CTA. Scores: thread (ty, tx) owns a 4x4 block (rows 4ty.., columns 4tx..), reading
// a and b transposed in shared memory as float4s. Output: thread owns 4 rows x D/16 columns.
template <int D>
__global__ void __launch_bounds__(kThreads)
    dense_kernel(const __nv_bfloat16* __restrict__ a, const __nv_bfloat16* __restrict__ bm,
                 const __nv_bfloat16* __restrict__ w, float* __restrict__ out, int T, int H,
                 const float* __restrict__ lam, int mode, const int* __restrict__ doc_first,
                 const int* __restrict__ doc_last) {
  extern __shared__ __align__(16) float sm[];
  float* saT = sm;                  // [D][kTile]   a^T of the CTA's rows
  float* sbT = saT + D * kTile;     // [D][kTile]   b^T of the column tile
  float* sw = sbT + D * kTile;      // [kTile][D]   w of the column tile
  float* scT = sw + kTile * D;      // [kTile][kTile] masked scores, [column][row]
  constexpr int CPT = D / 16;       // output columns per thread
  const int tid = threadIdx.x, bh = blockIdx.y, b = bh / H, h = bh % H;
  const int r0 = blockIdx.x * kTile;
  const float l2 = (lam != nullptr && mode != kNone) ? log2f(lam[h]) : 0.f;
  auto row_ptr = [&](const __nv_bfloat16* base, int r) { return base + (((size_t)b * T + r) * H + h) * D; };
  const int* first = doc_first != nullptr ? doc_first + (size_t)b * T : nullptr;  // this batch row's documents
  const int* last = doc_last != nullptr ? doc_last + (size_t)b * T : nullptr;

  for (int e = tid; e < kTile * D; e += kThreads) {
    int r = e / D, c = e % D;
    saT[c * kTile + r] = r0 + r < T ? __bfloat162float(row_ptr(a, r0 + r)[c]) : 0.f;
  }
  const int ty = tid / 16, tx = tid % 16;
  float acc[4][CPT];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < CPT; ++j) acc[i][j] = 0.f;

  int c_begin, c_end;  // the tiles the masks leave non-empty (they need not start at a multiple of 64)
  column_range(r0, min(T, r0 + kTile) - 1, T, mode, first, last, c_begin, c_end);
  for (int c0 = c_begin; c0 < c_end; c0 += kTile) {
    __syncthreads();
    for (int e = tid; e < kTile * D; e += kThreads) {
      int r = e / D, c = e % D;
      bool in = c0 + r < T;
      sbT[c * kTile + r] = in ? __bfloat162float(row_ptr(bm, c0 + r)[c]) : 0.f;
      sw[e] = in ? __bfloat162float(row_ptr(w, c0 + r)[c]) : 0.f;
    }
    __syncthreads();
    {
      float s[4][4] = {};
      for (int kk = 0; kk < D; ++kk) {
        float4 av = *reinterpret_cast<const float4*>(&saT[kk * kTile + 4 * ty]);
        float4 bv = *reinterpret_cast<const float4*>(&sbT[kk * kTile + 4 * tx]);
        const float ar[4] = {av.x, av.y, av.z, av.w}, br[4] = {bv.x, bv.y, bv.z, bv.w};
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) s[i][j] += ar[i] * br[j];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          int r = r0 + 4 * ty + i, c = c0 + 4 * tx + j;
          bool in = c < T && r < T && same_document(first, r, c);
          scT[(4 * tx + j) * kTile + 4 * ty + i] = in ? s[i][j] * mask_weight(r, c, mode, l2) : 0.f;
        }
    }
    __syncthreads();
    for (int c = 0; c < kTile; ++c) {
      float4 sv = *reinterpret_cast<const float4*>(&scT[c * kTile + 4 * ty]);
      const float sr[4] = {sv.x, sv.y, sv.z, sv.w};
#pragma unroll
      for (int j4 = 0; j4 < CPT / 4; ++j4) {
        float4 wv = *reinterpret_cast<const float4*>(&sw[c * D + tx * CPT + 4 * j4]);
        const float wr[4] = {wv.x, wv.y, wv.z, wv.w};
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[i][4 * j4 + j] += sr[i] * wr[j];
      }
    }
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    int r = r0 + 4 * ty + i;
    if (r < T) {
      float* o = out + (((size_t)b * T + r) * H + h) * D + tx * CPT;
#pragma unroll
      for (int j = 0; j < CPT; ++j) o[j] = acc[i][j];
    }
  }
}

template <int D>
constexpr int dense_smem() {
  return (2 * D * kTile + kTile * D + kTile * kTile) * (int)sizeof(float);
}

template <int D>
void dense(const bf16* a, const bf16* bm, const bf16* w, float* out, const LinearDims& d, const float* lam,
           int mode, const Documents& docs, cudaStream_t s) {
  static bool once = [] {
    CUDA_CHECK(cudaFuncSetAttribute(dense_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, dense_smem<D>()));
    return true;
  }();
  (void)once;
  dim3 grid((d.tokens + kTile - 1) / kTile, d.batch * d.heads);
  dense_kernel<D><<<grid, kThreads, dense_smem<D>(), s>>>(a, bm, w, out, d.tokens, d.heads, lam, mode,
                                                          docs.any() ? docs.first : nullptr,
                                                          docs.any() ? docs.last : nullptr);
  LAUNCH_CHECK();
}

// Documents must cover exactly the oracle's rows (the whole sequence).
inline void check_documents(const char* what, const LinearDims& d, const Documents& docs) {
  if (docs.any() && (docs.first == nullptr || docs.last == nullptr || docs.seq_len != d.tokens)) {
    std::fprintf(stderr, "lasp %s: documents of %d tokens (first %s, last %s) for a sequence of %d tokens\n", what,
                 docs.seq_len, docs.first ? "set" : "null", docs.last ? "set" : "null", d.tokens);
    std::exit(3);
  }
}

inline void dense_any(const bf16* a, const bf16* bm, const bf16* w, float* out, const LinearDims& d,
                      const float* lam, int mode, const Documents& docs, cudaStream_t s) {
  if (d.head_dim == 128)
    dense<128>(a, bm, w, out, d, lam, mode, docs, s);
  else if (d.head_dim == 64)
    dense<64>(a, bm, w, out, d, lam, mode, docs, s);
  else {
    std::fprintf(stderr, "lasp oracle: head_dim must be 64 or 128\n");
    std::exit(3);
  }
}

// Selected rows only: out[u][b][h][:] for row rows[u]. One CTA per (row, batch*head); the scores of a
// 256-column chunk are computed one per thread, then the threads sum the weighted w rows.
__global__ void __launch_bounds__(kThreads)
    rows_kernel(const __nv_bfloat16* __restrict__ a, const __nv_bfloat16* __restrict__ bm,
                const __nv_bfloat16* __restrict__ w, const int* __restrict__ rows, float* __restrict__ out, int T,
                int H, int D, const float* __restrict__ lam, int mode, const int* __restrict__ doc_first,
                const int* __restrict__ doc_last) {
  __shared__ float sa[128];
  __shared__ float sc[kThreads];
  __shared__ float part[kThreads];
  const int tid = threadIdx.x, u = blockIdx.x, bh = blockIdx.y, b = bh / H, h = bh % H;
  const int r = rows[u];
  const float l2 = (lam != nullptr && mode != kNone) ? log2f(lam[h]) : 0.f;
  auto row_ptr = [&](const __nv_bfloat16* base, int rr) { return base + (((size_t)b * T + rr) * H + h) * D; };
  for (int c = tid; c < D; c += kThreads) sa[c] = __bfloat162float(row_ptr(a, r)[c]);
  const int groups = kThreads / D, n = tid % D, grp = tid / D;
  float acc = 0.f;
  const int* first = doc_first != nullptr ? doc_first + (size_t)b * T : nullptr;
  const int* last = doc_last != nullptr ? doc_last + (size_t)b * T : nullptr;
  int c_begin, c_end;  // for one row the range is exactly its document (and the mode's side of it)
  column_range(r, r, T, mode, first, last, c_begin, c_end);
  for (int c0 = c_begin; c0 < c_end; c0 += kThreads) {
    __syncthreads();
    int c = c0 + tid;
    float s = 0.f;
    if (c < c_end) {
      const uint4* bp = reinterpret_cast<const uint4*>(row_ptr(bm, c));
      for (int k8 = 0; k8 < D / 8; ++k8) {
        uint4 u8 = bp[k8];
        const __nv_bfloat162* p2 = reinterpret_cast<const __nv_bfloat162*>(&u8);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float2 f = __bfloat1622float2(p2[e]);
          s += sa[8 * k8 + 2 * e] * f.x + sa[8 * k8 + 2 * e + 1] * f.y;
        }
      }
      s *= same_document(first, r, c) ? mask_weight(r, c, mode, l2) : 0.f;
    }
    sc[tid] = s;
    __syncthreads();
    int cn = min(kThreads, c_end - c0);
    for (int cc = grp; cc < cn; cc += groups) acc += sc[cc] * __bfloat162float(row_ptr(w, c0 + cc)[n]);
  }
  part[tid] = acc;
  __syncthreads();
  if (grp == 0) {
    float s = 0.f;
    for (int g2 = 0; g2 < groups; ++g2) s += part[g2 * D + n];
    out[(((size_t)u * (gridDim.y / H) + b) * H + h) * D + n] = s;
  }
}

__global__ void max_err_kernel(const __nv_bfloat16* __restrict__ got, const float* __restrict__ ref, size_t n,
                               unsigned int* __restrict__ result) {
  unsigned int md = 0, mr = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    float g = __bfloat162float(got[i]), r = ref[i];
    md = max(md, __float_as_uint(fabsf(g - r)));  // NaN and inf have the largest bit patterns
    mr = max(mr, __float_as_uint(fabsf(r)));
  }
  for (int off = 16; off > 0; off >>= 1) {
    md = max(md, __shfl_xor_sync(0xffffffffu, md, off));
    mr = max(mr, __shfl_xor_sync(0xffffffffu, mr, off));
  }
  if ((threadIdx.x & 31) == 0) {
    atomicMax(&result[0], md);
    atomicMax(&result[1], mr);
  }
}

}  // namespace oracle

// o = the masked formula over all `tokens` rows (fp32 [batch][tokens][heads][d]); docs over the same
// `tokens` positions (docs.any() false: one document).
void oracle_linear_forward(const bf16* q, const bf16* k, const bf16* v, float* o, LinearDims dims, const float* lam,
                           bool causal, const Documents& docs, cudaStream_t s) {
  oracle::check_documents("oracle_linear_forward", dims, docs);
  oracle::dense_any(q, k, v, o, dims, lam, causal ? oracle::kForward : oracle::kNone, docs, s);
}

// dq, dk, dv of sum_i <o_i, do_i> by the masked formula (fp32 [batch][tokens][heads][d] each).
void oracle_linear_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, float* dq, float* dk,
                            float* dv, LinearDims dims, const float* lam, bool causal, const Documents& docs,
                            cudaStream_t s) {
  oracle::check_documents("oracle_linear_backward", dims, docs);
  const int fwd = causal ? oracle::kForward : oracle::kNone, rev = causal ? oracle::kReverse : oracle::kNone;
  oracle::dense_any(dout, v, k, dq, dims, lam, fwd, docs, s);
  oracle::dense_any(v, dout, q, dk, dims, lam, rev, docs, s);
  oracle::dense_any(k, q, dout, dv, dims, lam, rev, docs, s);
}

// Without documents: the bench harnesses' calls (bench/gpu/*.cu include this file directly).
void oracle_linear_forward(const bf16* q, const bf16* k, const bf16* v, float* o, LinearDims dims, const float* lam,
                           bool causal, cudaStream_t s) {
  oracle_linear_forward(q, k, v, o, dims, lam, causal, Documents{}, s);
}

void oracle_linear_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, float* dq, float* dk,
                            float* dv, LinearDims dims, const float* lam, bool causal, cudaStream_t s) {
  oracle_linear_backward(q, k, v, dout, dq, dk, dv, dims, lam, causal, Documents{}, s);
}

// The same, for the `count` rows listed in the device array `rows`: out[u][batch][heads][d].
void oracle_linear_forward_rows(const bf16* q, const bf16* k, const bf16* v, const int* rows, int count, float* o,
                                LinearDims dims, const float* lam, bool causal, const Documents& docs,
                                cudaStream_t s) {
  oracle::check_documents("oracle_linear_forward_rows", dims, docs);
  const int* first = docs.any() ? docs.first : nullptr;
  const int* last = docs.any() ? docs.last : nullptr;
  dim3 grid(count, dims.batch * dims.heads);
  oracle::rows_kernel<<<grid, oracle::kThreads, 0, s>>>(q, k, v, rows, o, dims.tokens, dims.heads, dims.head_dim, lam,
                                                        causal ? oracle::kForward : oracle::kNone, first, last);
  LAUNCH_CHECK();
}

void oracle_linear_backward_rows(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, const int* rows,
                                 int count, float* dq, float* dk, float* dv, LinearDims dims, const float* lam,
                                 bool causal, const Documents& docs, cudaStream_t s) {
  oracle::check_documents("oracle_linear_backward_rows", dims, docs);
  const int* first = docs.any() ? docs.first : nullptr;
  const int* last = docs.any() ? docs.last : nullptr;
  const int fwd = causal ? oracle::kForward : oracle::kNone, rev = causal ? oracle::kReverse : oracle::kNone;
  dim3 grid(count, dims.batch * dims.heads);
  oracle::rows_kernel<<<grid, oracle::kThreads, 0, s>>>(dout, v, k, rows, dq, dims.tokens, dims.heads, dims.head_dim,
                                                        lam, fwd, first, last);
  LAUNCH_CHECK();
  oracle::rows_kernel<<<grid, oracle::kThreads, 0, s>>>(v, dout, q, rows, dk, dims.tokens, dims.heads, dims.head_dim,
                                                        lam, rev, first, last);
  LAUNCH_CHECK();
  oracle::rows_kernel<<<grid, oracle::kThreads, 0, s>>>(k, q, dout, rows, dv, dims.tokens, dims.heads, dims.head_dim,
                                                        lam, rev, first, last);
  LAUNCH_CHECK();
}

void oracle_linear_forward_rows(const bf16* q, const bf16* k, const bf16* v, const int* rows, int count, float* o,
                                LinearDims dims, const float* lam, bool causal, cudaStream_t s) {
  oracle_linear_forward_rows(q, k, v, rows, count, o, dims, lam, causal, Documents{}, s);
}

void oracle_linear_backward_rows(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, const int* rows,
                                 int count, float* dq, float* dk, float* dv, LinearDims dims, const float* lam,
                                 bool causal, cudaStream_t s) {
  oracle_linear_backward_rows(q, k, v, dout, rows, count, dq, dk, dv, dims, lam, causal, Documents{}, s);
}

// max |got - ref| / max |ref| over n elements, on the GPU; synchronises `s`. NaN or inf anywhere gives NaN
// or inf, which fails any `err <= tol` test.
float max_rel_err(const bf16* got, const float* ref, size_t n, cudaStream_t s) {
  unsigned int* d = nullptr;
  unsigned int h[2] = {0, 0};
  CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&d), 2 * sizeof(unsigned int), s));
  CUDA_CHECK(cudaMemsetAsync(d, 0, 2 * sizeof(unsigned int), s));
  oracle::max_err_kernel<<<264, 256, 0, s>>>(got, ref, n, d);
  LAUNCH_CHECK();
  CUDA_CHECK(cudaMemcpyAsync(h, d, sizeof(h), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaFreeAsync(d, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  float md, mr;
  std::memcpy(&md, &h[0], 4);
  std::memcpy(&mr, &h[1], 4);
  if (mr == 0.f) return md == 0.f ? 0.f : INFINITY;
  return md / mr;
}

}  // namespace lasp
