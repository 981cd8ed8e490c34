// Softmax attention over a whole sequence held by one rank (Ulysses' head shards, a single GPU's layer): the
// calls the program makes, dispatched to cuDNN's fused attention (cudnn_attention.cuh) or lasp's own kernels
// (softmax_attention.cuh) as softmax_backend.cuh decides. With packed documents (rows 0..n-1 are the global
// positions) it is always lasp's kernels with the document mask: cuDNN has none for documents inside a sequence.
#pragma once
#include <cstdio>

#include "attention_args.cuh"
#include "check.cuh"
#include "cudnn_attention.cuh"
#include "softmax_attention.cuh"
#include "softmax_backend.cuh"
#include "types.cuh"

namespace lasp {

// The backend a whole-sequence shape takes, for the program's report ("cudnn 9.14.0" or "lasp"); asking
// also builds cuDNN's plans for it, outside any timed region. documents: the layer runs with packed documents
// (then always "lasp", and no plans are built).
const char* softmax_whole_backend(const SoftmaxDims& d, bool causal, bool documents) {
#ifdef LASP_WITH_CUDNN
  if (whole::use_cudnn(d, causal, documents)) {
    static char name[32];
    const size_t v = cudnnGetVersion();
    std::snprintf(name, sizeof name, "cudnn %zu.%zu.%zu", v / 10000, (v / 100) % 100, v % 100);
    return name;
  }
#else
  (void)whole::use_cudnn(d, causal, documents);
#endif
  return "lasp";
}

// docs (optional): packed documents over rows 0..n-1 (docs.any(): lasp's kernels with the document mask).
void softmax_whole_forward(const bf16* q, const bf16* k, const bf16* v, const SoftmaxDims& d, bool causal,
                           float* lse, bf16* o, cudaStream_t s, const Documents& docs = Documents{}) {
#ifdef LASP_WITH_CUDNN
  if (whole::use_cudnn(d, causal, docs.any())) {
    cudnn_sdpa_forward(whole::shape_of(d, causal), q, k, v, o, lse, s);
    return;
  }
#endif
  const PieceMap identity{0, {0, 0}, {0, 0}, {0, 0}};
  softmax_block_forward(q, k, v, d, identity, identity, causal, nullptr, lse, o, s, docs);
}

void softmax_whole_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* o, const float* lse,
                            const bf16* dout, const SoftmaxDims& d, bool causal, bf16* dq, bf16* dk, bf16* dv,
                            cudaStream_t s, const Documents& docs = Documents{}) {
#ifdef LASP_WITH_CUDNN
  if (whole::use_cudnn(d, causal, docs.any())) {
    cudnn_sdpa_backward(whole::shape_of(d, causal), q, k, v, o, dout, lse, dq, dk, dv, s);
    return;
  }
#endif
  softmax_full_backward(q, k, v, o, lse, dout, d, causal, dq, dk, dv, s, docs);
}

// The program's calls (kernels.h): the same, operands as one named struct (attention_args.cuh).
void softmax_whole_forward(const SoftmaxFullArgs& a, const SoftmaxDims& d, cudaStream_t s) {
  softmax_whole_forward(a.q, a.k, a.v, d, a.causal, a.lse, a.o, s, a.docs);
}

void softmax_whole_backward(const SoftmaxFullBackwardArgs& a, const SoftmaxDims& d, cudaStream_t s) {
  softmax_whole_backward(a.q, a.k, a.v, a.o, a.lse, a.dout, d, a.causal, a.dq, a.dk, a.dv, s, a.docs);
}

}  // namespace lasp
