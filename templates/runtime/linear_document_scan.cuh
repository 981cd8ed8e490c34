// Linear attention's states across pieces with packed documents (docs/DOCUMENTS.md, "Across pieces"): the
// prefix (or suffix) of a piece is the affine scan P_t = c_{t-1} P_{t-1} + M_{t-1}, with the carry c = 0
// across a piece in which a document ends and lam^L otherwise.
//
// Design choices:
// - Unrolled, a gathered piece u reaches the target with weight lam^gap(u) unless a piece strictly between
//   them holds an end. The pieces between are exactly the gathered pieces with smaller gaps (gaps count the
//   tokens between u and the target in global order), so per batch row the scan is today's decayed sum cut
//   at the nearest flagged piece: u counts iff gap(u) <= the smallest gap of a flagged piece. One pass, no
//   order table, the same gap table as without documents.
// - The flags are per batch row (each row packs its own documents): fp32 [count][batch], 1 = an end inside.
// - LASP-1's and All-Scan's chain step reads its piece's flag from the documents directly (the piece's first
//   token's document ends inside the piece iff last[position] < position + C), so no flag travels.
#pragma once
#include <cuda_runtime.h>
#include <cstdio>
#include <cstdlib>

#include "check.cuh"
#include "linear_attention.cuh"  // detail::decay_pow, head_log2_decay, grid_for, check_dims
#include "types.cuh"

namespace lasp {
namespace detail {

__global__ void document_scan_kernel(const float* __restrict__ states, const float* __restrict__ flags, int count,
                                     const int* __restrict__ gaps, float* __restrict__ out, size_t n4, int dd,
                                     int H, int batch, const float* __restrict__ lam) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) {
    const size_t e = i * 4;
    const int h = (int)((e / dd) % H), b = (int)(e / ((size_t)dd * H));
    int cut = 0x7fffffff;  // the nearest piece with an end: nothing before it reaches the target
    for (int u = 0; u < count; ++u)
      if (gaps[u] >= 0 && flags[(size_t)u * batch + b] != 0.f && gaps[u] < cut) cut = gaps[u];
    const float l2 = head_log2_decay(lam, h);
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int u = 0; u < count; ++u) {
      const int gap = gaps[u];
      if (gap < 0 || gap > cut) continue;
      const float w = decay_pow(l2, (float)gap);
      const float4 s = reinterpret_cast<const float4*>(states)[(size_t)u * n4 + i];
      acc.x += w * s.x;
      acc.y += w * s.y;
      acc.z += w * s.z;
      acc.w += w * s.w;
    }
    reinterpret_cast<float4*>(out)[i] = acc;
  }
}

// out = c in + M over rows [row0, row0 + rows) of every state (all rows: row0 = 0, rows = D), c = 0 where the
// piece at `position` (C tokens) holds an end in that batch row, else lam^C.
__global__ void document_ring_step_kernel(const float* __restrict__ in, const float* __restrict__ M, int C,
                                          float* __restrict__ out, size_t n, int D, int H, int row0, int rows,
                                          Documents docs, int position, const float* __restrict__ lam) {
  const size_t per_state = (size_t)rows * D;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const size_t bh = i / per_state;
    const size_t at = bh * D * D + (size_t)row0 * D + i % per_state;
    float m = M[at];
    if (in != nullptr) {
      const int b = (int)(bh / H), h = (int)(bh % H);
      const bool ends_inside = docs.last[(size_t)b * docs.seq_len + position] < position + C;
      if (!ends_inside) m += decay_pow(head_log2_decay(lam, h), (float)C) * in[at];
    }
    out[at] = m;
  }
}

}  // namespace detail

// out = sum_u [0 <= gaps[u] <= cut_b] lam^gaps[u] states[u], cut_b the smallest gap of a piece flagged in batch
// row b (none: every piece): the prefix or suffix scan with documents. flags: fp32 [count][batch], device.
void linear_document_scan(const float* states, const float* flags, int count, const int* gaps, float* out,
                          LinearDims dims, const float* lam, cudaStream_t s) {
  detail::check_dims(dims);
  const int dd = dims.head_dim * dims.head_dim;
  const size_t n4 = (size_t)dims.batch * dims.heads * dd / 4;
  detail::document_scan_kernel<<<detail::grid_for(n4), 256, 0, s>>>(states, flags, count, gaps, out, n4, dd,
                                                                     dims.heads, dims.batch, lam);
  LAUNCH_CHECK();
}

// LASP-1's and All-Scan's chain step with documents: out = c in + M (in == nullptr: out = M), c = 0 in a batch
// row whose piece (global tokens [position, position + C)) holds an end, else lam^C; rows [row0, row0 + rows)
// of every state only (the rest of out is left as it is).
void linear_document_ring_step(const float* in, const float* M, int C, float* out, LinearDims dims,
                               const float* lam, const Documents& docs, int position, int row0, int rows,
                               cudaStream_t s) {
  detail::check_dims(dims);
  if (!docs.any() || row0 < 0 || rows < 1 || row0 + rows > dims.head_dim || position < 0 || C < 1 ||
      position + C > docs.seq_len) {
    std::fprintf(stderr, "linear_document_ring_step: rows [%d, %d) of %d, piece [%d, %d) of %d tokens%s\n", row0,
                 row0 + rows, dims.head_dim, position, position + C, docs.seq_len,
                 docs.any() ? "" : ", and no documents");
    std::exit(LASP_EXIT_CODE_FAILURE);
  }
  const size_t n = (size_t)dims.batch * dims.heads * rows * dims.head_dim;
  detail::document_ring_step_kernel<<<detail::grid_for(n / 4 + 1), 256, 0, s>>>(
      in, M, C, out, n, dims.head_dim, dims.heads, row0, rows, docs, position, lam);
  LAUNCH_CHECK();
}

}  // namespace lasp
