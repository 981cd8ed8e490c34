// The step's packed documents on the device (types.cuh's Documents): where documents end, drawn from the seed
// (synthetic data), found in the step's windows (train_data.cuh: `documents eos` or `index`), with every
// token's range (documents.cuh), copied to the device once per step.
#pragma once
#include <cuda_runtime.h>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "check.cuh"
#include "documents.cuh"
#include "types.cuh"

namespace lasp {

// The device copies of one step's documents and their host staging.
struct DocumentBuffers {
  int batch = 0, seq_len = 0;
  std::vector<int> ends, first, last;  // host, [batch][seq_len]
  int* device = nullptr;               // ends, first, last back to back
};

inline void alloc_documents(DocumentBuffers& d, int batch, int seq_len) {
  d.batch = batch;
  d.seq_len = seq_len;
  const size_t n = (size_t)batch * seq_len;
  d.ends.assign(n, 0);
  d.first.assign(n, 0);
  d.last.assign(n, 0);
  CUDA_CHECK(cudaMalloc(&d.device, 3 * n * sizeof(int)));
}

inline void free_documents(DocumentBuffers& d) {
  if (d.device != nullptr) CUDA_CHECK(cudaFree(d.device));
  d.device = nullptr;
}

// Computes the ranges of d.ends (filled by the caller) and copies all three to the device on `s`. The host
// arrays are pageable: a copy from them has read them when cudaMemcpyAsync returns, so the next step may
// write them at once.
inline Documents upload_documents(DocumentBuffers& d, cudaStream_t s) {
  const size_t n = (size_t)d.batch * d.seq_len;
  document_ranges(d.ends.data(), d.batch, d.seq_len, d.first.data(), d.last.data());
  CUDA_CHECK(cudaMemcpyAsync(d.device, d.ends.data(), n * sizeof(int), cudaMemcpyHostToDevice, s));
  CUDA_CHECK(cudaMemcpyAsync(d.device + n, d.first.data(), n * sizeof(int), cudaMemcpyHostToDevice, s));
  CUDA_CHECK(cudaMemcpyAsync(d.device + 2 * n, d.last.data(), n * sizeof(int), cudaMemcpyHostToDevice, s));
  Documents view;
  view.ends = d.device;
  view.first = d.device + n;
  view.last = d.device + 2 * n;
  view.seq_len = d.seq_len;
  return view;
}

// Documents of random lengths (mean `mean`; 0: none) for the rows at data positions first, first + 1, ...:
// row b drawn from seed + first + b, so the first row of position 0 has the documents `lasp inspect` and `lasp
// verify` draw for the spec's seed; the tokens from `real` on are the padding's document. Uploads them
// (upload_documents) and returns their device view.
inline Documents draw_documents(DocumentBuffers& d, int mean, int real, uint64_t seed, uint64_t first,
                                cudaStream_t s) {
  for (int b = 0; b < d.batch; b++)
    draw_document_ends(d.seq_len, real, mean, (uint32_t)(seed + first + (uint64_t)b),
                       d.ends.data() + (size_t)b * d.seq_len);
  return upload_documents(d, s);
}

}  // namespace lasp
