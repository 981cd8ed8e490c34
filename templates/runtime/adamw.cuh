// The AdamW step over one rank's shard of the parameters: fp32 master weights, fp32 moments m and v, the fp32
// gradient (already summed over ranks); the master weights are held as the bf16 weights the model computes with
// and a plane of their low halves (master_weights.cuh), so one step writes both.
//
// Design choices:
// - The shard is one contiguous range of the flat parameter buffer (ZeRO-1: the rank's 1/W slice, between the
//   gradient's reduce-scatter and the weights' all-gather; replicated: the whole buffer). Its arrays are
//   indexed alike from the shard's first element: low, m, v and grad are the shard's state, `weights` the
//   shard's slice of the bf16 compute buffer (the masters' high halves), which the all-gather then distributes.
// - Which elements decay comes from the parameter table, not a mask: a shard holds a few hundred tensors at
//   most, each entirely decayed (weight matrices, embedding, LM head) or not (norm gains, biases). The host
//   cuts the global table of (offset, elements, decay) rows to the shard with `adamw_shard_table` (a tensor
//   the shard boundary splits keeps its flag on both sides), checks and uploads it once with
//   `adamw_upload_table` (rows in order, back to back, covering the shard exactly); it is the same every step.
//   A thread finds its first element's row by binary search in the table (a few cached loads per 4 elements,
//   against 28 bytes of state moved per element) and walks to the next row where its 4 elements cross one; the
//   Hopper path finds the row once a tile and, where the tile lies in one tensor, gives its elements that
//   tensor's flag (the lookups cost joules at the power limit: bench/results/2026-12-07-session30-h100.md).
// - The arithmetic is torch.optim.AdamW's (single-tensor path), so one step matches it within float rounding:
//   g = grad * clip_scale; w *= 1 - lr * wd (decayed rows only); m += (1 - b1) (g - m);
//   v = b2 v + (1 - b2) g^2; w -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). The per-step
//   scalars (bias corrections from the step number t, the decay factor, the step size) are computed once on
//   the host in double and rounded to float, as PyTorch's Python scalars are (`adamw_step_constants`).
// - One `__host__ __device__` function does one element; the kernel and the host test
//   (test/optimizer-host.test.ts, through `adamw_reference`) run the same code. Each product that meets a sum
//   is an explicit fmaf, so neither nvcc's nor the host compiler's contraction can change the bits between
//   the two; division and sqrtf are IEEE-rounded on both (no fast math).
// - Vectorised: 16-byte loads of the fp32 arrays and 8-byte loads and stores of 4 bf16 weights and 4 low
//   halves for the multiple-of-4 body, the tail (n % 4 elements) by scalar threads; so the fp32 pointers must be
//   16-byte aligned and `weights` and `low` 8-byte aligned (a shard starting at a multiple of 4 elements of
//   aligned buffers is). Each element is read and written by one thread with no reduction: the result is
//   deterministic and independent of the grid.
// - On Hopper (a build for sm_90a on such a GPU) the same update runs on tiles that bulk copies move between
//   global and shared memory (`bulk_step_kernel`): the same bits for fewer joules, and the step runs at the power
//   limit, where joules are time (bench/results/2026-12-07-energy-h100.md). Shards shorter than a tile or not
//   16-byte aligned, other GPUs, and LASP_ADAMW=plain take the vectorised kernel.
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "types.cuh"  // DecayRow, AdamwShard, AdamwTable, AdamwSettings
#include "adamw_table.cuh"  // adamw_shard_table, adamw_check_table
#include "check.cuh"
#include "master_weights.cuh"  // master_join, master_split
#include "hopper.cuh"  // mbarriers, bulk groups, kernels_run (the bulk-copy path)
#include "mma.cuh"     // ptx::smem_addr

