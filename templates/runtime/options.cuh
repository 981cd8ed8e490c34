// The program's command line (src/toolchain/PROTOCOL.md in the lasp repository): which rank this process is
// and how to find its peers, the mode, and the counts that override the spec's run block.
//
// Design choices:
// - The spec's values are the defaults, passed in by main.cu: the program runs as compiled with no flags.
// - A bad flag is a usage error: one line saying what is wrong, the usage, exit code 2 (what `lasp run`
//   reads as "the command was wrong", apart from 1, a failed verify, and 3, a failed CUDA/NCCL call).
#pragma once
#include <cstdio>   // the usage message
#include <cstdlib>  // strtol, exit
#include <string>   // flag values

namespace lasp {

struct Options {
  int rank = -1, world = -1, device = -1;  // -1: from the launcher's environment (comm.cuh's layout_from)
  std::string id_file;                     // where rank 0 leaves the NCCL unique id for the others
  std::string mode;                        // bench, verify or train
  int steps = 0;
  int warmup = 0;
  unsigned long long seed = 0;
  bool json_only = false;  // --json: no human progress lines (lasp run shows its own)
  std::string load_weights, save_weights;  // safetensors files (weights_io.cuh); empty: none
  std::string save_grads;                  // verify: the step's gradients, tokens and loss
  std::string run_dir;                     // train: where checkpoints go (RUN/checkpoints); empty: here
  std::string resume;                      // train: the checkpoint folder to continue from
  bool checkpoints = true;                 // train: --no-checkpoints writes none (a benchmark, a smoke test)
  std::string data, eval_data;             // train: token files instead of the spec's (`lasp run` resolves the
                                           // spec's paths against its folder and passes them)
  std::string tokenizer;                   // a tokenizer's folder instead of the spec's (`lasp run` resolves it)
};

[[noreturn]] inline void usage_error(const char* message) {
  std::fprintf(stderr, "lasp_program: %s\nusage: lasp_program [--rank R --world W --device D] [--nccl-id-file PATH]\n"
               "                    [--mode bench|verify|train] [--steps N] [--warmup N] [--seed N] [--json]\n"
               "                    [--load-weights PATH] [--save-weights FILE] [--save-grads FILE]\n"
               "                    [--run-dir DIR] [--resume CHECKPOINT] [--no-checkpoints]\n"
               "                    [--data FILE] [--eval-data FILE] [--tokenizer FOLDER]\n", message);
  std::exit(2);
}

inline int int_arg(const char* flag, const char* value) {
  char* end = nullptr;
  long v = std::strtol(value, &end, 10);
  if (end == value || *end != '\0' || v < 0) {
    std::string m = std::string(flag) + " needs a whole number, got " + value;
    usage_error(m.c_str());
  }
  return (int)v;
}

// The options of this run: `o` holds the spec's defaults, the flags override them.
inline Options parse_args(int argc, char** argv, Options o) {
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) usage_error((a + " needs a value").c_str());
      return argv[++i];
    };
    if (a == "--rank") o.rank = int_arg("--rank", next());
    else if (a == "--world") o.world = int_arg("--world", next());
    else if (a == "--device") o.device = int_arg("--device", next());
    else if (a == "--nccl-id-file") o.id_file = next();
    else if (a == "--mode") o.mode = next();
    else if (a == "--steps") o.steps = int_arg("--steps", next());
    else if (a == "--warmup") o.warmup = int_arg("--warmup", next());
    else if (a == "--seed") o.seed = (unsigned long long)int_arg("--seed", next());
    else if (a == "--json") o.json_only = true;  // JSON lines are always on stdout; this drops the human ones
    else if (a == "--load-weights") o.load_weights = next();
    else if (a == "--save-weights") o.save_weights = next();
    else if (a == "--save-grads") o.save_grads = next();
    else if (a == "--run-dir") o.run_dir = next();
    else if (a == "--resume") o.resume = next();
    else if (a == "--no-checkpoints") o.checkpoints = false;
    else if (a == "--data") o.data = next();
    else if (a == "--eval-data") o.eval_data = next();
    else if (a == "--tokenizer") o.tokenizer = next();
    else usage_error(("unknown option " + a).c_str());
  }
  if (o.mode != "bench" && o.mode != "verify" && o.mode != "train") usage_error("--mode must be bench, verify or train");
  if (o.steps < 1) usage_error("--steps must be at least 1");
  if (!o.save_grads.empty() && o.mode != "verify") usage_error("--save-grads is verify mode's: add --mode verify");
  if (!o.resume.empty() && o.mode != "train") usage_error("--resume is train mode's: add --mode train");
  if (!o.checkpoints && o.mode != "train") usage_error("--no-checkpoints is train mode's: add --mode train");
  if (!o.resume.empty() && !o.load_weights.empty())
    usage_error("--resume reads the checkpoint's weights: drop --load-weights");
  return o;
}

}  // namespace lasp
