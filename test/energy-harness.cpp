// templates/runtime/energy.cuh driven from test/energy.test.ts:
//   harness LIBRARY BUS CALLS   a StepEnergy on LIBRARY (NVML or the test's stand-in) and bus BUS, then CALLS in
//                               order: 's' start (a step begins after time that is not counted), 'e' stop (a
//                               step ends, the next one begins); prints "available 0|1 joules J"
#include <cstdio>
#include <cstring>

#include "energy.cuh"

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  lasp::StepEnergy energy(argv[2], argv[1]);
  for (const char* c = argv[3]; *c != '\0'; ++c) {
    if (*c == 's') energy.start();
    else if (*c == 'e') energy.stop();
    else return 2;
  }
  std::printf("available %d joules %.3f\n", energy.available() ? 1 : 0, energy.joules());
  return 0;
}
