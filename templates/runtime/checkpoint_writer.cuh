// A checkpoint written by a thread of its own while training goes on: the files and the commit of
// checkpoint.cuh, in the same order (this rank's optimizer shard; then, on rank 0, the model, its text files
// (config.json, modeling_lasp.py), trainer_state.json and the rename), so a crash leaves what it leaves today:
// the previous checkpoints and a temporary folder, never half a checkpoint.
//
// Design choices:
// - The caller copies the step's tensors into host buffers first (training stands still only for that copy),
//   starts the job, and asks at each step boundary whether it ended; the buffers stay untouched until then.
//   The thread writes files only: the caller prints and emits, so events never interleave.
// - One job at a time: the caller waits for the previous one before copying the next step's tensors.
// - Rank 0 commits once every rank's shard is in the temporary folder. safetensors.cuh writes a shard under a
//   temporary name and renames it, so a shard's name appearing means the shard is whole: the thread looks
//   every 20 ms instead of a barrier between ranks (which would need the training's communicator from a
//   second thread). A rank whose write fails exits, and the launcher stops the others.
// - A checkpoint written in place (no host copy: host_memory.cuh) runs the same job on the caller's thread
//   (run_here), so the caller collects it as it collects a thread's.
// - Host code only, C++17 and std::thread: tested with g++ (test/checkpoint.test.ts).
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "checkpoint.cuh"
#include "safetensors.cuh"

namespace lasp {
namespace checkpoint {

/** What one rank writes of one checkpoint; the tensors point into the caller's host buffers. */
struct Job {
  Pending pending;
  uint64_t rank = 0;
  uint64_t world = 1;
  std::vector<safetensors::TensorOut> shard;
  /** Rank 0: what commit writes after every shard is there. */
  bool commits = false;
  std::vector<safetensors::TensorOut> model;
  std::vector<TextFile> texts;
  TrainerState state;
  uint64_t keep = 0;
};

/** How a job ended. */
struct Outcome {
  bool ok = false;
  std::string error;
  /** Rank 0's commit: the folder and the older checkpoints deleted. */
  CommitResult result;
  /** From start to the end of the job. */
  double seconds = 0;
};

/** Rank 0, before committing: waits until every other rank's shard is in `p.temp` (its own, `self`, it has just
 * written); false once `stop` is set. */
inline bool wait_for_shards(const Pending& p, uint64_t world, uint64_t self, const std::atomic<bool>& stop,
                            std::string* error) {
  for (uint64_t r = 0; r < world; ++r) {
    if (r == self) continue;
    while (!detail::is_file(shard_path(p.temp, r, world))) {
      if (stop.load()) {
        detail::fail_with(error, "the checkpoint " + p.folder +
                                     " was abandoned waiting for the optimizer shard of rank " + std::to_string(r));
        return false;
      }
      if (!detail::is_folder(p.temp)) {
        detail::fail_with(error, "cannot commit the checkpoint " + p.folder + ": " + p.temp +
                                     " disappeared while waiting for the optimizer shard of rank " + std::to_string(r));
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return true;
}

/** The whole job on the calling thread: the shard, then on rank 0 the wait for the others' and the commit. */
inline Outcome run_job(const Job& job, const std::atomic<bool>& stop) {
  const auto started = std::chrono::steady_clock::now();
  Outcome out;
  out.ok = write_shard(job.pending, job.rank, job.world, job.shard, &out.error) &&
           (!job.commits ||
            (wait_for_shards(job.pending, job.world, job.rank, stop, &out.error) &&
             commit(job.pending, job.model, job.texts, job.state, job.keep, &out.result, &out.error)));
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return out;
}

/** One checkpoint at a time on a thread of its own. */
class BackgroundWriter {
 public:
  BackgroundWriter() = default;
  BackgroundWriter(const BackgroundWriter&) = delete;
  BackgroundWriter& operator=(const BackgroundWriter&) = delete;
  /** An unfinished job is abandoned where it waits for other ranks, else finished, then joined. */
  ~BackgroundWriter() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }

  /** Whether a job was started and not yet collected by poll or wait. */
  bool busy() const { return thread_.joinable() || ran_here_; }

  /** Starts `job`; the caller has collected the previous one (busy() is false). */
  void start(Job job) {
    job_ = std::move(job);
    done_.store(false);
    thread_ = std::thread([this] {
      outcome_ = run_job(job_, stop_);
      done_.store(true);
    });
  }

  /** Runs `job` on the calling thread (its tensors may come from sources that need it: the GPU's context);
   * wait or poll then gives its outcome. The caller has collected the previous one. */
  void run_here(Job job) {
    job_ = std::move(job);
    outcome_ = run_job(job_, stop_);
    done_.store(true);
    ran_here_ = true;
  }

  /** True once the job has ended: joins it and gives its outcome. False while it runs or when there is none. */
  bool poll(Outcome* out) {
    if (!busy() || !done_.load()) return false;
    *out = wait();
    return true;
  }

  /** Waits for the job to end and gives its outcome (a default Outcome, not ok, when none was started). */
  Outcome wait() {
    if (!busy()) return Outcome();
    if (thread_.joinable()) thread_.join();
    ran_here_ = false;
    job_ = Job();
    return std::move(outcome_);
  }

 private:
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::atomic<bool> stop_{false};
  bool ran_here_ = false;
  Job job_;
  Outcome outcome_;
};

}  // namespace checkpoint
}  // namespace lasp
