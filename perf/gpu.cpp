#include "gpu.h"

#if LOOM_PERF_CUDA
#include <cuda_runtime_api.h>
#endif

namespace loom::perf::gpu {

#if !LOOM_PERF_CUDA

namespace {
const char kNoCuda[] = "this build of loom-perf has no CUDA (nvcc was not found at configure time)";
}

bool available(std::string* why) {
  *why = kNoCuda;
  return false;
}
bool selectDevice(int, std::string* error) {
  *error = kNoCuda;
  return false;
}
void* alloc(size_t, std::string* error) {
  *error = kNoCuda;
  return nullptr;
}
void free(void*) {}
bool copy(void*, const void*, size_t, std::string* error) {
  *error = kNoCuda;
  return false;
}
void* createStream(std::string* error) {
  *error = kNoCuda;
  return nullptr;
}
void destroyStream(void*) {}
bool synchronize(void*, std::string* error) {
  *error = kNoCuda;
  return false;
}

#else

namespace {
bool check(cudaError_t err, const char* what, std::string* error) {
  if (err == cudaSuccess) return true;
  (void)cudaGetLastError();
  *error = std::string(what) + ": " + cudaGetErrorString(err);
  return false;
}
}  // namespace

bool available(std::string* why) {
  int n = 0;
  if (!check(cudaGetDeviceCount(&n), "cudaGetDeviceCount", why)) return false;
  if (n == 0) *why = "no CUDA device";
  return n > 0;
}

bool selectDevice(int index, std::string* error) {
  int n = 0;
  if (!check(cudaGetDeviceCount(&n), "cudaGetDeviceCount", error)) return false;
  return n > 0 && check(cudaSetDevice(index % n), "cudaSetDevice", error);
}

void* alloc(size_t bytes, std::string* error) {
  void* p = nullptr;
  if (!check(cudaMalloc(&p, bytes), "cudaMalloc", error)) return nullptr;
  return p;
}

void free(void* p) {
  if (p) cudaFree(p);
}

bool copy(void* dst, const void* src, size_t bytes, std::string* error) {
  return check(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault), "cudaMemcpy", error);
}

void* createStream(std::string* error) {
  cudaStream_t s = nullptr;
  if (!check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate", error))
    return nullptr;
  return s;
}

void destroyStream(void* stream) {
  if (stream) cudaStreamDestroy(static_cast<cudaStream_t>(stream));
}

bool synchronize(void* stream, std::string* error) {
  return check(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "cudaStreamSynchronize",
               error);
}

#endif

}  // namespace loom::perf::gpu
