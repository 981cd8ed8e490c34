// Energy for the kernel harnesses of bench/gpu: joules a call of an op spends, from the board's energy counter
// (templates/runtime/energy.cuh: NVML's total energy, loaded at run time), read around a stretch of calls back
// to back.
//
// Why: Linear-Llama3-1B's step runs at the H100's 700 W limit, where a step's time is its energy over the
// limit's watts, so the joules an op spends (not its time alone) say what it costs the step
// (bench/results/2026-12-06-update-overlap-h100.md, 2026-12-07-energy-h100.md). The counter needs stretches of
// a second or more: the board updates it every few tens of milliseconds.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "../../templates/runtime/check.cuh"
#include "../../templates/runtime/energy.cuh"

// The counter of CUDA device 0 (by its PCI bus id, as the program finds its own).
class EnergyMeter {
 public:
  EnergyMeter() : counter_(bus_id()) {}
  bool available() const { return counter_.available(); }
  unsigned long long millijoules() const { return counter_.millijoules(); }

 private:
  static const char* bus_id() {
    static char bus[32] = "";
    if (cudaDeviceGetPCIBusId(bus, sizeof bus, 0) != cudaSuccess) bus[0] = '\0';
    return bus;
  }
  lasp::EnergyCounter counter_;
};

struct OpEnergy {
  double joules = 0;  // per call
  double watts = 0;   // the board's mean power over the stretch
  double ms = 0;      // wall time per call over the stretch (back to back: the rate under the power limit)
  long calls = 0;
};

// Calls f back to back for `seconds` after a quarter second of the same (the clocks settle at the power limit),
// synchronising every few calls to watch the time; the counter is read at both ends of the stretch.
template <typename F>
static OpEnergy energy_per_call(const EnergyMeter& meter, F f, double seconds) {
  using clock = std::chrono::steady_clock;
  const auto run_for = [&](double s) {
    long calls = 0;
    const auto start = clock::now();
    int batch = 1;
    while (std::chrono::duration<double>(clock::now() - start).count() < s) {
      for (int i = 0; i < batch; ++i) f();
      CUDA_CHECK(cudaDeviceSynchronize());
      calls += batch;
      const double per = std::chrono::duration<double>(clock::now() - start).count() / calls;
      batch = per > 0 ? (int)std::max(1.0, std::min(1000.0, 0.02 / per)) : 1000;  // about 20 ms a batch
    }
    return calls;
  };
  OpEnergy e;
  if (!meter.available()) return e;
  run_for(0.25);
  const unsigned long long mj0 = meter.millijoules();
  const auto t0 = clock::now();
  e.calls = run_for(seconds);
  const double wall = std::chrono::duration<double>(clock::now() - t0).count();
  const unsigned long long mj1 = meter.millijoules();
  const double joules = (double)(mj1 - mj0) * 1e-3;
  e.joules = joules / e.calls;
  e.watts = joules / wall;
  e.ms = wall * 1e3 / e.calls;
  return e;
}
