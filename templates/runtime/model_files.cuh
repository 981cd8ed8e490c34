// The files written beside a model's weights besides the weights (config.json, modeling_lasp.py, a tokenizer's):
// reading a Hugging Face tokenizer's folder (`tokenizer "FOLDER"`), and whether a file already beside the
// weights is one lasp may replace.
//
// Design choices:
// - Host code only, C++17: tested with g++ (test/model-files.test.ts). weights_io.cuh stops the program with
//   the sentence these return; checkpoints take the files through checkpoint.cuh's TextFile.
// - A tokenizer's folder gives the files transformers' AutoTokenizer reads, whichever are there, read whole
//   (tokenizer.model is binary: bytes, not text); one with neither tokenizer.json nor tokenizer.model is no
//   tokenizer.
// - lasp replaces a file beside the weights only when lasp wrote it: its JSON files say so in `generated_by`
//   (tokenizer.json through the tokenizer_config.json written with it, whose keys are the tokenizers library's),
//   modeling_lasp.py on its first line; or when the file already holds the same bytes (a tokenizer's files saved
//   there before). A user's file is left alone.
#pragma once
#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "checkpoint.cuh"  // TextFile

namespace lasp {
namespace model_files {

/** The bytes of the file at `path`; false when it cannot be read. */
inline bool read_bytes(const std::string& path, std::string* bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  *bytes = text.str();
  return !in.bad();
}

/** The tokenizer files in `folder`; false, with the sentence in *error, when it holds no tokenizer. */
inline bool tokenizer_folder(const std::string& folder, std::vector<checkpoint::TextFile>* files, std::string* error) {
  static const char* const kNames[] = {"tokenizer.json",    "tokenizer_config.json", "special_tokens_map.json",
                                       "tokenizer.model",   "vocab.json",            "merges.txt",
                                       "added_tokens.json", "generation_config.json"};
  files->clear();
  for (const char* name : kNames) {
    std::string bytes;
    if (read_bytes(folder + "/" + name, &bytes)) files->push_back({name, std::move(bytes)});
  }
  const bool model = std::any_of(files->begin(), files->end(), [](const checkpoint::TextFile& f) {
    return f.name == "tokenizer.json" || f.name == "tokenizer.model";
  });
  if (!model)
    *error = "tokenizer \"" + folder +
             "\": the folder holds no tokenizer.json or tokenizer.model (a Hugging Face model's folder has them)";
  return model;
}

/** Whether `file` may be written into `folder`: it is not there, holds these bytes already, or lasp wrote it. */
inline bool may_replace(const std::string& folder, const checkpoint::TextFile& file) {
  std::string now;
  if (!std::ifstream(folder + "/" + file.name).good()) return true;
  if (read_bytes(folder + "/" + file.name, &now) && now == file.text) return true;
  const bool python = file.name.size() > 3 && file.name.compare(file.name.size() - 3, 3, ".py") == 0;
  const std::string marked = file.name == "tokenizer.json" ? "tokenizer_config.json" : file.name;
  std::string text;
  return read_bytes(folder + "/" + marked, &text) &&
         text.find(python ? "# Written by lasp" : "\"generated_by\": \"lasp") != std::string::npos;
}

}  // namespace model_files
}  // namespace lasp
