// A stand-in for the microbenchmark program (templates/calibrate/main.cu), for tests on machines without
// GPUs: a C++ program that reads the same plan.txt and command line and answers each benchmark of its part
// with the time a known machine would take, so a test can check that the fit finds that machine again:
//   GEMMs and softmax attention at FIXTURE_TFLOPS (default 500) TFLOP/s, streaming at 2.5 TB/s, linear
//   attention 1 ms; collectives t = 10 us + f x bytes / 300 GB/s (f: nccl-tests' bus factor for --world), the
//   copy-engine ones (all_gather_ce, all_to_all_ce) t = 20 us + f x bytes / 400 GB/s, or skipped where
//   FIXTURE_COPY_ENGINES=0 ("no symmetric window", as the program says where NCCL registers none);
//   cuDNN benchmarks are skipped ("built without cuDNN"), but for softmax_gathered where
//   FIXTURE_GATHERED=E: the whole sequence's forward and backward at FIXTURE_TFLOPS, the ranks' calls at E of that.
//   FIXTURE_CRASH_PART=P  the part P prints to stderr and exits 3 after its first answer
const MAIN_CPP = String.raw`// Test stand-in for lasp calibrate's program (src/calibrate/test-program.ts).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

static double env_double(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atof(v) : fallback;
}

int main(int argc, char** argv) {
  int rank = 0, world = 1;
  std::string plan, part = "compute";
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) { std::fprintf(stderr, "missing value for %s\n", a.c_str()); std::exit(2); }
      return argv[++i];
    };
    if (a == "--rank") rank = std::atoi(next());
    else if (a == "--world") world = std::atoi(next());
    else if (a == "--device" || a == "--nccl-id-file" || a == "--runs" || a == "--warmup") (void)next();
    else if (a == "--plan") plan = next();
    else if (a == "--part") part = next();
    else if (a == "--json") {}
    else { std::fprintf(stderr, "unknown option %s\n", a.c_str()); return 2; }
  }
  FILE* f = std::fopen(plan.c_str(), "r");
  if (!f) { std::fprintf(stderr, "cannot read the plan %s\n", plan.c_str()); return 2; }
  if (rank == 0 && part == "compute")
    std::printf("{\"event\":\"device\",\"rank\":0,\"name\":\"Fake H100\",\"sms\":132,\"memory_bytes\":85520809984,"
                "\"cc\":\"9.0\",\"cudnn\":null}\n");
  const double flops = env_double("FIXTURE_TFLOPS", 500) * 1e12;
  const char* crash = std::getenv("FIXTURE_CRASH_PART");
  int id;
  char kind[64];
  while (std::fscanf(f, "%d %63s", &id, kind) == 2) {
    double n[7] = {0, 0, 0, 0, 0, 0, 0};
    char backend[16] = "";
    std::string k = kind;
    int count = k == "gemm" ? 7 : k.rfind("linear_", 0) == 0 ? 4 : k == "softmax_gathered" ? 7
              : k.rfind("softmax_", 0) == 0 ? 5 : 1;
    for (int i = 0; i < count; i++) if (std::fscanf(f, "%lf", &n[i]) != 1) return 2;
    if (k.rfind("softmax_", 0) == 0 && std::fscanf(f, "%15s", backend) != 1) return 2;
    bool copy_engine = k == "all_gather_ce" || k == "all_to_all_ce";
    bool collective = k == "all_gather" || k == "reduce_scatter" || k == "all_reduce" || k == "all_to_all" ||
                      k == "send_recv" || copy_engine;
    if (collective != (part == "collectives")) continue;
    double seconds;
    const char* gathered = std::getenv("FIXTURE_GATHERED");
    if (k == "softmax_gathered" && gathered && *gathered) {
      double sequence = n[0] * n[5];
      double whole = 3.5 * 4 * sequence * sequence * n[1] * n[3] * (n[4] != 0 ? 0.5 : 1) / flops;
      if (rank == 0)
        std::printf("{\"event\":\"measure\",\"rank\":0,\"id\":%d,\"ms\":%.9g,\"runs\":20,\"whole_ms\":%.9g}\n", id,
                    whole / std::atof(gathered) * 1e3, whole * 1e3);
      std::fflush(stdout);
      continue;
    }
    if (k == "gemm") seconds = 2 * n[0] * n[1] * n[2] / flops;
    else if (k == "copy") seconds = 2 * n[0] / 2.5e12;
    else if (k == "add") seconds = 3 * n[0] / 2.5e12;
    else if (k.rfind("linear_", 0) == 0) seconds = 1e-3;
    else if (k.rfind("softmax_", 0) == 0) {
      if (std::strcmp(backend, "cudnn") == 0) {
        if (rank == 0) std::printf("{\"event\":\"skipped\",\"rank\":0,\"id\":%d,\"why\":\"built without cuDNN\"}\n", id);
        continue;
      }
      double fwd = 4 * n[0] * n[0] * n[1] * n[3] * (n[4] != 0 ? 0.5 : 1);
      seconds = (k == "softmax_forward" ? fwd : 2.5 * fwd) / flops;
    } else {
      double factor = k == "all_reduce" ? 2.0 * (world - 1) / world : k == "send_recv" ? 1.0 : (world - 1.0) / world;
      const char* copies = std::getenv("FIXTURE_COPY_ENGINES");
      if (copy_engine && copies && std::strcmp(copies, "0") == 0) {
        if (rank == 0)
          std::printf("{\"event\":\"skipped\",\"rank\":0,\"id\":%d,\"why\":\"NCCL registered no symmetric window\"}\n", id);
        continue;
      }
      seconds = copy_engine ? 20e-6 + factor * n[0] / 400e9 : 10e-6 + factor * n[0] / 300e9;
    }
    if (rank == 0) std::printf("{\"event\":\"measure\",\"rank\":0,\"id\":%d,\"ms\":%.9g,\"runs\":20}\n", id, seconds * 1e3);
    std::fflush(stdout);
    if (crash && part == crash) {
      std::fprintf(stderr, "CUDA error cudaErrorMemoryAllocation (out of memory)\n  at main.cu:1\n");
      return 3;
    }
  }
  std::fclose(f);
  return 0;
}
`;

const BUILD_SH = `#!/bin/sh
# Builds the stand-in with the host compiler, as the real build.sh does with nvcc.
set -e
cd "$(dirname "$0")"
\${CXX:-g++} -O1 -std=c++17 main.cpp -o lasp_program
`;

/** The stand-in's files, as calibrateProgram hands over the real program's. */
export function calibrateFixtureFiles(): Map<string, string> {
  return new Map([
    ["main.cpp", MAIN_CPP],
    ["build.sh", BUILD_SH],
  ]);
}
