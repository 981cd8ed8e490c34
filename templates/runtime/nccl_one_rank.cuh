// NCCL's calls for a program of one rank, without NCCL: what a one-GPU program builds against (build.sh and
// CMakeLists.txt define LASP_WITHOUT_NCCL when the spec has one GPU, and lasp calibrate's where NCCL is not
// found; nccl_api.cuh picks this file then).
//
// Design choices:
// - The same names and signatures as NCCL's (the subset the programs call), so no other file knows which it
//   got. With one rank every collective is a copy from the send buffer to the receive buffer on the call's
//   stream (nothing when they are the same buffer, NCCL's in-place case), and a reduction of one operand is
//   that operand: the results NCCL gives one rank, bit for bit.
// - A send to oneself is a copy into the matching receive: sends and receives wait in two queues until the
//   outermost group ends, then pair in order (NCCL matches a peer's sends and receives in order too); a pair
//   on two streams is ordered with events, so each side completes on its own stream as in NCCL.
// - A communicator of more than one rank is refused at creation with a message that says why: such a
//   program needs NCCL. No copy-engine windows (NCCL_CTA_POLICY_ZERO stays undefined, so comm.cuh never asks).
// - The queues and the group depth are per process, not per communicator: one process drives one rank.
#pragma once
#include <cuda_runtime.h>  // streams, copies, events
#include <cstddef>         // size_t
#include <cstdio>          // the refusal's message
#include <vector>          // the queues of sends and receives

typedef enum {
  ncclSuccess = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError = 2,
  ncclInternalError = 3,
  ncclInvalidArgument = 4,
  ncclInvalidUsage = 5,
} ncclResult_t;

typedef enum {
  ncclInt8 = 0,
  ncclUint8 = 1,
  ncclInt32 = 2,
  ncclUint32 = 3,
  ncclInt64 = 4,
  ncclUint64 = 5,
  ncclFloat16 = 6,
  ncclFloat32 = 7,
  ncclFloat64 = 8,
  ncclBfloat16 = 9,
} ncclDataType_t;

typedef enum { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3 } ncclRedOp_t;

typedef struct {
  char internal[128];
} ncclUniqueId;

struct ncclComm {
  int ranks;
};
typedef struct ncclComm* ncclComm_t;

// The fields comm.cuh sets; the rest of NCCL's config means nothing to one rank.
typedef struct {
  int minCTAs;
  int maxCTAs;
  int CTAPolicy;
} ncclConfig_t;
#define NCCL_CONFIG_UNDEF_INT (-2147483647 - 1)
#define NCCL_CONFIG_INITIALIZER {NCCL_CONFIG_UNDEF_INT, NCCL_CONFIG_UNDEF_INT, NCCL_CONFIG_UNDEF_INT}

namespace lasp {
namespace one_rank {

inline size_t type_bytes(ncclDataType_t t) {
  switch (t) {
    case ncclInt8:
    case ncclUint8:
      return 1;
    case ncclFloat16:
    case ncclBfloat16:
      return 2;
    case ncclInt32:
    case ncclUint32:
    case ncclFloat32:
      return 4;
    default:
      return 8;
  }
}

inline ncclResult_t copy_bytes(const void* from, void* to, size_t bytes, cudaStream_t s) {
  if (from == to || bytes == 0) return ncclSuccess;
  return cudaMemcpyAsync(to, from, bytes, cudaMemcpyDeviceToDevice, s) == cudaSuccess ? ncclSuccess
                                                                                      : ncclUnhandledCudaError;
}

inline ncclResult_t copy(const void* from, void* to, size_t count, ncclDataType_t type, cudaStream_t s) {
  return copy_bytes(from, to, count * type_bytes(type), s);
}

// `later` waits for what `first` has queued so far.
inline ncclResult_t order(cudaStream_t first, cudaStream_t later) {
  if (first == later) return ncclSuccess;
  cudaEvent_t e;
  if (cudaEventCreateWithFlags(&e, cudaEventDisableTiming) != cudaSuccess) return ncclUnhandledCudaError;
  const bool ok = cudaEventRecord(e, first) == cudaSuccess && cudaStreamWaitEvent(later, e, 0) == cudaSuccess;
  cudaEventDestroy(e);  // released once the wait is satisfied
  return ok ? ncclSuccess : ncclUnhandledCudaError;
}

struct Transfer {
  void* buffer;
  size_t bytes;
  cudaStream_t stream;
};

struct Queues {
  int depth = 0;  // groups open
  std::vector<Transfer> sends, receives;
};

inline Queues& queues() {
  static Queues q;
  return q;
}

// Pairs the waiting sends and receives in order (at the end of the outermost group, or at once outside one).
inline ncclResult_t pair() {
  Queues& q = queues();
  if (q.depth > 0) return ncclSuccess;
  size_t n = q.sends.size() < q.receives.size() ? q.sends.size() : q.receives.size();
  for (size_t i = 0; i < n; ++i) {
    const Transfer& s = q.sends[i];
    const Transfer& r = q.receives[i];
    if (s.bytes != r.bytes) {
      std::fprintf(stderr, "lasp (one rank, no NCCL): a send of %zu bytes meets a receive of %zu\n", s.bytes, r.bytes);
      return ncclInvalidUsage;
    }
    ncclResult_t res = order(s.stream, r.stream);
    if (res == ncclSuccess) res = copy_bytes(s.buffer, r.buffer, s.bytes, r.stream);
    if (res == ncclSuccess) res = order(r.stream, s.stream);
    if (res != ncclSuccess) return res;
  }
  q.sends.erase(q.sends.begin(), q.sends.begin() + n);
  q.receives.erase(q.receives.begin(), q.receives.begin() + n);
  return ncclSuccess;
}

inline ncclResult_t queue(std::vector<Transfer>& into, void* buffer, size_t count, ncclDataType_t type, int peer,
                          cudaStream_t s) {
  if (peer != 0) {
    std::fprintf(stderr, "lasp (one rank, no NCCL): a send or receive names rank %d of 1\n", peer);
    return ncclInvalidArgument;
  }
  into.push_back(Transfer{buffer, count * type_bytes(type), s});
  return pair();
}

}  // namespace one_rank
}  // namespace lasp

