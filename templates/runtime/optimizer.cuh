// Train mode's optimizer state and step: fp32 master weights and AdamW moments over the whole parameter
// allocation, the step's gradients (micro-batches summed), the global gradient norm and clipping, the
// learning rate of the step, and the update that also writes the bf16 weights the model computes with.
//
// Design choices:
// - Replicated: every rank holds the whole fp32 state and updates every weight. The weight gradients are
//   already summed over every rank (grad_sum.cuh) before the step, so every rank computes the same bits and no
//   weight moves. ZeRO-1 (each rank its 1/W slice, between the two halves of the gradient sum) is not built
//   yet; the `optimizer` event says which update runs.
// - The state is 12 bytes per parameter (master, m, v), plus 4 with `accumulate` > 1 (the step's gradient sum);
//   the memory model (src/cost/memory.ts) counts the same.
// - Master weights start as the bf16 weights widened (so a run and its PyTorch reload start from equal
//   weights); a resume reads them from the checkpoint's optimizer shards, exactly.
// - Micro-batches: each backward pass leaves the gradient of its mean loss; the step's gradient is the
//   gradient of the mean over every micro-batch's targets, sum_a count_a g_a / sum_a count_a, accumulated in
//   fp32 in micro-batch order (deterministic).
// - The norm is over every element of the summed gradients (exact over all ranks: each holds them all); the
//   clip factor and learning rate are host scalars (lr_schedule.cuh), the step number counts from 1.
#pragma once
#include <cuda_runtime.h>
#include <cmath>
#include <vector>
#include "kernels.h"        // adamw_step, adamw_upload_table, grad_norm_squared, scale_add, oracle_to_f32
#include "lr_schedule.cuh"  // LrSchedule, lr_at, clip_factor
#include "state.cuh"        // State

namespace lasp {

struct Optimizer {
  float* master = nullptr;  // fp32 weights, the allocation's layout
  float* m = nullptr;       // first moment
  float* v = nullptr;       // second moment
  float* sum = nullptr;     // accumulate > 1: the step's gradients; else nullptr (the gradients themselves)
  size_t elements = 0;
  AdamwTable table{};
  double* norm = nullptr;   // device: the sum of squares
  double* scratch = nullptr;
  size_t scratch_bytes = 0;
  LrSchedule schedule;
  std::vector<DecayRow> decay;  // kDecayRows, for the `optimizer` event
};

// The state for the model's parameters; master weights from the current bf16 weights, moments 0.
inline Optimizer make_optimizer(State& st, const DecayRow* rows, int row_count, int64_t steps) {
  Optimizer o;
  const size_t n = st.model.parameter_elements;
  cudaStream_t s = st.ctx.compute;
  o.elements = n;
  CUDA_CHECK(cudaMalloc(&o.master, n * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&o.m, n * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&o.v, n * sizeof(float)));
  if (program::kAccumulate > 1) CUDA_CHECK(cudaMalloc(&o.sum, n * sizeof(float)));
  CUDA_CHECK(cudaMemsetAsync(o.m, 0, n * sizeof(float), s));
  CUDA_CHECK(cudaMemsetAsync(o.v, 0, n * sizeof(float), s));
  oracle_to_f32(st.params.base, o.master, n, s);  // a plain widening copy
  o.decay.assign(rows, rows + row_count);
  o.table = adamw_upload_table(o.decay, n);
  o.scratch_bytes = grad_norm_scratch_bytes(n);
  CUDA_CHECK(cudaMalloc(&o.scratch, o.scratch_bytes));
  CUDA_CHECK(cudaMalloc(&o.norm, sizeof(double)));
  o.schedule.kind = program::kLrSchedule;
  o.schedule.lr = program::kLr;
  o.schedule.min_lr = program::kMinLr;
  o.schedule.steps = steps;
  o.schedule.warmup = program::kWarmupSteps < steps ? program::kWarmupSteps : steps;
  const std::string problem = lr_schedule::check(o.schedule);
  if (!problem.empty()) {
    std::fprintf(stderr, "lasp_program: %s\n", problem.c_str());
    std::exit(2);
  }
  return o;
}

// The gradients the step uses: the accumulated sum, or the last backward pass's.
inline float* step_gradients(State& st, Optimizer& o) { return o.sum != nullptr ? o.sum : st.grads.base; }

// After micro-batch `a`'s backward pass (its mean's gradient, over `count` targets): into the step's sum.
inline void accumulate_gradients(State& st, Optimizer& o, int a, double count) {
  if (o.sum == nullptr) return;
  scale_add(o.sum, st.grads.base, (float)count, a == 0 ? 0.0f : 1.0f, o.elements, st.ctx.compute);
}

// The step's gradients divided by every micro-batch's targets (accumulate > 1), then their global norm's square
// (waits for it).
inline double finish_gradients(State& st, Optimizer& o, double targets) {
  cudaStream_t s = st.ctx.compute;
  if (o.sum != nullptr) scale_add(o.sum, o.sum, targets > 0 ? (float)(1.0 / targets) : 0.0f, 0.0f, o.elements, s);
  grad_norm_squared(step_gradients(st, o), o.elements, o.norm, o.scratch, o.scratch_bytes, s);
  double norm2 = 0;
  CUDA_CHECK(cudaMemcpyAsync(&norm2, o.norm, sizeof(double), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  return norm2;
}

// What the step applied: its learning rate and clip factor.
struct StepScalars {
  double lr, clip;
};

// AdamW step `step` (from 1) with the global norm's square; writes the master weights and the bf16 weights.
inline StepScalars optimizer_step(State& st, Optimizer& o, int64_t step, double norm2) {
  StepScalars k{lr_at(o.schedule, step), clip_factor(norm2, program::kGradClip)};
  const AdamwShard shard{o.master, o.m, o.v, step_gradients(st, o), st.params.base, o.elements};
  adamw_step(shard, o.table, AdamwSettings{k.lr, program::kBeta1, program::kBeta2, program::kAdamEps,
                                           program::kWeightDecay, k.clip, step},
             st.ctx.compute);
  return k;
}

// The `optimizer` event and line: which update, how many parameters, what the state takes.
inline void report_optimizer(const State& st, const Optimizer& o) {
  size_t decayed = 0;
  for (const DecayRow& r : o.decay) decayed += r.decay ? r.elements : 0;
  const size_t bytes = o.elements * sizeof(float) * (o.sum != nullptr ? 4 : 3);
  emit("optimizer", "\"update\":\"replicated\",\"parameters\":%zu,\"state_bytes\":%zu,\"decayed\":%zu", o.elements,
       bytes, decayed);
  say("optimizer: AdamW, replicated on %d rank(s), %.2f GB of fp32 state per GPU; %zu of %zu parameters decay\n",
      st.layout.world, bytes / 1e9, decayed, o.elements);
}

}  // namespace lasp
