// How much faster the whole model's GEMMs get with cuBLASLt's algorithms chosen by timing (issues 16/17's lever
// 1: bench/results/2026-12-05-train-mode-h100.md puts the projections at 535 TFLOP/s against a 650-700 ceiling).
// For every product shape Linear-Llama3-1B's step issues at 16K tokens (the program's lasp::matmul layouts:
// forward x W^T, input gradient dY W, weight gradient dY^T x in fp32), it times
//   - cublasGemmEx with CUBLAS_GEMM_DEFAULT, as templates/runtime/blas.cuh calls it today, and
//   - every algorithm cuBLASLt's heuristic offers (up to 16) for the same operation, keeping the fastest, and
//   - lasp's Hopper GEMM (mlp_gemm.cuh's plain store, which runs the LM head's logits in the program) where it
//     takes the shape (A not transposed, bf16 out, M % 128, K % 64, N % 128; on Hopper),
// and prints one line per shape and a total weighted by how many times a step issues the shape (16 layers; the
// LM head in 4 chunks of 4096 tokens). The operands are random (uniform in [-1, 1), the weights scaled by
// 1/sqrt(2048)): a GEMM over zeros draws less power and runs at a higher clock than the step's.
//   - default: each the median of 20 runs after warm-up (bench_timing.cuh): the GPU mostly at its boost clock;
//   - `--sustained MS`: each back to back for MS milliseconds after the GPU has run at full load for 2 s, so the
//     board sits at its power limit as in the training step (bench/results/2026-12-06-gemm-clocks-h100.md); there
//     time is energy, and the fastest algorithm is the one that spends the fewest joules a product.
//   - `--configs`: also one line per cuBLASLt candidate: its algorithm id, tile, stages, cluster shape, split-k
//     and CTA swizzle (cublasLt.h's enum values) and its ms (the board's energy counter is too coarse for 250 ms
//     stretches: bench/results/2026-12-07-energy-h100.md).
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a bench/gpu/gemm_algos.cu -lcublas -lcublasLt -o gemm_algos
//   ./gemm_algos [--sustained MS] [--json OUT] [--configs]
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../../templates/runtime/blas.cuh"
#include "../../templates/runtime/mlp_gemm.cuh"
#include "bench_fill.cuh"    // fill_uniform_kernel
#include "bench_timing.cuh"

#define CUBLASLT_CHECK(call)                                                                          \
  do {                                                                                                \
    cublasStatus_t status_ = (call);                                                                  \
    if (status_ != CUBLAS_STATUS_SUCCESS) {                                                           \
      std::fprintf(stderr, "%s failed: %s (%s:%d)\n", #call, cublasGetStatusString(status_), __FILE__, \
                   __LINE__);                                                                         \
      std::exit(3);                                                                                   \
    }                                                                                                 \
  } while (0)

// Milliseconds a call of f takes: the median of 20 after warm-up, or with sustained_ms > 0 the mean over calls
// back to back for that long (one pair of events around them all: the launches queue, the GPU never idles).
static double g_sustained_ms = 0;
static bool g_configs = false;

template <typename F>
static float call_ms(F f) {
  if (g_sustained_ms <= 0) return time_ms(f, 20);
  const float one = time_ms(f, 3);
  const int calls = std::max(5, (int)(g_sustained_ms / std::max(one, 1e-3f)));
  for (int i = 0; i < calls / 4; ++i) f();  // a quarter as warm-up at this algorithm
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  CUDA_CHECK(cudaEventRecord(a));
  for (int i = 0; i < calls; ++i) f();
  CUDA_CHECK(cudaEventRecord(b));
  CUDA_CHECK(cudaEventSynchronize(b));
  float ms;
  CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  CUDA_CHECK(cudaEventDestroy(a));
  CUDA_CHECK(cudaEventDestroy(b));
  return ms / calls;
}

struct Shape {
  const char* what;
  bool trans_a, trans_b, fp32_out;
  int M, N, K;
  int per_step;  // times one training step issues it
};

// One configuration attribute of a cuBLASLt algorithm (-1 where it cannot be read).
static int lt_config(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoConfigAttributes_t attr) {
  uint32_t v = 0;
  size_t written = 0;
  return cublasLtMatmulAlgoConfigGetAttribute(&algo, attr, &v, sizeof v, &written) == CUBLAS_STATUS_SUCCESS ? (int)v
                                                                                                            : -1;
}

