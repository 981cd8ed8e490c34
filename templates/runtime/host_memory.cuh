// Whether this host can hold the ranks' copies of a checkpoint: train mode writes a checkpoint from a copy in
// host memory while training goes on (train_checkpoint.cuh), which needs the copy's bytes of free memory for
// every rank on the host; where it cannot, checkpoints are written in place (training waits for each).
//
// Design choices:
// - The host's free memory is /proc/meminfo's MemAvailable (what can be allocated without swapping, page cache
//   included); every rank reads it before any rank allocates (the caller agrees on the answer afterwards).
// - The ranks on this host: the launcher's count (Open MPI's OMPI_COMM_WORLD_LOCAL_SIZE, torchrun's
//   LOCAL_WORLD_SIZE, Slurm's SLURM_NTASKS_PER_NODE, e.g. "4" or "4(x2)"), else every rank up to the GPUs this
//   process sees (lasp run starts all ranks on one host). Rank 0 holds the most (the weights too), so the
//   estimate counts it as one of them: the host's total is rank 0's copy and the others' for the rest.
// - The copies may take at most 80% of what is free: the data files' page cache and the launcher need some.
// - LASP_CHECKPOINT_COPY=host|none|auto (default auto) sets it by hand: `host` always copies (and fails if the
//   host cannot hold the copy), `none` always writes in place.
// - Host code only (no CUDA): tested with g++ (test/host-memory.test.ts).
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace lasp {
namespace host_memory {

enum class CopyChoice { kAuto, kHost, kNone, kInvalid };

inline CopyChoice copy_choice(const char* value) {
  if (value == nullptr || *value == '\0' || std::strcmp(value, "auto") == 0) return CopyChoice::kAuto;
  if (std::strcmp(value, "host") == 0) return CopyChoice::kHost;
  if (std::strcmp(value, "none") == 0) return CopyChoice::kNone;
  return CopyChoice::kInvalid;
}

/** The sentence for a LASP_CHECKPOINT_COPY value copy_choice does not know. */
inline std::string copy_choice_error(const char* value) {
  return std::string("LASP_CHECKPOINT_COPY is `") + value +
         "`: it must be auto (the default: a copy in host memory where the host holds it), host or none "
         "(checkpoints written in place, training waiting for each)";
}

/** MemAvailable in bytes from /proc/meminfo's text; 0 when it has none. */
inline uint64_t available_from_meminfo(const std::string& text) {
  const std::string key = "MemAvailable:";
  const size_t at = text.find(key);
  if (at == std::string::npos) return 0;
  const unsigned long long kb = std::strtoull(text.c_str() + at + key.size(), nullptr, 10);
  return (uint64_t)kb * 1024;
}

/** This host's MemAvailable in bytes; 0 where /proc/meminfo cannot be read (not Linux). */
inline uint64_t available_bytes(const char* path = "/proc/meminfo") {
  std::FILE* f = std::fopen(path, "rb");
  if (f == nullptr) return 0;
  std::string text;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) text.append(buffer, n);
  std::fclose(f);
  return available_from_meminfo(text);
}

/** The ranks on this host from the launcher's variables (null: unset), else min(world, visible GPUs). */
inline int ranks_here(const char* ompi_local_size, const char* local_world_size, const char* slurm_tasks_per_node,
                      int world, int visible_gpus) {
  const char* given[] = {ompi_local_size, local_world_size, slurm_tasks_per_node};
  for (const char* v : given) {
    if (v == nullptr) continue;
    const long n = std::strtol(v, nullptr, 10);  // Slurm's "4(x2)": 4 tasks on each of 2 nodes
    if (n >= 1) return (int)(n < world ? n : world);
  }
  const int gpus = visible_gpus >= 1 ? visible_gpus : 1;
  return world < gpus ? world : gpus;
}

/** Bytes the copies of `ranks` ranks on one host take: rank 0's and ranks - 1 others'. */
inline uint64_t host_bytes(uint64_t rank0_bytes, uint64_t other_bytes, int ranks) {
  return rank0_bytes + (uint64_t)(ranks > 1 ? ranks - 1 : 0) * other_bytes;
}

/** Whether `needed` bytes fit in 80% of `available` (0: unknown, taken as fitting: the allocation then says). */
inline bool fits(uint64_t needed, uint64_t available) {
  return available == 0 || needed <= available / 5 * 4;
}

}  // namespace host_memory
}  // namespace lasp
