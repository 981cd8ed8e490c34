// The host-only parts of lasp calibrate's program, with g++ alone (test/calibrate-host.test.ts):
//   harness PLAN     reads PLAN with templates/calibrate/plan.h and prints each item as
//                    `ID KIND N0 N1 N2 N3 N4 N5 N6 BACKEND` (BACKEND `-` where none), or the reader's error, exit 2
//   harness --lines  prints the output lines of templates/calibrate/lines.h for awkward values
//   harness --parts PLAN  prints each item's part as the program runs it: `ID compute|collectives|copy_engines`
#include <cstdio>
#include <cstring>

#include "../templates/calibrate/lines.h"
#include "../templates/calibrate/plan.h"

// Which of main.cu's loops takes an item: the compute part, NCCL's kernels, or the copy-engine communicator.
static const char* part_of(const calib::Item& it) {
  if (calib::is_copy_engine(it.kind)) return "copy_engines";
  return calib::is_collective(it.kind) ? "collectives" : "compute";
}

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--parts") == 0) {
    std::vector<calib::Item> items;
    std::string error;
    if (!calib::read_plan(argv[2], &items, &error)) return 2;
    for (const calib::Item& it : items) std::printf("%d %s\n", it.id, part_of(it));
    return 0;
  }
  if (argc != 2) return 2;
  if (std::strcmp(argv[1], "--lines") == 0) {
    std::printf("%s\n", calib::device_line("NVIDIA \"H100\" 80GB\\HBM3\t", 132, 85520809984ull, 9, 0, nullptr).c_str());
    std::printf("%s\n", calib::device_line("NVIDIA H200", 132, 150754820096ull, 9, 0, "9.14.0").c_str());
    std::printf("%s\n", calib::measure_line(7, 0.0000123f, 20).c_str());
    std::printf("%s\n", calib::measure_line(8, 1234567.0f, 1).c_str());
    std::printf("%s\n", calib::measure_line(10, 125.5f, 20, 106.25f).c_str());
    std::printf("%s\n", calib::skipped_line(9, "built without cuDNN (set CUDNN_HOME)").c_str());
    return 0;
  }
  std::vector<calib::Item> items;
  std::string error;
  if (!calib::read_plan(argv[1], &items, &error)) {
    std::printf("error: %s\n", error.c_str());
    return 2;
  }
  for (const calib::Item& it : items) {
    std::printf("%d %s", it.id, it.kind.c_str());
    for (long long n : it.n) std::printf(" %lld", n);
    std::printf(" %s\n", it.backend.empty() ? "-" : it.backend.c_str());
  }
  return 0;
}
