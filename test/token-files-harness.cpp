// The host logic of templates/runtime/token_files.cuh driven from test/token-files.test.ts:
//   harness info PATH                                   "format=F type=T tokens=N path=P"
//   harness read PATH FIRST COUNT VOCAB                 "ids I..." (tokens [FIRST, FIRST + COUNT) as int32)
//   harness check PATH VOCAB                            "ok N tokens" after checking every token
//   harness enough PATH SEQ_LEN WINDOWS_PER_STEP        "ok W windows"
//   harness window PATH START SEQ_LEN RANKS RANK LAYOUT VOCAB [REAL]
//                                                       "pieces S+L...", "ids I...", "targets T..." of one rank
//   harness order WINDOWS SEED EPOCH                    "order W..." (the shuffled window indices)
//   harness token-ends PATH FIRST COUNT TOKEN           "ends E..." (1 where the token is TOKEN)
//   harness index-ends PATH FIRST COUNT                 "ends E..." (1 where a Megatron document ends)
//   harness window-ends PATH START REAL SEQ_LEN none|eos|index EOS
//                                                       "ends E..." of a (padded) window, as train mode sees it
// Errors go to stderr with exit code 1, as the program reports a wrong data file.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "token_files.cuh"

namespace tf = lasp::token_files;

namespace {

uint64_t number(const char* text) { return std::strtoull(text, nullptr, 10); }

void print_list(const char* name, const int32_t* values, std::size_t n) {
  std::printf("%s", name);
  for (std::size_t i = 0; i < n; ++i) std::printf(" %d", values[i]);
  std::printf("\n");
}

int fail(const std::string& error) {
  std::fprintf(stderr, "%s\n", error.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string mode = argv[1];
  std::string error;

  if (mode == "order" && argc == 5) {
    const std::vector<uint64_t> order = tf::window_order(number(argv[2]), number(argv[3]), number(argv[4]));
    std::printf("order");
    for (uint64_t w : order) std::printf(" %llu", static_cast<unsigned long long>(w));
    std::printf("\n");
    return 0;
  }

  if (mode == "positions" && argc == 6) {
    // every window position of one step from 0: micro-batches x replicas x batch, in that nesting
    const int a_count = static_cast<int>(number(argv[2])), d_count = static_cast<int>(number(argv[3]));
    const int b_count = static_cast<int>(number(argv[4]));
    const uint64_t first = number(argv[5]);
    std::printf("positions");
    for (int a = 0; a < a_count; ++a)
      for (int d = 0; d < d_count; ++d)
        for (int b = 0; b < b_count; ++b)
          std::printf(" %llu", static_cast<unsigned long long>(tf::window_position(first, a, d_count, d, b_count, b)));
    std::printf("\n");
    return 0;
  }

  if (argc < 3) return 2;
  tf::TokenFile file;
  if (!file.open(argv[2], &error)) return fail(error);

  if (mode == "info") {
    std::printf("format=%s type=%s tokens=%llu path=%s\n", tf::format_name(file.format()),
                tf::token_type_name(file.type()), static_cast<unsigned long long>(file.count()),
                file.path().c_str());
    return 0;
  }
  if (mode == "read" && argc == 6) {
    std::vector<int32_t> ids(number(argv[4]));
    if (!file.read(number(argv[3]), ids.size(), static_cast<int>(number(argv[5])), ids.data(), &error))
      return fail(error);
    print_list("ids", ids.data(), ids.size());
    return 0;
  }
  if (mode == "token-ends" && argc == 6) {
    std::vector<int32_t> ends(number(argv[4]));
    file.token_ends(number(argv[3]), ends.size(), static_cast<int64_t>(number(argv[5])), ends.data());
    print_list("ends", ends.data(), ends.size());
    return 0;
  }
  if (mode == "window-ends" && argc == 8) {
    const int64_t real = static_cast<int64_t>(number(argv[4])), seq_len = static_cast<int64_t>(number(argv[5]));
    const std::string kind = argv[6];
    const tf::DocumentEnds k = kind == "eos" ? tf::DocumentEnds::Eos : kind == "index" ? tf::DocumentEnds::Index
                                                                                         : tf::DocumentEnds::None;
    std::vector<int32_t> ends(static_cast<std::size_t>(seq_len), -7);
    tf::window_ends(file, number(argv[3]), real, seq_len, k, static_cast<int64_t>(number(argv[7])), ends.data());
    print_list("ends", ends.data(), ends.size());
    return 0;
  }
  if (mode == "index-ends" && argc == 5) {
    std::vector<int32_t> ends(number(argv[4]));
    file.index_ends(number(argv[3]), ends.size(), ends.data());
    print_list("ends", ends.data(), ends.size());
    return 0;
  }
  if (mode == "check" && argc == 4) {
    if (!file.check_vocab(static_cast<int>(number(argv[3])), &error)) return fail(error);
    std::printf("ok %llu tokens\n", static_cast<unsigned long long>(file.count()));
    return 0;
  }
  if (mode == "check-part" && argc == 6) {
    if (!file.check_vocab_part(static_cast<int>(number(argv[3])), number(argv[4]), number(argv[5]), &error))
      return fail(error);
    std::printf("ok\n");
    return 0;
  }
  if (mode == "enough" && argc == 5) {
    const int64_t seq_len = static_cast<int64_t>(number(argv[3]));
    if (!tf::check_enough(file, seq_len, number(argv[4]), &error)) return fail(error);
    std::printf("ok %llu windows\n", static_cast<unsigned long long>(tf::window_count(file.count(), seq_len)));
    return 0;
  }
  if (mode == "window" && (argc == 9 || argc == 10)) {
    const int64_t seq_len = static_cast<int64_t>(number(argv[4]));
    const int ranks = static_cast<int>(number(argv[5])), rank = static_cast<int>(number(argv[6]));
    const std::string layout = argv[7];
    if (layout != "contiguous" && layout != "zigzag") return 2;
    std::vector<tf::WindowPiece> pieces;
    if (!tf::rank_pieces(seq_len, ranks, rank, layout == "zigzag" ? tf::Layout::Zigzag : tf::Layout::Contiguous,
                         &pieces, &error))
      return fail(error);
    std::size_t rows = 0;
    std::printf("pieces");
    for (const tf::WindowPiece& p : pieces) {
      std::printf(" %lld+%lld", static_cast<long long>(p.start), static_cast<long long>(p.length));
      rows += static_cast<std::size_t>(p.length);
    }
    std::printf("\n");
    // Filled with a value no path writes, so a row the reader skipped shows.
    std::vector<int32_t> ids(rows, -7), targets(rows, -7);
    const int64_t real = argc == 10 ? static_cast<int64_t>(number(argv[9])) : -1;
    if (!tf::read_window(file, number(argv[3]), pieces, static_cast<int>(number(argv[8])), ids.data(),
                         targets.data(), &error, real))
      return fail(error);
    print_list("ids", ids.data(), rows);
    print_list("targets", targets.data(), rows);
    return 0;
  }
  return 2;
}
