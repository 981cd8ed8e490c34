// Experiment (issue 17): does data moved through TMA's bulk copies into shared memory cost fewer joules a byte
// than the threads' own loads and stores?
//
// Why: at the 700 W limit a step's time is its energy over the limit's watts. The energy counter says
// (bench/results/2026-12-07-energy-h100.md) that the memory-bound kernels spend about 160-170 mJ a GB above an
// idle board, where a device-to-device cudaMemcpy spends about 90: AdamW's step alone is ~9.7 J of the 1B step's
// ~166 J. If the bulk-copy path is nearer the copy's cost, AdamW and the gradient norm could give back a
// few joules a step (each joule ~1.4 ms at 700 W).
//
// What runs (1.6e9 elements, Linear-Llama3-1B's parameter count; each op back to back for --seconds on the
// energy counter, bench_energy.cuh):
//   copy 2 GiB: cudaMemcpyAsync; a float4 load/store kernel; bulk load + bulk store (no thread touches the data)
//   sum of squares of 1.6e9 fp32: grad_norm.cuh's kernel (ships) against float4 loads in its block order (squares
//   in fp64, or four summed in fp32 first) and a bulk-load pipeline read by the threads
//   AdamW over 1.6e9: adamw.cuh's vectorised kernel, and on tiles that bulk copies move (3 stages, two CTAs an SM:
//   adamw.cuh's Hopper path) with four element variants: update4 as shipped; the decay flag found once a tile
//   instead of a binary search per 4 elements (the same bits); that with sqrt.approx and div.approx; and the
//   bytes alone (no update): how much of AdamW's joules are its arithmetic and row lookups, not its bytes;
//   with --adamw-rounds also the tile's flag as one 6-stage CTA an SM on all, 3/4 and 1/2 of the SMs
// Checks first: the bulk variants against adamw.cuh's step_kernel bit for bit (two steps, 10M + 3 elements, rows
// decayed and not, a ragged tail), the approximate one within 1e-7 of it; the bulk sum of squares within 1e-6 of
// grad_norm_squared's (fp64 both).
//
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Itemplates/runtime -Ibench/gpu \
//        bench/gpu/experiments/stream_energy.cu -o .gpu-ops/stream_energy
//   .gpu-ops/stream_energy [--seconds S] [--adamw-rounds R]   (R > 0: the bulk AdamW variants alone, alternating)
#include "adamw.cuh"
#include "grad_norm.cuh"
#include "hopper.cuh"
#include "mma.cuh"  // ptx::smem_addr
#include "bench_energy.cuh"
#include "bench_timing.cuh"
#include "bench_model_rows.cuh"  // llama_1b_rows

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using lasp::bf16;
namespace hp = lasp::hopper;
using lasp::ptx::smem_addr;

using lasp::hopper::bulk_load;  // the plain bulk copies (hopper.cuh, as adamw.cuh's Hopper path)
using lasp::hopper::bulk_store;
using lasp::hopper::bulk_wait_read1;

__device__ __forceinline__ void init_bars(uint64_t* bars, int count) {
  if (threadIdx.x == 0) {
    for (int s = 0; s < count; ++s) hp::mbar_init(smem_addr(&bars[s]), 1);
    hp::fence_mbar_init();
  }
  __syncthreads();
}

// The tiles of this CTA: blockIdx.x, + gridDim.x, ...
__device__ __forceinline__ size_t tiles_of_block(size_t tiles) {
  return tiles > blockIdx.x ? (tiles - blockIdx.x + gridDim.x - 1) / gridDim.x : 0;
}

// ---- copy: bulk load, bulk store, nothing else ----
constexpr int kCopyStages = 4;
constexpr uint32_t kCopyTile = 32768;
__global__ void __launch_bounds__(32) bulk_copy_kernel(const char* src, char* dst, size_t tiles) {
  extern __shared__ __align__(128) unsigned char smem[];
  __shared__ uint64_t full[kCopyStages];
  init_bars(full, kCopyStages);
  if (threadIdx.x != 0) return;
  const size_t my = tiles_of_block(tiles);
  const auto tile = [&](size_t k) { return (size_t)blockIdx.x + k * gridDim.x; };
  for (size_t k = 0; k < my && k < kCopyStages; ++k) {
    hp::mbar_expect_tx(smem_addr(&full[k]), kCopyTile);
    bulk_load(smem_addr(smem + k * kCopyTile), src + tile(k) * kCopyTile, kCopyTile, smem_addr(&full[k]));
  }
  for (size_t k = 0; k < my; ++k) {
    const int s = k % kCopyStages;
    hp::mbar_wait(smem_addr(&full[s]), (k / kCopyStages) & 1);
    bulk_store(dst + tile(k) * kCopyTile, smem_addr(smem + s * kCopyTile), kCopyTile);
    hp::bulk_commit();
    if (k >= 1 && k - 1 + kCopyStages < my) {  // the stage of tile k - 1 takes tile k - 1 + stages
      bulk_wait_read1();
      const int p = (k - 1) % kCopyStages;
      hp::mbar_expect_tx(smem_addr(&full[p]), kCopyTile);
      bulk_load(smem_addr(smem + p * kCopyTile), src + tile(k - 1 + kCopyStages) * kCopyTile, kCopyTile,
                smem_addr(&full[p]));
    }
  }
  hp::bulk_wait0();
}

