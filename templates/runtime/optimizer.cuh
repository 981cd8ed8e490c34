// Train mode's optimizer state and step: fp32 master weights and AdamW moments, the step's gradients
// (micro-batches summed), the global gradient norm and clipping, the learning rate of the step, and the update
// that also writes the bf16 weights the model computes with.
//
// Design choices:
// - The state is a list of slices of the parameter allocation, each with its place in the state arrays and
//   its decay table. Replicated (one GPU, or blocks that do not split evenly): one slice, the whole
//   allocation; every rank holds it all and computes the same bits from the gradients already summed over
//   every rank. ZeRO-1 (program::kOptimizerSharded, the compiler's choice): rank r's slices are the r-th 1/W
//   of each block of weight gradients (main.cu's kGradientBlocks), which the gradient sum's AlltoAll and sum
//   already leave summed on rank r (grad_sum.cuh, without its AllGather); each rank updates only those, and an
//   AllGather of each block's bf16 weights gives every rank all of them. The state is then 10/W bytes per
//   parameter instead of 10 (+4 or 4/W with `accumulate` above 1); the memory model counts the same.
// - The fp32 master weights are the bf16 weights (their high halves) and a plane of low halves
//   (master_weights.cuh): exact, 2 bytes per parameter instead of 4, and AdamW writes both. They start as the
//   bf16 weights widened (low halves 0: a run and its PyTorch reload start from equal weights), or as an F32
//   --load-weights file's values exactly (load_weights kept their low halves); a resume splits the
//   checkpoint's fp32 masters into the two, exactly.
// - Micro-batches: each backward pass leaves the gradient of its mean loss; the step's gradient is the
//   gradient of the mean over every micro-batch's targets, sum_a count_a g_a / sum_a count_a, accumulated in
//   fp32 in micro-batch order (deterministic).
// - The global norm: each slice's sum of squares in fp64 (grad_norm.cuh), added in slice order; with ZeRO-1
//   the ranks' sums are gathered and added in rank order, so every rank gets the same bits. The clip factor
//   and learning rate are host scalars (lr_schedule.cuh), the step number counts from 1.
#pragma once
#include <cuda_runtime.h>
#include "nccl_api.cuh"
#include <cmath>
#include <vector>
#include "adamw_table.cuh"  // adamw_shard_table
#include "optimizer_slices.cuh"  // optimizer_spans: which slices this rank updates
#include "kernels.h"        // adamw_step, adamw_upload_table, grad_norm_squared, scale_add
#include "lr_schedule.cuh"  // LrSchedule, lr_at, clip_factor
#include "state.cuh"        // State

