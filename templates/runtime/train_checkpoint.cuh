// Train mode's checkpoints from the GPUs: the weights, each rank's optimizer shard and the trainer state into
// RUN/checkpoints/step-NNNNNN (checkpoint.cuh owns the folders and their atomic commit), and back on --resume.
//
// Design choices:
// - One shard per rank. Replicated state (optimizer.cuh): rank r writes elements [r E / W, (r + 1) E / W) of
//   master, exp_avg and exp_avg_sq (E: the parameter allocation), so the checkpoint holds the state once, and a
//   resume reads every rank's shard. ZeRO-1: rank r writes the slices it holds (`zero1.` names) and reads
//   back its own. A run on another number of GPUs (or with the other kind of update) resumes it too: each rank
//   takes its slices from whichever shards hold them (optimizer_slices.cuh), as the state's place in the
//   parameter allocation does not depend on the ranks.
// - The ranks agree through NCCL (no MPI needed): rank 0's process id, which names the temporary folder, goes
//   to every rank by a max-reduction. Then each rank copies its tensors to the host, and training goes on while
//   a thread writes them (checkpoint_writer.cuh): rank 0's thread waits for every shard, writes the weights,
//   config.json and trainer_state.json and renames the folder. Training stands still only for the copy (the
//   host buffers are page-locked once, where the host allows, so it runs at the link's speed); the next
//   checkpoint, the end of the run, a signal and a non-finite loss wait for the write in flight. The last
//   checkpoint and a signal's are waited for before the program exits.
// - Where the host's free memory cannot hold its ranks' copies (host_memory.cuh; every rank decides the same,
//   before any allocates) or LASP_CHECKPOINT_COPY=none, checkpoints are written in place: the files are
//   filled straight from the GPU through a 64 MiB host buffer, and training waits for each write.
// - Everything a resumed run needs is in trainer_state.json: the step, the data position (windows consumed),
//   the tokens seen, the seed; every random number of a run is a function of (seed, data position), so the
//   state of the generator is the key of the next window's tokens (checked on resume).
// - A write that fails stops the run (exit 2) with the sentence: a run that cannot checkpoint should not go on
//   for hours believing it can.
#pragma once
#include <cuda_runtime.h>
#include "nccl_api.cuh"
#include <algorithm>
#include <chrono>
#include <new>
#include <string>
#include <vector>
#include "checkpoint.cuh"   // folders, commit, trainer_state.json
#include "checkpoint_writer.cuh"  // BackgroundWriter
#include "host_memory.cuh"  // whether the host holds the copies
#include "optimizer.cuh"    // Optimizer, OptimizerTables
#include "optimizer_slices.cuh"  // checkpoint_shard_spans, state_copies
#include "report.cuh"       // emit, say
#include "state.cuh"        // State
#include "train_data.cuh"   // position_seed
#include "weights_io.cuh"   // weight_tensors, device_source, read_to_device, load_weights

