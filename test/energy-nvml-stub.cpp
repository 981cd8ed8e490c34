// A stand-in for NVML's three entry points that templates/runtime/energy.cuh loads, built as a shared library by
// test/energy.test.ts. The one GPU it knows is on bus 00000000:1B:00.0; its counter starts at 5,000,000 mJ and
// each read advances it by LASP_STUB_STEP_MJ (default 1500; negative: the counter runs backwards, as a
// wrapped or reset counter would). LASP_STUB_FAIL=init|handle|energy makes that call fail.
#include <cstdlib>
#include <cstring>

namespace {
long long counter = 5000000;
int device_token = 0;
bool fails(const char* what) {
  const char* f = std::getenv("LASP_STUB_FAIL");
  return f != nullptr && std::strcmp(f, what) == 0;
}
}  // namespace

extern "C" {
int nvmlInit_v2() { return fails("init") ? 1 : 0; }
int nvmlDeviceGetHandleByPciBusId_v2(const char* bus, void** device) {
  if (fails("handle") || std::strcmp(bus, "00000000:1B:00.0") != 0) return 6;  // NVML_ERROR_NOT_FOUND
  *device = &device_token;
  return 0;
}
int nvmlDeviceGetTotalEnergyConsumption(void* device, unsigned long long* mj) {
  if (fails("energy") || device != &device_token) return 3;  // NVML_ERROR_NOT_SUPPORTED
  const char* step = std::getenv("LASP_STUB_STEP_MJ");
  counter += step != nullptr ? std::atoll(step) : 1500;
  *mj = (unsigned long long)counter;
  return 0;
}
}