namespace lasp {

// What the element update needs, per step, rounded to float once.
struct AdamwConstants {
  float clip_scale;
  float one_minus_beta1;
  float beta2;
  float one_minus_beta2;
  float decay_factor;  // 1 - lr * wd
  float step_size;     // lr / (1 - beta1^t)
  float sqrt_bc2;      // sqrt(1 - beta2^t)
  float eps;
};

namespace adamw {

constexpr int kThreads = 256;

// The update of one element; w, m, v in place; returns nothing, the caller rounds w to bf16.
__host__ __device__ inline void update(float& w, float& m, float& v, float grad, bool decay,
                                       const AdamwConstants& c) {
  const float g = grad * c.clip_scale;
  if (decay) w = w * c.decay_factor;
  m = fmaf(c.one_minus_beta1, g - m, m);
  v = fmaf(c.one_minus_beta2, g * g, c.beta2 * v);
  const float denom = sqrtf(v) / c.sqrt_bc2 + c.eps;
  w = fmaf(-c.step_size, m / denom, w);
}

// The row of element e: the last row whose offset is <= e (rows are in order and back to back).
__host__ __device__ inline int row_of(const DecayRow* rows, int count, size_t e) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (rows[mid].offset <= e) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// The decay flag (0 or 1) that elements [base, base + len) share where they lie in one row, else -1: each element
// then finds its own row (update_vector).
__host__ __device__ inline int range_decay(const DecayRow* rows, int count, size_t base, size_t len) {
  const int r = row_of(rows, count, base);
  return r + 1 < count && rows[r + 1].offset < base + len ? -1 : rows[r].decay != 0;
}

// The update of the 4 elements from e (a vector of the kernel, or fewer at the tail: `lanes` of them), each
// with its row's decay flag; r is the row of element e on entry. Returns the row of the last element.
__host__ __device__ inline int update_vector(float* w, float* m, float* v, const float* g, int lanes, size_t e,
                                             const DecayRow* rows, int count, int r, const AdamwConstants& c) {
  for (int u = 0; u < lanes; ++u) {
    while (r + 1 < count && rows[r + 1].offset <= e + u) ++r;
    update(w[u], m[u], v[u], g[u], rows[r].decay != 0, c);
  }
  return r;
}

union Bf16x4 {
  uint2 v;
  __nv_bfloat162 h[2];
};

// Elements e .. e + 3 in place, wherever their arrays are (global memory, or a tile in shared memory): 4 bf16
// weights and their 4 low halves, 4 m, 4 v and 4 gradients. `decay`: the four's flag where the caller knows it
// (0 or 1), or -1 to find each element's row in the table.
__device__ __forceinline__ void update4(uint2* weights, ushort4* low, float4* m, float4* v, const float4* grad,
                                        size_t e, int decay, const DecayRow* rows, int count,
                                        const AdamwConstants& c) {
  Bf16x4 hi;
  hi.v = *weights;
  const ushort4 lo = *low;
  const float4 m4 = *m, v4 = *v, g4 = *grad;
  float w[4] = {master_join(__low2bfloat16(hi.h[0]), lo.x), master_join(__high2bfloat16(hi.h[0]), lo.y),
                master_join(__low2bfloat16(hi.h[1]), lo.z), master_join(__high2bfloat16(hi.h[1]), lo.w)};
  float mm[4] = {m4.x, m4.y, m4.z, m4.w}, vv[4] = {v4.x, v4.y, v4.z, v4.w};
  const float g[4] = {g4.x, g4.y, g4.z, g4.w};
  if (decay < 0) update_vector(w, mm, vv, g, 4, e, rows, count, row_of(rows, count, e), c);
  else
    for (int u = 0; u < 4; ++u) update(w[u], mm[u], vv[u], g[u], decay != 0, c);
  *m = make_float4(mm[0], mm[1], mm[2], mm[3]);
  *v = make_float4(vv[0], vv[1], vv[2], vv[3]);
  bf16 h[4];
  uint16_t l[4];
  for (int u = 0; u < 4; ++u) master_split(w[u], &h[u], &l[u]);
  Bf16x4 out;
  out.h[0] = __halves2bfloat162(h[0], h[1]);
  out.h[1] = __halves2bfloat162(h[2], h[3]);
  *weights = out.v;
  *low = make_ushort4(l[0], l[1], l[2], l[3]);
}

// Element e alone (the tails).
__device__ __forceinline__ void update1(bf16* weights, uint16_t* low, float* m, float* v, const float* grad, size_t e,
                                        const DecayRow* rows, int count, const AdamwConstants& c) {
  float w = master_join(weights[e], low[e]), mm = m[e], vv = v[e];
  const float g = grad[e];
  update_vector(&w, &mm, &vv, &g, 1, e, rows, count, row_of(rows, count, e), c);
  m[e] = mm;
  v[e] = vv;
  master_split(w, &weights[e], &low[e]);
}

__global__ void step_kernel(bf16* __restrict__ weights, uint16_t* __restrict__ low, float* __restrict__ m,
                            float* __restrict__ v, const float* __restrict__ grad, size_t n,
                            const DecayRow* __restrict__ rows, int count, AdamwConstants c) {
  const size_t vectors = n / 4;
  const size_t stride = (size_t)gridDim.x * blockDim.x;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < vectors; i += stride)
    update4(reinterpret_cast<uint2*>(weights) + i, reinterpret_cast<ushort4*>(low) + i,
            reinterpret_cast<float4*>(m) + i, reinterpret_cast<float4*>(v) + i,
            reinterpret_cast<const float4*>(grad) + i, 4 * i, -1, rows, count, c);
  // The tail: the first n % 4 threads of block 0, one element each.
  if (blockIdx.x == 0 && threadIdx.x < n % 4)
    update1(weights, low, m, v, grad, 4 * vectors + threadIdx.x, rows, count, c);
}

// Hopper: the same element update on tiles that bulk copies bring into shared memory and take back out. Three
// stages of 2048-element tiles, two CTAs an SM, each CTA's thread 0 issuing the copies; the ragged tail (n % 2048)
// by the last block, one element a thread, as the kernel above does its tail.
constexpr int kBulkTile = 2048;
constexpr int kBulkStages = 3;
constexpr uint32_t kBulkTileBytes = kBulkTile * (3 * 4 + 2 * 2);

__global__ void __launch_bounds__(256)
    bulk_step_kernel(bf16* __restrict__ weights, uint16_t* __restrict__ low, float* __restrict__ m,
                     float* __restrict__ v, const float* __restrict__ grad, size_t n, const DecayRow* __restrict__ rows,
                     int count, AdamwConstants c) {
#if LASP_HOPPER_WGMMA
  using ptx::smem_addr;
  using hopper::bulk_load;
  using hopper::bulk_store;
  extern __shared__ __align__(128) unsigned char smem[];
  __shared__ uint64_t full[kBulkStages];
  if (threadIdx.x == 0) {
    for (int s = 0; s < kBulkStages; ++s) hopper::mbar_init(smem_addr(&full[s]), 1);
    hopper::fence_mbar_init();
  }
  __syncthreads();
  const size_t tiles = n / kBulkTile;
  const size_t my = tiles > blockIdx.x ? (tiles - blockIdx.x + gridDim.x - 1) / gridDim.x : 0;
  const auto tile = [&](size_t k) { return (size_t)blockIdx.x + k * gridDim.x; };
  const auto g_of = [&](int s) { return reinterpret_cast<float*>(smem + s * kBulkTileBytes); };
  const auto m_of = [&](int s) { return g_of(s) + kBulkTile; };
  const auto v_of = [&](int s) { return g_of(s) + 2 * kBulkTile; };
  const auto w_of = [&](int s) { return reinterpret_cast<bf16*>(g_of(s) + 3 * kBulkTile); };
  const auto l_of = [&](int s) { return reinterpret_cast<uint16_t*>(w_of(s) + kBulkTile); };
  const auto load = [&](int s, size_t t) {
    const uint32_t bar = smem_addr(&full[s]);
    const size_t e = t * kBulkTile;
    hopper::mbar_expect_tx(bar, kBulkTileBytes);
    bulk_load(smem_addr(g_of(s)), grad + e, kBulkTile * 4, bar);
    bulk_load(smem_addr(m_of(s)), m + e, kBulkTile * 4, bar);
    bulk_load(smem_addr(v_of(s)), v + e, kBulkTile * 4, bar);
    bulk_load(smem_addr(w_of(s)), weights + e, kBulkTile * 2, bar);
    bulk_load(smem_addr(l_of(s)), low + e, kBulkTile * 2, bar);
  };
  if (threadIdx.x == 0)
    for (size_t k = 0; k < my && k < (size_t)kBulkStages; ++k) load((int)k, tile(k));
  for (size_t k = 0; k < my; ++k) {
    const int s = (int)(k % kBulkStages);
    hopper::mbar_wait(smem_addr(&full[s]), (uint32_t)((k / kBulkStages) & 1));
    const size_t base = tile(k) * kBulkTile;
    // A tile inside one tensor (all but a few) finds its decay flag once, not each element's row.
    const int decay = range_decay(rows, count, base, kBulkTile);
    for (int j = threadIdx.x; j < kBulkTile / 4; j += blockDim.x)
      update4(reinterpret_cast<uint2*>(w_of(s)) + j, reinterpret_cast<ushort4*>(l_of(s)) + j,
              reinterpret_cast<float4*>(m_of(s)) + j, reinterpret_cast<float4*>(v_of(s)) + j,
              reinterpret_cast<const float4*>(g_of(s)) + j, base + 4 * (size_t)j, decay, rows, count, c);
    hopper::fence_proxy_async();  // this thread's shared writes -> visible to the bulk stores
    __syncthreads();
    if (threadIdx.x == 0) {
      bulk_store(m + base, smem_addr(m_of(s)), kBulkTile * 4);
      bulk_store(v + base, smem_addr(v_of(s)), kBulkTile * 4);
      bulk_store(weights + base, smem_addr(w_of(s)), kBulkTile * 2);
      bulk_store(low + base, smem_addr(l_of(s)), kBulkTile * 2);
      hopper::bulk_commit();
      if (k >= 1 && k - 1 + kBulkStages < my) {  // tile k - 1's stage is read out: it takes tile k - 1 + stages
        hopper::bulk_wait_read1();
        load((int)((k - 1) % kBulkStages), tile(k - 1 + kBulkStages));
      }
    }
  }
  if (threadIdx.x == 0) hopper::bulk_wait0();
  if (blockIdx.x == gridDim.x - 1)
    for (size_t e = tiles * kBulkTile + threadIdx.x; e < n; e += blockDim.x)
      update1(weights, low, m, v, grad, e, rows, count, c);
#else
  __trap();  // sm_90a only: adamw_step picks this kernel where hopper::kernels_run()
#endif
}

// LASP_ADAMW = auto (the default: the bulk kernel where it runs) or plain (the kernel above everywhere, to compare).
inline bool plain_requested() {
  static const bool plain = [] {
    const char* v = std::getenv("LASP_ADAMW");
    if (v == nullptr || *v == '\0' || std::string(v) == "auto") return false;
    if (std::string(v) == "plain") return true;
    std::fprintf(stderr, "lasp_program: LASP_ADAMW=%s is not a choice (auto or plain)\n", v);
    std::exit(2);
  }();
  return plain;
}

// The bulk kernel's grid (two CTAs an SM) where it can run here and the shard suits it (16-byte aligned arrays,
// at least one tile); 0: the kernel above.
inline int bulk_grid(const AdamwShard& shard) {
  if (plain_requested()) return 0;
  if (shard.elements < (size_t)kBulkTile || !hopper::kernels_run()) return 0;
  for (const void* p : {(const void*)shard.weights, (const void*)shard.low, (const void*)shard.m,
                        (const void*)shard.v, (const void*)shard.grad})
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return 0;
  static const int grid = [] {
    int device = 0, sms = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    CUDA_CHECK(cudaFuncSetAttribute(bulk_step_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)(kBulkStages * kBulkTileBytes)));
    return 2 * sms;
  }();
  return grid;
}

