// Which backend runs a softmax-attention layer: cuDNN's fused attention (cudnn_attention.cuh) or lasp's own
// kernels (softmax_attention.cuh). The layers that ask: a whole sequence held by one rank (Ulysses' head shards, a
// single GPU's layer; softmax_whole.cuh) and LASP-2H's gathered attention, one rank's queries against the keys of
// the whole sequence (softmax_gathered.cuh). Host code only, apart from the kernels, so the choice can be tested
// without a GPU.
//
// Design choices:
// - cuDNN is used where the program was built with it (CMake defines LASP_WITH_CUDNN when it finds cuDNN)
//   and where it supports every call of the layer on this GPU; lasp's kernels everywhere else, so a program
//   always runs. Measured on H100, cuDNN's backward was about 1.4x as fast as ours (bench/results/
//   2026-11-26-cudnn-attention-h100.md); since 2026-12-06 ours runs forward and backward at 0.90-0.97x of
//   cuDNN's (2026-12-06-softmax-bwd-diet.md), so cuDNN stays the default where it runs. The ring's blocks keep
//   our kernels, which take global positions and accumulate partial results.
// - LASP_SOFTMAX_BACKEND=lasp forces lasp's kernels (to verify or time them), =cudnn insists on cuDNN (the
//   program stops, exit 2, where it cannot be used), unset or =auto takes cuDNN where it can.
// - Packed documents (docs/DOCUMENTS.md) always take lasp's kernels: cuDNN's fused attention here has no mask
//   that follows document boundaries inside one sequence (its ragged layout, a sequence per document, is for a
//   later session). LASP_SOFTMAX_BACKEND=cudnn with documents stops (exit 2), as for a shape cuDNN cannot run.
// - The two backends keep the log-sum-exp in different layouts ([batch][heads][rows] for cuDNN, [batch][rows]
//   [heads] for ours), so the forward and backward of one layer must take the same one: the choice depends
//   only on the shape, whether there are documents and the environment, which both passes share.
// - One rule for every layer (use_cudnn_for below); each layer says only which cuDNN calls it would make
//   and how to name its shape in the message.
// - cudnn_sdpa_supported() builds the plans of a shape the first time it is asked (up to a few seconds, once);
//   the program asks for every layer's shapes before its timed steps (softmax_whole_backend(),
//   softmax_gathered_backend()).
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "check.cuh"
#include "cudnn_attention.cuh"
#include "types.cuh"

namespace lasp {
// The rule every layer follows, and what it reads.
namespace backend {

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

// A layer's shape as its messages name it: "a 128 x 128 attention" and "2 heads, 1 kv heads, head dim 64".
struct LayerText {
  char shape[96];
  char detail[128];
};

// The rule: whether a layer runs on cuDNN. supported() says whether cuDNN can run every call the layer would
// make (it builds their plans; asked only where the program has cuDNN and the choice is open); describe(text)
// fills the layer's shape for the messages of LASP_SOFTMAX_BACKEND=cudnn when it cannot be honoured (exit 2).
template <class Supported, class Describe>
inline bool use_cudnn_for(bool documents, Supported&& supported, Describe&& describe) {
  const Choice choice = requested();
  if (choice == Choice::kLasp) return false;
  LayerText text{};
  if (documents) {
    if (choice == Choice::kCudnn) {
      describe(text);
      std::fprintf(stderr, "lasp_program: LASP_SOFTMAX_BACKEND=cudnn, but cuDNN's fused attention here cannot mask "
                           "packed documents (%s with documents); unset it or use lasp\n",
                   text.shape);
      std::exit(2);
    }
    return false;
  }
#ifdef LASP_WITH_CUDNN
  if (supported()) return true;
#else
  (void)supported;
#endif
  if (choice == Choice::kCudnn) {
#ifdef LASP_WITH_CUDNN
    describe(text);
    std::fprintf(stderr, "lasp_program: LASP_SOFTMAX_BACKEND=cudnn, but cuDNN cannot run %s (%s) on this GPU\n",
                 text.shape, text.detail);
#else
    std::fprintf(stderr, "lasp_program: LASP_SOFTMAX_BACKEND=cudnn, but this program was built without cuDNN "
                         "(CMake did not find it; set CUDNN_HOME)\n");
#endif
    std::exit(2);
  }
  return false;
}

#ifdef LASP_WITH_CUDNN
// One cuDNN call of a layer of dims d: q_rows of its queries against k_rows of its keys, the batch strides of
// the layer's own buffers (rows are dense: heads x head_dim, kv_heads x head_dim).
inline CudnnSdpaShape sdpa_shape(const SoftmaxDims& d, int q_rows, int k_rows, bool causal) {
  return CudnnSdpaShape{d.batch,
                        d.heads,
                        d.kv_heads,
                        q_rows,
                        k_rows,
                        d.head_dim,
                        causal,
                        1.0f / std::sqrt((float)d.head_dim),
                        (long long)d.q_rows * d.heads * d.head_dim,
                        (long long)d.k_rows * d.kv_heads * d.head_dim};
}

// "cudnn 9.14.0": the loaded library's version, for the program's report.
inline const char* cudnn_version_name() {
  static char name[32];
  const size_t v = cudnnGetVersion();
  std::snprintf(name, sizeof name, "cudnn %zu.%zu.%zu", v / 10000, (v / 100) % 100, v % 100);
  return name;
}
#endif

}  // namespace backend

namespace whole {

#ifdef LASP_WITH_CUDNN
inline CudnnSdpaShape shape_of(const SoftmaxDims& d, bool causal) {
  return backend::sdpa_shape(d, d.q_rows, d.k_rows, causal);
}
#endif

// Whether this whole-sequence shape (with packed documents or not) runs on cuDNN.
inline bool use_cudnn(const SoftmaxDims& d, bool causal, bool documents = false) {
  return backend::use_cudnn_for(
      documents,
      [&] {
#ifdef LASP_WITH_CUDNN
        return cudnn_sdpa_supported(shape_of(d, causal));
#else
        return false;
#endif
      },
      [&](backend::LayerText& t) {
        std::snprintf(t.shape, sizeof t.shape, "a %d x %d attention", d.q_rows, d.k_rows);
        std::snprintf(t.detail, sizeof t.detail, "%d heads, %d kv heads, head dim %d", d.heads, d.kv_heads,
                      d.head_dim);
      });
}

}  // namespace whole

}  // namespace lasp
