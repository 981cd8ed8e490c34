// The plain structs shared by the kernels and the host program.
#pragma once
#include <cuda_bf16.h>

namespace lasp {

using bf16 = __nv_bfloat16;

// One rank's activations: bf16 [batch][tokens][heads][head_dim], row-major.
struct LinearDims {
  int batch;
  int tokens;
  int heads;
  int head_dim;
};

// Rows [offset, offset + length) of a rank's tokens: one piece of the global sequence.
struct Piece {
  int offset;
  int length;
};

// Where a rank's rows sit in the global sequence: up to two pieces (zigzag), in local order; count 0 means
// the rows are global positions already.
struct PieceMap {
  int count;
  int local_offset[2];
  int global_start[2];
  int length[2];
};

}  // namespace lasp
