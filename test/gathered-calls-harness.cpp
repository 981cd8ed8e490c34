// templates/runtime/gathered_calls.cuh on the host (test/gathered-calls.test.ts): the cuDNN calls of one rank's
// gathered attention. Arguments: causal q_rows key_rows count [local global length] x count; prints
// "row0 rows keys" per call.
#include <cstdio>
#include <cstdlib>

#include "gathered_calls.cuh"

int main(int argc, char** argv) {
  if (argc < 5) return 2;
  const bool causal = std::atoi(argv[1]) != 0;
  const int q_rows = std::atoi(argv[2]), key_rows = std::atoi(argv[3]);
  lasp::PieceMap m{std::atoi(argv[4]), {0, 0}, {0, 0}, {0, 0}};
  if (m.count < 0 || m.count > 2 || argc != 5 + 3 * m.count) return 2;
  for (int j = 0; j < m.count; ++j) {
    m.local_offset[j] = std::atoi(argv[5 + 3 * j]);
    m.global_start[j] = std::atoi(argv[6 + 3 * j]);
    m.length[j] = std::atoi(argv[7 + 3 * j]);
  }
  const lasp::SoftmaxDims d{1, q_rows, key_rows, 16, 8, 128};
  lasp::gathered::Call c[2];
  const int n = lasp::gathered::cudnn_calls(d, m, key_rows, causal, c);
  for (int j = 0; j < n; ++j) std::printf("%d %d %d\n", c[j].row0, c[j].rows, c[j].keys);
  return 0;
}
