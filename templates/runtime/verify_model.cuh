// verify mode's whole-model check: after the program's step (forward_step + backward_step: the loss in
// st.loss_sum, every weight gradient in st.grads, fp32, summed over every rank), the same step by a dense fp32
// oracle of the whole model over the whole sequence, and the loss and every weight gradient compared with it.
//
// The oracle, on every rank (inputs are functions of the global position, model.cuh, so any rank can rebuild
// the whole sequence of every data replica): an fp32 copy of the weights (the program's bf16 values), the
// tokens and targets of the whole sequence (synthetic_tokens, seed + replica), then in fp32: the embedding;
// per layer the block norm, the Q, K, V products, RoPE at each row's position (softmax kinds) or the feature
// map (linear kinds), the attention, the output RMSNorm over each head, the O product, the residual, the MLP
// norm, gate and up, SwiGLU, down, the residual; the final norm, the LM head, cross-entropy; and the
// backward of all of it, the weight gradients summed over the whole sequence (what the ranks' sum is).
//
// Design choices:
// - The attention goes through the existing dense oracles (linear_oracle.cuh, softmax_oracle.cuh), which take
//   bf16 q, k, v and the output's gradient and return fp32: the oracle's fp32 q, k, v and dO are rounded to
//   bf16 once for them (the issue's "the existing attention oracles plus plain fp32 reference kernels for the
//   other ops"). Real model values: verify_scale is not applied.
// - The products are cuBLAS fp32 GEMMs (fp32 operands, CUBLAS_COMPUTE_32F) on a handle of the oracle's own
//   in the default math mode: TF32 is used only under CUBLAS_TF32_TENSOR_OP_MATH or a FAST_TF32 compute
//   type, neither of which is asked for. Everything else is model_oracle.cuh's plain fp32 kernels.
// - Memory: each layer's input is kept ([layers + 1][tokens][hidden]); the backward recomputes the layer's
//   forward from it into one layer's buffers (the oracle is checked, not timed). The logits go through in
//   chunks of at most 2^26 floats. Everything is allocated here and freed before returning.
// - Data parallel: the program's loss is the mean over every replica's targets and its gradients the sum over
//   every rank, so the oracle runs the step of each replica (seed + replica) with 1 / (targets of all
//   replicas) as the loss's scale, and adds their losses and gradients.
// - Tolerances (the compiler's numbers, program.cuh): the program keeps activations, the residual stream and
//   its gradient in bf16 (unit roundoff 2^-9) through every layer, and a weight gradient sums products over
//   every token, so its error is that of the whole model's bf16 arithmetic, not of one op:
//   * the loss: |got - ref| / |ref| <= kModelLossTolerance (a mean over thousands of tokens);
//   * each weight-gradient tensor: the relative L2 error ||got - ref|| / ||ref|| <= kModelGradTolerance. The
//     max error over max |ref| is reported too, but does not decide: a few elements that are near-zero sums of
//     many bf16 products move it by several times the L2 error without anything being wrong. What bf16 alone
//     does is measured by bench/gpu/torch_reference.py (its "sens" columns: the same model with its weights
//     moved by one bf16 rounding) and recorded in bench/results/; a non-finite element fails.
// - Conditioning: some gradients are not determined by bf16 inputs to within the tolerance at all (RMSNorm over
//   a head whose output is near 0, e.g. a document's first token, o = (q.k) v: its gradient grows to 1/sqrt(eps)
//   times the usual and the last bit of q and k decides its sign), so neither the program nor any oracle fed
//   bf16 q, k can match another there. Only where a tensor fails, the oracle's step runs again with q, k, v moved
//   by about one bf16 rounding before it rounds them (oracle_perturb: a fixed hash of probe, layer and element,
//   so the backward's recomputed forward reads the same values) into a second gradient buffer, kConditioningProbes
//   times; spread = the largest ||g2 - g|| / ||g||, how far the oracle itself moves. A tensor above tolerance passes, reported as ill-conditioned with
//   both numbers, where spread > the tolerance and its error <= kConditioningFactor * spread: the program's
//   rounding is another draw of the same size, so its error is a small multiple of the spread. A well-
//   conditioned tensor (spread within the tolerance) is judged as before, so the rule cannot hide an error
//   there; a passing run costs nothing; a non-finite element still fails.
// - Events: one `verify` per gradient group (the embedding, each layer, the head: the gradient sum's blocks)
//   with its worst tensor (a failing one first), and one for the loss; `max_rel_err` is the worst tensor's
//   relative L2 error. After the probe every group's event adds `oracle_spread` (its worst tensor's spread) and
//   `ill_conditioned` (it passes only by the rule above).
#pragma once
#include <cuda_runtime.h>  // device memory, copies
#include <cublas_v2.h>     // the oracle's fp32 products
#include <algorithm>       // std::min, std::max
#include <cmath>           // std::sqrt, std::fabs, std::isfinite, INFINITY, NAN
#include <cstdint>         // uint64_t
#include <cstdio>          // std::snprintf
#include <string>          // group names
#include <vector>          // groups, allocations
#include "check.cuh"       // CUDA_CHECK, CUBLAS_CHECK
#include "kernels.h"       // the oracle's fp32 kernels, the attention oracles, synthetic_tokens, casts, loss sums
#include "report.cuh"      // emit, say
#include "state.cuh"       // State, LayerKind, LayerDesc, HeadDesc