inline void fail(const char* message) {
  std::fprintf(stderr, "adamw: %s\n", message);
  std::exit(LASP_EXIT_CODE_FAILURE);
}

inline bool aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// Enough blocks to fill any Hopper; threads stride over the rest.
inline int grid_for(size_t elements) {
  const size_t vectors = (elements / 4 + kThreads - 1) / kThreads;
  const size_t cap = 132 * 8;
  return (int)(vectors < 1 ? 1 : vectors < cap ? vectors : cap);
}

}  // namespace adamw

// The per-step scalars, after checking the settings (a bad value is a bug of the caller: message and exit).
inline AdamwConstants adamw_step_constants(const AdamwSettings& s) {
  char message[200];
  if (!(s.lr >= 0) || !std::isfinite(s.lr)) {
    std::snprintf(message, sizeof message, "lr %g must be finite and at least 0", s.lr);
    adamw::fail(message);
  }
  if (!(s.beta1 > 0 && s.beta1 < 1) || !(s.beta2 > 0 && s.beta2 < 1)) {
    std::snprintf(message, sizeof message, "betas %g, %g must be between 0 and 1 (exclusive)", s.beta1, s.beta2);
    adamw::fail(message);
  }
  if (!(s.eps > 0) || !std::isfinite(s.eps)) {
    std::snprintf(message, sizeof message, "eps %g must be positive", s.eps);
    adamw::fail(message);
  }
  if (!(s.weight_decay >= 0 && s.weight_decay <= 1)) {
    std::snprintf(message, sizeof message, "weight decay %g must be between 0 and 1", s.weight_decay);
    adamw::fail(message);
  }
  if (!(s.clip_scale > 0 && s.clip_scale <= 1)) {
    std::snprintf(message, sizeof message, "clip scale %g must be in (0, 1] (a non-finite norm stops the run first)",
                  s.clip_scale);
    adamw::fail(message);
  }
  if (s.step < 1) {
    std::snprintf(message, sizeof message, "step %lld must be at least 1 (bias correction counts from 1)",
                  (long long)s.step);
    adamw::fail(message);
  }
  const double t = static_cast<double>(s.step);
  AdamwConstants c;
  c.clip_scale = (float)s.clip_scale;
  c.one_minus_beta1 = (float)(1.0 - s.beta1);
  c.beta2 = (float)s.beta2;
  c.one_minus_beta2 = (float)(1.0 - s.beta2);
  c.decay_factor = (float)(1.0 - s.lr * s.weight_decay);
  c.step_size = (float)(s.lr / (1.0 - std::pow(s.beta1, t)));
  c.sqrt_bc2 = (float)std::sqrt(1.0 - std::pow(s.beta2, t));
  c.eps = (float)s.eps;
  return c;
}

