// Which parts of the parameter allocation a rank's optimizer updates, and where their state lives: the
// replicated update's one slice (the whole allocation), or ZeRO-1's r-th 1/W of each block of weight gradients
// (optimizer.cuh says why); and how a resume fills a rank's slices from a checkpoint written by another number
// of ranks or the other kind of update. Host code only (plain C++17), so the program and the host test
// (test/optimizer-slices.test.ts) run the same partition.
#pragma once
#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

namespace lasp {

// One slice: `elements` parameters from `param` (weights and gradients), their state from `state` (master, m, v
// arrays), inside the block [block_offset, block_offset + block_elements).
struct OptimizerSpan {
  size_t param;
  size_t state;
  size_t elements;
  size_t block_offset;
  size_t block_elements;
};

// Why the blocks cannot be sharded over `world` ranks, or "": each must split into `world` equal slices of a
// multiple of 4 elements (the AdamW kernel's 16-byte vectors) and start at a multiple of 4.
inline std::string optimizer_shard_problem(const size_t* offsets, const size_t* elements, int count, int world) {
  for (int b = 0; b < count; b++) {
    if (world < 1 || elements[b] % (4 * (size_t)world) != 0 || offsets[b] % 4 != 0)
      return "block " + std::to_string(b) + " (" + std::to_string(elements[b]) + " elements from " +
             std::to_string(offsets[b]) + ") does not split into " + std::to_string(world) +
             " slices of a multiple of 4 elements";
  }
  return "";
}

// Rank `rank` of `world`'s slices. Sharded: the rank's 1/W of every block, their states back to back in block
// order. Replicated: one slice, the whole allocation of `parameter_elements`.
inline std::vector<OptimizerSpan> optimizer_spans(const size_t* offsets, const size_t* elements, int count,
                                                  size_t parameter_elements, bool sharded, int rank, int world) {
  std::vector<OptimizerSpan> spans;
  if (!sharded) {
    spans.push_back({0, 0, parameter_elements, 0, parameter_elements});
    return spans;
  }
  size_t state = 0;
  for (int b = 0; b < count; b++) {
    const size_t slice = elements[b] / (size_t)world;
    spans.push_back({offsets[b] + (size_t)rank * slice, state, slice, offsets[b], elements[b]});
    state += slice;
  }
  return spans;
}

// Where shard `rank` of a checkpoint written by `world` ranks keeps its state, as spans whose `state` is the
// offset in that shard's arrays: ZeRO-1 (sharded), the rank's own spans; replicated, its contiguous 1/W of the
// whole allocation (train_checkpoint.cuh writes the replicated state once over the ranks).
inline std::vector<OptimizerSpan> checkpoint_shard_spans(const size_t* offsets, const size_t* elements, int count,
                                                         size_t parameter_elements, bool sharded, int rank,
                                                         int world) {
  if (sharded) return optimizer_spans(offsets, elements, count, parameter_elements, true, rank, world);
  const size_t first = parameter_elements * (size_t)rank / (size_t)world;
  const size_t last = parameter_elements * (size_t)(rank + 1) / (size_t)world;
  return {{first, 0, last - first, 0, parameter_elements}};
}

// One copy of a resume: `elements` values of each state array (master, m, v) from the checkpoint's shard
// `shard` at `from` to this rank's arrays at `to`.
struct StateCopy {
  int shard;
  size_t from;
  size_t to;
  size_t elements;
};

// The copies that fill `mine` (this run's spans) from a checkpoint's shards (`shards[r]`: shard r's spans, as
// checkpoint_shard_spans gives them), or why they cannot: an element of one of the model's blocks (`offsets`,
// `elements`) in `mine` that no shard holds. Elements outside every block (alignment padding, which a
// ZeRO-1 checkpoint does not keep) are left to the caller's initial state.
inline std::string state_copies(const std::vector<std::vector<OptimizerSpan>>& shards,
                                const std::vector<OptimizerSpan>& mine, const size_t* offsets,
                                const size_t* elements, int count, std::vector<StateCopy>* out) {
  std::vector<StateCopy> copies;
  for (const OptimizerSpan& m : mine) {
    std::vector<std::pair<size_t, size_t>> held;  // [lo, hi) of parameters this span gets
    for (size_t r = 0; r < shards.size(); r++) {
      for (const OptimizerSpan& s : shards[r]) {
        const size_t lo = std::max(m.param, s.param);
        const size_t hi = std::min(m.param + m.elements, s.param + s.elements);
        if (lo >= hi) continue;
        copies.push_back({(int)r, s.state + (lo - s.param), m.state + (lo - m.param), hi - lo});
        held.push_back({lo, hi});
      }
    }
    std::sort(held.begin(), held.end());
    for (int b = 0; b < count; b++) {
      size_t at = std::max(m.param, offsets[b]);
      const size_t end = std::min(m.param + m.elements, offsets[b] + elements[b]);
      for (const auto& h : held)
        if (h.first <= at && h.second > at) at = h.second;
      if (at < end)
        return "parameter " + std::to_string(at) + " (block " + std::to_string(b) + ") is in none of the " +
               std::to_string(shards.size()) + " shards";
    }
  }
  *out = std::move(copies);
  return "";
}

}  // namespace lasp
