// The LM head and the loss, chunked over tokens: per chunk, the logits (lasp's Hopper GEMM where it takes the
// chunk, mlp_gemm.cuh's head_logits_gemm; else cuBLAS), cross-entropy and its gradient in place (classifier.cuh's
// row kernel), then the chunk's input gradient and the head's weight gradient (cuBLAS). The logits of one chunk
// are held at a time (classifier.cuh says why and how).
#pragma once
#include <cublas_v2.h>  // the handle
#include <cstdio>       // the error below
#include <cstdlib>      // std::exit
#include "blas.cuh"     // matmul
#include "check.cuh"    // CUBLAS_CHECK, LASP_EXIT_CODE_FAILURE
#include "kernels.h"    // classifier_rows, head_logits_gemm
#include "types.cuh"    // bf16

namespace lasp {

// x [tokens][hidden] (the final norm's output), weight [vocab][hidden] (the LM head, or the embedding table when
// tied), targets [tokens] (-1: none). Writes losses[tokens] (fp32, per token; 0 where no target). With dx:
// dx [tokens][hidden] (bf16, overwritten) and dweight [vocab][hidden] (fp32; += when accumulate, else =),
// scaled by inv_count = 1 / (targets counted over all ranks). logits: [chunk][vocab] bf16 (the compiler's chunk,
// program::kClassifierChunk, sizes the program's buffer).
// cuBLAS runs on the handle's stream, set to `s` here.
inline void classifier_forward_backward(cublasHandle_t handle, cudaStream_t s, const bf16* x, const bf16* weight,
                                        const int* targets, int tokens, int vocab, int hidden, int chunk,
                                        float inv_count, bf16* logits, float* losses, bf16* dx, float* dweight,
                                        bool accumulate) {
  if (chunk <= 0 || vocab <= 0 || hidden <= 0) {
    std::fprintf(stderr, "classifier_forward_backward: chunk %d, vocab %d and hidden %d must be positive\n", chunk,
                 vocab, hidden);
    std::exit(LASP_EXIT_CODE_FAILURE);
  }
  CUBLAS_CHECK(cublasSetStream(handle, s));
  const bool grad = dx != nullptr;
  for (int t0 = 0; t0 < tokens; t0 += chunk) {
    const int rows = tokens - t0 < chunk ? tokens - t0 : chunk;
    const bf16* xc = x + (size_t)t0 * hidden;
    if (!head_logits_gemm(xc, weight, logits, rows, vocab, hidden, s))
      matmul(handle, false, true, rows, vocab, hidden, xc, weight, logits);
    classifier_rows(logits, targets + t0, losses + t0, rows, vocab, inv_count, grad, s);
    if (!grad) continue;
    matmul(handle, false, false, rows, hidden, vocab, logits, weight, dx + (size_t)t0 * hidden);
    matmul(handle, true, false, vocab, hidden, rows, logits, xc, dweight, (accumulate || t0 > 0) ? 1.0f : 0.0f);
  }
}

}  // namespace lasp
