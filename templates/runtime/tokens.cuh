// The tokens of a step and what each is trained to predict, from `data synthetic`: random ids from the seed.
//
// Design choices:
// - As every input (model.cuh), an id is a function of (seed, batch, GLOBAL position) only: each rank makes
//   its own pieces' ids, and the target of its last token of a piece, the first token of the next piece
//   (held by another rank), is the same hash at the next position: no token moves between ranks.
// - Next-token prediction: targets[t] = the id at the next position; the last position of the sequence has
//   none (-1).
// - Masked-token prediction (an encoder): a mask_rate share of the positions (a hash of the position below
//   the rate) has its id replaced by the mask id, vocab - 1, and is the only one with a target, the original
//   id; ids are drawn from [0, vocab - 1) so the mask id means only "masked".
#pragma once
#include <cuda_runtime.h>  // cudaStream_t
#include <cstdint>         // uint64_t, int64_t
#include "check.cuh"       // LAUNCH_CHECK
#include "model.cuh"       // splitmix64, global_row, fill_blocks
#include "types.cuh"       // PieceMap

namespace lasp {

namespace tokens {

__device__ inline uint64_t hashed(uint64_t seed, uint64_t salt, uint64_t index) {
  return splitmix64(seed * 0x100000001B3ull ^ splitmix64(salt * 0x9E37ull + index));
}

__global__ void synthetic_kernel(int* ids, int* targets, int batch, int rows, PieceMap map, int64_t seq_len,
                                 int vocab, uint64_t seed, int masked, float mask_rate) {
  const size_t n = (size_t)batch * rows;
  const int draw = masked ? vocab - 1 : vocab;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const size_t b = i / rows;
    const int64_t g = global_row(map, (int)(i % rows));
    const uint64_t at = (uint64_t)b * seq_len + g;
    const int id = (int)(hashed(seed, 21, at) % (uint64_t)draw);
    if (masked) {
      const float u = (hashed(seed, 22, at) >> 40) * (1.0f / 16777216.0f);
      ids[i] = u < mask_rate ? vocab - 1 : id;
      targets[i] = u < mask_rate ? id : -1;
    } else {
      ids[i] = id;
      targets[i] = g + 1 < seq_len ? (int)(hashed(seed, 21, at + 1) % (uint64_t)draw) : -1;
    }
  }
}

// Masks a mask_rate share of file tokens (train mode): the hash of (seed, the window's position in the
// sequence) decides, as synthetic_kernel's does; ids must be below vocab - 1 (the reader checks).
__global__ void mask_kernel(int* ids, int* targets, int batch, int rows, PieceMap map, int64_t seq_len,
                            uint64_t seed, int mask_id, float mask_rate) {
  const size_t n = (size_t)batch * rows;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const uint64_t at = (uint64_t)(i / rows) * seq_len + global_row(map, (int)(i % rows));
    const float u = (hashed(seed, 22, at) >> 40) * (1.0f / 16777216.0f);
    targets[i] = u < mask_rate ? ids[i] : -1;
    if (u < mask_rate) ids[i] = mask_id;
  }
}

// A padded seq_len: the positions from `real` on are padding, which nothing is trained to predict.
__global__ void padding_kernel(int* targets, int batch, int rows, PieceMap map, int64_t real) {
  const size_t n = (size_t)batch * rows;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    if (global_row(map, (int)(i % rows)) >= real) targets[i] = -1;
}

}  // namespace tokens

// ids and targets [batch][rows] of the rank's rows (map: where they sit in the sequence of seq_len tokens).
void synthetic_tokens(int* ids, int* targets, int batch, int rows, const PieceMap& map, int64_t seq_len, int vocab,
                      uint64_t seed, bool masked, float mask_rate, cudaStream_t s) {
  const size_t n = (size_t)batch * rows;
  if (n == 0) return;
  tokens::synthetic_kernel<<<fill_blocks(n), 256, 0, s>>>(ids, targets, batch, rows, map, seq_len, vocab, seed, masked,
                                                  mask_rate);
  LAUNCH_CHECK();
}

// Masked-token prediction on ids read from a file: a mask_rate share of the positions gets the mask id
// (vocab - 1) and, as its target, the id it had; every other position has no target (-1). `seed` differs per
// window, so each window masks other positions.
void mask_tokens(int* ids, int* targets, int batch, int rows, const PieceMap& map, int64_t seq_len, int vocab,
                 uint64_t seed, float mask_rate, cudaStream_t s) {
  const size_t n = (size_t)batch * rows;
  if (n == 0) return;
  tokens::mask_kernel<<<fill_blocks(n), 256, 0, s>>>(ids, targets, batch, rows, map, seq_len, seed, vocab - 1,
                                                     mask_rate);
  LAUNCH_CHECK();
}

// A padded seq_len (spec/padding.ts): no target at the padding's positions (global position >= real), so no
// loss counts them; the last real token keeps its target.
void drop_padding_targets(int* targets, int batch, int rows, const PieceMap& map, int64_t real, cudaStream_t s) {
  const size_t n = (size_t)batch * rows;
  if (n == 0) return;
  tokens::padding_kernel<<<fill_blocks(n), 256, 0, s>>>(targets, batch, rows, map, real);
  LAUNCH_CHECK();
}

}  // namespace lasp
