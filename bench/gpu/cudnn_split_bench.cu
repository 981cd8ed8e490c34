// LASP-2H's gathered backward on cuDNN (issue 18): one rank's query piece against its key prefix, timed two
// ways, beside the whole sequence's causal call on the same GPU:
//   one call  queries [a, a + L) against keys [0, a + L), causal bottom-right aligned (what
//             softmax_gathered.cuh issues today, s_q < s_kv);
//   split     the same queries against keys [0, a) without a mask (a rectangle) plus against keys [a, a + L)
//             causal with s_q == s_kv (a square), both shapes the whole-sequence engine is tuned for. Exact:
//             the backward of a row reads only the final o, lse and dO, so key ranges split freely; dK, dV of
//             the two ranges are disjoint rows, dQ is the sum of the two calls' (one more bf16 rounding).
// For every piece of W 4 and 8, contiguous and zigzag, at 16K and 64K tokens (16 heads x 128, 8 kv heads,
// batch 1), it checks split against one call (relative L2 of dq, dk, dv) and times both (median of --runs
// after 2 warm-ups, CUDA events); a rank's time is the sum of its pieces'. Output: one line per layout,
//   SPLIT <tokens> <W> <layout> one <ms> split <ms> whole <ms> | one/whole <x> split/whole <x> | worst rel <e>
// where x/whole compares the rate (FLOPs of the pairs computed per second) with the whole sequence's.
//
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -DLASP_WITH_CUDNN -Itemplates/runtime \
//        -I$CUDNN/include -o cudnn_split_bench bench/gpu/cudnn_split_bench.cu -L$CUDNN/lib -l:libcudnn.so.9
//   ./cudnn_split_bench [--runs N]
#include "check.cuh"
#include "types.cuh"
#include "cudnn_attention.cuh"

#include "bench_fill.cuh"
#include "bench_timing.cuh"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using lasp::bf16;
using lasp::CudnnSdpaShape;

namespace {

constexpr int kHeads = 16, kKvHeads = 8, kDim = 128;

__global__ void rel_l2_parts(const bf16* got_a, const bf16* got_b, const bf16* ref, size_t n, double* out) {
  double e = 0, r = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const double g = (double)__bfloat162float(got_a[i]) + (got_b ? (double)__bfloat162float(got_b[i]) : 0.0);
    const double f = __bfloat162float(ref[i]);
    e += (g - f) * (g - f), r += f * f;
  }
  atomicAdd(out, e);
  atomicAdd(out + 1, r);
}

// ||(a + b) - ref|| / ||ref|| over n elements (b may be null).
double rel_l2(const bf16* a, const bf16* b, const bf16* ref, size_t n) {
  double* d = nullptr;
  CUDA_CHECK(cudaMalloc(&d, 2 * sizeof(double)));
  CUDA_CHECK(cudaMemset(d, 0, 2 * sizeof(double)));
  rel_l2_parts<<<264, 256>>>(a, b, ref, n, d);
  LAUNCH_CHECK();
  double h[2];
  CUDA_CHECK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaFree(d));
  return std::sqrt(h[0] / std::max(h[1], 1e-300));
}

CudnnSdpaShape shape(int q_rows, int k_rows, bool causal, int S) {
  return CudnnSdpaShape{1, kHeads, kKvHeads, q_rows, k_rows, kDim, causal, 1.0f / std::sqrt((float)kDim),
                        (long long)S * kHeads * kDim, (long long)S * kKvHeads * kDim};
}

struct Piece {
  int rank, start, rows;
};

