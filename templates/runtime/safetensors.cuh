// Weights on disk: writing and reading safetensors files (https://github.com/huggingface/safetensors), the
// format `--save-weights` / `--load-weights` and checkpoints use, so that Python's `safetensors` package
// loads what the program writes and the program loads what PyTorch writes.
//
// Design choices:
// - Host code only, plain C++17 and POSIX (fsync, rename): no CUDA header, so it compiles with g++ alone
//   and its tests need no GPU (test/safetensors.test.ts). It is named .cuh like the other runtime headers,
//   which the program includes from lasp/. The caller copies tensors between the GPU and the host buffers,
//   or gives a tensor as a source the writer pulls from in pieces (a checkpoint written from the GPU without
//   a host copy of it).
// - The format: 8 bytes, little-endian, the header's length N; N bytes of JSON, one entry per tensor
//   {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the data that follows the header) and an
//   optional "__metadata__" of strings; the header padded with spaces to a multiple of 8 bytes (so the data
//   is aligned); then the tensors' bytes, back to back, in the order given, with no holes.
// - Written atomically: into `PATH.tmp.PID` in the same folder, flushed and fsync'ed, then renamed over
//   PATH and the folder fsync'ed; a crash or a full disk leaves the old file whole, never half a new one.
// - Read strictly: the header is parsed and checked against the file (offsets inside the data, sizes equal
//   to shape x dtype, no holes, no overlaps) before any data is read; each tensor the model expects must be
//   there with the expected dtype and shape, and the file may hold no other tensor. Errors are returned as a
//   sentence naming the file, the tensor, what was expected and what was found; the program prints it and
//   exits (a wrong file is the user's to fix, not a bug).
// - Only BF16, F32 and I32 data are written (weights, gradients, token ids). F16 is read where BF16 is expected
//   and wider values are allowed (--load-weights: a model saved in float16), widened to F32 exactly first; a
//   header naming another dtype parses (so the error can say "expected BF16, found F64") and is refused where a
//   tensor is checked.
#pragma once
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "json_string.cuh"  // the header's names
#include "master_bits.cuh"  // an F32 value kept whole as a master's two halves

namespace lasp {
namespace safetensors {

enum class DType { BF16, F32, I32, F16, Other };

inline const char* dtype_name(DType d) {
  return d == DType::BF16 ? "BF16" : d == DType::F32 ? "F32" : d == DType::I32 ? "I32" : d == DType::F16 ? "F16" : "?";
}
inline std::size_t dtype_bytes(DType d) {
  return d == DType::BF16 || d == DType::F16 ? 2 : d == DType::F32 || d == DType::I32 ? 4 : 0;
}

/** Fills `dst` with `bytes` bytes of a tensor, from its byte `first` on: a tensor that is not in host memory
 * (a checkpoint written straight from the GPU). */
using ByteSource = std::function<bool(uint64_t first, uint64_t bytes, void* dst)>;

/** One tensor to write: its bytes are shape's product times the dtype's size, at `data`, or (data null) from
 * `source` in pieces. */
struct TensorOut {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
  ByteSource source = nullptr;
};

/** One tensor the reader expects, and where its bytes go. */
struct TensorIn {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  void* data;
  bool wide_as_bf16 = false;  // BF16 expected, F32 and F16 taken too: read rounded to BF16 (read_bf16)
};

/** One entry of a parsed header; `dtype_text` is the header's word (e.g. "F64" for DType::Other). */
struct TensorEntry {
  std::string name;
  DType dtype;
  std::string dtype_text;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

struct Header {
  std::vector<TensorEntry> tensors;
  std::vector<std::pair<std::string, std::string>> metadata;
  /** File offset of the data: 8 + the header's length. */
  uint64_t data_start = 0;
  uint64_t data_bytes = 0;
};

/** Headers above this size are refused unread (the reference implementation's limit). */
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

namespace detail {

inline uint64_t elements(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

inline std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}


/** A small JSON reader for the header: objects, arrays, strings, non-negative integers, and skipping. */
struct Parser {
  explicit Parser(const std::string& text, const char* within = " of the header") : s(text), where(within) {}
  const std::string& s;
  const char* where;  // said after the byte offset of an error
  std::size_t i = 0;
  std::string error;

