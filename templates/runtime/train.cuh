// train mode: the training loop. Each optimizer step runs `accumulate` micro-batches (tokens from the data,
// forward, backward, gradients summed over every rank), then the global gradient norm, clipping, the
// learning rate of the step and the AdamW update (optimizer.cuh); evaluation on held-out windows every
// `eval_every` steps; checkpoints every `checkpoint_every` steps and at the end (train_checkpoint.cuh); a
// resume from a checkpoint continues exactly where it stopped.
//
// Design choices:
// - The step's loss is the mean over every target of every micro-batch and rank; its time is wall clock from
//   the end of the previous step to the end of this one (data, passes, optimizer: what a user waits for).
// - SIGTERM and SIGINT (Slurm's preemption, Ctrl-C) only set a flag; after each step the ranks agree on it
//   (a max over ranks: a rank signalled a moment later stops at the same step), write a checkpoint, and exit
//   with kExitStopped. A second signal during the checkpoint is ignored by the program (lasp run's second
//   Ctrl-C kills it).
// - --no-checkpoints (benchmarks, smoke tests): no host copy is set up and no checkpoint is written, not at
//   the end and not after a signal; a signal still stops the run after its step with kExitStopped.
// - A non-finite loss or gradient norm stops the run before the update, with kExitNonFinite and the step
//   named; the last checkpoint written is the last good one and is kept.
#pragma once
#include <chrono>
#include <cmath>
#include <csignal>
#include <signal.h>  // sigaction: the handler's semantics fixed by POSIX (std::signal's vary by platform)
#include <cstdio>
#include <string>
#include "layer.cuh"             // head_loss, step_loss
#include "optimizer.cuh"         // Optimizer, the step
#include "report.cuh"            // emit, say
#include "state.cuh"             // State, peak_bf16_flops
#include "train_checkpoint.cuh"  // Checkpoints, save_checkpoint, finish_checkpoint, load_checkpoint, max_over_ranks
#include "train_data.cuh"        // WindowSource, load_windows

