/* NVIDIA NCCL's 1-rank AllReduce latency on this GPU, for perf/gpu.sh's comparison: built
 * against NVIDIA's nccl.h and libnccl.so.2 when both are found, never against loom's drop-in.
 * Prints the mean time per call of `iters` 8-byte float sums, issued back to back on one stream
 * and synchronised at the end (what nccl-tests reports as time for one rank). */
#include <cuda_runtime_api.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  const int iters = argc > 1 ? atoi(argv[1]) : 10000;
  int dev = 0;
  ncclComm_t comm;
  if (ncclCommInitAll(&comm, 1, &dev) != ncclSuccess) {
    fprintf(stderr, "nccl_latency: ncclCommInitAll failed\n");
    return 1;
  }
  float* buf = NULL;
  cudaStream_t s;
  cudaMalloc((void**)&buf, 64);
  cudaStreamCreate(&s);
  for (int i = 0; i < 100; ++i)
    ncclAllReduce(buf, buf, 2, ncclFloat, ncclSum, comm, s);
  cudaStreamSynchronize(s);
  double t = now();
  for (int i = 0; i < iters; ++i)
    ncclAllReduce(buf, buf, 2, ncclFloat, ncclSum, comm, s);
  cudaStreamSynchronize(s);
  t = now() - t;
  int version = 0;
  ncclGetVersion(&version);
  printf("NCCL %d: 1-rank AllReduce of 8 bytes: %.2f us per call (%d calls)\n", version,
         t / iters * 1e6, iters);
  ncclCommDestroy(comm);
  return 0;
}
