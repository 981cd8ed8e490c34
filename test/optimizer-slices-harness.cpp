// templates/runtime/optimizer_slices.cuh on the host: the ranks' optimizer slices, driven from
// test/optimizer-slices.test.ts.
//   harness spans PARAMS SHARDED RANK WORLD OFFSET:ELEMENTS ...   prints each span "param state elements bo be"
//   harness problem WORLD OFFSET:ELEMENTS ...                       prints "ok" or the sentence
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "optimizer_slices.cuh"

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string mode = argv[1];
  const int first = mode == "spans" ? 6 : 3;
  if (argc < first) return 2;
  std::vector<size_t> offsets, elements;
  for (int i = first; i < argc; i++) {
    const std::string arg = argv[i];
    const size_t colon = arg.find(':');
    offsets.push_back(std::strtoull(arg.substr(0, colon).c_str(), nullptr, 10));
    elements.push_back(std::strtoull(arg.substr(colon + 1).c_str(), nullptr, 10));
  }
  const int count = static_cast<int>(offsets.size());
  if (mode == "problem") {
    const std::string p = lasp::optimizer_shard_problem(offsets.data(), elements.data(), count, std::atoi(argv[2]));
    std::printf("%s\n", p.empty() ? "ok" : p.c_str());
    return 0;
  }
  const auto spans = lasp::optimizer_spans(offsets.data(), elements.data(), count,
                                           std::strtoull(argv[2], nullptr, 10), std::atoi(argv[3]) != 0,
                                           std::atoi(argv[4]), std::atoi(argv[5]));
  for (const auto& s : spans)
    std::printf("%zu %zu %zu %zu %zu\n", s.param, s.state, s.elements, s.block_offset, s.block_elements);
  return 0;
}
