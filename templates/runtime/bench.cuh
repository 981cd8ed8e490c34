// bench mode: timed training steps, where each step's time goes, and for each layer kind how much of its
// communication the schedule hides behind computation; then the summary (tokens/s, TFLOP/s, memory).
//
// Design choices:
// - Times are CUDA events on the compute stream, the median over steps or repetitions: the host issues
//   ahead, so wall-clock time on the host would measure the launch queue.
// - A layer kind's attention is timed with overlap, with its computation alone, with its communication
//   alone and serialised on one stream; the communication that overlap hides is what it does not add to
//   the computation: hidden = 1 - (overlapped - compute only) / communication only. A hosted kind's passes
//   run the projections their collectives overlap (host steps): they are timed with them, and the
//   projections' own time is taken out, so the figures are the attention's as for any kind.
// - The timeline (`trace` events) records an event before and after every step of a pass; the step ids are
//   the IR's (`lasp inspect --json` says which stream each is on).
// - Nothing is freed while the program runs (workspaces only grow, the kernels' stream-ordered pool keeps
//   what it takes), so the memory in use at the end is the peak. program_mem_bytes is what the program
//   allocated itself: what `lasp inspect`'s memory model predicts (its "allocated by the program" total).
#pragma once
#include <cuda_runtime.h>  // events
#include <algorithm>       // std::sort, std::min, std::max
#include <cmath>           // NAN
#include <cstdio>          // snprintf
#include <vector>          // timings
#include "blas.cuh"        // matmul (the GEMM ceiling)
#include "layer.cuh"       // host_work
#include "report.cuh"      // emit, say
#include "run.cuh"         // Run, HostFn
#include "state.cuh"       // State, LayerKind, KindPasses, peak_bf16_flops

namespace lasp {

inline float median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0f : v[v.size() / 2];
}

// Times `issue` on the compute stream (after joining the communication stream), median of `reps`.
template <typename F>
inline float time_ms(State& st, int reps, F issue) {
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  std::vector<float> times;
  for (int r = 0; r < reps; r++) {
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaEventRecord(a, st.ctx.compute));
    fence_streams(st);
    issue();
    join_streams(st);
    CUDA_CHECK(cudaEventRecord(b, st.ctx.compute));
    CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    times.push_back(ms);
  }
  CUDA_CHECK(cudaEventDestroy(a));
  CUDA_CHECK(cudaEventDestroy(b));
  return median(times);
}

// One pass of a layer kind with a timing event before and after every step: when the step's stream reached
// it with its dependencies met, and when it was done, in ms from the pass's start; `run` picks both streams
// or the computation alone. Steps merged into another step's NCCL group, or missing on this rank, have no
// events of their own and are left out.
template <typename F>
inline void trace_pass(State& st, const char* kind, const char* pass, int steps, Run run, F issue) {
  std::vector<cudaEvent_t> events(2 * steps);
  for (auto& e : events) CUDA_CHECK(cudaEventCreate(&e));
  cudaEvent_t base;
  CUDA_CHECK(cudaEventCreate(&base));
  program::Ctx traced = st.ctx;
  traced.trace = events.data();
  CUDA_CHECK(cudaDeviceSynchronize());
  CUDA_CHECK(cudaEventRecord(base, st.ctx.compute));
  fence_streams(st);
  issue(traced, run);
  join_streams(st);
  CUDA_CHECK(cudaDeviceSynchronize());
  for (int i = 0; i < steps; i++) {
    float start = 0, end = 0;
    if (cudaEventElapsedTime(&start, base, events[2 * i]) != cudaSuccess ||
        cudaEventElapsedTime(&end, base, events[2 * i + 1]) != cudaSuccess) {
      (void)cudaGetLastError();  // never recorded: not a step of its own on this rank
      continue;
    }
    emit("trace", "\"kind\":\"%s\",\"pass\":\"%s\",\"streams\":\"%s\",\"step\":%d,\"start_ms\":%.4f,\"end_ms\":%.4f", kind, pass,
         run.comm ? "both" : "compute", i, start, end);
  }
  for (auto& e : events) CUDA_CHECK(cudaEventDestroy(e));
  CUDA_CHECK(cudaEventDestroy(base));
}

