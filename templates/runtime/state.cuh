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
#include "nccl_api.cuh"  // communicators
#include <string>          // the GPU's name (peak_bf16_flops)
#include <utility>         // std::pair
#include <vector>          // the profiled step's marks
#include <cstdio>          // the start-up error
#include <cstring>         // strcmp (the MLP backend)
#include <string>          // the GPU's name (its peak)
#include "program.cuh"     // this spec's constants, Ctx and each layer kind's schedule (generated)
#include "run.cuh"         // Run: how a pass is issued
#include "comm.cuh"        // Layout, Comms, Windows
#include "step_documents.cuh"  // DocumentBuffers, draw_documents, upload_documents
#include "kernels.h"       // fill_normal, synthetic_tokens, the embedding sort, the softmax and MLP backends
#include "options.cuh"     // Options
#include "report.cuh"      // emit, say
#include "energy.cuh"      // StepEnergy
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
  int kv_heads;        // heads of K and V: fewer than the query heads where grouped (softmax, or linear with kv_heads)
  const double* rope_inv_freq;  // RoPE's head_dim / 2 inverse frequencies (softmax attention), else nullptr
  bool hosted;         // the schedule runs the Q projection and dWo itself (host steps, beside its collective)
  bool hosts_q_grads;  // ... and dQ's GEMMs (dWq, dQ Wq) too (LASP-2H, beside its dK/dV ReduceScatter)
  int kv_width;        // width of a K or V row: kv heads x head dim
  float verify_scale;  // scale of verify's random q and k (1 for softmax, whose scores are scaled inside)
  int layers;          // layers of the stack of this kind
  int first_layer;     // the first of them: its buffers serve verify and the per-kind timings
  bool whole;          // softmax attention over the whole sequence on one rank (its backend is reported)
  SoftmaxDims whole_dims;
  const GatheredShape* gathered;  // per sequence rank: LASP-2H's gathered attention (its backend is reported)
  DecayTable decay;    // per-head decays (linear kinds); nullptr for softmax kinds
  bool expand_kv;      // linear attention with fewer kv heads (`kv_heads`): k, v copied out to every query head
};

// A layer's weights: rows of kParameters (-1: none). attn_norm .. w_down is one block, the gradient sum's unit.
struct LayerWeights {
  int attn_norm, attn_norm_bias, wq, wk, wv, wo, mlp_norm, mlp_norm_bias, w_gate, w_up, w_down;
};

// What a layer keeps for its backward: rows of kActivations (-1: none).
struct LayerActivations {
  int input;         // the residual stream into the layer (its block norm's input)
  int mid;           // the residual stream after the attention branch (the MLP norm's input)
  int attn_norm_out;  // the block norms' outputs (`recompute none`); -1: made again in the backward, in st.normed
  int mlp_norm_out;
  int gate_up;       // the MLP's gate and up products, [rows][2 ffn]
  int h;             // SwiGLU's output, [rows][ffn]; -1: the ffn scratch, made again in the backward
  int pre_q, pre_k;  // feature-map inputs
  int normed;        // the attention output's RMSNorm (the O projection's input)
};

// A layer's norm statistics: rows of kStatistics (-1: none).
struct LayerStatistics {
  int attn_rstd, attn_mean, mlp_rstd, mlp_mean;
};

// A layer of the stack, as main.cu's kLayers describes it.
struct LayerDesc {
  int kind;  // row of kKinds
  int slot;  // its buffer set among its kind's (slot 0 owns the shared scratch)
  LayerWeights w;
  LayerActivations a;
  LayerStatistics s;
};

// The ends of the model: rows of kParameters (embedding, final norm and bias, LM head: the embedding when
// tied), of kActivations (the final norm's input) and of kStatistics (its statistics).
struct HeadDesc {
  int embedding, final_norm, final_norm_bias, lm_head;
  int final_input;
  int final_rstd, final_mean;
  int block_last;  // the head's gradient block is rows final_norm .. block_last
};

// Scratch every layer shares: rows of kActivations, then of kStatistics (partials, losses).
struct ScratchRows {
  int normed, y, dx, dnormed, dattn, ffn, logits;
  int partials, losses;
};

