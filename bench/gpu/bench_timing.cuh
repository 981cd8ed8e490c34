// Timing for the kernel harnesses of bench/gpu: the median of `runs` calls after 2 warm-ups, each call
// between two CUDA events on the default stream (bench/gpu/README.md: medians after warm-up, never means).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "../../templates/runtime/check.cuh"

template <typename F>
static float time_ms(F f, int runs) {
  for (int i = 0; i < 2; ++i) f();
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<float> t;
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < runs; ++i) {
    CUDA_CHECK(cudaEventRecord(a));
    f();
    CUDA_CHECK(cudaEventRecord(b));
    CUDA_CHECK(cudaEventSynchronize(b));
    float ms;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  CUDA_CHECK(cudaEventDestroy(a));
  CUDA_CHECK(cudaEventDestroy(b));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}