__global__ void ldg_copy_kernel(const float4* src, float4* dst, size_t n4) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x)
    dst[i] = src[i];
}

// ---- sum of squares: bulk loads read by the threads ----
constexpr int kSumStages = 4;
constexpr int kSumTile = 8192;  // floats: 32 KB
__global__ void __launch_bounds__(256) bulk_sumsq_kernel(const float* x, size_t tiles, double* out) {
  extern __shared__ __align__(128) unsigned char smem[];
  __shared__ uint64_t full[kSumStages];
  __shared__ double partial[8];
  init_bars(full, kSumStages);
  float* buf = reinterpret_cast<float*>(smem);
  const size_t my = tiles_of_block(tiles);
  const auto tile = [&](size_t k) { return (size_t)blockIdx.x + k * gridDim.x; };
  constexpr uint32_t bytes = kSumTile * sizeof(float);
  if (threadIdx.x == 0)
    for (size_t k = 0; k < my && k < kSumStages; ++k) {
      hp::mbar_expect_tx(smem_addr(&full[k]), bytes);
      bulk_load(smem_addr(buf + k * kSumTile), x + tile(k) * kSumTile, bytes, smem_addr(&full[k]));
    }
  double acc = 0;
  for (size_t k = 0; k < my; ++k) {
    const int s = k % kSumStages;
    hp::mbar_wait(smem_addr(&full[s]), (k / kSumStages) & 1);
    const float4* t4 = reinterpret_cast<const float4*>(buf + s * kSumTile);
    float a = 0;
    for (int i = threadIdx.x; i < kSumTile / 4; i += blockDim.x) {
      const float4 v = t4[i];
      a = fmaf(v.x, v.x, a);
      a = fmaf(v.y, v.y, a);
      a = fmaf(v.z, v.z, a);
      a = fmaf(v.w, v.w, a);
    }
    acc += a;
    __syncthreads();  // every thread is done with stage s
    if (threadIdx.x == 0 && k + kSumStages < my) {
      hp::mbar_expect_tx(smem_addr(&full[s]), bytes);
      bulk_load(smem_addr(buf + s * kSumTile), x + tile(k + kSumStages) * kSumTile, bytes, smem_addr(&full[s]));
    }
  }
  for (int o = 16; o > 0; o /= 2) acc += __shfl_down_sync(0xffffffffu, acc, o);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0;
    for (int w = 0; w < 8; ++w) t += partial[w];
    atomicAdd(out, t);
  }
}

// ---- sum of squares: grad_norm.cuh's order of blocks and trees, 16-byte loads ----
// Thread t of block b sums the float4s b * 256 + t, then every grid's width further (two loads in flight), each
// element squared: in fp64 (Quad32 false: grad_norm.cuh's precision, another order) or four squares summed in fp32
// before the fp64 add (Quad32 true). Then grad_norm.cuh's block tree and its total_kernel: deterministic either way.
// Whether grad_norm.cuh's scalar loads and per-element fp64 cost the joules the bulk rows save.
template <bool Quad32>
__global__ void __launch_bounds__(256) vec_sumsq_kernel(const float4* __restrict__ x, size_t n4,
                                                         double* __restrict__ partials) {
  __shared__ double warps[8];
  const size_t stride = (size_t)gridDim.x * 256;
  double s = 0.0;
  const auto add = [&](float4 v) {
    if (Quad32) {
      s += (double)fmaf(v.w, v.w, fmaf(v.z, v.z, fmaf(v.y, v.y, v.x * v.x)));
    } else {
      s = fma((double)v.x, (double)v.x, s);
      s = fma((double)v.y, (double)v.y, s);
      s = fma((double)v.z, (double)v.z, s);
      s = fma((double)v.w, (double)v.w, s);
    }
  };
  size_t i = (size_t)blockIdx.x * 256 + threadIdx.x;
  for (; i + stride < n4; i += 2 * stride) {
    const float4 a = x[i], b = x[i + stride];
    add(a);
    add(b);
  }
  if (i < n4) add(x[i]);
  s = lasp::grad_norm::warp_tree(s);
  if ((threadIdx.x & 31) == 0) warps[threadIdx.x >> 5] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    double b = 0.0;
    for (int w = 0; w < 8; ++w) b += warps[w];
    partials[blockIdx.x] = b;
  }
}
template <bool Quad32>
static void vec_sumsq(const float* x, size_t n, double* out, double* scratch) {
  const int blocks = lasp::grad_norm::kMaxBlocks;
  vec_sumsq_kernel<Quad32><<<blocks, 256>>>(reinterpret_cast<const float4*>(x), n / 4, scratch);
  LAUNCH_CHECK();
  lasp::grad_norm::total_kernel<<<1, 32>>>(scratch, blocks, out);
  LAUNCH_CHECK();
}