// The timed steps: their median time, and this rank's GPU's joules a step and mean watts over them (NAN where the
// energy counter is missing: energy.cuh).
struct TimedSteps {
  float median_ms = 0;
  double joules = NAN;
  double watts = NAN;
};

// The training steps, warm-up first: emits `step` events and the step's phases (forward, backward, and the
// wait for the weight-gradient sums still running after it).
template <typename Forward, typename Backward>
inline TimedSteps time_steps(State& st, Forward forward_step, Backward backward_step) {
  std::vector<float> steps;
  StepEnergy energy = step_energy(st);
  cudaEvent_t marks[4];  // on the compute stream: before forward, after it, after the last layer's backward, end
  for (auto& e : marks) CUDA_CHECK(cudaEventCreate(&e));
  std::vector<float> forward_ms, backward_ms, grad_wait_ms;
  for (int s = 0; s < st.opt.warmup + st.opt.steps; s++) {
    bool warm = s < st.opt.warmup;
    if (s == st.opt.warmup) {  // the timed steps begin
      CUDA_CHECK(cudaDeviceSynchronize());
      energy.start();
    }
    float ms = time_ms(st, 1, [&] {
      CUDA_CHECK(cudaEventRecord(marks[0], st.ctx.compute));
      forward_step(st);
      CUDA_CHECK(cudaEventRecord(marks[1], st.ctx.compute));
      backward_step(st, marks[2]);
      CUDA_CHECK(cudaEventRecord(marks[3], st.ctx.compute));
    });
    if (!warm) {
      steps.push_back(ms);
      float part[3];
      for (int p = 0; p < 3; p++) CUDA_CHECK(cudaEventElapsedTime(&part[p], marks[p], marks[p + 1]));
      forward_ms.push_back(part[0]);
      backward_ms.push_back(part[1]);
      grad_wait_ms.push_back(part[2]);
    }
    const double loss = step_loss(st);
    // This step's rate over every rank, and the model FLOPs utilisation of one GPU (null: GPU not in the table).
    const double tokens_per_s = program::kTokensPerStep / (ms * 1e-3);
    const double peak = peak_bf16_flops(st.device.name);
    char mfu[32] = "null";
    if (peak > 0) std::snprintf(mfu, sizeof mfu, "%.4f", program::kModelFlopsPerToken * tokens_per_s / program::kGpus / peak);
    emit("step", "\"step\":%d,\"ms\":%.4f,\"loss\":%.6f,\"tokens_per_s\":%.1f,\"mfu\":%s,\"warmup\":%s", s, ms, loss,
         tokens_per_s, mfu, warm ? "true" : "false");
    say("step %d/%d  %.3f ms  loss %.4f%s\n", s + 1, st.opt.warmup + st.opt.steps, ms, loss, warm ? "  (warm-up)" : "");
  }
  TimedSteps timed;
  timed.median_ms = median(steps);
  CUDA_CHECK(cudaDeviceSynchronize());
  energy.pause();
  if (energy.available() && !steps.empty() && energy.seconds() > 0) {
    timed.joules = energy.joules() / steps.size();
    timed.watts = energy.joules() / energy.seconds();
  }
  for (auto& e : marks) CUDA_CHECK(cudaEventDestroy(e));
  emit("phase", "\"name\":\"step.forward\",\"ms\":%.4f", median(forward_ms));
  emit("phase", "\"name\":\"step.backward\",\"ms\":%.4f", median(backward_ms));
  emit("phase", "\"name\":\"step.gradient_wait\",\"ms\":%.4f", median(grad_wait_ms));
  say("step: forward %.3f ms, backward %.3f ms, then %.3f ms waiting for the weight-gradient sums\n",
      median(forward_ms), median(backward_ms), median(grad_wait_ms));
  return timed;
}

