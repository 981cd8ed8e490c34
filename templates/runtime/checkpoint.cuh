// Checkpoints of a training run: the folder `mode train` writes every `checkpoint_every` steps and at the end,
// and the one `--resume` reads back. This header owns the files and folders; the caller copies the tensors
// between the GPUs and the host buffers given here, and does the barriers between ranks.
//
// The layout, inside the run folder RUN:
//   RUN/checkpoints/step-000123/
//     model.safetensors                      bf16 weights, Hugging Face names (the caller's tensors)
//     config.json                            the model's Hugging Face config (the caller's text)
//     modeling_lasp.py                       transformers' classes of the model, where config.json names them
//     tokenizer.json, ...                    the spec's tokenizer (the caller's files: TextFile below)
//     optimizer-rank-R-of-W.safetensors      one per rank: its fp32 master weights and moments
//     trainer_state.json                     TrainerState below: step, tokens, data position, RNG, schedule
// Step numbers have at least 6 digits (step-000123, step-1234567), so names sort as steps up to a million.
//
// Design choices:
// - Host code only, plain C++17 and POSIX (mkdir, rename, fsync, opendir, kill): no CUDA header, so it compiles
//   with g++ alone and its tests need no GPU (test/checkpoint.test.ts). Named .cuh like the other runtime
//   headers. The safetensors files are written by safetensors.cuh's write_file.
// - Written as a whole: every file goes into `step-000123.tmp-PID/` (PID: rank 0's process), each fsync'ed;
//   then the temporary folder is fsync'ed, renamed to `step-000123`, and `checkpoints/` fsync'ed. The rename
//   is the commit: a crash before it leaves a temporary folder (never read as a checkpoint), after it a whole
//   checkpoint. A checkpoint of the same step that exists already (a run resumed from an older one) is moved
//   aside to `step-000123.tmp-PID.old` first and deleted after; a crash between the two renames leaves no
//   `step-000123` at all, never a mixed one.
// - Several ranks, in this order (the caller's barriers between the steps):
//     1. rank 0: begin(RUN, step) creates the temporary folder; the caller broadcasts its owner_pid.
//     2. every rank (0 included): pending_for(RUN, step, owner_pid), then write_shard(its rank, W, tensors).
//     3. barrier: every rank's shard is on disk.
//     4. rank 0: commit(model tensors, text files, trainer state, K) writes the rest, checks that all W
//        shards are there, renames, then deletes the checkpoints beyond K.
//   The other ranks need not wait for step 4, but a failed commit should stop every rank (the caller's call).
// - Cleaning up after a crash: begin removes the temporary folders that no live process owns: the names
//   `step-DIGITS.tmp-PID` and `step-DIGITS.tmp-PID.old` in RUN/checkpoints, where PID is this process or no
//   process on this host (kill(PID, 0) says ESRCH). Nothing else is ever removed. A PID reused by an unrelated
//   process keeps its folder (a leak, never a loss); on several hosts the PID is checked on rank 0's host.
// - Retention (`keep_checkpoints K`, K > 0; K = 0 keeps all): after a commit, the complete checkpoints beyond
//   the newest K by step are deleted: only folders (not links) named `step-` + digits that hold a
//   trainer_state.json, and never the one just written (it counts among the K, even when older than others,
//   as after a resume from an older checkpoint). A user's file, a link or a `step-notes` folder is never
//   touched.
// - Finding: latest(RUN) is the highest step among the complete checkpoints: a `step-DIGITS` folder whose
//   trainer_state.json parses, names the same step, and whose model, config and W shards are all there.
//   Others are skipped (and listed, so the program can say why); temporary folders are never considered.
// - trainer_state.json is written by a tiny JSON writer in a fixed key order, and read strictly: exactly the
//   keys below, each of its type, no key twice, no other key; an error names the file and the key. 64-bit
//   counts are JSON integers read exactly (Python's json does too); the RNG state is a string of 16 hex
//   digits, since JavaScript and doubles would round it. Real numbers are written with the fewest digits
//   that read back to the same double, so a resumed schedule is bit for bit the same.
// - Errors are returned as a sentence; the program prints it and exits.
#pragma once
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "safetensors.cuh"

