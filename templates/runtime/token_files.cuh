// Training tokens on disk: `data "PATH"` in train mode reads the two formats users already have, memory-mapped,
// and gives each rank the ids and targets of its own pieces of a training window.
//
// The formats (as their writers produce them):
// - llm.c (karpathy/llm.c, dev/data/data_common.py write_datafile; read by llmc/dataloader.h): a header of 256
//   int32, little-endian: [0] the magic, [1] the version, [2] the token count; the tokens follow, back to back,
//   and the file ends with them. Two pairs exist: magic 20240520 version 1 = uint16 tokens (GPT-2) and magic
//   20240801 version 7 = uint32 tokens (Llama 3). No other pair is accepted (llm.c refuses them too).
// - Megatron-LM's indexed dataset (megatron/core/datasets/indexed_dataset.py, _IndexWriter / _IndexReader):
//   PREFIX.bin holds the tokens of every sequence back to back; PREFIX.idx is, little-endian and unpadded:
//   "MMIDIDX\0\0" (9 bytes), version uint64 = 1, dtype code uint8, sequence count N uint64, document count D
//   uint64 (34 bytes so far), N int32 sequence lengths, N int64 sequence pointers (byte offsets into .bin),
//   D int64 document indices (0 first, N last), then, for multimodal datasets only, N int8 modes. Dtype codes:
//   1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 6 float64, 7 float32, 8 uint16 (Megatron writes uint16 for
//   vocabularies under 65500, int32 otherwise); the float codes are refused.
//
// Design choices:
// - Host code only, plain C++17 and POSIX (open, mmap): no CUDA header, so it compiles with g++ alone and its
//   tests need no GPU (test/token-files.test.ts). Named .cuh like the other runtime headers.
// - Which format: PATH names a Megatron dataset when PATH.idx exists beside PATH.bin (PATH given as the prefix,
//   as Megatron's --data-path takes it, or as PREFIX.bin or PREFIX.idx); anything else must be an llm.c file.
// - Memory-mapped, never loaded whole: the token stream is (a pointer into the mapping, a dtype, a count), the
//   same for both formats. Megatron's sequences are read as one stream in index order, as its GPT dataset
//   concatenates documents (their end-of-document tokens are in the data); that needs the sequences back to
//   back from byte 0, which is what Megatron's builder (and its merge of datasets) writes, and is checked.
// - Checked up front, before any token is used: magic, version, dtype, every size against the file's length
//   (truncated or too long), every sequence pointer and length against the .bin, the document indices.
//   Token ids are checked against the vocabulary where they are read (`read`) and, for the whole file, by
//   `check_vocab`, which the program can run before step 1 (a sequential pass over the mapping). Errors are a
//   sentence naming the file, the offset and what was expected; the program prints it and exits (a wrong file
//   is the user's to fix, not a bug).
// - Windows: training window k holds tokens [k * seq_len, (k + 1) * seq_len) and its targets are the tokens one
//   later, so window k reads up to token (k + 1) * seq_len; the file gives (count - 1) / seq_len windows, and
//   every position of every window has a real target. A rank reads only its own pieces (contiguous: piece r of
//   W; zigzag: pieces r and 2W-1-r of 2W, in that local order, as src/schedule/layout.ts plans them), each plus
//   the one token after it, which is the first token of the next piece in global order (held by another rank):
//   no token moves between ranks. A position with no token after it in the file (only when a caller asks for
//   a window that ends at the file's last token) gets target -1, the program's "no target".
// - The order of windows: a Fisher-Yates shuffle of 0..windows-1 per epoch, driven by splitmix64 from
//   (seed, epoch) with rejection sampling for the bounded draws, all in 64-bit integer arithmetic: the same
//   order on every platform and library (std::shuffle's is not), so a checkpoint's data position (a count of
//   windows consumed) resumes the same stream.
#pragma once
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace lasp {
namespace token_files {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "token files are little-endian and read in place");

enum class Format { LlmC, Megatron };
enum class TokenType { UInt8, Int8, Int16, UInt16, Int32, UInt32, Int64 };

inline const char* format_name(Format f) { return f == Format::LlmC ? "llm.c" : "Megatron"; }

inline const char* token_type_name(TokenType t) {
  switch (t) {
    case TokenType::UInt8: return "uint8";
    case TokenType::Int8: return "int8";
    case TokenType::Int16: return "int16";
    case TokenType::UInt16: return "uint16";
    case TokenType::Int32: return "int32";
    case TokenType::UInt32: return "uint32";
    case TokenType::Int64: return "int64";
  }
  return "?";
}

inline std::size_t token_bytes(TokenType t) {
  switch (t) {
    case TokenType::UInt8: case TokenType::Int8: return 1;
    case TokenType::Int16: case TokenType::UInt16: return 2;
    case TokenType::Int32: case TokenType::UInt32: return 4;
    case TokenType::Int64: return 8;
  }
  return 0;
}

/** llm.c's header: 256 int32. */
constexpr uint64_t kLlmcHeaderBytes = 256 * 4;
constexpr int32_t kLlmcMagicGpt2 = 20240520, kLlmcVersionGpt2 = 1;      // uint16 tokens
constexpr int32_t kLlmcMagicLlama3 = 20240801, kLlmcVersionLlama3 = 7;  // uint32 tokens
/** Megatron's index: the 9-byte magic, then version, dtype code, sequence and document counts: 34 bytes. */
constexpr char kMegatronMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};
constexpr uint64_t kMegatronHeaderBytes = 34;

