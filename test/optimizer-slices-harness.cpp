// templates/runtime/optimizer_slices.cuh on the host: the ranks' optimizer slices, driven from
// test/optimizer-slices.test.ts.
//   harness spans PARAMS SHARDED RANK WORLD OFFSET:ELEMENTS ...   prints each span "param state elements bo be"
//   harness problem WORLD OFFSET:ELEMENTS ...                       prints "ok" or the sentence
//   harness pieces PARAM ELEMENTS ORDER OFFSET:ELEMENTS ...          ORDER: block indices "2,0,1"; prints each
//                                                                    piece "param elements block", or "none"
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "optimizer_slices.cuh"

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string mode = argv[1];
  const int first = mode == "spans" ? 6 : mode == "pieces" ? 5 : 3;
  if (argc < first) return 2;
  std::vector<size_t> offsets, elements;
  for (int i = first; i < argc; i++) {
    const std::string arg = argv[i];
    const size_t colon = arg.find(':');
    offsets.push_back(std::strtoull(arg.substr(0, colon).c_str(), nullptr, 10));
    elements.push_back(std::strtoull(arg.substr(colon + 1).c_str(), nullptr, 10));
  }
  const int count = static_cast<int>(offsets.size());
  if (mode == "pieces") {
    std::vector<int> order;
    for (const char* p = argv[4]; *p != 0;) {
      char* next = nullptr;
      order.push_back(static_cast<int>(std::strtol(p, &next, 10)));
      if (next == p) return 2;
      p = *next == ',' ? next + 1 : next;
    }
    const auto pieces = lasp::update_pieces(offsets.data(), elements.data(), count, std::strtoull(argv[2], nullptr, 10),
                                            std::strtoull(argv[3], nullptr, 10), order.data(),
                                            static_cast<int>(order.size()));
    if (pieces.empty()) std::printf("none\n");
    for (const auto& p : pieces) std::printf("%zu %zu %d\n", p.param, p.elements, p.block);
    return 0;
  }
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
