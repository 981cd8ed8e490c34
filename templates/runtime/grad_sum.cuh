// The sum of the weight gradients over every rank (sequence pieces and data replicas), issued on its own
// stream while the backward pass goes on.
//
// Design choices:
// - On the copy engines (Comms::grads_on_copy_engines, comm.cuh): an AlltoAll hands rank r the r-th slice of
//   every rank's gradient, one small kernel adds the W slices into r's own slice of dw, and an in-place
//   AllGather copies every rank's summed slice back to all. The copies take no SMs; the kernel reads W slices
//   and writes one (for 64 MiB of gradients on 4 GPUs, about 80 MB of traffic, some 30 us). NCCL's AllReduce
//   kernel instead holds its CTAs for the whole transfer, and the GEMMs of the backward beside it lose them
//   (bench/results/2026-11-26-copy-engine-collectives-h100x4.md).
// - Gradients are fp32 (the optimizer's master weights are): the slices are added in rank order, so every rank
//   gets the same bits on any run; NCCL's AllReduce adds in its ring's order.
// - Otherwise (no copy engines, or gradients the ranks cannot split evenly) one ncclAllReduce.
// - `scratch` (W slices) is shared by every layer: NCCL's copy-engine collectives start and end with a barrier
//   of all ranks, so a rank's AlltoAll writes into a peer's scratch only once that peer has reached the same
//   AlltoAll on its own stream, after its sum of the layer before.
#pragma once
#include "nccl_api.cuh"  // AlltoAll, AllGather, AllReduce
#include <cmath>   // fabs, fmax (the verify check)
#include <vector>  // host copies (the verify check)

#include "check.cuh"  // NCCL_CHECK, CUDA_CHECK
#include "comm.cuh"   // Comms
#include "kernels.h"  // sum_slices, fill_normal

namespace lasp {

// Whether sum_gradients() of `elements` values takes the copy engines.
inline bool gradients_on_copy_engines(const Comms& c, size_t elements, int world) {
  return c.grads_on_copy_engines && elements % world == 0;
}

// dw (fp32, `elements`, a window of Comms::world_copy when on copy engines) = its sum over all `world` ranks.
// gather false (ZeRO-1's optimizer updates only this rank's slice): on the copy engines, only slice `rank` of dw
// is summed (the AllGather is left out: the updated weights are gathered instead); the AllReduce sums it all.
inline void sum_gradients(float* dw, size_t elements, float* scratch, const Comms& c, int rank, int world,
                          cudaStream_t s, bool gather = true) {
#ifdef NCCL_CTA_POLICY_ZERO
  if (gradients_on_copy_engines(c, elements, world)) {
    const size_t slice = elements / world;
    NCCL_CHECK(ncclAlltoAll(dw, scratch, slice, ncclFloat32, c.world_copy, s));
    sum_slices(scratch, world, slice, dw + (size_t)rank * slice, s);
    if (gather) NCCL_CHECK(ncclAllGather(dw + (size_t)rank * slice, dw, slice, ncclFloat32, c.world_copy, s));
    return;
  }
#endif
  (void)gather;
  (void)scratch;
  (void)rank;
  NCCL_CHECK(ncclAllReduce(dw, dw, elements, ncclFloat32, ncclSum, c.world, s));
}

// verify: sums `elements` rank-dependent values (rank r's drawn with salt 5000 + r) through dw with
// sum_gradients(), and measures them against the same sum formed on this rank from every rank's values by
// sum_slices (fp32 in rank order: what the copy-engine path computes). Returns max |got - want| / max |want|;
// 0 on the copy engines, an fp32 rounding or two with NCCL's AllReduce.
inline float gradient_sum_error(float* dw, size_t elements, float* scratch, const Comms& c, int rank, int world,
                                uint64_t seed, cudaStream_t s) {
  float *every = nullptr, *want = nullptr;
  CUDA_CHECK(cudaMalloc(&every, (size_t)world * elements * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&want, elements * sizeof(float)));
  const PieceMap whole{0, {0, 0}, {0, 0}, {0, 0}};
  for (int r = 0; r < world; r++)
    fill_normal(every + (size_t)r * elements, 1, (int)elements, 1, whole, (int)elements, seed, 5000 + r, 1.0f, s);
  CUDA_CHECK(cudaMemcpyAsync(dw, every + (size_t)rank * elements, elements * sizeof(float), cudaMemcpyDeviceToDevice, s));
  sum_gradients(dw, elements, scratch, c, rank, world, s);
  sum_slices(every, world, elements, want, s);
  std::vector<float> got_host(elements), want_host(elements);
  CUDA_CHECK(cudaMemcpyAsync(got_host.data(), dw, elements * sizeof(float), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaMemcpyAsync(want_host.data(), want, elements * sizeof(float), cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  CUDA_CHECK(cudaFree(every));
  CUDA_CHECK(cudaFree(want));
  float worst = 0.0f, largest = 0.0f;
  for (size_t i = 0; i < elements; i++) {
    const float g = got_host[i], w = want_host[i];
    worst = std::fmax(worst, std::fabs(g - w));
    largest = std::fmax(largest, std::fabs(w));
    if (g != g) return g;  // NaN
  }
  return largest > 0.0f ? worst / largest : worst;
}

}  // namespace lasp
