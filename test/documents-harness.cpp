// The host logic of templates/runtime/documents.cuh driven from test/documents.test.ts:
//   harness draw SEQ_LEN REAL MEAN SEED    "ends E..." (the positions where a drawn document ends)
//   harness ranges SEQ_LEN E...            "first F..." and "last L..." of one row with ends at E...
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "documents.cuh"

namespace {

long number(const char* text) { return std::strtol(text, nullptr, 10); }

void print_list(const char* name, const std::vector<int>& values, bool positions) {
  std::printf("%s", name);
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!positions) std::printf(" %d", values[i]);
    else if (values[i] != 0) std::printf(" %zu", i);
  }
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const std::string mode = argv[1];
  const int n = static_cast<int>(number(argv[2]));
  std::vector<int> ends(n, 0);
  if (mode == "draw" && argc == 6) {
    lasp::draw_document_ends(n, static_cast<int>(number(argv[3])), static_cast<int>(number(argv[4])),
                             static_cast<uint32_t>(std::strtoul(argv[5], nullptr, 10)), ends.data());
    print_list("ends", ends, true);
    return 0;
  }
  if (mode == "ranges") {
    for (int i = 3; i < argc; ++i) ends[number(argv[i])] = 1;
    std::vector<int> first(n), last(n);
    lasp::document_ranges(ends.data(), 1, n, first.data(), last.data());
    print_list("first", first, false);
    print_list("last", last, false);
    return 0;
  }
  return 2;
}
