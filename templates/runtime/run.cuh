// How a pass of a layer kind's schedule (program.cuh) is issued: which streams' steps to run, and the layer's
// own work that the schedule's `host` steps stand for.
//
// Design choices:
// - A pass issues its compute-stream steps and its communication-stream steps under two flags, so bench can
//   time the computation alone, the communication alone, or both overlapped, with the same code.
// - A hosted kind's schedule places the layer's Q projection (forward), dWo (backward) and, where dQ is ready
//   before the collective (LASP-2H's dK/dV ReduceScatter), dQ's own GEMMs beside the collective they overlap;
//   the pass calls back into the layer (layer.cuh) for them through HostFn, with the SMs to leave to that
//   collective. Without a HostFn (the per-kind timings), the caller has done that work before the pass.
#pragma once
#include <functional>  // std::function

namespace lasp {

// The layer's own work that a `host` step stands for (a projection placed where a collective can overlap it).
enum class HostWork { kQProjection, kOWeightGrad, kQGrads };

// Runs one HostWork on the compute stream, leaving the given number of SMs free for a collective beside it.
using HostFn = std::function<void(HostWork, int leave_sms)>;

// Which streams' steps to issue: both normally; one of them to time compute or communication alone.
struct Run {
  bool compute = true;
  bool comm = true;
  const HostFn* host = nullptr;
};

// `leave_sms`: SMs the work leaves to the collective the schedule places beside it (none when the
// communication stream is not issued, so the computation alone is timed as it would run by itself).
inline void run_host(const Run& run, HostWork work, int leave_sms) {
  if (run.host != nullptr) (*run.host)(work, run.comm ? leave_sms : 0);
}

}  // namespace lasp