  bool fail(const std::string& what) {
    if (error.empty()) error = what + " at byte " + std::to_string(i) + where;
    return false;
  }
  void space() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i;
  }
  bool eat(char c) {
    space();
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  bool expect(char c) { return eat(c) || fail(std::string("expected '") + c + "'"); }
  bool string(std::string& out) {
    if (!expect('"')) return false;
    out.clear();
    while (i < s.size() && s[i] != '"') {
      char c = s[i++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i >= s.size()) break;
      char e = s[i++];
      switch (e) {
        case '"': case '\\': case '/': out += e; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned code = 0;
          for (int k = 0; k < 4; ++k, ++i) {
            const char h = i < s.size() ? s[i] : 'x';
            const int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (v < 0) return fail("a bad \\u escape");
            code = code * 16 + static_cast<unsigned>(v);
          }
          // Names are ASCII in practice; other code points of the basic plane are kept as UTF-8.
          if (code < 0x80) {
            out += static_cast<char>(code);
          } else if (code < 0x800) {
            out += static_cast<char>(0xC0 | (code >> 6));
            out += static_cast<char>(0x80 | (code & 0x3F));
          } else {
            out += static_cast<char>(0xE0 | (code >> 12));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (code & 0x3F));
          }
          break;
        }
        default: return fail("an unknown escape in a string");
      }
    }
    return expect('"');
  }
  bool integer(uint64_t& out) {
    space();
    std::size_t start = i;
    out = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (out > (UINT64_MAX - 9) / 10) return fail("a number too large");
      out = out * 10 + static_cast<uint64_t>(s[i++] - '0');
    }
    return i > start || fail("expected a non-negative whole number");
  }
  bool integers(std::vector<uint64_t>& out) {
    out.clear();
    if (!expect('[')) return false;
    if (eat(']')) return true;
    do {
      uint64_t v;
      if (!integer(v)) return false;
      out.push_back(v);
    } while (eat(','));
    return expect(']');
  }
  /** Skips any JSON value (unknown keys are allowed and ignored, as the reference reader does). */
  bool skip(int depth = 0) {
    space();
    if (depth > 64) return fail("values nested too deep");
    if (i >= s.size()) return fail("expected a value");
    char c = s[i];
    if (c == '"') {
      std::string ignored;
      return string(ignored);
    }
    if (c == '{' || c == '[') {
      char close = c == '{' ? '}' : ']';
      ++i;
      if (eat(close)) return true;
      do {
        if (c == '{') {
          std::string key;
          if (!string(key) || !expect(':')) return false;
        }
        if (!skip(depth + 1)) return false;
      } while (eat(','));
      return expect(close);
    }
    std::size_t start = i;
    while (i < s.size() && std::strchr(",}] \n\r\t", s[i]) == nullptr) ++i;
    return i > start || fail("expected a value");
  }
};

inline bool parse_tensor(Parser& p, TensorEntry& t) {
  if (!p.expect('{')) return false;
  bool dtype = false, shape = false, offsets = false;
  if (!p.eat('}')) {
    do {
      std::string key;
      if (!p.string(key) || !p.expect(':')) return false;
      if (key == "dtype") {
        if (!p.string(t.dtype_text)) return false;
        t.dtype = t.dtype_text == "BF16"  ? DType::BF16
                  : t.dtype_text == "F32" ? DType::F32
                  : t.dtype_text == "I32" ? DType::I32
                  : t.dtype_text == "F16" ? DType::F16
                                          : DType::Other;
        dtype = true;
      } else if (key == "shape") {
        std::vector<uint64_t> dims;
        if (!p.integers(dims)) return false;
        t.shape.assign(dims.begin(), dims.end());
        shape = true;
      } else if (key == "data_offsets") {
        std::vector<uint64_t> o;
        if (!p.integers(o)) return false;
        if (o.size() != 2) return p.fail("data_offsets of `" + t.name + "` is not [begin, end]");
        t.begin = o[0];
        t.end = o[1];
        offsets = true;
      } else if (!p.skip()) {
        return false;
      }
    } while (p.eat(','));
    if (!p.expect('}')) return false;
  }
  if (!dtype || !shape || !offsets) return p.fail("tensor `" + t.name + "` lacks dtype, shape or data_offsets");
  return true;
}

inline bool parse_header(const std::string& text, Header& h, std::string& error) {
  Parser p(text);
  bool ok = p.expect('{');
  if (ok && !p.eat('}')) {
    do {
      std::string key;
      if (!(ok = p.string(key) && p.expect(':'))) break;
      if (key == "__metadata__") {
        if (!(ok = p.expect('{'))) break;
        if (p.eat('}')) continue;
        do {
          std::pair<std::string, std::string> kv;
          if (!(ok = p.string(kv.first) && p.expect(':') && p.string(kv.second))) break;
          h.metadata.push_back(kv);
        } while (p.eat(','));
        if (!ok || !(ok = p.expect('}'))) break;
      } else {
        TensorEntry t;
        t.name = key;
        if (!(ok = parse_tensor(p, t))) break;
        h.tensors.push_back(t);
      }
    } while (p.eat(','));
    ok = ok && p.expect('}');
  }
  if (ok) {
    p.space();
    if (p.i != text.size()) ok = p.fail("text after the header's object");
  }
  if (!ok) error = p.error;
  return ok;
}

inline void fail_with(std::string* error, const std::string& message) {
  if (error != nullptr) *error = message;
}

/** fsync of the folder holding `path`, so that a rename into it survives a crash. */
inline bool sync_folder(const std::string& path) {
  std::size_t slash = path.find_last_of('/');
  std::string folder = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return false;
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

}  // namespace detail

/** The header's JSON text, padded with spaces to a multiple of 8 bytes. */
inline std::string header_text(const std::vector<TensorOut>& tensors,
                               const std::vector<std::pair<std::string, std::string>>& metadata) {
  std::string h = "{";
  bool first = true;
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    for (std::size_t i = 0; i < metadata.size(); ++i) {
      if (i) h += ',';
      append_json_string(h, metadata[i].first);
      h += ':';
      append_json_string(h, metadata[i].second);
    }
    h += '}';
    first = false;
  }
  uint64_t offset = 0;
  for (const TensorOut& t : tensors) {
    uint64_t bytes = detail::elements(t.shape) * dtype_bytes(t.dtype);
    if (!first) h += ',';
    first = false;
    append_json_string(h, t.name);
    h += ":{\"dtype\":\"";
    h += dtype_name(t.dtype);
    h += "\",\"shape\":[";
    for (std::size_t i = 0; i < t.shape.size(); ++i) h += (i ? "," : "") + std::to_string(t.shape[i]);
    h += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
    offset += bytes;
  }
  h += '}';
  while (h.size() % 8 != 0) h += ' ';
  return h;
}

