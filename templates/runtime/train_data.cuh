// Train mode's tokens: each micro-batch's ids and targets on this rank, from a token file (token_files.cuh,
// memory-mapped) or, with `data synthetic`, from the seed; and the held-out windows of `eval_data`.
//
// Design choices:
// - A data position counts the training windows consumed since the run began (a checkpoint stores it). The
//   micro-batch of step s, micro-batch a, on data-parallel replica d holds the windows at positions
//   p0 + (a * D + d) * B + b for its B rows, p0 the position at the start of the step: every replica and every
//   micro-batch its own windows, and the same windows for any number of sequence-parallel ranks.
// - Position p is window order[p mod windows] of epoch p / windows (token_files::window_order: a shuffle from
//   (seed, epoch)); evaluation reads windows 0, 1, 2, ... of its file in order.
// - A rank reads only its pieces of each window (program::kPieceMaps, the compiler's layout: contiguous or
//   zigzag), plus the one token after each piece, into pinned host memory, then copies them to the GPU.
// - Masked-token prediction (an encoder) masks file tokens on the GPU (mask_tokens) with a seed per window
//   position; its ids must then be below vocab - 1, the mask id.
// - Synthetic tokens: synthetic_tokens with a seed made from (seed, position): each step new tokens.
// - A bad file is refused before step 1: format, size, fewer windows than one step needs, a token id outside
//   the vocabulary (the whole file is read once to find it, with its offset: each rank reads 1/W of it, and the
//   rank that finds a bad id stops; `lasp run` then stops the others).
#pragma once
#include <cuda_runtime.h>  // copies, pinned memory
#include <cstdint>         // uint64_t
#include <cstdio>          // messages
#include <cstdlib>         // std::exit
#include <string>
#include <vector>
#include "kernels.h"        // synthetic_tokens, mask_tokens
#include "report.cuh"       // emit, say
#include "state.cuh"        // State, kRows
#include "token_files.cuh"  // TokenFile, windows, their order

