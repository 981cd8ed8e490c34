// A layer kind's buffers, allocated from its table (program.cuh): each buffer's name, the field of the kind's
// buffer struct it fills, its element count, and where it lives.
//
// Design choices:
// - Three homes, as the schedule uses them: buffers the backward pass reads (activations kept from forward)
//   are per layer, in one allocation per layer; scratch is shared by the layers of a kind, in one allocation
//   that the kind's first layer makes; buffers of the collectives that may take the copy engines are NCCL
//   windows (comm.cuh), one each, per layer or shared likewise. Every rank allocates the same windows in the
//   same order (the table's), as NCCL's collective registration needs.
// - The compiler computes every offset (src/codegen/model-tables.ts): bytes from the start of the buffer's
//   block, 256-byte aligned as cudaMalloc's would be; this header only points the fields into the blocks.
// - A field is named by a pointer to member of its element type, so a table row cannot point a float field
//   at bf16 memory.
#pragma once
#include <cuda_runtime.h>  // cudaMalloc
#include <cstddef>         // size_t
#include "check.cuh"       // CUDA_CHECK
#include "comm.cuh"        // Windows
#include "types.cuh"       // bf16

namespace lasp {

enum class BufferHome {
  kLayer,         // in the layer's own block
  kShared,        // in the kind's shared scratch block
  kLayerWindow,   // its own window, per layer
  kSharedWindow,  // its own window, shared by the kind's layers
};

template <typename Buffers>
struct BufferSpec {
  using Bf16Field = bf16* Buffers::*;
  using FloatField = float* Buffers::*;
  const char* name;
  Bf16Field bf16_field;    // the field it fills, by element type: one of the two, the other nullptr
  FloatField float_field;
  size_t elements;
  size_t offset;  // bytes from the start of its block (kLayer, kShared); 0 for windows
  BufferHome home;
};

// Points every field of `b` by the table: a block for the layer's own buffers, the shared block (allocated
// when `shared` is null, else taken from it) and the windows.
template <typename Buffers, size_t N>
inline void allocate_buffers(Buffers& b, const Buffers* shared, Windows& windows, const BufferSpec<Buffers> (&specs)[N],
                             size_t layer_bytes, size_t shared_bytes) {
  char* layer = nullptr;
  char* scratch = nullptr;
  if (layer_bytes > 0) CUDA_CHECK(cudaMalloc(&layer, layer_bytes));
  if (shared == nullptr && shared_bytes > 0) CUDA_CHECK(cudaMalloc(&scratch, shared_bytes));
  for (const BufferSpec<Buffers>& s : specs) {
    const bool from_shared = shared != nullptr && (s.home == BufferHome::kShared || s.home == BufferHome::kSharedWindow);
    if (from_shared) {
      if (s.bf16_field != nullptr) b.*s.bf16_field = shared->*s.bf16_field;
      else b.*s.float_field = shared->*s.float_field;
      continue;
    }
    const size_t bytes = s.elements * (s.bf16_field != nullptr ? sizeof(bf16) : sizeof(float));
    void* p = nullptr;
    switch (s.home) {
      case BufferHome::kLayer: p = layer + s.offset; break;
      case BufferHome::kShared: p = scratch + s.offset; break;
      case BufferHome::kLayerWindow:
      case BufferHome::kSharedWindow: p = windows.gathers(bytes); break;
    }
    if (s.bf16_field != nullptr) b.*s.bf16_field = static_cast<bf16*>(p);
    else b.*s.float_field = static_cast<float*>(p);
  }
}

}  // namespace lasp
