// One rank's state and how it starts: the tables main.cu fills in (layer kinds, layers, tensors), the
// device, communicators, streams and events, the model's weights, gradients and activations.
//
// Design choices:
// - main.cu holds what the spec decides, as tables (LayerKind, LayerDesc, TensorSpec rows); this header holds
//   what every program does with them, as llm.c's train_gpt2.cu does with its config and tensor tables.
// - Two streams run each layer's schedule (program.cuh): compute and communication, ordered by events, the
//   communication stream at the highest priority (the chunk kernels fill every SM, and NCCL's kernel must
//   take SMs as soon as any frees up, or the collective waits for the computation it should overlap). The
//   weight-gradient sum has a third stream, so the schedule's collectives never queue behind it.
// - Weights, gradients and activations are one allocation each (tensors.cuh); the gradients come from a
//   communication window, so NCCL may sum them with the copy engines (grad_sum.cuh). Each layer kind's own
//   buffers are allocated by program.cuh, one set per layer, scratch shared within the kind.
// - Every number is a function of the seed and the global token position (model.cuh): any GPU count
//   computes the same values.
#pragma once
#include <cuda_runtime.h>  // streams, events, device memory
#include <cublas_v2.h>     // the projections' handle
#include <nccl.h>          // communicators
#include <algorithm>       // std::max
#include <cstdio>          // the start-up error
#include "program.cuh"     // this spec's constants, Ctx and each layer kind's schedule (generated)
#include "run.cuh"         // Run: how a pass is issued
#include "comm.cuh"        // Layout, Comms, Windows
#include "kernels.h"       // fill_normal, softmax_whole_backend
#include "options.cuh"     // Options
#include "report.cuh"      // emit, say
#include "tensors.cuh"     // TensorSpec, TensorSet