namespace detail {

inline void fail_with(std::string* error, const std::string& message) {
  if (error != nullptr) *error = message;
}

inline bool exists(const std::string& path) {
  struct stat s;
  return ::stat(path.c_str(), &s) == 0 && S_ISREG(s.st_mode);
}

inline bool ends_with(const std::string& s, const char* tail) {
  const std::size_t n = std::strlen(tail);
  return s.size() >= n && s.compare(s.size() - n, n, tail) == 0;
}

/** A read-only mapping of a whole file; empty files have size 0 and no mapping. */
class Mapping {
 public:
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  Mapping(Mapping&& o) noexcept { *this = std::move(o); }
  Mapping& operator=(Mapping&& o) noexcept {
    if (this != &o) {
      unmap();
      data_ = o.data_;
      size_ = o.size_;
      o.data_ = nullptr;
      o.size_ = 0;
    }
    return *this;
  }
  ~Mapping() { unmap(); }

  bool map(const std::string& path, std::string* error) {
    unmap();
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) {
      fail_with(error, "cannot read " + path + ": " + std::strerror(errno));
      return false;
    }
    struct stat s;
    if (::fstat(fd, &s) != 0) {
      fail_with(error, "cannot read " + path + ": " + std::strerror(errno));
      ::close(fd);
      return false;
    }
    size_ = static_cast<uint64_t>(s.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, static_cast<std::size_t>(size_), PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        fail_with(error, "cannot map " + path + " into memory: " + std::strerror(errno));
        ::close(fd);
        size_ = 0;
        return false;
      }
      data_ = static_cast<const unsigned char*>(p);
    }
    ::close(fd);  // the mapping keeps the file open
    return true;
  }

  const unsigned char* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  void unmap() {
    if (data_ != nullptr) ::munmap(const_cast<unsigned char*>(data_), static_cast<std::size_t>(size_));
    data_ = nullptr;
    size_ = 0;
  }
  const unsigned char* data_ = nullptr;
  uint64_t size_ = 0;
};

/** A little-endian value at any byte offset (Megatron's arrays start at offset 34: not aligned). */
template <class T>
inline T load(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

/** Token i of a stream of type t, widened; uint64 holds every id the formats allow, int64 keeps the sign. */
inline int64_t token_at(const unsigned char* base, TokenType t, uint64_t i) {
  switch (t) {
    case TokenType::UInt8: return base[i];
    case TokenType::Int8: return load<int8_t>(base + i);
    case TokenType::Int16: return load<int16_t>(base + 2 * i);
    case TokenType::UInt16: return load<uint16_t>(base + 2 * i);
    case TokenType::Int32: return load<int32_t>(base + 4 * i);
    case TokenType::UInt32: return load<uint32_t>(base + 4 * i);
    case TokenType::Int64: return load<int64_t>(base + 8 * i);
  }
  return -1;
}

inline std::string num(uint64_t v) { return std::to_string(v); }

}  // namespace detail

/** An open token file of either format: a mapped stream of `count()` token ids of `type()`. */
class TokenFile {
 public:
  /** Opens and checks PATH (see the design notes for how the format is chosen); false with *error if bad. */
  bool open(const std::string& path, std::string* error) {
    *this = TokenFile();
    std::string prefix;
    if (megatron_prefix(path, &prefix)) return open_megatron(prefix, error);
    return open_llmc(path, error);
  }

