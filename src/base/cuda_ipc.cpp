// CUDA IPC memory (cuda.h): real, and on the emulation.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "base/cuda.h"
#include "base/cuda_fake.h"
#include "loom_features.h"

#if LOOM_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace loom::cuda {

namespace {

// ---- the emulation: a memfd, mapped by other processes through /proc/<pid>/fd ---------------

struct FakeIpcHandle {
  uint32_t magic;
  int32_t pid;
  int32_t fd;
  uint32_t pad;
  uint64_t bytes;
};
static_assert(sizeof(FakeIpcHandle) <= sizeof(IpcHandle::bytes));
constexpr uint32_t kFakeIpcMagic = 0x4c4f4950;  // "LOIP"

struct FakeMapping {
  size_t bytes = 0;
  int fd = -1;  // ours (allocated here), else -1
};
std::mutex gFakeIpcMu;
std::map<void*, FakeMapping>& fakeMappings() {
  static auto* m = new std::map<void*, FakeMapping>();
  return *m;
}

Status errnoStatus(const std::string& what) {
  return Status(Code::kSystemError, "fake device IPC: " + what + ": " + std::strerror(errno));
}

std::atomic<bool> gRefuseIpc{false};

Status fakeIpcAlloc(size_t bytes, void** ptr, IpcHandle* handle) {
  if (gRefuseIpc.load())
    return Status(Code::kCudaError, "fake device IPC: refused (testing::refuseIpc)");
  const size_t len = bytes ? bytes : 1;
  const int fd = memfd_create("loom-fake-device", MFD_CLOEXEC);
  if (fd < 0) return errnoStatus("memfd_create");
  if (ftruncate(fd, static_cast<off_t>(len)) != 0) {
    Status s = errnoStatus("ftruncate");
    close(fd);
    return s;
  }
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    Status s = errnoStatus("mmap");
    close(fd);
    return s;
  }
  {
    std::lock_guard<std::mutex> lock(gFakeIpcMu);
    fakeMappings()[p] = {len, fd};
  }
  detail::fakeRemember(p, len);
  FakeIpcHandle h{kFakeIpcMagic, static_cast<int32_t>(getpid()), fd, 0, len};
  *handle = IpcHandle{};
  std::memcpy(handle->bytes, &h, sizeof h);
  *ptr = p;
  return Status::ok();
}

Status fakeIpcOpen(const IpcHandle& handle, void** ptr) {
  FakeIpcHandle h;
  std::memcpy(&h, handle.bytes, sizeof h);
  if (h.magic != kFakeIpcMagic)
    return Status(Code::kInvalidArgument, "fake device IPC: not a handle of the emulation");
  if (h.pid == getpid())
    return Status(Code::kCudaError,
                  "fake device IPC: a process cannot open its own handle (as CUDA refuses)");
  const std::string path = "/proc/" + std::to_string(h.pid) + "/fd/" + std::to_string(h.fd);
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return errnoStatus("open " + path);
  void* p = mmap(nullptr, h.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  Status s = p == MAP_FAILED ? errnoStatus("mmap " + path) : Status::ok();
  close(fd);
  LOOM_RETURN_IF_ERROR(s);
  {
    std::lock_guard<std::mutex> lock(gFakeIpcMu);
    fakeMappings()[p] = {h.bytes, -1};
  }
  detail::fakeRemember(p, h.bytes);
  *ptr = p;
  return Status::ok();
}

void fakeUnmap(void* ptr) {
  FakeMapping m;
  {
    std::lock_guard<std::mutex> lock(gFakeIpcMu);
    auto it = fakeMappings().find(ptr);
    if (it == fakeMappings().end()) return;
    m = it->second;
    fakeMappings().erase(it);
  }
  detail::fakeSynchronizeAll();  // no queued copy may still touch it
  detail::fakeForget(ptr);
  munmap(ptr, m.bytes);
  if (m.fd >= 0) close(m.fd);
}

// ---- CUDA -----------------------------------------------------------------------------------

#if LOOM_HAVE_CUDA
static_assert(sizeof(cudaIpcMemHandle_t) == sizeof(IpcHandle::bytes));

Status cudaFailed(cudaError_t err, const std::string& what) {
  (void)cudaGetLastError();
  return Status(Code::kCudaError,
                what + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

Status realIpcAlloc(size_t bytes, void** ptr, IpcHandle* handle) {
  if (!available()) return Status(Code::kCudaError, "CUDA IPC: no usable GPU");
  // cudaMalloc, not cudaMallocAsync: only the former's memory has IPC handles by default.
  cudaError_t err = cudaMalloc(ptr, bytes ? bytes : 1);
  if (err != cudaSuccess) return cudaFailed(err, "cudaMalloc of " + std::to_string(bytes));
  cudaIpcMemHandle_t h;
  err = cudaIpcGetMemHandle(&h, *ptr);
  if (err != cudaSuccess) {
    cudaFree(*ptr);
    *ptr = nullptr;
    return cudaFailed(err, "cudaIpcGetMemHandle");
  }
  std::memcpy(handle->bytes, &h, sizeof h);
  return Status::ok();
}

Status realIpcOpen(const IpcHandle& handle, void** ptr) {
  cudaIpcMemHandle_t h;
  std::memcpy(&h, handle.bytes, sizeof h);
  const cudaError_t err = cudaIpcOpenMemHandle(ptr, h, cudaIpcMemLazyEnablePeerAccess);
  if (err != cudaSuccess) return cudaFailed(err, "cudaIpcOpenMemHandle");
  return Status::ok();
}

void realIpcFree(void* ptr) {
  if (ptr) cudaFree(ptr);
}

void realIpcClose(void* ptr) {
  if (ptr) cudaIpcCloseMemHandle(ptr);
}
#else
Status noCudaIpc() {
  return Status(Code::kCudaError, "CUDA IPC: this build of loom has no CUDA (see LOOM_CUDA)");
}
Status realIpcAlloc(size_t, void**, IpcHandle*) {
  return noCudaIpc();
}
Status realIpcOpen(const IpcHandle&, void**) {
  return noCudaIpc();
}
void realIpcFree(void*) {}
void realIpcClose(void*) {}
#endif

}  // namespace

namespace testing {
void refuseIpc(bool refuse) {
  gRefuseIpc = refuse;
}
}  // namespace testing

Status ipcAlloc(size_t bytes, void** ptr, IpcHandle* handle) {
  return detail::fakeActive() ? fakeIpcAlloc(bytes, ptr, handle) : realIpcAlloc(bytes, ptr, handle);
}

void ipcFree(void* ptr) {
  if (!detail::fakeActive()) return realIpcFree(ptr);
  if (ptr) fakeUnmap(ptr);
}

Status ipcOpen(const IpcHandle& handle, void** ptr) {
  return detail::fakeActive() ? fakeIpcOpen(handle, ptr) : realIpcOpen(handle, ptr);
}

void ipcClose(void* ptr) {
  if (!detail::fakeActive()) return realIpcClose(ptr);
  if (ptr) fakeUnmap(ptr);
}

}  // namespace loom::cuda
