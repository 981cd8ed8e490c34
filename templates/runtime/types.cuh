// The plain structs shared by the kernels and the host program.
#pragma once
#include <cuda_bf16.h>  // __nv_bfloat16
#include <cstddef>      // size_t
#include <cstdint>      // int64_t
#include <type_traits>  // std::integral_constant

namespace lasp {

using bf16 = __nv_bfloat16;

// Calls f(std::integral_constant<int, 128>{}) for head_dim 128, f(std::integral_constant<int, 64>{}) otherwise
// (the kernels' check_dims allow only these two): where the attention APIs turn the head dim into a template
// argument.
template <class F>
void with_head_dim(int head_dim, F&& f) {
  if (head_dim == 128) f(std::integral_constant<int, 128>{});
  else f(std::integral_constant<int, 64>{});
}

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

// Packed documents of one step (`documents eos|index`, docs/DOCUMENTS.md). Per batch row b and global position
// t in [0, seq_len), at [b * seq_len + t]:
//   ends   1 if token t is the last of its document (the schedule's input doc_ends), else 0
//   first  the first token of t's document: one past the last end before t, or 0
//   last   the first end at or after t, or seq_len if there is none (the sequence's end closes the last one)
// So key j reaches query i (j <= i) iff j >= first[i], iff last[j] >= i; bidirectionally iff first[i] <= j <=
// last[i] (last clipped to seq_len - 1); a state carried from token t to position p > t survives iff
// last[t] >= p. All three live on the device. ends == nullptr: one document, nothing masked (every kernel then
// runs its path without documents).
// Where a program's documents come from (program::kDocuments): none, the eos token in the data, or the
// sequences of a Megatron index.
enum DocumentKind { kNoDocuments = 0, kEosDocuments = 1, kIndexDocuments = 2 };

struct Documents {
  const int* ends = nullptr;
  const int* first = nullptr;
  const int* last = nullptr;
  int seq_len = 0;
  __host__ __device__ bool any() const { return ends != nullptr; }
};

// Where a rank's rows sit in the global sequence: up to two pieces (zigzag), in local order; count 0 means
// the rows are global positions already.
struct PieceMap {
  int count;
  int local_offset[2];
  int global_start[2];
  int length[2];
};

// Softmax attention of one rank's queries against one block of keys: q [batch][q_rows][heads][head_dim],
// k and v [batch][k_rows][kv_heads][head_dim]; query head h reads kv head h / (heads / kv_heads).
struct SoftmaxDims {
  int batch;
  int q_rows;
  int k_rows;
  int heads;
  int kv_heads;
  int head_dim;
};

// One rank's LASP-2H gathered attention (softmax.gathered): its queries (q_map) against the keys [0, key_rows)
// of the whole sequence in global order (dims.k_rows).
struct GatheredShape {
  SoftmaxDims dims;
  PieceMap q_map;
  int key_rows;
};

// Which slots of a partial-result buffer a log-sum-exp merge combines (one per source rank).
struct SlotList {
  int count;
  int slot[64];
};

// The block norms (norm.cuh): RMSNorm (a weight) or LayerNorm (a weight and a bias).
enum NormKind : int { kRmsNorm = 0, kLayerNorm = 1 };

// The sorted (token, position) pairs of one step, carved from one workspace (embedding.cuh).
struct EmbeddingSort {
  int* positions;   // [tokens] 0..tokens-1, the sort's input values
  int* sorted_ids;  // [tokens]
  int* sorted_pos;  // [tokens]
  void* cub_temp;
  size_t cub_temp_bytes;
  int tokens;
  int vocab;
};

// A block of the parameter allocation: first element and elements (main.cu's kGradientBlocks).
struct ParamBlock {
  size_t offset;
  size_t elements;
};

// The AdamW step's operands (adamw.cuh says how they are used).
// One row of the parameter table: `elements` parameters from `offset` (in elements, from the start of the flat
// buffer, or of the shard once cut), decayed or not.
struct DecayRow {
  size_t offset;
  size_t elements;
  int decay;  // 1: weight decay applies (matrices, embedding, LM head); 0: norm gains, biases
};

// The shard's arrays, each `elements` long, indexed from the shard's first element.
struct AdamwShard {
  bf16* weights;   // the masters' high halves: the bf16 weights the model computes with
  uint16_t* low;   // their low halves (master_weights.cuh)
  float* m;
  float* v;
  const float* grad;
  size_t elements;
};

// The uploaded table of a shard (rows in device memory).
struct AdamwTable {
  const DecayRow* rows;
  int count;
  size_t elements;  // what the rows cover: must equal the shard's elements
};

// The settings of one step, as the caller has them (the spec's betas, adam_eps, weight_decay; the schedule's lr
// of this step; the clip factor from the global norm; the step number from 1).
struct AdamwSettings {
  double lr;
  double beta1;
  double beta2;
  double eps;
  double weight_decay;
  double clip_scale;
  int64_t step;
};

}  // namespace lasp
