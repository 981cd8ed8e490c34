// Tensors that share one allocation, laid out as llm.c's malloc_and_point_parameters lays out its
// parameters: a table of tensor specs (name, shape, element count, offset) that the compiler computed,
// one allocation of the table's size, and a pointer into it for each row.
//
// Design choices:
// - The compiler makes every number (src/codegen/model-tables.ts): offsets are in elements, and tensors used
//   on their own start 256-byte aligned, as cudaMalloc's would. Nothing here computes a size.
// - One allocation per table: the weights, their gradients (the same table, one communication window) and
//   the activations each take one; the names and shapes say what each row is, for people and for a writer
//   of weights.
#pragma once
#include <cstddef>  // size_t
#include <cstdint>  // int64_t

namespace lasp {

struct TensorSpec {
  const char* name;
  const char* shape;  // as stored, row-major, e.g. "[2048][512]"
  size_t elements;
  size_t offset;      // elements from the start of the table's allocation
  float init_std;     // weights: initial values normal with this standard deviation, or
  float init_value;   // this value everywhere when init_std is 0 (activations: unused)
  int64_t dims[2];    // weights: the shape as numbers (rank 1 or 2), what a safetensors file records
  int rank;
};

// A table's tensors in their allocation.
template <typename T>
struct TensorSet {
  T* base = nullptr;
  const TensorSpec* specs = nullptr;

  // Row `row` of the table; nullptr for -1 (a layer without that tensor).
  T* operator[](int row) const { return row < 0 ? nullptr : base + specs[row].offset; }
  size_t elements(int row) const { return specs[row].elements; }
};

// Points a table's rows into `memory`, an allocation of the table's size.
template <typename T>
inline TensorSet<T> point_tensors(void* memory, const TensorSpec* specs) {
  return TensorSet<T>{static_cast<T*>(memory), specs};
}

}  // namespace lasp