  Format format() const { return format_; }
  TokenType type() const { return type_; }
  uint64_t count() const { return count_; }
  /** The file the tokens are read from (PREFIX.bin for Megatron). */
  const std::string& path() const { return path_; }

  /**
   * Reads tokens [first, first + n) into out as int32, checking each is in [0, vocab); false with a sentence
   * naming the first bad token's offset (in tokens and in bytes of the file), or a range past the end.
   */
  bool read(uint64_t first, uint64_t n, int vocab, int32_t* out, std::string* error) const {
    if (first > count_ || n > count_ - first) {
      detail::fail_with(error, "cannot read tokens [" + detail::num(first) + ", " + detail::num(first + n) + ") of " +
                                   path_ + ": it holds " + detail::num(count_));
      return false;
    }
    for (uint64_t i = 0; i < n; ++i) {
      const int64_t id = detail::token_at(tokens_, type_, first + i);
      if (id < 0 || id >= vocab) return bad_token(first + i, id, vocab, error);
      out[i] = static_cast<int32_t>(id);
    }
    return true;
  }

  /** Checks every token of the file against the vocabulary: one sequential pass over the mapping. */
  bool check_vocab(int vocab, std::string* error) const { return check_vocab_part(vocab, 0, 1, error); }

  /** check_vocab over part `part` of `parts` equal parts of the file (each rank checks its own). */
  bool check_vocab_part(int vocab, uint64_t part, uint64_t parts, std::string* error) const {
    const uint64_t first = count_ / parts * part + (part < count_ % parts ? part : count_ % parts);
    const uint64_t n = count_ / parts + (part < count_ % parts ? 1 : 0);
    for (uint64_t i = first; i < first + n; ++i) {
      const int64_t id = detail::token_at(tokens_, type_, i);
      if (id < 0 || id >= vocab) return bad_token(i, id, vocab, error);
    }
    return true;
  }

  /** ends[i] = 1 where token first + i is `token` (`documents eos`: a document ends there), else 0. */
  void token_ends(uint64_t first, uint64_t n, int64_t token, int32_t* ends) const {
    for (uint64_t i = 0; i < n; ++i) ends[i] = detail::token_at(tokens_, type_, first + i) == token ? 1 : 0;
  }

  /**
   * ends[i] = 1 where a document of the Megatron index ends at token first + i (`documents index`), else 0;
   * an llm.c file has no index: all 0.
   */
  void index_ends(uint64_t first, uint64_t n, int32_t* ends) const {
    for (uint64_t i = 0; i < n; ++i) ends[i] = 0;
    // document_ends_ holds one past each document's last token, ascending: the first at or after first + 1.
    auto it = std::lower_bound(document_ends_.begin(), document_ends_.end(), first + 1);
    for (; it != document_ends_.end() && *it <= first + n; ++it) ends[*it - 1 - first] = 1;
  }

  /** The byte of the file (path()) where token i starts. */
  uint64_t byte_of(uint64_t i) const { return data_start_ + i * token_bytes(type_); }

 private:
  static bool megatron_prefix(const std::string& path, std::string* prefix) {
    std::string p = path;
    if (detail::ends_with(p, ".bin") || detail::ends_with(p, ".idx")) p = p.substr(0, p.size() - 4);
    const bool named_part = p.size() != path.size();
    if (!named_part && detail::exists(path)) return false;  // a file of its own name: llm.c's
    // A prefix alone names a Megatron dataset if either part is there (the other's absence is then reported);
    // PREFIX.bin does only with PREFIX.idx beside it (else it is an llm.c file); PREFIX.idx always does.
    const bool is = detail::ends_with(path, ".idx") || detail::exists(p + ".idx") ||
                    (!named_part && detail::exists(p + ".bin"));
    if (is) *prefix = p;
    return is;
  }

  /** Megatron's DType codes of integer types; 6 (float64) and 7 (float32) hold no token ids. */
  static bool megatron_type(unsigned code, TokenType* out) {
    switch (code) {
      case 1: *out = TokenType::UInt8; return true;
      case 2: *out = TokenType::Int8; return true;
      case 3: *out = TokenType::Int16; return true;
      case 4: *out = TokenType::Int32; return true;
      case 5: *out = TokenType::Int64; return true;
      case 8: *out = TokenType::UInt16; return true;
      default: return false;
    }
  }

