// NCCL, or for a program built without it (LASP_WITHOUT_NCCL: build.sh and CMakeLists.txt define it when the
// spec runs on one GPU, lasp calibrate's where NCCL is not found) the one-rank stand-in with the same calls
// (nccl_one_rank.cuh). Every file that calls NCCL includes this one instead of nccl.h.
#pragma once
#ifdef LASP_WITHOUT_NCCL
#include "nccl_one_rank.cuh"
#else
#include <nccl.h>
#endif
