// The host-side logic of the model's runtime headers (norm.cuh, swiglu.cuh, mlp_gemm.cuh) and of the GPU harnesses' LM-head
// chunks (bench/gpu/harness/kernels.h): launch shapes, scratch sizes, the chunk, and the refusals, driven from
// test/model-ops-host.test.ts. No kernel runs: the harness needs nvcc but no GPU.
//   harness shapes            one line per case: what the host code decides
//   harness refuse-norm H     norm_forward's check of hidden H (exits with the header's message)
//   harness refuse-swiglu F   swiglu_forward's check of ffn F
//   harness mlp-backend R F H mlp_gemm_backend's answer for R tokens, ffn F, hidden H under LASP_MLP_GEMM
//                             (cublas, or a shape the kernel cannot take: no GPU asked; else exits with its message)
//   harness head-backend R V H  head_gemm_backend's for chunks of R tokens, vocab V, hidden H under LASP_HEAD_GEMM
//   harness head-logits R V H   whether head_logits_gemm takes such a chunk (only shapes it leaves to cuBLAS)
#include <cstdio>
#include <cstdlib>
#include <string>

#include "lm_head.cuh"
#include "mlp_gemm.cuh"
#include "norm.cuh"
#include "swiglu.cuh"

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "shapes") {
    for (int hidden : {8, 64, 512, 2048, 2056, 4096, 6144, 8192}) {
      const lasp::norm::Launch l = lasp::norm::launch_for(hidden, "norm");
      std::printf("norm %d: %d threads x %d vectors\n", hidden, l.threads, l.vpt);
    }
    std::printf("norm scratch 16384x2048: %zu\n", lasp::norm_backward_scratch_bytes(16384, 2048));
    std::printf("norm scratch 100x64: %zu\n", lasp::norm_backward_scratch_bytes(100, 64));
    std::printf("swiglu grid 10: %d, 100000: %d\n", lasp::swiglu::grid_for(10), lasp::swiglu::grid_for(100000));
    std::printf("chunk 256MiB 128256 16384: %d\n", lasp::classifier_chunk_tokens(256u << 20, 128256, 16384));
    std::printf("chunk 1MiB 128256 16384: %d\n", lasp::classifier_chunk_tokens(1u << 20, 128256, 16384));
    std::printf("chunk 256MiB 512 100: %d\n", lasp::classifier_chunk_tokens(256u << 20, 512, 100));
    std::printf("logits 1024 128256: %zu\n", lasp::classifier_logits_bytes(1024, 128256));
    return 0;
  }
  if (mode == "refuse-norm" && argc > 2) {
    lasp::norm_forward(lasp::kRmsNorm, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 1,
                       std::atoi(argv[2]), 1e-5f, 0);
    return 0;
  }
  if (mode == "refuse-swiglu" && argc > 2) {
    lasp::swiglu_forward(nullptr, nullptr, 2 * (size_t)std::atoi(argv[2]), nullptr, 1, std::atoi(argv[2]), 0);
    return 0;
  }
  if (mode == "mlp-backend" && argc > 4) {
    std::printf("%s\n", lasp::mlp_gemm_backend(std::atoi(argv[2]), std::atoi(argv[3]), std::atoi(argv[4])));
    return 0;
  }
  if (mode == "head-backend" && argc > 4) {
    std::printf("%s\n", lasp::head_gemm_backend(std::atoi(argv[2]), std::atoi(argv[3]), std::atoi(argv[4])));
    return 0;
  }
  if (mode == "head-logits" && argc > 4) {  // a chunk that goes to cuBLAS: nothing launched, false
    const bool taken = lasp::head_logits_gemm(nullptr, nullptr, nullptr, std::atoi(argv[2]), std::atoi(argv[3]),
                                              std::atoi(argv[4]), 0);
    std::printf("%s\n", taken ? "lasp" : "cuBLAS");
    return 0;
  }
  return 2;
}
