// The kernel side of lasp calibrate's microbenchmarks: everything here needs only the CUDA toolkit (and
// cuDNN where the build found it), so CI compiles it without NCCL or cuBLAS. main.cu times cuBLAS and NCCL
// with the same median_ms.
#pragma once
#include <cuda_runtime.h>  // cudaStream_t
#include <cstddef>         // size_t
#include <functional>      // the timed call

namespace calib {

// Median of `runs` calls of `issue` after `warmup` untimed ones, each between two CUDA events on `s`
// (bench/gpu/README.md: medians after warm-up, never means).
float median_ms(const std::function<void()>& issue, cudaStream_t s, int warmup, int runs);

// The time of one call of `issue` under sustained load: `runs` batches of back-to-back calls, each batch at
// least `batch_ms` long, after one untimed batch; the median batch over its calls. A training step keeps the
// GPU busy for hundreds of milliseconds, where its clocks settle under the power limit; single calls between
// synchronisations run cooler and faster than that (bench/results/2026-12-06-calibrate-h100.md).
float sustained_ms(const std::function<void()>& issue, cudaStream_t s, float batch_ms, int runs);

// Fills n bf16 values with a deterministic pattern in [-0.5, 0.5) (finite inputs for every benchmark).
void fill_bf16(void* p, size_t n, unsigned seed, cudaStream_t s);

// A streaming copy (b = a) or add (c = a + b) over float buffers of `bytes` each.
float time_stream(bool add, size_t bytes, cudaStream_t s, int warmup, int runs);

// lasp's per-rank LASP-2 linear attention on one piece of `tokens`, batch 1, no decay: forward is
// linear_state + linear_forward_fused, backward linear_grad_state + linear_backward_fused.
float time_linear(bool backward, int tokens, int heads, int head_dim, bool causal, cudaStream_t s, int warmup,
                  int runs);

// Softmax attention over a whole sequence of `tokens` on one GPU: lasp's kernels, or cuDNN's fused attention.
// Returns false with `why` set where it cannot run (no cuDNN in this build, a shape cuDNN does not take).
bool time_softmax(bool backward, bool cudnn, int tokens, int heads, int kv_heads, int head_dim, bool causal,
                  cudaStream_t s, int warmup, int runs, float* ms, const char** why);

// LASP-2H's gathered attention (softmax_gathered.cuh) against the whole sequence it splits, on one GPU: a
// sequence of ranks x rank_tokens tokens (batch 1), every rank's gathered forward and backward in turn (its
// pieces, zigzag or contiguous, against the keys up to its last causal query) beside one forward and backward
// over the whole sequence; both on cuDNN (cudnn) or both on lasp's kernels. The ranks' calls cover the whole
// sequence's query-key pairs, so the two times are of equal FLOPs. gathered_ms: the median over `runs` of the
// ranks' calls together; whole_ms: the median of the whole sequence's. False with `why` set where it cannot
// run (no cuDNN in this build, shapes cuDNN does not take).
struct GatheredTimes {
  float gathered_ms = 0, whole_ms = 0;
};
bool time_gathered(bool cudnn, int rank_tokens, int ranks, bool zigzag, int heads, int kv_heads, int head_dim,
                   bool causal, cudaStream_t s, int warmup, int runs, GatheredTimes* times, const char** why);

// The cuDNN this program was built with, "9.14.0", or nullptr.
const char* cudnn_version();

}  // namespace calib