// One more step with an event where each part starts (layer.cuh's part() calls): the step's time by part,
// summed over the layers; emits `phase` events `part.<name>`. The attention core includes the communication its
// schedule does not hide; gradient_wait is the weight-gradient sums' time left after the last layer.
template <typename Forward, typename Backward>
inline void profile_parts(State& st, Forward forward_step, Backward backward_step) {
  cudaEvent_t start, end;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&end));
  CUDA_CHECK(cudaDeviceSynchronize());
  st.parts.on = true;
  CUDA_CHECK(cudaEventRecord(start, st.ctx.compute));
  forward_step(st);
  backward_step(st, nullptr);
  CUDA_CHECK(cudaEventRecord(end, st.ctx.compute));
  st.parts.on = false;
  CUDA_CHECK(cudaEventSynchronize(end));
  double ms[(int)Part::kCount] = {};
  const auto& marks = st.parts.marks;
  for (size_t i = 0; i < marks.size(); i++) {
    float t = 0;
    CUDA_CHECK(cudaEventElapsedTime(&t, marks[i].second, i + 1 < marks.size() ? marks[i + 1].second : end));
    ms[(int)marks[i].first] += t;
  }
  float total = 0;
  CUDA_CHECK(cudaEventElapsedTime(&total, start, end));
  for (auto& m : st.parts.marks) CUDA_CHECK(cudaEventDestroy(m.second));
  st.parts.marks.clear();
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(end));
  say("one step by part (%.3f ms):", total);
  for (int p = 0; p < (int)Part::kCount; p++) {
    emit("phase", "\"name\":\"part.%s\",\"ms\":%.4f", part_name((Part)p), ms[p]);
    say("  %s %.3f ms (%.1f%%)", part_name((Part)p), ms[p], total > 0 ? 100.0 * ms[p] / total : 0.0);
  }
  say("\n");
}

// The GEMM ceiling of this GPU at the model's largest product shape (the MLP's gate|up: rows x 2 ffn x hidden,
// bf16 in, fp32 accumulation, as the step's GEMMs): TFLOP/s, the median of 20 after 5 warm-up runs. Writes layer
// 0's gate|up activation (bench is done with it).
inline double gemm_ceiling_tflops(State& st) {
  const LayerDesc& l0 = st.model.layers[0];
  const int m = (int)kRows, n = 2 * program::kFfn, k = program::kHidden;
  auto gemm = [&] { matmul(st.blas, false, true, m, n, k, st.normed, st.params[l0.w.w_gate], st.acts[l0.a.gate_up]); };
  for (int i = 0; i < 5; i++) gemm();
  const float ms = time_ms(st, 20, gemm);
  return ms > 0 ? 2.0 * m * n * k / (ms * 1e-3) / 1e12 : 0.0;
}

// Communication over the stack and the part of it hidden, weighted by each kind's layers.
struct HiddenComm {
  double hidden_ms = 0;
  double comm_ms = 0;
};

// A layer kind's attention, on its first layer's buffers: phases, timeline, and its share of HiddenComm.
template <typename Buffers>
inline void time_kind(State& st, const LayerKind& kind, const KindPasses<Buffers>& passes, HiddenComm& total) {
  Buffers& b = passes.sets[0];
  const auto host = host_work(st, kind.first_layer, kind, b);
  const HostFn* hooks = kind.hosted ? &host : nullptr;
  const float q_proj = kind.hosted ? time_ms(st, 10, [&] { host(HostWork::kQProjection, 0); }) : 0.0f;
  const float q_grads = kind.hosts_q_grads ? time_ms(st, 10, [&] { host(HostWork::kQGrads, 0); }) : 0.0f;
  const float projections =
      kind.hosted ? q_proj + q_grads + time_ms(st, 10, [&] { host(HostWork::kOWeightGrad, 0); }) : 0.0f;
  program::Ctx serial = st.ctx;
  serial.comm = st.ctx.compute;
  auto both = [&](const program::Ctx& c, Run run) { passes.forward(c, b, run); passes.backward(c, b, run); };
  float overlapped = time_ms(st, 10, [&] { both(st.ctx, Run{true, true, hooks}); }) - projections;
  float serialised = time_ms(st, 10, [&] { both(serial, Run{true, true, hooks}); }) - projections;
  float comm_only = time_ms(st, 10, [&] { both(st.ctx, Run{false, true, hooks}); });
  float compute_only = time_ms(st, 10, [&] { both(st.ctx, Run{true, false, hooks}); }) - projections;
  float fwd = time_ms(st, 10, [&] { passes.forward(st.ctx, b, Run{true, true, hooks}); }) - q_proj;
  float hidden = comm_only > 0 ? std::min(1.0f, std::max(0.0f, 1.0f - (overlapped - compute_only) / comm_only)) : 1.0f;
  total.hidden_ms += hidden * comm_only * kind.layers;
  total.comm_ms += comm_only * kind.layers;
  emit("phase", "\"name\":\"%s.forward\",\"ms\":%.4f", kind.name, fwd);
  emit("phase", "\"name\":\"%s.backward\",\"ms\":%.4f", kind.name, overlapped - fwd);
  emit("phase", "\"name\":\"%s.comm\",\"ms\":%.4f,\"serial_ms\":%.4f,\"compute_only_ms\":%.4f,\"overlapped_ms\":%.4f,\"hidden\":%.3f", kind.name, comm_only, serialised, compute_only, overlapped, hidden);
  // Both streams, then the computation alone: the same steps' durations with and without communication beside them.
  for (Run run : {Run{true, true, hooks}, Run{true, false, hooks}})
    trace_pass(st, kind.name, "forward", passes.forward_events, run, [&](const program::Ctx& c, Run r) { passes.forward(c, b, r); });
  for (Run run : {Run{true, true, hooks}, Run{true, false, hooks}})
    trace_pass(st, kind.name, "backward", passes.backward_events, run, [&](const program::Ctx& c, Run r) { passes.backward(c, b, r); });
  say("layer kind %s (%s): attention fwd+bwd %.3f ms overlapped, %.3f ms computation alone, %.3f ms serialised, communication %.3f ms, %.0f%% hidden\n",
      kind.name, kind.strategy, overlapped, compute_only, serialised, comm_only, 100.0f * hidden);
}