// ---- AdamW on tiles brought in and out by bulk copies, four variants of the element work ----
// kRowEach: adamw.cuh's update4 finding each element's row (a binary search per 4 elements; its Hopper path until
// 2026-12-07); kTileRow: the decay flag found once a tile where the tile lies in one tensor (every tile of the 1B
// model), adamw.cuh's Hopper path since: the same bits; kApprox: kTileRow with sqrt.approx and div.approx for
// the IEEE sqrt and division; kMove: the same bytes with no update (m = g; v and w kept): what moving AdamW's bytes
// through the SMs costs alone.
enum class AdamMath { kRowEach, kTileRow, kApprox, kMove };
constexpr int kAdamTile = 2048;  // elements: 3 x 8 KB of fp32 (grad, m, v) + 2 x 4 KB (weights, low) = 32 KB
constexpr uint32_t kAdamTileBytes = kAdamTile * (3 * 4 + 2 * 2);

__device__ __forceinline__ float sqrt_approx(float x) {
  float y;
  asm("sqrt.approx.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ float div_approx(float a, float b) {
  float y;
  asm("div.approx.f32 %0, %1, %2;" : "=f"(y) : "f"(a), "f"(b));
  return y;
}

// Elements 4j .. 4j + 3 of a tile in shared memory, each through f(w, m, v, g).
template <typename F>
__device__ __forceinline__ void apply4(uint2* weights, ushort4* low, float4* m, float4* v, const float4* grad, F f) {
  lasp::adamw::Bf16x4 hi;
  hi.v = *weights;
  const ushort4 lo = *low;
  const float4 m4 = *m, v4 = *v, g4 = *grad;
  float w[4] = {lasp::master_join(__low2bfloat16(hi.h[0]), lo.x), lasp::master_join(__high2bfloat16(hi.h[0]), lo.y),
                lasp::master_join(__low2bfloat16(hi.h[1]), lo.z), lasp::master_join(__high2bfloat16(hi.h[1]), lo.w)};
  float mm[4] = {m4.x, m4.y, m4.z, m4.w}, vv[4] = {v4.x, v4.y, v4.z, v4.w};
  const float g[4] = {g4.x, g4.y, g4.z, g4.w};
  for (int u = 0; u < 4; ++u) f(w[u], mm[u], vv[u], g[u]);
  *m = make_float4(mm[0], mm[1], mm[2], mm[3]);
  *v = make_float4(vv[0], vv[1], vv[2], vv[3]);
  bf16 h[4];
  uint16_t l[4];
  for (int u = 0; u < 4; ++u) lasp::master_split(w[u], &h[u], &l[u]);
  lasp::adamw::Bf16x4 out;
  out.h[0] = __halves2bfloat162(h[0], h[1]);
  out.h[1] = __halves2bfloat162(h[2], h[3]);
  *weights = out.v;
  *low = make_ushort4(l[0], l[1], l[2], l[3]);
}

template <AdamMath Math, int Stages = 3>
__global__ void __launch_bounds__(256) bulk_adamw_kernel(bf16* __restrict__ weights, uint16_t* __restrict__ low,
                                                        float* __restrict__ m, float* __restrict__ v,
                                                        const float* __restrict__ grad, size_t n,
                                                        const lasp::DecayRow* __restrict__ rows, int count,
                                                        lasp::AdamwConstants c) {
  extern __shared__ __align__(128) unsigned char smem[];
  __shared__ uint64_t full[Stages];
  init_bars(full, Stages);
  const size_t tiles = n / kAdamTile;
  const size_t my = tiles_of_block(tiles);
  const auto tile = [&](size_t k) { return (size_t)blockIdx.x + k * gridDim.x; };
  // A stage: grad | m | v (fp32) | weights | low (16-bit).
  const auto g_of = [&](int s) { return reinterpret_cast<float*>(smem + s * kAdamTileBytes); };
  const auto m_of = [&](int s) { return g_of(s) + kAdamTile; };
  const auto v_of = [&](int s) { return g_of(s) + 2 * kAdamTile; };
  const auto w_of = [&](int s) { return reinterpret_cast<bf16*>(g_of(s) + 3 * kAdamTile); };
  const auto l_of = [&](int s) { return reinterpret_cast<uint16_t*>(w_of(s) + kAdamTile); };
  const auto load = [&](int s, size_t t) {
    const uint32_t bar = smem_addr(&full[s]);
    const size_t e = t * kAdamTile;
    hp::mbar_expect_tx(bar, kAdamTileBytes);
    bulk_load(smem_addr(g_of(s)), grad + e, kAdamTile * 4, bar);
    bulk_load(smem_addr(m_of(s)), m + e, kAdamTile * 4, bar);
    bulk_load(smem_addr(v_of(s)), v + e, kAdamTile * 4, bar);
    bulk_load(smem_addr(w_of(s)), weights + e, kAdamTile * 2, bar);
    bulk_load(smem_addr(l_of(s)), low + e, kAdamTile * 2, bar);
  };
  const float inv_sqrt_bc2 = 1.0f / c.sqrt_bc2;
  if (threadIdx.x == 0)
    for (size_t k = 0; k < my && k < (size_t)Stages; ++k) load(k, tile(k));
  for (size_t k = 0; k < my; ++k) {
    const int s = k % Stages;
    hp::mbar_wait(smem_addr(&full[s]), (k / Stages) & 1);
    const size_t base = tile(k) * kAdamTile;
    const int flag = lasp::adamw::range_decay(rows, count, base, kAdamTile);  // -1: the tile crosses a row
    const bool decay = flag == 1;
    for (int j = threadIdx.x; j < kAdamTile / 4; j += blockDim.x) {
      uint2* wj = reinterpret_cast<uint2*>(w_of(s)) + j;
      ushort4* lj = reinterpret_cast<ushort4*>(l_of(s)) + j;
      float4* mj = reinterpret_cast<float4*>(m_of(s)) + j;
      float4* vj = reinterpret_cast<float4*>(v_of(s)) + j;
      const float4* gj = reinterpret_cast<const float4*>(g_of(s)) + j;
      if (Math == AdamMath::kRowEach || Math == AdamMath::kTileRow || flag < 0) {
        lasp::adamw::update4(wj, lj, mj, vj, gj, base + 4 * (size_t)j, Math == AdamMath::kRowEach ? -1 : flag, rows,
                             count, c);
      } else if (Math == AdamMath::kApprox) {
        apply4(wj, lj, mj, vj, gj, [&](float& w, float& mm, float& vv, float g0) {
          const float g = g0 * c.clip_scale;
          if (decay) w = w * c.decay_factor;
          mm = fmaf(c.one_minus_beta1, g - mm, mm);
          vv = fmaf(c.one_minus_beta2, g * g, c.beta2 * vv);
          w = fmaf(-c.step_size, div_approx(mm, fmaf(sqrt_approx(vv), inv_sqrt_bc2, c.eps)), w);
        });
      } else {
        // v is left as it was: a v set to g (negative half the time) would feed NaNs through the next variant's sqrt.
        apply4(wj, lj, mj, vj, gj, [&](float&, float& mm, float&, float g) { mm = g; });
      }
    }
    hp::fence_proxy_async();  // this thread's shared writes -> visible to the bulk stores
    __syncthreads();
    if (threadIdx.x == 0) {
      bulk_store(m + base, smem_addr(m_of(s)), kAdamTile * 4);
      bulk_store(v + base, smem_addr(v_of(s)), kAdamTile * 4);
      bulk_store(weights + base, smem_addr(w_of(s)), kAdamTile * 2);
      bulk_store(low + base, smem_addr(l_of(s)), kAdamTile * 2);
      hp::bulk_commit();
      if (k >= 1 && k - 1 + Stages < my) {  // tile k - 1's stage is read out: it takes tile k - 1 + Stages
        bulk_wait_read1();
        load((k - 1) % Stages, tile(k - 1 + Stages));
      }
    }
  }
  if (threadIdx.x == 0) hp::bulk_wait0();
  // The ragged tail (n % tile elements) by the last block, one element a thread, as adamw.cuh's tail.
  if (blockIdx.x == gridDim.x - 1)
    for (size_t e = tiles * kAdamTile + threadIdx.x; e < n; e += blockDim.x)
      lasp::adamw::update1(weights, low, m, v, grad, e, rows, count, c);
}

// The SMs clocked with nothing to do: the board's idle power at full clocks.
__global__ void sleep_kernel(int micros) {
  for (int i = 0; i < micros; ++i) __nanosleep(1000);
}
static void sleep_kernel_launch(int sms) { sleep_kernel<<<sms, 32>>>(1000); }

// ---- host ----
template <typename T>
struct Buf {
  T* p = nullptr;
  size_t n = 0;
  explicit Buf(size_t count) : n(count) { CUDA_CHECK(cudaMalloc(&p, count * sizeof(T))); }
  ~Buf() { cudaFree(p); }
  std::vector<T> host() const {
    std::vector<T> h(n);
    CUDA_CHECK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
};

__global__ void fill_kernel(float* p, size_t n, uint32_t seed, float scale) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    p[i] = scale * ((float)(h >> 8) * (2.0f / 16777216.0f) - 1.0f);
  }
}
__global__ void fill_bf16_kernel(bf16* p, size_t n, uint32_t seed, float scale) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 2246822519u ^ seed;
    h ^= h >> 13;
    h *= 2654435761u;
    p[i] = __float2bfloat16(scale * ((float)(h >> 8) * (2.0f / 16777216.0f) - 1.0f));
  }
}