// The tables of main.cu.
struct ModelTables {
  const LayerKind* kinds;
  int kind_count;
  const LayerDesc* layers;
  int layer_count;
  const TensorSpec* parameters;
  int parameter_count;
  size_t parameter_elements;
  const TensorSpec* activations;
  size_t activation_elements;
  const TensorSpec* statistics;
  size_t statistic_elements;
  HeadDesc head;
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

// The parts of a step bench reports the time of (one profiled step: an event at each boundary).
enum class Part : int { kEmbedding, kNorms, kProjections, kAttention, kMlp, kHead, kGradientWait, kCount };
inline const char* part_name(Part p) {
  static const char* names[] = {"embedding",      "norms", "attention_projections", "attention_core",
                                "mlp",            "lm_head_loss", "gradient_wait"};
  return names[(int)p];
}

// The profiled step's boundaries: where each part starts on the compute stream (off: nothing is recorded).
struct PartMarks {
  bool on = false;
  std::vector<std::pair<Part, cudaEvent_t>> marks;
};

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
  std::vector<uint16_t> loaded_low;  // train mode, an F32 --load-weights file: the masters' low halves until
                                     // make_optimizer takes them (weights_io.cuh); else empty
  TensorSet<float> grads;   // their gradients, the same layout in fp32 (a window of Comms::world_copy)
  TensorSet<bf16> acts;     // activations and scratch, kActivations
  TensorSet<float> stats;   // norm statistics, partial sums and losses, kStatistics
  float* grad_parts = nullptr;  // the gradient sum's AlltoAll lands here (grad_sum.cuh), copy engines only
  bool gather_gradients = true; // false under ZeRO-1: each rank keeps only its slice of each summed block
  // Scratch (kActivations): a norm's output, a branch's output, the residual stream's gradient, a norm
  // output's gradient, the attention output's gradient, SwiGLU's h or dh, one chunk's logits.
  bf16 *normed, *y, *dx, *dnormed, *dattn, *ffn, *logits;
  float *partials, *losses;     // norm_backward's partial sums; each token's loss
  int *ids, *targets;           // the step's tokens and what each predicts (-1: nothing)
  DocumentBuffers documents;    // the step's packed documents (st.ctx.docs views them on the device)
  EmbeddingSort sort;           // the ids sorted for the embedding's backward
  double* loss_sum = nullptr;   // device: the step's summed loss (over every rank after the reduction)
  int* target_count = nullptr;  // device: targets over every rank
  float inv_count = 0.0f;       // 1 / targets over every rank: the loss is their mean
  double target_total = 0;      // targets over every rank
  size_t baseline_mem_bytes = 0;        // device memory in use before allocation: CUDA context, NCCL, cuBLAS
  PartMarks parts;                      // bench's profiled step
};

// Marks the start of part `p` on the compute stream, in bench's profiled step.
inline void part(State& st, Part p) {
  if (!st.parts.on) return;
  cudaEvent_t e;
  CUDA_CHECK(cudaEventCreate(&e));
  CUDA_CHECK(cudaEventRecord(e, st.ctx.compute));
  st.parts.marks.push_back({p, e});
}

