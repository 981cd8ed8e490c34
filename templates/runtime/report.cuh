// What the program tells while it runs: one JSON object per event on stdout, from every rank
// (src/toolchain/PROTOCOL.md in the lasp repository: the events and their fields), and human lines on
// stderr, from rank 0 only.
//
// Design choices:
// - Callers write an event's fields as printf-style JSON text, so each call reads as the protocol documents
//   the event; every line is flushed at once, so `lasp run` shows progress as it happens.
// - --json drops the human lines (`lasp run` prints its own from the events); the events are always there.
#pragma once
#include <cstdarg>  // the printf-style fields
#include <cstdio>   // stdout, stderr
#include <cstdlib>  // std::exit
#include <string>   // fail_input's message
#include "json_string.cuh"  // the message as a JSON field

namespace lasp {

struct Reporter {
  int rank = 0;
  bool quiet = false;  // no human lines (--json)
};

inline Reporter g_reporter;  // set once, by start_rank (state.cuh)

inline void emit(const char* event, const char* fields_format, ...) {
  char fields[1024];
  va_list args;
  va_start(args, fields_format);
  std::vsnprintf(fields, sizeof(fields), fields_format, args);
  va_end(args);
  std::printf("{\"event\":\"%s\",\"rank\":%d%s%s}\n", event, g_reporter.rank, fields[0] ? "," : "", fields);
  std::fflush(stdout);
}

inline void say(const char* format, ...) {
  if (g_reporter.rank != 0 || g_reporter.quiet) return;
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fflush(stderr);
}

// A wrong input the user must fix (a token file, weights, a checkpoint): the `error` event and the sentence on
// stderr, then exit 2 (PROTOCOL.md). The event holds at most 900 characters of it: emit's line is 1024.
[[noreturn]] inline void fail_input(const std::string& message) {
  emit("error", "\"message\":%s", json_string(message.substr(0, 900)).c_str());
  std::fprintf(stderr, "lasp_program: %s\n", message.c_str());
  std::exit(2);
}

}  // namespace lasp