namespace lasp {

namespace train_checkpoint {

[[noreturn]] inline void fail(const std::string& message) { fail_input(message); }

// The largest of every rank's `value` (every rank the same), through the world communicator.
inline int64_t max_over_ranks(State& st, int64_t value) {
  if (st.layout.world == 1) return value;
  static int64_t* device = nullptr;
  if (device == nullptr) CUDA_CHECK(cudaMalloc(&device, sizeof(int64_t)));
  cudaStream_t s = st.ctx.compute;
  CUDA_CHECK(cudaMemcpyAsync(device, &value, sizeof(int64_t), cudaMemcpyHostToDevice, s));
  NCCL_CHECK(ncclAllReduce(device, device, 1, ncclInt64, ncclMax, st.comms.world, s));
  CUDA_CHECK(cudaMemcpyAsync(&value, device, sizeof(int64_t), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  return value;
}

// Rank r's range of the flat state: [first, first + count).
inline void shard_range(size_t elements, int rank, int world, size_t* first, size_t* count) {
  *first = elements * (size_t)rank / (size_t)world;
  *count = elements * (size_t)(rank + 1) / (size_t)world - *first;
}

const char* const kStateNames[3] = {"master", "exp_avg", "exp_avg_sq"};
// ZeRO-1's shards hold other elements (each rank's slices of every block): other names, so a checkpoint of
// one kind read as the other fails on a name, not silently.
const char* const kShardedNames[3] = {"zero1.master", "zero1.exp_avg", "zero1.exp_avg_sq"};

// What rank `rank` writes of the state: replicated, its 1/W of the (identical) state arrays; ZeRO-1, all it holds.
inline void own_range(const Optimizer& o, int rank, int world, size_t* first, size_t* count) {
  if (o.sharded) {
    *first = 0;
    *count = o.elements;
    return;
  }
  shard_range(o.elements, rank, world, first, count);
}

inline const char* state_name(const Optimizer& o, int k) { return o.sharded ? kShardedNames[k] : kStateNames[k]; }

// The fp32 master weights of the state's elements [first, first + count) into out[0, count), joined from the bf16
// weights and the low halves (master_weights.cuh), slice by slice, on the compute stream.
inline void join_masters(State& st, const Optimizer& o, size_t first, size_t count, float* out) {
  for (const OptimizerSlice& sl : o.slices) {
    const size_t from = std::max(first, sl.state), to = std::min(first + count, sl.state + sl.elements);
    if (from < to)
      master_to_f32(st.params.base + sl.param + (from - sl.state), o.low + from, out + (from - first), to - from,
                    st.ctx.compute);
  }
}

// The other way, after a resume: each slice's fp32 masters (at their state index in `in`) split into this rank's
// bf16 weights and low halves; under ZeRO-1 the blocks' weights then gathered, so every rank computes with the
// same bits.
inline void split_masters(State& st, const Optimizer& o, const float* in) {
  for (const OptimizerSlice& sl : o.slices)
    master_from_f32(in + sl.state, st.params.base + sl.param, o.low + sl.state, sl.elements, st.ctx.compute);
  gather_weights(st, o);
  CUDA_CHECK(cudaStreamSynchronize(st.ctx.compute));
}

}  // namespace train_checkpoint

// The trainer state after `step` steps and `position` windows.
inline checkpoint::TrainerState trainer_state(const State& st, const Optimizer& o, uint64_t step, uint64_t position,
                                              uint64_t tokens_seen) {
  checkpoint::TrainerState t;
  t.step = step;
  t.tokens_seen = tokens_seen;
  t.data_position = position;
  t.seed = st.opt.seed;
  t.rng_state = train_data::position_seed(st.opt.seed, position);
  t.world_size = (uint64_t)st.layout.world;
  const char* kinds[] = {"cosine", "linear", "constant"};
  t.schedule.kind = kinds[o.schedule.kind];
  t.schedule.lr = o.schedule.lr;
  t.schedule.min_lr = o.schedule.min_lr;
  t.schedule.warmup_steps = (uint64_t)o.schedule.warmup;
  t.schedule.total_steps = (uint64_t)o.schedule.steps;
  t.lasp_version = program::kCompilerVersion;
  t.spec_hash = program::kModelHash;
  return t;
}

// A run's checkpoints: the host copy of a step's tensors (allocated before the first step and kept) and the
// writer that puts the copy on disk while training goes on.
struct Checkpoints {
  checkpoint::BackgroundWriter writer;
  // The checkpoint in flight: its step, when it began, whether training goes on meanwhile, and how long
  // training stood still for it (the wait for the previous write and the copy to the host; when waited for,
  // the whole write).
  uint64_t step = 0;
  std::chrono::steady_clock::time_point entered, started;
  bool background = false;
  double paused_ms = 0;
  // No host copy: each checkpoint's files are filled from the GPU while training waits.
  bool in_place = false;
  float* state = nullptr;  // master, exp_avg, exp_avg_sq of this rank's range, back to back
  bf16* weights = nullptr;  // rank 0: every weight
  bool pinned = false;
  std::vector<float> state_pageable;
  std::vector<bf16> weights_pageable;
  // Rank 0: the files beside the weights (config.json, modeling_lasp.py, the tokenizer's), read before step 1, so
  // a tokenizer folder that is wrong stops the run then, and one that goes away later stops no checkpoint.
  std::vector<checkpoint::TextFile> texts;

  Checkpoints() = default;
  Checkpoints(const Checkpoints&) = delete;
  Checkpoints& operator=(const Checkpoints&) = delete;
  ~Checkpoints() {
    writer.wait();  // the buffers below stay until the thread that reads them is done
    if (pinned) {
      CUDA_CHECK(cudaFreeHost(state));
      CUDA_CHECK(cudaFreeHost(weights));
    }
  }
};

namespace train_checkpoint {

// The host buffers, once: page-locked where the host allows (the copy then runs at the link's speed), else
// pageable (slower to copy, written all the same): cudaHostAlloc's failure is that fallback, so it is not checked.
inline void host_buffers(Checkpoints& c, size_t state_elements, size_t weight_elements) {
  void* state = nullptr;
  void* weights = nullptr;
  const size_t state_bytes = std::max<size_t>(state_elements, 1) * sizeof(float);
  const size_t weight_bytes = std::max<size_t>(weight_elements, 1) * sizeof(bf16);
  const bool pinned = cudaHostAlloc(&state, state_bytes, cudaHostAllocDefault) == cudaSuccess &&
                      cudaHostAlloc(&weights, weight_bytes, cudaHostAllocDefault) == cudaSuccess;
  if (pinned) {
    c.pinned = true;
    c.state = static_cast<float*>(state);
    c.weights = static_cast<bf16*>(weights);
    return;
  }
  (void)cudaGetLastError();  // the failed allocation is not an error of a later call
  if (state != nullptr) CUDA_CHECK(cudaFreeHost(state));
  try {
    c.state_pageable.resize(std::max<size_t>(state_elements, 1));
    c.weights_pageable.resize(std::max<size_t>(weight_elements, 1));
  } catch (const std::bad_alloc&) {
    char gb[32];
    std::snprintf(gb, sizeof gb, "%.1f", (state_bytes + weight_bytes) / 1e9);
    train_checkpoint::fail(std::string("cannot hold this rank's copy of a checkpoint in host memory (") + gb +
                           " GB, page-locked or not): checkpoints are written from it while training goes on; "
                           "free host memory, use more GPUs (each holds 1/W of the optimizer state), or set "
                           "LASP_CHECKPOINT_COPY=none (written in place, training waiting for each)");
  }
  c.state = c.state_pageable.data();
  c.weights = c.weights_pageable.data();
}

// Bytes of rank `rank`'s host copy: its part of the fp32 state, and on rank 0 the weights.
inline uint64_t copy_bytes(const State& st, const Optimizer& o, int rank) {
  size_t first = 0, count = 0;
  own_range(o, rank, st.layout.world, &first, &count);
  return 3 * count * sizeof(float) + (rank == 0 ? st.model.parameter_elements * sizeof(bf16) : 0);
}

// Whether checkpoints are written in place: LASP_CHECKPOINT_COPY, else whether this host's free memory holds
// its ranks' copies. Every rank reads its host's memory before the agreement, so before any allocates.
inline bool write_in_place(State& st, const Optimizer& o) {
  const char* setting = std::getenv("LASP_CHECKPOINT_COPY");
  const host_memory::CopyChoice choice = host_memory::copy_choice(setting);
  if (choice == host_memory::CopyChoice::kInvalid)
    fail(host_memory::copy_choice_error(setting));
  int64_t in_place = choice == host_memory::CopyChoice::kNone;
  uint64_t needed = 0, available = 0;
  if (choice == host_memory::CopyChoice::kAuto) {
    int visible = 0;
    if (cudaGetDeviceCount(&visible) != cudaSuccess) visible = 1;
    const int ranks = host_memory::ranks_here(std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE"),
                                              std::getenv("LOCAL_WORLD_SIZE"), std::getenv("SLURM_NTASKS_PER_NODE"),
                                              st.layout.world, visible);
    needed = host_memory::host_bytes(copy_bytes(st, o, 0), st.layout.world > 1 ? copy_bytes(st, o, 1) : 0, ranks);
    available = host_memory::available_bytes();
    in_place = !host_memory::fits(needed, available);
  }
  const bool any = max_over_ranks(st, in_place) != 0;
  if (any && st.layout.rank == 0) {
    if (choice == host_memory::CopyChoice::kNone)
      say("checkpoints: written in place (LASP_CHECKPOINT_COPY=none): training waits for each write\n");
    else
      say("checkpoints: written in place, training waiting for each write: the ranks' copies of a step (%.1f GB "
          "on this host) would take more than 80%% of its available memory (%.1f GB)%s\n",
          needed / 1e9, available / 1e9, in_place ? "" : " on another host");
  }
  return any;
}

}  // namespace train_checkpoint

// The host buffers of this rank's part of a checkpoint, before the first step: page-locking tens of GB takes
// seconds, better spent at the start than as a stall at the first checkpoint. Rank 0 says what it holds. None
// where checkpoints are written in place.
inline void prepare_checkpoints(State& st, const Optimizer& o, Checkpoints& c) {
  if (st.layout.rank == 0) c.texts = model_texts(st.opt);
  c.in_place = train_checkpoint::write_in_place(st, o);
  if (c.in_place) return;
  const auto started = std::chrono::steady_clock::now();
  size_t first = 0, count = 0;
  train_checkpoint::own_range(o, st.layout.rank, st.layout.world, &first, &count);
  train_checkpoint::host_buffers(c, 3 * count, st.layout.rank == 0 ? st.model.parameter_elements : 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (st.layout.rank == 0)
    say("checkpoints: %.1f GB of %s host memory on rank 0 for the copy of a step (%.1f s to allocate)\n",
        train_checkpoint::copy_bytes(st, o, 0) / 1e9, c.pinned ? "page-locked" : "pageable", seconds);
}

// The checkpoint in flight, if it ended (`wait`: once it ends): a failed write stops the run; rank 0 emits
// `checkpoint`.
inline void finish_checkpoint(State& st, Checkpoints& c, bool wait) {
  checkpoint::Outcome out;
  if (wait) {
    if (!c.writer.busy()) return;
    out = c.writer.wait();
  } else if (!c.writer.poll(&out)) {
    return;
  }
  if (!out.ok) train_checkpoint::fail(out.error);
  if (st.layout.rank != 0) return;
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - c.started).count();
  if (!c.background)
    c.paused_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - c.entered).count();
  std::string removed = "[";
  for (size_t i = 0; i < out.result.removed.size(); i++) removed += (i ? "," : "") + json_string(out.result.removed[i]);
  removed += "]";
  emit("checkpoint", "\"step\":%llu,\"folder\":%s,\"ms\":%.1f,\"background\":%s,\"paused_ms\":%.1f,\"removed\":%s",
       (unsigned long long)c.step, json_string(out.result.folder).c_str(), ms, c.background ? "true" : "false", c.paused_ms, removed.c_str());
  if (c.background)
    say("checkpoint of step %llu written in %.1f s in the background (training paused %.1f s for it): %s\n",
        (unsigned long long)c.step, ms / 1e3, c.paused_ms / 1e3, out.result.folder.c_str());
  else
    say("checkpoint of step %llu written in %.1f s: %s\n", (unsigned long long)c.step, ms / 1e3,
        out.result.folder.c_str());
}

// Starts the checkpoint of `state` into run_dir (every rank calls it): waits for the one in flight, copies this
// rank's tensors to the host, and leaves the writing to the writer's thread; `wait`: returns once it is on disk.
// Written in place (c.in_place), it always returns once it is on disk.
inline void save_checkpoint(State& st, const Optimizer& o, const checkpoint::TrainerState& state,
                            const std::string& run_dir, Checkpoints& c, bool wait) {
  wait = wait || c.in_place;
  const auto entered = std::chrono::steady_clock::now();
  finish_checkpoint(st, c, true);  // training waits for the previous write, if it is still going
  const auto started = std::chrono::steady_clock::now();
  // The weights (bf16) and the fp32 state (masters, moments) once over every rank's shard, as the files hold them:
  // `lasp run` shows it while it is written.
  const size_t bytes = o.elements * (sizeof(bf16) + 3 * sizeof(float));
  if (st.layout.rank == 0) {
    emit("saving", "\"step\":%llu,\"bytes\":%zu,\"background\":%s", (unsigned long long)state.step, bytes,
         wait ? "false" : "true");
    say("writing the checkpoint of step %llu (%.1f GB)%s\n", (unsigned long long)state.step, bytes / 1e9,
        wait ? "" : "; training goes on meanwhile");
  }
  // This rank's shard of the fp32 state, and on rank 0 the weights, into the host buffers (prepare_checkpoints).
  // The fp32 masters are joined into the gradient buffer: the step that made them has spent its gradients, and
  // the next backward pass, which writes them again, waits for the copy (or, in place, for the write).
  size_t first = 0, count = 0;
  train_checkpoint::own_range(o, st.layout.rank, st.layout.world, &first, &count);
  float* masters = st.grads.base;
  train_checkpoint::join_masters(st, o, first, count, masters);
  CUDA_CHECK(cudaStreamSynchronize(st.ctx.compute));
  std::string error;
  checkpoint::Pending pending;
  long owner = 0;
  if (st.layout.rank == 0) {
    if (!checkpoint::begin(run_dir, state.step, &pending, &error)) train_checkpoint::fail(error);
    owner = pending.owner_pid;
  }
  owner = (long)train_checkpoint::max_over_ranks(st, owner);
  if (st.layout.rank != 0) pending = checkpoint::pending_for(run_dir, state.step, owner);
  checkpoint::Job job;
  job.pending = pending;
  job.rank = (uint64_t)st.layout.rank;
  job.world = (uint64_t)st.layout.world;
  const float* arrays[3] = {masters, o.m + first, o.v + first};
  for (int k = 0; k < 3; k++) {
    if (c.in_place) {
      job.shard.push_back({train_checkpoint::state_name(o, k), safetensors::DType::F32, {(int64_t)count}, nullptr,
                           device_source(arrays[k])});
      continue;
    }
    CUDA_CHECK(cudaMemcpy(c.state + k * count, arrays[k], count * sizeof(float), cudaMemcpyDeviceToHost));
    job.shard.push_back(
        {train_checkpoint::state_name(o, k), safetensors::DType::F32, {(int64_t)count}, c.state + k * count});
  }
  if (st.layout.rank == 0) {
    job.commits = true;
    job.model = weight_tensors(st, c.in_place ? nullptr : c.weights);
    job.texts = c.texts;
    job.state = state;
    job.keep = (uint64_t)program::kKeepCheckpoints;
  }
  c.step = state.step;
  c.entered = entered;
  c.started = started;
  c.background = !wait;
  c.paused_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - entered).count();
  if (c.in_place)
    c.writer.run_here(std::move(job));
  else
    c.writer.start(std::move(job));
  if (wait) {
    finish_checkpoint(st, c, true);
    // No rank leaves before rank 0 has committed (it commits once every shard is there): under mpirun, or srun
    // with KillOnBadExit, the first rank to exit with a stop code ends the others, rank 0's commit with them.
    train_checkpoint::max_over_ranks(st, 0);
  }
}

// --resume: the checkpoint's weights, and this rank's slices of the fp32 state from the checkpoint's shards
// (optimizer_slices.cuh's state_copies: from as many ranks and the same kind of update, each rank reads what it
// wrote; from another number of ranks, or replicated to ZeRO-1 and back, the state is re-sharded); returns its
// trainer state.
inline checkpoint::TrainerState load_checkpoint(State& st, Optimizer& o, const OptimizerTables& tables,
                                                const std::string& folder) {
  checkpoint::TrainerState state;
  std::string error;
  if (!checkpoint::resume(folder, program::kModelHash, &state, &error)) train_checkpoint::fail(error);
  if (state.rng_state != train_data::position_seed(state.seed, state.data_position))
    train_checkpoint::fail(checkpoint::state_path(folder) + ": rng_state does not match its seed and data_position");
  // A large model's checkpoint takes a while to read: say so first.
  if (st.layout.rank == 0)
    say("reading the checkpoint %s (%.1f GB)\n", folder.c_str(),
        st.model.parameter_elements * (sizeof(bf16) + 3 * sizeof(float)) / 1e9);
  load_weights(st, checkpoint::model_path(folder));
  // The checkpoint's layout: its ranks, and ZeRO-1's or the replicated update's (its shards' tensor names).
  const int world = (int)state.world_size;
  safetensors::Header first;
  if (!safetensors::read_header(checkpoint::shard_path(folder, 0, state.world_size), &first, &error))
    train_checkpoint::fail(error);
  bool sharded = false;
  for (const safetensors::TensorEntry& t : first.tensors)
    sharded = sharded || t.name == train_checkpoint::kShardedNames[0];
  std::vector<size_t> offsets, elements;
  block_arrays(tables, &offsets, &elements);
  std::vector<std::vector<OptimizerSpan>> shards;
  for (int r = 0; r < world; r++)
    shards.push_back(checkpoint_shard_spans(offsets.data(), elements.data(), tables.block_count,
                                            st.model.parameter_elements, sharded, r, world));
  std::vector<OptimizerSpan> mine;
  for (const OptimizerSlice& s : o.slices)
    mine.push_back({s.param, s.state, s.elements, s.block.offset, s.block.elements});
  std::vector<StateCopy> copies;
  const std::string why = state_copies(shards, mine, offsets.data(), elements.data(), tables.block_count, &copies);
  if (!why.empty()) train_checkpoint::fail("cannot resume from " + folder + ": " + why);
  // Each copy read from its shard's file in pieces through one staging buffer: a rank reads only the parts it
  // takes, and holds 64 MiB of them at a time (eight ranks resuming one rank's checkpoint do not each hold all).
  // The fp32 masters land in the gradient buffer (free before the first step), then split into the weights and
  // their low halves.
  float* masters = st.grads.base;
  float* arrays[3] = {masters, o.m, o.v};
  std::vector<float> staging((size_t)16 << 20);
  for (int r = 0; r < world; r++) {
    bool needed = false;
    for (const StateCopy& c : copies) needed = needed || c.shard == r;
    if (!needed) continue;
    size_t count = 0;
    for (const OptimizerSpan& span : shards[r]) count = std::max(count, span.state + span.elements);
    const char* const* names = sharded ? train_checkpoint::kShardedNames : train_checkpoint::kStateNames;
    std::vector<safetensors::TensorIn> expected;
    for (int k = 0; k < 3; k++) expected.push_back({names[k], safetensors::DType::F32, {(int64_t)count}, nullptr});
    const std::string path = checkpoint::shard_path(folder, (uint64_t)r, state.world_size);
    safetensors::Header header;
    if (!safetensors::check_file(path, expected, &header, &error)) train_checkpoint::fail(error);
    for (const StateCopy& c : copies) {
      if (c.shard != r) continue;
      for (int k = 0; k < 3; k++)
        if (!read_to_device(path, header, names[k], c.from, c.elements, arrays[k] + c.to, staging, &error))
          train_checkpoint::fail(error);
    }
  }
  train_checkpoint::split_masters(st, o, masters);
  const bool resharded = world != st.layout.world || sharded != o.sharded;
  emit("resumed", "\"from\":%s,\"step\":%llu,\"data_position\":%llu,\"tokens_seen\":%llu,\"world\":%d,"
       "\"sharded\":%s,\"resharded\":%s",
       json_string(folder).c_str(), (unsigned long long)state.step, (unsigned long long)state.data_position,
       (unsigned long long)state.tokens_seen, world, sharded ? "true" : "false", resharded ? "true" : "false");
  say("resumed from %s: %llu steps done, %llu windows consumed\n", folder.c_str(), (unsigned long long)state.step,
      (unsigned long long)state.data_position);
  if (resharded && st.layout.rank == 0)
    say("the checkpoint's optimizer state (%s on %d rank%s) is re-sharded for this run (%s on %d)\n",
        sharded ? "ZeRO-1" : "replicated", world, world == 1 ? "" : "s", o.sharded ? "ZeRO-1" : "replicated",
        st.layout.world);
  return state;
}

}  // namespace lasp
