// Which parts of the parameter allocation a rank's optimizer updates, and where their state lives: the
// replicated update's one slice (the whole allocation), or ZeRO-1's r-th 1/W of each block of weight gradients
// (optimizer.cuh says why); and the pieces the replicated slice is updated in when the update runs beside the
// next step's forward. Host code only (plain C++17), so the program and the host test
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

// A piece of a slice updated by one kernel, after which the forward may use block `block`'s weights.
struct UpdatePiece {
  size_t param;
  size_t elements;
  int block;
};

// The replicated slice [param, param + elements) cut at every block's first element, one piece per block (the
// piece of the first block in memory also takes what lies before it, the last one what lies after its block:
// alignment padding), in the order the forward first uses the blocks (`order`: block indices). So every element
// is updated exactly once, by the same arithmetic as one kernel over the slice. Empty when a cut is not a multiple
// of 4 elements (the AdamW kernel's 16-byte vectors) or a block lies outside the slice: then one kernel does it all.
inline std::vector<UpdatePiece> update_pieces(const size_t* offsets, const size_t* elements, int count, size_t param,
                                              size_t slice_elements, const int* order, int order_count) {
  std::vector<UpdatePiece> pieces;
  if (order_count != count || count == 0) return pieces;
  const size_t end = param + slice_elements;
  // Block b's piece runs from its first element (the slice's start for the lowest block) to the next block's.
  std::vector<int> by_offset(count);
  for (int b = 0; b < count; b++) {
    if (offsets[b] < param || offsets[b] + elements[b] > end || offsets[b] % 4 != 0) return pieces;
    int at = b;
    while (at > 0 && offsets[by_offset[at - 1]] > offsets[b]) {
      by_offset[at] = by_offset[at - 1];
      at--;
    }
    by_offset[at] = b;
  }
  std::vector<size_t> start(count), stop(count);
  for (int i = 0; i < count; i++) {
    const int b = by_offset[i];
    start[b] = i == 0 ? param : offsets[b];
    stop[b] = i + 1 < count ? offsets[by_offset[i + 1]] : end;
    if (offsets[b] + elements[b] > stop[b]) return {};  // blocks overlap
  }
  std::vector<bool> seen(count, false);
  for (int k = 0; k < order_count; k++) {
    const int b = order[k];
    if (b < 0 || b >= count || seen[b]) return {};
    seen[b] = true;
    pieces.push_back({start[b], stop[b] - start[b], b});
  }
  return pieces;
}

}  // namespace lasp