inline const char* ncclGetErrorString(ncclResult_t r) {
  switch (r) {
    case ncclSuccess:
      return "no error";
    case ncclUnhandledCudaError:
      return "unhandled cuda error (the one-rank stand-in's copy)";
    case ncclInvalidArgument:
      return "invalid argument";
    case ncclInvalidUsage:
      return "invalid usage";
    default:
      return "internal error";
  }
}

inline ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  *id = ncclUniqueId{};
  return ncclSuccess;
}

inline ncclResult_t ncclCommInitRank(ncclComm_t* comm, int ranks, ncclUniqueId, int rank) {
  if (ranks != 1 || rank != 0) {
    std::fprintf(stderr,
                 "lasp: this program was built without NCCL (lasp/nccl_one_rank.cuh), so it runs as one rank; it "
                 "was started as rank %d of %d (several GPUs need NCCL at build time)\n",
                 rank, ranks);
    return ncclInvalidUsage;
  }
  *comm = new ncclComm{1};
  return ncclSuccess;
}

inline ncclResult_t ncclCommSplit(ncclComm_t, int, int, ncclComm_t* comm, ncclConfig_t*) {
  *comm = new ncclComm{1};
  return ncclSuccess;
}

inline ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  delete comm;
  const lasp::one_rank::Queues& q = lasp::one_rank::queues();
  if (q.sends.empty() && q.receives.empty()) return ncclSuccess;
  std::fprintf(stderr, "lasp (one rank, no NCCL): %zu sends and %zu receives were never paired\n", q.sends.size(),
               q.receives.size());
  return ncclInvalidUsage;
}

inline ncclResult_t ncclGroupStart() {
  ++lasp::one_rank::queues().depth;
  return ncclSuccess;
}

inline ncclResult_t ncclGroupEnd() {
  lasp::one_rank::Queues& q = lasp::one_rank::queues();
  if (q.depth == 0) {
    std::fprintf(stderr, "lasp (one rank, no NCCL): a group ended that was never started\n");
    return ncclInvalidUsage;
  }
  --q.depth;
  return lasp::one_rank::pair();
}

inline ncclResult_t ncclAllGather(const void* send, void* recv, size_t count, ncclDataType_t type, ncclComm_t,
                                  cudaStream_t s) {
  return lasp::one_rank::copy(send, recv, count, type, s);
}

inline ncclResult_t ncclAllReduce(const void* send, void* recv, size_t count, ncclDataType_t type, ncclRedOp_t,
                                  ncclComm_t, cudaStream_t s) {
  return lasp::one_rank::copy(send, recv, count, type, s);
}

inline ncclResult_t ncclReduceScatter(const void* send, void* recv, size_t count, ncclDataType_t type, ncclRedOp_t,
                                      ncclComm_t, cudaStream_t s) {
  return lasp::one_rank::copy(send, recv, count, type, s);
}

inline ncclResult_t ncclAlltoAll(const void* send, void* recv, size_t count, ncclDataType_t type, ncclComm_t,
                                 cudaStream_t s) {
  return lasp::one_rank::copy(send, recv, count, type, s);
}

inline ncclResult_t ncclSend(const void* buffer, size_t count, ncclDataType_t type, int peer, ncclComm_t,
                             cudaStream_t s) {
  return lasp::one_rank::queue(lasp::one_rank::queues().sends, const_cast<void*>(buffer), count, type, peer, s);
}

inline ncclResult_t ncclRecv(void* buffer, size_t count, ncclDataType_t type, int peer, ncclComm_t, cudaStream_t s) {
  return lasp::one_rank::queue(lasp::one_rank::queues().receives, buffer, count, type, peer, s);
}
