// Linear-Llama3-1B's parameter table in the program's order (embedding, 16 layers, final norm, untied head):
// matrices decay, norm gains do not; the linear layers' per-head output norm has no gain. 1,599,145,984 in all.
// The rows adamw.cuh's kernel searches, for the harnesses that time it at the 1B size (model_ops_test.cu,
// experiments/stream_energy.cu).
#pragma once
#include <cstddef>
#include <utility>
#include <vector>

#include "../../templates/runtime/types.cuh"  // DecayRow

// The rows of the first n elements (by default the model's 1,599,145,984); past the model, the last row takes
// the rest.
inline std::vector<lasp::DecayRow> llama_1b_rows(size_t n = 1599145984) {
  const size_t H = 2048, F = 8192, V = 128256;
  std::vector<std::pair<size_t, int>> tensors = {{V * H, 1}};
  for (int l = 0; l < 16; ++l)
    for (auto t : std::vector<std::pair<size_t, int>>{
             {H, 0}, {H * H, 1}, {H * H, 1}, {H * H, 1}, {H * H, 1}, {H, 0}, {2 * F * H, 1}, {F * H, 1}})
      tensors.push_back(t);
  tensors.push_back({H, 0});
  tensors.push_back({V * H, 1});
  std::vector<lasp::DecayRow> rows;
  size_t offset = 0;
  for (const auto& t : tensors) {
    if (offset >= n) break;
    const size_t take = t.first < n - offset ? t.first : n - offset;
    rows.push_back({offset, take, t.second});
    offset += take;
  }
  if (offset < n) rows.back().elements += n - offset;
  return rows;
}
