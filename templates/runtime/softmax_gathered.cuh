// LASP-2H's gathered attention: after the AllGather of K and V, one rank's queries (its pieces of the sequence,
// q_map) against the keys of the whole sequence in global order (row i = token i), one call per pass, with the
// rank's final o and lse (no merge). Dispatched to cuDNN's fused attention (cudnn_attention.cuh) or lasp's own
// kernels (softmax_attention.cuh) by the rule every softmax layer follows (softmax_backend.cuh).
//
// Design choices:
// - Only keys [0, key_rows) exist for the call: rows from key_rows on may hold garbage (the program orders only
//   the positions some query of this rank can see) and are never read.
// - lasp's kernels take the rank's q_map and an identity key map over key_rows rows: they already compare global
//   positions, stop each query tile at the last key it can see and skip key tiles before a tile's first query in
//   the backward, so a rank computes its causal pairs plus the masked edge tiles. The kernels bound every key row
//   by SoftmaxDims::k_rows, which is also their batch stride of k and v: with one batch, or keys up to the last
//   row, a call sees k_rows = key_rows (loads past it are zero-filled, the backward's grid covers only those
//   tiles); with several batches and fewer keys, one call per batch entry at the offsets of its rows.
// - cuDNN: one call per query piece (causal; two adjacent pieces, a zigzag rank's in the middle, are one:
//   gathered_calls.cuh), s_q = the piece's length, s_kv = its end's global position, with causal bottom-right
//   alignment (query i of the piece at position s_kv - s_q + i); without a causal mask one call for all rows
//   against key_rows keys. Pointers are offset to the piece's first row; the batch strides stay the rank's (q)
//   and the whole sequence's (k, v), so no data moves.
// - cuDNN's backward splits each causal piece that starts past key 0 at its first row: its queries against the
//   keys before it without a mask (a rectangle) and against its own keys causal with s_q == s_kv (a square).
//   One bottom-right call (s_q < s_kv) runs well below a whole sequence's rate; the two shapes are the ones
//   cuDNN's engine is tuned for (bench/results/2026-12-06-gathered-split-h200.md). Exact: a row's backward reads
//   only its final o, lse and dO, so the key range splits freely; the two parts' dK, dV rows are disjoint, and
//   dQ is the sum of the two (the rectangle's goes through a bf16 scratch, added after the calls).
// - cuDNN's stats of two pieces go through a packed scratch ([piece][batch][heads][rows]) and a small copy into
//   the layer's lse [batch][heads][q_rows]: cuDNN before 9.26 honours only packed stats layouts (cudnn_frontend
//   rejects others, and some backward kernels ignore their strides).
// - The backward's dK, dV are the caller's fp32 buffers over every key row (summed across ranks by the
//   program's ReduceScatter): lasp's kernels add into them after a memset; each cuDNN call writes bf16 dK, dV of
//   its s_kv rows into a scratch of its own, and one kernel converts the calls' scratches into the rows up to
//   the longest call (a memset zeroes the rest). dq: lasp's kernels accumulate in an fp32 workspace cast once
//   (as the whole-sequence backward); cuDNN writes each piece's rows in place.
// - Both passes of a layer take the same backend (the lse layouts differ): the choice reads only the shape, the
//   pieces, key_rows, causal, whether there are documents and the environment. With documents always lasp's
//   kernels (their document mask reads global positions).
// - The scratches are per device, grown on demand and kept (never in steady state), shared by all calls on a
//   device: calls must be ordered (one stream, or events), as for the kernels' own workspaces.
// - Like the kernel headers, the program's functions are not `inline`: include this file in one translation unit.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "attention_args.cuh"
#include "check.cuh"
#include "cudnn_attention.cuh"
#include "gathered_calls.cuh"
#include "softmax_attention.cuh"
#include "softmax_backend.cuh"
#include "types.cuh"

