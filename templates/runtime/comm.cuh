// Process layout and NCCL communicators.
//
// One process per GPU. Ranks are numbered data-major: rank = d * W + s, where s is the position in the
// sequence-parallel (SP) group of W consecutive ranks and d the data-parallel replica. Two communicators:
// `sp` (the W ranks that share one sequence: LASP collectives and send/recv) and `world` (every rank:
// the weight-gradient sum of grad_sum.cuh, over both sequence pieces and data replicas).
//
// The NCCL unique id reaches the other ranks by MPI when the program is built with MPI and started by a
// launcher, or else through a file on a shared file system: rank 0 writes it under a temporary name and
// renames it (atomic), the others poll for it.
//
// Collectives that run beside kernels move their data one of two ways:
// - the AllGathers beside computation on `sp_few_ctas` (LASP-2's states; LASP-2H's K and V, which take it
//   only when it copies, the compiler's copyEngineCandidates) and the weight-gradient sum (on `world_copy`,
//   see grad_sum.cuh) can go to the GPUs' copy engines: NCCL 2.28 and later copies an AllGather or AlltoAll
//   with them when the communicator asks for NCCL_CTA_POLICY_ZERO and both buffers are symmetric windows
//   (Windows below), so the collective takes no SM from the kernels beside it. NCCL's kernel, even limited to
//   4 CTAs, could only start once the projection GEMM beside it left SMs free
//   (bench/results/2026-11-26-lasp2-overlap-h100x4.md).
// - otherwise NCCL's own kernels: the small AllGathers on `few_ctas` CTAs, the large ones on `sp`, the
//   gradients in one AllReduce (older NCCL, no symmetric memory between the GPUs, or LASP_COLLECTIVES=kernels).
// - LASP-2H's dK/dV ReduceScatter can go there too, as an AlltoAll and a sum in rank order
//   (reduce_scatter.cuh), but only when asked (scatters_on_copy_engines below).
// LASP_COLLECTIVES=auto (default) takes copy engines where NCCL offers them, =copy_engines stops the program
// (exit 2) where it cannot, =kernels always takes NCCL's kernels (to compare the two).
#pragma once
#include "nccl_api.cuh"  // communicators, windows
#include <cerrno>   // errno of a failed id file
#include <chrono>   // the wait for rank 0's id file
#include <cstdio>   // the id file, messages
#include <cstdlib>  // getenv, exit
#include <cstring>  // strcmp, strerror
#include <string>   // paths
#include <thread>   // sleep while waiting
#include <vector>   // the windows held
#ifdef LASP_WITH_MPI
#include <mpi.h>  // the id broadcast under mpirun
#endif
#include "check.cuh"  // CUDA_CHECK, NCCL_CHECK

