// templates/runtime/lr_schedule.cuh under g++ (no CUDA), driven from test/lr-schedule.test.ts:
//   harness lr KIND LR MIN_LR WARMUP STEPS K...   the check's sentence, or the rate of each step K (%.17g)
//   harness clip NORM_SQUARED CLIP...             clip_factor of the squared norm for each CLIP (%.17g)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "lr_schedule.cuh"

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "lr" && argc >= 7) {
    lasp::LrSchedule s;
    const std::string kind = argv[2];
    if (kind == "cosine") s.kind = lasp::kLrCosine;
    else if (kind == "linear") s.kind = lasp::kLrLinear;
    else if (kind == "constant") s.kind = lasp::kLrConstant;
    else return 2;
    s.lr = std::atof(argv[3]);
    s.min_lr = std::atof(argv[4]);
    s.warmup = std::atoll(argv[5]);
    s.steps = std::atoll(argv[6]);
    const std::string problem = lasp::lr_schedule::check(s);
    if (!problem.empty()) {
      std::printf("%s\n", problem.c_str());
      return 1;
    }
    for (int i = 7; i < argc; ++i) std::printf("%.17g\n", lasp::lr_at(s, std::atoll(argv[i])));
    return 0;
  }
  if (mode == "clip" && argc >= 4) {
    const double norm_squared = std::strtod(argv[2], nullptr);
    for (int i = 3; i < argc; ++i) std::printf("%.17g\n", lasp::clip_factor(norm_squared, std::atof(argv[i])));
    return 0;
  }
  return 2;
}
