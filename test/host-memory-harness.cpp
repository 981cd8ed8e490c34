// The host logic of templates/runtime/host_memory.cuh driven from test/host-memory.test.ts:
//   harness meminfo FILE                        available_bytes of a meminfo file: prints the bytes
//   harness ranks OMPI LOCAL_WORLD SLURM WORLD GPUS   ranks_here ("-": the variable unset): prints the ranks
//   harness fits RANK0 OTHER RANKS AVAILABLE    host_bytes and fits: prints "needs N fits 0|1"
//   harness choice VALUE                        copy_choice ("-": unset): prints auto, host, none or invalid,
//                                               and for invalid the program's sentence
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "host_memory.cuh"

namespace hm = lasp::host_memory;

namespace {
const char* arg(const char* v) { return std::string(v) == "-" ? nullptr : v; }
uint64_t number(const char* v) { return std::strtoull(v, nullptr, 10); }
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const std::string mode = argv[1];
  if (mode == "meminfo") {
    std::printf("%" PRIu64 "\n", hm::available_bytes(argv[2]));
    return 0;
  }
  if (mode == "ranks" && argc == 7) {
    std::printf("%d\n", hm::ranks_here(arg(argv[2]), arg(argv[3]), arg(argv[4]), std::atoi(argv[5]),
                                       std::atoi(argv[6])));
    return 0;
  }
  if (mode == "fits" && argc == 6) {
    const uint64_t needs = hm::host_bytes(number(argv[2]), number(argv[3]), std::atoi(argv[4]));
    std::printf("needs %" PRIu64 " fits %d\n", needs, hm::fits(needs, number(argv[5])) ? 1 : 0);
    return 0;
  }
  if (mode == "choice") {
    const char* names[] = {"auto", "host", "none", "invalid"};
    const hm::CopyChoice choice = hm::copy_choice(arg(argv[2]));
    std::printf("%s\n", names[static_cast<int>(choice)]);
    if (choice == hm::CopyChoice::kInvalid) std::printf("%s\n", hm::copy_choice_error(argv[2]).c_str());
    return 0;
  }
  return 2;
}
