// A stand-in for the generated program, for tests on machines without GPUs: a C++ (not CUDA) CMake project
// whose target `lasp_program` speaks PROTOCOL.md: the command line, the NCCL id file handshake (a fake id),
// the JSON events on stdout and the exit codes. Environment variables make it misbehave:
//   FIXTURE_CRASH_RANK=R   rank R prints to stderr and exits 7 after its start event
//   FIXTURE_SLEEP_RANK=R   rank R sleeps 60 s after its start event (FIXTURE_IGNORE_TERM=1: ignores SIGTERM)
//   FIXTURE_STEP_MS=N      each step sleeps N ms (default 2)
//   FIXTURE_VERIFY_FAIL=1  in verify mode, one error is above tolerance and the exit code is 1
// In train mode (--mode train) it trains on nothing: step events with the train fields, an eval and a
// checkpoint (rank 0 writes RUN_DIR/checkpoints/step-NNNNNN/ through a .tmp-PID folder) every 2 steps, the
// end's checkpoint and `trained`; `--resume DIR` continues from the step in DIR's trainer_state.json. On
// SIGTERM or SIGINT it finishes the step, writes a checkpoint, sends `stopped` and exits 5. With
// --no-checkpoints it writes none.
//   FIXTURE_CHECKPOINT_MS=N  writing a checkpoint takes N ms (default 0)
//   FIXTURE_NONFINITE_STEP=N the loss of step N (counted from 0) is not finite: `stopped`, exit 6
//   FIXTURE_STOP_STEP=N      every rank acts as if signalled after N steps (as Slurm signals every task)

