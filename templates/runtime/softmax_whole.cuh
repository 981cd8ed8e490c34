// Softmax attention over a whole sequence held by one rank (Ulysses' head shards, a single GPU's layer): the
// backend choice between cuDNN's fused attention (cudnn_attention.cuh) and lasp's own kernels
// (softmax_attention.cuh).
//
// Design choices:
// - cuDNN is used where the program was built with it (CMake defines LASP_WITH_CUDNN when it finds cuDNN)
//   and where it supports the shape on this GPU; lasp's kernels everywhere else, so a program always runs.
//   Measured on H100 (bench/results/2026-11-26-cudnn-attention-h100.md), cuDNN's backward is about 1.4x as
//   fast as ours and its forward equal; blocks of a sequence spread over ranks (LASP-2H, ring) keep our
//   kernels, which take global positions and accumulate partial results.
// - LASP_SOFTMAX_BACKEND=lasp forces lasp's kernels (to verify or time them), =cudnn insists on cuDNN (the
//   program stops, exit 2, where it cannot be used), unset or =auto takes cuDNN where it can.
// - The two backends keep the log-sum-exp in different layouts ([batch][heads][rows] for cuDNN, [batch][rows]
//   [heads] for ours), so the forward and backward of one layer must take the same one: the choice depends
//   only on the shape and the environment, which both passes share.
// - cudnn_sdpa_supported() builds the plans of a shape the first time it is asked (up to a few seconds, once);
//   the program asks for every whole-sequence shape before its timed steps (softmax_whole_backend()).
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "check.cuh"
#include "cudnn_attention.cuh"
#include "softmax_attention.cuh"
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

// Whether this whole-sequence shape runs on cuDNN.
inline bool use_cudnn(const SoftmaxDims& d, bool causal) {
  const Choice choice = requested();
  if (choice == Choice::kLasp) return false;
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

// The backend a whole-sequence shape takes, for the program's report ("cudnn 9.14.0" or "lasp"); asking
// also builds cuDNN's plans for it, outside any timed region.
const char* softmax_whole_backend(const SoftmaxDims& d, bool causal) {
#ifdef LASP_WITH_CUDNN
  if (whole::use_cudnn(d, causal)) {
    static char name[32];
    const size_t v = cudnnGetVersion();
    std::snprintf(name, sizeof name, "cudnn %zu.%zu.%zu", v / 10000, (v / 100) % 100, v % 100);
    return name;
  }
#else
  (void)whole::use_cudnn(d, causal);
#endif
  return "lasp";
}

void softmax_whole_forward(const bf16* q, const bf16* k, const bf16* v, const SoftmaxDims& d, bool causal,
                           float* lse, bf16* o, cudaStream_t s) {
#ifdef LASP_WITH_CUDNN
  if (whole::use_cudnn(d, causal)) {
    cudnn_sdpa_forward(whole::shape_of(d, causal), q, k, v, o, lse, s);
    return;
  }
#endif
  const PieceMap identity{0, {0, 0}, {0, 0}, {0, 0}};
  softmax_block_forward(q, k, v, d, identity, identity, causal, nullptr, lse, o, s);
}

void softmax_whole_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* o, const float* lse,
                            const bf16* dout, const SoftmaxDims& d, bool causal, bf16* dq, bf16* dk, bf16* dv,
                            cudaStream_t s) {
#ifdef LASP_WITH_CUDNN
  if (whole::use_cudnn(d, causal)) {
    cudnn_sdpa_backward(whole::shape_of(d, causal), q, k, v, o, dout, lse, dq, dk, dv, s);
    return;
  }
#endif
  softmax_full_backward(q, k, v, o, lse, dout, d, causal, dq, dk, dv, s);
}

}  // namespace lasp