/** Writes `tensors` to `path` atomically; false, with a sentence in *error, when it cannot. A tensor given by
 * its source passes through one host buffer of `staging_bytes` at a time. */
inline bool write_file(const std::string& path, const std::vector<TensorOut>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata, std::string* error,
                       std::size_t staging_bytes = std::size_t(64) << 20) {
  for (const TensorOut& t : tensors) {
    if (t.dtype != DType::BF16 && t.dtype != DType::F32 && t.dtype != DType::I32) {
      detail::fail_with(error, "cannot write tensor `" + t.name + "` of " + path + ": only BF16, F32 and I32 are written");
      return false;
    }
  }
  const std::string header = header_text(tensors, metadata);
  const std::string tmp = path + ".tmp." + std::to_string(static_cast<long>(::getpid()));
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    detail::fail_with(error, "cannot write " + path + ": cannot create " + tmp + " (" + std::strerror(errno) + ")");
    return false;
  }
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(static_cast<uint64_t>(header.size()) >> (8 * i));
  bool ok = std::fwrite(length, 1, 8, f) == 8 && std::fwrite(header.data(), 1, header.size(), f) == header.size();
  std::vector<unsigned char> staging;
  std::string failed_source;
  for (std::size_t k = 0; ok && k < tensors.size(); ++k) {
    const TensorOut& t = tensors[k];
    std::size_t bytes = static_cast<std::size_t>(detail::elements(t.shape) * dtype_bytes(t.dtype));
    if (t.data != nullptr || bytes == 0) {
      ok = bytes == 0 || std::fwrite(t.data, 1, bytes, f) == bytes;
      continue;
    }
    if (staging.empty()) staging.resize(std::max<std::size_t>(staging_bytes, 1));
    for (std::size_t done = 0; ok && done < bytes; done += staging.size()) {
      const std::size_t n = std::min(staging.size(), bytes - done);
      if (!t.source || !t.source(done, n, staging.data())) {
        failed_source = t.name;
        ok = false;
      } else {
        ok = std::fwrite(staging.data(), 1, n, f) == n;
      }
    }
  }
  const int saved = errno;
  ok = std::fflush(f) == 0 && ok;
  ok = ok && ::fsync(::fileno(f)) == 0;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int why = errno != 0 ? errno : saved;
    std::remove(tmp.c_str());
    detail::fail_with(error, "cannot write " + path + ": " +
                                 (failed_source.empty() ? std::string(std::strerror(why))
                                                        : "cannot read tensor `" + failed_source + "` to write it") +
                                 " (the old file, if any, is kept)");
    return false;
  }
  detail::sync_folder(path);
  return true;
}

