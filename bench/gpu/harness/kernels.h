// The harnesses of bench/gpu compile the op headers into their own translation unit, where the generated
// program has lasp/kernels.h (the host API of its kernels.cu): lm_head.cuh's include of it lands here.
#pragma once
#include "classifier.cuh"