struct AdamState {
  Buf<bf16> w;
  Buf<uint16_t> low;
  Buf<float> m, v, g;
  explicit AdamState(size_t n) : w(n), low(n), m(n), v(n), g(n) {
    fill_bf16_kernel<<<2048, 256>>>(w.p, n, 11, 0.05f);
    fill_kernel<<<2048, 256>>>(g.p, n, 12, 1e-3f);
    LAUNCH_CHECK();
    CUDA_CHECK(cudaMemset(low.p, 0, n * sizeof(uint16_t)));
    CUDA_CHECK(cudaMemset(m.p, 0, n * sizeof(float)));
    CUDA_CHECK(cudaMemset(v.p, 0, n * sizeof(float)));
    CUDA_CHECK(cudaDeviceSynchronize());
  }
};

template <typename T>
static bool same_bits(const Buf<T>& a, const Buf<T>& b) {
  const std::vector<T> x = a.host(), y = b.host();
  return std::memcmp(x.data(), y.data(), x.size() * sizeof(T)) == 0;
}

static int g_failures = 0;
static void check(const std::string& what, bool ok) {
  g_failures += !ok;
  std::printf("CHECK %-70s %s\n", what.c_str(), ok ? "ok" : "FAIL");
}

// Two CTAs of 3 stages on each of `sms` SMs; with `stages` 6, one CTA of 6 stages on each (the same bytes in flight an
// SM): a grid smaller than the GPU leaves the other SMs idle.
template <AdamMath Math, int Stages>
static void launch_bulk_adamw_grid(AdamState& st, size_t n, const lasp::AdamwTable& t, const lasp::AdamwConstants& c,
                                   int grid) {
  const int smem = Stages * (int)kAdamTileBytes;
  CUDA_CHECK(cudaFuncSetAttribute(bulk_adamw_kernel<Math, Stages>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  bulk_adamw_kernel<Math, Stages><<<grid, 256, smem>>>(st.w.p, st.low.p, st.m.p, st.v.p, st.g.p, n, t.rows, t.count, c);
  LAUNCH_CHECK();
}
template <AdamMath Math>
static void launch_bulk_adamw(AdamState& st, size_t n, const lasp::AdamwTable& t, const lasp::AdamwConstants& c,
                              int sms, int stages = 3) {
  if (stages == 3) launch_bulk_adamw_grid<Math, 3>(st, n, t, c, 2 * sms);
  else launch_bulk_adamw_grid<Math, 6>(st, n, t, c, sms);
}

// The largest |a - b| / (|b| + lr) over the fp32 master weights (bf16 high halves joined with their low halves):
// an update's error against the update's size (~lr) where a weight is near 0.
static double master_rel_diff(const AdamState& a, const AdamState& b, double lr) {
  const std::vector<bf16> wa = a.w.host(), wb = b.w.host();
  const std::vector<uint16_t> la = a.low.host(), lb = b.low.host();
  double worst = 0;
  for (size_t i = 0; i < wa.size(); ++i) {
    const double x = lasp::master_join(wa[i], la[i]), y = lasp::master_join(wb[i], lb[i]);
    worst = std::fmax(worst, std::fabs(x - y) / (std::fabs(y) + lr));
  }
  return worst;
}

static lasp::AdamwConstants constants(int step) {
  lasp::AdamwSettings s{3e-4, 0.9, 0.95, 1e-8, 0.1, 0.5, step};
  return lasp::adamw_step_constants(s);
}

int main(int argc, char** argv) {
  double seconds = 2;
  int adamw_rounds = 0;  // > 0: only the bulk AdamW variants, alternating, this many rounds (drift shows)
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) seconds = std::atof(argv[++i]);
    else if (std::strcmp(argv[i], "--adamw-rounds") == 0 && i + 1 < argc) adamw_rounds = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--seconds S] [--adamw-rounds R]\n", argv[0]);
      return 2;
    }
  }
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  const int sms = prop.multiProcessorCount;
  EnergyMeter meter;
  std::printf("GPU %s, %d SMs; energy counter %s\n", prop.name, sms, meter.available() ? "yes" : "NO");
  CUDA_CHECK(cudaFuncSetAttribute(bulk_copy_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  (int)(kCopyStages * kCopyTile)));
  CUDA_CHECK(cudaFuncSetAttribute(bulk_sumsq_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  (int)(kSumStages * kSumTile * sizeof(float))));

  {  // checks: bulk AdamW against the shipped kernel, two steps, bit for bit
    const size_t n = 10000003;  // 4882 tiles and a tail of 1667
    const std::vector<lasp::DecayRow> rows = {{0, 5000001, 1}, {5000001, 2048, 0}, {5002049, 3, 0},
                                              {5002052, n - 5002052, 1}};
    const lasp::AdamwTable t = lasp::adamw_upload_table(rows, n);
    AdamState ref(n), row_each(n), tile_row(n), approx(n);
    for (int step = 1; step <= 2; ++step) {
      const lasp::AdamwConstants c = constants(step);
      lasp::adamw::step_kernel<<<lasp::adamw::grid_for(n), lasp::adamw::kThreads>>>(ref.w.p, ref.low.p, ref.m.p,
                                                                                     ref.v.p, ref.g.p, n, t.rows,
                                                                                     t.count, c);
      LAUNCH_CHECK();
      launch_bulk_adamw<AdamMath::kRowEach>(row_each, n, t, c, sms);
      launch_bulk_adamw<AdamMath::kTileRow>(tile_row, n, t, c, sms);
      launch_bulk_adamw<AdamMath::kApprox>(approx, n, t, c, sms);
    }
    CUDA_CHECK(cudaDeviceSynchronize());
    const auto same = [&](const AdamState& a) {
      return same_bits(a.w, ref.w) && same_bits(a.low, ref.low) && same_bits(a.m, ref.m) && same_bits(a.v, ref.v);
    };
    check("bulk AdamW, each element's row, equals adamw.cuh's step_kernel bit for bit, 2 steps, 10000003 elements",
          same(row_each));
    check("bulk AdamW, decay flag once a tile, equals it bit for bit", same(tile_row));
    const double d = master_rel_diff(approx, ref, 3e-4);
    std::printf("INFO approximate sqrt and division: largest |difference| / (|weight| + lr) of the master weights "
                "%.3e; m, v the same bits: %s\n", d, same_bits(approx.m, ref.m) && same_bits(approx.v, ref.v) ? "yes" : "no");
    check("approximate sqrt and division within 1e-6 of the IEEE update (master weights, |w| + lr)", d <= 1e-6);
    CUDA_CHECK(cudaFree(const_cast<lasp::DecayRow*>(t.rows)));
  }
  {  // checks: bulk sum of squares against grad_norm_squared
    const size_t n = (size_t)kSumTile * 1000;
    Buf<float> x(n);
    fill_kernel<<<2048, 256>>>(x.p, n, 5, 1e-2f);
    Buf<double> out(1), ref(1), scratch(lasp::grad_norm_scratch_bytes(n) / sizeof(double));
    lasp::grad_norm_squared(x.p, n, ref.p, scratch.p, lasp::grad_norm_scratch_bytes(n), 0);
    CUDA_CHECK(cudaMemset(out.p, 0, sizeof(double)));
    bulk_sumsq_kernel<<<sms, 256, kSumStages * kSumTile * sizeof(float)>>>(x.p, n / kSumTile, out.p);
    LAUNCH_CHECK();
    const double a = out.host()[0], r = ref.host()[0];
    std::printf("INFO sum of squares: bulk %.9e, grad_norm %.9e\n", a, r);
    check("bulk sum of squares within 1e-6 of grad_norm_squared", std::fabs(a - r) <= 1e-6 * r);
    Buf<double> vs((size_t)lasp::grad_norm::kMaxBlocks);
    vec_sumsq<false>(x.p, n, out.p, vs.p);
    const double v64 = out.host()[0];
    vec_sumsq<true>(x.p, n, out.p, vs.p);
    const double v32 = out.host()[0];
    vec_sumsq<false>(x.p, n, out.p, vs.p);
    const double again = out.host()[0];
    std::printf("INFO sum of squares: float4 fp64 %.12e, float4 fp32 quads %.12e\n", v64, v32);
    check("float4 loads, fp64: within 1e-11 of grad_norm_squared, and the same bits again",
          std::fabs(v64 - r) <= 1e-11 * r && v64 == again);
    check("float4 loads, fp32 quads: within 1e-6 of grad_norm_squared", std::fabs(v32 - r) <= 1e-6 * r);
  }

  std::printf("\n| op | bytes moved | ms (median of 20) | J a call | W | GB/s back to back | mJ a GB above idle |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  double idle_w = 0;
  const auto row = [&](const char* op, double bytes, auto f) {
    const float ms = time_ms(f, 20);
    const OpEnergy e = energy_per_call(meter, f, seconds);
    const double above = bytes > 0 && e.calls ? (e.joules - idle_w * e.ms * 1e-3) / (bytes / 1e9) * 1e3 : 0;
    std::printf("| %s | %.2f GB | %.3f | %.4f | %.0f | %.0f | %.0f |\n", op, bytes / 1e9, ms, e.joules, e.watts,
                bytes > 0 ? bytes / (e.ms * 1e-3) / 1e9 : 0.0, above);
    std::fflush(stdout);
    return e;
  };
  idle_w = row("idle (SMs asleep)", 0, [&] { sleep_kernel_launch(sms); }).watts;
  const size_t n = 1599145984;  // Linear-Llama3-1B's parameters (a multiple of both tiles)
  if (adamw_rounds > 0) {  // the bulk AdamW variants alone, alternating, then each one's median joules
    AdamState st(n);
    const std::vector<lasp::DecayRow> rows = llama_1b_rows(n);
    const lasp::AdamwTable t = lasp::adamw_upload_table(rows, n);
    const lasp::AdamwConstants c = constants(10);
    // The four element variants on every SM (2 CTAs of 3 stages each), then the tile's flag as 1 CTA of 6 stages an
    // SM on all, 3/4 and 1/2 of the SMs: with bulk copies the bytes in flight do not need every SM, and an idle SM
    // draws little.
    struct Variant {
      std::string name;
      AdamMath math;
      int sms;
      int stages;
    };
    const std::vector<Variant> variants = {
        {"each element's row", AdamMath::kRowEach, sms, 3},
        {"decay flag once a tile", AdamMath::kTileRow, sms, 3},
        {"+ approximate sqrt and division", AdamMath::kApprox, sms, 3},
        {"bytes alone (no update)", AdamMath::kMove, sms, 3},
        {"decay flag once a tile, 1 CTA of 6 stages an SM", AdamMath::kTileRow, sms, 6},
        {"decay flag once a tile, " + std::to_string(sms * 3 / 4) + " SMs", AdamMath::kTileRow, sms * 3 / 4, 6},
        {"decay flag once a tile, " + std::to_string(sms / 2) + " SMs", AdamMath::kTileRow, sms / 2, 6}};
    const auto launch = [&](const Variant& v) {
      switch (v.math) {
        case AdamMath::kRowEach: launch_bulk_adamw<AdamMath::kRowEach>(st, n, t, c, v.sms, v.stages); break;
        case AdamMath::kTileRow: launch_bulk_adamw<AdamMath::kTileRow>(st, n, t, c, v.sms, v.stages); break;
        case AdamMath::kApprox: launch_bulk_adamw<AdamMath::kApprox>(st, n, t, c, v.sms, v.stages); break;
        case AdamMath::kMove: launch_bulk_adamw<AdamMath::kMove>(st, n, t, c, v.sms, v.stages); break;
      }
    };
    std::vector<std::vector<double>> joules(variants.size()), ms(variants.size());
    for (int r = 0; r < adamw_rounds; ++r)
      for (size_t k = 0; k < variants.size(); ++k) {
        const std::string op = "AdamW round " + std::to_string(r + 1) + ": " + variants[k].name;
        const OpEnergy e = row(op.c_str(), 28.0 * n, [&] { launch(variants[k]); });
        joules[k].push_back(e.joules);
        ms[k].push_back(e.ms);
      }
    const auto median = [](std::vector<double> x) {
      std::sort(x.begin(), x.end());
      return x[x.size() / 2];
    };
    std::printf("\n| AdamW variant | J a call (median of %d rounds) | against each element's row | ms back to back |\n"
                "|---|---|---|---|\n", adamw_rounds);
    for (size_t k = 0; k < variants.size(); ++k)
      std::printf("| %s | %.4f | %.3f | %.3f |\n", variants[k].name.c_str(), median(joules[k]),
                  median(joules[k]) / median(joules[0]), median(ms[k]));
    CUDA_CHECK(cudaFree(const_cast<lasp::DecayRow*>(t.rows)));
    std::printf("\n%d failed checks\n", g_failures);
    return g_failures ? 1 : 0;
  }
  {
    const size_t bytes = (size_t)2 << 30;
    Buf<char> a(bytes), b(bytes);
    CUDA_CHECK(cudaMemset(a.p, 1, bytes));
    row("copy: cudaMemcpyAsync", 2.0 * bytes, [&] { CUDA_CHECK(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice)); });
    row("copy: float4 loads and stores", 2.0 * bytes, [&] {
      ldg_copy_kernel<<<sms * 8, 256>>>(reinterpret_cast<const float4*>(a.p), reinterpret_cast<float4*>(b.p), bytes / 16);
    });
    row("copy: bulk load + bulk store", 2.0 * bytes, [&] {
      bulk_copy_kernel<<<sms * 2, 32, kCopyStages * kCopyTile>>>(a.p, b.p, bytes / kCopyTile);
    });
  }
  {
    Buf<float> x(n);
    fill_kernel<<<2048, 256>>>(x.p, n, 7, 1e-3f);
    Buf<double> out(1), scratch(lasp::grad_norm_scratch_bytes(n) / sizeof(double));
    row("sum of squares: grad_norm.cuh (ships)", 4.0 * n,
        [&] { lasp::grad_norm_squared(x.p, n, out.p, scratch.p, lasp::grad_norm_scratch_bytes(n), 0); });
    Buf<double> vs((size_t)lasp::grad_norm::kMaxBlocks);
    row("sum of squares: float4 loads, fp64", 4.0 * n, [&] { vec_sumsq<false>(x.p, n, out.p, vs.p); });
    row("sum of squares: float4 loads, fp32 quads", 4.0 * n, [&] { vec_sumsq<true>(x.p, n, out.p, vs.p); });
    row("sum of squares: bulk loads", 4.0 * n, [&] {
      CUDA_CHECK(cudaMemsetAsync(out.p, 0, sizeof(double)));
      bulk_sumsq_kernel<<<sms, 256, kSumStages * kSumTile * sizeof(float)>>>(x.p, n / kSumTile, out.p);
    });
  }
  {
    AdamState st(n);
    const std::vector<lasp::DecayRow> rows = llama_1b_rows(n);
    const lasp::AdamwTable t = lasp::adamw_upload_table(rows, n);
    const lasp::AdamwConstants c = constants(10);
    row("AdamW: adamw.cuh's vectorised kernel (other GPUs)", 28.0 * n, [&] {
      lasp::adamw::step_kernel<<<lasp::adamw::grid_for(n), lasp::adamw::kThreads>>>(st.w.p, st.low.p, st.m.p, st.v.p,
                                                                                    st.g.p, n, t.rows, t.count, c);
    });
    row("AdamW: bulk, each element's row (adamw.cuh's Hopper path)", 28.0 * n,
        [&] { launch_bulk_adamw<AdamMath::kRowEach>(st, n, t, c, sms); });
    row("AdamW: bulk, decay flag once a tile", 28.0 * n,
        [&] { launch_bulk_adamw<AdamMath::kTileRow>(st, n, t, c, sms); });
    row("AdamW: bulk, + approximate sqrt and division", 28.0 * n,
        [&] { launch_bulk_adamw<AdamMath::kApprox>(st, n, t, c, sms); });
    row("AdamW bytes alone: bulk, no update", 28.0 * n, [&] { launch_bulk_adamw<AdamMath::kMove>(st, n, t, c, sms); });
    row("AdamW: bulk, each element's row, again (drift)", 28.0 * n, [&] { launch_bulk_adamw<AdamMath::kRowEach>(st, n, t, c, sms); });
    CUDA_CHECK(cudaFree(const_cast<lasp::DecayRow*>(t.rows)));
  }
  std::printf("\n%d failed checks\n", g_failures);
  return g_failures ? 1 : 0;
}