namespace lasp {

namespace model_check {

// The conditioning rule's numbers are the compiler's (program.cuh): kModelConditioningProbes oracle steps
// with q, k, v moved differently, the spread their largest; a failing tensor passes within
// kModelConditioningFactor times it.
constexpr int kConditioningProbes = program::kModelConditioningProbes;
constexpr double kConditioningFactor = program::kModelConditioningFactor;

// C[M][N] = op(A) op(B) + beta C, fp32 row-major (blas.cuh's convention: the operands swap places for
// column-major cuBLAS), op(A) [M][K] (A stored [K][M] when ta), op(B) [K][N] (B stored [N][K] when tb).
inline void gemm(cublasHandle_t h, bool ta, bool tb, int M, int N, int K, const float* A, const float* B, float* C,
                 float beta) {
  const float alpha = 1.0f;
  const int lda = ta ? M : K;
  const int ldb = tb ? K : N;
  CUBLAS_CHECK(cublasGemmEx(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B,
                            CUDA_R_32F, ldb, A, CUDA_R_32F, lda, &beta, C, CUDA_R_32F, N, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT));
}

// Device allocations freed together.
struct Arena {
  std::vector<void*> blocks;
  template <typename T>
  T* get(size_t elements) {
    void* p = nullptr;
    CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(elements, 1) * sizeof(T)));
    blocks.push_back(p);
    return static_cast<T*>(p);
  }
  ~Arena() {
    for (void* p : blocks) CUDA_CHECK(cudaFree(p));
  }
};

// The oracle's tensors: the whole sequence of one replica, T = batch x sequence rows.
struct ModelOracle {
  State& st;
  cublasHandle_t blas;
  cudaStream_t s;
  int B, N, T, H, W, F, V, d, heads, L;
  float* weights = nullptr;  // fp32 copy of the weights, kParameters' layout
  float* grads = nullptr;    // the oracle's gradients, the same layout
  int *ids = nullptr, *targets = nullptr, *count = nullptr;
  DocumentBuffers documents;  // the replica's packed documents (as its ranks draw them), docs their device view
  Documents docs;
  double* loss = nullptr;
  float* xs = nullptr;  // [L + 1][T][H]: each layer's input; the last, the final norm's input
  // One layer's forward (kept for its backward), the head's normed input in n1.
  float *n1 = nullptr, *qp = nullptr, *q = nullptr, *kp = nullptr, *k = nullptr, *v = nullptr, *o = nullptr;
  float *a = nullptr, *y = nullptr, *mid = nullptr, *n2 = nullptr, *gate = nullptr, *up = nullptr, *h = nullptr;
  float *mean1 = nullptr, *rstd1 = nullptr, *mean2 = nullptr, *rstd2 = nullptr, *lse = nullptr;
  bf16 *qb = nullptr, *kb = nullptr, *vb = nullptr, *dob = nullptr;
  // Gradients: of the residual stream, of a norm's output, of h, gate, up, the attention's input and output.
  float *dx = nullptr, *dn = nullptr, *dh = nullptr, *dgate = nullptr, *dup = nullptr, *da = nullptr;
  float *dq = nullptr, *dk = nullptr, *dv = nullptr;
  float *logits = nullptr, *losses = nullptr;
  int chunk = 0;  // rows of logits at a time
  bool perturb = false;  // the conditioning probe: q, k, v moved by about one bf16 rounding (layer_forward)
  uint64_t probe = 0;    // which of the probes (each moves them differently)