  bool bad_token(uint64_t i, int64_t id, int vocab, std::string* error) const {
    detail::fail_with(error, path_ + ": token " + detail::num(i) + " (byte " + detail::num(byte_of(i)) + ") is " +
                                 std::to_string(id) + ", outside the vocabulary [0, " + std::to_string(vocab) +
                                 ")");
    return false;
  }

  bool open_llmc(const std::string& path, std::string* error) {
    path_ = path;
    format_ = Format::LlmC;
    if (!file_.map(path, error)) return false;
    const uint64_t size = file_.size();
    const std::string megatron_hint =
        detail::ends_with(path, ".bin")
            ? " (nor a Megatron dataset: there is no " + path.substr(0, path.size() - 4) + ".idx beside it)"
            : "";
    if (size < kLlmcHeaderBytes) {
      detail::fail_with(error, path + " is not an llm.c token file" + megatron_hint + ": " + detail::num(size) +
                                   " bytes, too short for the " + detail::num(kLlmcHeaderBytes) + "-byte header");
      return false;
    }
    const int32_t magic = detail::load<int32_t>(file_.data());
    const int32_t version = detail::load<int32_t>(file_.data() + 4);
    const int32_t announced = detail::load<int32_t>(file_.data() + 8);
    if (magic != kLlmcMagicGpt2 && magic != kLlmcMagicLlama3) {
      detail::fail_with(error, path + " is not an llm.c token file" + megatron_hint + ": its magic number (int32 at "
                                   "byte 0) is " + std::to_string(magic) + ", expected " +
                                   std::to_string(kLlmcMagicGpt2) + " (uint16 tokens) or " +
                                   std::to_string(kLlmcMagicLlama3) + " (uint32 tokens)");
      return false;
    }
    const bool gpt2 = magic == kLlmcMagicGpt2;
    const int32_t want = gpt2 ? kLlmcVersionGpt2 : kLlmcVersionLlama3;
    if (version != want) {
      detail::fail_with(error, path + " has llm.c's magic " + std::to_string(magic) + " but version " +
                                   std::to_string(version) + " (int32 at byte 4); llm.c writes version " +
                                   std::to_string(want) + " with this magic (" + (gpt2 ? "uint16" : "uint32") +
                                   " tokens)");
      return false;
    }
    type_ = gpt2 ? TokenType::UInt16 : TokenType::UInt32;
    if (announced <= 0) {
      detail::fail_with(error, path + ": its header (int32 at byte 8) announces " + std::to_string(announced) +
                                   " tokens, expected a positive count");
      return false;
    }
    count_ = static_cast<uint64_t>(announced);
    data_start_ = kLlmcHeaderBytes;
    tokens_ = file_.data() + kLlmcHeaderBytes;
    const uint64_t want_bytes = count_ * token_bytes(type_), have = size - kLlmcHeaderBytes;
    if (have != want_bytes) {
      detail::fail_with(error, path + (have < want_bytes ? " is truncated" : " is longer than its header says") +
                                   ": the header announces " + detail::num(count_) + " " + token_type_name(type_) +
                                   " tokens (" + detail::num(want_bytes) + " bytes after the " +
                                   detail::num(kLlmcHeaderBytes) + "-byte header), the file holds " +
                                   detail::num(have) + " bytes after it");
      return false;
    }
    return true;
  }

