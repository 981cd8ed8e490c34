// Packed documents on the host (types.cuh's Documents, docs/DOCUMENTS.md): where documents end, drawn from the
// seed for synthetic data, and every token's document range from the ends.
//
// Design choices:
// - The ranges (first, last) are computed on the host from the ends: a linear pass over batch x seq_len ints,
//   small beside a step, and it keeps the kernels to plain comparisons of positions.
// - The synthetic draw is src/schedule/documents.ts's drawBoundaries with the same mulberry32, so the program
//   runs the boundaries that `lasp inspect` and `lasp verify` describe for a seed.
// - Host code only (no CUDA): step_documents.cuh puts them on the device; test/documents-harness.cpp tests it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace lasp {

// first[t] and last[t] of every token (types.cuh) from ends, for `batch` rows of `seq_len` tokens.
inline void document_ranges(const int* ends, int batch, int seq_len, int* first, int* last) {
  for (int b = 0; b < batch; b++) {
    const size_t row = (size_t)b * seq_len;
    int start = 0;
    for (int t = 0; t < seq_len; t++) {
      first[row + t] = start;
      if (ends[row + t] != 0) start = t + 1;
    }
    int next = seq_len;
    for (int t = seq_len - 1; t >= 0; t--) {
      if (ends[row + t] != 0) next = t;
      last[row + t] = next;
    }
  }
}

// mulberry32 (src/reference/tensor.ts): uniform numbers in [0, 1) from a 32-bit seed.
class Mulberry32 {
 public:
  explicit Mulberry32(uint32_t seed) : a_(seed) {}
  double next() {
    a_ += 0x6d2b79f5u;
    uint32_t t = a_;
    t = (t ^ (t >> 15)) * (t | 1u);
    t ^= t + (t ^ (t >> 7)) * (t | 61u);
    return (double)(t ^ (t >> 14)) / 4294967296.0;
  }

 private:
  uint32_t a_;
};

// Documents of random lengths, uniform in [1, 2 mean - 1], packed into `seq_len` tokens from `seed`: sets
// ends[t] = 1 at the last token of each but the final one (drawBoundaries in src/schedule/documents.ts);
// mean 0 draws none. `real` < seq_len: the tokens from `real` on are padding, one more document after an end
// at real - 1.
inline void draw_document_ends(int seq_len, int real, int mean, uint32_t seed, int* ends) {
  for (int t = 0; t < seq_len; t++) ends[t] = 0;
  Mulberry32 rand(seed);
  for (long end = -1; mean > 0;) {
    end += 1 + (long)(rand.next() * (2.0 * mean - 1));
    if (end >= real - 1) break;  // the sequence's end closes the last document anyway
    ends[end] = 1;
  }
  if (real < seq_len) ends[real - 1] = 1;
}

}  // namespace lasp