const MAIN_CPP = String.raw`// Test fixture for lasp run: a CPU-only program that follows src/toolchain/PROTOCOL.md.
#include <chrono>
#include <cmath>
#include <csignal>
#include <signal.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

static volatile std::sig_atomic_t g_stop = 0;
static void on_stop_signal(int) { g_stop = 1; }
// sigaction, as the generated program's train.cuh installs its handlers (the same semantics everywhere).
static void install_stop_handlers() {
  struct sigaction action = {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

static int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

static void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

static bool g_checkpoints = true;  // false: --no-checkpoints
static int g_world = 1;
static const char* kModelHash = "MODEL_HASH";  // fixtureFiles' modelHash, as the program's kModelHash

static void touch(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f) std::fclose(f);
}

// Rank 0 commits a checkpoint the program's way: a temporary folder, trainer_state.json last, a rename.
static void write_checkpoint(int rank, const std::string& run_dir, int step) {
  if (!g_checkpoints) return;
  char name[32];
  std::snprintf(name, sizeof name, "step-%06d", step);
  std::string parent = run_dir + "/checkpoints", folder = parent + "/" + name;
  if (rank != 0) return;
  auto t0 = std::chrono::steady_clock::now();
  mkdir(parent.c_str(), 0755);
  std::string tmp = parent + "/.tmp-" + std::to_string(getpid());
  mkdir(tmp.c_str(), 0755);
  sleep_ms(env_int("FIXTURE_CHECKPOINT_MS", 0));
  // The files lasp checks before resuming (checkpoint.cuh's resume), the weights empty.
  touch(tmp + "/model.safetensors");
  touch(tmp + "/config.json");
  for (int r = 0; r < g_world; r++)
    touch(tmp + "/optimizer-rank-" + std::to_string(r) + "-of-" + std::to_string(g_world) + ".safetensors");
  FILE* f = std::fopen((tmp + "/trainer_state.json").c_str(), "w");
  if (!f) { std::fprintf(stderr, "cannot write %s\n", tmp.c_str()); std::exit(3); }
  std::fprintf(f, "{\n  \"format_version\": 1,\n  \"step\": %d,\n  \"tokens_seen\": %d,\n  \"data_position\": %d,\n"
               "  \"seed\": 1,\n  \"rng_state\": \"00000000000000%02x\",\n  \"world_size\": %d,\n"
               "  \"lr_schedule\": {\n    \"kind\": \"cosine\",\n    \"lr\": 0.0003,\n    \"min_lr\": 0,\n"
               "    \"warmup_steps\": 0,\n    \"total_steps\": %d\n  },\n  \"lasp_version\": \"fixture\",\n"
               "  \"spec_hash\": \"%s\"\n}\n", step, 4096 * step, 2 * step, step & 0xff, g_world, step, kModelHash);
  std::fclose(f);
  std::rename(tmp.c_str(), folder.c_str());
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  // Written in place, so training stood still for all of it (the program writes most in the background).
  std::printf("{\"event\":\"checkpoint\",\"rank\":0,\"step\":%d,\"folder\":\"%s\",\"ms\":%.1f,"
              "\"background\":false,\"paused_ms\":%.1f,\"removed\":[]}\n", step, folder.c_str(), ms, ms);
  std::fflush(stdout);
}

static int train(int rank, int world, int device, int steps, const std::string& run_dir, const std::string& resume) {
  install_stop_handlers();
  g_world = world;
  int done = 0;
  if (!resume.empty()) {
    FILE* f = std::fopen((resume + "/trainer_state.json").c_str(), "r");
    char text[4096] = {0};
    if (f) { (void)std::fread(text, 1, sizeof text - 1, f); std::fclose(f); }
    const char* at = std::strstr(text, "\"step\":");
    if (!at || std::sscanf(at, "\"step\": %d", &done) != 1) {
      std::fprintf(stderr, "lasp_program: %s is not a checkpoint\n", resume.c_str());
      return 2;
    }
  }
  std::printf("{\"event\":\"start\",\"rank\":%d,\"world\":%d,\"device\":\"Fake GPU %d\",\"spec\":\"fixture.lasp\","
              "\"mode\":\"train\",\"steps\":%d,\"warmup\":0,\"tokens_per_step\":4096,\"flops_per_token\":1.0e+06,"
              "\"peak_flops\":1.0e+12}\n", rank, world, device, steps);
  std::printf("{\"event\":\"optimizer\",\"rank\":%d,\"update\":\"%s\",\"parameters\":1000000,"
              "\"state_bytes\":%d,\"decayed\":900000}\n", rank, world > 1 ? "zero1" : "replicated", 10000000 / world);
  std::printf("{\"event\":\"data\",\"rank\":%d,\"source\":\"synthetic\",\"format\":\"synthetic\",\"tokens\":0,"
              "\"windows\":0,\"windows_per_step\":2,\"eval\":null,\"eval_windows\":0}\n", rank);
  if (done > 0)
    std::printf("{\"event\":\"resumed\",\"rank\":%d,\"from\":\"%s\",\"step\":%d,\"data_position\":%d,"
                "\"tokens_seen\":%d}\n", rank, resume.c_str(), done, 2 * done, 4096 * done);
  std::fflush(stdout);
  int step_ms = env_int("FIXTURE_STEP_MS", 2), bad = env_int("FIXTURE_NONFINITE_STEP", -1), first = done;
  double loss = 0, eval_loss = -1;
  for (int s = done; s < steps; s++) {
    sleep_ms(step_ms);
    if (s == bad) {
      if (rank == 0) std::fprintf(stderr, "lasp_program: the loss of step %d is nan\n", s + 1);
      std::printf("{\"event\":\"stopped\",\"rank\":%d,\"step\":%d,\"reason\":\"non-finite\",\"code\":6}\n", rank, s);
      std::fflush(stdout);
      return 6;
    }
    loss = 5.5 / (1.0 + 0.5 * s);
    done = s + 1;
    std::printf("{\"event\":\"step\",\"rank\":%d,\"step\":%d,\"ms\":%.3f,\"loss\":%.4f,\"tokens_per_s\":409600,"
                "\"mfu\":0.2048,\"warmup\":false,\"steps\":%d,\"grad_norm\":%.3f,\"clip\":1,\"lr\":%.3e,"
                "\"tokens_seen\":%d}\n", rank, s, 10.0, loss, steps, 1.5 / done, 3e-4 * done / steps, 4096 * done);
    if (done % 2 == 0 && done < steps) {
      eval_loss = loss + 0.1;
      if (rank == 0)
        std::printf("{\"event\":\"eval\",\"rank\":0,\"step\":%d,\"loss\":%.4f,\"perplexity\":%.4f,\"targets\":8192,"
                    "\"windows\":2}\n", done, eval_loss, std::exp(eval_loss));
      write_checkpoint(rank, run_dir, done);
    }
    std::fflush(stdout);
    if (done == env_int("FIXTURE_STOP_STEP", -1)) g_stop = 1;
    if (g_stop) {
      if (done % 2 != 0 || done == steps) write_checkpoint(rank, run_dir, done);
      std::printf("{\"event\":\"stopped\",\"rank\":%d,\"step\":%d,\"reason\":\"signal\",\"code\":5,"
                  "\"checkpoint\":%s}\n", rank, done, g_checkpoints ? "true" : "false");
      std::fflush(stdout);
      return 5;
    }
  }
  if (done > first) write_checkpoint(rank, run_dir, done);  // the end's (the loop's skip the last step)
  std::printf("{\"event\":\"trained\",\"rank\":%d,\"steps\":%d,\"step\":%d,\"tokens\":%d,\"seconds\":%.3f,"
              "\"tokens_per_s\":409600,\"mfu\":0.2048,\"loss\":%.4f,\"eval_loss\":", rank, done - first, done,
              4096 * (done - first), (done - first) * 0.01, loss);
  if (eval_loss < 0) std::printf("null}\n"); else std::printf("%.4f}\n", eval_loss);
  std::fflush(stdout);
  return 0;
}

int main(int argc, char** argv) {
  int rank = -1, world = -1, device = -1, steps = 3, warmup = 1;
  std::string id_file, mode = "bench", run_dir = ".", resume;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) { std::fprintf(stderr, "missing value for %s\n", a.c_str()); std::exit(2); }
      return argv[++i];
    };
    if (a == "--rank") rank = std::atoi(next());
    else if (a == "--world") world = std::atoi(next());
    else if (a == "--device") device = std::atoi(next());
    else if (a == "--nccl-id-file") id_file = next();
    else if (a == "--mode") mode = next();
    else if (a == "--steps") steps = std::atoi(next());
    else if (a == "--warmup") warmup = std::atoi(next());
    else if (a == "--seed") (void)next();
    else if (a == "--json") {}
    else if (a == "--run-dir") run_dir = next();
    else if (a == "--resume") resume = next();
    else if (a == "--no-checkpoints") g_checkpoints = false;
    else if (a == "--load-weights") (void)next();
    else { std::fprintf(stderr, "lasp_program: unknown option %s\n", a.c_str()); return 2; }
  }
  if (rank < 0) rank = env_int("OMPI_COMM_WORLD_RANK", env_int("PMI_RANK", env_int("SLURM_PROCID", 0)));
  if (world < 0) world = env_int("OMPI_COMM_WORLD_SIZE", env_int("PMI_SIZE", env_int("SLURM_NTASKS", 1)));
  if (device < 0) device = rank;

  if (!id_file.empty() && world > 1) {
    if (rank == 0) {
      std::string tmp = id_file + ".tmp";
      FILE* f = std::fopen(tmp.c_str(), "w");
      if (!f) { std::fprintf(stderr, "cannot write %s\n", tmp.c_str()); return 3; }
      std::fputs("fake-nccl-unique-id\n", f);
      std::fclose(f);
      std::rename(tmp.c_str(), id_file.c_str());
    } else {
      int waited = 0;
      while (access(id_file.c_str(), R_OK) != 0) {
        if (waited > 10000) { std::fprintf(stderr, "rank %d: no NCCL id in %s\n", rank, id_file.c_str()); return 3; }
        sleep_ms(5);
        waited += 5;
      }
    }
  }

  if (!g_checkpoints && mode != "train") {
    std::fprintf(stderr, "lasp_program: --no-checkpoints is train mode's: add --mode train\n");
    return 2;
  }
  if (mode == "train") return train(rank, world, device, steps, run_dir, resume);
  const char* nvls = std::getenv("NCCL_NVLS_ENABLE");
  std::printf("{\"event\":\"start\",\"rank\":%d,\"world\":%d,\"device\":\"Fake GPU %d\",\"spec\":\"fixture.lasp\","
              "\"mode\":\"%s\",\"steps\":%d,\"warmup\":%d,\"tokens_per_step\":4096,\"flops_per_token\":1.0e+06,"
              "\"peak_flops\":1.0e+12,\"nvls\":\"%s\"}\n",
              rank, world, device, mode.c_str(), steps, warmup, nvls ? nvls : "unset");
  std::fflush(stdout);

  if (env_int("FIXTURE_CRASH_RANK", -1) == rank) {
    std::fprintf(stderr, "rank %d: something broke\nrank %d: boom\n", rank, rank);
    return 7;
  }
  if (env_int("FIXTURE_SLEEP_RANK", -1) == rank) {
    if (env_int("FIXTURE_IGNORE_TERM", 0) == 1) std::signal(SIGTERM, SIG_IGN);
    for (int i = 0; i < 600; i++) sleep_ms(100);
  }

  int step_ms = env_int("FIXTURE_STEP_MS", 2);
  for (int s = 0; s < warmup + steps; s++) {
    sleep_ms(step_ms);
    // The loss is the mean over every rank's targets, so every rank reports the same one; it falls.
    std::printf("{\"event\":\"step\",\"rank\":%d,\"step\":%d,\"ms\":%.3f,\"loss\":%.4f,\"warmup\":%s}\n", rank,
                s, 10.0 + rank, 5.5 / (1.0 + 0.5 * s), s < warmup ? "true" : "false");
    std::fflush(stdout);
  }
  // An event this lasp does not know (a newer program's): ignored, but kept in the run folder's events.jsonl.
  std::printf("{\"event\":\"fixture_note\",\"rank\":%d,\"note\":\"from a newer program\"}\n", rank);
  std::printf("{\"event\":\"phase\",\"rank\":%d,\"name\":\"L.forward\",\"ms\":%.3f}\n", rank, 3.0 + rank);
  std::printf("{\"event\":\"phase\",\"rank\":%d,\"name\":\"L.backward\",\"ms\":%.3f}\n", rank, 6.0 + rank);
  bool failed = false;
  if (mode == "verify") {
    const char* quantities[] = {"o", "dq", "dk", "dv"};
    for (const char* q : quantities) {
      double err = 1e-4 * (rank + 1);
      if (env_int("FIXTURE_VERIFY_FAIL", 0) == 1 && rank == 1 && std::strcmp(q, "dk") == 0) err = 0.5;
      bool ok = err <= 1e-2;
      failed = failed || !ok;
      std::printf("{\"event\":\"verify\",\"rank\":%d,\"layer\":\"L\",\"quantity\":\"%s\",\"max_rel_err\":%g,"
                  "\"tolerance\":0.01,\"ok\":%s}\n", rank, q, err, ok ? "true" : "false");
    }
  }
  std::printf("{\"event\":\"summary\",\"rank\":%d,\"median_ms\":%.3f,\"tokens_per_s\":%.1f,\"tflops\":%.2f,"
              "\"hidden_comm_fraction\":%.3f,\"peak_mem_bytes\":%lld}\n",
              rank, 10.0 + rank, 1.0e5 * (rank + 1), 100.0 + rank, 0.8, (long long)(1 + rank) << 30);
  std::fflush(stdout);
  if (rank == 0) std::fprintf(stderr, "fixture: rank 0 done\n");
  return failed ? 1 : 0;
}
`;

const CMAKE_LISTS = `cmake_minimum_required(VERSION 3.16)
project(lasp_fixture LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 17)
add_executable(lasp_program main.cpp)
`;

const BUILD_SH = `#!/bin/sh
# Builds the fixture without cmake, as the generated build.sh does with nvcc.
set -e
cd "$(dirname "$0")"
echo "building for sm_\${ARCH:-90a}"
\${CXX:-g++} -O1 -std=c++17 main.cpp -o lasp_program
`;

/** The fixture program's files, as the code generator would hand them over. */
/** `modelHash`: the hash its checkpoints carry (train-constants.ts's modelHash of the spec run), as the program's. */
export function fixtureFiles(options: { broken?: boolean; modelHash?: string } = {}): Map<string, string> {
  const program = MAIN_CPP.replace('"MODEL_HASH"', JSON.stringify(options.modelHash ?? "0000000000000000"));
  const main = options.broken
    ? program.replace(
        "int main(int argc, char** argv) {",
        "int main(int argc, char** argv) {\n  this_is_not_declared(42);",
      )
    : program;
  return new Map([
    ["CMakeLists.txt", CMAKE_LISTS],
    ["main.cpp", main],
    ["build.sh", BUILD_SH],
  ]);
}
