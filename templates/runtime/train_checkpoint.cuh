// Train mode's checkpoints from the GPUs: the weights, each rank's optimizer shard and the trainer state into
// RUN/checkpoints/step-NNNNNN (checkpoint.cuh owns the folders and their atomic commit), and back on --resume.
//
// Design choices:
// - One shard per rank. Replicated state (optimizer.cuh): rank r writes elements [r E / W, (r + 1) E / W) of
//   master, exp_avg and exp_avg_sq (E: the parameter allocation), so the checkpoint holds the state once, and a
//   resume reads every rank's shard. ZeRO-1: rank r writes the slices it holds (`zero1.` names) and reads
//   back its own.
// - The ranks agree through NCCL (no MPI needed): rank 0's process id, which names the temporary folder, goes
//   to every rank by a max-reduction, and a second reduction is the barrier after every shard is on disk; then
//   rank 0 writes the weights, config.json and trainer_state.json and renames the folder.
// - Everything a resumed run needs is in trainer_state.json: the step, the data position (windows consumed),
//   the tokens seen, the seed; every random number of a run is a function of (seed, data position), so the
//   state of the generator is the key of the next window's tokens (checked on resume).
// - A write that fails stops the run (exit 2) with the sentence: a run that cannot checkpoint should not go on
//   for hours believing it can.
#pragma once
#include <cuda_runtime.h>
#include "nccl_api.cuh"
#include <chrono>
#include <string>
#include <vector>
#include "checkpoint.cuh"   // folders, commit, trainer_state.json
#include "optimizer.cuh"    // Optimizer
#include "report.cuh"       // emit, say
#include "state.cuh"        // State
#include "train_data.cuh"   // position_seed
#include "weights_io.cuh"   // weight_tensors, load_weights

namespace lasp {

namespace train_checkpoint {

[[noreturn]] inline void fail(const std::string& message) {
  emit("error", "\"message\":\"%s\"", message.c_str());
  std::fprintf(stderr, "lasp_program: %s\n", message.c_str());
  std::exit(2);
}

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

// Writes the checkpoint of `state` into run_dir (every rank calls it); emits `checkpoint` from rank 0.
inline void save_checkpoint(State& st, const Optimizer& o, const checkpoint::TrainerState& state,
                            const std::string& run_dir) {
  const auto started = std::chrono::steady_clock::now();
  // The weights (bf16) and the fp32 state once over every rank's shard: `lasp run` shows it while it is written.
  const size_t bytes = o.elements * (sizeof(bf16) + 3 * sizeof(float));
  if (st.layout.rank == 0) {
    emit("saving", "\"step\":%llu,\"bytes\":%zu", (unsigned long long)state.step, bytes);
    say("writing the checkpoint of step %llu (%.1f GB)\n", (unsigned long long)state.step, bytes / 1e9);
  }
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
  // This rank's shard of the fp32 state.
  size_t first = 0, count = 0;
  train_checkpoint::own_range(o, st.layout.rank, st.layout.world, &first, &count);
  std::vector<float> host(3 * count);
  const float* arrays[3] = {o.master, o.m, o.v};
  std::vector<safetensors::TensorOut> shard;
  for (int k = 0; k < 3; k++) {
    CUDA_CHECK(cudaMemcpy(host.data() + k * count, arrays[k] + first, count * sizeof(float), cudaMemcpyDeviceToHost));
    shard.push_back({train_checkpoint::state_name(o, k), safetensors::DType::F32, {(int64_t)count}, host.data() + k * count});
  }
  if (!checkpoint::write_shard(pending, (uint64_t)st.layout.rank, (uint64_t)st.layout.world, shard, &error))
    train_checkpoint::fail(error);
  train_checkpoint::max_over_ranks(st, 0);  // every shard is on disk
  if (st.layout.rank != 0) return;
  std::vector<bf16> weights;
  const std::vector<safetensors::TensorOut> model = weight_tensors(st, weights);
  checkpoint::CommitResult result;
  if (!checkpoint::commit(pending, model, program::kHfConfig, state, (uint64_t)program::kKeepCheckpoints, &result,
                          &error))
    train_checkpoint::fail(error);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  std::string removed = "[";
  for (size_t i = 0; i < result.removed.size(); i++) {
    std::string quoted;
    checkpoint::detail::json_string(quoted, result.removed[i]);
    removed += (i ? "," : "") + quoted;
  }
  removed += "]";
  std::string folder;
  checkpoint::detail::json_string(folder, result.folder);
  emit("checkpoint", "\"step\":%llu,\"folder\":%s,\"ms\":%.1f,\"removed\":%s", (unsigned long long)state.step,
       folder.c_str(), ms, removed.c_str());
  say("checkpoint of step %llu written in %.1f s: %s\n", (unsigned long long)state.step, ms / 1e3,
      result.folder.c_str());
}

// --resume: the checkpoint's weights and every rank's shard of the fp32 state into this rank's (replicated)
// state; returns its trainer state.
inline checkpoint::TrainerState load_checkpoint(State& st, Optimizer& o, const std::string& folder) {
  checkpoint::TrainerState state;
  std::string error;
  if (!checkpoint::resume(folder, program::kModelHash, (uint64_t)st.layout.world, &state, &error))
    train_checkpoint::fail(error);
  if (state.rng_state != train_data::position_seed(state.seed, state.data_position))
    train_checkpoint::fail(checkpoint::state_path(folder) + ": rng_state does not match its seed and data_position");
  load_weights(st, checkpoint::model_path(folder));
  // Replicated: every rank's part, into this rank's whole state; ZeRO-1: this rank's own shard.
  for (int r = 0; r < st.layout.world; r++) {
    if (o.sharded && r != st.layout.rank) continue;
    size_t first = 0, count = 0;
    train_checkpoint::own_range(o, r, st.layout.world, &first, &count);
    std::vector<float> host(3 * count);
    std::vector<safetensors::TensorIn> expected;
    for (int k = 0; k < 3; k++)
      expected.push_back({train_checkpoint::state_name(o, k), safetensors::DType::F32, {(int64_t)count}, host.data() + k * count});
    const std::string path = checkpoint::shard_path(folder, (uint64_t)r, (uint64_t)st.layout.world);
    if (!safetensors::read_file(path, expected, &error)) train_checkpoint::fail(error);
    float* arrays[3] = {o.master, o.m, o.v};
    for (int k = 0; k < 3; k++)
      CUDA_CHECK(cudaMemcpy(arrays[k] + first, host.data() + k * count, count * sizeof(float), cudaMemcpyHostToDevice));
  }
  std::string quoted;
  checkpoint::detail::json_string(quoted, folder);
  emit("resumed", "\"from\":%s,\"step\":%llu,\"data_position\":%llu,\"tokens_seen\":%llu", quoted.c_str(),
       (unsigned long long)state.step, (unsigned long long)state.data_position, (unsigned long long)state.tokens_seen);
  say("resumed from %s: %llu steps done, %llu windows consumed\n", folder.c_str(), (unsigned long long)state.step,
      (unsigned long long)state.data_position);
  return state;
}

}  // namespace lasp