namespace lasp {
namespace gathered {

enum class Backend { kLasp, kCudnn };

// The contract of a call (attention_args.cuh); a broken one is the caller's bug: message, exit 3.
inline void check_call(const SoftmaxDims& d, const PieceMap& m, int key_rows, bool causal, const char* who) {
  smx::check_dims(d, who);
  const Pieces p = pieces_of(m, d.q_rows);
  bool ok = m.count >= 0 && m.count <= 2 && key_rows >= (d.q_rows > 0 ? 1 : 0) && key_rows <= d.k_rows;
  int rows = 0;
  for (int j = 0; j < p.count; ++j) {
    ok = ok && p.local[j] == rows && p.global[j] >= 0 && p.global[j] + p.length[j] <= d.k_rows;
    if (j > 0) ok = ok && p.global[j] >= p.global[j - 1] + p.length[j - 1];
    rows += p.length[j];
  }
  ok = ok && rows == d.q_rows;
  if (ok && causal && p.count > 0) ok = p.global[p.count - 1] + p.length[p.count - 1] <= key_rows;
  if (!ok) {
    std::fprintf(stderr,
                 "%s: the pieces (count %d: local %d, %d at global %d, %d, lengths %d, %d) must cover the %d query "
                 "rows in order, inside the %d keys, and key_rows (%d) must reach the last causal query\n",
                 who, m.count, m.local_offset[0], m.local_offset[1], m.global_start[0], m.global_start[1],
                 m.length[0], m.length[1], d.q_rows, d.k_rows, key_rows);
    std::exit(3);
  }
}

#ifdef LASP_WITH_CUDNN
inline CudnnSdpaShape shape_of(const SoftmaxDims& d, const Call& c, bool causal) {
  return backend::sdpa_shape(d, c.rows, c.keys, causal);
}

// The backward's split of a causal call (see the design notes): the keys before its first row, 0 when it has
// none (then the call runs whole).
inline int rectangle_keys(const Call& c, bool causal) { return causal ? c.keys - c.rows : 0; }

// Whether cuDNN can run every call of the layer, both passes (builds their plans; never exits).
inline bool cudnn_supported(const SoftmaxDims& d, const PieceMap& m, int key_rows, bool causal) {
  Call c[2];
  const int n = cudnn_calls(d, m, key_rows, causal, c);
  for (int j = 0; j < n; ++j) {
    if (!cudnn_sdpa_supported(shape_of(d, c[j], causal))) return false;
    const int before = rectangle_keys(c[j], causal);
    if (before > 0 && (!cudnn_sdpa_supported(backend::sdpa_shape(d, c[j].rows, c[j].rows, true)) ||
                       !cudnn_sdpa_supported(backend::sdpa_shape(d, c[j].rows, before, false))))
      return false;
  }
  return true;
}
#endif

// Whether this layer runs on cuDNN (softmax_backend.cuh's rule).
inline bool use_cudnn(const SoftmaxDims& d, const PieceMap& m, int key_rows, bool causal, bool documents) {
  return backend::use_cudnn_for(
      documents,
      [&] {
#ifdef LASP_WITH_CUDNN
        return cudnn_supported(d, m, key_rows, causal);
#else
        return false;
#endif
      },
      [&](backend::LayerText& t) {
        std::snprintf(t.shape, sizeof t.shape, "a %d x %d gathered attention", d.q_rows, key_rows);
        std::snprintf(t.detail, sizeof t.detail, "%d heads, %d kv heads, head dim %d, %d query pieces", d.heads,
                      d.kv_heads, d.head_dim, pieces_of(m, d.q_rows).count);
      });
}

// ---------------------------------------------------------------------------------------------------------
// Kernels of the cuDNN path
// ---------------------------------------------------------------------------------------------------------
// Stats of two calls between the packed scratch (call 0's [batch][heads][split] at 0, call 1's
// [batch][heads][q_rows - split] at off1) and the layer's lse [batch][heads][q_rows]; to_layer: scratch -> lse.
__global__ void stats_copy_kernel(const float* __restrict__ src, float* __restrict__ dst, int bh, int q_rows,
                                  int split, size_t off1, bool to_layer) {
  const size_t n = (size_t)bh * q_rows;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const size_t row = i / q_rows;  // batch * heads + head
    const int r = (int)(i % q_rows);
    const size_t packed = r < split ? row * split + r : off1 + row * (size_t)(q_rows - split) + (r - split);
    if (to_layer) dst[i] = src[packed];
    else dst[packed] = src[i];
  }
}

// dk, dv fp32 [batch][k_rows][width], rows [0, rows) of each batch entry, from the calls' bf16 scratches (the
// same strides; call j holds rows < keys_j; k1 == nullptr: one call): the sum of the calls that hold a row, zero
// where none does. One block per (row, batch entry), so no thread divides 64-bit indices; VEC: 8 elements at
// once (16-byte aligned rows), else 1. The caller zeroes the rows past the longest call (a memset).
template <int VEC>
__global__ void dkdv_from_calls_kernel(const bf16* __restrict__ k0, const bf16* __restrict__ v0, int keys0,
                                       const bf16* __restrict__ k1, const bf16* __restrict__ v1, int keys1,
                                       float* __restrict__ dk, float* __restrict__ dv, int k_rows, int width) {
  const int r = blockIdx.x;
  const size_t row = ((size_t)blockIdx.y * k_rows + r) * width;
  const bool in0 = r < keys0, in1 = k1 != nullptr && r < keys1;
  for (int c = threadIdx.x * VEC; c < width; c += blockDim.x * VEC) {
    const size_t e = row + c;
    float a[VEC], b[VEC];
#pragma unroll
    for (int i = 0; i < VEC; ++i) a[i] = b[i] = 0.f;
    auto add = [&](const bf16* k, const bf16* v) {
      if constexpr (VEC == 8) {
        const uint4 kk = *reinterpret_cast<const uint4*>(k + e), vv = *reinterpret_cast<const uint4*>(v + e);
        const bf16* kh = reinterpret_cast<const bf16*>(&kk);
        const bf16* vh = reinterpret_cast<const bf16*>(&vv);
#pragma unroll
        for (int i = 0; i < 8; ++i) a[i] += __bfloat162float(kh[i]), b[i] += __bfloat162float(vh[i]);
      } else {
        a[0] += __bfloat162float(k[e]), b[0] += __bfloat162float(v[e]);
      }
    };
    if (in0) add(k0, v0);
    if (in1) add(k1, v1);
    if constexpr (VEC == 8) {
      float4* pk = reinterpret_cast<float4*>(dk + e);
      float4* pv = reinterpret_cast<float4*>(dv + e);
      pk[0] = make_float4(a[0], a[1], a[2], a[3]), pk[1] = make_float4(a[4], a[5], a[6], a[7]);
      pv[0] = make_float4(b[0], b[1], b[2], b[3]), pv[1] = make_float4(b[4], b[5], b[6], b[7]);
    } else {
      dk[e] = a[0], dv[e] = b[0];
    }
  }
}

// dq += part over the n bf16 elements at offset `at` of each batch entry (stride `stride`): a rectangle's dQ rows
// (8 at once; n, at and stride multiples of 8: head_dim is 64 or 128). Grid: (blocks over n / 8, batch).
__global__ void add_bf16_kernel(bf16* __restrict__ dq, const bf16* __restrict__ part, size_t stride, size_t at,
                                size_t n) {
  const size_t base = blockIdx.y * stride + at;
  for (size_t e = 8 * (blockIdx.x * (size_t)blockDim.x + threadIdx.x); e < n; e += 8 * (size_t)gridDim.x * blockDim.x) {
    uint4 a = *reinterpret_cast<const uint4*>(dq + base + e);
    const uint4 b = *reinterpret_cast<const uint4*>(part + base + e);
    bf16* ah = reinterpret_cast<bf16*>(&a);
    const bf16* bh = reinterpret_cast<const bf16*>(&b);
#pragma unroll
    for (int i = 0; i < 8; ++i) ah[i] = __float2bfloat16(__bfloat162float(ah[i]) + __bfloat162float(bh[i]));
    *reinterpret_cast<uint4*>(dq + base + e) = a;
  }
}

inline unsigned blocks_for(size_t work) {
  const size_t b = (work + 255) / 256;
  return (unsigned)(b < 4096 ? (b > 0 ? b : 1) : 4096);
}

inline size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

// The cuDNN path's scratches: stats of two calls (fp32), and dK, dV of each call (bf16).
inline smx::Workspace& stats_workspace() {
  static smx::Workspace w;
  return w;
}
inline smx::Workspace& dkdv_workspace() {
  static smx::Workspace w;
  return w;
}
inline smx::Workspace& dq_part_workspace() {
  static smx::Workspace w;
  return w;
}

// ---------------------------------------------------------------------------------------------------------
// The two backends
// ---------------------------------------------------------------------------------------------------------
// lasp's kernels over keys [0, key_rows): the calls' dims and, when the batch entries must go one by one, how
// many (see the design notes).
struct LaspSplit {
  SoftmaxDims dims;
  int calls;
};
inline LaspSplit lasp_split(const SoftmaxDims& d, int key_rows) {
  const bool per_batch = d.batch > 1 && key_rows < d.k_rows;
  SoftmaxDims e = d;
  e.k_rows = key_rows;
  if (per_batch) e.batch = 1;
  return LaspSplit{e, per_batch ? d.batch : 1};
}
// Documents of batch entry b alone (their arrays are [batch][seq_len]).
inline Documents docs_of_entry(const Documents& docs, int b) {
  if (!docs.any() || b == 0) return docs;
  Documents e = docs;
  const size_t off = (size_t)b * docs.seq_len;
  e.ends += off, e.first += off, e.last += off;
  return e;
}

inline void lasp_forward(const SoftmaxGatheredArgs& a, const SoftmaxDims& d, cudaStream_t s) {
  const LaspSplit sp = lasp_split(d, a.key_rows);
  const PieceMap keys{0, {0, 0}, {0, 0}, {0, 0}};
  const size_t qb = (size_t)d.q_rows * d.heads, kb = (size_t)d.k_rows * d.kv_heads;
  for (int b = 0; b < sp.calls; ++b)
    smx::block_forward(smx::default_forward_kernel(d.head_dim), a.q + b * qb * d.head_dim,
                       a.k + b * kb * d.head_dim, a.v + b * kb * d.head_dim, sp.dims, a.q_map, keys, a.causal,
                       nullptr, a.lse + b * qb, a.o + b * qb * d.head_dim, s, docs_of_entry(a.docs, b));
}

inline void lasp_backward(const SoftmaxGatheredBackwardArgs& a, const SoftmaxDims& d, cudaStream_t s) {
  const size_t nkv = (size_t)d.batch * d.k_rows * d.kv_heads * d.head_dim;
  CUDA_CHECK(cudaMemsetAsync(a.dk, 0, nkv * sizeof(float), s));  // the kernels add; rows past key_rows stay 0
  CUDA_CHECK(cudaMemsetAsync(a.dv, 0, nkv * sizeof(float), s));
  if (d.q_rows == 0) return;
  const size_t nq = (size_t)d.batch * d.q_rows * d.heads * d.head_dim;
  float* dqw = static_cast<float*>(smx::dq_workspace().get(nq * sizeof(float)));
  CUDA_CHECK(cudaMemsetAsync(dqw, 0, nq * sizeof(float), s));
  const LaspSplit sp = lasp_split(d, a.key_rows);
  const PieceMap keys{0, {0, 0}, {0, 0}, {0, 0}};
  const size_t qb = (size_t)d.q_rows * d.heads, kb = (size_t)d.k_rows * d.kv_heads, hd = d.head_dim;
  for (int b = 0; b < sp.calls; ++b)
    smx::block_backward(smx::default_backward_kernel(d.head_dim), a.q + b * qb * hd, a.k + b * kb * hd,
                        a.v + b * kb * hd, a.o + b * qb * hd, a.lse + b * qb, a.dout + b * qb * hd, sp.dims, a.q_map,
                        keys, a.causal, dqw + b * qb * hd, a.dk + b * kb * hd, a.dv + b * kb * hd, s,
                        docs_of_entry(a.docs, b));
  const size_t n4 = nq / 4;  // head_dim is 64 or 128
  smx::f32_to_bf16_kernel<<<(unsigned)((n4 + 255) / 256), 256, 0, s>>>(dqw, a.dq, n4);
  LAUNCH_CHECK();
}

#ifdef LASP_WITH_CUDNN
inline void cudnn_forward(const SoftmaxGatheredArgs& a, const SoftmaxDims& d, cudaStream_t s) {
  Call c[2];
  const int n = cudnn_calls(d, a.q_map, a.key_rows, a.causal, c);
  if (n == 0) return;
  const size_t bh = (size_t)d.batch * d.heads, row = (size_t)d.heads * d.head_dim;
  // One call writes the layer's layout itself (its rows are all of them); two go through the packed scratch.
  const size_t off1 = align_up(bh * c[0].rows, 64);
  float* packed = n == 1 ? a.lse
                         : static_cast<float*>(stats_workspace().get((off1 + bh * c[1].rows) * sizeof(float)));
  for (int j = 0; j < n; ++j)
    cudnn_sdpa_forward(shape_of(d, c[j], a.causal), a.q + c[j].row0 * row, a.k, a.v, a.o + c[j].row0 * row,
                       packed + (j ? off1 : 0), s);
  if (n == 2) {
    stats_copy_kernel<<<blocks_for(bh * d.q_rows), 256, 0, s>>>(packed, a.lse, (int)bh, d.q_rows, c[0].rows, off1,
                                                                true);
    LAUNCH_CHECK();
  }
}

inline void cudnn_backward(const SoftmaxGatheredBackwardArgs& a, const SoftmaxDims& d, cudaStream_t s) {
  Call c[2];
  const int n = cudnn_calls(d, a.q_map, a.key_rows, a.causal, c);
  const size_t width = (size_t)d.kv_heads * d.head_dim, kb = (size_t)d.k_rows * width;
  const size_t nkv = (size_t)d.batch * kb;
  if (n == 0) {
    CUDA_CHECK(cudaMemsetAsync(a.dk, 0, nkv * sizeof(float), s));
    CUDA_CHECK(cudaMemsetAsync(a.dv, 0, nkv * sizeof(float), s));
    return;
  }
  const size_t bh = (size_t)d.batch * d.heads, row = (size_t)d.heads * d.head_dim;
  const size_t off1 = align_up(bh * c[0].rows, 64);
  const float* stats = a.lse;
  if (n == 2) {
    float* packed = static_cast<float*>(stats_workspace().get((off1 + bh * c[1].rows) * sizeof(float)));
    stats_copy_kernel<<<blocks_for(bh * d.q_rows), 256, 0, s>>>(a.lse, packed, (int)bh, d.q_rows, c[0].rows, off1,
                                                                false);
    LAUNCH_CHECK();
    stats = packed;
  }
  // Call j's dK, dV keep the strides of k and v over their first keys_j rows: (batch - 1) strides + keys_j rows.
  size_t at[2][2], total = 0;
  for (int j = 0; j < n; ++j)
    for (int t = 0; t < 2; ++t) {
      at[j][t] = total;
      total += align_up(((size_t)(d.batch - 1) * kb + (size_t)c[j].keys * width) * sizeof(bf16), 256);
    }
  char* ws = static_cast<char*>(dkdv_workspace().get(total));
  bf16* dks[2] = {nullptr, nullptr};
  bf16* dvs[2] = {nullptr, nullptr};
  const size_t nq = (size_t)d.batch * d.q_rows * row;
  bool rectangles = false;
  for (int j = 0; j < n; ++j) rectangles = rectangles || rectangle_keys(c[j], a.causal) > 0;
  bf16* dq_part = nullptr;  // the rectangles' dQ at their rows of the layer's layout (other rows never read)
  if (rectangles) dq_part = static_cast<bf16*>(dq_part_workspace().get(nq * sizeof(bf16)));
  for (int j = 0; j < n; ++j) {
    dks[j] = reinterpret_cast<bf16*>(ws + at[j][0]);
    dvs[j] = reinterpret_cast<bf16*>(ws + at[j][1]);
    const size_t q0 = c[j].row0 * row;
    const float* st = stats + (j ? off1 : 0);
    const int before = rectangle_keys(c[j], a.causal);
    if (before == 0) {
      cudnn_sdpa_backward(shape_of(d, c[j], a.causal), a.q + q0, a.k, a.v, a.o + q0, a.dout + q0, st, a.dq + q0,
                          dks[j], dvs[j], s);
      continue;
    }
    const size_t k0 = (size_t)before * width;  // the square's keys: rows [before, keys) of k, v and the scratch
    cudnn_sdpa_backward(backend::sdpa_shape(d, c[j].rows, c[j].rows, true), a.q + q0, a.k + k0, a.v + k0, a.o + q0,
                        a.dout + q0, st, a.dq + q0, dks[j] + k0, dvs[j] + k0, s);
    cudnn_sdpa_backward(backend::sdpa_shape(d, c[j].rows, before, false), a.q + q0, a.k, a.v, a.o + q0, a.dout + q0,
                        st, dq_part + q0, dks[j], dvs[j], s);
  }
  for (int j = 0; j < n; ++j) {
    if (rectangle_keys(c[j], a.causal) == 0) continue;
    const size_t rows_n = (size_t)c[j].rows * row;
    add_bf16_kernel<<<dim3(blocks_for(rows_n / 8), d.batch), 256, 0, s>>>(a.dq, dq_part, (size_t)d.q_rows * row,
                                                                           c[j].row0 * row, rows_n);
    LAUNCH_CHECK();
  }
  // Rows [0, longest) from the calls, the rest zero.
  const int longest = n > 1 && c[1].keys > c[0].keys ? c[1].keys : c[0].keys;
  if (longest < d.k_rows) {
    const size_t pitch = kb * sizeof(float), tail = (size_t)(d.k_rows - longest) * width * sizeof(float);
    CUDA_CHECK(cudaMemset2DAsync(a.dk + (size_t)longest * width, pitch, 0, tail, d.batch, s));
    CUDA_CHECK(cudaMemset2DAsync(a.dv + (size_t)longest * width, pitch, 0, tail, d.batch, s));
  }
  const bool vec = ((reinterpret_cast<uintptr_t>(a.dk) | reinterpret_cast<uintptr_t>(a.dv)) & 15) == 0;
  const int per_row = vec ? (int)(width / 8) : (int)width;
  const int threads = per_row >= 256 ? 256 : (per_row + 31) / 32 * 32;
  const dim3 grid(longest, d.batch);
  if (vec)
    dkdv_from_calls_kernel<8><<<grid, threads, 0, s>>>(dks[0], dvs[0], c[0].keys, dks[1], dvs[1],
                                                       n > 1 ? c[1].keys : 0, a.dk, a.dv, d.k_rows, (int)width);
  else
    dkdv_from_calls_kernel<1><<<grid, threads, 0, s>>>(dks[0], dvs[0], c[0].keys, dks[1], dvs[1],
                                                       n > 1 ? c[1].keys : 0, a.dk, a.dv, d.k_rows, (int)width);
  LAUNCH_CHECK();
}
#endif

// The passes with the backend named (the harness bench/gpu/gathered_check.cu runs both this way; the program's
// calls below choose). kCudnn needs a build with cuDNN and a shape it supports (cudnn_supported).
inline void forward(Backend backend, const SoftmaxGatheredArgs& a, const SoftmaxDims& d, cudaStream_t s) {
  check_call(d, a.q_map, a.key_rows, a.causal, "softmax_gathered_forward");
  if (backend == Backend::kLasp) return lasp_forward(a, d, s);
#ifdef LASP_WITH_CUDNN
  if (a.docs.any()) {
    std::fprintf(stderr, "softmax_gathered_forward: cuDNN has no document mask\n");
    std::exit(3);
  }
  cudnn_forward(a, d, s);
#else
  std::fprintf(stderr, "softmax_gathered_forward: built without cuDNN\n");
  std::exit(3);
#endif
}

inline void backward(Backend backend, const SoftmaxGatheredBackwardArgs& a, const SoftmaxDims& d, cudaStream_t s) {
  check_call(d, a.q_map, a.key_rows, a.causal, "softmax_gathered_backward");
  if (backend == Backend::kLasp) return lasp_backward(a, d, s);
#ifdef LASP_WITH_CUDNN
  if (a.docs.any()) {
    std::fprintf(stderr, "softmax_gathered_backward: cuDNN has no document mask\n");
    std::exit(3);
  }
  cudnn_backward(a, d, s);
#else
  std::fprintf(stderr, "softmax_gathered_backward: built without cuDNN\n");
  std::exit(3);
#endif
}

}  // namespace gathered

