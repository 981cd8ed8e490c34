// templates/runtime/energy.cuh driven from test/energy.test.ts:
//   harness LIBRARY BUS INTERVAL CALLS   a StepEnergy on LIBRARY (NVML or the test's stand-in) and bus BUS, reading
//                                        at most every INTERVAL seconds between steps, then CALLS in order: 's'
//                                        start (counting begins), 'e' step_done (a step ended), 'p' pause (counting
//                                        stops: evaluation or a checkpoint follows); prints
//                                        "available 0|1 joules J timed 0|1" (timed: the joules cover some time)
#include <cstdio>
#include <cstdlib>

#include "energy.cuh"

int main(int argc, char** argv) {
  if (argc != 5) return 2;
  lasp::StepEnergy energy(argv[2], std::atof(argv[3]), argv[1]);
  for (const char* c = argv[4]; *c != '\0'; ++c) {
    if (*c == 's') energy.start();
    else if (*c == 'e') energy.step_done();
    else if (*c == 'p') energy.pause();
    else return 2;
  }
  std::printf("available %d joules %.3f timed %d\n", energy.available() ? 1 : 0, energy.joules(),
              energy.seconds() > 0 ? 1 : 0);
  return 0;
}