  bool open_megatron(const std::string& prefix, std::string* error) {
    const std::string idx = prefix + ".idx", bin = prefix + ".bin";
    path_ = bin;
    format_ = Format::Megatron;
    if (!detail::exists(idx)) {
      detail::fail_with(error, "the Megatron dataset " + prefix + " has no index: " + idx + " is missing beside " +
                                   bin + " (an llm.c token file is named by its own path, " + bin + ")");
      return false;
    }
    if (!detail::exists(bin)) {
      detail::fail_with(error, "the Megatron dataset " + prefix + " has no data: " + bin + " is missing beside " + idx);
      return false;
    }
    detail::Mapping index;
    if (!index.map(idx, error)) return false;
    const unsigned char* p = index.data();
    const uint64_t size = index.size();
    if (size < sizeof kMegatronMagic || std::memcmp(p, kMegatronMagic, sizeof kMegatronMagic) != 0) {
      detail::fail_with(error, idx + " is not a Megatron index: it does not start with \"MMIDIDX\\0\\0\"");
      return false;
    }
    if (size < kMegatronHeaderBytes) {
      detail::fail_with(error, idx + " is truncated: " + detail::num(size) + " bytes, too short for the " +
                                   detail::num(kMegatronHeaderBytes) + "-byte header");
      return false;
    }
    const uint64_t version = detail::load<uint64_t>(p + 9);
    if (version != 1) {
      detail::fail_with(error, idx + " has version " + detail::num(version) +
                                   " (uint64 at byte 9), expected 1, the only version Megatron writes");
      return false;
    }
    const unsigned code = p[17];
    if (!megatron_type(code, &type_)) {
      const std::string what = code == 6 ? "float64, not token ids" : code == 7 ? "float32, not token ids" : "unknown";
      detail::fail_with(error, idx + " has dtype code " + std::to_string(code) + " (byte 17: " + what +
                                   "), expected one of 1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 8 uint16");
      return false;
    }
    const uint64_t sequences = detail::load<uint64_t>(p + 18), documents = detail::load<uint64_t>(p + 26);
    // 12 bytes per sequence (length, pointer) and 8 per document index; bounded first so the sum cannot wrap.
    const uint64_t room = size - kMegatronHeaderBytes;
    const bool fits = sequences <= room / 12 && documents <= room / 8 &&
                      12 * sequences + 8 * documents <= room;
    const uint64_t want = fits ? kMegatronHeaderBytes + 12 * sequences + 8 * documents : 0;
    if (!fits || (size != want && size != want + sequences)) {
      const std::string layout = " (34-byte header, " + detail::num(sequences) + " int32 lengths, " +
                                 detail::num(sequences) + " int64 pointers, " + detail::num(documents) +
                                 " int64 document indices)";
      detail::fail_with(error, idx + (!fits || size < want ? " is truncated" : " is longer than its header says") +
                                   ": its header announces " + detail::num(sequences) + " sequences and " +
                                   detail::num(documents) + " document indices" + layout + ", the file has " +
                                   detail::num(size) + " bytes");
      return false;
    }
    const uint64_t lengths_at = kMegatronHeaderBytes, pointers_at = lengths_at + 4 * sequences,
                   documents_at = pointers_at + 8 * sequences;
    const uint64_t width = token_bytes(type_);
    uint64_t tokens = 0;
    for (uint64_t s = 0; s < sequences; ++s) {
      const int32_t length = detail::load<int32_t>(p + lengths_at + 4 * s);
      const int64_t pointer = detail::load<int64_t>(p + pointers_at + 8 * s);
      if (length < 0) {
        detail::fail_with(error, idx + ": sequence " + detail::num(s) + " has length " + std::to_string(length) +
                                     " (int32 at byte " + detail::num(lengths_at + 4 * s) + ")");
        return false;
      }
      if (pointer < 0 || static_cast<uint64_t>(pointer) != tokens * width) {
        detail::fail_with(error, idx + ": sequence " + detail::num(s) + " starts at byte " + std::to_string(pointer) +
                                     " of " + bin + " (int64 at byte " + detail::num(pointers_at + 8 * s) +
                                     "), expected " + detail::num(tokens * width) +
                                     ": the sequences must lie back to back, as Megatron's builder writes them");
        return false;
      }
      tokens += static_cast<uint64_t>(length);
    }
    if (documents == 0) {
      detail::fail_with(error, idx + " has no document indices, expected at least [0, " + detail::num(sequences) + "]");
      return false;
    }
    for (uint64_t d = 0; d < documents; ++d) {
      const int64_t at = detail::load<int64_t>(p + documents_at + 8 * d);
      const int64_t before = d == 0 ? 0 : detail::load<int64_t>(p + documents_at + 8 * (d - 1));
      const bool last = d + 1 == documents;
      if ((d == 0 && at != 0) || at < before || at > static_cast<int64_t>(sequences) ||
          (last && at != static_cast<int64_t>(sequences))) {
        detail::fail_with(error, idx + ": document index " + detail::num(d) + " is " + std::to_string(at) +
                                     " (int64 at byte " + detail::num(documents_at + 8 * d) + "), expected " +
                                     (d == 0 ? "0" : last ? detail::num(sequences) + " (the sequence count)"
                                                          : "a sequence number between its neighbours'"));
        return false;
      }
    }
    // Where each document ends, for `documents index`: a document is the sequences between two indices.
    {
      std::vector<uint64_t> sequence_end(sequences);
      uint64_t at = 0;
      for (uint64_t s = 0; s < sequences; ++s)
        sequence_end[s] = at += static_cast<uint64_t>(detail::load<int32_t>(p + lengths_at + 4 * s));
      document_ends_.clear();
      for (uint64_t d = 1; d < documents; ++d) {
        const int64_t next = detail::load<int64_t>(p + documents_at + 8 * d);
        const uint64_t end = next == 0 ? 0 : sequence_end[next - 1];
        if (end > 0 && (document_ends_.empty() || end > document_ends_.back())) document_ends_.push_back(end);
      }
    }
    if (!file_.map(bin, error)) return false;
    const uint64_t want_bytes = tokens * width;
    if (file_.size() != want_bytes) {
      detail::fail_with(error, bin + (file_.size() < want_bytes ? " is truncated" : " is longer than its index says") +
                                   ": " + idx + " describes " + detail::num(tokens) + " " + token_type_name(type_) +
                                   " tokens (" + detail::num(want_bytes) + " bytes), the file has " +
                                   detail::num(file_.size()));
      return false;
    }
    if (tokens == 0) {
      detail::fail_with(error, "the Megatron dataset " + prefix + " holds no tokens");
      return false;
    }
    count_ = tokens;
    data_start_ = 0;
    tokens_ = file_.data();
    return true;
  }