// The program's calls (kernels.h).
// The backend this rank's gathered shape takes, for the program's report ("cudnn 9.14.0" or "lasp"); asking also
// builds cuDNN's plans for it, outside any timed region. documents: the layer runs with packed documents (then
// always "lasp", and no plans are built).
const char* softmax_gathered_backend(const SoftmaxDims& d, const PieceMap& q_map, int key_rows, bool causal,
                                     bool documents) {
  gathered::check_call(d, q_map, key_rows, causal, "softmax_gathered_backend");
#ifdef LASP_WITH_CUDNN
  if (gathered::use_cudnn(d, q_map, key_rows, causal, documents)) return backend::cudnn_version_name();
#else
  (void)gathered::use_cudnn(d, q_map, key_rows, causal, documents);
#endif
  return "lasp";
}

void softmax_gathered_forward(const SoftmaxGatheredArgs& a, const SoftmaxDims& d, cudaStream_t s) {
  const bool cudnn = gathered::use_cudnn(d, a.q_map, a.key_rows, a.causal, a.docs.any());
  gathered::forward(cudnn ? gathered::Backend::kCudnn : gathered::Backend::kLasp, a, d, s);
}

void softmax_gathered_backward(const SoftmaxGatheredBackwardArgs& a, const SoftmaxDims& d, cudaStream_t s) {
  const bool cudnn = gathered::use_cudnn(d, a.q_map, a.key_rows, a.causal, a.docs.any());
  gathered::backward(cudnn ? gathered::Backend::kCudnn : gathered::Backend::kLasp, a, d, s);
}

}  // namespace lasp