// cuBLASLt's row-major C = op(A) op(B) issued as column-major C^T = op(B)^T op(A)^T, as blas.cuh does.
static float best_lt(cublasLtHandle_t lt, const Shape& s, const __nv_bfloat16* A, const __nv_bfloat16* B, void* C,
                     void* workspace, size_t workspace_bytes, int* tried) {
  cublasLtMatmulDesc_t op;
  CUBLASLT_CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = s.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, tb = s.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  const int lda = s.trans_a ? s.M : s.K, ldb = s.trans_b ? s.K : s.N;
  // Column-major views: the first operand is B (N x K, or K x N stored), the second A, the result C^T (N x M).
  cublasLtMatrixLayout_t lb, la, lc;
  CUBLASLT_CHECK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, s.trans_b ? s.K : s.N, s.trans_b ? s.N : s.K, ldb));
  CUBLASLT_CHECK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, s.trans_a ? s.M : s.K, s.trans_a ? s.K : s.M, lda));
  CUBLASLT_CHECK(cublasLtMatrixLayoutCreate(&lc, s.fp32_out ? CUDA_R_32F : CUDA_R_16BF, s.N, s.M, s.N));
  cublasLtMatmulPreference_t pref;
  CUBLASLT_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                                      sizeof workspace_bytes));
  cublasLtMatmulHeuristicResult_t results[16];
  int found = 0;
  CUBLASLT_CHECK(cublasLtMatmulAlgoGetHeuristic(lt, op, lb, la, lc, lc, pref, 16, results, &found));
  const float alpha = 1.0f, beta = 0.0f;
  float best = 1e30f;
  for (int i = 0; i < found; i++) {
    const float ms = call_ms([&] {
      CUBLASLT_CHECK(cublasLtMatmul(lt, op, &alpha, B, lb, A, la, &beta, C, lc, C, lc, &results[i].algo, workspace,
                                    workspace_bytes, 0));
    });
    best = ms < best ? ms : best;
    if (g_configs) {
      const auto get = [&](cublasLtMatmulAlgoConfigAttributes_t attr) { return lt_config(results[i].algo, attr); };
      std::printf("    candidate %2d: algo %3d tile %3d stages %3d cluster %2d splitk %2d swizzle %d  %8.4f ms",
                  i, get(CUBLASLT_ALGO_CONFIG_ID), get(CUBLASLT_ALGO_CONFIG_TILE_ID), get(CUBLASLT_ALGO_CONFIG_STAGES_ID),
                  get(CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID), get(CUBLASLT_ALGO_CONFIG_SPLITK_NUM),
                  get(CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING), ms);
      std::printf("\n");
    }
  }
  *tried = found;
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatrixLayoutDestroy(lc);
  cublasLtMatmulDescDestroy(op);
  return best;
}

