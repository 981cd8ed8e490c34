// The decay table of an AdamW shard on the host: the rows of the parameter table cut to a shard, and their
// check. Host code only (plain C++17), so the program's main translation unit and the host tests use it
// without the kernel (adamw.cuh, which includes it, uploads the checked table).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "types.cuh"  // DecayRow

namespace lasp {

// The rows of the global parameter table that fall in the shard [begin, end), cut to it and re-based to its
// first element. A tensor split by a shard boundary keeps its flag in both shards.
inline std::vector<DecayRow> adamw_shard_table(const std::vector<DecayRow>& global, size_t begin, size_t end) {
  std::vector<DecayRow> out;
  for (const DecayRow& row : global) {
    const size_t lo = row.offset > begin ? row.offset : begin;
    const size_t row_end = row.offset + row.elements;
    const size_t hi = row_end < end ? row_end : end;
    if (lo < hi) out.push_back(DecayRow{lo - begin, hi - lo, row.decay});
  }
  return out;
}

// Why the table cannot describe a shard of `elements`, or "" when it can: the rows must start at 0, follow each
// other with no gap or overlap, be non-empty, and end at `elements`.
inline std::string adamw_check_table(const std::vector<DecayRow>& rows, size_t elements) {
  size_t next = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].offset != next)
      return "decay table row " + std::to_string(i) + " starts at " + std::to_string(rows[i].offset) +
             ", expected " + std::to_string(next) + " (rows must be back to back)";
    if (rows[i].elements == 0) return "decay table row " + std::to_string(i) + " is empty";
    next += rows[i].elements;
  }
  if (next != elements)
    return "decay table covers " + std::to_string(next) + " elements, the shard has " + std::to_string(elements);
  return "";
}

}  // namespace lasp