  detail::Mapping file_;
  std::string path_;
  Format format_ = Format::LlmC;
  TokenType type_ = TokenType::UInt16;
  uint64_t count_ = 0;
  uint64_t data_start_ = 0;
  const unsigned char* tokens_ = nullptr;
  std::vector<uint64_t> document_ends_;  // Megatron: one past each document's last token, ascending
};

// ---------------------------------------------------------------------------------------------------------
// Windows, pieces and their order.

enum class Layout { Contiguous, Zigzag };

/** Positions [start, start + length) of a window (relative to the window's first token). */
struct WindowPiece {
  int64_t start;
  int64_t length;
};

/**
 * The pieces of a window of seq_len tokens that rank `rank` of `ranks` holds, in its local order: contiguous,
 * piece `rank` of `ranks`; zigzag, pieces `rank` and 2 ranks - 1 - rank of 2 ranks (src/schedule/layout.ts).
 */
inline bool rank_pieces(int64_t seq_len, int ranks, int rank, Layout layout, std::vector<WindowPiece>* out,
                        std::string* error) {
  const int64_t count = layout == Layout::Zigzag ? 2 * static_cast<int64_t>(ranks) : ranks;
  if (ranks < 1 || rank < 0 || rank >= ranks || seq_len < 1 || seq_len % count != 0) {
    detail::fail_with(error, "cannot split a window of " + std::to_string(seq_len) + " tokens into " +
                                 std::to_string(count) + " equal pieces for rank " + std::to_string(rank) + " of " +
                                 std::to_string(ranks));
    return false;
  }
  const int64_t length = seq_len / count;
  out->clear();
  out->push_back({rank * length, length});
  if (layout == Layout::Zigzag) out->push_back({(count - 1 - rank) * length, length});
  return true;
}

/**
 * The data position of row b of micro-batch a on data-parallel replica d, for the step that starts at position
 * `first`: first + (a D + d) B + b. A step takes A D B windows; every (a, d, b) its own, and every sequence-
 * parallel rank of a replica the same ones (they hold pieces of the same windows).
 */
inline uint64_t window_position(uint64_t first, int micro_batch, int replicas, int replica, int batch, int row) {
  return first + ((uint64_t)micro_batch * (uint64_t)replicas + (uint64_t)replica) * (uint64_t)batch + (uint64_t)row;
}

/** The training windows a file of `tokens` tokens gives: each needs seq_len tokens and the one after. */
inline uint64_t window_count(uint64_t tokens, int64_t seq_len) {
  return seq_len < 1 || tokens == 0 ? 0 : (tokens - 1) / static_cast<uint64_t>(seq_len);
}