// A block of weights (or gradients) from row `first` to row `last` of kParameters: its start and elements.
template <typename T>
inline T* block_start(const TensorSet<T>& set, int first) { return set[first]; }
template <typename T>
inline size_t block_elements(const TensorSet<T>& set, int first, int last) {
  return set.specs[last].offset + set.specs[last].elements - set.specs[first].offset;
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

// Dense bf16 peak FLOP/s of the GPUs MFU is reported for (their data sheets, without sparsity); 0: unknown.
// Here, not in bench.cuh: the `start` event carries it, so `lasp run` can show MFU per step in any mode.
inline double peak_bf16_flops(const char* device) {
  const std::string name(device);
  if (name.find("H200") != std::string::npos) return 989e12;
  if (name.find("H100") != std::string::npos) return name.find("PCIe") != std::string::npos ? 756e12 : 989e12;
  if (name.find("A100") != std::string::npos) return 312e12;
  return 0;
}

// The energy counter of this rank's GPU over a run's steps (energy.cuh), which finds the GPU by its PCI bus id.
inline StepEnergy step_energy(const State& st) {
  char bus_id[32];
  CUDA_CHECK(cudaDeviceGetPCIBusId(bus_id, sizeof bus_id, st.layout.device));
  return StepEnergy(bus_id);
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
  // Tokens per step (every rank's), training FLOPs per token and the GPU's peak: `lasp run` shows tokens/s
  // and MFU per step from these and the step time.
  emit("start", "\"world\":%d,\"device\":\"%s\",\"spec\":\"%s\",\"mode\":\"%s\",\"steps\":%d,\"warmup\":%d,"
       "\"tokens_per_step\":%.0f,\"flops_per_token\":%.6e,\"peak_flops\":%.6e",
       st.layout.world, st.device.name, program::kSpecFile, st.opt.mode.c_str(), st.opt.steps,
       st.opt.mode == "train" ? 0 : st.opt.warmup,  // train mode has no untimed steps
       program::kTokensPerStep, program::kModelFlopsPerToken, peak_bf16_flops(st.device.name));
  say("lasp_program for %s: %d rank%s (sequence %d x data %d) on %s, %s mode\n", program::kModelName, st.layout.world,
      st.layout.world == 1 ? "" : "s", program::kWorld, program::kDataParallel, st.device.name, st.opt.mode.c_str());
  size_t free_bytes = 0, total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  st.baseline_mem_bytes = total_bytes - free_bytes;
  return true;
}

// After st.ids and st.targets are written: the ids sorted for the embedding's backward, and the targets counted
// over every rank (the loss is their mean; waits for the count).
inline void prepare_tokens(State& st) {
  cudaStream_t s = st.ctx.compute;
  embedding_sort(st.ids, st.sort, s);
  count_targets(st.targets, (int)kRows, st.target_count, s);
  if (st.layout.world > 1) NCCL_CHECK(ncclAllReduce(st.target_count, st.target_count, 1, ncclInt32, ncclSum, st.comms.world, s));
  int count = 0;
  CUDA_CHECK(cudaMemcpyAsync(&count, st.target_count, sizeof(int), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  st.target_total = count;
  st.inv_count = count > 0 ? 1.0f / (float)count : 0.0f;
}

// The model's weights, gradients, activations and statistics, one allocation per table; the initial weights,
// the step's tokens and their targets. The layer kinds' buffers are allocated before (main.cu), in the same
// order on every rank.
inline void allocate_model(State& st) {
  const ModelTables& m = st.model;
  cudaStream_t s = st.ctx.compute;
  void* weights = nullptr;
  CUDA_CHECK(cudaMalloc(&weights, m.parameter_elements * sizeof(bf16)));
  st.params = point_tensors<bf16>(weights, m.parameters);
  float* grads = static_cast<float*>(st.windows.grads(m.parameter_elements * sizeof(float)));
  CUDA_CHECK(cudaMemsetAsync(grads, 0, m.parameter_elements * sizeof(float), s));  // padding stays 0
  st.grads = point_tensors<float>(grads, m.parameters);
  // Weights are the same on every rank: a function of the seed and the tensor's row alone.
  const PieceMap whole{0, {0, 0}, {0, 0}, {0, 0}};
  for (int row = 0; row < m.parameter_count; row++) {
    const TensorSpec& t = m.parameters[row];
    if (t.init_std > 0.0f)
      fill_normal(st.params[row], 1, 1, (int)t.elements, whole, 1, st.opt.seed, 1000 + row, t.init_std, s);
    else
      fill_constant(st.params[row], t.elements, t.init_value, s);
  }
  // The copy engines' scratch holds the largest block the gradient sums move at once.
  if (st.comms.grads_on_copy_engines)
    st.grad_parts = static_cast<float*>(st.windows.grads(program::kLargestGradientBlock * sizeof(float)));
  void* activations = nullptr;
  CUDA_CHECK(cudaMalloc(&activations, m.activation_elements * sizeof(bf16)));
  st.acts = point_tensors<bf16>(activations, m.activations);
  void* statistics = nullptr;
  CUDA_CHECK(cudaMalloc(&statistics, m.statistic_elements * sizeof(float)));
  st.stats = point_tensors<float>(statistics, m.statistics);
  const ScratchRows& r = m.scratch;
  st.normed = st.acts[r.normed];
  st.y = st.acts[r.y];
  st.dx = st.acts[r.dx];
  st.dnormed = st.acts[r.dnormed];
  st.dattn = st.acts[r.dattn];
  st.ffn = st.acts[r.ffn];
  st.logits = st.acts[r.logits];
  st.partials = st.stats[r.partials];
  st.losses = st.stats[r.losses];
  // The tokens: functions of the global position, the same for any GPU count; each data replica its own.
  const int tokens = (int)kRows;
  CUDA_CHECK(cudaMalloc(&st.ids, kRows * sizeof(int)));
  CUDA_CHECK(cudaMalloc(&st.targets, kRows * sizeof(int)));
  CUDA_CHECK(cudaMalloc(&st.loss_sum, sizeof(double)));
  CUDA_CHECK(cudaMalloc(&st.target_count, sizeof(int)));
  void* sort_workspace = nullptr;
  CUDA_CHECK(cudaMalloc(&sort_workspace, embedding_workspace_bytes(tokens, program::kVocab)));
  st.sort = embedding_sort_view(sort_workspace, tokens, program::kVocab);
  synthetic_tokens(st.ids, st.targets, program::kBatch, (int)program::kLocalTokens, program::kPieceMaps[st.layout.sp_rank],
                   program::kSeqLen, program::kVocab, st.opt.seed + st.layout.dp_rank, program::kMaskedObjective,
                   program::kMaskRate, s);
  if (program::kRealSeqLen < program::kSeqLen)
    drop_padding_targets(st.targets, program::kBatch, (int)program::kLocalTokens, program::kPieceMaps[st.layout.sp_rank],
                         program::kRealSeqLen, s);
  prepare_tokens(st);
  if (program::kStepDocuments) {
    alloc_documents(st.documents, program::kBatch, (int)program::kSeqLen);
    // Each replica its own rows, as its tokens (verify and bench keep them; train draws each step's).
    st.ctx.docs = draw_documents(st.documents, program::kDocumentLength, (int)program::kRealSeqLen, st.opt.seed,
                                 (uint64_t)st.layout.dp_rank * program::kBatch, s);
  }
  // Known once the windows are registered (every rank the same).
  st.ctx.few_ctas_on_copy_engines = st.comms.gathers_on_copy_engines;
  st.ctx.scatters_on_copy_engines = scatters_on_copy_engines(st.comms);
}

// Which path the collectives beside the kernels take (`collectives`), once the windows are registered.
inline void report_collectives(const State& st) {
  if (st.layout.world <= 1) return;
  const char* grads = collective_path(program::kGradientsSplitEvenly && st.comms.grads_on_copy_engines);
  const char* gathers = program::kGathersBesideKernels ? collective_path(st.comms.gathers_on_copy_engines) : "none";
  const char* scatters = program::kScattersBesideKernels ? collective_path(st.ctx.scatters_on_copy_engines) : "none";
  emit("collectives", "\"gathers\":\"%s\",\"scatters\":\"%s\",\"gradients\":\"%s\"", gathers, scatters, grads);
  if (!program::kGathersBesideKernels) say("collectives beside the kernels: gradient sum on %s\n", grads);
  else if (!program::kScattersBesideKernels)
    say("collectives beside the kernels: AllGathers on %s, gradient sum on %s\n", gathers, grads);
  else
    say("collectives beside the kernels: AllGathers on %s, ReduceScatters on %s, gradient sum on %s\n", gathers,
        scatters, grads);
}

// Which backend each whole-sequence or gathered softmax attention takes (asking builds cuDNN's plans, before
// any timing), the MLP's GEMMs (LASP_MLP_GEMM) and the LM head's logits (LASP_HEAD_GEMM).
inline void report_backends(const State& st) {
  for (int k = 0; k < st.model.kind_count; k++) {
    const LayerKind& kind = st.model.kinds[k];
    auto report = [&](const char* attention, const char* backend) {
      emit("backend", "\"kind\":\"%s\",\"attention\":\"%s\"", kind.name, backend);
      say("layer kind %s: %s on %s\n", kind.name, attention, backend);
    };
    if (kind.gathered != nullptr) {
      const GatheredShape& g = kind.gathered[st.layout.sp_rank];
      report("gathered softmax attention (LASP-2H)",
             softmax_gathered_backend(g.dims, g.q_map, g.key_rows, kind.causal, program::kStepDocuments));
    }
    if (kind.whole)
      report("whole-sequence softmax attention",
             softmax_whole_backend(kind.whole_dims, kind.causal, program::kStepDocuments));
  }
  const char* mlp = mlp_gemm_backend((int)kRows, program::kFfn, program::kHidden);
  emit("mlp", "\"gemm\":\"%s\"", mlp);
  say("MLP: gate|up and the down gradient %s\n", std::strcmp(mlp, "lasp") == 0
                                                   ? "on lasp's GEMM with SwiGLU in its epilogues (Hopper)"
                                                   : "on cuBLAS, SwiGLU in passes of its own");
  // The compiler's chunk (at most the rank's rows); a ragged last chunk takes cuBLAS whatever this says.
  const char* head = head_gemm_backend(program::kClassifierChunk, program::kVocab, program::kHidden);
  emit("lm_head", "\"gemm\":\"%s\"", head);
  say("LM head: the logits %s\n", std::strcmp(head, "lasp") == 0 ? "on lasp's GEMM (Hopper)" : "on cuBLAS");
}

// After the run: every stream idle, the windows released before the communicators go.
inline void finish_rank(State& st) {
  CUDA_CHECK(cudaDeviceSynchronize());
  st.windows.release();
  destroy_comms(st.comms);
}

}  // namespace lasp
