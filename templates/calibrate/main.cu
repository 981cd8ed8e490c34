// lasp calibrate's microbenchmark program: times what the cost model prices (src/calibrate/plan.ts chooses
// the benchmarks, src/calibrate/fit.ts turns the times into a machine profile).
//
//   lasp_program --plan plan.txt --part compute|collectives [--runs N] [--warmup N]
//                [--rank R --world W --device D --nccl-id-file FILE] [--json]
//
// plan.txt has one benchmark per line, `ID KIND NUMBERS...`:
//   ID gemm M N K TA TB BATCH HEAT                cuBLAS bf16 C[M][N] = op(A) op(B), fp32 accumulation (blas.cuh;
//                                                 TA, TB: 0/1, the operand is stored transposed), timed in
//                                                 batches of at least BATCH ms; HEAT > 0: run it HEAT ms (twice)
//                                                 untimed before every benchmark (sustained clocks)
//   ID copy|add BYTES                              a streaming kernel over buffers of BYTES
//   ID linear_forward|linear_backward T H D C      lasp's LASP-2 per-rank kernels (C: causal 0/1)
//   ID softmax_forward|softmax_backward T H KV D C lasp|cudnn
//   ID softmax_gathered T H KV D C W Z lasp|cudnn  LASP-2H's gathered calls of W ranks holding T tokens each
//                                                 (Z: 1 zigzag, 0 contiguous), forward and backward, beside
//                                                 the whole sequence of W x T tokens (kernels.h, time_gathered)
//   ID all_gather|reduce_scatter|all_reduce|all_to_all|send_recv BYTES   NCCL, BYTES as nccl-tests' size
//   ID all_gather_ce|all_to_all_ce BYTES          the same on the copy engines: a communicator with CTA policy
//                                                 zero, both buffers symmetric windows (runtime/comm.cuh);
//                                                 skipped where NCCL has neither (older than 2.28, no window)
// The part `compute` runs one process on one GPU; `collectives` one process per GPU (src/toolchain/launch.ts
// starts them as it starts the generated program, and the NCCL id travels through the same file).
//
// Output (stdout, one JSON object per line, rank 0 only): `device` (name, sms, memory_bytes, cc, cudnn),
// then per benchmark `measure` (id, ms: the median of `runs` timed runs after `warmup`, or for a GEMM of `runs`
// sustained batches, time_gemm; runs; softmax_gathered also whole_ms, the whole sequence's median, its `ms` the
// ranks' calls together) or `skipped` (id, why). Human lines go to stderr. Exit codes: 0 ok, 2 a bad command
// line or plan, 3 a CUDA, cuBLAS or NCCL failure (check.cuh).
#include <cublas_v2.h>  // cublasCreate, cublasGemmEx (blas.cuh)

#include <algorithm>  // max
#include <climits>    // INT_MAX
#include <cstdio>     // the plan, the output
#include <cstdlib>    // atoi
#include <cstring>    // strcmp
#include <string>     // arguments
#include <vector>     // the plan

#include "kernels.h"         // median_ms, the kernel benchmarks
#include "lines.h"           // the output lines
#include "plan.h"            // plan.txt
#include "lasp/blas.cuh"     // matmul: cuBLAS as the generated programs call it
#include "lasp/check.cuh"    // CUDA_CHECK, NCCL_CHECK, CUBLAS_CHECK
#include "lasp/comm.cuh"     // share_id_by_file
#include "lasp/nccl_api.cuh"  // the collectives: NCCL, or without it one GPU's stand-in (build.sh, CMakeLists.txt)
#include "lasp/types.cuh"    // bf16

namespace {

struct Options {
  int rank = 0, world = 1, device = 0, runs = 20, warmup = 3;
  std::string plan, part = "compute", id_file;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "lasp_program (calibrate): %s\n", why.c_str());
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing value for " + a);
      return argv[++i];
    };
    if (a == "--rank") o.rank = std::atoi(next().c_str());
    else if (a == "--world") o.world = std::atoi(next().c_str());
    else if (a == "--device") o.device = std::atoi(next().c_str());
    else if (a == "--nccl-id-file") o.id_file = next();
    else if (a == "--plan") o.plan = next();
    else if (a == "--part") o.part = next();
    else if (a == "--runs") o.runs = std::atoi(next().c_str());
    else if (a == "--warmup") o.warmup = std::atoi(next().c_str());
    else if (a == "--json") {
    } else usage("unknown option " + a);
  }
  if (o.plan.empty()) usage("--plan FILE is required");
  if (o.part != "compute" && o.part != "collectives") usage("--part must be compute or collectives");
  if (o.runs < 1 || o.warmup < 0) usage("--runs must be at least 1 and --warmup at least 0");
  return o;
}