  float* w(int row) const { return row < 0 ? nullptr : weights + st.model.parameters[row].offset; }
  float* g(int row) const { return row < 0 ? nullptr : grads + st.model.parameters[row].offset; }
  float* x(int l) const { return xs + (size_t)l * T * H; }
};

// Layer l forward from x(l) to x(l + 1), its intermediates in the layer buffers.
inline void layer_forward(ModelOracle& o, int l) {
  const LayerDesc& layer = o.st.model.layers[l];
  const LayerKind& kind = o.st.model.kinds[layer.kind];
  const LayerWeights& w = layer.w;
  const int T = o.T, H = o.H, W = o.W, KW = kind.kv_width, F = o.F;
  const float eps = program::kNormEps;
  oracle_norm_forward(program::kNorm, o.x(l), o.w(w.attn_norm), o.w(w.attn_norm_bias), o.n1, o.mean1, o.rstd1, T, H,
                      eps, o.s);
  gemm(o.blas, false, true, T, W, H, o.n1, o.w(w.wq), o.qp, 0.f);
  gemm(o.blas, false, true, T, KW, H, o.n1, o.w(w.wk), o.kp, 0.f);
  gemm(o.blas, false, true, T, KW, H, o.n1, o.w(w.wv), o.v, 0.f);
  if (kind.softmax) {
    oracle_rope(o.qp, o.B, o.N, o.heads, o.d, kind.rope_inv_freq, false, o.s);
    oracle_rope(o.kp, o.B, o.N, kind.kv_heads, o.d, kind.rope_inv_freq, false, o.s);
  }
  // qp, kp: the feature map's inputs (after RoPE, as the program applies them); q, k: what attention reads.
  oracle_feature_map_forward(o.qp, o.q, (size_t)T * W, kind.feature_map, o.s);
  oracle_feature_map_forward(o.kp, o.k, (size_t)T * KW, kind.feature_map, o.s);
  // The attention oracles read bf16: q, k, v rounded once here. The probe moves them first by a factor of
  // (layer, element) alone, so the backward's recomputed forward reads the same values; the backward treats the
  // move as it treats the rounding, as the identity.
  if (o.perturb) {
    const uint64_t key = (o.probe << 32) + (uint64_t)l * 3;
    oracle_perturb(o.q, (size_t)T * W, key, o.s);
    oracle_perturb(o.k, (size_t)T * KW, key + 1, o.s);
    oracle_perturb(o.v, (size_t)T * KW, key + 2, o.s);
  }
  cast_to_bf16(o.q, o.qb, (size_t)T * W, o.s);
  cast_to_bf16(o.k, o.kb, (size_t)T * KW, o.s);
  cast_to_bf16(o.v, o.vb, (size_t)T * KW, o.s);
  if (kind.expand_kv) {  // the kv heads to every query head, as layer.cuh does after the same rounding
    for (bf16* x : {o.kb, o.vb}) {
      expand_kv_heads(x, o.dob, (size_t)T, kind.kv_heads, o.heads, o.d, o.s);
      CUDA_CHECK(cudaMemcpyAsync(x, o.dob, (size_t)T * W * sizeof(bf16), cudaMemcpyDeviceToDevice, o.s));
    }
  }
  if (kind.softmax)
    oracle_softmax_forward(o.qb, o.kb, o.vb, o.o, o.lse, o.B, o.N, o.heads, kind.kv_heads, o.d, kind.causal, o.docs, o.s);
  else
    oracle_linear_forward(o.qb, o.kb, o.vb, o.o, LinearDims{o.B, o.N, o.heads, o.d}, o.st.ctx.tables.*kind.decay,
                          kind.causal, o.docs, o.s);
  const float* attn = o.o;
  if (kind.output_norm) {
    oracle_head_rms_forward(o.o, o.a, (size_t)T * o.heads, o.d, eps, o.s);
    attn = o.a;
  }
  gemm(o.blas, false, true, T, H, W, attn, o.w(w.wo), o.y, 0.f);
  oracle_add(o.x(l), o.y, o.mid, (size_t)T * H, o.s);
  oracle_norm_forward(program::kNorm, o.mid, o.w(w.mlp_norm), o.w(w.mlp_norm_bias), o.n2, o.mean2, o.rstd2, T, H, eps,
                      o.s);
  gemm(o.blas, false, true, T, F, H, o.n2, o.w(w.w_gate), o.gate, 0.f);
  gemm(o.blas, false, true, T, F, H, o.n2, o.w(w.w_up), o.up, 0.f);
  oracle_swiglu_forward(o.gate, o.up, o.h, (size_t)T * F, o.s);
  gemm(o.blas, false, true, T, H, F, o.h, o.w(w.w_down), o.y, 0.f);
  oracle_add(o.mid, o.y, o.x(l + 1), (size_t)T * H, o.s);
}