std::vector<Piece> pieces(int S, int W, bool zigzag) {
  std::vector<Piece> p;
  if (!zigzag) {
    for (int r = 0; r < W; ++r) p.push_back({r, r * (S / W), S / W});
  } else {
    const int L = S / (2 * W);
    for (int r = 0; r < W; ++r) p.push_back({r, r * L, L}), p.push_back({r, (2 * W - 1 - r) * L, L});
  }
  return p;
}

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "cuDNN cannot run %s here\n", what);
    std::exit(3);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--runs") && i + 1 < argc) runs = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--runs N]\n", argv[0]);
      return 2;
    }
  }
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("GPU %s, cuDNN %zu, %d heads x %d, %d kv heads, runs %d\n", prop.name, cudnnGetVersion(), kHeads, kDim,
              kKvHeads, runs);
  for (int S : {16384, 65536}) {
    const size_t nq = (size_t)S * kHeads * kDim, nk = (size_t)S * kKvHeads * kDim;
    bf16 *q, *k, *v, *o, *dout, *dq1, *dq2, *dq3, *dk1, *dv1, *dk2, *dv2;
    float* lse;
    for (bf16** p : {&q, &o, &dout, &dq1, &dq2, &dq3}) CUDA_CHECK(cudaMalloc(p, nq * sizeof(bf16)));
    for (bf16** p : {&k, &v, &dk1, &dv1, &dk2, &dv2}) CUDA_CHECK(cudaMalloc(p, nk * sizeof(bf16)));
    CUDA_CHECK(cudaMalloc(&lse, (size_t)S * kHeads * sizeof(float)));
    fill_uniform_kernel<<<1024, 256>>>(q, nq, 1, 1.f);
    fill_uniform_kernel<<<1024, 256>>>(k, nk, 2, 1.f);
    fill_uniform_kernel<<<1024, 256>>>(v, nk, 3, 1.f);
    fill_uniform_kernel<<<1024, 256>>>(dout, nq, 4, 1.f);
    LAUNCH_CHECK();

    const CudnnSdpaShape whole = shape(S, S, true, S);
    require(lasp::cudnn_sdpa_supported(whole), "the whole sequence");
    lasp::cudnn_sdpa_forward(whole, q, k, v, o, lse, 0);
    const double whole_ms = time_ms([&] { lasp::cudnn_sdpa_backward(whole, q, k, v, o, dout, lse, dq1, dk1, dv1, 0); },
                                    runs);
    const double whole_pairs = (double)S * (S + 1) / 2;

    for (int W : {4, 8})
      for (bool zigzag : {false, true}) {
        double one_total = 0, split_total = 0, pairs_total = 0, worst = 0;
        std::vector<double> one_rank(W, 0), split_rank(W, 0), pairs_rank(W, 0);
        for (const Piece& pc : pieces(S, W, zigzag)) {
          const int a = pc.start, L = pc.rows, end = a + L;
          const size_t qo = (size_t)a * kHeads * kDim, ko = (size_t)a * kKvHeads * kDim;
          const CudnnSdpaShape one = shape(L, end, true, S), sq = shape(L, L, true, S), rect = shape(L, a, false, S);
          require(lasp::cudnn_sdpa_supported(one), "a piece's call");
          require(lasp::cudnn_sdpa_supported(sq), "a piece's square");
          if (a > 0) require(lasp::cudnn_sdpa_supported(rect), "a piece's rectangle");
          // o, lse of the piece's rows (the forward both backwards read)
          lasp::cudnn_sdpa_forward(one, q + qo, k, v, o + qo, lse, 0);
          auto one_call = [&] { lasp::cudnn_sdpa_backward(one, q + qo, k, v, o + qo, dout + qo, lse, dq1, dk1, dv1, 0); };
          auto split = [&] {
            if (a > 0) lasp::cudnn_sdpa_backward(rect, q + qo, k, v, o + qo, dout + qo, lse, dq2, dk2, dv2, 0);
            lasp::cudnn_sdpa_backward(sq, q + qo, k + ko, v + ko, o + qo, dout + qo, lse, dq3, dk2 + ko, dv2 + ko, 0);
          };
          one_call();
          split();
          CUDA_CHECK(cudaDeviceSynchronize());
          const size_t nqp = (size_t)L * kHeads * kDim, nkp = (size_t)end * kKvHeads * kDim;
          worst = std::max({worst, rel_l2(dq3, a > 0 ? dq2 : nullptr, dq1, nqp), rel_l2(dk2, nullptr, dk1, nkp),
                            rel_l2(dv2, nullptr, dv1, nkp)});
          const double t1 = time_ms(one_call, runs), t2 = time_ms(split, runs);
          const double pairs = (double)L * a + (double)L * (L + 1) / 2;
          one_total += t1, split_total += t2, pairs_total += pairs;
          one_rank[pc.rank] += t1, split_rank[pc.rank] += t2, pairs_rank[pc.rank] += pairs;
        }
        const double whole_rate = whole_pairs / whole_ms;
        double worst_one = 1e9, worst_split = 1e9;
        for (int r = 0; r < W; ++r) {
          worst_one = std::min(worst_one, pairs_rank[r] / one_rank[r] / whole_rate);
          worst_split = std::min(worst_split, pairs_rank[r] / split_rank[r] / whole_rate);
        }
        std::printf("SPLIT %d %d %s one %.3f split %.3f whole %.3f | one/whole %.3f split/whole %.3f | worst rank "
                    "one %.3f split %.3f | worst rel %.2e\n",
                    S, W, zigzag ? "zigzag" : "contiguous", one_total, split_total, whole_ms,
                    pairs_total / one_total / whole_rate, pairs_total / split_total / whole_rate, worst_one,
                    worst_split, worst);
        std::fflush(stdout);
      }
    for (bf16* p : {q, k, v, o, dout, dq1, dq2, dq3, dk1, dv1, dk2, dv2}) CUDA_CHECK(cudaFree(p));
    CUDA_CHECK(cudaFree(lse));
  }
  return 0;
}