// The `summary` event and line: the median step, throughput, MFU, hidden communication, memory and energy.
inline void summarize(State& st, const TimedSteps& timed, const HiddenComm& comm, double gemm_tflops) {
  const float step_ms = timed.median_ms;
  size_t free_bytes = 0, total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const size_t in_use = total_bytes - free_bytes;
  const size_t program_bytes = in_use > st.baseline_mem_bytes ? in_use - st.baseline_mem_bytes : 0;
  const double tokens = program::kTokensPerStep;
  const double tflops = program::kFlopsPerStep / (step_ms * 1e-3) / 1e12;
  const double hidden = comm.comm_ms > 0 ? comm.hidden_ms / comm.comm_ms : 1.0;
  // MFU: the model's training FLOPs per token (as the literature counts them) at this rate, per GPU.
  const double tokens_per_s = tokens / (step_ms * 1e-3);
  const double peak = peak_bf16_flops(st.device.name);
  const double mfu = peak > 0 ? program::kModelFlopsPerToken * tokens_per_s / program::kGpus / peak : 0;
  char mfu_json[32] = "null", mfu_text[48] = "unknown (the GPU is not in the table)";
  if (peak > 0) {
    std::snprintf(mfu_json, sizeof mfu_json, "%.4f", mfu);
    std::snprintf(mfu_text, sizeof mfu_text, "%.1f%%", 100 * mfu);
  }
  // This rank's GPU over the timed steps (null without the energy counter).
  char joules_json[32] = "null", watts_json[32] = "null", energy_text[64] = "";
  if (timed.joules == timed.joules) {
    std::snprintf(joules_json, sizeof joules_json, "%.3f", timed.joules);
    std::snprintf(watts_json, sizeof watts_json, "%.1f", timed.watts);
    std::snprintf(energy_text, sizeof energy_text, ", %.1f J a step at %.0f W", timed.joules, timed.watts);
  }
  emit("summary", "\"median_ms\":%.4f,\"tokens_per_s\":%.1f,\"tflops\":%.2f,\"mfu\":%s,\"gemm_tflops\":%.1f,\"loss\":%.6f,\"hidden_comm_fraction\":%.3f,\"peak_mem_bytes\":%zu,\"program_mem_bytes\":%zu,\"baseline_mem_bytes\":%zu,\"joules_per_step\":%s,\"watts\":%s",
       step_ms, tokens_per_s, tflops, mfu_json, gemm_tflops, step_loss(st), hidden, in_use, program_bytes, st.baseline_mem_bytes,
       joules_json, watts_json);
  say("median step %.3f ms, %.0f tokens/s, %.1f TFLOP/s per GPU (GEMM ceiling %.0f), MFU %s, %.0f%% of communication hidden, %.2f GiB in use%s\n",
      step_ms, tokens_per_s, tflops, gemm_tflops, mfu_text, 100 * hidden, in_use / 1073741824.0, energy_text);
}

}  // namespace lasp
