// Error checks for every CUDA, NCCL and cuBLAS call of a generated program.
//
// Design choices:
// - A failed call is a bug or a broken machine, never something to recover from: print the failing call's
//   text, the library's own error name and message, the file and the line, then exit with code 3 (the
//   exit code the launcher reads as "the program itself failed"; 1 is a failed verify, 2 a usage error).
// - Kernel launches return nothing, so LAUNCH_CHECK() after each launch reads cudaGetLastError(): that
//   catches bad launch configurations (too much shared memory, too many threads) at the launch site.
//   Errors inside a kernel surface at the next synchronising call; build with -DLASP_SYNC_CHECK to
//   synchronise after every launch and pin them to the kernel that caused them.
// - This header includes only the CUDA runtime. NCCL_CHECK and CUBLAS_CHECK name ncclGetErrorString and
//   cublasGetStatusString, which a macro needs only where it is expanded: files that use them include
//   nccl.h or cublas_v2.h themselves, and files that do not (the kernel headers) never pay for them.
// - Every kernel header includes this file (it sits beside them in the program and in templates/runtime/),
//   so the benchmarks in bench/gpu/ that include a kernel header alone get the same checks. Every macro is
//   guarded by #ifndef, so a harness may define its own first.
#pragma once
#include <cuda_runtime.h>  // cudaGetErrorName, cudaGetLastError
#include <cstdio>          // the message
#include <cstdlib>         // exit

#ifndef LASP_EXIT_CODE_FAILURE
#define LASP_EXIT_CODE_FAILURE 3
#endif

#ifndef CUDA_CHECK
#define CUDA_CHECK(call)                                                                                  \
  do {                                                                                                    \
    cudaError_t lasp_err_ = (call);                                                                       \
    if (lasp_err_ != cudaSuccess) {                                                                       \
      std::fprintf(stderr, "CUDA error %s (%s)\n  at %s:%d\n  in %s\n", cudaGetErrorName(lasp_err_),      \
                   cudaGetErrorString(lasp_err_), __FILE__, __LINE__, #call);                             \
      std::exit(LASP_EXIT_CODE_FAILURE);                                                                  \
    }                                                                                                     \
  } while (0)
#endif

#ifndef NCCL_CHECK
#define NCCL_CHECK(call)                                                                                  \
  do {                                                                                                    \
    auto lasp_res_ = (call);                                                                              \
    if ((int)lasp_res_ != 0) {                                                                            \
      std::fprintf(stderr, "NCCL error %d (%s)\n  at %s:%d\n  in %s\n", (int)lasp_res_,                   \
                   ncclGetErrorString(lasp_res_), __FILE__, __LINE__, #call);                             \
      std::exit(LASP_EXIT_CODE_FAILURE);                                                                  \
    }                                                                                                     \
  } while (0)
#endif

#ifndef CUBLAS_CHECK
#define CUBLAS_CHECK(call)                                                                                \
  do {                                                                                                    \
    auto lasp_st_ = (call);                                                                               \
    if ((int)lasp_st_ != 0) {                                                                             \
      std::fprintf(stderr, "cuBLAS error %d (%s)\n  at %s:%d\n  in %s\n", (int)lasp_st_,                  \
                   cublasGetStatusString(lasp_st_), __FILE__, __LINE__, #call);                           \
      std::exit(LASP_EXIT_CODE_FAILURE);                                                                  \
    }                                                                                                     \
  } while (0)
#endif

#ifndef LAUNCH_CHECK
#ifdef LASP_SYNC_CHECK
#define LAUNCH_CHECK()                         \
  do {                                         \
    CUDA_CHECK(cudaGetLastError());            \
    CUDA_CHECK(cudaDeviceSynchronize());       \
  } while (0)
#else
#define LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())
#endif
#endif
