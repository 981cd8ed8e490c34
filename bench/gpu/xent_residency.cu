// Experiment (issue 17): does the cross-entropy row kernel (templates/runtime/classifier.cuh) read its logits
// the second time from L2 when fewer rows are in flight? The shipped launch puts two blocks of 1024 threads on
// an SM (264 rows of 256 KB in flight at vocab 128256: more than the 50 MB L2); dynamic shared memory that
// leaves room for one block per SM halves that. Times the shipped kernel at one chunk of the Linear-Llama3-1B
// step (4096 rows x 128256, loss and gradient) both ways, alternately, and checks the two write the same bits.
//
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Itemplates/runtime -o xent_residency \
//        bench/gpu/xent_residency.cu && ./xent_residency [--runs N]
#include "classifier.cuh"
#include "bench_timing.cuh"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using lasp::bf16;

__global__ void fill_logits(bf16* z, size_t n, unsigned seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    unsigned h = (unsigned)i * 2654435761u ^ seed;
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    z[i] = __float2bfloat16(((h & 0xffff) / 65536.0f - 0.5f) * 8.0f);
  }
}

int main(int argc, char** argv) {
  int runs = 20;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--runs" && i + 1 < argc) runs = std::stoi(argv[++i]);
  const int rows = 4096, vocab = 128256;
  const size_t n = (size_t)rows * vocab;
  bf16 *z, *z2;
  int* targets;
  float* losses;
  CUDA_CHECK(cudaMalloc(&z, n * sizeof(bf16)));
  CUDA_CHECK(cudaMalloc(&z2, n * sizeof(bf16)));
  CUDA_CHECK(cudaMalloc(&targets, rows * sizeof(int)));
  CUDA_CHECK(cudaMalloc(&losses, rows * sizeof(float)));
  std::vector<int> t(rows);
  for (int r = 0; r < rows; ++r) t[r] = (r * 7919) % vocab;
  CUDA_CHECK(cudaMemcpy(targets, t.data(), rows * sizeof(int), cudaMemcpyHostToDevice));
  auto kernel = lasp::classifier::softmax_xent_kernel<true>;
  const int big = 120 << 10;  // more than half an SM's shared memory: one block per SM
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, big));
  auto launch = [&](bf16* logits, int smem) {
    kernel<<<rows, lasp::classifier::kRowThreads, smem>>>(logits, targets, losses, vocab, 1.0f / rows, 1);
    LAUNCH_CHECK();
  };
  auto refill = [&](bf16* p) { fill_logits<<<2048, 256>>>(p, n, 7); };
  // Same bits both ways (the launch shape does not enter the arithmetic).
  refill(z);
  refill(z2);
  launch(z, 0);
  launch(z2, big);
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<bf16> a(n), b(n);
  CUDA_CHECK(cudaMemcpy(a.data(), z, n * sizeof(bf16), cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaMemcpy(b.data(), z2, n * sizeof(bf16), cudaMemcpyDeviceToHost));
  const bool same = std::memcmp(a.data(), b.data(), n * sizeof(bf16)) == 0;
  std::printf("same bits both ways: %s\n", same ? "yes" : "NO");
  // The kernel overwrites its input: time it on freshly filled logits each call (the fill timed alone, subtracted).
  for (int round = 0; round < 3; ++round) {
    const float fill = time_ms([&] { refill(z); }, runs);
    const float two = time_ms([&] { refill(z); launch(z, 0); }, runs) - fill;
    const float one = time_ms([&] { refill(z); launch(z, big); }, runs) - fill;
    std::printf("round %d: 2 blocks/SM %.3f ms (%.0f GB/s at 3 x %.2f GB)  1 block/SM %.3f ms (%.0f GB/s)\n", round,
                two, 3 * n * 2 / (two * 1e6), n * 2 / 1e9, one, 3 * n * 2 / (one * 1e6));
  }
  return same ? 0 : 1;
}