// Layer l backward: o.dx holds the gradient of x(l + 1) on entry and of x(l) on return; adds the layer's
// weight gradients. The layer buffers hold its forward (layer_forward(o, l) just before).
inline void layer_backward(ModelOracle& o, int l) {
  const LayerDesc& layer = o.st.model.layers[l];
  const LayerKind& kind = o.st.model.kinds[layer.kind];
  const LayerWeights& w = layer.w;
  const int T = o.T, H = o.H, W = o.W, KW = kind.kv_width, F = o.F;
  const float eps = program::kNormEps;
  // The MLP: y = h Wdown^T, h = silu(gate) * up, gate|up = n2 [Wgate; Wup]^T, n2 = Norm(mid).
  gemm(o.blas, true, false, H, F, T, o.dx, o.h, o.g(w.w_down), 1.f);
  gemm(o.blas, false, false, T, F, H, o.dx, o.w(w.w_down), o.dh, 0.f);
  oracle_swiglu_backward(o.gate, o.up, o.dh, o.dgate, o.dup, (size_t)T * F, o.s);
  gemm(o.blas, true, false, F, H, T, o.dgate, o.n2, o.g(w.w_gate), 1.f);
  gemm(o.blas, true, false, F, H, T, o.dup, o.n2, o.g(w.w_up), 1.f);
  gemm(o.blas, false, false, T, H, F, o.dgate, o.w(w.w_gate), o.dn, 0.f);
  gemm(o.blas, false, false, T, H, F, o.dup, o.w(w.w_up), o.dn, 1.f);
  oracle_norm_backward(program::kNorm, o.dn, o.mid, o.w(w.mlp_norm), o.mean2, o.rstd2, o.dx, T, H, o.s);  // dx: d mid
  oracle_norm_weight_grad(program::kNorm, o.dn, o.mid, o.mean2, o.rstd2, o.g(w.mlp_norm), o.g(w.mlp_norm_bias), T, H,
                          o.s);
  // The attention: y = attn Wo^T, attn = the head norm of o (or o).
  const float* attn = kind.output_norm ? o.a : o.o;
  gemm(o.blas, true, false, H, W, T, o.dx, attn, o.g(w.wo), 1.f);
  gemm(o.blas, false, false, T, W, H, o.dx, o.w(w.wo), o.da, 0.f);
  if (kind.output_norm) oracle_head_rms_backward(o.o, o.da, o.da, (size_t)T * o.heads, o.d, eps, o.s);
  cast_to_bf16(o.da, o.dob, (size_t)T * W, o.s);  // the attention oracles read a bf16 dO: rounded once here
  if (kind.softmax)
    oracle_softmax_backward(o.qb, o.kb, o.vb, o.dob, o.dq, o.dk, o.dv, o.B, o.N, o.heads, kind.kv_heads, o.d,
                            kind.causal, o.docs, o.s);
  else
    oracle_linear_backward(o.qb, o.kb, o.vb, o.dob, o.dq, o.dk, o.dv, LinearDims{o.B, o.N, o.heads, o.d},
                           o.st.ctx.tables.*kind.decay, kind.causal, o.docs, o.s);
  if (kind.expand_kv) {  // each group's gradients into its kv head (o.da is free again)
    for (float* x : {o.dk, o.dv}) {
      sum_kv_head_groups(x, o.da, (size_t)T, kind.kv_heads, o.heads, o.d, o.s);
      CUDA_CHECK(cudaMemcpyAsync(x, o.da, (size_t)T * KW * sizeof(float), cudaMemcpyDeviceToDevice, o.s));
    }
  }
  oracle_feature_map_backward(o.qp, o.dq, o.dq, (size_t)T * W, kind.feature_map, o.s);
  oracle_feature_map_backward(o.kp, o.dk, o.dk, (size_t)T * KW, kind.feature_map, o.s);
  if (kind.softmax) {  // the rotation is orthogonal: its backward is the inverse rotation
    oracle_rope(o.dq, o.B, o.N, o.heads, o.d, kind.rope_inv_freq, true, o.s);
    oracle_rope(o.dk, o.B, o.N, kind.kv_heads, o.d, kind.rope_inv_freq, true, o.s);
  }
  gemm(o.blas, true, false, W, H, T, o.dq, o.n1, o.g(w.wq), 1.f);
  gemm(o.blas, true, false, KW, H, T, o.dk, o.n1, o.g(w.wk), 1.f);
  gemm(o.blas, true, false, KW, H, T, o.dv, o.n1, o.g(w.wv), 1.f);
  gemm(o.blas, false, false, T, H, W, o.dq, o.w(w.wq), o.dn, 0.f);
  gemm(o.blas, false, false, T, H, KW, o.dk, o.w(w.wk), o.dn, 1.f);
  gemm(o.blas, false, false, T, H, KW, o.dv, o.w(w.wv), o.dn, 1.f);
  oracle_norm_backward(program::kNorm, o.dn, o.x(l), o.w(w.attn_norm), o.mean1, o.rstd1, o.dx, T, H, o.s);
  oracle_norm_weight_grad(program::kNorm, o.dn, o.x(l), o.mean1, o.rstd1, o.g(w.attn_norm), o.g(w.attn_norm_bias), T,
                          H, o.s);
}