namespace lasp {

// Which of program::Tables holds a kind's per-head decays.
using DecayTable = float* program::Tables::*;

// A layer kind, as main.cu's kKinds describes it.
struct LayerKind {
  const char* name;
  const char* strategy;
  int feature_map;     // lasp::FeatureMap value
  bool output_norm;    // RMSNorm over the head dimension of the attention output
  bool causal;
  bool softmax;        // softmax attention: RoPE on q and k, the softmax oracle
  int kv_heads;        // heads of K and V (grouped-query attention); the query heads for linear attention
  float rope_theta;    // RoPE base (softmax attention)
  bool hosted;         // the schedule runs the Q projection and dWo itself (host steps, beside its collective)
  int kv_width;        // width of a K or V row: kv heads x head dim
  float verify_scale;  // scale of verify's random q and k (1 for softmax, whose scores are scaled inside)
  int layers;          // layers of the stack of this kind
  int first_layer;     // the first of them: its buffers serve verify and the per-kind timings
  bool whole;          // softmax attention over the whole sequence on one rank (its backend is reported)
  SoftmaxDims whole_dims;
  DecayTable decay;    // per-head decays (linear kinds); nullptr for softmax kinds
};

// A layer of the stack, as main.cu's kLayers describes it.
struct LayerDesc {
  int kind;                           // row of kKinds
  int slot;                           // its buffer set among its kind's (slot 0 owns the shared scratch)
  int wq, wk, wv, wo;                 // rows of kParameters, one contiguous block (the gradient sum's unit)
  int x, out, pre_q, pre_k, normed;   // rows of kActivations; -1: the layer has none
};

// The backward pass's scratch: rows of kActivations.
struct ScratchRows {
  int dx, dx_prev, dnormed, y;
};

// The tables of main.cu.
struct ModelTables {
  const LayerKind* kinds;
  int kind_count;
  const LayerDesc* layers;
  int layer_count;
  const TensorSpec* parameters;
  size_t parameter_elements;
  const TensorSpec* activations;
  size_t activation_elements;
  ScratchRows scratch;
};

// A layer kind's schedule as the program runs it: its buffer sets (one per layer of the kind) and passes.
template <typename Buffers>
struct KindPasses {
  Buffers* sets;
  void (*forward)(const program::Ctx&, Buffers&, Run);
  void (*backward)(const program::Ctx&, Buffers&, Run);
  int forward_events;  // steps of the longest rank program of each pass (timeline events)
  int backward_events;
};

constexpr size_t kRows = (size_t)program::kBatch * program::kLocalTokens;  // rows of every activation
constexpr size_t kQkvWidth = (size_t)program::kHeads * program::kHeadDim;

struct State {
  Options opt;
  ModelTables model;
  Layout layout;
  Comms comms;
  Windows windows;          // buffers of the collectives that may run on the copy engines (comm.cuh)
  program::Ctx ctx;
  cublasHandle_t blas;
  cudaDeviceProp device;
  int sms = 0;              // the GPU's SMs (a GEMM beside a collective is planned for fewer)
  cudaStream_t grad;        // the weight-gradient sum, apart so the schedule's collectives never queue behind it
  cudaEvent_t fence, join;  // layer boundaries between the two streams
  cudaEvent_t grads_ready, grads_done;
  TensorSet<bf16> params;   // weights, kParameters
  TensorSet<bf16> grads;    // their gradients, the same layout (a window of Comms::world_copy)
  TensorSet<bf16> acts;     // activations and backward scratch, kActivations
  bf16* grad_parts = nullptr;           // the gradient sum's AlltoAll lands here (grad_sum.cuh), copy engines only
  bf16 *dx, *dx_prev, *dnormed, *y;     // backward scratch (dx and dx_prev swap at every layer)
  size_t baseline_mem_bytes = 0;        // device memory in use before allocation: CUDA context, NCCL, cuBLAS
};

// A layer's weights (or gradients): one block, Wq first.
inline bf16* layer_block(const TensorSet<bf16>& set, const LayerDesc& layer) { return set[layer.wq]; }
inline size_t layer_block_elements(const TensorSet<bf16>& set, const LayerDesc& layer) {
  return (size_t)(set[layer.wo] - set[layer.wq]) + set.elements(layer.wo);
}

// The communication stream may start a layer only after the compute stream reached it (its inputs exist
// and the previous layer's scratch buffers are free), and the compute stream continues only after the
// layer's last collective.
inline void fence_streams(State& st) {
  CUDA_CHECK(cudaEventRecord(st.fence, st.ctx.compute));
  CUDA_CHECK(cudaStreamWaitEvent(st.ctx.comm, st.fence, 0));
}
inline void join_streams(State& st) {
  CUDA_CHECK(cudaEventRecord(st.join, st.ctx.comm));
  CUDA_CHECK(cudaStreamWaitEvent(st.ctx.compute, st.join, 0));
}

// Device, communicators, streams, events and cuBLAS of this rank; emits `start`. Returns false (after
// saying why) when the launch does not match the compiled GPU count.
inline bool start_rank(State& st) {
  st.layout = layout_from(st.opt.rank, st.opt.world < 0 ? program::kGpus : st.opt.world, st.opt.device, program::kWorld);
  g_reporter.rank = st.layout.rank;
  g_reporter.quiet = st.opt.json_only;
  if (st.layout.world != program::kGpus) {
    std::fprintf(stderr, "lasp_program: compiled for %d GPUs (sequence %d x data %d) but started with %d ranks\n",
                 program::kGpus, program::kWorld, program::kDataParallel, st.layout.world);
    return false;
  }
  CUDA_CHECK(cudaSetDevice(st.layout.device));
  CUDA_CHECK(cudaGetDeviceProperties(&st.device, st.layout.device));
  st.sms = st.device.multiProcessorCount;
  st.comms = init_comms(st.layout, st.opt.id_file, program::kFewCtas);
  st.windows = Windows(&st.comms);
  int least_priority = 0, greatest_priority = 0;
  CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least_priority, &greatest_priority));
  CUDA_CHECK(cudaStreamCreateWithPriority(&st.ctx.compute, cudaStreamNonBlocking, least_priority));
  CUDA_CHECK(cudaStreamCreateWithPriority(&st.ctx.comm, cudaStreamNonBlocking, greatest_priority));
  CUDA_CHECK(cudaEventCreateWithFlags(&st.fence, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventCreateWithFlags(&st.join, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventCreateWithFlags(&st.grads_ready, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventCreateWithFlags(&st.grads_done, cudaEventDisableTiming));
  CUDA_CHECK(cudaStreamCreateWithFlags(&st.grad, cudaStreamNonBlocking));
  static cudaEvent_t events[program::kMaxEvents], started[program::kMaxEvents];
  for (auto& e : events) CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  for (auto& e : started) CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  st.ctx.rank = st.layout.sp_rank;
  st.ctx.nccl = st.comms.sp;
  st.ctx.nccl_few_ctas = st.comms.sp_few_ctas;
  st.ctx.dims = LinearDims{program::kBatch, program::kLocalTokens, program::kHeads, program::kHeadDim};
  st.ctx.events = events;
  st.ctx.started = started;
  st.ctx.tables = program::upload_tables();
  CUBLAS_CHECK(cublasCreate(&st.blas));
  CUBLAS_CHECK(cublasSetStream(st.blas, st.ctx.compute));
  emit("start", "\"world\":%d,\"device\":\"%s\",\"spec\":\"%s\",\"mode\":\"%s\",\"steps\":%d,\"warmup\":%d",
       st.layout.world, st.device.name, program::kSpecFile, st.opt.mode.c_str(), st.opt.steps, st.opt.warmup);
  say("lasp_program for %s: %d ranks (sequence %d x data %d) on %s, %s mode\n", program::kModelName, st.layout.world,
      program::kWorld, program::kDataParallel, st.device.name, st.opt.mode.c_str());
  size_t free_bytes = 0, total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  st.baseline_mem_bytes = total_bytes - free_bytes;
  return true;
}

// The model's weights, gradients and activations, one allocation per table, and their initial values.
// The layer kinds' buffers are allocated before (main.cu), in the same order on every rank.
inline void allocate_model(State& st) {
  const ModelTables& m = st.model;
  void* weights = nullptr;
  CUDA_CHECK(cudaMalloc(&weights, m.parameter_elements * sizeof(bf16)));
  st.params = point_tensors<bf16>(weights, m.parameters);
  st.grads = point_tensors<bf16>(st.windows.grads(m.parameter_elements * sizeof(bf16)), m.parameters);
  size_t most = 0;
  for (int l = 0; l < m.layer_count; l++) {
    const LayerDesc& layer = m.layers[l];
    const size_t elements = layer_block_elements(st.params, layer);
    most = std::max(most, elements);
    // Weights are the same on every rank: the position map is "one piece", the seed is per layer.
    const int rows = (int)(elements / program::kHeadDim);
    fill_normal(layer_block(st.params, layer), 1, rows, program::kHeadDim, PieceMap{0, {0, 0}, {0, 0}, {0, 0}}, rows,
                st.opt.seed, 1000 + l, program::kWeightScale, st.ctx.compute);
  }
  if (st.comms.grads_on_copy_engines) st.grad_parts = static_cast<bf16*>(st.windows.grads(most * sizeof(bf16)));
  void* activations = nullptr;
  CUDA_CHECK(cudaMalloc(&activations, m.activation_elements * sizeof(bf16)));
  st.acts = point_tensors<bf16>(activations, m.activations);
  st.dx = st.acts[m.scratch.dx];
  st.dx_prev = st.acts[m.scratch.dx_prev];
  st.dnormed = st.acts[m.scratch.dnormed];
  st.y = st.acts[m.scratch.y];
  // Inputs and the incoming gradient: functions of the global token position, the same for any W.
  const PieceMap& map = program::kPieceMaps[st.layout.sp_rank];
  fill_normal(st.acts[m.layers[0].x], program::kBatch, program::kLocalTokens, program::kHidden, map, program::kSeqLen,
              st.opt.seed + st.layout.dp_rank, 1, 1.0f, st.ctx.compute);
  fill_normal(st.dx, program::kBatch, program::kLocalTokens, program::kHidden, map, program::kSeqLen,
              st.opt.seed + st.layout.dp_rank, 2, 1.0f, st.ctx.compute);
  // Known once the windows are registered (every rank the same).
  st.ctx.few_ctas_on_copy_engines = st.comms.gathers_on_copy_engines;
}

// Which path the collectives beside the kernels take (`collectives`), once the windows are registered.
inline void report_collectives(const State& st) {
  if (st.layout.world <= 1) return;
  const char* grads = collective_path(program::kGradientsSplitEvenly && st.comms.grads_on_copy_engines);
  const char* gathers = program::kGathersBesideKernels ? collective_path(st.comms.gathers_on_copy_engines) : "none";
  emit("collectives", "\"gathers\":\"%s\",\"gradients\":\"%s\"", gathers, grads);
  if (!program::kGathersBesideKernels) say("collectives beside the kernels: gradient sum on %s\n", grads);
  else say("collectives beside the kernels: AllGathers on %s, gradient sum on %s\n", gathers, grads);
}

// Which backend each whole-sequence softmax attention takes (asking builds cuDNN's plans, before any timing).
inline void report_backends(const State& st) {
  for (int k = 0; k < st.model.kind_count; k++) {
    const LayerKind& kind = st.model.kinds[k];
    if (!kind.whole) continue;
    const char* backend = softmax_whole_backend(kind.whole_dims, kind.causal);
    emit("backend", "\"kind\":\"%s\",\"attention\":\"%s\"", kind.name, backend);
    say("layer kind %s: whole-sequence softmax attention on %s\n", kind.name, backend);
  }
}

// After the run: every stream idle, the windows released before the communicators go.
inline void finish_rank(State& st) {
  CUDA_CHECK(cudaDeviceSynchronize());
  st.windows.release();
  destroy_comms(st.comms);
}

}  // namespace lasp