/** Reads and checks the header of `path`: every tensor's bytes inside the file, no holes, no overlaps. */
inline bool read_header(const std::string& path, Header* out, std::string* error) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    detail::fail_with(error, "cannot read " + path + ": " + std::strerror(errno));
    return false;
  }
  std::fseek(f, 0, SEEK_END);
  const uint64_t size = static_cast<uint64_t>(std::ftell(f));
  std::fseek(f, 0, SEEK_SET);
  unsigned char length[8];
  if (size < 8 || std::fread(length, 1, 8, f) != 8) {
    std::fclose(f);
    detail::fail_with(error, path + " is not a safetensors file: " + std::to_string(size) +
                                 " bytes, too short for the 8-byte header length");
    return false;
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | length[i];
  if (n > kMaxHeaderBytes || 8 + n > size) {
    std::fclose(f);
    detail::fail_with(error, path + " is truncated or not a safetensors file: its header length is " +
                                 std::to_string(n) + " bytes, the file has " + std::to_string(size) + " in all");
    return false;
  }
  std::string text(static_cast<std::size_t>(n), '\0');
  const bool read = n == 0 || std::fread(&text[0], 1, text.size(), f) == text.size();
  std::fclose(f);
  Header h;
  std::string why;
  if (!read || !detail::parse_header(text, h, why)) {
    detail::fail_with(error, path + " has an unreadable safetensors header: " + (read ? why : "read error"));
    return false;
  }
  h.data_start = 8 + n;
  h.data_bytes = size - h.data_start;
  // Sorted by offset, the tensors must tile the data exactly: no holes, no overlaps, nothing past the end.
  std::vector<const TensorEntry*> order;
  for (const TensorEntry& t : h.tensors) order.push_back(&t);
  for (std::size_t a = 1; a < order.size(); ++a)
    for (std::size_t b = a; b > 0 && order[b]->begin < order[b - 1]->begin; --b) std::swap(order[b], order[b - 1]);
  uint64_t at = 0;
  for (const TensorEntry* t : order) {
    const uint64_t want = detail::elements(t->shape) * dtype_bytes(t->dtype);
    if (t->end < t->begin || (t->dtype != DType::Other && t->end - t->begin != want)) {
      detail::fail_with(error, path + ": tensor `" + t->name + "` has data_offsets [" + std::to_string(t->begin) +
                                   ", " + std::to_string(t->end) + "], which do not hold " + t->dtype_text + " " +
                                   detail::shape_text(t->shape) + " (" + std::to_string(want) + " bytes)");
      return false;
    }
    if (t->begin != at) {
      detail::fail_with(error, path + ": tensor `" + t->name + "` starts at data byte " + std::to_string(t->begin) +
                                   ", expected " + std::to_string(at) + " (a hole or an overlap)");
      return false;
    }
    at = t->end;
  }
  if (at != h.data_bytes) {
    detail::fail_with(error, path + " is truncated: its header places " + std::to_string(at) +
                                 " bytes of tensor data, the file holds " + std::to_string(h.data_bytes) +
                                 " after the header");
    return false;
  }
  *out = std::move(h);
  return true;
}