// One replica's step: its tokens (seed + replica), the forward, the loss (added to *loss_total) and the
// backward, its weight gradients added to o.grads. inv_count: 1 / the targets of every replica.
inline void replica_step(ModelOracle& o, int replica, float inv_count, double* loss_total) {
  const HeadDesc& hd = o.st.model.head;
  const int T = o.T, H = o.H, V = o.V;
  synthetic_tokens(o.ids, o.targets, o.B, o.N, program::kWholeSequence, program::kSeqLen, V,
                   o.st.opt.seed + replica, program::kMaskedObjective, program::kMaskRate, o.s);
  if (program::kRealSeqLen < program::kSeqLen)
    drop_padding_targets(o.targets, o.B, o.N, program::kWholeSequence, program::kRealSeqLen, o.s);
  if (program::kStepDocuments)
    o.docs = draw_documents(o.documents, program::kDocumentLength, (int)program::kRealSeqLen, o.st.opt.seed,
                            (uint64_t)replica * o.B, o.s);
  oracle_embedding_forward(o.ids, o.w(hd.embedding), o.x(0), T, H, o.s);
  for (int l = 0; l < o.L; l++) layer_forward(o, l);
  // The final norm (its output in n1), the LM head and the loss by chunks of rows, and their backward.
  float* nf = o.n1;
  oracle_norm_forward(program::kNorm, o.x(o.L), o.w(hd.final_norm), o.w(hd.final_norm_bias), nf, o.mean1, o.rstd1, T,
                      H, program::kNormEps, o.s);
  for (int t0 = 0; t0 < T; t0 += o.chunk) {
    const int rows = std::min(o.chunk, T - t0);
    gemm(o.blas, false, true, rows, V, H, nf + (size_t)t0 * H, o.w(hd.lm_head), o.logits, 0.f);
    oracle_xent_rows(o.logits, o.targets + t0, o.losses + t0, rows, V, inv_count, o.s);
    gemm(o.blas, false, false, rows, H, V, o.logits, o.w(hd.lm_head), o.dn + (size_t)t0 * H, 0.f);
    gemm(o.blas, true, false, V, H, rows, o.logits, nf + (size_t)t0 * H, o.g(hd.lm_head), 1.f);
  }
  loss_sum(o.losses, T, o.loss, o.s);
  double sum = 0;
  CUDA_CHECK(cudaMemcpyAsync(&sum, o.loss, sizeof(double), cudaMemcpyDeviceToHost, o.s));
  CUDA_CHECK(cudaStreamSynchronize(o.s));
  *loss_total += sum;
  CUDA_CHECK(cudaMemsetAsync(o.dx, 0, (size_t)T * H * sizeof(float), o.s));
  oracle_norm_backward(program::kNorm, o.dn, o.x(o.L), o.w(hd.final_norm), o.mean1, o.rstd1, o.dx, T, H, o.s);
  oracle_norm_weight_grad(program::kNorm, o.dn, o.x(o.L), o.mean1, o.rstd1, o.g(hd.final_norm),
                          o.g(hd.final_norm_bias), T, H, o.s);
  for (int l = o.L - 1; l >= 0; l--) {
    layer_forward(o, l);  // again: one layer's buffers serve every layer
    layer_backward(o, l);
  }
  // The embedding: a scatter-add by token (with a tied head, onto its gradient).
  oracle_embedding_backward(o.ids, o.dx, o.g(hd.embedding), T, H, o.s);
}

