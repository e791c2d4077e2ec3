// The device-memory bound for the GPU benchmarks (perf/gpu.sh): a device-to-device copy of
// 1 GiB (by default), best of N, printed as "copy GB/s" (bytes copied per second; the memory
// moves twice that, one read and one write) - the ceiling a collective's busbw is compared with.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  const size_t bytes = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : (size_t{1} << 30);
  const int reps = argc > 2 ? std::atoi(argv[2]) : 10;
  void *a = nullptr, *b = nullptr;
  if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess) {
    std::fprintf(stderr, "membw: cudaMalloc of 2 x %zu bytes failed\n", bytes);
    return 1;
  }
  cudaMemset(a, 1, bytes);
  cudaEvent_t t0, t1;
  cudaEventCreate(&t0);
  cudaEventCreate(&t1);
  float best = 1e30f;
  for (int i = 0; i < reps + 1; ++i) {
    cudaEventRecord(t0);
    cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(t1);
    cudaEventSynchronize(t1);
    float ms = 0;
    cudaEventElapsedTime(&ms, t0, t1);
    if (i > 0 && ms < best) best = ms;  // the first is a warm-up
  }
  if (cudaGetLastError() != cudaSuccess) {
    std::fprintf(stderr, "membw: a CUDA call failed\n");
    return 1;
  }
  std::printf(
      "device-to-device copy of %zu bytes: %.3f ms, copy %.1f GB/s (read+write %.1f GB/s)\n", bytes,
      best, bytes / (best * 1e-3) / 1e9, 2 * bytes / (best * 1e-3) / 1e9);
  return 0;
}