namespace detail {

/** A tensor of a checkpoint and the file it is in. */
struct Located {
  const TensorEntry* tensor;
  const std::string* path;
};

/**
 * Checks that `found` (the tensors of one file or of a set of shards, `where` naming the whole) is exactly the
 * `expected` tensors with these dtypes and shapes; false, with a sentence naming the file and the tensor.
 */
inline bool check_tensors(const std::vector<Located>& found, const std::string& where,
                          const std::vector<TensorIn>& expected, std::string* error) {
  for (const TensorIn& want : expected) {
    const Located* at = nullptr;
    for (const Located& t : found)
      if (t.tensor->name == want.name) at = &t;
    const std::string expects =
        std::string(dtype_name(want.dtype)) + (want.wide_as_bf16 ? ", F32 or F16 " : " ") + shape_text(want.shape);
    if (at == nullptr) {
      fail_with(error, where + " has no tensor `" + want.name + "` (the model expects " + expects + ")");
      return false;
    }
    const bool widened = want.wide_as_bf16 && want.dtype == DType::BF16 &&
                         (at->tensor->dtype == DType::F32 || at->tensor->dtype == DType::F16);
    if ((at->tensor->dtype != want.dtype && !widened) || at->tensor->shape != want.shape) {
      fail_with(error, *at->path + ": tensor `" + want.name + "` is " + at->tensor->dtype_text + " " +
                           shape_text(at->tensor->shape) + ", the model expects " + expects);
      return false;
    }
  }
  for (const Located& t : found) {
    bool known = false;
    for (const TensorIn& want : expected) known = known || want.name == t.tensor->name;
    if (!known) {
      fail_with(error, *t.path + " has a tensor `" + t.tensor->name + "` (" + t.tensor->dtype_text + " " +
                           shape_text(t.tensor->shape) + ") that the model does not have");
      return false;
    }
  }
  return true;
}

}  // namespace detail

/**
 * Checks that `path` holds exactly the `expected` tensors with these dtypes and shapes (their `data` is not used)
 * and gives its header, for reading whole tensors (read_file) or parts of them (read_elements); false, with a
 * sentence naming the tensor in *error, when it does not.
 */
inline bool check_file(const std::string& path, const std::vector<TensorIn>& expected, Header* out,
                       std::string* error) {
  Header h;
  if (!read_header(path, &h, error)) return false;
  std::vector<detail::Located> found;
  for (const TensorEntry& t : h.tensors) found.push_back({&t, &path});
  if (!detail::check_tensors(found, path, expected, error)) return false;
  *out = std::move(h);
  return true;
}

/** The entry of tensor `name` in header `h` (the last of that name), or nullptr. */
inline const TensorEntry* find_tensor(const Header& h, const std::string& name) {
  const TensorEntry* t = nullptr;
  for (const TensorEntry& e : h.tensors)
    if (e.name == name) t = &e;
  return t;
}

/**
 * Reads elements [first, first + count) of the tensor `name` of `path` (as flat, in its dtype) into `dst`, `h`
 * being the file's header from check_file: a part of a large tensor without reading the rest.
 */
inline bool read_elements(const std::string& path, const Header& h, const std::string& name, uint64_t first,
                          uint64_t count, void* dst, std::string* error) {
  const TensorEntry* t = find_tensor(h, name);
  if (t == nullptr || t->dtype == DType::Other) {
    detail::fail_with(error, path + " has no tensor `" + name + "` to read a part of");
    return false;
  }
  const uint64_t size = dtype_bytes(t->dtype);
  if (first + count > (t->end - t->begin) / size) {
    detail::fail_with(error, "cannot read elements " + std::to_string(first) + " to " +
                                 std::to_string(first + count) + " of `" + name + "` in " + path + ": it has " +
                                 std::to_string((t->end - t->begin) / size));
    return false;
  }
  std::FILE* f = std::fopen(path.c_str(), "rb");
  const std::size_t bytes = static_cast<std::size_t>(count * size);
  const bool ok = f != nullptr &&
                  std::fseek(f, static_cast<long>(h.data_start + t->begin + first * size), SEEK_SET) == 0 &&
                  (bytes == 0 || std::fread(dst, 1, bytes, f) == bytes);
  if (f != nullptr) std::fclose(f);
  if (!ok) detail::fail_with(error, "cannot read `" + name + "` of " + path + ": " + std::strerror(errno));
  return ok;
}

