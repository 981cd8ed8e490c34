// The fp32 ReduceScatter of a schedule's copy-engine candidates (LASP-2H's dK and dV over the sequence group).
//
// Design choices:
// - On the copy engines (Ctx::scatters_on_copy_engines, comm.cuh): an AlltoAll on the copy-engine communicator
//   lands slice r of every rank's `send` in `slices` (W slices, rank order), then sum_slices adds them in rank
//   order into `recv`. The copies take no SM from the GEMMs beside (dWo, dQ's); the sum reads W slices and
//   writes one; every run gets the same bits. `send` and `slices` are symmetric windows (the compiler names
//   them), and `slices` is free by then (the IR's `slices` of the transfer).
// - Otherwise NCCL's ReduceScatter kernel, which holds its CTAs for the whole transfer and adds in its ring's
//   order.
#pragma once
#include "nccl_api.cuh"  // ncclAlltoAll, ncclReduceScatter
#include <initializer_list>  // the step's transfers

#include "check.cuh"   // NCCL_CHECK
#include "kernels.h"   // sum_slices

namespace lasp {

// One buffer of the ReduceScatter: recv (count fp32) = the sum over the ranks of their `send` slice for this
// rank; `slices` (W x count) is where the copy-engine form lands those slices.
struct ScatterTransfer {
  const float* send;
  float* recv;
  float* slices;
  size_t count;
};

// The transfers of one collective step (dK and dV), each one NCCL group: the AlltoAlls then their sums, or the
// ReduceScatter kernels.
inline void reduce_scatter_sum(std::initializer_list<ScatterTransfer> transfers, int world, bool copy_engines,
                               ncclComm_t copy_comm, ncclComm_t kernel_comm, cudaStream_t s) {
#ifdef NCCL_CTA_POLICY_ZERO
  if (copy_engines) {
    NCCL_CHECK(ncclGroupStart());
    for (const ScatterTransfer& t : transfers)
      NCCL_CHECK(ncclAlltoAll(t.send, t.slices, t.count, ncclFloat32, copy_comm, s));
    NCCL_CHECK(ncclGroupEnd());
    for (const ScatterTransfer& t : transfers) sum_slices(t.slices, world, t.count, t.recv, s);
    return;
  }
#endif
  (void)world;
  (void)copy_engines;
  (void)copy_comm;
  NCCL_CHECK(ncclGroupStart());
  for (const ScatterTransfer& t : transfers)
    NCCL_CHECK(ncclReduceScatter(t.send, t.recv, t.count, ncclFloat32, ncclSum, kernel_comm, s));
  NCCL_CHECK(ncclGroupEnd());
}

}  // namespace lasp
