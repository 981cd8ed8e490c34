// Drives templates/runtime/model_files.cuh for test/model-files.test.ts:
//   harness tokenizer DIR             the files read from a tokenizer's folder: "NAME BYTES" a line, or the error
//                                     on stderr and exit 1
//   harness replace DIR NAME CONTENT  "yes" when lasp may write NAME (with CONTENT) into DIR, else "no"
#include <cstdio>
#include <string>
#include <vector>

#include "model_files.cuh"

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const std::string mode = argv[1], dir = argv[2];
  if (mode == "tokenizer" && argc == 3) {
    std::vector<lasp::checkpoint::TextFile> files;
    std::string error;
    if (!lasp::model_files::tokenizer_folder(dir, &files, &error)) {
      std::fprintf(stderr, "%s\n", error.c_str());
      return 1;
    }
    for (const auto& f : files) std::printf("%s %zu\n", f.name.c_str(), f.text.size());
    return 0;
  }
  if (mode == "replace" && argc == 5) {
    std::printf("%s\n", lasp::model_files::may_replace(dir, {argv[3], argv[4]}) ? "yes" : "no");
    return 0;
  }
  return 2;
}