/** The bf16 bits of a float, rounded to nearest even (PyTorch's `.to(torch.bfloat16)`); a NaN stays a NaN. */
inline uint16_t bf16_bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/** The float of an IEEE half's bits, exactly (every half is a float: subnormals, infinities and NaNs too). */
inline float float_of_half(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  uint32_t u;
  if (exponent == 0x1f) {
    u = sign | 0x7f800000u | (mantissa << 13);  // infinity, or a NaN keeping its payload
  } else if (exponent != 0) {
    u = sign | ((exponent + 112) << 23) | (mantissa << 13);  // 112 = 127 - 15
  } else if (mantissa == 0) {
    u = sign;  // +-0
  } else {  // a subnormal half: normal as a float
    int shift = 0;
    uint32_t m = mantissa;
    while ((m & 0x400u) == 0) {
      m <<= 1;
      ++shift;
    }
    u = sign | (uint32_t(113 - shift) << 23) | ((m & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/**
 * read_elements for a tensor taken as BF16 (TensorIn::wide_as_bf16): a BF16 tensor's bits as they are, an F32
 * tensor's values (an F16 tensor's widened to F32 exactly first) rounded to nearest even, read through `scratch`
 * (16 MiB at most at a time). With `low`, such a value is kept whole instead, as train mode's master weights hold
 * it (master_weights.cuh): dst its bf16 rounded to nearest with ties away from zero, low the signed 16-bit
 * remainder, so (dst << 16) + low is the value's bits; a BF16 tensor's low halves are 0.
 */
inline bool read_bf16(const std::string& path, const Header& h, const std::string& name, uint64_t first,
                      uint64_t count, uint16_t* dst, std::vector<float>& scratch, std::string* error,
                      uint16_t* low = nullptr) {
  const TensorEntry* t = find_tensor(h, name);
  if (t != nullptr && t->dtype == DType::BF16) {
    if (low != nullptr) std::fill(low, low + count, uint16_t(0));
    return read_elements(path, h, name, first, count, dst, error);
  }
  if (t == nullptr || (t->dtype != DType::F32 && t->dtype != DType::F16)) {
    detail::fail_with(error, path + " has no BF16, F32 or F16 tensor `" + name + "` to read as BF16");
    return false;
  }
  const bool half = t->dtype == DType::F16;
  // Grown to the largest piece asked for, up to 16 MiB: a small first tensor does not leave every later read small.
  const uint64_t piece = std::min<uint64_t>(count, uint64_t(1) << 22);
  if (scratch.size() < piece) scratch.resize(static_cast<std::size_t>(piece));
  for (uint64_t done = 0; done < count; done += scratch.size()) {
    const uint64_t n = std::min<uint64_t>(scratch.size(), count - done);
    if (!read_elements(path, h, name, first + done, n, scratch.data(), error)) return false;
    if (half) {  // n halves fill the first half of the floats' bytes: widened from the last, each its own slot
      const char* bytes = reinterpret_cast<const char*>(scratch.data());
      for (uint64_t i = n; i-- > 0;) {
        uint16_t bits;
        std::memcpy(&bits, bytes + 2 * i, 2);
        scratch[i] = float_of_half(bits);
      }
    }
    for (uint64_t i = 0; i < n; ++i) {
      if (low == nullptr) {
        dst[done + i] = bf16_bits_of(scratch[i]);
        continue;
      }
      uint32_t u;
      std::memcpy(&u, &scratch[i], 4);
      dst[done + i] = master_bits::high(u);
      low[done + i] = master_bits::low(u, dst[done + i]);
    }
  }
  return true;
}

/** The dtype of tensor `name` in header `h` (DType::Other when it has none of that name). */
inline DType dtype_of(const Header& h, const std::string& name) {
  const TensorEntry* t = find_tensor(h, name);
  return t == nullptr ? DType::Other : t->dtype;
}

/**
 * Reads `path` into the tensors' buffers, after checking that the file holds exactly these tensors with
 * these dtypes and shapes; false, with a sentence naming the tensor in *error, when it does not.
 */
inline bool read_file(const std::string& path, const std::vector<TensorIn>& expected, std::string* error,
                      Header* header_out = nullptr) {
  Header h;
  if (!check_file(path, expected, &h, error)) return false;
  for (const TensorIn& want : expected)
    if (!read_elements(path, h, want.name, 0, detail::elements(want.shape), want.data, error)) return false;
  if (header_out != nullptr) *header_out = std::move(h);
  return true;
}

}  // namespace safetensors
}  // namespace lasp