/** Refuses a file with fewer windows than one step takes (batch x data-parallel replicas x micro-batches). */
inline bool check_enough(const TokenFile& file, int64_t seq_len, uint64_t windows_per_step, std::string* error) {
  const uint64_t have = window_count(file.count(), seq_len);
  if (have >= windows_per_step && have > 0) return true;
  const uint64_t need = windows_per_step * static_cast<uint64_t>(seq_len) + 1;
  detail::fail_with(error, file.path() + " holds " + detail::num(file.count()) +
                               " tokens, fewer than one step needs: " + detail::num(windows_per_step) +
                               " window(s) of seq_len " + std::to_string(seq_len) +
                               " and the target of the last position, " + detail::num(need) + " tokens");
  return false;
}

/**
 * A rank's ids and targets for the window starting at token `start` of the file: rows in local order (the
 * pieces one after another), ids[i] the token at the row's position, targets[i] the token after it (across
 * a piece's end, the first token of the next piece; -1 where the file has no token after). Checks every id
 * read against the vocabulary. `real` >= 0: the window holds `real` tokens of the file and the positions from
 * `real` on are padding (a padded seq_len): id 0, no target; the last real token's target is the token after
 * the window, as for any window.
 */
inline bool read_window(const TokenFile& file, uint64_t start, const std::vector<WindowPiece>& pieces, int vocab,
                        int32_t* ids, int32_t* targets, std::string* error, int64_t real = -1) {
  int64_t row = 0;
  for (const WindowPiece& piece : pieces) {
    const uint64_t first = start + static_cast<uint64_t>(piece.start);
    const int64_t in_file = real < 0 ? piece.length : std::max<int64_t>(0, std::min(piece.length, real - piece.start));
    const uint64_t n = static_cast<uint64_t>(in_file);
    const bool after = first + n < file.count();
    if (!file.read(first, n, vocab, ids + row, error)) return false;
    if (n > 1) std::memcpy(targets + row, ids + row + 1, sizeof(int32_t) * (n - 1));
    if (n > 0) {
      targets[row + n - 1] = -1;
      if (after && !file.read(first + n, 1, vocab, targets + row + n - 1, error)) return false;
    }
    for (int64_t i = in_file; i < piece.length; ++i) {
      ids[row + i] = 0;
      targets[row + i] = -1;
    }
    row += piece.length;
  }
  return true;
}

/** Where documents end in a window of the file: at no token, at each eos token, or where the index says. */
enum class DocumentEnds { None, Eos, Index };

/**
 * ends[0, seq_len) for the window of `real` file tokens at `start` (a padded seq_len: real < seq_len): 1 where a
 * document ends (each `eos` token with DocumentEnds::Eos, each of the Megatron index's document ends with Index),
 * and at the last real token of a padded window (the padding is a document of its own); 0 elsewhere.
 */
inline void window_ends(const TokenFile& file, uint64_t start, int64_t real, int64_t seq_len, DocumentEnds kind,
                        int64_t eos, int32_t* ends) {
  for (int64_t t = 0; t < seq_len; ++t) ends[t] = 0;
  const uint64_t n = static_cast<uint64_t>(real);
  if (kind == DocumentEnds::Eos) file.token_ends(start, n, eos, ends);
  else if (kind == DocumentEnds::Index) file.index_ends(start, n, ends);
  if (real < seq_len) ends[real - 1] = 1;
}

/** splitmix64 (Steele, Lea, Flood 2014): a 64-bit generator whose output depends on nothing but its state. */
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /** Uniform in [0, bound), bound > 0: rejects the low draws that would make `% bound` uneven. */
  uint64_t below(uint64_t bound) {
    const uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
    for (;;) {
      const uint64_t r = next();
      if (r >= threshold) return r % bound;
    }
  }
};

/**
 * The order of the windows in epoch `epoch`: a permutation of 0..windows-1, a Fisher-Yates shuffle (from the
 * last slot down, each swapped with a uniform slot at or below it) by splitmix64 seeded from (seed, epoch).
 */
inline std::vector<uint64_t> window_order(uint64_t windows, uint64_t seed, uint64_t epoch) {
  std::vector<uint64_t> order(windows);
  for (uint64_t i = 0; i < windows; ++i) order[i] = i;
  SplitMix64 rng{seed ^ (epoch * 0xD1B54A32D192ED03ull)};
  for (uint64_t i = windows; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  return order;
}

}  // namespace token_files
}  // namespace lasp
