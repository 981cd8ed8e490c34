// The GPU's energy counter: NVML's total energy since the driver loaded, in millijoules, for the joules and
// watts train mode reports over its steps.
//
// Design choices:
// - NVML ships with the driver (libnvidia-ml.so.1), not the toolkit, and is loaded at run time: the program
//   links without it, and where it is missing (a container without the driver's libraries) or the board has no
//   counter (before Volta) the run reports no energy rather than failing.
// - The device is named by its PCI bus id (the caller asks CUDA for it): NVML numbers every GPU of the machine,
//   CUDA only the visible ones. The header itself needs no CUDA, so its host tests build with g++ alone.
// - The board updates the counter every few tens of milliseconds, so one short step's joules would be mostly
//   rounding: train mode sums the counter over its steps and reports the run's joules and mean watts, reading it
//   at most once a second between steps.
// - At the board's power limit (700 W on an H100 SXM) a step's time is its energy over those watts: joules a
//   token is then the figure that says what a change to the program saves (bench/results/2026-12-07-energy-h100.md).
#pragma once
#include <dlfcn.h>

#include <chrono>   // how long the counted joules took
#include <cstdint>
#include <cstring>  // memcpy: a symbol's address into a function pointer (a cast between them is not ISO C++)

namespace lasp {

namespace energy {
template <typename F>
F symbol(void* lib, const char* name) {
  void* address = dlsym(lib, name);
  F f = nullptr;
  static_assert(sizeof f == sizeof address, "function and object pointers of one size (POSIX)");
  if (address != nullptr) std::memcpy(&f, &address, sizeof f);
  return f;
}
}  // namespace energy

class EnergyCounter {
 public:
  // bus_id: the GPU's PCI bus id as cudaDeviceGetPCIBusId writes it; library: NVML's (a stand-in in tests).
  explicit EnergyCounter(const char* bus_id, const char* library = "libnvidia-ml.so.1") {
    lib_ = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (lib_ == nullptr) return;
    const auto init = energy::symbol<int (*)()>(lib_, "nvmlInit_v2");
    const auto by_bus = energy::symbol<int (*)(const char*, void**)>(lib_, "nvmlDeviceGetHandleByPciBusId_v2");
    total_ = energy::symbol<Total>(lib_, "nvmlDeviceGetTotalEnergyConsumption");
    unsigned long long mj = 0;
    if (init == nullptr || by_bus == nullptr || total_ == nullptr || init() != 0 || by_bus(bus_id, &device_) != 0 ||
        total_(device_, &mj) != 0)
      device_ = nullptr;
  }
  EnergyCounter(const EnergyCounter&) = delete;
  EnergyCounter& operator=(const EnergyCounter&) = delete;

  bool available() const { return device_ != nullptr; }

  // Millijoules since the driver loaded; 0 where unavailable or where a read fails.
  uint64_t millijoules() const {
    unsigned long long mj = 0;
    if (device_ == nullptr || total_(device_, &mj) != 0) return 0;
    return mj;
  }

 private:
  using Total = int (*)(void*, unsigned long long*);
  void* lib_ = nullptr;  // kept loaded for the process (NVML's handles live in it)
  void* device_ = nullptr;
  Total total_ = nullptr;
};

// Joules over a run's steps and the time they cover. The time between steps that the run leaves out of its
// steps' seconds (evaluation, checkpoints) is left out here too: pause() before it, start() after. Within a stretch
// of steps the counter is read at most every `interval` seconds (step_done), since a read can take milliseconds of
// host time between two steps and the board updates the counter only every few tens of milliseconds; start() and
// pause() always read.
class StepEnergy {
 public:
  explicit StepEnergy(const char* bus_id, double interval = 1.0, const char* library = "libnvidia-ml.so.1")
      : counter_(bus_id, library), interval_(interval) {}
  bool available() const { return counter_.available(); }
  void start() { read(false); }
  void step_done() {
    if (std::chrono::duration<double>(clock::now() - read_at_).count() >= interval_) read(true);
  }
  void pause() { read(true); }
  double joules() const { return millijoules_ * 1e-3; }
  double seconds() const { return seconds_; }  // the time the joules cover

 private:
  using clock = std::chrono::steady_clock;
  // Reads the counter; with `count`, adds what the board spent since the last read (none where a read failed or
  // the counter went back).
  void read(bool count) {
    const uint64_t now = counter_.millijoules();
    const clock::time_point t = clock::now();
    if (count && at_ != 0 && now >= at_) {
      millijoules_ += now - at_;
      seconds_ += std::chrono::duration<double>(t - read_at_).count();
    }
    at_ = now;
    read_at_ = t;
  }
  EnergyCounter counter_;
  double interval_;
  uint64_t at_ = 0;
  clock::time_point read_at_ = clock::now();
  uint64_t millijoules_ = 0;
  double seconds_ = 0;
};

}  // namespace lasp
