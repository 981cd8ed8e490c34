// The program's AdamW kernel (templates/runtime/adamw.cuh) on a GPU, for bench/gpu/adamw_torch.py to compare
// with torch.optim.AdamW on the same numbers (issue 17: one step equal within 1e-6 relative, fp32).
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -Itemplates/runtime bench/gpu/adamw_check.cu -o adamw_check
//   ./adamw_check OUT.bin && python3 bench/gpu/adamw_torch.py OUT.bin
// OUT.bin, little-endian: int64 n, steps, rows; double beta1, beta2, eps, weight_decay; rows x (int64 offset,
// elements, decay); float w0[n]; per step: double lr, clip; float grad[n]; float w[n] (the master weights after
// the step, joined from the bf16 weights and low halves the kernel wrote: master_weights.cuh).
#include <cuda_runtime.h>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "adamw.cuh"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: adamw_check OUT.bin\n");
    return 2;
  }
  const int64_t n = (1 << 20) + 3;  // a tail of 3 for the scalar path
  const int64_t steps = 3;
  const double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, wd = 0.1;
  const double lrs[steps] = {1e-3, 2e-3, 5e-4}, clips[steps] = {1.0, 0.5, 1.0};
  // Rows of random lengths, decayed or not in turn (a matrix, then a norm gain, ...).
  std::mt19937_64 rng(17);
  std::vector<lasp::DecayRow> rows;
  for (int64_t at = 0, k = 0; at < n; k++) {
    const int64_t len = std::min<int64_t>(n - at, 1 + (int64_t)(rng() % 200000));
    rows.push_back({(size_t)at, (size_t)len, (int)(k % 2 == 0)});
    at += len;
  }
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(n), grad(n);
  for (auto& x : w) x = 0.02f * normal(rng);
  std::FILE* out = std::fopen(argv[1], "wb");
  if (out == nullptr) {
    std::perror(argv[1]);
    return 2;
  }
  const int64_t head[3] = {n, steps, (int64_t)rows.size()};
  const double hyper[4] = {beta1, beta2, eps, wd};
  std::fwrite(head, sizeof head, 1, out);
  std::fwrite(hyper, sizeof hyper, 1, out);
  for (const auto& r : rows) {
    const int64_t row[3] = {(int64_t)r.offset, (int64_t)r.elements, r.decay};
    std::fwrite(row, sizeof row, 1, out);
  }
  std::fwrite(w.data(), sizeof(float), n, out);
  float *dw, *dm, *dv, *dg;
  lasp::bf16* dweights;
  uint16_t* dlow;
  CUDA_CHECK(cudaMalloc(&dw, n * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&dlow, n * sizeof(uint16_t)));
  CUDA_CHECK(cudaMalloc(&dm, n * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&dv, n * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&dg, n * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&dweights, n * sizeof(lasp::bf16)));
  CUDA_CHECK(cudaMemcpy(dw, w.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  lasp::master_from_f32(dw, dweights, dlow, (size_t)n, 0);
  CUDA_CHECK(cudaMemset(dm, 0, n * sizeof(float)));
  CUDA_CHECK(cudaMemset(dv, 0, n * sizeof(float)));
  const lasp::AdamwTable table = lasp::adamw_upload_table(rows, (size_t)n);
  for (int64_t t = 1; t <= steps; t++) {
    for (auto& x : grad) x = (t == 2 ? 3.0f : 1.0f) * normal(rng);
    CUDA_CHECK(cudaMemcpy(dg, grad.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    const lasp::AdamwShard shard{dweights, dlow, dm, dv, dg, (size_t)n};
    lasp::adamw_step(shard, table, lasp::AdamwSettings{lrs[t - 1], beta1, beta2, eps, wd, clips[t - 1], t}, 0);
    lasp::master_to_f32(dweights, dlow, dw, (size_t)n, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaMemcpy(w.data(), dw, n * sizeof(float), cudaMemcpyDeviceToHost));
    const double scalars[2] = {lrs[t - 1], clips[t - 1]};
    std::fwrite(scalars, sizeof scalars, 1, out);
    std::fwrite(grad.data(), sizeof(float), n, out);
    std::fwrite(w.data(), sizeof(float), n, out);
  }
  if (std::fclose(out) != 0) {
    std::perror(argv[1]);
    return 2;
  }
  std::printf("wrote %s: %lld parameters in %zu rows, %lld AdamW steps on the GPU\n", argv[1], (long long)n,
              rows.size(), (long long)steps);
  return 0;
}
