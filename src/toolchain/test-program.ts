// A stand-in for the generated program, for tests on machines without GPUs: a C++ (not CUDA) CMake project
// whose target `lasp_program` speaks PROTOCOL.md: the command line, the NCCL id file handshake (a fake id),
// the JSON events on stdout and the exit codes. Environment variables make it misbehave:
//   FIXTURE_CRASH_RANK=R   rank R prints to stderr and exits 7 after its start event
//   FIXTURE_SLEEP_RANK=R   rank R sleeps 60 s after its start event (FIXTURE_IGNORE_TERM=1: ignores SIGTERM)
//   FIXTURE_STEP_MS=N      each step sleeps N ms (default 2)
//   FIXTURE_VERIFY_FAIL=1  in verify mode, one error is above tolerance and the exit code is 1

const MAIN_CPP = String.raw`// Test fixture for lasp run: a CPU-only program that follows src/toolchain/PROTOCOL.md.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <unistd.h>

static int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

static void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

int main(int argc, char** argv) {
  int rank = -1, world = -1, device = -1, steps = 3, warmup = 1;
  std::string id_file, mode = "bench";
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
export function fixtureFiles(options: { broken?: boolean } = {}): Map<string, string> {
  const main = options.broken
    ? MAIN_CPP.replace(
        "int main(int argc, char** argv) {",
        "int main(int argc, char** argv) {\n  this_is_not_declared(42);",
      )
    : MAIN_CPP;
  return new Map([
    ["CMakeLists.txt", CMAKE_LISTS],
    ["main.cpp", main],
    ["build.sh", BUILD_SH],
  ]);
}
