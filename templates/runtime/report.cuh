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

}  // namespace lasp