std::vector<calib::Item> read_plan_or_exit(const std::string& path) {
  std::vector<calib::Item> items;
  std::string error;
  if (!calib::read_plan(path, &items, &error)) usage(error);
  return items;
}

void print_line(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

void measure(const Options& o, int id, float ms) {
  if (o.rank == 0) print_line(calib::measure_line(id, ms, o.runs));
}

void measure_gathered(const Options& o, int id, const calib::GatheredTimes& t) {
  if (o.rank == 0) print_line(calib::measure_line(id, t.gathered_ms, o.runs, t.whole_ms));
}

void skipped(const Options& o, int id, const char* why) {
  if (o.rank == 0) print_line(calib::skipped_line(id, why));
}

void report_device(const Options& o) {
  if (o.rank != 0) return;
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp p;
  CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  print_line(calib::device_line(p.name, p.multiProcessorCount, p.totalGlobalMem, p.major, p.minor,
                                calib::cudnn_version()));
}

// A GEMM's time under sustained load (calib::sustained_ms: batches of at least the plan's BATCH ms, after the
// heating GEMMs of the plan ran): clocks settled under the power limit, as a training step's GEMMs run.
// Weight gradients (A transposed) accumulate into fp32 as the program's do (beta 1, blas.cuh); the rest
// write bf16 activations.
float time_gemm(const calib::Item& it, cublasHandle_t blas, cudaStream_t s, float batch_ms, int runs) {
  const int M = (int)it.n[0], N = (int)it.n[1], K = (int)it.n[2];
  const bool ta = it.n[3] != 0, tb = it.n[4] != 0;
  lasp::bf16 *A, *B;
  void* C;
  const size_t c_bytes = (size_t)M * N * (ta ? sizeof(float) : sizeof(lasp::bf16));
  CUDA_CHECK(cudaMalloc(&A, (size_t)M * K * sizeof(lasp::bf16)));
  CUDA_CHECK(cudaMalloc(&B, (size_t)K * N * sizeof(lasp::bf16)));
  CUDA_CHECK(cudaMalloc(&C, c_bytes));
  CUDA_CHECK(cudaMemsetAsync(C, 0, c_bytes, s));
  calib::fill_bf16(A, (size_t)M * K, 11, s);
  calib::fill_bf16(B, (size_t)K * N, 12, s);
  const float ms = calib::sustained_ms(
      [&] {
        if (ta) lasp::matmul(blas, ta, tb, M, N, K, A, B, static_cast<float*>(C), 1.0f);
        else lasp::matmul(blas, ta, tb, M, N, K, A, B, static_cast<lasp::bf16*>(C));
      },
      s, batch_ms, runs);
  CUDA_CHECK(cudaFree(A));
  CUDA_CHECK(cudaFree(B));
  CUDA_CHECK(cudaFree(C));
  return ms;
}

// LASP-2H's gathered calls beside the whole sequence (kernels.h); a layout no rank can hold is a bad plan.
void run_gathered(const Options& o, const calib::Item& it, cudaStream_t s) {
  const bool zigzag = it.n[6] != 0;
  if (it.n[5] < 1 || it.n[0] < 1 || (zigzag && it.n[0] % 2 != 0) || it.n[0] > INT_MAX / it.n[5])
    usage("softmax_gathered " + std::to_string(it.id) + ": needs W >= 1 ranks of T >= 1 tokens (T even with zigzag)");
  const int tokens = (int)it.n[0], ranks = (int)it.n[5];
  calib::GatheredTimes t;
  const char* why = "";
  if (calib::time_gathered(it.backend == "cudnn", tokens, ranks, zigzag, (int)it.n[1], (int)it.n[2], (int)it.n[3],
                           it.n[4] != 0, s, o.warmup, o.runs, &t, &why))
    measure_gathered(o, it.id, t);
  else
    skipped(o, it.id, why);
}

void run_compute(const Options& o, const std::vector<calib::Item>& items) {
  cudaStream_t s;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cublasHandle_t blas;
  CUBLAS_CHECK(cublasCreate(&blas));
  CUBLAS_CHECK(cublasSetStream(blas, s));
  for (const calib::Item& it : items)
    if (it.kind == "gemm" && it.n[6] > 0) time_gemm(it, blas, s, (float)it.n[6], 1);  // heat: its time is not kept
  for (const calib::Item& it : items) {
    if (calib::is_collective(it.kind)) continue;
    if (it.kind == "gemm") {
      measure(o, it.id, time_gemm(it, blas, s, (float)it.n[5], o.runs));
    } else if (it.kind == "copy" || it.kind == "add") {
      measure(o, it.id, calib::time_stream(it.kind == "add", (size_t)it.n[0], s, o.warmup, o.runs));
    } else if (it.kind == "linear_forward" || it.kind == "linear_backward") {
      measure(o, it.id,
              calib::time_linear(it.kind == "linear_backward", (int)it.n[0], (int)it.n[1], (int)it.n[2], it.n[3] != 0,
                                 s, o.warmup, o.runs));
    } else if (it.kind == "softmax_gathered") {
      run_gathered(o, it, s);
    } else {
      float ms = 0;
      const char* why = "";
      const bool ran = calib::time_softmax(it.kind == "softmax_backward", it.backend == "cudnn", (int)it.n[0],
                                           (int)it.n[1], (int)it.n[2], (int)it.n[3], it.n[4] != 0, s, o.warmup,
                                           o.runs, &ms, &why);
      if (ran) measure(o, it.id, ms);
      else skipped(o, it.id, why);
    }
  }
  CUBLAS_CHECK(cublasDestroy(blas));
  CUDA_CHECK(cudaStreamDestroy(s));
}

// bf16 elements of a collective's buffer; the whole buffer splits evenly into the ranks' parts.
size_t elements_of(const calib::Item& it) { return (size_t)it.n[0] / sizeof(lasp::bf16); }

// Issues one AllGather or AlltoAll of `it` (either communicator: the copy-engine kinds name the same calls).
void issue_gather_or_alltoall(const calib::Item& it, int world, const void* send, void* recv, ncclComm_t comm,
                              cudaStream_t s) {
  const size_t part = elements_of(it) / world;
  if (it.kind == "all_gather" || it.kind == "all_gather_ce")
    NCCL_CHECK(ncclAllGather(send, recv, part, ncclBfloat16, comm, s));
  else
    NCCL_CHECK(ncclAlltoAll(send, recv, part, ncclBfloat16, comm, s));
}

// The copy-engine collectives' communicator and buffers (nvlink.copyEngineBusBandwidth): a communicator split
// from the default one with CTA policy zero, and a send and a receive buffer of the largest size, symmetric
// windows of it as the program's are (runtime/comm.cuh's Windows): NCCL 2.28+ then copies AllGather and AlltoAll
// with the copy engines, no SM. `why` says why none could be set up (every rank learns the same: registration
// is collective; a buffer NCCL declined stays until the process ends).
struct CopyEngines {
  ncclComm_t comm = nullptr;
  lasp::Windows windows;
  void *send = nullptr, *recv = nullptr;
  const char* why = nullptr;
};

CopyEngines open_copy_engines(const Options& o, ncclComm_t comm, const std::vector<calib::Item>& items) {
  CopyEngines ce;
  size_t largest = 0;
  for (const calib::Item& it : items)
    if (calib::is_copy_engine(it.kind)) largest = std::max(largest, (size_t)it.n[0]);
  if (largest == 0) return ce;
#ifdef NCCL_CTA_POLICY_ZERO
  ncclConfig_t zero = NCCL_CONFIG_INITIALIZER;
  zero.CTAPolicy = NCCL_CTA_POLICY_ZERO;
  NCCL_CHECK(ncclCommSplit(comm, 0, o.rank, &ce.comm, &zero));
  bool copies = true;
  ce.send = ce.windows.on(ce.comm, &copies, largest);
  ce.recv = ce.windows.on(ce.comm, &copies, largest);
  if (!copies)
    ce.why = "NCCL registered no symmetric window between these GPUs, so it has no copy-engine collectives here "
             "(no direct P2P, several nodes or cuMem disabled; NCCL_DEBUG=INFO says why)";
#else
  (void)o;
  (void)comm;
  ce.why = "built against an NCCL older than 2.28 (no NCCL_CTA_POLICY_ZERO): no copy-engine collectives";
#endif
  return ce;
}

void close_copy_engines(CopyEngines& ce) {
  if (ce.comm == nullptr) return;
  ce.windows.release();
  NCCL_CHECK(ncclCommDestroy(ce.comm));
  ce.comm = nullptr;
}

// One AllGather or AlltoAll on the copy engines, or skipped with why.
void run_on_copy_engines(const Options& o, const CopyEngines& ce, const calib::Item& it, cudaStream_t s) {
  if (ce.why != nullptr) {
    skipped(o, it.id, ce.why);
    return;
  }
  calib::fill_bf16(ce.send, elements_of(it), 13 + o.rank, s);
  auto issue = [&] { issue_gather_or_alltoall(it, o.world, ce.send, ce.recv, ce.comm, s); };
  measure(o, it.id, calib::median_ms(issue, s, o.warmup, o.runs));
}

void run_collectives(const Options& o, const std::vector<calib::Item>& items) {
  if (o.world < 2) usage("--part collectives needs two ranks or more (--world)");
  if (o.id_file.empty()) usage("--part collectives needs --nccl-id-file");
  const ncclUniqueId id = lasp::share_id_by_file(o.id_file, o.rank == 0);
  ncclComm_t comm;
  NCCL_CHECK(ncclCommInitRank(&comm, o.world, id, o.rank));
  cudaStream_t s;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  const int next = (o.rank + 1) % o.world, prev = (o.rank + o.world - 1) % o.world;
  CopyEngines ce = open_copy_engines(o, comm, items);
  for (const calib::Item& it : items) {
    if (!calib::is_collective(it.kind)) continue;
    if (calib::is_copy_engine(it.kind)) {
      run_on_copy_engines(o, ce, it, s);
      continue;
    }
    const size_t count = elements_of(it), part = count / o.world;
    void *send, *recv;
    CUDA_CHECK(cudaMalloc(&send, (size_t)it.n[0]));
    CUDA_CHECK(cudaMalloc(&recv, (size_t)it.n[0]));
    calib::fill_bf16(send, count, 13 + o.rank, s);
    auto issue = [&] {
      if (it.kind == "all_gather" || it.kind == "all_to_all") {
        issue_gather_or_alltoall(it, o.world, send, recv, comm, s);
      } else if (it.kind == "reduce_scatter") {
        NCCL_CHECK(ncclReduceScatter(send, recv, part, ncclBfloat16, ncclSum, comm, s));
      } else if (it.kind == "all_reduce") {
        NCCL_CHECK(ncclAllReduce(send, recv, count, ncclBfloat16, ncclSum, comm, s));
      } else {  // send_recv: every rank sends the whole buffer to the next and receives the previous one's
        NCCL_CHECK(ncclGroupStart());
        NCCL_CHECK(ncclSend(send, count, ncclBfloat16, next, comm, s));
        NCCL_CHECK(ncclRecv(recv, count, ncclBfloat16, prev, comm, s));
        NCCL_CHECK(ncclGroupEnd());
      }
    };
    measure(o, it.id, calib::median_ms(issue, s, o.warmup, o.runs));
    CUDA_CHECK(cudaFree(send));
    CUDA_CHECK(cudaFree(recv));
  }
  CUDA_CHECK(cudaStreamSynchronize(s));
  close_copy_engines(ce);
  CUDA_CHECK(cudaStreamDestroy(s));
  NCCL_CHECK(ncclCommDestroy(comm));
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_args(argc, argv);
  const std::vector<calib::Item> items = read_plan_or_exit(o.plan);
  int devices = 0;
  CUDA_CHECK(cudaGetDeviceCount(&devices));
  // Under srun --gpus-per-task 1 the one visible GPU is this rank's, whatever --device says.
  CUDA_CHECK(cudaSetDevice(devices == 1 ? 0 : o.device));
  if (o.part == "compute") {
    report_device(o);
    run_compute(o, items);
  } else {
    run_collectives(o, items);
  }
  return 0;
}
