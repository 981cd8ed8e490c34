// templates/runtime/report.cuh's fail_input, driven from test/report.test.ts: `harness MESSAGE-KIND` fails with
// a message that needs escaping (quotes, a backslash, a newline, a tab) or one of 2000 characters.
#include <string>

#include "report.cuh"

int main(int argc, char** argv) {
  if (argc != 2) return 3;
  const std::string kind = argv[1];
  if (kind == "escapes") lasp::fail_input("the file \"C:\\data\\x.bin\" is cut:\nline two\tend");
  if (kind == "long") lasp::fail_input(std::string(2000, 'a') + "Z");
  return 3;
}