// A JSON number, or null where it is not finite (JSON has no inf or NaN).
inline std::string json_number(double v, const char* format = "%.3e") {
  if (!std::isfinite(v)) return "null";
  char text[32];
  std::snprintf(text, sizeof(text), format, v);
  return text;
}

// One tensor's comparison: its criterion's value and whether it passes.
struct TensorCheck {
  double max_err;                // max |got - ref| / max |ref| (reported)
  double rel_l2;                 // ||got - ref|| / ||ref|| (decides)
  bool ok;                       // within tolerance, or ill-conditioned
  double spread = NAN;           // ||g2 - g|| / ||g||: the oracle's own movement under the probe (NaN: not run)
  bool ill_conditioned = false;  // above tolerance, passing by the conditioning rule
};

inline TensorCheck check_tensor(const float* got, const float* ref, size_t n, float tolerance, cudaStream_t s) {
  double r[5];
  oracle_compare(got, ref, n, r, s);
  TensorCheck c;
  c.max_err = r[1] > 0 ? r[0] / r[1] : (r[0] > 0 ? INFINITY : 0.0);
  c.rel_l2 = r[3] > 0 ? std::sqrt(r[2] / r[3]) : (r[2] > 0 ? INFINITY : 0.0);
  if (r[4] > 0) c.max_err = c.rel_l2 = INFINITY;  // a non-finite element fails
  c.ok = c.rel_l2 <= tolerance;
  return c;
}

// The conditioning rule (the design block): records the oracle's spread and accepts a failing tensor whose
// error it explains.
inline void judge_conditioning(TensorCheck& c, double spread, float tolerance) {
  c.spread = spread;
  if (c.ok || !std::isfinite(c.rel_l2) || !std::isfinite(spread)) return;
  if (spread > tolerance && c.rel_l2 <= kConditioningFactor * spread) c.ok = c.ill_conditioned = true;
}

// Whether a is a worse tensor than b: a failing one first, then the larger relative L2 error (NaN first).
inline bool worse(const TensorCheck& a, const TensorCheck& b) {
  if (a.ok != b.ok) return !a.ok;
  return !(a.rel_l2 <= b.rel_l2);
}

}  // namespace model_check

