// A model's weights as Hugging Face stores them: one safetensors file, or a sharded checkpoint
// (`model.safetensors.index.json`, whose "weight_map" names each tensor's file, the shards beside it), or a
// folder holding either, as `save_pretrained` writes it and the Hub serves it. `--load-weights` reads through
// this, so a checkpoint of any size loads into a spec with its tensors' names and shapes.
//
// Design choices:
// - Checked whole before any data is read, as one file is (safetensors.cuh): every shard the index names is
//   read and its header checked; each tensor must be in the shard the index places it in and in no other file;
//   together they must be exactly the tensors the model expects, with their dtypes and shapes. Errors are a
//   sentence naming the file and the tensor.
// - Shard names are relative to the index's folder, as Hugging Face writes them.
// - Host code only, like safetensors.cuh: its tests need no GPU (test/safetensors.test.ts).
#pragma once
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "safetensors.cuh"

namespace lasp {
namespace safetensors {

/** The files of a checkpoint, and for each tensor the file it is in. */
struct Shards {
  std::vector<std::string> paths;  // each file once, in the order first named
  std::vector<Header> headers;     // their headers, checked
  std::string index;               // the index read, or empty for one file

  /** The file holding `name` and its header; false where no file has it. */
  bool find(const std::string& name, const std::string** path, const Header** header) const {
    for (std::size_t f = 0; f < paths.size(); ++f)
      for (const TensorEntry& t : headers[f].tensors)
        if (t.name == name) {
          *path = &paths[f];
          *header = &headers[f];
          return true;
        }
    return false;
  }
};

namespace detail {

// stat, not lstat as checkpoint.cuh's own folders: Hugging Face's cache holds a model's files as symbolic links.
inline bool is_folder(const std::string& path) {
  struct stat s;
  return ::stat(path.c_str(), &s) == 0 && S_ISDIR(s.st_mode);
}

inline bool exists(const std::string& path) {
  struct stat s;
  return ::stat(path.c_str(), &s) == 0;
}

inline bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

/** The index's "weight_map": each tensor's name and its file, in the index's order. */
inline bool read_weight_map(const std::string& index, std::vector<std::pair<std::string, std::string>>* map,
                            std::string* error) {
  std::FILE* f = std::fopen(index.c_str(), "rb");
  if (f == nullptr) {
    fail_with(error, "cannot read " + index + ": " + std::strerror(errno));
    return false;
  }
  std::string text;
  char buffer[1 << 16];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, f)) > 0;) text.append(buffer, n);
  std::fclose(f);
  const std::string within = " of " + index;
  Parser p(text, within.c_str());
  bool found = false, ok = p.expect('{');
  if (ok && !p.eat('}')) {
    do {
      std::string key;
      if (!(ok = p.string(key) && p.expect(':'))) break;
      if (key != "weight_map") {
        if (!(ok = p.skip())) break;
        continue;
      }
      found = true;
      if (!(ok = p.expect('{'))) break;
      if (p.eat('}')) continue;
      do {
        std::pair<std::string, std::string> entry;
        if (!(ok = p.string(entry.first) && p.expect(':') && p.string(entry.second))) break;
        for (const auto& seen : *map)
          if (seen.first == entry.first) {
            fail_with(error, index + " names the tensor `" + entry.first + "` twice in its weight_map");
            return false;
          }
        map->push_back(entry);
      } while (p.eat(','));
      if (!ok || !(ok = p.expect('}'))) break;
    } while (p.eat(','));
    ok = ok && p.expect('}');
  }
  if (!ok) {
    fail_with(error, index + " is not a Hugging Face weights index: " + p.error);
    return false;
  }
  if (!found) {
    fail_with(error, index + " has no \"weight_map\" (a Hugging Face index names each tensor's file there)");
    return false;
  }
  return true;
}

}  // namespace detail

/**
 * Opens `path` (a .safetensors file, a Hugging Face index `*.index.json`, or a folder with
 * `model.safetensors.index.json` or `model.safetensors`) and checks that it holds exactly the `expected`
 * tensors; false, with a sentence in *error, when it cannot or does not.
 */
inline bool open_shards(const std::string& path, const std::vector<TensorIn>& expected, Shards* out,
                        std::string* error) {
  std::string index, single;
  if (detail::is_folder(path)) {
    const std::string folder = detail::ends_with(path, "/") ? path : path + "/";
    if (detail::exists(folder + "model.safetensors.index.json")) index = folder + "model.safetensors.index.json";
    else if (detail::exists(folder + "model.safetensors")) single = folder + "model.safetensors";
    else {
      detail::fail_with(error, path + " is a folder with neither model.safetensors nor model.safetensors.index.json "
                               "(the names Hugging Face's save_pretrained writes): name the weights file");
      return false;
    }
  } else if (detail::ends_with(path, ".json")) {
    index = path;
  } else {
    single = path;
  }
  Shards s;
  if (!single.empty()) {
    s.paths = {single};
    s.headers.resize(1);
    if (!check_file(single, expected, &s.headers[0], error)) return false;
    *out = std::move(s);
    return true;
  }
  std::vector<std::pair<std::string, std::string>> map;
  if (!detail::read_weight_map(index, &map, error)) return false;
  const std::size_t slash = index.find_last_of('/');
  const std::string folder = slash == std::string::npos ? "" : index.substr(0, slash + 1);
  std::vector<std::size_t> file_of(map.size());
  for (std::size_t i = 0; i < map.size(); ++i) {
    const std::string shard = !map[i].second.empty() && map[i].second[0] == '/' ? map[i].second : folder + map[i].second;
    std::size_t f = 0;
    while (f < s.paths.size() && s.paths[f] != shard) ++f;
    if (f == s.paths.size()) {
      s.paths.push_back(shard);
      s.headers.emplace_back();
      if (!read_header(shard, &s.headers.back(), error)) return false;
    }
    file_of[i] = f;
  }
  // Each tensor in the shard the index places it in, and every shard's tensor placed there by the index.
  std::vector<detail::Located> found;
  for (std::size_t i = 0; i < map.size(); ++i) {
    const TensorEntry* at = nullptr;
    for (const TensorEntry& t : s.headers[file_of[i]].tensors)
      if (t.name == map[i].first) at = &t;
    if (at == nullptr) {
      detail::fail_with(error, index + " places the tensor `" + map[i].first + "` in " + s.paths[file_of[i]] +
                                   ", which has no such tensor");
      return false;
    }
    found.push_back({at, &s.paths[file_of[i]]});
  }
  for (std::size_t f = 0; f < s.paths.size(); ++f)
    for (const TensorEntry& t : s.headers[f].tensors) {
      bool placed = false;
      for (std::size_t i = 0; i < map.size(); ++i) placed = placed || (file_of[i] == f && map[i].first == t.name);
      if (!placed) {
        detail::fail_with(error, s.paths[f] + " has a tensor `" + t.name + "` that " + index +
                                     " does not place there");
        return false;
      }
    }
  if (!detail::check_tensors(found, index, expected, error)) return false;
  s.index = index;
  *out = std::move(s);
  return true;
}

}  // namespace safetensors
}  // namespace lasp