namespace lasp {

// A part of the parameter allocation this rank updates: where it is in the weights and gradients, where its
// state is, how long it is, and the block it belongs to (gathered after the update under ZeRO-1).
struct OptimizerSlice {
  size_t param;
  size_t state;
  size_t elements;
  ParamBlock block;
  AdamwTable table;
};

// What main.cu gives the optimizer: kDecayRows and kGradientBlocks.
struct OptimizerTables {
  const DecayRow* decay;
  int decay_rows;
  const ParamBlock* blocks;
  int block_count;
};

struct Optimizer {
  bool sharded = false;
  std::vector<OptimizerSlice> slices;
  uint16_t* low = nullptr;  // the fp32 master weights' low halves, the slices back to back (the high halves
                            // are the bf16 weights: master_weights.cuh)
  float* m = nullptr;       // first moment
  float* v = nullptr;       // second moment
  float* sum = nullptr;     // accumulate > 1: the step's gradients of the slices; else nullptr
  size_t elements = 0;      // of the state arrays
  size_t decayed = 0;       // parameters of this rank's slices that decay
  double* norms = nullptr;  // device: each slice's sum of squares, then the ranks' sums
  double* scratch = nullptr;
  size_t scratch_bytes = 0;
  LrSchedule schedule;
};

// The gradient blocks' offsets and sizes as the arrays optimizer_slices.cuh takes.
inline void block_arrays(const OptimizerTables& t, std::vector<size_t>* offsets, std::vector<size_t>* elements) {
  for (int b = 0; b < t.block_count; b++) {
    offsets->push_back(t.blocks[b].offset);
    elements->push_back(t.blocks[b].elements);
  }
}

// The state for the model's parameters; master weights the current bf16 weights (low halves 0), moments 0.
inline Optimizer make_optimizer(State& st, const OptimizerTables& t, int64_t steps) {
  Optimizer o;
  cudaStream_t s = st.ctx.compute;
  const std::vector<DecayRow> decay(t.decay, t.decay + t.decay_rows);
  o.sharded = program::kOptimizerSharded && st.layout.world > 1;
  std::vector<size_t> offsets, elements;
  block_arrays(t, &offsets, &elements);
  if (o.sharded) {
    // The compiler chose ZeRO-1 for blocks that split; a table that does not is a bug, said before any step.
    const std::string problem = optimizer_shard_problem(offsets.data(), elements.data(), t.block_count, st.layout.world);
    if (!problem.empty()) {
      std::fprintf(stderr, "lasp_program: ZeRO-1: %s\n", problem.c_str());
      std::exit(LASP_EXIT_CODE_FAILURE);
    }
  }
  for (const OptimizerSpan& span : optimizer_spans(offsets.data(), elements.data(), t.block_count,
                                                   st.model.parameter_elements, o.sharded, st.layout.rank,
                                                   st.layout.world)) {
    o.slices.push_back({span.param, span.state, span.elements, ParamBlock{span.block_offset, span.block_elements},
                        AdamwTable{}});
    o.elements += span.elements;
  }
  size_t most = 0;
  for (OptimizerSlice& sl : o.slices) {
    const std::vector<DecayRow> rows = adamw_shard_table(decay, sl.param, sl.param + sl.elements);
    for (const DecayRow& d : rows) o.decayed += d.decay ? d.elements : 0;
    sl.table = adamw_upload_table(rows, sl.elements);
    most = sl.elements > most ? sl.elements : most;
  }
  CUDA_CHECK(cudaMalloc(&o.low, o.elements * sizeof(uint16_t)));
  CUDA_CHECK(cudaMalloc(&o.m, o.elements * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&o.v, o.elements * sizeof(float)));
  if (program::kAccumulate > 1) CUDA_CHECK(cudaMalloc(&o.sum, o.elements * sizeof(float)));
  CUDA_CHECK(cudaMemsetAsync(o.m, 0, o.elements * sizeof(float), s));
  CUDA_CHECK(cudaMemsetAsync(o.v, 0, o.elements * sizeof(float), s));
  CUDA_CHECK(cudaMemsetAsync(o.low, 0, o.elements * sizeof(uint16_t), s));
  // An F32 --load-weights file's low halves (load_weights kept them): the masters are its fp32 values exactly.
  if (!st.loaded_low.empty()) {
    for (const OptimizerSlice& sl : o.slices)
      CUDA_CHECK(cudaMemcpyAsync(o.low + sl.state, st.loaded_low.data() + sl.param, sl.elements * sizeof(uint16_t),
                                 cudaMemcpyHostToDevice, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
    std::vector<uint16_t>().swap(st.loaded_low);
  }
  o.scratch_bytes = grad_norm_scratch_bytes(most);
  CUDA_CHECK(cudaMalloc(&o.scratch, o.scratch_bytes));
  const size_t norms = o.slices.size() > (size_t)st.layout.world ? o.slices.size() : (size_t)st.layout.world;
  CUDA_CHECK(cudaMalloc(&o.norms, (norms + 1) * sizeof(double)));
  // Under ZeRO-1 the gradient sum leaves each rank its slices only (grad_sum.cuh).
  st.gather_gradients = !o.sharded;
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

// Slice k's gradients for the step: the accumulated sum, or the last backward pass's.
inline float* step_gradients(State& st, Optimizer& o, const OptimizerSlice& sl) {
  return o.sum != nullptr ? o.sum + sl.state : st.grads.base + sl.param;
}

// After micro-batch `a`'s backward pass (its mean's gradient, over `count` targets): into the step's sum.
inline void accumulate_gradients(State& st, Optimizer& o, int a, double count) {
  if (o.sum == nullptr) return;
  for (const OptimizerSlice& sl : o.slices)
    scale_add(o.sum + sl.state, st.grads.base + sl.param, (float)count, a == 0 ? 0.0f : 1.0f, sl.elements,
              st.ctx.compute);
}

// The step's gradients divided by every micro-batch's targets (accumulate > 1), then the square of their global
// norm over every rank (waits for it).
inline double finish_gradients(State& st, Optimizer& o, double targets) {
  cudaStream_t s = st.ctx.compute;
  const size_t n = o.slices.size();
  for (size_t k = 0; k < n; k++) {
    const OptimizerSlice& sl = o.slices[k];
    if (o.sum != nullptr)
      scale_add(o.sum + sl.state, o.sum + sl.state, targets > 0 ? (float)(1.0 / targets) : 0.0f, 0.0f, sl.elements, s);
    grad_norm_squared(step_gradients(st, o, sl), sl.elements, o.norms + k, o.scratch, o.scratch_bytes, s);
  }
  std::vector<double> parts(n);
  CUDA_CHECK(cudaMemcpyAsync(parts.data(), o.norms, n * sizeof(double), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  double norm2 = 0;
  for (double p : parts) norm2 += p;
  if (!o.sharded) return norm2;
  // Every rank's sum, added in rank order on every rank.
  const int w = st.layout.world;
  double* mine = o.norms + w;
  CUDA_CHECK(cudaMemcpyAsync(mine, &norm2, sizeof(double), cudaMemcpyHostToDevice, s));
  NCCL_CHECK(ncclAllGather(mine, o.norms, 1, ncclFloat64, st.comms.world, s));
  std::vector<double> ranks(w);
  CUDA_CHECK(cudaMemcpyAsync(ranks.data(), o.norms, w * sizeof(double), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  norm2 = 0;
  for (double r : ranks) norm2 += r;
  return norm2;
}

// ZeRO-1: every block's bf16 weights gathered from the ranks that updated its slices (in place: rank r's slice of
// each block is already where the gathered block puts it). Replicated: nothing to do.
inline void gather_weights(State& st, const Optimizer& o) {
  if (!o.sharded) return;
  NCCL_CHECK(ncclGroupStart());
  for (const OptimizerSlice& sl : o.slices)
    NCCL_CHECK(ncclAllGather(st.params.base + sl.param, st.params.base + sl.block.offset, sl.elements, ncclBfloat16,
                             st.comms.world, st.ctx.compute));
  NCCL_CHECK(ncclGroupEnd());
}

// What the step applied: its learning rate and clip factor.
struct StepScalars {
  double lr, clip;
};

// AdamW step `step` (from 1) with the global norm's square: the master weights and bf16 weights of this rank's
// slices, then (ZeRO-1) every block's bf16 weights gathered from the ranks.
inline StepScalars optimizer_step(State& st, Optimizer& o, int64_t step, double norm2) {
  StepScalars k{lr_at(o.schedule, step), clip_factor(norm2, program::kGradClip)};
  const AdamwSettings settings{k.lr, program::kBeta1, program::kBeta2, program::kAdamEps, program::kWeightDecay,
                               k.clip, step};
  for (const OptimizerSlice& sl : o.slices) {
    const AdamwShard shard{st.params.base + sl.param, o.low + sl.state, o.m + sl.state, o.v + sl.state,
                           step_gradients(st, o, sl), sl.elements};
    adamw_step(shard, sl.table, settings, st.ctx.compute);
  }
  gather_weights(st, o);
  return k;
}

// The `optimizer` event and line: which update, how many parameters, what the state takes.
inline void report_optimizer(const State& st, const Optimizer& o) {
  const size_t bytes = o.elements * (sizeof(uint16_t) + 2 * sizeof(float) + (o.sum != nullptr ? sizeof(float) : 0));
  emit("optimizer", "\"update\":\"%s\",\"parameters\":%zu,\"state_bytes\":%zu,\"decayed\":%zu",
       o.sharded ? "zero1" : "replicated", o.elements, bytes, o.decayed);
  say("optimizer: AdamW, %s, %.2f GB of state per GPU (fp32 moments, the fp32 masters' low halves); %zu of its %zu "
      "parameters decay\n",
      o.sharded ? "sharded over the ranks (ZeRO-1)" : "replicated on every rank", bytes / 1e9, o.decayed, o.elements);
}

}  // namespace lasp
