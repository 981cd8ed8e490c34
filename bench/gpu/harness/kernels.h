// The harnesses of bench/gpu compile the op headers into their own translation unit, where the generated
// program has lasp/kernels.h (the host API of its kernels.cu): lm_head.cuh's include of it lands here.
#pragma once
#include "classifier.cuh"
#include "mlp_gemm.cuh"  // head_logits_gemm
#include <cstddef>

namespace lasp {

// The harnesses choose their own chunks of the LM head (the program takes the compiler's, kClassifierChunk).
// Bytes of the logits buffer for chunks of `chunk` tokens.
inline size_t classifier_logits_bytes(int chunk, int vocab) { return (size_t)chunk * vocab * sizeof(bf16); }

// The largest chunk (a multiple of 128 tokens, at least 128) whose logits fit in `budget` bytes.
inline int classifier_chunk_tokens(size_t budget, int vocab, int tokens) {
  size_t chunk = budget / ((size_t)vocab * sizeof(bf16)) / 128 * 128;
  if (chunk < 128) chunk = 128;
  return (int)(chunk < (size_t)tokens ? chunk : tokens);
}

}  // namespace lasp