namespace lasp {
namespace checkpoint {

/**
 * The learning-rate schedule (the spec's `lr_schedule` and its settings): warmup to `lr` over `warmup_steps`,
 * then down to `min_lr` at `total_steps`.
 */
struct LrSchedule {
  std::string kind = "cosine";  // "cosine", "linear" or "constant", as the spec's lr_schedule
  double lr = 0;
  double min_lr = 0;
  uint64_t warmup_steps = 0;
  uint64_t total_steps = 0;
};

/** What a run needs, beyond the tensors, to continue exactly where it stopped. */
struct TrainerState {
  uint64_t step = 0;           // optimizer steps done
  uint64_t tokens_seen = 0;    // training tokens consumed, over all ranks
  uint64_t data_position = 0;  // training windows consumed (token_files.cuh's order gives the next one)
  uint64_t seed = 0;           // the run's seed
  uint64_t rng_state = 0;      // the generator's state after `step`
  uint64_t world_size = 1;     // ranks, and so optimizer shards
  LrSchedule schedule;
  std::string lasp_version;
  std::string spec_hash;  // the model's hash (program::kModelHash); resume refuses another
};

/** trainer_state.json's format_version; a file of another version is refused. */
constexpr uint64_t kFormatVersion = 1;

/** A checkpoint being written: its temporary folder and the name it gets at the commit. */
struct Pending {
  std::string run;
  uint64_t step = 0;
  long owner_pid = 0;  // rank 0's process, part of the temporary folder's name
  std::string temp;    // RUN/checkpoints/step-000123.tmp-PID
  std::string folder;  // RUN/checkpoints/step-000123
  std::vector<std::string> removed_stale;  // begin's clean-up: temporary folders of dead processes
};

struct CommitResult {
  std::string folder;                // the checkpoint written
  std::vector<std::string> removed;  // older checkpoints deleted by keep_checkpoints
};

/** A complete checkpoint found by latest. */
struct Found {
  std::string folder;
  uint64_t step = 0;
};

inline std::string checkpoints_folder(const std::string& run) { return run + "/checkpoints"; }

inline std::string step_name(uint64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%06llu", static_cast<unsigned long long>(step));
  return buf;
}

inline std::string model_path(const std::string& folder) { return folder + "/model.safetensors"; }
inline std::string config_path(const std::string& folder) { return folder + "/config.json"; }

/** A file of the model written beside its weights: config.json, modeling_lasp.py where config.json's auto_map
 * names it, a tokenizer's files (tokenizer.model's bytes are not text). `name` is a plain file name (no '/'). */
struct TextFile {
  std::string name;
  std::string text;
};
inline std::string state_path(const std::string& folder) { return folder + "/trainer_state.json"; }
inline std::string shard_name(uint64_t rank, uint64_t world) {
  return "optimizer-rank-" + std::to_string(rank) + "-of-" + std::to_string(world) + ".safetensors";
}
inline std::string shard_path(const std::string& folder, uint64_t rank, uint64_t world) {
  return folder + "/" + shard_name(rank, world);
}

namespace detail {

inline void fail_with(std::string* error, const std::string& message) {
  if (error != nullptr) *error = message;
}

inline bool all_digits(const std::string& s, std::size_t from, std::size_t to) {
  if (from >= to || to > s.size()) return false;
  for (std::size_t i = from; i < to; ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

/** `step-DIGITS`: a checkpoint's name; its step in *step. At most 19 digits, so it fits 64 bits. */
inline bool parse_step_name(const std::string& name, uint64_t* step) {
  if (name.compare(0, 5, "step-") != 0 || name.size() > 5 + 19 || !all_digits(name, 5, name.size())) return false;
  *step = std::strtoull(name.c_str() + 5, nullptr, 10);
  return true;
}

/** `step-DIGITS.tmp-PID` or `step-DIGITS.tmp-PID.old`: a temporary folder; its owner in *pid. */
inline bool parse_temp_name(const std::string& name, long* pid) {
  const std::size_t tmp = name.find(".tmp-");
  uint64_t step = 0;
  if (tmp == std::string::npos || !parse_step_name(name.substr(0, tmp), &step)) return false;
  std::size_t end = name.size();
  if (end >= 4 && name.compare(end - 4, 4, ".old") == 0) end -= 4;
  const std::size_t from = tmp + 5;
  if (end < from || end - from > 9 || !all_digits(name, from, end)) return false;
  *pid = std::strtol(name.c_str() + from, nullptr, 10);
  return true;
}

inline bool is_folder(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

inline bool is_file(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

inline bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

/** fsync of a folder itself, so that entries created or renamed in it survive a crash. */
inline bool sync_path(const std::string& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

inline std::string parent_of(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

/** The names in `folder` (no "." or ".."); false with errno set when it cannot be read. */
inline bool list(const std::string& folder, std::vector<std::string>* names) {
  DIR* d = ::opendir(folder.c_str());
  if (d == nullptr) return false;
  names->clear();
  while (const struct dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names->push_back(name);
  }
  ::closedir(d);
  return true;
}

/** Deletes `path` and what it holds; links are removed, never followed. */
inline bool remove_tree(const std::string& path) {
  if (!is_folder(path)) return ::unlink(path.c_str()) == 0;
  std::vector<std::string> names;
  if (!list(path, &names)) return false;
  bool ok = true;
  for (const std::string& name : names) ok = remove_tree(path + "/" + name) && ok;
  return ::rmdir(path.c_str()) == 0 && ok;
}

/** mkdir -p, fsync'ing the parent of each folder it creates. */
inline bool make_folders(const std::string& path, std::string* error) {
  if (path.empty() || is_folder(path)) return true;
  const std::string parent = parent_of(path);
  if (parent != path && !make_folders(parent, error)) return false;
  if (::mkdir(path.c_str(), 0755) != 0 && !(errno == EEXIST && is_folder(path))) {
    fail_with(error, "cannot create the folder " + path + ": " + std::strerror(errno));
    return false;
  }
  sync_path(parent);
  return true;
}

/** Writes `text` to `path` (inside a temporary folder, so no rename of its own) and fsyncs it. */
inline bool write_text(const std::string& path, const std::string& text, std::string* error) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    fail_with(error, "cannot write " + path + ": " + std::strerror(errno));
    return false;
  }
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  bool ok = done == text.size();
  int why = ok ? 0 : errno != 0 ? errno : EIO;
  if (ok && ::fsync(fd) != 0) {
    ok = false;
    why = errno;
  }
  if (::close(fd) != 0 && ok) {
    ok = false;
    why = errno;
  }
  if (!ok) fail_with(error, "cannot write " + path + ": " + std::strerror(why));
  return ok;
}

inline bool read_text(const std::string& path, std::string* text, std::string* error) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    fail_with(error, "cannot read " + path + ": " + std::strerror(errno));
    return false;
  }
  text->clear();
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text->append(buf, n);
  const bool ok = std::ferror(f) == 0;
  std::fclose(f);
  if (!ok) fail_with(error, "cannot read " + path + ": read error");
  return ok;
}

// ---- trainer_state.json: writing ----

/** The shortest decimal text that reads back as the same double (JSON has no NaN or infinity). */
inline std::string real_text(double v) {
  char buf[40];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

inline std::string hex64(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// ---- trainer_state.json: reading ----

/** A parsed JSON value; numbers keep their text, so that integers are read exactly and reals by strtod. */
struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  std::string text;                // a string's value, a number's text, "true" or "false"
  std::vector<std::string> keys;   // an object's keys, in order (duplicates kept, for the error)
  std::vector<Json> values;        // an object's values or an array's items
};

// safetensors.cuh's parser of its header (white space, punctuation, strings and their escapes), with errors
// that say only the byte.
struct JsonParser : safetensors::detail::Parser {
  explicit JsonParser(const std::string& text) : Parser(text, "") {}
  bool number(std::string& out) {
    // JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
    const std::size_t start = i;
    auto digits = [&] {
      const std::size_t from = i;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
      return i > from;
    };
    if (i < s.size() && s[i] == '-') ++i;
    if (i < s.size() && s[i] == '0') {
      ++i;
    } else if (!digits()) {
      return fail("expected a value");
    }
    if (i < s.size() && s[i] == '.') {
      ++i;
      if (!digits()) return fail("expected digits after '.'");
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
      ++i;
      if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
      if (!digits()) return fail("expected digits in the exponent");
    }
    out = s.substr(start, i - start);
    return true;
  }
  bool value(Json& v, int depth = 0) {
    space();
    if (depth > 32) return fail("values nested too deep");
    if (i >= s.size()) return fail("expected a value");
    const char c = s[i];
    if (c == '{' || c == '[') {
      ++i;
      v.kind = c == '{' ? Json::Object : Json::Array;
      const char close = c == '{' ? '}' : ']';
      if (eat(close)) return true;
      do {
        if (c == '{') {
          space();
          if (i >= s.size() || s[i] != '"') return fail("expected a key in quotes");
          std::string key;
          if (!string(key) || !expect(':')) return false;
          v.keys.push_back(key);
        }
        v.values.emplace_back();
        if (!value(v.values.back(), depth + 1)) return false;
      } while (eat(','));
      return expect(close);
    }
    if (c == '"') {
      v.kind = Json::String;
      return string(v.text);
    }
    for (const char* word : {"true", "false", "null"}) {
      const std::size_t n = std::strlen(word);
      if (s.compare(i, n, word) == 0) {
        i += n;
        v.kind = word[0] == 'n' ? Json::Null : Json::Bool;
        v.text = word;
        return true;
      }
    }
    v.kind = Json::Number;
    return number(v.text);
  }
};

/** How a found value reads in an error: `the string "12"`, `12.5`, `an object`. */
inline std::string found_text(const Json& v) {
  switch (v.kind) {
    case Json::String: {
      std::string out = "the string ";
      append_json_string(out, v.text);
      return out;
    }
    case Json::Object: return "an object";
    case Json::Array: return "an array";
    default: return v.text;
  }
}

/** Reads one JSON object's keys strictly: each wanted once, of its type; no other key. */
struct Fields {
  Fields(const Json& object, const std::string& file, const std::string& prefix)
      : obj(object), path(file), at(prefix), used(object.keys.size(), false) {}
  const Json& obj;
  std::string path, at;
  std::vector<bool> used;
  std::string error;

  std::string quoted(const std::string& key) const { return "\"" + at + key + "\""; }
  bool bad(const std::string& key, const std::string& wanted, const Json& found) {
    if (error.empty()) error = path + ": " + quoted(key) + " should be " + wanted + ", found " + found_text(found);
    return false;
  }
  /** The value of `key`, or null with the error set (missing, or given twice). */
  const Json* get(const std::string& key, const std::string& wanted) {
    const Json* found = nullptr;
    for (std::size_t k = 0; k < obj.keys.size(); ++k) {
      if (obj.keys[k] != key) continue;
      if (found != nullptr) {
        if (error.empty()) error = path + " has " + quoted(key) + " twice";
        return nullptr;
      }
      found = &obj.values[k];
      used[k] = true;
    }
    if (found == nullptr && error.empty()) error = path + " lacks " + quoted(key) + " (" + wanted + ")";
    return found;
  }
  bool whole(const std::string& key, uint64_t* out, uint64_t at_least = 0) {
    const std::string wanted =
        at_least == 0 ? "a whole number" : "a whole number of at least " + std::to_string(at_least);
    const Json* v = get(key, wanted);
    if (v == nullptr) return false;
    const std::string& t = v->text;
    // Exactly the digits of a JSON integer, at most 20 of them, within 64 bits.
    bool ok = v->kind == Json::Number && !t.empty() && t.size() <= 20 && all_digits(t, 0, t.size());
    if (ok) {
      errno = 0;
      *out = std::strtoull(t.c_str(), nullptr, 10);
      ok = errno == 0 && *out >= at_least;
    }
    return ok || bad(key, wanted, *v);
  }
  bool real(const std::string& key, double* out) {
    const std::string wanted = "a number of at least 0";
    const Json* v = get(key, wanted);
    if (v == nullptr) return false;
    bool ok = v->kind == Json::Number;
    if (ok) {
      *out = std::strtod(v->text.c_str(), nullptr);
      ok = std::isfinite(*out) && *out >= 0;
    }
    return ok || bad(key, wanted, *v);
  }
  bool text(const std::string& key, std::string* out, const std::string& wanted = "a non-empty string") {
    const Json* v = get(key, wanted);
    if (v == nullptr) return false;
    if (v->kind != Json::String || v->text.empty()) return bad(key, wanted, *v);
    *out = v->text;
    return true;
  }
  bool hex(const std::string& key, uint64_t* out) {
    const std::string wanted = "a string of 16 hexadecimal digits";
    const Json* v = get(key, wanted);
    if (v == nullptr) return false;
    bool ok = v->kind == Json::String && v->text.size() == 16;
    for (std::size_t k = 0; ok && k < 16; ++k) ok = std::strchr("0123456789abcdefABCDEF", v->text[k]) != nullptr;
    if (ok) *out = std::strtoull(v->text.c_str(), nullptr, 16);
    return ok || bad(key, wanted, *v);
  }
  const Json* object(const std::string& key) {
    const Json* v = get(key, "an object");
    if (v != nullptr && v->kind != Json::Object) {
      bad(key, "an object", *v);
      return nullptr;
    }
    return v;
  }
  /** After the wanted keys: any other key is an error. */
  bool finish() {
    for (std::size_t k = 0; error.empty() && k < used.size(); ++k)
      if (!used[k]) error = path + " has an unknown key " + quoted(obj.keys[k]);
    return error.empty();
  }
};

}  // namespace detail

/** trainer_state.json's text: one key per line, in a fixed order. */
inline std::string trainer_state_json(const TrainerState& s) {
  std::string out = "{\n";
  auto line = [&](const char* indent, const char* key, const std::string& value, bool last = false) {
    out += indent;
    out += '"';
    out += key;
    out += "\": " + value + (last ? "\n" : ",\n");
  };
  line("  ", "format_version", std::to_string(kFormatVersion));
  line("  ", "step", std::to_string(s.step));
  line("  ", "tokens_seen", std::to_string(s.tokens_seen));
  line("  ", "data_position", std::to_string(s.data_position));
  line("  ", "seed", std::to_string(s.seed));
  line("  ", "rng_state", json_string(detail::hex64(s.rng_state)));
  line("  ", "world_size", std::to_string(s.world_size));
  out += "  \"lr_schedule\": {\n";
  line("    ", "kind", json_string(s.schedule.kind));
  line("    ", "lr", detail::real_text(s.schedule.lr));
  line("    ", "min_lr", detail::real_text(s.schedule.min_lr));
  line("    ", "warmup_steps", std::to_string(s.schedule.warmup_steps));
  line("    ", "total_steps", std::to_string(s.schedule.total_steps), true);
  out += "  },\n";
  line("  ", "lasp_version", json_string(s.lasp_version));
  line("  ", "spec_hash", json_string(s.spec_hash), true);
  return out + "}\n";
}

/** Parses trainer_state.json's `text` (read from `path`, named in errors) strictly into *out. */
inline bool parse_trainer_state(const std::string& text, const std::string& path, TrainerState* out,
                                std::string* error) {
  detail::Json root;
  detail::JsonParser p(text);
  bool ok = p.value(root);
  if (ok) {
    p.space();
    if (p.i != text.size()) ok = p.fail("text after the object");
  }
  if (!ok) {
    detail::fail_with(error, path + " is not valid JSON: " + p.error);
    return false;
  }
  if (root.kind != detail::Json::Object) {
    detail::fail_with(error, path + " should hold a JSON object, found " + detail::found_text(root));
    return false;
  }
  TrainerState s;
  detail::Fields f(root, path, "");
  uint64_t version = 0;
  if (!f.whole("format_version", &version)) {
    detail::fail_with(error, f.error);
    return false;
  }
  if (version != kFormatVersion) {
    detail::fail_with(error, path + " has format_version " + std::to_string(version) + "; this program reads " +
                                 std::to_string(kFormatVersion));
    return false;
  }
  ok = f.whole("step", &s.step) && f.whole("tokens_seen", &s.tokens_seen) &&
       f.whole("data_position", &s.data_position) && f.whole("seed", &s.seed) && f.hex("rng_state", &s.rng_state) &&
       f.whole("world_size", &s.world_size, 1);
  const detail::Json* schedule = ok ? f.object("lr_schedule") : nullptr;
  if (schedule != nullptr) {
    detail::Fields g(*schedule, path, "lr_schedule.");
    ok = g.text("kind", &s.schedule.kind, "\"cosine\", \"linear\" or \"constant\"");
    if (ok && s.schedule.kind != "cosine" && s.schedule.kind != "linear" && s.schedule.kind != "constant") {
      detail::Json found;
      found.kind = detail::Json::String;
      found.text = s.schedule.kind;
      ok = g.bad("kind", "\"cosine\", \"linear\" or \"constant\"", found);
    }
    ok = ok && g.real("lr", &s.schedule.lr) && g.real("min_lr", &s.schedule.min_lr) &&
         g.whole("warmup_steps", &s.schedule.warmup_steps) && g.whole("total_steps", &s.schedule.total_steps) &&
         g.finish();
    if (!ok) f.error = g.error;
  } else {
    ok = false;
  }
  ok = ok && f.text("lasp_version", &s.lasp_version) && f.text("spec_hash", &s.spec_hash) && f.finish();
  if (!ok) {
    detail::fail_with(error, f.error);
    return false;
  }
  *out = std::move(s);
  return true;
}

inline bool read_trainer_state(const std::string& path, TrainerState* out, std::string* error) {
  std::string text;
  return detail::read_text(path, &text, error) && parse_trainer_state(text, path, out, error);
}

/** The temporary folder of rank 0's process `owner_pid` for `step`: what ranks other than 0 write into. */
inline Pending pending_for(const std::string& run, uint64_t step, long owner_pid) {
  Pending p;
  p.run = run;
  p.step = step;
  p.owner_pid = owner_pid;
  p.folder = checkpoints_folder(run) + "/" + step_name(step);
  p.temp = p.folder + ".tmp-" + std::to_string(owner_pid);
  return p;
}

/**
 * Rank 0, first: creates RUN/checkpoints if needed, removes the temporary folders no live process owns (a
 * crashed write's), and creates this write's temporary folder.
 */
inline bool begin(const std::string& run, uint64_t step, Pending* out, std::string* error) {
  const long self = static_cast<long>(::getpid());
  Pending p = pending_for(run, step, self);
  const std::string root = checkpoints_folder(run);
  if (!detail::make_folders(root, error)) return false;
  std::vector<std::string> names;
  if (!detail::list(root, &names)) {
    detail::fail_with(error, "cannot read the folder " + root + ": " + std::strerror(errno));
    return false;
  }
  for (const std::string& name : names) {
    long pid = 0;
    const std::string path = root + "/" + name;
    if (!detail::parse_temp_name(name, &pid) || !detail::is_folder(path)) continue;
    const bool dead = pid == self || pid <= 0 || (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH);
    if (!dead) continue;
    if (!detail::remove_tree(path)) {
      detail::fail_with(error, "cannot remove " + path + ", the temporary folder of an interrupted checkpoint: " +
                                   std::strerror(errno));
      return false;
    }
    p.removed_stale.push_back(path);
  }
  if (::mkdir(p.temp.c_str(), 0755) != 0) {
    detail::fail_with(error, "cannot create the folder " + p.temp + ": " + std::strerror(errno));
    return false;
  }
  detail::sync_path(root);
  *out = std::move(p);
  return true;
}

/** Any rank, after begin: its optimizer shard (fp32 master weights and moments) into the temporary folder. */
inline bool write_shard(const Pending& p, uint64_t rank, uint64_t world,
                        const std::vector<safetensors::TensorOut>& tensors, std::string* error) {
  if (world == 0 || rank >= world) {
    detail::fail_with(error, "cannot write the optimizer shard of rank " + std::to_string(rank) + " of " +
                                 std::to_string(world) + " ranks");
    return false;
  }
  if (!detail::is_folder(p.temp)) {
    detail::fail_with(error, "cannot write the optimizer shard of rank " + std::to_string(rank) + ": " + p.temp +
                                 " does not exist (rank 0 creates it in begin, before every rank writes)");
    return false;
  }
  return safetensors::write_file(shard_path(p.temp, rank, world), tensors, {{"format", "pt"}}, error);
}

/** The complete checkpoints in RUN/checkpoints (step-DIGITS folders holding trainer_state.json), by step. */
inline std::vector<Found> checkpoint_folders(const std::string& run) {
  const std::string root = checkpoints_folder(run);
  std::vector<std::string> names;
  std::vector<Found> found;
  if (!detail::list(root, &names)) return found;
  for (const std::string& name : names) {
    Found f;
    f.folder = root + "/" + name;
    if (detail::parse_step_name(name, &f.step) && detail::is_folder(f.folder) &&
        detail::is_file(state_path(f.folder)))
      found.push_back(f);
  }
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.step != b.step ? a.step < b.step : a.folder < b.folder; });
  return found;
}

/**
 * keep_checkpoints: deletes the checkpoints beyond the newest `keep` (by step), never `spare` (the one just
 * written); keep = 0 keeps all. The deleted folders are appended to *removed.
 */
inline bool prune(const std::string& run, uint64_t keep, const std::string& spare, std::vector<std::string>* removed,
                  std::string* error) {
  if (keep == 0) return true;
  std::vector<Found> all = checkpoint_folders(run);
  // The spare counts among the K kept wherever its step falls; the others fill the rest, newest first.
  uint64_t kept = 0;
  for (const Found& f : all) kept += f.folder == spare ? 1 : 0;
  for (std::size_t k = all.size(); k-- > 0;) {
    if (all[k].folder == spare) continue;
    if (kept < keep) {
      ++kept;
      continue;
    }
    if (!detail::remove_tree(all[k].folder)) {
      detail::fail_with(error, "cannot remove the old checkpoint " + all[k].folder + ": " + std::strerror(errno));
      return false;
    }
    removed->push_back(all[k].folder);
  }
  detail::sync_path(checkpoints_folder(run));
  return true;
}

/**
 * Rank 0, after every rank's write_shard (the caller's barrier): writes model.safetensors, the model's files
 * (config.json, ...) and trainer_state.json, checks that the state's world_size shards are there, renames the
 * temporary folder to step-NNNNNN, then applies keep_checkpoints. False with *error when the checkpoint was not committed; the
 * temporary folder is then left for the next begin to remove.
 */
inline bool commit(const Pending& p, const std::vector<safetensors::TensorOut>& model,
                   const std::vector<TextFile>& texts, const TrainerState& state, uint64_t keep,
                   CommitResult* result, std::string* error) {
  const std::string what = "cannot commit the checkpoint " + p.folder + ": ";
  if (state.step != p.step) {
    detail::fail_with(error, what + "its trainer state is of step " + std::to_string(state.step));
    return false;
  }
  if (!detail::is_folder(p.temp)) {
    detail::fail_with(error, what + p.temp + " does not exist (begin creates it)");
    return false;
  }
  if (!safetensors::write_file(model_path(p.temp), model, {{"format", "pt"}}, error)) return false;
  for (const TextFile& t : texts) {
    if (t.name.empty() || t.name.find('/') != std::string::npos) {
      detail::fail_with(error, what + "the file name \"" + t.name + "\" is not a plain file name");
      return false;
    }
    if (!detail::write_text(p.temp + "/" + t.name, t.text, error)) return false;
  }
  if (!detail::write_text(state_path(p.temp), trainer_state_json(state), error)) return false;
  for (uint64_t r = 0; r < state.world_size; ++r) {
    if (!detail::is_file(shard_path(p.temp, r, state.world_size))) {
      detail::fail_with(error, what + "the optimizer shard of rank " + std::to_string(r) + " (" +
                                   shard_name(r, state.world_size) +
                                   ") is missing; every rank writes its shard before rank 0 commits");
      return false;
    }
  }
  if (!detail::sync_path(p.temp)) {
    detail::fail_with(error, what + "cannot flush " + p.temp + ": " + std::strerror(errno));
    return false;
  }
  // A checkpoint of this step already there (a run resumed from an older one): moved aside, replaced, deleted.
  const std::string aside = p.temp + ".old";
  bool replaced = false;
  if (detail::exists(p.folder)) {
    if (!detail::is_folder(p.folder) || !detail::is_file(state_path(p.folder))) {
      detail::fail_with(error,
                        what + p.folder + " exists and is not a checkpoint (no trainer_state.json); move it away");
      return false;
    }
    if (std::rename(p.folder.c_str(), aside.c_str()) != 0) {
      detail::fail_with(error, what + "cannot move the older " + p.folder + " aside: " + std::strerror(errno));
      return false;
    }
    replaced = true;
  }
  if (std::rename(p.temp.c_str(), p.folder.c_str()) != 0) {
    detail::fail_with(error, what + "cannot rename " + p.temp + ": " + std::strerror(errno));
    if (replaced) std::rename(aside.c_str(), p.folder.c_str());  // the older checkpoint back in place
    return false;
  }
  detail::sync_path(checkpoints_folder(p.run));
  if (replaced) detail::remove_tree(aside);  // if this fails, the next begin removes it (a .tmp-PID.old name)
  CommitResult r;
  r.folder = p.folder;
  if (!prune(p.run, keep, p.folder, &r.removed, error)) return false;
  if (result != nullptr) *result = std::move(r);
  return true;
}

/**
 * Why `folder` is not a complete checkpoint of step `step` ("" when it is): trainer_state.json parses and
 * names that step, and the model, config and every shard are there.
 */
inline std::string incomplete(const std::string& folder, uint64_t step, TrainerState* state) {
  std::string why;
  if (!read_trainer_state(state_path(folder), state, &why)) return why;
  if (state->step != step)
    return state_path(folder) + " is of step " + std::to_string(state->step) + ", not " + std::to_string(step);
  std::vector<std::string> needed = {model_path(folder), config_path(folder)};
  for (uint64_t r = 0; r < state->world_size; ++r) needed.push_back(shard_path(folder, r, state->world_size));
  for (const std::string& path : needed)
    if (!detail::is_file(path)) return folder + " lacks " + path.substr(folder.size() + 1);
  return "";
}

/**
 * The newest complete checkpoint of RUN (the highest step). Incomplete `step-DIGITS` folders are skipped, each
 * with a sentence appended to *skipped; temporary folders are never considered.
 */
inline bool latest(const std::string& run, Found* out, std::string* error,
                   std::vector<std::string>* skipped = nullptr) {
  const std::string root = checkpoints_folder(run);
  if (!detail::is_folder(root)) {
    detail::fail_with(error, "no checkpoint to resume from: " + root + " does not exist");
    return false;
  }
  std::vector<Found> all = checkpoint_folders(run);
  for (std::size_t k = all.size(); k-- > 0;) {
    TrainerState state;
    const std::string why = incomplete(all[k].folder, all[k].step, &state);
    if (why.empty()) {
      *out = all[k];
      return true;
    }
    if (skipped != nullptr) skipped->push_back(why);
  }
  detail::fail_with(error, "no checkpoint to resume from: " + root + " holds no complete step-NNNNNN folder");
  return false;
}

/**
 * Reads the trainer state of the checkpoint `folder` for a run of `spec_hash`, after checking that the
 * checkpoint is complete and was written for the same model. It may come from another number of ranks: the
 * caller then reads model_path(folder) and the shards shard_path(folder, r, state.world_size) it needs
 * (optimizer_slices.cuh's state_copies say which).
 */
inline bool resume(const std::string& folder, const std::string& spec_hash, TrainerState* out, std::string* error) {
  const std::string what = "cannot resume from " + folder + ": ";
  if (!detail::is_folder(folder)) {
    detail::fail_with(error, what + "no such folder");
    return false;
  }
  TrainerState state;
  std::string why;
  if (!read_trainer_state(state_path(folder), &state, &why)) {
    detail::fail_with(error, what + why);
    return false;
  }
  if (state.spec_hash != spec_hash) {
    detail::fail_with(error, what + "it was written for another model (model hash " + state.spec_hash +
                                 ", this run's is " + spec_hash + ")");
    return false;
  }
  std::vector<std::string> needed = {model_path(folder), config_path(folder)};
  for (uint64_t r = 0; r < state.world_size; ++r) needed.push_back(shard_path(folder, r, state.world_size));
  for (const std::string& path : needed) {
    if (!detail::is_file(path)) {
      detail::fail_with(error, what + "it lacks " + path.substr(folder.size() + 1));
      return false;
    }
  }
  *out = std::move(state);
  return true;
}

}  // namespace checkpoint
}  // namespace lasp