namespace lasp {

constexpr int kExitStopped = 5;    // stopped by SIGTERM or SIGINT, after writing a checkpoint
constexpr int kExitNonFinite = 6;  // stopped by a non-finite loss or gradient norm

namespace train {

inline volatile std::sig_atomic_t g_signal = 0;

extern "C" inline void on_signal(int signal) { g_signal = signal; }

// Installs on_signal for SIGTERM and SIGINT, to stay for every signal: a Ctrl-C reaches a rank twice (the
// terminal's SIGINT and lasp run's SIGTERM), and where a handler resets after one signal (System V's signal()),
// the second would kill the rank mid-checkpoint. sigaction without SA_RESETHAND is the same everywhere.
inline void install_stop_handlers() {
  struct sigaction action = {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

inline double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// "0.1234" or "null" (the GPU's peak is not in the table), for the events.
inline std::string mfu_json(const State& st, double tokens_per_s) {
  const double peak = peak_bf16_flops(st.device.name);
  char text[32] = "null";
  if (peak > 0) std::snprintf(text, sizeof text, "%.4f", program::kModelFlopsPerToken * tokens_per_s / program::kGpus / peak);
  return text;
}

// Whether step is a multiple of `every` (0: never).
inline bool every(uint64_t step, int64_t every) { return every > 0 && step % (uint64_t)every == 0; }

// Whether any rank was signalled (every rank the same answer).
inline bool stop_requested(State& st) { return train_checkpoint::max_over_ranks(st, g_signal != 0 ? 1 : 0) != 0; }

}  // namespace train

// The mean loss over the first kEvalWindows windows of the evaluation data (a multiple of one batch per
// replica); emits `eval`.
template <typename Forward>
inline double evaluate(State& st, WindowSource& eval, TokenStage& stage, uint64_t step, Forward forward) {
  const uint64_t per_batch = (uint64_t)program::kBatch * program::kDataParallel;
  uint64_t windows = eval.windows < (uint64_t)program::kEvalWindows ? eval.windows : (uint64_t)program::kEvalWindows;
  windows = windows / per_batch * per_batch;
  double sum = 0, targets = 0;
  for (uint64_t first = 0; first < windows; first += per_batch) {
    load_windows(st, eval, stage,
                 token_files::window_position(first, 0, program::kDataParallel, st.layout.dp_rank, program::kBatch, 0),
                 false);
    forward(st);
    head_loss(st);
    sum += step_loss(st) * st.target_total;
    targets += st.target_total;
  }
  const double loss = targets > 0 ? sum / targets : 0.0;
  emit("eval", "\"step\":%llu,\"loss\":%.6f,\"perplexity\":%.6g,\"targets\":%.0f,\"windows\":%llu",
       (unsigned long long)step, loss, std::exp(loss), targets, (unsigned long long)windows);
  say("eval at step %llu: loss %.4f, perplexity %.3f over %.0f targets\n", (unsigned long long)step, loss,
      std::exp(loss), targets);
  return loss;
}

// Runs the training; returns the exit code. `tables`: main.cu's kDecayRows and kGradientBlocks.
template <typename Forward, typename Backward>
inline int train_run(State& st, const OptimizerTables& tables, Forward forward, Backward backward) {
  train::install_stop_handlers();
  const int64_t steps = st.opt.steps;
  const std::string run_dir = st.opt.run_dir.empty() ? "." : st.opt.run_dir;
  Optimizer o = make_optimizer(st, tables, steps);
  report_optimizer(st, o);
  // Windows per optimizer step over every replica; a replica's micro-batch a takes its own B of them.
  const uint64_t per_step = (uint64_t)program::kAccumulate * program::kDataParallel * program::kBatch;
  const std::string data_path = st.opt.data.empty() ? program::kData : st.opt.data;
  const std::string eval_path = st.opt.eval_data.empty() ? program::kEvalData : st.opt.eval_data;
  WindowSource data = open_windows(st, data_path, per_step, "training data");
  WindowSource eval;
  const bool evaluating = !eval_path.empty() && program::kEvalEvery > 0;
  if (evaluating) eval = open_windows(st, eval_path, (uint64_t)program::kBatch * program::kDataParallel, "evaluation data");
  {
    const std::string source = json_string(data.synthetic ? "synthetic" : data.file.path());
    const std::string eval_source = evaluating ? json_string(eval.file.path()) : "null";
    const char* format = data.synthetic ? "synthetic" : token_files::format_name(data.file.format());
    emit("data", "\"source\":%s,\"format\":\"%s\",\"tokens\":%llu,\"windows\":%llu,\"windows_per_step\":%llu,"
         "\"eval\":%s,\"eval_windows\":%llu",
         source.c_str(), format, (unsigned long long)(data.synthetic ? 0 : data.file.count()),
         (unsigned long long)data.windows, (unsigned long long)per_step, eval_source.c_str(),
         (unsigned long long)(evaluating ? eval.windows : 0));
    if (data.synthetic) say("data: synthetic tokens from seed %llu\n", (unsigned long long)st.opt.seed);
    else
      say("data: %s (%s), %llu tokens = %llu windows of %lld; %llu per step\n", data.file.path().c_str(), format,
          (unsigned long long)data.file.count(), (unsigned long long)data.windows, (long long)program::kRealSeqLen,
          (unsigned long long)per_step);
  }
  TokenStage stage = make_token_stage();
  Checkpoints checkpoints;
  if (st.opt.checkpoints) prepare_checkpoints(st, o, checkpoints);
  else if (st.layout.rank == 0) say("checkpoints: off (--no-checkpoints): this run writes none\n");
  uint64_t step = 0, position = 0, tokens_seen = 0;
  if (!st.opt.resume.empty()) {
    const checkpoint::TrainerState resumed = load_checkpoint(st, o, tables, st.opt.resume);
    step = resumed.step;
    position = resumed.data_position;
    tokens_seen = resumed.tokens_seen;
  }
  const double tokens_per_step = program::kTokensPerStep * program::kAccumulate;
  StepEnergy energy = step_energy(st);  // over the steps' own time, as `last` counts it (NVML loads first)
  const auto started = std::chrono::steady_clock::now();
  auto last = started;
  energy.start();
  const uint64_t first_step = step;
  double loss = 0, eval_loss = NAN, step_seconds = 0;
  while (step < (uint64_t)steps) {
    double loss_sum = 0, targets = 0;
    for (int a = 0; a < program::kAccumulate; a++) {
      const uint64_t first =
          token_files::window_position(position, a, program::kDataParallel, st.layout.dp_rank, program::kBatch, 0);
      load_windows(st, data, stage, first, true);
      forward(st);
      backward(st);
      loss_sum += step_loss(st) * st.target_total;
      targets += st.target_total;
      accumulate_gradients(st, o, a, st.target_total);
    }
    loss = targets > 0 ? loss_sum / targets : 0.0;
    const double norm2 = finish_gradients(st, o, targets);
    if (!std::isfinite(loss) || !std::isfinite(norm2)) {
      finish_checkpoint(st, checkpoints, true);  // the last good checkpoint, whole
      train_checkpoint::max_over_ranks(st, 0);  // and committed by rank 0 before any rank exits (save_checkpoint)
      emit("stopped", "\"step\":%llu,\"reason\":\"non-finite\",\"code\":%d", (unsigned long long)step, kExitNonFinite);
      std::fprintf(stderr, "lasp_program: step %llu: the %s is not finite (loss %g, gradient norm %g); stopped before "
                   "updating the weights, %s\n", (unsigned long long)step + 1,
                   std::isfinite(loss) ? "gradient norm" : "loss", loss, std::sqrt(norm2),
                   st.opt.checkpoints ? "the last checkpoint is kept" : "no checkpoint written (--no-checkpoints)");
      return kExitNonFinite;
    }
    const StepScalars k = optimizer_step(st, o, (int64_t)step + 1, norm2);
    CUDA_CHECK(cudaStreamSynchronize(st.ctx.compute));
    step++;
    position += per_step;
    tokens_seen += (uint64_t)tokens_per_step;
    const double ms = train::seconds_since(last) * 1e3;
    step_seconds += ms * 1e-3;
    last = std::chrono::steady_clock::now();
    energy.step_done();
    const double tokens_per_s = tokens_per_step / (ms * 1e-3);
    // The mean power over the steps so far: one step is too short for the counter (energy.cuh), their sum is not.
    char watts_text[32] = "null";
    if (energy.available() && energy.seconds() > 0.5)
      std::snprintf(watts_text, sizeof watts_text, "%.1f", energy.joules() / energy.seconds());
    emit("step", "\"step\":%llu,\"steps\":%lld,\"ms\":%.4f,\"loss\":%.17g,\"grad_norm\":%.6g,\"clip\":%.6g,\"lr\":%.6g,"
         "\"tokens_per_s\":%.1f,\"mfu\":%s,\"tokens_seen\":%llu,\"watts\":%s,\"warmup\":false",
         (unsigned long long)step - 1, (long long)steps, ms, loss, std::sqrt(norm2), k.clip, k.lr, tokens_per_s,
         train::mfu_json(st, tokens_per_s).c_str(), (unsigned long long)tokens_seen, watts_text);
    say("step %llu/%lld  loss %.4f  norm %.3f  lr %.2e  %.1f ms  %.0f tokens/s\n", (unsigned long long)step,
        (long long)steps, loss, std::sqrt(norm2), k.lr, ms, tokens_per_s);
    if (evaluating && (train::every(step, program::kEvalEvery) || step == (uint64_t)steps)) {
      energy.pause();
      eval_loss = evaluate(st, eval, stage, step, forward);
      last = std::chrono::steady_clock::now();  // evaluation is not the next step's time
      energy.start();
    }
    finish_checkpoint(st, checkpoints, false);
    const bool stop = train::stop_requested(st);
    const bool due = train::every(step, program::kCheckpointEvery);
    const bool final = step == (uint64_t)steps || stop;  // waited for: the program exits after it
    if (st.opt.checkpoints && (due || final)) {
      energy.pause();
      save_checkpoint(st, o, trainer_state(st, o, step, position, tokens_seen), run_dir, checkpoints, final);
      last = std::chrono::steady_clock::now();
      energy.start();
    }
    if (stop) {
      emit("stopped", "\"step\":%llu,\"reason\":\"signal\",\"code\":%d,\"checkpoint\":%s", (unsigned long long)step,
           kExitStopped, st.opt.checkpoints ? "true" : "false");
      say("stopped by a signal after step %llu; %s\n", (unsigned long long)step,
          st.opt.checkpoints ? "the checkpoint above resumes it" : "no checkpoint written (--no-checkpoints)");
      return kExitStopped;
    }
  }
  energy.pause();  // the last steps' joules
  const double seconds = train::seconds_since(started);
  const uint64_t done = step - first_step;
  // The rate over the steps' own time: evaluation and checkpoints are reported apart.
  const double rate = step_seconds > 0 ? done * tokens_per_step / step_seconds : 0.0;
  char eval_text[32] = "null";
  if (eval_loss == eval_loss) std::snprintf(eval_text, sizeof eval_text, "%.6f", eval_loss);
  // Device memory in use now is the run's peak: nothing is freed while it trains (the model, the optimizer's
  // state and the workspaces stay); beside it what the program allocated itself (the memory model's figure).
  size_t free_bytes = 0, total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const size_t in_use = total_bytes - free_bytes;
  const size_t program_bytes = in_use > st.baseline_mem_bytes ? in_use - st.baseline_mem_bytes : 0;
  // Rank 0's GPU over the steps' own time (null where NVML is missing: energy.cuh).
  char joules_text[32] = "null", watts_text[32] = "null", energy_say[64] = "";
  if (energy.available() && energy.seconds() > 0) {
    const double joules = energy.joules(), watts = joules / energy.seconds();
    std::snprintf(joules_text, sizeof joules_text, "%.3f", joules);
    std::snprintf(watts_text, sizeof watts_text, "%.1f", watts);
    if (done > 0)
      std::snprintf(energy_say, sizeof energy_say, "; %.0f W, %.2f mJ a token", watts,
                    joules * 1e3 / (done * tokens_per_step / program::kGpus));
  }
  emit("trained", "\"steps\":%llu,\"step\":%llu,\"tokens\":%.0f,\"seconds\":%.3f,\"tokens_per_s\":%.1f,\"mfu\":%s,"
       "\"loss\":%.6f,\"eval_loss\":%s,\"peak_mem_bytes\":%zu,\"program_mem_bytes\":%zu,\"joules\":%s,\"watts\":%s",
       (unsigned long long)done, (unsigned long long)step, done * tokens_per_step, seconds, rate,
       train::mfu_json(st, rate).c_str(), loss, eval_text, in_use, program_bytes, joules_text, watts_text);
  say("trained %llu steps in %.1f s (%.1f s of steps): %.0f tokens/s, last loss %.4f; %.2f GiB in use%s\n",
      (unsigned long long)done, seconds, step_seconds, rate, loss, in_use / 1073741824.0, energy_say);
  return 0;
}

}  // namespace lasp