// The program's step (its loss `loss`, the mean over every target; its gradients in st.grads) against the
// oracle's; emits a `verify` event per gradient group and for the loss. Returns whether all pass.
inline bool verify_model(State& st, double loss) {
  const ModelTables& m = st.model;
  const float tolerance = program::kModelGradTolerance, loss_tolerance = program::kModelLossTolerance;
  cudaStream_t s = st.ctx.compute;
  model_check::Arena arena;
  const int B = program::kBatch, N = (int)program::kSeqLen, H = program::kHidden, W = (int)kQkvWidth;
  const int F = program::kFfn, V = program::kVocab;
  const int T = B * N;
  cublasHandle_t blas;
  CUBLAS_CHECK(cublasCreate(&blas));
  CUBLAS_CHECK(cublasSetStream(blas, s));
  CUBLAS_CHECK(cublasSetMathMode(blas, CUBLAS_DEFAULT_MATH));  // fp32 products in fp32: no TF32
  model_check::ModelOracle o{st, blas, s, B, N, T, H, W, F, V, program::kHeadDim, program::kHeads, m.layer_count};
  o.weights = arena.get<float>(m.parameter_elements);
  o.grads = arena.get<float>(m.parameter_elements);
  oracle_to_f32(st.params.base, o.weights, m.parameter_elements, s);
  CUDA_CHECK(cudaMemsetAsync(o.grads, 0, m.parameter_elements * sizeof(float), s));
  o.ids = arena.get<int>(T);
  o.targets = arena.get<int>(T);
  o.count = arena.get<int>(1);
  o.loss = arena.get<double>(1);
  o.xs = arena.get<float>((size_t)(o.L + 1) * T * H);
  const size_t th = (size_t)T * H, tw = (size_t)T * W, tf = (size_t)T * F;  // K and V rows are at most W wide
  for (float** p : {&o.n1, &o.y, &o.mid, &o.n2, &o.dx, &o.dn}) *p = arena.get<float>(th);
  for (float** p : {&o.qp, &o.q, &o.kp, &o.k, &o.v, &o.o, &o.a, &o.da, &o.dq, &o.dk, &o.dv}) *p = arena.get<float>(tw);
  for (float** p : {&o.gate, &o.up, &o.h, &o.dh, &o.dgate, &o.dup}) *p = arena.get<float>(tf);
  for (float** p : {&o.mean1, &o.rstd1, &o.mean2, &o.rstd2, &o.losses}) *p = arena.get<float>(T);
  o.lse = arena.get<float>((size_t)T * o.heads);
  for (bf16** p : {&o.qb, &o.kb, &o.vb, &o.dob}) *p = arena.get<bf16>(tw);
  o.chunk = (int)std::max<size_t>(1, std::min<size_t>(T, ((size_t)1 << 26) / V));
  o.logits = arena.get<float>((size_t)o.chunk * V);

  // The targets of every replica first: the loss is their mean, so 1 / their count scales every gradient.
  const int replicas = program::kDataParallel;
  double targets = 0;
  for (int r = 0; r < replicas; r++) {
    synthetic_tokens(o.ids, o.targets, B, N, program::kWholeSequence, program::kSeqLen, V, st.opt.seed + r,
                     program::kMaskedObjective, program::kMaskRate, s);
    if (program::kRealSeqLen < program::kSeqLen)
      drop_padding_targets(o.targets, B, N, program::kWholeSequence, program::kRealSeqLen, s);
    count_targets(o.targets, T, o.count, s);
    int count = 0;
    CUDA_CHECK(cudaMemcpyAsync(&count, o.count, sizeof(int), cudaMemcpyDeviceToHost, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
    targets += count;
  }
  const float inv_count = targets > 0 ? (float)(1.0 / targets) : 0.0f;
  double loss_total = 0;
  if (program::kStepDocuments) alloc_documents(o.documents, B, N);
  for (int r = 0; r < replicas; r++) model_check::replica_step(o, r, inv_count, &loss_total);

  // The loss.
  const double ref_loss = targets > 0 ? loss_total / targets : 0.0;
  const double loss_err = ref_loss != 0.0 ? std::fabs(loss - ref_loss) / std::fabs(ref_loss) : std::fabs(loss);
  bool ok = loss_err <= loss_tolerance;
  emit("verify",
       "\"layer\":\"model\",\"quantity\":\"loss_vs_oracle\",\"value\":%s,\"reference\":%s,\"max_rel_err\":%s,"
       "\"tolerance\":%.1e,\"ok\":%s",
       model_check::json_number(loss, "%.9g").c_str(), model_check::json_number(ref_loss, "%.9g").c_str(),
       model_check::json_number(loss_err).c_str(), loss_tolerance, ok ? "true" : "false");
  say("verify the whole model against the fp32 oracle (%d replica(s) x %d tokens): loss %.6f vs %.6f (rel %.2e)\n",
      replicas, T, loss, ref_loss, loss_err);

  // Every weight-gradient tensor; where one fails with finite values, the conditioning probe: the oracle's step
  // again with q, k, v moved, its gradients in a second buffer, and each tensor's spread.
  std::vector<model_check::TensorCheck> checks;
  int probe_worthy = 0;
  for (int row = 0; row < m.parameter_count; row++) {
    checks.push_back(model_check::check_tensor(st.grads[row], o.g(row), m.parameters[row].elements, tolerance, s));
    if (!checks.back().ok && std::isfinite(checks.back().rel_l2)) probe_worthy++;
  }
  const bool probed = probe_worthy > 0;
  if (probed) {
    say("verify: %d weight gradient(s) above tolerance; the oracle's step %d times again with q, k, v moved by one "
        "bf16 rounding, to measure how well bf16 inputs determine them\n",
        probe_worthy, model_check::kConditioningProbes);
    float* const first = o.grads;
    o.grads = arena.get<float>(m.parameter_elements);
    CUDA_CHECK(cudaMemsetAsync(o.grads, 0, m.parameter_elements * sizeof(float), s));
    o.perturb = true;
    std::vector<double> spread(m.parameter_count, 0.0);
    for (int probe = 0; probe < model_check::kConditioningProbes; probe++) {
      o.probe = (uint64_t)probe;
      if (probe > 0) CUDA_CHECK(cudaMemsetAsync(o.grads, 0, m.parameter_elements * sizeof(float), s));
      double probe_loss = 0;
      for (int r = 0; r < replicas; r++) model_check::replica_step(o, r, inv_count, &probe_loss);
      for (int row = 0; row < m.parameter_count; row++) {
        const size_t n = m.parameters[row].elements;
        const double moved =
            model_check::check_tensor(o.g(row), first + m.parameters[row].offset, n, tolerance, s).rel_l2;
        spread[row] = std::isfinite(moved) && std::isfinite(spread[row]) ? std::max(spread[row], moved) : NAN;
      }
    }
    for (int row = 0; row < m.parameter_count; row++)
      model_check::judge_conditioning(checks[row], spread[row], tolerance);
    o.perturb = false;
    o.grads = first;
  }
  free_documents(o.documents);
  CUBLAS_CHECK(cublasDestroy(blas));

  // The gradients, by the gradient sum's blocks: the embedding, each layer, the head; any row none of them
  // covers is a group of its own.
  struct Group {
    std::string name;
    int first, last;
  };
  std::vector<Group> groups;
  const HeadDesc& hd = m.head;
  groups.push_back({"model.embed_tokens", hd.embedding, hd.embedding});
  for (int l = 0; l < m.layer_count; l++)
    groups.push_back({"model.layers." + std::to_string(l), m.layers[l].w.attn_norm, m.layers[l].w.w_down});
  groups.push_back({"head", hd.final_norm, hd.block_last});
  std::vector<bool> covered(m.parameter_count, false);
  for (const Group& g : groups)
    for (int row = g.first; row <= g.last; row++) covered[row] = true;
  for (int row = 0; row < m.parameter_count; row++)
    if (!covered[row]) groups.push_back({m.parameters[row].name, row, row});
  for (const Group& g : groups) {
    int worst_row = g.first;
    bool group_ok = true;
    for (int row = g.first; row <= g.last; row++) {
      group_ok = group_ok && checks[row].ok;
      if (model_check::worse(checks[row], checks[worst_row])) worst_row = row;
    }
    ok = ok && group_ok;
    const model_check::TensorCheck& worst = checks[worst_row];  // fails where the group does
    const char* name = m.parameters[worst_row].name;
    const std::string rel_l2 = model_check::json_number(worst.rel_l2);
    const std::string max_err = model_check::json_number(worst.max_err);
    if (probed)
      emit("verify",
           "\"layer\":\"%s\",\"quantity\":\"dW\",\"worst\":\"%s\",\"max_rel_err\":%s,\"criterion\":\"rel_l2\","
           "\"max_err_over_max_ref\":%s,\"rel_l2\":%s,\"tolerance\":%.1e,\"ok\":%s,\"oracle_spread\":%s,"
           "\"ill_conditioned\":%s",
           g.name.c_str(), name, rel_l2.c_str(), max_err.c_str(), rel_l2.c_str(), tolerance,
           group_ok ? "true" : "false", model_check::json_number(worst.spread).c_str(),
           worst.ill_conditioned ? "true" : "false");
    else
      emit("verify",
           "\"layer\":\"%s\",\"quantity\":\"dW\",\"worst\":\"%s\",\"max_rel_err\":%s,\"criterion\":\"rel_l2\","
           "\"max_err_over_max_ref\":%s,\"rel_l2\":%s,\"tolerance\":%.1e,\"ok\":%s",
           g.name.c_str(), name, rel_l2.c_str(), max_err.c_str(), rel_l2.c_str(), tolerance,
           group_ok ? "true" : "false");
    if (worst.ill_conditioned)
      say("verify %s weight gradients: worst %s, relative L2 error %.2e (max error / max |ref| %.2e); the oracle "
          "itself moves up to %.1e when q, k, v move by one bf16 rounding (%d draws): ill-conditioned, accepted "
          "(within %.0fx)\n",
          g.name.c_str(), name, worst.rel_l2, worst.max_err, worst.spread, model_check::kConditioningProbes,
          model_check::kConditioningFactor);
    else if (!worst.ok && std::isfinite(worst.spread))
      say("verify %s weight gradients: worst %s, relative L2 error %.2e (max error / max |ref| %.2e); the oracle "
          "itself moves up to %.1e when q, k, v move by one bf16 rounding (%d draws), not enough to explain it  "
          "FAILED\n",
          g.name.c_str(), name, worst.rel_l2, worst.max_err, worst.spread, model_check::kConditioningProbes);
    else
      say("verify %s weight gradients: worst %s, relative L2 error %.2e (max error / max |ref| %.2e)%s\n",
          g.name.c_str(), name, worst.rel_l2, worst.max_err, group_ok ? "" : "  FAILED");
  }
  CUDA_CHECK(cudaStreamSynchronize(s));
  return ok;
}

}  // namespace lasp
