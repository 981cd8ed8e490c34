// Which backend runs softmax attention over a whole sequence held by one rank (Ulysses' head shards, a single
// GPU's layer): cuDNN's fused attention (cudnn_attention.cuh) or lasp's own kernels (softmax_attention.cuh).
// Host code only, apart from the kernels, so the choice can be tested without a GPU.
//
// Design choices:
// - cuDNN is used where the program was built with it (CMake defines LASP_WITH_CUDNN when it finds cuDNN)
//   and where it supports the shape on this GPU; lasp's kernels everywhere else, so a program always runs.
//   Measured on H100 (bench/results/2026-11-26-cudnn-attention-h100.md), cuDNN's backward is about 1.4x as
//   fast as ours and its forward equal; blocks of a sequence spread over ranks (LASP-2H, ring) keep our
//   kernels, which take global positions and accumulate partial results.
// - LASP_SOFTMAX_BACKEND=lasp forces lasp's kernels (to verify or time them), =cudnn insists on cuDNN (the
//   program stops, exit 2, where it cannot be used), unset or =auto takes cuDNN where it can.
// - Packed documents (docs/DOCUMENTS.md) always take lasp's kernels: cuDNN's fused attention here has no mask
//   that follows document boundaries inside one sequence (its ragged layout, a sequence per document, is for a
//   later session). LASP_SOFTMAX_BACKEND=cudnn with documents stops (exit 2), as for a shape cuDNN cannot run.
// - The two backends keep the log-sum-exp in different layouts ([batch][heads][rows] for cuDNN, [batch][rows]
//   [heads] for ours), so the forward and backward of one layer must take the same one: the choice depends
//   only on the shape, whether there are documents and the environment, which both passes share.
// - cudnn_sdpa_supported() builds the plans of a shape the first time it is asked (up to a few seconds, once);
//   the program asks for every whole-sequence shape before its timed steps (softmax_whole_backend()).
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "check.cuh"
#include "cudnn_attention.cuh"
#include "types.cuh"

namespace lasp {
namespace whole {

enum class Choice { kAuto, kLasp, kCudnn };

inline Choice requested() {
  static const Choice choice = [] {
    const char* v = std::getenv("LASP_SOFTMAX_BACKEND");
    if (v == nullptr || *v == '\0' || std::strcmp(v, "auto") == 0) return Choice::kAuto;
    if (std::strcmp(v, "lasp") == 0) return Choice::kLasp;
    if (std::strcmp(v, "cudnn") == 0) return Choice::kCudnn;
    std::fprintf(stderr, "lasp_program: LASP_SOFTMAX_BACKEND=%s is not a backend (auto, lasp or cudnn)\n", v);
    std::exit(2);
  }();
  return choice;
}

#ifdef LASP_WITH_CUDNN
inline CudnnSdpaShape shape_of(const SoftmaxDims& d, bool causal) {
  return CudnnSdpaShape{d.batch,
                        d.heads,
                        d.kv_heads,
                        d.q_rows,
                        d.k_rows,
                        d.head_dim,
                        causal,
                        1.0f / std::sqrt((float)d.head_dim),
                        (long long)d.q_rows * d.heads * d.head_dim,
                        (long long)d.k_rows * d.kv_heads * d.head_dim};
}
#endif

// Whether this whole-sequence shape (with packed documents or not) runs on cuDNN.
inline bool use_cudnn(const SoftmaxDims& d, bool causal, bool documents = false) {
  const Choice choice = requested();
  if (choice == Choice::kLasp) return false;
  if (documents) {
    if (choice == Choice::kCudnn) {
      std::fprintf(stderr, "lasp_program: LASP_SOFTMAX_BACKEND=cudnn, but cuDNN's fused attention here cannot mask "
                           "packed documents (a %d x %d attention with documents); unset it or use lasp\n",
                   d.q_rows, d.k_rows);
      std::exit(2);
    }
    return false;
  }
#ifdef LASP_WITH_CUDNN
  if (cudnn_sdpa_supported(shape_of(d, causal))) return true;
#endif
  if (choice == Choice::kCudnn) {
#ifdef LASP_WITH_CUDNN
    std::fprintf(stderr, "lasp_program: LASP_SOFTMAX_BACKEND=cudnn, but cuDNN cannot run a %d x %d attention "
                         "(%d heads, %d kv heads, head dim %d) on this GPU\n",
                 d.q_rows, d.k_rows, d.heads, d.kv_heads, d.head_dim);
#else
    std::fprintf(stderr, "lasp_program: LASP_SOFTMAX_BACKEND=cudnn, but this program was built without cuDNN "
                         "(CMake did not find it; set CUDNN_HOME)\n");
#endif
    std::exit(2);
  }
  return false;
}

}  // namespace whole

}  // namespace lasp
