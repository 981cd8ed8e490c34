// The program's output lines (src/calibrate/measurements.ts reads them): one JSON object per line, rank 0's.
// Host C++ only, so test/calibrate-host-harness.cpp prints them with g++ alone and the test parses them with
// lasp's own reader.
#pragma once
#include <cstddef>  // size_t
#include <cstdio>   // snprintf
#include <string>   // the lines

namespace calib {

// A JSON string's contents: quotes, backslashes and control characters escaped.
inline std::string json_text(const char* s) {
  std::string out;
  for (; *s != '\0'; ++s) {
    const unsigned char c = static_cast<unsigned char>(*s);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += *s;
    } else if (c < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", c);
      out += esc;
    } else {
      out += *s;
    }
  }
  return out;
}

// `cudnn`: the version built with, or nullptr.
inline std::string device_line(const char* name, int sms, size_t memory_bytes, int major, int minor,
                               const char* cudnn) {
  const std::string version = cudnn == nullptr ? "null" : "\"" + json_text(cudnn) + "\"";
  char head[128];
  std::snprintf(head, sizeof head, "\",\"sms\":%d,\"memory_bytes\":%zu,\"cc\":\"%d.%d\",\"cudnn\":", sms,
                memory_bytes, major, minor);
  return "{\"event\":\"device\",\"rank\":0,\"name\":\"" + json_text(name) + head + version + "}";
}

// `ms`: the median of `runs` timed runs (%.6g: six significant digits, valid JSON for any positive time).
inline std::string measure_line(int id, float ms, int runs) {
  char line[160];
  std::snprintf(line, sizeof line, "{\"event\":\"measure\",\"rank\":0,\"id\":%d,\"ms\":%.6g,\"runs\":%d}", id,
                (double)ms, runs);
  return line;
}

// The gathered benchmark's line: `ms`, its ranks' calls, and `whole_ms`, the whole sequence's call, each the
// median of `runs`.
inline std::string measure_line(int id, float ms, int runs, float whole_ms) {
  std::string line = measure_line(id, ms, runs);
  char whole[48];
  std::snprintf(whole, sizeof whole, ",\"whole_ms\":%.6g}", (double)whole_ms);
  line.pop_back();  // the closing brace
  return line + whole;
}

inline std::string skipped_line(int id, const char* why) {
  return "{\"event\":\"skipped\",\"rank\":0,\"id\":" + std::to_string(id) + ",\"why\":\"" + json_text(why) + "\"}";
}

}  // namespace calib
