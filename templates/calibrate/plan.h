// plan.txt, as src/calibrate/plan.ts's planText writes it: one benchmark per line, `ID KIND NUMBERS...` (the
// kinds and their numbers in main.cu's header comment). Host C++ only, so test/calibrate-host-harness.cpp
// checks it against the TypeScript writer with g++ alone.
#pragma once
#include <cstdio>   // fopen, fgets, sscanf
#include <cstring>  // strcmp, strlen, strspn
#include <string>   // kinds, messages
#include <vector>   // the plan

namespace calib {

struct Item {
  int id = -1;
  std::string kind, backend;  // backend: softmax benchmarks only, "lasp" or "cudnn"
  long long n[7] = {0, 0, 0, 0, 0, 0, 0};
};

// The AllGather and AlltoAll on a copy-engine communicator (CTA policy zero, symmetric windows; main.cu).
inline bool is_copy_engine(const std::string& kind) { return kind == "all_gather_ce" || kind == "all_to_all_ce"; }

inline bool is_collective(const std::string& kind) {
  return kind == "all_gather" || kind == "reduce_scatter" || kind == "all_reduce" || kind == "all_to_all" ||
         kind == "send_recv" || is_copy_engine(kind);
}

// How many numbers follow each kind; -1 for a kind this program does not know.
inline int numbers_of(const std::string& kind) {
  if (kind == "gemm") return 7;
  if (kind == "linear_forward" || kind == "linear_backward") return 4;
  if (kind == "softmax_forward" || kind == "softmax_backward") return 5;
  if (kind == "softmax_gathered") return 7;
  if (kind == "copy" || kind == "add" || is_collective(kind)) return 1;
  return -1;
}

// Reads the plan into `items`; false with `error` (file:line: what) where it cannot.
inline bool read_plan(const std::string& path, std::vector<Item>* items, std::string* error) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) {
    *error = "cannot read the plan " + path;
    return false;
  }
  char line[512];
  int number = 0;
  bool ok = true;
  while (ok && std::fgets(line, sizeof line, f) != nullptr) {
    ++number;
    const std::string at = path + ":" + std::to_string(number) + ": ";
    if (std::strspn(line, " \t\r\n") == std::strlen(line)) continue;  // a blank line
    char kind[64] = {0}, backend[16] = {0};
    Item it;
    int used = 0;
    if (std::sscanf(line, "%d %63s%n", &it.id, kind, &used) != 2) {
      *error = at + "not `ID KIND NUMBERS...`";
      ok = false;
      break;
    }
    it.kind = kind;
    const int count = numbers_of(it.kind);
    if (count < 0) {
      *error = at + "unknown benchmark " + it.kind;
      ok = false;
      break;
    }
    const char* rest = line + used;
    for (int k = 0; k < count && ok; ++k) {
      int more = 0;
      if (std::sscanf(rest, "%lld%n", &it.n[k], &more) != 1 || it.n[k] < 0) {
        *error = at + it.kind + " needs " + std::to_string(count) + " numbers of 0 or more";
        ok = false;
      }
      rest += more;
    }
    if (ok && it.kind.rfind("softmax_", 0) == 0) {
      if (std::sscanf(rest, "%15s", backend) != 1 ||
          (std::strcmp(backend, "lasp") != 0 && std::strcmp(backend, "cudnn") != 0)) {
        *error = at + "a softmax benchmark ends with lasp or cudnn";
        ok = false;
      }
      it.backend = backend;
    }
    if (ok) items->push_back(it);
  }
  std::fclose(f);
  return ok;
}

}  // namespace calib
