// LASP-2H's gathered attention (softmax_gathered.cuh): a rank's query pieces, and the cuDNN calls they make.
// Host logic alone, so that a host test checks it (test/gathered-calls.test.ts).
//
// Two pieces that meet (a zigzag rank in the middle of the order holds pieces W - 1 and W, one after the other)
// are one causal call: their queries against the keys up to the second's end, bottom-right aligned, are the
// same pairs as the two calls' (the first piece's queries see no key past their own positions either way),
// in one larger call, whose backward splits into one rectangle and one square instead of two of each.
#pragma once
#include "types.cuh"  // PieceMap, SoftmaxDims

namespace lasp {
namespace gathered {

// The rank's query pieces as runs of local rows at global positions, empty ones dropped.
struct Pieces {
  int count = 0;
  int local[2] = {0, 0};
  int global[2] = {0, 0};
  int length[2] = {0, 0};
};

inline Pieces pieces_of(const PieceMap& m, int q_rows) {
  Pieces p;
  if (m.count == 0) {  // the rows are the positions
    if (q_rows > 0) p.count = 1, p.length[0] = q_rows;
    return p;
  }
  for (int j = 0; j < m.count && j < 2; ++j)
    if (m.length[j] > 0) {
      p.local[p.count] = m.local_offset[j];
      p.global[p.count] = m.global_start[j];
      p.length[p.count] = m.length[j];
      ++p.count;
    }
  return p;
}

// One cuDNN call: local query rows [row0, row0 + rows) against keys [0, keys).
struct Call {
  int row0, rows, keys;
};

// The calls of a layer (0 when there are no query rows): when causal, one per run of pieces that meet in both
// the local rows and the global positions; else one for all rows.
inline int cudnn_calls(const SoftmaxDims& d, const PieceMap& m, int key_rows, bool causal, Call (&c)[2]) {
  if (d.q_rows == 0) return 0;
  if (!causal) {
    c[0] = Call{0, d.q_rows, key_rows};
    return 1;
  }
  const Pieces p = pieces_of(m, d.q_rows);
  int n = 0;
  for (int j = 0; j < p.count; ++j) {
    const Call piece{p.local[j], p.length[j], p.global[j] + p.length[j]};
    const bool meets = n > 0 && c[n - 1].row0 + c[n - 1].rows == piece.row0 && c[n - 1].keys == p.global[j];
    if (meets) c[n - 1] = Call{c[n - 1].row0, c[n - 1].rows + piece.rows, piece.keys};
    else c[n++] = piece;
  }
  return n;
}

}  // namespace gathered
}  // namespace lasp
