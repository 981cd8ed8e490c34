// Every kernel a CUDA program runs, with its start and end as it ran (CUPTI's activity records): Nsight
// Systems' kernel trace, which the GPU machines lack. ncu (profile-step.sh) times each kernel alone, at the
// clocks of an idle GPU; this traces the kernels in the program's own stream of work, so a GEMM's time here is
// what it costs in the step (bench/gpu/experiments/gemm-clocks.sh compares lasp's and PyTorch's this way).
//
// A CUDA injection library: the driver loads it into any program and calls InitializeInjection.
//   g++ -std=c++17 -O2 -shared -fPIC -I$CUDA/include bench/gpu/kernel_trace.cpp -L$CUDA/lib64 -lcupti
//       -o kernel_trace.so
//   CUDA_INJECTION64_PATH=$PWD/kernel_trace.so KERNEL_TRACE_OUT=kernels.csv PROGRAM ...
// Output: KERNEL_TRACE_OUT (default kernel_trace.csv), one line per kernel in start order after a header:
// `start_ns,end_ns,stream,"demangled name"`, written at exit. profile_table.py --trace reads it.
#include <cupti.h>

#include <cxxabi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace {

struct Kernel {
  unsigned long long start, end;
  unsigned stream;
  std::string name;
};

std::mutex g_lock;
std::vector<Kernel> g_kernels;

std::string demangle(const char* name) {
  int status = 0;
  char* plain = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = status == 0 && plain != nullptr ? plain : name;
  std::free(plain);
  return out;
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *size = 16u << 20;
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, *size));
  *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  CUpti_Activity* record = nullptr;
  std::vector<Kernel> got;
  while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
    if (record->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL && record->kind != CUPTI_ACTIVITY_KIND_KERNEL) continue;
    const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
    got.push_back(Kernel{k->start, k->end, k->streamId, demangle(k->name)});
  }
  std::free(buffer);
  std::lock_guard<std::mutex> hold(g_lock);
  g_kernels.insert(g_kernels.end(), got.begin(), got.end());
}

void write_trace() {
  cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  const char* path = std::getenv("KERNEL_TRACE_OUT");
  FILE* f = std::fopen(path != nullptr && *path != '\0' ? path : "kernel_trace.csv", "w");
  if (f == nullptr) {
    std::perror("kernel_trace: cannot write the trace");
    return;
  }
  std::lock_guard<std::mutex> hold(g_lock);
  std::sort(g_kernels.begin(), g_kernels.end(), [](const Kernel& a, const Kernel& b) { return a.start < b.start; });
  std::fprintf(f, "start_ns,end_ns,stream,kernel\n");
  for (const Kernel& k : g_kernels) {
    std::string name = k.name;
    for (char& c : name)
      if (c == '"') c = '\'';
    std::fprintf(f, "%llu,%llu,%u,\"%s\"\n", k.start, k.end, k.stream, name.c_str());
  }
  std::fclose(f);
  std::fprintf(stderr, "kernel_trace: %zu kernels\n", g_kernels.size());
}

}  // namespace

extern "C" int InitializeInjection(void) {
  if (cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed) != CUPTI_SUCCESS ||
      cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS) {
    std::fprintf(stderr, "kernel_trace: CUPTI refused the kernel activity; no trace\n");
    return 0;
  }
  std::atexit(write_trace);
  return 1;
}
