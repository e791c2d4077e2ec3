/* An NCCL program for perf/gpu.sh, built against NVIDIA's nccl.h and libnccl.so.2 (never
 * against loom's drop-in). Run as built, it measures NVIDIA NCCL; run with loom's
 * compat/nccl on LD_LIBRARY_PATH, the same binary runs on loom unchanged (issue 8's drop-in
 * check), also with several ranks on one GPU, which NVIDIA's NCCL refuses.
 *
 * usage: nccl_latency [iters [nranks]]
 * nranks ranks on device 0 in this process (ncclCommInitAll, calls grouped). Each rank's
 * buffer holds rank+1; after one checked AllReduce every element must be n(n+1)/2. Then
 * `iters` AllReduces of 8 bytes (2 floats) are issued back to back and synchronised at the end:
 * the mean time per call is printed (what nccl-tests reports as time for one rank). */
#include <cuda_runtime_api.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MAXR 16

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static int allreduce(ncclComm_t* comms, float** bufs, cudaStream_t* streams, int n, size_t count) {
  if (n > 1 && ncclGroupStart() != ncclSuccess) return 1;
  for (int r = 0; r < n; ++r)
    if (ncclAllReduce(bufs[r], bufs[r], count, ncclFloat, ncclSum, comms[r], streams[r]) !=
        ncclSuccess)
      return 1;
  if (n > 1 && ncclGroupEnd() != ncclSuccess) return 1;
  return 0;
}

int main(int argc, char** argv) {
  const int iters = argc > 1 ? atoi(argv[1]) : 10000;
  const int n = argc > 2 ? atoi(argv[2]) : 1;
  if (n < 1 || n > MAXR) return 2;
  int devs[MAXR] = {0};
  ncclComm_t comms[MAXR];
  if (ncclCommInitAll(comms, n, devs) != ncclSuccess) {
    fprintf(stderr, "nccl_latency: ncclCommInitAll of %d ranks on device 0 failed: %s\n", n,
            ncclGetLastError(NULL));
    return 1;
  }
  const size_t count = 1 << 16;
  float* bufs[MAXR];
  cudaStream_t streams[MAXR];
  float* host = (float*)malloc(count * sizeof(float));
  for (int r = 0; r < n; ++r) {
    cudaMalloc((void**)&bufs[r], count * sizeof(float));
    cudaStreamCreate(&streams[r]);
    for (size_t i = 0; i < count; ++i)
      host[i] = (float)(r + 1);
    cudaMemcpy(bufs[r], host, count * sizeof(float), cudaMemcpyHostToDevice);
  }
  /* One checked call. */
  if (allreduce(comms, bufs, streams, n, count)) {
    fprintf(stderr, "nccl_latency: ncclAllReduce failed: %s\n", ncclGetLastError(comms[0]));
    return 1;
  }
  const float want = (float)n * (n + 1) / 2;
  for (int r = 0; r < n; ++r) {
    cudaStreamSynchronize(streams[r]);
    cudaMemcpy(host, bufs[r], count * sizeof(float), cudaMemcpyDeviceToHost);
    for (size_t i = 0; i < count; ++i)
      if (host[i] != want) {
        fprintf(stderr, "nccl_latency: rank %d element %zu is %g, expected %g\n", r, i, host[i],
                want);
        return 1;
      }
  }
  for (int i = 0; i < 100; ++i)
    allreduce(comms, bufs, streams, n, 2);
  for (int r = 0; r < n; ++r)
    cudaStreamSynchronize(streams[r]);
  double t = now();
  for (int i = 0; i < iters; ++i)
    if (allreduce(comms, bufs, streams, n, 2)) return 1;
  for (int r = 0; r < n; ++r)
    cudaStreamSynchronize(streams[r]);
  t = now() - t;
  int version = 0;
  ncclGetVersion(&version);
  printf(
      "NCCL library %d: %d rank(s) on one GPU: AllReduce of 8 bytes: %.2f us per call (%d "
      "calls), result checked\n",
      version, n, t / iters * 1e6, iters);
  for (int r = 0; r < n; ++r)
    ncclCommDestroy(comms[r]);
  return 0;
}