namespace lasp {

struct Layout {
  int rank = 0;        // global rank
  int world = 1;       // all ranks
  int device = 0;      // local GPU
  int sp_rank = 0;     // position in the sequence-parallel group
  int sp_size = 1;     // W
  int dp_rank = 0;     // data-parallel replica
  bool from_launcher = false;
};

inline int env_int(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::atoi(value) : fallback;
}

// Rank, world and device from the command line, else from the launcher's environment (PROTOCOL.md).
inline Layout layout_from(int rank, int world, int device, int sp_size) {
  Layout l;
  const char* rank_vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"};
  const char* size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"};
  if (rank < 0) {
    for (int i = 0; i < 3 && rank < 0; i++) {
      if (std::getenv(rank_vars[i]) != nullptr) {
        rank = env_int(rank_vars[i], 0);
        world = env_int(size_vars[i], 1);
        l.from_launcher = true;
      }
    }
  }
  l.rank = rank < 0 ? 0 : rank;
  l.world = world < 1 ? 1 : world;
  int local = env_int("OMPI_COMM_WORLD_LOCAL_RANK", env_int("SLURM_LOCALID", env_int("LOCAL_RANK", -1)));
  // A launcher that gives each task one GPU (srun --gpus-per-task 1) leaves exactly one device visible.
  int visible = 0;
  if (cudaGetDeviceCount(&visible) != cudaSuccess) visible = 0;
  l.device = device >= 0 ? device : visible == 1 ? 0 : (local >= 0 ? local : l.rank);
  l.sp_size = sp_size;
  l.sp_rank = l.rank % sp_size;
  l.dp_rank = l.rank / sp_size;
  return l;
}

// Shares one NCCL id among the ranks of a communicator through a file: the writer (the communicator's first
// rank) creates it, the others wait for it.
inline ncclUniqueId share_id_by_file(const std::string& path, bool writer) {
  ncclUniqueId id;
  if (writer) {
    NCCL_CHECK(ncclGetUniqueId(&id));
    std::string tmp = path + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (f == nullptr || std::fwrite(&id, sizeof(id), 1, f) != 1 || std::fclose(f) != 0) {
      std::fprintf(stderr, "lasp: cannot write the NCCL id to %s: %s\n", tmp.c_str(), std::strerror(errno));
      std::exit(3);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      std::fprintf(stderr, "lasp: cannot rename %s: %s\n", tmp.c_str(), std::strerror(errno));
      std::exit(3);
    }
    return id;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (;;) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (f != nullptr) {
      size_t got = std::fread(&id, sizeof(id), 1, f);
      std::fclose(f);
      if (got == 1) return id;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "lasp: no NCCL id appeared in %s within 120 s (did rank 0 start?)\n", path.c_str());
      std::exit(3);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

enum class CollectivePath { kAuto, kCopyEngines, kKernels };

inline CollectivePath collectives_requested() {
  const char* v = std::getenv("LASP_COLLECTIVES");
  if (v == nullptr || *v == '\0' || std::strcmp(v, "auto") == 0) return CollectivePath::kAuto;
  if (std::strcmp(v, "copy_engines") == 0) return CollectivePath::kCopyEngines;
  if (std::strcmp(v, "kernels") == 0) return CollectivePath::kKernels;
  std::fprintf(stderr, "lasp_program: LASP_COLLECTIVES=%s is not a choice (auto, copy_engines or kernels)\n", v);
  std::exit(2);
}

// Stops the program where LASP_COLLECTIVES=copy_engines cannot be honoured.
inline void copy_engines_unavailable(const char* why) {
  if (collectives_requested() != CollectivePath::kCopyEngines) return;
  std::fprintf(stderr, "lasp_program: LASP_COLLECTIVES=copy_engines, but %s\n", why);
  std::exit(2);
}

struct Comms {
  ncclComm_t sp = nullptr;
  ncclComm_t sp_few_ctas = nullptr;  // the same groups; NCCL runs at most `few_ctas` CTAs per collective
  ncclComm_t world = nullptr;
  ncclComm_t world_copy = nullptr;   // every rank, copy-engine collectives (the gradient sum); or none
  // Whether NCCL copies sp_few_ctas's AllGathers, and world_copy's, with the copy engines: asked for at
  // creation, cleared by Windows when NCCL registers no window.
  bool gathers_on_copy_engines = false;
  bool grads_on_copy_engines = false;
};

// Creates the world communicator from one id, then splits it into the sequence-parallel groups, twice: once
// with NCCL's defaults, once limited to `few_ctas` CTAs for small collectives that run beside kernels.
inline Comms init_comms(const Layout& l, const std::string& id_file, int few_ctas) {
  ncclUniqueId id;
#ifdef LASP_WITH_MPI
  if (l.from_launcher) {
    if (l.rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
  } else {
    id = share_id_by_file(id_file, l.rank == 0);
  }
#else
  if (id_file.empty() && l.world > 1) {
    std::fprintf(stderr, "lasp: %d ranks need --nccl-id-file (or a build with MPI started by mpirun)\n", l.world);
    std::exit(2);
  }
  if (l.world > 1) id = share_id_by_file(id_file, l.rank == 0);
  else NCCL_CHECK(ncclGetUniqueId(&id));
#endif
  Comms c;
  NCCL_CHECK(ncclCommInitRank(&c.world, l.world, id, l.rank));
  NCCL_CHECK(ncclCommSplit(c.world, l.dp_rank, l.sp_rank, &c.sp, nullptr));
  ncclConfig_t few = NCCL_CONFIG_INITIALIZER;
  few.maxCTAs = few_ctas;
  few.minCTAs = 1;
  // One rank has nothing to gather or sum; more ask for copy engines unless told not to.
  const bool copy = collectives_requested() != CollectivePath::kKernels && l.world > 1;
#ifdef NCCL_CTA_POLICY_ZERO
  if (copy && l.sp_size > 1) {
    few.CTAPolicy = NCCL_CTA_POLICY_ZERO;
    c.gathers_on_copy_engines = true;
  }
  if (copy) {
    ncclConfig_t zero = NCCL_CONFIG_INITIALIZER;
    zero.CTAPolicy = NCCL_CTA_POLICY_ZERO;
    NCCL_CHECK(ncclCommSplit(c.world, 0, l.rank, &c.world_copy, &zero));
    c.grads_on_copy_engines = true;
  }
#else
  if (copy) copy_engines_unavailable("this program was built against an NCCL older than 2.28 (no copy-engine collectives)");
#endif
  NCCL_CHECK(ncclCommSplit(c.world, l.dp_rank, l.sp_rank, &c.sp_few_ctas, &few));
  return c;
}

// Whether the ReduceScatters beside kernels that may take the copy engines (LASP-2H's dK, dV: an AlltoAll on
// sp_few_ctas, then a sum in rank order, reduce_scatter.cuh) do: only when asked, LASP_COLLECTIVES=copy_engines,
// until runs on several GPUs have timed the two; `auto` keeps NCCL's ReduceScatter kernel for them.
inline bool scatters_on_copy_engines(const Comms& c) {
  return c.gathers_on_copy_engines && collectives_requested() == CollectivePath::kCopyEngines;
}

// How a collective moves data, as the program reports it.
inline const char* collective_path(bool copy_engines) { return copy_engines ? "copy engines" : "NCCL kernels"; }

inline void destroy_comms(Comms& c) {
  NCCL_CHECK(ncclCommDestroy(c.sp));
  NCCL_CHECK(ncclCommDestroy(c.sp_few_ctas));
  if (c.world_copy != nullptr) NCCL_CHECK(ncclCommDestroy(c.world_copy));
  NCCL_CHECK(ncclCommDestroy(c.world));
}

// Buffers of the collectives that may run on the copy engines: with copy engines, NCCL allocates them
// (ncclMemAlloc: memory its peers can map) and registers each as a symmetric window of its communicator;
// registration is collective, and every rank allocates the same buffers in the same order. Otherwise they
// are plain cudaMalloc memory.
class Windows {
 public:
  Windows() = default;
  explicit Windows(Comms* comms) : comms_(comms) {}

  // A buffer of the AllGathers beside kernels (sp_few_ctas: the state AllGathers, large K/V gathers that go
  // there on copy engines).
  void* gathers(size_t bytes) { return alloc(comms_->sp_few_ctas, &comms_->gathers_on_copy_engines, bytes); }
  // A buffer of the gradient sum (world_copy).
  void* grads(size_t bytes) { return alloc(comms_->world_copy, &comms_->grads_on_copy_engines, bytes); }
  // A buffer of the collectives of `comm` (one that asked for CTA policy zero): a window while *copy_engines,
  // which a registration that NCCL declines clears (lasp calibrate's copy-engine benchmarks).
  void* on(ncclComm_t comm, bool* copy_engines, size_t bytes) { return alloc(comm, copy_engines, bytes); }

  // Deregisters and frees NCCL's buffers; before the communicators are destroyed.
  void release() {
#ifdef NCCL_CTA_POLICY_ZERO
    for (const Held& h : held_) {
      if (h.win != nullptr) NCCL_CHECK(ncclCommWindowDeregister(h.comm, h.win));
      NCCL_CHECK(ncclMemFree(h.ptr));
    }
    held_.clear();
#endif
  }

 private:
  void* alloc(ncclComm_t comm, bool* copy_engines, size_t bytes) {
    void* p = nullptr;
#ifdef NCCL_CTA_POLICY_ZERO
    if (*copy_engines) {
      NCCL_CHECK(ncclMemAlloc(&p, bytes));
      ncclWindow_t win = nullptr;
      NCCL_CHECK(ncclCommWindowRegister(comm, p, bytes, &win, NCCL_WIN_COLL_SYMMETRIC));
      held_.push_back(Held{p, comm, win});
      // NCCL registers nothing where it has no symmetric memory (GPUs without direct P2P, several nodes,
      // cuMem disabled): its collectives then run its kernels, as every rank learns from the same
      // collective registration.
      if (win == nullptr) {
        copy_engines_unavailable("NCCL has no symmetric memory between these GPUs (NCCL_DEBUG=INFO says why)");
        *copy_engines = false;
      }
      return p;
    }
#endif
    (void)comm;
    (void)copy_engines;
    CUDA_CHECK(cudaMalloc(&p, bytes));
    return p;
  }

#ifdef NCCL_CTA_POLICY_ZERO
  struct Held {
    void* ptr;
    ncclComm_t comm;
    ncclWindow_t win;
  };
  std::vector<Held> held_;
#endif
  Comms* comms_ = nullptr;
};

}  // namespace lasp