namespace lasp {

// One source of windows: a token file, or synthetic tokens (file closed).
struct WindowSource {
  bool synthetic = true;
  token_files::TokenFile file;
  uint64_t windows = 0;                         // windows of kRealSeqLen tokens in the file (the spec's seq_len)
  std::vector<token_files::WindowPiece> pieces;  // this rank's pieces of a window, in local order
  uint64_t epoch = ~0ull;                       // the epoch `order` is of
  std::vector<uint64_t> order;                  // the windows of that epoch, shuffled
};

// The micro-batch's tokens in pinned memory, read on the host before the copy.
struct TokenStage {
  int32_t* ids = nullptr;
  int32_t* targets = nullptr;
};

namespace train_data {

[[noreturn]] inline void fail(const std::string& message) { fail_input(message); }

// The largest id a file may hold: the mask id is vocab - 1 under masked-token prediction.
inline int id_limit() { return program::kMaskedObjective ? program::kVocab - 1 : program::kVocab; }

// The uint64 seed of synthetic tokens or of the mask at data position p.
inline uint64_t position_seed(uint64_t seed, uint64_t p) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + p + 1;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Where the spec's documents end in a file's windows (program::kDocuments).
inline token_files::DocumentEnds document_ends() {
  return program::kDocuments == kEosDocuments     ? token_files::DocumentEnds::Eos
         : program::kDocuments == kIndexDocuments ? token_files::DocumentEnds::Index
                                                  : token_files::DocumentEnds::None;
}

// The file window at data position p (training: shuffled per epoch; evaluation: in order).
inline uint64_t window_at(WindowSource& src, uint64_t p, bool shuffled, uint64_t seed) {
  if (!shuffled) return p % src.windows;
  const uint64_t epoch = p / src.windows;
  if (epoch != src.epoch) {
    src.order = token_files::window_order(src.windows, seed, epoch);
    src.epoch = epoch;
  }
  return src.order[p % src.windows];
}

}  // namespace train_data

// Opens `path` for this rank: checks the file whole (format, sizes, every id against the vocabulary) and that
// it holds `windows_needed` windows. An empty path: synthetic tokens.
inline WindowSource open_windows(const State& st, const std::string& path, uint64_t windows_needed, const char* what) {
  WindowSource src;
  if (path.empty()) return src;
  src.synthetic = false;
  std::string error;
  if (!src.file.open(path, &error)) train_data::fail(error);
  if (!token_files::check_enough(src.file, program::kRealSeqLen, windows_needed, &error)) train_data::fail(error);
  // Each rank reads 1/W of the file: a large file is checked W times faster, and once.
  say("checking the %llu tokens of %s (%s) against the vocabulary of %d\n", (unsigned long long)src.file.count(),
      path.c_str(), what, train_data::id_limit());
  if (!src.file.check_vocab_part(train_data::id_limit(), (uint64_t)st.layout.rank, (uint64_t)st.layout.world, &error)) {
    if (program::kMaskedObjective) error += " (masked-token prediction keeps id vocab - 1 for the mask)";
    train_data::fail(error);
  }
  if (program::kDocuments == kIndexDocuments && src.file.format() != token_files::Format::Megatron)
    train_data::fail("`documents index` reads where documents end from a Megatron dataset's index, and " + path +
                     " is an llm.c file: use `documents eos` with the token that ends its documents");
  src.windows = token_files::window_count(src.file.count(), program::kRealSeqLen);
  const PieceMap& map = program::kPieceMaps[st.layout.sp_rank];
  for (int i = 0; i < map.count; i++) src.pieces.push_back({map.global_start[i], map.length[i]});
  if (map.count == 0) src.pieces.push_back({0, program::kSeqLen});
  return src;
}

inline TokenStage make_token_stage() {
  TokenStage stage;
  CUDA_CHECK(cudaMallocHost(&stage.ids, kRows * sizeof(int32_t)));
  CUDA_CHECK(cudaMallocHost(&stage.targets, kRows * sizeof(int32_t)));
  return stage;
}

// st.ids and st.targets for the kBatch windows from data position `first` (rows b: position first + b), then
// the embedding's sort and the target count over every rank (prepare_tokens).
inline void load_windows(State& st, WindowSource& src, TokenStage& stage, uint64_t first, bool shuffled) {
  cudaStream_t s = st.ctx.compute;
  const PieceMap& map = program::kPieceMaps[st.layout.sp_rank];
  const uint64_t seed = st.opt.seed;
  if (src.synthetic) {
    synthetic_tokens(st.ids, st.targets, program::kBatch, (int)program::kLocalTokens, map, program::kSeqLen,
                     program::kVocab, train_data::position_seed(seed, first), program::kMaskedObjective,
                     program::kMaskRate, s);
    if (program::kRealSeqLen < program::kSeqLen)
      drop_padding_targets(st.targets, program::kBatch, (int)program::kLocalTokens, map, program::kRealSeqLen, s);
    if (program::kStepDocuments)
      st.ctx.docs = draw_documents(st.documents, program::kDocumentLength, (int)program::kRealSeqLen, seed, first, s);
  } else {
    // The previous copy out of the stage must be done before it is written again.
    CUDA_CHECK(cudaStreamSynchronize(s));
    std::string error;
    for (int b = 0; b < program::kBatch; b++) {
      const uint64_t window = train_data::window_at(src, first + (uint64_t)b, shuffled, seed);
      const size_t at = (size_t)b * program::kLocalTokens;
      // A window is kRealSeqLen file tokens; a padded seq_len's tail is padding (no targets).
      const uint64_t start = window * (uint64_t)program::kRealSeqLen;
      if (!token_files::read_window(src.file, start, src.pieces, train_data::id_limit(), stage.ids + at,
                                    stage.targets + at, &error, program::kRealSeqLen))
        train_data::fail(error);
      // Every rank needs the whole window's documents (its queries reach into other ranks' pieces).
      if (program::kStepDocuments)
        token_files::window_ends(src.file, start, program::kRealSeqLen, program::kSeqLen, train_data::document_ends(),
                                 program::kEosToken, st.documents.ends.data() + (size_t)b * program::kSeqLen);
    }
    if (program::kStepDocuments) st.ctx.docs = upload_documents(st.documents, s);
    CUDA_CHECK(cudaMemcpyAsync(st.ids, stage.ids, kRows * sizeof(int32_t), cudaMemcpyHostToDevice, s));
    CUDA_CHECK(cudaMemcpyAsync(st.targets, stage.targets, kRows * sizeof(int32_t), cudaMemcpyHostToDevice, s));
    if (program::kMaskedObjective) {
      mask_tokens(st.ids, st.targets, program::kBatch, (int)program::kLocalTokens, map, program::kSeqLen,
                  program::kVocab, train_data::position_seed(seed, first), program::kMaskRate, s);
      if (program::kRealSeqLen < program::kSeqLen)
        drop_padding_targets(st.targets, program::kBatch, (int)program::kLocalTokens, map, program::kRealSeqLen, s);
    }
  }
  prepare_tokens(st);
}

}  // namespace lasp
