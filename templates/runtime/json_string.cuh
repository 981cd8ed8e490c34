// A string as JSON text, in quotes with `"`, `\` and control characters escaped: the events' fields (report.cuh)
// and the safetensors header's names (safetensors.cuh). Host code only.
#pragma once
#include <cstdio>  // snprintf
#include <string>  // in and out

namespace lasp {

inline void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

inline std::string json_string(const std::string& s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

}  // namespace lasp