int main(int argc, char** argv) {
  const char* json = nullptr;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json" && i + 1 < argc)
      json = argv[++i];
    else if (a == "--sustained" && i + 1 < argc && std::atof(argv[i + 1]) > 0)
      g_sustained_ms = std::atof(argv[++i]);
    else if (a == "--configs")
      g_configs = true;
    else {
      std::fprintf(stderr, "usage: %s [--sustained MS] [--json OUT] [--configs]\n", argv[0]);
      return 2;
    }
  }
  const int T = 16384, H = 2048, F = 8192, V = 128256, chunk = 4096, L = 16;
  const Shape shapes[] = {
      {"q|o forward x W^T", false, true, false, T, H, H, 2 * L},
      {"k|v forward x W^T", false, true, false, T, H, H, 2 * L},
      {"projection input gradient dY W", false, false, false, T, H, H, 4 * L},
      {"projection weight gradient dY^T x", true, false, true, H, H, T, 4 * L},
      {"gate|up forward", false, true, false, T, 2 * F, H, L},
      {"gate|up input gradient", false, false, false, T, H, 2 * F, L},
      {"gate|up weight gradient", true, false, true, 2 * F, H, T, L},
      {"down forward", false, true, false, T, H, F, L},
      {"down input gradient", false, false, false, T, F, H, L},
      {"down weight gradient", true, false, true, H, F, T, L},
      {"LM head logits (a chunk)", false, true, false, chunk, V, H, T / chunk},
      {"LM head input gradient", false, false, false, chunk, H, V, T / chunk},
      {"LM head weight gradient", true, false, true, V, H, chunk, T / chunk},
  };
  size_t most = 0;
  for (const Shape& s : shapes) {
    const size_t a = (size_t)s.M * s.K, b = (size_t)s.K * s.N, c = (size_t)s.M * s.N * 2;
    most = std::max(most, std::max(a, std::max(b, c)));
  }
  __nv_bfloat16 *A, *B;
  void* C;
  CUDA_CHECK(cudaMalloc(&A, most * sizeof(__nv_bfloat16)));
  CUDA_CHECK(cudaMalloc(&B, most * sizeof(__nv_bfloat16)));
  CUDA_CHECK(cudaMalloc(&C, most * sizeof(float)));
  // Activations and gradients of unit size, weights of 1/sqrt(2048): products of the step's magnitudes.
  fill_uniform_kernel<<<1024, 256>>>(A, most, 1, 1.0f);
  fill_uniform_kernel<<<1024, 256>>>(B, most, 2, 1.0f / 45.25f);
  CUDA_CHECK(cudaGetLastError());
  CUDA_CHECK(cudaMemset(C, 0, most * sizeof(float)));
  const size_t workspace_bytes = 64u << 20;
  void* workspace;
  CUDA_CHECK(cudaMalloc(&workspace, workspace_bytes));
  cublasHandle_t handle;
  cublasLtHandle_t lt;
  CUBLAS_CHECK(cublasCreate(&handle));
  CUBLASLT_CHECK(cublasLtCreate(&lt));
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::FILE* out = json ? std::fopen(json, "w") : nullptr;
  if (out) std::fprintf(out, "{\"device\": \"%s\", \"sustained_ms\": %g, \"shapes\": [\n", prop.name, g_sustained_ms);
  if (g_sustained_ms > 0) {  // the board at its power limit before the first timing
    const float one = time_ms([&] { lasp::matmul(handle, false, true, T, 2 * F, H, A, B, static_cast<__nv_bfloat16*>(C)); }, 3);
    for (int i = 0; i < (int)(2000 / std::max(one, 1e-3f)); ++i)
      lasp::matmul(handle, false, true, T, 2 * F, H, A, B, static_cast<__nv_bfloat16*>(C));
    CUDA_CHECK(cudaDeviceSynchronize());
  }
  if (g_sustained_ms > 0)
    std::printf("%s: cublasGemmEx (DEFAULT) against cuBLASLt's fastest heuristic algorithm, each back to back for %.0f "
                "ms at the power limit, random operands\n", prop.name, g_sustained_ms);
  else
    std::printf("%s: cublasGemmEx (DEFAULT) against cuBLASLt's fastest heuristic algorithm, median of 20 runs, random "
                "operands\n", prop.name);
  std::printf("%-36s %6s %6s %6s %8s %8s %8s %6s %6s\n", "shape", "M", "N", "K", "gemmex", "lt best", "lasp", "TF/s",
              "x");
  double step_default = 0, step_best = 0;
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    const Shape& s = shapes[i];
    const float ms_default = call_ms([&] {
      if (s.fp32_out) lasp::matmul(handle, s.trans_a, s.trans_b, s.M, s.N, s.K, A, B, static_cast<float*>(C));
      else lasp::matmul(handle, s.trans_a, s.trans_b, s.M, s.N, s.K, A, B, static_cast<__nv_bfloat16*>(C));
    });
    if (g_configs) std::printf("  %s: cublasGemmEx %.4f ms\n", s.what, ms_default);
    int tried = 0;
    const float ms_lt = best_lt(lt, s, A, B, C, workspace, workspace_bytes, &tried);
    const bool lasp_takes = !s.trans_a && !s.fp32_out && s.M % lasp::mlpg::kBM == 0 && s.K % lasp::mlpg::kBK == 0 &&
                            s.N % (lasp::mlpg::kBN / 2) == 0 && lasp::hopper::kernels_run();
    const float ms_lasp = !lasp_takes ? 1e30f : call_ms([&] {
      const bool b_mn = !s.trans_b;
      CUDA_CHECK(lasp::mlpg::plain(
          lasp::mlpg::prepare_plain(A, B, static_cast<__nv_bfloat16*>(C), s.M, s.N, s.K, b_mn), b_mn, 0));
    });
    if (g_configs && lasp_takes) std::printf("    lasp's Hopper GEMM %.4f ms\n", ms_lasp);
    const double flops = 2.0 * s.M * s.N * s.K;
    const float best = std::min(ms_default, std::min(ms_lt, ms_lasp));
    step_default += ms_default * s.per_step;
    step_best += best * s.per_step;
    char lasp_col[16] = "       -";
    if (lasp_takes) std::snprintf(lasp_col, sizeof lasp_col, "%8.3f", ms_lasp);
    std::printf("%-36s %6d %6d %6d %8.3f %8.3f %s %6.0f %6.3f  (%d algorithms)\n", s.what, s.M, s.N, s.K, ms_default,
                ms_lt, lasp_col, flops / (best * 1e-3) / 1e12, ms_default / best, tried);
    if (out) {
      char lasp_json[32] = "null";
      if (lasp_takes) std::snprintf(lasp_json, sizeof lasp_json, "%.4f", ms_lasp);
      std::fprintf(out, "  {\"what\": \"%s\", \"M\": %d, \"N\": %d, \"K\": %d, \"per_step\": %d, \"gemmex_ms\": %.4f, "
                        "\"lt_best_ms\": %.4f, \"lt_algorithms\": %d, \"lasp_ms\": %s}%s\n",
                   s.what, s.M, s.N, s.K, s.per_step, ms_default, ms_lt, tried, lasp_json,
                   i + 1 < sizeof shapes / sizeof shapes[0] ? "," : "");
    }
  }
  std::printf("one training step's GEMMs: %.1f ms as today, %.1f ms with the fastest of each, lasp's included (%.1f ms "
              "less)\n",
              step_default, step_best, step_default - step_best);
  if (out) {
    std::fprintf(out, "], \"step_gemm_ms\": %.3f, \"step_gemm_best_ms\": %.3f}\n", step_default, step_best);
    std::fclose(out);
  }
  return 0;
}
