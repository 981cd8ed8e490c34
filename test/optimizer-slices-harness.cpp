// templates/runtime/optimizer_slices.cuh on the host: the ranks' optimizer slices, driven from
// test/optimizer-slices.test.ts.
//   harness spans PARAMS SHARDED RANK WORLD OFFSET:ELEMENTS ...   prints each span "param state elements bo be"
//   harness problem WORLD OFFSET:ELEMENTS ...                       prints "ok" or the sentence
//   harness reshard PARAMS LAYOUTS OFFSET:ELEMENTS ...   LAYOUTS: SHARDEDxWORLD,... (1x4: ZeRO-1 on 4 ranks).
//       For every pair (FROM, TO) and every rank of TO, a checkpoint of FROM whose state holds each parameter's
//       own index, resumed through state_copies: "FROM TO RANK copies N shards R wrong W missing M padding P"
//       (wrong: a value not its parameter's index; missing: an element of a block left unset; padding: elements
//       outside every block left unset), or "FROM TO RANK error WHY". reshard-without-last: the checkpoints'
//       last shard left out.
#include <cstdint>
#include <set>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "optimizer_slices.cuh"

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string mode = argv[1];
  const bool reshard = mode == "reshard" || mode == "reshard-without-last";
  const int first = mode == "spans" ? 6 : reshard ? 4 : 3;
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
  if (reshard) {
    const size_t params = std::strtoull(argv[2], nullptr, 10);
    std::vector<char> in_block(params, 0);
    for (int b = 0; b < count; b++)
      std::fill(in_block.begin() + offsets[b], in_block.begin() + offsets[b] + elements[b], 1);
    // LAYOUT: SHARDEDxWORLD, e.g. 1x4 (ZeRO-1 on 4 ranks); a list is every pair of them, every rank of the second.
    std::vector<std::pair<bool, int>> layouts;
    for (const char* at = argv[3]; *at != 0;) {
      char* next = nullptr;
      const long sharded = std::strtol(at, &next, 10);
      const long world = std::strtol(next + 1, &next, 10);
      layouts.push_back({sharded != 0, (int)world});
      at = *next == ',' ? next + 1 : next;
    }
    for (const auto& from : layouts) {
      std::vector<std::vector<lasp::OptimizerSpan>> shards;
      std::vector<std::vector<size_t>> contents;  // each shard's state: its parameters' indices
      for (int r = 0; r < from.second; r++) {
        shards.push_back(lasp::checkpoint_shard_spans(offsets.data(), elements.data(), count, params, from.first, r,
                                                      from.second));
        std::vector<size_t> c;
        for (const auto& sp : shards.back()) {
          c.resize(std::max(c.size(), sp.state + sp.elements));
          for (size_t i = 0; i < sp.elements; i++) c[sp.state + i] = sp.param + i;
        }
        contents.push_back(c);
      }
      if (mode == "reshard-without-last") shards.pop_back();
      for (const auto& to : layouts)
        for (int rank = 0; rank < to.second; rank++) {
          std::printf("%dx%d %dx%d %d ", from.first ? 1 : 0, from.second, to.first ? 1 : 0, to.second, rank);
          const auto mine =
              lasp::optimizer_spans(offsets.data(), elements.data(), count, params, to.first, rank, to.second);
          size_t state = 0;
          for (const auto& m : mine) state = std::max(state, m.state + m.elements);
          std::vector<size_t> values(state, SIZE_MAX);
          std::vector<lasp::StateCopy> copies;
          const std::string why = lasp::state_copies(shards, mine, offsets.data(), elements.data(), count, &copies);
          if (!why.empty()) {
            std::printf("error %s\n", why.c_str());
            continue;
          }
          std::set<int> read;
          for (const auto& c : copies) {
            read.insert(c.shard);
            for (size_t i = 0; i < c.elements; i++) values[c.to + i] = contents[c.shard][c.from + i];
          }
          size_t wrong = 0, missing = 0, padding = 0;
          for (const auto& m : mine)
            for (size_t i = 0; i < m.elements; i++) {
              const size_t p = m.param + i, v = values[m.state + i];
              if (v == SIZE_MAX) (in_block[p] ? missing : padding)++;
              else if (v != p) wrong++;
            }
          std::printf("copies %zu shards %zu wrong %zu missing %zu padding %zu\n", copies.size(), read.size(), wrong,
                      missing, padding);
        }
    }
    return 0;
  }
  const auto spans = lasp::optimizer_spans(offsets.data(), elements.data(), count,
                                           std::strtoull(argv[2], nullptr, 10), std::atoi(argv[3]) != 0,
                                           std::atoi(argv[4]), std::atoi(argv[5]));
  for (const auto& s : spans)
    std::printf("%zu %zu %zu %zu %zu\n", s.param, s.state, s.elements, s.block_offset, s.block_elements);
  return 0;
}