// The checked table in device memory, uploaded once before the first step (free with cudaFree(table.rows)).
AdamwTable adamw_upload_table(const std::vector<DecayRow>& rows, size_t elements) {
  const std::string problem = adamw_check_table(rows, elements);
  if (!problem.empty()) adamw::fail(problem.c_str());
  AdamwTable table{nullptr, (int)rows.size(), elements};
  if (rows.empty()) return table;
  DecayRow* device = nullptr;
  CUDA_CHECK(cudaMalloc(&device, rows.size() * sizeof(DecayRow)));
  CUDA_CHECK(cudaMemcpy(device, rows.data(), rows.size() * sizeof(DecayRow), cudaMemcpyHostToDevice));
  table.rows = device;
  return table;
}

// The kernel's walk over a shard in host memory, with the same element function and rows (for tests; a
// reference, not a fallback): vectors of 4 from element 0, then the tail.
inline void adamw_reference(bf16* weights, uint16_t* low, float* m, float* v, const float* grad, size_t n,
                            const std::vector<DecayRow>& rows, const AdamwConstants& c) {
  const int count = (int)rows.size();
  for (size_t e = 0; e < n; e += 4) {
    const int lanes = n - e < 4 ? (int)(n - e) : 4;
    float w[4];
    for (int u = 0; u < lanes; ++u) w[u] = master_join(weights[e + u], low[e + u]);
    adamw::update_vector(w, m + e, v + e, grad + e, lanes, e, rows.data(), count, adamw::row_of(rows.data(), count, e),
                         c);
    for (int u = 0; u < lanes; ++u) master_split(w[u], &weights[e + u], &low[e + u]);
  }
}

