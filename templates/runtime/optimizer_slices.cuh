// Which parts of the parameter allocation a rank's optimizer updates, and where their state lives: the
// replicated update's one slice (the whole allocation), or ZeRO-1's r-th 1/W of each block of weight gradients
// (optimizer.cuh says why). Host code only (plain C++17), so the program and the host test
// (test/optimizer-slices.test.ts) run the same partition.
#pragma once
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

}  // namespace lasp