// One AdamW step over the shard, on stream s.
void adamw_step(const AdamwShard& shard, const AdamwTable& table, const AdamwSettings& settings, cudaStream_t s) {
  const AdamwConstants c = adamw_step_constants(settings);
  char message[200];
  if (table.elements != shard.elements) {
    std::snprintf(message, sizeof message, "the decay table covers %zu elements, the shard has %zu", table.elements,
                  shard.elements);
    adamw::fail(message);
  }
  if (shard.elements == 0) return;
  if (table.rows == nullptr || table.count < 1) adamw::fail("the decay table has no rows");
  if (!shard.weights || !shard.low || !shard.m || !shard.v || !shard.grad)
    adamw::fail("weights, low, m, v and grad must all be given");
  if (!adamw::aligned(shard.m, 16) || !adamw::aligned(shard.v, 16) || !adamw::aligned(shard.grad, 16) ||
      !adamw::aligned(shard.weights, 8) || !adamw::aligned(shard.low, 8))
    adamw::fail("m, v and grad must be 16-byte aligned, weights and low 8-byte aligned (a shard starting at a "
                "multiple of 4 elements)");
  if (const int grid = adamw::bulk_grid(shard); grid > 0)
    adamw::bulk_step_kernel<<<grid, 256, adamw::kBulkStages * adamw::kBulkTileBytes, s>>>(
        shard.weights, shard.low, shard.m, shard.v, shard.grad, shard.elements, table.rows, table.count, c);
  else
    adamw::step_kernel<<<adamw::grid_for(shard.elements), adamw::kThreads, 0, s>>>(
        shard.weights, shard.low, shard.m, shard.v, shard.grad, shard.elements, table.rows, table.count, c);
  LAUNCH_CHECK();
}

}  // namespace lasp
